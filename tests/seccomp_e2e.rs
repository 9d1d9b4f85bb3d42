//! End to end: the seccomp profile `minify build` writes, from either sensor. The slim nginx run
//! with `--security-opt seccomp=PROFILE` must answer its requests like the original, and a
//! syscall it never made must be refused with EPERM.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use minify::sense::ptrace::{PtraceSensor, SENSOR_BINARY};

const IMAGE: &str = "minify-fixture/nginx:1";

/// Runs the tracer binary (static, uploaded like minify does) as the entrypoint of `image`
/// under `security_opt`: its first act in the child is ptrace(PTRACE_TRACEME), a call nginx
/// never makes. Returns (exit code, output).
fn run_tracer(cleanup: &mut Cleanup, image: &str, security_opt: &str) -> (i64, String) {
    let name = unique("minify-test-seccomp");
    cleanup.container(&name);
    docker(&[
        "create",
        "--name",
        &name,
        "--security-opt",
        security_opt,
        "--entrypoint",
        SENSOR_BINARY,
        image,
        "-o",
        "/dev/null",
        "--",
        "/usr/sbin/nginx",
        "-v",
    ]);
    copy_archive_into(&name, &PtraceSensor::upload_archive().unwrap());
    let out = Command::new("docker")
        .args(["start", "-a", &name])
        .output()
        .unwrap();
    let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    (
        code.parse().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn profile_is_enforced(sensor: &str) {
    let _serial = serial();
    if !require_fixture(IMAGE) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("minify-test/seccomp-{sensor}.slim:{}", unique("t"));
    cleanup.image(&tag);
    let report = dir.path().join("report.json");
    let profile_path = dir.path().join("nginx.seccomp.json");
    let (code, _, stderr) = minify(&[
        "build",
        IMAGE,
        "--sensor",
        sensor,
        "--tag",
        &tag,
        "--report",
        report.to_str().unwrap(),
        "--seccomp",
        profile_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile_path).unwrap()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let allowed: Vec<&str> = profile["syscalls"][0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for needed in ["accept4", "epoll_wait", "sendfile", "execve"] {
        assert!(
            allowed.contains(&needed),
            "{sensor}: {needed} missing from {allowed:?}"
        );
    }
    assert!(!allowed.contains(&"ptrace"), "nginx never calls ptrace");

    // The slim image under the profile answers like the original.
    let seccomp_opt = format!("seccomp={}", profile_path.display());
    let name = unique("minify-test-seccomp-run");
    cleanup.container(&name);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--security-opt",
        &seccomp_opt,
        "-p",
        "127.0.0.1::80",
        &tag,
    ]);
    let mapping = docker(&["port", &name, "80/tcp"]);
    let slim_port: u16 = mapping
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let original_port = run_published(&mut cleanup, IMAGE, 80);
    wait_answering(original_port, Duration::from_secs(30));
    wait_answering(slim_port, Duration::from_secs(30));
    for path in request_list("nginx") {
        let original = get(original_port, &path).unwrap();
        let slim = get(slim_port, &path)
            .unwrap_or_else(|e| panic!("{sensor}: slim nginx under seccomp GET {path}: {e}"));
        assert_eq!(original, slim, "{sensor}: GET {path} differs under seccomp");
    }

    // A call outside the profile is refused with EPERM; the same binary under Docker's
    // default profile gets through, so the refusal is the generated profile's doing.
    let (code, output) = run_tracer(&mut cleanup, &tag, &seccomp_opt);
    assert_eq!(code, 127, "{output}");
    assert!(
        output.contains("PTRACE_TRACEME: Operation not permitted"),
        "{sensor}: ptrace was not refused with EPERM: {output}"
    );
    let (code, output) = run_tracer(&mut cleanup, &tag, "no-new-privileges");
    assert_eq!(
        code, 0,
        "control run under Docker's default profile: {output}"
    );
    assert!(output.contains("nginx version"), "{output}");
}

#[test]
fn slim_nginx_passes_under_the_ebpf_generated_profile_and_ptrace_is_refused() {
    profile_is_enforced("ebpf");
}

#[test]
fn slim_nginx_passes_under_the_ptrace_generated_profile_and_ptrace_is_refused() {
    profile_is_enforced("ptrace");
}
