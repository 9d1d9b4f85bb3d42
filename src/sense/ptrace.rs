//! The in-container ptrace sensor: for daemons whose host minify cannot load BPF programs on
//! (remote `DOCKER_HOST`, Docker Desktop, CI runners without BPF rights).
//!
//! This module owns the host side: it embeds the static tracer built from
//! `sensor/ptrace_sensor.c` (by build.rs), asks for it to be uploaded into the created container
//! through the Docker archive API (no bind mount, so remote daemons work) and made the
//! entrypoint in front of the image's own entrypoint + cmd, and parses the log the tracer
//! leaves at [`TRACE_LOG`], read back through the same API after the container stops.
//!
//! The tracer records the same [`AccessKind`]s as the eBPF sensor, with relative paths resolved
//! through `/proc/PID/cwd` and `/proc/PID/fd/N`, and the syscall numbers the app made. Unlike
//! the eBPF sensor it does not see runc's own setup syscalls (runc is not its descendant), so
//! [`crate::seccomp`] adds those. What the app sees differently under it is listed at the top
//! of `sensor/ptrace_sensor.c` (PID 1 is the wrapper, TracerPid is set, set-user-ID binaries
//! do not elevate, `/.minify-sensor` exists). That directory is not in the source image, so the
//! closure never keeps it.

use std::collections::HashSet;
use std::io::Read;

use super::{ebpf::syscall_name, Access, AccessKind, ContainerHooks, Sensor, Trace};
use crate::docker::endpoint_is_local;
use crate::{Error, Result};

/// The static tracer binary.
static SENSOR_ELF: &[u8] = minify_sensor::PTRACE_SENSOR;

/// Directory the sensor lives in inside the container.
pub const SENSOR_DIR: &str = "/.minify-sensor";
/// The tracer, set as the container's entrypoint.
pub const SENSOR_BINARY: &str = "/.minify-sensor/sensor";
/// The tracer's findings, one line per distinct event (format: `sensor/ptrace_sensor.c`).
pub const TRACE_LOG: &str = "/.minify-sensor/trace.log";

const LOG_HEADER: &str = "minify-ptrace 1";

/// Which sensor `minify build` uses (`--sensor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SensorChoice {
    /// Host-side eBPF: needs a local daemon and root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).
    Ebpf,
    /// In-container ptrace wrapper: works with remote daemons and without BPF rights.
    Ptrace,
    /// eBPF when the daemon is local and BPF is permitted, else ptrace.
    #[default]
    Auto,
}

/// The sensor chosen for one run and why (for the report and stderr).
pub struct ChosenSensor {
    pub sensor: Box<dyn Sensor>,
    pub reason: String,
}

/// Starts the sensor `choice` asks for. `auto` tries eBPF only for a local daemon and falls
/// back to ptrace when eBPF cannot start (no root, no BPF rights, no tracefs, no cgroup v2),
/// saying why. A daemon that claims a local socket but runs in a VM (Docker Desktop) looks
/// local: there, pass `--sensor ptrace`.
pub fn start_sensor(
    choice: SensorChoice,
    endpoint: &str,
    run_name: &str,
    image: &crate::docker::ImageSummary,
) -> Result<ChosenSensor> {
    let ptrace = |reason: String| -> Result<ChosenSensor> {
        Ok(ChosenSensor {
            sensor: Box::new(PtraceSensor::new(&image.entrypoint, &image.cmd)?),
            reason,
        })
    };
    match choice {
        SensorChoice::Ebpf => Ok(ChosenSensor {
            sensor: Box::new(super::ebpf::EbpfSensor::start(run_name)?),
            reason: "chosen with --sensor ebpf".into(),
        }),
        SensorChoice::Ptrace => ptrace("chosen with --sensor ptrace".into()),
        SensorChoice::Auto if !endpoint_is_local(endpoint) => ptrace(format!(
            "auto: the daemon at {endpoint} is not local, so a host-side eBPF sensor cannot see \
             its containers"
        )),
        SensorChoice::Auto => match super::ebpf::EbpfSensor::start(run_name) {
            Ok(sensor) => Ok(ChosenSensor {
                sensor: Box::new(sensor),
                reason: "auto: the daemon is local and BPF is permitted".into(),
            }),
            Err(e @ (Error::Sensor { .. } | Error::Kernel { .. } | Error::Io { .. })) => {
                ptrace(format!("auto: the eBPF sensor could not start ({e})"))
            }
            Err(e) => Err(e),
        },
    }
}

/// Wraps one container's entrypoint in the in-container tracer.
#[derive(Debug)]
pub struct PtraceSensor {
    /// The image's entrypoint followed by its cmd: what the tracer starts.
    command: Vec<String>,
    trace: Option<Trace>,
}

impl PtraceSensor {
    /// A sensor for an image with this `Entrypoint` and `Cmd`. Fails if both are empty: Docker
    /// would not know what to run either.
    pub fn new(entrypoint: &[String], cmd: &[String]) -> Result<PtraceSensor> {
        let command: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
        if command.is_empty() {
            return Err(Error::InContainerSensor {
                message: "the image has neither an Entrypoint nor a Cmd, so there is no program \
                          to trace"
                    .into(),
            });
        }
        Ok(PtraceSensor {
            command,
            trace: None,
        })
    }

    /// The tracer binary as embedded (static x86_64 ELF).
    pub fn binary() -> &'static [u8] {
        SENSOR_ELF
    }

    /// The archive extracted at `/` of the created container: the sensor directory, the tracer
    /// (0755) and an empty, world-writable log, so that an image whose USER is not root can
    /// still write its findings.
    pub fn upload_archive() -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let dir = SENSOR_DIR.trim_start_matches('/');
        let entry = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(size);
            header
        };
        let io = |e: std::io::Error| Error::Io {
            context: "building the sensor upload archive".into(),
            source: e,
        };
        let mut header = entry(tar::EntryType::Directory, 0o755, 0);
        builder
            .append_data(&mut header, format!("{dir}/"), std::io::empty())
            .map_err(io)?;
        let mut header = entry(tar::EntryType::Regular, 0o755, SENSOR_ELF.len() as u64);
        builder
            .append_data(&mut header, format!("{dir}/sensor"), SENSOR_ELF)
            .map_err(io)?;
        let mut header = entry(tar::EntryType::Regular, 0o666, 0);
        builder
            .append_data(&mut header, format!("{dir}/trace.log"), std::io::empty())
            .map_err(io)?;
        builder.into_inner().map_err(io)
    }
}

impl Sensor for PtraceSensor {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn container_hooks(&self) -> ContainerHooks {
        let uploads = match PtraceSensor::upload_archive() {
            Ok(tar) => vec![("/".to_string(), tar)],
            Err(e) => {
                // In-memory tar writing cannot fail in practice; without the upload the
                // container fails to start and says why.
                tracing::warn!("building the sensor upload: {e}");
                Vec::new()
            }
        };
        ContainerHooks {
            cgroup_parent: None,
            entrypoint: Some(vec![SENSOR_BINARY.to_string(), "--".to_string()]),
            cmd: Some(self.command.clone()),
            uploads,
            results_path: Some(TRACE_LOG.to_string()),
        }
    }

    fn accept_results(&mut self, results_tar: Vec<u8>) -> Result<()> {
        let log = log_from_tar(&results_tar)?;
        self.trace = Some(parse_log(&log)?);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Trace> {
        self.trace.ok_or_else(|| Error::InContainerSensor {
            message: format!("its findings ({TRACE_LOG}) were never read back from the container"),
        })
    }
}

/// The content of the first regular file in `tar` (the Docker API wraps the one file asked
/// for in an archive).
fn log_from_tar(tar_bytes: &[u8]) -> Result<Vec<u8>> {
    let context = || format!("{TRACE_LOG} read back from the container");
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().map_err(Error::tar(context()))? {
        let mut entry = entry.map_err(Error::tar(context()))?;
        if entry.header().entry_type().is_file() {
            let mut log = Vec::new();
            entry.read_to_end(&mut log).map_err(Error::tar(context()))?;
            return Ok(log);
        }
    }
    Err(Error::Archive {
        context: context(),
        message: "the archive holds no file".into(),
    })
}

/// Parses the tracer's log (format: top of `sensor/ptrace_sensor.c`). Lines that do not parse
/// are counted as unresolved paths instead of failing the run: a log cut short by SIGKILL
/// ends in a partial line.
pub fn parse_log(log: &[u8]) -> Result<Trace> {
    let mut lines = log.split(|&b| b == b'\n');
    if lines.next() != Some(LOG_HEADER.as_bytes()) {
        return Err(Error::InContainerSensor {
            message: format!(
                "{TRACE_LOG} does not start with {LOG_HEADER:?}: the tracer did not run or could \
                 not write it (see the container's log)"
            ),
        });
    }
    let mut trace = Trace {
        sensor: "ptrace".into(),
        ..Trace::default()
    };
    let mut seen = HashSet::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        match parse_line(&fields) {
            Some(Line::Access(access)) => {
                if seen.insert(access.clone()) {
                    trace.accesses.push(access);
                }
            }
            Some(Line::Syscall(nr)) => {
                trace.syscalls.insert(
                    syscall_name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string),
                );
            }
            Some(Line::Unresolved(count)) => trace.unresolved_paths += count,
            Some(Line::ExitCode(code)) => tracing::debug!("the traced app exited with {code}"),
            None => trace.unresolved_paths += 1,
        }
    }
    Ok(trace)
}

enum Line {
    Access(Access),
    Syscall(u32),
    Unresolved(u64),
    ExitCode(i64),
}

fn parse_line(fields: &[&[u8]]) -> Option<Line> {
    let number = |field: &[u8]| std::str::from_utf8(field).ok()?.parse::<i64>().ok();
    match fields {
        [b"n", nr] => Some(Line::Syscall(u32::try_from(number(nr)?).ok()?)),
        [b"u", count] => Some(Line::Unresolved(u64::try_from(number(count)?).ok()?)),
        [b"x", code] => Some(Line::ExitCode(number(code)?)),
        [kind, result, pid, comm, path] => {
            let kind = match *kind {
                b"o" => AccessKind::Open,
                b"e" => AccessKind::Exec,
                b"s" => AccessKind::Stat,
                b"a" => AccessKind::Access,
                b"r" => AccessKind::Readlink,
                b"l" => AccessKind::Lookup,
                _ => return None,
            };
            let path = unescape(path)?;
            if !path.starts_with('/') {
                return None;
            }
            Some(Line::Access(Access {
                path,
                kind,
                pid: u32::try_from(number(pid)?).ok()?,
                comm: unescape(comm)?,
                result: Some(number(result)?),
            }))
        }
        _ => None,
    }
}

/// Undoes the tracer's `\ooo` escapes.
fn unescape(field: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            let digits = field.get(i + 1..i + 4)?;
            let text = std::str::from_utf8(digits).ok()?;
            out.push(u8::from_str_radix(text, 8).ok()?);
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_become_accesses_syscalls_and_counts() {
        let log = b"minify-ptrace 1\nn\t59\ne\t0\t7\tnginx\t/usr/sbin/nginx\n\
                    o\t-2\t7\tnginx\t/etc/ld.so.preload\nn\t257\n\
                    s\t0\t8\tsh\t/tmp/a\\011b\\134c\nu\t3\nx\t0\n";
        let trace = parse_log(log).unwrap();
        assert_eq!(trace.sensor, "ptrace");
        assert_eq!(trace.accesses.len(), 3);
        assert_eq!(trace.accesses[0].path, "/usr/sbin/nginx");
        assert_eq!(trace.accesses[0].kind, AccessKind::Exec);
        assert_eq!(trace.accesses[1].result, Some(-2));
        assert_eq!(trace.accesses[2].path, "/tmp/a\tb\\c");
        assert_eq!(
            (trace.accesses[2].pid, trace.accesses[2].comm.as_str()),
            (8, "sh")
        );
        assert_eq!(
            trace
                .syscalls
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["execve", "openat"]
        );
        assert_eq!(trace.unresolved_paths, 3);
    }

    #[test]
    fn log_cut_short_by_sigkill_keeps_what_was_written() {
        let log = b"minify-ptrace 1\no\t3\t7\tcat\t/etc/hostname\no\t3\t7\tca";
        let trace = parse_log(log).unwrap();
        assert_eq!(trace.accesses.len(), 1);
        assert_eq!(trace.unresolved_paths, 1, "the partial line is counted");
    }

    #[test]
    fn empty_log_means_the_tracer_never_ran() {
        assert!(matches!(
            parse_log(b""),
            Err(Error::InContainerSensor { .. })
        ));
    }

    #[test]
    fn garbage_lines_do_not_panic() {
        let log = b"minify-ptrace 1\no\t3\t7\tcat\trelative\nz\nn\t-1\ne\tx\t1\tc\t/p\n\
                    s\t0\t1\tc\t/bad\\9\no\t0\t1\tc\t/trailing\\1\n";
        let trace = parse_log(log).unwrap();
        assert!(trace.accesses.is_empty());
        assert_eq!(trace.unresolved_paths, 6);
    }

    #[test]
    fn auto_picks_ptrace_for_a_remote_daemon_and_says_why() {
        let image = crate::docker::ImageSummary {
            id: "sha256:x".into(),
            size: 0,
            repo_tags: Vec::new(),
            exposed_ports: Vec::new(),
            entrypoint: Vec::new(),
            cmd: vec!["/app".into()],
        };
        for endpoint in ["tcp://10.0.0.5:2376", "ssh://user@host"] {
            let chosen = start_sensor(SensorChoice::Auto, endpoint, "minify-t", &image).unwrap();
            assert_eq!(chosen.sensor.name(), "ptrace");
            assert!(chosen.reason.contains("not local"), "{}", chosen.reason);
        }
    }

    #[test]
    fn image_without_entrypoint_or_cmd_is_refused() {
        assert!(matches!(
            PtraceSensor::new(&[], &[]),
            Err(Error::InContainerSensor { .. })
        ));
    }

    #[test]
    fn hooks_wrap_entrypoint_then_cmd_and_upload_the_tracer() {
        let sensor = PtraceSensor::new(
            &["/docker-entrypoint.sh".into()],
            &["nginx".into(), "-g".into(), "daemon off;".into()],
        )
        .unwrap();
        let hooks = sensor.container_hooks();
        assert_eq!(
            hooks.entrypoint.unwrap(),
            [SENSOR_BINARY.to_string(), "--".to_string()]
        );
        assert_eq!(
            hooks.cmd.unwrap(),
            ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
        );
        assert_eq!(hooks.results_path.as_deref(), Some(TRACE_LOG));
        let (dir, tar_bytes) = &hooks.uploads[0];
        assert_eq!(dir, "/");
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.header().size().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries[0].0, ".minify-sensor/");
        assert_eq!(entries[1].0, ".minify-sensor/sensor");
        assert_eq!(entries[1].1, 0o755);
        assert_eq!(entries[1].2, SENSOR_ELF.len() as u64);
        assert_eq!(entries[2], (".minify-sensor/trace.log".into(), 0o666, 0));
        // A static ELF: runs in images without a libc (FROM scratch).
        assert_eq!(&SENSOR_ELF[..4], b"\x7fELF");
    }

    #[test]
    fn results_tar_from_the_daemon_is_parsed() {
        let log = b"minify-ptrace 1\no\t3\t7\tcat\t/etc/hostname\n";
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(log.len() as u64);
        header.set_mode(0o666);
        header.set_cksum();
        builder
            .append_data(&mut header, "trace.log", &log[..])
            .unwrap();
        let mut sensor = Box::new(PtraceSensor::new(&["app".into()], &[]).unwrap());
        sensor
            .accept_results(builder.into_inner().unwrap())
            .unwrap();
        let trace = sensor.finish().unwrap();
        assert_eq!(trace.accesses[0].path, "/etc/hostname");
    }

    #[test]
    fn finish_without_results_is_an_error() {
        let sensor = Box::new(PtraceSensor::new(&["app".into()], &[]).unwrap());
        assert!(sensor.finish().is_err());
    }
}
