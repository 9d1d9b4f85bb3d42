//! The linter on its corpus (tests/corpus/): every case directory holds a Dockerfile (or
//! Containerfile), its build context (.dockerignore, files), and `expected` — the findings as
//! `LINE:COLUMN RULE name` lines. Every rule of the catalog must be fired by some case, and a
//! stable-toolchain mutation run stands in for `cargo fuzz`. Runs with `cargo test -p
//! minify-lint` on any machine: no daemon, kernel or BPF toolchain. The `minify lint` command
//! on the same corpus (exit codes, JSON, SARIF, --fix, --image) is tested by the workspace
//! root's tests/lint_corpus.rs.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use minify_lint::{self as lint, Context, Options};
use support::dockerfile_in;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn cases() -> Vec<PathBuf> {
    support::cases_in(&corpus())
}

fn expected(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("expected"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn corpus_findings_match_expected() {
    let cases = cases();
    let names: Vec<_> = cases
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in ["classic-node", "clean-multistage", "parser-edges"] {
        assert!(
            names.iter().any(|n| n == required),
            "missing case {required}"
        );
    }
    let mut failures = Vec::new();
    for dir in &cases {
        let file = dockerfile_in(dir);
        let report = lint::lint_file(&file, &Options::default()).unwrap();
        let got: Vec<String> = report
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{}:{} {} {}",
                    f.start.line, f.start.column, f.rule.id, f.rule.name
                )
            })
            .collect();
        let want = expected(dir);
        if got != want {
            failures.push(format!(
                "{}:\n  expected {want:#?}\n  got      {got:#?}",
                dir.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every rule of the catalog is fired by some corpus case (a rule no case fires could silently
/// stop working), ML000 (parse errors) included.
#[test]
fn every_rule_is_fired_by_some_corpus_case() {
    let fired: std::collections::BTreeSet<String> = cases()
        .iter()
        .flat_map(|dir| expected(dir))
        .filter_map(|line| line.split_whitespace().nth(1).map(String::from))
        .collect();
    let unfired: Vec<&str> = lint::catalog::RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !fired.contains(*id))
        .collect();
    assert!(unfired.is_empty(), "no corpus case fires {unfired:?}");
}

#[test]
fn clean_multistage_has_no_findings_and_classic_node_has_the_classic_ones() {
    let clean = lint::lint_file(
        &corpus().join("clean-multistage/Dockerfile"),
        &Options::default(),
    )
    .unwrap();
    assert!(clean.findings.is_empty(), "{:#?}", clean.findings);
    assert_eq!(clean.stages.len(), 2);
    let classic = lint::lint_file(
        &corpus().join("classic-node/Dockerfile"),
        &Options::default(),
    )
    .unwrap();
    let ids: BTreeSet<&str> = classic.findings.iter().map(|f| f.rule.name).collect();
    for rule in [
        "copy-all-before-install",
        "npm-install-not-ci",
        "dev-dependencies-shipped",
        "runs-as-root",
        "shell-form-command",
    ] {
        assert!(ids.contains(rule), "classic example misses {rule}: {ids:?}");
    }
}

/// A tiny deterministic PRNG: the mutation run must be reproducible from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Stable-toolchain stand-in for `cargo fuzz run parse` (fuzz/): mutates corpus files with the
/// tokens the parser treats specially and checks that parsing, linting and fixing never panic
/// and every finding points inside the file. MINIFY_FUZZ_ITERATIONS raises the count.
#[test]
fn parser_and_rules_survive_mutations() {
    let iterations: usize = std::env::var("MINIFY_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seeds: Vec<String> = cases()
        .iter()
        .map(|d| std::fs::read_to_string(dockerfile_in(d)).unwrap())
        .collect();
    let tokens = [
        "\\",
        "`",
        "\n",
        "\r\n",
        "<<EOF",
        "<<-'X'",
        "EOF\n",
        "$",
        "${",
        "}",
        ":-",
        "\"",
        "'",
        "[",
        "]",
        "#",
        "# minify-ignore: all\n",
        "=",
        "--",
        "--from=",
        "&&",
        "|",
        ";",
        "é",
        "\u{1F600}",
        "\t",
        " ",
        "FROM ",
        "RUN ",
        "COPY . .\n",
        "ARG X=${Y:-",
        "# escape=`\n",
        "\0",
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let ctx = Context {
        known: true,
        dockerignore: None,
        entries: vec![".env".into(), "package.json".into()],
    };
    for _ in 0..iterations {
        let mut text = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(6) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, tokens[rng.below(tokens.len())]),
                1 => {
                    let mut end = (at + rng.below(12)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => text.truncate(at),
            }
        }
        let (df, findings) = lint::lint_text(&text, &ctx, &Options::default());
        let lines = text.lines().count().max(1) + 1;
        for f in &findings {
            assert!(
                (1..=lines).contains(&f.start.line) && f.start.column >= 1 && f.end >= f.start,
                "finding outside the file: {f:?}\n--- input ---\n{text:?}"
            );
        }
        assert!(df
            .stages
            .iter()
            .all(|s| s.instructions.start <= s.instructions.end));
        let fixed = lint::fix::fix(&text, &ctx, &Options::default());
        assert!(fixed.applied.len() <= 64, "fixing converges");
    }
}
