//! Compose files, for `minify build --compose-file F --target-compose-svc NAME` (docker-slim's
//! "services that need others"): [`load`] reads the subset of the Compose Specification (and
//! of the v2/v3 formats) real apps use into the plain types below, interpolating `${VAR}` from
//! the `.env` file (or `--compose-env-file`) and the host environment; [`plan`] turns a
//! project, a target service and docker-slim's `--dep-*` selection into what to create (networks,
//! volumes, dependency containers in `depends_on` order, the target's run options); [`up`]
//! creates it through the Docker API, every object labelled as minify's, and takes it down
//! again. Nothing here shells out to `docker compose`: what minify creates it can find and
//! remove by label, also after an interrupt or a SIGKILL (`minify gc`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub mod interpolate;
mod parse;
pub mod plan;
pub mod up;

pub use parse::{load, LoadOptions};

/// A compose file, read and interpolated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    /// The file it came from (for messages).
    pub file: PathBuf,
    /// Where relative paths (bind mounts, `env_file`) are resolved: the file's directory, or
    /// `--compose-workdir`.
    pub dir: PathBuf,
    /// The top-level `name:`, if any.
    pub name: Option<String>,
    pub services: BTreeMap<String, Service>,
    pub volumes: BTreeMap<String, VolumeDef>,
    pub networks: BTreeMap<String, NetworkDef>,
    /// What minify read but does not apply (keys it ignores, variables that were unset).
    pub warnings: Vec<String>,
}

/// One service, as far as running it goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub image: Option<String>,
    /// It has a `build:` section (minify never builds: the image must exist).
    pub has_build: bool,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value`: its `env_file`s first, then `environment` (which wins).
    pub environment: Vec<String>,
    pub ports: Vec<Port>,
    /// Container ports (`8000/tcp`) of `expose`.
    pub expose: Vec<String>,
    pub volumes: Vec<ServiceVolume>,
    /// Network key → extra aliases there. Empty: the `default` network.
    pub networks: BTreeMap<String, Vec<String>>,
    pub depends_on: BTreeMap<String, Condition>,
    pub healthcheck: Option<Healthcheck>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `host:ip` lines for /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// A service with profiles is not started unless asked for (as compose without
    /// `--profile`), except when another selected service depends on it.
    pub profiles: Vec<String>,
}

/// A `ports:` entry: container port (`8000/tcp`) and the host side (empty = any IP / a
/// random port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Port {
    pub container: String,
    pub host_ip: String,
    pub host_port: String,
}

/// A `volumes:` entry of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceVolume {
    /// A host path (made absolute against the project dir).
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    /// A volume declared at the top level, by its key there.
    Named {
        volume: String,
        target: String,
        read_only: bool,
    },
    /// An anonymous volume at this path (removed with the container).
    Anonymous { target: String },
}

/// A top-level volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeDef {
    /// Made and owned by someone else: used by name, never created or removed by minify.
    pub external: bool,
    /// `name:` (else the project's name and the key).
    pub name: Option<String>,
    pub driver: Option<String>,
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkDef {
    pub external: bool,
    pub name: Option<String>,
    pub driver: Option<String>,
    pub internal: bool,
}

/// What a `depends_on` entry waits for before the dependent service starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `service_started` (the list form's meaning).
    Started,
    /// `service_healthy`: its healthcheck passed.
    Healthy,
    /// `service_completed_successfully`: it ran to exit code 0 (a migration, a seed job).
    CompletedSuccessfully,
}

impl Condition {
    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// A service's `healthcheck`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`; `["NONE"]` when disabled.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub retries: Option<u32>,
}

impl Healthcheck {
    /// The Docker API's form (unset durations 0: the daemon's defaults).
    pub fn to_spec(&self) -> crate::docker::HealthcheckSpec {
        let ns = |d: Option<Duration>| d.map_or(0, |d| d.as_nanos() as i64);
        crate::docker::HealthcheckSpec {
            test: self.test.clone(),
            interval_ns: ns(self.interval),
            timeout_ns: ns(self.timeout),
            start_period_ns: ns(self.start_period),
            retries: self.retries.map_or(0, i64::from),
        }
    }
}

/// docker-slim's choice of the services started as dependencies of the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--dep-include-compose-svc`: only these (repeatable).
    pub include: Vec<String>,
    /// `--dep-exclude-compose-svc`: not these.
    pub exclude: Vec<String>,
    /// `--dep-include-compose-svc-deps SVC` (or `--dep-include-target-compose-svc-deps`): the
    /// `depends_on` closure of SVC, without SVC.
    pub deps_of: Option<String>,
    /// `--dep-exclude-compose-svc-all`: none.
    pub none: bool,
}
