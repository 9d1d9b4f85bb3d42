//! Docker-format seccomp profiles generated from a trace: allow exactly the system calls the
//! container was seen making (plus what the runtime needs to start it), refuse everything else
//! with EPERM. Used as `docker run --security-opt seccomp=FILE`.
//!
//! Owns the profile's shape and the runtime baseline. The eBPF sensor's syscall set already
//! holds runc's own calls (runc runs in the traced cgroup); the ptrace sensor only sees the
//! app's, so [`RUNTIME_SYSCALLS`] adds what runc makes between loading the filter and exec'ing
//! the entrypoint (runc 1.1 loads it before dropping capabilities and switching user, unless
//! no-new-privileges is set).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Error, Result};

/// Architectures the profile applies to, as Docker's default profile lists them for x86_64:
/// the filter must also cover the 32-bit and x32 entry points, or they would bypass it.
pub const ARCHITECTURES: [&str; 3] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];

/// What runc 1.1 (a Go program) calls after loading the filter: finishing its setup
/// (capabilities, user and groups, cwd, closing fds, the exec fifo), the Go runtime's
/// housekeeping on its other threads, and the final execve. Measured by running slim images
/// under profiles built from the ptrace sensor, and cross-checked against the eBPF sensor's
/// set, which includes runc.
pub const RUNTIME_SYSCALLS: &[&str] = &[
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "close",
    "close_range",
    "dup3",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "pipe2",
    "prctl",
    "pread64",
    "read",
    "readlinkat",
    "restart_syscall",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setresgid",
    "setresuid",
    "setuid",
    "sigaltstack",
    "stat",
    "tgkill",
    "uname",
    "write",
];

/// One rule of the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: String,
}

/// A Docker seccomp profile (the subset minify writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    /// errno returned for refused calls (EPERM), so programs see a clean failure, not a kill.
    pub default_errno_ret: u32,
    pub architectures: Vec<String>,
    pub syscalls: Vec<Rule>,
}

impl Profile {
    /// An allow-list of `traced` plus [`RUNTIME_SYSCALLS`]. Numbers the sensor could not name
    /// (`syscall_NNN`) are left out: Docker refuses profiles with names libseccomp does not know.
    pub fn from_syscalls(traced: &BTreeSet<String>) -> Profile {
        let names: BTreeSet<String> = traced
            .iter()
            .filter(|name| is_named(name))
            .cloned()
            .chain(RUNTIME_SYSCALLS.iter().map(|s| s.to_string()))
            .collect();
        Profile {
            default_action: "SCMP_ACT_ERRNO".into(),
            default_errno_ret: 1,
            architectures: ARCHITECTURES.iter().map(|s| s.to_string()).collect(),
            syscalls: vec![Rule {
                names: names.into_iter().collect(),
                action: "SCMP_ACT_ALLOW".into(),
            }],
        }
    }

    /// Every allowed syscall name.
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.syscalls
            .iter()
            .filter(|r| r.action == "SCMP_ACT_ALLOW")
            .flat_map(|r| r.names.iter().map(String::as_str))
    }

    /// Writes the profile as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(Error::json(format!(
            "serialising the seccomp profile {}",
            path.display()
        )))?;
        std::fs::write(path, json).map_err(Error::io(format!(
            "writing the seccomp profile {}",
            path.display()
        )))
    }
}

fn is_named(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("syscall_")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Where the profile goes when `--seccomp` is not given: next to the report, named after it
/// (`minify-report.json` → `minify-report.seccomp.json`).
pub fn default_path(report_path: &Path) -> PathBuf {
    let stem = report_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "minify".into());
    report_path.with_file_name(format!("{stem}.seccomp.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_has_docker_shape_and_refuses_by_default() {
        let traced: BTreeSet<String> = ["openat", "accept4", "syscall_999", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let profile = Profile::from_syscalls(&traced);
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
        let allowed: Vec<&str> = profile.allowed().collect();
        assert!(allowed.contains(&"accept4"));
        assert!(
            allowed.contains(&"execve"),
            "runc's final exec is always allowed"
        );
        assert!(!allowed
            .iter()
            .any(|n| n.starts_with("syscall_") || n.is_empty()));
        assert!(!allowed.contains(&"ptrace") && !allowed.contains(&"mount"));
        let mut sorted = allowed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, allowed, "names are sorted and unique");
    }

    #[test]
    fn default_path_sits_next_to_the_report() {
        assert_eq!(
            default_path(Path::new("/tmp/out/r.json")),
            Path::new("/tmp/out/r.seccomp.json")
        );
        assert_eq!(
            default_path(Path::new("minify-report.json")),
            Path::new("minify-report.seccomp.json")
        );
    }

    #[test]
    fn write_reports_the_path_on_failure() {
        let profile = Profile::from_syscalls(&BTreeSet::new());
        let err = profile
            .write(Path::new("/nonexistent-dir/p.json"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/p.json"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        profile.write(&path).unwrap();
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back["defaultAction"], "SCMP_ACT_ERRNO");
    }
}
