//! docker-slim's HTTP probe commands (`--http-probe-cmd`, `--http-probe-cmd-file`, the
//! `--http-probe*` switches, `--exec`, `--host-exec`) turned into minify's own probe file model.
//!
//! docker-slim's semantics, as its source has them (`clifvparser.go`, `custom_probe.go`):
//! - `--http-probe-cmd [[[crawl:]PROTO:]METHOD:]PATH`; methods HEAD GET POST PUT DELETE PATCH;
//!   protocols http https http2 h2c ws wss; the path must start with `/`.
//! - the command file is `{"commands":[{protocol, method, resource, port, headers, body,
//!   body_file, username, password, crawl}]}`; `method` defaults to GET, `resource` is required,
//!   `body_file` is resolved against the current directory (not the file's), `headers` are
//!   `Name: value` strings, `username`/`password` are sent as basic auth.
//! - a command runs against every probed port (`--http-probe-ports`, else the exposed ones);
//!   with no protocol, port 443 is HTTPS and any other port HTTP (docker-slim also tries HTTPS
//!   on other ports: minify does not guess, give `protocol: https`).
//! - custom commands replace the default probe (`GET /` crawled on each port); without any,
//!   `--http-probe` (default on) runs the default probe, `--http-probe-crawl` (default on)
//!   crawls from it.
//!
//! - `--http-probe-apispec PATH[:PREFIX]` fetches an OpenAPI/Swagger spec from every probed
//!   port, `--http-probe-apispec-file FILE[:PREFIX]` reads one from a host file; PREFIX replaces
//!   the spec's base path. Neither replaces the default probe.
//!
//! One deliberate difference: a command's `port` is honoured (only that port is probed);
//! docker-slim validates it but probes every port anyway.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use super::config::{ApiSpecProbe, CrawlRule, ExecProbe, HostProbe, HttpProbe, ProbeFile, Scheme};
use crate::{Error, Result};

/// One docker-slim HTTP probe command, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlimCommand {
    /// Lowercase; empty = by port (443 → https, else http).
    pub protocol: String,
    /// Uppercase.
    pub method: String,
    pub resource: String,
    /// 0 = every probed port.
    pub port: u16,
    pub headers: Vec<String>,
    pub body: String,
    /// Absolute (resolved against the current directory, as docker-slim does).
    pub body_file: Option<PathBuf>,
    pub username: String,
    pub password: String,
    pub crawl: bool,
}

/// The command file as docker-slim writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFile {
    #[serde(default)]
    commands: Vec<RawCommand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    port: i64,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    body_file: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    crawl: bool,
    /// docker-slim's FastCGI wrapper: refused with a clear error below.
    #[serde(default)]
    fastcgi: Option<serde_json::Value>,
}

const METHODS: &[&str] = &["HEAD", "GET", "POST", "PUT", "DELETE", "PATCH"];
const PROTOCOLS: &[&str] = &["http", "https", "http2", "h2c", "ws", "wss"];

fn is_method(value: &str) -> bool {
    METHODS.contains(&value.to_ascii_uppercase().as_str())
}

fn is_proto(value: &str) -> bool {
    PROTOCOLS.contains(&value.to_ascii_lowercase().as_str())
}

/// Parses one `--http-probe-cmd` value: `[[[crawl:]PROTO:]METHOD:]PATH`.
pub fn parse_cmd(raw: &str) -> std::result::Result<SlimCommand, String> {
    let mut parts: Vec<&str> = raw.split(':').collect();
    let crawl = parts.first() == Some(&"crawl");
    if crawl {
        parts.remove(0);
    }
    let mut cmd = SlimCommand {
        method: "GET".into(),
        resource: "/".into(),
        crawl,
        ..SlimCommand::default()
    };
    let bad = |what: &str| {
        format!("--http-probe-cmd {raw:?}: invalid {what} (expected [[[crawl:]PROTO:]METHOD:]PATH, e.g. POST:/api or crawl:/)")
    };
    let resource_ok = |p: &str| p.starts_with('/');
    match parts.as_slice() {
        [] => {}
        [path] => {
            if !resource_ok(path) {
                return Err(bad("path"));
            }
            cmd.resource = path.to_string();
        }
        [method, path] => {
            if !method.is_empty() && !is_method(method) {
                return Err(bad("method"));
            }
            if !method.is_empty() {
                cmd.method = method.to_ascii_uppercase();
            }
            if !resource_ok(path) {
                return Err(bad("path"));
            }
            cmd.resource = path.to_string();
        }
        [proto, method, path] => {
            if !proto.is_empty() && !is_proto(proto) {
                return Err(bad("protocol"));
            }
            cmd.protocol = proto.to_ascii_lowercase();
            if !method.is_empty() && !is_method(method) {
                return Err(bad("method"));
            }
            if !method.is_empty() {
                cmd.method = method.to_ascii_uppercase();
            }
            if !resource_ok(path) {
                return Err(bad("path"));
            }
            cmd.resource = path.to_string();
        }
        _ => return Err(bad("command")),
    }
    Ok(cmd)
}

/// Reads a docker-slim command file (`--http-probe-cmd-file`). `cwd` resolves relative
/// `body_file` paths (docker-slim resolves them against the current directory).
pub fn load_cmd_file(path: &Path, cwd: &Path) -> Result<Vec<SlimCommand>> {
    let bad = |message: String| {
        Error::Usage(format!(
            "--http-probe-cmd-file {}: {message}",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let file: CommandFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut commands = Vec::new();
    for (i, raw) in file.commands.into_iter().enumerate() {
        let field = format!("commands[{i}]");
        if raw.fastcgi.is_some() {
            return Err(bad(format!(
                "{field}.fastcgi: FastCGI probes are not supported; probe the HTTP front end \
                 (nginx, Apache) of the PHP app instead, or use a host probe (--host-exec)"
            )));
        }
        if !raw.protocol.is_empty() && !is_proto(&raw.protocol) {
            return Err(bad(format!(
                "{field}.protocol: {:?} is not one of {}",
                raw.protocol,
                PROTOCOLS.join(", ")
            )));
        }
        if !raw.method.is_empty() && !is_method(&raw.method) {
            return Err(bad(format!(
                "{field}.method: {:?} is not one of {}",
                raw.method,
                METHODS.join(", ")
            )));
        }
        if !raw.resource.starts_with('/') {
            return Err(bad(format!(
                "{field}.resource: must start with '/', got {:?}",
                raw.resource
            )));
        }
        if raw.port != 0 && !(1..=65535).contains(&raw.port) {
            return Err(bad(format!("{field}.port: {} is not a port", raw.port)));
        }
        let body_file = if raw.body_file.is_empty() {
            None
        } else {
            let full = cwd.join(&raw.body_file);
            if !full.is_file() {
                return Err(bad(format!(
                    "{field}.body_file {}: no such file (docker-slim resolves it against the \
                     current directory)",
                    full.display()
                )));
            }
            Some(full)
        };
        commands.push(SlimCommand {
            protocol: raw.protocol.to_ascii_lowercase(),
            method: if raw.method.is_empty() {
                "GET".into()
            } else {
                raw.method.to_ascii_uppercase()
            },
            resource: raw.resource,
            port: raw.port as u16,
            headers: raw.headers,
            body: raw.body,
            body_file,
            username: raw.username,
            password: raw.password,
            crawl: raw.crawl,
        });
    }
    Ok(commands)
}

/// Every docker-slim probing flag, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SlimProbes {
    /// `--http-probe-cmd` then the command file's commands.
    pub commands: Vec<SlimCommand>,
    /// `--http-probe-ports`: the ports probed (in order); empty = the exposed TCP ports.
    pub ports: Vec<u16>,
    /// `--http-probe` (default true) and not `--http-probe-off`: the default probe runs when
    /// there are no commands.
    pub default_probe: bool,
    /// `--http-probe-crawl` (default true): the default probe crawls.
    pub default_crawl: bool,
    /// `--http-probe-start-wait` seconds before the first probe.
    pub start_wait_s: u64,
    /// `--exec` / `--exec-file` shell snippets run in the container (`sh -c`).
    pub exec: Vec<String>,
    /// `--host-exec` / `--host-exec-file` commands run on the host.
    pub host_exec: Vec<String>,
    /// `--http-probe-apispec` then `--http-probe-apispec-file`.
    pub api_specs: Vec<SlimApiSpec>,
}

/// One `--http-probe-apispec PATH[:PREFIX]` or `--http-probe-apispec-file FILE[:PREFIX]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SlimApiSpec {
    /// Where the app serves it.
    pub path: Option<String>,
    /// The host file holding it.
    pub file: Option<PathBuf>,
    pub prefix: Option<String>,
    /// The file's spec, read and checked.
    pub loaded: Option<super::apispec::ApiSpec>,
}

/// Parses `--http-probe-apispec PATH[:PREFIX]`.
pub fn parse_apispec(raw: &str) -> std::result::Result<SlimApiSpec, String> {
    let (path, prefix) = split_prefix(raw);
    if !path.starts_with('/') {
        return Err(format!(
            "--http-probe-apispec {raw:?}: expected PATH[:PREFIX] with PATH the URL path the \
             app serves its spec at (e.g. /openapi.json); for a file use --http-probe-apispec-file"
        ));
    }
    check_prefix("--http-probe-apispec", raw, prefix)?;
    Ok(SlimApiSpec {
        path: Some(path.to_string()),
        file: None,
        prefix: prefix.map(str::to_string),
        loaded: None,
    })
}

/// Parses `--http-probe-apispec-file FILE[:PREFIX]` (a relative FILE against `cwd`) and reads
/// and checks the spec, so that a bad one fails before anything runs. A value naming an
/// existing file is taken whole, colons and all.
pub fn parse_apispec_file(raw: &str, cwd: &Path) -> Result<SlimApiSpec> {
    let (file, prefix) = if cwd.join(raw).is_file() {
        (raw, None)
    } else {
        split_prefix(raw)
    };
    check_prefix("--http-probe-apispec-file", raw, prefix).map_err(Error::Usage)?;
    let full = cwd.join(file);
    if !full.is_file() {
        return Err(Error::Usage(format!(
            "--http-probe-apispec-file {raw:?}: {} is not a file",
            full.display()
        )));
    }
    let mut probe = ApiSpecProbe {
        port: 0,
        scheme: Scheme::Http,
        path: None,
        file: Some(full.clone()),
        prefix: prefix.map(str::to_string),
        loaded: None,
    };
    probe.load_file()?;
    Ok(SlimApiSpec {
        path: None,
        file: Some(full),
        prefix: prefix.map(str::to_string),
        loaded: probe.loaded,
    })
}

/// docker-slim splits the value at its first colon.
fn split_prefix(raw: &str) -> (&str, Option<&str>) {
    match raw.split_once(':') {
        Some((value, prefix)) => (value, Some(prefix)),
        None => (raw, None),
    }
}

fn check_prefix(flag: &str, raw: &str, prefix: Option<&str>) -> std::result::Result<(), String> {
    match prefix {
        Some(prefix) if !prefix.starts_with('/') => Err(format!(
            "{flag} {raw:?}: the PREFIX after ':' must be a path starting with '/', got {prefix:?}"
        )),
        _ => Ok(()),
    }
}

impl Default for SlimProbes {
    fn default() -> Self {
        SlimProbes {
            commands: Vec::new(),
            ports: Vec::new(),
            default_probe: true,
            default_crawl: true,
            start_wait_s: 0,
            exec: Vec::new(),
            host_exec: Vec::new(),
            api_specs: Vec::new(),
        }
    }
}

impl SlimProbes {
    /// Whether any docker-slim probing flag changes what minify does by default.
    pub fn is_default(&self) -> bool {
        self == &SlimProbes::default()
    }
}

/// `--http-probe-ports 80,8080`.
pub fn parse_ports(list: &str) -> std::result::Result<Vec<u16>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("--http-probe-ports: {p:?} is not a port"))
        })
        .collect()
}

/// The scheme of a command on `port`.
fn scheme_for(protocol: &str, port: u16) -> std::result::Result<Scheme, String> {
    match protocol {
        "" if port == 443 => Ok(Scheme::Https),
        "" | "http" | "h2c" => Ok(Scheme::Http),
        "https" | "http2" => Ok(Scheme::Https),
        other => Err(format!(
            "protocol {other:?}: WebSocket probes are not supported; drive the socket with a \
             host probe (--host-exec 'websocat ws://{{host}}:{{port:{port}}}/…')"
        )),
    }
}

/// The HTTP probe of `cmd` on `port`.
fn http_probe(cmd: &SlimCommand, port: u16) -> std::result::Result<HttpProbe, String> {
    let mut headers = std::collections::BTreeMap::new();
    for line in &cmd.headers {
        // docker-slim skips malformed header lines; so does minify, but says so.
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "header {line:?}: expected \"Name: value\" (docker-slim ignores it silently)"
            ));
        };
        headers.insert(name.trim().to_string(), value.trim().to_string());
    }
    if !cmd.username.is_empty() || !cmd.password.is_empty() {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", cmd.username, cmd.password));
        headers.insert("Authorization".into(), format!("Basic {token}"));
    }
    Ok(HttpProbe {
        port,
        scheme: scheme_for(&cmd.protocol, port)?,
        method: cmd.method.clone(),
        path: cmd.resource.clone(),
        headers,
        body: (!cmd.body.is_empty() && cmd.body_file.is_none()).then(|| cmd.body.clone()),
        body_file: cmd.body_file.clone(),
        expect_status: None,
        body_contains: None,
        repeat: 1,
        delay_before_ms: 0,
        dynamic_body: None,
    })
}

/// Merges docker-slim's probing into `base` (the `--probes` file, if any) for an image whose
/// probed ports are `exposed_tcp`. `body_file`s stay paths (for `minify probes convert`);
/// [`read_bodies`] inlines them for a run.
pub fn to_probe_file(
    slim: &SlimProbes,
    base: Option<&ProbeFile>,
    exposed_tcp: &[u16],
) -> std::result::Result<ProbeFile, String> {
    let mut file = base.cloned().unwrap_or_default();
    let ports: Vec<u16> = if slim.ports.is_empty() {
        exposed_tcp.to_vec()
    } else {
        slim.ports.clone()
    };
    let crawl = |file: &mut ProbeFile, port: u16, scheme: Scheme, depth: Option<usize>| {
        if !file.crawl.iter().any(|c| c.port == port) {
            file.crawl.push(CrawlRule {
                port,
                enabled: true,
                max_depth: depth,
                max_pages: None,
                scheme,
            });
        }
    };
    if !slim.commands.is_empty() {
        // Custom commands replace docker-slim's default probe.
        file.default_probes = Some(false);
    } else if !slim.default_probe {
        file.default_probes = Some(false);
    } else if !slim.ports.is_empty() || !slim.default_crawl {
        // The default probe on the chosen ports only (GET /, crawled unless turned off).
        file.default_probes = Some(false);
        for &port in &ports {
            let scheme = if port == 443 {
                Scheme::Https
            } else {
                Scheme::Http
            };
            crawl(&mut file, port, scheme, (!slim.default_crawl).then_some(0));
        }
    }
    let first_new = file.http.len();
    for (i, cmd) in slim.commands.iter().enumerate() {
        let targets = if cmd.port != 0 {
            vec![cmd.port]
        } else {
            ports.clone()
        };
        if targets.is_empty() {
            return Err(format!(
                "HTTP probe command {} ({} {}) has no port and there is no exposed TCP port to \
                 probe: give the command a port, or --http-probe-ports",
                i + 1,
                cmd.method,
                cmd.resource
            ));
        }
        for port in targets {
            let probe =
                http_probe(cmd, port).map_err(|e| format!("HTTP probe command {}: {e}", i + 1))?;
            if cmd.crawl {
                crawl(&mut file, port, probe.scheme, None);
            }
            file.http.push(probe);
        }
    }
    for (i, spec) in slim.api_specs.iter().enumerate() {
        if ports.is_empty() {
            return Err(format!(
                "API spec probe {} has no port to go to: the image exposes no TCP port; give \
                 --http-probe-ports or --expose",
                i + 1
            ));
        }
        for &port in &ports {
            file.api_specs.push(ApiSpecProbe {
                port,
                scheme: if port == 443 {
                    Scheme::Https
                } else {
                    Scheme::Http
                },
                path: spec.path.clone(),
                file: spec.file.clone(),
                prefix: spec.prefix.clone(),
                loaded: spec.loaded.clone(),
            });
        }
    }
    if slim.start_wait_s > 0 {
        if let Some(first) = file.http.get_mut(first_new) {
            first.delay_before_ms += slim.start_wait_s * 1000;
        }
    }
    for snippet in &slim.exec {
        file.exec.push(ExecProbe {
            command: vec!["sh".into(), "-c".into(), snippet.clone()],
            expect_exit: None,
            output_contains: None,
            dynamic_output: false,
        });
    }
    for command in &slim.host_exec {
        file.host.push(HostProbe {
            command: command.clone(),
            expect_exit: None,
            output_contains: None,
            dynamic_output: false,
            timeout_ms: 30_000,
        });
    }
    file.validate()?;
    Ok(file)
}

/// The probe file a build runs with: `file` (`--probes`) with docker-slim's probing merged in
/// for an image probed on `exposed_tcp`, bodies read. `None` when neither says anything.
pub fn resolve(
    file: Option<&ProbeFile>,
    slim: Option<&SlimProbes>,
    exposed_tcp: &[u16],
) -> Result<Option<ProbeFile>> {
    let Some(slim) = slim.filter(|s| !s.is_default()) else {
        return Ok(file.cloned());
    };
    let mut merged = to_probe_file(slim, file, exposed_tcp).map_err(Error::Usage)?;
    read_bodies(&mut merged).map_err(Error::Usage)?;
    for spec in &mut merged.api_specs {
        if spec.loaded.is_none() {
            spec.load_file()?;
        }
    }
    Ok(Some(merged))
}

/// Reads every `body_file` of `file` into `body` (for a run).
pub fn read_bodies(file: &mut ProbeFile) -> std::result::Result<(), String> {
    for probe in &mut file.http {
        if let Some(path) = probe.body_file.take() {
            let body = std::fs::read_to_string(&path)
                .map_err(|e| format!("body_file {}: {e}", path.display()))?;
            probe.body = Some(body);
        }
    }
    Ok(())
}

/// Lines of a docker-slim list file (`--exec-file`, `--host-exec-file`, `--*-path-file`):
/// trimmed, empty lines skipped.
pub fn read_lines(flag: &str, path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{flag} {}: cannot read it: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_cmd_values_parse_as_docker_slim_reads_them() {
        let c = parse_cmd("/health").unwrap();
        assert_eq!((c.method.as_str(), c.resource.as_str()), ("GET", "/health"));
        let c = parse_cmd("post:/api/items").unwrap();
        assert_eq!((c.method.as_str(), c.protocol.as_str()), ("POST", ""));
        let c = parse_cmd("https:PUT:/x").unwrap();
        assert_eq!((c.protocol.as_str(), c.method.as_str()), ("https", "PUT"));
        let c = parse_cmd("crawl:/").unwrap();
        assert!(c.crawl);
        assert_eq!(c.resource, "/");
        let c = parse_cmd("crawl:http:GET:/docs").unwrap();
        assert!(c.crawl && c.protocol == "http" && c.resource == "/docs");
        let c = parse_cmd(":/x").unwrap();
        assert_eq!(c.method, "GET");
        for bad in ["health", "FETCH:/x", "gopher:GET:/x", "a:b:c:/d", "GET:"] {
            assert!(parse_cmd(bad).is_err(), "{bad} should be rejected");
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn command_files_parse_with_defaults_and_cwd_relative_body_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        write(dir.path(), "data/item.json", r#"{"name":"x"}"#);
        let file = write(
            dir.path(),
            "cmds.json",
            r#"{"commands":[
                {"resource":"/"},
                {"protocol":"http","method":"post","resource":"/items","port":8000,
                 "headers":["Content-Type: application/json"],"body_file":"data/item.json"},
                {"resource":"/admin","username":"u","password":"p","crawl":true}]}"#,
        );
        let cmds = load_cmd_file(&file, dir.path()).unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0].method, "GET");
        assert_eq!(cmds[1].method, "POST");
        assert_eq!(cmds[1].port, 8000);
        assert_eq!(
            cmds[1].body_file.as_deref(),
            Some(dir.path().join("data/item.json").as_path())
        );
        assert!(cmds[2].crawl);

        let slim = SlimProbes {
            commands: cmds,
            ..SlimProbes::default()
        };
        let mut probe_file = to_probe_file(&slim, None, &[8000, 443]).unwrap();
        assert_eq!(probe_file.default_probes, Some(false));
        // 2 ports for each port-less command, 1 for the one with a port.
        assert_eq!(probe_file.http.len(), 5);
        assert_eq!(probe_file.http[1].scheme, Scheme::Https, "443 is HTTPS");
        let post = &probe_file.http[2];
        assert_eq!((post.port, post.method.as_str()), (8000, "POST"));
        assert_eq!(post.headers["Content-Type"], "application/json");
        let admin = &probe_file.http[3];
        assert_eq!(admin.headers["Authorization"], "Basic dTpw");
        assert_eq!(
            probe_file.crawl.iter().map(|c| c.port).collect::<Vec<_>>(),
            vec![8000, 443]
        );
        read_bodies(&mut probe_file).unwrap();
        assert_eq!(probe_file.http[2].body.as_deref(), Some(r#"{"name":"x"}"#));
    }

    #[test]
    fn bad_command_files_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (r#"{"commands":[{"resource":"x"}]}"#, "commands[0].resource"),
            (
                r#"{"commands":[{"resource":"/","method":"FETCH"}]}"#,
                "commands[0].method",
            ),
            (
                r#"{"commands":[{"resource":"/","protocol":"ftp"}]}"#,
                "commands[0].protocol",
            ),
            (
                r#"{"commands":[{"resource":"/","port":70000}]}"#,
                "commands[0].port",
            ),
            (
                r#"{"commands":[{"resource":"/","body_file":"nope.json"}]}"#,
                "body_file",
            ),
            (r#"{"commands":[{"resource":"/","fastcgi":{}}]}"#, "FastCGI"),
            (r#"{"commands":[{"resourc":"/"}]}"#, "unknown field"),
            ("{", "EOF"),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "c.json", text);
            let err = load_cmd_file(&path, dir.path()).unwrap_err();
            assert!(matches!(err, Error::Usage(_)));
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn default_probe_switches_and_ports() {
        let exposed = [8080];
        // Nothing said: minify's own default crawl of the exposed ports.
        let file = to_probe_file(&SlimProbes::default(), None, &exposed).unwrap();
        assert_eq!(file, ProbeFile::default());
        // --http-probe=false: no default probe.
        let off = SlimProbes {
            default_probe: false,
            ..SlimProbes::default()
        };
        assert_eq!(
            to_probe_file(&off, None, &exposed).unwrap().default_probes,
            Some(false)
        );
        // --http-probe-ports 9000 --http-probe-crawl=false: GET / on 9000, no links followed.
        let ports = SlimProbes {
            ports: vec![9000],
            default_crawl: false,
            ..SlimProbes::default()
        };
        let file = to_probe_file(&ports, None, &exposed).unwrap();
        assert_eq!(file.default_probes, Some(false));
        assert_eq!(file.crawl.len(), 1);
        assert_eq!(
            (file.crawl[0].port, file.crawl[0].max_depth),
            (9000, Some(0))
        );
        // A port-less command on an image without ports is an error naming the fix.
        let cmd = SlimProbes {
            commands: vec![parse_cmd("/x").unwrap()],
            ..SlimProbes::default()
        };
        assert!(to_probe_file(&cmd, None, &[])
            .unwrap_err()
            .contains("--http-probe-ports"));
        // ws is refused; start wait delays the first command; exec and host-exec map over.
        let ws = SlimProbes {
            commands: vec![parse_cmd("ws:GET:/socket").unwrap()],
            ..SlimProbes::default()
        };
        assert!(to_probe_file(&ws, None, &exposed)
            .unwrap_err()
            .contains("WebSocket"));
        let more = SlimProbes {
            commands: vec![parse_cmd("/a").unwrap(), parse_cmd("/b").unwrap()],
            start_wait_s: 2,
            exec: vec!["ls /".into()],
            host_exec: vec!["curl -fsS http://{host}:{port:8080}/".into()],
            ..SlimProbes::default()
        };
        let file = to_probe_file(&more, None, &exposed).unwrap();
        assert_eq!(file.http[0].delay_before_ms, 2000);
        assert_eq!(file.http[1].delay_before_ms, 0);
        assert_eq!(file.exec[0].command, ["sh", "-c", "ls /"]);
        assert_eq!(file.host.len(), 1);
    }

    #[test]
    fn api_spec_flags_parse_as_docker_slim_splits_them_and_go_to_every_probed_port() {
        let spec = parse_apispec("/openapi.json").unwrap();
        assert_eq!(
            (spec.path.as_deref(), spec.prefix.as_deref()),
            (Some("/openapi.json"), None)
        );
        let spec = parse_apispec("/spec/yaml:/api/v2").unwrap();
        assert_eq!(
            (spec.path.as_deref(), spec.prefix.as_deref()),
            (Some("/spec/yaml"), Some("/api/v2"))
        );
        assert!(parse_apispec("openapi.json").is_err());
        assert!(parse_apispec("/openapi.json:v2").is_err());

        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "api.yaml",
            "openapi: 3.0.0\npaths:\n  /ping: {get: {}}\n",
        );
        // A colon in an existing file's name is part of the name, not a prefix.
        write(dir.path(), "a:b.json", r#"{"swagger": "2.0", "paths": {}}"#);
        let file = parse_apispec_file("api.yaml:/v3", dir.path()).unwrap();
        assert_eq!(file.file, Some(dir.path().join("api.yaml")));
        assert_eq!(file.prefix.as_deref(), Some("/v3"));
        assert!(file.loaded.is_some());
        let colon = parse_apispec_file("a:b.json", dir.path()).unwrap();
        assert_eq!(colon.prefix, None);
        assert!(matches!(
            parse_apispec_file("nope.json", dir.path()),
            Err(Error::Usage(_))
        ));
        write(dir.path(), "bad.yaml", "paths: {}\n");
        let err = parse_apispec_file("bad.yaml", dir.path()).unwrap_err();
        assert!(matches!(err, Error::ApiSpec(_)), "{err}");
        assert!(err.to_string().contains("bad.yaml"), "{err}");

        let slim = SlimProbes {
            api_specs: vec![spec, file],
            ..SlimProbes::default()
        };
        let merged = to_probe_file(&slim, None, &[8000, 443]).unwrap();
        assert_eq!(
            merged.default_probes, None,
            "API specs do not replace the default probe (as in docker-slim)"
        );
        let ports: Vec<(u16, Scheme, bool)> = merged
            .api_specs
            .iter()
            .map(|a| (a.port, a.scheme, a.file.is_some()))
            .collect();
        assert_eq!(
            ports,
            vec![
                (8000, Scheme::Http, false),
                (443, Scheme::Https, false),
                (8000, Scheme::Http, true),
                (443, Scheme::Https, true),
            ]
        );
        assert!(to_probe_file(&slim, None, &[])
            .unwrap_err()
            .contains("--http-probe-ports"));
    }

    #[test]
    fn merged_into_a_probe_file_and_round_trips_as_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let body = write(dir.path(), "b.txt", "hello");
        let base = ProbeFile {
            http: vec![http_probe(&parse_cmd("/base").unwrap(), 80).unwrap()],
            ..ProbeFile::default()
        };
        let slim = SlimProbes {
            commands: vec![SlimCommand {
                body_file: Some(body),
                ..parse_cmd("POST:/upload").unwrap()
            }],
            ..SlimProbes::default()
        };
        let file = to_probe_file(&slim, Some(&base), &[80]).unwrap();
        assert_eq!(file.http.len(), 2);
        let yaml = serde_yaml::to_string(&file).unwrap();
        let path = write(dir.path(), "out.yaml", &yaml);
        let loaded = ProbeFile::load(&path).unwrap();
        assert_eq!(loaded.http[1].body.as_deref(), Some("hello"));
        assert_eq!(loaded.http[1].method, "POST");
    }
}
