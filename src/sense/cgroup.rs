//! The per-run cgroup the eBPF sensor filters on: created in the cgroup v2 (unified) hierarchy
//! before the container exists, handed to Docker as `CgroupParent`, and removed afterwards
//! together with the same-named directories Docker creates under every v1 controller.
//!
//! The BPF side identifies the run by the v2 directory's inode (its cgroup id) at its depth
//! below the v2 root, so every process Docker places below it matches from its first syscall.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{sys, Error, Result};

/// Prefix of every cgroup minify creates; [`remove_stale`] only ever touches these.
pub const NAME_PREFIX: &str = "minify-";

/// A run's cgroup is empty for a moment between its creation and the container's start; a
/// cgroup younger than this is never treated as stale, so concurrent runs are safe.
const STALE_MIN_AGE: Duration = Duration::from_secs(120);

/// How long removal keeps retrying while the kernel still reports the cgroup busy
/// (exiting processes leave a cgroup asynchronously).
const REMOVE_RETRY_FOR: Duration = Duration::from_secs(3);

/// A cgroup directory tree owned by one run.
#[derive(Debug)]
pub struct RunCgroup {
    name: String,
    unified_dir: PathBuf,
    id: u64,
    level: u32,
    removed: bool,
}

impl RunCgroup {
    /// Creates `<v2 root>/<name>`. `name` must be a single path component.
    pub fn create(name: &str) -> Result<RunCgroup> {
        if name.is_empty()
            || name == "."
            || name == ".."
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::Usage(format!(
                "cgroup name {name:?} must be a non-empty path component of [A-Za-z0-9._-]"
            )));
        }
        let root = unified_root()?;
        let unified_dir = root.join(name);
        std::fs::create_dir(&unified_dir).map_err(|e| Error::Sensor {
            message: format!("cannot create cgroup {}: {e}", unified_dir.display()),
            hint: if e.kind() == io::ErrorKind::PermissionDenied {
                "Creating cgroups needs root (or CAP_SYS_ADMIN with a writable cgroup2 mount)"
                    .into()
            } else {
                "A leftover of a crashed run? `minify` removes stale minify-* cgroups at start"
                    .into()
            },
        })?;
        let id = sys::inode_of(&unified_dir).map_err(Error::io(format!(
            "reading the cgroup id of {}",
            unified_dir.display()
        )))?;
        Ok(RunCgroup {
            name: name.to_string(),
            level: depth_below(&root, &unified_dir),
            unified_dir,
            id,
            removed: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cgroup v2 directory; write a pid to its `cgroup.procs` to put a process in the run.
    pub fn unified_dir(&self) -> &Path {
        &self.unified_dir
    }

    /// The cgroup id (v2 directory inode), as BPF reads it from `cgroup->kn->id`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Depth below the v2 root (1 for `<root>/<name>`), the ancestor level to compare at.
    pub fn level(&self) -> u32 {
        self.level
    }

    /// The value for Docker's `HostConfig.CgroupParent`.
    pub fn docker_parent(&self) -> String {
        format!("/{}", self.name)
    }

    /// Removes the v2 directory and every v1 controller directory of the same name, children
    /// first. Call after the processes have exited; retries briefly while the kernel is busy.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        let mut first_error = None;
        for hierarchy in hierarchy_roots()? {
            let dir = hierarchy.join(&self.name);
            if let Err(e) = remove_tree_retrying(&dir) {
                first_error.get_or_insert(Error::Sensor {
                    message: format!("cannot remove cgroup {}: {e}", dir.display()),
                    hint: "Processes are still inside it; remove the container first".into(),
                });
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => {
                self.removed = true;
                Ok(())
            }
        }
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if let Err(error) = self.remove() {
            tracing::warn!("{error}");
        }
    }
}

/// Removes leftovers of crashed runs: every `<prefix>*` cgroup (prefix must start with
/// [`NAME_PREFIX`]) in any hierarchy that holds no process and is older than a couple of
/// minutes. Returns the directories removed.
pub fn remove_stale(prefix: &str) -> Result<Vec<PathBuf>> {
    remove_stale_older_than(prefix, STALE_MIN_AGE)
}

/// [`remove_stale`] with an explicit minimum age (tests use zero).
pub fn remove_stale_older_than(prefix: &str, min_age: Duration) -> Result<Vec<PathBuf>> {
    if !prefix.starts_with(NAME_PREFIX) {
        return Err(Error::Usage(format!(
            "refusing to remove cgroups by prefix {prefix:?}: it must start with {NAME_PREFIX:?}"
        )));
    }
    let mut removed = Vec::new();
    for hierarchy in hierarchy_roots()? {
        let Ok(entries) = std::fs::read_dir(&hierarchy) else {
            continue;
        };
        for entry in entries.flatten() {
            let is_ours = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(prefix));
            let path = entry.path();
            // A young cgroup may belong to a run that is starting; one whose run's process is
            // gone (the pid in `minify-PID-…`) is stale at any age.
            let owner_gone = entry
                .file_name()
                .to_str()
                .and_then(owner_pid)
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
            if !is_ours
                || !path.is_dir()
                || (is_younger_than(&path, min_age) && !owner_gone)
                || tree_has_processes(&path)
            {
                continue;
            }
            match remove_tree_retrying(&path) {
                Ok(()) => removed.push(path),
                Err(e) => tracing::warn!("cannot remove stale cgroup {}: {e}", path.display()),
            }
        }
    }
    Ok(removed)
}

/// The pid in a run's cgroup name (`minify-PID-NANOS`, see [`crate::run::unique_run_name`]).
fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix(NAME_PREFIX)?.split('-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?;
    Some(pid)
}

/// The mount point of the cgroup v2 hierarchy: /sys/fs/cgroup on pure-v2 hosts,
/// /sys/fs/cgroup/unified on hybrid ones.
pub fn unified_root() -> Result<PathBuf> {
    let mounts = sys::mounts().map_err(Error::io("reading /proc/self/mounts"))?;
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        // Prefer the canonical locations over stray bind mounts of the hierarchy.
        .min_by_key(|m| match m.target.to_str() {
            Some("/sys/fs/cgroup/unified") | Some("/sys/fs/cgroup") => 0,
            _ => 1,
        })
        .map(|m| m.target.clone())
        .ok_or_else(|| Error::Sensor {
            message: "no cgroup v2 hierarchy is mounted".into(),
            hint: "The eBPF sensor identifies the container by its cgroup v2 id; mount one with \
                   `mount -t cgroup2 none /sys/fs/cgroup/unified`"
                .into(),
        })
}

/// Every cgroup hierarchy root: the v2 one and each v1 controller mount (deduplicated).
fn hierarchy_roots() -> Result<Vec<PathBuf>> {
    let mounts = sys::mounts().map_err(Error::io("reading /proc/self/mounts"))?;
    let mut roots: Vec<PathBuf> = Vec::new();
    for mount in mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2" || m.fstype == "cgroup")
    {
        let canonical =
            std::fs::canonicalize(&mount.target).unwrap_or_else(|_| mount.target.clone());
        if !roots.contains(&canonical) {
            roots.push(canonical);
        }
    }
    Ok(roots)
}

fn depth_below(root: &Path, dir: &Path) -> u32 {
    dir.strip_prefix(root)
        .map(|rel| rel.components().count() as u32)
        .unwrap_or(1)
}

fn is_younger_than(dir: &Path, min_age: Duration) -> bool {
    std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_none_or(|age| age < min_age)
}

fn tree_has_processes(dir: &Path) -> bool {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    if !procs.trim().is_empty() {
        return true;
    }
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .any(|e| tree_has_processes(&e.path()))
        })
        .unwrap_or(false)
}

/// rmdir of a cgroup tree, deepest first (cgroup directories only allow rmdir, and only when
/// empty of child cgroups). A missing directory counts as removed.
fn remove_tree_retrying(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + REMOVE_RETRY_FOR;
    loop {
        match remove_tree(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_components_below_root() {
        let root = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(depth_below(root, &root.join("minify-x")), 1);
        assert_eq!(depth_below(root, &root.join("a/b")), 2);
    }

    #[test]
    fn rejects_names_that_are_not_one_component() {
        for bad in ["", "..", "a/b", "x y"] {
            assert!(
                matches!(RunCgroup::create(bad), Err(Error::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stale_removal_refuses_foreign_prefixes() {
        assert!(matches!(remove_stale("docker"), Err(Error::Usage(_))));
    }
}
