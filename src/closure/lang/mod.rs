//! Static dependencies of kept source code: the modules and files a script can load, found by
//! reading it, for the code paths no probe exercised (a route's lazy `import`, an `include` on
//! demand). One module per language, each with the same three parts:
//! - `Paths::discover`: the image's search paths for that runtime (Python's `sys.path`, Node's
//!   `node_modules` and `NODE_PATH`, Ruby's `$LOAD_PATH`, PHP's `include_path`, Perl's `@INC`,
//!   the shell's `PATH`), read from the image's own files and Env, once per build;
//! - `dependencies`: a scanner that tokenises one source file (comments and strings never count
//!   as loads) and resolves every literal load against those paths, the way the runtime would;
//!   loads it cannot resolve statically are returned as [`Unresolved`] (file:line), never
//!   silently dropped;
//! - `package_files`: the whole language package a file belongs to (a Python distribution, an
//!   npm package, a gem), for `--app-closure packages`.
//!
//! Everything here is a pure function of an [`ImageView`] and the file's text: the closure
//! ([`crate::closure::compute`]) keeps what they return and scans the kept files in turn.

pub mod node;
pub mod perl;
pub mod php;
pub mod python;
pub mod ruby;
pub mod shell;

use serde::Serialize;

use crate::closure::resolve::{parent_of, resolve};
use crate::closure::ImageView;
use crate::image::EntryKind;

/// How far the closure goes beyond the trace (`--app-closure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppClosure {
    /// Only what the sensor saw (plus ELF and `#!` dependencies).
    Off,
    /// The app's own files, and what kept source code imports, transitively.
    #[default]
    Imports,
    /// As `imports`, and the whole language package (distribution, npm package, gem) of every
    /// kept file that belongs to one.
    Packages,
}

impl std::str::FromStr for AppClosure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "imports" => Ok(Self::Imports),
            "packages" => Ok(Self::Packages),
            other => Err(format!(
                "unknown --app-closure value {other:?}: expected off, imports or packages"
            )),
        }
    }
}

/// A path a source file needs, and the load that needs it (`import flask.json`,
/// `require("express")`, `include __DIR__ . '/lib/db.php'`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    /// Absolute path in the image (it may be a symlink or a directory; the closure resolves it).
    pub path: String,
    pub why: String,
    /// When the load runs (see [`When`]).
    pub when: When,
}

/// When a load runs, relative to the loading of the file that has it. Only the Python and Ruby
/// scanners tell [`When::OnLoad`] and [`When::Later`] apart; the others report
/// [`When::Anytime`], which the closure always follows (see [`crate::closure::ScanDepth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum When {
    /// Decided when the file is loaded: module-level code, class bodies, module-level `if` and
    /// `try`. If the file ran and the load did not, it never will.
    OnLoad,
    /// At load or later: a Ruby block (`do ... end`, `{ }`, which may run now or be stored),
    /// the file's package data and metadata, and every load of a scanner that cannot tell.
    Anytime,
    /// Only when a function runs: an import in a `def` body or an `if __name__ == "__main__":`
    /// block, a Ruby `require` in a method.
    Later,
    /// Ruby's `autoload :Const, 'x'`: on the first use of a constant the file declares, from
    /// anywhere (the library's public API, loaded on demand).
    Autoload,
}

/// A load the scanner saw but could not resolve: its argument is not a literal, or the literal
/// names nothing in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unresolved {
    /// 1-based line in the scanned file.
    pub line: u32,
    pub message: String,
}

/// What scanning one file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub paths: Vec<Dependency>,
    pub unresolved: Vec<Unresolved>,
}

impl Found {
    pub fn keep(&mut self, path: impl Into<String>, why: impl Into<String>) {
        self.keep_as(path, why, When::Anytime);
    }

    /// Keeps `path`, loaded at `when`.
    pub fn keep_as(&mut self, path: impl Into<String>, why: impl Into<String>, when: When) {
        self.paths.push(Dependency {
            path: path.into(),
            why: why.into(),
            when,
        });
    }

    /// Drops repeated (path, when) entries, keeping the first of each. A path may stay more
    /// than once with different `when`s (`import json` at the top and in a function): the
    /// closure follows whichever its scan depth allows.
    pub fn dedup(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.paths.retain(|d| seen.insert((d.path.clone(), d.when)));
    }

    pub fn unresolved(&mut self, line: u32, message: impl Into<String>) {
        self.unresolved.push(Unresolved {
            line,
            message: message.into(),
        });
    }
}

/// A language package: its name (with version when known) and its files (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub files: Vec<String>,
}

/// A language package installed from the app's own source tree rather than from a registry
/// (`pip install .`): the app itself, packaged, so the closure treats its files as the app's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPackage {
    pub package: Package,
    /// Where the package manager recorded it came from (a directory of the build).
    pub source: String,
}

/// The languages scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Python,
    Node,
    Ruby,
    Php,
    Perl,
    Shell,
}

/// Bytes of a file read for scanning; larger files are scanned up to here.
pub const SCAN_READ_LIMIT: usize = 4 * 1024 * 1024;

/// The language of a file from its name, else from its `#!` line; `None` for anything else.
pub fn language_of(path: &str, head: &[u8]) -> Option<Language> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, ext)| ext);
    let by_ext = match ext {
        Some("py") | Some("pyw") => Some(Language::Python),
        Some("js") | Some("mjs") | Some("cjs") => Some(Language::Node),
        Some("rb") | Some("ru") => Some(Language::Ruby),
        Some("php") | Some("phtml") | Some("inc") => Some(Language::Php),
        Some("pl") | Some("pm") | Some("cgi") if head.starts_with(b"#!") => {
            language_of_shebang(head).or(Some(Language::Perl))
        }
        Some("pl") | Some("pm") => Some(Language::Perl),
        Some("sh") | Some("bash") => Some(Language::Shell),
        _ => None,
    };
    by_ext.or_else(|| language_of_shebang(head))
}

/// The language a `#!` line runs (`#!/usr/bin/env python3`, `#!/bin/sh`, `#!/usr/bin/perl -w`).
pub fn language_of_shebang(head: &[u8]) -> Option<Language> {
    let shebang = crate::closure::script::parse_shebang(head)?;
    let mut program = shebang.interpreter.rsplit('/').next()?.to_string();
    if program == "env" {
        program = crate::closure::script::env_program(shebang.argument.as_deref()?)?
            .rsplit('/')
            .next()?
            .to_string();
    }
    let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match base {
        "python" | "pypy" => Some(Language::Python),
        "node" | "nodejs" => Some(Language::Node),
        "ruby" => Some(Language::Ruby),
        "php" | "php-cgi" => Some(Language::Php),
        "perl" => Some(Language::Perl),
        "sh" | "bash" | "dash" | "ash" | "ksh" | "zsh" | "busybox" => Some(Language::Shell),
        _ => None,
    }
}

/// Every runtime's search paths, discovered once per build.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    pub python: python::Paths,
    pub node: node::Paths,
    pub ruby: ruby::Paths,
    pub php: php::Paths,
    pub perl: perl::Paths,
    pub shell: shell::Paths,
}

impl Runtimes {
    /// `env` is the image config's Env (`KEY=VALUE`), `workdir` its WorkingDir (or `/`).
    pub fn discover<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Self {
        Self {
            python: python::Paths::discover(view, env, workdir),
            node: node::Paths::discover(view, env, workdir),
            ruby: ruby::Paths::discover(view, env, workdir),
            php: php::Paths::discover(view, env, workdir),
            perl: perl::Paths::discover(view, env, workdir),
            shell: shell::Paths::discover(view, env, workdir),
        }
    }

    /// Scans `source`, the text of the image file at `file` (its real path), in `language`.
    pub fn dependencies<V: ImageView + ?Sized>(
        &self,
        view: &V,
        language: Language,
        file: &str,
        source: &str,
    ) -> Found {
        match language {
            Language::Python => python::dependencies(view, &self.python, file, source),
            Language::Node => node::dependencies(view, &self.node, file, source),
            Language::Ruby => ruby::dependencies(view, &self.ruby, file, source),
            Language::Php => php::dependencies(view, &self.php, file, source),
            Language::Perl => perl::dependencies(view, &self.perl, file, source),
            Language::Shell => shell::dependencies(view, &self.shell, file, source),
        }
    }

    /// What a native extension module of a language loads from its C code, for the languages
    /// where that is visible in its strings (Ruby's `rb_require`); `None` for anything else.
    pub fn extension_dependencies<V: ImageView + ?Sized>(
        &self,
        view: &V,
        file: &str,
        binary: &[u8],
    ) -> Option<Found> {
        is_scanned_extension(file)
            .then(|| ruby::extension_dependencies(view, &self.ruby, file, binary))
    }

    /// The packages installed from the app's own source ([`LocalPackage`]). Python only: npm
    /// links a local directory (`npm install ./pkg`) into `node_modules` as a symlink, so its
    /// files are the app's tree already, and RubyGems records no source for a local gem.
    pub fn local_packages(&self) -> Vec<LocalPackage> {
        python::local_distributions(&self.python)
    }

    /// The language package `file` belongs to, if any (`--app-closure packages`).
    pub fn package_files<V: ImageView + ?Sized>(
        &self,
        view: &V,
        language: Language,
        file: &str,
    ) -> Option<Package> {
        match language {
            Language::Python => python::package_files(view, &self.python, file),
            Language::Node => node::package_files(view, &self.node, file),
            Language::Ruby => ruby::package_files(view, &self.ruby, file),
            Language::Php | Language::Perl | Language::Shell => None,
        }
    }
}

/// Whether `path` is part of a language runtime's own standard library (CPython's
/// `lib/pythonX.Y` outside site/dist-packages, Ruby's `lib/ruby/X.Y.Z`, Perl's core trees).
/// The closure does not scan such a file when the trace saw it: it ran, so its top-level
/// imports are in the trace, and following the imports inside its functions pulls in half the
/// library for code paths the app does not reach (measured on the CGI fixture: +89 % size).
/// A library file reached only by an import from the app is scanned.
pub fn is_runtime_library(path: &str) -> bool {
    // RubyGems is the runtime's own loader, whatever tree a distribution puts it in (Debian:
    // vendor_ruby): its lazy requires (bundler, net/http, optparse...) were 80 % of what
    // scanning added on the Sinatra fixture.
    if path.contains("/vendor_ruby/rubygems") {
        return true;
    }
    // Packaging tools that sit in site-packages but are the interpreter's installers, not the
    // app's libraries: setuptools' `.pth` hook (`_distutils_hack`) runs at every start, and
    // following its lazy imports pulled all of setuptools into the Flask fixture (+5.4 MB).
    let packaging = [
        "pip",
        "setuptools",
        "_distutils_hack",
        "pkg_resources",
        "wheel",
    ];
    if let Some((_, rest)) = path
        .split_once("/site-packages/")
        .or_else(|| path.split_once("/dist-packages/"))
    {
        let top = rest.split('/').next().unwrap_or_default();
        if packaging.contains(&top) {
            return true;
        }
    }
    let third_party = [
        "/site-packages/",
        "/dist-packages/",
        "/gems/",
        "/vendor_ruby/",
    ];
    if third_party.iter().any(|t| path.contains(t)) {
        return false;
    }
    let python = path.contains("/lib/python")
        && path
            .split("/lib/python")
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    let ruby = ["/usr/lib/ruby/", "/usr/local/lib/ruby/"]
        .iter()
        .any(|p| path.starts_with(p));
    let perl = [
        "/usr/share/perl/",
        "/usr/lib/x86_64-linux-gnu/perl/",
        "/usr/lib/x86_64-linux-gnu/perl-base/",
        "/usr/lib/aarch64-linux-gnu/perl/",
        "/usr/lib/aarch64-linux-gnu/perl-base/",
    ]
    .iter()
    .any(|p| path.starts_with(p));
    python || ruby || perl
}

/// Whether `file` is a native extension whose strings [`Runtimes::extension_dependencies`]
/// reads (a Ruby extension: `.so` under a ruby or gems tree).
pub fn is_scanned_extension(file: &str) -> bool {
    file.ends_with(".so")
        && (file.contains("/ruby/") || file.contains("/gems/") || file.contains("/extensions/"))
}

/// Value of `key` in a `KEY=VALUE` Env list (the last one wins, as in Docker).
pub fn env_value<'e>(env: &'e [String], key: &str) -> Option<&'e str> {
    env.iter()
        .rev()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// 1-based line number of byte offset `at` in `text`.
pub fn line_at(text: &str, at: usize) -> u32 {
    1 + text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
}

// Helpers the resolvers share.

/// Line numbers of byte offsets, by binary search over the newlines ([`line_at`] counts from the
/// start each time: quadratic on a large file with many loads).
pub(crate) struct LineIndex(Vec<usize>);

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        Self(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(at, _)| at)
                .collect(),
        )
    }

    /// 1-based line of byte offset `at`.
    pub(crate) fn line(&self, at: usize) -> u32 {
        1 + self.0.partition_point(|&newline| newline < at) as u32
    }
}

/// Whether `path`, absent at this spelling, is certainly absent: its nearest existing ancestor
/// is a directory, so no symlink on the way could lead elsewhere. Saves a full path walk for
/// each of the many misses a search-path lookup makes.
pub(crate) fn certainly_absent<V: ImageView + ?Sized>(view: &V, path: &str) -> bool {
    if path.contains("//")
        || path.ends_with('/')
        || path.split('/').any(|part| part == "." || part == "..")
    {
        return false;
    }
    let mut dir = parent_of(path);
    for _ in 0..256 {
        match view.entry(dir).map(|entry| &entry.kind) {
            Some(EntryKind::Symlink { .. }) => return false,
            // A directory without the child, or a file where a directory should be.
            Some(_) => return true,
            None if dir == "/" => return true,
            None => dir = parent_of(dir),
        }
    }
    false
}

/// The real path of directory `path`, if it is one.
pub(crate) fn real_dir<V: ImageView + ?Sized>(view: &V, path: &str) -> Option<String> {
    let real = resolve(view, path, true).ok()?.path;
    matches!(view.entry(&real)?.kind, EntryKind::Dir).then_some(real)
}

pub(crate) fn child_names<V: ImageView + ?Sized>(view: &V, dir: &str) -> Vec<String> {
    let Some(real) = real_dir(view, dir) else {
        return Vec::new();
    };
    view.children(&real)
        .iter()
        .filter_map(|entry| entry.path.rsplit('/').next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_comes_from_the_extension_then_the_shebang() {
        assert_eq!(language_of("/app/x.py", b""), Some(Language::Python));
        assert_eq!(language_of("/app/x.mjs", b""), Some(Language::Node));
        assert_eq!(
            language_of("/cgi-bin/run", b"#!/usr/bin/env python3\n"),
            Some(Language::Python)
        );
        assert_eq!(
            language_of("/cgi-bin/x.cgi", b"#!/bin/bash\n"),
            Some(Language::Shell)
        );
        assert_eq!(
            language_of("/cgi-bin/x.cgi", b"#!/usr/bin/perl -w\n"),
            Some(Language::Perl)
        );
        assert_eq!(language_of("/usr/bin/ls", b"\x7fELF"), None);
        assert_eq!(language_of("/app/data.json", b"{}"), None);
    }

    #[test]
    fn runtime_libraries_are_told_from_third_party_code() {
        assert!(is_runtime_library("/usr/lib/python3.11/http/server.py"));
        assert!(is_runtime_library(
            "/app/venv/lib/python3.11/site-packages/_distutils_hack/__init__.py"
        ));
        assert!(is_runtime_library(
            "/app/venv/lib/python3.11/site-packages/setuptools/dist.py"
        ));
        assert!(is_runtime_library(
            "/usr/local/lib/python3.12/json/__init__.py"
        ));
        assert!(!is_runtime_library(
            "/app/venv/lib/python3.11/site-packages/flask/app.py"
        ));
        assert!(!is_runtime_library(
            "/usr/lib/python3/dist-packages/yaml/__init__.py"
        ));
        assert!(is_runtime_library("/usr/lib/ruby/3.1.0/csv.rb"));
        assert!(!is_runtime_library("/usr/lib/ruby/vendor_ruby/sinatra.rb"));
        assert!(is_runtime_library("/usr/lib/ruby/vendor_ruby/rubygems.rb"));
        assert!(is_runtime_library(
            "/usr/lib/ruby/vendor_ruby/rubygems/specification.rb"
        ));
        assert!(is_runtime_library("/usr/share/perl/5.36/File/Temp.pm"));
        assert!(!is_runtime_library("/usr/share/perl5/JSON.pm"));
        assert!(!is_runtime_library("/app/lib/python_helpers.py"));
    }

    #[test]
    fn line_numbers_are_one_based() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 4), 3);
    }
}
