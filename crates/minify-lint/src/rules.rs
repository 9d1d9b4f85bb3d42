//! The checks behind the catalog ([`super::catalog`]): each reads the parsed Dockerfile (and the
//! build context when known) and reports findings with a source range, a concrete message, and
//! for the mechanical cases an [`Edit`] that `--fix` may apply.
//!
//! Size rules (cleanup, caches, recommends, dev dependencies) only look at the stages whose
//! layers ship — the final stage and the stages it is built `FROM` — because an earlier builder
//! stage's layers never reach the image.

use std::collections::BTreeSet;

use super::catalog::{self, ids, Rule, RuleId, Severity};
use super::ignore::DockerIgnore;
use super::parser::{split_words, Dockerfile, Form, Instruction, Mapped, Pos};
use super::shell::{self, Command, Script};

/// A text replacement in the source: bytes `start..end` become `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static Rule,
    pub severity: Severity,
    pub start: Pos,
    pub end: Pos,
    pub message: String,
    /// The concrete fix for this occurrence.
    pub fix: String,
    /// The mechanical rewrite `--fix` applies, when it is safe.
    pub edit: Option<Edit>,
    /// Rule ids/names ignored on the instruction the finding is on.
    pub(crate) ignored_here: Vec<String>,
}

/// What is known about the build context (the Dockerfile's directory).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// False when linting text alone: the context rules are skipped.
    pub known: bool,
    /// The .dockerignore that applies, if any.
    pub dockerignore: Option<DockerIgnore>,
    /// Relative paths of files and directories in the context (a shallow listing).
    pub entries: Vec<String>,
}

/// A RUN's shell text: a script and where its bytes come from.
struct Shell<'a> {
    script: Script,
    map: Option<&'a Mapped>,
    ins: usize,
}

struct Linter<'a> {
    df: &'a Dockerfile,
    ctx: &'a Context,
    findings: Vec<Finding>,
    /// Stage indexes whose layers end up in the final image.
    shipped: BTreeSet<usize>,
}

/// Runs every check. Findings come sorted by position.
pub fn check(df: &Dockerfile, ctx: &Context) -> Vec<Finding> {
    let shipped = df
        .final_stage()
        .map(|s| df.lineage(s.index).iter().map(|s| s.index).collect())
        .unwrap_or_default();
    let mut l = Linter {
        df,
        ctx,
        findings: Vec::new(),
        shipped,
    };
    l.parse_issues();
    l.base_images();
    l.stage_names();
    l.build_tools();
    l.dependency_order();
    l.run_commands();
    l.copies();
    l.args_and_env();
    l.commands();
    l.user_and_health();
    l.misc();
    l.dockerignore();
    l.findings
        .sort_by(|a, b| (a.start, a.rule.id).cmp(&(b.start, b.rule.id)));
    l.findings
}

/// Image reference parts: `registry/ns/name:tag@digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository without `docker.io/library/` (`node`, `gcr.io/distroless/static`).
    pub repo: String,
    /// Last path segment (`static`).
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

pub fn image_ref(reference: &str) -> ImageRef {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (reference, None),
    };
    let (repo, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
        _ => (rest, None),
    };
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo).to_string();
    let name = repo.rsplit('/').next().unwrap_or(&repo).to_string();
    ImageRef {
        repo,
        name,
        tag,
        digest,
    }
}

/// The smaller official variant of a full-size base, if one fits.
pub fn slim_variant(image: &ImageRef) -> Option<String> {
    let tag = image.tag.as_deref().unwrap_or("latest");
    let small = ["slim", "alpine", "distroless", "minimal", "busybox"];
    if small.iter().any(|s| tag.contains(s)) || image.repo.contains("distroless") {
        return None;
    }
    let official = !image.repo.contains('/');
    if !official {
        return None;
    }
    let release = ["bookworm", "bullseye", "buster", "trixie"]
        .into_iter()
        .find(|r| tag.ends_with(&format!("-{r}")));
    let plain = if tag == "latest" { None } else { Some(tag) };
    let name = image.name.as_str();
    let slim = match (name, plain, release) {
        ("node", None, _) => "node:lts-slim".to_string(),
        ("node", Some(t), _) => format!("node:{t}-slim"),
        ("python" | "ruby" | "perl", None, _) => format!("{name}:slim"),
        // python:3.12-bookworm → python:3.12-slim-bookworm
        ("python" | "ruby" | "perl", Some(t), Some(r)) => {
            format!("{name}:{}-slim-{r}", t.trim_end_matches(&format!("-{r}")))
        }
        ("python" | "ruby" | "perl", Some(t), None) => format!("{name}:{t}-slim"),
        ("debian", None, _) => "debian:bookworm-slim".to_string(),
        ("debian", Some(t), _) => format!("debian:{t}-slim"),
        ("nginx" | "httpd" | "redis" | "postgres" | "php", None, _) => format!("{name}:alpine"),
        ("nginx" | "httpd" | "redis" | "postgres" | "php", Some(t), _) => {
            format!("{name}:{t}-alpine")
        }
        ("openjdk", t, _) => format!(
            "eclipse-temurin:{}-jre",
            t.map(|t| t.split(['-', '.']).next().unwrap_or(t))
                .unwrap_or("21")
        ),
        _ => return None,
    };
    Some(slim)
}

/// Toolchain images: shipping one ships a compiler.
fn toolchain_base(image: &ImageRef) -> Option<&'static str> {
    let tag = image.tag.as_deref().unwrap_or("");
    match image.name.as_str() {
        "golang" => Some("the Go toolchain (golang base)"),
        "rust" => Some("the Rust toolchain (rust base)"),
        "gcc" => Some("GCC (gcc base)"),
        "maven" => Some("Maven and a JDK (maven base)"),
        "gradle" => Some("Gradle and a JDK (gradle base)"),
        "buildpack-deps" => Some("compilers and headers (buildpack-deps base)"),
        "openjdk" if !tag.contains("jre") => Some("a full JDK (openjdk base)"),
        "eclipse-temurin" if tag.contains("jdk") => Some("a full JDK (eclipse-temurin jdk)"),
        "sdk" if image.repo.contains("dotnet") => Some("the .NET SDK"),
        _ => None,
    }
}

const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "build-base",
    "alpine-sdk",
    "gcc",
    "g++",
    "gcc-c++",
    "clang",
    "make",
    "cmake",
    "autoconf",
    "automake",
    "libtool",
    "gfortran",
    "golang",
    "golang-go",
    "go",
    "rustc",
    "cargo",
    "maven",
    "gradle",
    "typescript",
];

/// Commands whose presence means the stage compiles.
fn compile_command(cmd: &Command) -> Option<String> {
    let argv = cmd.argv();
    let program = cmd.program()?;
    let sub = argv.get(1).map(|w| w.text.as_str()).unwrap_or("");
    let found = match (program, sub) {
        ("go", "build" | "install") => "go build",
        ("cargo", "build" | "install") => "cargo build",
        ("mvn" | "mvnw", _) => "mvn",
        ("gradle" | "gradlew", _) => "gradle",
        ("tsc", _) => "tsc",
        ("gcc" | "g++" | "cc" | "c++" | "clang", _) => "a C compiler",
        ("make", _) => "make",
        ("npm" | "yarn" | "pnpm", "run")
            if argv.get(2).is_some_and(|w| w.text.starts_with("build")) =>
        {
            "an npm build script"
        }
        _ => return None,
    };
    Some(found.to_string())
}

/// What a dependency-install command installs from, and its manifests.
fn dependency_install(cmd: &Command) -> Option<(&'static str, &'static [&'static str])> {
    let program = cmd.program()?;
    let sub = cmd.subcommand(&[]).map(|w| w.text.as_str());
    let bare = |cmd: &Command| {
        cmd.subcommand(&[])
            .is_some_and(|s| cmd.operands(s).next().is_none())
    };
    match program {
        "npm"
            if matches!(sub, Some("ci")) || (matches!(sub, Some("install" | "i")) && bare(cmd)) =>
        {
            Some(("npm", &["package.json", "package-lock.json"]))
        }
        "yarn" if sub.is_none() || sub == Some("install") => {
            Some(("yarn", &["package.json", "yarn.lock"]))
        }
        "pnpm" if sub == Some("install") || sub == Some("i") => {
            Some(("pnpm", &["package.json", "pnpm-lock.yaml"]))
        }
        "poetry" if sub == Some("install") => Some(("poetry", &["pyproject.toml", "poetry.lock"])),
        "pipenv" if sub == Some("install") || sub == Some("sync") => {
            Some(("pipenv", &["Pipfile", "Pipfile.lock"]))
        }
        "bundle" if sub.is_none() || sub == Some("install") => {
            Some(("bundler", &["Gemfile", "Gemfile.lock"]))
        }
        "go" if sub == Some("mod") => Some(("go", &["go.mod", "go.sum"])),
        "composer" if sub == Some("install") => {
            Some(("composer", &["composer.json", "composer.lock"]))
        }
        _ if cmd.pip_subcommand().is_some_and(|s| s.text == "install") => {
            if cmd.has_flag(&["-r", "--requirement"]) {
                Some(("pip", &["requirements.txt"]))
            } else if cmd.words.iter().any(|w| w.text == "." || w.text == "-e") {
                Some(("pip", &["pyproject.toml", "setup.py"]))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn is_cleanup(cmd: &Command) -> bool {
    let Some(program) = cmd.program() else {
        return false;
    };
    let sub = cmd.subcommand(&["-o"]).map(|w| w.text.as_str());
    match program {
        "rm" => cmd.argv().iter().skip(1).any(|w| {
            [
                "/var/lib/apt/lists",
                "/var/cache/apt",
                "/var/cache/apk",
                "/var/cache/yum",
                "/var/cache/dnf",
                "/root/.cache",
                ".cache/pip",
                "/root/.npm",
                "/tmp/",
                "/var/tmp/",
            ]
            .iter()
            .any(|p| w.text.contains(p))
        }),
        "apt-get" | "apt" => matches!(sub, Some("clean" | "autoclean" | "autoremove" | "purge")),
        "yum" | "dnf" | "microdnf" => sub == Some("clean"),
        "apk" => matches!(sub, Some("del" | "cache")),
        "npm" | "yarn" => sub == Some("cache"),
        _ => cmd.pip_subcommand().is_some_and(|s| s.text == "cache"),
    }
}

fn is_package_install(cmd: &Command) -> bool {
    let sub = cmd.subcommand(&["-o"]).map(|w| w.text.as_str());
    match cmd.program() {
        Some("apt-get" | "apt" | "yum" | "dnf" | "microdnf") => sub == Some("install"),
        Some("apk") => sub == Some("add"),
        _ => cmd.pip_subcommand().is_some_and(|s| s.text == "install"),
    }
}

fn removes_apt_lists(cmd: &Command) -> bool {
    cmd.program() == Some("rm")
        && cmd
            .argv()
            .iter()
            .any(|w| w.text.contains("/var/lib/apt/lists"))
}

/// Whether a `--mount=type=cache` covers a path starting with one of `paths`.
fn cache_mounted(ins: &Instruction, paths: &[&str]) -> bool {
    ins.flags.iter().any(|f| {
        f.name == "mount"
            && f.value.as_deref().is_some_and(|v| {
                v.contains("type=cache")
                    && v.split(',').any(|kv| {
                        kv.split_once('=').is_some_and(|(k, p)| {
                            matches!(k, "target" | "dst" | "destination")
                                && paths.iter().any(|want| p.starts_with(want))
                        })
                    })
            })
    })
}

/// Parts of a variable name that suggest a secret (shared with xray's env masking).
pub const SECRET_NAMES: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH_KEY",
];

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let harmless = ["_FILE", "_PATH", "_DIR", "_NAME", "_URL", "_LENGTH", "_TTL"];
    SECRET_NAMES.iter().any(|s| upper.contains(s)) && !harmless.iter().any(|h| upper.ends_with(h))
}

/// Whether a file name looks like a secret; example/template files are not.
pub fn is_secret_file(path: &str) -> bool {
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    if ["example", "sample", "template", "dist", ".pub"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return false;
    }
    lower == ".env"
        || lower.starts_with(".env.")
        || lower.ends_with(".pem")
        || lower.ends_with(".key")
        || lower.ends_with(".p12")
        || lower.ends_with(".pfx")
        || lower.starts_with("id_rsa")
        || lower.starts_with("id_ed25519")
        || lower.starts_with("id_ecdsa")
        || matches!(
            lower.as_str(),
            ".npmrc"
                | ".pypirc"
                | ".netrc"
                | ".git-credentials"
                | "credentials.json"
                | ".aws"
                | ".ssh"
        )
}

fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst",
    ]
    .iter()
    .any(|e| lower.ends_with(e))
}

fn is_url(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@")
}

/// Sources and destination of a COPY/ADD (heredoc sources excluded).
pub fn copy_operands(ins: &Instruction) -> (Vec<String>, Option<String>) {
    let mut words = match &ins.form {
        Form::Exec(items) => items.clone(),
        Form::Shell => split_words(&ins.expanded),
    };
    let dest = words.pop();
    words.retain(|w| !w.starts_with("<<"));
    (words, dest)
}

fn is_wide_source(src: &str) -> bool {
    matches!(src, "." | "./" | "*" | "./*" | "./.")
}

impl<'a> Linter<'a> {
    /// Records a finding on source bytes `span`, attributed to instruction `ins` (whose ignore
    /// comments then apply).
    fn push(
        &mut self,
        id: RuleId,
        (start, end): (usize, usize),
        message: String,
        fix: String,
        edit: Option<Edit>,
        ins: Option<usize>,
    ) {
        let rule = catalog::get(id);
        let ignored_here = ins
            .and_then(|i| self.df.instructions.get(i))
            .map(|i| i.ignore.clone())
            .unwrap_or_default();
        self.findings.push(Finding {
            rule,
            severity: rule.severity,
            start: self.df.pos(start),
            end: self.df.pos(end.max(start)),
            message,
            fix,
            edit,
            ignored_here,
        });
    }

    /// A finding on a whole instruction (its first line).
    fn on(&mut self, id: RuleId, idx: usize, message: String, fix: String) {
        let ins = &self.df.instructions[idx];
        let line_end = self.df.source[ins.start..ins.end]
            .find('\n')
            .map_or(ins.end, |n| ins.start + n);
        self.push(id, (ins.start, line_end), message, fix, None, Some(idx));
    }

    /// A finding on a word of a RUN script.
    fn on_word(
        &mut self,
        id: RuleId,
        sh: &Shell,
        word: &shell::Word,
        message: String,
        fix: String,
        edit: Option<Edit>,
    ) {
        let (start, end) = match sh.map {
            Some(map) => (map.source_offset(word.start), map.source_end(word.end)),
            None => {
                let ins = &self.df.instructions[sh.ins];
                (ins.start, ins.start + ins.keyword.len())
            }
        };
        self.push(id, (start, end), message, fix, edit, Some(sh.ins));
    }

    fn line(&self, idx: usize) -> usize {
        self.df.pos(self.df.instructions[idx].start).line
    }

    fn ships(&self, idx: usize) -> bool {
        self.df.instructions[idx]
            .stage
            .is_some_and(|s| self.shipped.contains(&s))
    }

    /// The shell scripts of a RUN: its shell-form text, and heredoc bodies run as scripts.
    fn shells(&self, idx: usize) -> Vec<Shell<'a>> {
        let ins: &'a Instruction = &self.df.instructions[idx];
        let mut out = Vec::new();
        match &ins.form {
            Form::Exec(argv) => {
                let joined = argv.join(" ");
                out.push(Shell {
                    script: shell::parse(&joined),
                    map: None,
                    ins: idx,
                });
            }
            Form::Shell => {
                out.push(Shell {
                    script: shell::parse(&ins.rest.text),
                    map: Some(&ins.rest),
                    ins: idx,
                });
                // `RUN <<EOF` and `RUN bash <<EOF` run the body; `RUN python3 <<EOF` does not.
                let head: Vec<String> = split_words(&ins.rest.text)
                    .into_iter()
                    .filter(|w| !w.starts_with("<<"))
                    .collect();
                let runs_body = head.is_empty()
                    || matches!(
                        head.first().map(|w| shell::base(w)),
                        Some("sh" | "bash" | "ash" | "dash")
                    ) && head.len() == 1;
                if runs_body {
                    for doc in &ins.heredocs {
                        let first = doc.body.text.lines().next().unwrap_or("");
                        if first.starts_with("#!") && !first.contains("sh") {
                            continue;
                        }
                        out.push(Shell {
                            script: shell::parse(&doc.body.text),
                            map: Some(&doc.body),
                            ins: idx,
                        });
                    }
                }
            }
        }
        out
    }

    fn runs(&self) -> Vec<usize> {
        (0..self.df.instructions.len())
            .filter(|&i| self.df.instructions[i].keyword == "RUN")
            .collect()
    }

    /// Where text can be appended to a RUN as `… && more`, if that is safe.
    fn append_point(&self, idx: usize) -> Option<usize> {
        let ins = &self.df.instructions[idx];
        if ins.form != Form::Shell || !ins.heredocs.is_empty() || !ins.flags.is_empty() {
            return None;
        }
        let script = shell::parse(&ins.rest.text);
        let text = ins.rest.text.trim_end();
        if script.has_comment || text.is_empty() || text.ends_with([';', '&', '|', '\\']) {
            return None;
        }
        Some(ins.rest.source_end(text.len()))
    }

    fn continuation(&self, command: &str) -> String {
        format!(" {}\n    && {command}", self.df.escape)
    }

    fn parse_issues(&mut self) {
        for issue in self.df.issues.clone() {
            let idx = self
                .df
                .instructions
                .iter()
                .position(|i| i.start == issue.offset);
            self.push(
                ids::ML000,
                (issue.offset, issue.offset),
                issue.message.clone(),
                "Correct the instruction as the message says.".into(),
                None,
                idx,
            );
        }
        if self.df.stages.is_empty() && !self.df.instructions.is_empty() {
            self.push(
                ids::ML000,
                (0, 0),
                "no FROM instruction: there is nothing to build on".into(),
                "Start the build with `FROM <image>`.".into(),
                None,
                None,
            );
        }
    }

    fn base_images(&mut self) {
        let final_index = self.df.stages.len().saturating_sub(1);
        for stage in self.df.stages.clone() {
            if stage.parent.is_some() || !stage.base_resolved {
                continue;
            }
            let ins = &self.df.instructions[stage.from];
            let (start, end) = (
                ins.rest.source_offset(0),
                ins.rest.source_end(stage.base_raw.len()),
            );
            let image = image_ref(&stage.base);
            if stage.base.eq_ignore_ascii_case("scratch") {
                continue;
            }
            if image.digest.is_none() && image.tag.as_deref().is_none_or(|t| t == "latest") {
                let what = if image.tag.is_some() {
                    "`latest`"
                } else {
                    "no tag"
                };
                self.push(
                    ids::ML001,
                    (start, end),
                    format!(
                        "base image {} has {what}: the build changes when the tag moves",
                        stage.base
                    ),
                    format!("Pin a version: `FROM {}:<version>`.", image.repo),
                    None,
                    Some(stage.from),
                );
            }
            if stage.index == final_index {
                if let Some(slim) = slim_variant(&image) {
                    self.push(
                        ids::ML002,
                        (start, end),
                        format!("final base {} is the full-size variant; {slim} is much smaller", stage.base),
                        format!("Use `FROM {slim}` (or an -alpine/distroless variant) if the app's native dependencies allow it."),
                        None,
                        Some(stage.from),
                    );
                }
            }
        }
    }

    fn stage_names(&mut self) {
        let stages = self.df.stages.clone();
        for (i, stage) in stages.iter().enumerate() {
            let Some(name) = &stage.name else { continue };
            if let Some(first) = stages[..i].iter().find(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            }) {
                let line = self.line(first.from);
                self.on(
                    ids::ML029,
                    stage.from,
                    format!("stage name {name:?} is already used by the stage on line {line}"),
                    "Rename one of the stages.".into(),
                );
            }
        }
    }

    fn build_tools(&mut self) {
        let Some(final_stage) = self.df.final_stage() else {
            return;
        };
        let mut evidence: Vec<String> = Vec::new();
        let mut at: Option<usize> = None;
        for stage in self.df.lineage(final_stage.index) {
            if stage.parent.is_none() && stage.base_resolved {
                if let Some(tool) = toolchain_base(&image_ref(&stage.base)) {
                    evidence.push(tool.to_string());
                    at.get_or_insert(stage.from);
                }
            }
            for idx in stage.instructions.clone() {
                if self.df.instructions[idx].keyword != "RUN" {
                    continue;
                }
                for sh in self.shells(idx) {
                    for cmd in &sh.script.commands {
                        if let Some(c) = compile_command(cmd) {
                            evidence.push(format!("runs {c}"));
                            at.get_or_insert(idx);
                        }
                        if is_package_install(cmd) || cmd.program() == Some("npm") {
                            let sub = cmd.subcommand(&["-o"]);
                            let packages: Vec<String> = sub
                                .map(|s| cmd.operands(s).map(|w| w.text.clone()).collect())
                                .unwrap_or_default();
                            for p in packages {
                                let bare = p.split(['=', '@']).next().unwrap_or(&p).to_string();
                                if BUILD_PACKAGES.contains(&bare.as_str())
                                    || bare.ends_with("-dev")
                                    || bare.ends_with("-devel")
                                {
                                    evidence.push(format!("installs {bare}"));
                                    at.get_or_insert(idx);
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(idx) = at {
            evidence.dedup();
            let single = self.df.stages.len() == 1;
            let shape = if single {
                "single-stage build"
            } else {
                "final stage"
            };
            self.on(
                ids::ML003,
                idx,
                format!("{shape} ships build tools: {}", evidence.join(", ")),
                "Move the build into a `FROM … AS build` stage and `COPY --from=build` only its output into a runtime base.".into(),
            );
        }
    }

    fn dependency_order(&mut self) {
        for stage in self.df.stages.clone() {
            let mut wide_copy: Option<usize> = None;
            let mut copied: Vec<String> = Vec::new();
            for idx in stage.instructions.clone() {
                let ins = &self.df.instructions[idx];
                match ins.keyword.as_str() {
                    "COPY" | "ADD" if ins.flag("from").is_none() => {
                        let (sources, _) = copy_operands(ins);
                        if sources.iter().any(|s| is_wide_source(s)) {
                            wide_copy.get_or_insert(idx);
                        } else {
                            copied.extend(sources);
                        }
                    }
                    "RUN" => {
                        if ins
                            .flags
                            .iter()
                            .any(|f| f.value.as_deref().is_some_and(|v| v.contains("type=bind")))
                        {
                            continue;
                        }
                        let installs: Vec<_> = self
                            .shells(idx)
                            .iter()
                            .flat_map(|sh| {
                                sh.script
                                    .commands
                                    .iter()
                                    .filter_map(dependency_install)
                                    .collect::<Vec<_>>()
                            })
                            .collect();
                        let Some((tool, manifests)) = installs.first().copied() else {
                            continue;
                        };
                        let Some(copy) = wide_copy else { continue };
                        let run_line = self.line(idx);
                        let copy_text = self.df.instructions[copy].rest.text.clone();
                        let wanted = manifests.join(" ");
                        self.on(
                            ids::ML004,
                            copy,
                            format!("`{} {copy_text}` comes before the {tool} install on line {run_line}: every source change re-runs it", self.df.instructions[copy].keyword),
                            format!("Copy the manifests first (`COPY {wanted} ./`), run the install, then `COPY . .`."),
                        );
                        let manifest_copied = manifests.iter().any(|m| {
                            copied.iter().any(|c| {
                                let name = c.rsplit('/').next().unwrap_or(c);
                                name == *m
                                    || glob_match(name, m)
                                    || (tool == "pip" && name.contains("requirements"))
                            })
                        });
                        if !manifest_copied {
                            self.on(
                                ids::ML005,
                                idx,
                                format!("the {tool} install has no layer with only its manifests ({wanted}) before it"),
                                format!("Add `COPY {wanted} ./` right before this RUN."),
                            );
                        }
                        // One report per wide copy is enough.
                        wide_copy = None;
                    }
                    _ => {}
                }
            }
        }
    }

    fn run_commands(&mut self) {
        for idx in self.runs() {
            let ships = self.ships(idx);
            let ins = &self.df.instructions[idx];
            let stage_vars = ins
                .stage
                .and_then(|s| self.df.stages.get(s))
                .map(|s| s.vars.clone())
                .unwrap_or_default();
            let apt_cached = cache_mounted(ins, &["/var/lib/apt", "/var/cache/apt"]);
            let pip_cached = cache_mounted(ins, &["/root/.cache"]);
            let apk_cached = cache_mounted(ins, &["/var/cache/apk", "/etc/apk/cache"]);
            let shells = self.shells(idx);
            let all: Vec<&Command> = shells.iter().flat_map(|s| &s.script.commands).collect();
            let removes_lists = all.iter().any(|c| removes_apt_lists(c));
            let apt_install_anywhere = all.iter().any(|c| {
                matches!(c.program(), Some("apt-get" | "apt"))
                    && c.subcommand(&["-o"]).is_some_and(|s| s.text == "install")
            });
            let yum_clean = all.iter().any(|c| {
                matches!(c.program(), Some("yum" | "dnf" | "microdnf"))
                    && c.subcommand(&[]).is_some_and(|s| s.text == "clean")
            });
            let npm_pruned = self.later_in_stage(idx).iter().any(|&j| {
                self.shells(j).iter().any(|s| {
                    s.script.commands.iter().any(|c| {
                        c.program() == Some("npm")
                            && c.subcommand(&[]).is_some_and(|s| s.text == "prune")
                    })
                })
            });
            let mut lists_reported = false;
            for sh in &shells {
                for cmd in &sh.script.commands {
                    let Some(program) = cmd.program() else {
                        continue;
                    };
                    if cmd
                        .words
                        .first()
                        .is_some_and(|w| shell::base(&w.text) == "sudo")
                    {
                        let w = cmd.words[0].clone();
                        self.on_word(
                            ids::ML024,
                            sh,
                            &w,
                            "`sudo` in a build step".into(),
                            "Drop `sudo`; use `USER root` before this RUN if needed.".into(),
                            None,
                        );
                    }
                    if program == "cd" {
                        let w = cmd.argv()[0].clone();
                        let dir = cmd
                            .argv()
                            .get(1)
                            .map(|w| w.text.clone())
                            .unwrap_or_default();
                        self.on_word(
                            ids::ML025,
                            sh,
                            &w,
                            format!("`cd {dir}` inside RUN"),
                            format!("Use `WORKDIR {dir}` before the RUN."),
                            None,
                        );
                    }
                    match program {
                        "apt-get" | "apt" => {
                            let Some(sub) = cmd.subcommand(&["-o", "-c", "-t"]).cloned() else {
                                continue;
                            };
                            if program == "apt" {
                                let w = cmd.argv()[0].clone();
                                self.on_word(
                                    ids::ML031,
                                    sh,
                                    &w,
                                    "`apt` is meant for people, not scripts".into(),
                                    "Use `apt-get`.".into(),
                                    None,
                                );
                            }
                            match sub.text.as_str() {
                                "upgrade" | "dist-upgrade" | "full-upgrade" => {
                                    self.on_word(
                                        ids::ML009,
                                        sh,
                                        &sub,
                                        format!(
                                            "`{program} {}` upgrades every package at build time",
                                            sub.text
                                        ),
                                        "Remove it and use a newer base image tag.".into(),
                                        None,
                                    );
                                }
                                "update" if !apt_install_anywhere => {
                                    self.on_word(ids::ML032, sh, &sub, "`apt-get update` without an install in the same RUN: its cached lists go stale".into(), "Merge it into the RUN that installs: `apt-get update && apt-get install …`.".into(), None);
                                }
                                "install" => {
                                    if !cmd.has_flag(&[
                                        "-y",
                                        "--yes",
                                        "--assume-yes",
                                        "-qy",
                                        "-yq",
                                        "-qqy",
                                        "-yqq",
                                        "--quiet=2",
                                    ]) && !cmd.words.iter().any(|w| {
                                        w.text.starts_with('-')
                                            && !w.text.starts_with("--")
                                            && w.text.contains('y')
                                    }) && !stage_vars.contains_key("APT_GET_YES")
                                    {
                                        self.on_word(ids::ML034, sh, &sub, "`apt-get install` without `-y` waits for a confirmation".into(), "Add `-y`.".into(), None);
                                    }
                                    if !ships {
                                        continue;
                                    }
                                    if !cmd.has_flag(&["--no-install-recommends"]) && !apt_cached {
                                        let at = sh.map.map(|m| m.source_end(sub.end));
                                        let edit = at.map(|at| Edit {
                                            start: at,
                                            end: at,
                                            text: " --no-install-recommends".into(),
                                        });
                                        self.on_word(
                                            ids::ML007,
                                            sh,
                                            &sub,
                                            "`apt-get install` also installs recommended packages"
                                                .into(),
                                            "Add `--no-install-recommends`.".into(),
                                            edit,
                                        );
                                    }
                                    if !removes_lists && !apt_cached && !lists_reported {
                                        lists_reported = true;
                                        if self.lists_removed_later(idx) {
                                            // ML006 reports the later cleanup.
                                            continue;
                                        }
                                        let edit = self.append_point(idx).map(|at| Edit {
                                            start: at,
                                            end: at,
                                            text: self.continuation("rm -rf /var/lib/apt/lists/*"),
                                        });
                                        self.on_word(
                                            ids::ML008,
                                            sh,
                                            &sub,
                                            "the apt package lists stay in this layer".into(),
                                            "End this RUN with `&& rm -rf /var/lib/apt/lists/*`."
                                                .into(),
                                            edit,
                                        );
                                    }
                                }
                                _ => {}
                            }
                        }
                        "apk" if ships && !apk_cached => {
                            if let Some(sub) = cmd.subcommand(&["-X", "--repository"]).cloned() {
                                if sub.text == "add" && !cmd.has_flag(&["--no-cache"]) {
                                    let edit = sh.map.map(|m| {
                                        let at = m.source_end(sub.end);
                                        Edit {
                                            start: at,
                                            end: at,
                                            text: " --no-cache".into(),
                                        }
                                    });
                                    self.on_word(
                                        ids::ML026,
                                        sh,
                                        &sub,
                                        "`apk add` keeps the package index in /var/cache/apk"
                                            .into(),
                                        "Use `apk add --no-cache`.".into(),
                                        edit,
                                    );
                                }
                            }
                        }
                        "yum" | "dnf" | "microdnf" if ships && !yum_clean => {
                            if let Some(sub) = cmd.subcommand(&[]).cloned() {
                                if sub.text == "install" {
                                    self.on_word(ids::ML027, sh, &sub, format!("`{program} install` without `{program} clean all` in the same RUN"), format!("End the RUN with `&& {program} clean all`."), None);
                                }
                            }
                        }
                        "npm" => {
                            let Some(sub) = cmd.subcommand(&[]).cloned() else {
                                continue;
                            };
                            let bare = cmd.operands(&sub).next().is_none();
                            if matches!(sub.text.as_str(), "install" | "i") && bare {
                                self.on_word(ids::ML011, sh, &sub, "`npm install` resolves versions anew and may rewrite the lockfile".into(), "Use `npm ci` with package-lock.json copied in.".into(), None);
                            }
                            let production = cmd.has_flag(&["--omit", "--production", "--only"])
                                || stage_vars
                                    .get("NODE_ENV")
                                    .is_some_and(|v| v == "production")
                                || npm_pruned;
                            let final_stage =
                                ins.stage.is_some_and(|s| s + 1 == self.df.stages.len());
                            if ships
                                && final_stage
                                && matches!(sub.text.as_str(), "install" | "i" | "ci")
                                && bare
                                && !production
                            {
                                self.on_word(
                                    ids::ML012,
                                    sh,
                                    &sub,
                                    format!(
                                        "`npm {}` in the final stage installs devDependencies too",
                                        sub.text
                                    ),
                                    "Use `npm ci --omit=dev` here, or build in an earlier stage."
                                        .into(),
                                    None,
                                );
                            }
                        }
                        _ => {
                            if ships {
                                if let Some(sub) = cmd.pip_subcommand().cloned() {
                                    let no_cache = cmd.has_flag(&["--no-cache-dir"])
                                        || stage_vars.get("PIP_NO_CACHE_DIR").is_some_and(|v| {
                                            !v.is_empty() && v != "0" && v != "false"
                                        })
                                        || pip_cached;
                                    if sub.text == "install" && !no_cache {
                                        let edit = sh.map.map(|m| {
                                            let at = m.source_end(sub.end);
                                            Edit {
                                                start: at,
                                                end: at,
                                                text: " --no-cache-dir".into(),
                                            }
                                        });
                                        self.on_word(
                                            ids::ML010,
                                            sh,
                                            &sub,
                                            "`pip install` keeps its download cache in the layer"
                                                .into(),
                                            "Add `--no-cache-dir`.".into(),
                                            edit,
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if ships {
                self.separate_cleanup(idx, &all);
            }
        }
    }

    fn later_in_stage(&self, idx: usize) -> Vec<usize> {
        let Some(stage) = self.df.instructions[idx]
            .stage
            .and_then(|s| self.df.stages.get(s))
        else {
            return Vec::new();
        };
        (idx + 1..stage.instructions.end)
            .filter(|&j| self.df.instructions[j].keyword == "RUN")
            .collect()
    }

    /// Whether a later RUN removes the apt lists and this RUN is the install it cleans up
    /// after (no other install in between): ML006 then reports the pair.
    fn lists_removed_later(&self, idx: usize) -> bool {
        for j in self.later_in_stage(idx) {
            let shells = self.shells(j);
            let commands = || shells.iter().flat_map(|s| s.script.commands.iter());
            if commands().any(removes_apt_lists) {
                return true;
            }
            if commands().any(is_package_install) {
                return false;
            }
        }
        false
    }

    /// ML006: a RUN with cleanup commands after an earlier RUN of the stage that installed.
    fn separate_cleanup(&mut self, idx: usize, commands: &[&Command]) {
        if !commands.iter().any(|c| is_cleanup(c)) || commands.iter().any(|c| is_package_install(c))
        {
            return;
        }
        let Some(stage) = self.df.instructions[idx]
            .stage
            .and_then(|s| self.df.stages.get(s))
        else {
            return;
        };
        let installer = (stage.instructions.start..idx).rev().find(|&j| {
            self.df.instructions[j].keyword == "RUN"
                && self
                    .shells(j)
                    .iter()
                    .any(|s| s.script.commands.iter().any(is_package_install))
        });
        let Some(installer) = installer else { return };
        let install_line = self.line(installer);
        let only_cleanup = commands.iter().all(|c| is_cleanup(c));
        let this = &self.df.instructions[idx];
        let adjacent = installer + 1 == idx;
        let mergeable = only_cleanup
            && adjacent
            && this.form == Form::Shell
            && this.heredocs.is_empty()
            && this.flags.is_empty()
            && !shell::parse(&this.rest.text).has_comment;
        let edit = if mergeable {
            self.append_point(installer).map(|at| {
                let cleanup = &self.df.source
                    [this.rest.source_offset(0)..this.rest.source_end(this.rest.text.len())];
                Edit {
                    start: at,
                    end: this.end,
                    text: self.continuation(cleanup),
                }
            })
        } else {
            None
        };
        self.on(
            ids::ML006,
            idx,
            format!("cleanup runs in its own layer; the files it deletes still ship in the layer of line {install_line}"),
            format!("Move this cleanup to the end of the RUN on line {install_line}."),
        );
        if let Some(last) = self.findings.last_mut() {
            last.edit = edit;
        }
    }

    fn copies(&mut self) {
        for idx in 0..self.df.instructions.len() {
            let ins = &self.df.instructions[idx];
            if !matches!(ins.keyword.as_str(), "COPY" | "ADD") {
                continue;
            }
            let keyword = ins.keyword.clone();
            let (sources, dest) = copy_operands(ins);
            let from_context = ins.flag("from").is_none();
            if sources.len() > 1
                && dest
                    .as_deref()
                    .is_some_and(|d| !d.ends_with('/') && !d.starts_with('$'))
            {
                self.on(
                    ids::ML033,
                    idx,
                    format!(
                        "{} sources go to {:?}, which is not a directory path",
                        sources.len(),
                        dest.clone().unwrap_or_default()
                    ),
                    format!(
                        "Write the destination as `{}/`.",
                        dest.clone().unwrap_or_default()
                    ),
                );
            }
            if keyword == "ADD" {
                if let Some(url) = sources.iter().find(|s| is_url(s)) {
                    if ins.flag("checksum").is_none() {
                        self.on(ids::ML014, idx, format!("ADD downloads {url} without verifying it"), "Use `ADD --checksum=sha256:<digest>` or curl + sha256sum in a RUN that also cleans up.".into());
                    }
                } else if !sources.is_empty()
                    && !sources.iter().any(|s| is_archive(s))
                    && ins.heredocs.is_empty()
                {
                    let args = ins.rest.text.clone();
                    self.on(ids::ML013, idx, "ADD of local files: COPY says the same without archive extraction or URL fetching".into(), format!("Use `COPY {args}`."));
                }
            }
            if !from_context {
                continue;
            }
            for src in &sources {
                if is_secret_file(src) {
                    self.on(ids::ML017, idx, format!("{src} looks like a secret and is copied into the image"), format!("Remove it from the COPY, add `{src}` to .dockerignore, and mount it with `RUN --mount=type=secret` where it is needed."));
                }
            }
            let wide = sources.iter().any(|s| is_wide_source(s));
            if wide && self.ctx.known {
                let leaked: Vec<String> = self
                    .ctx
                    .entries
                    .iter()
                    .filter(|e| is_secret_file(e))
                    .filter(|e| {
                        !self
                            .ctx
                            .dockerignore
                            .as_ref()
                            .is_some_and(|d| d.excludes(e))
                    })
                    .cloned()
                    .collect();
                if !leaked.is_empty() {
                    let list = leaked.join(", ");
                    self.on(ids::ML017, idx, format!("`{keyword} {}` copies {list} from the build context (not in .dockerignore)", ins.rest.text), format!("Add {list} to .dockerignore."));
                }
            }
        }
    }

    fn args_and_env(&mut self) {
        for idx in 0..self.df.instructions.len() {
            let ins = &self.df.instructions[idx];
            let names: Vec<(String, bool)> = match ins.keyword.as_str() {
                "ARG" => split_words(&ins.rest.text)
                    .iter()
                    .map(|w| match w.split_once('=') {
                        Some((n, v)) => (n.to_string(), !v.is_empty()),
                        None => (w.clone(), false),
                    })
                    .collect(),
                "ENV" => super::parser::env_pairs(&ins.rest.text)
                    .into_iter()
                    .map(|(n, v)| (n, !v.is_empty()))
                    .collect(),
                _ => continue,
            };
            let keyword = ins.keyword.clone();
            for (name, _has_value) in names {
                if is_secret_name(&name) {
                    let stored = if keyword == "ENV" {
                        "the image config"
                    } else {
                        "the image history"
                    };
                    self.on(ids::ML018, idx, format!("{keyword} {name} looks like a secret; its value ends up in {stored}"), format!("Drop the {keyword} and use `RUN --mount=type=secret,id={}` where it is needed.", name.to_ascii_lowercase()));
                }
            }
        }
    }

    fn commands(&mut self) {
        for stage in self.df.stages.clone() {
            let mut last: [Option<usize>; 2] = [None, None];
            let has_entrypoint = self.df.lineage(stage.index).iter().any(|s| {
                self.df
                    .stage_instructions(s)
                    .iter()
                    .any(|i| i.keyword == "ENTRYPOINT")
            });
            for idx in stage.instructions.clone() {
                let ins = &self.df.instructions[idx];
                let slot = match ins.keyword.as_str() {
                    "CMD" => 0,
                    "ENTRYPOINT" => 1,
                    _ => continue,
                };
                let keyword = ins.keyword.clone();
                if let Some(previous) = last[slot] {
                    let line = self.line(idx);
                    self.on(
                        ids::ML020,
                        previous,
                        format!("this {keyword} is overridden by the one on line {line}"),
                        format!("Remove this {keyword}."),
                    );
                }
                last[slot] = Some(idx);
                let ins = &self.df.instructions[idx];
                let text = ins.rest.text.trim().to_string();
                if ins.form != Form::Shell || text.is_empty() || text.starts_with("exec ") {
                    continue;
                }
                let simple = !text.contains(|c: char| "$;&|<>()`*?~{}[]#\n\\".contains(c));
                let words = split_words(&text);
                let exec = format!(
                    "[{}]",
                    words
                        .iter()
                        .map(|w| serde_json::to_string(w).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let edit = (keyword == "CMD" && simple && !has_entrypoint && !words.is_empty())
                    .then(|| Edit {
                        start: ins.rest.source_offset(0),
                        end: ins.rest.source_end(ins.rest.text.trim_end().len()),
                        text: exec.clone(),
                    });
                let fix = if simple {
                    format!("Write `{keyword} {exec}`.")
                } else {
                    format!("Use the exec form, or `{keyword} exec {text}` so the app replaces the shell.")
                };
                self.on(ids::ML019, idx, format!("shell-form {keyword}: /bin/sh is PID 1 and does not pass SIGTERM to the app"), fix);
                if let Some(last) = self.findings.last_mut() {
                    last.edit = edit;
                }
            }
        }
    }

    fn user_and_health(&mut self) {
        let Some(final_stage) = self.df.final_stage().cloned() else {
            return;
        };
        let lineage: Vec<usize> = self
            .df
            .lineage(final_stage.index)
            .iter()
            .map(|s| s.index)
            .collect();
        let in_lineage = |i: &Instruction| i.stage.is_some_and(|s| lineage.contains(&s));
        let last_user = (0..self.df.instructions.len()).rev().find(|&i| {
            self.df.instructions[i].keyword == "USER" && in_lineage(&self.df.instructions[i])
        });
        let root_base = self.df.lineage(final_stage.index).iter().all(|s| {
            s.parent.is_some() || !(s.base.contains("nonroot") || s.base.contains("chainguard"))
        });
        match last_user {
            None if root_base && final_stage.base_resolved => {
                self.on(ids::ML015, final_stage.from, "the final stage never sets USER: the container runs as root".into(), if final_stage.base == "scratch" || final_stage.base.contains("distroless") {
                        "Add `USER 10001` at the end (a numeric uid needs no user database).".into()
                    } else {
                        "Add `RUN useradd -r -u 10001 app` and `USER 10001` at the end of the final stage.".into()
                    });
            }
            Some(idx) => {
                let user = self.df.instructions[idx].expanded.trim().to_string();
                let name = user.split(':').next().unwrap_or("");
                if name == "root" || name == "0" {
                    self.on(
                        ids::ML015,
                        idx,
                        format!("the last USER is {user}: the container runs as root"),
                        "Switch to an unprivileged user after the steps that need root.".into(),
                    );
                }
            }
            None => {}
        }
        let expose = (0..self.df.instructions.len()).find(|&i| {
            self.df.instructions[i].keyword == "EXPOSE" && in_lineage(&self.df.instructions[i])
        });
        let health = self
            .df
            .instructions
            .iter()
            .any(|i| i.keyword == "HEALTHCHECK" && in_lineage(i));
        if let (Some(idx), false) = (expose, health) {
            let ports = self.df.instructions[idx].expanded.clone();
            self.on(ids::ML016, idx, format!("the image serves {ports} but has no HEALTHCHECK"), "Add `HEALTHCHECK CMD [\"…probe…\"]` or `HEALTHCHECK NONE` if health is checked elsewhere.".into());
        }
    }

    fn misc(&mut self) {
        for idx in 0..self.df.instructions.len() {
            let ins = &self.df.instructions[idx];
            match ins.keyword.as_str() {
                "MAINTAINER" => {
                    let who = ins.rest.text.clone();
                    self.on(
                        ids::ML028,
                        idx,
                        "MAINTAINER is deprecated".into(),
                        format!("Use `LABEL org.opencontainers.image.authors={:?}`.", who),
                    );
                }
                "WORKDIR" => {
                    let dir = ins.expanded.trim().to_string();
                    let windows = dir.get(1..3).is_some_and(|s| s == ":\\" || s == ":/");
                    if !dir.is_empty() && !dir.starts_with('/') && !dir.starts_with('$') && !windows
                    {
                        self.on(
                            ids::ML021,
                            idx,
                            format!("WORKDIR {dir} is relative to the previous WORKDIR"),
                            format!("Use an absolute path such as `WORKDIR /{dir}`."),
                        );
                    }
                }
                "EXPOSE" => {
                    for spec in ins.expanded.split_whitespace() {
                        let port = spec.split('/').next().unwrap_or(spec);
                        let bad =
                            |p: &str| p.parse::<u32>().map_or(!p.starts_with('$'), |n| n > 65535);
                        let invalid = match port.split_once('-') {
                            Some((a, b)) => bad(a) || bad(b),
                            None => bad(port),
                        };
                        if invalid {
                            self.on(
                                ids::ML030,
                                idx,
                                format!("EXPOSE {spec} is not a valid port"),
                                "Use a port number between 0 and 65535.".into(),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn dockerignore(&mut self) {
        if !self.ctx.known {
            return;
        }
        let first_copy = (0..self.df.instructions.len()).find(|&i| {
            let ins = &self.df.instructions[i];
            matches!(ins.keyword.as_str(), "COPY" | "ADD")
                && ins.flag("from").is_none()
                && ins.heredocs.is_empty()
                && !copy_operands(ins).0.iter().all(|s| is_url(s))
        });
        let Some(idx) = first_copy else { return };
        let node = self.df.instructions.iter().any(|i| {
            let t = i.rest.text.to_ascii_lowercase();
            t.contains("npm ")
                || t.contains("yarn")
                || t.contains("package.json")
                || t.contains("node:")
        }) || self
            .df
            .stages
            .iter()
            .any(|s| image_ref(&s.base).name == "node")
            || self.ctx.entries.iter().any(|e| e == "package.json");
        match &self.ctx.dockerignore {
            None => self.on(
                ids::ML022,
                idx,
                "there is no .dockerignore: the whole directory is the build context".into(),
                "Create .dockerignore with `.git`, `node_modules`, `.env*` and your build output."
                    .into(),
            ),
            Some(ignore) => {
                let mut wanted = vec![(".git", ".git"), (".env", ".env*"), (".env.local", ".env*")];
                if node {
                    wanted.push(("node_modules", "node_modules"));
                }
                let mut missing: Vec<&str> = wanted
                    .iter()
                    .filter(|(probe, _)| !ignore.excludes(probe))
                    .map(|(_, pattern)| *pattern)
                    .collect();
                missing.dedup();
                if !missing.is_empty() {
                    let list = missing.join(", ");
                    self.on(
                        ids::ML023,
                        idx,
                        format!("{} does not exclude {list}", ignore.name),
                        format!("Add {list} to {}.", ignore.name),
                    );
                }
            }
        }
    }
}

/// Minimal `*` glob on a file name (for `COPY package*.json ./`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len().min(name.len())
                && name.starts_with(head)
                && glob_match_rest(tail, &name[head.len()..])
        }
    }
}

fn glob_match_rest(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name.ends_with(pattern);
    }
    (0..=name.len())
        .filter(|&i| name.is_char_boundary(i))
        .any(|i| glob_match(pattern, &name[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let r = image_ref("docker.io/library/node:18@sha256:ab");
        assert_eq!(
            (r.repo.as_str(), r.tag.as_deref(), r.digest.as_deref()),
            ("node", Some("18"), Some("sha256:ab"))
        );
        let r = image_ref("localhost:5000/team/app");
        assert_eq!(
            (r.repo.as_str(), r.name.as_str(), r.tag),
            ("localhost:5000/team/app", "app", None)
        );
    }

    #[test]
    fn slim_variants_are_named() {
        let v = |s: &str| slim_variant(&image_ref(s));
        assert_eq!(v("node:18").as_deref(), Some("node:18-slim"));
        assert_eq!(
            v("python:3.12-bookworm").as_deref(),
            Some("python:3.12-slim-bookworm")
        );
        assert_eq!(
            v("debian:bookworm").as_deref(),
            Some("debian:bookworm-slim")
        );
        assert_eq!(v("nginx:1.25").as_deref(), Some("nginx:1.25-alpine"));
        assert_eq!(
            v("openjdk:17-jdk").as_deref(),
            Some("eclipse-temurin:17-jre")
        );
        assert_eq!(v("python:3.12-slim"), None);
        assert_eq!(v("gcr.io/distroless/base"), None);
        assert_eq!(v("mycorp/node:18"), None);
    }

    #[test]
    fn secret_names_and_files() {
        assert!(is_secret_name("NPM_TOKEN") && is_secret_name("db_password"));
        assert!(!is_secret_name("PASSWORD_FILE") && !is_secret_name("NODE_ENV"));
        for s in [
            ".env",
            "config/.env.production",
            "id_rsa",
            "tls.key",
            "cert.pem",
            ".npmrc",
        ] {
            assert!(is_secret_file(s), "{s}");
        }
        for s in [".env.example", "id_rsa.pub", "keys.txt", "src", "."] {
            assert!(!is_secret_file(s), "{s}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("package*.json", "package-lock.json"));
        assert!(glob_match("package*.json", "package.json"));
        assert!(!glob_match("package*.json", "package.yaml"));
        assert!(glob_match("*", "x") && glob_match("a*b*c", "aXbYc") && !glob_match("a*b", "ba"));
    }
}
