//! Command-line flags, their validation, and the stable exit codes. Thin: every flag turns into
//! a field of a library options struct before any daemon or kernel work starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::pipeline::BuildOptions;
use crate::probe::config::{ContinueAfter, ProbeFile};
use crate::probe::http::CrawlLimits;
use crate::probe::session::Plan;
use crate::sense::ptrace::SensorChoice;
use crate::{Error, Result};

pub mod lint;
pub mod slim;
pub mod xray;

/// Exit codes, stable for CI scripts.
pub mod exit {
    pub const OK: i32 = 0;
    /// Anything not covered below (I/O, sensor, internal errors).
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    /// Image missing (or it could not be pulled or built), daemon unreachable or a Docker API
    /// call failed.
    pub const IMAGE_OR_DAEMON: i32 = 3;
    /// The original image failed to start or to answer its probes.
    pub const PROBE_FAILED: i32 = 4;
    /// The slim image answered differently from the original.
    pub const VERIFY_FAILED: i32 = 5;
    /// A CI gate failed (`xray --ci` thresholds, `lint --fail-on` findings).
    pub const GATE_FAILED: i32 = 6;
    /// Interrupted by Ctrl-C / SIGTERM (after cleaning up).
    pub const INTERRUPTED: i32 = 130;
}

/// The exit code for an error, per [`exit`].
pub fn exit_code(error: &Error) -> i32 {
    match error.primary() {
        Error::Usage(_) | Error::ApiSpec(_) | Error::Compose { .. } => exit::USAGE,
        Error::DaemonUnreachable { .. }
        | Error::BadDockerHost { .. }
        | Error::ImageNotFound { .. }
        | Error::Pull { .. }
        | Error::FatBuild { .. }
        | Error::Docker { .. } => exit::IMAGE_OR_DAEMON,
        Error::ContainerExited { .. }
        | Error::Probe { .. }
        | Error::NotReady { .. }
        | Error::Dependency { .. } => exit::PROBE_FAILED,
        Error::VerifyFailed { .. } => exit::VERIFY_FAILED,
        Error::Interrupted => exit::INTERRUPTED,
        _ => exit::FAILURE,
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "minify",
    version,
    about = "Make container images small and safe by watching what they really use",
    after_help = "docker-slim's global flags before the command are accepted too (--report, --debug, \
--verbose, --log-level, --log-format, --no-color, --state-path, --host, --tls, --tls-verify, \
--tls-cert-path); `minify build --help` lists docker-slim's build flags under their headings, \
and the README's \"Coming from docker-slim\" says what each one does here."
)]
pub struct Cli {
    /// More detail on stderr (per-phase timings, debug logs).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the build flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run IMAGE, probe it, trace the files it uses, and build its slim twin.
    Build(Box<BuildArgs>),
    /// Run ORIGINAL and SLIM with the same probes and compare every answer.
    Verify(VerifyArgs),
    /// Audit Dockerfiles for size, cache and security mistakes; fix the mechanical ones.
    Lint(lint::LintArgs),
    /// Where an image's bytes go and what it carries, layer by layer; CI gates; HTML.
    Xray(xray::XrayArgs),
    /// Render a build report (minify build --report) as a self-contained HTML page.
    Report(xray::ReportArgs),
    /// Probe files: `minify probes convert FILE` turns a docker-slim command file into one.
    #[command(subcommand)]
    Probes(ProbesCommand),
    /// Remove what minify runs that are gone (killed, crashed, rebooted) left behind: their
    /// containers, the networks and volumes of their compose dependencies, and cgroups. Never
    /// touches a live run's objects.
    Gc,
}

#[derive(Debug, Subcommand)]
pub enum ProbesCommand {
    /// Print the minify probe file (YAML) for a docker-slim `--http-probe-cmd-file` FILE.
    Convert(ConvertArgs),
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// docker-slim's JSON command file (`{"commands":[…]}`).
    pub file: PathBuf,
    /// The ports commands without a `port` are probed on (docker-slim probes every exposed
    /// port; a file has no image to ask), repeatable.
    #[arg(long, value_name = "PORT")]
    pub port: Vec<u16>,
}

/// `minify probes convert FILE`: the YAML on stdout.
pub fn run_convert(args: &ConvertArgs) -> Result<String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let commands = crate::probe::slim::load_cmd_file(&args.file, &cwd)?;
    let slim = crate::probe::slim::SlimProbes {
        commands,
        ..Default::default()
    };
    let file = crate::probe::slim::to_probe_file(&slim, None, &args.port)
        .map_err(|e| Error::Usage(format!("{}: {e} (or pass --port N)", args.file.display())))?;
    let mut value = serde_yaml::to_value(&file).map_err(|e| Error::Usage(e.to_string()))?;
    prune_defaults(&mut value);
    let yaml = serde_yaml::to_string(&value).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(format!(
        "# minify probe file converted from docker-slim's {}\n# (body_file paths are absolute: docker-slim resolved them against the current directory)\n{yaml}",
        args.file.display()
    ))
}

/// Drops what a probe file need not say (nulls, empty lists and sections, `false` switches
/// other than `default_probes`), so that a converted file reads like a hand-written one.
fn prune_defaults(value: &mut serde_yaml::Value) {
    use serde_yaml::Value;
    match value {
        Value::Mapping(map) => {
            for (_, child) in map.iter_mut() {
                prune_defaults(child);
            }
            map.retain(|key, child| match child {
                Value::Null => false,
                Value::Sequence(items) => !items.is_empty(),
                Value::Mapping(entries) => !entries.is_empty(),
                Value::Bool(false) => key.as_str() == Some("default_probes"),
                _ => true,
            });
        }
        Value::Sequence(items) => items.iter_mut().for_each(prune_defaults),
        _ => {}
    }
}

/// Probe flags shared by `build` and `verify`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Probe file (YAML or JSON, by extension): HTTP/TCP/exec/host probes, readiness, keep rules.
    #[arg(long, value_name = "FILE")]
    pub probes: Option<PathBuf>,
    /// Do not crawl the exposed ports; run only the probe file's probes.
    #[arg(long)]
    pub no_default_probes: bool,
    /// How long to wait for each port to be ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub ready_timeout: u64,
    /// Grace period between the STOPSIGNAL and SIGKILL when stopping a container.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub stop_timeout: u64,
    /// Link depth of the default HTTP crawl.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub crawl_depth: usize,
    /// Most pages the default HTTP crawl fetches per port.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub crawl_max_pages: usize,
}

impl ProbeArgs {
    fn load(&self) -> Result<Option<ProbeFile>> {
        if self.ready_timeout == 0 || self.stop_timeout > 3600 {
            return Err(Error::Usage(
                "--ready-timeout must be at least 1 second and --stop-timeout at most 3600".into(),
            ));
        }
        if self.crawl_max_pages == 0 {
            return Err(Error::Usage("--crawl-max-pages must be at least 1".into()));
        }
        self.probes.as_deref().map(ProbeFile::load).transpose()
    }

    fn crawl_limits(&self) -> CrawlLimits {
        CrawlLimits {
            max_depth: self.crawl_depth,
            max_pages: self.crawl_max_pages,
            ..CrawlLimits::default()
        }
    }

    /// The plan for an image exposing `exposed_tcp` (for `minify verify`).
    pub fn plan(&self, file: Option<&ProbeFile>, exposed_tcp: &[u16]) -> Plan {
        Plan::new(
            file,
            exposed_tcp,
            !self.no_default_probes,
            &self.crawl_limits(),
            Duration::from_secs(self.ready_timeout),
        )
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The original image.
    pub original: String,
    /// The slim image to check against it.
    pub slim: String,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Where to write the JSON result.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// How both images run (docker-slim's run flags, as for `minify build`).
    #[command(flatten)]
    pub run: slim::RunArgs,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The image to minify (name[:tag] or id; or --target IMAGE). It is never modified. With
    /// --dockerfile: the build context directory (docker-slim's meaning).
    #[arg(value_name = "IMAGE")]
    pub image: Option<String>,
    /// Name of the slim image [default: REPO.slim:TAG]; repeatable: every name tags it.
    #[arg(
        long,
        help_heading = "The result image (docker-slim)",
        value_name = "NAME[:TAG]"
    )]
    pub tag: Vec<String>,
    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE", default_value = "minify-report.json")]
    pub report: PathBuf,
    /// After probing: `probe` (stop at once, the default), SECONDS more, or `signal` (wait for
    /// SIGUSR1 or Enter while you drive the app). With nothing to probe the default is 10 s.
    #[arg(
        long,
        help_heading = "Other probes and when to stop (docker-slim)",
        value_name = "probe|SECONDS|signal|enter|exec|timeout"
    )]
    pub continue_after: Option<ContinueAfter>,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Keep this file or whole directory tree (repeatable).
    #[arg(long, help_heading = "What to keep (docker-slim)", value_name = "PATH")]
    pub include_path: Vec<String>,
    /// Keep this binary and the libraries it loads (repeatable).
    #[arg(long, help_heading = "What to keep (docker-slim)", value_name = "PATH")]
    pub include_bin: Vec<String>,
    /// Keep a shell and basic tools (ls, cat, ps, ...) for debugging the slim image.
    #[arg(long, help_heading = "What to keep (docker-slim)")]
    pub include_shell: bool,
    /// Drop kept paths matching this glob (repeatable); what the dynamic loader needs stays.
    #[arg(long, help_heading = "What to keep (docker-slim)", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep this path with its original content, whatever the trace says (repeatable).
    #[arg(long, help_heading = "What to keep (docker-slim)", value_name = "PATH")]
    pub preserve_path: Vec<String>,
    /// Replay the probes against the slim image and fail (exit 5) on any different answer.
    #[arg(long)]
    pub verify: bool,
    /// How far to go beyond the trace: `imports` (default) keeps the app's own files (what the
    /// image's COPY/ADD/RUN steps put outside system trees, the WORKDIR tree) and what kept
    /// source code imports, requires or includes, transitively; `packages` also keeps the whole
    /// language package (Python distribution, npm package, gem) of every kept file; `off` keeps
    /// only what the trace saw.
    #[arg(long, value_name = "off|imports|packages", default_value = "imports")]
    pub app_closure: crate::closure::lang::AppClosure,
    /// Always read the image through `docker save`, never the local daemon's layer store (which
    /// is read by default when the daemon is local and uses overlay2: only the kept files'
    /// bytes are read then).
    #[arg(long)]
    pub no_layer_store: bool,
    /// Write an SBOM of the slim image: its OS and language packages still (partly) there,
    /// with purls, declared licenses and how much of each was kept.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// The SBOM's format: CycloneDX 1.5 JSON or SPDX 2.3 JSON (with each package's kept files).
    #[arg(
        long,
        value_enum,
        value_name = "cyclonedx|spdx",
        default_value_t,
        requires = "sbom"
    )]
    pub sbom_format: crate::sbom::Format,
    /// Which sensor records the run: host-side eBPF (local daemon, root), the in-container
    /// ptrace wrapper (remote daemons, no BPF rights), or auto (eBPF when possible).
    #[arg(long, value_enum, default_value_t = SensorChoice::Auto)]
    pub sensor: SensorChoice,
    /// Where to write the generated seccomp profile [default: next to the report, REPORT.seccomp.json].
    #[arg(long, value_name = "FILE")]
    pub seccomp: Option<PathBuf>,
    /// CI gates (`--ci` and thresholds, as for `minify xray`) checked on the slim image.
    #[command(flatten)]
    pub gates: xray::GateArgs,
    /// With --ci: fail when the slim image still holds more than N OS packages (whole or partly).
    #[arg(long, value_name = "N", requires = "ci")]
    pub max_packages: Option<usize>,
    /// With --ci: fail when the slim image still holds a shell.
    #[arg(long, requires = "ci")]
    pub no_shell: bool,
    /// With --ci: fail when the slim image still holds a setuid or setgid file.
    #[arg(long, requires = "ci")]
    pub no_setuid: bool,
    /// With --ci: fail when the slim image still holds a package manager.
    #[arg(long, requires = "ci")]
    pub no_package_manager: bool,
    /// docker-slim's build flags, same names and meaning.
    #[command(flatten)]
    pub slim: slim::SlimArgs,
}

impl BuildArgs {
    /// Checks every flag and turns them into library options; no daemon or kernel access.
    pub fn validate(&self) -> Result<BuildOptions> {
        for tag in &self.tag {
            validate_reference(tag)?;
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let mut slim = self.slim.validate(&cwd)?;
        // With --target-compose-svc the service's image is the source unless one is named, and
        // one that is named must be it.
        let service_image = slim.compose.as_ref().and_then(|c| c.target.image.clone());
        let named = self.image.as_ref().or(self.slim.target.as_ref());
        if let (Some(service), Some(named)) = (&service_image, named) {
            if service != named {
                return Err(Error::Usage(format!(
                    "two images given: {named} and the image of --target-compose-svc, {service}"
                )));
            }
        }
        let positional = self.image.clone().or(match self.slim.target {
            None => service_image,
            Some(_) => None,
        });
        let (image, acquire) = self.slim.source(positional.as_deref(), &self.tag, &cwd)?;
        if self.slim.include_workdir && self.app_closure == crate::closure::lang::AppClosure::Off {
            return Err(Error::Usage(
                "--include-workdir keeps the WORKDIR tree through the app closure: drop \
                 --app-closure off"
                    .into(),
            ));
        }
        let probes = self.probe.load()?;
        let mut keep = probes.as_ref().map(|p| p.keep.clone()).unwrap_or_default();
        keep.include_paths.extend(self.include_path.iter().cloned());
        keep.include_paths
            .extend(slim.include_paths.iter().cloned());
        keep.include_bins.extend(self.include_bin.iter().cloned());
        keep.include_bins.extend(slim.include_bins.iter().cloned());
        keep.include_shell |= self.include_shell;
        keep.exclude.extend(self.exclude.iter().cloned());
        keep.exclude.extend(slim.exclude.iter().cloned());
        keep.preserve_paths
            .extend(self.preserve_path.iter().cloned());
        keep.preserve_paths
            .extend(slim.preserve_paths.iter().cloned());
        keep.include_exes.extend(slim.include_exes.iter().cloned());
        keep.include_node_packages
            .extend(slim.include_node_packages.iter().cloned());
        keep.include_sets
            .extend(slim.include_sets.iter().map(|s| s.to_string()));
        // docker-slim's `PATH:MODE#UID#GID` suffix: the path is kept, its perms are set.
        let mut path_perms = Vec::new();
        for path in keep
            .include_paths
            .iter_mut()
            .chain(keep.preserve_paths.iter_mut())
        {
            if let Some(rule) = crate::image::perms::split(path).map_err(Error::Usage)? {
                *path = rule.path.clone();
                path_perms.push(rule);
            }
        }
        path_perms.extend(slim.path_perms.iter().cloned());
        for path in keep
            .include_paths
            .iter()
            .chain(&keep.include_bins)
            .chain(&keep.preserve_paths)
            .chain(path_perms.iter().map(|p| &p.path))
        {
            if !path.starts_with('/') {
                return Err(Error::Usage(format!(
                    "include/preserve paths must be absolute, got {path:?}"
                )));
            }
        }
        crate::closure::rules::exclude_set(&keep.exclude)?;
        let report_dir = match self.report.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !report_dir.is_dir() {
            return Err(Error::Usage(format!(
                "--report {}: directory {} does not exist",
                self.report.display(),
                report_dir.display()
            )));
        }
        let seccomp_path = self
            .seccomp
            .clone()
            .unwrap_or_else(|| crate::seccomp::default_path(&self.report));
        if let Some(dir) = seccomp_path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(Error::Usage(format!(
                    "--seccomp {}: directory {} does not exist",
                    seccomp_path.display(),
                    dir.display()
                )));
            }
        }
        let mut crawl = self.probe.crawl_limits();
        if let Some(depth) = slim.crawl_depth {
            crawl.max_depth = depth;
        }
        if let Some(pages) = slim.crawl_max_pages {
            if pages == 0 {
                return Err(Error::Usage(
                    "--http-crawl-max-page-count must be at least 1".into(),
                ));
            }
            crawl.max_pages = pages;
        }
        let mut tags = self.tag.clone();
        if tags.is_empty() {
            tags.push(default_slim_tag(&image));
        }
        let tag = tags.remove(0);
        tags.retain(|t| t != &tag);
        tags.dedup();
        let ready_timeout =
            Duration::from_secs(slim.ready_timeout_s.unwrap_or(self.probe.ready_timeout));
        let compose = slim.compose.take().map(|setup| {
            let mut plan = setup.plan;
            // Each depends_on condition may take as long as the target's ports.
            plan.wait_timeout = ready_timeout;
            plan
        });
        Ok(BuildOptions {
            compose,
            sensor: self.sensor,
            seccomp_path,
            tag,
            extra_tags: tags,
            image,
            report_path: self.report.clone(),
            continue_after: self
                .continue_after
                .clone()
                .or_else(|| probes.as_ref().and_then(|p| p.continue_after.clone())),
            ready_timeout,
            stop_timeout_secs: self.probe.stop_timeout as i64,
            crawl,
            slim_probes: (!slim.probes.is_default()).then(|| slim.probes.clone()),
            probe_exit_on_failure: slim.exit_on_failure,
            run: slim.run.clone(),
            config_edits: slim.edits.clone(),
            default_probes: !self.probe.no_default_probes,
            probes,
            keep,
            verify: self.verify,
            app_closure: self.app_closure,
            layer_store: !self.no_layer_store,
            sbom_path: self.sbom.clone(),
            acquire,
            path_perms,
            sbom_format: self.sbom_format,
        })
    }
}

impl BuildArgs {
    /// The build's own CI rules (package count and attack surface of the slim image), checked
    /// on its report; the image rules (`--max-size`, …) are checked by [`xray::gate_built_image`].
    pub fn surface_gates(
        &self,
        report: &crate::report::Report,
    ) -> Vec<crate::xray::gate::RuleResult> {
        use crate::xray::gate::RuleResult;
        let after = &report.attack_surface.after;
        let mut out = Vec::new();
        if let Some(max) = self.max_packages {
            let kept = report.packages.whole + report.packages.partly;
            out.push(RuleResult {
                rule: "maxPackages",
                passed: kept <= max,
                detail: format!("{kept} OS packages kept (limit {max})"),
            });
        }
        let mut none = |rule, wanted: bool, found: &[String], what: &str| {
            if wanted {
                out.push(RuleResult {
                    rule,
                    passed: found.is_empty(),
                    detail: if found.is_empty() {
                        format!("no {what}")
                    } else {
                        format!("{what}: {}", found.join(", "))
                    },
                });
            }
        };
        none("noShell", self.no_shell, &after.shells, "shells");
        none(
            "noSetuid",
            self.no_setuid,
            &after.setuid_setgid,
            "setuid/setgid files",
        );
        none(
            "noPackageManager",
            self.no_package_manager,
            &after.package_managers,
            "package managers",
        );
        out
    }
}

/// Checks `NAME[:TAG]` against Docker's reference grammar (lowercase repository, tag ≤ 128 chars).
pub fn validate_reference(reference: &str) -> Result<()> {
    let (repo, tag) = split_reference(reference);
    let repo_ok = !repo.is_empty()
        && repo.split('/').enumerate().all(|(i, part)| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || "._-".contains(c)
                        || (i == 0 && (c == ':' || c.is_ascii_uppercase()))
                })
        });
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    if repo_ok && tag_ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--tag {reference:?} is not a valid image reference (expected lowercase name[:tag])"
        )))
    }
}

/// Splits `repo[:tag]`, aware of registry ports (`host:5000/app`) and digests (`app@sha256:…`).
pub(crate) fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rfind(':') {
        Some(colon) if !reference[colon..].contains('/') => {
            (&reference[..colon], Some(&reference[colon + 1..]))
        }
        _ => (reference, None),
    }
}

/// The docker-slim convention: `app:1.2` → `app.slim:1.2`; an id → `minify-slim:<short id>`.
pub fn default_slim_tag(image: &str) -> String {
    let bare_id = image.strip_prefix("sha256:").unwrap_or(image);
    if image.starts_with("sha256:")
        || (bare_id.len() >= 12 && bare_id.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return format!("minify-slim:{}", &bare_id[..12.min(bare_id.len())]);
    }
    let (repo, tag) = split_reference(image);
    format!("{repo}.slim:{}", tag.unwrap_or("latest"))
}

/// `minify verify ORIGINAL SLIM`: probes the original, replays the same requests on the slim
/// image, prints the differences; [`Error::VerifyFailed`] if there are any.
/// `minify gc`: sweeps the containers, compose networks and volumes, and cgroups of minify
/// processes that are gone.
pub async fn run_gc() -> Result<i32> {
    let docker = crate::docker::Bollard::connect().await?;
    let swept = crate::run::sweep_orphans(&docker).await?;
    for name in &swept.containers {
        eprintln!("removed container {name}");
    }
    for name in &swept.networks {
        eprintln!("removed network {name}");
    }
    for name in &swept.volumes {
        eprintln!("removed volume {name}");
    }
    // Cgroups exist only with a local daemon and root; elsewhere there is nothing to sweep.
    let cgroups = if crate::docker::endpoint_is_local(crate::docker::DockerApi::endpoint(&docker))
        && nix::unistd::geteuid().is_root()
    {
        crate::sense::cgroup::remove_stale(crate::sense::cgroup::NAME_PREFIX).unwrap_or_default()
    } else {
        Vec::new()
    };
    for path in &cgroups {
        eprintln!("removed cgroup {}", path.display());
    }
    eprintln!(
        "gc: removed {} container(s), {} network(s), {} volume(s) and {} cgroup dir(s) of minify runs that are gone",
        swept.containers.len(),
        swept.networks.len(),
        swept.volumes.len(),
        cgroups.len()
    );
    Ok(exit::OK)
}

pub async fn run_verify(args: &VerifyArgs) -> Result<i32> {
    let file = args.probe.load()?;
    let run_options = args.run.options()?;
    let docker = crate::docker::Bollard::connect().await?;
    if let Ok(removed) = crate::run::sweep_orphans(&docker).await {
        if !removed.is_empty() {
            eprintln!(
                "minify: removed what minify runs that are gone left behind: {}",
                removed.describe()
            );
        }
    }
    let (original, verification) = crate::verify::verify_images(
        &docker,
        &args.original,
        &args.slim,
        |ports| args.probe.plan(file.as_ref(), ports),
        args.probe.stop_timeout as i64,
        &run_options,
    )
    .await?;
    if let Some(path) = &args.report {
        let json = serde_json::json!({ "original": original, "verification": verification });
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap_or_default())
            .map_err(Error::io(format!("writing {}", path.display())))?;
    }
    if !verification.passed() {
        return Err(Error::VerifyFailed {
            image: args.slim.clone(),
            differences: verification.describe(),
        });
    }
    eprintln!(
        "verify: {} answered all {} probes like {}",
        args.slim,
        verification.probes.len(),
        args.original
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_follows_docker_slim_convention() {
        assert_eq!(
            default_slim_tag("minify-fixture/nginx:1"),
            "minify-fixture/nginx.slim:1"
        );
        assert_eq!(default_slim_tag("app"), "app.slim:latest");
        assert_eq!(
            default_slim_tag("localhost:5000/app"),
            "localhost:5000/app.slim:latest"
        );
        assert_eq!(default_slim_tag("app@sha256:abcd"), "app.slim:latest");
        assert_eq!(
            default_slim_tag("sha256:0123456789abcdef0123"),
            "minify-slim:0123456789ab"
        );
    }

    fn build_args(extra: &[&str]) -> Result<BuildOptions> {
        let mut argv = vec!["minify", "build"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv)
            .map_err(|e| Error::Usage(e.to_string()))?
            .command
        {
            Command::Build(args) => args.validate(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn docker_slim_build_flags_map_onto_build_options() {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("app.env");
        std::fs::write(&env_file, "A=1\n").unwrap();
        let cmds = dir.path().join("cmds.json");
        std::fs::write(
            &cmds,
            r#"{"commands":[{"method":"POST","resource":"/x","body":"b"}]}"#,
        )
        .unwrap();
        let options = build_args(&[
            "--target",
            "app:1",
            "--tag",
            "app:slim",
            "--tag",
            "registry.local/app:slim",
            "--http-probe-cmd",
            "crawl:/docs",
            "--http-probe-cmd-file",
            cmds.to_str().unwrap(),
            "--http-probe-ports",
            "8080",
            "--http-probe-exit-on-failure=false",
            "--http-probe-retry-count",
            "3",
            "--http-probe-retry-wait",
            "2",
            "--http-crawl-max-depth",
            "1",
            "--http-crawl-max-page-count",
            "7",
            "--continue-after",
            "enter",
            "--env-file",
            env_file.to_str().unwrap(),
            "--env",
            "B=2",
            "--mount",
            "data:/data",
            "--volume",
            "/scratch",
            "--network",
            "appnet",
            "--link",
            "db",
            "--etc-hosts-map",
            "api:10.0.0.1",
            "--hostname",
            "svc",
            "--user",
            "app",
            "--workdir",
            "/srv",
            "--cmd",
            "serve --fast",
            "--expose",
            "9000",
            "--publish-port",
            "18080:8080",
            "--publish-exposed-ports",
            "--cro-shm-size",
            "64m",
            "--cro-sysctl",
            "net.core.somaxconn=1024",
            "--new-cmd",
            r#"["serve"]"#,
            "--new-env",
            "MODE=prod",
            "--new-label",
            "team=web",
            "--new-expose",
            "8443",
            "--new-volume",
            "/cache",
            "--new-workdir",
            "/app",
            "--remove-env",
            "DEBUG",
            "--remove-expose",
            "9000",
            "--remove-label",
            "old",
            "--remove-volume",
            "/tmp",
            "--image-overrides",
            "env",
            "--include-exe",
            "curl",
            "--include-zoneinfo",
            "--include-cert-bundles-only",
            "--include-node-package",
            "express",
            "--exclude-pattern",
            "/usr/share/doc/**",
            "--keep-perms",
            "--http-probe-full",
        ])
        .unwrap();
        assert_eq!(options.image, "app:1");
        assert_eq!(options.tag, "app:slim");
        assert_eq!(options.extra_tags, ["registry.local/app:slim"]);
        assert_eq!(options.continue_after, Some(ContinueAfter::Signal));
        assert_eq!(options.ready_timeout, Duration::from_secs(6));
        assert_eq!((options.crawl.max_depth, options.crawl.max_pages), (1, 7));
        assert!(!options.probe_exit_on_failure);
        let probes = options.slim_probes.as_ref().unwrap();
        assert_eq!(probes.commands.len(), 2);
        assert_eq!(probes.ports, [8080]);
        let run = &options.run;
        assert_eq!(run.env, ["A=1", "B=2"]);
        assert_eq!(run.mounts[0].source, "data");
        assert_eq!(run.volumes, ["/scratch"]);
        assert_eq!(run.network.as_deref(), Some("appnet"));
        assert_eq!(
            run.cmd.as_deref(),
            Some(&["serve".to_string(), "--fast".to_string()][..])
        );
        assert_eq!(run.expose, ["9000/tcp"]);
        assert_eq!(run.port_bindings["8080/tcp"].1, "18080");
        assert!(run.publish_exposed);
        assert_eq!(run.shm_size, Some(64 << 20));
        let edits = &options.config_edits;
        assert_eq!(edits.cmd.as_deref(), Some(&["serve".to_string()][..]));
        assert_eq!(
            edits.env,
            ["A=1", "B=2", "MODE=prod"],
            "--image-overrides env"
        );
        assert_eq!(edits.expose, ["8443/tcp"]);
        assert_eq!(edits.remove_expose, ["9000/tcp"]);
        assert_eq!(edits.labels["team"], "web");
        assert_eq!(options.keep.include_exes, ["curl"]);
        assert_eq!(options.keep.include_sets, ["zoneinfo", "cert-bundles"]);
        assert_eq!(options.keep.exclude, ["/usr/share/doc/**"]);

        // Errors name the flag; nothing is silently dropped.
        for (bad, expected) in [
            (vec!["app:1", "--target", "other:1"], "two images"),
            (vec![], "no image"),
            (
                vec!["app:1", "--http-probe-cmd", "nope"],
                "--http-probe-cmd",
            ),
            (vec!["app:1", "--env", "NOVALUE"], "--env"),
            (vec!["app:1", "--mount", "./rel:/x"], "absolute"),
            (vec!["app:1", "--network", "host"], "bridge network"),
            (vec!["app:1", "--keep-perms=false"], "mode and owner"),
            (
                vec!["app:1", "--continue-after", "app-exit"],
                "not supported",
            ),
            (
                vec!["app:1", "--image-overrides", "bogus"],
                "--image-overrides",
            ),
            (
                vec!["app:1", "--include-workdir", "--app-closure", "off"],
                "--include-workdir",
            ),
        ] {
            let err = build_args(&bad).unwrap_err();
            assert!(err.to_string().contains(expected), "{bad:?}: {err}");
        }
        // `--http-probe=false` is the default probe off; a bare `--http-probe` leaves it on.
        let off = build_args(&["app:1", "--http-probe=false"]).unwrap();
        assert!(!off.slim_probes.unwrap().default_probe);
        let on = build_args(&["--http-probe", "app:1"]).unwrap();
        assert!(on.slim_probes.is_none());
        assert_eq!(on.image, "app:1");
    }

    #[test]
    fn docker_slim_pull_and_dockerfile_flags_say_how_the_source_gets_into_the_daemon() {
        use crate::acquire::Acquire;
        let pull = build_args(&[
            "127.0.0.1:5000/x:1",
            "--pull",
            "--registry-account",
            "u",
            "--registry-secret",
            "p",
            "--show-plogs",
        ])
        .unwrap();
        let Acquire::Pull(how) = &pull.acquire else {
            panic!("{:?}", pull.acquire)
        };
        assert_eq!(pull.image, "127.0.0.1:5000/x:1");
        assert_eq!(how.registry_account.as_deref(), Some("u"));
        assert!(how.show_progress);
        assert!(matches!(
            build_args(&["app:1"]).unwrap().acquire,
            Acquire::Local
        ));
        assert!(matches!(
            build_args(&["app:1", "--pull=false"]).unwrap().acquire,
            Acquire::Local
        ));

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile.app"), "FROM x\n").unwrap();
        let ctx = dir.path().to_str().unwrap();
        let built = build_args(&[
            "--dockerfile",
            "Dockerfile.app",
            ctx,
            "--tag",
            "app:2",
            "--cbo-build-arg",
            "V=1",
            "--cbo-label",
            "team=web",
            "--cbo-target",
            "run",
            "--cbo-network",
            "none",
            "--cbo-cache-from",
            "app:1",
            "--cbo-add-host",
            "db:10.0.0.2",
            "--delete-generated-fat-image",
        ])
        .unwrap();
        let Acquire::Build(fat) = &built.acquire else {
            panic!("{:?}", built.acquire)
        };
        assert_eq!(
            built.image, "app.fat:2",
            "docker-slim's fat name from --tag"
        );
        assert_eq!(built.tag, "app:2");
        assert_eq!(fat.dockerfile, dir.path().join("Dockerfile.app"));
        assert_eq!(fat.build.build_args["V"], "1");
        assert_eq!(fat.build.labels["team"], "web");
        assert_eq!(fat.build.target.as_deref(), Some("run"));
        assert_eq!(fat.build.network.as_deref(), Some("none"));
        assert_eq!(fat.build.cache_from, ["app:1"]);
        assert_eq!(fat.build.extra_hosts, ["db:10.0.0.2"]);
        assert!(fat.delete_after);
        let named = build_args(&[
            "--dockerfile",
            "Dockerfile.app",
            "--dockerfile-context",
            ctx,
            "--tag-fat",
            "my/fat:1",
        ])
        .unwrap();
        assert_eq!(named.image, "my/fat:1");
        assert_eq!(named.tag, "my/fat.slim:1");

        let dockerfile = dir.path().join("Dockerfile.app");
        let dockerfile = dockerfile.to_str().unwrap();
        for (bad, expected) in [
            (vec!["app:1", "--tag-fat", "x"], "no --dockerfile"),
            (vec!["app:1", "--cbo-build-arg", "A=1"], "no --dockerfile"),
            (
                vec!["--dockerfile", dockerfile, "--target", "app:1"],
                "--target",
            ),
            (
                vec!["--dockerfile", dockerfile, "/nonexistent"],
                "not a directory",
            ),
            (vec!["--dockerfile", "Nope", ctx], "no such file"),
            (
                vec!["--dockerfile", dockerfile, ctx, "--tag-fat", "Bad Name"],
                "not a valid image reference",
            ),
            (
                vec![
                    "--dockerfile",
                    dockerfile,
                    ctx,
                    "--tag-fat",
                    "a:1",
                    "--tag",
                    "a:1",
                ],
                "name of its own",
            ),
            (
                vec![
                    "--dockerfile",
                    dockerfile,
                    ctx,
                    "--cbo-build-arg",
                    "MINIFY_UNSET_ARG_X",
                ],
                "not set",
            ),
            (
                vec!["app:1", "--pull", "--registry-account", "u"],
                "go together",
            ),
            (
                vec!["app:1", "--pull", "--docker-config-path", "/nonexistent"],
                "no docker config",
            ),
        ] {
            let err = build_args(&bad).unwrap_err();
            assert!(err.to_string().contains(expected), "{bad:?}: {err}");
        }
    }

    #[test]
    fn permission_suffixes_are_split_off_kept_paths_and_path_perms_need_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("perms.txt");
        std::fs::write(&file, "/etc/app.conf:0600#0#0\n").unwrap();
        let options = build_args(&[
            "app:1",
            "--include-path",
            "/app/data:0770#1000#1000",
            "--preserve-path",
            "/srv/a:b",
            "--path-perms",
            "/bin/tool:4755",
            "--path-perms-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(options.keep.include_paths, ["/app/data"]);
        assert_eq!(
            options.keep.preserve_paths,
            ["/srv/a:b"],
            "a colon in a name stays"
        );
        let paths: Vec<(&str, u32)> = options
            .path_perms
            .iter()
            .map(|p| (p.path.as_str(), p.mode))
            .collect();
        assert_eq!(
            paths,
            [
                ("/app/data", 0o770),
                ("/bin/tool", 0o4755),
                ("/etc/app.conf", 0o600)
            ]
        );
        for (bad, expected) in [
            (vec!["app:1", "--path-perms", "/bin/tool"], "PATH:MODE"),
            (vec!["app:1", "--path-perms", "/x:0755#me"], "not a number"),
            (vec!["app:1", "--path-perms", "rel:0755"], "absolute"),
        ] {
            let err = build_args(&bad).unwrap_err();
            assert!(err.to_string().contains(expected), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_docker_slim_command_file_converts_to_a_loadable_probe_file() {
        let dir = tempfile::tempdir().unwrap();
        let body = dir.path().join("body.json");
        std::fs::write(&body, "{}").unwrap();
        let cmds = dir.path().join("cmds.json");
        std::fs::write(
            &cmds,
            format!(
                r#"{{"commands":[{{"method":"POST","resource":"/x","body_file":"{}","port":8000}},{{"resource":"/"}}]}}"#,
                body.display()
            ),
        )
        .unwrap();
        let args = |ports: Vec<u16>| ConvertArgs {
            file: cmds.clone(),
            port: ports,
        };
        assert!(run_convert(&args(vec![]))
            .unwrap_err()
            .to_string()
            .contains("--port"));
        let yaml = run_convert(&args(vec![80])).unwrap();
        let out = dir.path().join("out.yaml");
        std::fs::write(&out, &yaml).unwrap();
        let file = ProbeFile::load(&out).unwrap();
        assert_eq!(file.http.len(), 2);
        assert_eq!(file.http[0].body.as_deref(), Some("{}"));
        assert_eq!(file.default_probes, Some(false));
    }

    #[test]
    fn invalid_tags_are_usage_errors_before_any_daemon_work() {
        for bad in ["Upper/Case", "app:", "app:-x", "a//b", ""] {
            assert!(validate_reference(bad).is_err(), "{bad} should be rejected");
        }
        for good in ["app", "app.slim:1", "host:5000/team/app:v1.2-3"] {
            assert!(
                validate_reference(good).is_ok(),
                "{good} should be accepted"
            );
        }
    }

    #[test]
    fn build_flags_are_validated() {
        let args = |extra: &[&str]| {
            let mut argv = vec!["minify", "build", "app:1"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Build(args) => args.validate(),
                other => panic!("parsed as {other:?}"),
            }
        };
        assert_eq!(args(&[]).unwrap().tag, "app.slim:1");
        assert!(matches!(args(&["--tag", "Bad Tag"]), Err(Error::Usage(_))));
        assert!(matches!(args(&["--exclude", "["]), Err(Error::Usage(_))));
        assert!(matches!(
            args(&["--include-path", "relative"]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            args(&["--probes", "/nonexistent.yaml"]),
            Err(Error::Usage(_))
        ));
        let continued = args(&["--continue-after", "signal"]).unwrap();
        assert_eq!(continued.continue_after, Some(ContinueAfter::Signal));
        assert!(matches!(
            args(&["--report", "/nonexistent/dir/r.json"]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            args(&["--ready-timeout", "0"]),
            Err(Error::Usage(_))
        ));
    }
}
