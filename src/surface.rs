//! Attack surface of an image's filesystem, before and after slimming: what an intruder who
//! gets code execution finds to work with — shells, package managers, compilers and
//! interpreters, network tools, SSH clients and servers, setuid/setgid binaries, files with
//! capabilities, world-writable directories.

use serde::Serialize;

use crate::image::{Entry, EntryKind, FsIndex};

/// Directories whose executables count (a shell under /usr/share/doc does not).
const BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "busybox"];
const PACKAGE_MANAGERS: &[&str] = &[
    "apt", "apt-get", "dpkg", "apk", "yum", "dnf", "microdnf", "rpm", "pip", "pip3", "npm", "gem",
];
const NETWORK_TOOLS: &[&str] = &[
    "curl", "wget", "nc", "netcat", "ncat", "socat", "telnet", "ftp",
];
const SSH: &[&str] = &["ssh", "sshd", "scp", "sftp"];

/// Compilers and interpreters by name or name prefix (`python3.11`, `ruby3.1`).
fn is_compiler_or_interpreter(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "gcc", "cc", "c++", "g++", "clang", "make", "ld", "as", "perl", "ruby", "node", "php",
        "java", "javac", "go", "rustc", "lua", "tclsh", "awk", "gawk", "mawk",
    ];
    const PREFIXES: &[&str] = &["python", "perl5", "ruby", "php", "gcc-", "g++-", "clang-"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What one image offers, as sorted path lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Surface {
    pub shells: Vec<String>,
    pub package_managers: Vec<String>,
    pub compilers_and_interpreters: Vec<String>,
    pub network_tools: Vec<String>,
    pub ssh: Vec<String>,
    pub setuid_setgid: Vec<String>,
    pub capabilities: Vec<String>,
    pub world_writable_dirs: Vec<String>,
}

/// The attack surface before and after.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SurfaceChange {
    pub before: Surface,
    pub after: Surface,
}

fn in_bin_dir(path: &str) -> Option<&str> {
    let (dir, name) = path.rsplit_once('/')?;
    BIN_DIRS.contains(&dir).then_some(name)
}

/// The surface of the entries of `index` that `kept` accepts.
pub fn surface(index: &FsIndex, kept: impl Fn(&str) -> bool) -> Surface {
    let mut s = Surface::default();
    for entry in index.iter().filter(|e| kept(&e.path)) {
        classify(entry, &mut s);
    }
    s
}

fn classify(entry: &Entry, s: &mut Surface) {
    add(
        s,
        &Item {
            path: &entry.path,
            runnable: matches!(
                entry.kind,
                EntryKind::File | EntryKind::Symlink { .. } | EntryKind::Hardlink { .. }
            ),
            regular: matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. }),
            dir: entry.kind == EntryKind::Dir,
            mode: entry.mode,
            capability: entry.xattrs.iter().any(|(k, _)| k == "security.capability"),
        },
    );
}

/// One filesystem entry as the surface sees it (an image index entry, an xray layer entry).
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub path: &'a str,
    /// A file, symlink or hard link (something `exec` can start).
    pub runnable: bool,
    /// A file or hard link (what mode bits and capabilities are about).
    pub regular: bool,
    pub dir: bool,
    pub mode: u32,
    pub capability: bool,
}

/// Adds `item` to the surface `s` where it belongs (paths keep the order they come in).
pub fn add(s: &mut Surface, item: &Item) {
    let path = item.path.to_string();
    if item.runnable {
        if let Some(name) = in_bin_dir(item.path) {
            if SHELLS.contains(&name) {
                s.shells.push(path.clone());
            } else if PACKAGE_MANAGERS.contains(&name) {
                s.package_managers.push(path.clone());
            } else if NETWORK_TOOLS.contains(&name) {
                s.network_tools.push(path.clone());
            } else if SSH.contains(&name) {
                s.ssh.push(path.clone());
            } else if is_compiler_or_interpreter(name) {
                s.compilers_and_interpreters.push(path.clone());
            }
        }
    }
    if item.regular {
        if item.mode & 0o6000 != 0 {
            s.setuid_setgid.push(path.clone());
        }
        if item.capability {
            s.capabilities.push(path.clone());
        }
    }
    if item.dir && item.mode & 0o002 != 0 {
        s.world_writable_dirs.push(path);
    }
}

impl Surface {
    /// `kind: n` counts for a summary line (only the non-empty ones).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        [
            ("shells", self.shells.len()),
            ("package managers", self.package_managers.len()),
            (
                "compilers/interpreters",
                self.compilers_and_interpreters.len(),
            ),
            ("network tools", self.network_tools.len()),
            ("ssh", self.ssh.len()),
            ("setuid/setgid", self.setuid_setgid.len()),
            ("capabilities", self.capabilities.len()),
            ("world-writable dirs", self.world_writable_dirs.len()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

impl SurfaceChange {
    /// "attack surface: shells 4 -> 0, package managers 3 -> 0, ..." for stderr.
    pub fn line(&self) -> String {
        let after: std::collections::BTreeMap<_, _> = self.after.counts().into_iter().collect();
        let parts: Vec<String> = self
            .before
            .counts()
            .into_iter()
            .map(|(kind, n)| format!("{kind} {n} -> {}", after.get(kind).copied().unwrap_or(0)))
            .collect();
        format!("attack surface: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            xattrs: vec![],
            content: None,
            layer: 0,
        }
    }

    #[test]
    fn classifies_and_follows_what_is_kept() {
        let mut index = FsIndex::default();
        for e in [
            entry("/usr/bin/bash", EntryKind::File, 0o755),
            entry(
                "/bin/sh",
                EntryKind::Symlink {
                    target: "dash".into(),
                },
                0o777,
            ),
            entry("/usr/bin/apt-get", EntryKind::File, 0o755),
            entry("/usr/bin/python3.11", EntryKind::File, 0o755),
            entry("/usr/bin/curl", EntryKind::File, 0o755),
            entry("/usr/bin/passwd", EntryKind::File, 0o4755),
            entry("/usr/bin/nginx", EntryKind::File, 0o755),
            entry("/usr/share/doc/bash", EntryKind::File, 0o644),
            entry("/tmp", EntryKind::Dir, 0o1777),
        ] {
            index.entries.insert(e.path.clone(), e);
        }
        let mut ping = entry("/usr/bin/ping", EntryKind::File, 0o755);
        ping.xattrs.push(("security.capability".into(), vec![1]));
        index.entries.insert(ping.path.clone(), ping);

        let before = surface(&index, |_| true);
        assert_eq!(before.shells, ["/bin/sh", "/usr/bin/bash"]);
        assert_eq!(before.package_managers, ["/usr/bin/apt-get"]);
        assert_eq!(before.compilers_and_interpreters, ["/usr/bin/python3.11"]);
        assert_eq!(before.network_tools, ["/usr/bin/curl"]);
        assert_eq!(before.setuid_setgid, ["/usr/bin/passwd"]);
        assert_eq!(before.capabilities, ["/usr/bin/ping"]);
        assert_eq!(before.world_writable_dirs, ["/tmp"]);

        let after = surface(&index, |p| p == "/usr/bin/nginx" || p == "/tmp");
        assert!(after.shells.is_empty() && after.setuid_setgid.is_empty());
        let change = SurfaceChange { before, after };
        assert!(
            change
                .line()
                .starts_with("attack surface: shells 2 -> 0, package managers 1 -> 0"),
            "{}",
            change.line()
        );
        assert!(
            change.line().ends_with("world-writable dirs 1 -> 1"),
            "{}",
            change.line()
        );
    }
}
