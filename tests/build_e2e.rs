//! End to end: `minify build` on the project's fixture images with the real daemon and the real
//! eBPF sensor; the slim image must answer every request of the fixture's list exactly like the
//! original, keep its config, and nothing may be left behind.

mod common;

use std::time::Duration;

use common::*;

const CONFIG_FIELDS: [&str; 9] = [
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "StopSignal",
    "Healthcheck",
];

/// Builds the slim twin of `image`, then compares both images' answers to the fixture's requests.
fn build_and_compare(fixture: &str, image: &str, port: u16, max_size_ratio: f64) {
    let _serial = serial();
    if !require_fixture(image) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/{fixture}.slim:{}", unique("t"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let (code, _, stderr) = minify(&[
        "build",
        image,
        "--tag",
        &tag,
        "--report",
        report_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "minify build {image} failed:\n{stderr}");
    eprintln!("{stderr}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let source_size = report["source"]["size"].as_u64().unwrap();
    let slim_size = report["result"]["size"].as_u64().unwrap();
    let ratio = slim_size as f64 / source_size as f64;
    eprintln!(
        "{fixture}: {source_size} -> {slim_size} bytes ({:.1}%)",
        ratio * 100.0
    );
    assert!(
        ratio < max_size_ratio,
        "{fixture}: slim is {:.1}% of the original",
        ratio * 100.0
    );
    assert_eq!(report["sensor"]["lost_events"], 0, "the sensor lost events");
    assert!(
        report["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["error"].is_null()),
        "a probe failed"
    );
    assert!(
        report["kept"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| !k["reasons"].as_array().unwrap().is_empty()),
        "every kept path says why"
    );

    // The slim image keeps the source's config.
    let config = |img: &str| -> serde_json::Value {
        serde_json::from_str(&docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config}}",
            img,
        ]))
        .unwrap()
    };
    let (original_config, slim_config) = (config(image), config(&tag));
    for field in CONFIG_FIELDS {
        assert_eq!(
            original_config[field], slim_config[field],
            "config field {field} differs"
        );
    }

    let original_port = run_published(&mut cleanup, image, port);
    let slim_port = run_published(&mut cleanup, &tag, port);
    wait_answering(original_port, Duration::from_secs(30));
    wait_answering(slim_port, Duration::from_secs(30));
    for path in request_list(fixture) {
        let original = get(original_port, &path).unwrap();
        let slim =
            get(slim_port, &path).unwrap_or_else(|e| panic!("slim {fixture} GET {path}: {e}"));
        assert_eq!(
            original.status, slim.status,
            "{fixture} GET {path}: status differs"
        );
        assert!(
            original.body == slim.body,
            "{fixture} GET {path}: body differs"
        );
    }
    drop(cleanup);
    assert_eq!(leftover_containers(), "", "minify left containers behind");
}

#[test]
fn nginx_slim_answers_like_the_original_below_ten_percent_size() {
    build_and_compare("nginx", "minify-fixture/nginx:1", 80, 0.10);
}

#[test]
fn python_slim_answers_like_the_original() {
    build_and_compare("python", "minify-fixture/python:1", 8000, 0.5);
}

#[test]
fn static_scratch_slim_answers_like_the_original() {
    build_and_compare("static", "minify-fixture/static:1", 8080, 1.01);
}

#[test]
fn missing_image_is_a_clear_error_with_exit_code_3() {
    if !require("the Docker daemon", docker_check()) {
        return;
    }
    let (code, _, stderr) = minify(&[
        "build",
        "minify-test/does-not-exist:nope",
        "--report",
        "/tmp/minify-unused.json",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("was not found"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_flags_are_rejected_before_any_daemon_work() {
    // DOCKER_HOST points nowhere: a usage error must come first anyway.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["build", "app:1", "--tag", "Not A Tag"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid image reference"));
}

#[test]
fn unreachable_daemon_is_a_clear_error_with_exit_code_3() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["build", "app:1", "--report", "/tmp/minify-unused.json"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Docker daemon"),
        "{stderr}"
    );
}

/// Builds a throwaway image from the base fixture with the given Dockerfile lines.
fn derived_image(cleanup: &mut Cleanup, lines: &str) -> Option<String> {
    if !require_fixture("minify-fixture/base:bookworm") {
        return None;
    }
    let name = format!("minify-test/derived:{}", unique("d"));
    let dockerfile = format!("FROM minify-fixture/base:bookworm\n{lines}\n");
    let mut child = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &name, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "docker build of a derived image failed"
    );
    cleanup.image(&name);
    Some(name)
}

#[test]
fn app_crashing_before_ready_shows_its_last_log_lines() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived_image(
        &mut cleanup,
        "EXPOSE 80\nCMD [\"sh\", \"-c\", \"echo boom-before-ready; exit 3\"]",
    ) else {
        return;
    };
    let (code, _, stderr) = minify(&[
        "build",
        &image,
        "--report",
        "/tmp/minify-unused.json",
        "--ready-timeout",
        "20",
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("boom-before-ready"), "{stderr}");
    assert!(stderr.contains("code 3"), "{stderr}");
    assert_eq!(leftover_containers(), "");
    assert!(
        leftover_cgroups().is_empty(),
        "cgroups left: {:?}",
        leftover_cgroups()
    );
}

#[test]
fn image_without_ports_is_traced_for_continue_after_and_still_works() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived_image(
        &mut cleanup,
        "CMD [\"sh\", \"-c\", \"grep PRETTY /etc/os-release; sleep 30\"]",
    ) else {
        return;
    };
    let tag = format!("minify-test/noports.slim:{}", unique("t"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (code, _, stderr) = minify(&[
        "build",
        &image,
        "--tag",
        &tag,
        "--continue-after",
        "3",
        "--stop-timeout",
        "1",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("exposes no TCP ports"), "{stderr}");
    let original = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "grep PRETTY /etc/os-release",
    ]);
    let slim = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        &tag,
        "-c",
        "grep PRETTY /etc/os-release",
    ]);
    assert_eq!(original, slim);
    // The slim image holds the shell and grep it used, but nothing it did not (ls, apt).
    let probe = |path: &str| {
        docker(&[
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            &tag,
            "-c",
            &format!("if [ -e {path} ]; then echo present; else echo absent; fi"),
        ])
    };
    assert_eq!(probe("/usr/bin/grep"), "present");
    assert_eq!(probe("/usr/bin/ls"), "absent");
    assert_eq!(probe("/usr/bin/apt"), "absent");
}

#[test]
fn ctrl_c_during_a_build_leaves_no_container_cgroup_or_bpf_program() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args([
            "build",
            "minify-fixture/nginx:1",
            "--continue-after",
            "120",
            "--tag",
            "minify-test/ctrlc.slim:x",
        ])
        .args(["--report", report.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Wait until minify's container runs, then interrupt.
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while containers_of(pid.as_raw() as u32).is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "minify never started its container"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(leftover_containers(), "", "container left after Ctrl-C");
    let left = leftover_cgroups();
    assert!(left.is_empty(), "cgroups left after Ctrl-C: {left:?}");
    assert!(
        !image_exists("minify-test/ctrlc.slim:x"),
        "an interrupted build must not produce an image"
    );
    assert_no_bpf_programs_left("after Ctrl-C");
}

/// Waits (up to 5 s) until no BPF program of minify's is loaded: detached raw tracepoints free
/// their programs after an RCU grace period.
fn assert_no_bpf_programs_left(when: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let progs = std::process::Command::new("bpftool")
            .args(["prog", "show"])
            .output()
            .unwrap();
        let progs = String::from_utf8_lossy(&progs.stdout).into_owned();
        if !progs.contains("minify_") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "BPF programs left {when}:\n{progs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", image])
        .trim()
        .to_string()
}

#[test]
fn interrupts_at_a_fixed_spread_of_moments_leave_nothing_behind() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let source_id = image_id("minify-fixture/nginx:1");
    // A fixed schedule (ms after start, signal) covering start-up, sensor start, container
    // create/start, probing and the run-on: failures reproduce.
    let schedule = [
        (30, nix::sys::signal::Signal::SIGTERM),
        (150, nix::sys::signal::Signal::SIGINT),
        (400, nix::sys::signal::Signal::SIGTERM),
        (800, nix::sys::signal::Signal::SIGINT),
        (1500, nix::sys::signal::Signal::SIGTERM),
        (2500, nix::sys::signal::Signal::SIGHUP),
        (4000, nix::sys::signal::Signal::SIGINT),
    ];
    for (delay_ms, signal) in schedule {
        let temp_before = minify_temp_dirs();
        let tag = format!("minify-test/intr.slim:{}", unique("i"));
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
            .args(["build", "minify-fixture/nginx:1", "--continue-after", "6"])
            .args(["--tag", &tag, "--report", report.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(delay_ms));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(130),
            "{signal} after {delay_ms} ms: {stderr}"
        );
        assert_nothing_left(
            &format!("{signal} after {delay_ms} ms"),
            pid,
            &tag,
            &source_id,
            &temp_before,
        );
    }
}

/// What an interrupted build (minify process `pid`, slim tag `tag`) must not leave: containers
/// (looked for 2 s later, for a create the daemon finishes late), cgroups, BPF programs, the
/// slim image, temp dirs beyond `temp_before`; and the source image must be unchanged.
fn assert_nothing_left(
    when: &str,
    pid: u32,
    tag: &str,
    source_id: &str,
    temp_before: &std::collections::BTreeSet<String>,
) {
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        containers_of(pid),
        Vec::<String>::new(),
        "{when}: containers left"
    );
    let left = leftover_cgroups();
    assert!(left.is_empty(), "{when}: cgroups {left:?}");
    assert_no_bpf_programs_left(&format!("after {when}"));
    assert!(!image_exists(tag), "{when} left the slim image {tag}");
    let new_temp: Vec<_> = minify_temp_dirs()
        .difference(temp_before)
        .cloned()
        .collect();
    assert!(new_temp.is_empty(), "{when} left temp dirs {new_temp:?}");
    assert_eq!(image_id("minify-fixture/nginx:1"), source_id);
}

/// minify's temp dirs (spooled images, slim archives) now in the system temp dir.
fn minify_temp_dirs() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("minify-build-") || n.starts_with("minify-image-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The schedule above ends inside the container's run; this one follows the build itself: the
/// signal goes out the moment minify logs that a late phase starts (cleanup, image read,
/// closure, write, load, verification of the slim image), so every phase after the run is hit
/// whatever this machine's speed. Each must end in exit 130 with no container, cgroup, BPF
/// program, temp dir or slim image left, and the source image unchanged.
#[test]
fn interrupts_in_each_phase_after_the_run_leave_no_image_or_container() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    use nix::sys::signal::Signal;
    use std::io::BufRead as _;
    let source_id = image_id("minify-fixture/nginx:1");
    let schedule = [
        ("cleaning up", Signal::SIGTERM),
        ("reading image", Signal::SIGINT),
        ("computing closure", Signal::SIGHUP),
        ("writing slim image", Signal::SIGTERM),
        ("loading slim image", Signal::SIGINT),
        ("verifying slim image", Signal::SIGTERM),
    ];
    for (phase, signal) in schedule {
        let temp_before = minify_temp_dirs();
        let tag = format!("minify-test/late.slim:{}", unique("l"));
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.json");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
            .args(["build", "minify-fixture/nginx:1", "--verify"])
            .args(["--tag", &tag, "--report", report.to_str().unwrap()])
            .env("RUST_LOG", "minify=debug")
            .env("NO_COLOR", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let marker = format!("\"{phase}\"");
        let mut log = String::new();
        let mut sent = false;
        for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            if !sent && line.contains("phase") && line.contains(&marker) {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
                sent = true;
            }
            log.push_str(&line);
            log.push('\n');
        }
        let status = child.wait().unwrap();
        assert!(sent, "the build never logged phase {phase:?}:\n{log}");
        assert_eq!(status.code(), Some(130), "{signal} at {phase:?}:\n{log}");
        assert_nothing_left(
            &format!("{signal} at {phase:?}"),
            pid,
            &tag,
            &source_id,
            &temp_before,
        );
    }
}

#[test]
fn a_killed_build_leaves_a_container_that_minify_gc_removes() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["build", "minify-fixture/nginx:1", "--continue-after", "60"])
        .args(["--tag", "minify-test/killed.slim:x", "--report"])
        .arg(&report)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while containers_of(pid).is_empty() {
        assert!(std::time::Instant::now() < until, "no container started");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !containers_of(pid).is_empty(),
        "SIGKILL cannot clean up: the container stays until a sweep"
    );
    let (code, _, stderr) = minify(&["gc"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("removed container"), "{stderr}");
    assert_eq!(containers_of(pid), Vec::<String>::new());
    assert!(leftover_cgroups().is_empty(), "{:?}", leftover_cgroups());
    assert_no_bpf_programs_left("after SIGKILL and gc");
}

/// Builds `image` with a short run and returns (exit code, stderr, report).
fn build_for_stop(image: &str, tag: &str) -> (i32, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (code, _, stderr) = minify(&[
        "build",
        image,
        "--tag",
        tag,
        "--continue-after",
        "2",
        "--stop-timeout",
        "20",
        "--report",
        report.to_str().unwrap(),
    ]);
    let report = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    (code, stderr, report)
}

fn stop_ms(report: &serde_json::Value) -> u64 {
    report["timings"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "stop")
        .and_then(|p| p[1].as_u64())
        .expect("a stop phase in the report")
}

/// A PID 1 that handles SIGTERM gets it and its grace period, and what it reads while shutting
/// down (a file nothing else touches) is in the slim image: cutting the grace short would lose it.
#[test]
fn a_pid1_that_handles_sigterm_gets_its_grace_and_keeps_what_shutdown_reads() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived_image(
        &mut cleanup,
        "RUN echo bye > /usr/share/misc/read-on-shutdown\n\
         CMD [\"sh\", \"-c\", \"trap 'sleep 1; cat /usr/share/misc/read-on-shutdown; exit 0' TERM; \
         while :; do sleep 0.2; done\"]",
    ) else {
        return;
    };
    let tag = format!("minify-test/graceful.slim:{}", unique("g"));
    cleanup.image(&tag);
    let (code, stderr, report) = build_for_stop(&image, &tag);
    assert_eq!(code, 0, "{stderr}");
    let stop = report["notes"]["stop"].as_str().unwrap_or_default();
    assert!(stop.starts_with("PID 1 catches SIGTERM"), "{stop}");
    // The handler sleeps a second before reading: the stop waited for it.
    assert!(
        stop_ms(&report) >= 1000,
        "stop took {} ms",
        stop_ms(&report)
    );
    let kept = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        &tag,
        "-c",
        "test -e /usr/share/misc/read-on-shutdown && echo kept || echo lost",
    ]);
    assert_eq!(kept.trim(), "kept");
}

/// A PID 1 with no SIGTERM handler (sh here, like python, node or php as PID 1) would sit out
/// the whole grace period: it is killed at once, and the report says so.
#[test]
fn a_pid1_that_ignores_sigterm_is_killed_at_once() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived_image(
        &mut cleanup,
        "CMD [\"sh\", \"-c\", \"while :; do sleep 0.2; done\"]",
    ) else {
        return;
    };
    let tag = format!("minify-test/ignores.slim:{}", unique("k"));
    cleanup.image(&tag);
    let (code, stderr, report) = build_for_stop(&image, &tag);
    assert_eq!(code, 0, "{stderr}");
    let stop = report["notes"]["stop"].as_str().unwrap_or_default();
    assert_eq!(stop, "PID 1 does not catch SIGTERM: killed at once");
    assert!(stderr.contains("killed at once"), "{stderr}");
    // Far below the 20 s grace it would otherwise have waited (the figure is in the bench).
    assert!(
        stop_ms(&report) < 10_000,
        "stop took {} ms",
        stop_ms(&report)
    );
}

/// The slim image's dpkg database lists exactly the packages the report says are (partly)
/// kept; the report counts every package `dpkg-query` sees installed in the fat image; the
/// slim database still reads with dpkg's own tools; a package whose files all went is absent.
/// The SPDX SBOM (`--sbom-format spdx`; CycloneDX is checked by xray_e2e) is schema-valid and
/// lists those packages, each with its kept files, whose checksums are the slim image's bytes.
#[test]
fn the_slim_images_package_database_lists_only_what_it_holds() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/dpkg.slim:{}", unique("p"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("r.json");
    let sbom_path = dir.path().join("sbom.json");
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/nginx:1",
        "--tag",
        &tag,
        "--report",
        report_path.to_str().unwrap(),
        "--sbom",
        sbom_path.to_str().unwrap(),
        "--sbom-format",
        "spdx",
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    // The SBOM is written while the slim image is verified (issue #11: overlap).
    let phases = report["timings"]["phases"].to_string();
    assert!(
        phases.contains("sbom (while verifying)") && phases.contains("verify"),
        "{phases}"
    );
    let packages = &report["packages"];
    let installed: std::collections::BTreeSet<String> = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "dpkg-query",
        "minify-fixture/nginx:1",
        "-W",
        "-f",
        "${db:Status-Status} ${Package}\\n",
    ])
    .lines()
    .filter_map(|l| l.strip_prefix("installed "))
    .map(String::from)
    .collect();
    assert_eq!(packages["total"].as_u64(), Some(installed.len() as u64));
    let fate = |kept: &str| -> std::collections::BTreeSet<String> {
        packages["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kept"] == kept)
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let gone = fate("gone");
    assert!(gone.contains("apt"), "apt is not used by nginx: {gone:?}");
    assert!(stderr.contains(&format!(
        "removed {} of {} Debian packages",
        gone.len(),
        installed.len()
    )));

    // dpkg's own reader on the slim database (copied out: the slim image has no dpkg).
    let admin = dir.path().join("dpkg");
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    let container = docker(&["create", &tag]);
    let status = docker(&["cp", &format!("{container}:/var/lib/dpkg/status"), "-"]);
    docker(&["rm", &container]);
    let mut archive = tar::Archive::new(status.as_bytes());
    let mut member = archive.entries().unwrap().next().unwrap().unwrap();
    member.unpack(admin.join("status")).unwrap();
    let listed = std::process::Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(["-W", "-f", "${Package}\\n"])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "dpkg-query on the slim database: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: std::collections::BTreeSet<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(String::from)
        .collect();
    let mut kept = fate("whole");
    kept.extend(fate("partly"));
    assert_eq!(listed, kept);
    assert!(listed.contains("nginx-light") || listed.iter().any(|p| p.starts_with("nginx")));
    assert!(listed.is_disjoint(&gone));

    // The SBOM: valid SPDX 2.3, one package per kept package, with Debian purls.
    let bom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    let errors = sbom_errors(&bom);
    assert!(
        errors.is_empty(),
        "SBOM invalid against SPDX 2.3: {errors:#?}"
    );
    let mut broken = bom.clone();
    broken["packages"][1]["filesAnalyzed"] = "yes".into();
    assert!(!sbom_errors(&broken).is_empty(), "the schema check checks");
    let packages = bom["packages"].as_array().unwrap();
    assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
    let names: std::collections::BTreeSet<String> = packages[1..]
        .iter()
        .map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
            assert!(purl.starts_with("pkg:deb/debian/"), "{purl}");
            assert!(purl.contains("distro=debian-12"), "{purl}");
            p["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names, kept);
    // nginx's own binary is one of its package's files, with the slim image's checksum.
    let files: std::collections::BTreeMap<&str, &serde_json::Value> = bom["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["SPDXID"].as_str().unwrap(), f))
        .collect();
    let nginx = packages
        .iter()
        .find(|p| {
            p["hasFiles"].as_array().is_some_and(|ids| {
                ids.iter()
                    .any(|id| files[id.as_str().unwrap()]["fileName"] == "./usr/sbin/nginx")
            })
        })
        .expect("a package holds /usr/sbin/nginx");
    assert!(
        nginx["name"].as_str().unwrap().starts_with("nginx"),
        "{nginx}"
    );
    assert!(nginx["packageVerificationCode"]["packageVerificationCodeValue"].is_string());
    let container = docker(&["create", &tag]);
    let out = std::process::Command::new("docker")
        .args(["cp", &format!("{container}:/usr/sbin/nginx"), "-"])
        .output()
        .unwrap();
    docker(&["rm", &container]);
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut member = archive.entries().unwrap().next().unwrap().unwrap();
    let mut binary = Vec::new();
    std::io::Read::read_to_end(&mut member, &mut binary).unwrap();
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&binary))
    };
    let listed = files
        .values()
        .find(|f| f["fileName"] == "./usr/sbin/nginx")
        .unwrap();
    assert_eq!(listed["checksums"][1]["algorithm"], "SHA256");
    assert_eq!(listed["checksums"][1]["checksumValue"], sha256.as_str());
}

/// `--ci` gates on what the slim image still holds: nginx's keeps no shell, package manager or
/// setuid file and a handful of packages, so a limit of 1 package fails (exit 6) and the rest pass.
#[test]
fn ci_gates_on_packages_and_attack_surface() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/gates.slim:{}", unique("g"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "minify-fixture/nginx:1",
            "--tag",
            &tag,
            "--report",
            report.to_str().unwrap(),
            "--ci",
            "--no-shell",
            "--no-setuid",
            "--no-package-manager",
        ];
        args.extend_from_slice(extra);
        minify(&args)
    };
    let (code, _, stderr) = build(&["--max-packages", "100"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("noShell") && stderr.contains("noPackageManager"),
        "{stderr}"
    );
    assert!(stderr.contains("attack surface: shells"), "{stderr}");
    let (code, _, stderr) = build(&["--max-packages", "1"]);
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("maxPackages"), "{stderr}");
    let (code, _, stderr) = minify(&["build", "minify-fixture/nginx:1", "--no-shell"]);
    assert_eq!(
        code, 2,
        "--no-shell without --ci is a usage error: {stderr}"
    );
}

/// One member of a layer tar, everything a filesystem would see of it.
#[derive(Debug, PartialEq, Eq)]
struct Member {
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    xattrs: Vec<(String, Vec<u8>)>,
    content: Vec<u8>,
}

/// The members of the one layer of `image`, read from its `docker save` archive, by path.
fn slim_layer_members(image: &str) -> std::collections::BTreeMap<String, Member> {
    use std::io::Read;
    let out = std::process::Command::new("docker")
        .args(["save", image])
        .output()
        .expect("docker save runs");
    assert!(out.status.success(), "docker save {image} failed");
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for entry in tar::Archive::new(out.stdout.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{image}: a slim image has one layer");
    let layer = &files[layers[0].as_str().unwrap()];
    let mut members = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(layer.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let header = entry.header().clone();
        let mut xattrs = Vec::new();
        if let Ok(Some(extensions)) = entry.pax_extensions() {
            for ext in extensions.flatten() {
                if let Ok(key) = ext.key() {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let member = Member {
            kind: header.entry_type().as_byte(),
            mode: header.mode().unwrap(),
            uid: header.uid().unwrap(),
            gid: header.gid().unwrap(),
            mtime: header.mtime().unwrap(),
            link: entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned()),
            xattrs,
            content,
        };
        assert!(
            members.insert(path.clone(), member).is_none(),
            "{image}: {path} twice in the layer"
        );
    }
    members
}

/// Issue #11's "must hold": the slim image written from the daemon's layer store and the one
/// written from `docker save` are the same layer, member by member (paths, types, modes,
/// owners, mtimes, link targets, xattrs, contents).
#[test]
fn slim_layer_is_identical_through_the_layer_store_and_through_docker_save() {
    let _serial = serial();
    let image = "minify-fixture/nginx:1";
    if !require_fixture(image) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let mut layers = Vec::new();
    for (label, extra) in [("store", None), ("save", Some("--no-layer-store"))] {
        let tag = format!("minify-test/nginx.slim:{}", unique(label));
        cleanup.image(&tag);
        let report = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec![
            "build",
            image,
            "--tag",
            &tag,
            "--report",
            report.path().to_str().unwrap(),
        ];
        args.extend(extra);
        let (code, _, stderr) = minify(&args);
        assert_eq!(code, 0, "minify {args:?}:\n{stderr}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
        let source = report["notes"]["image_source"].as_str().unwrap_or_default();
        assert_eq!(
            source.starts_with("daemon layer store"),
            extra.is_none(),
            "{label}: read from {source:?}"
        );
        layers.push(slim_layer_members(&tag));
    }
    let (store, save) = (&layers[0], &layers[1]);
    let only = |a: &std::collections::BTreeMap<String, Member>,
                b: &std::collections::BTreeMap<String, Member>| {
        a.keys()
            .filter(|k| !b.contains_key(*k))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        only(store, save).is_empty() && only(save, store).is_empty(),
        "only through the layer store: {:?}; only through docker save: {:?}",
        only(store, save),
        only(save, store)
    );
    let differ: Vec<&String> = store
        .iter()
        .filter(|(path, member)| save[*path] != **member)
        .map(|(path, _)| path)
        .collect();
    assert!(differ.is_empty(), "members that differ: {differ:?}");
    assert!(
        store.len() > 50,
        "the nginx slim layer has {} members",
        store.len()
    );
}
