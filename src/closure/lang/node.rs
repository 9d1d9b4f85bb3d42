//! node: Node.js's module search paths, a JavaScript tokenizer that finds every `require`,
//! `import` and `export … from` of a file, and a resolver that finds in the image what Node would
//! load for each of them.
//!
//! Runtime rules reproduced (Node 18/20, CommonJS and ESM alike, close enough to keep what runs):
//! - search paths: the `node_modules` of the file's directory and of every ancestor (never
//!   `…/node_modules/node_modules`), then `NODE_PATH`, `$HOME/.node_modules`,
//!   `$HOME/.node_libraries`, `$PREFIX/lib/node` (PREFIX = the node binary's real path minus
//!   `bin/node`) and the directories Debian's nodejs adds (`/usr/share/nodejs`, …);
//! - `require(X)` with a relative or absolute X: the file X, then X.js/.json/.node/.mjs/.cjs,
//!   then the directory X (its `package.json` `main`, then `index.*`);
//! - a bare `pkg[/sub]` or `@scope/pkg[/sub]`: in each search path, the package's `exports`
//!   map when its `package.json` has one (conditions matched in the map's own key order against
//!   `require`/`import`, `node`, `node-addons`, `default`, as the loader that does the load;
//!   `./*` patterns; arrays: first valid target), else the file/directory rules above;
//!   `#name` specifiers through the nearest `package.json` `imports`; a package may load itself
//!   by name through its `exports`;
//! - builtins (`node:` anything, the core module names and their `/promises`-like subpaths) are
//!   in the binary and need no file;
//! - Node reads the nearest `package.json` of every module (its `"type"`), so it is kept too,
//!   as is the `package.json` of every package a load goes through.
//!
//! Express convention: a file that loads `express` gets its `views/` and `public/` directories
//! kept (template and static files are read on first request, never at start-up), bounded.
//!
//! Loads the scanner cannot resolve statically (non-literal argument, nothing in the image) are
//! reported as unresolved, except a missing literal inside a `try` block: that is Node's idiom
//! for an optional dependency (`try { require("bufferutil") } catch {}`).

use std::collections::HashMap;
use std::collections::HashSet;
use std::rc::Rc;

use crate::closure::lang::env_value;
use crate::closure::lang::Found;
use crate::closure::lang::Package;
use crate::closure::resolve::{join, normalize_lexically, parent_of};
use crate::closure::ImageView;
use crate::image::EntryKind;

/// Node's global folders that exist in the image, in search order (after `node_modules`).
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub dirs: Vec<String>,
}

/// Directories Debian's patched nodejs appends to its global search paths.
const DEBIAN_DIRS: &[&str] = &[
    "/usr/share/nodejs",
    "/usr/lib/nodejs",
    "/usr/lib/x86_64-linux-gnu/nodejs",
];

impl Paths {
    pub fn discover<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Self {
        let workdir = if workdir.starts_with('/') {
            workdir
        } else {
            "/"
        };
        let mut candidates = Vec::new();
        // NODE_PATH entries are `path.resolve`d, i.e. relative ones against the process's cwd.
        if let Some(node_path) = env_value(env, "NODE_PATH") {
            for dir in node_path.split(':').filter(|dir| !dir.is_empty()) {
                let absolute = if dir.starts_with('/') {
                    dir.to_string()
                } else {
                    join(workdir, dir)
                };
                candidates.push(normalize_lexically(&absolute));
            }
        }
        // runc sets HOME from /etc/passwd when the image does not; root's is the usual case.
        let home = env_value(env, "HOME")
            .filter(|home| home.starts_with('/'))
            .unwrap_or("/root");
        candidates.push(join(home, ".node_modules"));
        candidates.push(join(home, ".node_libraries"));
        for prefix in node_prefixes(view, env) {
            candidates.push(join(&prefix, "lib/node"));
        }
        candidates.extend(DEBIAN_DIRS.iter().map(|dir| dir.to_string()));

        let mut dirs: Vec<String> = Vec::new();
        for dir in candidates {
            if !dirs.contains(&dir) && kind_of(view, &dir) == Kind::Dir {
                dirs.push(dir);
            }
        }
        Self { dirs }
    }
}

/// The install prefixes of the node binaries on PATH: Node takes `$PREFIX` from its own real
/// path (`/proc/self/exe`), `$PREFIX/bin/node`.
fn node_prefixes<V: ImageView + ?Sized>(view: &V, env: &[String]) -> Vec<String> {
    let path = env_value(env, "PATH").unwrap_or(crate::closure::script::DEFAULT_PATH);
    let mut prefixes = Vec::new();
    for dir in path.split(':').filter(|dir| dir.starts_with('/')).take(64) {
        for name in ["node", "nodejs"] {
            let Ok(found) = crate::closure::resolve::resolve(view, &join(dir, name), true) else {
                continue;
            };
            let is_file = view.entry(&found.path).is_some_and(|entry| {
                matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. })
            });
            let prefix = parent_of(parent_of(&found.path)).to_string();
            if is_file && !prefixes.contains(&prefix) {
                prefixes.push(prefix);
            }
        }
    }
    prefixes
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
    Punct,
    Number,
    Regex,
    /// A '…' or "…" literal, quotes included in the token text.
    Str,
    /// A template literal without substitutions, backticks included.
    Template,
    /// A head, middle or tail piece of a template literal with `${…}` substitutions.
    TemplatePart,
}

#[derive(Debug, Clone, Copy)]
struct Token<'s> {
    tok: Tok,
    text: &'s str,
    start: usize,
    /// Inside the block of a `try` statement.
    in_try: bool,
}

/// What an open `{` is: it decides whether a `/` after its `}` is a division or a regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Brace {
    Block {
        is_try: bool,
    },
    Expr,
    /// A template literal's `${`: its `}` resumes the template text.
    Subst,
}

/// Keywords after which an expression starts, so a `/` there begins a regex literal.
const KEYWORDS_BEFORE_EXPRESSION: &[&str] = &[
    "return",
    "typeof",
    "case",
    "do",
    "else",
    "in",
    "of",
    "instanceof",
    "new",
    "delete",
    "void",
    "throw",
    "yield",
    "await",
    "extends",
];

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte == b'\\' || byte >= 0x80
}

/// Splits JavaScript source into tokens, skipping whitespace and comments. Iterative, never
/// fails: unterminated strings end at the line end, unterminated comments and templates at EOF,
/// and a `/` that cannot close as a regex on its line is taken as a division.
fn tokenize(source: &str) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut tokens: Vec<Token> = Vec::new();
    let mut i = 0;
    // A hashbang is only valid as the very first bytes of the file.
    if bytes.starts_with(b"#!") {
        i = find_byte(bytes, 0, b'\n').unwrap_or(bytes.len());
    }
    let mut braces: Vec<Brace> = Vec::new();
    // One per open `(`: true when it is the condition of if/while/for/with, after whose `)` a
    // statement (so possibly a regex) starts.
    let mut parens: Vec<bool> = Vec::new();
    let mut tries = 0usize;
    let mut regex_ok = true;

    while i < bytes.len() {
        let byte = bytes[i];
        let next = bytes.get(i + 1).copied();
        let start = i;
        let tok;
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'/' if next == Some(b'/') => {
                i = find_byte(bytes, i, b'\n').unwrap_or(bytes.len());
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = find_seq(bytes, i + 2, b"*/").map_or(bytes.len(), |at| at + 2);
                continue;
            }
            b'"' | b'\'' => {
                i = scan_string(bytes, i);
                tok = Tok::Str;
                regex_ok = false;
            }
            b'`' => {
                let (end, opened) = scan_template(bytes, i + 1);
                i = end;
                if opened {
                    braces.push(Brace::Subst);
                    tok = Tok::TemplatePart;
                    regex_ok = true;
                } else {
                    tok = Tok::Template;
                    regex_ok = false;
                }
            }
            b'}' => match braces.pop() {
                Some(Brace::Subst) => {
                    let (end, opened) = scan_template(bytes, i + 1);
                    i = end;
                    tok = Tok::TemplatePart;
                    regex_ok = opened;
                    if opened {
                        braces.push(Brace::Subst);
                    }
                }
                Some(Brace::Block { is_try }) => {
                    if is_try {
                        tries = tries.saturating_sub(1);
                    }
                    i += 1;
                    tok = Tok::Punct;
                    regex_ok = true;
                }
                Some(Brace::Expr) | None => {
                    i += 1;
                    tok = Tok::Punct;
                    regex_ok = false;
                }
            },
            b'{' => {
                let brace = brace_after(tokens.last());
                if brace == (Brace::Block { is_try: true }) {
                    tries += 1;
                }
                braces.push(brace);
                i += 1;
                tok = Tok::Punct;
                regex_ok = true;
            }
            b'(' => {
                let condition = tokens.last().is_some_and(|prev| {
                    prev.tok == Tok::Ident && matches!(prev.text, "if" | "while" | "for" | "with")
                });
                parens.push(condition);
                i += 1;
                tok = Tok::Punct;
                regex_ok = true;
            }
            b')' => {
                regex_ok = parens.pop().unwrap_or(false);
                i += 1;
                tok = Tok::Punct;
            }
            b']' => {
                i += 1;
                tok = Tok::Punct;
                regex_ok = false;
            }
            b'/' if regex_ok => match scan_regex(bytes, i) {
                Some(end) => {
                    i = end;
                    tok = Tok::Regex;
                    regex_ok = false;
                }
                None => {
                    i += 1;
                    tok = Tok::Punct;
                    regex_ok = true;
                }
            },
            b'0'..=b'9' => {
                i = scan_number(bytes, i);
                tok = Tok::Number;
                regex_ok = false;
            }
            b'.' if next.is_some_and(|b| b.is_ascii_digit()) => {
                i = scan_number(bytes, i);
                tok = Tok::Number;
                regex_ok = false;
            }
            b'#' => {
                // A private name (`#field`); a lone `#` is an error anyway.
                i += 1;
                while i < bytes.len() && is_ident_byte(bytes[i]) {
                    i += 1;
                }
                tok = Tok::Ident;
                regex_ok = false;
            }
            _ if is_ident_byte(byte) => {
                while i < bytes.len() && is_ident_byte(bytes[i]) {
                    i += 1;
                }
                tok = Tok::Ident;
                regex_ok = KEYWORDS_BEFORE_EXPRESSION.contains(&&source[start..i]);
            }
            _ => {
                // Multi-byte punctuators that matter: member access (`.`, `?.`, not `...`),
                // `=>` (a block follows) and `++`/`--` (an operand precedes a `/` after them).
                let rest = &bytes[i..];
                let len = if rest.starts_with(b"...") {
                    3
                } else if rest.starts_with(b"?.") && !rest.get(2).is_some_and(u8::is_ascii_digit)
                    || rest.starts_with(b"=>")
                    || rest.starts_with(b"++")
                    || rest.starts_with(b"--")
                {
                    2
                } else {
                    1
                };
                i += len;
                tok = Tok::Punct;
                regex_ok = !matches!(&bytes[start..i], b"++" | b"--");
            }
        }
        let end = i.min(bytes.len());
        tokens.push(Token {
            tok,
            // Every token starts and ends on a char boundary (tokens end at ASCII bytes or at
            // the end; identifiers take whole UTF-8 sequences), but never risk a panic.
            text: source.get(start..end).unwrap_or(""),
            start,
            in_try: tries > 0,
        });
    }
    tokens
}

/// Whether a `{` after `prev` opens a block (statement context) or an object literal.
fn brace_after(prev: Option<&Token>) -> Brace {
    let Some(prev) = prev else {
        return Brace::Block { is_try: false };
    };
    match prev.tok {
        Tok::Ident if prev.text == "try" => Brace::Block { is_try: true },
        Tok::Ident
            if KEYWORDS_BEFORE_EXPRESSION.contains(&prev.text)
                && prev.text != "else"
                && prev.text != "do" =>
        {
            Brace::Expr
        }
        // `class A {`, `else {`, `finally {`, `catch {`.
        Tok::Ident => Brace::Block { is_try: false },
        Tok::Punct if matches!(prev.text, ";" | "{" | "}" | ")" | "=>") => {
            Brace::Block { is_try: false }
        }
        _ => Brace::Expr,
    }
}

fn find_byte(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == byte)
        .map(|at| from + at)
}

fn find_seq(bytes: &[u8], from: usize, seq: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(seq.len())
        .position(|window| window == seq)
        .map(|at| from + at)
}

/// End (exclusive) of the string literal opening at `start`; an unescaped line end stops it.
fn scan_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut j = start + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'\n' => return j,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// Scans template text from `from` (just after a backtick or a substitution's `}`): the end
/// (exclusive) and whether it stopped at a `${` (true) or at the closing backtick / EOF.
fn scan_template(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut j = from;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'`' => return (j + 1, false),
            b'$' if bytes.get(j + 1) == Some(&b'{') => return (j + 2, true),
            _ => j += 1,
        }
    }
    (bytes.len(), false)
}

/// End (exclusive, flags included) of the regex literal opening at `start`, `None` when it does
/// not close on its line (then the `/` was a division after all).
fn scan_regex(bytes: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    let mut in_class = false;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => {
                if matches!(bytes.get(j + 1), Some(b'\n' | b'\r') | None) {
                    return None;
                }
                j += 2;
            }
            b'\n' | b'\r' => return None,
            b'[' => {
                in_class = true;
                j += 1;
            }
            b']' => {
                in_class = false;
                j += 1;
            }
            b'/' if !in_class => {
                j += 1;
                while j < bytes.len() && is_ident_byte(bytes[j]) {
                    j += 1;
                }
                return Some(j);
            }
            _ => j += 1,
        }
    }
    None
}

fn scan_number(bytes: &[u8], start: usize) -> usize {
    let hex = bytes[start..].starts_with(b"0x") || bytes[start..].starts_with(b"0X");
    let mut j = start;
    while j < bytes.len() {
        let b = bytes[j];
        let exponent_sign =
            (b == b'+' || b == b'-') && !hex && j > start && matches!(bytes[j - 1], b'e' | b'E');
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
            j += 1;
        } else {
            break;
        }
    }
    j
}

/// The value of a string or no-substitution template literal token (escapes decoded).
fn literal_value(token: &Token) -> Option<String> {
    if !matches!(token.tok, Tok::Str | Tok::Template) {
        return None;
    }
    let mut chars = token.text.chars();
    let quote = chars.next()?;
    let inner = chars.as_str();
    let inner = inner.strip_suffix(quote).unwrap_or(inner);
    Some(cook(inner))
}

/// Decodes JavaScript string escapes (`\n`, `\x41`, `\u0041`, `\u{41}`, line continuations).
fn cook(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            break;
        };
        match escaped {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' => out.push('\0'),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str(&hex),
                }
            }
            'u' => {
                let hex: String = if chars.peek() == Some(&'{') {
                    chars.next();
                    chars.by_ref().take(8).take_while(|&c| c != '}').collect()
                } else {
                    chars.by_ref().take(4).collect()
                };
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str(&hex),
                }
            }
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Loads
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadKind {
    Require,
    RequireResolve,
    Import,
    DynamicImport,
    ExportFrom,
}

impl LoadKind {
    fn why(self, spec: &str) -> String {
        match self {
            Self::Require => format!("require({spec:?})"),
            Self::RequireResolve => format!("require.resolve({spec:?})"),
            Self::Import => format!("import {spec:?}"),
            Self::DynamicImport => format!("import({spec:?})"),
            Self::ExportFrom => format!("export from {spec:?}"),
        }
    }

    fn call_name(self) -> &'static str {
        match self {
            Self::Require => "require",
            Self::RequireResolve => "require.resolve",
            _ => "import",
        }
    }

    /// The conditions the loader doing this load matches in `exports`/`imports` maps
    /// (`default` always matches).
    fn conditions(self) -> &'static [&'static str] {
        match self {
            Self::Require | Self::RequireResolve => &["require", "node", "node-addons"],
            _ => &["import", "node", "node-addons"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Load {
    kind: LoadKind,
    /// The literal specifier; `None` when the argument is not a literal.
    spec: Option<String>,
    start: usize,
    in_try: bool,
}

/// Most tokens an import/export clause (`{a, b as c, …}`) is searched for its `from`.
const MAX_CLAUSE_TOKENS: usize = 4096;

fn find_loads(tokens: &[Token]) -> Vec<Load> {
    let is = |i: usize, tok: Tok, text: &str| {
        tokens
            .get(i)
            .is_some_and(|token| token.tok == tok && token.text == text)
    };
    let mut loads = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if token.tok != Tok::Ident {
            continue;
        }
        // `obj.require(…)`, `x?.import` are properties, not the module loaders.
        let member = i > 0 && (is(i - 1, Tok::Punct, ".") || is(i - 1, Tok::Punct, "?."));
        if member {
            continue;
        }
        let load = |kind, spec| Load {
            kind,
            spec,
            start: token.start,
            in_try: token.in_try,
        };
        match token.text {
            "require" => {
                if i > 0 && is(i - 1, Tok::Ident, "function") {
                    continue;
                }
                if is(i + 1, Tok::Punct, "(") {
                    if let Some(spec) = call_argument(tokens, i + 1) {
                        loads.push(load(LoadKind::Require, spec));
                    }
                } else if is(i + 1, Tok::Punct, ".")
                    && is(i + 2, Tok::Ident, "resolve")
                    && is(i + 3, Tok::Punct, "(")
                {
                    if let Some(spec) = call_argument(tokens, i + 3) {
                        loads.push(load(LoadKind::RequireResolve, spec));
                    }
                }
            }
            "import" => {
                if is(i + 1, Tok::Punct, "(") {
                    if let Some(spec) = call_argument(tokens, i + 1) {
                        loads.push(load(LoadKind::DynamicImport, spec));
                    }
                } else if let Some(spec) = tokens.get(i + 1).and_then(literal_value) {
                    loads.push(load(LoadKind::Import, Some(spec)));
                } else if let Some(spec) = clause_source(tokens, i + 1) {
                    loads.push(load(LoadKind::Import, Some(spec)));
                }
            }
            // Only `export *` and `export {…}` can have a `from`.
            "export" if is(i + 1, Tok::Punct, "*") || is(i + 1, Tok::Punct, "{") => {
                if let Some(spec) = clause_source(tokens, i + 1) {
                    loads.push(load(LoadKind::ExportFrom, Some(spec)));
                }
            }
            _ => {}
        }
    }
    loads
}

/// The argument of the call whose `(` is at `open`: `Some(Some(literal))`, `Some(None)` for a
/// non-literal argument, `None` when it is no load (`require()`, a method definition).
fn call_argument(tokens: &[Token], open: usize) -> Option<Option<String>> {
    let arg = tokens.get(open + 1)?;
    if arg.tok == Tok::Punct && arg.text == ")" {
        return None;
    }
    let after = tokens.get(open + 2);
    if let Some(value) = literal_value(arg) {
        if after.is_some_and(|t| t.tok == Tok::Punct && matches!(t.text, ")" | ",")) {
            return Some(Some(value));
        }
    }
    // `require(name) { … }` in a class or object is a method named require, not a call.
    let mut depth = 0usize;
    for (offset, token) in tokens[open..].iter().enumerate() {
        if token.tok != Tok::Punct {
            continue;
        }
        match token.text {
            "(" => depth += 1,
            ")" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let next = tokens.get(open + offset + 1);
                    if next.is_some_and(|t| t.tok == Tok::Punct && t.text == "{") {
                        return None;
                    }
                    break;
                }
            }
            _ => {}
        }
    }
    Some(None)
}

/// The module of `import <clause> from "m"` / `export <clause> from "m"`, scanning the clause
/// from `from`; `None` when the tokens there are no such clause.
fn clause_source(tokens: &[Token], from: usize) -> Option<String> {
    for j in from..tokens.len().min(from.saturating_add(MAX_CLAUSE_TOKENS)) {
        let token = &tokens[j];
        match token.tok {
            Tok::Ident if token.text == "from" => {
                if let Some(spec) = tokens.get(j + 1).and_then(literal_value) {
                    return Some(spec);
                }
            }
            Tok::Ident | Tok::Str => {}
            Tok::Punct if matches!(token.text, "{" | "}" | "," | "*") => {}
            _ => return None,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// package.json (order-preserving: condition objects are matched in their key order)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Other,
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// `key` of an object (the last one wins, as with `JSON.parse`).
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Other)
    }
    fn visit_str<E>(self, value: &str) -> Result<Json, E> {
        Ok(Json::Str(value.to_string()))
    }
    fn visit_string<E>(self, value: String) -> Result<Json, E> {
        Ok(Json::Str(value))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

/// package.json files larger than this are not parsed (their fields are taken as absent).
const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// A package.json's content; an unreadable or invalid one is `Json::Null` (no fields).
fn read_manifest<V: ImageView + ?Sized>(view: &V, path: &str) -> Json {
    let real = match crate::closure::resolve::resolve(view, path, true) {
        Ok(found) => found.path,
        Err(_) => return Json::Null,
    };
    let Ok(bytes) = view.read(&real, MAX_MANIFEST_BYTES) else {
        return Json::Null;
    };
    // Node strips a UTF-8 BOM before parsing.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    serde_json::from_slice(bytes).unwrap_or(Json::Null)
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Missing,
}

/// What an image path is after following symlinks (hard links count as files).
fn kind_of<V: ImageView + ?Sized>(view: &V, path: &str) -> Kind {
    let Ok(found) = crate::closure::resolve::resolve(view, path, true) else {
        return Kind::Missing;
    };
    match view.entry(&found.path).map(|entry| &entry.kind) {
        Some(EntryKind::File | EntryKind::Hardlink { .. }) => Kind::File,
        Some(EntryKind::Dir) => Kind::Dir,
        _ => Kind::Missing,
    }
}

/// Node's core modules: `require("fs")` never touches the filesystem.
const CORE_MODULES: &[&str] = &[
    "_http_agent",
    "_http_client",
    "_http_common",
    "_http_incoming",
    "_http_outgoing",
    "_http_server",
    "_stream_duplex",
    "_stream_passthrough",
    "_stream_readable",
    "_stream_transform",
    "_stream_wrap",
    "_stream_writable",
    "_tls_common",
    "_tls_wrap",
    "assert",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "domain",
    "events",
    "fs",
    "http",
    "http2",
    "https",
    "inspector",
    "module",
    "net",
    "os",
    "path",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "repl",
    "stream",
    "string_decoder",
    "sys",
    "timers",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// Core module subpaths; any other `fs/x` is looked up in `node_modules` like Node does.
const CORE_SUBPATHS: &[&str] = &[
    "assert/strict",
    "dns/promises",
    "fs/promises",
    "inspector/promises",
    "path/posix",
    "path/win32",
    "readline/promises",
    "stream/consumers",
    "stream/promises",
    "stream/web",
    "timers/promises",
    "util/types",
];

fn is_builtin(spec: &str) -> bool {
    spec.starts_with("node:")
        || CORE_MODULES.contains(&spec)
        || CORE_SUBPATHS.contains(&spec)
        // `data:` URLs carry their code inline.
        || spec.starts_with("data:")
}

/// Bound on walks up the directory tree (paths deeper than this are not real).
const MAX_DEPTH: usize = 256;
/// Bound on nested condition objects / arrays in `exports` and `imports`.
const MAX_TARGET_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Builtin,
    /// The files Node reads to load the module (package.json files consulted, the module).
    Files(Vec<String>),
    Missing(String),
}

/// A target of an `exports`/`imports` map, as Node's `resolvePackageTarget` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A `./relative` target (or, in `imports`, a bare specifier), `*` substituted.
    Path(String),
    /// `null`, or every array alternative failed: explicitly not available.
    Null,
    /// No condition matched.
    Undefined,
    /// A target Node rejects (`../x`, a number).
    Invalid,
}

struct Resolver<'a, V: ?Sized> {
    view: &'a V,
    paths: &'a Paths,
    kinds: HashMap<String, Kind>,
    manifests: HashMap<String, Option<Rc<Json>>>,
}

impl<'a, V: ImageView + ?Sized> Resolver<'a, V> {
    fn new(view: &'a V, paths: &'a Paths) -> Self {
        Self {
            view,
            paths,
            kinds: HashMap::new(),
            manifests: HashMap::new(),
        }
    }

    fn kind(&mut self, path: &str) -> Kind {
        if let Some(kind) = self.kinds.get(path) {
            return *kind;
        }
        let kind = kind_of(self.view, path);
        self.kinds.insert(path.to_string(), kind);
        kind
    }

    fn is_file(&mut self, path: &str) -> bool {
        self.kind(path) == Kind::File
    }

    /// The package.json at `path`, `None` when there is no such file.
    fn manifest(&mut self, path: &str) -> Option<Rc<Json>> {
        if let Some(cached) = self.manifests.get(path) {
            return cached.clone();
        }
        let manifest = if self.is_file(path) {
            Some(Rc::new(read_manifest(self.view, path)))
        } else {
            None
        };
        self.manifests.insert(path.to_string(), manifest.clone());
        manifest
    }

    /// The nearest package.json from `dir` up, not crossing a `node_modules` directory (Node's
    /// package scope lookup).
    fn package_scope(&mut self, dir: &str) -> Option<String> {
        let mut dir = dir.to_string();
        for _ in 0..MAX_DEPTH {
            if dir.rsplit('/').next() == Some("node_modules") {
                return None;
            }
            let manifest = join(&dir, "package.json");
            if self.is_file(&manifest) {
                return Some(manifest);
            }
            if dir == "/" {
                return None;
            }
            dir = parent_of(&dir).to_string();
        }
        None
    }

    fn resolve(&mut self, spec: &str, dir: &str, conditions: &[&str]) -> Resolved {
        if spec.is_empty() {
            return Resolved::Missing("empty module name".to_string());
        }
        if is_builtin(spec) {
            return Resolved::Builtin;
        }
        let spec = spec.strip_prefix("file://").unwrap_or(spec);
        if spec.starts_with('#') {
            return self.resolve_imports(spec, dir, conditions);
        }
        if spec == "."
            || spec == ".."
            || spec.starts_with("./")
            || spec.starts_with("../")
            || spec.starts_with('/')
        {
            let base = if spec.starts_with('/') {
                spec.to_string()
            } else {
                join(dir, spec)
            };
            let path = normalize_lexically(&base);
            let directory_only = spec.ends_with('/') || spec == "." || spec == "..";
            if !directory_only {
                if let Some(file) = self.load_as_file(&path) {
                    return Resolved::Files(vec![file]);
                }
            }
            let mut files = Vec::new();
            if let Some(file) = self.load_as_directory(&path, &mut files) {
                files.push(file);
                return Resolved::Files(files);
            }
            return Resolved::Missing(format!("{path} is not in the image"));
        }
        self.resolve_bare(spec, dir, conditions)
    }

    /// X, X.js, X.json, X.node, X.mjs, X.cjs.
    fn load_as_file(&mut self, path: &str) -> Option<String> {
        if path == "/" {
            return None;
        }
        ["", ".js", ".json", ".node", ".mjs", ".cjs"]
            .iter()
            .map(|ext| format!("{path}{ext}"))
            .find(|candidate| self.is_file(candidate))
    }

    fn load_index(&mut self, dir: &str) -> Option<String> {
        [
            "index.js",
            "index.json",
            "index.node",
            "index.mjs",
            "index.cjs",
        ]
        .iter()
        .map(|name| join(dir, name))
        .find(|candidate| self.is_file(candidate))
    }

    /// X/package.json `main` (as a file, then its index), then X/index.*; the package.json read
    /// goes to `files`.
    fn load_as_directory(&mut self, dir: &str, files: &mut Vec<String>) -> Option<String> {
        if self.kind(dir) != Kind::Dir {
            return None;
        }
        let manifest_path = join(dir, "package.json");
        if let Some(manifest) = self.manifest(&manifest_path) {
            files.push(manifest_path);
            if let Some(main) = manifest.get("main").and_then(Json::as_str) {
                if !main.is_empty() {
                    let main = normalize_lexically(&join(dir, main));
                    if let Some(file) = self.load_as_file(&main).or_else(|| self.load_index(&main))
                    {
                        return Some(file);
                    }
                }
            }
        }
        // A `main` that names nothing falls back to index.js (Node warns, then loads it).
        self.load_index(dir)
    }

    fn resolve_bare(&mut self, spec: &str, dir: &str, conditions: &[&str]) -> Resolved {
        let Some((name, subpath)) = split_package(spec) else {
            return Resolved::Missing(format!("{spec:?} is not a valid package name"));
        };
        // A package may load itself by name, through its own `exports`.
        if let Some(scope) = self.package_scope(dir) {
            if let Some(manifest) = self.manifest(&scope) {
                let exports = manifest.get("exports").filter(|e| **e != Json::Null);
                if let (Some(exports), Some(own)) =
                    (exports, manifest.get("name").and_then(Json::as_str))
                {
                    if own == name {
                        return self.resolve_exports(
                            parent_of(&scope),
                            &scope,
                            exports,
                            subpath,
                            conditions,
                        );
                    }
                }
            }
        }
        let search: Vec<String> = node_modules_paths(dir)
            .into_iter()
            .chain(self.paths.dirs.iter().cloned())
            .collect();
        for base in search {
            if self.kind(&base) != Kind::Dir {
                continue;
            }
            let package_dir = join(&base, name);
            let manifest_path = join(&package_dir, "package.json");
            let manifest = self.manifest(&manifest_path);
            if let Some(manifest) = &manifest {
                if let Some(exports) = manifest.get("exports").filter(|e| **e != Json::Null) {
                    return self.resolve_exports(
                        &package_dir,
                        &manifest_path,
                        exports,
                        subpath,
                        conditions,
                    );
                }
            }
            let path = normalize_lexically(&join(&base, spec));
            let mut files = Vec::new();
            if manifest.is_some() {
                files.push(manifest_path);
            }
            if !spec.ends_with('/') {
                if let Some(file) = self.load_as_file(&path) {
                    files.push(file);
                    return Resolved::Files(files);
                }
            }
            if let Some(file) = self.load_as_directory(&path, &mut files) {
                files.push(file);
                return Resolved::Files(files);
            }
        }
        Resolved::Missing("not found in any node_modules or global folder".to_string())
    }

    fn resolve_exports(
        &mut self,
        package_dir: &str,
        manifest_path: &str,
        exports: &Json,
        subpath: &str,
        conditions: &[&str],
    ) -> Resolved {
        let key = if subpath.is_empty() {
            ".".to_string()
        } else {
            format!("./{subpath}")
        };
        let subpath_map = match exports {
            Json::Object(entries) => entries.first().is_some_and(|(k, _)| k.starts_with('.')),
            _ => false,
        };
        let target = if subpath_map {
            match exports {
                Json::Object(entries) => match_map(entries, &key, conditions, false),
                _ => Target::Undefined,
            }
        } else if key == "." {
            // `"exports": "./x.js"` or a condition object: sugar for `{".": …}`.
            target_of(exports, None, conditions, false, 0)
        } else {
            Target::Undefined
        };
        match target {
            Target::Path(relative) => {
                let path = normalize_lexically(&join(package_dir, &relative));
                if self.is_file(&path) {
                    Resolved::Files(vec![manifest_path.to_string(), path])
                } else {
                    Resolved::Missing(format!(
                        "{manifest_path} exports {key} as {relative}, which is not in the image"
                    ))
                }
            }
            _ => Resolved::Missing(format!("{key} is not exported by {manifest_path}")),
        }
    }

    /// `#name` through the nearest package.json's `imports` map.
    fn resolve_imports(&mut self, spec: &str, dir: &str, conditions: &[&str]) -> Resolved {
        let Some(scope) = self.package_scope(dir) else {
            return Resolved::Missing(
                "no package.json with \"imports\" above the file".to_string(),
            );
        };
        let Some(manifest) = self.manifest(&scope) else {
            return Resolved::Missing(format!("{scope} is unreadable"));
        };
        let target = match manifest.get("imports") {
            Some(Json::Object(entries)) => match_map(entries, spec, conditions, true),
            _ => Target::Undefined,
        };
        let package_dir = parent_of(&scope).to_string();
        match target {
            Target::Path(target) if target.starts_with("./") => {
                let path = normalize_lexically(&join(&package_dir, &target));
                if self.is_file(&path) {
                    Resolved::Files(vec![scope, path])
                } else {
                    Resolved::Missing(format!(
                        "{scope} maps {spec} to {target}, which is not in the image"
                    ))
                }
            }
            Target::Path(bare) => match self.resolve_bare(&bare, &package_dir, conditions) {
                Resolved::Files(mut files) => {
                    files.push(scope);
                    Resolved::Files(files)
                }
                Resolved::Builtin => Resolved::Builtin,
                missing => missing,
            },
            _ => Resolved::Missing(format!("{spec} is not in the \"imports\" of {scope}")),
        }
    }
}

/// Node's `node_modules` lookup paths from `dir`: each ancestor's, skipping directories that are
/// themselves `node_modules`.
fn node_modules_paths(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dir = dir.to_string();
    for _ in 0..MAX_DEPTH {
        if dir.rsplit('/').next() != Some("node_modules") {
            out.push(join(&dir, "node_modules"));
        }
        if dir == "/" {
            break;
        }
        dir = parent_of(&dir).to_string();
    }
    out
}

/// `("@scope/pkg", "sub/path")` or `("pkg", "")` of a bare specifier.
fn split_package(spec: &str) -> Option<(&str, &str)> {
    let name_end = if spec.starts_with('@') {
        let slash = spec.find('/')?;
        if slash == 1 {
            return None;
        }
        spec[slash + 1..]
            .find('/')
            .map_or(spec.len(), |at| slash + 1 + at)
    } else {
        spec.find('/').unwrap_or(spec.len())
    };
    let name = &spec[..name_end];
    if name.is_empty() || name.ends_with('/') || name.starts_with('.') || name.contains(['\\', '%'])
    {
        return None;
    }
    let subpath = spec[name_end..].strip_prefix('/').unwrap_or("");
    Some((name, subpath))
}

/// Looks `key` up in an `exports` subpath map or an `imports` map: an exact key first, then the
/// `*` pattern with the longest prefix (then the longest key), as Node's `PATTERN_KEY_COMPARE`.
fn match_map(
    entries: &[(String, Json)],
    key: &str,
    conditions: &[&str],
    allow_bare: bool,
) -> Target {
    if !key.contains('*') {
        if let Some((_, value)) = entries.iter().rev().find(|(k, _)| k == key) {
            return target_of(value, None, conditions, allow_bare, 0);
        }
    }
    let mut best: Option<(&str, &Json, &str)> = None;
    for (pattern, value) in entries {
        let Some((prefix, suffix)) = pattern.split_once('*') else {
            continue;
        };
        if suffix.contains('*')
            || !key.starts_with(prefix)
            || !key.ends_with(suffix)
            || key.len() < pattern.len()
        {
            continue;
        }
        let better = best.is_none_or(|(current, _, _)| {
            let current_prefix = current.find('*').unwrap_or(current.len());
            prefix.len() > current_prefix
                || (prefix.len() == current_prefix && pattern.len() > current.len())
        });
        if better {
            let matched = key
                .get(prefix.len()..key.len() - suffix.len())
                .unwrap_or("");
            best = Some((pattern, value, matched));
        }
    }
    match best {
        Some((_, value, matched)) => target_of(value, Some(matched), conditions, allow_bare, 0),
        None => Target::Undefined,
    }
}

/// Node's `resolvePackageTarget`: strings (with `*` replaced), condition objects in key order,
/// arrays (first valid alternative), `null`.
fn target_of(
    value: &Json,
    matched: Option<&str>,
    conditions: &[&str],
    allow_bare: bool,
    depth: usize,
) -> Target {
    if depth > MAX_TARGET_DEPTH {
        return Target::Invalid;
    }
    match value {
        Json::Str(target) => {
            let bare_ok = allow_bare && !target.starts_with("../") && !target.starts_with('/');
            if !target.starts_with("./") && !bare_ok {
                return Target::Invalid;
            }
            Target::Path(match matched {
                Some(matched) => target.replace('*', matched),
                None => target.clone(),
            })
        }
        Json::Object(entries) => {
            for (condition, value) in entries {
                if condition == "default" || conditions.contains(&condition.as_str()) {
                    match target_of(value, matched, conditions, allow_bare, depth + 1) {
                        Target::Undefined => continue,
                        other => return other,
                    }
                }
            }
            Target::Undefined
        }
        Json::Array(items) => {
            for item in items {
                if let Target::Path(path) =
                    target_of(item, matched, conditions, allow_bare, depth + 1)
                {
                    return Target::Path(path);
                }
            }
            Target::Null
        }
        Json::Null => Target::Null,
        Json::Other => Target::Invalid,
    }
}

// ---------------------------------------------------------------------------------------------
// Directory walks (Express views/public, package_files)
// ---------------------------------------------------------------------------------------------

/// Bounds of the Express `views/`/`public/` directories kept whole.
const EXPRESS_MAX_FILES: usize = 5000;
const EXPRESS_MAX_BYTES: u64 = 20 * 1024 * 1024;
/// Bound of a package listed by `package_files`.
const PACKAGE_MAX_FILES: usize = 100_000;
const MAX_WALK_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tree {
    Absent,
    Files(Vec<String>),
    TooBig,
}

/// Every non-directory entry under `dir` (followed if it is a symlink), named under `dir` as
/// given so the closure keeps the symlinks on the way; `node_modules` directories skipped when
/// asked. `TooBig` past `max_files` entries or `max_bytes` of content.
fn walk_tree<V: ImageView + ?Sized>(
    view: &V,
    dir: &str,
    skip_node_modules: bool,
    max_files: usize,
    max_bytes: u64,
) -> Tree {
    let Ok(found) = crate::closure::resolve::resolve(view, dir, true) else {
        return Tree::Absent;
    };
    if !view
        .entry(&found.path)
        .is_some_and(|e| e.kind == EntryKind::Dir)
    {
        return Tree::Absent;
    }
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut visited = 0usize;
    let mut stack = vec![(found.path, dir.to_string(), 0usize)];
    while let Some((real, named, depth)) = stack.pop() {
        for entry in view.children(&real) {
            visited += 1;
            // Directories count too: a tree of empty directories must not run forever.
            if visited > max_files.saturating_mul(4) {
                return Tree::TooBig;
            }
            let name = entry.path.rsplit('/').next().unwrap_or("");
            let child = join(&named, name);
            match entry.kind {
                EntryKind::Dir => {
                    if (skip_node_modules && name == "node_modules") || depth >= MAX_WALK_DEPTH {
                        continue;
                    }
                    stack.push((entry.path.clone(), child, depth + 1));
                }
                EntryKind::File | EntryKind::Hardlink { .. } | EntryKind::Symlink { .. } => {
                    bytes = bytes.saturating_add(entry.size);
                    files.push(child);
                    if files.len() > max_files || bytes > max_bytes {
                        return Tree::TooBig;
                    }
                }
                _ => {}
            }
        }
    }
    files.sort();
    Tree::Files(files)
}

/// Keeps the `views/` and `public/` of an Express app: next to the file that loads express, and
/// one level up when that file sits in `routes/`, `src/` or `lib/`.
fn keep_express_dirs<V: ImageView + ?Sized>(view: &V, file: &str, line: u32, found: &mut Found) {
    let dir = parent_of(file);
    let mut bases = vec![dir];
    if dir != "/" && matches!(dir.rsplit('/').next(), Some("routes" | "src" | "lib")) {
        bases.push(parent_of(dir));
    }
    for base in bases {
        for sub in ["views", "public"] {
            let path = join(base, sub);
            match walk_tree(view, &path, false, EXPRESS_MAX_FILES, EXPRESS_MAX_BYTES) {
                Tree::Absent => {}
                Tree::Files(files) => {
                    for file in files {
                        found.keep(file, format!("Express {sub}/ (require(\"express\"))"));
                    }
                }
                Tree::TooBig => found.unresolved(
                    line,
                    format!("Express {sub}/ at {path} not kept: over {EXPRESS_MAX_FILES} files or 20 MB"),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// 1-based line numbers of increasing byte offsets in one pass (same count as `lang::line_at`,
/// without rescanning the file for every load).
struct Lines<'s> {
    bytes: &'s [u8],
    at: usize,
    line: u32,
}

impl Lines<'_> {
    fn line_of(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.bytes.len());
        if offset < self.at {
            self.at = 0;
            self.line = 1;
        }
        let newlines = self.bytes[self.at..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line = self.line.saturating_add(newlines as u32);
        self.at = offset;
        self.line
    }
}

pub fn dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
) -> Found {
    let mut found = Found::default();
    // JSON and native addons are loaded, never scanned.
    if file.ends_with(".json") || file.ends_with(".node") {
        return found;
    }
    let dir = parent_of(file);
    let mut resolver = Resolver::new(view, paths);
    if let Some(scope) = resolver.package_scope(dir) {
        found.keep(
            scope,
            "package.json of the module (Node reads its \"type\")",
        );
    }
    let tokens = tokenize(source);
    let mut lines = Lines {
        bytes: source.as_bytes(),
        at: 0,
        line: 1,
    };
    let mut express_line = None;
    for load in find_loads(&tokens) {
        let line = lines.line_of(load.start);
        let Some(spec) = load.spec else {
            found.unresolved(
                line,
                format!("{}(…) with a non-literal argument", load.kind.call_name()),
            );
            continue;
        };
        let why = load.kind.why(&spec);
        match resolver.resolve(&spec, dir, load.kind.conditions()) {
            Resolved::Builtin => {}
            Resolved::Files(files) => {
                for path in files {
                    found.keep(path, why.clone());
                }
            }
            Resolved::Missing(reason) => {
                if !load.in_try {
                    found.unresolved(line, format!("{why}: {reason}"));
                }
            }
        }
        if spec == "express" && express_line.is_none() {
            express_line = Some(line);
        }
    }
    if let Some(line) = express_line {
        keep_express_dirs(view, file, line, &mut found);
    }
    let mut seen = HashSet::new();
    found
        .paths
        .retain(|dependency| seen.insert(dependency.path.clone()));
    found.unresolved.dedup();
    found
}

/// The package directory (`…/node_modules/pkg` or `…/node_modules/@scope/pkg`) of a file inside
/// one; the innermost `node_modules` wins.
fn package_dir_of(file: &str) -> Option<&str> {
    const MARK: &str = "/node_modules/";
    let at = file.rfind(MARK)? + MARK.len();
    let rest = &file[at..];
    let mut parts = rest.split('/');
    let first = parts.next()?;
    if first.is_empty() || first.starts_with('.') {
        return None;
    }
    let name_len = if first.starts_with('@') {
        let second = parts.next()?;
        if second.is_empty() || first.len() == 1 {
            return None;
        }
        first.len() + 1 + second.len()
    } else {
        first.len()
    };
    // The file must be inside the package directory, not the directory itself.
    if rest.len() <= name_len + 1 || rest.as_bytes()[name_len] != b'/' {
        return None;
    }
    Some(&file[..at + name_len])
}

pub fn package_files<V: ImageView + ?Sized>(
    view: &V,
    _paths: &Paths,
    file: &str,
) -> Option<Package> {
    let dir = package_dir_of(file)?;
    let files = match walk_tree(view, dir, true, PACKAGE_MAX_FILES, u64::MAX) {
        Tree::Files(files) => files,
        Tree::Absent | Tree::TooBig => return None,
    };
    let manifest = read_manifest(view, &join(dir, "package.json"));
    let dir_name = dir.rsplit("/node_modules/").next().unwrap_or(dir);
    let name = manifest
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or(dir_name);
    let name = match manifest.get("version").and_then(Json::as_str) {
        Some(version) => format!("{name}@{version}"),
        None => name.to_string(),
    };
    Some(Package { name, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    fn scan(image: &FakeImage, file: &str, source: &str) -> Found {
        dependencies(image, &Paths::default(), file, source)
    }

    fn kept(found: &Found) -> Vec<&str> {
        let mut paths: Vec<&str> = found.paths.iter().map(|d| d.path.as_str()).collect();
        paths.sort();
        paths
    }

    fn specs(source: &str) -> Vec<Option<String>> {
        find_loads(&tokenize(source))
            .into_iter()
            .map(|load| load.spec)
            .collect()
    }

    fn some(spec: &str) -> Option<String> {
        Some(spec.to_string())
    }

    #[test]
    fn require_in_a_comment_does_not_count() {
        let source = "// require('a')\n/* require(\"b\")\n import 'c' */\nrequire('d');";
        assert_eq!(specs(source), [some("d")]);
    }

    #[test]
    fn require_in_a_string_does_not_count() {
        let source =
            r#"const s = "require('a')"; const t = 'import "b"\' require("c")'; require("d")"#;
        assert_eq!(specs(source), [some("d")]);
    }

    #[test]
    fn require_in_template_text_does_not_count_but_in_a_substitution_it_does() {
        let source =
            "const t = `require('a') ${ require('b') + `${require(`c`)} x` } require('d')`;";
        assert_eq!(specs(source), [some("b"), some("c")]);
        // A template with a substitution is no literal.
        assert_eq!(specs("require(`./x${n}`)"), [None]);
    }

    #[test]
    fn regex_literal_with_quotes_and_slashes_does_not_break_the_tokenizer() {
        let source = r#"const re = /["'`]\/\/[/]/g; if (x) /'/.test(y);
const q = x.replace(/\/\/.*$/, ""); require("./after")"#;
        assert_eq!(specs(source), [some("./after")]);
    }

    #[test]
    fn division_is_not_taken_for_a_regex() {
        // Were `/ 2 / ` a regex, the string after would be swallowed as code and vice versa.
        let source = "const a = b / 2 / c; const d = (e) / f; g = h[1] / 2; i++ / 3;\nrequire('x'); const s = ' / ';";
        assert_eq!(specs(source), [some("x")]);
        let source = "const v = { a: 1 } / 2 + \"require('no')\"; x = 1e-5 / 2;";
        assert!(specs(source).is_empty());
    }

    #[test]
    fn member_require_and_method_definitions_do_not_count() {
        let source = "obj.require('a'); m?.require('b'); class C { require(name) { return 1 } }\nfunction require(x) {}\nrequire.resolve('c')";
        assert_eq!(specs(source), [some("c")]);
    }

    #[test]
    fn static_import_and_export_forms_all_count() {
        let source = r#"#!/usr/bin/env node
import x from "a"; import {b1, b2 as c} from 'b'; import * as n from "c";
import "d"; import def, { e } from "e"; export { x } from "f"; export * from "g";
export * as h from "h"; export { local }; import.meta.url; const o = { import: 1, from: 'no' };"#;
        assert_eq!(
            specs(source),
            ["a", "b", "c", "d", "e", "f", "g", "h"].map(some)
        );
    }

    #[test]
    fn dynamic_import_literal_counts() {
        let source =
            "async function f() { const m = await import('./lazy.mjs'); return import(name) }";
        assert_eq!(specs(source), [some("./lazy.mjs"), None]);
    }

    #[test]
    fn non_literal_require_is_unresolved_with_its_line() {
        let image = FakeImage::new();
        let source = "'use strict';\n\nconst m = require(name);\nrequire('./a' + b);\n";
        let found = scan(&image, "/app/x.js", source);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [3, 4]);
        assert!(found.unresolved[0].message.contains("non-literal"));
    }

    #[test]
    fn missing_literal_is_unresolved_unless_inside_try() {
        let image = FakeImage::new();
        let source =
            "require('gone');\ntry { require('bufferutil') } catch (e) {}\nrequire('./nope')";
        let found = scan(&image, "/app/x.js", source);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [1, 3]);
    }

    #[test]
    fn relative_require_tries_extensions_then_index() {
        let mut image = FakeImage::new();
        image.file("/app/lib/util.js", b"");
        image.file("/app/data.json", b"{}");
        image.file("/app/models/index.js", b"");
        image.file("/app/esm.mjs", b"");
        image.file("/shared/abs.cjs", b"");
        let source = "require('./lib/util'); require('./data'); require('./models'); import('./esm'); require('/shared/abs'); require('../app/lib/util.js')";
        let found = scan(&image, "/app/server.js", source);
        assert_eq!(
            kept(&found),
            [
                "/app/data.json",
                "/app/esm.mjs",
                "/app/lib/util.js",
                "/app/models/index.js",
                "/shared/abs.cjs"
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn directory_package_json_main_is_followed() {
        let mut image = FakeImage::new();
        image.file("/app/plugin/package.json", br#"{"main": "dist/entry"}"#);
        image.file("/app/plugin/dist/entry.js", b"");
        image.file("/app/other/package.json", br#"{"main": "missing.js"}"#);
        image.file("/app/other/index.js", b"");
        let found = scan(
            &image,
            "/app/a.js",
            "require('./plugin'); require('./other/')",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/other/index.js",
                "/app/other/package.json",
                "/app/plugin/dist/entry.js",
                "/app/plugin/package.json"
            ]
        );
    }

    #[test]
    fn bare_package_found_in_node_modules_up_the_tree() {
        let mut image = FakeImage::new();
        image.file(
            "/app/node_modules/express/package.json",
            br#"{"name":"express","version":"4.18.2"}"#,
        );
        image.file(
            "/app/node_modules/express/index.js",
            b"module.exports = require('./lib/express');",
        );
        image.file("/app/node_modules/express/lib/express.js", b"");
        image.file("/app/src/routes/deep.js", b"");
        let found = scan(
            &image,
            "/app/src/routes/deep.js",
            "const e = require('express')",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/express/index.js",
                "/app/node_modules/express/package.json"
            ]
        );
        assert_eq!(found.paths[0].why, "require(\"express\")");
        // From inside express, its own relative file resolves next to it.
        let inner = scan(
            &image,
            "/app/node_modules/express/index.js",
            "require('./lib/express')",
        );
        assert!(kept(&inner).contains(&"/app/node_modules/express/lib/express.js"));
    }

    #[test]
    fn package_json_main_of_a_bare_package_and_a_subpath() {
        let mut image = FakeImage::new();
        image.file(
            "/app/node_modules/lodash/package.json",
            br#"{"main": "./lodash.js"}"#,
        );
        image.file("/app/node_modules/lodash/lodash.js", b"");
        image.file("/app/node_modules/lodash/fp/map.js", b"");
        let found = scan(
            &image,
            "/app/a.js",
            "require('lodash'); require('lodash/fp/map')",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/lodash/fp/map.js",
                "/app/node_modules/lodash/lodash.js",
                "/app/node_modules/lodash/package.json"
            ]
        );
    }

    fn dual_package() -> FakeImage {
        let mut image = FakeImage::new();
        image.file(
            "/app/node_modules/dual/package.json",
            br#"{"name": "dual", "main": "./old.js", "exports": {
                ".": {"types": "./index.d.ts", "import": {"node": "./esm/node.mjs", "default": "./esm/index.mjs"}, "require": "./cjs/index.js"},
                "./feature": [{"worker": "./nope.js"}, "./feature.js"],
                "./locale/*": "./dist/locale/*.js",
                "./locale/en/*": "./dist/en/*.js",
                "./internal/*": null
            }}"#,
        );
        for file in [
            "old.js",
            "esm/node.mjs",
            "esm/index.mjs",
            "cjs/index.js",
            "feature.js",
            "dist/locale/fr.js",
            "dist/en/us.js",
            "internal/x.js",
            "hidden.js",
        ] {
            image.file(&format!("/app/node_modules/dual/{file}"), b"");
        }
        image
    }

    #[test]
    fn exports_conditions_follow_the_loader() {
        let image = dual_package();
        let found = scan(&image, "/app/a.js", "require('dual')");
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/dual/cjs/index.js",
                "/app/node_modules/dual/package.json"
            ]
        );
        let found = scan(&image, "/app/a.mjs", "import d from 'dual'");
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/dual/esm/node.mjs",
                "/app/node_modules/dual/package.json"
            ]
        );
    }

    #[test]
    fn exports_subpath_patterns_and_arrays() {
        let image = dual_package();
        let source =
            "require('dual/feature'); require('dual/locale/fr'); require('dual/locale/en/us')";
        let found = scan(&image, "/app/a.js", source);
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/dual/dist/en/us.js",
                "/app/node_modules/dual/dist/locale/fr.js",
                "/app/node_modules/dual/feature.js",
                "/app/node_modules/dual/package.json"
            ]
        );
    }

    #[test]
    fn exports_hide_unexported_subpaths() {
        let image = dual_package();
        let found = scan(
            &image,
            "/app/a.js",
            "require('dual/hidden.js');\nrequire('dual/internal/x')",
        );
        assert!(!kept(&found).contains(&"/app/node_modules/dual/hidden.js"));
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn scoped_package_with_subpath() {
        let mut image = FakeImage::new();
        image.file(
            "/node_modules/@acme/tool/package.json",
            br#"{"name":"@acme/tool"}"#,
        );
        image.file("/node_modules/@acme/tool/index.js", b"");
        image.file("/node_modules/@acme/tool/lib/extra.js", b"");
        let found = scan(
            &image,
            "/srv/app/main.js",
            "import t from '@acme/tool'; import '@acme/tool/lib/extra'",
        );
        assert_eq!(
            kept(&found),
            [
                "/node_modules/@acme/tool/index.js",
                "/node_modules/@acme/tool/lib/extra.js",
                "/node_modules/@acme/tool/package.json"
            ]
        );
    }

    #[test]
    fn builtins_and_node_prefix_need_nothing() {
        let image = FakeImage::new();
        let source = "require('fs'); require('fs/promises'); import 'node:test'; import('node:fs'); require('child_process'); require('stream/web')";
        let found = scan(&image, "/app/a.js", source);
        assert!(found.paths.is_empty());
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
        // A core name with an unknown subpath is an npm package; here it is missing.
        let found = scan(&image, "/app/a.js", "require('util/')");
        assert_eq!(found.unresolved.len(), 1);
    }

    #[test]
    fn node_path_and_global_folders_are_searched() {
        let mut image = FakeImage::new();
        image.file("/opt/libs/shared/index.js", b"");
        image.file("/home/app/.node_modules/homemod.js", b"");
        image.file("/usr/local/bin/node", b"\x7fELF");
        image.file("/usr/local/lib/node/prefixed.js", b"");
        image.file("/usr/share/nodejs/debmod/index.js", b"");
        image.dir("/usr/lib/nodejs");
        let env = [
            "PATH=/usr/local/bin:/usr/bin".to_string(),
            "NODE_PATH=/opt/libs:relative:/missing".to_string(),
            "HOME=/home/app".to_string(),
        ];
        image.dir("/work/relative");
        let paths = Paths::discover(&image, &env, "/work");
        assert_eq!(
            paths.dirs,
            [
                "/opt/libs",
                "/work/relative",
                "/home/app/.node_modules",
                "/usr/local/lib/node",
                "/usr/share/nodejs",
                "/usr/lib/nodejs"
            ]
        );
        let found = dependencies(
            &image,
            &paths,
            "/app/a.js",
            "require('shared'); require('homemod'); require('prefixed'); require('debmod')",
        );
        assert_eq!(
            kept(&found),
            [
                "/home/app/.node_modules/homemod.js",
                "/opt/libs/shared/index.js",
                "/usr/local/lib/node/prefixed.js",
                "/usr/share/nodejs/debmod/index.js"
            ]
        );
    }

    #[test]
    fn node_prefix_comes_from_the_binary_real_path() {
        let mut image = FakeImage::new();
        image.file("/usr/bin/nodejs", b"\x7fELF");
        image.symlink("/usr/bin/node", "nodejs");
        image.dir("/usr/lib/node");
        let paths = Paths::discover(&image, &[], "/");
        assert_eq!(paths.dirs, ["/usr/lib/node"]);
    }

    fn express_app() -> FakeImage {
        let mut image = FakeImage::new();
        image.file(
            "/app/node_modules/express/package.json",
            br#"{"name":"express","version":"4.18.2"}"#,
        );
        image.file("/app/node_modules/express/index.js", b"");
        image.file("/app/node_modules/express/lib/express.js", b"");
        image.file("/app/views/index.ejs", b"<%= x %>");
        image.file("/app/views/partials/head.ejs", b"");
        image.file("/app/public/style.css", b"body{}");
        image.file("/app/package.json", br#"{"name":"app"}"#);
        image
    }

    #[test]
    fn express_app_keeps_views_and_public() {
        let image = express_app();
        let found = scan(
            &image,
            "/app/server.js",
            "const express = require('express');\napp.set('view engine', 'ejs')",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/express/index.js",
                "/app/node_modules/express/package.json",
                "/app/package.json",
                "/app/public/style.css",
                "/app/views/index.ejs",
                "/app/views/partials/head.ejs"
            ]
        );
    }

    #[test]
    fn express_in_a_routes_dir_keeps_the_parent_views() {
        let image = express_app();
        let found = scan(
            &image,
            "/app/routes/users.js",
            "import express from 'express'",
        );
        assert!(kept(&found).contains(&"/app/views/index.ejs"));
        assert!(kept(&found).contains(&"/app/public/style.css"));
        // Without express, views are not a load.
        let found = scan(&image, "/app/routes/users.js", "require('fs')");
        assert!(!kept(&found).contains(&"/app/views/index.ejs"));
    }

    #[test]
    fn oversized_tree_is_not_kept() {
        let mut image = FakeImage::new();
        for i in 0..5 {
            image.file(&format!("/app/public/f{i}.css"), b"x");
        }
        assert_eq!(
            walk_tree(&image, "/app/public", false, 4, 1 << 20),
            Tree::TooBig
        );
        assert_eq!(walk_tree(&image, "/app/public", false, 10, 3), Tree::TooBig);
        assert!(
            matches!(walk_tree(&image, "/app/public", false, 10, 1 << 20), Tree::Files(f) if f.len() == 5)
        );
        assert_eq!(walk_tree(&image, "/app/none", false, 10, 10), Tree::Absent);
    }

    #[test]
    fn nearest_package_json_is_kept_but_not_across_node_modules() {
        let mut image = FakeImage::new();
        image.file("/app/package.json", br#"{"type":"module"}"#);
        image.file("/app/node_modules/x/lib/a.js", b"");
        let found = scan(&image, "/app/src/deep/a.mjs", "");
        assert_eq!(kept(&found), ["/app/package.json"]);
        let found = scan(&image, "/app/node_modules/x/lib/a.js", "");
        assert!(found.paths.is_empty());
    }

    #[test]
    fn hash_imports_map_through_the_package_scope() {
        let mut image = FakeImage::new();
        image.file(
            "/app/package.json",
            br##"{"imports": {"#db": {"require": "./src/db.js"}, "#dep": "dep", "#utils/*": "./src/utils/*.js"}}"##,
        );
        image.file("/app/src/db.js", b"");
        image.file("/app/src/utils/str.js", b"");
        image.file("/app/node_modules/dep/index.js", b"");
        let found = scan(
            &image,
            "/app/src/a.js",
            "require('#db'); require('#utils/str'); require('#dep')",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/node_modules/dep/index.js",
                "/app/package.json",
                "/app/src/db.js",
                "/app/src/utils/str.js"
            ]
        );
    }

    #[test]
    fn package_self_reference_goes_through_exports() {
        let mut image = FakeImage::new();
        image.file(
            "/app/package.json",
            br#"{"name": "me", "exports": {"./util": "./lib/util.js"}}"#,
        );
        image.file("/app/lib/util.js", b"");
        let found = scan(&image, "/app/a.js", "require('me/util')");
        assert_eq!(kept(&found), ["/app/lib/util.js", "/app/package.json"]);
    }

    #[test]
    fn native_addon_and_pnpm_symlinks_are_returned_for_the_closure() {
        let mut image = FakeImage::new();
        image.file("/app/build/Release/addon.node", b"\x7fELF");
        image.file(
            "/app/node_modules/.pnpm/left-pad@1.3.0/node_modules/left-pad/index.js",
            b"",
        );
        image.symlink(
            "/app/node_modules/left-pad",
            ".pnpm/left-pad@1.3.0/node_modules/left-pad",
        );
        let found = scan(
            &image,
            "/app/a.js",
            "require('./build/Release/addon.node'); require('left-pad')",
        );
        assert_eq!(
            kept(&found),
            [
                "/app/build/Release/addon.node",
                "/app/node_modules/left-pad/index.js"
            ]
        );
    }

    #[test]
    fn package_files_lists_the_package_without_nested_node_modules() {
        let mut image = FakeImage::new();
        image.file(
            "/app/node_modules/express/package.json",
            br#"{"name":"express","version":"4.18.2"}"#,
        );
        image.file("/app/node_modules/express/index.js", b"");
        image.file("/app/node_modules/express/lib/router/index.js", b"");
        image.file("/app/node_modules/express/node_modules/debug/index.js", b"");
        let package = package_files(
            &image,
            &Paths::default(),
            "/app/node_modules/express/lib/router/index.js",
        );
        let package = package.expect("a package");
        assert_eq!(package.name, "express@4.18.2");
        assert_eq!(
            package.files,
            [
                "/app/node_modules/express/index.js",
                "/app/node_modules/express/lib/router/index.js",
                "/app/node_modules/express/package.json"
            ]
        );
        let nested = package_files(
            &image,
            &Paths::default(),
            "/app/node_modules/express/node_modules/debug/index.js",
        );
        assert_eq!(
            nested.map(|p| p.files),
            Some(vec![
                "/app/node_modules/express/node_modules/debug/index.js".to_string()
            ])
        );
    }

    #[test]
    fn package_files_of_a_scoped_package_and_outside_node_modules() {
        let mut image = FakeImage::new();
        image.file("/app/node_modules/@acme/tool/index.js", b"");
        let package = package_files(
            &image,
            &Paths::default(),
            "/app/node_modules/@acme/tool/index.js",
        );
        assert_eq!(package.map(|p| p.name), Some("@acme/tool".to_string()));
        assert_eq!(
            package_files(&image, &Paths::default(), "/app/server.js"),
            None
        );
        assert_eq!(
            package_files(&image, &Paths::default(), "/app/node_modules/.bin/x"),
            None
        );
        assert_eq!(
            package_files(&image, &Paths::default(), "/app/node_modules/@acme/tool"),
            None
        );
    }

    #[test]
    fn escapes_in_literals_are_decoded() {
        assert_eq!(
            specs(r#"require("\x2e/a\u002Fb"); require('\u{2e}/c')"#),
            [some("./a/b"), some("./c")]
        );
    }

    #[test]
    fn malformed_input_never_panics() {
        let image = FakeImage::new();
        for source in [
            "",
            "/",
            "'",
            "\"\\",
            "`${",
            "`${`${",
            "}}}}",
            "/* ",
            "require(",
            "require('x'",
            "import",
            "export {",
            "/[/",
            "a /\n/ b",
            "\\u",
            "é require('é')",
            "#!",
            "#!node\nrequire(`a`)",
            "import x from",
            "require.resolve(",
            "0x1e-5",
            "'\\\u{e9}'",
            "`\\`",
        ] {
            let _ = scan(&image, "/app/x.js", source);
        }
        let deep = "{".repeat(100_000) + &"(".repeat(100_000) + &"`${".repeat(10_000);
        let found = scan(&image, "/app/x.js", &deep);
        assert!(found.paths.is_empty());
        assert_eq!(specs("é = 1; require('é')"), [some("é")]);
    }
}
