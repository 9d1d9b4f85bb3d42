//! A probe session against one running container: wait until its ports are ready, then run a
//! [`Plan`] (default crawl plus the probe file's steps). Every probe that ran is returned as a
//! concrete [`Step`] so that `--verify` can replay exactly the same requests against the slim image.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::{self, DynamicBody, ProbeFile, Scheme, StatusExpectation, WaitStrategy};
use super::http::{self, CrawlLimits};
use super::{apispec, Operation, ProbeResult};
use crate::docker::DockerApi;

/// Why a container's port never got ready for the probes, or a probe could not be addressed.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("container port {port} is not published")]
    NotPublished { port: u16 },
    #[error("{url:?} is not a usable URL: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    /// [`WaitStrategy::Http`]: no HTTP answer before the deadline.
    #[error("port {port}: {base} did not answer HTTP in time (last error: {})", crate::error::chain(.source))]
    HttpTimeout {
        port: u16,
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// A port assumed to speak HTTP held connections but never answered before the deadline.
    #[error("port {port} did not answer HTTP in time")]
    NoHttpAnswer { port: u16 },
    #[error("port {port} did not accept TCP connections in time")]
    NoTcp { port: u16 },
    #[error("the container stopped while waiting for port {port}")]
    Stopped { port: u16 },
}

/// One concrete, replayable probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    Http {
        port: u16,
        scheme: Scheme,
        method: String,
        path: String,
        headers: BTreeMap<String, String>,
        body: Option<String>,
        expect_status: Option<StatusExpectation>,
        body_contains: Option<String>,
        dynamic_body: Option<DynamicBody>,
        /// The API spec operation this request was generated for (boxed: most steps have
        /// none, and it would make every step bigger).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Box<Operation>>,
        /// This GET fetches an API spec: the answer must be a usable one (checked again when
        /// `--verify` replays it, so both runs judge it alike).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        api_spec: bool,
    },
    Tcp {
        port: u16,
        send: Vec<u8>,
        expect_prefix: Option<Vec<u8>>,
        timeout_ms: u64,
    },
    Exec {
        command: Vec<String>,
        expect_exit: Option<i64>,
        output_contains: Option<String>,
        dynamic_output: bool,
    },
    Host {
        command: String,
        expect_exit: Option<i64>,
        output_contains: Option<String>,
        dynamic_output: bool,
        timeout_ms: u64,
    },
}

/// What to do against a container: which ports to crawl, which steps to run, how to wait.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Ports crawled from `/` (container port, scheme, limits).
    pub crawl: Vec<(u16, Scheme, CrawlLimits)>,
    pub steps: Vec<(Duration, Step)>,
    /// Container port → how to wait for it and for how long.
    pub readiness: BTreeMap<u16, (WaitStrategy, Duration)>,
    /// Ports crawled only because the image exposes them: that they speak HTTP is assumed, not
    /// stated, and [`Target::prepare`] checks it.
    pub assumed_http: std::collections::BTreeSet<u16>,
    /// API specs fetched from the running app, whose operations then run after the steps.
    pub api_specs: Vec<SpecFetch>,
}

/// An API spec the app serves: fetched once the port is ready, then one request per operation.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecFetch {
    pub port: u16,
    pub scheme: Scheme,
    pub path: String,
    /// Replaces the spec's base path.
    pub prefix: Option<String>,
}

/// What [`Target::run_plan`] did: the concrete steps (replayable), their results (same order),
/// and how many of the first ones were the crawl's.
#[derive(Debug, Clone, Default)]
pub struct PlanRun {
    pub steps: Vec<Step>,
    pub results: Vec<ProbeResult>,
    pub crawled: usize,
}

/// The steps of an API spec's operations on `port`; `spec` names the spec in the report.
pub fn api_steps(
    requests: &[apispec::ApiRequest],
    port: u16,
    scheme: Scheme,
    spec: &str,
) -> Vec<Step> {
    requests
        .iter()
        .map(|request| Step::Http {
            port,
            scheme,
            method: request.method.clone(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            // Any answer is an answer: generated data may well be refused (404, 422), and
            // `--verify` compares the status anyway.
            expect_status: None,
            body_contains: None,
            dynamic_body: None,
            operation: Some(Box::new(Operation {
                spec: spec.to_string(),
                method: request.method.clone(),
                path: request.template.clone(),
            })),
            api_spec: false,
        })
        .collect()
}

impl Plan {
    /// The plan for an image exposing `exposed_tcp`: the default crawl (unless turned off) and
    /// the probe file's steps, repeats expanded.
    pub fn new(
        file: Option<&ProbeFile>,
        exposed_tcp: &[u16],
        default_probes: bool,
        limits: &CrawlLimits,
        ready_timeout: Duration,
    ) -> Plan {
        let empty = ProbeFile::default();
        let file = file.unwrap_or(&empty);
        let default_probes = default_probes && file.default_probes.unwrap_or(true);
        let mut plan = Plan::default();
        if default_probes {
            // A port the file speaks raw TCP to, or waits for as TCP, is not HTTP: never crawl it.
            let tcp_port = |port: u16| {
                file.tcp.iter().any(|probe| probe.port == port)
                    || file
                        .readiness
                        .iter()
                        .any(|rule| rule.port == port && rule.wait == WaitStrategy::Tcp)
            };
            for &port in exposed_tcp {
                if file.crawl.iter().all(|rule| rule.port != port) && !tcp_port(port) {
                    plan.crawl.push((port, Scheme::Http, limits.clone()));
                    let stated = file.http.iter().any(|probe| probe.port == port)
                        || file.api_specs.iter().any(|spec| spec.port == port)
                        || file.readiness.iter().any(|rule| rule.port == port);
                    if !stated {
                        plan.assumed_http.insert(port);
                    }
                }
            }
        }
        for rule in file.crawl.iter().filter(|rule| rule.enabled) {
            let rule_limits = CrawlLimits {
                max_depth: rule.max_depth.unwrap_or(limits.max_depth),
                max_pages: rule.max_pages.unwrap_or(limits.max_pages),
                ..limits.clone()
            };
            plan.crawl.push((rule.port, rule.scheme, rule_limits));
        }
        for probe in &file.http {
            for _ in 0..probe.repeat {
                let step = Step::Http {
                    port: probe.port,
                    scheme: probe.scheme,
                    method: probe.method.to_ascii_uppercase(),
                    path: probe.path.clone(),
                    headers: probe.headers.clone(),
                    body: probe.body.clone(),
                    expect_status: probe.expect_status.clone(),
                    body_contains: probe.body_contains.clone(),
                    dynamic_body: probe.dynamic_body.clone(),
                    operation: None,
                    api_spec: false,
                };
                plan.steps
                    .push((Duration::from_millis(probe.delay_before_ms), step));
            }
        }
        for probe in &file.tcp {
            for _ in 0..probe.repeat {
                // validate() checked the escapes.
                let step = Step::Tcp {
                    port: probe.port,
                    send: config::unescape(&probe.send).unwrap_or_default(),
                    expect_prefix: probe
                        .expect_prefix
                        .as_deref()
                        .and_then(|p| config::unescape(p).ok()),
                    timeout_ms: probe.timeout_ms,
                };
                plan.steps
                    .push((Duration::from_millis(probe.delay_before_ms), step));
            }
        }
        for probe in &file.exec {
            let step = Step::Exec {
                command: probe.command.clone(),
                expect_exit: probe.expect_exit,
                output_contains: probe.output_contains.clone(),
                dynamic_output: probe.dynamic_output,
            };
            plan.steps.push((Duration::ZERO, step));
        }
        for probe in &file.host {
            let step = Step::Host {
                command: probe.command.clone(),
                expect_exit: probe.expect_exit,
                output_contains: probe.output_contains.clone(),
                dynamic_output: probe.dynamic_output,
                timeout_ms: probe.timeout_ms,
            };
            plan.steps.push((Duration::ZERO, step));
        }
        for spec in &file.api_specs {
            match (&spec.loaded, &spec.path) {
                // A file read (and checked) when the probe file was loaded.
                (Some(loaded), _) => {
                    let requests =
                        apispec::requests(loaded, spec.prefix.as_deref()).unwrap_or_default();
                    let label = loaded.origin.clone();
                    plan.steps.extend(
                        api_steps(&requests, spec.port, spec.scheme, &label)
                            .into_iter()
                            .map(|step| (Duration::ZERO, step)),
                    );
                }
                (None, Some(path)) => plan.api_specs.push(SpecFetch {
                    port: spec.port,
                    scheme: spec.scheme,
                    path: path.clone(),
                    prefix: spec.prefix.clone(),
                }),
                (None, None) => {}
            }
        }
        // Readiness: HTTP for crawled and HTTP-probed ports, TCP for ports only spoken to raw,
        // unless the file says otherwise.
        for fetch in &plan.api_specs {
            plan.readiness
                .insert(fetch.port, (WaitStrategy::Http, ready_timeout));
        }
        for (port, _, _) in &plan.crawl {
            plan.readiness
                .insert(*port, (WaitStrategy::Http, ready_timeout));
        }
        for (_, step) in &plan.steps {
            match step {
                Step::Http { port, .. } => {
                    plan.readiness
                        .insert(*port, (WaitStrategy::Http, ready_timeout));
                }
                Step::Tcp { port, .. } => {
                    plan.readiness
                        .entry(*port)
                        .or_insert((WaitStrategy::Tcp, ready_timeout));
                }
                _ => {}
            }
        }
        for rule in &file.readiness {
            plan.readiness.insert(
                rule.port,
                (rule.wait.clone(), Duration::from_secs(rule.timeout_s)),
            );
        }
        plan
    }

    /// Every container port the plan talks to (they must be published).
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.readiness.keys().copied().collect();
        for (_, step) in &self.steps {
            if let Step::Http { port, .. } | Step::Tcp { port, .. } = step {
                ports.push(*port);
            }
        }
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    pub fn is_empty(&self) -> bool {
        self.crawl.is_empty() && self.steps.is_empty() && self.api_specs.is_empty()
    }

    /// Treats `port` as a plain TCP service: no crawl, ready when it accepts and holds a
    /// connection.
    pub fn demote_to_tcp(&mut self, port: u16) {
        self.crawl.retain(|(p, _, _)| *p != port);
        self.assumed_http.remove(&port);
        if let Some((strategy, _)) = self.readiness.get_mut(&port) {
            *strategy = WaitStrategy::Tcp;
        }
    }
}

/// How long a port that accepts TCP gets to answer a plain `GET /` before it is taken for a
/// non-HTTP service.
pub const HTTP_DETECT_WINDOW: Duration = Duration::from_secs(5);

/// Whether `answer`, the first bytes a server sent back to `GET / HTTP/1.0`, is HTTP.
pub fn looks_like_http(answer: &[u8]) -> bool {
    answer.starts_with(b"HTTP/")
}

/// The container a session talks to.
pub struct Target<'a, D> {
    pub docker: &'a D,
    pub container: &'a str,
    /// Container port → published host port on `host`.
    pub published: BTreeMap<u16, u16>,
    /// Where the published ports are reached: loopback for a local daemon, the endpoint's
    /// host for a remote one.
    pub host: String,
}

impl<'a, D: DockerApi> Target<'a, D> {
    pub fn new(docker: &'a D, container: &'a str, published: BTreeMap<u16, u16>) -> Self {
        Target {
            docker,
            container,
            published,
            host: crate::docker::publish_address(docker.endpoint()).probe_host,
        }
    }

    /// `host:port` as a URL authority (IPv6 hosts bracketed).
    fn authority(&self, host_port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{host_port}", self.host)
        } else {
            format!("{}:{host_port}", self.host)
        }
    }

    fn host_port(&self, port: u16) -> Result<u16, ReadyError> {
        self.published
            .get(&port)
            .copied()
            .ok_or(ReadyError::NotPublished { port })
    }

    async fn alive(&self) -> bool {
        self.docker
            .inspect_container(self.container)
            .await
            .is_ok_and(|s| s.running)
    }

    /// Waits for every port of `readiness`; returns the first port that never got ready.
    pub async fn wait_ready(
        &self,
        readiness: &BTreeMap<u16, (WaitStrategy, Duration)>,
        client: &reqwest::Client,
    ) -> Result<(), ReadyError> {
        for (port, (strategy, timeout)) in readiness {
            let host_port = self.host_port(*port)?;
            let deadline = Instant::now() + *timeout;
            match strategy {
                WaitStrategy::Http => {
                    let base = self.base_url(*port, Scheme::Http)?;
                    http::wait_until_answering(client, &base, deadline, || self.alive())
                        .await
                        .map_err(|e| match e {
                            http::WaitError::Timeout(source) => ReadyError::HttpTimeout {
                                port: *port,
                                base: base.to_string(),
                                source,
                            },
                            http::WaitError::Stopped => ReadyError::Stopped { port: *port },
                        })?;
                }
                WaitStrategy::Tcp => self.wait_tcp(*port, host_port, deadline).await?,
                WaitStrategy::DelayMs(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            }
        }
        Ok(())
    }

    /// Waits until the plan's ports are ready. A port whose HTTP is only assumed
    /// ([`Plan::assumed_http`]) is asked `GET /` until it answers ([`Self::detect_http`]); if it
    /// does not answer HTTP it is probed as TCP from then on
    /// ([`Plan::demote_to_tcp`]) and a note says so: a redis or a database must not fail the
    /// build for not speaking HTTP. Returns those notes.
    pub async fn prepare(
        &self,
        plan: &mut Plan,
        client: &reqwest::Client,
    ) -> Result<Vec<String>, ReadyError> {
        let mut notes = Vec::new();
        let assumed: Vec<u16> = plan.assumed_http.iter().copied().collect();
        for port in assumed {
            let Some((WaitStrategy::Http, timeout)) = plan.readiness.get(&port).cloned() else {
                continue;
            };
            let host_port = self.host_port(port)?;
            let (speaks_http, last) = self
                .detect_http(port, host_port, Instant::now() + timeout)
                .await?;
            if !speaks_http {
                plan.demote_to_tcp(port);
                notes.push(format!(
                    "port {port} accepts TCP but did not answer HTTP to GET / ({last}): \
                     probed as TCP (ready when it accepts and holds a connection), not crawled; \
                     add tcp/exec probes in a probe file to exercise it"
                ));
            }
        }
        self.wait_ready(&plan.readiness, client).await?;
        Ok(notes)
    }

    /// Waits for a port assumed to speak HTTP and tells whether it does, by sending `GET /
    /// HTTP/1.0` until the deadline: an HTTP status line says yes at once, an answer in another
    /// protocol no at once; a connection closed unanswered or refused means nothing listens yet
    /// (Docker's proxy accepts and closes); one held without an answer means the app is up but
    /// maybe not HTTP (or not ready), and once that has lasted [`HTTP_DETECT_WINDOW`] the
    /// answer is no. Asking right
    /// away instead of first waiting for a connection to be held saves the length of that wait
    /// on every HTTP app (0.3 s of nginx's 0.36 s probe phase). Returns what the last attempt
    /// saw with a no.
    async fn detect_http(
        &self,
        port: u16,
        host_port: u16,
        deadline: Instant,
    ) -> Result<(bool, String), ReadyError> {
        /// How long an attempt waits for the first bytes of an answer.
        const ANSWER_WAIT: Duration = Duration::from_millis(300);
        let mut up_since: Option<Instant> = None;
        let mut delay = Duration::from_millis(20);
        loop {
            let attempt = async {
                let mut stream =
                    tokio::net::TcpStream::connect((self.host.as_str(), host_port)).await?;
                let request = format!(
                    "GET / HTTP/1.0\r\nHost: {}\r\nUser-Agent: minify\r\n\r\n",
                    self.authority(host_port)
                );
                stream.write_all(request.as_bytes()).await?;
                let mut answer = vec![0u8; 16];
                let mut got = 0;
                while got < 5 {
                    let n = stream.read(&mut answer[got..]).await?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                answer.truncate(got);
                Ok::<Vec<u8>, std::io::Error>(answer)
            };
            let last = match tokio::time::timeout(ANSWER_WAIT, attempt).await {
                Ok(Ok(answer)) if looks_like_http(&answer) => return Ok((true, String::new())),
                // Closed unanswered: Docker's proxy with nothing behind it, or an app that drops
                // a request it does not like (redis closes on `Host:`, a cross-protocol attack
                // to it). Only the app holds a connection it is not sent anything on.
                Ok(Ok(answer)) if answer.is_empty() => self
                    .holds_connection(host_port)
                    .await
                    .then(|| "closed the connection on GET /".to_string()),
                Ok(Err(e)) if e.kind() != std::io::ErrorKind::ConnectionRefused => self
                    .holds_connection(host_port)
                    .await
                    .then(|| format!("GET / failed: {e}")),
                Ok(Err(_)) => None,
                // A server that answers a request line in another protocol (or greets first:
                // SSH, SMTP, MySQL) is up and is not HTTP; no HTTP server does that.
                Ok(Ok(answer)) => {
                    return Ok((
                        false,
                        format!("answered {:?}", String::from_utf8_lossy(&answer)),
                    ))
                }
                Err(_) => Some("no answer".to_string()),
            };
            let now = Instant::now();
            if let Some(last) = last {
                let since = *up_since.get_or_insert(now);
                if now.duration_since(since) >= HTTP_DETECT_WINDOW {
                    return Ok((false, last));
                }
            }
            if now + delay > deadline {
                return Err(match up_since {
                    Some(_) => ReadyError::NoHttpAnswer { port },
                    None => ReadyError::NoTcp { port },
                });
            }
            if !self.alive().await {
                return Err(ReadyError::Stopped { port });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_millis(250));
        }
    }

    /// Whether a new connection to `host_port` stays open for 300 ms (or talks) while nothing is
    /// sent on it: the app is listening behind Docker's proxy (see [`Self::wait_tcp`]).
    async fn holds_connection(&self, host_port: u16) -> bool {
        let Ok(stream) = tokio::net::TcpStream::connect((self.host.as_str(), host_port)).await
        else {
            return false;
        };
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(300), stream.peek(&mut byte)).await,
            Err(_) | Ok(Ok(1..))
        )
    }

    /// Docker's userland proxy accepts connections even when nothing listens behind it and
    /// closes them at once; a connection that stays open (or talks) means the app is there.
    async fn wait_tcp(
        &self,
        port: u16,
        host_port: u16,
        deadline: Instant,
    ) -> Result<(), ReadyError> {
        // Short and slowly growing: the wait is polled on loopback, where a poll costs nothing
        // and a long backoff step is pure delay once the app is up (nginx: ~0.1 s of 0.36).
        let mut delay = Duration::from_millis(20);
        loop {
            if self.holds_connection(host_port).await {
                return Ok(());
            }
            if Instant::now() + delay > deadline {
                return Err(ReadyError::NoTcp { port });
            }
            if !self.alive().await {
                return Err(ReadyError::Stopped { port });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_millis(250));
        }
    }

    /// Runs the plan: crawls first, then the steps in file order, then the API specs the app
    /// serves (each fetched, then its operations). Returns the steps that ran (crawls and specs
    /// expanded into the requests they made) with their results.
    pub async fn run_plan(&self, plan: &Plan, client: &reqwest::Client) -> PlanRun {
        let mut ran = PlanRun::default();
        for (port, scheme, limits) in &plan.crawl {
            let base = match self.base_url(*port, *scheme) {
                Ok(base) => base,
                Err(message) => {
                    ran.results
                        .push(failed(&format!("{port}/tcp"), "crawl /", message));
                    ran.steps.push(get_step(*port, *scheme, "/"));
                    continue;
                }
            };
            for result in http::crawl(client, &format!("{port}/tcp"), &base, limits).await {
                let path = result
                    .request
                    .strip_prefix("GET ")
                    .unwrap_or("/")
                    .to_string();
                ran.steps.push(get_step(*port, *scheme, &path));
                ran.results.push(result);
            }
        }
        ran.crawled = ran.results.len();
        for (delay, step) in &plan.steps {
            if !delay.is_zero() {
                tokio::time::sleep(*delay).await;
            }
            ran.results.push(self.run_step(step, client).await);
            ran.steps.push(step.clone());
        }
        for fetch in &plan.api_specs {
            let step = spec_step(fetch);
            let (result, body) = self.send_http(&step, client).await;
            let requests = match (result.ok(), result.status, body) {
                (true, Some(status), Some(body)) => {
                    // send_http checked it: this parse succeeds.
                    spec_requests(status, &body, &fetch.path, fetch.prefix.as_deref()).ok()
                }
                _ => None,
            };
            ran.steps.push(step);
            ran.results.push(result);
            let Some(requests) = requests else { continue };
            let label = format!("GET {} on {}/tcp", fetch.path, fetch.port);
            for step in api_steps(&requests, fetch.port, fetch.scheme, &label) {
                ran.results.push(self.run_step(&step, client).await);
                ran.steps.push(step);
            }
        }
        ran
    }

    /// Replays concrete steps (from an earlier [`Target::run_plan`]) in order.
    pub async fn replay(&self, steps: &[Step], client: &reqwest::Client) -> Vec<ProbeResult> {
        let mut results = Vec::with_capacity(steps.len());
        for step in steps {
            results.push(self.run_step(step, client).await);
        }
        results
    }

    fn base_url(&self, port: u16, scheme: Scheme) -> Result<reqwest::Url, ReadyError> {
        let scheme = match scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let host_port = self.host_port(port)?;
        let url = format!("{scheme}://{}/", self.authority(host_port));
        reqwest::Url::parse(&url).map_err(|source| ReadyError::BadUrl { url, source })
    }

    pub async fn run_step(&self, step: &Step, client: &reqwest::Client) -> ProbeResult {
        let started = Instant::now();
        let mut result = match step {
            Step::Http { .. } => self.run_http(step, client).await,
            Step::Tcp {
                port,
                send,
                expect_prefix,
                timeout_ms,
            } => {
                self.run_tcp(*port, send, expect_prefix.as_deref(), *timeout_ms)
                    .await
            }
            Step::Exec {
                command,
                expect_exit,
                output_contains,
                dynamic_output,
            } => {
                let request = command.join(" ");
                match self.docker.exec(self.container, command).await {
                    Ok((code, output)) => command_result(
                        "exec",
                        &request,
                        code,
                        &output,
                        *expect_exit,
                        output_contains,
                        *dynamic_output,
                    ),
                    Err(e) => failed("exec", &request, e),
                }
            }
            Step::Host {
                command,
                expect_exit,
                output_contains,
                dynamic_output,
                timeout_ms,
            } => {
                self.run_host(
                    command,
                    *expect_exit,
                    output_contains,
                    *dynamic_output,
                    *timeout_ms,
                )
                .await
            }
        };
        result.duration_ms = started.elapsed().as_millis() as u64;
        result
    }

    async fn run_http(&self, step: &Step, client: &reqwest::Client) -> ProbeResult {
        self.send_http(step, client).await.0
    }

    /// Sends an HTTP step; the result, and the body when one came back.
    async fn send_http(
        &self,
        step: &Step,
        client: &reqwest::Client,
    ) -> (ProbeResult, Option<bytes::Bytes>) {
        let Step::Http {
            port,
            scheme,
            method,
            path,
            headers,
            body,
            expect_status,
            body_contains,
            dynamic_body,
            operation,
            api_spec,
        } = step
        else {
            unreachable!("send_http is only called with HTTP steps")
        };
        let target = format!("{port}/tcp");
        let request = format!("{method} {path}");
        let url = match self.base_url(*port, *scheme).and_then(|base| {
            base.join(path).map_err(|source| ReadyError::BadUrl {
                url: format!("{base}{path}"),
                source,
            })
        }) {
            Ok(url) => url,
            Err(message) => {
                let mut result = failed(&target, &request, message);
                result.operation = operation.as_deref().cloned();
                return (result, None);
            }
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = client.request(method, url.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = body {
            builder = builder.body(body.clone());
        }
        let mut result = ProbeResult {
            kind: "http".into(),
            target,
            request,
            operation: operation.as_deref().cloned(),
            ..empty_result()
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                result.error = Some(e.to_string());
                return (result, None);
            }
        };
        let status = response.status().as_u16();
        result.status = Some(status);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                result.error = Some(format!("reading body: {e}"));
                return (result, None);
            }
        };
        result.body_bytes = bytes.len() as u64;
        result.body_sha256 = normalized_hash(&bytes, dynamic_body.as_ref());
        let mut problems = Vec::new();
        if let Some(expected) = expect_status {
            if !expected.matches(status) {
                problems.push(format!(
                    "status {status}, expected {}",
                    describe_status(expected)
                ));
            }
        }
        if let Some(needle) = body_contains {
            if !String::from_utf8_lossy(&bytes).contains(needle.as_str()) {
                problems.push(format!("body does not contain {needle:?}"));
            }
        }
        if *api_spec {
            let origin = format!("{url} (container port {port})");
            if let Err(problem) = spec_requests(status, &bytes, &origin, None) {
                problems.push(problem.to_string());
            }
        }
        if !problems.is_empty() {
            result.error = Some(problems.join("; "));
        }
        (result, Some(bytes))
    }

    async fn run_tcp(
        &self,
        port: u16,
        send: &[u8],
        expect_prefix: Option<&[u8]>,
        timeout_ms: u64,
    ) -> ProbeResult {
        let target = format!("{port}/tcp");
        let request = format!("send {:?}", String::from_utf8_lossy(send));
        let host_port = match self.host_port(port) {
            Ok(p) => p,
            Err(message) => return failed(&target, &request, message),
        };
        let exchange = async {
            let mut stream =
                tokio::net::TcpStream::connect((self.host.as_str(), host_port)).await?;
            stream.write_all(send).await?;
            let mut reply = Vec::new();
            let mut buf = [0u8; 4096];
            let wanted = expect_prefix.map_or(1, <[u8]>::len).max(1);
            while reply.len() < wanted {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                reply.extend_from_slice(&buf[..n]);
            }
            std::io::Result::Ok(reply)
        };
        let mut result = ProbeResult {
            kind: "tcp".into(),
            target,
            request,
            ..empty_result()
        };
        match tokio::time::timeout(Duration::from_millis(timeout_ms), exchange).await {
            Err(_) => result.error = Some(format!("no reply within {timeout_ms} ms")),
            Ok(Err(e)) => result.error = Some(e.to_string()),
            Ok(Ok(reply)) => {
                // Only the expected prefix is compared: what follows may be dynamic.
                let compared = match expect_prefix {
                    Some(prefix) => &reply[..prefix.len().min(reply.len())],
                    None => &reply[..],
                };
                result.body_bytes = reply.len() as u64;
                result.body_sha256 = Some(hex::encode(Sha256::digest(compared)));
                if let Some(prefix) = expect_prefix {
                    if !reply.starts_with(prefix) {
                        result.error = Some(format!(
                            "reply {:?} does not start with {:?}",
                            String::from_utf8_lossy(&reply),
                            String::from_utf8_lossy(prefix)
                        ));
                    }
                } else if reply.is_empty() {
                    result.error = Some("the connection closed without a reply".into());
                }
            }
        }
        result
    }

    async fn run_host(
        &self,
        command: &str,
        expect_exit: Option<i64>,
        output_contains: &Option<String>,
        dynamic_output: bool,
        timeout_ms: u64,
    ) -> ProbeResult {
        let mut filled = command.to_string();
        for placeholder in config::placeholders(command) {
            let value = if placeholder == "host" {
                self.host.clone()
            } else {
                match config::parse_port_placeholder(&placeholder).map(|p| self.host_port(p)) {
                    Some(Ok(host_port)) => host_port.to_string(),
                    Some(Err(message)) => return failed("host", command, message),
                    None => continue,
                }
            };
            filled = filled.replace(&format!("{{{placeholder}}}"), &value);
        }
        let run = tokio::process::Command::new("sh")
            .args(["-c", &filled])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_millis(timeout_ms), run).await {
            Err(_) => failed(
                "host",
                command,
                format!("did not finish within {timeout_ms} ms"),
            ),
            Ok(Err(e)) => failed("host", command, format!("cannot run sh: {e}")),
            Ok(Ok(out)) => {
                let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
                output.push_str(&String::from_utf8_lossy(&out.stderr));
                let code = out.status.code().map_or(-1, i64::from);
                command_result(
                    "host",
                    command,
                    code,
                    &output,
                    expect_exit,
                    output_contains,
                    dynamic_output,
                )
            }
        }
    }
}

fn get_step(port: u16, scheme: Scheme, path: &str) -> Step {
    Step::Http {
        port,
        scheme,
        method: "GET".into(),
        path: path.to_string(),
        headers: BTreeMap::new(),
        body: None,
        expect_status: None,
        body_contains: None,
        dynamic_body: None,
        operation: None,
        api_spec: false,
    }
}

/// The GET of an API spec the app serves.
fn spec_step(fetch: &SpecFetch) -> Step {
    let mut step = get_step(fetch.port, fetch.scheme, &fetch.path);
    if let Step::Http { api_spec, .. } = &mut step {
        *api_spec = true;
    }
    step
}

/// The requests of the spec in an answer to a spec fetch from `origin` (a URL), or why there
/// are none.
fn spec_requests(
    status: u16,
    body: &[u8],
    origin: &str,
    prefix: Option<&str>,
) -> Result<Vec<apispec::ApiRequest>, apispec::SpecError> {
    if !(200..300).contains(&status) {
        return Err(apispec::SpecError::NotServed {
            origin: origin.to_string(),
            status,
        });
    }
    apispec::parse(&String::from_utf8_lossy(body), origin)
        .and_then(|spec| apispec::requests(&spec, prefix))
}

fn empty_result() -> ProbeResult {
    ProbeResult {
        kind: String::new(),
        target: String::new(),
        request: String::new(),
        status: None,
        body_sha256: None,
        body_bytes: 0,
        exit_code: None,
        error: None,
        duration_ms: 0,
        operation: None,
    }
}

/// A probe that could not be sent; `why` becomes its result's error (report text).
fn failed(target: &str, request: &str, why: impl std::fmt::Display) -> ProbeResult {
    ProbeResult {
        kind: target.split('/').next_back().unwrap_or(target).into(),
        target: target.into(),
        request: request.into(),
        error: Some(why.to_string()),
        ..empty_result()
    }
}

fn command_result(
    kind: &str,
    request: &str,
    code: i64,
    output: &str,
    expect_exit: Option<i64>,
    output_contains: &Option<String>,
    dynamic_output: bool,
) -> ProbeResult {
    let mut problems = Vec::new();
    if let Some(expected) = expect_exit {
        if code != expected {
            problems.push(format!("exit code {code}, expected {expected}"));
        }
    }
    if let Some(needle) = output_contains {
        if !output.contains(needle.as_str()) {
            problems.push(format!("output does not contain {needle:?}"));
        }
    }
    ProbeResult {
        kind: kind.into(),
        target: kind.into(),
        request: request.into(),
        body_bytes: output.len() as u64,
        body_sha256: (!dynamic_output).then(|| hex::encode(Sha256::digest(output.as_bytes()))),
        exit_code: Some(code),
        error: (!problems.is_empty())
            .then(|| format!("{}; output: {}", problems.join("; "), tail(output))),
        ..empty_result()
    }
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn describe_status(expected: &StatusExpectation) -> String {
    match expected {
        StatusExpectation::Code(code) => code.to_string(),
        StatusExpectation::AnyOf(codes) => format!("{codes:?}"),
        StatusExpectation::Pattern(pattern) => pattern.clone(),
    }
}

/// The body hash `--verify` compares: none when the body is dynamic, else after replacements.
fn normalized_hash(body: &[u8], dynamic: Option<&DynamicBody>) -> Option<String> {
    match dynamic {
        Some(DynamicBody::Ignore) => None,
        Some(DynamicBody::Replace { pattern, with }) => {
            let text = String::from_utf8_lossy(body);
            let replaced = match regex::Regex::new(pattern) {
                Ok(re) => re.replace_all(&text, with.as_str()).into_owned(),
                Err(_) => text.into_owned(),
            };
            Some(hex::encode(Sha256::digest(replaced.as_bytes())))
        }
        None => Some(hex::encode(Sha256::digest(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::{FakeContainer, FakeDocker};

    /// A fake daemon with one running container `app`, and a target whose port 80 is `host_port`.
    fn docker_with_running_app() -> FakeDocker {
        let docker = FakeDocker::default();
        docker.containers.lock().unwrap().insert(
            "app".into(),
            FakeContainer {
                name: "app".into(),
                labels: Default::default(),
                running: true,
                exit_code: 0,
                image: String::new(),
                healthcheck: false,
                networks: Vec::new(),
            },
        );
        docker
    }

    /// A loopback server: it closes the first `closed` connections unanswered (Docker's proxy
    /// with nothing listening behind it), then answers each request with `answer`, or holds the
    /// connection silently when `answer` is empty.
    async fn server(closed: usize, answer: &'static [u8]) -> u16 {
        use crate::testkit::http::{serve, Reply};
        serve(closed, move |_| match answer {
            [] => Reply::Hold,
            bytes => Reply::Raw(bytes.to_vec()),
        })
        .await
    }

    async fn detect(
        docker: &FakeDocker,
        host_port: u16,
        wait: Duration,
    ) -> Result<(bool, String), ReadyError> {
        let target = Target::new(docker, "app", BTreeMap::from([(80, host_port)]));
        target
            .detect_http(80, host_port, Instant::now() + wait)
            .await
    }

    #[tokio::test]
    async fn an_http_port_is_recognised_without_waiting_for_a_held_connection() {
        let docker = docker_with_running_app();
        let port = server(3, b"HTTP/1.0 200 OK\r\n\r\nhi").await;
        let started = Instant::now();
        assert_eq!(
            detect(&docker, port, Duration::from_secs(10))
                .await
                .unwrap(),
            (true, String::new())
        );
        // Three refused attempts at 20, 30, 45 ms, then the answer: far below the 300 ms a held
        // connection was first waited for.
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_port_answering_another_protocol_is_not_http_at_once() {
        let docker = docker_with_running_app();
        let port = server(0, b"-ERR unknown command\r\n").await;
        let started = Instant::now();
        let (http, last) = detect(&docker, port, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(!http);
        assert!(last.contains("-ERR"), "{last}");
        assert!(started.elapsed() < HTTP_DETECT_WINDOW);
    }

    /// Like redis: holds an idle connection, closes one at once when a request comes in.
    async fn closing_on_request_server() -> u16 {
        crate::testkit::http::serve(0, |_| crate::testkit::http::Reply::Close).await
    }

    #[tokio::test]
    async fn a_port_closing_on_get_but_holding_idle_connections_is_up_and_not_http() {
        let docker = docker_with_running_app();
        let port = closing_on_request_server().await;
        let (http, last) = detect(&docker, port, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(!http);
        assert_eq!(last, "closed the connection on GET /");
    }

    #[tokio::test]
    async fn a_port_holding_connections_silently_is_not_http_after_the_window() {
        let docker = docker_with_running_app();
        let port = server(0, b"").await;
        let started = Instant::now();
        let (http, last) = detect(&docker, port, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(!http);
        assert_eq!(last, "no answer");
        assert!(started.elapsed() >= HTTP_DETECT_WINDOW);
    }

    #[tokio::test]
    async fn a_port_that_never_accepts_fails_with_a_tcp_error_and_a_stopped_app_is_told() {
        let docker = docker_with_running_app();
        let port = server(usize::MAX, b"").await;
        let err = detect(&docker, port, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadyError::NoTcp { port: 80 }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "port 80 did not accept TCP connections in time"
        );
        let stopped = FakeDocker::default();
        let err = detect(&stopped, port, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadyError::Stopped { port: 80 }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the container stopped while waiting for port 80"
        );
    }

    #[test]
    fn a_port_named_in_the_tcp_section_is_never_http_crawled() {
        let file: ProbeFile =
            serde_yaml::from_str("tcp:\n  - {port: 6379, send: 'PING\\r\\n'}\n").unwrap();
        let plan = Plan::new(
            Some(&file),
            &[6379, 8080],
            true,
            &CrawlLimits::default(),
            Duration::from_secs(5),
        );
        assert_eq!(
            plan.crawl.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![8080]
        );
        assert_eq!(plan.readiness[&6379].0, WaitStrategy::Tcp);
        assert_eq!(
            plan.assumed_http.iter().copied().collect::<Vec<_>>(),
            vec![8080],
            "only the exposed port nobody described is assumed to be HTTP"
        );
    }

    #[test]
    fn a_port_demoted_to_tcp_is_not_crawled_and_waits_as_tcp() {
        let mut plan = Plan::new(
            None,
            &[6379],
            true,
            &CrawlLimits::default(),
            Duration::from_secs(5),
        );
        assert!(plan.assumed_http.contains(&6379));
        plan.demote_to_tcp(6379);
        assert!(plan.crawl.is_empty());
        assert!(plan.assumed_http.is_empty());
        assert_eq!(plan.readiness[&6379].0, WaitStrategy::Tcp);
        assert_eq!(plan.ports(), vec![6379]);
    }

    #[test]
    fn only_an_http_status_line_counts_as_http() {
        assert!(looks_like_http(b"HTTP/1.0 200 OK\r\n"));
        assert!(!looks_like_http(b"-ERR wrong number of arguments"));
        assert!(!looks_like_http(b""));
        assert!(!looks_like_http(b"SSH-2.0-OpenSSH"));
    }

    #[test]
    fn plan_expands_repeats_and_picks_readiness_per_port() {
        let file: ProbeFile = serde_yaml::from_str(
            "http:\n  - {port: 8000, path: /a, repeat: 2}\ntcp:\n  - {port: 6379, send: 'PING\\r\\n'}\ncrawl:\n  - {port: 80, enabled: false}\nreadiness:\n  - {port: 6379, wait: {delay_ms: 10}}\n",
        )
        .unwrap();
        let plan = Plan::new(
            Some(&file),
            &[80, 8000],
            true,
            &CrawlLimits::default(),
            Duration::from_secs(5),
        );
        assert_eq!(
            plan.crawl.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![8000]
        );
        assert_eq!(plan.steps.len(), 3);
        assert_eq!(plan.readiness[&8000].0, WaitStrategy::Http);
        assert_eq!(plan.readiness[&6379].0, WaitStrategy::DelayMs(10));
        assert_eq!(plan.ports(), vec![6379, 8000]);

        let off = Plan::new(
            Some(&file),
            &[80, 8000],
            false,
            &CrawlLimits::default(),
            Duration::from_secs(5),
        );
        assert!(
            off.crawl.is_empty(),
            "--no-default-probes turns the crawl off"
        );
    }

    /// A tiny HTTP server: `/openapi.json` is a spec, `/broken.json` is not, anything else
    /// echoes the request line and body. Returns its port.
    async fn api_server() -> u16 {
        const SPEC: &str = r#"{"openapi": "3.0.0", "servers": [{"url": "/v1"}], "paths": {
            "/items/{id}": {"get": {"parameters": [{"name": "id", "in": "path",
                                                    "schema": {"type": "integer"}}]},
                            "delete": {}},
            "/items": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string"}}}}}}}}}}"#;
        use crate::testkit::http::{serve, Reply};
        serve(0, |request| {
            let body = match request.path.as_str() {
                "/openapi.json" => SPEC.to_string(),
                "/broken.json" => "<html>nope</html>".to_string(),
                _ => format!(
                    "{} {}",
                    request.line,
                    String::from_utf8_lossy(&request.body)
                ),
            };
            Reply::ok(&body)
        })
        .await
    }

    #[tokio::test]
    async fn a_served_api_spec_is_fetched_and_its_operations_run_and_replay() {
        let port = api_server().await;
        let docker = crate::docker::fake::FakeDocker::default();
        let target = Target::new(&docker, "c", BTreeMap::from([(8000, port)]));
        let file: ProbeFile = serde_yaml::from_str(
            "api_specs:\n  - {port: 8000, path: /openapi.json}\n  - {port: 8000, path: /broken.json}\n",
        )
        .unwrap();
        let plan = Plan::new(
            Some(&file),
            &[8000],
            false,
            &CrawlLimits::default(),
            Duration::from_secs(5),
        );
        assert_eq!(plan.api_specs.len(), 2);
        assert_eq!(plan.readiness[&8000].0, WaitStrategy::Http);
        assert!(plan.assumed_http.is_empty() && !plan.is_empty());
        let client = http::client(Duration::from_secs(5));
        let ran = target.run_plan(&plan, &client).await;
        let requests: Vec<&str> = ran.results.iter().map(|r| r.request.as_str()).collect();
        assert_eq!(
            requests,
            vec![
                "GET /openapi.json",
                "GET /v1/items/1",
                "POST /v1/items",
                "DELETE /v1/items/1",
                "GET /broken.json",
            ]
        );
        assert_eq!(ran.steps.len(), ran.results.len());
        assert_eq!(ran.crawled, 0);
        let post = &ran.results[2];
        assert!(post.ok(), "{post:?}");
        assert_eq!(
            post.operation,
            Some(Operation {
                spec: "GET /openapi.json on 8000/tcp".into(),
                method: "POST".into(),
                path: "/items".into(),
            })
        );
        let Step::Http { headers, body, .. } = &ran.steps[2] else {
            panic!("an HTTP step")
        };
        assert_eq!(headers["Content-Type"], "application/json");
        assert_eq!(body.as_deref(), Some(r#"{"name":"x"}"#));
        let broken = ran.results.last().unwrap();
        let error = broken.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("/broken.json") && error.contains("not an OpenAPI"),
            "{error}"
        );
        // A replay sends the very same requests (the operations, not a new fetch and parse).
        let replayed = target.replay(&ran.steps, &client).await;
        assert!(crate::verify::compare(&ran.results, &replayed).is_empty());
        assert_eq!(replayed[2].operation, post.operation);
    }

    #[test]
    fn a_spec_file_becomes_plan_steps_and_stated_http_ports() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("spec.yaml"),
            "swagger: '2.0'\nbasePath: /api\npaths:\n  /ping:\n    get: {}\n    head: {}\n",
        )
        .unwrap();
        let probes = dir.path().join("probes.yaml");
        std::fs::write(
            &probes,
            "api_specs:\n  - {port: 9000, file: spec.yaml, prefix: /v2}\n",
        )
        .unwrap();
        let file = ProbeFile::load(&probes).unwrap();
        let plan = Plan::new(
            Some(&file),
            &[9000],
            true,
            &CrawlLimits::default(),
            Duration::from_secs(5),
        );
        let paths: Vec<String> = plan
            .steps
            .iter()
            .map(|(_, step)| match step {
                Step::Http { method, path, .. } => format!("{method} {path}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(paths, vec!["GET /v2/ping", "HEAD /v2/ping"]);
        assert!(
            plan.assumed_http.is_empty(),
            "a port an API spec is probed on is stated HTTP"
        );
        assert!(plan.api_specs.is_empty());
    }

    #[test]
    fn dynamic_bodies_hash_after_replacement_or_not_at_all() {
        let replace = DynamicBody::Replace {
            pattern: r"\d{2}:\d{2}".into(),
            with: "T".into(),
        };
        assert_eq!(
            normalized_hash(b"now 12:30", Some(&replace)),
            normalized_hash(b"now 08:15", Some(&replace))
        );
        assert_ne!(
            normalized_hash(b"now 12:30", None),
            normalized_hash(b"now 08:15", None)
        );
        assert_eq!(normalized_hash(b"x", Some(&DynamicBody::Ignore)), None);
    }

    #[test]
    fn command_results_check_exit_code_and_output() {
        let ok = command_result(
            "exec",
            "true",
            0,
            "done\n",
            Some(0),
            &Some("done".into()),
            false,
        );
        assert!(ok.ok());
        let bad = command_result("exec", "false", 1, "boom\n", Some(0), &None, false);
        assert!(bad.error.unwrap().contains("exit code 1, expected 0"));
    }
}
