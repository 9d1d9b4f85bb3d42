//! The one narrow door to the Docker Engine API. [`DockerApi`] names exactly the calls the
//! pipeline makes; [`Bollard`] implements it over bollard with API-version negotiation (the
//! daemons we meet speak 1.41, bollard defaults to 1.53).

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::{Error, Result};

pub mod auth;
pub mod context;
#[cfg(test)]
pub(crate) mod fake;
pub mod ssh;

/// What the pipeline needs to know about an image in the daemon.
#[derive(Debug, Clone, Default)]
pub struct ImageSummary {
    pub id: String,
    pub size: u64,
    pub repo_tags: Vec<String>,
    /// `ExposedPorts` of the image config (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `Entrypoint` and `Cmd` of the image config (an in-container sensor wraps them).
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// How to create a container: like `docker run IMAGE` plus the sensor's needs.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Container ports (`80/tcp`) to publish on a random loopback port.
    pub publish: Vec<String>,
    /// `HostConfig.CgroupParent`, so a sensor can tell this container's processes apart.
    pub cgroup_parent: Option<String>,
    /// Replaces the image's entrypoint when set (the image's Cmd then is not used unless `cmd` says so).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Extra `--security-opt` values (e.g. `seccomp=...`).
    pub security_opt: Vec<String>,
    /// Labels marking the container as minify's (so leftovers can be found). Named volumes
    /// Docker creates for [`ContainerSpec::mounts`] carry them too.
    pub labels: BTreeMap<String, String>,
    /// `KEY=value` added to (or overriding) the image's environment.
    pub env: Vec<String>,
    /// Overrides the image's USER.
    pub user: Option<String>,
    /// Overrides the image's WORKDIR.
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    /// `HostConfig.NetworkMode`: a network to join instead of the default bridge.
    pub network: Option<String>,
    /// `container[:alias]` links (legacy `--link`).
    pub links: Vec<String>,
    /// `host:ip` lines added to /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// Bind mounts and named volumes; never removed by minify (they are the user's).
    pub mounts: Vec<MountSpec>,
    /// Anonymous volumes at these container paths (removed with the container).
    pub volumes: Vec<String>,
    /// Explicit host bindings of published ports: container port (`80/tcp`) → (host IP, host
    /// port). An empty IP means the [`publish_address`] default (loopback for a local daemon),
    /// an empty port a random one.
    pub port_bindings: BTreeMap<String, (String, String)>,
    /// `/dev/shm` size in bytes.
    pub shm_size: Option<i64>,
    /// Namespaced kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// DNS aliases on [`ContainerSpec::network`] (a compose service's name).
    pub network_aliases: Vec<String>,
    /// More networks (name, aliases) the container joins after it is created, before it
    /// starts: API 1.41 takes only one network in the create request.
    pub more_networks: Vec<(String, Vec<String>)>,
    /// Replaces the image's HEALTHCHECK (a compose service's `healthcheck`).
    pub healthcheck: Option<HealthcheckSpec>,
}

/// A container healthcheck as the Docker API takes it (durations in nanoseconds; 0 = the
/// daemon's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthcheckSpec {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]` (disabled).
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub start_period_ns: i64,
    pub retries: i64,
}

/// A network minify creates (for a compose project), labelled as minify's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// `bridge` when `None`.
    pub driver: Option<String>,
    /// No route out of the network (compose's `internal: true`).
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// A named volume minify creates (for a compose project), labelled as minify's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    /// `local` when `None`.
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The kinds of daemon objects besides containers that minify creates and must remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Network,
    Volume,
}

impl ResourceKind {
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::Network => "network",
            ResourceKind::Volume => "volume",
        }
    }
}

/// A network or volume found by label: its name and all its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledResource {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A bind mount (`source` is an absolute host path) or a named volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl MountSpec {
    /// Whether `source` names a host path (else a named volume).
    pub fn is_bind(&self) -> bool {
        self.source.starts_with('/')
    }
}

/// A container's state as far as the pipeline cares.
#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub running: bool,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// Container port (`80/tcp`) → published host port (see [`publish_address`]).
    pub published: BTreeMap<String, u16>,
    /// PID 1's pid on the daemon's host (0 when not running).
    pub pid: u32,
    /// The container's STOPSIGNAL (`SIGTERM` when the image sets none).
    pub stop_signal: Option<String>,
    /// Its healthcheck's status (`starting`, `healthy`, `unhealthy`); `None` without one.
    pub health: Option<String>,
}

/// How the daemon builds an image (`docker build`) from a context tar streamed to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageBuild {
    /// The name the built image gets.
    pub tag: String,
    /// The Dockerfile's path inside the context tar.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The stage of a multi-stage Dockerfile to build.
    pub target: Option<String>,
    /// The network mode of the RUN steps.
    pub network: Option<String>,
    pub cache_from: Vec<String>,
    /// `host:ip` lines added to /etc/hosts of the RUN steps.
    pub extra_hosts: Vec<String>,
}

/// A container found by label: its id, name (without the leading `/`) and the label's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub id: String,
    pub name: String,
    pub label_value: String,
}

/// The Docker API calls minify makes. Implemented by [`Bollard`]; tests may fake it.
#[allow(async_fn_in_trait)]
pub trait DockerApi {
    /// Where the daemon is (for messages).
    fn endpoint(&self) -> &str;
    async fn inspect_image(&self, image: &str) -> Result<ImageSummary>;
    /// `docker save` as a byte stream; never buffered whole.
    fn save_image(&self, image: &str) -> BoxStream<'static, std::io::Result<Bytes>>;
    /// `docker load` of a docker-archive file, streamed from disk.
    async fn load_image(&self, archive: &Path) -> Result<()>;
    async fn remove_image(&self, image: &str) -> Result<()>;
    /// Pulls `image` (its tag or digest; `latest` when it names neither) from its registry,
    /// logging in with `credentials`; `progress` is told each status line the daemon sends.
    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&auth::Credentials>,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<()>;
    /// Builds an image as `build` says from the context tar `context` (streamed, never held
    /// whole); returns the build's output. The daemon removes the intermediate containers, also
    /// of a failed build.
    async fn build_image(
        &self,
        build: &ImageBuild,
        context: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<String>;
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    async fn inspect_container(&self, id: &str) -> Result<ContainerState>;
    /// Sends the container's STOPSIGNAL, then SIGKILL after `timeout_secs`.
    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()>;
    /// Force-removes the container and its anonymous volumes; absent containers are not an error.
    async fn remove_container(&self, id: &str) -> Result<()>;
    /// The last `lines` lines of stdout and stderr.
    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String>;
    /// Extracts a tar archive into directory `dir` of a (created, maybe not started) container.
    async fn upload_archive(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()>;
    /// Reads `path` out of a container (running or stopped) as a tar archive.
    async fn download_archive(&self, id: &str, path: &str) -> Result<Vec<u8>>;
    /// Runs `command` in the running container (`docker exec`); returns its exit code and its
    /// stdout+stderr.
    async fn exec(&self, id: &str, command: &[String]) -> Result<(i64, String)>;
    /// Every container (running or not) that carries label `key`, with the label's value.
    async fn list_labelled(&self, key: &str) -> Result<Vec<Labelled>>;
    async fn create_network(&self, spec: &NetworkSpec) -> Result<()>;
    /// Joins a created container to one more network, with DNS aliases there.
    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()>;
    /// Creates the volume, or returns the one of that name that exists (as the daemon does:
    /// its labels are then not changed).
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<()>;
    /// Removes a network or volume; an absent one is not an error.
    async fn remove_resource(&self, kind: ResourceKind, name: &str) -> Result<()>;
    /// Every network or volume that carries label `key`, with all its labels.
    async fn list_labelled_resources(
        &self,
        kind: ResourceKind,
        key: &str,
    ) -> Result<Vec<LabelledResource>>;
}

/// A listed network's or volume's name and labels, as bollard gives them.
type NamedLabels = (
    Option<String>,
    Option<std::collections::HashMap<String, String>>,
);

/// [`DockerApi`] over bollard.
#[derive(Clone)]
pub struct Bollard {
    docker: bollard::Docker,
    endpoint: String,
    /// Keeps the `ssh://` relay alive as long as any clone of this client.
    _ssh_relay: Option<std::sync::Arc<ssh::SshRelay>>,
}

impl Bollard {
    /// Connects as the docker CLI would (`DOCKER_HOST`, else the local socket) and negotiates
    /// the API version, failing with [`Error::DaemonUnreachable`] if the daemon does not answer.
    pub async fn connect() -> Result<Bollard> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |source: bollard::errors::Error| Error::DaemonUnreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let ssh_relay = match parse_remote(&endpoint) {
            Some(remote) if remote.scheme == "ssh" => {
                Some(std::sync::Arc::new(ssh::SshRelay::start(remote)?))
            }
            None if endpoint.starts_with("ssh://") => {
                return Err(Error::BadDockerHost {
                    endpoint: endpoint.clone(),
                    expected: "ssh://[user@]host[:port]",
                })
            }
            _ => None,
        };
        let docker = match &ssh_relay {
            Some(relay) => bollard::Docker::connect_with_unix(
                &relay.socket_uri(),
                120,
                bollard::API_DEFAULT_VERSION,
            ),
            None => bollard::Docker::connect_with_defaults(),
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Bollard {
            docker,
            endpoint,
            _ssh_relay: ssh_relay,
        })
    }
}

/// Whether a Docker endpoint is on this host (so a host-side kernel sensor can see its
/// containers). A daemon that claims a local socket but runs in a VM (Docker Desktop) looks local.
pub fn endpoint_is_local(endpoint: &str) -> bool {
    endpoint.starts_with("unix://") || endpoint.starts_with('/')
}

/// Where a container's ports are published and where minify reaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAddress {
    /// `HostIp` of the port bindings.
    pub bind_ip: String,
    /// The host probes connect to (and `{host}` in host-command probes).
    pub probe_host: String,
}

/// For a local daemon (or one reached through loopback) ports are published on 127.0.0.1 only,
/// so the app under test is not exposed to the network. A remote daemon's loopback is out of
/// reach, so there they are published on all its addresses and probed at the endpoint's host.
pub fn publish_address(endpoint: &str) -> PublishAddress {
    match parse_remote(endpoint) {
        Some(remote) if !is_loopback_host(&remote.host) => PublishAddress {
            bind_ip: if remote.host.contains(':') {
                "::"
            } else {
                "0.0.0.0"
            }
            .into(),
            probe_host: remote.host,
        },
        _ => PublishAddress {
            bind_ip: "127.0.0.1".into(),
            probe_host: "127.0.0.1".into(),
        },
    }
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A daemon reached over the network: `tcp|http|https|ssh://[user@]host[:port][/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub scheme: String,
    pub user: Option<String>,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: Option<u16>,
}

/// `None` for sockets (`unix://`, a path) and for malformed endpoints.
pub fn parse_remote(endpoint: &str) -> Option<RemoteEndpoint> {
    let (scheme, rest) = endpoint.split_once("://")?;
    if !["tcp", "http", "https", "ssh"].contains(&scheme) {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user.to_string()), host_port),
        None => (None, authority),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    (!host.is_empty()).then(|| RemoteEndpoint {
        scheme: scheme.to_string(),
        user,
        host: host.to_string(),
        port,
    })
}

/// The create request for `spec`; ports without an explicit binding go on `bind_ip` at a
/// random port.
pub fn create_body(spec: &ContainerSpec, bind_ip: &str) -> bollard::models::ContainerCreateBody {
    use bollard::models::{
        ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions, PortBinding,
    };
    let mut publish = spec.publish.clone();
    for port in spec.port_bindings.keys() {
        if !publish.contains(port) {
            publish.push(port.clone());
        }
    }
    let port_bindings = publish
        .iter()
        .map(|port| {
            let (ip, host_port) = spec.port_bindings.get(port).cloned().unwrap_or_default();
            let binding = PortBinding {
                host_ip: Some(if ip.is_empty() {
                    bind_ip.to_string()
                } else {
                    ip
                }),
                host_port: Some(host_port),
            };
            (port.clone(), Some(vec![binding]))
        })
        .collect();
    let labels: std::collections::HashMap<String, String> =
        spec.labels.clone().into_iter().collect();
    let mounts: Vec<Mount> = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: Some(m.source.clone()),
            typ: Some(if m.is_bind() {
                MountType::BIND
            } else {
                MountType::VOLUME
            }),
            read_only: Some(m.read_only),
            // Applied only if Docker creates the volume: one that exists keeps its labels.
            volume_options: (!m.is_bind()).then(|| MountVolumeOptions {
                labels: Some(labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    // The aliases go with the network the container is created on; further networks are
    // joined with their own aliases before the start (`DockerApi::connect_network`).
    let networking_config = match (&spec.network, spec.network_aliases.is_empty()) {
        (Some(network), false) => Some(bollard::models::NetworkingConfig {
            endpoints_config: Some(std::collections::HashMap::from([(
                network.clone(),
                bollard::models::EndpointSettings {
                    aliases: Some(spec.network_aliases.clone()),
                    ..Default::default()
                },
            )])),
        }),
        _ => None,
    };
    let healthcheck = spec
        .healthcheck
        .as_ref()
        .map(|h| bollard::models::HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(h.interval_ns),
            timeout: Some(h.timeout_ns),
            retries: Some(h.retries),
            start_period: Some(h.start_period_ns),
            ..Default::default()
        });
    ContainerCreateBody {
        networking_config,
        healthcheck,
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: some_vec(&spec.env),
        user: spec.user.clone(),
        working_dir: spec.workdir.clone(),
        hostname: spec.hostname.clone(),
        exposed_ports: Some(publish.clone()),
        volumes: some_vec(&spec.volumes),
        labels: Some(labels),
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            cgroup_parent: spec.cgroup_parent.clone(),
            security_opt: some_vec(&spec.security_opt),
            network_mode: spec.network.clone(),
            links: some_vec(&spec.links),
            extra_hosts: some_vec(&spec.extra_hosts),
            mounts: (!mounts.is_empty()).then_some(mounts),
            shm_size: spec.shm_size,
            sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn api_error(call: &'static str) -> impl Fn(bollard::errors::Error) -> Error {
    move |source| Error::Docker { call, source }
}

/// The daemon's own words for a failed streamed call (a pull's or build's `errorDetail`).
fn stream_error_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error,
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `fromImage` and `tag` of a pull: the repository and its tag or digest, `latest` when the
/// reference names neither (without a tag the daemon would pull every tag).
pub fn pull_reference(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => {
            (image[..colon].to_string(), image[colon + 1..].to_string())
        }
        _ => (image.to_string(), "latest".to_string()),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl DockerApi for Bollard {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageSummary> {
        let info = self.docker.inspect_image(image).await.map_err(|e| {
            if is_not_found(&e) {
                Error::ImageNotFound {
                    image: image.to_string(),
                }
            } else {
                api_error("inspect image")(e)
            }
        })?;
        Ok(ImageSummary {
            id: info.id.unwrap_or_default(),
            size: info.size.unwrap_or(0).max(0) as u64,
            repo_tags: info.repo_tags.unwrap_or_default(),
            exposed_ports: info
                .config
                .as_ref()
                .and_then(|c| c.exposed_ports.clone())
                .unwrap_or_default(),
            entrypoint: info
                .config
                .as_ref()
                .and_then(|c| c.entrypoint.clone())
                .unwrap_or_default(),
            cmd: info.config.and_then(|c| c.cmd).unwrap_or_default(),
        })
    }

    fn save_image(&self, image: &str) -> BoxStream<'static, std::io::Result<Bytes>> {
        let docker = self.docker.clone();
        let image = image.to_string();
        // bollard's stream borrows the client; move a clone into an owning stream.
        futures_util::stream::once(async move {
            docker.export_image(&image).map_err(std::io::Error::other)
        })
        .flatten()
        .boxed()
    }

    async fn load_image(&self, archive: &Path) -> Result<()> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(Error::io(format!("opening {}", archive.display())))?;
        let body = tokio_util::io::ReaderStream::new(file);
        let options = bollard::query_parameters::ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut progress = self.docker.import_image_stream(options, body, None);
        while let Some(item) = progress.next().await {
            item.map_err(api_error("load image"))?;
        }
        Ok(())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        let options = bollard::query_parameters::RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error("remove image")(e)),
        }
    }

    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&auth::Credentials>,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<()> {
        let (from_image, tag) = pull_reference(image);
        let options = bollard::query_parameters::CreateImageOptions {
            from_image: Some(from_image),
            tag: Some(tag),
            ..Default::default()
        };
        let credentials = credentials.map(|c| bollard::auth::DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            serveraddress: Some(c.server.clone()),
            ..Default::default()
        });
        let fail = |message: String| Error::Pull {
            image: image.to_string(),
            message,
        };
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| fail(stream_error_message(e)))?;
            if let Some(status) = info.status {
                let line = match info.id {
                    Some(id) => format!("{id}: {status}"),
                    None => status,
                };
                progress(&line);
            }
        }
        Ok(())
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        context: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<String> {
        let map =
            |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone().into_iter().collect());
        let options = bollard::query_parameters::BuildImageOptions {
            dockerfile: build.dockerfile.clone(),
            t: Some(build.tag.clone()),
            rm: true,
            // Also the intermediate containers of a failed step.
            forcerm: true,
            buildargs: map(&build.build_args),
            labels: map(&build.labels),
            target: build.target.clone().unwrap_or_default(),
            networkmode: build.network.clone(),
            cachefrom: (!build.cache_from.is_empty()).then(|| build.cache_from.clone()),
            extrahosts: (!build.extra_hosts.is_empty()).then(|| build.extra_hosts.join(",")),
            ..Default::default()
        };
        let mut output = String::new();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_try_stream(context)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.or(info.status) {
                        output.push_str(&text);
                    }
                }
                Err(e) => {
                    return Err(Error::FatBuild {
                        tag: build.tag.clone(),
                        message: stream_error_message(e),
                        output: tail_lines(&output, 30),
                    })
                }
            }
        }
        Ok(output)
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let body = create_body(spec, &publish_address(&self.endpoint).bind_ip);
        let options = bollard::query_parameters::CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(api_error("create container"))?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(api_error("start container"))
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        let info = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(api_error("inspect container"))?;
        let state = info.state.unwrap_or_default();
        let mut published = BTreeMap::new();
        for (port, bindings) in info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default()
        {
            let host_port = bindings
                .unwrap_or_default()
                .into_iter()
                .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
            if let Some(host_port) = host_port {
                published.insert(port, host_port);
            }
        }
        Ok(ContainerState {
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            published,
            pid: state.pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
            stop_signal: info.config.and_then(|c| c.stop_signal),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
        })
    }

    async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let options = bollard::query_parameters::StopContainerOptions {
            t: Some(timeout_secs as i32),
            signal: None,
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error("stop container")(e)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let options = bollard::query_parameters::RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error("remove container")(e)),
        }
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String> {
        let options = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let chunks: Vec<_> = self
            .docker
            .logs(id, Some(options))
            .try_collect()
            .await
            .map_err(api_error("container logs"))?;
        Ok(chunks.iter().map(|c| c.to_string()).collect())
    }

    async fn upload_archive(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let options = bollard::query_parameters::UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(api_error("upload archive"))
    }

    async fn download_archive(&self, id: &str, path: &str) -> Result<Vec<u8>> {
        let options = bollard::query_parameters::DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let chunks: Vec<Bytes> = self
            .docker
            .download_from_container(id, Some(options))
            .try_collect()
            .await
            .map_err(api_error("download archive"))?;
        Ok(chunks.concat())
    }

    async fn exec(&self, id: &str, command: &[String]) -> Result<(i64, String)> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(api_error("create exec"))?;
        let mut output = String::new();
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(api_error("start exec"))?
        {
            while let Some(chunk) = stream.next().await {
                output.push_str(&chunk.map_err(api_error("exec output"))?.to_string());
            }
        }
        let inspected = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(api_error("inspect exec"))?;
        Ok((inspected.exit_code.unwrap_or(-1), output))
    }

    async fn list_labelled(&self, key: &str) -> Result<Vec<Labelled>> {
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(std::collections::HashMap::from([(
                "label".to_string(),
                vec![key.to_string()],
            )])),
            ..Default::default()
        };
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(api_error("list containers"))?;
        Ok(listed
            .into_iter()
            .filter_map(|c| {
                let label_value = c.labels.as_ref()?.get(key)?.clone();
                Some(Labelled {
                    id: c.id?,
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    label_value,
                })
            })
            .collect())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        let request = bollard::models::NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some(spec.driver.clone().unwrap_or_else(|| "bridge".into())),
            internal: Some(spec.internal),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(api_error("create network"))
    }

    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        let request = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(api_error("connect network"))
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<()> {
        let request = bollard::models::VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(api_error("create volume"))
    }

    async fn remove_resource(&self, kind: ResourceKind, name: &str) -> Result<()> {
        let removed = match kind {
            ResourceKind::Network => self.docker.remove_network(name).await,
            ResourceKind::Volume => {
                let options = bollard::query_parameters::RemoveVolumeOptions { force: false };
                self.docker.remove_volume(name, Some(options)).await
            }
        };
        match removed {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error(match kind {
                ResourceKind::Network => "remove network",
                ResourceKind::Volume => "remove volume",
            })(e)),
        }
    }

    async fn list_labelled_resources(
        &self,
        kind: ResourceKind,
        key: &str,
    ) -> Result<Vec<LabelledResource>> {
        let filters = Some(std::collections::HashMap::from([(
            "label".to_string(),
            vec![key.to_string()],
        )]));
        let found: Vec<NamedLabels> = match kind {
            ResourceKind::Network => self
                .docker
                .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
                    filters,
                }))
                .await
                .map_err(api_error("list networks"))?
                .into_iter()
                .map(|n| (n.name, n.labels))
                .collect(),
            ResourceKind::Volume => self
                .docker
                .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
                    filters,
                }))
                .await
                .map_err(api_error("list volumes"))?
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| (Some(v.name), Some(v.labels)))
                .collect(),
        };
        Ok(found
            .into_iter()
            .filter_map(|(name, labels)| {
                let labels: BTreeMap<String, String> = labels?.into_iter().collect();
                let name = name?;
                labels
                    .contains_key(key)
                    .then_some(LabelledResource { name, labels })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_loopback_endpoints_publish_on_loopback_only() {
        for endpoint in [
            "unix:///var/run/docker.sock",
            "/var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "tcp://localhost:2375",
            "tcp://[::1]:2375",
            "ssh://me@127.0.0.1",
        ] {
            let address = publish_address(endpoint);
            assert_eq!(address.bind_ip, "127.0.0.1", "{endpoint}");
            assert_eq!(address.probe_host, "127.0.0.1", "{endpoint}");
        }
    }

    #[test]
    fn remote_endpoints_are_probed_at_their_host() {
        for (endpoint, host, bind) in [
            ("tcp://10.0.0.5:2376", "10.0.0.5", "0.0.0.0"),
            ("https://build.example:2376", "build.example", "0.0.0.0"),
            ("ssh://me@build.example:2222", "build.example", "0.0.0.0"),
            ("ssh://build.example", "build.example", "0.0.0.0"),
            ("tcp://[fd00::5]:2375", "fd00::5", "::"),
        ] {
            let address = publish_address(endpoint);
            assert_eq!(address.probe_host, host, "{endpoint}");
            assert_eq!(address.bind_ip, bind, "{endpoint}");
        }
    }

    #[test]
    fn remote_endpoint_forms() {
        assert_eq!(
            parse_remote("ssh://host"),
            Some(RemoteEndpoint {
                scheme: "ssh".into(),
                user: None,
                host: "host".into(),
                port: None
            })
        );
        assert_eq!(
            parse_remote("ssh://[fd00::5]:22/").map(|t| (t.host, t.port)),
            Some(("fd00::5".to_string(), Some(22)))
        );
        assert_eq!(parse_remote("ssh://host:notaport"), None);
        assert_eq!(parse_remote("ssh://"), None);
        assert_eq!(parse_remote("unix:///var/run/docker.sock"), None);
        assert_eq!(
            parse_remote("tcp://host:2375").map(|t| (t.scheme, t.port)),
            Some(("tcp".to_string(), Some(2375)))
        );
    }

    #[test]
    fn pulls_name_the_tag_or_digest_and_default_to_latest() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            pull_reference("127.0.0.1:5000/x:1"),
            pair("127.0.0.1:5000/x", "1")
        );
        assert_eq!(
            pull_reference("127.0.0.1:5000/x"),
            pair("127.0.0.1:5000/x", "latest")
        );
        assert_eq!(pull_reference("nginx"), pair("nginx", "latest"));
        assert_eq!(
            pull_reference("app@sha256:abcd"),
            pair("app", "sha256:abcd")
        );
        assert_eq!(tail_lines("a\nb\nc", 2), "b\nc");
    }

    #[test]
    fn only_sockets_count_as_local_for_host_side_sensors() {
        assert!(endpoint_is_local("unix:///var/run/docker.sock"));
        assert!(endpoint_is_local("/var/run/docker.sock"));
        // a loopback TCP endpoint may be a tunnel to another machine
        assert!(!endpoint_is_local("tcp://127.0.0.1:2375"));
        assert!(!endpoint_is_local("ssh://me@host"));
    }
}
