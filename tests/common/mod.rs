//! Helpers shared by the end-to-end tests: facility checks that fail loudly under CI, fixture
//! lookup, containers started with the docker CLI, plain HTTP/1.0 requests, and cleanup guards.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

// The skip-or-fail rule and the tar/archive builders are the library's own test plumbing
// (src/testkit), included here so there is one copy of each.
#[path = "../../src/testkit/ci.rs"]
mod ci;
#[path = "../../src/testkit/layers.rs"]
pub mod layers;
#[allow(unused_imports)] // each test binary uses its own part
pub use ci::{require, tool_check, under_ci};

pub fn docker_check() -> Result<(), String> {
    let out = Command::new("docker")
        .arg("info")
        .output()
        .map_err(|e| format!("docker CLI: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker info failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why the kernel sensor cannot run here, if it cannot: the capabilities it loads programs
/// with, and kernel BTF for CO-RE.
pub fn sensor_check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    for (bit, name) in [(39, "CAP_BPF"), (38, "CAP_PERFMON"), (21, "CAP_SYS_ADMIN")] {
        if caps & (1u64 << bit) == 0 {
            return Err(format!("{name} is missing (run the tests as root)"));
        }
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err("the kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
    }
    Ok(())
}

/// The named fixture image, or why not.
pub fn fixture_check(image: &str) -> Result<(), String> {
    image_exists(image)
        .then_some(())
        .ok_or_else(|| format!("{image} is not built (integration/fixtures.sh)"))
}

/// The daemon, the sensor and the named fixture image, or false (skip) outside CI.
pub fn require_fixture(image: &str) -> bool {
    require("the Docker daemon", docker_check())
        && require("the eBPF sensor (root + BTF)", sensor_check())
        && require(&format!("fixture image {image}"), fixture_check(image))
}

pub fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Removes what a test made when dropped, also when the test panics: containers first, then
/// the networks and volumes they used (Docker refuses to remove a network a container is still
/// attached to), then images.
#[derive(Default)]
pub struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Cleanup {
    pub fn container(&mut self, name: &str) {
        self.containers.push(name.to_string());
    }
    pub fn image(&mut self, name: &str) {
        self.images.push(name.to_string());
    }
    pub fn network(&mut self, name: &str) {
        self.networks.push(name.to_string());
    }
    pub fn volume(&mut self, name: &str) {
        self.volumes.push(name.to_string());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", "-v", c]).output();
        }
        for n in &self.networks {
            let _ = Command::new("docker").args(["network", "rm", n]).output();
        }
        for v in &self.volumes {
            let _ = Command::new("docker").args(["volume", "rm", v]).output();
        }
        for i in &self.images {
            let _ = Command::new("docker").args(["rmi", i]).output();
        }
    }
}

/// Starts `image` detached with its ports published on loopback; returns the host port of
/// container port `port`.
pub fn run_published(cleanup: &mut Cleanup, image: &str, port: u16) -> u16 {
    let name = unique("minify-test-run");
    cleanup.container(&name);
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1::{port}"),
        image,
    ]);
    let mapping = docker(&["port", &name, &format!("{port}/tcp")]);
    mapping
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no published port in {mapping:?}"))
}

/// One HTTP/1.0 answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The request goes out in one write: formatted straight into the socket it left in several
/// TCP segments, and PHP's built-in server (`php -S`, 8.2) closes such a connection without an
/// answer when the machine is busy (seen on the php fixture: 5-50 % of requests under load).
pub fn get(port: u16, path: &str) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP header in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok(Answer {
        status,
        body: raw[split + 4..].to_vec(),
    })
}

/// Waits until `GET /` answers on `port`.
pub fn wait_answering(port: u16, timeout: Duration) {
    let until = Instant::now() + timeout;
    loop {
        match get(port, "/") {
            Ok(_) => return,
            Err(e) if Instant::now() > until => panic!("port {port} never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The fixed request list of a fixture (integration/requests/NAME.txt).
pub fn request_list(fixture: &str) -> Vec<String> {
    let path = format!(
        "{}/integration/requests/{fixture}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Runs the `minify` binary with `args`; returns (exit code, stdout, stderr).
pub fn minify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(args)
        .output()
        .expect("minify binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Names of minify's cgroup directories still present under the unified hierarchy.
/// minify's cgroup directories whose minify process is gone (leaks).
pub fn leftover_cgroups() -> Vec<String> {
    std::fs::read_dir("/sys/fs/cgroup/unified")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("minify-") && !owner_alive(n))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the minify process whose pid is in a run name (`minify-<pid>-<nanos>`) still runs.
fn owner_alive(run_name: &str) -> bool {
    run_name
        .split('-')
        .find_map(|part| part.parse::<u32>().ok())
        .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Extracts the tar archive `tar` into container `name` at `/` (`docker cp -`).
pub fn copy_archive_into(name: &str, tar: &[u8]) {
    let mut cp = Command::new("docker")
        .args(["cp", "-", &format!("{name}:/")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cp.stdin.take().unwrap().write_all(tar).unwrap();
    assert!(cp.wait().unwrap().success(), "docker cp into {name} failed");
}

/// Names of all containers carrying minify's owner label.
fn labelled_containers() -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        "label=dev.minify.run",
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(String::from)
    .collect()
}

/// Names of the containers a given minify process created.
pub fn containers_of(pid: u32) -> Vec<String> {
    labelled_containers()
        .into_iter()
        .filter(|name| name.split('-').any(|part| part == pid.to_string()))
        .collect()
}

/// Containers carrying minify's owner label whose minify process is gone: leaks. (Containers of
/// a minify still running elsewhere on the machine are not this test's business.)
pub fn leftover_containers() -> String {
    labelled_containers()
        .into_iter()
        .filter(|name| !owner_alive(name))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Serialises the tests of one binary that use the daemon and the sensor: they count leftovers
/// by label and cgroup name, which concurrent builds would make ambiguous.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Validation errors of an SBOM against its official schema, vendored in tests/sbom/: CycloneDX
/// 1.5 (`bomFormat`; with the two schemas it references, from the cyclonedx-python-lib 7.6.2
/// wheel, cyclonedx/schema/_res/) or SPDX 2.3 (`spdxVersion`; from the lib4sbom 0.10.4 wheel,
/// lib4sbom/schemas/spdx/2.3-schema.json, byte-identical to spdx-spec's schemas/spdx-schema.json
/// at tag v2.3).
pub fn sbom_errors(bom: &serde_json::Value) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sbom");
    let load = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    };
    let validator = if bom.get("spdxVersion").is_some() {
        jsonschema::options()
            .build(&load("spdx-schema-2.3.json"))
            .expect("the SPDX schema compiles")
    } else {
        let registry = jsonschema::Registry::new()
            .add(
                "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json",
                load("spdx.SNAPSHOT.schema.json"),
            )
            .unwrap()
            .add(
                "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json",
                load("jsf-0.82.SNAPSHOT.schema.json"),
            )
            .unwrap()
            .prepare()
            .unwrap();
        jsonschema::options()
            .with_registry(&registry)
            .build(&load("bom-1.5.SNAPSHOT.schema.json"))
            .expect("the CycloneDX schema compiles")
    };
    validator
        .iter_errors(bom)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
