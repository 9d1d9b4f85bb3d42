//! Perl: the image's `@INC` ([`Paths`]) and the scanner that finds the modules and files a Perl
//! file loads ([`dependencies`]).
//!
//! Runtime rules reproduced:
//! - `@INC` is `PERL5LIB` (or `PERLLIB` when that is unset, each dir preceded by its arch
//!   subdir), then Debian's dirs for the installed perl version, spelled as perl has them
//!   (`/usr/lib/x86_64-linux-gnu/perl/5.36` is a symlink to `5.36.0`; the closure keeps the hop),
//!   or a source-built `/usr/local/lib/perl5` perl's (the official Docker images);
//! - `use Foo::Bar` / `no Foo::Bar` / `require Foo::Bar` load `Foo/Bar.pm`, the first found in
//!   `@INC`; pragmas (`strict`, `warnings`, `lib`, ...) are modules too. An XS module's
//!   `XSLoader::load` then reads `auto/Foo/Bar/Bar.so` (and AutoLoader its `.al` files) from the
//!   first `@INC` dir that has `auto/Foo/Bar/`; `use VERSION` loads nothing;
//! - `require "file.pl"` and `do "file.pl"` search `@INC` for the path (`./x` and `/x` are taken
//!   as they are: `.` is not in `@INC` since perl 5.26);
//! - `use lib LIST` (and `unshift`/`push @INC`) adds dirs, relative ones against the current
//!   directory, `$FindBin::Bin` being the script's dir;
//! - `use parent`/`use base` (unless `-norequire`), `use Mojo::Base 'X'`, Moose/Moo's
//!   `extends`/`with`, `use if COND, Module` and `use aliased` load the classes they name;
//! - a load inside `eval { }`, `try { }` or an `eval "..."` string is optional: kept when found,
//!   not reported when missing.
//!
//! The scanner is a tokenizer for real Perl: `#` comments, POD, strings and every quote-like
//! operator (`q qq qw qx m qr s tr y` with any delimiters), heredocs and `__END__`/`__DATA__` are
//! understood, so a `use` in any of them never counts.

use super::{certainly_absent, child_names, real_dir};
use std::collections::HashSet;

use crate::closure::lang::{env_value, Found};
use crate::closure::resolve::{join, normalize_lexically, parent_of, resolve};
use crate::closure::ImageView;
use crate::image::EntryKind;

/// Packages that exist in every perl without a file.
const BUILTIN_PACKAGES: &[&str] = &["CORE", "CORE::GLOBAL", "main", "Internals", "UNIVERSAL"];
/// Modules whose `use` lines load the classes named in their arguments.
const PARENT_MODULES: &[&str] = &["parent", "base", "Mojo::Base", "aliased"];
/// Modules that give a file Moose-style `extends 'Class'` / `with 'Role'`.
const MOOSE_LIKE: &[&str] = &[
    "Moose",
    "Moose::Role",
    "Moo",
    "Moo::Role",
    "Mouse",
    "Mouse::Role",
    "Role::Tiny",
    "Role::Tiny::With",
    "Mojo::Base",
];
/// Nesting bound for `eval "..."` strings scanned as code and for expression evaluation.
const MAX_NESTING: usize = 8;
/// Files kept from one module's `auto/` dir at most.
const AUTO_MAX_FILES: usize = 1000;

/// A directory as perl names it (`path`, possibly through symlinks) and where it really is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    path: String,
    real: String,
}

/// Perl's search paths in the image.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// `@INC`, in search order (existing dirs only).
    inc: Vec<Dir>,
    /// The image's working directory: the process's current directory.
    workdir: String,
}

impl Paths {
    /// `env` is the image's Env (`PERL5LIB`, `PERLLIB`), `workdir` its WorkingDir.
    pub fn discover<V: ImageView + ?Sized>(view: &V, env: &[String], workdir: &str) -> Self {
        let workdir = absolute(workdir, "/");
        let mut candidates: Vec<String> = Vec::new();
        // perlrun: PERLLIB is used only when PERL5LIB is not set.
        if let Some(lib) = env_value(env, "PERL5LIB").or_else(|| env_value(env, "PERLLIB")) {
            for part in lib.split(':').filter(|part| !part.is_empty()) {
                candidates.extend(with_arch_dirs(view, &absolute(part, &workdir)));
            }
        }
        // A source-built perl (`/usr/local/bin/perl`) comes first in PATH.
        for version in version_children(view, "/usr/local/lib/perl5") {
            for base in ["site_perl", "vendor_perl"] {
                let dir = format!("/usr/local/lib/perl5/{base}/{version}");
                candidates.extend(with_arch_dirs(view, &dir));
            }
            candidates.extend(with_arch_dirs(
                view,
                &format!("/usr/local/lib/perl5/{version}"),
            ));
        }
        // Debian: `perl -e 'print join "\n", @INC'` on bookworm.
        let triplets = multiarch_triplets(view);
        let versions = debian_versions(view, &triplets);
        candidates.push("/etc/perl".to_string());
        for (full, short) in &versions {
            for triplet in &triplets {
                candidates.push(format!("/usr/local/lib/{triplet}/perl/{full}"));
            }
            candidates.push(format!("/usr/local/share/perl/{full}"));
            for triplet in &triplets {
                candidates.push(format!("/usr/lib/{triplet}/perl5/{short}"));
            }
        }
        candidates.push("/usr/share/perl5".to_string());
        for triplet in &triplets {
            candidates.push(format!("/usr/lib/{triplet}/perl-base"));
        }
        for (_, short) in &versions {
            for triplet in &triplets {
                candidates.push(format!("/usr/lib/{triplet}/perl/{short}"));
            }
            candidates.push(format!("/usr/share/perl/{short}"));
        }
        candidates.push("/usr/local/lib/site_perl".to_string());
        let mut inc = Vec::new();
        let mut seen = HashSet::new();
        for path in candidates {
            push_dir(view, &mut inc, &mut seen, path);
        }
        Self { inc, workdir }
    }
}

fn push_dir<V: ImageView + ?Sized>(
    view: &V,
    dirs: &mut Vec<Dir>,
    seen: &mut HashSet<String>,
    path: String,
) {
    if let Some(real) = real_dir(view, &path) {
        if seen.insert(real.clone()) {
            dirs.push(Dir { path, real });
        }
    }
}

/// The perl versions installed Debian's way, as (full `5.36.0`, short `5.36`) pairs, newest
/// first.
fn debian_versions<V: ImageView + ?Sized>(view: &V, triplets: &[String]) -> Vec<(String, String)> {
    let mut dirs = vec![
        "/usr/share/perl".to_string(),
        "/usr/local/share/perl".to_string(),
    ];
    for triplet in triplets {
        dirs.push(format!("/usr/lib/{triplet}/perl"));
        dirs.push(format!("/usr/lib/{triplet}/perl5"));
        dirs.push(format!("/usr/local/lib/{triplet}/perl"));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for dir in dirs {
        for version in version_children(view, &dir) {
            let parts: Vec<&str> = version.split('.').collect();
            let (full, short) = match parts.as_slice() {
                [major, minor] => (format!("{major}.{minor}.0"), version.clone()),
                [major, minor, _] => (version.clone(), format!("{major}.{minor}")),
                _ => continue,
            };
            // A full version found on disk is better than one guessed from a short one.
            if let Some(known) = pairs.iter_mut().find(|(_, s)| *s == short) {
                if parts.len() == 3 {
                    known.0 = full;
                }
            } else {
                pairs.push((full, short));
            }
        }
    }
    pairs.sort_by(|a, b| compare_versions(&b.1, &a.1));
    pairs
}

/// A lib dir preceded by its arch subdirs (`x86_64-linux-gnu-thread-multi`), as perl adds them
/// for `PERL5LIB` and `use lib`.
fn with_arch_dirs<V: ImageView + ?Sized>(view: &V, dir: &str) -> Vec<String> {
    let mut out: Vec<String> = child_names(view, dir)
        .into_iter()
        .filter(|name| name.contains("-linux"))
        .map(|name| join(dir, &name))
        .filter(|path| real_dir(view, path).is_some())
        .collect();
    out.push(dir.to_string());
    out
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

/// Whether `path` is a regular file once symlinks are followed.
fn is_file<V: ImageView + ?Sized>(view: &V, path: &str) -> bool {
    let real = match view.entry(path).map(|entry| &entry.kind) {
        Some(EntryKind::File) | Some(EntryKind::Hardlink { .. }) => return true,
        // Missing at this spelling may still exist through a symlinked directory on the way.
        None if certainly_absent(view, path) => return false,
        Some(EntryKind::Symlink { .. }) | None => match resolve(view, path, true) {
            Ok(resolution) => resolution.path,
            Err(_) => return false,
        },
        Some(_) => return false,
    };
    matches!(
        view.entry(&real).map(|entry| &entry.kind),
        Some(EntryKind::File) | Some(EntryKind::Hardlink { .. })
    )
}

/// Children of `dir` named like a version (`5.36.0`, `5.36`), newest first.
fn version_children<V: ImageView + ?Sized>(view: &V, dir: &str) -> Vec<String> {
    let mut versions: Vec<String> = child_names(view, dir)
        .into_iter()
        .filter(|name| {
            name.starts_with(|c: char| c.is_ascii_digit())
                && name.contains('.')
                && name.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
        .collect();
    versions.sort_by(|a, b| compare_versions(b, a));
    versions
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
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

// ---------------------------------------------------------------------------------------------
// The tokenizer.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Quote {
    /// `'..'`, `q()`: no interpolation.
    Single,
    /// `".."`, `qq{}`, `<<"EOF"`: `$var` and `@var` interpolate.
    Double,
    /// `qw()`: a list of words.
    Words,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A bareword: keyword, function or package name (`use`, `Foo::Bar`).
    Word(String),
    /// `$x`, `@x`, `%x`, `$Foo::Bar`, `$#x`, `$$`, `&sub`, `*glob`.
    Var(String),
    /// A string literal: its text (single-quoted escapes applied; double-quoted raw).
    Str(Quote, String),
    /// A number or version string (`5.010`, `v5.36`).
    Num,
    /// Any other literal: regexp, substitution, transliteration, command.
    Other,
    Op(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    tok: Tok,
    /// Byte offset in the source.
    at: usize,
}

/// A heredoc whose body starts on the next line; `token` gets the body.
struct Heredoc {
    id: Vec<u8>,
    indented: bool,
    quote: Quote,
    token: usize,
}

/// Operators, longest first (maximal munch).
const OPERATORS: &[&str] = &[
    "<<=", ">>=", "**=", "||=", "&&=", "//=", "<=>", "...", "->", "=>", "==", "!=", "=~", "!~",
    "<=", ">=", "&&", "||", "//", "..", "::", "**", "++", "--", "+=", "-=", ".=", "*=", "/=", "|=",
    "&=", "^=", "%=", "<<", ">>",
];

/// Words after which `/` always opens a regexp.
const REGEX_WORDS: &[&str] = &[
    "split", "grep", "map", "if", "unless", "elsif", "while", "until", "and", "or", "not",
    "return", "push", "unshift", "when", "x", "lt", "gt", "le", "ge", "eq", "ne", "cmp",
];

/// Quote-like operators (`q(...)`, `s{...}{...}`).
const QUOTE_OPERATORS: &[&str] = &["q", "qq", "qw", "qx", "m", "qr", "s", "tr", "y"];

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

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
}

/// Tokenizes Perl source up to `__END__`/`__DATA__`.
fn lex(source: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        src: source.as_bytes(),
        pos: 0,
        toks: Vec::new(),
        heredocs: Vec::new(),
    };
    lexer.run();
    lexer.toks
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> u8 {
        self.src.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn push(&mut self, tok: Tok, at: usize) {
        self.toks.push(Token { tok, at });
    }

    fn run(&mut self) {
        self.line_start();
        while self.pos < self.src.len() {
            let at = self.pos;
            let c = self.src[at];
            match c {
                b'\n' => {
                    self.pos += 1;
                    self.line_start();
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'#' => self.skip_to_eol(),
                _ => {
                    if let Some(tok) = self.token(c) {
                        if let Tok::Word(word) = &tok {
                            if word == "__END__" || word == "__DATA__" {
                                return;
                            }
                        }
                        self.push(tok, at);
                    }
                }
            }
        }
    }

    fn skip_to_eol(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn skip_line(&mut self) {
        self.skip_to_eol();
        self.pos = (self.pos + 1).min(self.src.len());
    }

    /// At the start of a line: heredoc bodies begun on the previous line, then POD (a line
    /// starting with `=word` up to a line starting with `=cut`).
    fn line_start(&mut self) {
        for doc in std::mem::take(&mut self.heredocs) {
            let body = self.heredoc_body(&doc);
            if let Some(token) = self.toks.get_mut(doc.token) {
                token.tok = Tok::Str(doc.quote, body);
            }
        }
        while self.peek(0) == b'=' && self.peek(1).is_ascii_alphabetic() {
            self.skip_line();
            while self.pos < self.src.len() {
                let rest = &self.src[self.pos..];
                let is_cut = rest.starts_with(b"=cut")
                    && rest.get(4).is_none_or(|c| !c.is_ascii_alphanumeric());
                self.skip_line();
                if is_cut {
                    break;
                }
            }
        }
    }

    fn heredoc_body(&mut self, doc: &Heredoc) -> String {
        let mut body = Vec::new();
        while self.pos < self.src.len() {
            let start = self.pos;
            self.skip_to_eol();
            let raw = &self.src[start..self.pos];
            self.pos = (self.pos + 1).min(self.src.len());
            let mut line = raw.strip_suffix(b"\r").unwrap_or(raw);
            if doc.indented {
                while let Some((b' ' | b'\t', rest)) = line.split_first() {
                    line = rest;
                }
            }
            if line == doc.id.as_slice() {
                break;
            }
            body.extend_from_slice(raw);
            body.push(b'\n');
        }
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Whether a term (not an operator) comes next: there `/` opens a regexp, `%x` is a hash,
    /// `<<EOF` a heredoc.
    fn term_expected(&self) -> bool {
        match self.toks.last().map(|token| &token.tok) {
            None => true,
            Some(Tok::Op(op)) => !matches!(op.as_str(), ")" | "]" | "}"),
            Some(Tok::Word(word)) => {
                let after_arrow = self.toks.len() >= 2
                    && matches!(&self.toks[self.toks.len() - 2].tok, Tok::Op(op) if op == "->");
                // `$obj->count / 2` and constants (`PI / 2`) divide; functions take a regexp
                // (`split /,/`, `grep /x/, @list`).
                !after_arrow
                    && !word
                        .bytes()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
            }
            Some(_) => false,
        }
    }

    /// Whether `/` opens a regexp here. After a function name it does (`split /,/`) unless a
    /// space follows, which reads as division (`time / 60`), except after the words that
    /// always take a pattern or an expression.
    fn slash_starts_regex(&self) -> bool {
        match self.toks.last().map(|token| &token.tok) {
            Some(Tok::Word(word)) if REGEX_WORDS.contains(&word.as_str()) => true,
            Some(Tok::Word(_)) => {
                self.term_expected() && !matches!(self.peek(1), b' ' | b'\t' | b'\n' | b'\r')
            }
            _ => self.term_expected(),
        }
    }

    fn token(&mut self, c: u8) -> Option<Tok> {
        if c.is_ascii_digit() {
            self.number();
            return Some(Tok::Num);
        }
        if is_ident_start(c) {
            return Some(self.word());
        }
        let term = self.term_expected();
        let next = self.peek(1);
        Some(match c {
            b'\'' => {
                self.pos += 1;
                Tok::Str(Quote::Single, self.single_quoted(b'\'', None))
            }
            b'"' => {
                self.pos += 1;
                Tok::Str(Quote::Double, self.delimited(b'"'))
            }
            b'`' => {
                self.pos += 1;
                self.delimited(b'`');
                Tok::Other
            }
            b'$' => self.variable(),
            b'@' if is_ident_start(next) || matches!(next, b'$' | b'{' | b':' | b'_') => {
                self.variable()
            }
            b'%' | b'&' | b'*'
                if term && (is_ident_start(next) || matches!(next, b'$' | b'{' | b':')) =>
            {
                self.variable()
            }
            b'/' if self.slash_starts_regex() => {
                self.pos += 1;
                self.delimited(b'/');
                self.skip_flags();
                Tok::Other
            }
            b'<' if next == b'<' && term => match self.heredoc() {
                Some(tok) => tok,
                None => self.operator(),
            },
            b'(' if self.prototype_follows() => {
                // `sub name ($$;@)`: `$$`, `$;` and `$)` there are not variables.
                self.pos += 1;
                while self.pos < self.src.len() && self.src[self.pos] != b')' {
                    self.pos += 1;
                }
                self.pos = (self.pos + 1).min(self.src.len());
                Tok::Other
            }
            _ => self.operator(),
        })
    }

    /// After `sub` or `sub name`, a `(...)` made only of prototype characters.
    fn prototype_follows(&self) -> bool {
        let n = self.toks.len();
        let after_sub = matches!(self.toks.last().map(|t| &t.tok), Some(Tok::Word(w)) if w == "sub")
            || (n >= 2
                && matches!(&self.toks[n - 2].tok, Tok::Word(w) if w == "sub")
                && matches!(&self.toks[n - 1].tok, Tok::Word(_)));
        if !after_sub {
            return false;
        }
        let rest = &self.src[self.pos + 1..];
        match rest.iter().position(|&c| c == b')') {
            Some(end) => rest[..end].iter().all(|c| b"$@%&*;\\[]+_ \t".contains(c)),
            None => false,
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
        // `5.010_001`, `5.36.0`, but not the range in `1..10`.
        while self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            self.pos += 1;
            while is_ident_char(self.peek(0)) {
                self.pos += 1;
            }
        }
    }

    fn skip_flags(&mut self) {
        while self.peek(0).is_ascii_alphabetic() {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> Tok {
        let start = self.pos;
        loop {
            while is_ident_char(self.peek(0)) {
                self.pos += 1;
            }
            if self.peek(0) == b':' && self.peek(1) == b':' {
                self.pos += 2;
                continue;
            }
            break;
        }
        let word = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
        // `v5.36.0`: a version string.
        if word.len() > 1 && word.starts_with('v') && word[1..].bytes().all(|c| c.is_ascii_digit())
        {
            self.number();
            return Tok::Num;
        }
        if QUOTE_OPERATORS.contains(&word.as_str()) && !self.bareword_here(start) {
            if let Some(tok) = self.quote_like(&word) {
                return tok;
            }
        }
        Tok::Word(word)
    }

    /// Whether the quote-like operator name at `start` is used as a plain word: a hash key
    /// (`q => 1`, `$h{s}`), a method (`->s`), a sub name (`sub y`) or a file test (`-s $f`).
    fn bareword_here(&self, start: usize) -> bool {
        let prev = self.toks.last().map(|token| &token.tok);
        // After `=~` it is a match or substitution whatever the delimiter (`s,a,b,`).
        if matches!(prev, Some(Tok::Op(op)) if op == "=~" || op == "!~") {
            return false;
        }
        if matches!(prev, Some(Tok::Op(op)) if op == "->")
            || matches!(prev, Some(Tok::Word(w)) if w == "sub")
            || (start > 0 && self.src[start - 1] == b'-')
        {
            return true;
        }
        let mut k = self.pos;
        while k < self.src.len() && matches!(self.src[k], b' ' | b'\t') {
            k += 1;
        }
        let rest = &self.src[k..];
        rest.starts_with(b"=>")
            || rest
                .first()
                .is_none_or(|&c| matches!(c, b',' | b';' | b')' | b'=' | b'\n'))
            || (matches!(prev, Some(Tok::Op(op)) if op == "{") && rest.first() == Some(&b'}'))
    }

    /// `q(..)`, `qq{..}`, `qw/../`, `m!..!`, `s{..}{..}`, `tr/a/b/`, ... with any delimiter.
    fn quote_like(&mut self, op: &str) -> Option<Tok> {
        let mut k = self.pos;
        while k < self.src.len() && matches!(self.src[k], b' ' | b'\t' | b'\r' | b'\n') {
            k += 1;
        }
        let open = *self.src.get(k)?;
        // After whitespace `#` starts a comment; an alphanumeric delimiter needs whitespace we
        // do not bother with.
        if is_ident_char(open) || open.is_ascii_whitespace() || (open == b'#' && k > self.pos) {
            return None;
        }
        self.pos = k + 1;
        let tok = match op {
            "q" => Tok::Str(Quote::Single, self.single_quoted(closing(open), Some(open))),
            "qq" => Tok::Str(Quote::Double, self.delimited(open)),
            "qw" => Tok::Str(Quote::Words, self.single_quoted(closing(open), Some(open))),
            "s" | "tr" | "y" => {
                self.delimited(open);
                if closing(open) != open {
                    // `s{..} {..}`: the replacement has its own delimiters.
                    while self.pos < self.src.len() && self.src[self.pos].is_ascii_whitespace() {
                        self.pos += 1;
                    }
                    let second = self.peek(0);
                    if second != 0 {
                        self.pos += 1;
                        self.delimited(second);
                    }
                } else {
                    self.delimited(open);
                }
                self.skip_flags();
                Tok::Other
            }
            _ => {
                self.delimited(open);
                self.skip_flags();
                Tok::Other
            }
        };
        Some(tok)
    }

    /// The raw body up to the closing delimiter (consumed); brackets nest, `\` escapes.
    fn delimited(&mut self, open: u8) -> String {
        let close = closing(open);
        let nests = close != open;
        let start = self.pos;
        let mut depth = 0usize;
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if c == b'\\' {
                self.pos = (self.pos + 2).min(self.src.len());
                continue;
            }
            if nests && c == open {
                depth += 1;
            } else if c == close {
                if depth == 0 {
                    let body = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                    self.pos += 1;
                    return body;
                }
                depth -= 1;
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.src[start..]).into_owned()
    }

    /// A single-quoted body: only `\\` and the escaped delimiters are escapes.
    fn single_quoted(&mut self, close: u8, open: Option<u8>) -> String {
        let open = open.unwrap_or(close);
        let raw = self.delimited(open);
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut k = 0;
        while k < bytes.len() {
            if bytes[k] == b'\\' {
                if let Some(&next) = bytes.get(k + 1) {
                    if next == b'\\' || next == close || next == open {
                        out.push(next);
                        k += 2;
                        continue;
                    }
                }
            }
            out.push(bytes[k]);
            k += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn variable(&mut self) -> Tok {
        let start = self.pos;
        let sigil = self.src[self.pos];
        self.pos += 1;
        if sigil == b'$' && self.peek(0) == b'#' {
            // `$#array`, `$#{expr}`, `$#$ref`; a lone `$#` is the old output format variable.
            self.pos += 1;
            if !(is_ident_start(self.peek(0)) || matches!(self.peek(0), b'{' | b'$')) {
                return Tok::Var("$#".to_string());
            }
        }
        // Dereference chains: `$$ref`, `@$ref`.
        while self.peek(0) == b'$'
            && (is_ident_start(self.peek(1)) || matches!(self.peek(1), b'$' | b'{' | b':'))
        {
            self.pos += 1;
        }
        let next = self.peek(0);
        if is_ident_start(next) || (next == b':' && self.peek(1) == b':') {
            loop {
                while is_ident_char(self.peek(0)) {
                    self.pos += 1;
                }
                if self.peek(0) == b':' && self.peek(1) == b':' {
                    self.pos += 2;
                    continue;
                }
                break;
            }
        } else if next == b'{' {
            // `${name}` is the variable; `${ expr }` leaves the brace to the caller.
            let rest = &self.src[self.pos + 1..];
            let name_len = rest
                .iter()
                .take_while(|&&c| is_ident_char(c) || c == b':')
                .count();
            if name_len > 0 && rest.get(name_len) == Some(&b'}') {
                self.pos += name_len + 2;
            }
        } else if next == b'^' && self.peek(1).is_ascii_uppercase() {
            self.pos += 2;
        } else if sigil == b'$' && next.is_ascii_digit() {
            while self.peek(0).is_ascii_digit() {
                self.pos += 1;
            }
        } else if sigil == b'$' && next.is_ascii_punctuation() {
            // Special variables: `$_`, `$!`, `$@`, `$/`, `$'`, `$"`, `$;`, `$$`, ...
            self.pos += 1;
        } else if sigil == b'@' && matches!(next, b'-' | b'+') {
            self.pos += 1;
        }
        Tok::Var(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    /// `<<"EOF"`, `<<'EOF'`, `<<EOF`, `<<~EOF`, `<<\EOF`, `<< "EOF"`.
    fn heredoc(&mut self) -> Option<Tok> {
        let mut k = self.pos + 2;
        let indented = self.src.get(k) == Some(&b'~');
        if indented {
            k += 1;
        }
        let mut spaced = k;
        while spaced < self.src.len() && matches!(self.src[spaced], b' ' | b'\t') {
            spaced += 1;
        }
        let c = *self.src.get(spaced)?;
        let (id, end, quote) = if matches!(c, b'"' | b'\'' | b'`') {
            let close = self.src[spaced + 1..]
                .iter()
                .position(|&b| b == c || b == b'\n')?;
            let id_end = spaced + 1 + close;
            if self.src.get(id_end) != Some(&c) {
                return None;
            }
            let quote = if c == b'\'' {
                Quote::Single
            } else {
                Quote::Double
            };
            (self.src[spaced + 1..id_end].to_vec(), id_end + 1, quote)
        } else if spaced == k && (is_ident_start(c) || c == b'\\') {
            let begin = if c == b'\\' { k + 1 } else { k };
            let mut j = begin;
            while j < self.src.len() && is_ident_char(self.src[j]) {
                j += 1;
            }
            if j == begin {
                return None;
            }
            let quote = if c == b'\\' {
                Quote::Single
            } else {
                Quote::Double
            };
            (self.src[begin..j].to_vec(), j, quote)
        } else {
            return None;
        };
        self.heredocs.push(Heredoc {
            id,
            indented,
            quote,
            token: self.toks.len(),
        });
        self.pos = end;
        // Replaced by the body at the next line.
        Some(Tok::Other)
    }
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
// Evaluating arguments.

fn tok_at(toks: &[Token], i: usize) -> Option<&Tok> {
    toks.get(i).map(|token| &token.tok)
}

fn is_op(toks: &[Token], i: usize, op: &str) -> bool {
    matches!(tok_at(toks, i), Some(Tok::Op(o)) if o == op)
}

fn is_word(toks: &[Token], i: usize, word: &str) -> bool {
    matches!(tok_at(toks, i), Some(Tok::Word(w)) if w == word)
}

/// Whether `name` is a package name (`Foo::Bar`, `Encode::KR::2022_KR`: only the first part
/// must not start with a digit).
fn is_module_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.split("::").all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Evaluates the path expressions `use lib` and `require` arguments are built from.
struct Eval<'a> {
    file: &'a str,
    workdir: &'a str,
    /// The file uses FindBin: `$Bin`/`$RealBin` are its directory.
    findbin: bool,
}

impl Eval<'_> {
    /// A comma-separated list up to `;`/`)`/`}`: each element's value when known (a `qw()`
    /// gives several).
    fn list(&self, toks: &[Token], mut i: usize, depth: usize) -> (Vec<Option<String>>, usize) {
        let mut out = Vec::new();
        for _ in 0..64 {
            if matches!(tok_at(toks, i), None | Some(Tok::Op(_)))
                && !is_op(toks, i, "(")
                && !is_op(toks, i, "-")
            {
                break;
            }
            if let Some(Tok::Str(Quote::Words, words)) = tok_at(toks, i) {
                out.extend(words.split_whitespace().map(|w| Some(w.to_string())));
                i += 1;
            } else {
                let (value, next) = self.concat(toks, i, depth);
                out.push(value);
                i = next.max(i + 1);
            }
            if is_op(toks, i, ",") || is_op(toks, i, "=>") {
                i += 1;
                continue;
            }
            break;
        }
        (out, i)
    }

    /// `term ('.' term)*`.
    fn concat(&self, toks: &[Token], i: usize, depth: usize) -> (Option<String>, usize) {
        let (mut value, mut i) = self.term(toks, i, depth);
        while is_op(toks, i, ".") {
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
        if depth > MAX_NESTING {
            return (None, i + 1);
        }
        let Some(tok) = tok_at(toks, i) else {
            return (None, i);
        };
        match tok {
            Tok::Str(Quote::Single, text) => (Some(text.clone()), i + 1),
            Tok::Str(Quote::Double, text) => (self.interpolate(text), i + 1),
            Tok::Var(name) => (self.variable(name), i + 1),
            Tok::Word(word) if word == "__FILE__" => (Some(self.file.to_string()), i + 1),
            Tok::Word(word) if word == "File::Spec" && is_op(toks, i + 1, "->") => {
                let method = match tok_at(toks, i + 2) {
                    Some(Tok::Word(method)) => method.clone(),
                    _ => return (None, i + 2),
                };
                let (args, next) = self.call_args(toks, i + 3, depth);
                (self.function(&method, &args), next)
            }
            Tok::Word(word) => {
                let name = word.rsplit("::").next().unwrap_or(word);
                if !matches!(
                    name,
                    "dirname" | "abs_path" | "realpath" | "catdir" | "catfile" | "rel2abs"
                ) {
                    return (None, i + 1);
                }
                let (args, next) = self.call_args(toks, i + 1, depth);
                (self.function(name, &args), next)
            }
            Tok::Op(op) if op == "(" => {
                let (values, next) = self.list(toks, i + 1, depth + 1);
                let value = match values.as_slice() {
                    [value] if is_op(toks, next, ")") => value.clone(),
                    _ => None,
                };
                (value, next + usize::from(is_op(toks, next, ")")))
            }
            _ => (None, i + 1),
        }
    }

    /// `(a, b)` or a single unparenthesised argument.
    fn call_args(&self, toks: &[Token], i: usize, depth: usize) -> (Vec<Option<String>>, usize) {
        if is_op(toks, i, "(") {
            let (args, next) = self.list(toks, i + 1, depth + 1);
            if is_op(toks, next, ")") {
                return (args, next + 1);
            }
            return (vec![None], next);
        }
        let (value, next) = self.term(toks, i, depth + 1);
        (vec![value], next)
    }

    fn function(&self, name: &str, args: &[Option<String>]) -> Option<String> {
        match (name, args) {
            ("dirname", [Some(path)]) => Some(match path.trim_end_matches('/').rfind('/') {
                Some(0) => "/".to_string(),
                Some(at) => path[..at].to_string(),
                None => ".".to_string(),
            }),
            ("abs_path" | "realpath" | "rel2abs", [Some(path)]) => {
                Some(absolute(path, self.workdir))
            }
            ("rel2abs", [Some(path), Some(base)]) => {
                Some(absolute(path, &absolute(base, self.workdir)))
            }
            ("catdir" | "catfile", parts) if !parts.is_empty() => {
                let parts: Option<Vec<&str>> = parts.iter().map(|p| p.as_deref()).collect();
                Some(parts?.join("/"))
            }
            _ => None,
        }
    }

    fn variable(&self, name: &str) -> Option<String> {
        let bare = name.trim_start_matches('$').trim_matches(['{', '}']);
        let is_bin = matches!(bare, "FindBin::Bin" | "FindBin::RealBin")
            || (self.findbin && matches!(bare, "Bin" | "RealBin"));
        is_bin.then(|| parent_of(self.file).to_string())
    }

    /// A double-quoted string's value: escapes applied, FindBin variables substituted; `None`
    /// when any other variable interpolates.
    fn interpolate(&self, text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut k = 0;
        while k < bytes.len() {
            match bytes[k] {
                b'\\' => {
                    let next = bytes.get(k + 1).copied().unwrap_or(b'\\');
                    out.push(match next {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                    k += 2;
                }
                b'$' if bytes
                    .get(k + 1)
                    .is_some_and(|&c| is_ident_start(c) || c == b'{' || c == b':') =>
                {
                    let braced = bytes[k + 1] == b'{';
                    let start = k + 1 + usize::from(braced);
                    let mut end = start;
                    while end < bytes.len()
                        && (is_ident_char(bytes[end])
                            || (bytes[end] == b':' && bytes.get(end + 1) == Some(&b':')))
                    {
                        end += if bytes[end] == b':' { 2 } else { 1 };
                    }
                    let name = std::str::from_utf8(&bytes[start..end.min(bytes.len())]).ok()?;
                    if braced {
                        if bytes.get(end) != Some(&b'}') {
                            return None;
                        }
                        end += 1;
                    }
                    // `$x[0]`, `$x{k}`, `$x->...` index into the variable: not known.
                    if matches!(bytes.get(end), Some(b'[') | Some(b'{'))
                        || bytes[end.min(bytes.len())..].starts_with(b"->")
                    {
                        return None;
                    }
                    out.extend_from_slice(self.variable(name)?.as_bytes());
                    k = end;
                }
                b'@' if bytes
                    .get(k + 1)
                    .is_some_and(|&c| is_ident_start(c) || c == b'{' || c == b'$') =>
                {
                    return None
                }
                other => {
                    out.push(other);
                    k += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }
}

/// A double-quoted body with its backslash escapes applied (`\"` → `"`), variables left as
/// they are.
fn unescape_double(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Finding and resolving loads.

/// What the Perl file `file` (its real path) with text `source` loads.
pub fn dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
) -> Found {
    let mut found = Found::default();
    scan_text(view, paths, file, source, None, 0, &mut found);
    let mut seen = HashSet::new();
    found
        .paths
        .retain(|dependency| seen.insert(dependency.path.clone()));
    found.unresolved.sort();
    found.unresolved.dedup();
    found
}

/// Scans one piece of Perl code: the file, or the text of an `eval "..."` in it (`eval_line`
/// set: everything there is optional and reported at that line).
fn scan_text<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
    eval_line: Option<u32>,
    depth: usize,
    found: &mut Found,
) {
    let toks = lex(source);
    let lines = match eval_line {
        Some(line) => vec![line; toks.len()],
        None => token_lines(source, &toks),
    };
    let workdir = if paths.workdir.is_empty() {
        "/"
    } else {
        paths.workdir.as_str()
    };
    let findbin = toks.iter().any(|token| match &token.tok {
        Tok::Word(word) => word.starts_with("FindBin"),
        Tok::Var(name) => name.contains("FindBin"),
        _ => false,
    });
    let eval = Eval {
        file,
        workdir,
        findbin,
    };
    let mut scan = Scan {
        view,
        paths,
        file,
        toks: &toks,
        lines: &lines,
        eval: &eval,
        packages: declared_packages(&toks),
        moose: false,
        depth,
        front: Vec::new(),
        back: Vec::new(),
        found,
    };
    scan.collect_lib_dirs();
    scan.moose = toks.iter().enumerate().any(|(i, token)| {
        token.tok == Tok::Word("use".to_string())
            && matches!(tok_at(&toks, i + 1), Some(Tok::Word(m)) if MOOSE_LIKE.contains(&m.as_str()))
    });
    // Loads inside `eval { }` / `try { }` are optional: track those blocks by brace depth.
    let mut braces = 0usize;
    let mut optional_blocks: Vec<usize> = Vec::new();
    for i in 0..toks.len() {
        match tok_at(&toks, i) {
            Some(Tok::Op(op)) if op == "{" => {
                if i > 0 && (is_word(&toks, i - 1, "eval") || is_word(&toks, i - 1, "try")) {
                    optional_blocks.push(braces);
                }
                braces += 1;
            }
            Some(Tok::Op(op)) if op == "}" => {
                braces = braces.saturating_sub(1);
                if optional_blocks.last() == Some(&braces) {
                    optional_blocks.pop();
                }
            }
            _ => {}
        }
        let optional = eval_line.is_some() || !optional_blocks.is_empty();
        scan.at(i, optional);
    }
}

/// `package Foo::Bar` declarations: a `use base` of one of these needs no file.
fn declared_packages(toks: &[Token]) -> HashSet<String> {
    let mut packages = HashSet::new();
    for i in 0..toks.len() {
        if is_word(toks, i, "package") {
            if let Some(Tok::Word(name)) = tok_at(toks, i + 1) {
                packages.insert(name.clone());
            }
        }
    }
    packages
}

struct Scan<'a, V: ?Sized> {
    view: &'a V,
    paths: &'a Paths,
    file: &'a str,
    toks: &'a [Token],
    lines: &'a [u32],
    eval: &'a Eval<'a>,
    packages: HashSet<String>,
    /// The file uses Moose, Moo or a relative: `extends`/`with` load classes.
    moose: bool,
    depth: usize,
    /// Dirs from `use lib` / `unshift @INC` (searched before `@INC`) and `push @INC` (after).
    front: Vec<Dir>,
    back: Vec<Dir>,
    found: &'a mut Found,
}

impl<V: ImageView + ?Sized> Scan<'_, V> {
    /// Whether the word at `i` is used as a keyword here: not a method (`->use`), a hash key
    /// (`use => 1`, `{require}`) or a sub name.
    fn keyword_at(&self, i: usize) -> bool {
        if i > 0 {
            match tok_at(self.toks, i - 1) {
                Some(Tok::Op(op)) if op == "->" || op == "&" => return false,
                Some(Tok::Word(word)) if word == "sub" => return false,
                _ => {}
            }
        }
        !is_op(self.toks, i + 1, "=>") && !is_op(self.toks, i + 1, "}")
    }

    /// `use lib ...`, `unshift @INC, ...`, `push @INC, ...` anywhere in the file (they run at
    /// compile time or in BEGIN blocks before the loads they serve).
    fn collect_lib_dirs(&mut self) {
        let toks = self.toks;
        let mut front: Vec<String> = Vec::new();
        let mut back: Vec<String> = Vec::new();
        for i in 0..toks.len() {
            if is_word(toks, i, "use") && is_word(toks, i + 1, "lib") && self.keyword_at(i) {
                let (values, _) = self.eval.list(toks, i + 2, 0);
                // `use lib` unshifts: the last one ends up first.
                for value in values.into_iter().flatten().rev() {
                    front.insert(0, value);
                }
            } else if (is_word(toks, i, "unshift") || is_word(toks, i, "push"))
                && self.keyword_at(i)
            {
                let mut j = i + 1;
                if is_op(toks, j, "(") {
                    j += 1;
                }
                if !matches!(tok_at(toks, j), Some(Tok::Var(name)) if name == "@INC")
                    || !is_op(toks, j + 1, ",")
                {
                    continue;
                }
                let (values, _) = self.eval.list(toks, j + 2, 0);
                let values = values.into_iter().flatten();
                if is_word(toks, i, "push") {
                    back.extend(values);
                } else {
                    let mut values: Vec<String> = values.collect();
                    values.append(&mut front);
                    front = values;
                }
            }
        }
        let mut seen = HashSet::new();
        for value in front {
            for path in with_arch_dirs(self.view, &absolute(&value, self.eval.workdir)) {
                push_dir(self.view, &mut self.front, &mut seen, path);
            }
        }
        for value in back {
            let path = absolute(&value, self.eval.workdir);
            push_dir(self.view, &mut self.back, &mut seen, path);
        }
    }

    fn search_dirs(&self) -> impl Iterator<Item = &Dir> {
        self.front
            .iter()
            .chain(self.paths.inc.iter())
            .chain(self.back.iter())
    }

    fn at(&mut self, i: usize, optional: bool) {
        let Some(Tok::Word(word)) = tok_at(self.toks, i) else {
            return;
        };
        if !self.keyword_at(i) {
            return;
        }
        let line = self.lines[i];
        match word.as_str() {
            "use" | "no" => self.use_statement(i, line, optional),
            "require" => self.require(i, line, optional),
            "do" => match tok_at(self.toks, i + 1) {
                Some(Tok::Str(Quote::Words, _)) => {}
                Some(Tok::Str(..)) => {
                    let (value, _) = self.eval.concat(self.toks, i + 1, 0);
                    match value {
                        Some(path) => self.file_load("do", &path, line, optional),
                        None => self.non_literal("do", line),
                    }
                }
                Some(Tok::Var(name)) if name.starts_with('$') => self.non_literal("do", line),
                _ => {}
            },
            "eval" => self.eval_string(i, line),
            "extends" | "with" if self.moose => {
                let (values, _) = self.eval.list(self.toks, i + 1, 0);
                for name in values.into_iter().flatten() {
                    if is_module_name(&name) {
                        self.module(&name, &format!("{word} '{name}'"), line, true);
                    }
                }
            }
            "require_module"
            | "use_module"
            | "load_class"
            | "try_load_class"
            | "load_optional_class" => {
                let maybe = optional || word.starts_with("try") || word.contains("optional");
                if let (Some(Some(name)), _) = self.first_argument(i + 1) {
                    if is_module_name(&name) {
                        self.module(&name, &format!("{word}('{name}')"), line, maybe);
                    }
                }
            }
            _ => {}
        }
    }

    /// The first argument of a call, parenthesised or not.
    fn first_argument(&self, i: usize) -> (Option<Option<String>>, usize) {
        let (values, next) = self.eval.call_args(self.toks, i, 0);
        (values.into_iter().next(), next)
    }

    fn non_literal(&mut self, what: &str, line: u32) {
        self.found
            .unresolved(line, format!("{what} with a non-literal argument"));
    }

    fn use_statement(&mut self, i: usize, line: u32, optional: bool) {
        let toks = self.toks;
        let keyword = if is_word(toks, i, "use") { "use" } else { "no" };
        let Some(Tok::Word(module)) = tok_at(toks, i + 1) else {
            // `use 5.010;`, `use v5.36;`: a version check, nothing loaded.
            return;
        };
        if !is_module_name(module) {
            return;
        }
        self.module(module, &format!("{keyword} {module}"), line, optional);
        if keyword == "no" {
            return;
        }
        let args_at = i + 2;
        if module == "if" {
            // `use if COND, MODULE => ARGS`: the module is loaded only when COND holds.
            let mut j = args_at;
            while j < toks.len()
                && !is_op(toks, j, ";")
                && !is_op(toks, j, ",")
                && !is_op(toks, j, "=>")
            {
                j += 1;
            }
            let name = match tok_at(toks, j + 1) {
                Some(Tok::Word(name)) => Some(name.clone()),
                Some(Tok::Str(Quote::Single | Quote::Double, name)) => Some(name.clone()),
                _ => None,
            };
            if let Some(name) = name.filter(|name| is_module_name(name)) {
                self.module(&name, &format!("use if ..., {name}"), line, true);
            }
            return;
        }
        if PARENT_MODULES.contains(&module.as_str()) {
            let (values, _) = self.eval.list(toks, args_at, 0);
            let norequire =
                (args_at..toks.len().min(args_at + 4)).any(|j| is_word(toks, j, "norequire"));
            if norequire {
                return;
            }
            let names: Vec<String> = match module.as_str() {
                // `use aliased 'Long::Name' => 'Short'` loads only the first.
                "aliased" => values.into_iter().take(1).flatten().collect(),
                _ => values.into_iter().flatten().collect(),
            };
            for name in names {
                if !is_module_name(&name) || self.packages.contains(&name) {
                    continue;
                }
                self.module(&name, &format!("use {module} '{name}'"), line, optional);
            }
        }
    }

    fn require(&mut self, i: usize, line: u32, optional: bool) {
        let toks = self.toks;
        let mut j = i + 1;
        let paren = is_op(toks, j, "(");
        if paren {
            j += 1;
        }
        match tok_at(toks, j) {
            // `require 5.006;`, `require v5.10`.
            Some(Tok::Num) => {}
            Some(Tok::Word(name)) if is_module_name(name) && !is_op(toks, j + 1, "(") => {
                if name == "__PACKAGE__" {
                    return;
                }
                self.module(name, &format!("require {name}"), line, optional);
            }
            Some(Tok::Str(Quote::Single | Quote::Double, _)) | Some(Tok::Var(_)) => {
                let (value, next) = self.eval.concat(toks, j, 0);
                let ends = matches!(
                    tok_at(toks, next),
                    None | Some(Tok::Op(_)) | Some(Tok::Word(_))
                ) && !is_op(toks, next, "->");
                match value.filter(|_| ends) {
                    Some(path) => self.file_load("require", &path, line, optional),
                    None => self.non_literal("require", line),
                }
            }
            // A bare `require;` requires `$_`.
            Some(Tok::Op(op)) if op == ";" => self.non_literal("require", line),
            _ => {}
        }
    }

    /// `eval "use Foo; 1"`: the string is code run at that point, its loads optional.
    fn eval_string(&mut self, i: usize, line: u32) {
        if self.depth >= MAX_NESTING {
            return;
        }
        let mut j = i + 1;
        if is_op(self.toks, j, "(") {
            j += 1;
        }
        let Some(Tok::Str(quote, text)) = tok_at(self.toks, j) else {
            return;
        };
        if *quote == Quote::Words {
            return;
        }
        // A double-quoted eval string is code after escape processing; what still
        // interpolates makes the code dynamic, which the inner scan reports.
        let code = match quote {
            Quote::Double => unescape_double(text),
            _ => text.clone(),
        };
        scan_text(
            self.view,
            self.paths,
            self.file,
            &code,
            Some(line),
            self.depth + 1,
            self.found,
        );
    }

    /// `Foo::Bar` → `Foo/Bar.pm` in `@INC`, with its `auto/Foo/Bar/` files (XS `.so`, `.bs`,
    /// AutoLoader `.al`).
    fn module(&mut self, name: &str, why: &str, line: u32, optional: bool) {
        if BUILTIN_PACKAGES.contains(&name) {
            return;
        }
        let relative = format!("{}.pm", name.replace("::", "/"));
        let Some(path) = self.locate(&relative) else {
            if !optional {
                self.found
                    .unresolved(line, format!("{why}: {relative} not found in @INC"));
            }
            return;
        };
        self.found.keep(path, why.to_string());
        let auto = format!("auto/{}", name.replace("::", "/"));
        let hit = self.search_dirs().find_map(|dir| {
            let real = real_dir(self.view, &join(&dir.real, &auto))?;
            Some((join(&dir.path, &auto), real))
        });
        if let Some((shown, real)) = hit {
            let files: Vec<String> = self
                .view
                .children(&real)
                .iter()
                .filter(|entry| !matches!(entry.kind, EntryKind::Dir))
                .take(AUTO_MAX_FILES)
                .filter_map(|entry| entry.path.rsplit('/').next())
                .map(|file| join(&shown, file))
                .collect();
            for file in files {
                self.found.keep(file, format!("{why} (auto/)"));
            }
        }
    }

    /// `require "x.pl"` / `do "x.pl"`: a path as given when absolute or `./`-relative, else
    /// searched in `@INC`.
    fn file_load(&mut self, what: &str, path: &str, line: u32, optional: bool) {
        let why = format!("{what} \"{path}\"");
        let located = if path.starts_with('/') {
            let path = normalize_lexically(path);
            is_file(self.view, &path).then_some(path)
        } else if path.starts_with("./") || path.starts_with("../") {
            let path = absolute(path, self.eval.workdir);
            is_file(self.view, &path).then_some(path)
        } else {
            self.locate(path)
        };
        match located {
            Some(found) => self.found.keep(found, why),
            None if optional => {}
            None => self
                .found
                .unresolved(line, format!("{why}: not found in @INC")),
        }
    }

    fn locate(&self, relative: &str) -> Option<String> {
        self.search_dirs()
            .find(|dir| is_file(self.view, &join(&dir.real, relative)))
            .map(|dir| join(&dir.path, relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    const STRICT: &str = "/usr/lib/x86_64-linux-gnu/perl-base/strict.pm";
    const WARNINGS: &str = "/usr/lib/x86_64-linux-gnu/perl-base/warnings.pm";
    const TEMP: &str = "/usr/share/perl/5.36/File/Temp.pm";
    const POSIX: &str = "/usr/lib/x86_64-linux-gnu/perl/5.36/POSIX.pm";

    /// Debian bookworm's perl 5.36 layout (`5.36` symlinks to `5.36.0`).
    fn debian_perl() -> FakeImage {
        let mut image = FakeImage::new();
        let base = "/usr/lib/x86_64-linux-gnu/perl-base";
        for module in [
            "strict", "warnings", "lib", "parent", "base", "constant", "if",
        ] {
            image.file(&format!("{base}/{module}.pm"), b"1;\n");
        }
        image.file("/usr/share/perl/5.36.0/File/Temp.pm", b"1;\n");
        image.symlink("/usr/share/perl/5.36", "5.36.0");
        let arch = "/usr/lib/x86_64-linux-gnu/perl/5.36.0";
        image.file(&format!("{arch}/POSIX.pm"), b"1;\n");
        image.file(&format!("{arch}/auto/POSIX/POSIX.so"), b"\x7fELF");
        image.file(&format!("{arch}/auto/POSIX/Sub/Deeper.so"), b"\x7fELF");
        image.symlink("/usr/lib/x86_64-linux-gnu/perl/5.36", "5.36.0");
        image.dir("/usr/share/perl5");
        image.dir("/etc/perl");
        image
    }

    fn scan(image: &FakeImage, file: &str, source: &str) -> Found {
        let paths = Paths::discover(image, &[], "/app");
        dependencies(image, &paths, file, source)
    }

    fn kept(found: &Found) -> Vec<&str> {
        let mut paths: Vec<&str> = found.paths.iter().map(|d| d.path.as_str()).collect();
        paths.sort();
        paths
    }

    #[test]
    fn inc_is_debians_spelled_as_perl_has_it() {
        let image = debian_perl();
        let paths = Paths::discover(&image, &["PERL5LIB=/opt/lib:local".to_string()], "/app");
        let dirs: Vec<&str> = paths.inc.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            dirs,
            [
                "/etc/perl",
                "/usr/share/perl5",
                "/usr/lib/x86_64-linux-gnu/perl-base",
                "/usr/lib/x86_64-linux-gnu/perl/5.36",
                "/usr/share/perl/5.36",
            ]
        );
        let mut image = image;
        image.dir("/opt/lib/x86_64-linux-gnu-thread-multi");
        let paths = Paths::discover(&image, &["PERL5LIB=/opt/lib".to_string()], "/app");
        let dirs: Vec<&str> = paths.inc.iter().take(2).map(|d| d.path.as_str()).collect();
        assert_eq!(dirs, ["/opt/lib/x86_64-linux-gnu-thread-multi", "/opt/lib"]);
    }

    #[test]
    fn use_and_require_resolve_modules_and_pragmas() {
        let image = debian_perl();
        let source =
            "use strict;\nuse warnings;\nuse 5.010;\nuse v5.36;\nuse File::Temp qw(tempfile);\n\
                      require POSIX;\nno warnings 'once';\n";
        let found = scan(&image, "/app/x.pl", source);
        assert_eq!(
            kept(&found),
            [
                STRICT,
                WARNINGS,
                "/usr/lib/x86_64-linux-gnu/perl/5.36/POSIX.pm",
                "/usr/lib/x86_64-linux-gnu/perl/5.36/auto/POSIX/POSIX.so",
                TEMP,
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn xs_auto_so_is_kept_next_to_the_module() {
        let image = debian_perl();
        let found = scan(&image, "/app/x.pl", "use POSIX ();\n");
        assert_eq!(
            kept(&found),
            [
                POSIX,
                "/usr/lib/x86_64-linux-gnu/perl/5.36/auto/POSIX/POSIX.so"
            ]
        );
        assert_eq!(found.paths[1].why, "use POSIX (auto/)");
    }

    #[test]
    fn use_in_pod_heredoc_comments_and_strings_does_not_count() {
        let image = debian_perl();
        let source = r#"# use Missing::One;
my $s = "use Missing::Two;";
my $t = 'require Missing::Three';
my @w = qw(use Missing::Four);
my $q = q{ use Missing::Five; { nested } };
my $h = <<"EOT";
use Missing::Six;
EOT
my $i = <<~'EOT';
    require Missing::Seven;
    EOT
$x =~ s{use}{require Missing::Eight}g;
$y =~ tr/a-z/A-Z/;
my %h = (q => 1, s => 2, y => 3);
print $h{s}, -s $file, "\n";

=head1 NAME

use Missing::Nine;

=cut

use strict;
__END__
use Missing::Ten;
"#;
        let found = scan(&image, "/app/x.pl", source);
        assert_eq!(kept(&found), [STRICT]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn use_base_and_parent_load_the_named_classes() {
        let mut image = debian_perl();
        image.file("/app/lib/My/Base.pm", b"1;\n");
        image.file("/app/lib/My/Role.pm", b"1;\n");
        let source = "use lib 'lib';\nuse parent 'My::Base';\nuse base qw(My::Role Local::Pkg);\n\
                      use parent -norequire, 'Not::There';\npackage Local::Pkg;\n";
        let found = scan(&image, "/app/bin/x.pl", source);
        assert_eq!(
            kept(&found),
            [
                "/app/lib/My/Base.pm",
                "/app/lib/My/Role.pm",
                "/usr/lib/x86_64-linux-gnu/perl-base/base.pm",
                "/usr/lib/x86_64-linux-gnu/perl-base/lib.pm",
                "/usr/lib/x86_64-linux-gnu/perl-base/parent.pm",
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn use_lib_with_findbin_is_relative_to_the_script() {
        let mut image = debian_perl();
        image.file("/srv/tool/lib/Tool/Util.pm", b"1;\n");
        image.file("/srv/tool/lib2/Other.pm", b"1;\n");
        let source = "use FindBin qw($Bin);\nuse lib \"$FindBin::Bin/lib\";\n\
                      use lib File::Spec->catdir(dirname(__FILE__), 'lib2');\n\
                      use Tool::Util;\nuse Other;\n";
        let found = scan(&image, "/srv/tool/run.pl", source);
        let kept = kept(&found);
        assert!(kept.contains(&"/srv/tool/lib/Tool/Util.pm"), "{kept:?}");
        assert!(kept.contains(&"/srv/tool/lib2/Other.pm"), "{kept:?}");
        // FindBin.pm itself is not in this image: reported.
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert!(found.unresolved[0].message.contains("FindBin.pm"));
    }

    #[test]
    fn loads_inside_eval_are_optional() {
        let image = debian_perl();
        let source = "my $xs = eval { require JSON::XS; 1 };\n\
                      eval \"use Cpanel::JSON::XS; 1\" or warn;\n\
                      eval q{ require File::Temp };\n\
                      require Missing::Module;\n\
                      eval \"require \\\"File/Temp.pm\\\"\";\n";
        let found = scan(&image, "/app/x.pl", source);
        assert_eq!(kept(&found), [TEMP]);
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 4);
        assert!(found.unresolved[0].message.contains("Missing/Module.pm"));
    }

    #[test]
    fn non_literal_require_is_unresolved_with_its_line() {
        let image = debian_perl();
        let source =
            "use strict;\n\nrequire $class;\nrequire \"$dir/x.pl\";\nmy $f = $obj->require;\n";
        let found = scan(&image, "/app/x.pl", source);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [3, 4]);
        assert!(found.unresolved[0].message.contains("non-literal"));
    }

    #[test]
    fn require_and_do_of_a_file_search_inc() {
        let mut image = debian_perl();
        image.file("/usr/share/perl5/config.pl", b"1;\n");
        image.file("/app/local.pl", b"1;\n");
        let source = "require 'config.pl';\ndo './local.pl';\nrequire \"File/Temp.pm\";\n";
        let found = scan(&image, "/app/x.pl", source);
        assert_eq!(
            kept(&found),
            ["/app/local.pl", TEMP, "/usr/share/perl5/config.pl"]
        );
    }

    #[test]
    fn regex_division_and_special_variables_do_not_derail_the_tokenizer() {
        let image = debian_perl();
        let source = "my @p = split /'/, $line;\nmy $r = $a / 2; my $q = $b / 3;\n\
                      my $n = $#list; local $\" = ',';\nmy $pm = $'; sub proto($$;$) { }\n\
                      my $m = time / 60; my $k = $h{x} / 2;\n\
                      ( my $name = $0 ) =~ s,^.*[/\\\\],,s;\n\
                      print STDERR 'x' if $x =~ m#use Foo#;\nuse strict;\n";
        let found = scan(&image, "/app/x.pl", source);
        assert_eq!(kept(&found), [STRICT]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn moose_extends_and_use_if_load_classes() {
        let mut image = debian_perl();
        image.file("/usr/share/perl5/Moose.pm", b"1;\n");
        image.file("/usr/share/perl5/My/App.pm", b"1;\n");
        let source = "use Moose;\nextends 'My::App';\nwith 'Role::Missing';\n\
                      use if $] < 5.010, 'constant';\n";
        let found = scan(&image, "/app/x.pm", source);
        assert_eq!(
            kept(&found),
            [
                "/usr/lib/x86_64-linux-gnu/perl-base/constant.pm",
                "/usr/lib/x86_64-linux-gnu/perl-base/if.pm",
                "/usr/share/perl5/Moose.pm",
                "/usr/share/perl5/My/App.pm",
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn source_built_perl_and_symlinked_module_dirs_resolve() {
        let mut image = FakeImage::new();
        image.file("/usr/local/lib/perl5/5.38.0/strict.pm", b"1;\n");
        image.file(
            "/usr/local/lib/perl5/5.38.0/x86_64-linux-gnu/Fcntl.pm",
            b"1;\n",
        );
        image.file(
            "/usr/local/lib/perl5/5.38.0/x86_64-linux-gnu/auto/Fcntl/Fcntl.so",
            b"\x7fELF",
        );
        image.file("/opt/mods/Util.pm", b"1;\n");
        image.symlink("/usr/local/lib/perl5/site_perl/5.38.0/My", "/opt/mods");
        let found = scan(
            &image,
            "/app/x.pl",
            "use strict;\nuse Fcntl;\nuse My::Util;\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/local/lib/perl5/5.38.0/strict.pm",
                "/usr/local/lib/perl5/5.38.0/x86_64-linux-gnu/Fcntl.pm",
                "/usr/local/lib/perl5/5.38.0/x86_64-linux-gnu/auto/Fcntl/Fcntl.so",
                "/usr/local/lib/perl5/site_perl/5.38.0/My/Util.pm",
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let image = debian_perl();
        for source in [
            "q(".repeat(300),
            "s{".to_string(),
            "<<\"".to_string(),
            "<<EOF".to_string(),
            "=head1\n".to_string(),
            "eval \"eval \\\"use strict\\\"\"".to_string(),
            "$".to_string(),
            "require".to_string(),
            "use".to_string(),
            "é use strict; $é".to_string(),
            "sub x(".to_string(),
        ] {
            let _ = scan(&image, "/app/x.pl", &source);
        }
        let found = scan(&image, "/app/x.pl", "my $é = 1;\nuse strict;\n");
        assert_eq!(kept(&found), [STRICT]);
    }
}
