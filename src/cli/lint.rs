//! `minify lint [PATH...]`: flags, config-file defaults, and the run that finds Dockerfiles,
//! lints them, optionally fixes them, asks the daemon about `--image`, prints, and turns
//! findings into the exit code (`GATE_FAILED` when a finding reaches `--fail-on`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::exit;
use crate::lint::config::Config;
use crate::lint::{self, output, FileReport, ImageInfo, Options, Severity};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    /// Never fail because of findings.
    Never,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Dockerfiles, or directories searched for Dockerfile, Dockerfile.*, *.Dockerfile and
    /// Containerfile [default: .].
    pub paths: Vec<PathBuf>,
    /// Output format [default: text, or `format` in the config file].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Exit with code 6 when a finding has at least this severity [default: error].
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Rewrite what can be fixed safely and mechanically, and print the diff.
    #[arg(long)]
    pub fix: bool,
    /// With --fix: print the diff but do not write the files.
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// A local image built from the Dockerfile: NAME (one Dockerfile) or DOCKERFILE=NAME.
    /// Adds its size to the report. Repeatable.
    #[arg(long, value_name = "[DOCKERFILE=]NAME")]
    pub image: Vec<String>,
    /// Rule id or name to skip (repeatable; adds to the config file's `ignore`).
    #[arg(long, value_name = "RULE")]
    pub ignore: Vec<String>,
    /// Lint config file [default: nearest .minify-lint.toml from the current directory up].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the rule catalog (id, severity, summary) and exit.
    #[arg(long)]
    pub list_rules: bool,
}

/// Everything settled from flags and config before any file is read.
#[derive(Debug)]
pub struct Plan {
    pub paths: Vec<PathBuf>,
    pub format: Format,
    pub fail_on: FailOn,
    pub options: Options,
}

impl LintArgs {
    /// Merges flags over the config file and checks them; no Dockerfile is read yet.
    pub fn plan(&self) -> Result<Plan> {
        let cwd = std::env::current_dir().map_err(Error::io("reading the current directory"))?;
        let (config, _) = Config::load(self.config.as_deref(), &cwd).map_err(|e| match e {
            lint::Error::Io { context, source } if self.config.is_some() => {
                Error::Usage(format!("{context}: {source}"))
            }
            other => other.into(),
        })?;
        for rule in &self.ignore {
            if lint::catalog::find(rule).is_none() {
                return Err(Error::Usage(format!(
                    "--ignore {rule}: unknown rule (see `minify lint --list-rules`)"
                )));
            }
        }
        let format = match (self.format, config.format.as_deref()) {
            (Some(f), _) => f,
            (None, Some(name)) => Format::from_str(name, true).map_err(|_| {
                Error::Usage(format!(
                    "config format {name:?}: expected text, json or sarif"
                ))
            })?,
            (None, None) => Format::Text,
        };
        let fail_on = match (self.fail_on, config.fail_on.as_deref()) {
            (Some(f), _) => f,
            (None, Some(name)) => FailOn::from_str(name, true).map_err(|_| {
                Error::Usage(format!(
                    "config fail_on {name:?}: expected error, warning, info or never"
                ))
            })?,
            (None, None) => FailOn::Error,
        };
        let paths = if self.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            self.paths.clone()
        };
        let mut ignore = config.ignore.clone();
        ignore.extend(self.ignore.iter().cloned());
        Ok(Plan {
            paths,
            format,
            fail_on,
            options: Options {
                ignore,
                severity: config.severities(),
            },
        })
    }
}

/// Which image goes with which Dockerfile (`--image NAME` needs exactly one Dockerfile).
fn image_for(specs: &[String], files: &[PathBuf], file: &Path) -> Result<Option<String>> {
    for spec in specs {
        match spec.split_once('=') {
            Some((df, name)) => {
                let same_file = match (std::fs::canonicalize(df), std::fs::canonicalize(file)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                };
                if Path::new(df) == file || same_file {
                    return Ok(Some(name.to_string()));
                }
            }
            None if files.len() == 1 => return Ok(Some(spec.clone())),
            None => {
                return Err(Error::Usage(format!(
                    "--image {spec}: {} Dockerfiles were found; write --image DOCKERFILE={spec}",
                    files.len()
                )))
            }
        }
    }
    Ok(None)
}

/// Asks the daemon for the image's size and runs `minify xray`'s layer analysis for its wasted
/// bytes (files duplicated or deleted across layers, as dive counts them). A missing daemon or
/// image, or a failed analysis, is a note, not an error: the lint findings stand on their own.
fn inspect(name: &str) -> ImageInfo {
    use crate::docker::DockerApi;
    let info = |size, note: Option<String>| ImageInfo {
        name: name.to_string(),
        size,
        wasted: None,
        note,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return info(None, Some(format!("no async runtime: {e}"))),
    };
    runtime.block_on(async {
        let docker = match crate::docker::Bollard::connect().await {
            Ok(d) => d,
            Err(e) => return info(None, Some(e.to_string())),
        };
        let summary = match docker.inspect_image(name).await {
            Ok(summary) => summary,
            Err(e) => return info(None, Some(e.to_string())),
        };
        let started = std::time::Instant::now();
        match crate::xray::read_from_daemon(&docker, name, true).await {
            Ok(raw) => {
                let xray = crate::xray::analyze(name, raw, started);
                ImageInfo {
                    wasted: Some(xray.efficiency.wasted_bytes),
                    ..info(Some(summary.size), None)
                }
            }
            Err(e) => info(
                Some(summary.size),
                Some(format!("xray analysis failed: {e}")),
            ),
        }
    })
}

/// Runs `minify lint`; returns the exit code.
pub fn run(args: LintArgs) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    let write_err = |e| Error::io("writing to stdout")(e);
    if args.list_rules {
        for r in lint::catalog::RULES {
            let fix = if r.autofix { " [--fix]" } else { "" };
            writeln!(
                stdout,
                "{} {:<7} {:<30} {}{fix}",
                r.id, r.severity, r.name, r.summary
            )
            .map_err(write_err)?;
        }
        return Ok(exit::OK);
    }
    let plan = args.plan()?;
    let files = lint::discover(&plan.paths).map_err(|e| match e {
        lint::Error::Io { context, source } => Error::Usage(format!("{context}: {source}")),
        other => Error::from(other),
    })?;
    if files.is_empty() {
        eprintln!(
            "minify lint: no Dockerfile found under {}",
            plan.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut reports: Vec<FileReport> = Vec::new();
    for file in &files {
        let mut report = if args.fix {
            fix_file(file, &plan.options, args.dry_run)?
        } else {
            lint::lint_file(file, &plan.options)?
        };
        if let Some(name) = image_for(&args.image, &files, file)? {
            report.image = Some(inspect(&name));
        }
        reports.push(report);
    }
    let rendered = match plan.format {
        Format::Text => output::text(&reports),
        Format::Json => format!("{:#}\n", output::json(&reports)),
        Format::Sarif => format!("{:#}\n", output::sarif(&reports)),
    };
    stdout.write_all(rendered.as_bytes()).map_err(write_err)?;
    let failed = plan
        .fail_on
        .threshold()
        .zip(lint::worst(&reports))
        .is_some_and(|(threshold, worst)| worst >= threshold);
    Ok(if failed { exit::GATE_FAILED } else { exit::OK })
}

/// Fixes one file (writing it unless `dry_run`) and reports the findings left in the fixed
/// text, with the diff and a note per applied fix.
fn fix_file(file: &Path, options: &Options, dry_run: bool) -> Result<FileReport> {
    let before =
        std::fs::read_to_string(file).map_err(Error::io(format!("reading {}", file.display())))?;
    let ctx = lint::context_for(file);
    let fixed = lint::fix::fix(&before, &ctx, options);
    let changed = fixed.text != before;
    if changed && !dry_run {
        std::fs::write(file, &fixed.text)
            .map_err(Error::io(format!("writing the fixed {}", file.display())))?;
    }
    let (df, findings) = lint::lint_text(&fixed.text, &ctx, options);
    Ok(FileReport {
        path: file.to_path_buf(),
        stages: lint::summarize(&df),
        findings,
        image: None,
        diff: changed.then(|| lint::fix::diff(&output::display_path(file), &before, &fixed.text)),
        fixes: fixed.applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: LintArgs,
    }

    #[test]
    fn flags_parse_and_bad_values_are_usage_errors() {
        let w = Wrap::try_parse_from(["lint", "--format", "sarif", "--fail-on", "warning", "a"])
            .unwrap();
        let plan = w.args.plan().unwrap();
        assert_eq!(
            (plan.format, plan.fail_on),
            (Format::Sarif, FailOn::Warning)
        );
        assert!(Wrap::try_parse_from(["lint", "--format", "xml"]).is_err());
        assert!(
            Wrap::try_parse_from(["lint", "--dry-run"]).is_err(),
            "--dry-run needs --fix"
        );
        let w = Wrap::try_parse_from(["lint", "--ignore", "ML999"]).unwrap();
        assert!(matches!(w.args.plan(), Err(Error::Usage(_))));
    }

    #[test]
    fn images_pair_with_dockerfiles() {
        let files = vec![PathBuf::from("a/Dockerfile"), PathBuf::from("b/Dockerfile")];
        assert!(image_for(&["app:1".into()], &files, &files[0]).is_err());
        let spec = vec!["b/Dockerfile=app:2".to_string()];
        assert_eq!(
            image_for(&spec, &files, &files[1]).unwrap().as_deref(),
            Some("app:2")
        );
        assert_eq!(image_for(&spec, &files, &files[0]).unwrap(), None);
        assert_eq!(
            image_for(&["app:1".into()], &files[..1], &files[0])
                .unwrap()
                .as_deref(),
            Some("app:1")
        );
    }
}
