//! Ruby: the image's `$LOAD_PATH` and installed gems ([`Paths`]), the scanner that finds what a
//! Ruby file loads ([`dependencies`]), and the gem a file belongs to ([`package_files`]).
//!
//! Runtime rules reproduced:
//! - `$LOAD_PATH` is `RUBYLIB`, then site_ruby, vendor_ruby and the stdlib with their arch dirs,
//!   as Debian's ruby and a source-built `/usr/local` ruby (the official Docker images) have it;
//! - `require 'x'` tries `x.rb` in every load path dir, then `x.so` in every dir (an explicit
//!   `.rb`/`.so` is taken as is); when the load path has nothing, rubygems looks in every
//!   installed gem's `require_paths` (and its compiled `extensions/` dir) and activates that gem,
//!   which reads its gemspec and the gemspecs of its runtime dependencies;
//! - `require './x'` is relative to the current directory, `require_relative 'x'` to the file's
//!   own directory, `load 'x'` looks in the load path then the current directory;
//! - `autoload :Const, 'x'` is a deferred `require 'x'`: exactly the kind of load a probe misses;
//! - a few features (`enumerator`, `thread`, `fiber`, ...) are built into ruby 3.x and need no file;
//! - Sinatra serves templates and static files from `views/` and `public/` next to the app file.
//!
//! The scanner is a tokenizer for real Ruby: comments, `=begin`/`=end`, strings (with `#{}`),
//! percent literals, heredocs, regexps, symbols and `__END__` are understood, so a `require` in
//! any of them never counts. Arguments are evaluated when they are built from literals,
//! `__dir__`, `__FILE__`, `File.join`/`File.expand_path`/`File.dirname` and constants assigned
//! once; anything else is reported as unresolved with its line.

use super::{certainly_absent, child_names, real_dir};
use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::closure::lang::{env_value, Found, Package, When};
use crate::closure::resolve::{join, normalize_lexically, parent_of, resolve};
use crate::closure::ImageView;
use crate::image::EntryKind;

/// Features built into ruby 3.x (present in `$LOADED_FEATURES` at startup with no file behind
/// them): requiring them succeeds with nothing on disk.
const BUILTIN_FEATURES: &[&str] = &[
    "enumerator",
    "enumerator.so",
    "thread",
    "thread.rb",
    "fiber",
    "fiber.so",
    "rational",
    "rational.so",
    "complex",
    "complex.so",
    "ruby2_keywords",
    "ruby2_keywords.rb",
];

/// Sinatra's `views/` and `public/` are kept whole only up to this size: a bigger tree is more
/// likely a data store than templates, and is reported instead.
const SINATRA_MAX_FILES: usize = 5000;
const SINATRA_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Bounds on walking a gem's tree for `package_files`.
const PACKAGE_MAX_FILES: usize = 100_000;
/// Bounds on the installed gems read at discovery and on one glob's expansion.
const MAX_GEMS: usize = 20_000;
const GLOB_MAX_MATCHES: usize = 5000;
/// A `rescue LoadError` this many lines below a `require` makes it optional.
const RESCUE_WINDOW_LINES: u32 = 10;
/// A `Dir[...]`/`Dir.glob` this many lines above a non-literal `require f` feeds it.
const GLOB_WINDOW_LINES: u32 = 3;
/// Nesting bound for string interpolation and expression evaluation.
const MAX_NESTING: usize = 32;
/// Bytes of a gemspec read for its `require_paths` and dependencies.
const GEMSPEC_READ_LIMIT: usize = 256 * 1024;

/// A directory as the runtime names it (`path`, possibly through symlinks) and where it really is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    path: String,
    real: String,
}

/// One installed gem.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Gem {
    /// `<name>-<version>[-<platform>]`, the gem's directory name.
    full_name: String,
    name: String,
    dir: Dir,
    /// `specifications/<full_name>.gemspec` (or the `.gemspec` inside a bundler git checkout).
    spec: Option<String>,
    /// The gem's `require_paths` (default `lib`), then its compiled extensions dir.
    require_dirs: Vec<Dir>,
    /// `extensions/<platform>/<abi>/<full_name>` dirs (compiled `.so` files).
    extension_dirs: Vec<Dir>,
    /// Names of the gem's runtime dependencies: activating the gem activates them.
    dependencies: Vec<String>,
}

/// Ruby's search paths in the image.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// `$LOAD_PATH` (without gems), in search order.
    load_path: Vec<Dir>,
    /// Installed gems, grouped by name, highest version first within a name.
    gems: Vec<Gem>,
    /// Gem indices by gem name.
    by_name: BTreeMap<String, Vec<usize>>,
    /// The image's working directory: the process's current directory.
    workdir: String,
}

impl Paths {
    /// `env` is the image's Env (`RUBYLIB`, `GEM_HOME`, `GEM_PATH`, `BUNDLE_PATH`, ...),
    /// `workdir` its WorkingDir.
    pub fn discover<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Self {
        let workdir = absolute(workdir, "/");
        let mut candidates: Vec<String> = Vec::new();
        if let Some(rubylib) = env_value(env, "RUBYLIB") {
            candidates.extend(
                rubylib
                    .split(':')
                    .filter(|part| !part.is_empty())
                    .map(|part| absolute(part, &workdir)),
            );
        }
        let triplets = multiarch_triplets(view);
        // A source-built ruby (`/usr/local/bin/ruby`) comes first in PATH, so its load path wins.
        for version in version_children(view, "/usr/local/lib/ruby") {
            for base in ["site_ruby", "vendor_ruby"] {
                let versioned = format!("/usr/local/lib/ruby/{base}/{version}");
                candidates.push(versioned.clone());
                candidates.extend(arch_children(view, &versioned));
                candidates.push(format!("/usr/local/lib/ruby/{base}"));
            }
            let stdlib = format!("/usr/local/lib/ruby/{version}");
            candidates.push(stdlib.clone());
            candidates.extend(arch_children(view, &stdlib));
        }
        // Debian's ruby: `ruby -e 'puts $LOAD_PATH'` on bookworm.
        for version in version_children(view, "/usr/lib/ruby") {
            candidates.push(format!("/usr/local/lib/site_ruby/{version}"));
            for triplet in &triplets {
                candidates.push(format!("/usr/local/lib/{triplet}/site_ruby"));
            }
            candidates.push("/usr/local/lib/site_ruby".to_string());
            candidates.push(format!("/usr/lib/ruby/vendor_ruby/{version}"));
            for triplet in &triplets {
                candidates.push(format!("/usr/lib/{triplet}/ruby/vendor_ruby/{version}"));
            }
            candidates.push("/usr/lib/ruby/vendor_ruby".to_string());
            let stdlib = format!("/usr/lib/ruby/{version}");
            candidates.push(stdlib.clone());
            candidates.extend(arch_children(view, &stdlib));
            for triplet in &triplets {
                candidates.push(format!("/usr/lib/{triplet}/ruby/{version}"));
            }
        }
        let mut load_path = Vec::new();
        let mut seen = HashSet::new();
        for path in candidates {
            if let Some(real) = real_dir(view, &path) {
                if seen.insert(real.clone()) {
                    load_path.push(Dir { path, real });
                }
            }
        }
        let gems = discover_gems(view, env, &workdir);
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, gem) in gems.iter().enumerate() {
            by_name.entry(gem.name.clone()).or_default().push(index);
        }
        Self {
            load_path,
            gems,
            by_name,
            workdir,
        }
    }
}

/// The directories that can hold gems (`gems/`, `specifications/`, `extensions/`), in the
/// order rubygems and bundler would consult them.
fn gem_roots<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Vec<String> {
    let mut roots = Vec::new();
    if let Some(home) = env_value(env, "GEM_HOME") {
        roots.push(absolute(home, workdir));
    }
    if let Some(gem_path) = env_value(env, "GEM_PATH") {
        roots.extend(
            gem_path
                .split(':')
                .filter(|part| !part.is_empty())
                .map(|part| absolute(part, workdir)),
        );
    }
    // The official ruby images' GEM_HOME, set in their Env but also its default place.
    roots.push("/usr/local/bundle".to_string());
    // Bundler installs to `$BUNDLE_PATH/ruby/<abi>`; the path comes from the Env or from a
    // `.bundle/config` (`bundle config set path vendor/bundle`).
    let mut bundle_paths = Vec::new();
    if let Some(path) = env_value(env, "BUNDLE_PATH") {
        bundle_paths.push(absolute(path, workdir));
    }
    let mut configs = vec![
        join(workdir, ".bundle/config"),
        "/root/.bundle/config".to_string(),
    ];
    if let Some(app_config) = env_value(env, "BUNDLE_APP_CONFIG") {
        configs.insert(0, join(&absolute(app_config, workdir), "config"));
    }
    for config in configs {
        if let Some(path) = bundle_config_path(view, &config) {
            bundle_paths.push(absolute(&path, workdir));
        }
    }
    bundle_paths.push(join(workdir, "vendor/bundle"));
    for path in bundle_paths {
        roots.push(path.clone());
        let ruby = join(&path, "ruby");
        for version in version_children(view, &ruby) {
            roots.push(join(&ruby, &version));
        }
    }
    for version in version_children(view, "/usr/local/lib/ruby/gems") {
        roots.push(format!("/usr/local/lib/ruby/gems/{version}"));
    }
    for version in version_children(view, "/usr/lib/ruby/gems") {
        roots.push(format!("/usr/lib/ruby/gems/{version}"));
    }
    for version in version_children(view, "/var/lib/gems") {
        roots.push(format!("/var/lib/gems/{version}"));
    }
    roots.push("/usr/share/rubygems-integration/all".to_string());
    for version in version_children(view, "/usr/share/rubygems-integration") {
        roots.push(format!("/usr/share/rubygems-integration/{version}"));
    }
    for triplet in multiarch_triplets(view) {
        let base = format!("/usr/lib/{triplet}/rubygems-integration");
        for version in version_children(view, &base) {
            roots.push(join(&base, &version));
        }
    }
    for version in version_children(view, "/root/.gem/ruby") {
        roots.push(format!("/root/.gem/ruby/{version}"));
    }
    roots
}

/// `BUNDLE_PATH: "vendor/bundle"` in a bundler config file (YAML, one key a line).
fn bundle_config_path<V: ImageView + ?Sized>(view: &V, config: &str) -> Option<String> {
    let bytes = view.read(config, 64 * 1024).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("BUNDLE_PATH:")?.trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// Every gem under every gem root, each root's gems sorted by name then version (highest first).
fn discover_gems<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Vec<Gem> {
    let mut gems = Vec::new();
    let mut seen_roots = HashSet::new();
    for root in gem_roots(view, env, workdir) {
        let Some(real_root) = real_dir(view, &root) else {
            continue;
        };
        if !seen_roots.insert(real_root.clone()) {
            continue;
        }
        let mut in_root = Vec::new();
        let extensions = extension_dirs(view, &root, &real_root);
        for full_name in child_names(view, &join(&real_root, "gems")) {
            if gems.len() + in_root.len() >= MAX_GEMS {
                break;
            }
            let path = join(&join(&root, "gems"), &full_name);
            let Some(real) = real_dir(view, &path) else {
                continue;
            };
            let spec = join(
                &join(&root, "specifications"),
                &format!("{full_name}.gemspec"),
            );
            let spec = is_file(view, &spec).then_some(spec);
            let (name, _) = split_full_name(&full_name);
            let extension_dirs = extensions.get(&full_name).cloned().unwrap_or_default();
            in_root.push(make_gem(
                view,
                full_name.clone(),
                name,
                Dir { path, real },
                spec,
                extension_dirs,
            ));
        }
        // Bundler's `git:` gems: `bundler/gems/<name>-<sha>/` with the source gemspec inside.
        let git = join(&root, "bundler/gems");
        for checkout in child_names(view, &join(&real_root, "bundler/gems")) {
            if gems.len() + in_root.len() >= MAX_GEMS {
                break;
            }
            let path = join(&git, &checkout);
            let Some(real) = real_dir(view, &path) else {
                continue;
            };
            let spec = child_names(view, &real)
                .into_iter()
                .find(|name| name.ends_with(".gemspec"))
                .map(|name| join(&path, &name));
            let name = checkout
                .rsplit_once('-')
                .map_or(checkout.as_str(), |(name, _)| name)
                .to_string();
            in_root.push(make_gem(
                view,
                checkout.clone(),
                name,
                Dir { path, real },
                spec,
                Vec::new(),
            ));
        }
        in_root.sort_by(|a, b| {
            let (_, va) = split_full_name(&a.full_name);
            let (_, vb) = split_full_name(&b.full_name);
            a.name.cmp(&b.name).then_with(|| compare_versions(&vb, &va))
        });
        gems.extend(in_root);
    }
    gems
}

/// `extensions/<platform>/<abi>/<full_name>` dirs under a gem root, by gem.
fn extension_dirs<V: ImageView + ?Sized>(
    view: &V,
    root: &str,
    real_root: &str,
) -> BTreeMap<String, Vec<Dir>> {
    let mut out: BTreeMap<String, Vec<Dir>> = BTreeMap::new();
    let extensions = join(real_root, "extensions");
    for platform in child_names(view, &extensions) {
        let platform_dir = join(&extensions, &platform);
        for abi in child_names(view, &platform_dir) {
            let abi_dir = join(&platform_dir, &abi);
            for full_name in child_names(view, &abi_dir) {
                let path = format!("{root}/extensions/{platform}/{abi}/{full_name}");
                if let Some(real) = real_dir(view, &path) {
                    out.entry(full_name).or_default().push(Dir { path, real });
                }
            }
        }
    }
    out
}

fn make_gem<V: ImageView + ?Sized>(
    view: &V,
    full_name: String,
    name: String,
    dir: Dir,
    spec: Option<String>,
    extension_dirs: Vec<Dir>,
) -> Gem {
    let (require_paths, dependencies) = spec
        .as_deref()
        .and_then(|spec| view.read(spec, GEMSPEC_READ_LIMIT).ok())
        .map(|bytes| parse_gemspec(&String::from_utf8_lossy(&bytes)))
        .unwrap_or_default();
    let require_paths = if require_paths.is_empty() {
        vec!["lib".to_string()]
    } else {
        require_paths
    };
    let mut require_dirs = Vec::new();
    for relative in require_paths {
        if relative.starts_with('/') || relative.split('/').any(|part| part == "..") {
            continue;
        }
        let path = join(&dir.path, &relative);
        if let Some(real) = real_dir(view, &path) {
            require_dirs.push(Dir { path, real });
        }
    }
    // Rubygems appends the extension dir to the gem's require paths.
    require_dirs.extend(extension_dirs.iter().cloned());
    Gem {
        full_name,
        name,
        dir,
        spec,
        require_dirs,
        extension_dirs,
        dependencies,
    }
}

/// A gemspec's `require_paths` and runtime dependency names. Installed gemspecs are generated
/// by rubygems in a fixed shape (`s.require_paths = ["lib".freeze]`,
/// `s.add_runtime_dependency(%q<rack>.freeze, [...])`), so reading those calls is enough.
fn parse_gemspec(text: &str) -> (Vec<String>, Vec<String>) {
    let mut require_paths = Vec::new();
    if let Some(at) = text.find("require_paths =") {
        let rest = &text[at..];
        if let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) {
            if open < close {
                require_paths = quoted_strings(&rest[open + 1..close]);
            }
        }
    }
    let mut dependencies = Vec::new();
    for marker in ["add_runtime_dependency", "add_dependency"] {
        let mut rest = text;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let args = rest.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
            let name = if let Some(inner) = args.strip_prefix("%q<") {
                inner.split('>').next()
            } else if let Some(quote) = args.chars().next().filter(|c| *c == '"' || *c == '\'') {
                args[1..].split(quote).next()
            } else {
                None
            };
            if let Some(name) = name.filter(|name| !name.is_empty() && name.len() < 200) {
                if !dependencies.iter().any(|known| known == name) {
                    dependencies.push(name.to_string());
                }
            }
        }
    }
    (require_paths, dependencies)
}

/// The contents of the `"..."`/`'...'` strings in `text`.
fn quoted_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['"', '\'']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        let after = &rest[start + 1..];
        let Some(end) = after.find(quote) else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// `rack-protection-2.1.0` → (`rack-protection`, `2.1.0`); `nokogiri-1.15.4-x86_64-linux` →
/// (`nokogiri`, `1.15.4`): the version is the last dash-separated part starting with a digit.
fn split_full_name(full_name: &str) -> (String, String) {
    let parts: Vec<&str> = full_name.split('-').collect();
    match parts
        .iter()
        .rposition(|part| part.starts_with(|c: char| c.is_ascii_digit()))
    {
        Some(at) if at > 0 => (parts[..at].join("-"), parts[at].to_string()),
        _ => (full_name.to_string(), String::new()),
    }
}

/// Compares dotted versions numerically where both parts are numbers.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Image helpers.

/// `path` as an absolute normalised path, relative ones taken from `base`.
fn absolute(path: &str, base: &str) -> String {
    if path.starts_with('/') {
        normalize_lexically(path)
    } else {
        normalize_lexically(&join(base, path))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// What `path` is once symlinks are followed (`None`: missing, or neither file nor directory).
fn kind_of<V: ImageView + ?Sized>(view: &V, path: &str) -> Option<Kind> {
    let real = match view.entry(path).map(|entry| &entry.kind) {
        Some(EntryKind::File) | Some(EntryKind::Hardlink { .. }) => return Some(Kind::File),
        Some(EntryKind::Dir) => return Some(Kind::Dir),
        // Missing at this spelling may still exist through a symlinked directory on the way.
        None if certainly_absent(view, path) => return None,
        Some(EntryKind::Symlink { .. }) | None => resolve(view, path, true).ok()?.path,
        Some(_) => return None,
    };
    match view.entry(&real).map(|entry| &entry.kind) {
        Some(EntryKind::File) | Some(EntryKind::Hardlink { .. }) => Some(Kind::File),
        Some(EntryKind::Dir) => Some(Kind::Dir),
        _ => None,
    }
}

fn is_file<V: ImageView + ?Sized>(view: &V, path: &str) -> bool {
    kind_of(view, path) == Some(Kind::File)
}

/// Children of `dir` named like a version (`3.1.0`, `5.36`), highest first, real directories
/// before symlinks to them.
fn version_children<V: ImageView + ?Sized>(view: &V, dir: &str) -> Vec<String> {
    let Some(real) = real_dir(view, dir) else {
        return Vec::new();
    };
    let mut versions: Vec<(bool, String)> = view
        .children(&real)
        .iter()
        .filter_map(|entry| {
            let name = entry.path.rsplit('/').next()?;
            let versionlike = name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_digit() || c == '.');
            let is_link = matches!(entry.kind, EntryKind::Symlink { .. });
            versionlike.then(|| (is_link, name.to_string()))
        })
        .collect();
    versions.sort_by(|(la, a), (lb, b)| la.cmp(lb).then_with(|| compare_versions(b, a)));
    versions.into_iter().map(|(_, name)| name).collect()
}

/// Arch subdirectories of a ruby lib dir (`x86_64-linux`, `x86_64-linux-gnu`).
fn arch_children<V: ImageView + ?Sized>(view: &V, dir: &str) -> Vec<String> {
    child_names(view, dir)
        .into_iter()
        .filter(|name| name.contains("-linux"))
        .map(|name| join(dir, &name))
        .filter(|path| kind_of(view, path) == Some(Kind::Dir))
        .collect()
}

/// Debian multiarch triplets present under /usr/lib (`x86_64-linux-gnu` first).
fn multiarch_triplets<V: ImageView + ?Sized>(view: &V) -> Vec<String> {
    let mut triplets: Vec<String> = child_names(view, "/usr/lib")
        .into_iter()
        .filter(|name| name.contains("-linux-gnu"))
        .collect();
    triplets.sort_by_key(|name| name != "x86_64-linux-gnu");
    if triplets.is_empty() {
        triplets.push("x86_64-linux-gnu".to_string());
    }
    triplets
}

/// The outcome of walking a directory tree for its files.
enum Walk {
    Missing,
    Files(Vec<String>),
    TooBig,
}

/// Every file (and symlink, not followed) under `dir`, or `TooBig` past the bounds.
fn walk_files<V: ImageView + ?Sized>(
    view: &V,
    dir: &str,
    max_files: usize,
    max_bytes: u64,
) -> Walk {
    let Some(real) = real_dir(view, dir) else {
        return Walk::Missing;
    };
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut stack = vec![(dir.to_string(), real)];
    let mut visited = 0usize;
    while let Some((shown, real)) = stack.pop() {
        for entry in view.children(&real) {
            visited += 1;
            if visited > max_files.saturating_mul(4) {
                return Walk::TooBig;
            }
            let Some(name) = entry.path.rsplit('/').next() else {
                continue;
            };
            let path = join(&shown, name);
            match entry.kind {
                EntryKind::Dir => stack.push((path, entry.path.clone())),
                EntryKind::File | EntryKind::Hardlink { .. } | EntryKind::Symlink { .. } => {
                    bytes = bytes.saturating_add(entry.size);
                    files.push(path);
                    if files.len() > max_files || bytes > max_bytes {
                        return Walk::TooBig;
                    }
                }
                _ => {}
            }
        }
    }
    files.sort();
    Walk::Files(files)
}

// ---------------------------------------------------------------------------------------------
// The tokenizer.

/// A piece of a string literal: text, or the source range of an interpolated `#{...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Code(usize, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Identifier, constant or keyword (`require`, `File`, `empty?`).
    Ident(String),
    /// `name:`: a hash key or keyword argument (`require: false` is not a call).
    Label,
    /// `:name`, `:"name"`, `:+`, `%s()`.
    Symbol,
    /// A string literal (`'...'`, `"..."`, `%q()`, `%Q[]`).
    Str(Vec<Piece>),
    /// Any other literal: number, regexp, `%w[]`, character, command, heredoc.
    Literal,
    /// `$LOAD_PATH`, `$:`, `$0`.
    Global(String),
    /// `@x`, `@@x`.
    Ivar,
    Op(String),
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    tok: Tok,
    /// Byte offset in the source.
    at: usize,
    /// Whitespace right before the token.
    space: bool,
}

/// A heredoc whose body starts on the next line.
struct Heredoc {
    id: Vec<u8>,
    /// `<<~ID`/`<<-ID`: the terminator may be indented.
    indented: bool,
}

/// Operators, longest first (maximal munch).
const OPERATORS: &[&str] = &[
    "**=", "<=>", "===", "...", "<<=", ">>=", "&&=", "||=", "==", "!=", "=~", "!~", "<=", ">=",
    "&&", "||", "<<", ">>", "**", "::", "..", "&.", "->", "=>", "+=", "-=", "*=", "/=", "%=", "|=",
    "&=", "^=",
];

/// Operator method names usable as symbols (`:+`, `:[]=`), longest first.
const SYMBOL_OPERATORS: &[&str] = &[
    "[]=", "<=>", "===", "[]", "==", "=~", "!=", "!~", "**", "<<", ">>", "<=", ">=", "+@", "-@",
    "+", "-", "*", "/", "%", "<", ">", "!", "&", "|", "^", "~", "`",
];

/// Keywords after which an expression starts (so `/` opens a regexp, `%w` a literal).
const VALUE_KEYWORDS: &[&str] = &[
    "if", "unless", "while", "until", "and", "or", "not", "return", "when", "case", "then", "else",
    "elsif", "do", "begin", "yield", "in", "break", "next", "puts", "print", "p",
];

/// Keywords and pseudo-variables that end a value.
const VALUE_END_WORDS: &[&str] = &[
    "end",
    "self",
    "nil",
    "true",
    "false",
    "__FILE__",
    "__LINE__",
    "__dir__",
    "__method__",
    "__ENCODING__",
    "def",
];

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0)
}

/// The closing delimiter of a percent literal opened by `open`.
fn closing(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        b'{' => b'}',
        b'<' => b'>',
        other => other,
    }
}

struct Lexer<'s> {
    src: &'s [u8],
    pos: usize,
    toks: Vec<Token>,
    heredocs: Vec<Heredoc>,
    /// Names assigned with `name =`: local variables, after which `/` divides.
    locals: HashSet<String>,
    depth: usize,
}

/// Tokenizes Ruby source up to `__END__`.
fn lex(source: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        src: source.as_bytes(),
        pos: 0,
        toks: Vec::new(),
        heredocs: Vec::new(),
        locals: HashSet::new(),
        depth: 0,
    };
    lexer.line_start();
    lexer.code(false);
    lexer.toks
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> u8 {
        self.src.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn push(&mut self, tok: Tok, at: usize, space: bool) {
        if tok == Tok::Op("=".to_string()) {
            if let Some(Token {
                tok: Tok::Ident(name),
                ..
            }) = self.toks.last()
            {
                self.locals.insert(name.clone());
            }
        }
        self.toks.push(Token { tok, at, space });
    }

    /// Lexes code; inside an interpolation (`#{`), stops after the `}` that closes it and
    /// returns that brace's offset.
    fn code(&mut self, interpolation: bool) -> Option<usize> {
        let mut braces = 0usize;
        let mut space = true;
        while self.pos < self.src.len() {
            let at = self.pos;
            let c = self.src[at];
            match c {
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => {
                    self.pos += 1;
                    space = true;
                    continue;
                }
                b'\\' if self.peek(1) == b'\n' => {
                    self.pos += 2;
                    space = true;
                    continue;
                }
                b'\n' => {
                    self.pos += 1;
                    self.push(Tok::Newline, at, space);
                    self.line_start();
                    space = true;
                    continue;
                }
                b'#' => {
                    self.skip_to_eol();
                    continue;
                }
                b'{' => {
                    braces += 1;
                    self.pos += 1;
                    self.push(Tok::Op("{".to_string()), at, space);
                }
                b'}' => {
                    self.pos += 1;
                    if interpolation && braces == 0 {
                        return Some(at);
                    }
                    braces = braces.saturating_sub(1);
                    self.push(Tok::Op("}".to_string()), at, space);
                }
                _ => {
                    let tok = self.token(c, space);
                    self.push(tok, at, space);
                }
            }
            space = false;
        }
        None
    }

    fn skip_to_eol(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    /// Moves past the end of the current line (its newline included).
    fn skip_line(&mut self) {
        self.skip_to_eol();
        self.pos = (self.pos + 1).min(self.src.len());
    }

    /// At the start of a line: heredoc bodies begun on the previous line, `=begin` blocks,
    /// `__END__`.
    fn line_start(&mut self) {
        for doc in std::mem::take(&mut self.heredocs) {
            self.skip_heredoc(&doc);
        }
        loop {
            let rest = &self.src[self.pos..];
            if starts_word(rest, b"=begin") {
                self.skip_line();
                while self.pos < self.src.len() {
                    let is_end = starts_word(&self.src[self.pos..], b"=end");
                    self.skip_line();
                    if is_end {
                        break;
                    }
                }
                continue;
            }
            if is_line(rest, b"__END__") {
                self.pos = self.src.len();
            }
            break;
        }
    }

    fn skip_heredoc(&mut self, doc: &Heredoc) {
        while self.pos < self.src.len() {
            let start = self.pos;
            self.skip_to_eol();
            let mut line = &self.src[start..self.pos];
            self.pos = (self.pos + 1).min(self.src.len());
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if doc.indented {
                while let Some((b' ' | b'\t', rest)) = line.split_first() {
                    line = rest;
                }
            }
            if line == doc.id.as_slice() {
                break;
            }
        }
    }

    /// Whether the previous token leaves us where a value starts: there `/` opens a regexp,
    /// `%w` a literal, `<<ID` a heredoc, `?a` a character. After an identifier that is not a
    /// local variable, Ruby's own rule applies: a space before and none after (`split /,/`)
    /// makes it an argument.
    fn value_position(&self, space_before: bool, space_after: bool) -> bool {
        match self.toks.last().map(|token| &token.tok) {
            None | Some(Tok::Newline) | Some(Tok::Label) => true,
            Some(Tok::Op(op)) => !matches!(op.as_str(), ")" | "]" | "}"),
            Some(Tok::Ident(word)) => {
                if VALUE_KEYWORDS.contains(&word.as_str()) {
                    return true;
                }
                if VALUE_END_WORDS.contains(&word.as_str())
                    || self.locals.contains(word)
                    || word.starts_with(|c: char| c.is_ascii_uppercase())
                {
                    return false;
                }
                space_before && !space_after
            }
            Some(_) => false,
        }
    }

    fn token(&mut self, c: u8, space: bool) -> Tok {
        if c.is_ascii_digit() {
            self.number();
            return Tok::Literal;
        }
        if is_ident_start(c) {
            return self.identifier();
        }
        let space_after = is_space(self.peek(1));
        match c {
            b'"' => {
                self.pos += 1;
                Tok::Str(self.quoted(b'"', None, true))
            }
            b'\'' => {
                self.pos += 1;
                Tok::Str(self.quoted(b'\'', None, false))
            }
            b'`' => {
                self.pos += 1;
                self.quoted(b'`', None, true);
                Tok::Literal
            }
            b'@' => {
                self.pos += 1;
                if self.peek(0) == b'@' {
                    self.pos += 1;
                }
                let start = self.pos;
                while is_ident_char(self.peek(0)) {
                    self.pos += 1;
                }
                if self.pos == start {
                    Tok::Op("@".to_string())
                } else {
                    Tok::Ivar
                }
            }
            b'$' => self.global(),
            b':' => self.colon(),
            b'/' if self.value_position(space, space_after) => {
                self.pos += 1;
                self.quoted(b'/', None, true);
                while self.peek(0).is_ascii_alphabetic() {
                    self.pos += 1;
                }
                Tok::Literal
            }
            b'%' if self.value_position(space, space_after) => {
                self.percent().unwrap_or_else(|| self.operator())
            }
            b'<' if self.peek(1) == b'<' => self.heredoc(space).unwrap_or_else(|| self.operator()),
            b'?' if self.value_position(space, space_after) => {
                let next = self.peek(1);
                if next == b'\\' {
                    self.pos = (self.pos + 3).min(self.src.len());
                    Tok::Literal
                } else if !is_space(next) && !is_ident_char(self.peek(2)) {
                    self.pos += 2;
                    Tok::Literal
                } else if !is_space(next) && next >= 0x80 {
                    // `?é`: one multi-byte character.
                    self.pos += 2;
                    while (0x80..0xc0).contains(&self.peek(0)) {
                        self.pos += 1;
                    }
                    Tok::Literal
                } else {
                    self.operator()
                }
            }
            _ => self.operator(),
        }
    }

    fn operator(&mut self) -> Tok {
        let rest = &self.src[self.pos..];
        for op in OPERATORS {
            if rest.starts_with(op.as_bytes()) {
                self.pos += op.len();
                return Tok::Op((*op).to_string());
            }
        }
        let c = self.src[self.pos];
        self.pos += 1;
        Tok::Op((c as char).to_string())
    }

    fn number(&mut self) {
        while is_ident_char(self.peek(0)) {
            self.pos += 1;
        }
        while self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            self.pos += 1;
            while is_ident_char(self.peek(0)) {
                self.pos += 1;
            }
        }
    }

    fn identifier(&mut self) -> Tok {
        let start = self.pos;
        while is_ident_char(self.peek(0)) {
            self.pos += 1;
        }
        if matches!(self.peek(0), b'?' | b'!') && self.peek(1) != b'=' {
            self.pos += 1;
        }
        let word = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
        if self.peek(0) == b':' && self.peek(1) != b':' {
            self.pos += 1;
            return Tok::Label;
        }
        Tok::Ident(word)
    }

    fn global(&mut self) -> Tok {
        let start = self.pos;
        self.pos += 1;
        let next = self.peek(0);
        if is_ident_start(next) {
            while is_ident_char(self.peek(0)) {
                self.pos += 1;
            }
        } else if next == b'-' && is_ident_char(self.peek(1)) {
            self.pos += 2;
        } else if next.is_ascii_digit() {
            while self.peek(0).is_ascii_digit() {
                self.pos += 1;
            }
        } else if b"~*$?!@/\\;,.=:<>\"&`'+_".contains(&next) {
            self.pos += 1;
        } else {
            return Tok::Op("$".to_string());
        }
        Tok::Global(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    fn colon(&mut self) -> Tok {
        let next = self.peek(1);
        if next == b':' {
            self.pos += 2;
            return Tok::Op("::".to_string());
        }
        if next == b'"' || next == b'\'' {
            self.pos += 2;
            self.quoted(next, None, next == b'"');
            return Tok::Symbol;
        }
        if is_ident_start(next) || next == b'@' || next == b'$' {
            self.pos += 1;
            while matches!(self.peek(0), b'@' | b'$') {
                self.pos += 1;
            }
            while is_ident_char(self.peek(0)) {
                self.pos += 1;
            }
            match (self.peek(0), self.peek(1)) {
                (b'?' | b'!', _) => self.pos += 1,
                (b'=', c) if !matches!(c, b'>' | b'=' | b'~') => self.pos += 1,
                _ => {}
            }
            return Tok::Symbol;
        }
        let rest = &self.src[self.pos + 1..];
        for op in SYMBOL_OPERATORS {
            if rest.starts_with(op.as_bytes()) {
                self.pos += 1 + op.len();
                return Tok::Symbol;
            }
        }
        self.pos += 1;
        Tok::Op(":".to_string())
    }

    /// `%q(..)`, `%Q[..]`, `%w{..}`, `%(..)`, ... with any delimiter; brackets nest.
    fn percent(&mut self) -> Option<Tok> {
        let is_delimiter = |c: u8| c.is_ascii_punctuation() && c != b'=';
        let (kind, skip) = match self.peek(1) {
            b'q' | b'Q' | b'w' | b'W' | b'i' | b'I' | b'r' | b's' | b'x'
                if self.peek(2).is_ascii_punctuation() =>
            {
                (self.peek(1), 2)
            }
            c if is_delimiter(c) => (b'Q', 1),
            _ => return None,
        };
        let open = self.peek(skip);
        self.pos += skip + 1;
        let close = closing(open);
        let nest = (close != open).then_some(open);
        let interpolates = matches!(kind, b'Q' | b'W' | b'I' | b'r' | b'x');
        let pieces = self.quoted(close, nest, interpolates);
        Some(match kind {
            b'q' | b'Q' => Tok::Str(pieces),
            b's' => Tok::Symbol,
            b'r' => {
                while self.peek(0).is_ascii_alphabetic() {
                    self.pos += 1;
                }
                Tok::Literal
            }
            _ => Tok::Literal,
        })
    }

    /// `<<~ID`, `<<-ID`, `<<ID`, `<<~'ID'`: registers the body to skip at the next line.
    fn heredoc(&mut self, space: bool) -> Option<Tok> {
        let mut i = self.pos + 2;
        let indented = matches!(self.src.get(i), Some(b'~' | b'-'));
        if indented {
            i += 1;
        }
        let c = *self.src.get(i)?;
        let (id, end, quoted) = if matches!(c, b'\'' | b'"' | b'`') {
            let mut j = i + 1;
            while j < self.src.len() && self.src[j] != c && self.src[j] != b'\n' {
                j += 1;
            }
            if self.src.get(j) != Some(&c) {
                return None;
            }
            (self.src[i + 1..j].to_vec(), j + 1, true)
        } else if is_ident_start(c) {
            let mut j = i;
            while j < self.src.len() && is_ident_char(self.src[j]) {
                j += 1;
            }
            (self.src[i..j].to_vec(), j, false)
        } else {
            return None;
        };
        // A plain `<<ID` only where a value starts; elsewhere it is a shift or an append
        // (`x<<y`, `list << item`).
        let heredoc = if indented || quoted {
            space || self.value_position(space, false)
        } else {
            self.value_position(space, false)
        };
        if !heredoc {
            return None;
        }
        self.heredocs.push(Heredoc { id, indented });
        self.pos = end;
        Some(Tok::Literal)
    }

    /// The body of a quoted literal, the opening delimiter already consumed; consumes the
    /// closing one. `open` is set for bracket delimiters, which nest.
    fn quoted(&mut self, close: u8, open: Option<u8>, interpolates: bool) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut text: Vec<u8> = Vec::new();
        let mut depth = 0usize;
        let flush = |text: &mut Vec<u8>, pieces: &mut Vec<Piece>| {
            if !text.is_empty() {
                pieces.push(Piece::Text(String::from_utf8_lossy(text).into_owned()));
                text.clear();
            }
        };
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c == b'\\' {
                let next = self.peek(1);
                self.pos = (self.pos + 2).min(self.src.len());
                if interpolates {
                    match next {
                        b'n' => text.push(b'\n'),
                        b't' => text.push(b'\t'),
                        b's' => text.push(b' '),
                        b'0' => text.push(0),
                        b'\n' => {}
                        other => text.push(other),
                    }
                } else if next == close || Some(next) == open || next == b'\\' {
                    text.push(next);
                } else {
                    text.push(b'\\');
                    text.push(next);
                }
                continue;
            }
            if Some(c) == open {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    self.pos += 1;
                    break;
                }
                depth -= 1;
            } else if interpolates && c == b'#' {
                let next = self.peek(1);
                if next == b'{' {
                    flush(&mut text, &mut pieces);
                    self.pos += 2;
                    let start = self.pos;
                    let end = self.interpolation();
                    pieces.push(Piece::Code(start, end));
                    continue;
                }
                if (next == b'@' || next == b'$')
                    && (is_ident_start(self.peek(2)) || self.peek(2) == b'@')
                {
                    // `"#@name"` interpolates an instance or global variable.
                    flush(&mut text, &mut pieces);
                    self.pos += 1;
                    let start = self.pos;
                    while matches!(self.peek(0), b'@' | b'$') {
                        self.pos += 1;
                    }
                    while is_ident_char(self.peek(0)) {
                        self.pos += 1;
                    }
                    pieces.push(Piece::Code(start, self.pos));
                    continue;
                }
            }
            text.push(c);
            self.pos += 1;
        }
        flush(&mut text, &mut pieces);
        pieces
    }

    /// Skips the code of a `#{...}` (its tokens are not part of the outer stream) and returns
    /// where it ends.
    fn interpolation(&mut self) -> usize {
        if self.depth >= MAX_NESTING {
            let mut braces = 0usize;
            while self.pos < self.src.len() {
                match self.src[self.pos] {
                    b'{' => braces += 1,
                    b'}' if braces == 0 => {
                        self.pos += 1;
                        return self.pos - 1;
                    }
                    b'}' => braces -= 1,
                    _ => {}
                }
                self.pos += 1;
            }
            return self.pos;
        }
        self.depth += 1;
        let mark = self.toks.len();
        let end = self.code(true);
        self.toks.truncate(mark);
        self.depth -= 1;
        end.unwrap_or(self.pos)
    }
}

/// `rest` starts with `word` followed by whitespace or the end.
fn starts_word(rest: &[u8], word: &[u8]) -> bool {
    rest.starts_with(word) && rest.get(word.len()).is_none_or(|&c| is_space(c))
}

/// `rest` starts with a line that is exactly `word`.
fn is_line(rest: &[u8], word: &[u8]) -> bool {
    rest.starts_with(word)
        && matches!(
            &rest[word.len()..],
            [] | [b'\n', ..] | [b'\r', b'\n', ..] | [b'\r']
        )
}

/// The 1-based line of every token.
fn token_lines(source: &str, toks: &[Token]) -> Vec<u32> {
    let bytes = source.as_bytes();
    let mut line = 1u32;
    let mut pos = 0usize;
    toks.iter()
        .map(|token| {
            let at = token.at.min(bytes.len());
            if at >= pos {
                line += bytes[pos..at].iter().filter(|&&b| b == b'\n').count() as u32;
            } else {
                line = crate::closure::lang::line_at(source, at);
            }
            pos = at;
            line
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Evaluating load arguments.

/// Evaluates the path expressions load arguments are built from.
struct Eval<'a> {
    source: &'a str,
    file: &'a str,
    workdir: &'a str,
    /// Constants and locals assigned exactly once in the file, with their value when known.
    vars: BTreeMap<String, Option<String>>,
}

fn tok_at(toks: &[Token], i: usize) -> Option<&Tok> {
    toks.get(i).map(|token| &token.tok)
}

fn is_op(toks: &[Token], i: usize, op: &str) -> bool {
    matches!(tok_at(toks, i), Some(Tok::Op(o)) if o == op)
}

fn is_ident(toks: &[Token], i: usize, word: &str) -> bool {
    matches!(tok_at(toks, i), Some(Tok::Ident(w)) if w == word)
}

/// Whether the token at `i` ends a call's argument (`require 'x' if y`, `require('x')`).
fn ends_argument(toks: &[Token], i: usize) -> bool {
    match tok_at(toks, i) {
        None | Some(Tok::Newline) => true,
        Some(Tok::Op(op)) => matches!(
            op.as_str(),
            ")" | "," | ";" | "}" | "]" | "||" | "&&" | "=>"
        ),
        Some(Tok::Ident(word)) => matches!(
            word.as_str(),
            "if" | "unless" | "rescue" | "and" | "or" | "then" | "do" | "end" | "while" | "until"
        ),
        _ => false,
    }
}

impl Eval<'_> {
    /// `term ('+' term)*`; `None` when any part is not known statically.
    fn expr(&self, toks: &[Token], i: usize, depth: usize) -> (Option<String>, usize) {
        if depth > MAX_NESTING {
            return (None, i + 1);
        }
        let (mut value, mut i) = self.term(toks, i, depth);
        while is_op(toks, i, "+") {
            let (rhs, next) = self.term(toks, i + 1, depth);
            value = match (value, rhs) {
                (Some(left), Some(right)) => Some(left + &right),
                _ => None,
            };
            i = next;
        }
        (value, i)
    }

    fn term(&self, toks: &[Token], i: usize, depth: usize) -> (Option<String>, usize) {
        let Some(tok) = tok_at(toks, i) else {
            return (None, i);
        };
        let (mut value, mut i) = match tok {
            Tok::Str(pieces) => (self.string(pieces, depth), i + 1),
            Tok::Ident(word) if word == "__dir__" => {
                (Some(parent_of(self.file).to_string()), i + 1)
            }
            Tok::Ident(word) if word == "__FILE__" => (Some(self.file.to_string()), i + 1),
            Tok::Ident(word) if word == "File" && is_op(toks, i + 1, ".") => {
                let Some(Tok::Ident(method)) = tok_at(toks, i + 2) else {
                    return (None, i + 2);
                };
                let (args, next) = self.args(toks, i + 3, depth);
                (self.file_method(method, &args), next)
            }
            Tok::Ident(word)
                if word == "Pathname"
                    && is_op(toks, i + 1, ".")
                    && is_ident(toks, i + 2, "new") =>
            {
                let (args, next) = self.args(toks, i + 3, depth);
                let value = match args.as_slice() {
                    [Some(path)] => Some(path.clone()),
                    _ => None,
                };
                (value, next)
            }
            Tok::Ident(word) if self.vars.contains_key(word) => {
                (self.vars.get(word).cloned().flatten(), i + 1)
            }
            Tok::Op(op) if op == "(" => {
                let (value, next) = self.expr(toks, i + 1, depth + 1);
                if is_op(toks, next, ")") {
                    (value, next + 1)
                } else {
                    (None, next)
                }
            }
            _ => (None, i + 1),
        };
        // Path-preserving methods on a known value (`.to_s`, Pathname's `.join`).
        for _ in 0..16 {
            if !is_op(toks, i, ".") {
                break;
            }
            let Some(Tok::Ident(method)) = tok_at(toks, i + 1) else {
                break;
            };
            match method.as_str() {
                "to_s" | "to_str" | "to_path" | "freeze" | "dup" | "cleanpath" | "expand_path"
                | "realpath" => {
                    i += 2;
                    if is_op(toks, i, "(") && is_op(toks, i + 1, ")") {
                        i += 2;
                    }
                    value = value.map(|v| self.expand(&v, None));
                }
                "join" => {
                    let (args, next) = self.args(toks, i + 2, depth);
                    i = next;
                    let mut all = vec![value];
                    all.extend(args);
                    value = self.file_method("join", &all);
                }
                "parent" | "dirname" => {
                    i += 2;
                    value = value.map(|v| parent_of(&self.expand(&v, None)).to_string());
                }
                _ => break,
            }
        }
        (value, i)
    }

    /// A call's arguments, with or without parentheses.
    fn args(&self, toks: &[Token], i: usize, depth: usize) -> (Vec<Option<String>>, usize) {
        let mut args = Vec::new();
        let paren = is_op(toks, i, "(") && toks.get(i).is_some_and(|token| !token.space);
        let mut i = if paren { i + 1 } else { i };
        if paren && is_op(toks, i, ")") {
            return (args, i + 1);
        }
        if !paren && ends_argument(toks, i) {
            return (args, i);
        }
        for _ in 0..32 {
            let (value, next) = self.expr(toks, i, depth + 1);
            args.push(value);
            i = next;
            if is_op(toks, i, ",") {
                i += 1;
                continue;
            }
            break;
        }
        if paren {
            if is_op(toks, i, ")") {
                i += 1;
            } else {
                args.push(None);
            }
        }
        (args, i)
    }

    fn file_method(&self, method: &str, args: &[Option<String>]) -> Option<String> {
        match (method, args) {
            ("dirname", [Some(path)]) => Some(parent_of(&self.expand(path, None)).to_string()),
            ("expand_path" | "absolute_path" | "realpath", [Some(path)]) => {
                Some(self.expand(path, None))
            }
            ("expand_path" | "absolute_path" | "realpath", [Some(path), Some(base)]) => {
                Some(self.expand(path, Some(base)))
            }
            ("join", parts) if !parts.is_empty() => {
                let mut out = String::new();
                for part in parts {
                    let part = part.as_deref()?;
                    if out.is_empty() || out.ends_with('/') || part.starts_with('/') {
                        out.push_str(part);
                    } else {
                        out.push('/');
                        out.push_str(part);
                    }
                }
                Some(out)
            }
            _ => None,
        }
    }

    /// `File.expand_path(path, base)`: relative paths against `base`, itself against the
    /// current directory. A `~` path stays as it is (home is not known).
    fn expand(&self, path: &str, base: Option<&str>) -> String {
        if path.starts_with('~') {
            return path.to_string();
        }
        let base = absolute(base.unwrap_or(self.workdir), self.workdir);
        absolute(path, &base)
    }

    /// A string literal's value; interpolations are evaluated as expressions.
    fn string(&self, pieces: &[Piece], depth: usize) -> Option<String> {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Code(start, end) => {
                    if depth > MAX_NESTING {
                        return None;
                    }
                    let code = self.source.get(*start..*end)?;
                    let toks: Vec<Token> = lex(code)
                        .into_iter()
                        .filter(|token| token.tok != Tok::Newline)
                        .collect();
                    // Offsets in `toks` are relative to `code`; evaluation only needs them
                    // for nested strings, so evaluate against the code itself.
                    let inner = Eval {
                        source: code,
                        file: self.file,
                        workdir: self.workdir,
                        vars: self.vars.clone(),
                    };
                    let (value, next) = inner.expr(&toks, 0, depth + 1);
                    if next != toks.len() {
                        return None;
                    }
                    out.push_str(&value?);
                }
            }
        }
        Some(out)
    }
}

/// Constants and locals assigned exactly once at the start of a statement (`ROOT =
/// File.expand_path('..', __dir__)`), evaluated in order.
fn assignments(eval: &mut Eval, toks: &[Token]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, token) in toks.iter().enumerate() {
        if let Tok::Ident(name) = &token.tok {
            if is_op(toks, i + 1, "=") {
                *counts.entry(name.as_str()).or_default() += 1;
            }
        }
    }
    for (i, token) in toks.iter().enumerate() {
        let Tok::Ident(name) = &token.tok else {
            continue;
        };
        let statement_start =
            i == 0 || matches!(tok_at(toks, i - 1), Some(Tok::Newline)) || is_op(toks, i - 1, ";");
        if !statement_start || !is_op(toks, i + 1, "=") {
            continue;
        }
        let value = if counts.get(name.as_str()) == Some(&1) {
            let (value, next) = eval.expr(toks, i + 2, 0);
            value.filter(|_| ends_argument(toks, next))
        } else {
            None
        };
        eval.vars.insert(name.clone(), value);
    }
}

// ---------------------------------------------------------------------------------------------
// Finding and resolving loads.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Require,
    RequireRelative,
    Load,
    Autoload,
    Gem,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Require => "require",
            Call::RequireRelative => "require_relative",
            Call::Load => "load",
            Call::Autoload => "autoload",
            Call::Gem => "gem",
        }
    }
}

/// Whether the identifier at `i` is a call of Kernel's load method (not `obj.require`, not
/// `def require`, not a local variable named `load`).
fn is_call_site(toks: &[Token], i: usize, load: Call) -> bool {
    if i > 0 {
        match tok_at(toks, i - 1) {
            Some(Tok::Op(op)) if op == "." || op == "&." || op == "::" => {
                // `Foo.autoload :Bar, 'foo/bar'` registers on Foo: still a load.
                if load == Call::Autoload {
                    return true;
                }
                if load == Call::Gem || i < 2 || !is_ident(toks, i - 2, "Kernel") {
                    return false;
                }
            }
            Some(Tok::Ident(word)) if matches!(word.as_str(), "def" | "alias" | "undef") => {
                return false
            }
            Some(Tok::Symbol) => return false,
            _ => {}
        }
    }
    match tok_at(toks, i + 1) {
        Some(Tok::Op(op)) => !((op.ends_with('=') && op != "=>") || op == "." || op == "&."),
        _ => true,
    }
}

/// Whether the keyword at `i` starts a statement (a block `if`, not a modifier `x if y`).
fn statement_start(toks: &[Token], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    match tok_at(toks, i - 1) {
        Some(Tok::Newline) => true,
        Some(Tok::Op(op)) => matches!(op.as_str(), ";" | "=" | "||=" | "&&=" | "(" | "["),
        Some(Tok::Ident(word)) => matches!(
            word.as_str(),
            "then" | "else" | "do" | "begin" | "return" | "and" | "or" | "not"
        ),
        _ => false,
    }
}

/// Whether the `rescue` at `i` names an exception class that catches LoadError.
fn rescues_load_error(toks: &[Token], i: usize) -> bool {
    for k in i + 1..toks.len().min(i + 32) {
        match tok_at(toks, k) {
            Some(Tok::Ident(word))
                if matches!(word.as_str(), "LoadError" | "ScriptError" | "Exception") =>
            {
                return true
            }
            Some(Tok::Newline) | None => return false,
            Some(Tok::Ident(word)) if word == "then" => return false,
            Some(Tok::Op(op)) if op == "=>" || op == ";" => return false,
            _ => {}
        }
    }
    false
}

/// File names `require` tries for a feature: `x.rb` then `x.so`, or the name as given when it
/// has a loadable extension (other native extensions map to `.so` on Linux).
fn feature_names(feature: &str) -> Vec<String> {
    let base = feature.rsplit('/').next().unwrap_or(feature);
    match base.rsplit_once('.').map(|(_, ext)| ext) {
        Some("rb") | Some("so") => vec![feature.to_string()],
        Some("o") | Some("bundle") | Some("dll") | Some("dylib") => {
            let stem = &feature[..feature.len() - base.len()];
            let name = base.rsplit_once('.').map_or(base, |(name, _)| name);
            vec![format!("{stem}{name}.so")]
        }
        _ => vec![format!("{feature}.rb"), format!("{feature}.so")],
    }
}

/// Where a feature was found.
enum Located {
    /// A file of the load path (or an absolute/relative path).
    Path(String),
    /// Files in gems: one per installed version of the gem that has the feature, since
    /// rubygems or a Gemfile.lock may activate any of them.
    Gems(Vec<(usize, String)>),
}

struct Scan<'a, V: ?Sized> {
    view: &'a V,
    paths: &'a Paths,
    file: &'a str,
    toks: &'a [Token],
    lines: &'a [u32],
    eval: &'a Eval<'a>,
    /// `$LOAD_PATH.unshift ...` dirs of this file, searched first.
    extra_dirs: Vec<Dir>,
    /// `Dir[...]`/`Dir.glob(...)` patterns: (line, pattern when known).
    globs: Vec<(u32, Option<String>)>,
    /// Methods the file defines (`def load(data)`): a bare call of one of these is the file's
    /// own method, not Kernel's, when its argument is not a path.
    defined: HashSet<String>,
    found: Found,
    specs_kept: BTreeSet<(usize, When)>,
    sinatra_done: bool,
    /// Per token, when code there runs ([`load_times`]).
    times: Vec<When>,
    /// When the load being resolved runs.
    when: When,
}

/// What the Ruby file `file` (its real path) with text `source` loads.
pub fn dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
) -> Found {
    let toks = lex(source);
    let lines = token_lines(source, &toks);
    let workdir = if paths.workdir.is_empty() {
        "/"
    } else {
        paths.workdir.as_str()
    };
    let mut eval = Eval {
        source,
        file,
        workdir,
        vars: BTreeMap::new(),
    };
    assignments(&mut eval, &toks);
    let extra_dirs = load_path_additions(view, &eval, &toks);
    let globs = dir_globs(&eval, &toks, &lines);
    let mut scan = Scan {
        view,
        paths,
        file,
        toks: &toks,
        lines: &lines,
        eval: &eval,
        extra_dirs,
        globs,
        defined: defined_methods(&toks),
        found: Found::default(),
        specs_kept: BTreeSet::new(),
        sinatra_done: false,
        times: load_times(&toks, &lines),
        when: When::Anytime,
    };
    for i in 0..toks.len() {
        scan.at(i);
    }
    let mut found = scan.found;
    found.dedup();
    found.unresolved.sort();
    found.unresolved.dedup();
    found
}

/// For every token, when code there runs: [`When::Later`] in a method body (`def ... end`),
/// [`When::Anytime`] in a block (`do ... end`, `{ }`: `Dir[...].each { |f| require f }` runs
/// at load, `define_method(:x) do ... end` later), [`When::OnLoad`] elsewhere (the top level,
/// module and class bodies, their `if`s and `begin`s). When the nesting does not balance, every
/// token is [`When::Anytime`]: the closure follows those loads however it scans the file.
fn load_times(toks: &[Token], lines: &[u32]) -> Vec<When> {
    #[derive(PartialEq)]
    enum Open {
        Def,
        Block,
        Other,
    }
    let unknown = || vec![When::Anytime; toks.len()];
    let mut open: Vec<Open> = Vec::new();
    let (mut defs, mut blocks, mut braces) = (0usize, 0usize, 0usize);
    let mut times = Vec::with_capacity(toks.len());
    // A `do` on the line of a `while`/`until`/`for` belongs to it, not a new block.
    let mut loop_line = None;
    for (i, &line) in lines.iter().enumerate().take(toks.len()) {
        times.push(if defs > 0 {
            When::Later
        } else if blocks > 0 || braces > 0 {
            When::Anytime
        } else {
            When::OnLoad
        });
        let word = match tok_at(toks, i) {
            Some(Tok::Ident(word)) => word,
            Some(Tok::Op(op)) if op == "{" => {
                braces += 1;
                continue;
            }
            Some(Tok::Op(op)) if op == "}" => {
                braces = braces.saturating_sub(1);
                continue;
            }
            _ => continue,
        };
        let after_dot = i > 0
            && matches!(tok_at(toks, i - 1), Some(Tok::Op(op)) if op == "." || op == "&." || op == "::");
        if after_dot {
            continue;
        }
        match word.as_str() {
            "def" if !endless_def(toks, i) => {
                open.push(Open::Def);
                defs += 1;
            }
            "class" | "module" | "begin" | "case" => open.push(Open::Other),
            "do" if loop_line != Some(line) => {
                open.push(Open::Block);
                blocks += 1;
            }
            "if" | "unless" | "while" | "until" | "for" if statement_start(toks, i) => {
                open.push(Open::Other);
                if word != "if" && word != "unless" {
                    loop_line = Some(line);
                }
            }
            "end" => match open.pop() {
                Some(Open::Def) => defs -= 1,
                Some(Open::Block) => blocks -= 1,
                Some(Open::Other) => {}
                None => return unknown(),
            },
            _ => {}
        }
    }
    if open.is_empty() {
        times
    } else {
        unknown()
    }
}

/// Whether the `def` at `i` is an endless one (`def name(args) = expr`, Ruby 3), which has no
/// `end`. A setter (`def name=(value)`) has no space before its `=`.
fn endless_def(toks: &[Token], i: usize) -> bool {
    let mut j = i + 1;
    if is_ident(toks, j, "self") && is_op(toks, j + 1, ".") {
        j += 2;
    }
    j += 1; // the name
    if is_op(toks, j, "(") && toks.get(j).is_some_and(|t| !t.space) {
        let mut depth = 0usize;
        while j < toks.len() {
            match tok_at(toks, j) {
                Some(Tok::Op(op)) if op == "(" => depth += 1,
                Some(Tok::Op(op)) if op == ")" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Some(Tok::Newline) if depth == 0 => return false,
                None => return false,
                _ => {}
            }
            j += 1;
        }
        j += 1;
    }
    is_op(toks, j, "=") && toks.get(j).is_some_and(|t| t.space)
}

/// Names of the methods defined in the file (`def name`, `def self.name`).
fn defined_methods(toks: &[Token]) -> HashSet<String> {
    let mut names = HashSet::new();
    for i in 0..toks.len() {
        if !is_ident(toks, i, "def") {
            continue;
        }
        let name = if is_op(toks, i + 2, ".") {
            i + 3
        } else {
            i + 1
        };
        if let Some(Tok::Ident(name)) = tok_at(toks, name) {
            names.insert(name.clone());
        }
    }
    names
}

/// Dirs the file adds to `$LOAD_PATH` (`$LOAD_PATH.unshift File.expand_path('../lib', __dir__)`,
/// `$: << 'lib'`), relative ones against the current directory.
fn load_path_additions<V: ImageView + ?Sized>(view: &V, eval: &Eval, toks: &[Token]) -> Vec<Dir> {
    let mut dirs = Vec::new();
    for (i, token) in toks.iter().enumerate() {
        let Tok::Global(name) = &token.tok else {
            continue;
        };
        if !matches!(name.as_str(), "$LOAD_PATH" | "$:" | "$-I") {
            continue;
        }
        let values = if is_op(toks, i + 1, "<<") {
            vec![eval.expr(toks, i + 2, 0).0]
        } else if is_op(toks, i + 1, ".")
            && matches!(tok_at(toks, i + 2), Some(Tok::Ident(m))
                if matches!(m.as_str(), "unshift" | "push" | "prepend" | "append" | "<<"))
        {
            eval.args(toks, i + 3, 0).0
        } else {
            continue;
        };
        for value in values.into_iter().flatten() {
            let path = absolute(&value, eval.workdir);
            if let Some(real) = real_dir(view, &path) {
                if !dirs.iter().any(|dir: &Dir| dir.real == real) {
                    dirs.push(Dir { path, real });
                }
            }
        }
    }
    dirs
}

/// `Dir[pattern]` and `Dir.glob(pattern)` in the file, with their lines.
fn dir_globs(eval: &Eval, toks: &[Token], lines: &[u32]) -> Vec<(u32, Option<String>)> {
    let mut globs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !is_ident(toks, i, "Dir") {
            continue;
        }
        let pattern = if is_op(toks, i + 1, "[") {
            let (value, next) = eval.expr(toks, i + 2, 0);
            value.filter(|_| is_op(toks, next, "]") || is_op(toks, next, ","))
        } else if is_op(toks, i + 1, ".") && is_ident(toks, i + 2, "glob") {
            eval.args(toks, i + 3, 0).0.into_iter().next().flatten()
        } else {
            continue;
        };
        globs.push((*line, pattern));
    }
    globs
}

impl<V: ImageView + ?Sized> Scan<'_, V> {
    fn at(&mut self, i: usize) {
        let Some(Tok::Ident(word)) = tok_at(self.toks, i) else {
            return;
        };
        let load = match word.as_str() {
            "require" => Call::Require,
            "require_relative" => Call::RequireRelative,
            "load" => Call::Load,
            "autoload" => Call::Autoload,
            "gem" => Call::Gem,
            _ => return,
        };
        if !is_call_site(self.toks, i, load) {
            return;
        }
        let toks = self.toks;
        let line = self.lines[i];
        self.when = if load == Call::Autoload {
            When::Autoload
        } else {
            self.times.get(i).copied().unwrap_or(When::Anytime)
        };
        let mut j = i + 1;
        let paren = is_op(toks, j, "(") && toks.get(j).is_some_and(|token| !token.space);
        if paren {
            j += 1;
        }
        if load == Call::Autoload {
            if !matches!(tok_at(toks, j), Some(Tok::Symbol) | Some(Tok::Str(_))) {
                return;
            }
            j += 1;
            if !is_op(toks, j, ",") {
                return;
            }
            j += 1;
        }
        // A bare `load`/`require` with no argument, or with `nil`, a number or a symbol, is
        // some other method (`load(nil)` of a serializer), not a file load.
        if ends_argument(toks, j)
            || matches!(tok_at(toks, j), Some(Tok::Literal) | Some(Tok::Symbol))
            || ["nil", "true", "false"]
                .iter()
                .any(|word| is_ident(toks, j, word))
        {
            return;
        }
        let own_method = (i == 0 || !is_op(toks, i - 1, ".")) && self.defined.contains(word);
        let (value, next) = self.eval.expr(toks, j, 0);
        let value = if paren {
            value.filter(|_| is_op(toks, next, ")") || is_op(toks, next, ","))
        } else {
            value.filter(|_| ends_argument(toks, next))
        };
        let name = load.name();
        match value {
            Some(argument) => self.resolve_load(load, &argument, line, i, own_method),
            None if load == Call::Gem || own_method => {}
            None => {
                if !self.keep_glob(name, line) {
                    self.found
                        .unresolved(line, format!("{name} with a non-literal argument"));
                }
            }
        }
    }

    /// A non-literal `require f` fed by a `Dir[...]` just above (`Dir[...].each { |f| require f }`):
    /// keeps what the glob matches.
    fn keep_glob(&mut self, name: &str, line: u32) -> bool {
        let pattern = self.globs.iter().rev().find_map(|(glob_line, pattern)| {
            (*glob_line <= line && line - glob_line <= GLOB_WINDOW_LINES).then_some(pattern)
        });
        let Some(Some(pattern)) = pattern else {
            return false;
        };
        let pattern = absolute(pattern, self.eval.workdir);
        for path in glob(self.view, &pattern) {
            self.found.keep_as(
                path,
                format!("{name} of Dir[{pattern:?}] entries"),
                self.when,
            );
        }
        true
    }

    /// Resolves a literal load; `own_method` (the file defines a method of that name) makes a
    /// miss silent.
    fn resolve_load(&mut self, load: Call, argument: &str, line: u32, i: usize, own_method: bool) {
        let why = format!("{} '{argument}'", load.name());
        if argument.starts_with('~') {
            self.found
                .unresolved(line, format!("{why}: a path under a home directory"));
            return;
        }
        let located = match load {
            Call::Gem => {
                let indices = self
                    .paths
                    .by_name
                    .get(argument)
                    .cloned()
                    .unwrap_or_default();
                for index in indices {
                    self.keep_specs(index, &why);
                }
                return;
            }
            Call::RequireRelative => {
                let path = absolute(argument, parent_of(self.file));
                self.locate_path(&path)
            }
            Call::Load => self.locate_load(argument),
            Call::Require | Call::Autoload => self.locate_feature(argument),
        };
        match located {
            Some(Located::Path(path)) => self.found.keep_as(path, why.clone(), self.when),
            Some(Located::Gems(hits)) => {
                for (index, path) in hits {
                    self.found.keep_as(path, why.clone(), self.when);
                    self.keep_specs(index, &why);
                }
            }
            None => {
                let builtin = matches!(load, Call::Require | Call::Autoload)
                    && BUILTIN_FEATURES.contains(&argument);
                if !builtin && !own_method && !self.rescued(i) {
                    self.found
                        .unresolved(line, format!("{why}: not found in the image"));
                }
            }
        }
        if load == Call::Require && matches!(argument, "sinatra" | "sinatra/base" | "sinatra/main")
        {
            self.keep_sinatra_dirs(line);
        }
    }

    /// An absolute feature path: `x.rb`, `x.so` or the name as given.
    fn locate_path(&self, path: &str) -> Option<Located> {
        feature_names(path)
            .into_iter()
            .find(|name| is_file(self.view, name))
            .map(Located::Path)
    }

    /// `require 'x'`: the load path, then installed gems.
    fn locate_feature(&self, feature: &str) -> Option<Located> {
        if feature.starts_with('/') {
            return self.locate_path(&normalize_lexically(feature));
        }
        if feature.starts_with("./") || feature.starts_with("../") {
            // Relative to the current directory; the file's own dir covers a container whose
            // command `cd`s before starting.
            return self
                .locate_path(&absolute(feature, self.eval.workdir))
                .or_else(|| self.locate_path(&absolute(feature, parent_of(self.file))));
        }
        let names = feature_names(feature);
        // Ruby tries each extension across the whole load path before the next one.
        for name in &names {
            for dir in self.extra_dirs.iter().chain(self.paths.load_path.iter()) {
                if is_file(self.view, &join(&dir.real, name)) {
                    return Some(Located::Path(join(&dir.path, name)));
                }
            }
        }
        let mut hits = Vec::new();
        let mut gem_name: Option<&str> = None;
        for (index, gem) in self.paths.gems.iter().enumerate() {
            if gem_name.is_some_and(|name| name != gem.name) {
                continue;
            }
            let hit = names.iter().find_map(|name| {
                gem.require_dirs
                    .iter()
                    .find(|dir| is_file(self.view, &join(&dir.real, name)))
                    .map(|dir| join(&dir.path, name))
            });
            if let Some(hit) = hit {
                gem_name = Some(&gem.name);
                hits.push((index, hit));
            }
        }
        (!hits.is_empty()).then_some(Located::Gems(hits))
    }

    /// `load 'x'`: the load path, then the current directory; no extension is added.
    fn locate_load(&self, argument: &str) -> Option<Located> {
        if argument.starts_with('/') {
            let path = normalize_lexically(argument);
            return is_file(self.view, &path).then_some(Located::Path(path));
        }
        if !argument.starts_with("./") && !argument.starts_with("../") {
            for dir in self.extra_dirs.iter().chain(self.paths.load_path.iter()) {
                if is_file(self.view, &join(&dir.real, argument)) {
                    return Some(Located::Path(join(&dir.path, argument)));
                }
            }
        }
        [self.eval.workdir, parent_of(self.file)]
            .into_iter()
            .map(|base| absolute(argument, base))
            .find(|path| is_file(self.view, path))
            .map(Located::Path)
    }

    /// Keeps the gemspec of an activated gem and of its runtime dependencies, transitively:
    /// rubygems reads them all to activate it.
    fn keep_specs(&mut self, index: usize, why: &str) {
        let mut stack = vec![index];
        let mut steps = 0usize;
        while let Some(index) = stack.pop() {
            steps += 1;
            if steps > 10_000 {
                break;
            }
            if !self.specs_kept.insert((index, self.when)) {
                continue;
            }
            let Some(gem) = self.paths.gems.get(index) else {
                continue;
            };
            if let Some(spec) = &gem.spec {
                self.found.keep_as(
                    spec.clone(),
                    format!("gemspec of {} ({why})", gem.full_name),
                    self.when,
                );
            }
            for dependency in &gem.dependencies {
                if let Some(indices) = self.paths.by_name.get(dependency) {
                    stack.extend(indices.iter().copied());
                }
            }
        }
    }

    /// Whether a `rescue LoadError` (or `ScriptError`, `Exception`) of the block enclosing
    /// the require follows closely: the require is then optional and may fail. Blocks opened
    /// after the require (a later `begin ... rescue LoadError ... end`) are skipped over, and
    /// the search stops at the `end` of the enclosing block.
    fn rescued(&self, i: usize) -> bool {
        let line = self.lines[i];
        let mut depth = 0i64;
        // A `do` on the line of a `while`/`until`/`for` belongs to it, not a new block.
        let mut loop_line = None;
        for j in i + 1..self.toks.len() {
            if self.lines[j] > line + RESCUE_WINDOW_LINES {
                break;
            }
            let Some(Tok::Ident(word)) = tok_at(self.toks, j) else {
                continue;
            };
            match word.as_str() {
                "begin" | "def" | "class" | "module" | "case" => depth += 1,
                "do" if loop_line != Some(self.lines[j]) => depth += 1,
                "if" | "unless" | "while" | "until" | "for" if statement_start(self.toks, j) => {
                    depth += 1;
                    if word != "if" && word != "unless" {
                        loop_line = Some(self.lines[j]);
                    }
                }
                "end" => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                "rescue" if depth == 0 && rescues_load_error(self.toks, j) => return true,
                _ => {}
            }
        }
        false
    }

    /// Sinatra serves `views/` (templates, read on first render) and `public/` (static files)
    /// from the app file's directory.
    fn keep_sinatra_dirs(&mut self, line: u32) {
        if self.sinatra_done {
            return;
        }
        self.sinatra_done = true;
        let dir = parent_of(self.file).to_string();
        for sub in ["views", "public"] {
            let path = join(&dir, sub);
            match walk_files(self.view, &path, SINATRA_MAX_FILES, SINATRA_MAX_BYTES) {
                Walk::Missing => {}
                Walk::Files(files) => {
                    for file in files {
                        self.found
                            .keep(file, format!("sinatra {sub}/ of {}", self.file));
                    }
                }
                Walk::TooBig => self.found.unresolved(
                    line,
                    format!(
                        "sinatra {sub}/ ({path}) is over {SINATRA_MAX_FILES} files or \
                         {} MB: not kept whole",
                        SINATRA_MAX_BYTES / (1024 * 1024)
                    ),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Globs (`Dir[...]`), as Ruby's File.fnmatch without FNM_DOTMATCH.

/// `{a,b}` alternatives expanded (bounded).
fn expand_braces(pattern: &str, out: &mut Vec<String>, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    let Some(open) = pattern.find('{') else {
        *budget -= 1;
        out.push(pattern.to_string());
        return;
    };
    let mut depth = 0usize;
    let mut close = None;
    let mut commas = Vec::new();
    for (k, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + k);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + k),
            _ => {}
        }
    }
    let Some(close) = close else {
        *budget -= 1;
        out.push(pattern.to_string());
        return;
    };
    let mut start = open + 1;
    for end in commas.into_iter().chain(std::iter::once(close)) {
        let variant = format!(
            "{}{}{}",
            &pattern[..open],
            &pattern[start..end],
            &pattern[close + 1..]
        );
        expand_braces(&variant, out, budget);
        start = end + 1;
    }
}

/// Files matching absolute glob `pattern` (`*`, `?`, `[...]`, `**/`, `{a,b}`).
fn glob<V: ImageView + ?Sized>(view: &V, pattern: &str) -> Vec<String> {
    let mut variants = Vec::new();
    let mut budget = 64usize;
    expand_braces(pattern, &mut variants, &mut budget);
    let mut out = Vec::new();
    for variant in variants {
        let mut frontier = vec!["/".to_string()];
        for part in variant.split('/').filter(|part| !part.is_empty()) {
            let mut next = Vec::new();
            for base in &frontier {
                if part == "**" {
                    next.extend(dirs_under(view, base, GLOB_MAX_MATCHES));
                } else if !part.contains(['*', '?', '[']) {
                    next.push(join(base, part));
                } else {
                    for name in child_names(view, base) {
                        if fnmatch(part.as_bytes(), name.as_bytes()) {
                            next.push(join(base, &name));
                        }
                    }
                }
                if next.len() > GLOB_MAX_MATCHES {
                    break;
                }
            }
            frontier = next;
        }
        out.extend(frontier.into_iter().filter(|path| is_file(view, path)));
    }
    out.sort();
    out.dedup();
    out.truncate(GLOB_MAX_MATCHES);
    out
}

/// `dir` and every directory below it (not through symlinks, as `**` does not follow them).
fn dirs_under<V: ImageView + ?Sized>(view: &V, dir: &str, limit: usize) -> Vec<String> {
    let Some(real) = real_dir(view, dir) else {
        return Vec::new();
    };
    let mut out = vec![dir.to_string()];
    let mut stack = vec![(dir.to_string(), real)];
    while let Some((shown, real)) = stack.pop() {
        for entry in view.children(&real) {
            if out.len() >= limit {
                return out;
            }
            let Some(name) = entry.path.rsplit('/').next() else {
                continue;
            };
            if matches!(entry.kind, EntryKind::Dir) && !name.starts_with('.') {
                let path = join(&shown, name);
                out.push(path.clone());
                stack.push((path, entry.path.clone()));
            }
        }
    }
    out
}

/// Shell-style match of one path component; a leading `.` must be matched literally.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(&pattern[p..], name[n]) {
                        if matched {
                            p += next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == b'[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the `[...]` class at the start of `pattern`: (matched, class length).
fn class_match(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut k = 1;
    let negated = matches!(pattern.get(1), Some(b'!' | b'^'));
    if negated {
        k += 1;
    }
    let mut matched = false;
    let mut first = true;
    while k < pattern.len() {
        let start = pattern[k];
        if start == b']' && !first {
            return Some((matched != negated, k + 1));
        }
        first = false;
        if pattern.get(k + 1) == Some(&b'-') && pattern.get(k + 2).is_some_and(|&e| e != b']') {
            let end = pattern[k + 2];
            matched |= start <= c && c <= end;
            k += 3;
        } else {
            matched |= start == c;
            k += 1;
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Packages.

/// Features a C extension requires from C (`rb_require("psych/syntax_error")` in psych.so's
/// init): no Ruby source names them, so the literal strings of the binary that look like
/// feature paths (`name/name`, lowercase) are resolved against the load path like a `require`
/// each; a string that names no file costs nothing (it is treated as optional, never
/// reported). Found on the Sinatra fixture: YAML loading failed in the slim image without it.
pub fn extension_dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    binary: &[u8],
) -> Found {
    const MAX_FEATURES: usize = 2000;
    let mut features = std::collections::BTreeSet::new();
    for run in binary.split(|&b| b == 0) {
        if features.len() >= MAX_FEATURES {
            break;
        }
        if run.len() < 3 || run.len() > 128 {
            continue;
        }
        let looks_like_feature = run.contains(&b'/')
            && run[0].is_ascii_lowercase()
            && run
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'/')
            && !run.ends_with(b"/")
            && !run.windows(2).any(|w| w == b"//");
        if looks_like_feature {
            if let Ok(feature) = std::str::from_utf8(run) {
                features.insert(feature.to_string());
            }
        }
    }
    // One optional require per string: the resolver's own rules, misses silent.
    let source: String = features
        .iter()
        .map(|f| format!("begin\n  require '{f}'\nrescue LoadError\nend\n"))
        .collect();
    let mut found = dependencies(view, paths, file, &source);
    found.unresolved.clear();
    for dependency in &mut found.paths {
        dependency.why = format!("{} (named in the C extension)", dependency.why);
        // The C code may require it at init or in any function: it cannot be told.
        dependency.when = When::Anytime;
    }
    found.dedup();
    found
}

/// The gem `file` belongs to: all files of its directory and compiled extensions, and its
/// gemspec. `None` for a file outside every gem.
pub fn package_files<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
) -> Option<Package> {
    let inside = |dir: &Dir| {
        [dir.path.as_str(), dir.real.as_str()].iter().any(|root| {
            file.strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let gem = paths
        .gems
        .iter()
        .find(|gem| inside(&gem.dir) || gem.extension_dirs.iter().any(inside))?;
    let mut files = Vec::new();
    for dir in std::iter::once(&gem.dir).chain(gem.extension_dirs.iter()) {
        if let Walk::Files(found) = walk_files(view, &dir.path, PACKAGE_MAX_FILES, u64::MAX) {
            files.extend(found);
        }
    }
    files.extend(gem.spec.iter().cloned());
    files.sort();
    files.dedup();
    Some(Package {
        name: gem.full_name.clone(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    const JSON_RB: &str = "/usr/lib/ruby/3.1.0/json.rb";

    /// Debian bookworm's ruby 3.1 layout, with the sinatra gem from rubygems-integration.
    fn debian_ruby() -> FakeImage {
        let mut image = FakeImage::new();
        image.file(JSON_RB, b"require 'json/common'\n");
        image.file("/usr/lib/ruby/3.1.0/json/common.rb", b"");
        image.file("/usr/lib/ruby/3.1.0/set.rb", b"");
        image.file("/usr/lib/ruby/3.1.0/json/ext.rb", b"");
        image.file(
            "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/ext/parser.so",
            b"\x7fELF",
        );
        image.dir("/usr/lib/ruby/vendor_ruby");
        image.dir("/usr/lib/ruby/gems/3.1.0/gems");
        let gems = "/usr/share/rubygems-integration/all";
        image.file(&format!("{gems}/gems/sinatra-2.1.0/lib/sinatra.rb"), b"");
        image.file(
            &format!("{gems}/gems/sinatra-2.1.0/lib/sinatra/base.rb"),
            b"",
        );
        image.file(&format!("{gems}/gems/sinatra-2.1.0/README.md"), b"");
        image.file(
            &format!("{gems}/specifications/sinatra-2.1.0.gemspec"),
            b"Gem::Specification.new do |s|\n  s.name = \"sinatra\".freeze\n  \
              s.require_paths = [\"lib\".freeze]\n  \
              s.add_runtime_dependency(%q<rack>.freeze, [\"~> 2.2\"])\n  \
              s.add_development_dependency(%q<rspec>.freeze, [\">= 0\"])\nend\n",
        );
        image.file(&format!("{gems}/gems/rack-2.2.4/lib/rack.rb"), b"");
        image.file(
            &format!("{gems}/specifications/rack-2.2.4.gemspec"),
            b"s.require_paths = [\"lib\".freeze]\n",
        );
        image.file(&format!("{gems}/gems/rspec-3.0.0/lib/rspec.rb"), b"");
        image.file(&format!("{gems}/specifications/rspec-3.0.0.gemspec"), b"");
        image
    }

    fn scan(image: &FakeImage, file: &str, source: &str) -> Found {
        let paths = Paths::discover(image, &[], "/app");
        dependencies(image, &paths, file, source)
    }

    fn kept(found: &Found) -> Vec<&str> {
        let mut paths: Vec<&str> = found.paths.iter().map(|d| d.path.as_str()).collect();
        paths.sort();
        paths.dedup();
        paths
    }

    #[test]
    fn load_path_is_debians_in_order() {
        let mut image = debian_ruby();
        image.dir("/usr/local/lib/site_ruby");
        let paths = Paths::discover(&image, &["RUBYLIB=lib".to_string()], "/app");
        let dirs: Vec<&str> = paths.load_path.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            dirs,
            [
                "/usr/local/lib/site_ruby",
                "/usr/lib/ruby/vendor_ruby",
                "/usr/lib/ruby/3.1.0",
                "/usr/lib/x86_64-linux-gnu/ruby/3.1.0",
            ]
        );
        let names: Vec<&str> = paths.gems.iter().map(|g| g.full_name.as_str()).collect();
        assert_eq!(names, ["rack-2.2.4", "rspec-3.0.0", "sinatra-2.1.0"]);
        assert_eq!(paths.gems[2].dependencies, ["rack"]);
    }

    #[test]
    fn require_finds_rb_then_so_across_the_load_path() {
        let image = debian_ruby();
        let found = scan(
            &image,
            "/app/app.rb",
            "require 'json'\nrequire(\"json/ext/parser\")\nrequire 'json/ext.rb'\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/lib/ruby/3.1.0/json.rb",
                "/usr/lib/ruby/3.1.0/json/ext.rb",
                "/usr/lib/x86_64-linux-gnu/ruby/3.1.0/json/ext/parser.so",
            ]
        );
        assert_eq!(found.paths[0].why, "require 'json'");
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn require_in_comments_strings_and_heredocs_does_not_count() {
        let image = debian_ruby();
        let source = r#"# require 'set'
=begin
require 'set'
=end
x = "require 'set'"
y = 'require "set"'
z = %q(require 'set' (nested))
w = %w[require set]
sql = <<~SQL
  require 'set'
SQL
puts <<-EOS, 1
    require 'set'
    EOS
re = /require 'set'/
s = :require
h = { require: 'set' }
require 'json'
__END__
require 'set'
"#;
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), [JSON_RB]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn percent_literals_with_any_delimiter_are_skipped() {
        let image = debian_ruby();
        let source = "a = %Q{x {#{1}} require 'set'}\nb = %|require 'set'|\n\
                      c = %r!require 'set'!i\nrequire %q<json>\nd = 10 % 3\nrequire 'set'\n";
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), [JSON_RB, "/usr/lib/ruby/3.1.0/set.rb"]);
    }

    #[test]
    fn require_inside_an_interpolation_does_not_end_the_string_early() {
        let image = debian_ruby();
        let source = "x = \"#{ h = { a: '}' }; \"require 'set'\" }\"\nrequire 'json'\n";
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), [JSON_RB]);
    }

    #[test]
    fn require_relative_is_relative_to_the_file() {
        let mut image = debian_ruby();
        image.file("/srv/app/lib/helpers.rb", b"");
        image.file("/srv/app/lib/db.rb", b"");
        let found = scan(
            &image,
            "/srv/app/app.rb",
            "require_relative 'lib/helpers'\nrequire_relative './lib/db.rb'\n",
        );
        assert_eq!(
            kept(&found),
            ["/srv/app/lib/db.rb", "/srv/app/lib/helpers.rb"]
        );
    }

    #[test]
    fn gem_lib_dirs_resolve_and_keep_the_gemspec_and_dependency_specs() {
        let image = debian_ruby();
        let found = scan(&image, "/app/app.rb", "require 'sinatra/base'\n");
        let gems = "/usr/share/rubygems-integration/all";
        assert_eq!(
            kept(&found),
            vec![
                format!("{gems}/gems/sinatra-2.1.0/lib/sinatra/base.rb"),
                format!("{gems}/specifications/rack-2.2.4.gemspec"),
                format!("{gems}/specifications/sinatra-2.1.0.gemspec"),
            ]
        );
    }

    #[test]
    fn compiled_extension_of_a_gem_is_found_as_so() {
        let mut image = FakeImage::new();
        image.file("/usr/lib/ruby/3.1.0/set.rb", b"");
        let root = "/var/lib/gems/3.1.0";
        image.file(&format!("{root}/gems/bcrypt-3.1.18/lib/bcrypt.rb"), b"");
        image.file(
            &format!("{root}/extensions/x86_64-linux/3.1.0/bcrypt-3.1.18/bcrypt_ext.so"),
            b"\x7fELF",
        );
        image.file(&format!("{root}/specifications/bcrypt-3.1.18.gemspec"), b"");
        let found = scan(&image, "/app/app.rb", "require 'bcrypt_ext'\n");
        assert_eq!(
            kept(&found),
            vec![
                format!("{root}/extensions/x86_64-linux/3.1.0/bcrypt-3.1.18/bcrypt_ext.so"),
                format!("{root}/specifications/bcrypt-3.1.18.gemspec"),
            ]
        );
    }

    #[test]
    fn interpolated_require_is_unresolved_with_its_line() {
        let image = debian_ruby();
        let found = scan(
            &image,
            "/app/app.rb",
            "require 'json'\n\nrequire \"plugins/#{name}\"\nrequire name\n",
        );
        assert_eq!(kept(&found), [JSON_RB]);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [3, 4]);
        assert!(found.unresolved[0].message.contains("non-literal"));
    }

    #[test]
    fn missing_require_is_unresolved_unless_rescue_load_error() {
        let image = debian_ruby();
        let source = "begin\n  require 'oj'\nrescue LoadError\n  require 'json'\nend\n\
                      require 'nope'\nrequire 'fiber'\nbegin\n  require 'yajl'\nrescue LoadError\nend\n";
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), [JSON_RB]);
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 6);
        assert!(found.unresolved[0].message.contains("require 'nope'"));
    }

    #[test]
    fn sinatra_views_and_public_next_to_the_app_are_kept() {
        let mut image = debian_ruby();
        image.file("/app/views/index.erb", b"<%= x %>");
        image.file("/app/views/layouts/main.erb", b"");
        image.file("/app/public/css/site.css", b"");
        image.file("/app/other/x.txt", b"");
        let found = scan(
            &image,
            "/app/app.rb",
            "require 'sinatra'\nget('/') { erb :index }\n",
        );
        let kept = kept(&found);
        for path in [
            "/app/views/index.erb",
            "/app/views/layouts/main.erb",
            "/app/public/css/site.css",
        ] {
            assert!(kept.contains(&path), "{path} not in {kept:?}");
        }
        assert!(!kept.contains(&"/app/other/x.txt"));
    }

    #[test]
    fn receiver_other_than_kernel_is_not_a_load() {
        let image = debian_ruby();
        let source = "loader.require 'set'\ndef require(x); end\nKernel.require 'json'\n\
                      load = 3\nGem::Specification.load 'x'\n";
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), [JSON_RB]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn a_method_named_load_defined_in_the_file_is_not_kernel_load() {
        let image = debian_ruby();
        let source =
            "class Coder\n  def self.load(data)\n    data\n  end\n  def x(y)\n    load(y)\n    \
                      load(nil)\n  end\nend\nrequire name\n";
        let found = scan(&image, "/app/coder.rb", source);
        assert!(found.paths.is_empty(), "{:?}", found.paths);
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 10);
    }

    #[test]
    fn autoload_and_load_resolve() {
        let mut image = debian_ruby();
        image.file("/app/config/settings.rb", b"");
        let found = scan(
            &image,
            "/app/app.rb",
            "autoload :Set, 'set'\nmodule M\n  autoload(:J, \"json\")\nend\nload 'config/settings.rb'\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/config/settings.rb",
                JSON_RB,
                "/usr/lib/ruby/3.1.0/set.rb"
            ]
        );
    }

    #[test]
    fn requires_know_whether_they_run_at_load_or_later() {
        let mut image = debian_ruby();
        for name in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            image.file(&format!("/usr/lib/ruby/3.1.0/{name}.rb"), b"");
        }
        let source = "require 'a'\n\
            module M\n  require 'b'\n  class C\n    def run(x)\n      if x\n        require 'c'\n      end\n    end\n\
            \x20   def name=(v)\n      require 'd'\n    end\n    def twice(x) = x * 2\n    require 'e'\n  end\n\
            \x20 autoload :F, 'f'\nend\n\
            [1].each do |i|\n  require 'g'\nend\n\
            def self.later\n  require 'h' unless defined?(H)\nend\n\
            at_exit { require 'i' }\n";
        let found = scan(&image, "/app/app.rb", source);
        let when = |name: &str| {
            let path = format!("/usr/lib/ruby/3.1.0/{name}.rb");
            found
                .paths
                .iter()
                .find(|d| d.path == path)
                .unwrap_or_else(|| panic!("{path} not kept: {:?}", found.paths))
                .when
        };
        // The top level, module and class bodies run when the file is loaded (an endless def
        // has no `end` to close).
        for name in ["a", "b", "e"] {
            assert_eq!(when(name), When::OnLoad, "{name}");
        }
        // A block may run now or be kept for later.
        for name in ["g", "i"] {
            assert_eq!(when(name), When::Anytime, "{name}");
        }
        // Method bodies (setters included) run when called; autoload defers the require.
        for name in ["c", "d", "h"] {
            assert_eq!(when(name), When::Later, "{name}");
        }
        assert_eq!(when("f"), When::Autoload);
        // When `def`/`end` do not balance, nothing is placed.
        let found = scan(&image, "/app/app.rb", "def x\n  require 'c'\n");
        assert!(
            found.paths.iter().all(|d| d.when == When::Anytime),
            "{:?}",
            found.paths
        );
    }

    #[test]
    fn path_expressions_with_dir_and_file_are_evaluated() {
        let mut image = debian_ruby();
        image.file("/srv/app/config/environment.rb", b"");
        image.file("/srv/app/lib/a.rb", b"");
        image.file("/srv/app/lib/b.rb", b"");
        image.file("/srv/lib/c.rb", b"");
        let source = "ROOT = File.expand_path('..', __dir__)\n\
                      require File.expand_path('../config/environment', __FILE__)\n\
                      require File.join(__dir__, 'lib', 'a')\n\
                      require \"#{__dir__}/lib/b\"\n\
                      require File.join(ROOT, 'lib/c')\n";
        let found = scan(&image, "/srv/app/app.rb", source);
        assert_eq!(
            kept(&found),
            [
                "/srv/app/config/environment.rb",
                "/srv/app/lib/a.rb",
                "/srv/app/lib/b.rb",
                "/srv/lib/c.rb"
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn load_path_unshift_adds_a_search_dir() {
        let mut image = debian_ruby();
        image.file("/srv/app/lib/myapp.rb", b"");
        let source = "$LOAD_PATH.unshift File.expand_path('lib', __dir__)\nrequire 'myapp'\n";
        let found = scan(&image, "/srv/app/app.rb", source);
        assert_eq!(kept(&found), ["/srv/app/lib/myapp.rb"]);
    }

    #[test]
    fn dir_glob_feeding_require_keeps_the_matches() {
        let mut image = debian_ruby();
        image.file("/app/routes/a.rb", b"");
        image.file("/app/routes/b.rb", b"");
        image.file("/app/routes/notes.txt", b"");
        let source = "Dir[File.join(__dir__, 'routes', '*.rb')].each { |f| require f }\n";
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), ["/app/routes/a.rb", "/app/routes/b.rb"]);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn regex_and_division_are_told_apart() {
        let image = debian_ruby();
        // `n / 2 / 1` divides; `split /'/` is a regexp holding a quote that must not open a string.
        let source = "n = 4\nx = n / 2 / 1\nparts = line.split /'/\nrequire 'json'\n";
        let found = scan(&image, "/app/app.rb", source);
        assert_eq!(kept(&found), [JSON_RB]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn config_ru_require_relative_resolves() {
        let mut image = debian_ruby();
        image.file("/app/app.rb", b"");
        let found = scan(
            &image,
            "/app/config.ru",
            "require_relative 'app'\nrun App\n",
        );
        assert_eq!(kept(&found), ["/app/app.rb"]);
        let found = scan(
            &image,
            "/app/config.ru",
            "require './app'\nrun Sinatra::Application\n",
        );
        assert_eq!(kept(&found), ["/app/app.rb"]);
    }

    #[test]
    fn package_files_are_the_whole_gem_and_its_gemspec() {
        let image = debian_ruby();
        let paths = Paths::discover(&image, &[], "/app");
        let gems = "/usr/share/rubygems-integration/all";
        let package = package_files(
            &image,
            &paths,
            &format!("{gems}/gems/sinatra-2.1.0/lib/sinatra/base.rb"),
        )
        .expect("a gem");
        assert_eq!(package.name, "sinatra-2.1.0");
        assert_eq!(
            package.files,
            [
                format!("{gems}/gems/sinatra-2.1.0/README.md"),
                format!("{gems}/gems/sinatra-2.1.0/lib/sinatra.rb"),
                format!("{gems}/gems/sinatra-2.1.0/lib/sinatra/base.rb"),
                format!("{gems}/specifications/sinatra-2.1.0.gemspec"),
            ]
        );
        assert!(package_files(&image, &paths, JSON_RB).is_none());
    }

    #[test]
    fn bundler_vendor_path_gems_are_found() {
        let mut image = FakeImage::new();
        let root = "/app/vendor/bundle/ruby/3.2.0";
        image.file(&format!("{root}/gems/puma-6.4.0/lib/puma.rb"), b"");
        image.file(&format!("{root}/specifications/puma-6.4.0.gemspec"), b"");
        image.file(
            "/app/.bundle/config",
            b"---\nBUNDLE_PATH: \"vendor/bundle\"\n",
        );
        let found = scan(&image, "/app/app.rb", "require 'puma'\n");
        assert_eq!(
            kept(&found),
            vec![
                format!("{root}/gems/puma-6.4.0/lib/puma.rb"),
                format!("{root}/specifications/puma-6.4.0.gemspec"),
            ]
        );
    }

    #[test]
    fn source_built_ruby_and_gem_home_are_searched() {
        let mut image = FakeImage::new();
        image.file("/usr/local/lib/ruby/3.2.0/set.rb", b"");
        image.file("/usr/local/lib/ruby/3.2.0/x86_64-linux/etc.so", b"\x7fELF");
        image.file("/usr/local/bundle/gems/rack-3.0.8/lib/rack.rb", b"");
        image.file("/usr/local/bundle/specifications/rack-3.0.8.gemspec", b"");
        // A symlinked subdirectory inside a load path dir is followed.
        image.file("/opt/shared/helpers.rb", b"");
        image.symlink("/usr/local/lib/ruby/3.2.0/shared", "/opt/shared");
        let paths = Paths::discover(&image, &["GEM_HOME=/usr/local/bundle".to_string()], "/");
        let found = dependencies(
            &image,
            &paths,
            "/app/app.rb",
            "require 'set'\nrequire 'etc'\nrequire 'rack'\nrequire 'shared/helpers'\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/local/bundle/gems/rack-3.0.8/lib/rack.rb",
                "/usr/local/bundle/specifications/rack-3.0.8.gemspec",
                "/usr/local/lib/ruby/3.2.0/set.rb",
                "/usr/local/lib/ruby/3.2.0/shared/helpers.rb",
                "/usr/local/lib/ruby/3.2.0/x86_64-linux/etc.so",
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let image = debian_ruby();
        for source in [
            "\"#{".repeat(200),
            "%q(".repeat(500),
            "<<~A\n".to_string(),
            "require(".to_string(),
            "?".to_string(),
            "require \"\\".to_string(),
            "é require 'json' ?é".to_string(),
            "$".to_string(),
            ":".to_string(),
        ] {
            let _ = scan(&image, "/app/app.rb", &source);
        }
        let found = scan(&image, "/app/app.rb", "é = 1\nrequire 'json'\n");
        assert_eq!(kept(&found), [JSON_RB]);
    }

    #[test]
    fn glob_matching_follows_fnmatch() {
        assert!(fnmatch(b"*.rb", b"a.rb"));
        assert!(!fnmatch(b"*.rb", b".hidden.rb"));
        assert!(fnmatch(b"[ab]?.rb", b"bx.rb"));
        assert!(!fnmatch(b"[!ab]*", b"apple"));
        let mut out = Vec::new();
        let mut budget = 64;
        expand_braces("/x/{a,b}/*.{rb,so}", &mut out, &mut budget);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn gem_full_names_split_into_name_and_version() {
        assert_eq!(
            split_full_name("rack-protection-2.1.0"),
            ("rack-protection".to_string(), "2.1.0".to_string())
        );
        assert_eq!(
            split_full_name("nokogiri-1.15.4-x86_64-linux"),
            ("nokogiri".to_string(), "1.15.4".to_string())
        );
        assert_eq!(
            compare_versions("2.10.0", "2.9.1"),
            std::cmp::Ordering::Greater
        );
    }
}
