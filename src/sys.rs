//! Raw system calls and kernel interfaces (/proc, /sys), kept in one place so the rest
//! of the crate stays free of `unsafe` and of hard-coded kernel paths.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Linux capability numbers (include/uapi/linux/capability.h).
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// The calling process's effective capability set (`CapEff` of /proc/self/status).
pub fn effective_capabilities() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff in /proc/self/status"))
}

/// True when `capability` is in the effective set.
pub fn has_capability(capability: u32) -> bool {
    effective_capabilities()
        .map(|caps| caps & (1u64 << capability) != 0)
        .unwrap_or(false)
}

/// The effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// One line of /proc/self/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub source: String,
    pub target: PathBuf,
    pub fstype: String,
    pub options: String,
}

/// The mount table of this process's mount namespace.
pub fn mounts() -> io::Result<Vec<MountEntry>> {
    let table = std::fs::read_to_string("/proc/self/mounts")?;
    Ok(table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(MountEntry {
                source: unescape_mount_field(fields.next()?),
                target: PathBuf::from(unescape_mount_field(fields.next()?)),
                fstype: fields.next()?.to_string(),
                options: fields.next().unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The inode number of `path`; for a cgroup v2 directory this is the cgroup id BPF reports.
pub fn inode_of(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.ino())
}

/// A stop request one thread raises and another waits on together with a file descriptor: the
/// eventfd behind it wakes the waiter's `poll` at once, where a flag alone is seen only when the
/// poll times out (that was most of the eBPF sensor's 0.11 s finish).
#[derive(Debug)]
pub struct StopSignal {
    raised: std::sync::atomic::AtomicBool,
    event: std::os::fd::OwnedFd,
}

impl StopSignal {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nothing else.
        let event = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Self {
            raised: std::sync::atomic::AtomicBool::new(false),
            event,
        })
    }

    /// Raises the request and wakes a waiter.
    pub fn raise(&self) {
        self.raised
            .store(true, std::sync::atomic::Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd. A full counter (EAGAIN)
        // still leaves it readable, which is all the waiter needs.
        unsafe { libc::write(self.event.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits up to `timeout_ms` for `fd` to become readable or the request to be raised; true
    /// when either happened.
    pub fn wait_readable(&self, fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
        let mut pollfds = [
            libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.event.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: pollfds is a valid, initialised array of length 2 for the duration of the call.
        let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), 2, timeout_ms) };
        match rc {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_stop_wakes_a_poll_long_before_its_timeout() {
        let signal = std::sync::Arc::new(StopSignal::new().unwrap());
        let (idle, _other_end) = std::os::unix::net::UnixStream::pair().unwrap();
        let raiser = std::sync::Arc::clone(&signal);
        let started = std::time::Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            raiser.raise();
        });
        use std::os::fd::AsFd;
        assert!(signal.wait_readable(idle.as_fd(), 10_000).unwrap());
        assert!(signal.is_raised());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        thread.join().unwrap();
    }

    #[test]
    fn unescapes_octal_in_mount_fields() {
        assert_eq!(
            unescape_mount_field(r"/mnt/with\040space"),
            "/mnt/with space"
        );
        assert_eq!(unescape_mount_field(r"/plain"), "/plain");
        assert_eq!(unescape_mount_field(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn reads_own_capabilities_and_mounts() {
        effective_capabilities().expect("CapEff is always in /proc/self/status");
        let table = mounts().expect("/proc/self/mounts is readable");
        assert!(table.iter().any(|m| m.target == Path::new("/")));
    }
}
