//! The build report: what went in, what came out, what was kept and why, how the probes went and
//! how long each phase took. Written as JSON (`--report`), summarised for humans on stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::closure::Reason;
use crate::probe::session::Step;
use crate::probe::ProbeResult;
use crate::{Error, Result};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageRef {
    pub name: String,
    pub id: String,
    /// Size as the daemon reports it (uncompressed bytes of all layers).
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptPath {
    pub path: String,
    /// `file`, `dir`, `symlink`, `hardlink`, `device`, `fifo`.
    pub kind: &'static str,
    pub size: u64,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SensorSummary {
    pub name: String,
    pub accesses: usize,
    pub distinct_paths: usize,
    pub lost_events: u64,
    pub unresolved_paths: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FileCounts {
    pub source_entries: usize,
    pub source_bytes: u64,
    pub kept_entries: usize,
    pub kept_bytes: u64,
}

/// Wall-clock time per phase, in milliseconds, in the order the phases ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub phases: Vec<(String, u64)>,
    pub total_ms: u64,
}

impl Timings {
    pub fn record(&mut self, phase: &str, since: Instant) {
        self.phases
            .push((phase.to_string(), since.elapsed().as_millis() as u64));
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub minify_version: String,
    pub source: ImageRef,
    pub result: ImageRef,
    pub sensor: SensorSummary,
    pub files: FileCounts,
    pub probes: Vec<ProbeResult>,
    pub kept: Vec<KeptPath>,
    /// ELF needs that no library in the image satisfied: `(object, soname)`.
    pub unresolved_needs: Vec<(String, String)>,
    /// What `--exclude` removed, and what it matched but had to keep.
    pub excluded: crate::closure::rules::ExcludeOutcome,
    /// The source image's OS packages and what became of each (kept whole, partly, gone); the
    /// slim image's package database lists the ones not gone.
    pub packages: crate::packages::PackageSummary,
    /// Shells, package managers, interpreters, network tools, SSH, setuid/setgid, capabilities
    /// and world-writable dirs of the source image and of the slim one.
    pub attack_surface: crate::surface::SurfaceChange,
    /// The slim image's answers to the same probes (`--verify`).
    pub verification: Option<crate::verify::Verification>,
    pub warnings: Vec<String>,
    pub timings: Timings,
    /// Extra facts from later phases, keyed by topic.
    pub notes: BTreeMap<String, String>,
    /// `--app-closure`: how far the closure went beyond the trace.
    pub app_closure: crate::closure::lang::AppClosure,
    /// Paths and bytes each kind of reason added (see [`kept_by_reason`]).
    pub kept_by_reason: BTreeMap<String, ReasonCount>,
    /// Loads in kept code no scanner could resolve (file:line): what the slim image may lack.
    pub dynamic_loads: Vec<crate::closure::DynamicLoad>,
    /// Lazy loads in the functions of libraries the app ran that the closure did not follow
    /// (they bring code nothing else needs): what the slim image lacks if a route reaches them.
    pub lazy_loads_not_followed: Vec<crate::closure::DynamicLoad>,
    /// Every API spec operation probed, with what the original (and the slim image) answered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_operations: Vec<ApiOperationResult>,
}

/// One API spec operation's request and answers (`--http-probe-apispec`, `api_specs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiOperationResult {
    /// The spec's file, or `GET PATH on PORT/tcp` for one the app served.
    pub spec: String,
    pub method: String,
    /// The path template as the spec writes it (`/items/{itemId}`).
    pub path: String,
    /// Container port.
    pub port: u16,
    /// What was sent: base path, filled template, query.
    pub url: String,
    pub content_type: Option<String>,
    pub body: Option<String>,
    /// The original's answer.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The slim image's answer to the same request (`--verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slim_status: Option<u16>,
}

/// The API spec operations among the steps that ran (`steps[i]` answered `results[i]`, and
/// `slim[i]` on the slim image).
pub fn api_operations(
    steps: &[Step],
    results: &[ProbeResult],
    slim: Option<&[ProbeResult]>,
) -> Vec<ApiOperationResult> {
    let mut out = Vec::new();
    for (i, (step, result)) in steps.iter().zip(results).enumerate() {
        let Step::Http {
            port,
            path,
            headers,
            body,
            operation: Some(operation),
            ..
        } = step
        else {
            continue;
        };
        out.push(ApiOperationResult {
            spec: operation.spec.clone(),
            method: operation.method.clone(),
            path: operation.path.clone(),
            port: *port,
            url: path.clone(),
            content_type: headers.get("Content-Type").cloned(),
            body: body.clone(),
            status: result.status,
            error: result.error.clone(),
            slim_status: slim.and_then(|s| s.get(i)).and_then(|r| r.status),
        });
    }
    out
}

/// One line per spec: how many operations and which statuses they got, e.g.
/// `API spec GET /openapi.json on 8000/tcp: 6 operations: 200 ×4, 201 ×1, 404 ×1`.
pub fn api_summary(operations: &[ApiOperationResult]) -> Vec<String> {
    let mut by_spec: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for operation in operations {
        let answer = match (operation.status, &operation.error) {
            (Some(status), _) => status.to_string(),
            (None, _) => "no answer".to_string(),
        };
        *by_spec
            .entry(&operation.spec)
            .or_default()
            .entry(answer)
            .or_default() += 1;
    }
    by_spec
        .into_iter()
        .map(|(spec, answers)| {
            let total: usize = answers.values().sum();
            let answers: Vec<String> = answers
                .iter()
                .map(|(answer, count)| format!("{answer} ×{count}"))
                .collect();
            format!(
                "API spec {spec}: {total} operation{}: {}",
                if total == 1 { "" } else { "s" },
                answers.join(", ")
            )
        })
        .collect()
}

/// How many kept paths (and content bytes) one kind of reason accounts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub paths: usize,
    pub bytes: u64,
}

/// The order in which reasons are credited: a path the trace alone would keep counts as
/// traced (or as what the trace implies), whatever else kept it too; `app_file`, `import` and
/// `package` count only what they added beyond that.
const REASON_PRIORITY: &[&str] = &[
    "traced",
    "runtime",
    "rule",
    "elf",
    "shebang",
    "hardlink_target",
    "symlink_hop",
    "parent_dir",
    "app_file",
    "import",
    "package",
];

/// Per reason kind, the paths and bytes it accounts for; each path counted once, under its
/// first reason in [`REASON_PRIORITY`].
pub fn kept_by_reason(kept: &[KeptPath]) -> BTreeMap<String, ReasonCount> {
    let mut counts: BTreeMap<String, ReasonCount> = BTreeMap::new();
    for path in kept {
        let category = REASON_PRIORITY
            .iter()
            .find(|c| path.reasons.iter().any(|r| r.category() == **c))
            .copied()
            .or_else(|| path.reasons.first().map(|r| r.category()))
            .unwrap_or("unknown");
        let count = counts.entry(category.to_string()).or_default();
        count.paths += 1;
        count.bytes += path.size;
    }
    counts
}

impl Report {
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(Error::json(format!(
            "serialising report {}",
            path.display()
        )))?;
        std::fs::write(path, json).map_err(Error::io(format!("writing report {}", path.display())))
    }

    /// A few lines for a human: sizes, counts, probes, sensor health, timings.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let ratio = if self.source.size > 0 {
            self.result.size as f64 / self.source.size as f64 * 100.0
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "minified {} ({}) -> {} ({}), {:.1}% of the original",
            self.source.name,
            human_bytes(self.source.size),
            self.result.name,
            human_bytes(self.result.size),
            ratio
        );
        let _ = writeln!(
            out,
            "kept {} of {} paths ({} of {} file bytes)",
            self.files.kept_entries,
            self.files.source_entries,
            human_bytes(self.files.kept_bytes),
            human_bytes(self.files.source_bytes)
        );
        let added: Vec<String> = ["app_file", "import", "package"]
            .iter()
            .filter_map(|c| {
                let count = self.kept_by_reason.get(*c)?;
                Some(format!(
                    "{c} +{} paths / {}",
                    count.paths,
                    human_bytes(count.bytes)
                ))
            })
            .collect();
        if !added.is_empty() {
            let _ = writeln!(
                out,
                "beyond the trace ({}): {}; {} unresolved loads, {} lazy library loads not followed",
                serde_json::to_value(self.app_closure)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                added.join(", "),
                self.dynamic_loads.len(),
                self.lazy_loads_not_followed.len()
            );
        }
        let failed = self.probes.iter().filter(|p| !p.ok()).count();
        let _ = writeln!(out, "probes: {} run, {} failed", self.probes.len(), failed);
        let _ = writeln!(
            out,
            "sensor {}: {} events on {} paths, {} lost, {} unresolved",
            self.sensor.name,
            self.sensor.accesses,
            self.sensor.distinct_paths,
            self.sensor.lost_events,
            self.sensor.unresolved_paths
        );
        let phases: Vec<String> = self
            .timings
            .phases
            .iter()
            .map(|(name, ms)| format!("{name} {:.2}s", *ms as f64 / 1000.0))
            .collect();
        let _ = writeln!(
            out,
            "time: {:.2}s ({})",
            self.timings.total_ms as f64 / 1000.0,
            phases.join(", ")
        );
        if let Some(verification) = &self.verification {
            if verification.passed() {
                let _ = writeln!(
                    out,
                    "verify: the slim image answered all {} probes like the original",
                    verification.probes.len()
                );
            } else {
                let _ = writeln!(
                    out,
                    "verify: FAILED, {} answers differ:\n{}",
                    verification.differences.len(),
                    verification.describe()
                );
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        out
    }
}

/// `1.5 MB`-style sizes (decimal units, as docker prints them).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_decimal_units_like_docker() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(133_700_000), "133.7 MB");
    }

    #[test]
    fn summary_states_sizes_ratio_and_lost_events() {
        let report = Report {
            source: ImageRef {
                name: "app:1".into(),
                id: "sha256:a".into(),
                size: 100_000_000,
            },
            result: ImageRef {
                name: "app.slim:1".into(),
                id: "sha256:b".into(),
                size: 5_000_000,
            },
            sensor: SensorSummary {
                name: "ebpf".into(),
                lost_events: 3,
                ..Default::default()
            },
            ..Default::default()
        };
        let summary = report.summary();
        assert!(
            summary.contains("app:1 (100.0 MB) -> app.slim:1 (5.0 MB), 5.0% of the original"),
            "{summary}"
        );
        assert!(summary.contains("3 lost"), "{summary}");
    }

    #[test]
    fn each_kept_path_is_credited_once_to_its_strongest_reason() {
        let kept = vec![
            KeptPath {
                path: "/app/app.py".into(),
                kind: "file",
                size: 100,
                reasons: vec![
                    Reason::AppFile {
                        layer: 1,
                        instruction: "COPY . /app".into(),
                    },
                    Reason::Traced { kinds: vec![] },
                ],
            },
            KeptPath {
                path: "/app/templates/x.html".into(),
                kind: "file",
                size: 7,
                reasons: vec![Reason::AppFile {
                    layer: 1,
                    instruction: "COPY . /app".into(),
                }],
            },
            KeptPath {
                path: "/usr/lib/python3.11/csv.py".into(),
                kind: "file",
                size: 30,
                reasons: vec![Reason::Import {
                    of: "/app/app.py".into(),
                    load: "import csv".into(),
                }],
            },
        ];
        let counts = kept_by_reason(&kept);
        assert_eq!(
            counts["traced"],
            ReasonCount {
                paths: 1,
                bytes: 100
            }
        );
        assert_eq!(counts["app_file"], ReasonCount { paths: 1, bytes: 7 });
        assert_eq!(
            counts["import"],
            ReasonCount {
                paths: 1,
                bytes: 30
            }
        );
        assert!(!counts.contains_key("package"));
    }
}
