//! `minify build` against a daemon that is not on a local socket, as with a remote
//! `DOCKER_HOST`. TCP: the test serves this machine's daemon on a non-loopback address (docker0's
//! gateway) through a forwarder that records the API calls. `--sensor auto` must then pick the
//! in-container ptrace sensor (its tracer travels through the archive API, no bind mount),
//! publish the app's ports where a remote client can reach them and probe them at the
//! endpoint's host, and the slim image must verify and answer like the original. SSH: a private
//! sshd on loopback, reached with a throwaway key, and `docker system dial-stdio` on its side.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const IMAGE: &str = "minify-fixture/nginx:1";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// An address of this host that is not loopback and that the daemon's containers can reach:
/// the IPv4 gateway of Docker's default bridge. A freshly started dockerd (20.10) reports the
/// bridge's IPAM config as `[{"Subnet":"172.17.0.0/16"}]` with no `Gateway` although the
/// bridge interface has its address (172.17.0.1): then the interface's own IPv4 address is used.
fn bridge_gateway() -> String {
    let gateways = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
    ]);
    let interface = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        r#"{{index .Options "com.docker.network.bridge.name"}}"#,
    ]);
    let interface = interface.trim();
    let interface = if interface.is_empty() || interface == "<no value>" {
        "docker0"
    } else {
        interface
    };
    let addresses = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", interface])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    pick_bridge_address(&gateways, &addresses).unwrap_or_else(|| {
        panic!(
            "no IPv4 address for Docker's bridge: IPAM gateways {gateways:?}, \
             `ip -4 -o addr show dev {interface}` said {addresses:?}"
        )
    })
}

/// The gateway IPAM reports, else the first IPv4 address in `ip -4 -o addr` output.
fn pick_bridge_address(ipam_gateways: &str, ip_addr_output: &str) -> Option<String> {
    let is_v4 = |s: &str| s.parse::<std::net::Ipv4Addr>().is_ok();
    if let Some(g) = ipam_gateways.split_whitespace().find(|g| is_v4(g)) {
        return Some(g.to_string());
    }
    // "5: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\ ..."
    let mut words = ip_addr_output.split_whitespace();
    while let Some(w) = words.next() {
        if w == "inet" {
            let addr = words.next()?.split('/').next()?;
            if is_v4(addr) {
                return Some(addr.to_string());
            }
        }
    }
    None
}

#[test]
fn bridge_address_on_a_fresh_daemon_comes_from_the_interface_when_ipam_has_no_gateway() {
    let ip = "5: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever preferred_lft forever\n";
    assert_eq!(pick_bridge_address(" ", ip).as_deref(), Some("172.17.0.1"));
    assert_eq!(
        pick_bridge_address("172.18.0.1 ", ip).as_deref(),
        Some("172.18.0.1")
    );
    assert_eq!(pick_bridge_address("", ""), None);
}

/// What the forwarder saw: connections, and the first bytes of each request stream.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<u8>>,
}

/// Bytes kept per request stream: enough for API calls' headers and JSON bodies, not for the
/// image tarball `docker load` streams.
const KEPT_PER_CONNECTION: usize = 64 * 1024;

/// Serves the daemon's socket on `host:<random port>`; returns the port and what it saw.
fn forward_daemon_over_tcp(host: &str) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind((host, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let recorder = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            recorder.connections.fetch_add(1, Ordering::SeqCst);
            let Ok(daemon) = UnixStream::connect(DOCKER_SOCKET) else {
                continue;
            };
            let client_in = client.try_clone().unwrap();
            let daemon_in = daemon.try_clone().unwrap();
            let requests = recorder.clone();
            std::thread::spawn(move || {
                let mut daemon = daemon;
                let mut client_in = client_in;
                let mut buf = [0u8; 16 * 1024];
                let mut kept = 0;
                while let Ok(n @ 1..) = client_in.read(&mut buf) {
                    if kept < KEPT_PER_CONNECTION {
                        let take = n.min(KEPT_PER_CONNECTION - kept);
                        requests
                            .requests
                            .lock()
                            .unwrap()
                            .extend_from_slice(&buf[..take]);
                        kept += take;
                    }
                    if daemon.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = daemon.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let (mut daemon_in, mut client) = (daemon_in, client);
                let _ = std::io::copy(&mut daemon_in, &mut client);
                let _ = client.shutdown(Shutdown::Write);
            });
        }
    });
    (port, seen)
}

/// The JSON bodies of `POST /containers/create` requests the forwarder saw.
fn container_create_bodies(seen: &Seen) -> Vec<serde_json::Value> {
    let requests = seen.requests.lock().unwrap();
    let text = String::from_utf8_lossy(&requests);
    text.split("POST ")
        .filter(|request| request.contains("/containers/create"))
        .filter_map(|request| {
            let body = request.split_once("\r\n\r\n")?.1;
            serde_json::Deserializer::from_str(body)
                .into_iter::<serde_json::Value>()
                .next()?
                .ok()
        })
        .collect()
}

/// `minify build IMAGE --verify --tag TAG` with `DOCKER_HOST=endpoint` plus `env`: asserts that it
/// succeeds with the ptrace sensor and a verification without differences; returns its stderr
/// and report.
fn build_through(endpoint: &str, tag: &str, env: &[(&str, String)]) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["build", IMAGE, "--verify", "--tag", tag, "--report"])
        .arg(&report_path)
        .env("DOCKER_HOST", endpoint)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "minify build through {endpoint}:\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["sensor"]["name"], "ptrace", "{stderr}");
    assert_eq!(
        report["verification"]["differences"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "{}",
        report["verification"]
    );
    (stderr, report)
}

#[test]
fn tcp_daemon_gets_the_ptrace_sensor_and_ports_probed_at_the_endpoint_host() {
    if !require("the Docker daemon", docker_check()) || !require_fixture(IMAGE) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let gateway = bridge_gateway();
    let (port, seen) = forward_daemon_over_tcp(&gateway);
    let endpoint = format!("tcp://{gateway}:{port}");
    let tag = format!("minify-test/remote.slim:{}", unique("t"));
    cleanup.image(&tag);
    let (stderr, report) = build_through(&endpoint, &tag, &[]);
    assert!(
        seen.connections.load(Ordering::SeqCst) > 0,
        "minify never used {endpoint}"
    );
    // Both containers (the traced run and the --verify run) publish on all addresses of the
    // daemon's host, since its loopback is out of the client's reach, and mount nothing of
    // the client's filesystem: the tracer travels through the archive API.
    let creates = container_create_bodies(&seen);
    assert_eq!(
        creates.len(),
        2,
        "expected the traced and the verify container"
    );
    for body in &creates {
        let host_config = &body["HostConfig"];
        let bindings = host_config["PortBindings"].as_object().unwrap();
        assert!(!bindings.is_empty(), "no port published: {body}");
        for binding in bindings.values().flat_map(|b| b.as_array().unwrap()) {
            assert_eq!(binding["HostIp"], "0.0.0.0", "{body}");
        }
        assert!(
            host_config["Binds"].is_null() && host_config["Mounts"].is_null(),
            "a client path is mounted: {body}"
        );
    }
    assert!(
        stderr.contains("minify: sensor: ptrace ("),
        "auto must say it chose ptrace:\n{stderr}"
    );
    let choice = report["notes"]["sensor_choice"].as_str().unwrap();
    assert!(choice.contains("not local"), "{choice}");
    let probes = report["probes"].as_array().unwrap();
    assert!(!probes.is_empty(), "no probe ran");
    for probe in probes {
        assert!(probe["error"].is_null(), "probe failed: {probe}");
    }

    // The slim image, run through the local socket, answers like the original.
    let original_port = run_published(&mut cleanup, IMAGE, 80);
    let slim_port = run_published(&mut cleanup, &tag, 80);
    wait_answering(original_port, Duration::from_secs(30));
    wait_answering(slim_port, Duration::from_secs(30));
    for path in request_list("nginx") {
        assert_eq!(
            get(original_port, &path).unwrap(),
            get(slim_port, &path).unwrap(),
            "GET {path}"
        );
    }
    assert_eq!(leftover_containers(), "", "containers left behind");
}

/// A private sshd on 127.0.0.1 accepting one throwaway key for root, and an `ssh` wrapper that
/// uses that key and its own known_hosts file, so that nothing of the machine's ssh setup is
/// read or changed. Killed on drop.
struct PrivateSshd {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl PrivateSshd {
    fn start() -> PrivateSshd {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        for key in ["host_key", "client_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f", &path(key)])
                .status()
                .unwrap();
            assert!(status.success(), "ssh-keygen {key}");
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).unwrap();
        // privilege separation directory sshd insists on
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {}\n",
                path("host_key"),
                path("authorized_keys"),
                path("sshd.pid"),
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &path("sshd_config")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wrapper_dir = dir.path().join("bin");
        std::fs::create_dir(&wrapper_dir).unwrap();
        let wrapper = wrapper_dir.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F /dev/null -i {} -o IdentitiesOnly=yes \
                 -o UserKnownHostsFile={} -o StrictHostKeyChecking=accept-new \"$@\"\n",
                path("client_key"),
                path("known_hosts")
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let sshd = PrivateSshd { dir, port, child };
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < until, "sshd never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// PATH with the wrapper first.
    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_check() -> Result<(), String> {
    for tool in ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"] {
        if !std::path::Path::new(tool).exists() {
            return Err(format!(
                "{tool} missing (apt-get install openssh-server openssh-client)"
            ));
        }
    }
    Ok(())
}

#[test]
fn ssh_daemon_endpoint_builds_through_dial_stdio_with_the_ptrace_sensor() {
    if !require("the Docker daemon", docker_check())
        || !require_fixture(IMAGE)
        || !require("sshd and ssh", sshd_check())
    {
        return;
    }
    let mut cleanup = Cleanup::default();
    let sshd = PrivateSshd::start();
    let endpoint = format!("ssh://root@127.0.0.1:{}", sshd.port);
    let tag = format!("minify-test/remote-ssh.slim:{}", unique("t"));
    cleanup.image(&tag);
    let (_, report) = build_through(&endpoint, &tag, &[("PATH", sshd.path_env())]);
    assert!(report["notes"]["sensor_choice"]
        .as_str()
        .unwrap()
        .contains(&endpoint));
    let known_hosts =
        std::fs::read_to_string(sshd.dir.path().join("known_hosts")).unwrap_or_default();
    assert!(
        known_hosts.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "minify did not go through ssh: no host key recorded"
    );
    assert!(image_exists(&tag), "slim image loaded through ssh");
    assert_eq!(leftover_containers(), "", "containers left behind");
}
