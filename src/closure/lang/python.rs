//! Python: the image's `sys.path` ([`Paths`]), the scanner that finds what a Python file imports
//! ([`dependencies`]), and the distribution a file belongs to ([`package_files`]).
//!
//! Runtime rules reproduced (CPython 3, as Debian's `python3` and the official `python:3.x`
//! images lay it out):
//! - `sys.path` is the script's directory (or the current directory for `python -m`, gunicorn,
//!   `flask run`), `PYTHONPATH`, the stdlib `lib/pythonX.Y` (recognised by its `os.py`
//!   landmark, as `getpath` does), `lib-dynload`, then the site directories (`site-packages`,
//!   Debian's `dist-packages` and `/usr/lib/python3/dist-packages`, a virtualenv's
//!   site-packages found through its `pyvenv.cfg`, `~/.local` user sites), each followed by the
//!   directories its `.pth` files name (`import` lines are code and skipped, relative lines are
//!   against the site dir). Every interpreter prefix of the image contributes: which one runs
//!   the app is not known statically, so the union is searched;
//! - `import a.b.c` imports `a`, then `a.b`, then `a.b.c`, running every package `__init__`
//!   on the way. In one directory the finder tries the package `a/__init__.*` first, then the
//!   module files `a.<extension suffix>` (`.cpython-311-x86_64-linux-gnu.so`, `.abi3.so`,
//!   `.so`), `a.py`, `a.pyc`; a directory `a/` without `__init__` is a namespace portion, used
//!   only when no sys.path entry has a real module `a`, and it spans all such entries;
//! - `from a.b import c` needs `a.b`; `c` is a submodule if one exists, else an attribute;
//! - relative imports (`from . import x`, `from ..p import y`) are against the file's own
//!   package, `importlib.import_module(".x", package)` against the named package;
//! - modules compiled into the interpreter (`sys`, `posix`, `_io`, ...) need no file; imports
//!   inside a `try:` block or a platform/version check are optional (a miss is expected there),
//!   Windows-only and Python 2 names never count as missing, and `if TYPE_CHECKING:` imports
//!   never run;
//! - Python reads `__pycache__/<name>.cpython-XY.pyc` instead of recompiling a kept `.py`;
//!   `importlib.metadata` (Flask and many others ask for their version) reads a distribution's
//!   `METADATA` and `entry_points.txt`; a package reads or serves its bundled data files
//!   (werkzeug's debugger assets, templates), which are kept with its `__init__`.
//!
//! The scanner is a tokenizer for Python source: comments, all string literal forms (prefixes,
//! triple quotes, f-string replacement fields with nested strings), backslash continuations and
//! brackets spanning lines are understood, so an `import` in any of them never counts, and
//! `import`/`from` only count at the start of a statement (not `yield from`, `raise X from Y`).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::closure::lang::{env_value, line_at, Found, LocalPackage, Package, When};
use crate::closure::resolve::{join, normalize_lexically, parent_of, resolve};
use crate::closure::ImageView;
use crate::image::EntryKind;

/// Modules compiled into CPython 3.11 (Debian bookworm's `sys.builtin_module_names`, a
/// superset of the official images'), the frozen importlib bootstrap, and `__main__` (the
/// running script, created by the interpreter): no file behind them.
/// They are looked up on disk first anyway, because a source-built Python ships some of them
/// (`math`, `_csv`, ...) as `lib-dynload` extensions.
const BUILTIN_MODULES: &[&str] = &[
    "__main__",
    "_abc",
    "_ast",
    "_bisect",
    "_blake2",
    "_codecs",
    "_collections",
    "_csv",
    "_datetime",
    "_elementtree",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "_functools",
    "_heapq",
    "_imp",
    "_io",
    "_locale",
    "_md5",
    "_opcode",
    "_operator",
    "_pickle",
    "_posixsubprocess",
    "_random",
    "_sha1",
    "_sha256",
    "_sha3",
    "_sha512",
    "_signal",
    "_socket",
    "_sre",
    "_stat",
    "_statistics",
    "_string",
    "_struct",
    "_symtable",
    "_thread",
    "_tokenize",
    "_tracemalloc",
    "_typing",
    "_warnings",
    "_weakref",
    "array",
    "atexit",
    "binascii",
    "builtins",
    "cmath",
    "errno",
    "faulthandler",
    "fcntl",
    "gc",
    "grp",
    "itertools",
    "marshal",
    "math",
    "posix",
    "pwd",
    "pyexpat",
    "select",
    "spwd",
    "sys",
    "syslog",
    "time",
    "unicodedata",
    "xxsubtype",
    "zipimport",
    "zlib",
];

/// Modules that only exist on other platforms: code imports them behind a platform check, so a
/// miss on Linux is expected.
const OTHER_PLATFORM_MODULES: &[&str] = &[
    "_msi",
    "_overlapped",
    "_scproxy",
    "_winapi",
    "_winreg",
    "_wmi",
    "java",
    "msilib",
    "msvcrt",
    "nt",
    "pythoncom",
    "pywintypes",
    "win32api",
    "win32clipboard",
    "win32com",
    "win32con",
    "win32event",
    "win32file",
    "win32gui",
    "win32pipe",
    "win32process",
    "win32security",
    "win32service",
    "win32serviceutil",
    "winreg",
    "winsound",
];

/// Python 2 stdlib names: compatibility code imports them behind a version check.
const PYTHON2_MODULES: &[&str] = &[
    "BaseHTTPServer",
    "ConfigParser",
    "Cookie",
    "HTMLParser",
    "Queue",
    "SimpleHTTPServer",
    "SocketServer",
    "StringIO",
    "Tkinter",
    "UserDict",
    "__builtin__",
    "anydbm",
    "cPickle",
    "cStringIO",
    "commands",
    "cookielib",
    "copy_reg",
    "dummy_thread",
    "exceptions",
    "htmlentitydefs",
    "httplib",
    "md5",
    "robotparser",
    "sets",
    "sha",
    "thread",
    "urllib2",
    "urlparse",
    "xmlrpclib",
];

/// Names in an `if`/`elif` header that make it a platform or version check.
const PLATFORM_WORDS: &[&str] = &[
    "platform",
    "version_info",
    "hexversion",
    "PY2",
    "PY3",
    "PYPY",
    "IS_PYPY",
    "WIN",
    "WIN32",
    "WINDOWS",
    "IS_WIN",
    "IS_WINDOWS",
    "MS_WINDOWS",
    "ON_WINDOWS",
    "is_windows",
    "MACOS",
    "IS_MACOS",
    "DARWIN",
];

/// Extension module suffixes tried when the image shows no tagged one (no `lib/pythonX.Y`).
const FALLBACK_MODULE_SUFFIXES: &[&str] = &[".abi3.so", ".so", ".py", ".pyc"];
/// Multiarch triplets for tagged extension suffixes when neither `lib-dynload` nor `/usr/lib`
/// shows which one the image uses.
const DEFAULT_TRIPLETS: &[&str] = &["x86_64-linux-gnu", "aarch64-linux-gnu"];
/// Docker's default PATH, for images whose Env has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where virtualenvs usually live (the directory itself and its direct children are tried).
const VENV_LOCATIONS: &[&str] = &["/app", "/opt", "/srv", "/venv", "/usr/src/app", "/root"];

/// Package data is kept only up to this much per package dir: more is a data store, not assets.
const PACKAGE_DATA_MAX_BYTES: u64 = 2 * 1024 * 1024;
const PACKAGE_DATA_MAX_FILES: usize = 2000;
const PACKAGE_DATA_MAX_DIRS: usize = 500;
/// Directory names under a package that hold no runtime data.
const NON_DATA_DIRS: &[&str] = &["tests", "test", "__pycache__"];
/// File suffixes that are code or build inputs, never package data.
const CODE_SUFFIXES: &[&str] = &[
    ".py", ".pyc", ".pyo", ".pyi", ".pyd", ".so", ".pyx", ".pxd", ".c", ".h", ".cpp", ".a", ".po",
];
/// Bounds on tree walks, listings, discovery and parsing.
const MAX_WALK_DEPTH: usize = 32;
const PACKAGE_MAX_FILES: usize = 100_000;
const MAX_LISTED: usize = 4096;
/// Entries of one sys.path root indexed at discovery.
const MAX_INDEXED: usize = 100_000;
const MAX_PREFIXES: usize = 256;
const MAX_ROOTS: usize = 256;
const MAX_DISTS: usize = 20_000;
const MAX_ENV_ENTRIES: usize = 256;
const MAX_PTH_FILES: usize = 256;
const MAX_PTH_LINES: usize = 1000;
const MAX_PACKAGE_NESTING: usize = 64;
const MAX_DOTTED_PARTS: usize = 64;
const MAX_RELATIVE_LEVEL: usize = 64;
const MAX_IMPORT_NAMES: usize = 1000;
const MAX_NAMESPACE_PORTIONS: usize = 64;
/// Nesting of f-string replacement fields and strings inside them.
const MAX_STRING_NESTING: u32 = 8;
const RECORD_READ_LIMIT: usize = 16 * 1024 * 1024;
const SMALL_READ_LIMIT: usize = 64 * 1024;

/// A directory or file as the runtime names it (`path`, possibly through symlinks) and where it
/// really is (`real`, no symlink in it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    path: String,
    real: String,
}

impl Loc {
    fn real(path: &str) -> Self {
        Self {
            path: path.to_string(),
            real: path.to_string(),
        }
    }
}

/// One installed distribution (a `*.dist-info` or `*.egg-info` in a site dir).
#[derive(Debug, Clone)]
struct Dist {
    /// `<name>==<version>`, or the name alone when no version is known.
    name: String,
    /// The files `importlib.metadata` reads: `METADATA`/`PKG-INFO`, `entry_points.txt`.
    metadata: Vec<String>,
    /// What `RECORD` / `installed-files.txt` lists and the image has (real, normalised,
    /// sorted); empty without one.
    files: Vec<String>,
    /// The `*.dist-info`/`*.egg-info` directory (or egg-info file), real path.
    meta: String,
    /// The site dir it is installed in, real path.
    site: String,
    /// Its top-level import names.
    top_level: Vec<String>,
    /// Where `direct_url.json` (PEP 610) says it was installed from, when that is a local
    /// source directory (`pip install .`, `pip install /src`) and not in editable mode: the
    /// app itself, packaged ([`Paths::local_distributions`]).
    local_source: Option<String>,
}

/// Python's search paths and installed distributions in the image.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// `sys.path` without the script's own directory, in search order, unique by real path.
    roots: Vec<Loc>,
    /// Real paths of the site dirs (where distributions are installed).
    site_dirs: Vec<String>,
    /// Module file suffixes in the finder's order: extension suffixes, `.py`, `.pyc`.
    suffixes: Vec<String>,
    /// Whether `suffixes` has an interpreter-tagged extension suffix; without one extension
    /// modules are matched by listing (`name.*.so`).
    tagged: bool,
    /// `__pycache__` tags of the interpreters present (`cpython-311`).
    cache_tags: Vec<String>,
    dists: Vec<Dist>,
    /// Real file path → index in `dists`, from the RECORD files.
    owners: HashMap<String, usize>,
    /// (site dir, top-level name) → index in `dists`, for distributions without a RECORD
    /// (Debian's packages) and files compiled after installation.
    top_levels: HashMap<(String, String), usize>,
    /// Real path of a root → the stems of its entries (`six.py` → `six`): a root whose stems
    /// lack a name cannot hold that module, so it is skipped without probing each suffix.
    stems: HashMap<String, HashSet<String>>,
}

impl Paths {
    /// `env` is the image's Env (`PATH`, `PYTHONPATH`, `PYTHONHOME`, `VIRTUAL_ENV`), `workdir`
    /// its WorkingDir.
    pub fn discover<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Self {
        let workdir = normalize_lexically(workdir);
        let path_entries: Vec<String> = env_value(env, "PATH")
            .unwrap_or(DEFAULT_PATH)
            .split(':')
            .filter(|entry| entry.starts_with('/'))
            .take(MAX_ENV_ENTRIES)
            .map(normalize_lexically)
            .collect();
        let mut layout = Layout::default();
        // Virtualenvs first: their site-packages is what the app's interpreter imports from.
        let mut prefixes: Vec<String> = Vec::new();
        for venv in find_venvs(view, env, &workdir, &path_entries) {
            prefixes.push(venv.dir);
            if let Some(home) = venv.home {
                prefixes.push(parent_of(&home).to_string());
            }
            layout.versions.extend(venv.version);
        }
        if let Some(home) = env_value(env, "PYTHONHOME") {
            prefixes.extend(
                home.split(':')
                    .filter(|p| p.starts_with('/'))
                    .map(str::to_string),
            );
        }
        // A source-built python (`/usr/local/bin/python3`) comes first in PATH.
        prefixes.push("/usr/local".to_string());
        prefixes.push("/usr".to_string());
        prefixes.extend(path_entries.iter().map(|e| parent_of(e).to_string()));
        for opt in child_dirs(view, "/opt") {
            // Conda keeps environments under <prefix>/envs/<name>.
            prefixes.extend(child_dirs(view, &join(&opt, "envs")));
            prefixes.push(opt);
        }
        for home in user_homes(view) {
            prefixes.push(join(&home, ".local"));
        }
        for prefix in prefixes.iter().take(MAX_PREFIXES) {
            layout.scan_prefix(view, prefix);
        }

        let mut roots: Vec<Loc> = Vec::new();
        let push = |roots: &mut Vec<Loc>, loc: Loc| {
            if roots.len() < MAX_ROOTS && !roots.iter().any(|r| r.real == loc.real) {
                roots.push(loc);
            }
        };
        if let Some(pythonpath) = env_value(env, "PYTHONPATH") {
            for part in pythonpath.split(':').take(MAX_ENV_ENTRIES) {
                let path = absolute(part, &workdir);
                if let Some((Kind::Dir, loc)) = locate(view, &path) {
                    push(&mut roots, loc);
                }
            }
        }
        if let Some((Kind::Dir, loc)) = locate(view, &workdir) {
            push(&mut roots, loc);
        }
        for loc in layout.stdlib.iter().chain(&layout.dynload) {
            push(&mut roots, loc.clone());
        }
        for site in &layout.site {
            push(&mut roots, site.clone());
            for loc in pth_dirs(view, site) {
                push(&mut roots, loc);
            }
        }

        let (suffixes, tagged) = module_suffixes(view, &layout.dynload, &layout.versions);
        let cache_tags = layout
            .versions
            .iter()
            .rev()
            .map(|(major, minor)| format!("cpython-{major}{minor}"))
            .collect();
        let mut site_dirs: Vec<String> = Vec::new();
        for site in &layout.site {
            if !site_dirs.contains(&site.real) {
                site_dirs.push(site.real.clone());
            }
        }
        let mut dists = Vec::new();
        for site in &site_dirs {
            read_dists(view, site, &mut dists);
        }
        let mut owners = HashMap::new();
        let mut top_levels = HashMap::new();
        for (index, dist) in dists.iter().enumerate() {
            for file in &dist.files {
                owners.entry(file.clone()).or_insert(index);
            }
            for name in &dist.top_level {
                top_levels
                    .entry((dist.site.clone(), name.clone()))
                    .or_insert(index);
            }
        }
        let mut stems = HashMap::new();
        for root in &roots {
            let children = view.children(&root.real);
            // An index must be complete to prove absence.
            if children.len() <= MAX_INDEXED {
                let names = children
                    .iter()
                    .filter_map(|entry| entry.path.rsplit('/').next())
                    .map(|name| module_stem(name).to_string())
                    .collect();
                stems.insert(root.real.clone(), names);
            }
        }
        Self {
            roots,
            site_dirs,
            suffixes,
            tagged,
            cache_tags,
            dists,
            owners,
            top_levels,
            stems,
        }
    }

    /// The site dir holding `real` and the first path component under it.
    fn site_top<'p>(&self, real: &'p str) -> Option<(&str, &'p str)> {
        self.site_dirs
            .iter()
            .filter_map(|site| {
                let rest = real.strip_prefix(site.as_str())?.strip_prefix('/')?;
                Some((site.as_str(), rest.split('/').next()?))
            })
            .max_by_key(|(site, _)| site.len())
    }

    /// The distribution the real path `real` belongs to.
    fn dist_of(&self, real: &str) -> Option<usize> {
        if let Some(&index) = self.owners.get(real) {
            return Some(index);
        }
        let (site, top) = self.site_top(real)?;
        if top.ends_with(".dist-info") || top.ends_with(".egg-info") {
            let meta = join(site, top);
            return self.dists.iter().position(|dist| dist.meta == meta);
        }
        self.top_levels
            .get(&(site.to_string(), module_stem(top).to_string()))
            .copied()
    }

    /// The module file `stem` in `dir`, in the finder's suffix order.
    fn module_file<V: ImageView + ?Sized>(&self, view: &V, dir: &Loc, stem: &str) -> Option<Loc> {
        let probe = |suffix: &str| match lookup(view, dir, &format!("{stem}{suffix}")) {
            Some((Kind::File, loc)) => Some(loc),
            _ => None,
        };
        let found = if self.suffixes.is_empty() {
            FALLBACK_MODULE_SUFFIXES.iter().find_map(|s| probe(s))
        } else {
            self.suffixes.iter().find_map(|s| probe(s))
        };
        if found.is_some() || self.tagged {
            return found;
        }
        // No interpreter tag known: any `stem.<tag>.so` may be the extension module.
        let prefix = format!("{stem}.");
        view.children(&dir.real)
            .iter()
            .take(MAX_LISTED)
            .filter_map(|entry| entry.path.rsplit('/').next())
            .filter(|name| name.starts_with(&prefix) && name.ends_with(".so"))
            .find_map(|name| match lookup(view, dir, name) {
                Some((Kind::File, loc)) => Some(loc),
                _ => None,
            })
    }

    /// Python's path finder for the top-level name `name` over `dirs`: the first regular
    /// package or module wins; directories without `__init__` are namespace portions, used
    /// (all of them) only when nothing else is found.
    fn find_in<V: ImageView + ?Sized>(&self, view: &V, dirs: &[Loc], name: &str) -> Option<Module> {
        if !is_identifier(name) {
            return None;
        }
        let mut portions: Vec<Loc> = Vec::new();
        for dir in dirs {
            if self
                .stems
                .get(&dir.real)
                .is_some_and(|stems| !stems.contains(name))
            {
                continue;
            }
            if let Some((Kind::Dir, sub)) = lookup(view, dir, name) {
                if let Some(init) = self.module_file(view, &sub, "__init__") {
                    return Some(Module::Package { dir: sub, init });
                }
                if portions.len() < MAX_NAMESPACE_PORTIONS
                    && !portions.iter().any(|p| p.real == sub.real)
                {
                    portions.push(sub);
                }
            }
            if let Some(file) = self.module_file(view, dir, name) {
                return Some(Module::File(file));
            }
        }
        (!portions.is_empty()).then_some(Module::Namespace(portions))
    }
}

/// What an import found.
#[derive(Debug, Clone)]
enum Module {
    /// A regular package: its directory and its `__init__` file.
    Package { dir: Loc, init: Loc },
    /// A namespace package: its portions.
    Namespace(Vec<Loc>),
    /// A plain module file (`.py`, `.pyc` or an extension module).
    File(Loc),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// What the real path `real` is, following a final symlink: its kind and real path.
fn kind_at<V: ImageView + ?Sized>(view: &V, real: &str) -> Option<(Kind, String)> {
    let entry = view.entry(real)?;
    let kind_of = |kind: &EntryKind| match kind {
        EntryKind::Dir => Some(Kind::Dir),
        EntryKind::File | EntryKind::Hardlink { .. } => Some(Kind::File),
        _ => None,
    };
    match &entry.kind {
        EntryKind::Symlink { .. } => {
            let resolved = resolve(view, real, true).ok()?;
            let kind = kind_of(&view.entry(&resolved.path)?.kind)?;
            Some((kind, resolved.path))
        }
        other => Some((kind_of(other)?, real.to_string())),
    }
}

/// `name` inside directory `dir`.
fn lookup<V: ImageView + ?Sized>(view: &V, dir: &Loc, name: &str) -> Option<(Kind, Loc)> {
    let (kind, real) = kind_at(view, &join(&dir.real, name))?;
    Some((
        kind,
        Loc {
            path: join(&dir.path, name),
            real,
        },
    ))
}

/// The absolute path `path`, symlinks anywhere in it followed.
fn locate<V: ImageView + ?Sized>(view: &V, path: &str) -> Option<(Kind, Loc)> {
    let resolved = resolve(view, path, true).ok()?;
    let (kind, real) = kind_at(view, &resolved.path)?;
    Some((
        kind,
        Loc {
            path: normalize_lexically(path),
            real,
        },
    ))
}

/// Names in directory `real` (bounded).
fn child_names<V: ImageView + ?Sized>(view: &V, real: &str) -> Vec<String> {
    view.children(real)
        .iter()
        .take(MAX_LISTED)
        .filter_map(|entry| entry.path.rsplit('/').next())
        .map(str::to_string)
        .collect()
}

/// Real paths of the directories directly inside `dir` (itself followed if a symlink).
fn child_dirs<V: ImageView + ?Sized>(view: &V, dir: &str) -> Vec<String> {
    let Some((Kind::Dir, dir)) = locate(view, dir) else {
        return Vec::new();
    };
    view.children(&dir.real)
        .iter()
        .take(MAX_LISTED)
        .filter(|entry| matches!(entry.kind, EntryKind::Dir))
        .map(|entry| entry.path.clone())
        .collect()
}

/// `/root` and every `/home/<user>`.
fn user_homes<V: ImageView + ?Sized>(view: &V) -> Vec<String> {
    let mut homes = vec!["/root".to_string()];
    homes.extend(child_dirs(view, "/home"));
    homes
}

/// `path` made absolute against `base` and normalised (as `os.path.abspath`, lexically).
fn absolute(path: &str, base: &str) -> String {
    if path.starts_with('/') {
        normalize_lexically(path)
    } else {
        normalize_lexically(&join(base, path))
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The import name a site-dir entry provides: `six.py` → `six`, `_x.cpython-311-….so` → `_x`.
fn module_stem(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// `X.Y` of a `pythonX.Y` directory name.
fn parse_version(name: &str) -> Option<(u32, u32)> {
    let (major, minor) = name.strip_prefix("python")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(c) if is_ident_start(c)) && bytes.all(is_ident_char)
}

/// What discovery found under the interpreter prefixes.
#[derive(Debug, Default)]
struct Layout {
    prefixes_seen: HashSet<String>,
    stdlib: Vec<Loc>,
    dynload: Vec<Loc>,
    site: Vec<Loc>,
    versions: BTreeSet<(u32, u32)>,
}

fn push_unique(list: &mut Vec<Loc>, loc: Loc) {
    if !list.iter().any(|l| l.real == loc.real) {
        list.push(loc);
    }
}

impl Layout {
    /// The `lib/pythonX.Y` trees of one prefix (`/usr`, `/usr/local`, a venv, `/opt/conda`).
    fn scan_prefix<V: ImageView + ?Sized>(&mut self, view: &V, prefix: &str) {
        let Some((Kind::Dir, prefix)) = locate(view, prefix) else {
            return;
        };
        if !self.prefixes_seen.insert(prefix.real.clone()) {
            return;
        }
        let Some((Kind::Dir, lib)) = lookup(view, &prefix, "lib") else {
            return;
        };
        for name in child_names(view, &lib.real) {
            let Some(version) = parse_version(&name) else {
                continue;
            };
            let Some((Kind::Dir, dir)) = lookup(view, &lib, &name) else {
                continue;
            };
            self.versions.insert(version);
            // getpath's landmark: a venv's lib/pythonX.Y holds only site-packages.
            let landmark = ["os.py", "os.pyc"]
                .iter()
                .any(|name| matches!(lookup(view, &dir, name), Some((Kind::File, _))));
            if landmark {
                push_unique(&mut self.stdlib, dir.clone());
            }
            if let Some((Kind::Dir, dynload)) = lookup(view, &dir, "lib-dynload") {
                push_unique(&mut self.dynload, dynload);
            }
            for site in ["site-packages", "dist-packages"] {
                if let Some((Kind::Dir, site)) = lookup(view, &dir, site) {
                    push_unique(&mut self.site, site);
                }
            }
        }
        // Debian's version-independent `/usr/lib/python3/dist-packages`.
        if let Some((Kind::Dir, python3)) = lookup(view, &lib, "python3") {
            for site in ["dist-packages", "site-packages"] {
                if let Some((Kind::Dir, site)) = lookup(view, &python3, site) {
                    push_unique(&mut self.site, site);
                }
            }
        }
    }
}

/// A virtualenv: its directory (real) and what its `pyvenv.cfg` says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Venv {
    dir: String,
    home: Option<String>,
    version: Option<(u32, u32)>,
}

/// Virtualenvs of the image: `VIRTUAL_ENV`, the parents of PATH entries (`/app/venv/bin`), and
/// the usual places (the workdir, `/app`, `/opt`, homes, ...) and their direct children.
fn find_venvs<V: ImageView + ?Sized>(
    view: &V,
    env: &[String],
    workdir: &str,
    path_entries: &[String],
) -> Vec<Venv> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(venv) = env_value(env, "VIRTUAL_ENV").filter(|v| v.starts_with('/')) {
        candidates.push(normalize_lexically(venv));
    }
    candidates.extend(path_entries.iter().map(|e| parent_of(e).to_string()));
    let mut around: Vec<String> = vec![workdir.to_string()];
    around.extend(VENV_LOCATIONS.iter().map(|s| s.to_string()));
    around.extend(child_dirs(view, "/home"));
    for dir in around {
        candidates.extend(child_dirs(view, &dir));
        candidates.push(dir);
    }
    let mut venvs: Vec<Venv> = Vec::new();
    for dir in candidates.iter().take(MAX_LISTED) {
        let Some((Kind::Dir, dir)) = locate(view, dir) else {
            continue;
        };
        let Some((Kind::File, cfg)) = lookup(view, &dir, "pyvenv.cfg") else {
            continue;
        };
        if venvs.iter().any(|v| v.dir == dir.real) {
            continue;
        }
        let text = view
            .read(&cfg.real, SMALL_READ_LIMIT)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let mut venv = Venv {
            dir: dir.real,
            home: None,
            version: None,
        };
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "home" if value.starts_with('/') => venv.home = Some(normalize_lexically(value)),
                "version" | "version_info" => {
                    let mut parts = value.split('.');
                    let major = parts.next().and_then(|p| p.parse().ok());
                    let minor = parts.next().and_then(|p| p.parse().ok());
                    if let (Some(major), Some(minor)) = (major, minor) {
                        venv.version = Some((major, minor));
                    }
                }
                _ => {}
            }
        }
        venvs.push(venv);
    }
    venvs
}

/// The directories the `.pth` files of site dir `site` add to `sys.path` (files in name order,
/// as `site.addsitedir` reads them).
fn pth_dirs<V: ImageView + ?Sized>(view: &V, site: &Loc) -> Vec<Loc> {
    let mut names: Vec<String> = child_names(view, &site.real)
        .into_iter()
        .filter(|name| name.ends_with(".pth"))
        .collect();
    names.sort();
    let mut dirs = Vec::new();
    for name in names.iter().take(MAX_PTH_FILES) {
        let Some((Kind::File, pth)) = lookup(view, site, name) else {
            continue;
        };
        let Ok(bytes) = view.read(&pth.real, SMALL_READ_LIMIT) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines().take(MAX_PTH_LINES) {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // `import` lines are executed, not paths.
            if line.starts_with("import ") || line.starts_with("import\t") {
                continue;
            }
            let path = absolute(line, &site.path);
            if let Some((Kind::Dir, loc)) = locate(view, &path) {
                push_unique(&mut dirs, loc);
            }
        }
    }
    dirs
}

/// The finder's module suffixes, and whether an interpreter-tagged one is known. The tagged
/// extension suffixes are read off the interpreters' own `lib-dynload` modules
/// (`_csv.cpython-311-x86_64-linux-gnu.so`); without one they are built from the versions seen
/// and the image's multiarch triplets.
fn module_suffixes<V: ImageView + ?Sized>(
    view: &V,
    dynload: &[Loc],
    versions: &BTreeSet<(u32, u32)>,
) -> (Vec<String>, bool) {
    let mut tagged: BTreeSet<String> = BTreeSet::new();
    for dir in dynload {
        for name in child_names(view, &dir.real) {
            let Some(stem) = name.strip_suffix(".so") else {
                continue;
            };
            let Some(dot) = stem.find('.') else {
                continue;
            };
            let tag = &stem[dot..];
            if tag.starts_with(".cpython-") || tag.starts_with(".pypy") {
                tagged.insert(format!("{tag}.so"));
            }
        }
    }
    if tagged.is_empty() && !versions.is_empty() {
        let mut triplets: Vec<String> = child_names(view, "/usr/lib")
            .into_iter()
            .filter(|name| name.contains("-linux-"))
            .collect();
        if triplets.is_empty() {
            triplets = DEFAULT_TRIPLETS.iter().map(|s| s.to_string()).collect();
        }
        for (major, minor) in versions {
            for triplet in &triplets {
                tagged.insert(format!(".cpython-{major}{minor}-{triplet}.so"));
            }
        }
    }
    if tagged.is_empty() {
        return (Vec::new(), false);
    }
    let mut suffixes: Vec<String> = tagged.into_iter().collect();
    suffixes.extend([".abi3.so", ".so", ".py", ".pyc"].map(str::to_string));
    (suffixes, true)
}

/// `name-version` of a `*.dist-info` / `*.egg-info` stem (`flask-3.0.3`, `Foo-1.0-py3.11`).
fn split_dist_name(stem: &str) -> (String, Option<String>) {
    match stem.split_once('-') {
        Some((name, rest)) => {
            let version = rest.split('-').next().unwrap_or(rest);
            (
                name.to_string(),
                (!version.is_empty()).then(|| version.to_string()),
            )
        }
        None => (stem.to_string(), None),
    }
}

/// The source directory of a `direct_url.json` (PEP 610) that records an install from a local
/// directory (`{"url": "file:///src", "dir_info": {}}`); `None` for an editable install (the
/// code stays in that directory, which is the app's already), an archive (a wheel in a local
/// wheelhouse is as likely a dependency as the app) or a VCS checkout.
fn local_source_dir(direct_url: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(direct_url).ok()?;
    let dir_info = value.get("dir_info")?;
    if dir_info.get("editable").and_then(|e| e.as_bool()) == Some(true) {
        return None;
    }
    let url = value.get("url")?.as_str()?;
    url.strip_prefix("file://").map(str::to_string)
}

/// The first field of a RECORD (CSV) line.
fn csv_first_field(line: &str) -> Option<String> {
    let Some(rest) = line.strip_prefix('"') else {
        return line.split(',').next().map(str::to_string);
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                out.push('"');
                chars.next();
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

fn read_text<V: ImageView + ?Sized>(view: &V, real: &str, limit: usize) -> Option<String> {
    let bytes = view.read(real, limit).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every distribution installed in site dir `site` (real path).
fn read_dists<V: ImageView + ?Sized>(view: &V, site: &str, dists: &mut Vec<Dist>) {
    let site_loc = Loc::real(site);
    for name in child_names(view, site) {
        if dists.len() >= MAX_DISTS {
            return;
        }
        let (stem, dist_info) = if let Some(stem) = name.strip_suffix(".dist-info") {
            (stem, true)
        } else if let Some(stem) = name.strip_suffix(".egg-info") {
            (stem, false)
        } else {
            continue;
        };
        let Some((kind, meta)) = lookup(view, &site_loc, &name) else {
            continue;
        };
        let (dist_name, mut version) = split_dist_name(stem);
        let existing = |file: &str| match lookup(view, &meta, file) {
            Some((Kind::File, loc)) => Some(loc.real),
            _ => None,
        };
        let mut metadata = Vec::new();
        let mut files = Vec::new();
        let mut top_level = Vec::new();
        if kind == Kind::File {
            // An egg-info *file* is the PKG-INFO itself (distutils installs).
            metadata.push(meta.real.clone());
        } else {
            let info = if dist_info { "METADATA" } else { "PKG-INFO" };
            metadata.extend(existing(info));
            metadata.extend(existing("entry_points.txt"));
            if version.is_none() {
                // `cryptography.egg-info`: the version is only in PKG-INFO.
                version = metadata
                    .first()
                    .and_then(|m| read_text(view, m, SMALL_READ_LIMIT))
                    .and_then(|text| {
                        text.lines()
                            .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()))
                    });
            }
            if dist_info {
                if let Some(text) =
                    existing("RECORD").and_then(|r| read_text(view, &r, RECORD_READ_LIMIT))
                {
                    for line in text.lines() {
                        let Some(rel) = csv_first_field(line).filter(|r| !r.is_empty()) else {
                            continue;
                        };
                        files.push(absolute(&rel, site));
                        // Its top-level names: what it puts directly in the site dir.
                        let top = module_stem(rel.split('/').next().unwrap_or(""));
                        let import_name = !rel.starts_with('/')
                            && !top.is_empty()
                            && top != "__pycache__"
                            && !rel.starts_with("..")
                            && !rel.split('/').next().unwrap_or("").ends_with(".dist-info");
                        if import_name && !top_level.iter().any(|t| t == top) {
                            top_level.push(top.to_string());
                        }
                    }
                }
            } else if let Some(text) =
                existing("installed-files.txt").and_then(|r| read_text(view, &r, RECORD_READ_LIMIT))
            {
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    files.push(absolute(line, &meta.real));
                }
            }
            if let Some(text) =
                existing("top_level.txt").and_then(|t| read_text(view, &t, SMALL_READ_LIMIT))
            {
                for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if !top_level.iter().any(|t| t == name) {
                        top_level.push(name.to_string());
                    }
                }
            }
        }
        if top_level.is_empty() {
            top_level.push(dist_name.to_lowercase().replace('-', "_"));
        }
        // RECORD lists bytecode that may never have been written; checked once here, as
        // `package_files` answers for every file of the distribution.
        files.retain(|file| view.entry(file).is_some());
        files.sort();
        files.dedup();
        let local_source = if dist_info && kind != Kind::File {
            existing("direct_url.json")
                .and_then(|d| read_text(view, &d, SMALL_READ_LIMIT))
                .and_then(|text| local_source_dir(&text))
        } else {
            None
        };
        dists.push(Dist {
            local_source,
            name: match version {
                Some(version) => format!("{dist_name}=={version}"),
                None => dist_name,
            },
            metadata,
            files,
            meta: meta.real,
            site: site.to_string(),
            top_level,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The tokenizer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Name,
    /// A one-byte operator or delimiter (`.`, `(`, `:`, `;`, `,`, `*`, `=`, ...).
    Op(u8),
    /// A string literal; `from..to` is its body between the quotes. f-strings have no value.
    Str {
        from: usize,
        to: usize,
        fstring: bool,
    },
    Number,
    /// The end of a logical line.
    Newline,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
    /// Bracket depth at the token (an opener and its closer have the same depth).
    depth: u32,
    /// Indentation column, on the first token of a logical line only.
    indent: Option<u32>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// `r`, `b`, `u`, `f`, `t` and their two-letter combinations, any case.
fn is_string_prefix(prefix: &[u8]) -> bool {
    let lower: Vec<u8> = prefix.iter().map(u8::to_ascii_lowercase).collect();
    matches!(
        lower.as_slice(),
        b"r" | b"u" | b"b" | b"f" | b"t" | b"br" | b"rb" | b"fr" | b"rf" | b"tr" | b"rt"
    )
}

fn has_interpolation(prefix: &[u8]) -> bool {
    prefix
        .iter()
        .any(|c| matches!(c, b'f' | b'F' | b't' | b'T'))
}

/// Whether the quote at `at` opens an f-string (a prefix with `f` right before it).
fn fstring_prefix_before(b: &[u8], at: usize) -> bool {
    let mut start = at;
    while start > 0 && at - start < 2 && b[start - 1].is_ascii_alphabetic() {
        start -= 1;
    }
    let prefix = &b[start..at];
    !prefix.is_empty()
        && (start == 0 || !is_ident_char(b[start - 1]))
        && is_string_prefix(prefix)
        && has_interpolation(prefix)
}

fn closes(b: &[u8], j: usize, q: u8, triple: bool) -> bool {
    b.get(j) == Some(&q) && (!triple || (b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q)))
}

/// Scans the string literal whose opening quote is at `quote_at`: (body start, body end, end).
/// An unterminated one-line string ends at the newline, an unterminated triple-quoted one at
/// the end of the text.
fn scan_string(b: &[u8], quote_at: usize, fstring: bool, budget: u32) -> (usize, usize, usize) {
    let q = b[quote_at];
    let triple = b.get(quote_at + 1) == Some(&q) && b.get(quote_at + 2) == Some(&q);
    let from = quote_at + if triple { 3 } else { 1 };
    let mut j = from;
    while j < b.len() {
        let c = b[j];
        if c == b'\\' {
            // Even in raw strings a backslash keeps the next quote from closing.
            j += 2;
            continue;
        }
        if closes(b, j, q, triple) {
            return (from, j, j + if triple { 3 } else { 1 });
        }
        if c == b'\n' && !triple {
            return (from, j, j);
        }
        if fstring && c == b'{' {
            if b.get(j + 1) == Some(&b'{') {
                j += 2;
                continue;
            }
            j = scan_field(b, j + 1, q, triple, budget).max(j + 1);
            continue;
        }
        j += 1;
    }
    let end = b.len();
    (from.min(end), end, end)
}

/// Scans an f-string replacement field from just after its `{`; returns the index after its
/// `}`. Strings inside the expression are skipped as strings (Python 3.12 allows the outer
/// quote there), a `:` at the top level starts the format spec.
fn scan_field(b: &[u8], mut j: usize, q: u8, triple: bool, budget: u32) -> usize {
    let mut depth = 0u32;
    while j < b.len() {
        match b[j] {
            b'\n' if !triple => return j,
            b'\'' | b'"' => {
                if budget == 0 {
                    return j;
                }
                let nested_f = fstring_prefix_before(b, j);
                let (_, _, end) = scan_string(b, j, nested_f, budget - 1);
                j = end.max(j + 1);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'}' => {
                if depth == 0 {
                    return j + 1;
                }
                depth -= 1;
            }
            b':' if depth == 0 => return scan_spec(b, j + 1, q, triple, budget),
            _ => {}
        }
        j += 1;
    }
    j
}

/// Scans a format spec (`>10`, `{width}`) up to the `}` closing its field.
fn scan_spec(b: &[u8], mut j: usize, q: u8, triple: bool, budget: u32) -> usize {
    while j < b.len() {
        let c = b[j];
        if (c == b'\n' && !triple) || closes(b, j, q, triple) {
            return j;
        }
        match c {
            b'{' => {
                if budget == 0 {
                    return j;
                }
                j = scan_field(b, j + 1, q, triple, budget - 1).max(j + 1);
                continue;
            }
            b'}' => return j + 1,
            _ => {}
        }
        j += 1;
    }
    j
}

/// Whether a physical line starts with a keyword that can only begin a statement: inside
/// unbalanced brackets (broken code, or a lexing slip) it resynchronises the tokenizer.
fn starts_statement(rest: &[u8]) -> bool {
    ["def ", "class ", "import ", "from ", "async def "]
        .iter()
        .any(|kw| rest.starts_with(kw.as_bytes()))
}

struct Lexer {
    toks: Vec<Token>,
    depth: u32,
    indent: u32,
    /// Whether the current logical line has tokens.
    open_line: bool,
}

impl Lexer {
    fn push(&mut self, tok: Tok, start: usize, end: usize) {
        let indent = (!self.open_line).then_some(self.indent);
        self.open_line = true;
        self.toks.push(Token {
            tok,
            start,
            end,
            depth: self.depth,
            indent,
        });
    }

    fn end_line(&mut self, at: usize) {
        if self.open_line {
            self.open_line = false;
            self.toks.push(Token {
                tok: Tok::Newline,
                start: at,
                end: at,
                depth: 0,
                indent: None,
            });
        }
    }
}

/// The tokens of Python source `source` (comments dropped).
fn tokenize(source: &str) -> Vec<Token> {
    let b = source.as_bytes();
    let mut lx = Lexer {
        toks: Vec::new(),
        depth: 0,
        indent: 0,
        open_line: false,
    };
    let mut i = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut at_line_start = true;
    while i < b.len() {
        if at_line_start {
            at_line_start = false;
            let mut col = 0u32;
            while i < b.len() {
                match b[i] {
                    b' ' => col = col.saturating_add(1),
                    b'\t' => col = (col / 8).saturating_add(1).saturating_mul(8),
                    0x0c => col = 0,
                    _ => break,
                }
                i += 1;
            }
            if lx.depth > 0 && col == 0 && starts_statement(&b[i..]) {
                lx.depth = 0;
                lx.end_line(i);
            }
            if lx.depth == 0 && !lx.open_line {
                lx.indent = col;
            }
            continue;
        }
        let c = b[i];
        match c {
            b'\n' => {
                if lx.depth == 0 {
                    lx.end_line(i);
                }
                i += 1;
                at_line_start = true;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'\\' if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') => i += 3,
            b' ' | b'\t' | b'\r' | 0x0c => i += 1,
            b'\'' | b'"' => {
                let (from, to, end) = scan_string(b, i, false, MAX_STRING_NESTING);
                let fstring = false;
                lx.push(Tok::Str { from, to, fstring }, i, end);
                i = end.max(i + 1);
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                let prefix = &b[start..i];
                if matches!(b.get(i), Some(b'\'') | Some(b'"')) && is_string_prefix(prefix) {
                    let fstring = has_interpolation(prefix);
                    let (from, to, end) = scan_string(b, i, fstring, MAX_STRING_NESTING);
                    lx.push(Tok::Str { from, to, fstring }, start, end);
                    i = end.max(i + 1);
                } else {
                    lx.push(Tok::Name, start, i);
                }
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let start = i;
                let hex = b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X");
                i += 1;
                while i < b.len() {
                    let d = b[i];
                    let exponent_sign =
                        matches!(d, b'+' | b'-') && !hex && matches!(b[i - 1], b'e' | b'E');
                    if d.is_ascii_alphanumeric() || d == b'_' || d == b'.' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                lx.push(Tok::Number, start, i);
            }
            b'(' | b'[' | b'{' => {
                lx.push(Tok::Op(c), i, i + 1);
                lx.depth = lx.depth.saturating_add(1);
                i += 1;
            }
            b')' | b']' | b'}' => {
                lx.depth = lx.depth.saturating_sub(1);
                lx.push(Tok::Op(c), i, i + 1);
                i += 1;
            }
            _ => {
                lx.push(Tok::Op(c), i, i + 1);
                i += 1;
            }
        }
    }
    lx.end_line(b.len());
    lx.toks
}

// ---------------------------------------------------------------------------------------------
// The scanner.

/// A block whose statements are not plain unconditional code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// `try:` (or `with suppress(ImportError):`): a failing import is handled.
    Try,
    /// An `if`/`elif`/`else` chain on the platform or Python version.
    Platform,
    /// `if TYPE_CHECKING:`: never runs.
    TypeChecking,
    /// A `def` body, or `if __name__ == "__main__":` (runs only when the file is the script):
    /// its imports run when that code does, not when the module is imported.
    Lazy,
    /// `except ImportError:` after a `try:` whose imports all resolved: the fallback
    /// (`_pydecimal` for `_decimal`) runs only if that import fails, so its imports count as
    /// lazy ones — followed in the app's files, and in a library's only when they bring no new
    /// code. After a `try:` with an import the image lacks, the fallback is what runs: a
    /// plain [`Block::Try`].
    Fallback,
}

/// How the statement at hand runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Context {
    optional: bool,
    never_runs: bool,
    /// In a `def` body or a `__main__` block.
    lazy: bool,
}

/// The outcome of importing a dotted name part by part.
enum Chain {
    Module(Module),
    /// A plain module had more parts after it (`os.path`): the rest are its attributes.
    Attribute,
    /// Part number `k` (0-based) was found nowhere.
    Missing(usize),
}

/// The package argument of `importlib.import_module`.
enum PackageArg {
    None,
    Named(String),
    /// `__name__` / `__package__`: the scanned file's own package.
    Own,
    NotLiteral,
}

struct Scan<'a, V: ?Sized> {
    view: &'a V,
    paths: &'a Paths,
    source: &'a str,
    file: &'a str,
    file_dir: Loc,
    /// Search path for absolute imports: the script dir (or the package root's parent), then
    /// `sys.path`.
    search: Vec<Loc>,
    /// The file's own dir when it is inside a package: `sys.path[0]` only when the file is run
    /// as a script, so it is tried last.
    script_dir: Option<Loc>,
    /// The packages enclosing the file, innermost first: their dirs and `__init__` files.
    packages: Vec<(Loc, Loc)>,
    found: Found,
    /// (path, when) pairs already in `found`: a path may be loaded both at load and later.
    kept: HashSet<(String, When)>,
    dists_kept: HashSet<(usize, When)>,
    /// Imports that resolved / that named nothing in the image, so far: a `try:` whose imports
    /// all resolved makes its `except ImportError:` fallbacks unneeded ([`Block::Fallback`]).
    imports_found: u32,
    imports_missing: u32,
    /// When the statement being scanned runs.
    when: When,
}

/// Scans `source`, the text of the image file `file` (its real path): every file Python would
/// read to run its imports, and the imports that cannot be resolved.
pub fn dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
) -> Found {
    let mut scan = Scan::new(view, paths, file, source);
    scan.own_file();
    let toks = tokenize(source);
    scan.walk(&toks);
    scan.found.dedup();
    scan.found
}

impl<'a, V: ImageView + ?Sized> Scan<'a, V> {
    fn new(view: &'a V, paths: &'a Paths, file: &'a str, source: &'a str) -> Self {
        let file_dir = Loc::real(parent_of(file));
        let mut packages = Vec::new();
        let mut dir = file_dir.clone();
        while packages.len() < MAX_PACKAGE_NESTING && dir.real != "/" {
            let Some(init) = paths.module_file(view, &dir, "__init__") else {
                break;
            };
            let parent = Loc::real(parent_of(&dir.real));
            packages.push((dir, init));
            dir = parent;
        }
        // Inside a package, absolute imports never see the package's own dir (no implicit
        // relative imports in Python 3: asyncio's `import subprocess` is the stdlib's, not
        // asyncio/subprocess.py); the package root's parent is where it was imported from.
        let script_dir = (!packages.is_empty()).then(|| file_dir.clone());
        let mut search = vec![dir];
        for root in &paths.roots {
            if !search.iter().any(|s| s.real == root.real) {
                search.push(root.clone());
            }
        }
        let mut kept = HashSet::new();
        for when in [When::OnLoad, When::Anytime, When::Later] {
            kept.insert((file.to_string(), when));
        }
        Self {
            view,
            paths,
            source,
            file,
            file_dir,
            search,
            script_dir,
            packages,
            found: Found::default(),
            kept,
            dists_kept: HashSet::new(),
            imports_found: 0,
            imports_missing: 0,
            // The file's own needs (package inits, bytecode, metadata, package data).
            when: When::Anytime,
        }
    }

    /// The dotted name of the `k`-th enclosing package (0 = innermost).
    fn package_name(&self, k: usize) -> String {
        let names: Vec<&str> = self.packages[k..]
            .iter()
            .rev()
            .map(|(dir, _)| basename(&dir.real))
            .collect();
        names.join(".")
    }

    /// What loading the scanned file itself needs: its enclosing packages' `__init__`, its
    /// bytecode, its distribution's metadata and, for a package's `__init__`, the package data.
    fn own_file(&mut self) {
        for k in 0..self.packages.len() {
            let why = format!("package {}", self.package_name(k));
            let init = self.packages[k].1.clone();
            self.keep(&init, &why);
        }
        let name = basename(self.file);
        let own = Loc::real(self.file);
        let why = format!("loading {name}");
        self.extras(&own, &why);
        if name.starts_with("__init__.") && !self.packages.is_empty() {
            let why = format!("package data of {}", self.package_name(0));
            if let Some(files) = package_data(self.view, self.paths, &self.file_dir.real) {
                for file in files {
                    self.keep_plain(file, &why);
                }
            }
        }
    }

    fn keep_plain(&mut self, path: String, why: &str) {
        if self.kept.insert((path.clone(), self.when)) {
            self.found.keep_as(path, why, self.when);
        }
    }

    /// Keeps a module file, with its bytecode and its distribution's metadata.
    fn keep(&mut self, loc: &Loc, why: &str) {
        if self.kept.insert((loc.path.clone(), self.when)) {
            self.found.keep_as(loc.path.clone(), why, self.when);
            self.extras(loc, why);
        }
    }

    fn extras(&mut self, loc: &Loc, why: &str) {
        if let Some(stem) = basename(&loc.path).strip_suffix(".py") {
            let dir = Loc {
                path: parent_of(&loc.path).to_string(),
                real: parent_of(&loc.real).to_string(),
            };
            for tag in &self.paths.cache_tags {
                let name = format!("__pycache__/{stem}.{tag}.pyc");
                if let Some((Kind::File, pyc)) = lookup(self.view, &dir, &name) {
                    self.keep_plain(pyc.path, why);
                }
            }
        }
        if let Some(index) = self.paths.dist_of(&loc.real) {
            if self.dists_kept.insert((index, self.when)) {
                let dist = &self.paths.dists[index];
                let why = format!("{why} ({} metadata)", dist.name);
                for file in dist.metadata.clone() {
                    self.keep_plain(file, &why);
                }
            }
        }
    }

    fn keep_module(&mut self, module: &Module, why: &str) {
        match module {
            Module::Package { init, .. } => self.keep(init, why),
            Module::File(loc) => self.keep(loc, why),
            // The runtime needs just the directories to exist.
            Module::Namespace(portions) => {
                for portion in portions {
                    self.keep_plain(portion.path.clone(), why);
                }
            }
        }
    }

    fn unresolved(&mut self, at: usize, message: String) {
        let line = line_at(self.source, at);
        self.found.unresolved(line, message);
    }

    fn text(&self, tok: &Token) -> &'a str {
        self.source.get(tok.start..tok.end).unwrap_or("")
    }

    fn name(&self, toks: &[Token], i: usize) -> Option<&'a str> {
        let tok = toks.get(i)?;
        (tok.tok == Tok::Name).then(|| self.text(tok))
    }

    /// Walks the statements, tracking the blocks that make imports optional.
    fn walk(&mut self, toks: &[Token]) {
        let mut blocks: Vec<(u32, Block)> = Vec::new();
        // Per open `try:`, the import counters when it opened.
        let mut tries: Vec<(u32, u32)> = Vec::new();
        // The `try:` just closed at this indent, and whether all its imports resolved.
        let mut closed_try: Option<(u32, bool)> = None;
        let mut stmt_start = true;
        let mut i = 0;
        while i < toks.len() {
            let tok = toks[i];
            if let Some(indent) = tok.indent {
                let mut closed_platform = false;
                let mut just_closed = None;
                while let Some(&(open, block)) = blocks.last() {
                    if open < indent {
                        break;
                    }
                    closed_platform |= open == indent && block == Block::Platform;
                    if block == Block::Try {
                        let (found, missing) = tries.pop().unwrap_or_default();
                        let resolved =
                            self.imports_missing == missing && self.imports_found > found;
                        just_closed = Some((open, resolved));
                    }
                    blocks.pop();
                }
                if just_closed.is_some() {
                    closed_try = just_closed;
                }
                stmt_start = true;
                let resolved_try =
                    closed_try.is_some_and(|(at, resolved)| at == indent && resolved);
                if let Some(block) = self.opens_block(toks, i, closed_platform, resolved_try) {
                    if block == Block::Try {
                        tries.push((self.imports_found, self.imports_missing));
                    }
                    blocks.push((indent, block));
                }
            }
            let context = Context {
                optional: blocks
                    .iter()
                    .any(|(_, b)| matches!(b, Block::Try | Block::Platform | Block::Fallback)),
                never_runs: blocks.iter().any(|(_, b)| *b == Block::TypeChecking),
                lazy: blocks
                    .iter()
                    .any(|(_, b)| matches!(b, Block::Lazy | Block::Fallback)),
            };
            self.when = if context.lazy {
                When::Later
            } else {
                When::OnLoad
            };
            match tok.tok {
                Tok::Newline => {
                    stmt_start = true;
                    i += 1;
                    continue;
                }
                Tok::Op(b';') | Tok::Op(b':') if tok.depth == 0 => {
                    stmt_start = true;
                    i += 1;
                    continue;
                }
                Tok::Name => {
                    let word = self.text(&tok);
                    if stmt_start && (word == "import" || word == "from") {
                        let next = if word == "import" {
                            self.import_statement(toks, i, context)
                        } else {
                            self.import_from_statement(toks, i, context)
                        };
                        stmt_start = false;
                        i = next.max(i + 1);
                        continue;
                    }
                    if (word == "import_module" || word == "__import__") && !context.never_runs {
                        self.call(toks, i, context);
                    }
                }
                _ => {}
            }
            stmt_start = false;
            i += 1;
        }
    }

    /// The block the logical line starting at `i` opens, if it is one that matters.
    fn opens_block(
        &self,
        toks: &[Token],
        i: usize,
        closed_platform: bool,
        after_resolved_try: bool,
    ) -> Option<Block> {
        let word = self.name(toks, i)?;
        let header: Vec<&str> = toks[i + 1..]
            .iter()
            .take_while(|t| t.tok != Tok::Newline && !(t.tok == Tok::Op(b':') && t.depth == 0))
            .take(256)
            .filter(|t| t.tok == Tok::Name)
            .map(|t| self.text(t))
            .collect();
        let has = |name: &str| header.contains(&name);
        match word {
            "def" => Some(Block::Lazy),
            "async" if self.name(toks, i + 1) == Some("def") => Some(Block::Lazy),
            "if" if has("__name__") && self.mentions_main(toks, i) => Some(Block::Lazy),
            "try" => Some(Block::Try),
            "except"
                if after_resolved_try && (has("ImportError") || has("ModuleNotFoundError")) =>
            {
                Some(Block::Fallback)
            }
            "with" if has("ImportError") || has("ModuleNotFoundError") => Some(Block::Try),
            "if" | "elif" if has("TYPE_CHECKING") && !has("not") => Some(Block::TypeChecking),
            "if" | "elif" => {
                let platform = header.iter().any(|name| PLATFORM_WORDS.contains(name))
                    || (has("os") && has("name"))
                    || (has("sys") && has("version"));
                (platform || (word == "elif" && closed_platform)).then_some(Block::Platform)
            }
            "else" if closed_platform => Some(Block::Platform),
            _ => None,
        }
    }

    /// Whether the header of the `if` at `i` compares with the string `"__main__"`.
    fn mentions_main(&self, toks: &[Token], i: usize) -> bool {
        toks[i + 1..]
            .iter()
            .take_while(|t| t.tok != Tok::Newline && !(t.tok == Tok::Op(b':') && t.depth == 0))
            .take(16)
            .any(|t| matches!(t.tok, Tok::Str { from, to, .. } if self.source.get(from..to) == Some("__main__")))
    }

    /// `a.b.c` at `i`: its parts and the index after it.
    fn dotted(&self, toks: &[Token], mut i: usize) -> (Vec<&'a str>, usize) {
        let mut parts = Vec::new();
        while let Some(name) = self.name(toks, i) {
            parts.push(name);
            i += 1;
            let more = parts.len() < MAX_DOTTED_PARTS
                && is_op(toks, i, b'.')
                && self.name(toks, i + 1).is_some();
            if !more {
                break;
            }
            i += 1;
        }
        (parts, i)
    }

    /// `import a.b [as x], c` at `i`; returns the index after it.
    fn import_statement(&mut self, toks: &[Token], mut i: usize, context: Context) -> usize {
        i += 1;
        for _ in 0..MAX_IMPORT_NAMES {
            let Some(at) = toks.get(i).map(|t| t.start) else {
                break;
            };
            let (parts, next) = self.dotted(toks, i);
            if parts.is_empty() {
                break;
            }
            i = next;
            if self.name(toks, i) == Some("as") {
                i += 1;
                if self.name(toks, i).is_some() {
                    i += 1;
                }
            }
            if !context.never_runs {
                let why = format!("import {}", parts.join("."));
                self.import_absolute(&parts, &[], at, &why, context.optional);
            }
            if !is_op(toks, i, b',') {
                break;
            }
            i += 1;
        }
        i
    }

    /// `from [.]*a.b import (c [as x], d)` at `i`; returns the index after it.
    fn import_from_statement(&mut self, toks: &[Token], mut i: usize, context: Context) -> usize {
        let at = toks[i].start;
        i += 1;
        let mut level = 0usize;
        while is_op(toks, i, b'.') && level < MAX_RELATIVE_LEVEL {
            level += 1;
            i += 1;
        }
        let mut parts = Vec::new();
        if self.name(toks, i) != Some("import") {
            let (dotted, next) = self.dotted(toks, i);
            parts = dotted;
            i = next;
        }
        if self.name(toks, i) != Some("import") || (level == 0 && parts.is_empty()) {
            return i;
        }
        i += 1;
        let paren = is_op(toks, i, b'(');
        if paren {
            i += 1;
        }
        let mut names: Vec<&str> = Vec::new();
        for _ in 0..MAX_IMPORT_NAMES {
            if is_op(toks, i, b'*') {
                names.push("*");
                i += 1;
            } else if let Some(name) = self.name(toks, i) {
                names.push(name);
                i += 1;
                if self.name(toks, i) == Some("as") {
                    i += 1;
                    if self.name(toks, i).is_some() {
                        i += 1;
                    }
                }
            } else {
                break;
            }
            if !is_op(toks, i, b',') {
                break;
            }
            i += 1;
        }
        if paren && is_op(toks, i, b')') {
            i += 1;
        }
        if context.never_runs {
            return i;
        }
        let module = format!("{}{}", ".".repeat(level), parts.join("."));
        let shown: Vec<&str> = names.iter().take(4).copied().collect();
        let more = if names.len() > 4 { ", ..." } else { "" };
        let why = format!("from {module} import {}{more}", shown.join(", "));
        if level == 0 {
            self.import_absolute(&parts, &names, at, &why, context.optional);
        } else {
            self.import_relative(level, &parts, &names, at, &why, context.optional);
        }
        i
    }

    /// `importlib.import_module(...)` / `__import__(...)` at `i`.
    fn call(&mut self, toks: &[Token], i: usize, context: Context) {
        let Some(word) = self.name(toks, i) else {
            return;
        };
        if !is_op(toks, i + 1, b'(') {
            return;
        }
        if i > 0 && matches!(self.name(toks, i - 1), Some("def") | Some("class")) {
            return;
        }
        let mut shown = word.to_string();
        if i >= 2 && is_op(toks, i - 1, b'.') {
            // Only the real thing: `importlib.import_module`, not `self.import_module`.
            let owner = self.name(toks, i - 2);
            let ours =
                owner == Some("importlib") || (word == "__import__" && owner == Some("builtins"));
            if !ours {
                return;
            }
            shown = format!("{}.{word}", owner.unwrap_or_default());
        }
        let open = i + 1;
        let depth = toks[open].depth;
        let close = toks[open + 1..]
            .iter()
            .position(|t| (t.depth == depth && t.tok == Tok::Op(b')')) || t.tok == Tok::Newline)
            .map_or(toks.len(), |p| open + 1 + p);
        let args: Vec<&[Token]> = toks[open + 1..close]
            .split(|t| t.tok == Tok::Op(b',') && t.depth == depth + 1)
            .collect();
        let at = toks[i].start;
        let first = args.first().copied().unwrap_or(&[]);
        if first.is_empty() {
            return;
        }
        let first = match self.keyword(first) {
            Some(("name", value)) => value,
            _ => first,
        };
        let Some(name) = self.literal(first) else {
            let end = toks.get(close).map_or(self.source.len(), |t| t.start);
            let snippet = self.snippet(toks[open].end, end);
            self.unresolved(
                at,
                format!("{shown}({snippet}): module name is not a literal"),
            );
            return;
        };
        let why = format!("{shown}({name:?})");
        let level = name.len() - name.trim_start_matches('.').len();
        if level == 0 {
            let parts: Vec<&str> = name.split('.').collect();
            self.import_absolute(&parts, &[], at, &why, context.optional);
            return;
        }
        let mut package = PackageArg::None;
        if word == "import_module" {
            let second = args.iter().skip(1).find_map(|arg| match self.keyword(arg) {
                Some(("package", value)) => Some(value),
                Some(_) => None,
                None => Some(*arg),
            });
            if let Some(arg) = second {
                package = if let Some(named) = self.literal(arg) {
                    PackageArg::Named(named)
                } else if arg.len() == 1
                    && matches!(self.name(arg, 0), Some("__name__") | Some("__package__"))
                {
                    PackageArg::Own
                } else {
                    PackageArg::NotLiteral
                };
            }
        }
        let rest: Vec<&str> = name[level..].split('.').filter(|p| !p.is_empty()).collect();
        match package {
            PackageArg::Own => self.import_relative(level, &rest, &[], at, &why, context.optional),
            PackageArg::Named(package) => {
                let mut parts: Vec<&str> = package.split('.').collect();
                for _ in 1..level {
                    parts.pop();
                }
                if parts.is_empty() {
                    self.unresolved(at, format!("{why}: relative import beyond {package:?}"));
                    return;
                }
                parts.extend(rest);
                self.import_absolute(&parts, &[], at, &why, context.optional);
            }
            PackageArg::None => {
                self.unresolved(at, format!("{why}: relative name without a package"));
            }
            PackageArg::NotLiteral => {
                self.unresolved(at, format!("{why}: the package is not a literal"));
            }
        }
    }

    /// `kw=value` tokens of one call argument.
    fn keyword<'t>(&self, arg: &'t [Token]) -> Option<(&'a str, &'t [Token])> {
        let name = self.name(arg, 0)?;
        (arg.len() > 2 && is_op(arg, 1, b'=')).then(|| (name, &arg[2..]))
    }

    /// The value of an argument made only of plain string literals (implicitly concatenated).
    fn literal(&self, arg: &[Token]) -> Option<String> {
        if arg.is_empty() {
            return None;
        }
        let mut value = String::new();
        for tok in arg {
            match tok.tok {
                Tok::Str {
                    from,
                    to,
                    fstring: false,
                } => value.push_str(self.source.get(from..to)?),
                _ => return None,
            }
        }
        Some(value)
    }

    fn snippet(&self, from: usize, to: usize) -> String {
        let text = self.source.get(from..to.max(from)).unwrap_or("");
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if flat.chars().count() > 60 {
            let cut: String = flat.chars().take(57).collect();
            format!("{cut}...")
        } else {
            flat
        }
    }

    /// Imports `parts` one by one from `dirs` (the search path of the first part), keeping
    /// every file on the way.
    fn import_chain(&mut self, dirs: Vec<Loc>, parts: &[&str], absolute: bool, why: &str) -> Chain {
        let mut dirs = dirs;
        let mut last: Option<Module> = None;
        for (k, part) in parts.iter().enumerate() {
            let is_last = k + 1 == parts.len();
            let mut found = self.paths.find_in(self.view, &dirs, part);
            if found.is_none() && absolute {
                if k == 0 {
                    if let Some(script_dir) = self.script_dir.clone() {
                        found = self.paths.find_in(self.view, &[script_dir], part);
                    }
                } else if matches!(last, Some(Module::Package { .. })) {
                    found = self.extend_path(&parts[..k], part);
                }
            }
            let Some(module) = found else {
                return Chain::Missing(k);
            };
            match &module {
                Module::File(loc) => {
                    self.keep(loc, why);
                    if !is_last {
                        return Chain::Attribute;
                    }
                }
                Module::Package { dir, init } => {
                    self.keep(init, why);
                    dirs = vec![dir.clone()];
                }
                // Left to the caller: the directories are needed only when nothing in them is.
                Module::Namespace(portions) => dirs = portions.clone(),
            }
            last = Some(module);
        }
        match last {
            Some(module) => Chain::Module(module),
            None => Chain::Missing(0),
        }
    }

    /// `pkgutil.extend_path`-style packages (`__path__` extended over every sys.path entry
    /// holding the same package dir): `part` in another root's copy of `package`.
    fn extend_path(&self, package: &[&str], part: &str) -> Option<Module> {
        for root in &self.search {
            let mut dir = root.clone();
            let mut complete = true;
            for name in package {
                match lookup(self.view, &dir, name) {
                    Some((Kind::Dir, sub)) => dir = sub,
                    _ => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                if let Some(module) = self.paths.find_in(self.view, &[dir], part) {
                    return Some(module);
                }
            }
        }
        None
    }

    /// The names of a `from M import a, b`: each is kept if it is a submodule of package `M`
    /// (otherwise it is an attribute and needs nothing). A namespace package `M` with no
    /// submodule kept needs its directories to exist.
    fn import_names(&mut self, module: &Module, shown: &str, names: &[&str], why: &str) {
        let dirs = match module {
            Module::Package { dir, .. } => vec![dir.clone()],
            Module::Namespace(portions) => portions.clone(),
            Module::File(_) => return,
        };
        let mut any = false;
        for name in names.iter().filter(|n| **n != "*") {
            if let Some(sub) = self.paths.find_in(self.view, &dirs, name) {
                let why = format!("from {shown} import {name}");
                self.keep_module(&sub, &why);
                any = true;
            }
        }
        if !any && matches!(module, Module::Namespace(_)) {
            self.keep_module(module, why);
        }
    }

    fn import_absolute(
        &mut self,
        parts: &[&str],
        names: &[&str],
        at: usize,
        why: &str,
        optional: bool,
    ) {
        let Some(&top) = parts.first() else {
            return;
        };
        let dotted = parts.join(".");
        if parts.iter().any(|p| !is_identifier(p)) {
            self.unresolved(at, format!("{why}: {dotted:?} is not a module name"));
            return;
        }
        let search = self.search.clone();
        match self.import_chain(search, parts, true, why) {
            Chain::Module(module) => {
                self.imports_found += 1;
                self.import_names(&module, &dotted, names, why)
            }
            Chain::Attribute => self.imports_found += 1,
            Chain::Missing(k) => {
                self.imports_missing += 1;
                let expected = k == 0
                    && (BUILTIN_MODULES.contains(&top)
                        || OTHER_PLATFORM_MODULES.contains(&top)
                        || PYTHON2_MODULES.contains(&top));
                if !expected && !optional {
                    let missing = parts[..=k.min(parts.len() - 1)].join(".");
                    self.unresolved(at, format!("{why}: no module {missing} in the image"));
                }
            }
        }
    }

    fn import_relative(
        &mut self,
        level: usize,
        parts: &[&str],
        names: &[&str],
        at: usize,
        why: &str,
        optional: bool,
    ) {
        // `.` is the file's own package (its dir), each further dot one level up.
        let mut base = self.file_dir.real.clone();
        for _ in 1..level {
            if base == "/" {
                self.unresolved(at, format!("{why}: relative import beyond the top level"));
                return;
            }
            base = parent_of(&base).to_string();
        }
        let base = Loc::real(&base);
        let shown = format!("{}{}", ".".repeat(level), parts.join("."));
        let module = if parts.is_empty() {
            match self.paths.module_file(self.view, &base, "__init__") {
                Some(init) => {
                    self.keep(&init, why);
                    Module::Package { dir: base, init }
                }
                None => Module::Namespace(vec![base]),
            }
        } else {
            match self.import_chain(vec![base], parts, false, why) {
                Chain::Module(module) => {
                    self.imports_found += 1;
                    module
                }
                Chain::Attribute => return,
                Chain::Missing(k) => {
                    self.imports_missing += 1;
                    if !optional {
                        let missing = format!("{}{}", ".".repeat(level), parts[..=k].join("."));
                        self.unresolved(
                            at,
                            format!("{why}: no module {missing} relative to {}", self.file),
                        );
                    }
                    return;
                }
            }
        };
        self.import_names(&module, &shown, names, why);
    }
}

fn is_op(toks: &[Token], i: usize, op: u8) -> bool {
    toks.get(i).is_some_and(|t| t.tok == Tok::Op(op))
}

fn is_code_file(name: &str) -> bool {
    CODE_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) || name.contains(".so.")
}

/// The data files of the package in `dir` (real path): every non-code file in it and in its
/// subdirectories that are not packages themselves, tests excluded; `None` past the bounds.
fn package_data<V: ImageView + ?Sized>(view: &V, paths: &Paths, dir: &str) -> Option<Vec<String>> {
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut stack = vec![(dir.to_string(), 0usize)];
    let mut dirs_seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        dirs_seen += 1;
        if dirs_seen > PACKAGE_DATA_MAX_DIRS {
            return None;
        }
        for entry in view.children(&dir) {
            let name = basename(&entry.path);
            match &entry.kind {
                EntryKind::Dir => {
                    let skip = depth + 1 > MAX_WALK_DEPTH
                        || NON_DATA_DIRS.contains(&name)
                        || name.starts_with('.')
                        || paths
                            .module_file(view, &Loc::real(&entry.path), "__init__")
                            .is_some();
                    if !skip {
                        stack.push((entry.path.clone(), depth + 1));
                    }
                }
                EntryKind::File | EntryKind::Hardlink { .. } | EntryKind::Symlink { .. } => {
                    if is_code_file(name) {
                        continue;
                    }
                    // A symlink is kept when it leads to a file (the closure follows it).
                    let size = match &entry.kind {
                        EntryKind::Symlink { .. } => match kind_at(view, &entry.path) {
                            Some((Kind::File, real)) => view.entry(&real).map_or(0, |e| e.size),
                            _ => continue,
                        },
                        _ => entry.size,
                    };
                    bytes = bytes.saturating_add(size);
                    files.push(entry.path.clone());
                    if bytes > PACKAGE_DATA_MAX_BYTES || files.len() > PACKAGE_DATA_MAX_FILES {
                        return None;
                    }
                }
                _ => {}
            }
        }
    }
    files.sort();
    Some(files)
}

/// Every file (and symlink, not followed) under directory `dir` (real), bounded.
fn walk_all<V: ImageView + ?Sized>(view: &V, dir: &str, files: &mut Vec<String>) {
    let mut stack = vec![(dir.to_string(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        for entry in view.children(&dir) {
            if files.len() >= PACKAGE_MAX_FILES {
                return;
            }
            match entry.kind {
                EntryKind::Dir if depth < MAX_WALK_DEPTH => {
                    stack.push((entry.path.clone(), depth + 1))
                }
                EntryKind::Dir => {}
                _ => files.push(entry.path.clone()),
            }
        }
    }
}

/// The distributions installed from a local source directory ([`Dist::local_source`]): the
/// app, when its Dockerfile does `pip install .` (and perhaps removes the source). Each with
/// the directory it came from and its files (what RECORD lists and the image has).
pub fn local_distributions(paths: &Paths) -> Vec<LocalPackage> {
    paths
        .dists
        .iter()
        .filter_map(|dist| {
            Some(LocalPackage {
                source: dist.local_source.clone()?,
                package: Package {
                    name: dist.name.clone(),
                    files: dist.files.clone(),
                },
            })
        })
        .collect()
}

/// The distribution `file` (a real path) belongs to, with all its files: what its
/// `*.dist-info/RECORD` (or `installed-files.txt`) lists, or, for distributions without one
/// (Debian's), its top-level packages and metadata; a file in a site dir with no
/// distribution gives its top-level package. Stdlib and app files give `None`.
pub fn package_files<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
) -> Option<Package> {
    let file = normalize_lexically(file);
    if let Some(index) = paths.dist_of(&file) {
        return Some(dist_package(view, paths, index));
    }
    let (site, top) = paths.site_top(&file)?;
    let top_path = join(site, top);
    let mut files = Vec::new();
    match view.entry(&top_path).map(|e| &e.kind) {
        Some(EntryKind::Dir) => walk_all(view, &top_path, &mut files),
        Some(_) => files.push(top_path),
        None => return None,
    }
    files.sort();
    Some(Package {
        name: module_stem(top).to_string(),
        files,
    })
}

fn dist_package<V: ImageView + ?Sized>(view: &V, paths: &Paths, index: usize) -> Package {
    let dist = &paths.dists[index];
    let mut files: Vec<String> = if dist.files.is_empty() {
        let mut files = Vec::new();
        let site_names = child_names(view, &dist.site);
        for top in &dist.top_level {
            let prefix = format!("{top}.");
            for name in site_names
                .iter()
                .filter(|n| *n == top || n.starts_with(&prefix))
            {
                let path = join(&dist.site, name);
                match view.entry(&path).map(|e| &e.kind) {
                    Some(EntryKind::Dir) => walk_all(view, &path, &mut files),
                    Some(_) => files.push(path),
                    None => {}
                }
            }
        }
        match view.entry(&dist.meta).map(|e| &e.kind) {
            Some(EntryKind::Dir) => walk_all(view, &dist.meta, &mut files),
            Some(_) => files.push(dist.meta.clone()),
            None => {}
        }
        files
    } else {
        dist.files.clone()
    };
    files.sort();
    files.dedup();
    Package {
        name: dist.name.clone(),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    const SITE: &str = "/app/venv/lib/python3.11/site-packages";
    const RECORD: &str = "\
flask/__init__.py,sha256=abc,2345
flask/__pycache__/__init__.cpython-311.pyc,,
flask/json/__init__.py,sha256=abc,100
flask/json/provider.py,sha256=abc,100
flask/py.typed,sha256=abc,0
flask-3.0.3.dist-info/METADATA,sha256=abc,3000
flask-3.0.3.dist-info/RECORD,,
flask-3.0.3.dist-info/entry_points.txt,sha256=abc,40
\"flask-3.0.3.dist-info/odd,name.txt\",sha256=abc,1
../../../bin/flask,sha256=abc,230
";

    /// Debian bookworm's python3.11 with a venv at /app/venv holding Flask.
    fn bookworm() -> FakeImage {
        let mut image = FakeImage::new();
        image.executable("/usr/bin/python3.11", b"\x7fELF");
        image.symlink("/usr/bin/python3", "python3.11");
        image.symlink("/lib", "usr/lib");
        image.dir("/usr/lib/x86_64-linux-gnu");
        for module in ["os", "subprocess", "re", "__future__", "typing"] {
            image.file(&format!("/usr/lib/python3.11/{module}.py"), b"");
        }
        image.file("/usr/lib/python3.11/__pycache__/os.cpython-311.pyc", b"");
        for file in [
            "json/__init__.py",
            "json/decoder.py",
            "asyncio/__init__.py",
            "asyncio/subprocess.py",
            "asyncio/base_subprocess.py",
            "importlib/__init__.py",
        ] {
            image.file(&format!("/usr/lib/python3.11/{file}"), b"");
        }
        image.file(
            "/usr/lib/python3.11/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
            b"\x7fELF",
        );
        image.file("/usr/lib/python3/dist-packages/apt/__init__.py", b"");
        image.file(
            "/app/venv/pyvenv.cfg",
            b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
        );
        image.symlink("/app/venv/bin/python", "/usr/bin/python3");
        image.symlink("/app/venv/lib64", "lib");
        image.executable("/app/venv/bin/flask", b"#!/app/venv/bin/python\n");
        for file in [
            "flask/__init__.py",
            "flask/__pycache__/__init__.cpython-311.pyc",
            "flask/json/__init__.py",
            "flask/json/provider.py",
            "flask/py.typed",
            "flask-3.0.3.dist-info/METADATA",
            "flask-3.0.3.dist-info/entry_points.txt",
            "flask-3.0.3.dist-info/odd,name.txt",
        ] {
            image.file(&format!("{SITE}/{file}"), b"x");
        }
        image.file(
            &format!("{SITE}/flask-3.0.3.dist-info/RECORD"),
            RECORD.as_bytes(),
        );
        image.file("/app/app.py", b"");
        image
    }

    fn env() -> Vec<String> {
        vec!["PATH=/app/venv/bin:/usr/local/bin:/usr/bin:/bin".to_string()]
    }

    fn scan(image: &FakeImage, file: &str, source: &str) -> Found {
        let paths = Paths::discover(image, &env(), "/app");
        dependencies(image, &paths, file, source)
    }

    /// The kept paths, each once (a path loaded both at load and later is listed twice).
    fn kept(found: &Found) -> Vec<&str> {
        let mut seen = HashSet::new();
        found
            .paths
            .iter()
            .map(|d| d.path.as_str())
            .filter(|path| seen.insert(*path))
            .collect()
    }

    fn roots(paths: &Paths) -> Vec<&str> {
        paths.roots.iter().map(|r| r.path.as_str()).collect()
    }

    #[test]
    fn sys_path_of_debian_python_with_a_venv_found_via_pyvenv_cfg() {
        let image = bookworm();
        let paths = Paths::discover(&image, &env(), "/app");
        assert_eq!(
            roots(&paths),
            [
                "/app",
                "/usr/lib/python3.11",
                "/usr/lib/python3.11/lib-dynload",
                SITE,
                "/usr/lib/python3/dist-packages",
            ]
        );
        assert_eq!(paths.cache_tags, ["cpython-311"]);
        assert_eq!(
            paths.suffixes[..3],
            [".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so"]
        );
        // The venv is found from the usual places even without PATH naming it.
        let without_path = Paths::discover(&image, &["PATH=/usr/bin".to_string()], "/");
        assert!(roots(&without_path).contains(&SITE));
    }

    #[test]
    fn venv_named_by_virtual_env_is_found() {
        let mut image = FakeImage::new();
        image.file("/srv/env/x/pyvenv.cfg", b"home = /usr/local/bin\n");
        image.file("/srv/env/x/lib/python3.12/site-packages/six.py", b"");
        let env = vec!["VIRTUAL_ENV=/srv/env/x".to_string()];
        let paths = Paths::discover(&image, &env, "/");
        assert!(roots(&paths).contains(&"/srv/env/x/lib/python3.12/site-packages"));
        assert_eq!(paths.cache_tags, ["cpython-312"]);
        let found = dependencies(&image, &paths, "/app.py", "import six\n");
        assert_eq!(
            kept(&found),
            ["/srv/env/x/lib/python3.12/site-packages/six.py"]
        );
    }

    #[test]
    fn pythonpath_entries_are_searched_first() {
        let mut image = bookworm();
        image.file("/opt/lib/helpers/__init__.py", b"");
        image.file("/app/src/shared.py", b"");
        let env = vec!["PYTHONPATH=/opt/lib:src::/missing".to_string()];
        let paths = Paths::discover(&image, &env, "/app");
        assert_eq!(roots(&paths)[..3], ["/opt/lib", "/app/src", "/app"]);
        let found = dependencies(&image, &paths, "/app/app.py", "import helpers, shared\n");
        assert_eq!(
            kept(&found),
            ["/opt/lib/helpers/__init__.py", "/app/src/shared.py"]
        );
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn pth_file_adds_its_directories_and_skips_import_lines() {
        let mut image = bookworm();
        image.file(
            &format!("{SITE}/extra.pth"),
            b"# comment\n../../../../src\nimport os; os.environ\n/opt/plugins\n/nowhere\n",
        );
        image.file("/app/src/mylib/__init__.py", b"");
        image.file("/opt/plugins/plug.py", b"");
        let paths = Paths::discover(&image, &env(), "/");
        let roots = roots(&paths);
        let site = roots.iter().position(|r| *r == SITE).unwrap();
        assert_eq!(roots[site + 1..site + 3], ["/app/src", "/opt/plugins"]);
        let found = dependencies(&image, &paths, "/app/app.py", "import mylib\nimport plug\n");
        assert_eq!(
            kept(&found),
            ["/app/src/mylib/__init__.py", "/opt/plugins/plug.py"]
        );
    }

    #[test]
    fn import_keeps_every_init_on_the_way_with_bytecode_and_metadata() {
        let image = bookworm();
        let found = scan(&image, "/app/app.py", "import flask.json.provider as p\n");
        assert_eq!(
            kept(&found),
            [
                format!("{SITE}/flask/__init__.py").as_str(),
                &format!("{SITE}/flask/__pycache__/__init__.cpython-311.pyc"),
                &format!("{SITE}/flask-3.0.3.dist-info/METADATA"),
                &format!("{SITE}/flask-3.0.3.dist-info/entry_points.txt"),
                &format!("{SITE}/flask/json/__init__.py"),
                &format!("{SITE}/flask/json/provider.py"),
            ]
        );
        assert_eq!(found.paths[0].why, "import flask.json.provider");
        assert!(found.paths[2].why.contains("flask==3.0.3 metadata"));
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn multi_line_parenthesized_from_import_keeps_submodules_not_attributes() {
        let image = bookworm();
        let source =
            "from flask import (\n    json,  # submodule\n    Flask,\n    request as r,\n)\n";
        let found = scan(&image, "/app/app.py", source);
        let kept = kept(&found);
        assert!(kept.contains(&format!("{SITE}/flask/__init__.py").as_str()));
        assert!(kept.contains(&format!("{SITE}/flask/json/__init__.py").as_str()));
        assert_eq!(kept.len(), 5, "{kept:?}");
        let json = found
            .paths
            .iter()
            .find(|d| d.path.ends_with("json/__init__.py"));
        assert_eq!(json.unwrap().why, "from flask import json");
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn from_dot_import_resolves_against_the_files_package() {
        let mut image = FakeImage::new();
        image.file("/app/pkg/__init__.py", b"");
        image.file("/app/pkg/views.py", b"");
        image.file("/app/pkg/models/__init__.py", b"");
        let source = "from . import views, models, helper_attr\nfrom .views import index\n";
        let found = dependencies(&image, &Paths::default(), "/app/pkg/__init__.py", source);
        assert_eq!(
            kept(&found),
            ["/app/pkg/views.py", "/app/pkg/models/__init__.py"]
        );
        assert!(found.unresolved.is_empty());
        let missing = dependencies(
            &image,
            &Paths::default(),
            "/app/pkg/views.py",
            "from .nope import x\n",
        );
        assert_eq!(missing.unresolved.len(), 1);
        assert!(missing.unresolved[0].message.contains("no module .nope"));
    }

    #[test]
    fn from_dot_dot_module_import_goes_up_one_package() {
        let mut image = FakeImage::new();
        image.file("/app/proj/__init__.py", b"");
        image.file("/app/proj/api/__init__.py", b"");
        image.file("/app/proj/api/routes.py", b"");
        image.file("/app/proj/db/__init__.py", b"");
        image.file("/app/proj/db/session.py", b"");
        let found = dependencies(
            &image,
            &Paths::default(),
            "/app/proj/api/routes.py",
            "from ..db.session import Session\nfrom ... import proj\n",
        );
        let kept = kept(&found);
        // The enclosing packages of routes.py first, then what the imports need.
        assert_eq!(
            kept,
            [
                "/app/proj/api/__init__.py",
                "/app/proj/__init__.py",
                "/app/proj/db/__init__.py",
                "/app/proj/db/session.py",
            ]
        );
        assert_eq!(found.paths[3].why, "from ..db.session import Session");
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn import_inside_a_function_and_after_colon_or_semicolon_counts() {
        let mut image = FakeImage::new();
        for name in ["a", "b", "c", "d", "e"] {
            image.file(&format!("/app/{name}.py"), b"");
        }
        let source = "\
def handler():
    import a
    return a.run()

if True: import b
x = 1; import c
class K:
    def m(self):
        from d import thing
lazy = lambda: __import__('e')
";
        let found = dependencies(&image, &Paths::default(), "/app/main.py", source);
        assert_eq!(
            kept(&found),
            [
                "/app/a.py",
                "/app/b.py",
                "/app/c.py",
                "/app/d.py",
                "/app/e.py"
            ]
        );
    }

    #[test]
    fn imports_in_comments_docstrings_and_strings_do_not_count() {
        let image = FakeImage::new();
        let source = r#"'''Module doc.
import nope_doc
'''
# import nope_comment
x = "import nope_str"; y = 'from nope import x'
z = rb"import nope_bytes\" still"
w = f"{x['import nope_f']} import nope_f2 {y:>{10}}"
v = f'''
import nope_triple_f {x}
'''
u = """
from nope_triple import y
"""
s = "\
import nope_continued"
"#;
        let found = dependencies(&image, &Paths::default(), "/app/main.py", source);
        assert_eq!(found, Found::default());
    }

    #[test]
    fn yield_from_and_raise_from_do_not_count() {
        let image = FakeImage::new();
        let source = "\
def gen():
    yield from inner()
    x = yield from (a)
try:
    pass
except E as e:
    raise Other('x') from e
";
        let found = dependencies(&image, &Paths::default(), "/app/main.py", source);
        assert_eq!(found, Found::default());
    }

    #[test]
    fn backslash_continuation_and_brackets_keep_one_statement() {
        let mut image = FakeImage::new();
        image.file("/app/alpha.py", b"");
        image.file("/app/beta.py", b"");
        let source = "import alpha, \\\n    beta\nx = (1,\nimport_me)\n";
        let found = dependencies(&image, &Paths::default(), "/app/main.py", source);
        assert_eq!(kept(&found), ["/app/alpha.py", "/app/beta.py"]);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn import_module_with_a_literal_resolves_and_with_a_variable_is_unresolved() {
        let image = bookworm();
        let source = "\
import importlib
mod = importlib.import_module('flask.json')
rel = importlib.import_module('.provider', package='flask.json')
name = 'x'
dyn = importlib.import_module(name)
also = __import__(f'plugins.{name}')
obj.import_module(name)
def import_module(name): pass
";
        let found = scan(&image, "/app/app.py", source);
        let kept = kept(&found);
        assert!(kept.contains(&"/usr/lib/python3.11/importlib/__init__.py"));
        assert!(kept.contains(&format!("{SITE}/flask/json/__init__.py").as_str()));
        assert!(kept.contains(&format!("{SITE}/flask/json/provider.py").as_str()));
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [5, 6], "{:?}", found.unresolved);
        assert_eq!(
            found.unresolved[0].message,
            "importlib.import_module(name): module name is not a literal"
        );
    }

    #[test]
    fn extension_module_so_is_found() {
        let mut image = bookworm();
        image.file(
            &format!("{SITE}/markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"),
            b"\x7fELF",
        );
        image.file(&format!("{SITE}/markupsafe/__init__.py"), b"");
        image.file(&format!("{SITE}/_cffi_backend.abi3.so"), b"\x7fELF");
        let found = scan(
            &image,
            "/app/app.py",
            "import _csv\nfrom markupsafe import _speedups\nimport _cffi_backend\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/lib/python3.11/lib-dynload/_csv.cpython-311-x86_64-linux-gnu.so",
                &format!("{SITE}/markupsafe/__init__.py"),
                &format!("{SITE}/markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"),
                &format!("{SITE}/_cffi_backend.abi3.so"),
            ]
        );
    }

    #[test]
    fn extension_module_with_any_tag_is_found_when_no_interpreter_is_known() {
        let mut image = FakeImage::new();
        image.file("/app/fast.cpython-39-aarch64-linux-gnu.so", b"\x7fELF");
        let found = dependencies(&image, &Paths::default(), "/app/main.py", "import fast\n");
        assert_eq!(kept(&found), ["/app/fast.cpython-39-aarch64-linux-gnu.so"]);
    }

    #[test]
    fn namespace_package_spans_roots() {
        let mut image = bookworm();
        image.file(&format!("{SITE}/google/protobuf/__init__.py"), b"");
        image.file(
            "/usr/lib/python3/dist-packages/google/auth/__init__.py",
            b"",
        );
        image.dir("/usr/lib/python3/dist-packages/zope");
        let found = scan(
            &image,
            "/app/app.py",
            "import google.protobuf\nfrom google import auth\nimport zope\n",
        );
        assert_eq!(
            kept(&found),
            [
                format!("{SITE}/google/protobuf/__init__.py").as_str(),
                "/usr/lib/python3/dist-packages/google/auth/__init__.py",
                "/usr/lib/python3/dist-packages/zope",
            ]
        );
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn regular_module_later_on_the_path_beats_a_namespace_portion() {
        let mut image = bookworm();
        image.dir("/app/redis");
        image.file(&format!("{SITE}/redis/__init__.py"), b"");
        let found = scan(&image, "/app/app.py", "import redis\n");
        assert_eq!(kept(&found), [format!("{SITE}/redis/__init__.py")]);
    }

    #[test]
    fn optional_import_in_try_is_not_unresolved_but_a_plain_one_is() {
        let image = bookworm();
        let source = "\
try:
    import simplejson as json
except ImportError:
    import json
try: import ujson
except ImportError: ujson = None
with contextlib.suppress(ImportError):
    import orjson
import missing_thing
";
        let found = scan(&image, "/app/app.py", source);
        assert!(kept(&found).contains(&"/usr/lib/python3.11/json/__init__.py"));
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 9);
        assert_eq!(
            found.unresolved[0].message,
            "import missing_thing: no module missing_thing in the image"
        );
    }

    #[test]
    fn an_import_error_fallback_after_an_import_that_resolved_is_lazy_but_after_a_missing_one_runs()
    {
        let mut image = bookworm();
        image.file("/usr/lib/python3.11/_pydecimal.py", b"");
        let source = "\
try:
    from _csv import *
except ImportError:
    from _pydecimal import *
try:
    import simplejson as json
except (ImportError, AttributeError):
    import json
";
        let found = scan(&image, "/usr/lib/python3.11/decimal.py", source);
        let when = |suffix: &str| {
            found
                .paths
                .iter()
                .filter(|d| d.path.ends_with(suffix))
                .map(|d| d.when)
                .collect::<Vec<_>>()
        };
        // _csv is there: the pure-Python fallback runs only if loading it fails.
        assert_eq!(when("/_pydecimal.py"), [When::Later]);
        assert_eq!(
            when("/_csv.cpython-311-x86_64-linux-gnu.so"),
            [When::OnLoad]
        );
        // simplejson is not: the fallback is what runs when the module loads.
        assert_eq!(when("/json/__init__.py"), [When::OnLoad]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn builtin_platform_and_python2_modules_need_nothing() {
        let image = bookworm();
        let source = "import sys, posix, _io, marshal, itertools\nimport winreg, msvcrt, _winapi, nt\nimport cPickle\n";
        let found = scan(&image, "/app/app.py", source);
        assert_eq!(found, Found::default());
    }

    #[test]
    fn platform_and_version_checks_make_imports_optional() {
        let image = bookworm();
        let source = "\
if sys.platform == 'win32':
    import pywin_helpers
elif sys.platform == 'darwin':
    import mac_helpers
else:
    import linux_helpers_missing
if sys.version_info >= (3, 8):
    from importlib import metadata
else:
    import importlib_metadata as metadata
import after_the_chain
";
        let found = scan(&image, "/app/app.py", source);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [11], "{:?}", found.unresolved);
    }

    #[test]
    fn type_checking_imports_never_run() {
        let image = bookworm();
        let source = "\
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from flask import Flask
    import stubs_only
else:
    import runtime_missing
";
        let found = scan(&image, "/app/app.py", source);
        assert_eq!(kept(&found), ["/usr/lib/python3.11/typing.py"]);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [6]);
    }

    #[test]
    fn module_in_a_package_does_not_shadow_the_stdlib() {
        let image = bookworm();
        let found = scan(
            &image,
            "/usr/lib/python3.11/asyncio/base_subprocess.py",
            "import subprocess\nfrom . import subprocess as sp\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/lib/python3.11/asyncio/__init__.py",
                "/usr/lib/python3.11/subprocess.py",
                "/usr/lib/python3.11/asyncio/subprocess.py",
            ]
        );
    }

    #[test]
    fn a_script_inside_a_package_still_sees_its_own_directory() {
        let mut image = FakeImage::new();
        image.file("/app/tool/__init__.py", b"");
        image.file("/app/tool/util.py", b"");
        let found = dependencies(
            &image,
            &Paths::default(),
            "/app/tool/run.py",
            "import util\n",
        );
        assert_eq!(kept(&found), ["/app/tool/__init__.py", "/app/tool/util.py"]);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn import_of_a_module_attribute_path_is_not_unresolved() {
        let image = bookworm();
        let found = scan(
            &image,
            "/app/app.py",
            "import os.path\nfrom os import path\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/lib/python3.11/os.py",
                "/usr/lib/python3.11/__pycache__/os.cpython-311.pyc",
            ]
        );
        assert!(found.unresolved.is_empty());
        let missing = scan(&image, "/app/app.py", "import flask.nope\n");
        assert_eq!(missing.unresolved.len(), 1);
        assert!(missing.unresolved[0].message.contains("flask.nope"));
    }

    #[test]
    fn package_data_is_kept_with_the_packages_init() {
        let mut image = bookworm();
        let pkg = format!("{SITE}/werkzeug/debug");
        image.file(&format!("{SITE}/werkzeug/__init__.py"), b"");
        image.file(&format!("{pkg}/__init__.py"), b"");
        image.file(&format!("{pkg}/tbtools.py"), b"");
        image.file(&format!("{pkg}/shared/console.png"), b"png");
        image.file(&format!("{pkg}/shared/debugger.js"), b"js");
        image.file(&format!("{pkg}/shared/style.css"), b"css");
        image.file(&format!("{pkg}/shared/__pycache__/x.cpython-311.pyc"), b"");
        image.file(&format!("{pkg}/tests/fixture.txt"), b"no");
        image.file(&format!("{pkg}/sub/__init__.py"), b"");
        image.file(&format!("{pkg}/sub/sub_data.txt"), b"sub's own");
        let found = scan(&image, &format!("{pkg}/__init__.py"), "");
        let data: Vec<&str> = found
            .paths
            .iter()
            .filter(|d| d.why == "package data of werkzeug.debug")
            .map(|d| d.path.as_str())
            .collect();
        assert_eq!(
            data,
            [
                format!("{pkg}/shared/console.png").as_str(),
                &format!("{pkg}/shared/debugger.js"),
                &format!("{pkg}/shared/style.css"),
            ]
        );
        assert!(kept(&found).contains(&format!("{SITE}/werkzeug/__init__.py").as_str()));
        // A module that is not an __init__ brings no data.
        let module = scan(&image, &format!("{pkg}/tbtools.py"), "");
        assert!(!kept(&module).iter().any(|p| p.ends_with(".png")));
    }

    #[test]
    fn package_data_over_the_bound_is_skipped() {
        let mut image = FakeImage::new();
        image.file("/app/big/__init__.py", b"");
        image.file("/app/big/small.txt", b"x");
        let blob = vec![0u8; (PACKAGE_DATA_MAX_BYTES + 1) as usize];
        image.file("/app/big/data/blob.bin", &blob);
        let found = dependencies(&image, &Paths::default(), "/app/big/__init__.py", "");
        assert_eq!(found, Found::default());
    }

    #[test]
    fn package_files_of_a_distribution_come_from_its_record() {
        let image = bookworm();
        let paths = Paths::discover(&image, &env(), "/app");
        let package = package_files(&image, &paths, &format!("{SITE}/flask/json/provider.py"));
        let package = package.unwrap();
        assert_eq!(package.name, "flask==3.0.3");
        let mut expected: Vec<String> = [
            "flask/__init__.py",
            "flask/__pycache__/__init__.cpython-311.pyc",
            "flask/json/__init__.py",
            "flask/json/provider.py",
            "flask/py.typed",
            "flask-3.0.3.dist-info/METADATA",
            "flask-3.0.3.dist-info/RECORD",
            "flask-3.0.3.dist-info/entry_points.txt",
            "flask-3.0.3.dist-info/odd,name.txt",
        ]
        .iter()
        .map(|f| format!("{SITE}/{f}"))
        .collect();
        expected.push("/app/venv/bin/flask".to_string());
        expected.sort();
        assert_eq!(package.files, expected);
        // The console script belongs to it too; stdlib and app files to nothing.
        let script = package_files(&image, &paths, "/app/venv/bin/flask").unwrap();
        assert_eq!(script.name, "flask==3.0.3");
        assert_eq!(
            package_files(&image, &paths, "/usr/lib/python3.11/os.py"),
            None
        );
        assert_eq!(package_files(&image, &paths, "/app/app.py"), None);
    }

    #[test]
    fn package_files_of_a_debian_package_without_record_use_its_top_level() {
        let mut image = bookworm();
        let site = "/usr/lib/python3/dist-packages";
        image.file(&format!("{site}/jwt/__init__.py"), b"");
        image.file(&format!("{site}/jwt/api_jwt.py"), b"");
        image.file(
            &format!("{site}/PyJWT-2.6.0.egg-info/PKG-INFO"),
            b"Version: 2.6.0\n",
        );
        image.file(
            &format!("{site}/PyJWT-2.6.0.egg-info/top_level.txt"),
            b"jwt\n",
        );
        image.file(&format!("{site}/loner.py"), b"");
        let paths = Paths::discover(&image, &env(), "/app");
        let package = package_files(&image, &paths, &format!("{site}/jwt/api_jwt.py")).unwrap();
        assert_eq!(package.name, "PyJWT==2.6.0");
        assert_eq!(
            package.files,
            [
                format!("{site}/PyJWT-2.6.0.egg-info/PKG-INFO"),
                format!("{site}/PyJWT-2.6.0.egg-info/top_level.txt"),
                format!("{site}/jwt/__init__.py"),
                format!("{site}/jwt/api_jwt.py"),
            ]
        );
        // Its PKG-INFO is what importlib.metadata reads.
        let found = scan(&image, "/app/app.py", "import jwt\n");
        assert!(kept(&found).contains(&format!("{site}/PyJWT-2.6.0.egg-info/PKG-INFO").as_str()));
        let loner = package_files(&image, &paths, &format!("{site}/loner.py")).unwrap();
        assert_eq!(loner.name, "loner");
        assert_eq!(loner.files, [format!("{site}/loner.py")]);
    }

    #[test]
    fn sourceless_pyc_module_is_found() {
        let mut image = FakeImage::new();
        image.file("/app/compiled.pyc", b"");
        let found = dependencies(
            &image,
            &Paths::default(),
            "/app/main.py",
            "import compiled\n",
        );
        assert_eq!(kept(&found), ["/app/compiled.pyc"]);
    }

    #[test]
    fn packages_through_symlinks_keep_the_runtime_spelling() {
        let mut image = bookworm();
        image.file("/src/mylib/__init__.py", b"");
        image.symlink(&format!("{SITE}/mylib"), "/src/mylib");
        let found = scan(&image, "/app/app.py", "import mylib\n");
        assert_eq!(kept(&found), [format!("{SITE}/mylib/__init__.py")]);
    }

    #[test]
    fn imports_that_run_only_when_a_function_does_are_lazy() {
        let image = bookworm();
        let source = "import os\n\
            class Server:\n    import re\n\n    def serve(self):\n        import subprocess\n\
            \n\
            async def fetch():\n    import asyncio\n\
            def one_liner(): import typing\n\
            def later():\n    import json  # also at the top\n\
            import json\n\
            if __name__ == \"__main__\":\n    import json.decoder\n";
        let found = scan(&image, "/app/app.py", source);
        let when = |name: &str| {
            let path = format!("/usr/lib/python3.11/{name}");
            let mut entries: Vec<When> = found
                .paths
                .iter()
                .filter(|d| d.path == path)
                .map(|d| d.when)
                .collect();
            entries.sort();
            entries
        };
        let lazy = |name: &str| {
            let entries = when(name);
            assert_eq!(entries.len(), 1, "{name}: {entries:?}");
            entries[0] == When::Later
        };
        // Module level and class bodies run when the module is imported.
        assert!(!lazy("os.py"));
        assert!(!lazy("re.py"));
        // Imported both at the top and in a function: both are told.
        assert_eq!(when("json/__init__.py"), [When::OnLoad, When::Later]);
        // Function bodies (one-line, async, methods) and the script-only block do not.
        assert!(lazy("subprocess.py"));
        assert!(lazy("asyncio/__init__.py"));
        assert!(lazy("typing.py"));
        assert!(lazy("json/decoder.py"));
        // The bytecode of a module is loaded when the module is.
        assert!(found
            .paths
            .iter()
            .any(|d| d.path.ends_with("os.cpython-311.pyc") && d.when == When::OnLoad));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let image = bookworm();
        let paths = Paths::discover(&image, &env(), "/app");
        let deep = "(".repeat(100_000) + "import x";
        let fdeep = "f'".to_string() + &"{f'".repeat(500) + "x";
        for source in [
            deep.as_str(),
            fdeep.as_str(),
            "\"unterminated\nimport os\n",
            "'''never closed\nimport os",
            "from",
            "import",
            "from . import",
            "from ....................................................................... import x",
            "importlib.import_module(",
            "__import__()",
            "import_module('../../etc/passwd')",
            "é = 1\nimport ünïcode\n\u{feff}x",
            "\\",
            "x = f'{'",
            "f'{x:'",
        ] {
            let _ = dependencies(&image, &paths, "/app/app.py", source);
            let _ = dependencies(&image, &paths, "/", source);
        }
        // Unbalanced brackets resynchronise at the next statement keyword.
        let mut image = FakeImage::new();
        image.file("/app/later.py", b"");
        let found = dependencies(
            &image,
            &Paths::default(),
            "/app/m.py",
            "x = (\n\nimport later\n",
        );
        assert_eq!(kept(&found), ["/app/later.py"]);
    }

    #[test]
    fn tokenizer_separates_strings_names_and_logical_lines() {
        let source = "a = rb'x' + f\"{b!r:>{w}}\" # c\nif x:\n    y(\n1)\n";
        let toks = tokenize(source);
        let kinds: Vec<String> = toks
            .iter()
            .map(|t| match t.tok {
                Tok::Name => source[t.start..t.end].to_string(),
                Tok::Op(c) => (c as char).to_string(),
                Tok::Str { fstring, .. } => if fstring { "F" } else { "S" }.to_string(),
                Tok::Number => "N".to_string(),
                Tok::Newline => "NL".to_string(),
            })
            .collect();
        assert_eq!(
            kinds,
            ["a", "=", "S", "+", "F", "NL", "if", "x", ":", "NL", "y", "(", "N", ")", "NL"]
        );
        let indents: Vec<Option<u32>> = toks
            .iter()
            .map(|t| t.indent)
            .filter(Option::is_some)
            .collect();
        assert_eq!(indents, [Some(0), Some(0), Some(4)]);
    }
}
