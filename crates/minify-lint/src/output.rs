//! Rendering lint reports: human text (per file, then a summary table), JSON (stable field
//! names, for scripts), and SARIF 2.1.0 as GitHub code scanning reads it (rules with help and
//! default levels, results with relative artifact URIs and 1-based regions).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::catalog::{Severity, RULES};
use super::FileReport;

/// `12.3 MB` style sizes (decimal units, like `docker images`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Paths with `/` separators, as SARIF URIs and JSON want them.
pub fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

pub fn text(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let path = display_path(&r.path);
        let _ = writeln!(out, "{path}");
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|s| match &s.name {
                Some(n) => format!("{n} ({})", s.base),
                None => s.base.clone(),
            })
            .collect();
        let _ = writeln!(
            out,
            "  stages: {} [{}]; final base: {}",
            r.stages.len(),
            stages.join(" -> "),
            r.final_base().unwrap_or("-")
        );
        if let Some(image) = &r.image {
            let size = image.size.map_or("unknown".into(), human_size);
            let wasted = image.wasted.map_or(String::new(), |w| {
                format!(", xray: {} wasted", human_size(w))
            });
            let note = image
                .note
                .as_ref()
                .map_or(String::new(), |n| format!(" ({n})"));
            let _ = writeln!(out, "  image {}: {size}{wasted}{note}", image.name);
        }
        if r.findings.is_empty() {
            let _ = writeln!(out, "  no findings");
        }
        for f in &r.findings {
            let _ = writeln!(
                out,
                "  {:>4}:{:<3} {:<7} {} {}: {}",
                f.start.line, f.start.column, f.severity, f.rule.id, f.rule.name, f.message
            );
            let _ = writeln!(out, "             fix: {}", f.fix);
        }
        for note in &r.fixes {
            let _ = writeln!(out, "  fixed {note}");
        }
        if let Some(diff) = &r.diff {
            out.push_str(diff);
        }
        out.push('\n');
    }
    out.push_str(&summary_table(reports));
    out
}

fn summary_table(reports: &[FileReport]) -> String {
    let with_image = reports.iter().any(|r| r.image.is_some());
    let mut rows: Vec<Vec<String>> = vec![{
        let mut h = vec!["FILE", "STAGES", "FINAL BASE", "ERRORS", "WARNINGS", "INFO"];
        if with_image {
            h.extend(["SIZE", "WASTED"]);
        }
        h.into_iter().map(String::from).collect()
    }];
    let mut totals = [0usize; 3];
    for r in reports {
        let counts = [
            r.count(Severity::Error),
            r.count(Severity::Warning),
            r.count(Severity::Info),
        ];
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        let mut row = vec![
            display_path(&r.path),
            r.stages.len().to_string(),
            r.final_base().unwrap_or("-").to_string(),
        ];
        row.extend(counts.iter().map(|c| c.to_string()));
        if with_image {
            let image = r.image.as_ref();
            row.push(image.and_then(|i| i.size).map_or("-".into(), human_size));
            row.push(image.and_then(|i| i.wasted).map_or("-".into(), human_size));
        }
        rows.push(row);
    }
    let mut total = vec![
        format!("TOTAL ({} files)", reports.len()),
        String::new(),
        String::new(),
    ];
    total.extend(totals.iter().map(|c| c.to_string()));
    rows.push(total);
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from("Summary\n");
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  ").trim_end());
    }
    out
}

pub fn json(reports: &[FileReport]) -> Value {
    let files: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "path": display_path(&r.path),
                "stages": r.stages,
                "final_base": r.final_base(),
                "image": r.image,
                "findings": r.findings.iter().map(|f| json!({
                    "rule": f.rule.id,
                    "name": f.rule.name,
                    "severity": f.severity,
                    "category": f.rule.category,
                    "line": f.start.line,
                    "column": f.start.column,
                    "end_line": f.end.line,
                    "end_column": f.end.column,
                    "message": f.message,
                    "fix": f.fix,
                    "fixable": f.edit.is_some(),
                })).collect::<Vec<_>>(),
                "fixes": r.fixes,
                "diff": r.diff,
            })
        })
        .collect();
    let count = |s: Severity| reports.iter().map(|r| r.count(s)).sum::<usize>();
    json!({
        "tool": "minify lint",
        "version": env!("CARGO_PKG_VERSION"),
        "files": files,
        "summary": {
            "files": reports.len(),
            "errors": count(Severity::Error),
            "warnings": count(Severity::Warning),
            "info": count(Severity::Info),
        }
    })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// A SARIF artifact location: relative to the current directory (the repository root in a
/// code-scanning workflow) when the path is under it, else an absolute `file://` URI.
fn sarif_location(path: &Path) -> Value {
    let relative = if path.is_absolute() {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
    } else {
        Some(path.to_path_buf())
    };
    match relative {
        Some(rel) => json!({ "uri": display_path(&rel), "uriBaseId": "%SRCROOT%" }),
        None => json!({ "uri": format!("file://{}", display_path(path)) }),
    }
}

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn sarif(reports: &[FileReport]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let mut properties = json!({ "tags": [r.category.to_string(), "dockerfile"] });
            if r.category == super::catalog::Category::Security {
                // GitHub ranks security results by this CVSS-like score.
                let score = match r.severity {
                    Severity::Error => "8.0",
                    Severity::Warning => "5.0",
                    Severity::Info => "2.0",
                };
                properties["security-severity"] = json!(score);
            }
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.why },
                "help": {
                    "text": format!("{} Fix: {}", r.why, r.fix),
                    "markdown": format!("**{}**\n\n{}\n\n**Fix:** {}", r.summary, r.why, r.fix),
                },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": properties,
            })
        })
        .collect();
    let results: Vec<Value> = reports
        .iter()
        .flat_map(|r| {
            let uri = display_path(&r.path);
            let location = sarif_location(&r.path);
            r.findings.iter().map(move |f| {
                let rule_index = RULES.iter().position(|x| x.id == f.rule.id).unwrap_or(0);
                json!({
                    "ruleId": f.rule.id,
                    "ruleIndex": rule_index,
                    "level": sarif_level(f.severity),
                    "message": { "text": format!("{} Fix: {}", f.message, f.fix) },
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": location,
                            "region": {
                                "startLine": f.start.line,
                                "startColumn": f.start.column,
                                "endLine": f.end.line.max(f.start.line),
                                "endColumn": if f.end.line > f.start.line { f.end.column } else { f.end.column.max(f.start.column + 1) },
                            }
                        }
                    }],
                    "partialFingerprints": {
                        "minifyLint/v1": format!("{}:{}:{}", uri, f.rule.id, f.message),
                    },
                })
            })
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "minify-lint",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500_000), "1.5 MB");
        assert_eq!(display_path(Path::new("./a/Dockerfile")), "a/Dockerfile");
    }
}
