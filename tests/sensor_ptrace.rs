//! The in-container ptrace sensor with the real daemon: the wrapper alone (user, workdir, env,
//! exit codes, signals from `docker stop`, orphan reaping, relative paths), and `minify build`
//! with `--sensor ptrace` against `--sensor ebpf` on every fixture: both slim images must answer
//! the fixture's requests like the original, and their kept sets may differ only as explained.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use minify::sense::ptrace::{parse_log, PtraceSensor, SENSOR_BINARY, TRACE_LOG};

const BASE: &str = "minify-fixture/base:bookworm";

fn require_base() -> bool {
    require("the Docker daemon", docker_check())
        && require(&format!("fixture image {BASE}"), fixture_check(BASE))
}

/// Creates a container running `command` under the wrapper (as minify would), uploads the
/// sensor, and starts it detached. Returns the container name.
fn start_wrapped(cleanup: &mut Cleanup, create_flags: &[&str], command: &[&str]) -> String {
    let name = unique("minify-test-ptrace");
    cleanup.container(&name);
    let mut args = vec!["create", "--name", &name, "--entrypoint", SENSOR_BINARY];
    args.extend_from_slice(create_flags);
    args.push(BASE);
    args.push("--");
    args.extend_from_slice(command);
    docker(&args);
    copy_archive_into(&name, &PtraceSensor::upload_archive().unwrap());
    docker(&["start", &name]);
    name
}

fn wait_exit(name: &str, timeout: Duration) -> i64 {
    let until = Instant::now() + timeout;
    loop {
        let state = docker(&[
            "inspect",
            "--format",
            "{{.State.Running}} {{.State.ExitCode}}",
            name,
        ]);
        if let Some(code) = state.strip_prefix("false ") {
            return code.parse().unwrap();
        }
        assert!(
            Instant::now() < until,
            "{name} still runs after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_trace(name: &str) -> minify::sense::Trace {
    let out = Command::new("docker")
        .args(["cp", &format!("{name}:{TRACE_LOG}"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker cp of the trace failed");
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut log = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut log).unwrap();
    parse_log(&log).unwrap()
}

#[test]
fn wrapper_keeps_user_workdir_env_and_exit_code_and_resolves_relative_paths() {
    if !require_base() {
        return;
    }
    let mut cleanup = Cleanup::default();
    let name = start_wrapped(
        &mut cleanup,
        &[
            "--user",
            "65534:65534",
            "--workdir",
            "/usr/share",
            "-e",
            "FOO=bar",
        ],
        &[
            "sh",
            "-c",
            "echo \"$(id -u) $PWD $FOO\"; cat ../../etc/os-release >/dev/null; exit 3",
        ],
    );
    assert_eq!(wait_exit(&name, Duration::from_secs(20)), 3);
    let logs = docker(&["logs", &name]);
    assert_eq!(logs, "65534 /usr/share bar");
    let trace = read_trace(&name);
    let paths: BTreeSet<&str> = trace.accesses.iter().map(|a| a.path.as_str()).collect();
    assert!(
        paths.contains("/usr/share/../../etc/os-release"),
        "relative open not resolved against the cwd: {paths:?}"
    );
    assert!(paths.contains("/usr/bin/id"), "exec of a child not seen");
    assert!(trace.syscalls.contains("execve") && trace.syscalls.contains("openat"));
    assert!(
        !trace.syscalls.contains("ptrace"),
        "the wrapper's own calls are not the app's"
    );
}

#[test]
fn docker_stop_signal_reaches_the_app_and_its_exit_code_is_kept() {
    if !require_base() {
        return;
    }
    let mut cleanup = Cleanup::default();
    let name = start_wrapped(
        &mut cleanup,
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    let until = Instant::now() + Duration::from_secs(20);
    while !docker(&["logs", &name]).contains("ready") {
        assert!(Instant::now() < until, "the app never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopping = Instant::now();
    docker(&["stop", "-t", "10", &name]);
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "SIGTERM did not reach the app: docker waited for the SIGKILL"
    );
    assert_eq!(wait_exit(&name, Duration::from_secs(5)), 7);
    assert!(docker(&["logs", &name]).contains("got-term"));
}

#[test]
fn app_killed_by_a_signal_exits_128_plus_signal() {
    if !require_base() {
        return;
    }
    let mut cleanup = Cleanup::default();
    let name = start_wrapped(&mut cleanup, &[], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(wait_exit(&name, Duration::from_secs(20)), 137);
}

#[test]
fn orphans_reparented_to_the_wrapper_are_reaped() {
    if !require_base() {
        return;
    }
    let mut cleanup = Cleanup::default();
    // The inner shell exits at once; its background sleep is orphaned to PID 1 (the wrapper),
    // which must reap it: afterwards no process in the container is a zombie.
    let name = start_wrapped(
        &mut cleanup,
        &[],
        &[
            "sh",
            "-c",
            "sh -c 'sleep 0.2 &'; sleep 1.5; \
             echo zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l)",
        ],
    );
    assert_eq!(wait_exit(&name, Duration::from_secs(20)), 0);
    assert_eq!(docker(&["logs", &name]), "zombies=0");
}

/// Paths only the ptrace sensor reports, and why: the wrapper starts the app with execvp, which
/// tries every $PATH directory (failed execve, recorded) where runc's lookup only stats them
/// (runc's own events are dropped by the eBPF sensor), so the parents of those attempts are kept.
fn explained_ptrace_only(path: &str) -> bool {
    matches!(
        path,
        "/usr/local" | "/usr/local/bin" | "/usr/local/sbin" | "/usr/sbin" | "/sbin" | "/bin"
    )
}

fn build(image: &str, sensor: &str, tag: &str, dir: &std::path::Path) -> serde_json::Value {
    let report = dir.join(format!("{sensor}.json"));
    let (code, _, stderr) = minify(&[
        "build",
        image,
        "--sensor",
        sensor,
        "--tag",
        tag,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "minify build --sensor {sensor} {image}:\n{stderr}");
    assert!(
        stderr.contains(&format!("minify: sensor: {sensor} (")),
        "the choice is said on stderr:\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["sensor"]["name"], sensor);
    assert!(report["notes"]["sensor_choice"].is_string());
    report
}

fn kept(report: &serde_json::Value) -> BTreeSet<String> {
    report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["path"].as_str().unwrap().to_string())
        .collect()
}

/// Builds `image` with both sensors, checks both slim images against the original on the
/// fixture's requests, and compares the kept sets.
fn compare_sensors(fixture: &str, image: &str, port: u16) {
    let _serial = serial();
    if !require_fixture(image) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for sensor in ["ebpf", "ptrace"] {
        let tag = format!("minify-test/{fixture}-{sensor}.slim:{}", unique("t"));
        cleanup.image(&tag);
        reports.push((sensor, tag.clone(), build(image, sensor, &tag, dir.path())));
    }
    let original_port = run_published(&mut cleanup, image, port);
    wait_answering(original_port, Duration::from_secs(30));
    for (sensor, tag, report) in &reports {
        assert!(
            kept(report)
                .iter()
                .all(|p| !p.starts_with("/.minify-sensor")),
            "{sensor}: the sensor's own files must not reach the slim image"
        );
        let slim_port = run_published(&mut cleanup, tag, port);
        wait_answering(slim_port, Duration::from_secs(30));
        for path in request_list(fixture) {
            let original = get(original_port, &path).unwrap();
            let slim = get(slim_port, &path)
                .unwrap_or_else(|e| panic!("{sensor} slim {fixture} GET {path}: {e}"));
            assert_eq!(original, slim, "{sensor} slim {fixture} GET {path} differs");
        }
    }
    let (ebpf, ptrace) = (kept(&reports[0].2), kept(&reports[1].2));
    let ebpf_only: Vec<&String> = ebpf.difference(&ptrace).collect();
    let ptrace_only: Vec<&String> = ptrace.difference(&ebpf).collect();
    eprintln!(
        "{fixture}: ebpf kept {}, ptrace kept {}; only ebpf: {ebpf_only:?}; only ptrace: {ptrace_only:?}",
        ebpf.len(),
        ptrace.len()
    );
    // Lookups by processes that are not dumpable (nginx workers after setuid) cannot be read by
    // an unprivileged tracer; a directory or symlink hop seen only by eBPF is explained by that
    // when the ptrace run counted unresolved paths. A regular file missed is a real gap.
    let kinds: std::collections::BTreeMap<String, String> = reports[0].2["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["path"].as_str().unwrap().to_string(),
                k["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ptrace_unresolved = reports[1].2["sensor"]["unresolved_paths"]
        .as_u64()
        .unwrap_or(0);
    let missed_files: Vec<&&String> = ebpf_only
        .iter()
        .filter(|p| {
            let entry_only = matches!(
                kinds.get(p.as_str()).map(String::as_str),
                Some("dir" | "symlink")
            );
            !(entry_only && ptrace_unresolved > 0)
        })
        .collect();
    assert!(
        missed_files.is_empty(),
        "{fixture}: files the ptrace sensor missed: {missed_files:?} (unresolved by ptrace: {ptrace_unresolved})"
    );
    let unexplained: Vec<&&String> = ptrace_only
        .iter()
        .filter(|p| !explained_ptrace_only(p))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{fixture}: unexplained extra paths from ptrace: {unexplained:?}"
    );
}

#[test]
fn nginx_ptrace_and_ebpf_slim_images_both_answer_like_the_original() {
    compare_sensors("nginx", "minify-fixture/nginx:1", 80);
}

#[test]
fn python_non_root_ptrace_and_ebpf_slim_images_both_answer_like_the_original() {
    compare_sensors("python", "minify-fixture/python:1", 8000);
}

#[test]
fn static_scratch_ptrace_and_ebpf_slim_images_both_answer_like_the_original() {
    compare_sensors("static", "minify-fixture/static:1", 8080);
}

#[test]
fn unknown_sensor_is_a_usage_error_listing_the_choices() {
    // Which sensor auto picks is unit-tested in src/sense/ptrace.rs (remote daemon -> ptrace);
    // here the flag is checked before any daemon work (DOCKER_HOST points nowhere).
    let out = Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["build", "app:1", "--sensor", "fanotify"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ebpf, ptrace, auto"));
}
