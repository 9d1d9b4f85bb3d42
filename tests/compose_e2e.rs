//! `minify build --compose-file F --target-compose-svc app`: the app of the compose fixture
//! answers only when its redis dependency does. The build starts redis (healthy) on a project
//! network, traces the app there, verifies the slim image on the same network, and leaves no
//! container, network or volume behind (nor touches the external volume); the slim image then
//! answers like the original beside a redis of the test's own. Without the dependency the build
//! fails with the app's own words.

mod common;

use common::*;
use std::time::Duration;

const APP: &str = "minify-fixture/compose-app:1";
const COMPOSE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/integration/fixtures/compose/compose.yaml"
);

/// Networks and volumes minify made for compose runs of process `pid` (their names start with
/// the run name, which holds the pid).
fn compose_resources_of(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for kind in ["network", "volume"] {
        let listed = docker(&[
            kind,
            "ls",
            "-q",
            "--filter",
            "label=dev.minify.project",
            "--format",
            "{{.Name}}",
        ]);
        found.extend(
            listed
                .lines()
                .filter(|n| n.split(['-', '_']).any(|part| part == pid.to_string()))
                .map(|n| format!("{kind} {n}")),
        );
    }
    found
}

fn build(tag: &str, report: &std::path::Path, volume: &str, extra: &[&str]) -> (i32, String, u32) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args([
            "build",
            "--compose-file",
            COMPOSE,
            "--target-compose-svc",
            "app",
        ])
        .args(["--tag", tag, "--report", report.to_str().unwrap()])
        .args(extra)
        .env("MINIFY_SHARED_VOLUME", volume)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    let out = out.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    )
}

#[test]
fn a_compose_target_builds_verifies_beside_its_redis_and_leaves_nothing() {
    let _serial = serial();
    if !require_fixture(APP) || !require_fixture("minify-fixture/redis:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/compose.slim:{}", unique("c"));
    cleanup.image(&tag);
    let volume = unique("minify-test-shared");
    docker(&["volume", "create", &volume]);
    cleanup.volume(&volume);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("r.json");

    let (code, stderr, pid) = build(&tag, &report_path, &volume, &["--verify"]);
    let left = compose_resources_of(pid);
    let containers = containers_of(pid);
    let volume_kept = std::process::Command::new("docker")
        .args(["volume", "inspect", &volume])
        .output()
        .unwrap()
        .status
        .success();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("compose: redis: service_healthy after"),
        "{stderr}"
    );
    assert!(containers.is_empty(), "containers left: {containers:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        volume_kept,
        "the external volume {volume} is the user's: never removed"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let probes: Vec<(String, u64)> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["request"].as_str().unwrap().to_string(),
                p["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        probes,
        [
            ("GET /".to_string(), 200),
            ("GET /greeting".to_string(), 200)
        ],
        "the crawl reached the route that reads from redis, and redis answered"
    );
    assert_eq!(report["verification"]["differences"], serde_json::json!([]));
    assert!(
        report["result"]["size"].as_u64().unwrap() * 3 < report["source"]["size"].as_u64().unwrap()
    );

    // With the same dependency, of the test's own, the slim image answers like the original.
    let network = unique("minify-test-net");
    docker(&["network", "create", &network]);
    // Removed after the containers on it: a guard of its own, dropped first, left it behind.
    cleanup.network(&network);
    let redis = unique("minify-test-redis");
    cleanup.container(&redis);
    docker(&[
        "run",
        "-d",
        "--name",
        &redis,
        "--network",
        &network,
        "--network-alias",
        "redis",
        "minify-fixture/redis:1",
    ]);
    let mut answers = Vec::new();
    for image in [APP, tag.as_str()] {
        let name = unique("minify-test-app");
        cleanup.container(&name);
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &network,
            "-e",
            "GREETING=hello from redis",
            "-p",
            "127.0.0.1::8000",
            image,
        ]);
        let mapping = docker(&["port", &name, "8000/tcp"]);
        let port: u16 = mapping
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        wait_answering(port, Duration::from_secs(30));
        answers.push(["/", "/greeting"].map(|path| get(port, path).unwrap()));
        docker(&["rm", "-f", &name]);
    }
    assert_eq!(answers[0][1].status, 200);
    assert_eq!(answers[0][1].body, b"greeting: hello from redis\n");
    assert_eq!(
        answers[0], answers[1],
        "the slim image answers like the original"
    );
}

#[test]
fn without_its_dependency_the_app_is_not_ready_and_the_build_says_why() {
    let _serial = serial();
    if !require_fixture(APP) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("minify-test/compose-nodep.slim:{}", unique("n"));
    let mut cleanup = Cleanup::default();
    let volume = unique("minify-test-shared");
    docker(&["volume", "create", &volume]);
    cleanup.volume(&volume);
    let (code, stderr, pid) = build(
        &tag,
        &dir.path().join("r.json"),
        &volume,
        &["--dep-exclude-compose-svc", "redis"],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("cannot reach redis at redis:6379"),
        "{stderr}"
    );
    assert!(containers_of(pid).is_empty());
    assert!(
        compose_resources_of(pid).is_empty(),
        "{:?}",
        compose_resources_of(pid)
    );
    assert!(!image_exists(&tag));
}
