//! End to end: docker-slim's build flags on fixtures of this file's own (tiny images derived
//! from `minify-fixture/python:1`): a docker-slim probe command file with a POST and a
//! body_file, a service that needs an env var and a volume to start, and the result's config
//! flags (`--new-*`, `--remove-*`, repeatable `--tag`) as `docker image inspect` shows them. The
//! slim image must answer like the original (`--verify`, with the same run options).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

const BASE: &str = "minify-fixture/python:1";

/// Builds `FROM python fixture` + `dockerfile` with `files` in the context.
fn derived(cleanup: &mut Cleanup, dockerfile: &str, files: &[(&str, &str)]) -> Option<String> {
    if !require_fixture(BASE) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {BASE}\n{dockerfile}\n"),
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let name = format!("minify-test/slim-compat:{}", unique("d"));
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &name, dir.path().to_str().unwrap()])
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cleanup.image(&name);
    Some(name)
}

fn inspect(image: &str, format: &str) -> serde_json::Value {
    serde_json::from_str(&docker(&[
        "image",
        "inspect",
        image,
        "--format",
        &format!("{{{{json {format}}}}}"),
    ]))
    .unwrap()
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A JSON API: `POST /items` stores nothing, but reads the license file the body names (a path
/// no static analysis of the code can see: only the probe's body leads there) and answers 201.
const API: &str = r#"
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.reply(200, {"ok": True, "path": self.path})

    def do_POST(self):
        if self.path != "/items" or self.headers.get("Content-Type") != "application/json":
            return self.reply(400, {"error": "want JSON at /items"})
        if self.headers.get("X-Token") != "t0k":
            return self.reply(401, {"error": "no token"})
        item = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open("/usr/share/common-licenses/" + item["license"]) as f:
            first = f.readline().strip()
        self.reply(201, {"name": item["name"], "license": first})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"#;

#[test]
fn a_docker_slim_command_file_with_a_post_and_a_body_file_drives_the_build() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived(
        &mut cleanup,
        "COPY api.py /app/api.py\nEXPOSE 8080\nCMD [\"python3\", \"/app/api.py\"]",
        &[("api.py", API)],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bodies")).unwrap();
    std::fs::write(
        dir.path().join("bodies/item.json"),
        r#"{"name": "widget", "license": "Apache-2.0"}"#,
    )
    .unwrap();
    // docker-slim's own format; body_file relative to the current directory.
    std::fs::write(
        dir.path().join("probes.json"),
        r#"{"commands": [
            {"protocol": "http", "method": "GET", "resource": "/"},
            {"method": "POST", "resource": "/items", "port": 8080,
             "headers": ["Content-Type: application/json", "X-Token: t0k"],
             "body_file": "bodies/item.json"}
        ]}"#,
    )
    .unwrap();
    let tag = format!("minify-test/slim-compat.slim:{}", unique("t"));
    cleanup.image(&tag);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .current_dir(dir.path())
        .args([
            "--debug",
            "--report",
            "r.json",
            "build",
            "--target",
            &image,
            "--tag",
            &tag,
            "--http-probe-cmd-file",
            "probes.json",
            // The base image also exposes 8000, where this app does not listen.
            "--http-probe-ports",
            "8080",
            "--continue-after",
            "probe",
            "--verify",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = report(&dir.path().join("r.json"));
    let probes = report["probes"].as_array().unwrap();
    let post = probes
        .iter()
        .find(|p| {
            p["request"]
                .as_str()
                .unwrap_or_default()
                .starts_with("POST /items")
        })
        .unwrap_or_else(|| panic!("no POST in {probes:?}"));
    assert_eq!(post["status"], 201, "{post}");
    // Custom commands replace the default crawl, as in docker-slim: just the two requests.
    assert_eq!(probes.len(), 2, "{probes:?}");
    assert!(report["verification"]["differences"]
        .as_array()
        .unwrap()
        .is_empty());
    let kept: Vec<&str> = report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["path"].as_str())
        .collect();
    assert!(
        kept.contains(&"/usr/share/common-licenses/Apache-2.0"),
        "the file only the POST reads is kept"
    );

    // The same file converts to a minify probe file that loads.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minify"))
        .current_dir(dir.path())
        .args(["probes", "convert", "probes.json", "--port", "8080"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("method: POST") && yaml.contains("X-Token: t0k"),
        "{yaml}"
    );
}

/// Starts only with APP_TOKEN set and /config/app.conf mounted; keeps its state in /cache.
const SERVICE: &str = r#"
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

token = os.environ.get("APP_TOKEN")
if not token:
    sys.exit("APP_TOKEN is not set")
try:
    conf = open("/config/app.conf").read().strip()
except OSError as e:
    sys.exit(f"no config: {e}")
open("/cache/started", "w").write("yes")

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        data = f"{conf} token={len(token)} cache={os.path.exists('/cache/started')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

HTTPServer(("0.0.0.0", 8081), Handler).serve_forever()
"#;

#[test]
fn a_service_that_needs_an_env_var_and_volumes_runs_with_them_traced_and_verified() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived(
        &mut cleanup,
        "COPY service.py /app/service.py\nEXPOSE 8081\nCMD [\"python3\", \"/app/service.py\"]",
        &[("service.py", SERVICE)],
    ) else {
        return;
    };
    let host = tempfile::tempdir().unwrap();
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(host.path().join("app.conf"), "mode=test").unwrap();
    std::fs::set_permissions(
        host.path().join("app.conf"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let env_file = host.path().join("app.env");
    std::fs::write(&env_file, "# the service's secret\nAPP_TOKEN=s3cret\n").unwrap();
    let volume = unique("minify-test-vol");
    cleanup.volume(&volume);
    let tag = format!("minify-test/slim-compat.slim:{}", unique("t"));
    cleanup.image(&tag);
    let report_path = host.path().join("r.json");

    // Without its environment the service dies, and minify says why.
    let (code, _, stderr) = minify(&[
        "build",
        &image,
        "--tag",
        &tag,
        "--report",
        report_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("APP_TOKEN is not set"), "{stderr}");

    let mount = format!("{}:/config:ro", host.path().display());
    let cache = format!("{volume}:/cache");
    let (code, _, stderr) = minify(&[
        "build",
        &image,
        "--tag",
        &tag,
        "--report",
        report_path.to_str().unwrap(),
        "--env-file",
        env_file.to_str().unwrap(),
        "--env",
        "EXTRA=1",
        "--mount",
        &mount,
        "--mount",
        &cache,
        "--user",
        "root",
        "--hostname",
        "svc",
        "--etc-hosts-map",
        "db.local:10.9.9.9",
        "--http-probe-cmd",
        "/status",
        "--http-probe-ports",
        "8081",
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report = report(&report_path);
    let status = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["request"] == "GET /status")
        .cloned()
        .unwrap();
    assert_eq!(status["status"], 200);
    assert!(report["verification"]["differences"]
        .as_array()
        .unwrap()
        .is_empty());
    // The user's host dir and named volume are theirs: still there; the volume Docker made for
    // the run carries minify's labels.
    assert!(host.path().join("app.conf").exists());
    let labels = docker(&["volume", "inspect", &volume, "--format", "{{json .Labels}}"]);
    assert!(labels.contains("dev.minify.run"), "{labels}");
    // `minify verify` takes the same run flags.
    let probes = host.path().join("probes.yaml");
    std::fs::write(
        &probes,
        "http:\n  - {port: 8081, path: /status, expect_status: 200}\n",
    )
    .unwrap();
    let (code, _, stderr) = minify(&[
        "verify",
        &image,
        &tag,
        "--probes",
        probes.to_str().unwrap(),
        "--no-default-probes",
        "--env-file",
        env_file.to_str().unwrap(),
        "--mount",
        &mount,
        "--mount",
        &cache,
        "--user",
        "root",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // Runtime options are not persisted without --image-overrides.
    let env = inspect(&tag, ".Config.Env").to_string();
    assert!(!env.contains("APP_TOKEN"), "{env}");
    assert_eq!(inspect(&tag, ".Config.User"), "app");
    assert!(leftover_containers().is_empty());
}

#[test]
fn new_and_remove_flags_show_in_the_result_config_and_it_answers_like_the_original() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived(
        &mut cleanup,
        "ENV DEBUG=1 KEEP=yes\nLABEL old=1 stays=1\nVOLUME /tmp/scratch\nEXPOSE 9999\nCOPY api.py /app/api.py\nEXPOSE 8080\nCMD [\"python3\", \"/app/api.py\"]",
        &[("api.py", API)],
    ) else {
        return;
    };
    let tag = format!("minify-test/slim-compat.slim:{}", unique("a"));
    let second = format!("minify-test/slim-compat-second:{}", unique("b"));
    cleanup.image(&tag);
    cleanup.image(&second);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("r.json");
    let (code, _, stderr) = minify(&[
        "build",
        "--target",
        &image,
        "--tag",
        &tag,
        "--tag",
        &second,
        "--report",
        report_path.to_str().unwrap(),
        "--http-probe-ports",
        "8080",
        "--http-probe-cmd",
        "GET:/hello",
        "--new-env",
        "MODE=prod",
        "--new-env",
        "KEEP=changed",
        "--remove-env",
        "DEBUG",
        "--new-label",
        "team=web",
        "--remove-label",
        "old",
        "--new-expose",
        "9000",
        "--remove-expose",
        "9999",
        "--new-volume",
        "/cache",
        "--remove-volume",
        "/tmp/scratch",
        "--new-workdir",
        "/app",
        "--new-cmd",
        "python3 /app/api.py",
        "--new-entrypoint",
        r#"["/usr/bin/env"]"#,
        // The traced run did not use env: keep it, or the result would not start.
        "--include-exe",
        "env",
        "--include-zoneinfo",
        "--include-licenses",
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
    for name in [&tag, &second] {
        assert!(image_exists(name), "{name} tags the result");
    }
    let env = inspect(&tag, ".Config.Env");
    let env: Vec<&str> = env
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&"MODE=prod") && env.contains(&"KEEP=changed"),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("DEBUG=")), "{env:?}");
    assert!(
        env.iter().any(|e| e.starts_with("PATH=")),
        "the rest is carried over"
    );
    let labels = inspect(&tag, ".Config.Labels");
    assert_eq!(labels["team"], "web");
    assert_eq!(labels["stays"], "1");
    assert!(labels.get("old").is_none());
    let ports = inspect(&tag, ".Config.ExposedPorts");
    assert!(ports.get("9000/tcp").is_some() && ports.get("8080/tcp").is_some());
    assert!(ports.get("9999/tcp").is_none());
    let volumes = inspect(&tag, ".Config.Volumes");
    assert!(volumes.get("/cache").is_some() && volumes.get("/tmp/scratch").is_none());
    assert_eq!(inspect(&tag, ".Config.WorkingDir"), "/app");
    assert_eq!(
        inspect(&tag, ".Config.Cmd"),
        serde_json::json!(["python3", "/app/api.py"])
    );
    assert_eq!(
        inspect(&tag, ".Config.Entrypoint"),
        serde_json::json!(["/usr/bin/env"])
    );
    // --verify ran the result with its new config: it answered like the original.
    let report = report(&report_path);
    let kept: Vec<&str> = report["kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["path"].as_str())
        .collect();
    for path in [
        "/usr/bin/env",
        "/usr/share/zoneinfo/Europe/Paris",
        "/usr/share/doc/libc6/copyright",
        "/usr/share/common-licenses/GPL-3",
    ] {
        assert!(
            kept.contains(&path),
            "{path} kept by a docker-slim --include-* rule"
        );
    }
    assert!(report["verification"]["differences"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!report["verification"]["probes"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn refused_docker_slim_flags_fail_before_any_work_and_name_the_closest_feature() {
    for (args, expected) in [
        (vec!["build", "app:1", "--show-clogs"], "last log lines"),
        // Supported docker-slim flags with bad values are usage errors too.
        (
            vec!["build", "app:1", "--dockerfile", "Dockerfile"],
            "build context directory",
        ),
        (
            vec!["build", "app:1", "--tag-fat", "x:1"],
            "no --dockerfile",
        ),
        (
            vec!["build", "app:1", "--container-probe-compose-svc", "probe"],
            "--host-exec",
        ),
        (
            vec![
                "build",
                "--compose-file",
                "missing.yml",
                "--target-compose-svc",
                "app",
            ],
            "compose file missing.yml: cannot read it",
        ),
        (
            vec!["build", "app:1", "--target-compose-svc", "app"],
            "--target-compose-svc needs --compose-file FILE",
        ),
        (
            vec!["build", "app:1", "--http-probe-proxy-port", "8080"],
            "no probe proxy",
        ),
        (vec!["build", "app:1", "--path-perms", "/x"], "PATH:MODE"),
        (vec!["--log", "x.log", "build", "app:1"], "stderr"),
        (
            vec!["build", "app:1", "--network", "host"],
            "bridge network",
        ),
    ] {
        let (code, _, stderr) = minify(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bad_api_spec_flags_and_files_fail_before_any_work_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_spec = dir.path().join("spec.yaml");
    std::fs::write(&not_a_spec, "title: not an API\npaths: {}\n").unwrap();
    let broken_ref = dir.path().join("ref.json");
    std::fs::write(
        &broken_ref,
        r##"{"openapi": "3.0.0", "paths": {"/x": {"post": {"requestBody": {"$ref": "#/nowhere"}}}}}"##,
    )
    .unwrap();
    let not_a_spec = not_a_spec.to_str().unwrap();
    let broken_ref = broken_ref.to_str().unwrap();
    let missing = format!("{}/missing.json", dir.path().display());
    let cases: [(&[&str], &str); 5] = [
        (&["--http-probe-apispec", "openapi.json"], "PATH[:PREFIX]"),
        (&["--http-probe-apispec", "/openapi.json:v1"], "PREFIX"),
        (&["--http-probe-apispec-file", &missing], "is not a file"),
        (
            &["--http-probe-apispec-file", not_a_spec],
            "not an OpenAPI 3.x or Swagger 2.0 document",
        ),
        (
            &["--http-probe-apispec-file", broken_ref],
            "paths./x.post.requestBody",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["build", "minify-test/no-such-image:1"];
        args.extend_from_slice(flags);
        let (code, _, stderr) = minify(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        if flags[0].ends_with("-file") && !expected.contains("not a file") {
            assert!(stderr.contains(flags[1]), "names the file: {stderr}");
        }
    }
}

#[test]
fn cmd_and_entrypoint_overrides_reach_the_run_under_both_sensors() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    // The image's own command fails: only the override starts the app.
    let Some(image) = derived(
        &mut cleanup,
        "COPY api.py /app/api.py\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"echo wrong command; exit 7\"]",
        &[("api.py", API)],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("r.json");
    for (sensor, flag, value) in [
        ("ptrace", "--cmd", "python3 /app/api.py"),
        ("ebpf", "--entrypoint", r#"["python3", "/app/api.py"]"#),
    ] {
        let tag = format!("minify-test/slim-compat.slim:{}", unique(sensor));
        cleanup.image(&tag);
        let (code, _, stderr) = minify(&[
            "build",
            &image,
            "--tag",
            &tag,
            "--report",
            report_path.to_str().unwrap(),
            "--sensor",
            sensor,
            flag,
            value,
            "--http-probe-ports",
            "8080",
            "--http-probe-cmd",
            "/ping",
        ]);
        assert_eq!(code, 0, "{sensor} {flag}: {stderr}");
        let report = report(&report_path);
        assert_eq!(report["probes"][0]["status"], 200, "{sensor}: {report}");
        // Without --image-overrides the result keeps the image's own command.
        assert_eq!(
            inspect(&tag, ".Config.Cmd"),
            serde_json::json!(["sh", "-c", "echo wrong command; exit 7"])
        );
    }
}

#[test]
fn http_probe_exit_on_failure_false_turns_a_failing_probe_into_a_warning() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let Some(image) = derived(
        &mut cleanup,
        "COPY api.py /app/api.py\nEXPOSE 8080\nCMD [\"python3\", \"/app/api.py\"]",
        &[("api.py", API)],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A body the handler chokes on: it drops the connection without an answer.
    std::fs::write(
        dir.path().join("probes.json"),
        r#"{"commands": [{"method": "POST", "resource": "/items", "port": 8080,
            "headers": ["Content-Type: application/json", "X-Token: t0k"], "body": "not json"}]}"#,
    )
    .unwrap();
    let cmd_file = dir.path().join("probes.json");
    let report_path = dir.path().join("r.json");
    let tag = format!("minify-test/slim-compat.slim:{}", unique("f"));
    cleanup.image(&tag);
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            &image,
            "--tag",
            &tag,
            "--report",
            report_path.to_str().unwrap(),
            "--http-probe-cmd-file",
            cmd_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        minify(&args)
    };
    let (code, _, stderr) = build(&[]);
    assert_eq!(code, 4, "docker-slim's default is to fail: {stderr}");
    let (code, _, stderr) = build(&["--http-probe-exit-on-failure=false"]);
    assert_eq!(code, 0, "{stderr}");
    let warnings = report(&report_path)["warnings"].to_string();
    assert!(warnings.contains("probe failed"), "{warnings}");
    assert!(image_exists(&tag));
}
