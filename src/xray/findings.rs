//! Path rules: which files look like secrets, and which belong to categories a running app
//! rarely needs (shells, package managers and their caches, toolchains, headers, docs). Pure
//! functions of a path (and mode), so they are cheap to run on every entry of every layer.

/// Why a path looks like it holds a secret, or `None`.
pub fn secret_reason(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    if path.split('/').any(|c| c == ".git") {
        return Some("git metadata (its history can hold secrets)");
    }
    if lower == ".env" || (lower.starts_with(".env.") && !is_example(&lower)) {
        return Some("dotenv file");
    }
    if matches!(
        lower.as_str(),
        "id_rsa"
            | "id_dsa"
            | "id_ecdsa"
            | "id_ed25519"
            | "ssh_host_rsa_key"
            | "ssh_host_ecdsa_key"
            | "ssh_host_ed25519_key"
    ) {
        return Some("SSH private key");
    }
    let public_certs = path.starts_with("/etc/ssl/certs/")
        || path.starts_with("/usr/share/ca-certificates/")
        || path.starts_with("/etc/pki/ca-trust/")
        || path.starts_with("/usr/local/share/ca-certificates/");
    if public_certs {
        return None;
    }
    if lower.ends_with(".key")
        || lower.ends_with(".p12")
        || lower.ends_with(".pfx")
        || lower.ends_with(".jks")
        || lower.ends_with(".keystore")
        || (lower.ends_with(".pem")
            && (lower.contains("private")
                || lower.contains("privkey")
                || lower.ends_with("key.pem")))
    {
        return Some("private key or keystore");
    }
    if matches!(
        lower.as_str(),
        ".netrc"
            | ".npmrc"
            | ".pypirc"
            | ".git-credentials"
            | ".pgpass"
            | ".htpasswd"
            | ".dockercfg"
            | "credentials"
            | "credentials.json"
            | "secrets.json"
            | "secrets.yaml"
            | "secrets.yml"
    ) || path.ends_with("/.docker/config.json")
        || lower.ends_with(".tfstate")
    {
        return Some("credentials file");
    }
    None
}

fn is_example(lower: &str) -> bool {
    ["example", "sample", "template", "dist"]
        .iter()
        .any(|s| lower.ends_with(s))
}

/// For a path under a `.git` directory, the `.git` directory itself (reported once).
pub fn git_root(path: &str) -> Option<&str> {
    let at = path
        .find("/.git/")
        .map(|i| i + 5)
        .or_else(|| path.ends_with("/.git").then_some(path.len()))?;
    Some(&path[..at])
}

/// Categories of runtime-unneeded content, in the order they are matched.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("shells", "interactive shells (an attacker's first tool)"),
    ("package-managers", "package managers and their databases"),
    ("package-caches", "package manager and build caches"),
    ("compilers", "compilers, linkers and toolchains"),
    ("headers", "C headers and static libraries"),
    ("docs", "documentation and man pages"),
    ("locales", "translations and locale data"),
];

const BIN_DIRS: &[&str] = &["/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"];

fn in_bin_dir(path: &str) -> Option<&str> {
    let (dir, name) = path.rsplit_once('/')?;
    BIN_DIRS.contains(&dir).then_some(name)
}

/// The category (index into [`CATEGORIES`]) of a path, if any.
pub fn category(path: &str) -> Option<usize> {
    if let Some(name) = in_bin_dir(path) {
        if matches!(
            name,
            "sh" | "bash"
                | "dash"
                | "zsh"
                | "ash"
                | "ksh"
                | "mksh"
                | "tcsh"
                | "csh"
                | "fish"
                | "busybox"
                | "rbash"
        ) {
            return Some(0);
        }
        if matches!(
            name,
            "apt"
                | "apt-get"
                | "apt-cache"
                | "apt-config"
                | "apt-key"
                | "apt-mark"
                | "aptitude"
                | "rpm"
                | "yum"
                | "dnf"
                | "microdnf"
                | "apk"
                | "npm"
                | "npx"
                | "yarn"
                | "gem"
                | "easy_install"
                | "conda"
                | "pip"
                | "pip3"
        ) || name.starts_with("dpkg")
            || name.starts_with("pip3.")
        {
            return Some(1);
        }
        if matches!(
            name,
            "cc" | "c++"
                | "cpp"
                | "ld"
                | "ld.bfd"
                | "ld.gold"
                | "as"
                | "make"
                | "cmake"
                | "rustc"
                | "cargo"
                | "go"
                | "javac"
                | "tcc"
        ) || [
            "gcc",
            "g++",
            "clang",
            "cpp-",
            "x86_64-linux-gnu-",
            "aarch64-linux-gnu-",
        ]
        .iter()
        .any(|p| name.starts_with(p))
        {
            return Some(3);
        }
    }
    let under = |prefix: &str| path.starts_with(prefix);
    if under("/var/lib/dpkg/")
        || under("/usr/lib/apt/")
        || under("/var/lib/rpm/")
        || under("/lib/apk/")
        || path.contains("/site-packages/pip/")
        || path.contains("/dist-packages/pip/")
        || path.contains("/node_modules/npm/")
    {
        return Some(1);
    }
    if under("/var/cache/apt/")
        || under("/var/lib/apt/lists/")
        || under("/var/cache/apk/")
        || under("/var/cache/yum/")
        || under("/var/cache/dnf/")
        || under("/root/.cache/")
        || under("/root/.npm/")
        || under("/root/.cargo/registry/")
        || (under("/home/") && (path.contains("/.cache/") || path.contains("/.npm/")))
    {
        return Some(2);
    }
    if under("/usr/lib/gcc/")
        || under("/usr/libexec/gcc/")
        || under("/usr/lib/llvm-")
        || under("/usr/local/go/")
        || path.contains("/lib/rustlib/")
    {
        return Some(3);
    }
    if under("/usr/include/")
        || under("/usr/local/include/")
        || path.ends_with(".h")
        || (path.ends_with(".a") && path.contains("/lib"))
    {
        return Some(4);
    }
    if under("/usr/share/doc/")
        || under("/usr/share/man/")
        || under("/usr/share/info/")
        || under("/usr/share/gtk-doc/")
        || under("/usr/share/lintian/")
        || under("/usr/share/doc-base/")
        || under("/usr/local/share/man/")
        || under("/usr/local/share/doc/")
    {
        return Some(5);
    }
    if under("/usr/share/locale/") || under("/usr/share/i18n/") || under("/usr/lib/locale/") {
        return Some(6);
    }
    None
}

/// Whether an environment variable's name or value suggests a secret (its value is masked).
pub fn secret_env(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // `AUTH` alone too: masking a harmless value costs nothing, showing a secret does.
    let named = crate::lint::rules::SECRET_NAMES
        .iter()
        .chain(&["AUTH"])
        .any(|w| upper.contains(w));
    let valued = [
        "AKIA",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "xoxp-",
        "sk_live_",
        "-----BEGIN",
    ]
    .iter()
    .any(|p| value.starts_with(p));
    named || valued
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_without_flagging_public_files() {
        assert_eq!(secret_reason("/app/.env"), Some("dotenv file"));
        assert_eq!(secret_reason("/app/.env.production"), Some("dotenv file"));
        assert_eq!(secret_reason("/app/.env.example"), None);
        assert_eq!(secret_reason("/root/.ssh/id_rsa"), Some("SSH private key"));
        assert_eq!(secret_reason("/root/.ssh/id_rsa.pub"), None);
        assert!(secret_reason("/etc/ssl/private/server.key").is_some());
        assert_eq!(secret_reason("/etc/ssl/certs/ca-certificates.crt"), None);
        assert_eq!(secret_reason("/etc/ssl/certs/ISRG_Root_X1.pem"), None);
        assert_eq!(
            secret_reason("/usr/share/ca-certificates/WISeKey_Root.pem"),
            None
        );
        assert_eq!(
            secret_reason("/opt/OISTE_WISeKey_Global_Root_GB_CA.pem"),
            None
        );
        assert!(secret_reason("/app/tls/server-key.pem").is_some());
        assert!(secret_reason("/root/.aws/credentials").is_some());
        assert!(secret_reason("/src/.git/config").is_some());
        assert_eq!(git_root("/src/.git/objects/ab/cd"), Some("/src/.git"));
        assert_eq!(git_root("/src/.git"), Some("/src/.git"));
        assert_eq!(git_root("/src/.github/x"), None);
    }

    #[test]
    fn categories_match_common_debian_paths() {
        assert_eq!(category("/bin/bash"), Some(0));
        assert_eq!(category("/usr/bin/apt-get"), Some(1));
        assert_eq!(category("/usr/bin/dpkg-query"), Some(1));
        assert_eq!(category("/var/lib/dpkg/status"), Some(1));
        assert_eq!(category("/var/lib/apt/lists/deb.debian.org_dists"), Some(2));
        assert_eq!(category("/usr/bin/gcc-12"), Some(3));
        assert_eq!(category("/usr/lib/gcc/x86_64-linux-gnu/12/cc1"), Some(3));
        assert_eq!(category("/usr/include/stdio.h"), Some(4));
        assert_eq!(category("/usr/share/man/man1/ls.1.gz"), Some(5));
        assert_eq!(category("/usr/share/locale/de/LC_MESSAGES/x.mo"), Some(6));
        assert_eq!(category("/usr/sbin/nginx"), None);
        assert_eq!(category("/usr/bin/shuf"), None);
    }

    #[test]
    fn env_secrets_by_name_or_value() {
        assert!(secret_env("DB_PASSWORD", "x"));
        assert!(secret_env("GITHUB_TOKEN", "x"));
        assert!(secret_env("X", "AKIAABCDEFGHIJKLMNOP"));
        assert!(!secret_env("PATH", "/usr/bin"));
    }
}
