//! The eBPF sensor against the real kernel (no Docker needed for the first tests): processes put
//! into the sensor's cgroup are traced with their relative paths resolved, processes outside are
//! not, and finishing leaves no BPF program or cgroup behind.
//!
//! Needs root and a BTF kernel. Without them the tests print why and pass, except under
//! CI=true, where a missing facility is a failure.

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use minify::sense::ebpf::EbpfSensor;
use minify::sense::{cgroup, Access, AccessKind, Sensor, Trace};

/// bpftool's program list is global: tests that compare it must not overlap.
static KERNEL_LOCK: Mutex<()> = Mutex::new(());

const OUR_PROGRAMS: &[&str] = &["minify_enter"];

/// True when the test should go on; under CI a missing facility fails the test.
fn kernel_sensor_available(test: &str) -> bool {
    common::require(&format!("the eBPF sensor ({test})"), common::sensor_check())
}

fn unique_name(tag: &str) -> String {
    common::unique(&format!("minify-test-{tag}"))
}

/// Ids of loaded BPF programs carrying our program names.
fn our_program_ids() -> BTreeSet<u64> {
    let output = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .expect("bpftool runs");
    let programs: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("bpftool -j prints JSON");
    programs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| OUR_PROGRAMS.contains(&n))
        })
        .filter_map(|p| p["id"].as_u64())
        .collect()
}

/// Waits until none of `ours` is loaded any more: detaching a raw tracepoint frees its program
/// after an RCU grace period, not at once. Returns how long that took; panics after 10 s.
fn wait_unloaded(ours: &BTreeSet<u64>, what: &str) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let loaded = our_program_ids();
        if ours.is_disjoint(&loaded) {
            let waited = started.elapsed();
            eprintln!("{what}: programs freed after {waited:?}");
            return waited;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: our BPF programs are never unloaded: {ours:?} still in {loaded:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `program args` inside the sensor's cgroup and waits for it.
fn run_in_cgroup(cgroup_dir: &Path, program: &str, args: &[&str]) -> std::process::ExitStatus {
    let procs = CString::new(
        cgroup_dir
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("no NUL in a cgroup path");
    let mut command = Command::new(program);
    command.args(args).stdout(Stdio::null());
    // SAFETY: the closure only makes async-signal-safe libc calls on memory prepared before fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0" moves the writing process itself.
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.status().expect("the child starts")
}

fn find<'a>(trace: &'a Trace, kind: AccessKind, path: &str) -> Option<&'a Access> {
    trace
        .accesses
        .iter()
        .find(|a| a.kind == kind && a.path == path)
}

fn describe(trace: &Trace) -> String {
    trace
        .accesses
        .iter()
        .map(|a| {
            format!(
                "{:?} {} = {:?} ({} {})",
                a.kind, a.path, a.result, a.comm, a.pid
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn traces_only_the_cgroup_and_resolves_relative_paths() {
    if !kernel_sensor_available("traces_only_the_cgroup_and_resolves_relative_paths") {
        return;
    }
    let _serial = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let before = our_program_ids();

    // A directory on another mount when there is one, so the dirfd walk crosses a mount.
    let scratch_parent = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let scratch = tempfile::Builder::new()
        .prefix("minify-sensor-")
        .tempdir_in(scratch_parent)
        .unwrap();
    let scratch_dir: PathBuf = scratch.path().canonicalize().unwrap();
    std::fs::write(scratch_dir.join("dirfd_target"), b"x").unwrap();
    std::fs::write(scratch_dir.join("outsider_marker"), b"x").unwrap();

    let sensor = EbpfSensor::start(&unique_name("rel")).expect("the sensor starts");
    let cgroup_dir = sensor
        .cgroup_dir()
        .expect("the sensor has a cgroup")
        .to_path_buf();
    assert!(cgroup_dir.is_dir());
    let hooks = sensor.container_hooks();
    assert_eq!(
        hooks.cgroup_parent,
        Some(format!("/{}", sensor.cgroup_name().unwrap()))
    );
    let during = our_program_ids();
    let ours: BTreeSet<u64> = during.difference(&before).copied().collect();
    assert_eq!(
        ours.len(),
        OUR_PROGRAMS.len(),
        "our programs are loaded: {during:?} vs {before:?}"
    );

    // Busy outside the cgroup for the whole traced period.
    let outsider_path = scratch_dir.join("outsider_marker");
    let mut outsider = Command::new("sh")
        .args([
            "-c",
            &format!(
                "for i in 1 2 3 4 5 6 7 8 9 10; do cat {} >/dev/null; sleep 0.05; done",
                outsider_path.display()
            ),
        ])
        .spawn()
        .unwrap();

    let status = run_in_cgroup(
        &cgroup_dir,
        "/bin/sh",
        &[
            "-c",
            "cd /usr/share && cat ../../etc/hostname >/dev/null; ls doc >/dev/null; \
             test -e relative_missing; readlink -f /bin/sh; cd /proc && cat ./version >/dev/null",
        ],
    );
    assert!(status.success(), "the shell script ran: {status}");

    let python = "/usr/bin/python3";
    let python_ran = Path::new(python).exists();
    if python_ran {
        let script = format!(
            "import os\n\
             fd = os.open({dir:?}, os.O_RDONLY)\n\
             os.close(os.open('dirfd_target', os.O_RDONLY, dir_fd=fd))\n\
             assert os.access('dirfd_target', os.R_OK, dir_fd=fd)\n\
             os.access('/etc/passwd', os.R_OK)\n",
            dir = scratch_dir.display().to_string()
        );
        let status = run_in_cgroup(&cgroup_dir, python, &["-c", &script]);
        assert!(status.success(), "the python dirfd script ran: {status}");
    } else {
        eprintln!("{python} is missing: the dirfd case is not exercised");
    }
    outsider.wait().unwrap();

    let trace = Box::new(sensor).finish().expect("the sensor finishes");
    let all = describe(&trace);

    assert_eq!(trace.sensor, "ebpf");
    assert_eq!(trace.lost_events, 0, "no event lost");
    assert!(
        find(&trace, AccessKind::Open, "/etc/ld.so.cache").is_some(),
        "absolute open seen:\n{all}"
    );
    let relative_open = find(&trace, AccessKind::Open, "/usr/share/../../etc/hostname")
        .unwrap_or_else(|| panic!("relative open resolved against the cwd:\n{all}"));
    // Recorded at syscall entry: no return value.
    assert_eq!(relative_open.result, None);
    assert_eq!(relative_open.comm, "cat");
    assert!(
        trace.accesses.iter().any(|a| a.path == "/usr/share/doc"),
        "relative directory resolved:\n{all}"
    );
    let missing = trace
        .accesses
        .iter()
        .find(|a| a.path == "/usr/share/relative_missing")
        .unwrap_or_else(|| panic!("failed relative lookup reported:\n{all}"));
    assert!(matches!(
        missing.kind,
        AccessKind::Stat | AccessKind::Access
    ));
    assert!(
        find(&trace, AccessKind::Open, "/proc/./version").is_some(),
        "walk crosses into /proc:\n{all}"
    );
    assert!(
        trace
            .accesses
            .iter()
            .any(|a| a.kind == AccessKind::Exec && a.path.ends_with("/cat")),
        "exec of cat seen:\n{all}"
    );
    assert!(
        trace
            .accesses
            .iter()
            .any(|a| a.kind == AccessKind::Exec && a.path == "/bin/sh"),
        "exec of the traced program itself seen:\n{all}"
    );
    assert!(
        trace
            .accesses
            .iter()
            .any(|a| a.kind == AccessKind::Readlink),
        "readlink seen:\n{all}"
    );
    assert!(
        trace.accesses.iter().any(|a| a.kind == AccessKind::Stat),
        "stat seen:\n{all}"
    );
    if python_ran {
        let target = format!("{}/dirfd_target", scratch_dir.display());
        assert!(
            find(&trace, AccessKind::Open, &target).is_some(),
            "dirfd open resolved to {target}:\n{all}"
        );
        assert!(
            find(&trace, AccessKind::Access, &target).is_some(),
            "dirfd access resolved:\n{all}"
        );
        assert!(
            find(&trace, AccessKind::Access, "/etc/passwd").is_some(),
            "access seen:\n{all}"
        );
    }
    assert!(
        !trace
            .accesses
            .iter()
            .any(|a| a.path.contains("outsider_marker")),
        "nothing from the process outside the cgroup:\n{all}"
    );
    for name in ["execve", "openat", "readlink", "exit_group"] {
        assert!(
            trace.syscalls.contains(name),
            "syscall {name} recorded: {:?}",
            trace.syscalls
        );
    }
    eprintln!(
        "{} accesses, {} unresolved, {} syscalls",
        trace.accesses.len(),
        trace.unresolved_paths,
        trace.syscalls.len()
    );

    wait_unloaded(&ours, "finish");
    assert!(
        !cgroup_dir.exists(),
        "the cgroup {} is removed",
        cgroup_dir.display()
    );
}

#[test]
fn dropping_the_sensor_releases_everything() {
    if !kernel_sensor_available("dropping_the_sensor_releases_everything") {
        return;
    }
    let _serial = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let before = our_program_ids();
    let sensor = EbpfSensor::start(&unique_name("drop")).expect("the sensor starts");
    let cgroup_dir = sensor.cgroup_dir().unwrap().to_path_buf();
    let ours: BTreeSet<u64> = our_program_ids().difference(&before).copied().collect();
    assert_eq!(ours.len(), OUR_PROGRAMS.len());
    drop(sensor);
    wait_unloaded(&ours, "drop");
    assert!(!cgroup_dir.exists(), "cgroup removed on drop");
}

#[test]
fn stale_cgroups_without_processes_are_removed() {
    if !kernel_sensor_available("stale_cgroups_without_processes_are_removed") {
        return;
    }
    let name = unique_name("stale");
    let root = cgroup::unified_root().unwrap();
    let stale = root.join(&name);
    std::fs::create_dir(&stale).unwrap();
    std::fs::create_dir(stale.join("child")).unwrap();
    // The default age guard protects a run that is just starting.
    assert!(!cgroup::remove_stale(&name).unwrap().contains(&stale));
    assert!(stale.exists());
    let removed = cgroup::remove_stale_older_than(&name, Duration::ZERO).unwrap();
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!stale.exists());
}

const CONTAINER_APP: &str = r#"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    struct stat st;
    if (chdir("/data") != 0) return 2;
    int fd = open("sub/file.txt", O_RDONLY);
    if (fd < 0) return 3;
    close(fd);
    int dir = open("/data/sub", O_RDONLY | O_DIRECTORY);
    if (dir < 0) return 4;
    int viadir = openat(dir, "file.txt", O_RDONLY);
    if (viadir < 0) return 5;
    close(viadir);
    stat("missing_relative", &st);
    return 0;
}
"#;

#[test]
fn traces_a_real_container_with_container_paths() {
    if !kernel_sensor_available("traces_a_real_container_with_container_paths") {
        return;
    }
    if !(common::require("the Docker daemon", common::docker_check())
        && common::require(
            "gcc (static test binary)",
            common::tool_check("gcc", "--version"),
        ))
    {
        return;
    }
    let _serial = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());

    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
    std::fs::write(rootfs.join("data/sub/file.txt"), b"hello\n").unwrap();
    let source = work.path().join("app.c");
    std::fs::write(&source, CONTAINER_APP).unwrap();
    let gcc = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(rootfs.join("app"))
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "gcc -static: {}",
        String::from_utf8_lossy(&gcc.stderr)
    );

    let name = unique_name("docker");
    let image = format!("{name}:latest");
    let mut cleanup = common::Cleanup::default();
    cleanup.container(&name);
    cleanup.image(&image);
    let archive = work.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success(), "tar of the rootfs: {tar}");
    let import = Command::new("docker")
        .arg("import")
        .arg(&archive)
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&import.stderr)
    );

    let sensor = EbpfSensor::start(&name).expect("the sensor starts");
    let cgroup_parent = sensor
        .container_hooks()
        .cgroup_parent
        .expect("the eBPF sensor needs a cgroup parent");
    let run = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--name",
            &name,
            "--cgroup-parent",
            &cgroup_parent,
            &image,
            "/app",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "docker run: {} {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let cgroup_dir = sensor.cgroup_dir().unwrap().to_path_buf();
    let trace = Box::new(sensor).finish().expect("the sensor finishes");
    drop(cleanup);
    let all = describe(&trace);
    if std::env::var_os("MINIFY_TEST_DUMP").is_some() {
        eprintln!("{all}\nsyscalls: {:?}", trace.syscalls);
    }

    assert_eq!(trace.lost_events, 0);
    assert!(
        trace
            .accesses
            .iter()
            .any(|a| a.kind == AccessKind::Exec && a.path == "/app"),
        "the entrypoint exec is seen with its container path:\n{all}"
    );
    let relative_opens = trace
        .accesses
        .iter()
        .filter(|a| a.kind == AccessKind::Open && a.path == "/data/sub/file.txt")
        .count();
    assert!(
        relative_opens >= 1,
        "cwd- and dirfd-relative opens resolved inside the container:\n{all}"
    );
    assert!(
        find(&trace, AccessKind::Open, "/data/sub").is_some(),
        "absolute open seen:\n{all}"
    );
    assert!(
        find(&trace, AccessKind::Stat, "/data/missing_relative").is_some(),
        "relative stat of a missing file resolved inside the container:\n{all}"
    );
    assert!(
        !trace
            .accesses
            .iter()
            .any(|a| a.path.contains("/var/lib/docker")),
        "no host paths of runc's setup:\n{all}"
    );
    assert!(!cgroup_dir.exists(), "the cgroup is removed");
    for controller in ["memory", "pids", "cpu"] {
        let v1 = Path::new("/sys/fs/cgroup").join(controller).join(&name);
        assert!(!v1.exists(), "{} is removed", v1.display());
    }
}

#[test]
fn many_short_lived_processes_lose_nothing() {
    if !kernel_sensor_available("many_short_lived_processes_lose_nothing") {
        return;
    }
    let _serial = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    const PROCESSES: usize = 300;
    let started = std::time::Instant::now();
    let sensor = EbpfSensor::start(&unique_name("many")).expect("the sensor starts");
    let start_time = started.elapsed();
    let cgroup_dir = sensor.cgroup_dir().unwrap().to_path_buf();
    let script = format!(
        "cd /usr/share; i=0; while [ $i -lt {PROCESSES} ]; do cat ../../etc/hostname >/dev/null; i=$((i+1)); done"
    );
    let status = run_in_cgroup(&cgroup_dir, "/bin/sh", &["-c", &script]);
    assert!(status.success());
    let finishing = std::time::Instant::now();
    let trace = Box::new(sensor).finish().expect("the sensor finishes");
    let finish_time = finishing.elapsed();

    let cats: BTreeSet<u32> = trace
        .accesses
        .iter()
        .filter(|a| a.kind == AccessKind::Open && a.path == "/usr/share/../../etc/hostname")
        .map(|a| a.pid)
        .collect();
    // The shell may try several $PATH entries per command: count processes, not attempts.
    let execs = trace
        .accesses
        .iter()
        .filter(|a| a.kind == AccessKind::Exec && a.path.ends_with("/cat"))
        .map(|a| a.pid)
        .collect::<BTreeSet<u32>>()
        .len();
    eprintln!(
        "start {start_time:?}, finish {finish_time:?}, {} accesses, {} unresolved, {} lost",
        trace.accesses.len(),
        trace.unresolved_paths,
        trace.lost_events
    );
    assert_eq!(trace.lost_events, 0);
    assert_eq!(trace.unresolved_paths, 0);
    assert_eq!(
        cats.len(),
        PROCESSES,
        "every short-lived cat's relative open was resolved"
    );
    assert_eq!(execs, PROCESSES, "every exec of cat was seen");
}

/// A path whose page is not resident when the syscall starts cannot be read at sys_enter
/// (BPF may not fault): it must be read again at the thread's next syscall, not dropped.
/// The path string lives in a file mapping nobody has touched, as string constants in a
/// binary's read-only data do.
#[test]
fn path_in_an_untouched_page_is_read_at_the_next_syscall() {
    if !kernel_sensor_available("path_in_an_untouched_page_is_read_at_the_next_syscall") {
        return;
    }
    let _serial = KERNEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = tempfile::Builder::new()
        .prefix("minify-fault-")
        .tempdir()
        .unwrap();
    let target = scratch
        .path()
        .canonicalize()
        .unwrap()
        .join("opened_through_a_fault");
    std::fs::write(&target, b"x").unwrap();
    let holder = scratch.path().join("path_holder");
    let mut contents = target.clone().into_os_string().into_encoded_bytes();
    contents.push(0);
    std::fs::write(&holder, &contents).unwrap();

    let sensor = EbpfSensor::start(&unique_name("fault")).expect("the sensor starts");
    let cgroup_dir = sensor.cgroup_dir().unwrap().to_path_buf();
    let procs = CString::new(
        cgroup_dir
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let holder_c = CString::new(holder.into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: the child makes only async-signal-safe libc calls on memory prepared before
    // fork, and leaves with _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                libc::_exit(10);
            }
            libc::close(fd);
            let holder_fd = libc::open(holder_c.as_ptr(), libc::O_RDONLY);
            if holder_fd < 0 {
                libc::_exit(11);
            }
            // Mapped, never touched: no page table entry until the kernel faults it in.
            let mapped = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                holder_fd,
                0,
            );
            if mapped == libc::MAP_FAILED {
                libc::_exit(12);
            }
            let opened = libc::syscall(libc::SYS_openat, libc::AT_FDCWD, mapped, libc::O_RDONLY);
            // exit_group is the thread's next syscall.
            libc::_exit(if opened >= 0 { 0 } else { 13 });
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child opened the file through the mapping (status {status:#x})"
    );
    let trace = Box::new(sensor).finish().expect("the sensor finishes");
    let all = describe(&trace);
    let wanted = target.to_string_lossy();
    assert!(
        find(&trace, AccessKind::Open, &wanted).is_some(),
        "the open through an untouched page is reported:\n{all}"
    );
    assert!(
        trace.refetched_paths >= 1,
        "the first read faulted and the path was read again ({} refetched)",
        trace.refetched_paths
    );
    assert_eq!(trace.unresolved_paths, 0, "{all}");
    assert_eq!(trace.lost_events, 0);
}
