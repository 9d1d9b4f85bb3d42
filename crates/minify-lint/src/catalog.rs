//! The rule catalog: every rule's id, name, default severity, why it matters, the general fix,
//! and which hadolint rules it corresponds to. The checks live in [`super::rules`]; this table
//! is the single source for the docs (docs/lint-rules.md), SARIF rule metadata and `--explain`.

use std::fmt;
use std::str::FromStr;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "note" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!(
                "unknown severity {other:?} (expected error, warning or info)"
            )),
        }
    }
}

/// What a rule is about (used for grouping in docs and SARIF tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Size,
    Cache,
    Security,
    Correctness,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Size => "size",
            Category::Cache => "cache",
            Category::Security => "security",
            Category::Correctness => "correctness",
        })
    }
}

#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub category: Category,
    pub summary: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
    /// `--fix` can rewrite it (only in the safe cases the check describes).
    pub autofix: bool,
    /// hadolint rules covering the same ground (empty: hadolint has none).
    pub hadolint: &'static [&'static str],
}

macro_rules! rule {
    ($id:literal, $name:literal, $sev:ident, $cat:ident, $auto:literal, [$($h:literal),*],
     $summary:literal, $why:literal, $fix:literal) => {
        Rule {
            id: $id,
            name: $name,
            severity: Severity::$sev,
            category: Category::$cat,
            summary: $summary,
            why: $why,
            fix: $fix,
            autofix: $auto,
            hadolint: &[$($h),*],
        }
    };
}

pub static RULES: &[Rule] = &[
    rule!("ML000", "parse-error", Error, Correctness, false, ["DL3061"],
        "The Dockerfile cannot be parsed as the builder would",
        "The builder rejects or misreads it (unknown instruction, unclosed heredoc, instruction before FROM).",
        "Correct the line the finding points at."),
    rule!("ML001", "base-image-unpinned", Warning, Correctness, false, ["DL3006", "DL3007"],
        "Base image without a tag, or tagged `latest`",
        "The build silently changes when the tag moves: a rebuild can pick up a different OS, runtime or size.",
        "Pin a version tag (`node:20.11-slim`), or a digest (`@sha256:…`) for reproducible builds."),
    rule!("ML002", "base-image-full-size", Info, Size, false, [],
        "Full-size base image where a slim, alpine or distroless variant fits",
        "Full-size Debian-based language images carry compilers, headers and docs: often 3-10x the size of the slim variant.",
        "Use the named smaller variant (`python:3.12-slim`, `node:20-slim`, `nginx:1.25-alpine`); check native dependencies still install."),
    rule!("ML003", "build-tools-in-final-stage", Warning, Size, false, [],
        "The image that ships contains compilers or build tools",
        "Compilers, SDKs and dev headers are hundreds of MB and give an attacker a toolchain; the running service needs only the build output.",
        "Build in a first stage (`FROM golang:1.22 AS build`) and `COPY --from=build` only the artifacts into a runtime base (distroless, `-slim`, `scratch`)."),
    rule!("ML004", "copy-all-before-install", Warning, Cache, false, [],
        "`COPY . .` (or ADD) before the dependency install",
        "Any change to any source file invalidates the cache of every later layer, so dependencies are downloaded and installed again on every build.",
        "Copy only the dependency manifests, run the install, then `COPY . .`."),
    rule!("ML005", "manifests-not-copied-first", Info, Cache, false, [],
        "The dependency install does not have its manifests copied on their own first",
        "Without a layer holding only the manifests, the install layer cannot be cached independently of the source code.",
        "Add `COPY package.json package-lock.json ./` (or requirements.txt, go.mod/go.sum, Gemfile…) right before the install."),
    rule!("ML006", "cleanup-in-separate-layer", Warning, Size, true, [],
        "Package cleanup in a different RUN than the install",
        "Layers are additive: deleting files in a later layer hides them but the earlier layer still ships them, so the image does not shrink.",
        "Do install and cleanup in one RUN (`apt-get install … && rm -rf /var/lib/apt/lists/*`). `--fix` merges a cleanup-only RUN into the install RUN right above it."),
    rule!("ML007", "apt-install-recommends", Warning, Size, true, ["DL3015"],
        "`apt-get install` without `--no-install-recommends`",
        "Recommended packages are not needed to run the requested ones and often double the download (docs, X11 libraries, extra tools).",
        "Add `--no-install-recommends` (`--fix` does) and list what is really needed."),
    rule!("ML008", "apt-lists-not-removed", Warning, Size, true, ["DL3009"],
        "`apt-get install` without removing /var/lib/apt/lists in the same RUN",
        "The package lists (tens of MB) stay in the layer, and stale lists make later installs from the image fail.",
        "End the RUN with `&& rm -rf /var/lib/apt/lists/*` (`--fix` appends it)."),
    rule!("ML009", "apt-upgrade", Warning, Correctness, false, [],
        "`apt-get upgrade` / `dist-upgrade` in the build",
        "Upgrading everything makes the image depend on the day it was built and adds layers of changed files; the base image's maintainers ship the fixes.",
        "Use a newer base image tag instead; install specific updated packages if needed."),
    rule!("ML010", "pip-cache", Warning, Size, true, ["DL3042"],
        "`pip install` without `--no-cache-dir`",
        "pip keeps downloaded wheels in ~/.cache/pip inside the layer: often as large as the packages themselves.",
        "Add `--no-cache-dir` (`--fix` does), set `ENV PIP_NO_CACHE_DIR=1`, or use a cache mount."),
    rule!("ML011", "npm-install-not-ci", Warning, Cache, false, [],
        "`npm install` where `npm ci` fits",
        "`npm install` may rewrite the lockfile and resolve different versions than the ones tested; `npm ci` installs exactly the lockfile, faster.",
        "Copy package-lock.json and use `npm ci` (with `--omit=dev` in the final stage)."),
    rule!("ML012", "dev-dependencies-shipped", Warning, Size, false, [],
        "Node dev dependencies installed in the image that ships",
        "Test frameworks, bundlers and type checkers usually outweigh the runtime dependencies and add attack surface.",
        "Use `npm ci --omit=dev` (or `ENV NODE_ENV=production`) in the final stage, or build in an earlier stage."),
    rule!("ML013", "add-local-files", Warning, Correctness, false, ["DL3020"],
        "ADD for local files that are not archives",
        "ADD also extracts archives and fetches URLs; COPY does only what it says, so the reader and the builder agree.",
        "Use COPY. (Not rewritten automatically: ADD decides extraction by content, not by name.)"),
    rule!("ML014", "add-url", Warning, Security, false, ["DL3020"],
        "ADD of a remote URL",
        "The download is not verified and the file stays in its own layer even if a later step deletes it.",
        "Download in a RUN with `curl -fsSLO … && echo '<sha256>  file' | sha256sum -c - && … && rm file`, or use `ADD --checksum=sha256:…`."),
    rule!("ML015", "runs-as-root", Warning, Security, false, ["DL3002"],
        "The image runs as root (no USER, or USER root last)",
        "A process escaping the application runs as root in the container, which with any container breakout or mounted volume is root on the host's files.",
        "Create an unprivileged user and switch to it at the end: `RUN useradd -r -u 10001 app` then `USER 10001`."),
    rule!("ML016", "no-healthcheck", Info, Correctness, false, ["DL3057"],
        "A service image (it EXPOSEs a port) without HEALTHCHECK",
        "Docker and Compose cannot tell a hung service from a healthy one, so restarts and rollouts act on dead containers.",
        "Add `HEALTHCHECK CMD [\"/app/healthcheck\"]` (an exec-form probe that exists in the image), or `HEALTHCHECK NONE` to say it is deliberate."),
    rule!("ML017", "secret-file-copied", Error, Security, false, [],
        "Secrets (.env, private keys, credentials) copied into the image",
        "Anyone who can pull the image can read every layer, even if a later step deletes the file.",
        "Exclude them in .dockerignore and pass them at build time with `RUN --mount=type=secret,id=…` or at run time."),
    rule!("ML018", "secret-in-arg-env", Error, Security, false, ["DL3064"],
        "A secret passed as ARG or ENV",
        "ENV values are stored in the image config and ARG values in its history (`docker history`); both ship with the image.",
        "Use `RUN --mount=type=secret,id=token` for build secrets and inject runtime secrets at run time (env file, orchestrator secrets)."),
    rule!("ML019", "shell-form-command", Warning, Correctness, true, ["DL3025"],
        "Shell-form CMD or ENTRYPOINT",
        "The command runs under `/bin/sh -c`, which is PID 1 and does not forward SIGTERM: `docker stop` waits for the timeout and then kills the app.",
        "Use the exec form `CMD [\"node\", \"server.js\"]` (`--fix` rewrites CMD when it has no shell syntax and the stage has no ENTRYPOINT), or prefix with `exec`."),
    rule!("ML020", "multiple-cmd-entrypoint", Warning, Correctness, false, ["DL4003", "DL4004"],
        "More than one CMD or ENTRYPOINT in a stage",
        "Only the last one takes effect; the earlier ones mislead the reader.",
        "Keep only the last one."),
    rule!("ML021", "relative-workdir", Warning, Correctness, false, ["DL3000"],
        "Relative WORKDIR",
        "It is resolved against the previous WORKDIR, which may change with the base image.",
        "Use an absolute path (`WORKDIR /app`)."),
    rule!("ML022", "no-dockerignore", Warning, Size, false, [],
        "No .dockerignore next to a Dockerfile that copies from the build context",
        "The whole directory (.git, node_modules, build output, local secrets) is sent to the builder on every build and `COPY . .` puts it in the image.",
        "Add a .dockerignore with at least `.git`, `node_modules`, `.env*` and build output directories."),
    rule!("ML023", "dockerignore-incomplete", Warning, Size, false, [],
        "The .dockerignore does not exclude .git, node_modules or .env*",
        "Those are the largest and most sensitive things in a typical build context.",
        "Add the missing patterns the finding names."),
    rule!("ML024", "sudo", Warning, Security, false, ["DL3004"],
        "`sudo` in RUN",
        "Build steps already run as the current USER; sudo in an image means it is installed and configured, and behaves unpredictably without a TTY.",
        "Drop sudo; switch with `USER root` / `USER app` around the steps that need it."),
    rule!("ML025", "cd-in-run", Info, Correctness, false, ["DL3003"],
        "`cd` in RUN instead of WORKDIR",
        "The directory change is lost at the end of the RUN, which makes the next instructions easy to misread.",
        "Use `WORKDIR /path` before the RUN."),
    rule!("ML026", "apk-cache", Warning, Size, true, ["DL3019"],
        "`apk add` without `--no-cache`",
        "The package index stays in /var/cache/apk in the layer.",
        "Use `apk add --no-cache` (`--fix` adds it)."),
    rule!("ML027", "yum-cache", Warning, Size, false, ["DL3032", "DL3040"],
        "yum/dnf/microdnf install without `clean all` in the same RUN",
        "The package metadata cache (often 100+ MB) stays in the layer.",
        "End the RUN with `&& yum clean all && rm -rf /var/cache/yum` (or dnf)."),
    rule!("ML028", "maintainer-deprecated", Info, Correctness, false, ["DL4000"],
        "MAINTAINER is deprecated",
        "It is ignored by most tooling; labels are the supported metadata.",
        "Use `LABEL org.opencontainers.image.authors=\"…\"`."),
    rule!("ML029", "duplicate-stage-name", Error, Correctness, false, ["DL3024"],
        "Two stages with the same name",
        "`--from=` and `FROM name` refer to only one of them, silently.",
        "Give every stage a unique name."),
    rule!("ML030", "invalid-port", Error, Correctness, false, ["DL3011"],
        "EXPOSE of a port outside 0-65535",
        "The builder rejects it or the port can never be published.",
        "Use a valid port number."),
    rule!("ML031", "apt-not-apt-get", Info, Correctness, false, ["DL3027"],
        "`apt` in a RUN",
        "apt's command-line interface is not stable for scripts and prints warnings; apt-get is.",
        "Use `apt-get`."),
    rule!("ML032", "apt-update-alone", Warning, Cache, false, ["DL3009"],
        "`apt-get update` in a RUN without an install",
        "The update layer is cached and never re-run, so a later `RUN apt-get install` uses stale lists and fails or installs old versions.",
        "Run update and install in the same RUN: `apt-get update && apt-get install -y --no-install-recommends … && rm -rf /var/lib/apt/lists/*`."),
    rule!("ML033", "copy-multiple-sources-to-file", Error, Correctness, false, ["DL3021"],
        "COPY/ADD of several sources to a destination without a trailing `/`",
        "The builder requires a directory destination for several sources and fails.",
        "End the destination with `/`."),
    rule!("ML034", "apt-install-no-yes", Warning, Correctness, false, ["DL3014"],
        "`apt-get install` without `-y`",
        "Without a terminal the install waits for a confirmation that never comes and the build fails.",
        "Add `-y`."),
];

/// The rule with this id or name (case-insensitive).
pub fn find(key: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(key) || r.name.eq_ignore_ascii_case(key))
}

/// A rule of [`RULES`], by its position (`ML007` is `RULES[7]`: the ids are sequential, which a
/// test checks). The checks name rules only through [`ids`], so an unknown id does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(usize);

/// Every rule id, as the checks name them.
pub mod ids {
    use super::RuleId;
    pub const ML000: RuleId = RuleId(0);
    pub const ML001: RuleId = RuleId(1);
    pub const ML002: RuleId = RuleId(2);
    pub const ML003: RuleId = RuleId(3);
    pub const ML004: RuleId = RuleId(4);
    pub const ML005: RuleId = RuleId(5);
    pub const ML006: RuleId = RuleId(6);
    pub const ML007: RuleId = RuleId(7);
    pub const ML008: RuleId = RuleId(8);
    pub const ML009: RuleId = RuleId(9);
    pub const ML010: RuleId = RuleId(10);
    pub const ML011: RuleId = RuleId(11);
    pub const ML012: RuleId = RuleId(12);
    pub const ML013: RuleId = RuleId(13);
    pub const ML014: RuleId = RuleId(14);
    pub const ML015: RuleId = RuleId(15);
    pub const ML016: RuleId = RuleId(16);
    pub const ML017: RuleId = RuleId(17);
    pub const ML018: RuleId = RuleId(18);
    pub const ML019: RuleId = RuleId(19);
    pub const ML020: RuleId = RuleId(20);
    pub const ML021: RuleId = RuleId(21);
    pub const ML022: RuleId = RuleId(22);
    pub const ML023: RuleId = RuleId(23);
    pub const ML024: RuleId = RuleId(24);
    pub const ML025: RuleId = RuleId(25);
    pub const ML026: RuleId = RuleId(26);
    pub const ML027: RuleId = RuleId(27);
    pub const ML028: RuleId = RuleId(28);
    pub const ML029: RuleId = RuleId(29);
    pub const ML030: RuleId = RuleId(30);
    pub const ML031: RuleId = RuleId(31);
    pub const ML032: RuleId = RuleId(32);
    pub const ML033: RuleId = RuleId(33);
    pub const ML034: RuleId = RuleId(34);
}

/// The rule `id` names.
pub(crate) fn get(id: RuleId) -> &'static Rule {
    &RULES[id.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_id_names_its_rule() {
        assert_eq!(get(ids::ML000).id, "ML000");
        assert_eq!(get(ids::ML034).id, "ML034");
        assert_eq!(get(ids::ML034).name, "apt-install-no-yes");
    }

    #[test]
    fn ids_and_names_are_unique_and_ordered() {
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(rule.id, format!("ML{i:03}"), "ids are sequential");
            assert!(
                RULES.iter().filter(|r| r.name == rule.name).count() == 1,
                "{} duplicated",
                rule.name
            );
            assert!(!rule.why.is_empty() && !rule.fix.is_empty());
        }
        assert_eq!(find("pip-cache").map(|r| r.id), Some("ML010"));
        let docs = include_str!("../../../docs/lint-rules.md");
        for rule in RULES {
            let row = format!("| {} | `{}` |", rule.id, rule.name);
            assert!(
                docs.contains(&row),
                "docs/lint-rules.md lacks the row of {}",
                rule.id
            );
        }
        assert_eq!("warn".parse::<Severity>(), Ok(Severity::Warning));
        assert!("fatal".parse::<Severity>().is_err());
        assert!(Severity::Info < Severity::Error);
    }
}
