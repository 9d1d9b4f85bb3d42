//! PHP: the image's `include_path` and start-up configuration ([`Paths::discover`]) and a
//! tokenizer-based scanner for `include`/`require` ([`dependencies`]).
//!
//! Runtime rules reproduced:
//! - Only code between `<?php` (or `<?=`, or a short `<? `) and `?>` is PHP; the rest is inline
//!   HTML. Comments (`//` and `#` up to the end of the line or a `?>`, `/* */`) and string
//!   literals never count; `#[` opens an attribute, not a comment. `'..'` and nowdocs are
//!   literal; `".."`, heredocs and backticks interpolate `$var`, `{$..}` and `${..}`.
//! - `include`, `include_once`, `require` and `require_once` are language constructs taking one
//!   expression, parentheses optional. It is evaluated statically as far as it goes: string
//!   literals, `__DIR__`, `__FILE__`, `dirname(x[, levels])`, `realpath(x)`,
//!   `DIRECTORY_SEPARATOR`, constants defined earlier in the file (`define('X', ..)`,
//!   `const X = ..`) and `.` concatenation. `include $file` follows every value the file
//!   assigned to `$file` before it (`$file = __DIR__ . '/lib/' . $name . '.php'`, `.=` too),
//!   whatever the scope: keeping one file too many is harmless, missing one is not.
//! - A static path resolves as `php_resolve_path` does: absolute as is; `./` and `../` against
//!   the current directory only; anything else against each `include_path` entry (`.` is the
//!   current directory), then the calling script's directory. The current directory is the
//!   script's directory under FPM, CGI and Apache but the WORKDIR under the CLI, so both are
//!   tried. Paths are normalised lexically, as PHP's virtual-CWD layer does before opening.
//! - A path with a static directory prefix and a dynamic rest (`__DIR__ . '/lib/' . $name .
//!   '.php'`, `"pages/$page.php"`) keeps every file of that directory that matches the static
//!   suffix. A dynamic part that is not a plain variable (a call such as
//!   `str_replace('\\', '/', $class)` in an autoloader) may contain `/`: the match then goes
//!   into subdirectories, bounded by [`MAX_PATTERN_FILES`].
//! - At start-up PHP reads the `php.ini` and `conf.d/*.ini` of its SAPI and loads each
//!   `extension=`/`zend_extension=` from `extension_dir` (`name`, then `name.so`). Those files
//!   are returned for every PHP file scanned: which SAPI serves the app is not known here, and
//!   the closure deduplicates.
//! - `file_get_contents()`, `readfile()`, `file()`, `fopen()`, `parse_ini_file()` and
//!   `simplexml_load_file()` with a static path (relative to the current directory) keep that
//!   data file or template when it exists; others are not reported (the app may create them).
//! - `vendor/autoload.php` (Composer) loads classes on demand from the maps in
//!   `vendor/composer/`: that directory is kept whole; the classes it maps are not followed
//!   (noted as unresolved).

use super::LineIndex;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use crate::closure::lang::{env_value, Found};
use crate::closure::resolve::{join, normalize_lexically, parent_of, resolve};
use crate::closure::ImageView;
use crate::image::EntryKind;

/// The compiled-in `include_path` of Debian's PHP packages.
const DEBIAN_INCLUDE_PATH: &str = ".:/usr/share/php";
/// The compiled-in `include_path` of the official `php` images (prefix /usr/local).
const OFFICIAL_INCLUDE_PATH: &str = ".:/usr/local/lib/php";
/// Debian's per-SAPI configuration directories under /etc/php/<version>/.
const DEBIAN_SAPIS: &[&str] = &["cli", "cgi", "fpm", "apache2", "embed", "phpdbg"];
/// PHP version → Zend module API number, which names Debian's extension directory.
const MODULE_API: &[(&str, &str)] = &[
    ("7.0", "20151012"),
    ("7.1", "20160303"),
    ("7.2", "20170718"),
    ("7.3", "20180731"),
    ("7.4", "20190902"),
    ("8.0", "20200930"),
    ("8.1", "20210902"),
    ("8.2", "20220829"),
    ("8.3", "20230831"),
    ("8.4", "20240924"),
];
/// Most files one dynamic include pattern keeps.
pub const MAX_PATTERN_FILES: usize = 2000;
/// How deep a pattern whose dynamic part may contain `/` looks into subdirectories.
const MAX_PATTERN_DEPTH: usize = 16;
/// Directory entries one pattern may look at, so a pattern over `/` stays cheap.
const MAX_PATTERN_VISITS: usize = 100_000;
/// Directory entries all the patterns of one file may look at together.
const MAX_FILE_VISITS: usize = 1_000_000;
const INI_READ_LIMIT: usize = 1024 * 1024;
/// Bounds on the image's PHP installations, against pathological images.
const MAX_VERSIONS: usize = 16;
const MAX_INI_FILES: usize = 512;
/// Tokens of one `include` expression looked at.
const MAX_EXPR_TOKENS: usize = 512;
/// Nesting of parentheses/calls evaluated in one expression.
const MAX_EVAL_DEPTH: usize = 32;
/// Functions that read a data file or template named by their first argument: a static one
/// that exists is kept (a missing one may be created at run time: not reported).
const FILE_READERS: &[&str] = &[
    "file_get_contents",
    "readfile",
    "file",
    "fopen",
    "parse_ini_file",
    "simplexml_load_file",
];
/// Longest `why` text (characters).
const MAX_WHY_CHARS: usize = 120;

/// The image's PHP search paths and start-up files.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// Every distinct `include_path` in effect (one per SAPI configuration), entries in order.
    /// Empty means PHP's Debian default, `.:/usr/share/php`.
    pub include_paths: Vec<Vec<String>>,
    /// Every `extension_dir` in effect.
    pub extension_dirs: Vec<String>,
    /// What PHP reads at start-up whichever script it runs: the ini files and the extensions
    /// they load, as (path, why).
    pub startup: Vec<(String, String)>,
    /// The image's WORKDIR: the CLI's current directory.
    pub workdir: String,
}

/// One PHP configuration: an ini file, its scan directory and its compiled-in defaults.
struct Configuration {
    ini: String,
    scan_dir: String,
    include_path: &'static str,
    extension_dirs: Vec<String>,
}

impl Paths {
    /// Reads the PHP configurations of the image: Debian's `/etc/php/<version>/<sapi>/` and the
    /// official images' `$PHP_INI_DIR` (`/usr/local/etc/php`).
    pub fn discover<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Self {
        let mut paths = Paths {
            workdir: normalize_lexically(if workdir.starts_with('/') {
                workdir
            } else {
                "/"
            }),
            ..Self::default()
        };
        let scan_override = env_value(env, "PHP_INI_SCAN_DIR");
        for configuration in configurations(view, env) {
            paths.add_configuration(view, &configuration, scan_override);
        }
        if paths.include_paths.is_empty() {
            paths
                .include_paths
                .push(split_include_path(DEBIAN_INCLUDE_PATH));
        }
        paths
    }

    fn add_configuration<V: ImageView + ?Sized>(
        &mut self,
        view: &V,
        configuration: &Configuration,
        scan_override: Option<&str>,
    ) {
        let mut files = Vec::new();
        if is_file(view, &configuration.ini) {
            files.push(configuration.ini.clone());
        }
        // PHP_INI_SCAN_DIR replaces the compiled-in scan directory; an empty element stands
        // for it, an empty value scans nothing.
        let scan_dirs: Vec<String> = match scan_override {
            Some(value) => value
                .split(':')
                .filter(|_| !value.is_empty())
                .map(|dir| {
                    if dir.is_empty() {
                        configuration.scan_dir.clone()
                    } else {
                        dir.to_string()
                    }
                })
                .collect(),
            None => vec![configuration.scan_dir.clone()],
        };
        for dir in scan_dirs.iter().filter(|dir| dir.starts_with('/')) {
            // `children` is in path order, which is the alphabetical order PHP reads them in.
            for child in view.children(&normalize_lexically(dir)) {
                if files.len() >= MAX_INI_FILES {
                    break;
                }
                if child.path.ends_with(".ini") && is_file(view, &child.path) {
                    files.push(child.path.clone());
                }
            }
        }

        let mut include_path = None;
        let mut extension_dir = None;
        let mut extensions = Vec::new();
        for file in &files {
            for (key, value) in read_ini(view, file) {
                match key.as_str() {
                    "include_path" => include_path = Some(value),
                    "extension_dir" => extension_dir = Some(value),
                    "extension" | "zend_extension" if !value.is_empty() => {
                        extensions.push((key, value, file.clone()))
                    }
                    _ => {}
                }
            }
        }
        let include = split_include_path(
            include_path
                .as_deref()
                .unwrap_or(configuration.include_path),
        );
        if !self.include_paths.contains(&include) {
            self.include_paths.push(include);
        }
        let extension_dirs = match extension_dir {
            Some(dir) if dir.starts_with('/') => vec![normalize_lexically(&dir)],
            _ => configuration.extension_dirs.clone(),
        };
        for dir in &extension_dirs {
            if !self.extension_dirs.contains(dir) {
                self.extension_dirs.push(dir.clone());
            }
        }
        for file in &files {
            self.add_startup(file, "PHP reads it at start-up");
        }
        for (key, name, ini) in extensions {
            // A missing extension fails the same way in the original image: nothing to keep.
            if let Some(path) = find_extension(view, &extension_dirs, &name) {
                self.add_startup(&path, &format!("{key}={name} in {ini}"));
            }
        }
    }

    fn add_startup(&mut self, path: &str, why: &str) {
        if !self.startup.iter().any(|(kept, _)| kept == path) {
            self.startup.push((path.to_string(), why.to_string()));
        }
    }

    /// The include paths to search, PHP's default when none was discovered.
    fn include_paths(&self) -> Vec<Vec<String>> {
        if self.include_paths.is_empty() {
            vec![split_include_path(DEBIAN_INCLUDE_PATH)]
        } else {
            self.include_paths.clone()
        }
    }
}

/// The PHP configurations the image has, Debian's and the official images'.
fn configurations<V: ImageView + ?Sized>(view: &V, env: &[String]) -> Vec<Configuration> {
    let mut out = Vec::new();
    for version in view.children("/etc/php").into_iter().take(MAX_VERSIONS) {
        if version.kind != EntryKind::Dir {
            continue;
        }
        let name = version.path.rsplit('/').next().unwrap_or_default();
        let extension_dirs = debian_extension_dirs(view, name);
        for sapi in DEBIAN_SAPIS {
            let dir = format!("/etc/php/{name}/{sapi}");
            if is_dir(view, &dir) {
                out.push(Configuration {
                    ini: join(&dir, "php.ini"),
                    scan_dir: join(&dir, "conf.d"),
                    include_path: DEBIAN_INCLUDE_PATH,
                    extension_dirs: extension_dirs.clone(),
                });
            }
        }
    }
    let ini_dir = env_value(env, "PHP_INI_DIR")
        .filter(|dir| dir.starts_with('/'))
        .map(normalize_lexically)
        .unwrap_or_else(|| "/usr/local/etc/php".to_string());
    if is_dir(view, &ini_dir) || is_file(view, "/usr/local/bin/php") {
        out.push(Configuration {
            ini: join(&ini_dir, "php.ini"),
            scan_dir: join(&ini_dir, "conf.d"),
            include_path: OFFICIAL_INCLUDE_PATH,
            extension_dirs: view
                .children("/usr/local/lib/php/extensions")
                .into_iter()
                .filter(|entry| entry.kind == EntryKind::Dir)
                .map(|entry| entry.path.clone())
                .collect(),
        });
    }
    out
}

/// Debian's extension directory for PHP `version`: `/usr/lib/php/<module API>`; every such
/// directory when the version is not in the table.
fn debian_extension_dirs<V: ImageView + ?Sized>(view: &V, version: &str) -> Vec<String> {
    if let Some((_, api)) = MODULE_API.iter().find(|(known, _)| *known == version) {
        let dir = format!("/usr/lib/php/{api}");
        if is_dir(view, &dir) {
            return vec![dir];
        }
    }
    view.children("/usr/lib/php")
        .into_iter()
        .filter(|entry| entry.kind == EntryKind::Dir)
        .filter(|entry| {
            let name = entry.path.rsplit('/').next().unwrap_or_default();
            name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit())
        })
        .map(|entry| entry.path.clone())
        .collect()
}

/// The file PHP loads for `extension=name`: an absolute path as is, else `name` and then
/// `name.so` in each extension directory (`php_load_extension`).
fn find_extension<V: ImageView + ?Sized>(view: &V, dirs: &[String], name: &str) -> Option<String> {
    if name.contains('/') {
        return Some(normalize_lexically(name))
            .filter(|path| name.starts_with('/') && is_file(view, path));
    }
    dirs.iter().find_map(|dir| {
        [join(dir, name), join(dir, &format!("{name}.so"))]
            .into_iter()
            .find(|candidate| is_file(view, candidate))
    })
}

/// `key = value` directives of an ini file, keys lower-cased, values unquoted; sections and
/// `;` comments skipped.
fn read_ini<V: ImageView + ?Sized>(view: &V, path: &str) -> Vec<(String, String)> {
    let Some(text) = read_text(view, path, INI_READ_LIMIT) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with([';', '#', '[']) {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            Some((key.trim().to_ascii_lowercase(), ini_value(value)))
        })
        .collect()
}

fn ini_value(raw: &str) -> String {
    let raw = raw.trim();
    for quote in ['"', '\''] {
        if let Some(rest) = raw.strip_prefix(quote) {
            return rest.split(quote).next().unwrap_or_default().to_string();
        }
    }
    raw.split(';').next().unwrap_or_default().trim().to_string()
}

fn split_include_path(value: &str) -> Vec<String> {
    value
        .split(':')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_string)
        .collect()
}

/// Keeps what PHP loads for `file` (its real path), whose text is `source`.
pub fn dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
) -> Found {
    let workdir = if paths.workdir.starts_with('/') {
        paths.workdir.clone()
    } else {
        "/".to_string()
    };
    let mut scan = Scan {
        view,
        paths,
        file,
        dir: parent_of(file).to_string(),
        workdir,
        src: source,
        tokens: tokenize(source),
        lines: LineIndex::new(source),
        consts: BTreeMap::new(),
        vars: BTreeMap::new(),
        found: Found::default(),
        kept: BTreeSet::new(),
        walks: BTreeMap::new(),
        visits_left: MAX_FILE_VISITS,
    };
    for (path, why) in &paths.startup {
        scan.keep(path, why);
    }
    scan.run();
    scan.found
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

/// A piece of a string value: known text, or something only known at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    /// `may_slash`: the run-time text may contain `/` (anything but a plain variable).
    Dyn {
        may_slash: bool,
    },
}

/// What an expression evaluates to, as far as it is known statically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Value(Vec<Part>);

impl Value {
    fn lit(text: &str) -> Self {
        let mut value = Self::default();
        value.push_lit(text);
        value
    }

    fn dynamic(may_slash: bool) -> Self {
        Self(vec![Part::Dyn { may_slash }])
    }

    fn push_lit(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(Part::Lit(last)) => last.push_str(text),
            _ => self.0.push(Part::Lit(text.to_string())),
        }
    }

    fn push_dyn(&mut self, may_slash: bool) {
        match self.0.last_mut() {
            Some(Part::Dyn { may_slash: last }) => *last |= may_slash,
            _ => self.0.push(Part::Dyn { may_slash }),
        }
    }

    fn append(&mut self, other: Value) {
        for part in other.0 {
            match part {
                Part::Lit(text) => self.push_lit(&text),
                Part::Dyn { may_slash } => self.push_dyn(may_slash),
            }
        }
    }

    /// The whole text when nothing in it is dynamic.
    fn as_static(&self) -> Option<String> {
        match self.0.as_slice() {
            [] => Some(String::new()),
            [Part::Lit(text)] => Some(text.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sym {
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    /// `;`, and `?>`, which ends a statement too.
    Semi,
    Assign,
    /// `.=`
    DotAssign,
    /// `->` and `?->`.
    Arrow,
    DoubleColon,
    DoubleArrow,
    Question,
    Colon,
    /// `||`, `&&`, `??`.
    Logical,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A name: keyword, function, constant (namespace separators included).
    Ident(String),
    /// `$name` (the name without `$`).
    Var(String),
    Str(Value),
    Num(String),
    Sym(Sym),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn ident_end(b: &[u8], mut i: usize, limit: usize) -> usize {
    while i < limit && is_ident_char(b[i]) {
        i += 1;
    }
    i
}

fn find_bytes(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= b.len() {
        return None;
    }
    b[from..]
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| from + at)
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The PHP tokens of `src`; inline HTML produces none, `?>` produces a `;`.
fn tokenize(src: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(code) = find_open_tag(src.as_bytes(), pos) {
        pos = lex_code(src, code, &mut tokens);
    }
    tokens
}

/// Where the code after the next open tag starts.
fn find_open_tag(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < b.len() {
        if b[i] != b'<' || b[i + 1] != b'?' {
            i += 1;
            continue;
        }
        let after = i + 2;
        let rest = &b[after..];
        if rest.len() >= 3
            && rest[..3].eq_ignore_ascii_case(b"php")
            && rest.get(3).is_none_or(|c| c.is_ascii_whitespace())
        {
            return Some(after + 3);
        }
        if rest.first() == Some(&b'=') {
            return Some(after + 1);
        }
        // A short open tag; `<?xml` is not one.
        if rest.first().is_none_or(|c| c.is_ascii_whitespace()) {
            return Some(after);
        }
        i = after;
    }
    None
}

/// Lexes PHP code from `pos` up to and including the next `?>`; returns where HTML resumes.
fn lex_code(src: &str, mut pos: usize, out: &mut Vec<Token>) -> usize {
    let b = src.as_bytes();
    let len = b.len();
    while pos < len {
        let c = b[pos];
        let next = b.get(pos + 1).copied();
        let start = pos;
        let mut push = |tok: Tok, end: usize| out.push(Token { tok, start, end });
        match c {
            _ if c.is_ascii_whitespace() => pos += 1,
            b'?' if next == Some(b'>') => {
                push(Tok::Sym(Sym::Semi), pos + 2);
                return pos + 2;
            }
            b'#' if next == Some(b'[') => {
                push(Tok::Sym(Sym::Other), pos + 1);
                pos += 1;
            }
            b'#' => pos = skip_line_comment(b, pos),
            b'/' if next == Some(b'/') => pos = skip_line_comment(b, pos),
            b'/' if next == Some(b'*') => {
                pos = find_bytes(b, pos + 2, b"*/").map_or(len, |at| at + 2)
            }
            b'\'' => {
                let (value, end) = lex_single_quoted(b, pos + 1);
                push(Tok::Str(value), end);
                pos = end;
            }
            b'"' | b'`' => {
                let (value, end) = lex_interpolated(b, pos + 1, len, Some(c));
                // A backtick string is a shell command's output.
                let value = if c == b'`' {
                    Value::dynamic(true)
                } else {
                    value
                };
                push(Tok::Str(value), end);
                pos = end;
            }
            b'<' if b[pos..].starts_with(b"<<<") => match lex_heredoc(b, pos) {
                Some((value, end)) => {
                    push(Tok::Str(value), end);
                    pos = end;
                }
                None => {
                    push(Tok::Sym(Sym::Other), pos + 3);
                    pos += 3;
                }
            },
            b'$' if next.is_some_and(is_ident_start) => {
                let end = ident_end(b, pos + 1, len);
                push(Tok::Var(text_of(&b[pos + 1..end])), end);
                pos = end;
            }
            _ if is_ident_start(c) || (c == b'\\' && next.is_some_and(is_ident_start)) => {
                let mut end = pos + 1;
                while end < len
                    && (is_ident_char(b[end])
                        || (b[end] == b'\\' && b.get(end + 1).is_some_and(|&n| is_ident_start(n))))
                {
                    end += 1;
                }
                push(Tok::Ident(text_of(&b[pos..end])), end);
                pos = end;
            }
            _ if c.is_ascii_digit() => {
                let mut end = pos + 1;
                while end < len
                    && (is_ident_char(b[end])
                        || (b[end] == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit)))
                {
                    end += 1;
                }
                push(Tok::Num(text_of(&b[pos..end])), end);
                pos = end;
            }
            _ => {
                let (sym, width) = symbol(&b[pos..]);
                push(Tok::Sym(sym), pos + width);
                pos += width;
            }
        }
    }
    pos
}

/// The end of a `//` or `#` comment: the newline, or a `?>`, which still closes the PHP block.
fn skip_line_comment(b: &[u8], mut pos: usize) -> usize {
    while pos < b.len() {
        if b[pos] == b'\n' || (b[pos] == b'?' && b.get(pos + 1) == Some(&b'>')) {
            return pos;
        }
        pos += 1;
    }
    pos
}

fn symbol(rest: &[u8]) -> (Sym, usize) {
    const THREE: &[(&[u8], Sym)] = &[
        (b"?->", Sym::Arrow),
        (b"...", Sym::Other),
        (b"??=", Sym::Other),
        (b"===", Sym::Other),
        (b"!==", Sym::Other),
        (b"<=>", Sym::Other),
        (b"**=", Sym::Other),
        (b"<<=", Sym::Other),
        (b">>=", Sym::Other),
    ];
    const TWO: &[(&[u8], Sym)] = &[
        (b"->", Sym::Arrow),
        (b"::", Sym::DoubleColon),
        (b"=>", Sym::DoubleArrow),
        (b"??", Sym::Logical),
        (b"||", Sym::Logical),
        (b"&&", Sym::Logical),
        (b".=", Sym::DotAssign),
        (b"==", Sym::Other),
        (b"!=", Sym::Other),
        (b"<=", Sym::Other),
        (b">=", Sym::Other),
        (b"+=", Sym::Other),
        (b"-=", Sym::Other),
        (b"*=", Sym::Other),
        (b"/=", Sym::Other),
        (b"%=", Sym::Other),
        (b"&=", Sym::Other),
        (b"|=", Sym::Other),
        (b"^=", Sym::Other),
    ];
    for (text, sym) in THREE.iter().chain(TWO) {
        if rest.starts_with(text) {
            return (*sym, text.len());
        }
    }
    let sym = match rest.first() {
        Some(b'.') => Sym::Dot,
        Some(b'(') => Sym::LParen,
        Some(b')') => Sym::RParen,
        Some(b'[') => Sym::LBracket,
        Some(b']') => Sym::RBracket,
        Some(b'{') => Sym::LBrace,
        Some(b'}') => Sym::RBrace,
        Some(b',') => Sym::Comma,
        Some(b';') => Sym::Semi,
        Some(b'=') => Sym::Assign,
        Some(b'?') => Sym::Question,
        Some(b':') => Sym::Colon,
        _ => Sym::Other,
    };
    (sym, 1)
}

/// A `'..'` string from just after its quote: only `\'` and `\\` are escapes.
fn lex_single_quoted(b: &[u8], mut i: usize) -> (Value, usize) {
    let mut text = Vec::new();
    while i < b.len() {
        match b[i] {
            b'\'' => return (Value::lit(&text_of(&text)), i + 1),
            b'\\' if matches!(b.get(i + 1), Some(b'\'') | Some(b'\\')) => {
                text.push(b[i + 1]);
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    (Value::lit(&text_of(&text)), i)
}

/// An interpolating string from `i` up to `quote` (or `limit` for a heredoc body).
fn lex_interpolated(b: &[u8], mut i: usize, limit: usize, quote: Option<u8>) -> (Value, usize) {
    let mut value = Value::default();
    let mut text = Vec::new();
    while i < limit {
        let c = b[i];
        if Some(c) == quote {
            i += 1;
            break;
        }
        let next = if i + 1 < limit { Some(b[i + 1]) } else { None };
        match c {
            b'\\' if next.is_some() => {
                let (bytes, used) = escape(&b[..limit], i + 1, quote);
                text.extend_from_slice(&bytes);
                i += 1 + used;
            }
            b'$' if next.is_some_and(is_ident_start) => {
                value.push_lit(&text_of(&std::mem::take(&mut text)));
                i = ident_end(b, i + 1, limit);
                // Simple syntax: one `[..]` or `->name` after the variable.
                if i < limit && b[i] == b'[' {
                    i = b[i..limit]
                        .iter()
                        .position(|&c| c == b']')
                        .map_or(limit, |at| i + at + 1);
                } else if b[i..limit].starts_with(b"->")
                    && b.get(i + 2).is_some_and(|&c| is_ident_start(c))
                {
                    i = ident_end(b, i + 2, limit);
                }
                value.push_dyn(false);
            }
            b'{' if next == Some(b'$') => {
                value.push_lit(&text_of(&std::mem::take(&mut text)));
                let end = skip_braces(b, i, limit);
                let calls = b[i..end].contains(&b'(');
                value.push_dyn(calls);
                i = end;
            }
            b'$' if next == Some(b'{') => {
                value.push_lit(&text_of(&std::mem::take(&mut text)));
                i = skip_braces(b, i + 1, limit);
                value.push_dyn(true);
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    value.push_lit(&text_of(&text));
    (value, i)
}

/// A double-quote escape after its backslash at `at`: the bytes it stands for and how many
/// bytes it used (0 keeps the backslash itself, as PHP does for unknown escapes).
fn escape(b: &[u8], at: usize, quote: Option<u8>) -> (Vec<u8>, usize) {
    let Some(&c) = b.get(at) else {
        return (vec![b'\\'], 0);
    };
    let simple = match c {
        b'n' => Some(b'\n'),
        b't' => Some(b'\t'),
        b'r' => Some(b'\r'),
        b'v' => Some(0x0b),
        b'e' => Some(0x1b),
        b'f' => Some(0x0c),
        b'\\' | b'$' => Some(c),
        _ if Some(c) == quote => Some(c),
        _ => None,
    };
    if let Some(byte) = simple {
        return (vec![byte], 1);
    }
    if (b'0'..=b'7').contains(&c) {
        let digits = b[at..]
            .iter()
            .take(3)
            .take_while(|d| (b'0'..=b'7').contains(d))
            .count();
        let value = b[at..at + digits]
            .iter()
            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
        return (vec![(value & 0xff) as u8], digits);
    }
    if c == b'x' {
        let digits = b[at + 1..]
            .iter()
            .take(2)
            .take_while(|d| d.is_ascii_hexdigit())
            .count();
        if digits > 0 {
            let hex = text_of(&b[at + 1..at + 1 + digits]);
            return (vec![u8::from_str_radix(&hex, 16).unwrap_or(0)], 1 + digits);
        }
    }
    (vec![b'\\'], 0)
}

/// From the `{` at `open`, the index after its matching `}` (quoted strings inside skipped).
fn skip_braces(b: &[u8], open: usize, limit: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < limit {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < limit && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    limit
}

/// A heredoc or nowdoc at the `<<<` at `pos`: its value and where it ends; `None` when it is
/// not one after all. The closing label may be indented (PHP 7.3+); that indentation is removed
/// from every line of the body.
fn lex_heredoc(b: &[u8], pos: usize) -> Option<(Value, usize)> {
    let len = b.len();
    let mut i = pos + 3;
    while i < len && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    let quote = match b.get(i) {
        Some(&q @ (b'\'' | b'"')) => {
            i += 1;
            Some(q)
        }
        _ => None,
    };
    if !b.get(i).copied().is_some_and(is_ident_start) {
        return None;
    }
    let label_start = i;
    i = ident_end(b, i, len);
    let label = &b[label_start..i];
    if let Some(q) = quote {
        if b.get(i) != Some(&q) {
            return None;
        }
        i += 1;
    }
    if b.get(i) == Some(&b'\r') {
        i += 1;
    }
    if b.get(i) != Some(&b'\n') {
        return None;
    }
    let body_start = i + 1;
    let mut line = body_start;
    while line < len {
        let mut first = line;
        while first < len && (b[first] == b' ' || b[first] == b'\t') {
            first += 1;
        }
        let closes = b[first..].starts_with(label)
            && !b
                .get(first + label.len())
                .copied()
                .is_some_and(is_ident_char);
        if closes {
            // The newline before the closing label is not part of the value.
            let mut body_end = line.saturating_sub(1).max(body_start);
            if body_end > body_start && b[body_end - 1] == b'\r' {
                body_end -= 1;
            }
            let indent = first - line;
            let value = if quote == Some(b'\'') {
                Value::lit(&dedent(&text_of(&b[body_start..body_end]), indent))
            } else {
                let (value, _) = lex_interpolated(b, body_start, body_end, None);
                match value.as_static() {
                    Some(text) => Value::lit(&dedent(&text, indent)),
                    None => value,
                }
            };
            return Some((value, first + label.len()));
        }
        line = find_bytes(b, line, b"\n").map_or(len, |at| at + 1);
    }
    // Unterminated: the rest of the file is the body.
    let value = if quote == Some(b'\'') {
        Value::lit(&text_of(&b[body_start.min(len)..]))
    } else {
        lex_interpolated(b, body_start.min(len), len, None).0
    };
    Some((value, len))
}

fn dedent(text: &str, indent: usize) -> String {
    if indent == 0 {
        return text.to_string();
    }
    text.split('\n')
        .map(|line| {
            let strip = line
                .bytes()
                .take(indent)
                .take_while(|&c| c == b' ' || c == b'\t')
                .count();
            &line[strip..]
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// Scanner

struct Scan<'a, V: ?Sized> {
    view: &'a V,
    paths: &'a Paths,
    file: &'a str,
    dir: String,
    workdir: String,
    src: &'a str,
    tokens: Vec<Token>,
    lines: LineIndex,
    /// Constants defined so far in the file, with a static value.
    consts: BTreeMap<String, String>,
    /// Values assigned so far to each variable (`$file = __DIR__ . '/lib/' . $name;`),
    /// whatever the scope: a later `include $file` may load any of them.
    vars: BTreeMap<String, Vec<Assigned>>,
    found: Found,
    /// Paths already in `found` (patterns can keep thousands).
    kept: BTreeSet<String>,
    /// Pattern walks done, by (directory, pattern, recursive, depth): a file may repeat one.
    walks: BTreeMap<(String, String, bool, usize), Rc<Walk>>,
    /// Directory entries the patterns of this file may still look at.
    visits_left: usize,
}

/// A value assigned to a variable, and the assignment as written.
struct Assigned {
    value: Value,
    shown: String,
}

/// Values kept per variable; more assignments than this are not told apart.
const MAX_ASSIGNMENTS: usize = 16;

/// The files a pattern matched in one directory; `cut` when a limit stopped the walk.
struct Walk {
    files: Vec<String>,
    cut: bool,
    /// Its files are in `found` already (a repeated pattern keeps nothing new).
    kept: std::cell::Cell<bool>,
}

impl<V: ImageView + ?Sized> Scan<'_, V> {
    fn run(&mut self) {
        for i in 0..self.tokens.len() {
            let keyword = match &self.tokens[i].tok {
                Tok::Ident(name) => name.to_ascii_lowercase(),
                Tok::Var(name) => {
                    let name = name.clone();
                    self.assignment(i, &name);
                    continue;
                }
                _ => continue,
            };
            if self.is_member_name(i) {
                continue;
            }
            match keyword.as_str() {
                "include" | "include_once" | "require" | "require_once" => self.include(i),
                "define" => self.define(i),
                "const" => self.constant_declaration(i),
                "dl" => self.dl(i),
                name if FILE_READERS.contains(&name.trim_start_matches('\\')) => self.file_read(i),
                _ => {}
            }
        }
    }

    fn sym(&self, i: usize) -> Option<Sym> {
        match self.tokens.get(i).map(|token| &token.tok) {
            Some(Tok::Sym(sym)) => Some(*sym),
            _ => None,
        }
    }

    /// A method, property, class constant or named argument that only shares a keyword's name
    /// (`$view->include(..)`, `Foo::require`, `f(include: 1)`).
    fn is_member_name(&self, i: usize) -> bool {
        let before = i.checked_sub(1).and_then(|before| self.sym(before));
        let after = self.sym(i + 1);
        matches!(before, Some(Sym::Arrow) | Some(Sym::DoubleColon))
            || after == Some(Sym::Colon)
            || i.checked_sub(1).is_some_and(|before| {
                matches!(&self.tokens[before].tok, Tok::Ident(word)
                    if word.eq_ignore_ascii_case("function") || word.eq_ignore_ascii_case("fn"))
            })
    }

    fn line(&self, i: usize) -> u32 {
        self.lines
            .line(self.tokens.get(i).map_or(0, |token| token.start))
    }

    /// The source text of tokens `from..to`, whitespace collapsed, shortened.
    fn snippet(&self, from: usize, to: usize) -> String {
        let (Some(first), Some(last)) =
            (self.tokens.get(from), self.tokens.get(to.saturating_sub(1)))
        else {
            return String::new();
        };
        let text = self.src.get(first.start..last.end).unwrap_or_default();
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.chars().count() > MAX_WHY_CHARS {
            let short: String = collapsed.chars().take(MAX_WHY_CHARS).collect();
            format!("{short}...")
        } else {
            collapsed
        }
    }

    /// The end (exclusive) of the expression starting at token `start`: a `;`/`?>`, or at
    /// nesting depth 0 a closing bracket, `,`, `=>`, `?`, `:`, `||`, `&&`, `??`, `or`, `and`,
    /// `xor`.
    fn expression_end(&self, start: usize) -> usize {
        let mut depth = 0usize;
        let mut j = start;
        while j < self.tokens.len() && j - start < MAX_EXPR_TOKENS {
            match &self.tokens[j].tok {
                Tok::Sym(Sym::LParen | Sym::LBracket | Sym::LBrace) => depth += 1,
                Tok::Sym(Sym::RParen | Sym::RBracket | Sym::RBrace) => {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                }
                // A `;` ends the statement however unbalanced the brackets before it are.
                Tok::Sym(Sym::Semi) => break,
                Tok::Sym(
                    Sym::Comma | Sym::DoubleArrow | Sym::Question | Sym::Colon | Sym::Logical,
                ) if depth == 0 => break,
                Tok::Ident(word)
                    if depth == 0
                        && ["or", "and", "xor"]
                            .iter()
                            .any(|op| word.eq_ignore_ascii_case(op)) =>
                {
                    break
                }
                _ => {}
            }
            j += 1;
        }
        j
    }

    /// The index of the bracket closing the one at `open`.
    fn matching(&self, open: usize, limit: usize) -> Option<usize> {
        let mut depth = 0usize;
        for j in open..limit.min(self.tokens.len()) {
            match self.sym(j) {
                Some(Sym::LParen | Sym::LBracket | Sym::LBrace) => depth += 1,
                Some(Sym::RParen | Sym::RBracket | Sym::RBrace) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Evaluates tokens `start..end`: operands joined by `.`.
    fn eval(&self, start: usize, end: usize, depth: usize) -> Value {
        if depth > MAX_EVAL_DEPTH || start >= end {
            return Value::dynamic(true);
        }
        let mut value = Value::default();
        let mut nesting = 0usize;
        let mut operand = start;
        for j in start..end {
            match self.sym(j) {
                Some(Sym::LParen | Sym::LBracket | Sym::LBrace) => nesting += 1,
                Some(Sym::RParen | Sym::RBracket | Sym::RBrace) => {
                    nesting = nesting.saturating_sub(1)
                }
                Some(Sym::Dot) if nesting == 0 => {
                    value.append(self.eval_operand(operand, j, depth));
                    operand = j + 1;
                }
                _ => {}
            }
        }
        value.append(self.eval_operand(operand, end, depth));
        value
    }

    fn eval_operand(&self, start: usize, end: usize, depth: usize) -> Value {
        let toks: Vec<&Tok> = self.tokens[start..end].iter().map(|t| &t.tok).collect();
        match toks.as_slice() {
            [Tok::Str(value)] => value.clone(),
            [Tok::Num(number)] => Value::lit(number),
            [Tok::Ident(name)] => self
                .constant(name)
                .map_or_else(|| Value::dynamic(true), |text| Value::lit(&text)),
            [Tok::Var(name)] => match self.vars.get(name).map(Vec::as_slice) {
                // Assigned once so far, statically: that value.
                Some([only]) if only.value.as_static().is_some() => only.value.clone(),
                _ => Value::dynamic(false),
            },
            [Tok::Var(_), rest @ ..] if is_variable_access(rest) => Value::dynamic(false),
            [Tok::Sym(Sym::LParen), ..] if self.matching(start, end) == Some(end - 1) => {
                self.eval(start + 1, end - 1, depth + 1)
            }
            [Tok::Ident(name), Tok::Sym(Sym::LParen), ..]
                if self.matching(start + 1, end) == Some(end - 1) =>
            {
                self.call(name, start + 2, end - 1, depth + 1)
            }
            _ => Value::dynamic(true),
        }
    }

    /// The value of constant `name`: the magic ones, PHP's path constants, or one defined
    /// earlier in the file.
    fn constant(&self, name: &str) -> Option<String> {
        let name = name.trim_start_matches('\\');
        match name.to_ascii_uppercase().as_str() {
            "__DIR__" => return Some(self.dir.clone()),
            "__FILE__" => return Some(self.file.to_string()),
            "DIRECTORY_SEPARATOR" => return Some("/".to_string()),
            "PATH_SEPARATOR" => return Some(":".to_string()),
            _ => {}
        }
        self.consts.get(name).cloned()
    }

    /// A function call with arguments in tokens `start..end`; only path functions evaluate.
    fn call(&self, name: &str, start: usize, end: usize, depth: usize) -> Value {
        let name = name.trim_start_matches('\\').to_ascii_lowercase();
        let arguments = self.split_arguments(start, end);
        let argument = |n: usize| {
            arguments
                .get(n)
                .map(|&(a, b)| self.eval(a, b, depth).as_static())
        };
        match name.as_str() {
            "dirname" => {
                let levels = match arguments.get(1) {
                    None => Some(1),
                    Some(&(a, b)) => match self.tokens[a..b]
                        .iter()
                        .map(|t| &t.tok)
                        .collect::<Vec<_>>()
                        .as_slice()
                    {
                        [Tok::Num(n)] => n.parse::<usize>().ok().filter(|n| *n >= 1),
                        _ => None,
                    },
                };
                match (argument(0).flatten(), levels) {
                    (Some(path), Some(levels)) => {
                        let mut path = path;
                        for _ in 0..levels.min(64) {
                            path = php_dirname(&path);
                        }
                        Value::lit(&path)
                    }
                    _ => Value::dynamic(true),
                }
            }
            "realpath" => match argument(0).flatten() {
                Some(path) if path.starts_with('/') => Value::lit(&normalize_lexically(&path)),
                Some(path) => Value::lit(&path),
                None => Value::dynamic(true),
            },
            _ => Value::dynamic(true),
        }
    }

    /// The argument token ranges of a call, split at top-level commas.
    fn split_arguments(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut nesting = 0usize;
        let mut from = start;
        for j in start..end {
            match self.sym(j) {
                Some(Sym::LParen | Sym::LBracket | Sym::LBrace) => nesting += 1,
                Some(Sym::RParen | Sym::RBracket | Sym::RBrace) => {
                    nesting = nesting.saturating_sub(1)
                }
                Some(Sym::Comma) if nesting == 0 => {
                    out.push((from, j));
                    from = j + 1;
                }
                _ => {}
            }
        }
        if from < end {
            out.push((from, end));
        }
        out
    }

    /// `define('NAME', <expr>)` with a static value.
    fn define(&mut self, i: usize) {
        if self.sym(i + 1) != Some(Sym::LParen) || self.sym(i + 3) != Some(Sym::Comma) {
            return;
        }
        let Some(Tok::Str(name)) = self.tokens.get(i + 2).map(|t| &t.tok) else {
            return;
        };
        let Some(name) = name.as_static() else {
            return;
        };
        let end = self.expression_end(i + 4);
        if let Some(value) = self.eval(i + 4, end, 0).as_static() {
            self.consts
                .insert(name.trim_start_matches('\\').to_string(), value);
        }
    }

    /// `const NAME = <expr>[, NAME2 = <expr>];` with static values.
    fn constant_declaration(&mut self, i: usize) {
        let mut j = i + 1;
        while let Some(Tok::Ident(name)) = self.tokens.get(j).map(|t| &t.tok) {
            if self.sym(j + 1) != Some(Sym::Assign) {
                return;
            }
            let name = name.clone();
            let end = self.expression_end(j + 2);
            if let Some(value) = self.eval(j + 2, end, 0).as_static() {
                self.consts.insert(name, value);
            }
            if self.sym(end) != Some(Sym::Comma) {
                return;
            }
            j = end + 1;
        }
    }

    /// `file_get_contents('..')` and the like with a static path: relative to the current
    /// directory, as file functions are (no include_path).
    fn file_read(&mut self, i: usize) {
        if self.sym(i + 1) != Some(Sym::LParen) {
            return;
        }
        let end = self.expression_end(i + 2);
        let Some(path) = self.eval(i + 2, end, 0).as_static() else {
            return;
        };
        if path.is_empty() || path.contains("://") {
            return;
        }
        let candidates = if path.starts_with('/') {
            vec![path.clone()]
        } else {
            self.cwds().iter().map(|cwd| join(cwd, &path)).collect()
        };
        let why = self.snippet(i, end + 1);
        for candidate in candidates {
            let candidate = normalize_lexically(&candidate);
            if is_file(self.view, &candidate) {
                self.keep(&candidate, &why);
            }
        }
    }

    /// `dl('name')`: an extension loaded at run time, from the extension directory.
    fn dl(&mut self, i: usize) {
        if self.sym(i + 1) != Some(Sym::LParen) {
            return;
        }
        let end = self.expression_end(i + 2);
        let why = self.snippet(i, end + 1);
        let line = self.line(i);
        match self.eval(i + 2, end, 0).as_static() {
            Some(name) if !name.is_empty() => {
                match find_extension(self.view, &self.paths.extension_dirs, &name) {
                    Some(path) => self.keep(&path, &why),
                    None => self
                        .found
                        .unresolved(line, format!("{why}: no {name} in the extension directory")),
                }
            }
            _ => self
                .found
                .unresolved(line, format!("{why}: extension name is not static")),
        }
    }

    /// `$name = <expr>` / `$name .= <expr>` at token `i`: recorded for later includes.
    fn assignment(&mut self, i: usize, name: &str) {
        let before = i.checked_sub(1).and_then(|before| self.sym(before));
        if matches!(before, Some(Sym::Arrow | Sym::DoubleColon)) {
            return;
        }
        let append = match self.sym(i + 1) {
            Some(Sym::Assign) => false,
            Some(Sym::DotAssign) => true,
            _ => return,
        };
        let end = self.expression_end(i + 2);
        let value = self.eval(i + 2, end, 0);
        let shown = self.snippet(i, end);
        let assigned = self.vars.entry(name.to_string()).or_default();
        if append {
            if assigned.is_empty() {
                assigned.push(Assigned {
                    value: Value::dynamic(true),
                    shown: shown.clone(),
                });
            }
            for earlier in assigned.iter_mut() {
                earlier.value.append(value.clone());
                earlier.shown = format!("{}; {shown}", earlier.shown);
            }
        } else if assigned.len() < MAX_ASSIGNMENTS {
            assigned.push(Assigned { value, shown });
        } else {
            // Too many to follow: the variable is just dynamic from now on.
            assigned.clear();
            assigned.push(Assigned {
                value: Value::dynamic(true),
                shown,
            });
        }
    }

    fn include(&mut self, i: usize) {
        let end = self.expression_end(i + 1);
        if end == i + 1 {
            return;
        }
        let why = self.snippet(i, end);
        let line = self.line(i);
        if end - (i + 1) >= MAX_EXPR_TOKENS {
            self.found
                .unresolved(line, format!("{why}: expression too long to evaluate"));
            return;
        }
        // `include $file;`: whatever the file assigned to `$file` before.
        if let [Token {
            tok: Tok::Var(name),
            ..
        }] = &self.tokens[i + 1..end]
        {
            let values: Vec<(Value, String)> = self
                .vars
                .get(name)
                .map(|assigned| {
                    assigned
                        .iter()
                        .map(|a| (a.value.clone(), format!("{why} ({})", a.shown)))
                        .collect()
                })
                .unwrap_or_default();
            for (value, why) in &values {
                self.include_value(why, value, line);
            }
            if !values.is_empty() {
                return;
            }
        }
        let value = self.eval(i + 1, end, 0);
        self.include_value(&why, &value, line);
    }

    fn include_value(&mut self, why: &str, value: &Value, line: u32) {
        match value.as_static() {
            Some(path) => self.include_static(why, &path, line),
            None => self.include_pattern(why, value, line),
        }
    }

    fn include_static(&mut self, why: &str, path: &str, line: u32) {
        let path = path.strip_prefix("file://").unwrap_or(path);
        if path.is_empty() {
            self.found.unresolved(line, format!("{why}: empty path"));
            return;
        }
        if path.contains("://") {
            self.found
                .unresolved(line, format!("{why}: stream wrapper {path} not followed"));
            return;
        }
        let hits = self.lookup(path);
        if hits.is_empty() {
            self.found.unresolved(
                line,
                format!("{why}: {path} not found (include_path, the script's directory, the working directory)"),
            );
        }
        for hit in hits {
            self.keep(&hit, why);
            if hit.ends_with("/vendor/autoload.php") {
                self.keep_composer(&hit, why, line);
            }
        }
    }

    /// The current directories a relative path may be resolved against: the script's (FPM,
    /// CGI, Apache chdir there) and the WORKDIR (the CLI).
    fn cwds(&self) -> Vec<String> {
        let mut out = vec![self.dir.clone()];
        if self.workdir != self.dir {
            out.push(self.workdir.clone());
        }
        out
    }

    /// Every file a static include of `path` may open, one per possible current directory and
    /// include path (the first match of each, as PHP stops there).
    fn lookup(&self, path: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let check = |candidate: &str, out: &mut Vec<String>| {
            let candidate = normalize_lexically(candidate);
            let hit = is_file(self.view, &candidate);
            if hit && !out.contains(&candidate) {
                out.push(candidate);
            }
            hit
        };
        if path.starts_with('/') {
            check(path, &mut out);
            return out;
        }
        let cwds = self.cwds();
        if path.starts_with("./") || path.starts_with("../") {
            for cwd in &cwds {
                check(&join(cwd, path), &mut out);
            }
            return out;
        }
        for cwd in &cwds {
            for include_path in self.paths.include_paths() {
                let found = include_path.iter().any(|entry| {
                    let base = match entry.as_str() {
                        "." => cwd.clone(),
                        absolute if absolute.starts_with('/') => absolute.to_string(),
                        relative => join(cwd, relative),
                    };
                    check(&join(&base, path), &mut out)
                });
                if !found {
                    check(&join(&self.dir, path), &mut out);
                }
            }
        }
        out
    }

    /// Directories a relative or absolute directory prefix of a pattern may name.
    fn pattern_bases(&self, base: &str) -> Vec<String> {
        let mut candidates = Vec::new();
        let cwds = self.cwds();
        if base.starts_with('/') {
            candidates.push(base.to_string());
        } else if base.starts_with("./") || base.starts_with("../") {
            candidates.extend(cwds.iter().map(|cwd| join(cwd, base)));
        } else {
            for include_path in self.paths.include_paths() {
                for entry in include_path {
                    if entry == "." {
                        candidates.extend(cwds.iter().map(|cwd| join(cwd, base)));
                    } else if entry.starts_with('/') {
                        candidates.push(join(&entry, base));
                    } else {
                        candidates.extend(cwds.iter().map(|cwd| join(&join(cwd, &entry), base)));
                    }
                }
            }
            candidates.push(join(&self.dir, base));
        }
        let mut out: Vec<String> = Vec::new();
        for candidate in candidates {
            let candidate = normalize_lexically(&candidate);
            if is_dir(self.view, &candidate) && !out.contains(&candidate) {
                out.push(candidate);
            }
        }
        out
    }

    /// A static directory prefix and a dynamic rest: every file there matching the static
    /// suffix.
    fn include_pattern(&mut self, why: &str, value: &Value, line: u32) {
        let (prefix, rest) = match value.0.split_first() {
            Some((Part::Lit(prefix), rest)) => (prefix.as_str(), rest),
            _ => {
                self.found
                    .unresolved(line, format!("{why}: the path is not static"));
                return;
            }
        };
        let (base, name_prefix) = match prefix.rfind('/') {
            Some(at) => (&prefix[..=at], &prefix[at + 1..]),
            None => ("", prefix),
        };
        let mut pattern = name_prefix.to_string();
        let mut recursive = false;
        for part in rest {
            match part {
                Part::Lit(text) => pattern.push_str(text),
                Part::Dyn { may_slash } => {
                    pattern.push('*');
                    recursive |= *may_slash;
                }
            }
        }
        let shown = format!(
            "{base}{pattern}{}",
            if recursive {
                " in subdirectories too"
            } else {
                ""
            }
        );
        let bases = self.pattern_bases(if base.is_empty() { "." } else { base });
        if bases.is_empty() {
            self.found.unresolved(
                line,
                format!("{why}: dynamic path {shown}: its directory is not in the image"),
            );
            return;
        }
        let max_depth = if recursive {
            MAX_PATTERN_DEPTH
        } else {
            pattern.matches('/').count()
        };
        let mut matched = 0usize;
        let mut truncated = false;
        for dir in &bases {
            let walk = self.walk(dir, &pattern, recursive, max_depth);
            let room = MAX_PATTERN_FILES - matched;
            truncated |= walk.cut || walk.files.len() > room;
            matched += walk.files.len().min(room);
            let why = format!(
                "{why} (any {dir}/{pattern}{})",
                if recursive { ", any depth" } else { "" }
            );
            if !walk.kept.get() {
                for file in walk.files.iter().take(room) {
                    self.keep(file, &why);
                }
                walk.kept.set(room >= walk.files.len());
            }
            if matched >= MAX_PATTERN_FILES {
                break;
            }
        }
        if matched == 0 {
            self.found
                .unresolved(line, format!("{why}: dynamic path {shown} matches no file"));
        } else if truncated {
            self.found.unresolved(
                line,
                format!("{why}: dynamic path {shown} matches too many files (over {MAX_PATTERN_FILES}, or too large a tree to walk); kept those found first"),
            );
        }
    }

    /// Composer's autoloader: the class maps and loader in `vendor/composer/`.
    fn keep_composer(&mut self, autoload: &str, why: &str, line: u32) {
        let dir = join(parent_of(autoload), "composer");
        let walk = self.walk(&dir, "*", true, 2);
        let keep_why = format!("{why} (Composer's autoloader)");
        if !walk.kept.replace(true) {
            for file in &walk.files {
                self.keep(file, &keep_why);
            }
        }
        self.found.unresolved(
            line,
            format!("{why}: classes Composer loads on demand (PSR-4, PSR-0, classmap) are not followed; kept {dir}/"),
        );
    }

    /// [`walk_matching`], once per (directory, pattern) and within the file's visit budget.
    fn walk(&mut self, dir: &str, pattern: &str, recursive: bool, max_depth: usize) -> Rc<Walk> {
        let key = (dir.to_string(), pattern.to_string(), recursive, max_depth);
        if let Some(walk) = self.walks.get(&key) {
            return walk.clone();
        }
        let (files, cut) = walk_matching(
            self.view,
            dir,
            pattern,
            recursive,
            max_depth,
            &mut self.visits_left,
        );
        let walk = Rc::new(Walk {
            files,
            cut,
            kept: std::cell::Cell::new(false),
        });
        self.walks.insert(key, walk.clone());
        walk
    }

    fn keep(&mut self, path: &str, why: &str) {
        if !self.kept.contains(path) {
            self.kept.insert(path.to_string());
            self.found.keep(path, why);
        }
    }
}

/// Tokens after a `$variable` that keep it a plain value: `[..]` and `->name` chains.
fn is_variable_access(rest: &[&Tok]) -> bool {
    let mut i = 0;
    let mut depth = 0usize;
    while i < rest.len() {
        match rest[i] {
            Tok::Sym(Sym::LBracket) => depth += 1,
            Tok::Sym(Sym::RBracket) => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Tok::Sym(Sym::Arrow) if matches!(rest.get(i + 1), Some(Tok::Ident(_))) => i += 1,
            _ => return false,
        }
        i += 1;
    }
    depth == 0
}

/// PHP's `dirname()` of one level.
fn php_dirname(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.starts_with('/') { "/" } else { "." }.to_string();
    }
    match trimmed.rfind('/') {
        None => ".".to_string(),
        Some(at) => {
            let parent = trimmed[..at].trim_end_matches('/');
            if parent.is_empty() {
                "/".to_string()
            } else {
                parent.to_string()
            }
        }
    }
}

/// Files under `dir` whose path relative to it matches `pattern` (`*` crosses `/` only when
/// `recursive`), sorted, at most [`MAX_PATTERN_FILES`]; the bool says a limit (files, or
/// entries looked at: [`MAX_PATTERN_VISITS`] and what is left of `visits_left`) cut the walk
/// short. Symlinked directories are not entered (no cycles); symlinks to files count.
fn walk_matching<V: ImageView + ?Sized>(
    view: &V,
    dir: &str,
    pattern: &str,
    recursive: bool,
    max_depth: usize,
    visits_left: &mut usize,
) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let Ok(real) = resolve(view, dir, true) else {
        return (out, false);
    };
    let mut stack = vec![(real.path, String::new(), 0usize)];
    let mut visits = 0usize;
    let mut cut = false;
    'walk: while let Some((real_dir, relative, depth)) = stack.pop() {
        for child in view.children(&real_dir) {
            if visits >= MAX_PATTERN_VISITS || *visits_left == 0 {
                cut = true;
                break 'walk;
            }
            visits += 1;
            *visits_left -= 1;
            let name = child.path.rsplit('/').next().unwrap_or_default();
            let relative_name = if relative.is_empty() {
                name.to_string()
            } else {
                format!("{relative}/{name}")
            };
            let is_candidate = match &child.kind {
                EntryKind::Dir => {
                    if depth < max_depth {
                        stack.push((child.path.clone(), relative_name.clone(), depth + 1));
                    }
                    false
                }
                EntryKind::File | EntryKind::Hardlink { .. } => true,
                EntryKind::Symlink { .. } => is_file(view, &child.path),
                _ => false,
            };
            if is_candidate && glob_match(pattern.as_bytes(), relative_name.as_bytes(), recursive) {
                if out.len() >= MAX_PATTERN_FILES {
                    cut = true;
                    break 'walk;
                }
                out.push(join(dir, &relative_name));
            }
        }
    }
    out.sort();
    (out, cut)
}

/// `*`-only glob match; `*` matches `/` only when `cross_slash`.
fn glob_match(pattern: &[u8], text: &[u8], cross_slash: bool) -> bool {
    let mut previous = vec![false; text.len() + 1];
    previous[0] = true;
    for &p in pattern {
        let mut current = vec![false; text.len() + 1];
        if p == b'*' {
            current[0] = previous[0];
            for j in 1..=text.len() {
                current[j] =
                    previous[j] || (current[j - 1] && (cross_slash || text[j - 1] != b'/'));
            }
        } else {
            for j in 1..=text.len() {
                current[j] = previous[j - 1] && text[j - 1] == p;
            }
        }
        previous = current;
    }
    previous[text.len()]
}

fn is_file<V: ImageView + ?Sized>(view: &V, path: &str) -> bool {
    resolve(view, path, true).is_ok_and(|found| {
        view.entry(&found.path)
            .is_some_and(|entry| matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. }))
    })
}

fn is_dir<V: ImageView + ?Sized>(view: &V, path: &str) -> bool {
    resolve(view, path, true).is_ok_and(|found| {
        view.entry(&found.path)
            .is_some_and(|entry| entry.kind == EntryKind::Dir)
    })
}

/// The text of a file, symlinks followed.
fn read_text<V: ImageView + ?Sized>(view: &V, path: &str, limit: usize) -> Option<String> {
    let real = resolve(view, path, true).ok()?;
    let bytes = view.read(&real.path, limit).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    fn scan(image: &FakeImage, file: &str, source: &str) -> Found {
        let paths = Paths::discover(image, &[], "/app");
        dependencies(image, &paths, file, source)
    }

    fn kept(found: &Found) -> Vec<&str> {
        found.paths.iter().map(|d| d.path.as_str()).collect()
    }

    fn app() -> FakeImage {
        let mut image = FakeImage::new();
        image.file("/app/index.php", b"");
        image.file("/app/lib/db.php", b"");
        image.file("/app/lib/util.php", b"");
        image.file("/app/config.php", b"");
        image
    }

    #[test]
    fn literal_include_resolves_against_the_script_dir() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php\ninclude 'lib/db.php';\nrequire_once(\"lib/util.php\");\n",
        );
        assert_eq!(kept(&found), ["/app/lib/db.php", "/app/lib/util.php"]);
        assert_eq!(found.paths[0].why, "include 'lib/db.php'");
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn dir_constant_concatenation_resolves() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php require_once __DIR__ . '/lib/' . 'db.php'; include(__DIR__.\"/config.php\");",
        );
        assert_eq!(kept(&found), ["/app/lib/db.php", "/app/config.php"]);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn dirname_of_file_and_dir_resolve() {
        let mut image = app();
        image.file("/app/lib/sub/x.php", b"");
        let found = scan(
            &image,
            "/app/lib/sub/x.php",
            "<?php\nrequire dirname(__FILE__) . '/../db.php';\n\
             require dirname(__DIR__) . '/util.php';\n\
             require dirname(__FILE__, 3) . '/config.php';\n\
             include \\dirname(__FILE__, 2).DIRECTORY_SEPARATOR.'db.php';\n",
        );
        assert_eq!(
            kept(&found),
            ["/app/lib/db.php", "/app/lib/util.php", "/app/config.php"]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn include_in_a_comment_does_not_count() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php\n// include 'lib/db.php';\n# require 'lib/util.php';\n/* include 'config.php'; */\n$x = 1;",
        );
        assert!(found.paths.is_empty(), "{:?}", found.paths);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn include_in_inline_html_does_not_count() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<html><p>include 'lib/db.php';</p><?xml include 'config.php' ?>\n\
             <?php echo 1; // comment ends at the close tag ?> require 'lib/util.php';\n\
             <?= 'x' ?></html>",
        );
        assert!(found.paths.is_empty(), "{:?}", found.paths);
    }

    #[test]
    fn include_in_a_string_does_not_count() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php $a = 'include \"lib/db.php\";'; $b = \"require 'config.php';\"; $c = `include x`;",
        );
        assert!(found.paths.is_empty(), "{:?}", found.paths);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn attribute_is_not_a_comment() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php #[Pure] require 'lib/db.php';",
        );
        assert_eq!(kept(&found), ["/app/lib/db.php"]);
    }

    #[test]
    fn method_named_include_does_not_count() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php $view->include('lib/db.php'); Loader::require('config.php'); f(include: 1);",
        );
        assert!(found.paths.is_empty(), "{:?}", found.paths);
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn heredoc_and_nowdoc_bodies_are_skipped() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php\n$a = <<<EOT\ninclude 'lib/db.php';\nEOT;\n$b = <<<'X'\n  require 'config.php';\n  X;\ninclude 'lib/util.php';\n",
        );
        assert_eq!(kept(&found), ["/app/lib/util.php"]);
    }

    #[test]
    fn prefix_directory_pattern_keeps_that_dirs_php_files() {
        let mut image = app();
        image.file("/app/pages/home.php", b"");
        image.file("/app/pages/about.php", b"");
        image.file("/app/pages/notes.txt", b"");
        image.file("/app/pages/sub/deep.php", b"");
        let found = scan(
            &image,
            "/app/index.php",
            "<?php\ninclude __DIR__ . '/pages/' . $page . '.php';\n",
        );
        assert_eq!(
            kept(&found),
            ["/app/pages/about.php", "/app/pages/home.php"]
        );
        assert!(
            found.paths[0].why.contains("/app/pages/*.php"),
            "{}",
            found.paths[0].why
        );
        assert!(found.unresolved.is_empty());
    }

    #[test]
    fn interpolated_string_prefix_is_a_pattern() {
        let mut image = app();
        image.file("/app/pages/page_home.php", b"");
        image.file("/app/pages/other.php", b"");
        let found = scan(
            &image,
            "/app/index.php",
            "<?php include \"pages/page_$name.php\"; require \"pages/{$x->y}\";",
        );
        assert_eq!(
            kept(&found),
            ["/app/pages/page_home.php", "/app/pages/other.php"]
        );
    }

    #[test]
    fn autoloader_with_a_computed_class_path_matches_subdirectories() {
        let mut image = app();
        image.file("/app/src/Kernel.php", b"");
        image.file("/app/src/Http/Request.php", b"");
        image.file("/app/src/Http/README.md", b"");
        let found = scan(
            &image,
            "/app/index.php",
            "<?php spl_autoload_register(function ($class) {\n\
             require __DIR__ . '/src/' . str_replace('\\\\', '/', $class) . '.php';\n});",
        );
        assert_eq!(
            kept(&found),
            ["/app/src/Http/Request.php", "/app/src/Kernel.php"]
        );
    }

    #[test]
    fn variable_only_include_is_unresolved_with_its_line() {
        let found = scan(&app(), "/app/index.php", "<?php\n\n  include $file;\n");
        assert!(found.paths.is_empty());
        assert_eq!(found.unresolved.len(), 1);
        assert_eq!(found.unresolved[0].line, 3);
        assert!(found.unresolved[0].message.contains("include $file"));
    }

    #[test]
    fn include_of_a_variable_assigned_earlier_follows_the_assignment() {
        let mut image = app();
        image.file("/app/tools/sum.php", b"");
        image.file("/app/tools/upper.php", b"");
        let found = scan(
            &image,
            "/app/index.php",
            "<?php\nif (preg_match('#^/tool/([a-z]+)$#', $uri, $m)) {\n\
             $file = __DIR__ . '/tools/' . $m[1] . '.php';\n  include $file;\n}\n\
             $cfg = 'config'; $cfg .= '.php'; require $cfg;\n\
             $lib = __DIR__ . '/lib'; include $lib . '/db.php';\n\
             $x = $_GET['x']; include $x;\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/tools/sum.php",
                "/app/tools/upper.php",
                "/app/config.php",
                "/app/lib/db.php"
            ]
        );
        assert!(
            found.paths[0].why.contains("$file = __DIR__"),
            "{}",
            found.paths[0].why
        );
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 8);
    }

    #[test]
    fn the_php_fixture_router_keeps_its_on_demand_files() {
        let mut image = FakeImage::new();
        let root = "/var/www/app";
        for file in [
            "inc/helpers.php",
            "lib/sum.php",
            "lib/upper.php",
            "templates/report.php",
            "data/rows.json",
            "data/unused.json",
        ] {
            image.file(&format!("{root}/{file}"), b"");
        }
        let router = "<?php\n// routes nobody links to include code on demand.\n\
            require_once __DIR__ . '/inc/helpers.php';\n\
            $uri = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);\n\
            if (preg_match('#^/tool/([a-z]+)$#', $uri, $m)) {\n\
                $file = __DIR__ . '/lib/' . $m[1] . '.php';\n\
                if (!is_file($file)) { echo 'no such tool'; } else { include $file; }\n\
            } elseif ($uri === '/report') {\n\
                $rows = json_decode(file_get_contents(__DIR__ . '/data/rows.json'), true);\n\
                include 'templates/report.php';\n\
            }\n";
        let paths = Paths::discover(&image, &[], root);
        let found = dependencies(&image, &paths, &format!("{root}/router.php"), router);
        assert_eq!(
            kept(&found),
            [
                "/var/www/app/inc/helpers.php",
                "/var/www/app/lib/sum.php",
                "/var/www/app/lib/upper.php",
                "/var/www/app/data/rows.json",
                "/var/www/app/templates/report.php",
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn missing_literal_include_is_unresolved() {
        let found = scan(&app(), "/app/index.php", "<?php\nrequire 'nope.php';");
        assert!(found.paths.is_empty());
        assert_eq!(found.unresolved.len(), 1);
        assert_eq!(found.unresolved[0].line, 2);
    }

    #[test]
    fn constants_defined_earlier_resolve() {
        let found = scan(
            &app(),
            "/app/index.php",
            "<?php\ndefine('APP_ROOT', __DIR__);\nconst LIB = APP_ROOT . '/lib';\n\
             require APP_ROOT . '/config.php';\nrequire_once LIB . '/db.php';\n",
        );
        assert_eq!(kept(&found), ["/app/config.php", "/app/lib/db.php"]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn include_path_relative_resolution() {
        let mut image = app();
        image.file(
            "/etc/php/8.2/cli/php.ini",
            b"[PHP]\ninclude_path = \".:/opt/pear\" ; comment\n",
        );
        image.file("/opt/pear/Mail/Mime.php", b"");
        image.file("/usr/share/php/Only/Default.php", b"");
        let found = scan(
            &image,
            "/app/index.php",
            "<?php require 'Mail/Mime.php'; include 'Only/Default.php';",
        );
        // /usr/share/php is not on this include_path.
        assert_eq!(kept(&found)[1], "/opt/pear/Mail/Mime.php");
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);

        let mut default = app();
        default.file("/usr/share/php/Only/Default.php", b"");
        let found = scan(
            &default,
            "/app/index.php",
            "<?php include 'Only/Default.php';",
        );
        assert_eq!(kept(&found), ["/usr/share/php/Only/Default.php"]);
    }

    #[test]
    fn dot_slash_is_relative_to_the_current_directory_only() {
        let mut image = app();
        image.file("/usr/share/php/x.php", b"");
        image.file("/srv/x.php", b"");
        let paths = Paths::discover(&image, &[], "/srv");
        let found = dependencies(&image, &paths, "/app/index.php", "<?php include './x.php';");
        assert_eq!(kept(&found), ["/srv/x.php"]);
    }

    #[test]
    fn extension_from_conf_d_ini_is_kept() {
        let mut image = app();
        image.file("/etc/php/8.2/cli/php.ini", b"[PHP]\n;extension=bogus\n");
        image.file(
            "/etc/php/8.2/mods-available/mbstring.ini",
            b"; priority=20\nextension=mbstring.so\n",
        );
        image.symlink(
            "/etc/php/8.2/cli/conf.d/20-mbstring.ini",
            "/etc/php/8.2/mods-available/mbstring.ini",
        );
        image.file(
            "/etc/php/8.2/cli/conf.d/10-opcache.ini",
            b"zend_extension=opcache\n",
        );
        image.file("/usr/lib/php/20220829/mbstring.so", b"\x7fELF");
        image.file("/usr/lib/php/20220829/opcache.so", b"\x7fELF");
        image.file("/usr/lib/php/20220829/bogus.so", b"\x7fELF");
        let paths = Paths::discover(&image, &[], "/app");
        assert_eq!(paths.extension_dirs, ["/usr/lib/php/20220829"]);
        let found = dependencies(&image, &paths, "/app/index.php", "<?php echo 1;");
        let kept = kept(&found);
        assert!(
            kept.contains(&"/usr/lib/php/20220829/mbstring.so"),
            "{kept:?}"
        );
        assert!(kept.contains(&"/usr/lib/php/20220829/opcache.so"));
        assert!(!kept.contains(&"/usr/lib/php/20220829/bogus.so"));
        assert!(kept.contains(&"/etc/php/8.2/cli/php.ini"));
        assert!(kept.contains(&"/etc/php/8.2/cli/conf.d/20-mbstring.ini"));
    }

    #[test]
    fn official_image_extensions_and_include_path() {
        let mut image = app();
        image.executable("/usr/local/bin/php", b"\x7fELF");
        image.file(
            "/usr/local/etc/php/conf.d/docker-php-ext-gd.ini",
            b"extension=gd\n",
        );
        image.file(
            "/usr/local/lib/php/extensions/no-debug-non-zts-20220829/gd.so",
            b"\x7fELF",
        );
        image.file("/usr/local/lib/php/PEAR.php", b"");
        let env = ["PHP_INI_DIR=/usr/local/etc/php".to_string()];
        let paths = Paths::discover(&image, &env, "/app");
        let found = dependencies(
            &image,
            &paths,
            "/app/index.php",
            "<?php require 'PEAR.php';",
        );
        let kept = kept(&found);
        assert!(kept.contains(&"/usr/local/lib/php/extensions/no-debug-non-zts-20220829/gd.so"));
        assert!(kept.contains(&"/usr/local/lib/php/PEAR.php"), "{kept:?}");
    }

    #[test]
    fn vendor_autoload_keeps_composer_dir() {
        let mut image = app();
        image.file("/app/vendor/autoload.php", b"");
        image.file("/app/vendor/composer/autoload_real.php", b"");
        image.file("/app/vendor/composer/ClassLoader.php", b"");
        image.file("/app/vendor/composer/installed.json", b"{}");
        image.file("/app/vendor/monolog/monolog/src/Logger.php", b"");
        let found = scan(
            &image,
            "/app/index.php",
            "<?php\nrequire __DIR__ . '/vendor/autoload.php';\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/vendor/autoload.php",
                "/app/vendor/composer/ClassLoader.php",
                "/app/vendor/composer/autoload_real.php",
                "/app/vendor/composer/installed.json",
            ]
        );
        assert_eq!(found.unresolved.len(), 1);
        assert!(found.unresolved[0].message.contains("PSR-4"));
    }

    #[test]
    fn a_large_file_with_many_patterns_scans() {
        let mut image = app();
        for n in 0..3000 {
            image.file(&format!("/app/pages/p{n}.php"), b"");
        }
        let source = format!(
            "<?php\n{}",
            "include __DIR__ . '/pages/' . $p . '.php'; require 'lib/db.php'; // x\n"
                .repeat(20_000)
        );
        let found = scan(&image, "/app/index.php", &source);
        // The first pattern keeps MAX_PATTERN_FILES files, the rest add nothing new.
        assert_eq!(found.paths.len(), MAX_PATTERN_FILES + 1);
        assert!(kept(&found).contains(&"/app/lib/db.php"));
        assert_eq!(found.unresolved.len(), 20_000);
        assert!(found.unresolved[0].message.contains("too many files"));
    }

    #[test]
    fn broken_input_does_not_panic() {
        let image = app();
        for source in [
            "<?php include '",
            "<?php include \"{$a",
            "<?php $x = <<<EOT\nnever closed",
            "<?php /* open",
            "<?php include ((((((",
            "<?php include dirname(",
            "<?php \"\\",
            "<?php \"\\x",
            "<?php \"\\u{",
            "<?php include '\u{e9}\u{1F600}' . $x;",
            "<?",
            "<?php",
            "",
        ] {
            let _ = scan(&image, "/app/index.php", source);
        }
        let deep = format!("<?php include {}'x'{};", "(".repeat(5000), ")".repeat(5000));
        let found = scan(&image, "/app/index.php", &deep);
        assert_eq!(found.unresolved.len(), 1);
    }
}
