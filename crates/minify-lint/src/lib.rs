//! `minify lint`: audit Dockerfiles for what makes images big, slow to rebuild or unsafe, and
//! how to fix it — before any image exists.
//!
//! - [`parser`] reads a Dockerfile into positioned instructions and stages (never panics),
//! - [`shell`] splits RUN scripts into commands,
//! - [`catalog`] lists the rules, [`rules`] implements them,
//! - [`ignore`] reads `.dockerignore`, [`config`] the lint config file,
//! - [`fix`] applies the safe mechanical rewrites and renders the diff,
//! - [`output`] prints text, JSON and SARIF 2.1.0.
//!
//! This crate owns the per-file flow: find Dockerfiles under paths, build the context
//! ([`rules::Context`]), lint, and apply `# minify-ignore:` comments, config ignores and
//! severity overrides.

pub mod catalog;
pub mod config;
pub mod error;
pub mod fix;
pub mod ignore;
pub mod output;
pub mod parser;
pub mod rules;
pub mod shell;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use catalog::Severity;
pub use error::{Error, Result};
pub use rules::{Context, Finding};

/// Settings that change which findings are reported and how severe they are.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Rule ids or names never reported.
    pub ignore: Vec<String>,
    /// Per-rule severity overrides (key: id or name).
    pub severity: BTreeMap<String, Severity>,
}

/// A stage as shown in reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageSummary {
    pub name: Option<String>,
    pub base: String,
    pub line: usize,
}

/// What the daemon says about an image built from the Dockerfile (`--image`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageInfo {
    pub name: String,
    pub size: Option<u64>,
    /// Bytes `minify xray` considers wasted, when that analysis is available.
    pub wasted: Option<u64>,
    /// Why size or waste are missing.
    pub note: Option<String>,
}

/// The lint result for one Dockerfile.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// As given or found (relative when the input was relative).
    pub path: PathBuf,
    pub stages: Vec<StageSummary>,
    pub findings: Vec<Finding>,
    pub image: Option<ImageInfo>,
    /// The unified diff `--fix` applied (or would apply with `--dry-run`).
    pub diff: Option<String>,
    /// One line per applied fix.
    pub fixes: Vec<String>,
}

impl FileReport {
    pub fn final_base(&self) -> Option<&str> {
        self.stages.last().map(|s| s.base.as_str())
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Lints Dockerfile text with a known (or unknown: `Context::default()`) build context.
pub fn lint_text(
    text: &str,
    ctx: &Context,
    options: &Options,
) -> (parser::Dockerfile, Vec<Finding>) {
    let df = parser::parse(text);
    let mut findings = rules::check(&df, ctx);
    let listed = |list: &[String], f: &Finding| {
        list.iter().any(|r| {
            r.eq_ignore_ascii_case(f.rule.id) || r.eq_ignore_ascii_case(f.rule.name) || r == "all"
        })
    };
    findings.retain(|f| {
        !listed(&options.ignore, f) && !listed(&df.file_ignore, f) && !listed(&f.ignored_here, f)
    });
    for f in &mut findings {
        let key = options
            .severity
            .keys()
            .find(|k| k.eq_ignore_ascii_case(f.rule.id) || k.eq_ignore_ascii_case(f.rule.name));
        if let Some(severity) = key.and_then(|k| options.severity.get(k)) {
            f.severity = *severity;
        }
    }
    (df, findings)
}

/// The build context of a Dockerfile on disk: its directory, as `docker build -f F DIR` with
/// DIR the Dockerfile's directory (the common layout).
pub fn context_for(dockerfile: &Path) -> Context {
    let dir = match dockerfile.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entries = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Context {
        known: true,
        dockerignore: ignore::DockerIgnore::for_dockerfile(&dir, &name),
        entries,
    }
}

/// Lints one Dockerfile on disk.
pub fn lint_file(path: &Path, options: &Options) -> Result<FileReport> {
    let bytes = std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let ctx = context_for(path);
    let (df, findings) = lint_text(&text, &ctx, options);
    Ok(FileReport {
        path: path.to_path_buf(),
        stages: summarize(&df),
        findings,
        image: None,
        diff: None,
        fixes: Vec::new(),
    })
}

pub fn summarize(df: &parser::Dockerfile) -> Vec<StageSummary> {
    df.stages
        .iter()
        .map(|s| StageSummary {
            name: s.name.clone(),
            base: s.base.clone(),
            line: df.pos(df.instructions[s.from].start).line,
        })
        .collect()
}

/// Whether a file name is a Dockerfile: `Dockerfile`, `Dockerfile.*`, `*.Dockerfile`,
/// `*.dockerfile`, `Containerfile`, `Containerfile.*`.
pub fn is_dockerfile_name(name: &str) -> bool {
    if name.ends_with(".dockerignore") {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    lower == "dockerfile"
        || lower == "containerfile"
        || lower.starts_with("dockerfile.")
        || lower.starts_with("containerfile.")
        || lower.ends_with(".dockerfile")
        || lower.ends_with(".containerfile")
}

/// Directories never searched (dependencies, build output, VCS data).
const SKIP_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    "vendor",
    ".venv",
    "__pycache__",
];

/// Dockerfiles under `paths`, sorted; a path naming a file is taken whatever its name.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(Error::io(format!("reading {}", path.display())))?;
        if meta.is_file() {
            found.push(path.clone());
            continue;
        }
        let mut stack = vec![path.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // Unreadable subdirectories are skipped; the top one is an error above.
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "skipping unreadable directory");
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if !SKIP_DIRS.contains(&name.as_str()) {
                        stack.push(entry.path());
                    }
                } else if kind.is_file() && is_dockerfile_name(&name) {
                    found.push(entry.path());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// The highest severity among findings, if any.
pub fn worst(reports: &[FileReport]) -> Option<Severity> {
    reports
        .iter()
        .flat_map(|r| r.findings.iter().map(|f| f.severity))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str, options: &Options) -> Vec<&'static str> {
        lint_text(text, &Context::default(), options)
            .1
            .iter()
            .map(|f| f.rule.id)
            .collect()
    }

    #[test]
    fn ignore_comments_config_and_overrides() {
        let text = "FROM node:18\n# minify-ignore: ML019\nCMD node server.js\n";
        let all = ids(text, &Options::default());
        assert!(all.contains(&"ML001") || all.contains(&"ML002"));
        assert!(!all.contains(&"ML019"), "{all:?}");
        let options = Options {
            ignore: vec!["base-image-full-size".into()],
            severity: [("ML015".to_string(), Severity::Error)].into(),
        };
        let (_, findings) = lint_text(text, &Context::default(), &options);
        assert!(findings.iter().all(|f| f.rule.id != "ML002"));
        let root = findings.iter().find(|f| f.rule.id == "ML015").unwrap();
        assert_eq!(root.severity, Severity::Error);
        assert!(ids(
            "# minify-ignore-file: all\nFROM node\n",
            &Options::default()
        )
        .is_empty());
    }

    #[test]
    fn dockerfile_names() {
        for yes in [
            "Dockerfile",
            "Dockerfile.dev",
            "api.Dockerfile",
            "Containerfile",
            "x.dockerfile",
        ] {
            assert!(is_dockerfile_name(yes), "{yes}");
        }
        for no in [
            "Dockerfile.dockerignore",
            ".dockerignore",
            "docker-compose.yml",
            "README.md",
        ] {
            assert!(!is_dockerfile_name(no), "{no}");
        }
    }

    #[test]
    fn discovery_walks_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "Dockerfile",
            "svc/api.Dockerfile",
            "node_modules/x/Dockerfile",
            "svc/readme.md",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "FROM scratch\n").unwrap();
        }
        let found = discover(&[root.to_path_buf()]).unwrap();
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(rel, ["Dockerfile", "svc/api.Dockerfile"]);
        assert!(discover(&[root.join("missing")]).is_err());
    }
}
