//! The kept set: from the traced paths to everything the app needs to run, each with why.
//!
//! Traced paths are resolved in the image the way the kernel would ([`resolve`]: every directory on
//! the way and every symlink hop kept), ELF files pull in their interpreter and the libraries ld.so
//! would load ([`elf`], [`ldcache`]), scripts pull in their `#!` interpreter ([`script`]), hard
//! links their target, and the files the runtime itself reads are added ([`RUNTIME_FILES`]).
//! [`compute`] runs all of it to a fixed point; it never fails, it notes what it could not do.

pub mod app;
pub mod elf;
#[cfg(test)]
pub(crate) mod fake;
pub mod lang;
pub mod ldcache;
pub mod named;
pub mod resolve;
pub mod rules;
pub mod script;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

// The view of an image the closure reads lives with the image plumbing (image → closure, never
// the other way); re-exported here because every resolver takes one.
pub use crate::image::view::ImageView;

/// Why a path is in the slim image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Reason {
    /// The app touched it (sensor event kinds).
    Traced {
        kinds: Vec<crate::sense::AccessKind>,
    },
    /// A directory on the way to a kept path.
    ParentDir,
    /// A symlink followed while resolving `of`.
    SymlinkHop { of: String },
    /// The ELF interpreter (PT_INTERP) of `of`.
    ElfInterpreter { of: String },
    /// A DT_NEEDED library of `of`.
    ElfNeeded { of: String, soname: String },
    /// The `#!` interpreter of script `of`.
    Shebang { of: String },
    /// The target of a kept hard link.
    HardlinkTarget { of: String },
    /// Read by the container runtime or libc itself (e.g. /etc/passwd).
    Runtime { note: String },
    /// Kept by a user rule (flag or probe file).
    Rule { rule: String },
    /// The app's own file ([`app`]): put there by the image's build step `instruction`
    /// (layer `layer`), or in the WORKDIR tree.
    AppFile { layer: usize, instruction: String },
    /// Loaded by kept source file `of` (`load`: `import csv`, `require("ms")`, ...): found by
    /// scanning its code ([`lang`]).
    Import { of: String, load: String },
    /// Part of language package `package`, which kept file `of` belongs to
    /// (`--app-closure packages`).
    Package { package: String, of: String },
}

impl Reason {
    /// A short name for the kind of reason, for per-reason counts in the report.
    pub fn category(&self) -> &'static str {
        match self {
            Reason::Traced { .. } => "traced",
            Reason::ParentDir => "parent_dir",
            Reason::SymlinkHop { .. } => "symlink_hop",
            Reason::ElfInterpreter { .. } | Reason::ElfNeeded { .. } => "elf",
            Reason::Shebang { .. } => "shebang",
            Reason::HardlinkTarget { .. } => "hardlink_target",
            Reason::Runtime { .. } => "runtime",
            Reason::Rule { .. } => "rule",
            Reason::AppFile { .. } => "app_file",
            Reason::Import { .. } => "import",
            Reason::Package { .. } => "package",
        }
    }
}

/// The paths to keep, each with every reason found for it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeptSet {
    pub paths: BTreeMap<String, Vec<Reason>>,
}

impl KeptSet {
    /// Records `reason` for `path`; returns true when the path is new.
    pub fn add(&mut self, path: &str, reason: Reason) -> bool {
        match self.paths.get_mut(path) {
            Some(reasons) => {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
                false
            }
            None => {
                self.paths.insert(path.to_string(), vec![reason]);
                true
            }
        }
    }

    pub fn contains(&self, path: &str) -> bool {
        self.paths.contains_key(path)
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// Files kept whenever the image has them, with why. Small on purpose: everything else the
/// app reads shows up in the trace. Docker bind-mounts /etc/hosts, /etc/hostname and
/// /etc/resolv.conf over the image's copies, so those are not needed.
pub const RUNTIME_FILES: &[(&str, &str)] = &[
    (
        "/etc/passwd",
        "runc reads it to set up the container user before the app starts",
    ),
    (
        "/etc/group",
        "runc reads it to set up the container user's groups before the app starts",
    ),
    (
        "/etc/ld.so.cache",
        "glibc's ld.so reads it in every dynamically linked process",
    ),
    (
        "/etc/nsswitch.conf",
        "glibc reads it on any user, group or host lookup",
    ),
    (
        "/etc/ld.so.preload",
        "glibc's ld.so loads the libraries listed there into every process",
    ),
];

/// How far the closure follows the loads of a kept source file that the trace did not see run
/// (see [`Builder::scan_role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScanDepth {
    /// Only its eager loads (those that run when the file is loaded, [`lang::Dependency::lazy`]
    /// false), and theirs in turn: a module a library imports lazily must import, but what
    /// *its* functions import lazily is a second step off the paths that ran.
    Eager,
    /// Every load, lazy ones included, and so on for what they load: the app's own code and
    /// what it imports.
    Full,
}

/// How a kept source file is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanRole {
    /// The trace saw it run and it is not the app's own file: its eager loads already ran (they
    /// are in the trace); what it loads is scanned [`ScanDepth::Eager`].
    Traced,
    /// Reached only through loads: scanned to the depth its importers gave it.
    Reached(ScanDepth),
    /// A file of a runtime's own library (the stdlib) reached only through loads: what loading
    /// it runs is followed ([`ScanDepth::Eager`]), what its functions load only when that
    /// brings no new code, as for a traced library. Scanned fully, the stdlib's function-level
    /// imports pull in half of it (`difflib` → `doctest` → `pdb`, `pydoc`, `test.support`:
    /// 413 files, +11 MB on a 20 MB image).
    ReachedRuntime,
}

/// What the closure starts from.
#[derive(Debug, Clone, Default)]
pub struct ClosureInput<'a> {
    /// Paths the sensor saw; failed lookups included (a path missing from the image is ignored).
    pub traced: &'a [crate::sense::Access],
    /// The image config's `Env` (`KEY=VALUE`): PATH for `#!/usr/bin/env`, LD_LIBRARY_PATH for ld.so.
    pub env: &'a [String],
    /// Paths to keep regardless of the trace (user rules, the entrypoint, the working dir), each
    /// resolved and followed like a traced path.
    pub extra_paths: Vec<(String, Reason)>,
    /// The app's own files ([`app::app_files`]), kept as they are (a symlink is not followed).
    pub app_files: Vec<(String, Reason)>,
    /// Files a COPY/ADD step put in a system tree ([`app::AppFiles::own_code`]): scanned as the
    /// app's own code when kept.
    pub own_code: Vec<String>,
    /// How far to go beyond the trace (`--app-closure`).
    pub app_closure: lang::AppClosure,
    /// The image's WORKDIR (`/` when unset): the runtimes' current directory.
    pub workdir: &'a str,
    /// The sensor lost events: a file the app loaded may be missing from `traced`, so the
    /// module-level loads of traced files are followed too (see [`Builder::reach`]).
    pub trace_lost_events: bool,
}

/// A load in kept source code that could not be resolved statically (a non-literal argument,
/// or a literal naming nothing in the image): what the slim image may miss if that code runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DynamicLoad {
    pub path: String,
    pub line: u32,
    pub message: String,
}

impl std::fmt::Display for DynamicLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// A DT_NEEDED entry of a kept ELF object that no search found in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnresolvedNeed {
    /// The object that needs it (real path in the image).
    pub of: String,
    pub soname: String,
}

/// Something the closure could not analyse; the path is still kept if it was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ClosureWarning {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ClosureWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Counters for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClosureStats {
    /// Distinct paths in the trace.
    pub traced_paths: usize,
    /// Traced paths that do not exist in the image (probes that failed, runtime mounts).
    pub traced_not_in_image: usize,
    /// ELF objects analysed.
    pub elf_objects: usize,
    /// `#!` scripts analysed.
    pub scripts: usize,
    /// Source files scanned for imports.
    pub sources_scanned: usize,
}

/// The result: what to keep and what could not be resolved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Closure {
    pub kept: KeptSet,
    /// Sorted, deduplicated. A need counts as resolved if any loading context found it.
    pub unresolved_needs: Vec<UnresolvedNeed>,
    /// Sorted, deduplicated.
    pub warnings: Vec<ClosureWarning>,
    /// Loads in kept code that no scanner could resolve, sorted.
    pub dynamic_loads: Vec<DynamicLoad>,
    /// Lazy loads in libraries the app ran that were not followed (see
    /// [`Builder::follow_lazy_library_loads`]), sorted: what the slim image lacks if a route
    /// calls that library function.
    pub lazy_loads_not_followed: Vec<DynamicLoad>,
    pub stats: ClosureStats,
}

/// Computes everything the traced app needs from `view`, to a fixed point.
pub fn compute<V: ImageView + ?Sized>(view: &V, input: &ClosureInput) -> Closure {
    let mut builder = Builder::new(view, input.env);
    builder.app_closure = input.app_closure;
    builder.trace_complete = !input.trace_lost_events;
    builder.workdir = input.workdir.to_string();
    builder.keep_runtime_files();

    let mut traced: BTreeMap<&str, Vec<crate::sense::AccessKind>> = BTreeMap::new();
    for access in input.traced {
        let kinds = traced.entry(access.path.as_str()).or_default();
        if !kinds.contains(&access.kind) {
            kinds.push(access.kind);
        }
    }
    builder.stats.traced_paths = traced.len();
    for (path, mut kinds) in traced {
        kinds.sort();
        // readlink(2) does not follow the final symlink; every other call the sensor reports
        // may (stat vs lstat is not told apart), so following is the safe side.
        let follow_final = kinds
            .iter()
            .any(|kind| *kind != crate::sense::AccessKind::Readlink);
        if builder
            .keep_path(path, follow_final, Reason::Traced { kinds })
            .is_none()
        {
            builder.stats.traced_not_in_image += 1;
            builder.keep_existing_prefix(path, follow_final);
        }
    }
    for (path, reason) in &input.extra_paths {
        if builder.keep_path(path, true, reason.clone()).is_none() {
            builder.warn(path, "kept by rule but not in the image".to_string());
        }
    }
    if input.app_closure != lang::AppClosure::Off {
        builder.own_code = input.own_code.iter().cloned().collect();
        for (path, reason) in &input.app_files {
            builder.keep_path(path, false, reason.clone());
        }
        builder.keep_local_packages();
    }
    builder.run_to_fixed_point();
    builder.follow_lazy_library_loads();
    builder.finish()
}

/// The closure's working state: the kept set plus the queue of kept files not yet analysed.
struct Builder<'v, V: ?Sized> {
    view: &'v V,
    kept: KeptSet,
    pending_analysis: std::collections::VecDeque<String>,
    analysed: std::collections::HashSet<String>,
    ld_cache: Option<ldcache::LdCache>,
    ld_library_path: Vec<String>,
    /// LD_PRELOAD of the image's Env: ld.so loads these into every process.
    ld_preload: Vec<String>,
    env_path: Vec<String>,
    /// The image's Env, for the language runtimes' search paths.
    env: Vec<String>,
    elf_infos: std::collections::HashMap<String, Option<std::rc::Rc<elf::ElfInfo>>>,
    elf_abis: std::collections::HashMap<String, Option<elf::ElfAbi>>,
    /// (object, soname) → found in at least one loading context.
    needs: BTreeMap<(String, String), bool>,
    warnings: std::collections::BTreeSet<ClosureWarning>,
    stats: ClosureStats,
    app_closure: lang::AppClosure,
    workdir: String,
    /// Discovered on the first source file scanned.
    runtimes: Option<std::rc::Rc<lang::Runtimes>>,
    dynamic_loads: std::collections::BTreeSet<DynamicLoad>,
    lazy_loads_not_followed: std::collections::BTreeSet<DynamicLoad>,
    /// The deepest [`ScanDepth`] a load gave each file kept for it (real paths).
    depths: std::collections::HashMap<String, ScanDepth>,
    /// No sensor event was lost: what a traced file loaded at its load is all in the trace.
    trace_complete: bool,
    /// Lazy loads of traced library files, decided once the rest is kept: (file, load).
    lazy_library_loads: Vec<(String, lang::Dependency)>,
    /// [`ClosureInput::own_code`].
    own_code: std::collections::HashSet<String>,
}

impl<'v, V: ImageView + ?Sized> Builder<'v, V> {
    fn new(view: &'v V, env: &[String]) -> Self {
        let env_value = |key: &str| {
            env.iter()
                .rev()
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        };
        let env_path = env_value("PATH")
            .unwrap_or(script::DEFAULT_PATH)
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(str::to_string)
            .collect();
        let ld_library_path = env_value("LD_LIBRARY_PATH")
            .map(elf::split_search_path)
            .unwrap_or_default();
        let ld_preload = env_value("LD_PRELOAD")
            .map(|value| {
                value
                    .split([' ', ':'])
                    .filter(|word| !word.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            view,
            kept: KeptSet::default(),
            pending_analysis: Default::default(),
            analysed: Default::default(),
            ld_cache: None,
            ld_library_path,
            ld_preload,
            env_path,
            env: env.to_vec(),
            elf_infos: Default::default(),
            elf_abis: Default::default(),
            needs: BTreeMap::new(),
            warnings: Default::default(),
            stats: ClosureStats::default(),
            app_closure: lang::AppClosure::Off,
            workdir: "/".to_string(),
            runtimes: None,
            dynamic_loads: Default::default(),
            lazy_loads_not_followed: Default::default(),
            depths: Default::default(),
            lazy_library_loads: Vec::new(),
            own_code: Default::default(),
            trace_complete: true,
        }
    }

    fn warn(&mut self, path: &str, message: String) {
        self.warnings.insert(ClosureWarning {
            path: path.to_string(),
            message,
        });
    }

    fn note_need(&mut self, of: &str, soname: &str, resolved: bool) {
        let found = self
            .needs
            .entry((of.to_string(), soname.to_string()))
            .or_insert(false);
        *found |= resolved;
    }

    fn keep_runtime_files(&mut self) {
        for (path, note) in RUNTIME_FILES {
            let reason = Reason::Runtime {
                note: (*note).to_string(),
            };
            let Some(real) = self.keep_path(path, true, reason) else {
                continue;
            };
            match *path {
                "/etc/ld.so.cache" => self.load_ld_cache(&real),
                "/etc/ld.so.preload" => self.keep_preloads(&real),
                _ => {}
            }
        }
        for library in self.ld_preload.clone() {
            let reason = Reason::Runtime {
                note: "LD_PRELOAD in the image's Env".to_string(),
            };
            // Bare names are searched like a DT_NEEDED of each program; the trace sees ld.so
            // open them, so only absolute paths are added here.
            if library.starts_with('/') && self.keep_path(&library, true, reason).is_none() {
                self.warn(
                    &library,
                    "LD_PRELOAD names it but it is not in the image".into(),
                );
            }
        }
    }

    fn load_ld_cache(&mut self, path: &str) {
        const MAX_CACHE_BYTES: usize = 64 * 1024 * 1024;
        match self.view.read(path, MAX_CACHE_BYTES) {
            Ok(bytes) => match ldcache::LdCache::parse(&bytes) {
                Ok(cache) => self.ld_cache = Some(cache),
                Err(err) => self.warn(path, format!("ignored: {err}")),
            },
            Err(err) => self.warn(path, format!("cannot read: {err}")),
        }
    }

    fn keep_preloads(&mut self, path: &str) {
        let Ok(bytes) = self.view.read(path, 64 * 1024) else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for library in text
            .split(|c: char| c == ':' || c.is_whitespace())
            .filter(|word| word.starts_with('/'))
        {
            let reason = Reason::Runtime {
                note: format!("listed in {path}"),
            };
            if self.keep_path(library, true, reason).is_none() {
                self.warn(path, format!("preloaded {library} is not in the image"));
            }
        }
    }

    /// Resolves `path` and keeps what the lookup needs: the directories on the way, each symlink
    /// followed, and the object reached with `reason`. Returns the object's real path, `None` if
    /// the image does not have it.
    fn keep_path(&mut self, path: &str, follow_final: bool, reason: Reason) -> Option<String> {
        let resolution = resolve::resolve(self.view, path, follow_final).ok()?;
        self.keep_resolution(path, &resolution, reason);
        Some(resolution.path)
    }

    /// For a traced path missing from the image, keeps the directories and symlinks that do
    /// exist on its way: the app may create it there (nginx's `mkdir /var/lib/nginx/body`,
    /// log files) and fails if the directory is gone.
    fn keep_existing_prefix(&mut self, path: &str, follow_final: bool) {
        // The runtime mounts these over whatever the image has.
        let normalized = resolve::normalize_lexically(path);
        if ["/proc", "/sys", "/dev"]
            .iter()
            .any(|mount| normalized == *mount || normalized.starts_with(&format!("{mount}/")))
        {
            return;
        }
        if let Err(resolve::ResolveError::NotFound { walked, .. }) =
            resolve::resolve(self.view, path, follow_final)
        {
            for hop in &walked.hops {
                self.kept.add(
                    hop,
                    Reason::SymlinkHop {
                        of: path.to_string(),
                    },
                );
            }
            for dir in walked.dirs.iter().chain([&walked.path]) {
                if dir != "/" || self.view.entry("/").is_some() {
                    self.kept.add(dir, Reason::ParentDir);
                }
            }
        }
    }

    /// Keeps an already computed lookup of `path` (see [`Builder::keep_path`]).
    fn keep_resolution(&mut self, path: &str, resolution: &resolve::Resolution, reason: Reason) {
        for dir in &resolution.dirs {
            self.kept.add(dir, Reason::ParentDir);
        }
        for hop in &resolution.hops {
            self.kept.add(
                hop,
                Reason::SymlinkHop {
                    of: path.to_string(),
                },
            );
        }
        self.kept.add(&resolution.path, reason);
        self.on_kept(&resolution.path);
    }

    /// Schedules a newly kept object for content analysis and keeps a hard link's target.
    fn on_kept(&mut self, real_path: &str) {
        let Some(entry) = self.view.entry(real_path) else {
            return;
        };
        match &entry.kind {
            crate::image::EntryKind::File => {}
            crate::image::EntryKind::Hardlink { target } => {
                if self.analysed.contains(real_path) {
                    return;
                }
                let reason = Reason::HardlinkTarget {
                    of: real_path.to_string(),
                };
                let target = target.clone();
                // Mark first: a hard link cycle in a broken archive must not recurse forever.
                self.analysed.insert(real_path.to_string());
                self.pending_analysis.push_back(real_path.to_string());
                if self.keep_path(&target, false, reason).is_none() {
                    self.warn(
                        real_path,
                        format!("hard link target {target} is not in the image"),
                    );
                }
                return;
            }
            _ => return,
        }
        if self.analysed.insert(real_path.to_string()) {
            self.pending_analysis.push_back(real_path.to_string());
        }
    }

    fn run_to_fixed_point(&mut self) {
        while let Some(path) = self.pending_analysis.pop_front() {
            self.analyse(&path);
        }
    }

    /// Looks at a kept regular file's first bytes: ELF objects and `#!` scripts pull in more.
    fn analyse(&mut self, path: &str) {
        let head = match self.view.read(path, script::SHEBANG_READ_LIMIT) {
            Ok(head) => head,
            Err(err) => {
                self.warn(path, format!("cannot read: {err}"));
                return;
            }
        };
        if head.starts_with(elf::ELF_MAGIC) {
            self.stats.elf_objects += 1;
            self.link_elf(path);
            if self.app_closure != lang::AppClosure::Off {
                self.scan_extension(path);
            }
        } else if head.starts_with(b"#!") {
            // The kernel only runs scripts with an execute bit; a non-executable file starting
            // with `#!` is data (a sourced shell fragment, a template).
            let executable = self
                .view
                .entry(path)
                .is_some_and(|entry| entry.mode & 0o111 != 0);
            if executable {
                self.stats.scripts += 1;
                self.link_script(path, &head);
            }
        }
        if self.app_closure != lang::AppClosure::Off {
            if let Some(language) = lang::language_of(path, &head) {
                let traced = self.kept.paths.get(path).is_some_and(|reasons| {
                    reasons.iter().any(|r| matches!(r, Reason::Traced { .. }))
                });
                if !(traced && lang::is_runtime_library(path)) {
                    let role = self.scan_role(path);
                    self.scan_source(path, language, role);
                }
            }
        }
    }

    /// How the kept file at `path` is scanned. The app's own files, files kept by a rule and
    /// anything else not kept only by the trace or by loads are scanned fully. A traced file
    /// otherwise (a library the app ran) is [`ScanRole::Traced`]: the module-level loads of a
    /// file that ran already ran, so scanning it only adds what its functions load on paths
    /// that did not run, and those are followed one step (what they load eagerly), not into
    /// their own lazy loads. Files reached only through loads get the depth of their deepest
    /// importer.
    fn scan_role(&self, path: &str) -> ScanRole {
        let reasons = self.kept.paths.get(path).map(Vec::as_slice).unwrap_or(&[]);
        let only_trace_or_loads = reasons.iter().all(|r| {
            matches!(
                r,
                Reason::Traced { .. }
                    | Reason::Import { .. }
                    | Reason::ParentDir
                    | Reason::SymlinkHop { .. }
            )
        });
        if !only_trace_or_loads || self.own_code.contains(path) {
            return ScanRole::Reached(ScanDepth::Full);
        }
        if reasons.iter().any(|r| matches!(r, Reason::Traced { .. })) {
            return ScanRole::Traced;
        }
        if lang::is_runtime_library(path) {
            return ScanRole::ReachedRuntime;
        }
        ScanRole::Reached(self.depths.get(path).copied().unwrap_or(ScanDepth::Full))
    }

    /// The depth a load running at `when` in a file scanned as `role` gives what it loads;
    /// `None` when that load is not followed.
    fn reach(&self, role: ScanRole, when: lang::When) -> Option<ScanDepth> {
        use lang::When::{Anytime, Autoload, Later, OnLoad};
        match (role, when) {
            (ScanRole::Reached(ScanDepth::Full), _) => Some(ScanDepth::Full),
            // It ran: a load decided at its load either ran (and is in the trace) or never will
            // (unless the sensor lost events: then the trace may lack it).
            (ScanRole::Traced, OnLoad) => (!self.trace_complete).then_some(ScanDepth::Eager),
            // An autoload is the library's declared API, loaded on the first use of a constant
            // from anywhere (Rack::Multipart on the first form post): followed one step.
            (ScanRole::Traced, Anytime | Autoload) => Some(ScanDepth::Eager),
            // Decided at the end (follow_lazy_library_loads).
            (ScanRole::Traced, Later) => None,
            (ScanRole::ReachedRuntime, OnLoad | Anytime | Autoload) => Some(ScanDepth::Eager),
            (ScanRole::ReachedRuntime, Later) => None,
            (ScanRole::Reached(ScanDepth::Eager), OnLoad | Anytime) => Some(ScanDepth::Eager),
            (ScanRole::Reached(ScanDepth::Eager), Later | Autoload) => None,
        }
    }

    /// Gives `real` (kept for a load) at least `depth`, rescanning it if it was scanned shallower.
    fn deepen(&mut self, real: &str, depth: ScanDepth) {
        let old = self.depths.get(real).copied();
        if old.is_some_and(|old| old >= depth) {
            return;
        }
        self.depths.insert(real.to_string(), depth);
        if old.is_some()
            && self.analysed.contains(real)
            && !self.pending_analysis.iter().any(|p| p == real)
        {
            self.pending_analysis.push_back(real.to_string());
        }
    }

    /// Keeps what a language's native extension at `path` loads from its C code.
    fn scan_extension(&mut self, path: &str) {
        const MAX_EXTENSION_BYTES: usize = 32 * 1024 * 1024;
        // Only extensions need their bytes read; the check on the name is cheap.
        if !lang::is_scanned_extension(path) {
            return;
        }
        let runtimes = self.runtimes();
        let Ok(binary) = self.view.read(path, MAX_EXTENSION_BYTES) else {
            return;
        };
        if let Some(found) = runtimes.extension_dependencies(self.view, path, &binary) {
            let role = self.scan_role(path);
            for dependency in found.paths {
                let Some(depth) = self.reach(role, dependency.when) else {
                    continue;
                };
                let reason = Reason::Import {
                    of: path.to_string(),
                    load: dependency.why.clone(),
                };
                if let Some(real) = self.keep_path(&dependency.path, true, reason) {
                    self.deepen(&real, depth);
                }
            }
        }
    }

    /// Keeps the packages installed from the app's own source ([`lang::LocalPackage`]) as
    /// app files: whole (their templates and data are the app's), scanned fully. One over the
    /// app-root bound is left to the trace and the imports, with a warning.
    fn keep_local_packages(&mut self) {
        for local in self.runtimes().local_packages() {
            let bytes: u64 = local
                .package
                .files
                .iter()
                .filter_map(|f| self.view.entry(f))
                .map(|e| e.size)
                .sum();
            if bytes > app::MAX_ROOT_BYTES || local.package.files.len() > app::MAX_ROOT_FILES {
                let message = format!(
                    "installed from the local directory {}, but {} files, {bytes} bytes are \
                     over the bound for keeping it whole: kept only what the trace and the \
                     imports reach",
                    local.source,
                    local.package.files.len()
                );
                self.warn(&local.package.name, message);
                continue;
            }
            for file in &local.package.files {
                let reason = Reason::AppFile {
                    layer: self.view.entry(file).map_or(0, |e| e.layer),
                    instruction: format!(
                        "{} installed from the local directory {}",
                        local.package.name, local.source
                    ),
                };
                self.keep_path(file, false, reason);
            }
        }
    }

    /// The runtimes' search paths, discovered on first use.
    fn runtimes(&mut self) -> std::rc::Rc<lang::Runtimes> {
        match &self.runtimes {
            Some(runtimes) => runtimes.clone(),
            None => {
                let runtimes = std::rc::Rc::new(lang::Runtimes::discover(
                    self.view,
                    &self.env,
                    &self.workdir,
                ));
                self.runtimes = Some(runtimes.clone());
                runtimes
            }
        }
    }

    /// Keeps what the source file at `path` loads (and, with `packages`, its whole package).
    fn scan_source(&mut self, path: &str, language: lang::Language, role: ScanRole) {
        let text = match self.view.read(path, lang::SCAN_READ_LIMIT) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => {
                self.warn(path, format!("cannot read: {err}"));
                return;
            }
        };
        self.stats.sources_scanned += 1;
        let runtimes = self.runtimes();
        let found = runtimes.dependencies(self.view, language, path, &text);
        for dependency in found.paths {
            if matches!(role, ScanRole::Traced | ScanRole::ReachedRuntime)
                && dependency.when == lang::When::Later
            {
                self.lazy_library_loads.push((path.to_string(), dependency));
                continue;
            }
            let Some(depth) = self.reach(role, dependency.when) else {
                continue;
            };
            let reason = Reason::Import {
                of: path.to_string(),
                load: dependency.why.clone(),
            };
            if let Some(real) = self.keep_path(&dependency.path, true, reason) {
                self.deepen(&real, depth);
            } else {
                self.dynamic_loads.insert(DynamicLoad {
                    path: path.to_string(),
                    line: 0,
                    message: format!(
                        "{}: {} is not in the image",
                        dependency.why, dependency.path
                    ),
                });
            }
        }
        for unresolved in found.unresolved {
            self.dynamic_loads.insert(DynamicLoad {
                path: path.to_string(),
                line: unresolved.line,
                message: unresolved.message,
            });
        }
        if self.app_closure == lang::AppClosure::Packages {
            if let Some(package) = runtimes.package_files(self.view, language, path) {
                for file in &package.files {
                    let reason = Reason::Package {
                        package: package.name.clone(),
                        of: path.to_string(),
                    };
                    self.keep_path(file, false, reason);
                }
            }
        }
    }

    /// Lazy loads in the functions of libraries the app ran (an import inside a `def` of a
    /// traced file that is not the app's own): the trace saw the library's start-up and the
    /// requests the probes made, so what is left are code paths no probe took. Such a load is
    /// followed when what it names imports with code already kept: the module (and its
    /// package's `__init__`) is the only new code its import runs, as for a helper module of
    /// the library or a stdlib module the app already loaded the imports of (a template
    /// filter's `textwrap`, `jinja2.debug` on a template error). A load that would bring new
    /// code in turn (another module, a C extension and its libraries) starts a part of the
    /// library the app did not switch on — an async runtime, a debugger, a test client, a
    /// reloader, Bundler — and is not followed; it is listed in `lazy_loads_not_followed`.
    /// Decided after everything else is kept, in path order, until nothing more qualifies.
    fn follow_lazy_library_loads(&mut self) {
        // A module's bytecode, metadata or gemspecs come right after it: they go with it.
        let mut groups: Vec<(String, Vec<lang::Dependency>)> = Vec::new();
        for (of, dependency) in std::mem::take(&mut self.lazy_library_loads) {
            let code = self.is_code(&dependency.path);
            match groups.last_mut() {
                Some((last_of, group)) if !code && *last_of == of => group.push(dependency),
                _ => groups.push((of, vec![dependency])),
            }
        }
        groups.sort_by(|a, b| (&a.0, &a.1[0].path).cmp(&(&b.0, &b.1[0].path)));
        loop {
            let mut progressed = false;
            let mut left = Vec::new();
            for (of, group) in groups {
                let Ok(resolution) = resolve::resolve(self.view, &group[0].path, true) else {
                    continue;
                };
                let kept = self.kept.contains(&resolution.path);
                if !kept
                    && self.is_code(&resolution.path)
                    && !self.imports_only_itself(&resolution.path)
                {
                    left.push((of, group));
                    continue;
                }
                for dependency in &group {
                    let reason = Reason::Import {
                        of: of.clone(),
                        load: dependency.why.clone(),
                    };
                    if let Some(real) = self.keep_path(&dependency.path, true, reason) {
                        self.deepen(&real, ScanDepth::Eager);
                    }
                }
                if !kept {
                    progressed = true;
                    self.run_to_fixed_point();
                }
            }
            groups = left;
            if !progressed {
                break;
            }
        }
        for (of, group) in groups {
            self.lazy_loads_not_followed.insert(DynamicLoad {
                path: of,
                line: 0,
                message: format!(
                    "{}: inside a function of a library, not of the app; loading it would run code \
                     nothing else kept",
                    group[0].why
                ),
            });
        }
    }

    /// Whether the file at `path` is code: source a scanner reads, or an ELF object.
    fn is_code(&self, path: &str) -> bool {
        let Ok(real) = resolve::resolve(self.view, path, true) else {
            return false;
        };
        let Ok(head) = self.view.read(&real.path, script::SHEBANG_READ_LIMIT) else {
            return false;
        };
        head.starts_with(elf::ELF_MAGIC) || lang::language_of(&real.path, &head).is_some()
    }

    /// Whether importing the file at `real` (not kept) runs no code that is not kept but itself
    /// and its enclosing packages' `__init__` files: its eager loads, transitively, are kept
    /// already or are not code (bytecode, metadata, data). A native extension is never such a
    /// file (it brings its libraries).
    fn imports_only_itself(&mut self, real: &str) -> bool {
        const MAX_FILES: usize = 256;
        let runtimes = self.runtimes();
        let mut seen: std::collections::HashSet<String> = [real.to_string()].into();
        let mut queue = vec![real.to_string()];
        while let Some(path) = queue.pop() {
            if seen.len() > MAX_FILES {
                return false;
            }
            let Ok(head) = self.view.read(&path, script::SHEBANG_READ_LIMIT) else {
                continue;
            };
            if head.starts_with(elf::ELF_MAGIC) {
                return false;
            }
            let Some(language) = lang::language_of(&path, &head) else {
                continue;
            };
            if path != real && !is_enclosing_init(&path, real) {
                return false;
            }
            let Ok(bytes) = self.view.read(&path, lang::SCAN_READ_LIMIT) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let found = runtimes.dependencies(self.view, language, &path, &text);
            for dependency in found.paths {
                if dependency.when == lang::When::Later {
                    continue;
                }
                let Ok(resolution) = resolve::resolve(self.view, &dependency.path, true) else {
                    continue;
                };
                if !self.kept.contains(&resolution.path) && seen.insert(resolution.path.clone()) {
                    queue.push(resolution.path);
                }
            }
        }
        true
    }

    fn finish(self) -> Closure {
        let unresolved_needs = self
            .needs
            .into_iter()
            .filter(|(_, found)| !found)
            .map(|((of, soname), _)| UnresolvedNeed { of, soname })
            .collect();
        Closure {
            kept: self.kept,
            unresolved_needs,
            warnings: self.warnings.into_iter().collect(),
            dynamic_loads: self.dynamic_loads.into_iter().collect(),
            lazy_loads_not_followed: self.lazy_loads_not_followed.into_iter().collect(),
            stats: self.stats,
        }
    }
}

/// Whether `file` is the `__init__` of a package enclosing `module` (`a/__init__.py` for
/// `a/b/c.py`, or for `a/__init__.py` itself).
fn is_enclosing_init(file: &str, module: &str) -> bool {
    let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
    name.starts_with("__init__.")
        && module
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}
