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
pub mod xray;

/// Exit codes, stable for CI scripts.
pub mod exit {
    pub const OK: i32 = 0;
    /// Anything not covered below (I/O, sensor, internal errors).
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    /// Image missing, daemon unreachable or a Docker API call failed.
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
        Error::Usage(_) => exit::USAGE,
        Error::DaemonUnreachable { .. } | Error::ImageNotFound { .. } | Error::Docker { .. } => {
            exit::IMAGE_OR_DAEMON
        }
        Error::ContainerExited { .. } | Error::Probe { .. } => exit::PROBE_FAILED,
        Error::VerifyFailed { .. } => exit::VERIFY_FAILED,
        Error::Interrupted => exit::INTERRUPTED,
        _ => exit::FAILURE,
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "minify",
    version,
    about = "Make container images small and safe by watching what they really use"
)]
pub struct Cli {
    /// More detail on stderr (per-phase timings, debug logs).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

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
    /// Remove what minify runs that are gone (killed, crashed, rebooted) left behind: their
    /// containers and cgroups. Never touches a live run's objects.
    Gc,
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
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The image to minify (name[:tag] or id). It is never modified.
    pub image: String,
    /// Name of the slim image [default: REPO.slim:TAG].
    #[arg(long, value_name = "NAME[:TAG]")]
    pub tag: Option<String>,
    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE", default_value = "minify-report.json")]
    pub report: PathBuf,
    /// After probing: `probe` (stop at once, the default), SECONDS more, or `signal` (wait for
    /// SIGUSR1 or Enter while you drive the app). With nothing to probe the default is 10 s.
    #[arg(long, value_name = "probe|SECONDS|signal")]
    pub continue_after: Option<ContinueAfter>,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Keep this file or whole directory tree (repeatable).
    #[arg(long, value_name = "PATH")]
    pub include_path: Vec<String>,
    /// Keep this binary and the libraries it loads (repeatable).
    #[arg(long, value_name = "PATH")]
    pub include_bin: Vec<String>,
    /// Keep a shell and basic tools (ls, cat, ps, ...) for debugging the slim image.
    #[arg(long)]
    pub include_shell: bool,
    /// Drop kept paths matching this glob (repeatable); what the dynamic loader needs stays.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep this path with its original content, whatever the trace says (repeatable).
    #[arg(long, value_name = "PATH")]
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
    /// Write a CycloneDX 1.5 JSON SBOM of the slim image: its OS packages still (partly) there,
    /// with purls and how much of each was kept.
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
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
}

impl BuildArgs {
    /// Checks every flag and turns them into library options; no daemon or kernel access.
    pub fn validate(&self) -> Result<BuildOptions> {
        if self.image.trim().is_empty() {
            return Err(Error::Usage("the image name is empty".into()));
        }
        if let Some(tag) = &self.tag {
            validate_reference(tag)?;
        }
        let probes = self.probe.load()?;
        let mut keep = probes.as_ref().map(|p| p.keep.clone()).unwrap_or_default();
        keep.include_paths.extend(self.include_path.iter().cloned());
        keep.include_bins.extend(self.include_bin.iter().cloned());
        keep.include_shell |= self.include_shell;
        keep.exclude.extend(self.exclude.iter().cloned());
        keep.preserve_paths
            .extend(self.preserve_path.iter().cloned());
        for path in keep
            .include_paths
            .iter()
            .chain(&keep.include_bins)
            .chain(&keep.preserve_paths)
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
        Ok(BuildOptions {
            sensor: self.sensor,
            seccomp_path,
            image: self.image.clone(),
            tag: self
                .tag
                .clone()
                .unwrap_or_else(|| default_slim_tag(&self.image)),
            report_path: self.report.clone(),
            continue_after: self
                .continue_after
                .clone()
                .or_else(|| probes.as_ref().and_then(|p| p.continue_after.clone())),
            ready_timeout: Duration::from_secs(self.probe.ready_timeout),
            stop_timeout_secs: self.probe.stop_timeout as i64,
            crawl: self.probe.crawl_limits(),
            default_probes: !self.probe.no_default_probes,
            probes,
            keep,
            verify: self.verify,
            app_closure: self.app_closure,
            layer_store: !self.no_layer_store,
            sbom_path: self.sbom.clone(),
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
fn split_reference(reference: &str) -> (&str, Option<&str>) {
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
/// `minify gc`: sweeps the containers and cgroups of minify processes that are gone.
pub async fn run_gc() -> Result<i32> {
    let docker = crate::docker::Bollard::connect().await?;
    let containers = crate::run::sweep_orphans(&docker).await?;
    for name in &containers {
        eprintln!("removed container {name}");
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
        "gc: removed {} container(s) and {} cgroup dir(s) of minify runs that are gone",
        containers.len(),
        cgroups.len()
    );
    Ok(exit::OK)
}

pub async fn run_verify(args: &VerifyArgs) -> Result<i32> {
    let file = args.probe.load()?;
    let docker = crate::docker::Bollard::connect().await?;
    if let Ok(removed) = crate::run::sweep_orphans(&docker).await {
        for name in removed {
            eprintln!("minify: removed container {name} left by a minify run that is gone");
        }
    }
    let (original, verification) = crate::verify::verify_images(
        &docker,
        &args.original,
        &args.slim,
        |ports| args.probe.plan(file.as_ref(), ports),
        args.probe.stop_timeout as i64,
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
