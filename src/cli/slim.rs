//! docker-slim's `build` flags (same names, same meaning) and its global flags, so that
//! `docker-slim build …` / `slim build …` in a CI script can become `minify build …`.
//! Every flag either works as in docker-slim, maps onto the closest minify feature (the README
//! table says which), or is refused with an error naming that feature: never ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::acquire::{Acquire, FatBuild, PullOptions};
use crate::docker::{ImageBuild, MountSpec};
use crate::image::config::ConfigEdits;
use crate::image::perms::PathPerms;
use crate::probe::slim::{self, SlimProbes};
use crate::run::RunOptions;
use crate::{Error, Result};

const PROBING: &str = "HTTP probing (docker-slim)";
const OTHER_PROBES: &str = "Other probes and when to stop (docker-slim)";
const RUNNING: &str = "How the target runs (docker-slim)";
const RESULT: &str = "The result image (docker-slim)";
const KEEP: &str = "What to keep (docker-slim)";
const SOURCE: &str = "Pulling or building the target (docker-slim)";
const COMPOSE: &str = "Services that need others: compose (docker-slim)";

/// docker-slim's `build` flags, flattened into `minify build`.
#[derive(Debug, Args, Default)]
pub struct SlimArgs {
    /// The image to minify (docker-slim's spelling of the positional IMAGE).
    #[arg(long, value_name = "IMAGE", help_heading = "Target (docker-slim)")]
    pub target: Option<String>,

    /// Pull the target from its registry when the daemon does not have it.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = SOURCE)]
    pub pull: Option<bool>,
    /// The docker config whose `auths` (or credential helper) log --pull in: a config.json or
    /// the directory holding one [default: $DOCKER_CONFIG/config.json, ~/.docker/config.json].
    #[arg(long, value_name = "PATH", help_heading = SOURCE)]
    pub docker_config_path: Option<PathBuf>,
    /// The registry user for --pull (with --registry-secret; wins over the docker config).
    #[arg(long, value_name = "USER", env = "DSLIM_REGISTRY_ACCOUNT", help_heading = SOURCE)]
    pub registry_account: Option<String>,
    /// The registry password or token for --pull.
    #[arg(long, value_name = "SECRET", env = "DSLIM_REGISTRY_SECRET", hide_env_values = true,
          help_heading = SOURCE)]
    pub registry_secret: Option<String>,
    /// Print the daemon's pull progress.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = SOURCE)]
    pub show_plogs: Option<bool>,
    /// Build the target ("fat") image from this Dockerfile first, then minify it; the
    /// positional IMAGE (or --dockerfile-context) is then the build context directory [default:
    /// the current directory]. Relative to the context, else to the current directory.
    #[arg(long, value_name = "FILE", help_heading = SOURCE)]
    pub dockerfile: Option<PathBuf>,
    /// The build context directory of --dockerfile.
    #[arg(long, value_name = "DIR", help_heading = SOURCE)]
    pub dockerfile_context: Option<PathBuf>,
    /// The name of the fat image built from --dockerfile [default: the first --tag with `.fat`
    /// added to its repository, else minify-tmp-fat-image.PID.SECONDS].
    #[arg(long, value_name = "NAME[:TAG]", help_heading = SOURCE)]
    pub tag_fat: Option<String>,
    /// A build-time variable `NAME=VALUE` (or NAME, taken from the environment), repeatable.
    #[arg(long, value_name = "NAME=VALUE", help_heading = SOURCE)]
    pub cbo_build_arg: Vec<String>,
    /// A label `KEY=VALUE` on the fat image, repeatable.
    #[arg(long, value_name = "KEY=VALUE", help_heading = SOURCE)]
    pub cbo_label: Vec<String>,
    /// The stage of a multi-stage Dockerfile to build.
    #[arg(long, value_name = "STAGE", help_heading = SOURCE)]
    pub cbo_target: Option<String>,
    /// The network mode of the RUN steps (`bridge`, `host`, `none`, a network name).
    #[arg(long, value_name = "MODE", help_heading = SOURCE)]
    pub cbo_network: Option<String>,
    /// An image the build may take cached layers from, repeatable.
    #[arg(long, value_name = "IMAGE", help_heading = SOURCE)]
    pub cbo_cache_from: Vec<String>,
    /// `HOST:IP` in /etc/hosts of the RUN steps, repeatable.
    #[arg(long, value_name = "HOST:IP", help_heading = SOURCE)]
    pub cbo_add_host: Vec<String>,
    /// Remove the fat image built from --dockerfile when the build is over.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = SOURCE)]
    pub delete_generated_fat_image: Option<bool>,
    /// Print the fat image's build output (it is printed on a failure anyway).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = SOURCE)]
    pub show_blogs: Option<bool>,

    /// Run the default HTTP probe (GET / on every probed port, crawled) when no probe command
    /// is given [default: true]. `--http-probe=false` turns it off.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = PROBING)]
    pub http_probe: Option<bool>,
    /// Another way to turn the default HTTP probe off.
    #[arg(long, help_heading = PROBING)]
    pub http_probe_off: bool,
    /// An HTTP probe as `[[[crawl:]PROTO:]METHOD:]PATH` (repeatable), e.g. `POST:/api/items`.
    #[arg(long, value_name = "CMD", help_heading = PROBING)]
    pub http_probe_cmd: Vec<String>,
    /// docker-slim's JSON probe command file (`{"commands":[…]}`); `body_file`s are relative to
    /// the current directory, as in docker-slim.
    #[arg(long, value_name = "FILE", help_heading = PROBING)]
    pub http_probe_cmd_file: Option<PathBuf>,
    /// Probe these ports (`80,8080`) instead of every exposed one.
    #[arg(long, value_name = "PORTS", help_heading = PROBING)]
    pub http_probe_ports: Option<String>,
    /// Seconds to wait before the first probe command.
    #[arg(long, value_name = "SECONDS", help_heading = PROBING)]
    pub http_probe_start_wait: Option<u64>,
    /// Retries of a probe while the app is not ready [docker-slim's default: 5]; with
    /// --http-probe-retry-wait it sets how long minify waits for each port (count × wait).
    #[arg(long, value_name = "N", help_heading = PROBING)]
    pub http_probe_retry_count: Option<u64>,
    /// Seconds between retries [docker-slim's default: 8].
    #[arg(long, value_name = "SECONDS", help_heading = PROBING)]
    pub http_probe_retry_wait: Option<u64>,
    /// Fail the build when probes fail [default: true]; `=false` only warns.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = PROBING)]
    pub http_probe_exit_on_failure: Option<bool>,
    /// Probe every selected port (minify always does).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = PROBING)]
    pub http_probe_full: Option<bool>,
    /// Crawl from the default probe [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = PROBING)]
    pub http_probe_crawl: Option<bool>,
    /// Probe every operation of the OpenAPI/Swagger spec the app serves at PATH, on every probed
    /// port (repeatable); PREFIX replaces the spec's base path.
    #[arg(long, value_name = "PATH[:PREFIX]", help_heading = PROBING)]
    pub http_probe_apispec: Vec<String>,
    /// Probe every operation of the OpenAPI/Swagger spec in FILE (JSON or YAML, repeatable).
    #[arg(long, value_name = "FILE[:PREFIX]", help_heading = PROBING)]
    pub http_probe_apispec_file: Vec<String>,
    /// Link depth of the crawl (minify's --crawl-depth).
    #[arg(long, value_name = "N", help_heading = PROBING)]
    pub http_crawl_max_depth: Option<usize>,
    /// Most pages a crawl visits (minify's --crawl-max-pages).
    #[arg(long, value_name = "N", help_heading = PROBING)]
    pub http_crawl_max_page_count: Option<usize>,

    /// A shell snippet run in the container (`sh -c`) as a probe (repeatable).
    #[arg(long, value_name = "SCRIPT", help_heading = OTHER_PROBES)]
    pub exec: Vec<String>,
    /// A file of shell snippets, one a line, run in the container.
    #[arg(long, value_name = "FILE", help_heading = OTHER_PROBES)]
    pub exec_file: Option<PathBuf>,
    /// A command run on the host as a probe (repeatable); `{host}` and `{port:N}` are filled in.
    #[arg(long, value_name = "COMMAND", help_heading = OTHER_PROBES)]
    pub host_exec: Vec<String>,
    /// A file of host commands, one a line.
    #[arg(long, value_name = "FILE", help_heading = OTHER_PROBES)]
    pub host_exec_file: Option<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub compose: ComposeArgs,
    /// docker-slim runs the target as the image's USER (minify always does); `=false` is refused.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = RUNNING)]
    pub run_target_as_user: Option<bool>,

    /// The result's CMD (shell words or a JSON array; a single space clears it).
    #[arg(long, value_name = "CMD", help_heading = RESULT)]
    pub new_cmd: Option<String>,
    /// The result's ENTRYPOINT (shell words or a JSON array; a single space clears it).
    #[arg(long, value_name = "CMD", help_heading = RESULT)]
    pub new_entrypoint: Option<String>,
    /// Set `KEY=value` in the result's environment (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = RESULT)]
    pub new_env: Vec<String>,
    /// Expose `PORT[/PROTO]` in the result (repeatable).
    #[arg(long, value_name = "PORT[/PROTO]", help_heading = RESULT)]
    pub new_expose: Vec<String>,
    #[arg(long, value_name = "DIR", help_heading = RESULT)]
    pub new_workdir: Option<String>,
    /// Set label `KEY=VALUE` on the result (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = RESULT)]
    pub new_label: Vec<String>,
    /// Declare a VOLUME in the result (repeatable).
    #[arg(long, value_name = "PATH", help_heading = RESULT)]
    pub new_volume: Vec<String>,
    /// Remove this variable from the result's environment (repeatable).
    #[arg(long, value_name = "KEY", help_heading = RESULT)]
    pub remove_env: Vec<String>,
    #[arg(long, value_name = "PORT[/PROTO]", help_heading = RESULT)]
    pub remove_expose: Vec<String>,
    #[arg(long, value_name = "KEY", help_heading = RESULT)]
    pub remove_label: Vec<String>,
    #[arg(long, value_name = "PATH", help_heading = RESULT)]
    pub remove_volume: Vec<String>,
    /// Persist runtime options in the result: `all` or a list of entrypoint, cmd, workdir,
    /// env, expose, volume.
    #[arg(long, value_name = "LIST", help_heading = RESULT)]
    pub image_overrides: Option<String>,

    /// A file of paths to keep, one a line.
    #[arg(long, value_name = "FILE", help_heading = KEEP)]
    pub include_path_file: Option<PathBuf>,
    /// A file of binaries to keep with their libraries, one a line.
    #[arg(long, value_name = "FILE", help_heading = KEEP)]
    pub include_bin_file: Option<PathBuf>,
    /// Keep this executable, found by name on the image's PATH, with its libraries.
    #[arg(long, value_name = "NAME", help_heading = KEEP)]
    pub include_exe: Vec<String>,
    #[arg(long, value_name = "FILE", help_heading = KEEP)]
    pub include_exe_file: Option<PathBuf>,
    /// Keep the WORKDIR tree (minify's app closure keeps it by default).
    #[arg(long, help_heading = KEEP)]
    pub include_workdir: bool,
    /// Keep the zoneinfo data.
    #[arg(long, help_heading = KEEP)]
    pub include_zoneinfo: bool,
    /// Keep every CA certificate file and directory.
    #[arg(long, help_heading = KEEP)]
    pub include_cert_all: bool,
    /// Keep only the CA bundles.
    #[arg(long, help_heading = KEEP)]
    pub include_cert_bundles_only: bool,
    /// Keep the known certificate directories whole.
    #[arg(long, help_heading = KEEP)]
    pub include_cert_dirs: bool,
    /// Keep the resolver and NSS libraries and their config.
    #[arg(long, help_heading = KEEP)]
    pub include_oslibs_net: bool,
    /// Keep the SSH client and its config.
    #[arg(long, help_heading = KEEP)]
    pub include_ssh_client: bool,
    /// Keep this npm package (every `node_modules/NAME` in the image), repeatable.
    #[arg(long, value_name = "NAME", help_heading = KEEP)]
    pub include_node_package: Vec<String>,
    /// Keep the packages' license files (/usr/share/doc/*/copyright, /usr/share/licenses).
    #[arg(long, help_heading = KEEP)]
    pub include_licenses: bool,
    /// Drop kept paths matching this glob (minify's --exclude), repeatable.
    #[arg(long, value_name = "GLOB", help_heading = KEEP)]
    pub exclude_pattern: Vec<String>,
    /// A file of paths to preserve, one a line.
    #[arg(long, value_name = "FILE", help_heading = KEEP)]
    pub preserve_path_file: Option<PathBuf>,
    /// Set the mode (octal; 4 digits also set setuid/setgid/sticky) and owner of a path of the
    /// slim image: `PATH:MODE[#UID[#GID]]`, repeatable. `--include-path` and `--preserve-path`
    /// take the same suffix.
    #[arg(long, value_name = "PATH:MODE[#UID[#GID]]", help_heading = KEEP)]
    pub path_perms: Vec<String>,
    /// A file of `PATH:MODE[#UID[#GID]]` lines.
    #[arg(long, value_name = "FILE", help_heading = KEEP)]
    pub path_perms_file: Option<PathBuf>,
    /// Keep file permissions as in the image (minify always does); `=false` is refused.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = KEEP)]
    pub keep_perms: Option<bool>,
}

/// docker-slim's compose flags: start the services the target needs, then trace the target.
#[derive(Debug, Args, Default)]
pub struct ComposeArgs {
    /// A compose file whose services are started (through the Docker API, labelled as
    /// minify's) before the target runs, and removed afterwards.
    #[arg(long, value_name = "FILE", help_heading = COMPOSE)]
    pub compose_file: Vec<PathBuf>,
    /// The service to minify: its image, run with its settings on the project's networks
    /// (reachable there by its name).
    #[arg(long, value_name = "NAME", help_heading = COMPOSE)]
    pub target_compose_svc: Option<String>,
    /// Another image for the target service: `TAG` or `IMAGE:TAG`.
    #[arg(long, value_name = "TAG|IMAGE:TAG", help_heading = COMPOSE)]
    pub target_compose_svc_image: Option<String>,
    /// Do not bind the target's `ports:` to the host ports the file names (they are still
    /// published on random loopback ports and probed).
    #[arg(long, help_heading = COMPOSE)]
    pub target_compose_svc_no_ports: bool,
    /// Start only this service as a dependency (repeatable), with what it depends on.
    #[arg(long, value_name = "NAME", help_heading = COMPOSE)]
    pub dep_include_compose_svc: Vec<String>,
    /// Do not start this service (repeatable).
    #[arg(long, value_name = "NAME", help_heading = COMPOSE)]
    pub dep_exclude_compose_svc: Vec<String>,
    /// Start what this service depends on (transitively), not the service itself.
    #[arg(long, value_name = "NAME", help_heading = COMPOSE)]
    pub dep_include_compose_svc_deps: Option<String>,
    /// Start what the target service depends on (transitively) instead of every service.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", help_heading = COMPOSE)]
    pub dep_include_target_compose_svc_deps: Option<bool>,
    /// Start no dependency at all.
    #[arg(long, help_heading = COMPOSE)]
    pub dep_exclude_compose_svc_all: bool,
    /// Seconds to wait before starting each dependency.
    #[arg(long, value_name = "SECONDS", help_heading = COMPOSE)]
    pub compose_svc_start_wait: Option<u64>,
    /// The compose network the target joins (repeatable) [default: its service's networks].
    #[arg(long, value_name = "NAME", help_heading = COMPOSE)]
    pub compose_net: Vec<String>,
    /// Interpolate `${VAR}` from the env file only, not from the host environment.
    #[arg(long, help_heading = COMPOSE)]
    pub compose_env_nohost: bool,
    /// Variables for `${VAR}` in the compose file [default: the project dir's .env]; the host
    /// environment overrides them.
    #[arg(long, value_name = "FILE", help_heading = COMPOSE)]
    pub compose_env_file: Option<PathBuf>,
    /// The project dir (relative bind mounts, env_file, .env) [default: the file's directory].
    #[arg(long, value_name = "DIR", help_heading = COMPOSE)]
    pub compose_workdir: Option<PathBuf>,
    /// The project name: volumes are named NAME_VOLUME as compose names them (an existing
    /// one is used and never removed) [default: a unique name, fresh volumes].
    #[arg(long, value_name = "NAME", help_heading = COMPOSE)]
    pub compose_project_name: Option<String>,
}

/// What the compose flags give a build.
#[derive(Debug, Clone)]
pub struct ComposeSetup {
    pub plan: crate::compose::plan::Plan,
    pub target: crate::compose::plan::TargetRun,
}

impl ComposeArgs {
    fn any_set(&self) -> Option<&'static str> {
        [
            (self.target_compose_svc.is_some(), "--target-compose-svc"),
            (
                self.target_compose_svc_image.is_some(),
                "--target-compose-svc-image",
            ),
            (
                self.target_compose_svc_no_ports,
                "--target-compose-svc-no-ports",
            ),
            (
                !self.dep_include_compose_svc.is_empty(),
                "--dep-include-compose-svc",
            ),
            (
                !self.dep_exclude_compose_svc.is_empty(),
                "--dep-exclude-compose-svc",
            ),
            (
                self.dep_include_compose_svc_deps.is_some(),
                "--dep-include-compose-svc-deps",
            ),
            (
                self.dep_include_target_compose_svc_deps.is_some(),
                "--dep-include-target-compose-svc-deps",
            ),
            (
                self.dep_exclude_compose_svc_all,
                "--dep-exclude-compose-svc-all",
            ),
            (
                self.compose_svc_start_wait.is_some(),
                "--compose-svc-start-wait",
            ),
            (!self.compose_net.is_empty(), "--compose-net"),
            (self.compose_env_nohost, "--compose-env-nohost"),
            (self.compose_env_file.is_some(), "--compose-env-file"),
            (self.compose_workdir.is_some(), "--compose-workdir"),
            (
                self.compose_project_name.is_some(),
                "--compose-project-name",
            ),
        ]
        .into_iter()
        .find_map(|(set, flag)| set.then_some(flag))
    }

    /// Reads the compose file and plans the dependencies; `None` without `--compose-file`.
    pub fn setup(&self) -> Result<Option<ComposeSetup>> {
        let file = match self.compose_file.as_slice() {
            [] => {
                if let Some(flag) = self.any_set() {
                    return Err(usage(format!("{flag} needs --compose-file FILE")));
                }
                return Ok(None);
            }
            [file] => file.clone(),
            [..] => {
                return Err(usage(
                    "--compose-file given more than once: minify reads one compose file (merge                      the overrides into it, e.g. with `docker compose config`)",
                ))
            }
        };
        if self.target_compose_svc_image.is_some() && self.target_compose_svc.is_none() {
            return Err(usage(
                "--target-compose-svc-image replaces the image of --target-compose-svc; name the service",
            ));
        }
        let target_deps = self.dep_include_target_compose_svc_deps.unwrap_or(false);
        if target_deps && self.target_compose_svc.is_none() {
            return Err(usage(
                "--dep-include-target-compose-svc-deps needs --target-compose-svc",
            ));
        }
        if target_deps && self.dep_include_compose_svc_deps.is_some() {
            return Err(usage(
                "--dep-include-target-compose-svc-deps and --dep-include-compose-svc-deps both                  name the service whose dependencies start: give one",
            ));
        }
        let host_env = if self.compose_env_nohost {
            Default::default()
        } else {
            std::env::vars().collect()
        };
        let project = crate::compose::load(&crate::compose::LoadOptions {
            file,
            env_file: self.compose_env_file.clone(),
            host_env,
            workdir: self.compose_workdir.clone(),
        })?;
        let options = crate::compose::plan::PlanOptions {
            target: self.target_compose_svc.clone(),
            selection: crate::compose::Selection {
                include: self.dep_include_compose_svc.clone(),
                exclude: self.dep_exclude_compose_svc.clone(),
                deps_of: if target_deps {
                    self.target_compose_svc.clone()
                } else {
                    self.dep_include_compose_svc_deps.clone()
                },
                none: self.dep_exclude_compose_svc_all,
            },
            run_name: crate::run::unique_run_name("minify-compose"),
            project_name: self.compose_project_name.clone(),
            no_ports: self.target_compose_svc_no_ports,
            target_networks: self.compose_net.clone(),
            start_wait: std::time::Duration::from_secs(self.compose_svc_start_wait.unwrap_or(0)),
            wait_timeout: std::time::Duration::from_secs(60),
        };
        let (plan, mut target) = crate::compose::plan::plan(&project, &options)?;
        if let (Some(image), Some(replacement)) = (&target.image, &self.target_compose_svc_image) {
            target.image = Some(replace_image(image, replacement));
        }
        Ok(Some(ComposeSetup { plan, target }))
    }
}

/// docker-slim's `--target-compose-svc-image`: `IMAGE:TAG` replaces the image, a bare `TAG` only
/// its tag.
fn replace_image(image: &str, replacement: &str) -> String {
    if replacement.contains(':') || replacement.contains('/') {
        return replacement.to_string();
    }
    let (repo, _) = crate::cli::split_reference(image);
    format!("{repo}:{replacement}")
}

/// How the target runs (docker-slim's run flags): for `minify build` and `minify verify`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Add or override an environment variable `KEY=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = RUNNING)]
    pub env: Vec<String>,
    /// A file of `KEY=value` lines (read before --env).
    #[arg(long, value_name = "FILE", help_heading = RUNNING)]
    pub env_file: Option<PathBuf>,
    /// Mount `SOURCE:DEST[:ro|rw]`: an absolute SOURCE is a host path, else a named volume.
    /// Never removed by minify.
    #[arg(long, value_name = "SOURCE:DEST[:OPTS]", help_heading = RUNNING)]
    pub mount: Vec<String>,
    /// An anonymous volume at this container path (docker-slim's VOLUME at runtime).
    #[arg(long, value_name = "PATH", help_heading = RUNNING)]
    pub volume: Vec<String>,
    /// Join this network instead of the default bridge.
    #[arg(long, value_name = "NAME", help_heading = RUNNING)]
    pub network: Option<String>,
    /// Link to another container `NAME[:ALIAS]` (repeatable).
    #[arg(long, value_name = "NAME[:ALIAS]", help_heading = RUNNING)]
    pub link: Vec<String>,
    /// Add `HOST:IP` to /etc/hosts (repeatable).
    #[arg(long, value_name = "HOST:IP", help_heading = RUNNING)]
    pub etc_hosts_map: Vec<String>,
    #[arg(long, value_name = "NAME", help_heading = RUNNING)]
    pub hostname: Option<String>,
    /// Run as this user instead of the image's USER.
    #[arg(long, value_name = "USER", help_heading = RUNNING)]
    pub user: Option<String>,
    /// Run this entrypoint (shell words or a JSON array); the image's CMD is then not used.
    #[arg(long, value_name = "CMD", help_heading = RUNNING)]
    pub entrypoint: Option<String>,
    /// Run this CMD (shell words or a JSON array).
    #[arg(long, value_name = "CMD", help_heading = RUNNING)]
    pub cmd: Option<String>,
    #[arg(long, value_name = "DIR", help_heading = RUNNING)]
    pub workdir: Option<String>,
    /// Expose and probe another port `PORT[/PROTO]` or range (repeatable).
    #[arg(long, value_name = "PORT[/PROTO]", help_heading = RUNNING)]
    pub expose: Vec<String>,
    /// Publish `PORT | HOSTPORT:PORT | IP:HOSTPORT:PORT | IP::PORT` (an IP-less binding goes on
    /// loopback for a local daemon).
    #[arg(long, value_name = "BINDING", help_heading = RUNNING)]
    pub publish_port: Vec<String>,
    /// Publish every exposed port on the same host port.
    #[arg(long, help_heading = RUNNING)]
    pub publish_exposed_ports: bool,
    /// /dev/shm size in bytes (or with a k, m, g suffix).
    #[arg(long, value_name = "BYTES", help_heading = RUNNING)]
    pub cro_shm_size: Option<String>,
    /// A namespaced kernel parameter `KEY=VALUE` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = RUNNING)]
    pub cro_sysctl: Vec<String>,
    /// Put label `KEY=VALUE` on the target container (repeatable); `--image-overrides label`
    /// persists it in the result.
    #[arg(long, value_name = "KEY=VALUE", help_heading = RUNNING)]
    pub label: Vec<String>,
}

impl RunArgs {
    /// Checks and converts the run flags; reads --env-file.
    pub fn options(&self) -> Result<RunOptions> {
        let mut options = RunOptions::default();
        let run = &mut options;
        if let Some(file) = &self.env_file {
            run.env.extend(parse_env_file(file)?);
        }
        for kv in &self.env {
            run.env.push(check_env("--env", kv)?);
        }
        for raw in &self.mount {
            run.mounts.push(parse_mount(raw)?);
        }
        for path in &self.volume {
            if !path.starts_with('/') {
                return Err(usage(format!(
                    "--volume {path:?}: expected an absolute container path (docker-slim's \
                     --volume adds a VOLUME; bind host paths with --mount SOURCE:DEST)"
                )));
            }
            run.volumes.push(path.clone());
        }
        if let Some(network) = &self.network {
            if network == "host" || network.starts_with("container:") {
                return Err(usage(format!(
                    "--network {network}: minify probes the target through published ports, \
                     which a {network} network does not have; use a bridge network (docker \
                     network create) and --link/--etc-hosts-map to reach other services"
                )));
            }
            run.network = Some(network.clone());
        }
        run.links = self.link.clone();
        for entry in &self.etc_hosts_map {
            if entry
                .split_once(':')
                .is_none_or(|(h, ip)| h.is_empty() || ip.is_empty())
            {
                return Err(usage(format!(
                    "--etc-hosts-map {entry:?}: expected HOST:IP"
                )));
            }
            run.extra_hosts.push(entry.clone());
        }
        run.hostname = self.hostname.clone();
        run.user = self.user.clone();
        run.workdir = self.workdir.clone();
        run.entrypoint = self
            .entrypoint
            .as_deref()
            .map(|v| parse_exec("--entrypoint", v))
            .transpose()?;
        run.cmd = self
            .cmd
            .as_deref()
            .map(|v| parse_exec("--cmd", v))
            .transpose()?;
        for raw in &self.expose {
            run.expose.extend(parse_expose("--expose", raw)?);
        }
        for raw in &self.publish_port {
            let (port, binding) = parse_publish(raw)?;
            run.port_bindings.insert(port, binding);
        }
        run.publish_exposed = self.publish_exposed_ports;
        for kv in &self.label {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| usage(format!("--label {kv:?}: expected KEY=VALUE")))?;
            if k.starts_with("dev.minify.") {
                return Err(usage(format!(
                    "--label {k}: the dev.minify.* labels are minify's own"
                )));
            }
            run.labels.insert(k.to_string(), v.to_string());
        }
        run.shm_size = self.cro_shm_size.as_deref().map(parse_size).transpose()?;
        for kv in &self.cro_sysctl {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| usage(format!("--cro-sysctl {kv:?}: expected KEY=VALUE")))?;
            run.sysctls.insert(k.to_string(), v.to_string());
        }

        Ok(options)
    }
}

/// What the docker-slim flags add to a build.
#[derive(Debug, Clone, Default)]
pub struct SlimOptions {
    pub probes: SlimProbes,
    pub exit_on_failure: bool,
    pub crawl_depth: Option<usize>,
    pub crawl_max_pages: Option<usize>,
    /// retry count × retry wait, when either is given.
    pub ready_timeout_s: Option<u64>,
    pub run: RunOptions,
    pub edits: ConfigEdits,
    pub include_paths: Vec<String>,
    pub include_bins: Vec<String>,
    pub preserve_paths: Vec<String>,
    pub exclude: Vec<String>,
    /// Named path sets (`zoneinfo`, `cert-all`, ...) kept when present.
    pub include_sets: Vec<&'static str>,
    pub include_exes: Vec<String>,
    pub include_node_packages: Vec<String>,
    /// `--path-perms` and `--path-perms-file`.
    pub path_perms: Vec<PathPerms>,
    /// `--compose-file`: the dependencies to start and the target's image (`run` already has
    /// the target service's settings under the flags).
    pub compose: Option<ComposeSetup>,
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

impl SlimArgs {
    /// The image to minify and how it gets into the daemon, from the positional IMAGE and
    /// the docker-slim target flags: `--target`/IMAGE as is, or pulled with `--pull`; with
    /// `--dockerfile`, IMAGE (or `--dockerfile-context`, else the current directory) is the
    /// build context and the image is the fat image built from it (named by [`fat_tag`]).
    ///
    /// [`fat_tag`]: crate::acquire::fat_tag
    pub fn source(
        &self,
        positional: Option<&str>,
        tags: &[String],
        cwd: &Path,
    ) -> Result<(String, Acquire)> {
        let Some(dockerfile) = &self.dockerfile else {
            for (given, flag) in [
                (self.dockerfile_context.is_some(), "--dockerfile-context"),
                (self.tag_fat.is_some(), "--tag-fat"),
                (!self.cbo_build_arg.is_empty(), "--cbo-build-arg"),
                (!self.cbo_label.is_empty(), "--cbo-label"),
                (self.cbo_target.is_some(), "--cbo-target"),
                (self.cbo_network.is_some(), "--cbo-network"),
                (!self.cbo_cache_from.is_empty(), "--cbo-cache-from"),
                (!self.cbo_add_host.is_empty(), "--cbo-add-host"),
                (
                    self.delete_generated_fat_image == Some(true),
                    "--delete-generated-fat-image",
                ),
                (self.show_blogs == Some(true), "--show-blogs"),
            ] {
                if given {
                    return Err(usage(format!(
                        "{flag} is about the fat image built from --dockerfile FILE, and no \
                         --dockerfile is given"
                    )));
                }
            }
            let image =
                match (positional, self.target.as_deref()) {
                    (Some(image), Some(target)) if image != target => {
                        return Err(usage(format!(
                            "two images given: {image} and --target {target}"
                        )))
                    }
                    (Some(image), _) | (None, Some(image)) => image.to_string(),
                    (None, None) => return Err(usage(
                        "no image given: minify build IMAGE (or --target IMAGE, or --dockerfile \
                         FILE to build it first)",
                    )),
                };
            if image.trim().is_empty() {
                return Err(usage("the image name is empty"));
            }
            let acquire = if self.pull.unwrap_or(false) {
                Acquire::Pull(PullOptions {
                    registry_account: self.registry_account.clone(),
                    registry_secret: self.registry_secret.clone(),
                    docker_config_path: self.docker_config_path.clone(),
                    show_progress: self.show_plogs.unwrap_or(false),
                })
            } else {
                Acquire::Local
            };
            if let Acquire::Pull(pull) = &acquire {
                if pull.registry_account.is_some() != pull.registry_secret.is_some() {
                    return Err(usage(
                        "--registry-account and --registry-secret go together",
                    ));
                }
                if let Some(path) = &pull.docker_config_path {
                    let file = crate::docker::auth::config_path(Some(path)).unwrap_or_default();
                    if !file.is_file() {
                        return Err(usage(format!(
                            "--docker-config-path {}: no docker config file at {}",
                            path.display(),
                            file.display()
                        )));
                    }
                }
            }
            return Ok((image, acquire));
        };
        if let Some(target) = &self.target {
            return Err(usage(format!(
                "--target {target} names an image to minify, and --dockerfile builds it: give \
                 one (with --dockerfile, IMAGE is the build context directory and --tag-fat \
                 names the built image)"
            )));
        }
        let context = match (&self.dockerfile_context, positional) {
            (Some(dir), Some(arg)) if Path::new(arg) != dir => {
                return Err(usage(format!(
                    "two build contexts given: --dockerfile-context {} and {arg}",
                    dir.display()
                )))
            }
            (Some(dir), _) => dir.clone(),
            (None, Some(arg)) => PathBuf::from(arg),
            (None, None) => PathBuf::from("."),
        };
        let context = if context.is_absolute() {
            context
        } else {
            cwd.join(context)
        };
        if !context.is_dir() {
            return Err(usage(format!(
                "with --dockerfile, IMAGE (or --dockerfile-context) is the build context \
                 directory, and {} is not a directory (name the built image with --tag-fat)",
                context.display()
            )));
        }
        let file = crate::acquire::find_dockerfile(dockerfile, &context, cwd).ok_or_else(|| {
            usage(format!(
                "--dockerfile {}: no such file in the context {} or the current directory",
                dockerfile.display(),
                context.display()
            ))
        })?;
        let tag =
            crate::acquire::fat_tag(self.tag_fat.as_deref(), tags.first().map(String::as_str));
        super::validate_reference(&tag).map_err(|_| {
            usage(format!(
                "the fat image name {tag:?} is not a valid image reference (--tag-fat NAME[:TAG], lowercase)"
            ))
        })?;
        if tags.contains(&tag) {
            return Err(usage(format!(
                "--tag {tag} is also the fat image's name: the slim image needs a name of its own"
            )));
        }
        let mut build = ImageBuild {
            tag: tag.clone(),
            target: self.cbo_target.clone(),
            network: self.cbo_network.clone(),
            cache_from: self.cbo_cache_from.clone(),
            ..ImageBuild::default()
        };
        for raw in &self.cbo_build_arg {
            let (k, v) = match raw.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                // docker build's rule: a bare NAME takes its value from the environment.
                None => match std::env::var(raw) {
                    Ok(v) => (raw.clone(), v),
                    Err(_) => {
                        return Err(usage(format!(
                            "--cbo-build-arg {raw:?}: expected NAME=VALUE (a bare NAME takes \
                             the value of that environment variable, which is not set)"
                        )))
                    }
                },
            };
            if k.is_empty() {
                return Err(usage(format!("--cbo-build-arg {raw:?}: the name is empty")));
            }
            build.build_args.insert(k, v);
        }
        for kv in &self.cbo_label {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| usage(format!("--cbo-label {kv:?}: expected KEY=VALUE")))?;
            build.labels.insert(k.to_string(), v.to_string());
        }
        for entry in &self.cbo_add_host {
            if entry
                .split_once(':')
                .is_none_or(|(h, ip)| h.is_empty() || ip.is_empty())
            {
                return Err(usage(format!("--cbo-add-host {entry:?}: expected HOST:IP")));
            }
            build.extra_hosts.push(entry.clone());
        }
        Ok((
            tag,
            Acquire::Build(FatBuild {
                context,
                dockerfile: file,
                build,
                delete_after: self.delete_generated_fat_image.unwrap_or(false),
                show_log: self.show_blogs.unwrap_or(false),
            }),
        ))
    }

    /// Checks and converts every docker-slim flag; reads the files they name.
    pub fn validate(&self, cwd: &Path) -> Result<SlimOptions> {
        let mut out = SlimOptions {
            exit_on_failure: self.http_probe_exit_on_failure.unwrap_or(true),
            ..SlimOptions::default()
        };
        // Probing.
        let mut commands = Vec::new();
        for raw in &self.http_probe_cmd {
            commands.push(slim::parse_cmd(raw).map_err(usage)?);
        }
        if let Some(file) = &self.http_probe_cmd_file {
            commands.extend(slim::load_cmd_file(file, cwd)?);
        }
        let mut exec = self.exec.clone();
        if let Some(file) = &self.exec_file {
            exec.extend(slim::read_lines("--exec-file", file)?);
        }
        let mut host_exec = self.host_exec.clone();
        if let Some(file) = &self.host_exec_file {
            host_exec.extend(slim::read_lines("--host-exec-file", file)?);
        }
        let mut api_specs = Vec::new();
        for raw in &self.http_probe_apispec {
            api_specs.push(slim::parse_apispec(raw).map_err(usage)?);
        }
        for raw in &self.http_probe_apispec_file {
            api_specs.push(slim::parse_apispec_file(raw, cwd)?);
        }
        out.probes = SlimProbes {
            api_specs,
            commands,
            ports: match &self.http_probe_ports {
                Some(list) => slim::parse_ports(list).map_err(usage)?,
                None => Vec::new(),
            },
            default_probe: self.http_probe.unwrap_or(true) && !self.http_probe_off,
            default_crawl: self.http_probe_crawl.unwrap_or(true),
            start_wait_s: self.http_probe_start_wait.unwrap_or(0),
            exec,
            host_exec,
        };
        out.crawl_depth = self.http_crawl_max_depth;
        out.crawl_max_pages = self.http_crawl_max_page_count;
        if self.http_probe_retry_count.is_some() || self.http_probe_retry_wait.is_some() {
            let count = self.http_probe_retry_count.unwrap_or(5).max(1);
            let wait = self.http_probe_retry_wait.unwrap_or(8).max(1);
            out.ready_timeout_s = Some(count * wait);
        }
        if self.run_target_as_user == Some(false) {
            return Err(usage(
                "--run-target-as-user=false: minify always runs the target as the image's USER; \
                 use --user root to run it as root",
            ));
        }
        if self.keep_perms == Some(false) {
            return Err(usage(
                "--keep-perms=false: minify always keeps each file's mode and owner as in the image",
            ));
        }

        out.run = self.run.options()?;
        out.compose = self.compose.setup()?;
        if let Some(compose) = &out.compose {
            if out.run.network.is_some() {
                return Err(usage(
                    "--network with --compose-file: the target joins the compose project's \
                     networks; choose among them with --compose-net",
                ));
            }
            out.run = crate::compose::plan::overlay(compose.target.run.clone(), &out.run);
        }

        // The result's config: the runtime options --image-overrides persists, then --new-*,
        // then --remove-* (docker-slim's order).
        let edits = &mut out.edits;
        let overrides = parse_image_overrides(self.image_overrides.as_deref())?;
        let wants = |name: &str| overrides.contains(&name.to_string());
        if wants("entrypoint") {
            edits.entrypoint = out.run.entrypoint.clone().filter(|e| !e.is_empty());
        }
        if wants("cmd") {
            edits.cmd = out.run.cmd.clone().filter(|c| !c.is_empty());
        }
        if wants("workdir") {
            edits.workdir = out.run.workdir.clone();
        }
        if wants("env") {
            edits.env = out.run.env.clone();
        }
        if wants("expose") {
            edits.expose = out.run.expose.clone();
        }
        if wants("volume") {
            edits.volumes = out.run.volumes.clone();
        }
        if wants("label") {
            edits.labels = out.run.labels.clone();
        }
        if let Some(workdir) = &self.new_workdir {
            edits.workdir = Some(workdir.clone());
        }
        for kv in &self.new_env {
            edits.env.push(check_env("--new-env", kv)?);
        }
        for raw in &self.new_expose {
            edits.expose.extend(parse_expose("--new-expose", raw)?);
        }
        edits.volumes.extend(self.new_volume.iter().cloned());
        for kv in &self.new_label {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| usage(format!("--new-label {kv:?}: expected KEY=VALUE")))?;
            edits.labels.insert(k.to_string(), v.to_string());
        }
        if let Some(value) = &self.new_entrypoint {
            edits.entrypoint = Some(parse_exec("--new-entrypoint", value)?);
        }
        if let Some(value) = &self.new_cmd {
            edits.cmd = Some(parse_exec("--new-cmd", value)?);
        }
        edits.remove_env = self.remove_env.clone();
        for raw in &self.remove_expose {
            edits
                .remove_expose
                .extend(parse_expose("--remove-expose", raw)?);
        }
        edits.remove_labels = self.remove_label.clone();
        edits.remove_volumes = self.remove_volume.clone();

        // What to keep.
        if let Some(file) = &self.include_path_file {
            out.include_paths
                .extend(slim::read_lines("--include-path-file", file)?);
        }
        if let Some(file) = &self.include_bin_file {
            out.include_bins
                .extend(slim::read_lines("--include-bin-file", file)?);
        }
        if let Some(file) = &self.preserve_path_file {
            out.preserve_paths
                .extend(slim::read_lines("--preserve-path-file", file)?);
        }
        out.include_exes = self.include_exe.clone();
        if let Some(file) = &self.include_exe_file {
            out.include_exes
                .extend(slim::read_lines("--include-exe-file", file)?);
        }
        if let Some(bad) = out.include_exes.iter().find(|e| e.contains('/')) {
            return Err(usage(format!(
                "--include-exe {bad:?}: expected a name found on PATH; keep a path with --include-bin"
            )));
        }
        out.include_node_packages = self.include_node_package.clone();
        let mut perms = self.path_perms.clone();
        if let Some(file) = &self.path_perms_file {
            perms.extend(slim::read_lines("--path-perms-file", file)?);
        }
        for raw in &perms {
            match crate::image::perms::split(raw).map_err(|e| usage(format!("--path-perms {e}")))? {
                Some(rule) => out.path_perms.push(rule),
                None => {
                    return Err(usage(format!(
                        "--path-perms {raw:?}: expected PATH:MODE[#UID[#GID]], e.g. /app/data:0770#1000#1000"
                    )))
                }
            }
        }
        out.exclude = self.exclude_pattern.clone();
        for (on, set) in [
            (self.include_zoneinfo, "zoneinfo"),
            (self.include_cert_all, "cert-all"),
            (self.include_cert_bundles_only, "cert-bundles"),
            (self.include_cert_dirs, "cert-dirs"),
            (self.include_oslibs_net, "oslibs-net"),
            (self.include_ssh_client, "ssh-client"),
            (self.include_licenses, "licenses"),
        ] {
            if on {
                out.include_sets.push(set);
            }
        }
        Ok(out)
    }
}

/// `--entrypoint`/`--cmd`/`--new-*` values: a JSON array, else shell words; a single
/// whitespace character means "none" (docker-slim's way to clear it).
pub fn parse_exec(flag: &str, value: &str) -> Result<Vec<String>> {
    if value.chars().count() == 1 && value.chars().all(char::is_whitespace) {
        return Ok(Vec::new());
    }
    if value.starts_with('[') {
        return serde_json::from_str(value).map_err(|e| {
            usage(format!(
                "{flag} {value:?}: not a JSON array of strings: {e}"
            ))
        });
    }
    shell_words(value).map_err(|e| usage(format!("{flag} {value:?}: {e}")))
}

pub use crate::run::shell_words;

/// A `KEY=value` with a non-empty key and value (docker-slim skips the others; minify says so).
fn check_env(flag: &str, kv: &str) -> Result<String> {
    let kv = kv.trim();
    match kv.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.is_empty() => Ok(kv.to_string()),
        _ => Err(usage(format!(
            "{flag} {kv:?}: expected KEY=VALUE with a non-empty key and value"
        ))),
    }
}

/// `--env-file`: `KEY=value` lines; empty lines and `#` comments skipped.
pub fn parse_env_file(path: &Path) -> Result<Vec<String>> {
    let flag = format!("--env-file {}", path.display());
    slim::read_lines("--env-file", path)?
        .into_iter()
        .filter(|l| !l.starts_with('#'))
        .map(|l| check_env(&flag, &l))
        .collect()
}

/// `--mount SOURCE:DEST[:OPTS]`.
pub fn parse_mount(raw: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = raw.split(':').collect();
    let bad = || {
        usage(format!(
            "--mount {raw:?}: expected SOURCE:DEST[:ro|rw] (an absolute SOURCE is a host path, \
             else a volume name)"
        ))
    };
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    if !parts[1].starts_with('/') {
        return Err(bad());
    }
    let read_only = match parts.get(2) {
        None => false,
        Some(opts) => {
            let mut read_only = false;
            for opt in opts.split(',') {
                match opt {
                    "ro" | "readonly" => read_only = true,
                    "rw" => read_only = false,
                    _ => return Err(bad()),
                }
            }
            read_only
        }
    };
    if !parts[0].starts_with('/') && (parts[0].contains('/') || parts[0].starts_with(['.', '~'])) {
        return Err(usage(format!(
            "--mount {raw:?}: a host path must be absolute (the daemon resolves it, not this shell)"
        )));
    }
    Ok(MountSpec {
        source: parts[0].to_string(),
        target: parts[1].to_string(),
        read_only,
    })
}

/// `PORT[/PROTO]` or `START-END[/PROTO]` → `PORT/proto` keys.
pub fn parse_expose(flag: &str, raw: &str) -> Result<Vec<String>> {
    let bad = || {
        usage(format!(
            "{flag} {raw:?}: expected PORT[/PROTO] or START-END[/PROTO]"
        ))
    };
    if raw.contains(':') {
        return Err(bad());
    }
    let (ports, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(bad());
    }
    let (start, end) = ports.split_once('-').unwrap_or((ports, ports));
    let (start, end): (u16, u16) = (
        start.parse().map_err(|_| bad())?,
        end.parse().map_err(|_| bad())?,
    );
    if start == 0 || end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `--publish-port PORT | HOSTPORT:PORT | IP:HOSTPORT:PORT | IP::PORT` → (container port,
/// (host IP, host port)), as docker-slim reads it.
pub fn parse_publish(raw: &str) -> Result<(String, (String, String))> {
    let bad = || {
        usage(format!(
            "--publish-port {raw:?}: expected PORT, HOSTPORT:PORT, IP:HOSTPORT:PORT or IP::PORT"
        ))
    };
    let parts: Vec<&str> = raw.split(':').collect();
    let key = |port: &str| -> Result<String> {
        let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        number
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(bad)?;
        Ok(format!("{number}/{proto}"))
    };
    let check_host_port = |p: &str| -> Result<String> {
        if p.is_empty() || p.parse::<u16>().is_ok() {
            Ok(p.to_string())
        } else {
            Err(bad())
        }
    };
    match parts.as_slice() {
        [port] => Ok((
            key(port)?,
            (
                String::new(),
                check_host_port(port.split('/').next().unwrap_or(port))?,
            ),
        )),
        [host_port, port] => Ok((key(port)?, (String::new(), check_host_port(host_port)?))),
        [ip, host_port, port] => {
            if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad());
            }
            // docker-slim: `IP::PORT` binds the same host port as the container port.
            let host_port = if host_port.is_empty() {
                port.split('/').next().unwrap_or(port)
            } else {
                host_port
            };
            Ok((key(port)?, (ip.to_string(), check_host_port(host_port)?)))
        }
        _ => Err(bad()),
    }
}

/// `--cro-shm-size`: bytes, or with a b/k/m/g suffix.
pub fn parse_size(raw: &str) -> Result<i64> {
    let lower = raw.trim().to_ascii_lowercase();
    let (number, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let factor: i64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => 0,
    };
    number
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && factor > 0)
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| {
            usage(format!(
                "--cro-shm-size {raw:?}: expected bytes, e.g. 67108864 or 64m"
            ))
        })
}

const IMAGE_OVERRIDES: &[&str] = &[
    "entrypoint",
    "cmd",
    "workdir",
    "env",
    "expose",
    "volume",
    "label",
];

fn parse_image_overrides(value: Option<&str>) -> Result<Vec<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    if value == "all" {
        return Ok(IMAGE_OVERRIDES.iter().map(|s| s.to_string()).collect());
    }
    value
        .split(',')
        .map(|part| {
            let part = part.trim().to_ascii_lowercase();
            if IMAGE_OVERRIDES.contains(&part.as_str()) {
                Ok(part)
            } else {
                Err(usage(format!(
                    "--image-overrides {part:?}: expected all or a list of {}",
                    IMAGE_OVERRIDES.join(", ")
                )))
            }
        })
        .collect()
}

/// docker-slim flags minify refuses, each with why and the closest minify feature.
pub const REFUSED: &[(&str, &str)] = &[
    ("http-probe-proxy-endpoint", "minify probes the published port directly; there is no probe proxy"),
    ("http-probe-proxy-port", "minify probes the published port directly; there is no probe proxy"),
    ("http-crawl-concurrency", "minify crawls one page at a time (what the sensor sees stays ordered); bound it with --http-crawl-max-page-count"),
    ("http-max-concurrent-crawlers", "minify crawls one page at a time; bound it with --http-crawl-max-page-count"),
    ("prestart-compose-svc", "not supported (a placeholder in docker-slim too); make the service a depends_on of the target with condition: service_completed_successfully"),
    ("poststart-compose-svc", "not supported (a placeholder in docker-slim too); probe the target with --exec or --host-exec"),
    ("prestart-compose-wait-exit", "not supported; depends_on with condition: service_completed_successfully waits for a service to exit 0"),
    ("container-probe-compose-svc", "not supported; probe the target from outside with --host-exec (dependencies run on the compose network, the target's ports are published)"),
    ("target-kube-workload", "Kubernetes targets are not supported: minify runs the image through Docker"),
    ("target-kube-workload-namespace", "Kubernetes targets are not supported"),
    ("target-kube-workload-container", "Kubernetes targets are not supported"),
    ("target-kube-workload-image", "Kubernetes targets are not supported"),
    ("kube-manifest-file", "Kubernetes targets are not supported"),
    ("kube-kubeconfig-file", "Kubernetes targets are not supported"),
    ("image-build-engine", "minify writes the slim image itself and loads it into the daemon; there is no engine to choose"),
    ("image-build-arch", "the slim image has the source image's architecture"),
    ("show-clogs", "minify prints the container's last log lines when it exits or fails its probes"),
    ("enable-mondel", "the report (--report) lists every kept path and why"),
    ("copy-meta-artifacts", "minify writes its artifacts where you say: --report FILE and --seccomp FILE"),
    ("remove-file-artifacts", "minify keeps no artifacts besides --report and --seccomp"),
    ("keep-tmp-artifacts", "minify keeps no temporary artifacts"),
    ("use-local-mounts", "minify's sensor needs no mounts; see --sensor"),
    ("use-sensor-volume", "minify's sensor needs no volume; see --sensor"),
    ("sensor-ipc-endpoint", "minify's sensor has no IPC channel; see --sensor"),
    ("sensor-ipc-mode", "minify's sensor has no IPC channel; see --sensor"),
    ("rta-onbuild-base-image", "minify traces any image; ONBUILD steps are not run"),
    ("rta-source-ptrace", "choose the sensor with --sensor ebpf|ptrace|auto"),
    ("cro-runtime", "not supported; the daemon's default runtime runs the target"),
    ("cro-host-config-file", "not supported; use the --env, --mount, --network, --cro-* flags"),
    ("container-dns", "not supported; map names with --etc-hosts-map HOST:IP"),
    ("container-dns-search", "not supported; map names with --etc-hosts-map HOST:IP"),
    ("include-new", "minify keeps files of the image only; what the app writes at runtime is not kept (--preserve-path keeps an image path as it was)"),
    ("include-dir-bins", "use --include-path DIR (the loader's needs of kept binaries are kept by themselves)"),
    ("include-app-image-all", "use --app-closure packages, or --include-path for the app's tree"),
    ("include-app-image-addcopy-all", "minify's --app-closure (default imports) keeps what COPY/ADD put outside system trees"),
    ("include-app-image-run", "use --app-closure"),
    ("app-image-start-instruction", "minify's app closure finds the app's layers itself (--app-closure)"),
    ("app-image-start-instruction-group", "minify's app closure finds the app's layers itself (--app-closure)"),
    ("app-image-start-detect", "minify's app closure finds the app's layers itself (--app-closure)"),
    ("app-image-dockerfile", "minify's app closure reads the image's history instead (--app-closure)"),
    ("include-paths-creport-file", "use --include-path-file with one path a line"),
    ("include-cert-pk-all", "private keys are never kept by a rule; name them with --include-path"),
    ("include-cert-pk-dirs", "private keys are never kept by a rule; name them with --include-path"),
    ("include-ssh-client-all", "use --include-ssh-client (the client, its libraries and config)"),
    ("include-ssh-client-basic", "use --include-ssh-client (the client, its libraries and config)"),
    ("include-app-nuxt-dir", "use --include-path DIR or --app-closure packages"),
    ("include-app-nuxt-build-dir", "use --include-path DIR"),
    ("include-app-nuxt-dist-dir", "use --include-path DIR"),
    ("include-app-nuxt-static-dir", "use --include-path DIR"),
    ("include-app-nuxt-nodemodules-dir", "use --include-path DIR/node_modules or --app-closure packages"),
    ("include-app-next-dir", "use --include-path DIR or --app-closure packages"),
    ("include-app-next-build-dir", "use --include-path DIR"),
    ("include-app-next-dist-dir", "use --include-path DIR"),
    ("include-app-next-static-dir", "use --include-path DIR"),
    ("include-app-next-nodemodules-dir", "use --include-path DIR/node_modules or --app-closure packages"),
    ("workdir-exclude", "use --exclude-pattern 'WORKDIR/…/**'"),
    ("exclude-varlock-files", "use --exclude-pattern '/var/lock/**' --exclude-pattern '/run/lock/**'"),
    ("exclude-mounts", "mounted paths are not in the image, so minify never keeps them"),
    ("obfuscate-metadata", "not supported: minify does not rewrite package metadata"),
    ("command-params-file", "not supported; pass the flags on the command line (or a --probes file for probes and keep rules)"),
];

/// docker-slim's global flags (before the command) minify refuses.
const REFUSED_GLOBAL: &[(&str, &str)] = &[
    ("log", "minify logs to stderr; redirect it (2>FILE)"),
    (
        "in-container",
        "not needed: minify runs the same in or out of a container",
    ),
    ("archive-state", "minify keeps no state"),
    (
        "check-version",
        "not supported; `minify --version` prints the version",
    ),
];

/// docker-slim global flags that take a value.
const GLOBAL_WITH_VALUE: &[&str] = &[
    "report",
    "log-level",
    "log-format",
    "state-path",
    "host",
    "tls-cert-path",
    "crt-api-version",
    "output-format",
    "log",
    "archive-state",
];

/// Turns a docker-slim command line into minify's: docker-slim's global flags before the
/// command are handled here (`--host` sets DOCKER_HOST, `--tls*` the DOCKER_TLS_* variables,
/// `--debug`/`--log-level debug` turn on --verbose, `--report` moves after `build`), and any
/// refused flag anywhere is a usage error naming the closest minify feature.
pub fn rewrite_args(args: Vec<OsString>) -> Result<Vec<OsString>> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let rest: Vec<OsString> = args.collect();
    let mut i = 0;
    let mut moved: Vec<OsString> = Vec::new();
    let mut verbose = false;
    // Global flags: everything before the first word that is not a flag (the command).
    while i < rest.len() {
        let Some(arg) = rest[i].to_str() else { break };
        // minify's own short flags (-v, -h, -V) pass through.
        if arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 1 {
            out.push(rest[i].clone());
            i += 1;
            continue;
        }
        let Some(flag) = arg.strip_prefix("--") else {
            break;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let takes_value = GLOBAL_WITH_VALUE.contains(&name);
        let value = if takes_value && inline.is_none() {
            i += 1;
            match rest.get(i).and_then(|v| v.to_str()) {
                Some(v) => Some(v.to_string()),
                None => return Err(usage(format!("--{name} needs a value"))),
            }
        } else {
            inline
        };
        if let Some((_, why)) = REFUSED_GLOBAL.iter().find(|(n, _)| *n == name) {
            return Err(usage(format!(
                "--{name} (a docker-slim global flag) is not supported: {why}"
            )));
        }
        let bool_value = |v: &Option<String>| v.as_deref().is_none_or(|v| v != "false");
        match name {
            "report" => {
                let value = value.unwrap_or_default();
                if value != "off" {
                    moved.push("--report".into());
                    moved.push(value.into());
                }
            }
            "debug" | "verbose" | "v" => verbose |= bool_value(&value),
            "quiet" | "no-color" => {}
            "log-level" => {
                let level = value.unwrap_or_default().to_ascii_lowercase();
                match level.as_str() {
                    "trace" | "debug" | "info" => verbose = true,
                    "warn" | "error" | "fatal" | "panic" => {}
                    _ => return Err(usage(format!("--log-level {level:?}: expected trace, debug, info, warn, error, fatal or panic"))),
                }
            }
            "log-format" | "output-format" => {
                let format = value.unwrap_or_default();
                if format != "text" {
                    return Err(usage(format!(
                        "--{name} {format}: minify's output is text; the machine-readable result is the JSON report (--report FILE)"
                    )));
                }
            }
            // minify keeps no state between runs: nothing to place.
            "state-path" => {}
            // minify negotiates the API version with the daemon.
            "crt-api-version" => {}
            "host" => std::env::set_var("DOCKER_HOST", value.unwrap_or_default()),
            "tls" | "tls-verify" => {
                if bool_value(&value) {
                    std::env::set_var("DOCKER_TLS_VERIFY", "1");
                }
            }
            "tls-cert-path" => std::env::set_var("DOCKER_CERT_PATH", value.unwrap_or_default()),
            // minify's own global flags.
            "help" | "version" => {
                out.push(rest[i].clone());
            }
            _ => {
                return Err(usage(format!(
                    "--{name} before the command is not a docker-slim or minify global flag"
                )))
            }
        }
        i += 1;
    }
    if verbose {
        out.push("--verbose".into());
    }
    let command = rest.get(i).cloned();
    if let Some(command) = command.clone() {
        out.push(command);
        i += 1;
    }
    let is_build = command.as_ref().and_then(|c| c.to_str()) == Some("build");
    if is_build {
        out.extend(moved);
    }
    for arg in &rest[i..] {
        if is_build {
            if let Some(flag) = arg.to_str().and_then(|a| a.strip_prefix("--")) {
                let name = flag.split('=').next().unwrap_or(flag);
                if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
                    return Err(usage(format!(
                        "--{name} (docker-slim) is not supported by minify: {why}"
                    )));
                }
            }
        }
        out.push(arg.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_values_are_json_or_shell_words() {
        assert_eq!(
            parse_exec("--cmd", r#"["python3", "-m", "http.server"]"#).unwrap(),
            ["python3", "-m", "http.server"]
        );
        assert_eq!(
            parse_exec("--cmd", r#"sh -c 'echo "a b"' x\ y"#).unwrap(),
            ["sh", "-c", r#"echo "a b""#, "x y"]
        );
        assert!(parse_exec("--cmd", " ").unwrap().is_empty());
        assert!(parse_exec("--cmd", "[1]").is_err());
        assert!(parse_exec("--cmd", "'open").is_err());
    }

    #[test]
    fn run_option_values_parse_as_docker_slim_reads_them() {
        let m = parse_mount("/srv/data:/data:ro").unwrap();
        assert!(m.is_bind() && m.read_only && m.target == "/data");
        let m = parse_mount("appdata:/data").unwrap();
        assert!(!m.is_bind() && !m.read_only);
        for bad in ["/x", "a:b", "a:/b:rx", "a:/b:ro:x", ":/b"] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_expose("--expose", "8000-8002").unwrap().len(), 3);
        assert_eq!(parse_expose("--expose", "53/udp").unwrap(), ["53/udp"]);
        assert!(parse_expose("--expose", "80:80").is_err());
        assert_eq!(
            parse_publish("8080").unwrap(),
            ("8080/tcp".into(), (String::new(), "8080".into()))
        );
        assert_eq!(
            parse_publish("18080:8080").unwrap(),
            ("8080/tcp".into(), (String::new(), "18080".into()))
        );
        assert_eq!(
            parse_publish("0.0.0.0:18080:8080/tcp").unwrap(),
            ("8080/tcp".into(), ("0.0.0.0".into(), "18080".into()))
        );
        assert_eq!(
            parse_publish("127.0.0.1::8080").unwrap(),
            ("8080/tcp".into(), ("127.0.0.1".into(), "8080".into()))
        );
        assert!(parse_publish("a:b:c:d").is_err());
        assert!(parse_publish("x:80").is_err());
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("lots").is_err());
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("app.env");
        std::fs::write(&env, "# comment\nA=1\n\nB=two words\n").unwrap();
        assert_eq!(parse_env_file(&env).unwrap(), ["A=1", "B=two words"]);
        std::fs::write(&env, "NOVALUE\n").unwrap();
        assert!(parse_env_file(&env).is_err());
    }

    #[test]
    fn global_flags_are_handled_and_refused_flags_name_the_closest_feature() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let out = rewrite_args(argv(&[
            "minify",
            "--debug",
            "--no-color",
            "--state-path",
            "/tmp/x",
            "--report=r.json",
            "build",
            "--target",
            "app:1",
        ]))
        .unwrap();
        assert_eq!(
            out,
            argv(&[
                "minify",
                "--verbose",
                "build",
                "--report",
                "r.json",
                "--target",
                "app:1"
            ])
        );
        let out = rewrite_args(argv(&["minify", "--report", "off", "build", "x"])).unwrap();
        assert_eq!(out, argv(&["minify", "build", "x"]));
        let err = rewrite_args(argv(&["minify", "build", "x", "--show-clogs"])).unwrap_err();
        assert!(err.to_string().contains("last log lines"), "{err}");
        let err =
            rewrite_args(argv(&["minify", "build", "--prestart-compose-svc=s", "x"])).unwrap_err();
        assert!(
            err.to_string().contains("service_completed_successfully"),
            "{err}"
        );
        assert!(rewrite_args(argv(&["minify", "build", "--compose-file=c.yml", "x"])).is_ok());
        let err = rewrite_args(argv(&["minify", "--log", "f", "build", "x"])).unwrap_err();
        assert!(err.to_string().contains("stderr"), "{err}");
        assert!(rewrite_args(argv(&["minify", "--log-format", "json", "build"])).is_err());
        assert!(rewrite_args(argv(&["minify", "--bogus", "build"])).is_err());
        let out = rewrite_args(argv(&["minify", "-v", "build", "x", "--show-clogs"]));
        assert!(
            out.is_err(),
            "a short flag before the command does not hide it"
        );
        // Other commands are left alone.
        let out = rewrite_args(argv(&["minify", "xray", "--show-clogs"])).unwrap();
        assert_eq!(out, argv(&["minify", "xray", "--show-clogs"]));
    }
}
