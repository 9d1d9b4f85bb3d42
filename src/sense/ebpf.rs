//! The host-side eBPF sensor: records every path the processes of one run's cgroup open, exec,
//! stat, access or readlink or otherwise look up (mkdir, chdir, unlink, rename, chmod, chown,
//! utimes, xattrs, statfs, truncate, mknod, inotify), plus the set of syscalls they make. Kernel half: ebpf/trace.bpf.c.
//!
//! What works on the kernels this was built for (6.18, lockdown=integrity, Docker 20.10 with
//! cgroup v1 + a unified v2 mount), and why it is done this way:
//! - One program on one raw tracepoint, `sys_enter`. Any syscall tracepoint puts every syscall
//!   of the host on the kernel's slow path and runs the attached programs, so the host pays for
//!   each program attached there (measured on getppid: +85 ns for an empty raw `sys_enter`
//!   program, +40 ns more for a `sys_exit` one). Hence no exit program, a cgroup check first
//!   against read-only globals set at load time (no map lookup) that walks the task's cgroup
//!   through BTF pointers (plain loads; `bpf_get_current_ancestor_cgroup_id` cost ~15 ns more
//!   per syscall), and a raw tracepoint (the perf
//!   tracepoint `raw_syscalls/sys_enter` first copies the arguments into a trace record: 10% of
//!   nginx's throughput with the sensor merely loaded). Arguments are read from the saved user
//!   registers. Per-syscall `syscalls/sys_enter_*` tracepoints cost the host less, but closing
//!   each attachment waits for an RCU grace period under a global mutex (3.5-7 s for ~100).
//!   fentry/fexit/LSM programs are refused (EPERM under lockdown) and kprobes are not built in,
//!   so there is no `bpf_d_path`; relative paths are resolved by walking dentries in BPF.
//! - Isolation without a start-up race: [`cgroup::RunCgroup`] creates `<v2 root>/minify-…`
//!   before the container exists; Docker is given it as `CgroupParent`, and BPF keeps only tasks
//!   whose v2 cgroup at that directory's level has that directory's inode as id. That id is
//!   the v2 one even on a v1 host, and host processes never match.
//! - runc's own setup runs inside the cgroup with host paths (/var/lib/docker/overlay2/…)
//!   before pivot_root: its events are dropped by comm (`runc*`) except execve/execveat, since
//!   runc's init execs the entrypoint.
//! - The user path is read at sys_enter. When that read faults (page not resident, about one in
//!   a thousand) the event is parked and read again at the same thread's next syscall: the
//!   kernel faulted the page in meanwhile, and such a page is file-backed data nobody wrote
//!   (written pages stay resident), so it still holds the path. Exec is the exception, its old
//!   memory being gone by then: a faulted exec path counts as unresolved. Events are recorded at
//!   entry, so [`Access::result`] is `None`: a failed lookup (ENOENT) is reported like a hit,
//!   and the closure keeps only what exists in the image anyway.
//! - Relative paths (AT_FDCWD or a dirfd) are resolved in BPF at sys_enter: userspace /proc
//!   lookups lose the race with short-lived processes. The walk follows d_parent, crosses
//!   mounts through `struct mount`, stops at the task's fs root (so container paths come out
//!   relative to the container root) and emits up to 32 names; longer or failed walks are
//!   counted in [`Trace::unresolved_paths`] and not reported.
//! - The program dispatches on the syscall number, so the verifier runs once.
//! - The dentry walk is a `bpf_loop` callback: unrolled, it exceeded the verifier's 1M
//!   instruction budget.
//! - `fstat`-style calls (empty path + AT_EMPTY_PATH) are dropped in BPF; `execveat(fd, "",
//!   AT_EMPTY_PATH)` reports the path of the file behind fd.
//! - Detaching a raw tracepoint returns before the kernel frees the program: it goes after an
//!   RCU grace period (0.1-0.3 s measured), also when minify has exited by then.
//! - Ring-buffer reservation failures are counted per CPU and reported as
//!   [`Trace::lost_events`]; a healthy run reports 0.
//! - Syscall numbers are recorded by the program, after the cgroup filter, and
//!   named with the x86_64 table in [`syscall_names`]. The set includes runc's own setup calls
//!   (it runs in the cgroup), so it is a superset of what the app needs.

mod syscall_names;

pub use syscall_names::syscall_name;

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::programs::RawTracePoint;
use aya::{Ebpf, EbpfLoader};

use super::cgroup::{self, RunCgroup};
use super::{Access, AccessKind, ContainerHooks, Sensor, Trace};
use crate::{sys, Error, Result};

static BPF_OBJECT: &[u8] = minify_sensor::BPF_OBJECT;

// Program names start with `minify_` so leftovers are easy to spot in `bpftool prog show`.
const ENTER_PROGRAM: &str = "minify_enter";
/// Read-only globals of the BPF object naming the target cgroup.
const TARGET_CGROUP_GLOBAL: &str = "minify_target_cgroup";
const TARGET_LEVEL_GLOBAL: &str = "minify_target_level";
const EVENTS_MAP: &str = "minify_events";
const COUNTERS_MAP: &str = "minify_counters";
const SYSCALLS_MAP: &str = "minify_syscalls";

/// The BPF side does not wake the reader per event (that cost a context switch per traced
/// syscall) but only when 1 MiB is waiting: the reader drains, pauses `READER_PAUSE_MS` so that
/// a busy app's events are taken in batches, then waits up to `READER_POLL_MS` for data or a
/// stop request ([`sys::StopSignal`] wakes it at once).
const READER_PAUSE_MS: u64 = 10;
const READER_POLL_MS: i32 = 100;

/// Indices of the per-CPU counters in `minify_counters` (ebpf/minify_abi.h).
use layout::{COUNT_REFETCHED, LOST_PENDING, LOST_RINGBUF};

/// Layout of `struct event` in ebpf/trace.bpf.c, its kinds and flags: generated by build.rs from
/// ebpf/minify_abi.h, whose offsets trace.bpf.c checks against the struct at compile time.
mod layout {
    pub use minify_sensor::abi::*;

    pub const PID_TGID: usize = EVENT_PID_TGID;
    pub const KIND: usize = EVENT_KIND;
    pub const FLAGS: usize = EVENT_FLAGS;
    pub const PATH_LEN: usize = EVENT_PATH_LEN;
    pub const COMP_COUNT: usize = EVENT_COMP_COUNT;
    pub const COMP_LEN: usize = EVENT_COMP_LEN;
    pub const COMM: usize = EVENT_COMM;
    pub const PATH: usize = EVENT_PATH;
    pub const COMPS: usize = EVENT_COMPS;
    pub const EV_UNRESOLVED: u32 = EV_PATH_FAULT | EV_TRUNCATED | EV_WALK_FAILED;
}

/// A running eBPF recording of one run's cgroup. See the module docs for how it works.
pub struct EbpfSensor {
    cgroup: Option<RunCgroup>,
    /// Holds the loaded, attached programs; dropping it detaches and unloads them.
    programs: Option<Ebpf>,
    counters: Option<PerCpuArray<MapData, u64>>,
    syscalls: Option<Array<MapData, u8>>,
    reader: Option<JoinHandle<ReaderOutput>>,
    stop_reader: Arc<sys::StopSignal>,
}

impl std::fmt::Debug for EbpfSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfSensor")
            .field("cgroup", &self.cgroup)
            .field("running", &self.reader.is_some())
            .finish()
    }
}

#[derive(Default)]
struct ReaderOutput {
    accesses: Vec<Access>,
    unresolved_paths: u64,
}

impl EbpfSensor {
    /// Creates the run's cgroup (`minify-<run_name>` unless `run_name` already starts with
    /// `minify-`), loads and attaches the BPF programs and starts draining events.
    pub fn start(run_name: &str) -> Result<EbpfSensor> {
        check_privileges()?;
        let cgroup_name = if run_name.starts_with(cgroup::NAME_PREFIX) {
            run_name.to_string()
        } else {
            format!("{}{run_name}", cgroup::NAME_PREFIX)
        };
        let run_cgroup = RunCgroup::create(&cgroup_name)?;
        let (cgroup_id, cgroup_level) = (run_cgroup.id(), run_cgroup.level());

        // From here on, `sensor`'s Drop releases whatever was set up if a later step fails.
        let mut sensor = EbpfSensor {
            cgroup: Some(run_cgroup),
            programs: None,
            counters: None,
            syscalls: None,
            reader: None,
            stop_reader: Arc::new(
                sys::StopSignal::new()
                    .map_err(Error::io("creating the eBPF reader's stop signal"))?,
            ),
        };

        let mut bpf = EbpfLoader::new()
            .override_global(TARGET_CGROUP_GLOBAL, &cgroup_id, true)
            .override_global(TARGET_LEVEL_GLOBAL, &cgroup_level, true)
            .load(BPF_OBJECT)
            .map_err(sensor_error("loading the BPF object failed"))?;

        let events: RingBuf<MapData> = RingBuf::try_from(
            bpf.take_map(EVENTS_MAP)
                .ok_or_else(|| missing(EVENTS_MAP))?,
        )
        .map_err(sensor_error("opening the event ring buffer"))?;
        sensor.counters = Some(
            PerCpuArray::try_from(
                bpf.take_map(COUNTERS_MAP)
                    .ok_or_else(|| missing(COUNTERS_MAP))?,
            )
            .map_err(sensor_error("opening the event counters"))?,
        );
        sensor.syscalls = Some(
            Array::try_from(
                bpf.take_map(SYSCALLS_MAP)
                    .ok_or_else(|| missing(SYSCALLS_MAP))?,
            )
            .map_err(sensor_error("opening the syscall map"))?,
        );

        // The reader runs before attaching so that no early event waits for it.
        let stop = Arc::clone(&sensor.stop_reader);
        sensor.reader = Some(
            std::thread::Builder::new()
                .name(format!("ebpf-reader-{cgroup_name}"))
                .spawn(move || read_events(events, &stop))
                .map_err(Error::io("starting the eBPF reader thread"))?,
        );

        let tracepoint: &mut RawTracePoint = bpf
            .program_mut(ENTER_PROGRAM)
            .ok_or_else(|| missing(ENTER_PROGRAM))?
            .try_into()
            .map_err(sensor_error(format!(
                "program {ENTER_PROGRAM} is not a raw tracepoint"
            )))?;
        tracepoint.load().map_err(sensor_error(format!(
            "the kernel rejected BPF program {ENTER_PROGRAM}"
        )))?;
        // The link stays owned by the program: dropping `bpf` detaches it.
        tracepoint
            .attach("sys_enter")
            .map_err(sensor_error("attaching to raw tracepoint sys_enter failed"))?;
        sensor.programs = Some(bpf);
        Ok(sensor)
    }

    /// The run's cgroup v2 directory (tests put processes in it via `cgroup.procs`).
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup.as_ref().map(RunCgroup::unified_dir)
    }

    /// The cgroup name, e.g. `minify-1234`.
    pub fn cgroup_name(&self) -> Option<&str> {
        self.cgroup.as_ref().map(RunCgroup::name)
    }

    /// Detaches, drains and releases everything; returns the trace. Safe to call twice
    /// (the second call returns an empty trace).
    fn stop(&mut self) -> Result<Trace> {
        // Detach and unload first so nothing new arrives, then let the reader drain the rest.
        drop(self.programs.take());
        self.stop_reader.raise();
        let output = match self.reader.take() {
            Some(handle) => handle.join().map_err(|_| Error::Sensor {
                message: "the eBPF reader thread panicked".into(),
                hint: "This is a bug in minify".into(),
            })?,
            None => ReaderOutput::default(),
        };

        let mut trace = Trace {
            sensor: "ebpf".into(),
            accesses: output.accesses,
            unresolved_paths: output.unresolved_paths,
            ..Trace::default()
        };
        if let Some(counters) = self.counters.take() {
            let total = |index: u32| -> u64 {
                counters
                    .get(&index, 0)
                    .map_or(0, |per_cpu| per_cpu.iter().sum::<u64>())
            };
            trace.lost_events = total(LOST_RINGBUF) + total(LOST_PENDING);
            trace.refetched_paths = total(COUNT_REFETCHED);
        }
        if let Some(syscalls) = self.syscalls.take() {
            for (nr, seen) in syscalls.iter().enumerate() {
                if matches!(seen, Ok(flag) if flag != 0) {
                    let nr = nr as u32;
                    trace.syscalls.insert(
                        syscall_name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string),
                    );
                }
            }
        }
        if let Some(mut run_cgroup) = self.cgroup.take() {
            run_cgroup.remove()?;
        }
        Ok(trace)
    }
}

impl Sensor for EbpfSensor {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn container_hooks(&self) -> ContainerHooks {
        ContainerHooks {
            cgroup_parent: self.cgroup.as_ref().map(RunCgroup::docker_parent),
            ..ContainerHooks::default()
        }
    }

    fn finish(mut self: Box<Self>) -> Result<Trace> {
        self.stop()
    }
}

impl Drop for EbpfSensor {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!("releasing the eBPF sensor: {error}");
        }
    }
}

fn check_privileges() -> Result<()> {
    let needed = [
        (sys::CAP_BPF, "CAP_BPF"),
        (sys::CAP_PERFMON, "CAP_PERFMON"),
        (sys::CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ];
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(cap, _)| !sys::has_capability(*cap))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Sensor {
        message: format!(
            "missing {} (running as uid {})",
            missing.join(", "),
            sys::effective_uid()
        ),
        hint: "Run as root, or grant CAP_BPF + CAP_PERFMON (BPF tracepoints) and CAP_SYS_ADMIN \
               (cgroups)"
            .into(),
    })
}

fn bpf_hint() -> String {
    "The sensor needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN), a kernel with BTF \
     (/sys/kernel/btf/vmlinux), raw tracepoints, BPF ring buffers and BTF task pointers (Linux 5.11+); \
     run with RUST_LOG=debug for the verifier log"
        .into()
}

fn missing(what: &str) -> Error {
    Error::Sensor {
        message: format!("{what} is missing from the embedded BPF object"),
        hint: "This is a build problem: rebuild minify".into(),
    }
}

/// aya's error for a step of starting the sensor, typed, with what minify was doing.
fn sensor_error<E: std::error::Error + Send + Sync + 'static>(
    context: impl Into<String>,
) -> impl FnOnce(E) -> Error {
    let context = context.into();
    move |e| Error::Kernel {
        context,
        source: Box::new(e),
        hint: bpf_hint(),
    }
}

/// Drains the ring buffer until `stop` is set, then once more.
fn read_events(mut events: RingBuf<MapData>, stop: &sys::StopSignal) -> ReaderOutput {
    let mut output = ReaderOutput::default();
    let mut seen: HashSet<Access> = HashSet::new();
    // Exact repeats carry no information and can be millions in a busy run (nginx opens its
    // index page per request): they are recognised on their raw bytes, before decoding, which
    // was most of the reader's CPU time under load.
    let mut seen_raw: HashSet<Box<[u8]>> = HashSet::new();
    let mut key = Vec::new();
    loop {
        let stopping = stop.is_raised();
        while let Some(item) = events.next() {
            let keyed = significant_bytes(&item, &mut key).is_some();
            if keyed && seen_raw.contains(key.as_slice()) {
                continue;
            }
            match decode_event(&item) {
                Decoded::Access(access) => {
                    if keyed {
                        seen_raw.insert(key.as_slice().into());
                    }
                    if seen.insert(access.clone()) {
                        output.accesses.push(access);
                    }
                }
                Decoded::Unresolved => output.unresolved_paths += 1,
                Decoded::Ignored => {}
            }
        }
        if stopping {
            return output;
        }
        std::thread::sleep(std::time::Duration::from_millis(READER_PAUSE_MS));
        if let Err(e) = stop.wait_readable(events.as_fd(), READER_POLL_MS) {
            tracing::warn!("waiting on the eBPF ring buffer: {e}");
            std::thread::sleep(std::time::Duration::from_millis(READER_POLL_MS as u64));
        }
    }
}

#[derive(Debug, PartialEq)]
enum Decoded {
    Access(Access),
    /// An event whose path could not be read or resolved completely.
    Unresolved,
    /// Not the app's business (runc's setup) or malformed.
    Ignored,
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Puts into `key` the bytes of an event that decoding reads: the per-CPU buffer the BPF side
/// builds events in is reused, so the rest of the path area and unused component lengths
/// hold leftovers of earlier events.
fn significant_bytes(bytes: &[u8], key: &mut Vec<u8>) -> Option<()> {
    use layout::*;
    key.clear();
    let path_len = usize::from(read_u16(bytes, PATH_LEN)?).min(PATH_AREA);
    let comp_count = usize::from(read_u16(bytes, COMP_COUNT)?).min(MAX_COMPONENTS);
    let comps_len: usize = (0..comp_count)
        .map(|index| read_u16(bytes, COMP_LEN + 2 * index).map(usize::from))
        .sum::<Option<usize>>()?;
    key.extend_from_slice(bytes.get(..COMP_LEN + 2 * comp_count)?);
    key.extend_from_slice(bytes.get(COMM..COMM + COMM_LEN)?);
    key.extend_from_slice(bytes.get(PATH..PATH + path_len)?);
    key.extend_from_slice(bytes.get(COMPS..COMPS + comps_len)?);
    Some(())
}

fn decode_event(bytes: &[u8]) -> Decoded {
    decode_event_checked(bytes).unwrap_or(Decoded::Ignored)
}

fn decode_event_checked(bytes: &[u8]) -> Option<Decoded> {
    use layout::*;
    let pid_tgid = read_u64(bytes, PID_TGID)?;
    let kind = match read_u32(bytes, KIND)? {
        KIND_OPEN => AccessKind::Open,
        KIND_EXEC => AccessKind::Exec,
        KIND_STAT => AccessKind::Stat,
        KIND_ACCESS => AccessKind::Access,
        KIND_READLINK => AccessKind::Readlink,
        KIND_LOOKUP => AccessKind::Lookup,
        _ => return None,
    };
    let flags = read_u32(bytes, FLAGS)?;
    let comm_bytes = bytes.get(COMM..COMM + COMM_LEN)?;
    let comm_end = comm_bytes.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
    let comm = String::from_utf8_lossy(&comm_bytes[..comm_end]).into_owned();

    // runc's setup (before pivot_root, host paths) runs in the cgroup too; only its final
    // exec of the entrypoint belongs to the app.
    if comm.starts_with("runc") && kind != AccessKind::Exec {
        return Some(Decoded::Ignored);
    }
    if flags & EV_UNRESOLVED != 0 {
        return Some(Decoded::Unresolved);
    }

    let path_len = usize::from(read_u16(bytes, PATH_LEN)?).min(PATH_AREA);
    let user_path = bytes.get(PATH..PATH + path_len)?;
    let path = if flags & (EV_RELATIVE | EV_FD_IS_PATH) != 0 {
        let comp_count = usize::from(read_u16(bytes, COMP_COUNT)?).min(MAX_COMPONENTS);
        let mut components = Vec::with_capacity(comp_count);
        let mut offset = COMPS;
        for index in 0..comp_count {
            let len = usize::from(read_u16(bytes, COMP_LEN + 2 * index)?);
            components.push(bytes.get(offset..offset + len)?);
            offset += len;
        }
        // BPF walks leaf to root; the path reads root to leaf.
        let mut joined = Vec::with_capacity(offset - COMPS + user_path.len() + comp_count + 1);
        for component in components.iter().rev() {
            joined.push(b'/');
            joined.extend_from_slice(component);
        }
        if flags & EV_RELATIVE != 0 {
            joined.push(b'/');
            joined.extend_from_slice(user_path);
        } else if joined.is_empty() {
            joined.push(b'/');
        }
        joined
    } else {
        user_path.to_vec()
    };
    Some(Decoded::Access(Access {
        path: String::from_utf8_lossy(&path).into_owned(),
        kind,
        pid: (pid_tgid >> 32) as u32,
        comm,
        result: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::layout::*;
    use super::*;

    fn raw_event(
        kind: u32,
        flags: u32,
        comm: &str,
        path: &str,
        comps_leaf_first: &[&str],
    ) -> Vec<u8> {
        let mut bytes = vec![0u8; COMPS + 2048];
        bytes[PID_TGID..PID_TGID + 8].copy_from_slice(&((42u64 << 32) | 43).to_ne_bytes());
        bytes[KIND..KIND + 4].copy_from_slice(&kind.to_ne_bytes());
        bytes[FLAGS..FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
        bytes[PATH_LEN..PATH_LEN + 2].copy_from_slice(&(path.len() as u16).to_ne_bytes());
        bytes[COMP_COUNT..COMP_COUNT + 2]
            .copy_from_slice(&(comps_leaf_first.len() as u16).to_ne_bytes());
        bytes[COMM..COMM + comm.len()].copy_from_slice(comm.as_bytes());
        bytes[PATH..PATH + path.len()].copy_from_slice(path.as_bytes());
        let mut offset = COMPS;
        for (i, comp) in comps_leaf_first.iter().enumerate() {
            bytes[COMP_LEN + 2 * i..COMP_LEN + 2 * i + 2]
                .copy_from_slice(&(comp.len() as u16).to_ne_bytes());
            bytes[offset..offset + comp.len()].copy_from_slice(comp.as_bytes());
            offset += comp.len();
        }
        bytes.truncate(offset);
        bytes
    }

    fn access(decoded: Decoded) -> Access {
        match decoded {
            Decoded::Access(a) => a,
            other => panic!("expected an access, got {other:?}"),
        }
    }

    #[test]
    fn absolute_path_is_taken_as_is() {
        let a = access(decode_event(&raw_event(
            KIND_OPEN,
            0,
            "cat",
            "/etc/hostname",
            &[],
        )));
        assert_eq!(a.path, "/etc/hostname");
        assert_eq!(a.kind, AccessKind::Open);
        assert_eq!((a.pid, a.result, a.comm.as_str()), (42, None, "cat"));
    }

    #[test]
    fn relative_path_is_joined_to_reversed_components() {
        let event = raw_event(KIND_STAT, EV_RELATIVE, "sh", "../x", &["share", "usr"]);
        assert_eq!(access(decode_event(&event)).path, "/usr/share/../x");
        let at_root = raw_event(KIND_STAT, EV_RELATIVE, "sh", "x", &[]);
        assert_eq!(access(decode_event(&at_root)).path, "/x");
    }

    #[test]
    fn fd_exec_reports_the_file_itself() {
        let event = raw_event(KIND_EXEC, EV_FD_IS_PATH, "app", "", &["app", "bin"]);
        let a = access(decode_event(&event));
        assert_eq!((a.path.as_str(), a.kind), ("/bin/app", AccessKind::Exec));
    }

    #[test]
    fn runc_setup_is_ignored_but_its_exec_kept() {
        let setup = raw_event(KIND_OPEN, 0, "runc:[2:INIT]", "/var/lib/docker/x", &[]);
        assert_eq!(decode_event(&setup), Decoded::Ignored);
        let exec = raw_event(KIND_EXEC, 0, "runc:[2:INIT]", "/app", &[]);
        assert_eq!(access(decode_event(&exec)).path, "/app");
    }

    #[test]
    fn leftovers_of_earlier_events_do_not_defeat_deduplication() {
        let mut first = raw_event(KIND_OPEN, EV_RELATIVE, "nginx", "index.html", &["html"]);
        let mut second = first.clone();
        // What a longer earlier event leaves behind in the reused buffer.
        second[PATH + 20] = b'z';
        second[COMP_LEN + 2 * 5] = 7;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        significant_bytes(&first, &mut a).unwrap();
        significant_bytes(&second, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(decode_event(&first), decode_event(&second));
        // A different path or process is a different key.
        first[PATH] = b'X';
        significant_bytes(&first, &mut a).unwrap();
        assert_ne!(a, b);
        second[PID_TGID] ^= 1;
        significant_bytes(&second, &mut a).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn unresolved_and_malformed_events() {
        let truncated = raw_event(KIND_OPEN, EV_RELATIVE | EV_TRUNCATED, "sh", "x", &["a"]);
        assert_eq!(decode_event(&truncated), Decoded::Unresolved);
        assert_eq!(decode_event(&[0u8; 10]), Decoded::Ignored);
        let mut bad_kind = raw_event(KIND_OPEN, 0, "sh", "/x", &[]);
        bad_kind[KIND] = 99;
        assert_eq!(decode_event(&bad_kind), Decoded::Ignored);
        // A component length pointing past the end must not panic.
        let mut short = raw_event(KIND_OPEN, EV_RELATIVE, "sh", "x", &["abc"]);
        short.truncate(COMPS + 1);
        assert_eq!(decode_event(&short), Decoded::Ignored);
    }
}
