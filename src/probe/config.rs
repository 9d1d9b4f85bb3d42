//! The probe file (`--probes FILE`, YAML or JSON by extension): the requests, exchanges and
//! commands that drive an app through its real paths, readiness rules, and keep/drop rules, so
//! that CI needs one file. Unknown keys are errors; every error names the line or field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::apispec::{self, ApiSpec, SpecError};
use crate::{Error, Result};

/// Everything a probe file can say. All sections are optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProbeFile {
    /// Run the default crawl of every exposed port too (default true; `--no-default-probes`).
    #[serde(default)]
    pub default_probes: Option<bool>,
    #[serde(default)]
    pub http: Vec<HttpProbe>,
    /// Per-port crawl settings (overrides the default crawl for that port).
    #[serde(default)]
    pub crawl: Vec<CrawlRule>,
    #[serde(default)]
    pub tcp: Vec<TcpProbe>,
    #[serde(default)]
    pub exec: Vec<ExecProbe>,
    #[serde(default)]
    pub host: Vec<HostProbe>,
    /// OpenAPI/Swagger documents whose every operation is probed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_specs: Vec<ApiSpecProbe>,
    #[serde(default)]
    pub readiness: Vec<Readiness>,
    #[serde(default)]
    pub keep: KeepRules,
    /// `probe` (stop right after probing), a number of seconds, or `signal` (wait for SIGUSR1
    /// or Enter).
    #[serde(default)]
    pub continue_after: Option<ContinueAfter>,
}

/// An HTTP request and what its answer must be.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// Container port, e.g. 8000.
    pub port: u16,
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Inline body.
    #[serde(default)]
    pub body: Option<String>,
    /// Body read from a file, relative to the probe file.
    #[serde(default)]
    pub body_file: Option<PathBuf>,
    /// Expected status: `200`, `"2xx"`, `[200, 204]` or `"200-299"`. Any status if absent.
    #[serde(default)]
    pub expect_status: Option<StatusExpectation>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default)]
    pub delay_before_ms: u64,
    /// How `--verify` compares this answer's body.
    #[serde(default)]
    pub dynamic_body: Option<DynamicBody>,
}

/// An OpenAPI 3.x or Swagger 2.0 document (JSON or YAML) whose every operation gets one
/// generated request on `port` (see [`super::apispec`]): fetched from the running app at `path`
/// once the port is ready, or read from a host `file`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiSpecProbe {
    pub port: u16,
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
    /// Where the running app serves the spec, e.g. `/openapi.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A host file holding the spec, relative to the probe file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Replaces the spec's base path (`servers[0].url`'s path, `basePath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The file's document, read and checked when the probe file is loaded.
    #[serde(skip)]
    pub loaded: Option<ApiSpec>,
}

impl ApiSpecProbe {
    /// Reads and checks `file` (already resolved), and that every operation gets a request:
    /// a bad spec fails before anything runs.
    pub fn load_file(&mut self) -> Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            origin: origin.clone(),
            source,
        })?;
        let spec = apispec::parse(&text, &origin)?;
        apispec::requests(&spec, self.prefix.as_deref())?;
        self.loaded = Some(spec);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// A status code rule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum StatusExpectation {
    Code(u16),
    AnyOf(Vec<u16>),
    /// `"2xx"` or `"200-299"`.
    Pattern(String),
}

impl StatusExpectation {
    pub fn matches(&self, status: u16) -> bool {
        match self {
            StatusExpectation::Code(code) => *code == status,
            StatusExpectation::AnyOf(codes) => codes.contains(&status),
            StatusExpectation::Pattern(pattern) => match parse_status_pattern(pattern) {
                Some((low, high)) => (low..=high).contains(&status),
                None => false,
            },
        }
    }
}

fn parse_status_pattern(pattern: &str) -> Option<(u16, u16)> {
    let pattern = pattern.trim();
    if let Some(class) = pattern
        .strip_suffix("xx")
        .or_else(|| pattern.strip_suffix("XX"))
    {
        let digit: u16 = class.parse().ok().filter(|d| (1..=5).contains(d))?;
        return Some((digit * 100, digit * 100 + 99));
    }
    let (low, high) = pattern.split_once('-')?;
    let (low, high) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (low <= high).then_some((low, high))
}

/// Answers that legitimately differ between runs (timestamps, ids). Written `ignore` or
/// `{replace: {pattern: REGEX, with: TEXT}}` (YAML's own enum tags are not needed).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "RawDynamicBody")]
pub enum DynamicBody {
    /// Compare only status (and errors), never the body.
    Ignore,
    /// Replace every match of `pattern` with `with` before hashing.
    Replace {
        pattern: String,
        #[serde(default)]
        with: String,
    },
}

/// Crawl settings of one port.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrawlRule {
    pub port: u16,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub max_depth: Option<usize>,
    #[serde(default)]
    pub max_pages: Option<usize>,
    #[serde(default = "default_scheme")]
    pub scheme: Scheme,
}

/// Bytes sent to a TCP port and the reply they must get.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    pub port: u16,
    /// Sent as is after unescaping `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`.
    pub send: String,
    /// The reply must start with this (same escapes). Any reply if absent.
    #[serde(default)]
    pub expect_prefix: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default)]
    pub delay_before_ms: u64,
}

/// A command run inside the running container (`docker exec`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecProbe {
    pub command: Vec<String>,
    #[serde(default)]
    pub expect_exit: Option<i64>,
    #[serde(default)]
    pub output_contains: Option<String>,
    /// `--verify` compares the output unless this is true.
    #[serde(default)]
    pub dynamic_output: bool,
}

/// A command run on the host with `{host}` and `{port:N}` filled with the published address of
/// container port N.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostProbe {
    /// Run with `sh -c`.
    pub command: String,
    #[serde(default)]
    pub expect_exit: Option<i64>,
    #[serde(default)]
    pub output_contains: Option<String>,
    #[serde(default)]
    pub dynamic_output: bool,
    #[serde(default = "default_host_timeout_ms")]
    pub timeout_ms: u64,
}

/// How to tell that a port is ready.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub port: u16,
    #[serde(default)]
    pub wait: WaitStrategy,
    #[serde(default = "default_ready_timeout_s")]
    pub timeout_s: u64,
}

/// Written `http`, `tcp` or `{delay_ms: N}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(try_from = "RawWaitStrategy")]
pub enum WaitStrategy {
    /// Any HTTP answer to `GET /` (the default).
    #[default]
    Http,
    /// The port holds a connection open (a closed connection means only docker's proxy answered).
    Tcp,
    /// Just wait this many milliseconds.
    DelayMs(u64),
}

/// Keep/drop rules, the same as the command-line flags.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeepRules {
    #[serde(default)]
    pub include_paths: Vec<String>,
    #[serde(default)]
    pub include_bins: Vec<String>,
    #[serde(default)]
    pub include_shell: bool,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub preserve_paths: Vec<String>,
    /// docker-slim's `--include-exe NAME`: found on the image's PATH directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_exes: Vec<String>,
    /// docker-slim's `--include-node-package NAME`: every `node_modules/NAME` tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_node_packages: Vec<String>,
    /// docker-slim's path sets, kept where present: `zoneinfo`, `cert-all`, `cert-bundles`,
    /// `cert-dirs`, `oslibs-net`, `ssh-client`, `licenses`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_sets: Vec<String>,
}

/// What happens after the probes ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ContinueAfter {
    /// Stop right away.
    Probe,
    /// Let the app run this long.
    Duration(Duration),
    /// Wait for SIGUSR1 or Enter on stdin (manual driving).
    Signal,
}

impl std::str::FromStr for ContinueAfter {
    type Err = String;

    fn from_str(value: &str) -> std::result::Result<Self, String> {
        match value.trim() {
            // docker-slim's exec and host-exec modes: minify runs those probes with the others.
            "probe" | "exec" | "host-exec" => Ok(ContinueAfter::Probe),
            // minify's signal mode waits for SIGUSR1 or Enter: docker-slim's enter and signal.
            "signal" | "enter" => Ok(ContinueAfter::Signal),
            // docker-slim's timeout mode without a number: 60 seconds.
            "timeout" => Ok(ContinueAfter::Duration(Duration::from_secs(60))),
            mode @ ("app-exit" | "container.probe") => Err(format!(
                "continue-after {mode:?} (docker-slim) is not supported: give a number of seconds, or signal"
            )),
            combined if combined.contains('&') => Err(format!(
                "continue-after {combined:?}: combined docker-slim modes are not supported; minify runs every probe, then stops (probe), waits (SECONDS) or waits for you (signal)"
            )),
            seconds => seconds
                .parse::<u64>()
                .map(|s| ContinueAfter::Duration(Duration::from_secs(s)))
                .map_err(|_| {
                    format!("expected probe, signal or a number of seconds (or docker-slim's enter, exec, timeout), got {value:?}")
                }),
        }
    }
}

impl<'de> Deserialize<'de> for ContinueAfter {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) => Ok(ContinueAfter::Duration(Duration::from_secs(s))),
            Raw::Word(word) => word.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum RawDynamicBody {
    Word(String),
    Replace { replace: RawReplace },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplace {
    pattern: String,
    #[serde(default)]
    with: String,
}

impl TryFrom<RawDynamicBody> for DynamicBody {
    type Error = String;

    fn try_from(raw: RawDynamicBody) -> std::result::Result<Self, String> {
        match raw {
            RawDynamicBody::Word(word) if word == "ignore" => Ok(DynamicBody::Ignore),
            RawDynamicBody::Word(word) => Err(format!(
                "expected `ignore` or {{replace: {{pattern, with}}}}, got {word:?}"
            )),
            RawDynamicBody::Replace { replace } => Ok(DynamicBody::Replace {
                pattern: replace.pattern,
                with: replace.with,
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum RawWaitStrategy {
    Word(String),
    Delay { delay_ms: u64 },
}

impl TryFrom<RawWaitStrategy> for WaitStrategy {
    type Error = String;

    fn try_from(raw: RawWaitStrategy) -> std::result::Result<Self, String> {
        match raw {
            RawWaitStrategy::Word(word) => match word.as_str() {
                "http" => Ok(WaitStrategy::Http),
                "tcp" => Ok(WaitStrategy::Tcp),
                _ => Err(format!(
                    "expected http, tcp or {{delay_ms: N}}, got {word:?}"
                )),
            },
            RawWaitStrategy::Delay { delay_ms } => Ok(WaitStrategy::DelayMs(delay_ms)),
        }
    }
}

fn default_scheme() -> Scheme {
    Scheme::Http
}
fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/".into()
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_host_timeout_ms() -> u64 {
    30_000
}
fn default_ready_timeout_s() -> u64 {
    60
}

impl ProbeFile {
    /// Reads and checks a probe file; YAML for `.yaml`/`.yml`, JSON for `.json`.
    pub fn load(path: &Path) -> Result<ProbeFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!("--probes {}: cannot read it: {e}", path.display()))
        })?;
        let bad = |message: String| Error::Usage(format!("--probes {}: {message}", path.display()));
        let mut file: ProbeFile = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?,
            Some("json") => serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("the file name must end in .yaml, .yml or .json".into())),
        };
        file.validate().map_err(bad)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, probe) in file.http.iter_mut().enumerate() {
            if let Some(body_file) = &probe.body_file {
                if probe.body.is_some() {
                    return Err(bad(format!("http[{i}]: body and body_file are exclusive")));
                }
                let full = base.join(body_file);
                let body = std::fs::read_to_string(&full)
                    .map_err(|e| bad(format!("http[{i}].body_file {}: {e}", full.display())))?;
                probe.body = Some(body);
            }
        }
        for spec in &mut file.api_specs {
            if let Some(relative) = spec.file.take() {
                spec.file = Some(base.join(relative));
                spec.load_file()?;
            }
        }
        Ok(file)
    }

    /// Checks what serde cannot: ranges, patterns, regexes, escapes.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (i, probe) in self.http.iter().enumerate() {
            let field = format!("http[{i}]");
            if !probe.path.starts_with('/') {
                return Err(format!(
                    "{field}.path: must start with '/', got {:?}",
                    probe.path
                ));
            }
            if reqwest::Method::from_bytes(probe.method.as_bytes()).is_err() {
                return Err(format!(
                    "{field}.method: {:?} is not an HTTP method",
                    probe.method
                ));
            }
            if let Some(StatusExpectation::Pattern(pattern)) = &probe.expect_status {
                if parse_status_pattern(pattern).is_none() {
                    return Err(format!(
                        "{field}.expect_status: expected a code, a list, \"2xx\" or \"200-299\", got {pattern:?}"
                    ));
                }
            }
            if probe.repeat == 0 {
                return Err(format!("{field}.repeat: must be at least 1"));
            }
            if let Some(DynamicBody::Replace { pattern, .. }) = &probe.dynamic_body {
                regex::Regex::new(pattern)
                    .map_err(|e| format!("{field}.dynamic_body.replace.pattern: {e}"))?;
            }
        }
        for (i, probe) in self.tcp.iter().enumerate() {
            unescape(&probe.send).map_err(|e| format!("tcp[{i}].send: {e}"))?;
            if let Some(prefix) = &probe.expect_prefix {
                unescape(prefix).map_err(|e| format!("tcp[{i}].expect_prefix: {e}"))?;
            }
        }
        for (i, probe) in self.exec.iter().enumerate() {
            if probe.command.is_empty() {
                return Err(format!("exec[{i}].command: must not be empty"));
            }
        }
        for (i, probe) in self.host.iter().enumerate() {
            for placeholder in placeholders(&probe.command) {
                if placeholder != "host" && parse_port_placeholder(&placeholder).is_none() {
                    return Err(format!(
                        "host[{i}].command: unknown placeholder {{{placeholder}}} (expected {{host}} or {{port:N}})"
                    ));
                }
            }
        }
        for (i, spec) in self.api_specs.iter().enumerate() {
            let field = format!("api_specs[{i}]");
            match (&spec.path, &spec.file) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!(
                        "{field}: give either path (fetched from the app) or file (read here)"
                    ))
                }
                (Some(path), None) if !path.starts_with('/') => {
                    return Err(format!("{field}.path: must start with '/', got {path:?}"))
                }
                _ => {}
            }
            if let Some(prefix) = &spec.prefix {
                if !prefix.starts_with('/') {
                    return Err(format!(
                        "{field}.prefix: must start with '/', got {prefix:?}"
                    ));
                }
            }
        }
        for pattern in &self.keep.exclude {
            globset::Glob::new(pattern).map_err(|e| format!("keep.exclude {pattern:?}: {e}"))?;
        }
        for path in self
            .keep
            .include_paths
            .iter()
            .chain(&self.keep.include_bins)
            .chain(&self.keep.preserve_paths)
        {
            if !path.starts_with('/') {
                return Err(format!("keep: paths must be absolute, got {path:?}"));
            }
        }
        Ok(())
    }

    /// Container ports named anywhere in the file (they are published even if not exposed).
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .http
            .iter()
            .map(|p| p.port)
            .chain(self.crawl.iter().map(|c| c.port))
            .chain(self.tcp.iter().map(|t| t.port))
            .chain(self.api_specs.iter().map(|a| a.port))
            .chain(self.readiness.iter().map(|r| r.port))
            .chain(self.host.iter().flat_map(|h| {
                placeholders(&h.command)
                    .into_iter()
                    .filter_map(|p| parse_port_placeholder(&p))
                    .collect::<Vec<_>>()
            }))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// The `{...}` placeholders of a host command, without braces.
pub fn placeholders(command: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = command;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        found.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
    found
}

/// `port:6379` → 6379.
pub fn parse_port_placeholder(placeholder: &str) -> Option<u16> {
    placeholder.strip_prefix("port:")?.trim().parse().ok()
}

/// Decodes `\r \n \t \0 \\ \xHH` escapes.
pub fn unescape(text: &str) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("bad \\x escape {hex:?} (expected two hex digits)"))?;
                out.push(byte);
            }
            other => {
                return Err(format!(
                    "unknown escape \\{}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn yaml_and_json_files_parse_to_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "body.json", r#"{"name":"x"}"#);
        let yaml = write(
            dir.path(),
            "p.yaml",
            "http:\n  - port: 8000\n    method: POST\n    path: /api/items\n    body_file: body.json\n    expect_status: 2xx\n    headers: {Content-Type: application/json}\ntcp:\n  - port: 6379\n    send: \"PING\\\\r\\\\n\"\n    expect_prefix: \"+PONG\"\ncontinue_after: 5\nkeep:\n  include_shell: true\n  exclude: [\"/usr/share/doc/**\"]\n",
        );
        let json = write(
            dir.path(),
            "p.json",
            r#"{"http":[{"port":8000,"method":"POST","path":"/api/items","body_file":"body.json","expect_status":"2xx","headers":{"Content-Type":"application/json"}}],
               "tcp":[{"port":6379,"send":"PING\\r\\n","expect_prefix":"+PONG"}],"continue_after":5,
               "keep":{"include_shell":true,"exclude":["/usr/share/doc/**"]}}"#,
        );
        let from_yaml = ProbeFile::load(&yaml).unwrap();
        let from_json = ProbeFile::load(&json).unwrap();
        assert_eq!(from_yaml, from_json);
        assert_eq!(from_yaml.http[0].body.as_deref(), Some(r#"{"name":"x"}"#));
        assert_eq!(unescape(&from_yaml.tcp[0].send).unwrap(), b"PING\r\n");
        assert_eq!(
            from_yaml.continue_after,
            Some(ContinueAfter::Duration(Duration::from_secs(5)))
        );
        assert_eq!(from_yaml.ports(), vec![6379, 8000]);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line_or_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("http:\n  - port: 80\n    pth: /x\n", "unknown field `pth`"),
            ("http:\n  - port: 80\n    path: /x\n", ""),
            ("http:\n  - port: 80\n    path: x\n", "http[0].path"),
            (
                "http:\n  - port: 80\n    expect_status: 2yy\n",
                "http[0].expect_status",
            ),
            ("http:\n  - port: 99999\n", "line 2"),
            ("tcp:\n  - port: 1\n    send: \"\\\\q\"\n", "tcp[0].send"),
            (
                "host:\n  - command: \"redis-cli -p {prt:6379}\"\n",
                "{prt:6379}",
            ),
            (
                "continue_after: later\n",
                "expected probe, signal or a number",
            ),
            ("keep:\n  exclude: [\"[\"]\n", "keep.exclude"),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "case.yaml", text);
            match ProbeFile::load(&path) {
                Ok(_) => assert!(expected.is_empty(), "{text:?} should fail with {expected}"),
                Err(e) => {
                    assert!(!expected.is_empty(), "{text:?} failed: {e}");
                    assert!(e.to_string().contains(expected), "{text:?}: {e}");
                    assert!(matches!(e, Error::Usage(_)));
                }
            }
        }
        let wrong_ext = write(dir.path(), "p.toml", "");
        assert!(ProbeFile::load(&wrong_ext)
            .unwrap_err()
            .to_string()
            .contains(".yaml"));
    }

    #[test]
    fn status_expectations_match_codes_lists_classes_and_ranges() {
        assert!(StatusExpectation::Code(404).matches(404));
        assert!(StatusExpectation::AnyOf(vec![200, 204]).matches(204));
        assert!(StatusExpectation::Pattern("2xx".into()).matches(299));
        assert!(!StatusExpectation::Pattern("2xx".into()).matches(300));
        assert!(StatusExpectation::Pattern("200-302".into()).matches(301));
    }

    #[test]
    fn escapes_decode_and_bad_ones_are_rejected() {
        assert_eq!(unescape(r"a\r\n\x00\x7f\\").unwrap(), b"a\r\n\x00\x7f\\");
        assert!(unescape(r"\xZZ").is_err());
        assert_eq!(
            placeholders("redis-cli -h {host} -p {port:6379}"),
            vec!["host", "port:6379"]
        );
    }

    #[test]
    fn every_example_probe_file_in_the_repository_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                ProbeFile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                checked += 1;
            }
        }
        assert!(checked >= 4, "probes/ holds the documented examples");
    }
}
