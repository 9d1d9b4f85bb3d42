//! End to end for probe files, keep/drop rules and `--verify`, on fixture images with the real
//! daemon and sensor: routes a crawler cannot reach, non-HTTP servers, and proof that a slim
//! image missing a file fails verification with a readable difference.

mod common;

use common::*;

fn probe_file(name: &str) -> String {
    format!("{}/probes/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn report_of(dir: &tempfile::TempDir) -> (String, impl Fn() -> serde_json::Value) {
    let path = dir.path().join("report.json");
    let text = path.to_str().unwrap().to_string();
    (text, move || {
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    })
}

#[test]
fn python_probe_file_drives_post_and_template_routes_and_verify_passes() {
    let _serial = serial();
    if !require_fixture("minify-fixture/python:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/py.slim:{}", unique("p"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let (report, read_report) = report_of(&dir);
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/python:1",
        "--tag",
        &tag,
        "--report",
        &report,
        "--probes",
        &probe_file("python.yaml"),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report = read_report();
    let requests: Vec<&str> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["request"].as_str().unwrap())
        .collect();
    assert!(requests.contains(&"POST /api/items"), "{requests:?}");
    assert!(requests.contains(&"GET /items/2.html"), "{requests:?}");
    let exec = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "exec")
        .expect("the exec probe ran");
    assert_eq!(exec["exit_code"], 0);
    let verification = &report["verification"];
    assert_eq!(verification["differences"].as_array().unwrap().len(), 0);
    assert_eq!(
        verification["probes"].as_array().unwrap().len(),
        requests.len()
    );
    // The template the unlinked route reads was kept because the probe file named the route.
    let kept: Vec<&str> = report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["path"].as_str().unwrap())
        .collect();
    assert!(
        kept.contains(&"/app/templates/item.html"),
        "template not kept"
    );
}

#[test]
fn redis_tcp_and_host_command_probes_verify() {
    let _serial = serial();
    if !require_fixture("minify-fixture/redis:1") {
        return;
    }
    if !require(
        "redis-cli on the host (integration/setup.sh)",
        which("redis-cli"),
    ) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/redis.slim:{}", unique("r"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let (report, read_report) = report_of(&dir);
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/redis:1",
        "--tag",
        &tag,
        "--report",
        &report,
        "--probes",
        &probe_file("redis.yaml"),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report = read_report();
    let kinds: Vec<&str> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["tcp", "tcp", "host", "host"]);
    assert!(report["verification"]["differences"]
        .as_array()
        .unwrap()
        .is_empty());
    let ratio =
        report["result"]["size"].as_f64().unwrap() / report["source"]["size"].as_f64().unwrap();
    assert!(
        ratio < 0.2,
        "redis slim is {:.1}% of the original",
        ratio * 100.0
    );
}

#[test]
fn cgi_route_missed_by_the_default_crawl_works_unless_the_app_closure_is_off() {
    let _serial = serial();
    if !require_fixture("minify-fixture/cgi:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let trace_only = format!("minify-test/cgi.slim:{}", unique("off"));
    let default = format!("minify-test/cgi.slim:{}", unique("imports"));
    let probed = format!("minify-test/cgi.slim:{}", unique("probed"));
    cleanup.image(&trace_only);
    cleanup.image(&default);
    cleanup.image(&probed);
    let dir = tempfile::tempdir().unwrap();
    let (report, read_report) = report_of(&dir);
    let kept = |report: &serde_json::Value| -> Vec<String> {
        report["kept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["path"].as_str().unwrap().to_string())
            .collect()
    };

    // Trace only: the crawl never reaches /cgi-bin/report.sh, so nothing it runs is kept.
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/cgi:1",
        "--tag",
        &trace_only,
        "--report",
        &report,
        "--app-closure",
        "off",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !kept(&read_report()).iter().any(|p| p.ends_with("/perl")),
        "perl kept without the route being probed or the script scanned"
    );
    let (code, _, stderr) = minify(&[
        "verify",
        "minify-fixture/cgi:1",
        &trace_only,
        "--probes",
        &probe_file("cgi.yaml"),
    ]);
    assert_eq!(
        code, 5,
        "verify should fail for the trace-only image:\n{stderr}"
    );
    assert!(
        stderr.contains("GET /cgi-bin/report.sh?from=probe"),
        "{stderr}"
    );

    // By default the CGI script is an app file: kept, and its #! interpreter and the commands
    // it runs (awk, perl) are kept by scanning it, though no request ever ran it.
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/cgi:1",
        "--tag",
        &default,
        "--report",
        &report,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report_json = read_report();
    let kept_default = kept(&report_json);
    for tool in ["/usr/bin/perl", "/usr/bin/bash", "/usr/bin/mawk"] {
        assert!(kept_default.iter().any(|p| p == tool), "{tool} not kept");
    }
    let script = report_json["kept"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["path"] == "/srv/cgi-bin/report.sh")
        .expect("the CGI script is kept");
    assert!(
        script["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["why"] == "app_file"),
        "{script}"
    );
    let (code, _, stderr) = minify(&[
        "verify",
        "minify-fixture/cgi:1",
        &default,
        "--probes",
        &probe_file("cgi.yaml"),
    ]);
    assert_eq!(code, 0, "{stderr}");

    // A probe file that names the route still works and verifies.
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/cgi:1",
        "--tag",
        &probed,
        "--report",
        &report,
        "--probes",
        &probe_file("cgi.yaml"),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn redis_without_a_probe_file_is_probed_as_tcp_and_builds() {
    let _serial = serial();
    if !require_fixture("minify-fixture/redis:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/redis.slim:{}", unique("tcp"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let (report, read_report) = report_of(&dir);
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/redis:1",
        "--tag",
        &tag,
        "--report",
        &report,
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("port 6379 accepts TCP but did not answer HTTP"),
        "{stderr}"
    );
    let report = read_report();
    assert!(
        report["probes"].as_array().unwrap().is_empty(),
        "nothing was crawled: {}",
        report["probes"]
    );
    assert!(report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["path"] == "/usr/bin/redis-check-rdb" || k["path"] == "/usr/bin/redis-server"));
    // The slim image starts and accepts connections like the original (verify waited for it).
    assert!(
        report["verification"].is_object(),
        "{}",
        report["verification"]
    );
}

#[test]
fn excluding_a_kept_file_makes_verify_fail_with_a_clear_diff() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/broken.slim:{}", unique("x"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let (report, read_report) = report_of(&dir);
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/nginx:1",
        "--tag",
        &tag,
        "--report",
        &report,
        "--exclude",
        "/var/www/html/about.html",
        "--exclude",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "--verify",
    ]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("GET /about.html [80/tcp]: original status 200"),
        "{stderr}"
    );
    assert!(stderr.contains("slim status 404"), "{stderr}");
    let report = read_report();
    assert_eq!(report["excluded"]["removed"][0], "/var/www/html/about.html");
    // libc stays: the loader needs it, and the report says so.
    assert!(report["excluded"]["overridden"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o[0] == "/usr/lib/x86_64-linux-gnu/libc.so.6"));
    assert_eq!(
        report["verification"]["differences"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_probe_failing_on_the_original_exits_4_and_cleans_up() {
    let _serial = serial();
    if !require_fixture("minify-fixture/nginx:1") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("wrong.json");
    std::fs::write(
        &probes,
        r#"{"http": [{"port": 80, "path": "/", "expect_status": 500}]}"#,
    )
    .unwrap();
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/nginx:1",
        "--tag",
        "minify-test/never:1",
        "--report",
        dir.path().join("r.json").to_str().unwrap(),
        "--probes",
        probes.to_str().unwrap(),
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("status 200, expected 500"), "{stderr}");
    assert!(!image_exists("minify-test/never:1"));
    assert_eq!(leftover_containers(), "");
}

#[test]
fn a_bad_probe_file_is_a_usage_error_naming_the_field_before_daemon_work() {
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("bad.yaml");
    std::fs::write(&probes, "http:\n  - port: 80\n    expect_staus: 200\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["build", "app:1", "--probes", probes.to_str().unwrap()])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown field `expect_staus`"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

fn which(program: &str) -> Result<(), String> {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
        .ok_or_else(|| format!("{program} not installed"))
}

#[test]
fn continue_after_signal_waits_for_sigusr1_then_builds() {
    let _serial = serial();
    if !require_fixture("minify-fixture/static:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let tag = format!("minify-test/signal.slim:{}", unique("s"));
    cleanup.image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .args([
            "build",
            "minify-fixture/static:1",
            "--tag",
            &tag,
            "--continue-after",
            "signal",
        ])
        .args(["--report", dir.path().join("r.json").to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while containers_of(pid.as_raw() as u32).is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "minify never started its container"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Still waiting after the probes: no image yet.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!image_exists(&tag), "minify did not wait for the signal");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("send SIGUSR1"), "{stderr}");
    assert!(image_exists(&tag));
}

/// One request as an API operation of the report says it was sent; HTTP/1.0, in one write
/// (see `common::get`).
fn send(port: u16, operation: &serde_json::Value) -> Answer {
    use std::io::{Read, Write};
    let method = operation["method"].as_str().unwrap();
    let url = operation["url"].as_str().unwrap();
    let body = operation["body"].as_str().unwrap_or("");
    let mut request =
        format!("{method} {url} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(content_type) = operation["content_type"].as_str() {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A slim image missing what the handler needs may close the connection: no answer.
    let _ = stream.read_to_end(&mut raw);
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            body: raw,
        };
    };
    let status = String::from_utf8_lossy(&raw[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        body: raw[split + 4..].to_vec(),
    }
}

/// The operations of the fixture's own spec, `METHOD /template`.
fn fixture_operations() -> Vec<String> {
    let path = format!(
        "{}/integration/fixtures/apispec/openapi.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut operations = Vec::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "head", "options", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    operations.sort();
    operations
}

#[test]
fn api_spec_probes_reach_every_operation_that_the_crawl_misses_with_the_app_closure_off() {
    let _serial = serial();
    if !require_fixture("minify-fixture/apispec:1") {
        return;
    }
    let mut cleanup = Cleanup::default();
    let probed = format!("minify-test/apispec.slim:{}", unique("spec"));
    let crawled = format!("minify-test/apispec.slim:{}", unique("crawl"));
    cleanup.image(&probed);
    cleanup.image(&crawled);
    let dir = tempfile::tempdir().unwrap();
    let (report, read_report) = report_of(&dir);

    // With the spec: every operation probed, traced, verified.
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/apispec:1",
        "--http-probe-apispec",
        "/openapi.json",
        "--app-closure",
        "off",
        "--tag",
        &probed,
        "--report",
        &report,
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("API spec GET /openapi.json on 8000/tcp: 7 operations"),
        "{stderr}"
    );
    let report = read_report();
    let operations = report["api_operations"].as_array().unwrap().clone();
    let mut listed: Vec<String> = operations
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["method"].as_str().unwrap(),
                o["path"].as_str().unwrap()
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        fixture_operations(),
        "one request per operation of the spec"
    );
    for operation in &operations {
        let status = operation["status"].as_u64().unwrap();
        // The generated requests are good enough to get past validation on the original:
        // path parameter, required query, body from the $ref'd schema.
        assert!((200..300).contains(&status), "{operation}");
        assert_eq!(operation["slim_status"], operation["status"], "{operation}");
        assert!(
            operation["url"].as_str().unwrap().starts_with("/api/v1/"),
            "servers[0] base path"
        );
    }
    assert!(report["verification"]["differences"]
        .as_array()
        .unwrap()
        .is_empty());

    // Without it (the default crawl only reaches `/`): a slim image the operations break on.
    let (code, _, stderr) = minify(&[
        "build",
        "minify-fixture/apispec:1",
        "--app-closure",
        "off",
        "--tag",
        &crawled,
        "--report",
        &dir.path().join("crawled.json").to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{stderr}");

    // Checked here, not by minify: the same requests on the original and on both slim images.
    let original = run_published(&mut cleanup, "minify-fixture/apispec:1", 8000);
    let with_spec = run_published(&mut cleanup, &probed, 8000);
    let without = run_published(&mut cleanup, &crawled, 8000);
    for port in [original, with_spec, without] {
        wait_answering(port, std::time::Duration::from_secs(30));
    }
    let mut broken = Vec::new();
    for operation in &operations {
        let expected = send(original, operation);
        assert_eq!(
            send(with_spec, operation),
            expected,
            "{operation}: the spec-probed slim image answers like the original"
        );
        if send(without, operation) != expected {
            broken.push(format!("{} {}", operation["method"], operation["url"]));
        }
    }
    assert!(
        !broken.is_empty(),
        "without the spec probes some operation must break, or the probes prove nothing"
    );

    // minify verify with a probe file whose spec is a host file (YAML) says which.
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{}/integration/fixtures/apispec/openapi.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        serde_yaml::to_string(&spec).unwrap(),
    )
    .unwrap();
    let probes = dir.path().join("probes.yaml");
    std::fs::write(&probes, "api_specs:\n  - {port: 8000, file: spec.yaml}\n").unwrap();
    let (code, _, stderr) = minify(&[
        "verify",
        "minify-fixture/apispec:1",
        &crawled,
        "--probes",
        probes.to_str().unwrap(),
        "--no-default-probes",
    ]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("POST /api/v1/items"), "{stderr}");
    assert!(stderr.contains("slim status 500"), "{stderr}");
}
