//! Shell (sh, bash, dash): the image's `PATH` ([`Paths::discover`]) and a tokenizer-based
//! scanner for the programs a script runs and the files it sources ([`dependencies`]), for
//! scripts no probe ran (a CGI script on an unlinked route).
//!
//! Runtime rules reproduced:
//! - Words are split the way the shell's lexer does: `#` starts a comment only at the start of a
//!   word; `'..'` is literal; `".."` is literal except for `$..` and backticks; `\` escapes and
//!   `\`+newline joins lines; `$(..)`, backticks and `<(..)` hold commands of their own (inside
//!   double quotes too), and so do `${..}` defaults; `$((..))`/`((..))` are arithmetic. A
//!   here-document's body (`<<EOF`, `<<-EOF`, `<<'EOF'`) is text, not commands; an unquoted
//!   one still runs its `$(..)`.
//! - The command word of a simple command is the first word after leading `NAME=value`
//!   assignments and redirections, at the start of a line, after `;` `&` `&&` `||` `|` `(` and
//!   after the reserved words that open a command list (`then`, `do`, `!`, `{`, ...). `case`
//!   patterns, `for` lists and `[[ .. ]]` are not commands. `exec`, `command`, `env`, `nice`,
//!   `nohup`, `xargs`, `sudo`, `timeout`, `stdbuf`, `setsid`, `gosu`, `tini`, `time` run the next
//!   word that is not one of their options.
//! - Builtins, and names the script defines as functions (`name() {`, `function name`), run no
//!   file. A name with a `/` is a path (relative ones against the script's directory, then the
//!   WORKDIR: the current directory is not known); any other name is the first executable
//!   `PATH` entry, as `execvp` finds it.
//! - `. file` / `source file` reads `file`: a name without `/` is searched on `PATH` (any
//!   readable file), then in the current directory (bash).
//! - `$(dirname "$0")`, `${0%/*}` and variables assigned from them stand for the script's own
//!   directory. Any other command word that is not static, and `eval`, are reported unresolved.

use super::LineIndex;
use std::collections::BTreeSet;

use crate::closure::lang::{env_value, Found};
use crate::closure::resolve::{join, normalize_lexically, parent_of, resolve};
use crate::closure::script::DEFAULT_PATH;
use crate::closure::ImageView;
use crate::image::EntryKind;

/// Nesting of `$(..)`, backticks, `${..}` and quotes followed; deeper text is skipped.
const MAX_DEPTH: usize = 48;

/// Shell builtins (bash's, which include dash's): they run no file. `.`/`source`, `eval`,
/// `exec`, `command` and `builtin` are handled before this list is consulted.
const BUILTINS: &[&str] = &[
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "caller",
    "cd",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

/// Where coreutils' `stdbuf` finds the library it preloads into the command.
const LIBSTDBUF: &str = "/usr/libexec/coreutils/libstdbuf.so";

/// The image's command search path.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// `PATH` of the image's Env (the default when unset), absolute entries only.
    pub path: Vec<String>,
    /// The image's WORKDIR: the current directory a relative path may be resolved against.
    pub workdir: String,
}

impl Paths {
    pub fn discover<V: ImageView + ?Sized>(_view: &V, env: &[String], workdir: &str) -> Self {
        Self {
            path: split_path(env_value(env, "PATH").unwrap_or(DEFAULT_PATH)),
            workdir: normalize_lexically(if workdir.starts_with('/') {
                workdir
            } else {
                "/"
            }),
        }
    }
}

fn split_path(value: &str) -> Vec<String> {
    value
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// Keeps the programs and sourced files of the shell script at `file` (its real path).
pub fn dependencies<V: ImageView + ?Sized>(
    view: &V,
    paths: &Paths,
    file: &str,
    source: &str,
) -> Found {
    let mut scanner = Scanner::new(source);
    scanner.list(Until::End);
    let mut resolver = Resolver {
        view,
        search: if paths.path.is_empty() {
            split_path(DEFAULT_PATH)
        } else {
            paths.path.clone()
        },
        dir: parent_of(file).to_string(),
        workdir: if paths.workdir.starts_with('/') {
            paths.workdir.clone()
        } else {
            "/".to_string()
        },
        lines: LineIndex::new(source),
        found: Found::default(),
        seen: BTreeSet::new(),
    };
    for found_use in &scanner.uses {
        resolver.resolve_use(found_use, &scanner.functions);
    }
    resolver.found
}

// ---------------------------------------------------------------------------------------------
// Lexer

/// A piece of a word: text known statically, or an expansion (its source text).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Dyn(String),
}

#[derive(Debug, Clone, Default)]
struct Word {
    start: usize,
    pieces: Vec<Piece>,
    /// Any quoting in it: a quoted word is never a reserved word.
    quoted: bool,
    /// `NAME=` or `NAME+=` at its start (unquoted): the variable assigned.
    assignment: Option<String>,
}

impl Word {
    fn push_lit(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.pieces.last_mut() {
            Some(Piece::Lit(last)) => last.push_str(text),
            _ => self.pieces.push(Piece::Lit(text.to_string())),
        }
    }

    fn push_dyn(&mut self, raw: &str) {
        self.pieces.push(Piece::Dyn(raw.to_string()));
    }

    /// The word's text when it has no expansion.
    fn literal(&self) -> Option<String> {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Lit(lit) => text.push_str(lit),
                Piece::Dyn(_) => return None,
            }
        }
        Some(text)
    }

    fn is_reserved(&self, word: &str) -> bool {
        !self.quoted && matches!(self.pieces.as_slice(), [Piece::Lit(text)] if text == word)
    }

    /// The source-like text of the word, for messages.
    fn shown(&self) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Lit(text) | Piece::Dyn(text) => text.as_str(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `;`
    Semi,
    /// `&`, `&&`, `||`, `|`, `|&`: a new command follows.
    Separator,
    LParen,
    RParen,
    /// `;;`, `;&`, `;;&`
    CaseEnd,
    /// `<`, `>`, `>>`, `<&`, `>&`, `<>`, `>|`, `&>`, `&>>`, `<<<`: a target word follows.
    Redirect,
    /// `<<`/`<<-` with its delimiter already read.
    Heredoc,
}

#[derive(Debug)]
enum Token {
    Word(Word),
    Op(Op),
    Newline,
    /// `((..))`: an arithmetic command.
    Arith,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    End,
    /// The `)` closing a `$(` or `<(`.
    Paren,
}

/// A program run or a file sourced, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Use {
    Command {
        name: String,
        at: usize,
    },
    Source {
        keyword: String,
        path: String,
        at: usize,
    },
    /// A path under the script's own directory (`"$(dirname "$0")/lib.sh"`).
    ScriptDir {
        shown: String,
        relative: String,
        at: usize,
        source: bool,
    },
    /// A command word or sourced path that is not static.
    Dynamic {
        shown: String,
        at: usize,
        source: bool,
    },
    Eval {
        at: usize,
    },
}

/// Where a command is in its parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a command word (assignments and redirections may come first).
    Start,
    /// Past the command word; `fresh` while it is the only word (then `(` defines a function).
    Args { fresh: bool },
    /// After a wrapper (`env`, `nohup`, ...): its options, then the command it runs.
    Wrapper(Wrap),
    /// After `.`/`source`: the file.
    Source,
    /// After `for`/`select`: the variable name (or `((`).
    ForStart,
    /// After `function`: the name.
    FuncName,
    /// After `name(`: its `)`.
    FuncParen,
    /// Inside `[[ .. ]]`.
    DoubleBracket,
    /// After `case`: the word matched.
    CaseWord,
    /// Expecting `in`.
    CaseIn,
    /// A case item's patterns, up to `)`.
    CasePattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WrapKind {
    Exec,
    Command,
    Env,
    Nice,
    Nohup,
    Xargs,
    Sudo,
    Timeout,
    Stdbuf,
    Setsid,
    /// `gosu USER cmd`, `su-exec USER cmd`.
    Gosu,
    /// `tini [opts] -- cmd`, `dumb-init [opts] cmd`.
    Tini,
    Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wrap {
    kind: WrapKind,
    /// The next word is an option's argument.
    pending_argument: bool,
    /// Positional words before the command (timeout's duration, gosu's user).
    positional: usize,
    options_done: bool,
}

impl Wrap {
    fn new(kind: WrapKind) -> Self {
        Self {
            kind,
            pending_argument: false,
            positional: match kind {
                WrapKind::Timeout | WrapKind::Gosu => 1,
                _ => 0,
            },
            options_done: false,
        }
    }

    /// Whether option `option` of this wrapper takes the next word as its argument.
    fn takes_argument(self, option: &str) -> bool {
        let short = |letters: &[u8]| {
            let bytes = option.as_bytes();
            bytes.len() == 2 && bytes[0] == b'-' && letters.contains(&bytes[1])
        };
        match self.kind {
            WrapKind::Exec => short(b"a"),
            WrapKind::Env => {
                short(b"uCS") || matches!(option, "--unset" | "--chdir" | "--split-string")
            }
            WrapKind::Nice => short(b"n") || option == "--adjustment",
            WrapKind::Xargs => {
                short(b"ILnPsdEa")
                    || matches!(
                        option,
                        "--max-args"
                            | "--max-procs"
                            | "--delimiter"
                            | "--arg-file"
                            | "--max-lines"
                            | "--max-chars"
                    )
            }
            WrapKind::Sudo => {
                short(b"ugCDhprtUT")
                    || matches!(
                        option,
                        "--user" | "--group" | "--chdir" | "--host" | "--prompt" | "--other-user"
                    )
            }
            WrapKind::Timeout => short(b"sk") || matches!(option, "--signal" | "--kill-after"),
            WrapKind::Stdbuf => short(b"ioe"),
            WrapKind::Time => short(b"fo") || matches!(option, "--format" | "--output"),
            WrapKind::Tini => short(b"epr"),
            WrapKind::Command | WrapKind::Nohup | WrapKind::Setsid | WrapKind::Gosu => false,
        }
    }
}

/// Programs that run the command given after their own options.
fn wrapper_of(name: &str) -> Option<WrapKind> {
    Some(match name.rsplit('/').next().unwrap_or(name) {
        "env" => WrapKind::Env,
        "nice" => WrapKind::Nice,
        "nohup" => WrapKind::Nohup,
        "xargs" => WrapKind::Xargs,
        "sudo" => WrapKind::Sudo,
        "timeout" => WrapKind::Timeout,
        "stdbuf" => WrapKind::Stdbuf,
        "setsid" => WrapKind::Setsid,
        "gosu" | "su-exec" => WrapKind::Gosu,
        "tini" | "dumb-init" => WrapKind::Tini,
        "time" => WrapKind::Time,
        _ => return None,
    })
}

struct PendingHeredoc {
    delimiter: String,
    strip_tabs: bool,
    quoted: bool,
}

struct Scanner<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    /// Where the text being scanned ends (a backtick's or heredoc's end inside the file).
    end: usize,
    depth: usize,
    heredocs: Vec<PendingHeredoc>,
    uses: Vec<Use>,
    functions: BTreeSet<String>,
    /// Variables assigned the script's own directory (`DIR=$(dirname "$0")`).
    script_dir_vars: BTreeSet<String>,
    /// The last command word seen, for `name()` function definitions.
    last_command: Option<String>,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            b: src.as_bytes(),
            pos: 0,
            end: src.len(),
            depth: 0,
            heredocs: Vec::new(),
            uses: Vec::new(),
            functions: BTreeSet::new(),
            script_dir_vars: BTreeSet::new(),
            last_command: None,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        if at < self.end {
            Some(self.b[at])
        } else {
            None
        }
    }

    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.src.get(from..to.min(self.end)).unwrap_or_default()
    }

    /// The character at `pos`, and its length (a replacement for a split character).
    fn char_at(&self, at: usize) -> (char, usize) {
        match self.src.get(at..).and_then(|rest| rest.chars().next()) {
            Some(c) => (c, c.len_utf8()),
            None => ('\u{fffd}', 1),
        }
    }

    // --- tokens -------------------------------------------------------------------------

    fn next_token(&mut self, allow_arith: bool) -> Token {
        loop {
            while let Some(c) = self.byte(self.pos) {
                match c {
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b'\\' if self.byte(self.pos + 1) == Some(b'\n') => self.pos += 2,
                    _ => break,
                }
            }
            let Some(c) = self.byte(self.pos) else {
                return Token::Eof;
            };
            let next = self.byte(self.pos + 1);
            let (op, width) = match c {
                b'#' => {
                    while self.byte(self.pos).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                    continue;
                }
                b'\n' => {
                    self.pos += 1;
                    self.read_heredoc_bodies();
                    return Token::Newline;
                }
                b';' => match (next, self.byte(self.pos + 2)) {
                    (Some(b';'), Some(b'&')) => (Op::CaseEnd, 3),
                    (Some(b';' | b'&'), _) => (Op::CaseEnd, 2),
                    _ => (Op::Semi, 1),
                },
                b'&' => match (next, self.byte(self.pos + 2)) {
                    (Some(b'&'), _) => (Op::Separator, 2),
                    (Some(b'>'), Some(b'>')) => (Op::Redirect, 3),
                    (Some(b'>'), _) => (Op::Redirect, 2),
                    _ => (Op::Separator, 1),
                },
                b'|' => match next {
                    Some(b'|' | b'&') => (Op::Separator, 2),
                    _ => (Op::Separator, 1),
                },
                b'(' if allow_arith && next == Some(b'(') => {
                    self.pos = self.skip_parens(self.pos);
                    return Token::Arith;
                }
                b'(' => (Op::LParen, 1),
                b')' => (Op::RParen, 1),
                b'<' | b'>' if next == Some(b'(') => {
                    // Process substitution: commands of their own.
                    let start = self.pos;
                    self.pos += 2;
                    self.substitution();
                    let mut word = Word {
                        start,
                        ..Word::default()
                    };
                    word.push_dyn(self.slice(start, self.pos));
                    return Token::Word(word);
                }
                b'<' if next == Some(b'<') => match self.byte(self.pos + 2) {
                    Some(b'<') => (Op::Redirect, 3),
                    Some(b'-') => {
                        self.pos += 3;
                        self.heredoc_delimiter(true);
                        return Token::Op(Op::Heredoc);
                    }
                    _ => {
                        self.pos += 2;
                        self.heredoc_delimiter(false);
                        return Token::Op(Op::Heredoc);
                    }
                },
                b'<' | b'>' => match next {
                    Some(b'>' | b'&' | b'|') if c == b'>' => (Op::Redirect, 2),
                    Some(b'&' | b'>') if c == b'<' => (Op::Redirect, 2),
                    _ => (Op::Redirect, 1),
                },
                _ => {
                    let start = self.pos;
                    let word = self.lex_word();
                    if self.pos == start {
                        // Nothing a word can hold: step over it rather than loop.
                        self.pos += 1;
                        continue;
                    }
                    // `2>file`: the digits are the redirected descriptor, not a word.
                    let io_number = !word.quoted
                        && word.literal().is_some_and(|text| {
                            !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
                        })
                        && matches!(self.byte(self.pos), Some(b'<' | b'>'));
                    if io_number {
                        continue;
                    }
                    return Token::Word(word);
                }
            };
            self.pos += width;
            return Token::Op(op);
        }
    }

    /// Reads the delimiter word after `<<`/`<<-` and queues the body for the next newline.
    fn heredoc_delimiter(&mut self, strip_tabs: bool) {
        while matches!(self.byte(self.pos), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        let word = self.lex_word();
        let delimiter = word.shown();
        if !delimiter.is_empty() {
            self.heredocs.push(PendingHeredoc {
                delimiter,
                strip_tabs,
                quoted: word.quoted,
            });
        }
    }

    /// Skips the bodies of the heredocs started on the line just ended; an unquoted body's
    /// `$(..)` and backticks still run.
    fn read_heredoc_bodies(&mut self) {
        for heredoc in std::mem::take(&mut self.heredocs) {
            let body_start = self.pos;
            let mut body_end = self.end;
            let mut after = self.end;
            let mut line = self.pos;
            while line < self.end {
                let line_end = self.b[line..self.end]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(self.end, |at| line + at);
                let mut content = &self.b[line..line_end];
                if heredoc.strip_tabs {
                    while let [b'\t', rest @ ..] = content {
                        content = rest;
                    }
                }
                if let [rest @ .., b'\r'] = content {
                    content = rest;
                }
                if content == heredoc.delimiter.as_bytes() {
                    body_end = line;
                    after = (line_end + 1).min(self.end);
                    break;
                }
                line = line_end + 1;
            }
            if !heredoc.quoted {
                let saved_end = self.end;
                self.end = body_end;
                self.pos = body_start;
                let mut ignored = Word::default();
                while let Some(c) = self.byte(self.pos) {
                    match c {
                        b'\\' => self.pos += 2,
                        b'$' => self.dollar(&mut ignored, true),
                        b'`' => self.backtick(&mut ignored),
                        _ => self.pos += 1,
                    }
                }
                self.end = saved_end;
            }
            self.pos = after;
        }
    }

    fn lex_word(&mut self) -> Word {
        let mut word = Word {
            start: self.pos,
            ..Word::default()
        };
        let mut lit = String::new();
        // Every character so far is an unquoted name character: `=` makes it an assignment.
        let mut name_so_far = true;
        let mut assigned_at = None;
        while let Some(c) = self.byte(self.pos) {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b')' => break,
                b'(' if assigned_at == Some(self.pos) => {
                    // `array=(a b c)`
                    let start = self.pos;
                    self.pos = self.skip_parens(self.pos);
                    word.push_lit(&std::mem::take(&mut lit));
                    word.push_dyn(self.slice(start, self.pos));
                }
                b'(' => break,
                b'\\' => {
                    name_so_far = false;
                    if self.byte(self.pos + 1) == Some(b'\n') {
                        self.pos += 2;
                    } else if self.byte(self.pos + 1).is_some() {
                        let (escaped, width) = self.char_at(self.pos + 1);
                        lit.push(escaped);
                        word.quoted = true;
                        self.pos += 1 + width;
                    } else {
                        self.pos += 1;
                    }
                }
                b'\'' => {
                    name_so_far = false;
                    word.quoted = true;
                    let close = self.b[self.pos + 1..self.end]
                        .iter()
                        .position(|&c| c == b'\'')
                        .map_or(self.end, |at| self.pos + 1 + at);
                    lit.push_str(self.slice(self.pos + 1, close));
                    self.pos = (close + 1).min(self.end);
                }
                b'"' => {
                    name_so_far = false;
                    word.quoted = true;
                    word.push_lit(&std::mem::take(&mut lit));
                    self.pos += 1;
                    self.double_quoted(&mut word);
                }
                b'`' => {
                    name_so_far = false;
                    word.push_lit(&std::mem::take(&mut lit));
                    self.backtick(&mut word);
                }
                b'$' => {
                    name_so_far = false;
                    word.push_lit(&std::mem::take(&mut lit));
                    self.dollar(&mut word, false);
                }
                b'~' if self.pos == word.start => {
                    // `~/x`, `~user/x`: the home directory, known at run time.
                    word.push_dyn("~");
                    name_so_far = false;
                    self.pos += 1;
                }
                b'=' | b'+'
                    if name_so_far
                        && !lit.is_empty()
                        && word.pieces.is_empty()
                        && (c == b'=' || self.byte(self.pos + 1) == Some(b'=')) =>
                {
                    let width = if c == b'=' { 1 } else { 2 };
                    word.assignment = Some(lit.split('[').next().unwrap_or_default().to_string());
                    lit.push_str(self.slice(self.pos, self.pos + width));
                    self.pos += width;
                    assigned_at = Some(self.pos);
                    name_so_far = false;
                }
                b'[' if name_so_far && !lit.is_empty() => {
                    // `name[index]=value`: keep the subscript as text.
                    let close = self.b[self.pos..self.end]
                        .iter()
                        .position(|&c| c == b']')
                        .map_or(self.end, |at| self.pos + at + 1);
                    lit.push_str(self.slice(self.pos, close));
                    self.pos = close;
                }
                _ => {
                    let (ch, width) = self.char_at(self.pos);
                    let name_char = ch.is_ascii_alphanumeric() || ch == '_';
                    if !name_char || (lit.is_empty() && ch.is_ascii_digit()) {
                        name_so_far = false;
                    }
                    lit.push(ch);
                    self.pos += width;
                }
            }
        }
        word.push_lit(&lit);
        word
    }

    /// The inside of `".."` from just after the opening quote, through the closing one.
    fn double_quoted(&mut self, word: &mut Word) {
        let mut lit = String::new();
        while let Some(c) = self.byte(self.pos) {
            match c {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => match self.byte(self.pos + 1) {
                    Some(b'\n') => self.pos += 2,
                    Some(escaped @ (b'$' | b'`' | b'"' | b'\\')) => {
                        lit.push(char::from(escaped));
                        self.pos += 2;
                    }
                    _ => {
                        lit.push('\\');
                        self.pos += 1;
                    }
                },
                b'$' => {
                    word.push_lit(&std::mem::take(&mut lit));
                    self.dollar(word, true);
                }
                b'`' => {
                    word.push_lit(&std::mem::take(&mut lit));
                    self.backtick(word);
                }
                _ => {
                    let (ch, width) = self.char_at(self.pos);
                    lit.push(ch);
                    self.pos += width;
                }
            }
        }
        word.push_lit(&lit);
    }

    /// A `$` at `pos`: an expansion (scanned for the commands it runs) or a literal `$`.
    fn dollar(&mut self, word: &mut Word, in_double_quotes: bool) {
        let start = self.pos;
        if self.depth >= MAX_DEPTH {
            // Too deep to follow: treat the `$` as text.
            word.push_lit("$");
            self.pos += 1;
            return;
        }
        self.depth += 1;
        match self.byte(self.pos + 1) {
            Some(b'(') if self.byte(self.pos + 2) == Some(b'(') => {
                self.pos = self.skip_parens(self.pos + 1);
                word.push_dyn(self.slice(start, self.pos));
            }
            Some(b'(') => {
                self.pos += 2;
                self.substitution();
                word.push_dyn(self.slice(start, self.pos));
            }
            Some(b'{') => {
                self.parameter();
                word.push_dyn(self.slice(start, self.pos));
            }
            Some(b'\'') if !in_double_quotes => {
                // `$'..'`: ANSI-C quoting, literal text (escapes kept as written).
                let mut i = self.pos + 2;
                while let Some(c) = self.byte(i) {
                    match c {
                        b'\\' => i += 2,
                        b'\'' => break,
                        _ => i += 1,
                    }
                }
                let close = i.min(self.end);
                word.push_lit(self.slice(self.pos + 2, close));
                word.quoted = true;
                self.pos = (close + 1).min(self.end);
            }
            Some(b'"') if !in_double_quotes => {
                word.quoted = true;
                self.pos += 2;
                self.double_quoted(word);
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                self.pos += 1;
                while self
                    .byte(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                word.push_dyn(self.slice(start, self.pos));
            }
            Some(c) if c.is_ascii_digit() || b"@*#?$!-".contains(&c) => {
                self.pos += 2;
                word.push_dyn(self.slice(start, self.pos));
            }
            _ => {
                word.push_lit("$");
                self.pos += 1;
            }
        }
        self.depth -= 1;
    }

    /// `${..}` at `pos`: through its closing `}`; quotes and substitutions inside followed.
    fn parameter(&mut self) {
        self.pos += 2;
        let mut nesting = 1usize;
        let mut ignored = Word::default();
        while let Some(c) = self.byte(self.pos) {
            match c {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    self.double_quoted(&mut ignored);
                }
                b'`' => self.backtick(&mut ignored),
                b'$' if self.byte(self.pos + 1) == Some(b'{') => {
                    nesting += 1;
                    self.pos += 2;
                }
                b'$' => self.dollar(&mut ignored, true),
                b'}' => {
                    self.pos += 1;
                    nesting -= 1;
                    if nesting == 0 {
                        break;
                    }
                }
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.end);
    }

    /// The commands of a `$(`/`<(` from just after the `(`, through its `)`.
    fn substitution(&mut self) {
        if self.depth >= MAX_DEPTH {
            self.pos = self.skip_parens(self.pos - 1);
            return;
        }
        self.depth += 1;
        self.list(Until::Paren);
        self.depth -= 1;
    }

    /// A backtick substitution at `pos`: its commands, through the closing backtick.
    fn backtick(&mut self, word: &mut Word) {
        let start = self.pos;
        let mut i = start + 1;
        while let Some(c) = self.byte(i) {
            match c {
                b'\\' => i += 2,
                b'`' => break,
                _ => i += 1,
            }
        }
        let close = i.min(self.end);
        if self.depth < MAX_DEPTH {
            let saved_end = self.end;
            self.end = close;
            self.pos = start + 1;
            self.depth += 1;
            self.list(Until::End);
            self.depth -= 1;
            self.end = saved_end;
        }
        self.pos = (close + 1).min(self.end);
        word.push_dyn(self.slice(start, self.pos));
    }

    /// From the `(` at `open`, the index after its matching `)`.
    fn skip_parens(&self, open: usize) -> usize {
        let mut nesting = 0usize;
        let mut i = open;
        while let Some(c) = self.byte(i) {
            match c {
                b'\\' => i += 1,
                b'(' => nesting += 1,
                b')' => {
                    nesting = nesting.saturating_sub(1);
                    if nesting == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.end
    }

    // --- commands -----------------------------------------------------------------------

    /// A command list up to the end of the text or, for `Until::Paren`, the unmatched `)`.
    fn list(&mut self, until: Until) {
        let mut state = State::Start;
        let mut redirect_target = false;
        let mut subshells = 0usize;
        let mut cases = 0usize;
        loop {
            let allow_arith = matches!(state, State::Start | State::ForStart);
            let token = self.next_token(allow_arith);
            if redirect_target {
                redirect_target = false;
                if matches!(token, Token::Word(_)) {
                    continue;
                }
            }
            match token {
                Token::Eof => return,
                Token::Word(word) => state = self.on_word(state, word, &mut cases),
                Token::Arith => {
                    if !matches!(state, State::DoubleBracket | State::CasePattern) {
                        state = State::Args { fresh: false };
                    }
                }
                Token::Newline => {
                    if !matches!(
                        state,
                        State::DoubleBracket
                            | State::CasePattern
                            | State::CaseIn
                            | State::FuncParen
                    ) {
                        state = State::Start;
                    }
                }
                Token::Op(op) => match (state, op) {
                    (State::DoubleBracket, _) => {}
                    (State::CasePattern, Op::RParen) => state = State::Start,
                    (State::CasePattern, _) => {}
                    (_, Op::Redirect) => redirect_target = true,
                    (_, Op::Heredoc) => {}
                    (_, Op::Semi | Op::Separator) => state = State::Start,
                    (_, Op::CaseEnd) => {
                        state = if cases > 0 {
                            State::CasePattern
                        } else {
                            State::Start
                        }
                    }
                    (State::Args { fresh: true }, Op::LParen) => {
                        // `name() { ..; }`: a function definition, not a command.
                        if let Some(name) = self.last_command.take() {
                            self.functions.insert(name);
                        }
                        state = State::FuncParen;
                    }
                    (State::FuncParen, Op::LParen) => {}
                    (_, Op::LParen) => {
                        subshells += 1;
                        state = State::Start;
                    }
                    (State::FuncParen, Op::RParen) => state = State::Start,
                    (_, Op::RParen) => {
                        if subshells > 0 {
                            subshells -= 1;
                        } else if until == Until::Paren {
                            return;
                        }
                        state = State::Args { fresh: false };
                    }
                },
            }
        }
    }

    fn on_word(&mut self, state: State, word: Word, cases: &mut usize) -> State {
        self.note_script_dir_assignment(&word);
        match state {
            State::DoubleBracket if word.is_reserved("]]") => State::Args { fresh: false },
            State::DoubleBracket => State::DoubleBracket,
            State::CasePattern if word.is_reserved("esac") => {
                *cases = cases.saturating_sub(1);
                State::Args { fresh: false }
            }
            State::CasePattern => State::CasePattern,
            State::CaseWord => State::CaseIn,
            State::CaseIn if word.is_reserved("in") => {
                *cases += 1;
                State::CasePattern
            }
            State::CaseIn => State::CaseIn,
            // After `name()` (or `function name`) comes the body, a compound command.
            State::FuncParen => self.on_word(State::Start, word, cases),
            State::ForStart | State::Args { .. } => State::Args { fresh: false },
            State::FuncName => {
                if let Some(name) = word.literal() {
                    self.functions.insert(name);
                }
                State::FuncParen
            }
            State::Source => {
                self.record_source(&word);
                State::Args { fresh: false }
            }
            State::Wrapper(wrap) => self.wrapper_word(wrap, word),
            State::Start => {
                if word.assignment.is_some() {
                    return State::Start;
                }
                for (reserved, next) in [
                    ("if", State::Start),
                    ("then", State::Start),
                    ("else", State::Start),
                    ("elif", State::Start),
                    ("do", State::Start),
                    ("while", State::Start),
                    ("until", State::Start),
                    ("!", State::Start),
                    ("{", State::Start),
                    ("coproc", State::Start),
                    ("fi", State::Args { fresh: false }),
                    ("done", State::Args { fresh: false }),
                    ("}", State::Args { fresh: false }),
                    ("]]", State::Args { fresh: false }),
                    ("in", State::Args { fresh: false }),
                    ("for", State::ForStart),
                    ("select", State::ForStart),
                    ("case", State::CaseWord),
                    ("function", State::FuncName),
                    ("[[", State::DoubleBracket),
                    ("time", State::Wrapper(Wrap::new(WrapKind::Time))),
                ] {
                    if word.is_reserved(reserved) {
                        return next;
                    }
                }
                if word.is_reserved("esac") {
                    *cases = cases.saturating_sub(1);
                    return State::Args { fresh: false };
                }
                self.command_word(&word)
            }
        }
    }

    /// The word that names the program of a simple command.
    fn command_word(&mut self, word: &Word) -> State {
        let Some(name) = word.literal() else {
            let found_use = match self.script_dir_path(word) {
                Some(relative) => Use::ScriptDir {
                    shown: word.shown(),
                    relative,
                    at: word.start,
                    source: false,
                },
                None => Use::Dynamic {
                    shown: word.shown(),
                    at: word.start,
                    source: false,
                },
            };
            self.uses.push(found_use);
            return State::Args { fresh: false };
        };
        if name.is_empty() || name.starts_with('-') {
            return State::Args { fresh: false };
        }
        self.last_command = Some(name.clone());
        match name.as_str() {
            "." | "source" => return State::Source,
            "eval" => {
                self.uses.push(Use::Eval { at: word.start });
                return State::Args { fresh: true };
            }
            "exec" => return State::Wrapper(Wrap::new(WrapKind::Exec)),
            "command" => return State::Wrapper(Wrap::new(WrapKind::Command)),
            "builtin" => return State::Args { fresh: false },
            _ if BUILTINS.contains(&name.as_str()) => return State::Args { fresh: true },
            _ => {}
        }
        self.uses.push(Use::Command {
            name: name.clone(),
            at: word.start,
        });
        match wrapper_of(&name) {
            Some(kind) => State::Wrapper(Wrap::new(kind)),
            None => State::Args { fresh: true },
        }
    }

    /// A word after a wrapper: one of its options, or the command it runs.
    fn wrapper_word(&mut self, mut wrap: Wrap, word: Word) -> State {
        if wrap.pending_argument {
            wrap.pending_argument = false;
            return State::Wrapper(wrap);
        }
        let text = word.literal();
        if let Some(option) = text
            .as_deref()
            .filter(|t| t.starts_with('-') && t.len() > 1)
        {
            if !wrap.options_done && wrap.kind != WrapKind::Gosu {
                if option == "--" {
                    wrap.options_done = true;
                } else if wrap.kind == WrapKind::Command && option.contains(['v', 'V']) {
                    // `command -v name` only looks the name up.
                    return State::Args { fresh: false };
                } else {
                    wrap.pending_argument = wrap.takes_argument(option);
                }
                return State::Wrapper(wrap);
            }
        }
        if matches!(wrap.kind, WrapKind::Env | WrapKind::Sudo) && word.assignment.is_some() {
            return State::Wrapper(wrap);
        }
        if wrap.positional > 0 {
            wrap.positional -= 1;
            return State::Wrapper(wrap);
        }
        self.command_word(&word)
    }

    fn record_source(&mut self, word: &Word) {
        let keyword = self.last_command.clone().unwrap_or_else(|| ".".to_string());
        let found_use = match (word.literal(), self.script_dir_path(word)) {
            (Some(path), _) => Use::Source {
                keyword,
                path,
                at: word.start,
            },
            (None, Some(relative)) => Use::ScriptDir {
                shown: word.shown(),
                relative,
                at: word.start,
                source: true,
            },
            (None, None) => Use::Dynamic {
                shown: word.shown(),
                at: word.start,
                source: true,
            },
        };
        self.uses.push(found_use);
    }

    /// `DIR=$(dirname "$0")` and the like: `DIR` holds the script's directory.
    fn note_script_dir_assignment(&mut self, word: &Word) {
        let Some(name) = &word.assignment else {
            return;
        };
        if let [Piece::Lit(_), Piece::Dyn(raw)] = word.pieces.as_slice() {
            if self.is_script_dir(raw) {
                self.script_dir_vars.insert(name.clone());
            }
        }
    }

    /// For a word starting with the script's directory and a static rest (`"$(dirname
    /// "$0")/lib.sh"`, `$DIR/run`), the rest relative to that directory.
    fn script_dir_path(&self, word: &Word) -> Option<String> {
        let (Piece::Dyn(raw), rest) = word.pieces.split_first()? else {
            return None;
        };
        if !self.is_script_dir(raw) {
            return None;
        }
        let mut relative = String::new();
        for piece in rest {
            match piece {
                Piece::Lit(text) => relative.push_str(text),
                Piece::Dyn(_) => return None,
            }
        }
        relative
            .strip_prefix('/')
            .filter(|relative| !relative.is_empty())
            .map(str::to_string)
    }

    /// Whether an expansion's text is the script's own directory.
    fn is_script_dir(&self, raw: &str) -> bool {
        let unquoted: String = raw.chars().filter(|c| *c != '"').collect();
        if let Some(name) = unquoted
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .or_else(|| unquoted.strip_prefix('$'))
        {
            if self.script_dir_vars.contains(name) {
                return true;
            }
        }
        let names_script = unquoted.contains("$0")
            || unquoted.contains("${0}")
            || unquoted.contains("BASH_SOURCE");
        let substitution = unquoted.starts_with("$(") || unquoted.starts_with('`');
        (substitution && unquoted.contains("dirname") && names_script)
            || unquoted == "${0%/*}"
            || (unquoted.starts_with("${BASH_SOURCE") && unquoted.ends_with("%/*}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Resolution

struct Resolver<'v, V: ?Sized> {
    view: &'v V,
    search: Vec<String>,
    dir: String,
    workdir: String,
    lines: LineIndex,
    found: Found,
    /// Command names and sourced paths already resolved (or reported), and paths kept.
    seen: BTreeSet<String>,
}

impl<V: ImageView + ?Sized> Resolver<'_, V> {
    fn resolve_use(&mut self, found_use: &Use, functions: &BTreeSet<String>) {
        match found_use {
            Use::Command { name, at } => {
                if functions.contains(name) || !self.seen.insert(format!("run {name}")) {
                    return;
                }
                let line = self.lines.line(*at);
                if name.contains('/') {
                    let hits = self.relative_candidates(name);
                    if hits.is_empty() {
                        self.found
                            .unresolved(line, format!("{name}: not in the image"));
                    }
                    for hit in hits {
                        self.keep(&hit, name);
                    }
                    return;
                }
                match self.on_path(name, true) {
                    Some(path) => {
                        self.keep(&path, name);
                        if name == "stdbuf" && is_file(self.view, LIBSTDBUF) {
                            self.keep(LIBSTDBUF, "stdbuf preloads it into the command");
                        }
                    }
                    None => self
                        .found
                        .unresolved(line, format!("{name}: command not found on PATH")),
                }
            }
            Use::Source { keyword, path, at } => {
                if !self.seen.insert(format!("source {path}")) {
                    return;
                }
                let why = format!("{keyword} {path}");
                let line = self.lines.line(*at);
                let hits = if path.contains('/') {
                    self.relative_candidates(path)
                } else {
                    // PATH first (any readable file), then the current directory (bash).
                    match self.on_path(path, false) {
                        Some(hit) => vec![hit],
                        None => self.relative_candidates(path),
                    }
                };
                if hits.is_empty() {
                    self.found
                        .unresolved(line, format!("{why}: not in the image"));
                }
                for hit in hits {
                    self.keep(&hit, &why);
                }
            }
            Use::ScriptDir {
                shown,
                relative,
                at,
                source,
            } => {
                let path = normalize_lexically(&join(&self.dir, relative));
                let why = if *source {
                    format!(". {shown}")
                } else {
                    shown.clone()
                };
                if is_file(self.view, &path) {
                    self.keep(&path, &why);
                } else {
                    let line = self.lines.line(*at);
                    self.found
                        .unresolved(line, format!("{why}: {path} is not in the image"));
                }
            }
            Use::Dynamic { shown, at, source } => {
                let what = if *source {
                    "sourced path"
                } else {
                    "command word"
                };
                let line = self.lines.line(*at);
                self.found
                    .unresolved(line, format!("{what} is not static: {shown}"));
            }
            Use::Eval { at } => {
                let line = self.lines.line(*at);
                self.found
                    .unresolved(line, "eval: the commands it runs are not followed");
            }
        }
    }

    /// Existing files a path with `/` may name: absolute as is; relative against the script's
    /// directory and the WORKDIR (either may be the current directory).
    fn relative_candidates(&self, path: &str) -> Vec<String> {
        let candidates = if path.starts_with('/') {
            vec![normalize_lexically(path)]
        } else {
            let mut candidates = vec![normalize_lexically(&join(&self.dir, path))];
            let in_workdir = normalize_lexically(&join(&self.workdir, path));
            if !candidates.contains(&in_workdir) {
                candidates.push(in_workdir);
            }
            candidates
        };
        candidates
            .into_iter()
            .filter(|candidate| is_file(self.view, candidate))
            .collect()
    }

    /// The first `PATH` entry holding `name` (an executable file when `executable`).
    fn on_path(&self, name: &str, executable: bool) -> Option<String> {
        self.search.iter().find_map(|dir| {
            let candidate = join(dir, name);
            let found = resolve(self.view, &candidate, true).ok()?;
            let entry = self.view.entry(&found.path)?;
            let usable = matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. })
                && (!executable || entry.mode & 0o111 != 0);
            usable.then_some(candidate)
        })
    }

    fn keep(&mut self, path: &str, why: &str) {
        if self.seen.insert(format!("keep {path}")) {
            self.found.keep(path, why);
        }
    }
}

fn is_file<V: ImageView + ?Sized>(view: &V, path: &str) -> bool {
    resolve(view, path, true).is_ok_and(|found| {
        view.entry(&found.path)
            .is_some_and(|entry| matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    fn bookworm() -> FakeImage {
        let mut image = FakeImage::new();
        image.symlink("/bin", "usr/bin");
        for program in [
            "bash", "dash", "cat", "grep", "sed", "tr", "cut", "ls", "date", "env", "nohup",
            "nice", "timeout", "python3", "perl", "mawk", "sleep", "xargs", "rm", "dirname",
        ] {
            image.executable(&format!("/usr/bin/{program}"), b"\x7fELF");
        }
        image.symlink("/usr/bin/sh", "dash");
        image.symlink("/etc/alternatives/awk", "/usr/bin/mawk");
        image.symlink("/usr/bin/awk", "/etc/alternatives/awk");
        image.file("/usr/bin/not-executable", b"data");
        image.file("/srv/cgi-bin/lib.sh", b"");
        image
    }

    fn scan(image: &FakeImage, source: &str) -> Found {
        let paths = Paths::discover(image, &[], "/srv");
        dependencies(image, &paths, "/srv/cgi-bin/run.sh", source)
    }

    fn kept(found: &Found) -> Vec<&str> {
        found.paths.iter().map(|d| d.path.as_str()).collect()
    }

    #[test]
    fn commands_in_pipelines_substitutions_and_lists_count() {
        let found = scan(
            &bookworm(),
            "#!/bin/bash\ncat /etc/x | grep -v y && sed s/a/b/ || ls\n\
             n=$(tr a b <in); m=`cut -c1 file`; echo \"today: $(date +%F)\"\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/bin/cat",
                "/usr/bin/grep",
                "/usr/bin/sed",
                "/usr/bin/ls",
                "/usr/bin/tr",
                "/usr/bin/cut",
                "/usr/bin/date",
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn the_cgi_fixture_keeps_awk_and_perl() {
        let found = scan(
            &bookworm(),
            "#!/bin/bash\nset -euo pipefail\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
             total=$(printf '3 4\\n5 6\\n' | awk '{ s += $1 * $2 } END { print s }')\n\
             echo \"total=$total\"\n\
             perl -e 'printf(\"perl says %s\\n\", join(\",\", map { $_ * 2 } 1..4));'\n\
             echo \"query=${QUERY_STRING:-}\"\n",
        );
        assert_eq!(kept(&found), ["/usr/bin/awk", "/usr/bin/perl"]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn quoted_text_and_comments_do_not_count() {
        let found = scan(
            &bookworm(),
            "echo \"curl is not run\" 'wget neither'; # rsync in a comment\n\
             printf '%s\\n' \"; nc -l\" # ; ssh\nls a#b\n",
        );
        assert_eq!(kept(&found), ["/usr/bin/ls"]);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn heredoc_body_is_skipped() {
        let found = scan(
            &bookworm(),
            "cat <<EOF\nfrobnicate --all\n$(date)\nEOF\ncat <<-'END' >out\n\tqux; quux\n\t$(sleep 1)\n\tEND\nls\n",
        );
        assert_eq!(
            kept(&found),
            ["/usr/bin/cat", "/usr/bin/date", "/usr/bin/ls"]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn builtins_and_functions_are_skipped() {
        let found = scan(
            &bookworm(),
            "cd /; export X=1; local y\n\
             greet() { echo hi; }\nfunction bye { :; }\nfunction later() { helper; }\n\
             helper ()\n{\n  :\n}\n\
             greet; bye && later\n[ -f x ] && test -d y || exit 1\nread -r line; shift; trap 'x' EXIT\n",
        );
        assert!(found.paths.is_empty(), "{:?}", found.paths);
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn commands_inside_function_bodies_count() {
        let found = scan(
            &bookworm(),
            "main() {\n  ls\n}\nfunction cleanup {\n  rm -f x\n}\nfunction run() ( date )\nmain \"$@\"\n",
        );
        assert_eq!(
            kept(&found),
            ["/usr/bin/ls", "/usr/bin/rm", "/usr/bin/date"]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn env_exec_nohup_prefixes_name_the_real_command() {
        let found = scan(
            &bookworm(),
            "exec env -i -u HOME FOO=1 nohup nice -n 5 timeout -s KILL 10 python3 app.py\n\
             LANG=C command -v frob >/dev/null; 2>&1 exec >log\nfind . | xargs -0 -n 1 rm -f\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/bin/env",
                "/usr/bin/nohup",
                "/usr/bin/nice",
                "/usr/bin/timeout",
                "/usr/bin/python3",
                "/usr/bin/xargs",
                "/usr/bin/rm",
            ]
        );
        // `find` is missing from this image.
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert!(found.unresolved[0].message.starts_with("find:"));
        assert_eq!(found.unresolved[0].line, 3);
    }

    #[test]
    fn dot_sourced_file_is_kept() {
        let mut image = bookworm();
        image.file("/etc/profile.d/app.sh", b"");
        let found = scan(
            &image,
            ". ./lib.sh\nsource /etc/profile.d/app.sh\n. \"$(dirname \"$0\")/lib.sh\"\n",
        );
        // The script runs dirname to find its directory.
        assert_eq!(
            kept(&found),
            [
                "/srv/cgi-bin/lib.sh",
                "/etc/profile.d/app.sh",
                "/usr/bin/dirname"
            ]
        );
        assert_eq!(found.paths[0].why, ". ./lib.sh");
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn script_directory_variable_resolves() {
        let mut image = bookworm();
        image.executable("/srv/cgi-bin/helper", b"#!/bin/sh\n");
        let found = scan(
            &image,
            "DIR=$(cd \"$(dirname \"${BASH_SOURCE[0]}\")\" && pwd)\n\"$DIR/helper\" --go\n${DIR}/missing\n",
        );
        assert_eq!(kept(&found), ["/usr/bin/dirname", "/srv/cgi-bin/helper"]);
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 3);
    }

    #[test]
    fn missing_command_is_unresolved_with_its_line() {
        let found = scan(
            &bookworm(),
            "ls\n\nif true; then\n  frobnicate --now\nfi\nfrobnicate\n",
        );
        assert_eq!(kept(&found), ["/usr/bin/ls"]);
        assert_eq!(found.unresolved.len(), 1, "{:?}", found.unresolved);
        assert_eq!(found.unresolved[0].line, 4);
        assert!(found.unresolved[0].message.contains("frobnicate"));
    }

    #[test]
    fn variable_command_and_eval_are_unresolved() {
        let found = scan(
            &bookworm(),
            "$PYTHON app.py\nexec \"$@\"\neval \"$cmd\"\nls \"$x\"\n",
        );
        assert_eq!(kept(&found), ["/usr/bin/ls"]);
        let lines: Vec<u32> = found.unresolved.iter().map(|u| u.line).collect();
        assert_eq!(lines, [1, 2, 3]);
        assert!(found.unresolved[0].message.contains("$PYTHON"));
    }

    #[test]
    fn case_patterns_are_not_commands() {
        let found = scan(
            &bookworm(),
            "case \"$1\" in\n  start|stop) ls ;;\n  (restart) date ;;\n  *) cat ;;\nesac\nx=$(case a in a) sleep 1;; esac)\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/bin/ls",
                "/usr/bin/date",
                "/usr/bin/cat",
                "/usr/bin/sleep"
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn tests_loops_and_arithmetic_are_not_commands() {
        let found = scan(
            &bookworm(),
            "[[ -f x && -d y || ( -z $z ) ]] && ls\n(( i++ ))\nfor ((i = 0; i < 3; i++)); do date; done\n\
             for f in one two; do cat \"$f\"; done\nwhile read -r l; do sleep 1; done < list\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/bin/ls",
                "/usr/bin/date",
                "/usr/bin/cat",
                "/usr/bin/sleep"
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn assignments_redirections_and_continuations_before_the_command() {
        let found = scan(
            &bookworm(),
            "A=1 B=\"x y\" >/dev/null 2>&1 <in cat\nls \\\n  -l\nC=2 \\\n  date\narr=(a b) sed\n",
        );
        assert_eq!(
            kept(&found),
            [
                "/usr/bin/cat",
                "/usr/bin/ls",
                "/usr/bin/date",
                "/usr/bin/sed"
            ]
        );
        assert!(found.unresolved.is_empty(), "{:?}", found.unresolved);
    }

    #[test]
    fn command_through_symlinks_and_paths() {
        let mut image = bookworm();
        image.executable("/srv/cgi-bin/tool", b"#!/bin/sh\n");
        let found = scan(&image, "awk 1\n/usr/bin/sh -c x\n./tool\nnot-executable\n");
        assert_eq!(
            kept(&found),
            ["/usr/bin/awk", "/usr/bin/sh", "/srv/cgi-bin/tool"]
        );
        assert_eq!(found.unresolved.len(), 1);
        assert!(found.unresolved[0].message.contains("not-executable"));
    }

    #[test]
    fn env_path_is_searched_in_order() {
        let mut image = bookworm();
        image.executable("/opt/app/bin/ls", b"\x7fELF");
        let env = ["PATH=/opt/app/bin:/usr/bin".to_string()];
        let paths = Paths::discover(&image, &env, "/");
        let found = dependencies(&image, &paths, "/srv/run.sh", "ls; cat");
        assert_eq!(kept(&found), ["/opt/app/bin/ls", "/usr/bin/cat"]);
    }

    #[test]
    fn a_large_script_scans_every_command() {
        let source = "ls -l | grep x && cat y; frob$(date)\n".repeat(50_000);
        let found = scan(&bookworm(), &source);
        assert_eq!(
            kept(&found),
            [
                "/usr/bin/ls",
                "/usr/bin/grep",
                "/usr/bin/cat",
                "/usr/bin/date"
            ]
        );
        // `frob$(date)` is not static: one report per line.
        assert_eq!(found.unresolved.len(), 50_000);
        assert_eq!(found.unresolved[49_999].line, 50_000);
    }

    #[test]
    fn broken_and_deep_input_does_not_panic() {
        let image = bookworm();
        for source in [
            "echo \"unterminated",
            "echo 'unterminated",
            "x=$(ls",
            "x=${a:-$(date",
            "cat <<EOF\nno end",
            "`ls",
            "\\",
            "$",
            "case x in",
            "[[ -f x",
            "f() {",
            ")))((( ;;; &&& |||",
            "\u{e9}t\u{e9} \u{1F600}",
        ] {
            let _ = scan(&image, source);
        }
        let deep = format!("{}ls{}", "$(".repeat(10_000), ")".repeat(10_000));
        let _ = scan(&image, &deep);
        let deep = format!("echo {}x{}", "\"${a:-".repeat(5_000), "}\"".repeat(5_000));
        let _ = scan(&image, &deep);
        let backticks = "`".repeat(10_001);
        let _ = scan(&image, &backticks);
    }
}
