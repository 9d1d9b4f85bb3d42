//! docker-slim's name-based keep switches (`--include-exe`, `--include-node-package`,
//! `--include-zoneinfo`, `--include-cert-*`, `--include-oslibs-net`, `--include-ssh-client`,
//! `--include-licenses`) resolved against an image's files.

use std::collections::BTreeMap;

/// Named path sets of docker-slim's `--include-*` switches (kept when present in the image).
pub fn path_set(name: &str) -> &'static [&'static str] {
    match name {
        "zoneinfo" => &["/usr/share/zoneinfo", "/etc/localtime", "/etc/timezone"],
        "cert-all" => &[
            "/etc/ssl",
            "/etc/pki",
            "/etc/ca-certificates",
            "/etc/ca-certificates.conf",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
            "/usr/lib/ssl",
        ],
        "cert-bundles" => &[
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/ca-bundle.pem",
            "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            "/etc/ssl/cert.pem",
        ],
        "cert-dirs" => &[
            "/etc/ssl/certs",
            "/etc/pki/tls/certs",
            "/etc/pki/ca-trust",
            "/usr/share/ca-certificates",
            "/usr/local/share/ca-certificates",
        ],
        "oslibs-net" => &[
            "/etc/nsswitch.conf",
            "/etc/host.conf",
            "/etc/protocols",
            "/etc/services",
            "/etc/gai.conf",
        ],
        "ssh-client" => &[
            "/usr/bin/ssh",
            "/usr/bin/scp",
            "/usr/bin/ssh-keygen",
            "/usr/bin/ssh-keyscan",
            "/etc/ssh/ssh_config",
            "/etc/ssh/ssh_config.d",
        ],
        "licenses" => &["/usr/share/licenses", "/usr/share/common-licenses"],
        _ => &[],
    }
}

/// Resolves the name-based keep rules against the image's files: `--include-exe` on the PATH
/// directories, `--include-node-package` as every `node_modules/NAME` dir, the license files
/// under /usr/share/doc, and the resolver/NSS libraries for `oslibs-net`.
pub fn resolve_by_name(
    exes: &[String],
    node_packages: &[String],
    sets: &[String],
    paths: impl Iterator<Item = String>,
) -> Vec<String> {
    const PATH_DIRS: &[&str] = &[
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    let licenses = sets.iter().any(|s| s == "licenses");
    let oslibs = sets.iter().any(|s| s == "oslibs-net");
    let mut found = Vec::new();
    let mut exe_found = BTreeMap::new();
    for path in paths {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if exes.iter().any(|e| e == name) && PATH_DIRS.contains(&dir) {
            exe_found
                .entry(name.to_string())
                .or_insert_with(|| path.clone());
        }
        if node_packages
            .iter()
            .any(|p| path.ends_with(&format!("/node_modules/{p}")) && !path.contains("/."))
        {
            found.push(path.clone());
        }
        if licenses && path.starts_with("/usr/share/doc/") && name == "copyright" {
            found.push(path.clone());
        }
        if oslibs
            && [
                "libnss_dns",
                "libnss_files",
                "libresolv",
                "libnss_myhostname",
            ]
            .iter()
            .any(|lib| name.starts_with(lib))
        {
            found.push(path.clone());
        }
    }
    // The first PATH directory that holds it, as the shell would find it.
    for exe in exes {
        let hit = PATH_DIRS
            .iter()
            .map(|d| format!("{d}/{exe}"))
            .find(|p| exe_found.values().any(|f| f == p));
        found.extend(hit);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_against_the_image_files() {
        let files = [
            "/usr/bin/curl",
            "/bin/curl",
            "/usr/local/bin/jq",
            "/opt/jq",
            "/app/node_modules/express",
            "/app/node_modules/express/index.js",
            "/app/node_modules/a/node_modules/express",
            "/usr/share/doc/libc6/copyright",
            "/lib/x86_64-linux-gnu/libnss_dns.so.2",
        ];
        let found = resolve_by_name(
            &["curl".into(), "jq".into(), "missing".into()],
            &["express".into()],
            &["licenses".into(), "oslibs-net".into()],
            files.iter().map(|s| s.to_string()),
        );
        for expected in [
            "/usr/bin/curl",
            "/usr/local/bin/jq",
            "/app/node_modules/express",
            "/app/node_modules/a/node_modules/express",
            "/usr/share/doc/libc6/copyright",
            "/lib/x86_64-linux-gnu/libnss_dns.so.2",
        ] {
            assert!(
                found.contains(&expected.to_string()),
                "{expected}: {found:?}"
            );
        }
        assert!(
            !found.contains(&"/bin/curl".to_string()),
            "the first PATH hit only"
        );
        assert!(!found.contains(&"/opt/jq".to_string()));
    }
}
