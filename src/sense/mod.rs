//! Sensors: what records the file accesses of one container's processes.
//!
//! One trait, [`Sensor`], over several mechanisms: [`ebpf`] (host-side syscall tracepoints,
//! filtered by the container's cgroup) today; ptrace and fanotify fit the same trait.
//! A sensor reports raw [`Access`]es; making sense of them against the image is [`crate::closure`]'s job.

pub mod cgroup;
pub mod ebpf;
#[cfg(test)]
pub mod fake;
pub mod ptrace;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::Result;

/// The system call family that touched a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    Open,
    Exec,
    Stat,
    Access,
    Readlink,
    /// Any other syscall naming an existing path: mkdir (EEXIST), chdir, unlink, rename, chmod,
    /// chown, utimes, xattrs, statfs, truncate, mknod, inotify watches.
    Lookup,
}

/// One path a container process looked up. `path` is absolute in the container's filesystem
/// (relative paths already resolved against the cwd or dirfd) but not normalised: it may hold
/// `..`, `.` and symlinks, which only the image can resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Access {
    pub path: String,
    pub kind: AccessKind,
    pub pid: u32,
    pub comm: String,
    /// The syscall's return value (negative errno on failure), where the sensor sees it: the
    /// eBPF sensor records at syscall entry and has none.
    pub result: Option<i64>,
}

/// Everything a sensor saw during one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    pub sensor: String,
    pub accesses: Vec<Access>,
    /// Events the kernel side could not deliver (ring buffer full).
    pub lost_events: u64,
    /// Events whose path could not be read or resolved completely.
    pub unresolved_paths: u64,
    /// Paths whose first read faulted and that were read again at the thread's next syscall.
    pub refetched_paths: u64,
    /// Names of the system calls the container made, where the sensor records them.
    pub syscalls: BTreeSet<String>,
}

/// Settings the container must be created with so that the sensor sees it.
#[derive(Debug, Clone, Default)]
pub struct ContainerHooks {
    /// Docker `HostConfig.CgroupParent`.
    pub cgroup_parent: Option<String>,
    /// Replaces the image's entrypoint (an in-container sensor wrapping the app).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's cmd (with `entrypoint`: the original command line as arguments).
    pub cmd: Option<Vec<String>>,
    /// Tar archives to extract into the created container before it starts:
    /// (destination directory, tar bytes). Goes through the Docker API, so remote daemons work.
    pub uploads: Vec<(String, Vec<u8>)>,
    /// A path inside the container holding the sensor's findings; the pipeline reads it back
    /// (as a tar archive, through the Docker API) after the container stops and hands it to
    /// [`Sensor::accept_results`].
    pub results_path: Option<String>,
}

/// A running recorder of one container's file accesses. Creating one starts recording;
/// [`Sensor::finish`] (or dropping it) stops and releases every kernel resource it holds.
pub trait Sensor: Send {
    fn name(&self) -> &'static str;
    /// What the container must be created with for this sensor to see it.
    fn container_hooks(&self) -> ContainerHooks;
    /// Takes the tar archive of [`ContainerHooks::results_path`] read back from the stopped
    /// container. Host-side sensors have none.
    fn accept_results(&mut self, _results_tar: Vec<u8>) -> Result<()> {
        Ok(())
    }
    /// Stops recording and returns the trace. Call after the container has been removed.
    fn finish(self: Box<Self>) -> Result<Trace>;
}

/// Starts the sensor of one run: the seam between the pipeline and the kernel. Production uses
/// [`KernelSensors`]; tests pass a fake that records when it is started and finished.
pub trait SensorFactory: Sync {
    fn start(
        &self,
        choice: ptrace::SensorChoice,
        endpoint: &str,
        run_name: &str,
        image: &crate::docker::ImageSummary,
    ) -> Result<ptrace::ChosenSensor>;
}

/// The real sensors: eBPF on the host or the in-container ptrace wrapper
/// ([`ptrace::start_sensor`] decides).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelSensors;

impl SensorFactory for KernelSensors {
    fn start(
        &self,
        choice: ptrace::SensorChoice,
        endpoint: &str,
        run_name: &str,
        image: &crate::docker::ImageSummary,
    ) -> Result<ptrace::ChosenSensor> {
        ptrace::start_sensor(choice, endpoint, run_name, image)
    }
}
