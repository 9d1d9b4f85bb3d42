//! A Dockerfile parser that keeps every byte's source position, so that findings can name a line
//! and column and fixes can edit the original text in place.
//!
//! It follows BuildKit's grammar: parser directives (`# syntax=`, `# escape=`, `# check=`) at the
//! top, line continuations with the escape character (comment and blank lines inside a
//! continuation are dropped), heredocs (`RUN <<EOF`, `<<-EOF`, quoted delimiters), flags
//! (`--mount`, `--from`, `--chown`, `--platform`…), JSON (exec) and shell forms, and
//! `ARG`/`ENV` substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`…) for the
//! instructions whose arguments the builder expands. It never fails: what it cannot make sense of
//! becomes a [`ParseIssue`] that the rules report, and no input makes it panic.

use std::collections::BTreeMap;
use std::ops::Range;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Text assembled from pieces of the source, with the source byte offset of every byte, so
/// positions inside a joined continuation line still point at the right physical line.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub text: String,
    offsets: Vec<usize>,
}

impl Mapped {
    fn push(&mut self, piece: &str, source_offset: usize) {
        self.text.push_str(piece);
        self.offsets
            .extend((0..piece.len()).map(|i| source_offset + i));
    }

    /// The source offset of byte `i` of the text; `i == len` maps just past the last byte.
    pub fn source_offset(&self, i: usize) -> usize {
        match self.offsets.get(i) {
            Some(&o) => o,
            None => self.offsets.last().map_or(0, |&o| o + 1),
        }
    }

    /// The source offset just past byte `end - 1` of the text (for an exclusive range end).
    pub fn source_end(&self, end: usize) -> usize {
        if end == 0 {
            return self.source_offset(0);
        }
        self.source_offset(end - 1) + 1
    }

    fn slice(&self, range: Range<usize>) -> Mapped {
        let range = range.start.min(self.text.len())..range.end.min(self.text.len());
        Mapped {
            text: self.text.get(range.clone()).unwrap_or_default().to_string(),
            offsets: self.offsets[range].to_vec(),
        }
    }

    fn trim(&self) -> Mapped {
        let start = self.text.len() - self.text.trim_start().len();
        let end = self.text.trim_end().len().max(start);
        self.slice(start..end)
    }
}

/// A `--name=value` flag of an instruction.
#[derive(Debug, Clone)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// The arguments of RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD, VOLUME: a JSON array or a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    Exec(Vec<String>),
    Shell,
}

/// A heredoc attached to an instruction (`RUN <<EOF … EOF`).
#[derive(Debug, Clone)]
pub struct Heredoc {
    pub delimiter: String,
    pub body: Mapped,
    /// `<<-`: leading tabs are stripped from the body lines.
    pub strip_tabs: bool,
}

/// One instruction with its source extent.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// Upper-cased (`RUN`).
    pub keyword: String,
    /// Source offsets of the keyword's first byte and just past the instruction's last byte
    /// (the end of its last continuation line, or of its last heredoc delimiter).
    pub start: usize,
    pub end: usize,
    pub flags: Vec<Flag>,
    /// The arguments after the keyword and the flags, continuations joined.
    pub rest: Mapped,
    pub form: Form,
    pub heredocs: Vec<Heredoc>,
    /// Stage index, `None` before the first FROM.
    pub stage: Option<usize>,
    /// For instructions the builder expands (FROM, COPY, ADD, WORKDIR, USER, ENV, ARG, EXPOSE,
    /// LABEL…): `rest` with ARG/ENV values substituted.
    pub expanded: String,
    /// Rule ids or names from `# minify-ignore:` comments right above it.
    pub ignore: Vec<String>,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn flag_value(&self, name: &str) -> Option<&str> {
        self.flag(name).and_then(|f| f.value.as_deref())
    }
}

/// One build stage (`FROM … [AS name]`).
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    /// The base as written (`node:${NODE_VERSION}`) and expanded (`node:18`).
    pub base_raw: String,
    pub base: String,
    /// Whether every variable in the base resolved to a value.
    pub base_resolved: bool,
    /// The earlier stage this one builds on (`FROM builder`).
    pub parent: Option<usize>,
    pub platform: Option<String>,
    /// Index of the FROM instruction and the range of the stage's instructions (FROM included).
    pub from: usize,
    pub instructions: Range<usize>,
    /// ARG and ENV values in effect at the end of the stage.
    pub vars: BTreeMap<String, String>,
}

/// Something the parser could not make sense of; reported as rule ML000.
#[derive(Debug, Clone)]
pub struct ParseIssue {
    pub offset: usize,
    pub message: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub source: String,
    line_starts: Vec<usize>,
    pub escape: char,
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
    pub stages: Vec<Stage>,
    pub issues: Vec<ParseIssue>,
    /// Rules ignored for the whole file (`# minify-ignore-file: RULE`).
    pub file_ignore: Vec<String>,
}

/// Instructions whose flags the builder knows (we read flags only where they can appear).
const FLAGGED: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];
/// Instructions whose arguments the builder expands with ARG/ENV values.
const EXPANDED: &[&str] = &[
    "FROM",
    "COPY",
    "ADD",
    "WORKDIR",
    "USER",
    "ENV",
    "ARG",
    "EXPOSE",
    "LABEL",
    "VOLUME",
    "STOPSIGNAL",
    "ONBUILD",
];
pub const KNOWN: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

impl Dockerfile {
    /// The 1-based line and column of a source byte offset.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.source.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Pos {
            line: line + 1,
            column,
        }
    }

    /// Number of lines in the source.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The final stage (the image that ships), if any.
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// The stage and its in-file ancestors (`FROM builder`), nearest first.
    pub fn lineage(&self, stage: usize) -> Vec<&Stage> {
        let mut out = Vec::new();
        let mut next = self.stages.get(stage);
        while let Some(s) = next {
            // Parents always come earlier, so this terminates; the guard is for safety.
            if out.len() > self.stages.len() {
                break;
            }
            out.push(s);
            next = s.parent.and_then(|p| self.stages.get(p));
        }
        out
    }

    /// The instructions of a stage (FROM included).
    pub fn stage_instructions(&self, stage: &Stage) -> &[Instruction] {
        self.instructions
            .get(stage.instructions.clone())
            .unwrap_or_default()
    }

    /// The stage named or numbered `reference` (as in `COPY --from=` or `FROM`), if defined.
    pub fn stage_by_ref(&self, reference: &str, before: usize) -> Option<usize> {
        let reference = reference.trim();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .find(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(reference))
            })
            .map(|s| s.index)
            .or_else(|| reference.parse::<usize>().ok().filter(|&i| i < before))
    }
}

/// Parses a Dockerfile. Never fails and never panics; problems become [`ParseIssue`]s.
pub fn parse(source: &str) -> Dockerfile {
    let mut line_starts = vec![0];
    line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
    if line_starts.len() > 1 && line_starts.last() == Some(&source.len()) {
        line_starts.pop();
    }
    let lines: Vec<(usize, &str)> = line_starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = line_starts
                .get(i + 1)
                .map_or(source.len(), |&next| next - 1);
            let line = &source[start..end];
            (start, line.strip_suffix('\r').unwrap_or(line))
        })
        .collect();

    let mut df = Dockerfile {
        source: source.to_string(),
        line_starts: line_starts.clone(),
        escape: '\\',
        syntax: None,
        instructions: Vec::new(),
        stages: Vec::new(),
        issues: Vec::new(),
        file_ignore: Vec::new(),
    };

    let mut i = 0;
    // Directives: only at the very top, before any blank line, comment or instruction.
    while let Some(&(_, line)) = lines.get(i) {
        match directive(line) {
            Some((key, value)) if key == "escape" => {
                match value.as_str() {
                    "\\" => df.escape = '\\',
                    "`" => df.escape = '`',
                    other => df.issues.push(ParseIssue {
                        offset: lines[i].0,
                        message: format!("invalid escape directive {other:?} (only \\ or `)"),
                    }),
                }
                i += 1;
            }
            Some((key, value)) if key == "syntax" => {
                df.syntax = Some(value);
                i += 1;
            }
            Some((key, _)) if key == "check" => i += 1,
            _ => break,
        }
    }

    let mut pending_ignore: Vec<String> = Vec::new();
    while i < lines.len() {
        let (line_start, line) = lines[i];
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            i += 1;
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if let Some(rules) = comment.strip_prefix("minify-ignore-file:") {
                df.file_ignore.extend(rule_list(rules));
            } else if let Some(rules) = comment.strip_prefix("minify-ignore:") {
                pending_ignore.extend(rule_list(rules));
            }
            i += 1;
            continue;
        }
        let start = line_start + (line.len() - trimmed.len());
        let mut logical = Mapped::default();
        let mut piece = (start, trimmed);
        loop {
            let (offset, text) = piece;
            let body = text.trim_end();
            i += 1;
            match body.strip_suffix(df.escape) {
                Some(joined) => {
                    logical.push(joined, offset);
                    // Comment and blank lines inside a continuation are dropped.
                    while lines.get(i).is_some_and(|&(_, l)| {
                        let t = l.trim_start();
                        t.is_empty() || t.starts_with('#')
                    }) {
                        i += 1;
                    }
                    match lines.get(i) {
                        Some(&next) => piece = next,
                        None => break,
                    }
                }
                None => {
                    logical.push(text, offset);
                    break;
                }
            }
        }
        let mut end = logical.source_end(logical.text.len()).max(start);
        let text = &logical.text;
        let keyword_len = text.find(|c: char| c.is_whitespace()).unwrap_or(text.len());
        let keyword = text[..keyword_len].to_ascii_uppercase();
        let args = logical.slice(keyword_len..text.len()).trim();
        let (flags, rest) = if FLAGGED.contains(&keyword.as_str()) {
            split_flags(&args)
        } else {
            (Vec::new(), args)
        };
        let form = match keyword.as_str() {
            "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "COPY" | "ADD" | "VOLUME" => {
                json_array(&rest.text).map_or(Form::Shell, Form::Exec)
            }
            _ => Form::Shell,
        };
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") && form == Form::Shell {
            for (delimiter, strip_tabs) in heredoc_markers(&rest.text) {
                let mut body = Mapped::default();
                let mut closed = false;
                while let Some(&(offset, l)) = lines.get(i) {
                    i += 1;
                    let (content, skipped) = if strip_tabs {
                        let s = l.trim_start_matches('\t');
                        (s, l.len() - s.len())
                    } else {
                        (l, 0)
                    };
                    if content == delimiter {
                        closed = true;
                        end = offset + l.len();
                        break;
                    }
                    body.push(content, offset + skipped);
                    body.push("\n", offset + l.len());
                    end = offset + l.len();
                }
                if !closed {
                    df.issues.push(ParseIssue {
                        offset: start,
                        message: format!("heredoc <<{delimiter} is never closed"),
                    });
                }
                heredocs.push(Heredoc {
                    delimiter,
                    body,
                    strip_tabs,
                });
            }
        }
        if !KNOWN.contains(&keyword.as_str()) {
            df.issues.push(ParseIssue {
                offset: start,
                message: format!("unknown instruction {keyword}"),
            });
        }
        df.instructions.push(Instruction {
            keyword,
            start,
            end,
            flags,
            rest,
            form,
            heredocs,
            stage: None,
            expanded: String::new(),
            ignore: std::mem::take(&mut pending_ignore),
        });
    }
    resolve_stages(&mut df);
    df
}

/// `# key=value` at the top of the file (keys are case-insensitive).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

fn rule_list(text: &str) -> Vec<String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

/// Leading `--flag[=value]` words; the rest starts at the first other word.
fn split_flags(args: &Mapped) -> (Vec<Flag>, Mapped) {
    let mut flags = Vec::new();
    let mut pos = 0;
    let text = &args.text;
    while text[pos..].starts_with("--") {
        let len = text[pos..]
            .find(char::is_whitespace)
            .unwrap_or(text.len() - pos);
        let word = &text[pos + 2..pos + len];
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(unquote(v))),
            None => (word, None),
        };
        flags.push(Flag {
            name: name.to_string(),
            value,
        });
        pos += len;
        pos += text[pos..].len() - text[pos..].trim_start().len();
    }
    (flags, args.slice(pos..text.len()))
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// The exec form: a JSON array of strings (anything else is shell form, as in BuildKit).
fn json_array(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) outside quotes, in order.
fn heredoc_markers(text: &str) -> Vec<(String, bool)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'<' && bytes.get(i + 1) == Some(&b'<') => {
                let mut j = i + 2;
                if bytes.get(j) == Some(&b'<') {
                    // A here-string (`<<<`), not a heredoc.
                    i = j + 1;
                    continue;
                }
                let strip_tabs = bytes.get(j) == Some(&b'-');
                if strip_tabs {
                    j += 1;
                }
                let open = bytes.get(j).copied().filter(|&c| c == b'"' || c == b'\'');
                if open.is_some() {
                    j += 1;
                }
                let word_start = j;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'.' | b'-'))
                {
                    j += 1;
                }
                if j > word_start {
                    out.push((text[word_start..j].to_string(), strip_tabs));
                    if open.is_some() && bytes.get(j).copied() == open {
                        j += 1;
                    }
                }
                i = j;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out
}

/// Assigns stages, tracks ARG/ENV values and fills `expanded`.
fn resolve_stages(df: &mut Dockerfile) {
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_from = false;
    let count = df.instructions.len();
    for idx in 0..count {
        let keyword = df.instructions[idx].keyword.clone();
        let rest = df.instructions[idx].rest.text.clone();
        if keyword == "FROM" {
            if let Some(last) = df.stages.last_mut() {
                last.instructions.end = idx;
                last.vars = std::mem::take(&mut vars);
            }
            seen_from = true;
            let (base_raw, name) = split_from(&rest);
            let (base, base_resolved) = expand(&base_raw, &global);
            let index = df.stages.len();
            let parent = df.stage_by_ref(&base, index);
            if let Some(p) = parent {
                // A stage built on an earlier one inherits its ENV.
                vars = df.stages[p].vars.clone();
            }
            let platform = df.instructions[idx]
                .flag_value("platform")
                .map(str::to_string);
            df.stages.push(Stage {
                index,
                name,
                base_raw,
                base: base.clone(),
                base_resolved,
                parent,
                platform,
                from: idx,
                instructions: idx..count,
                vars: BTreeMap::new(),
            });
            let instruction = &mut df.instructions[idx];
            instruction.stage = Some(index);
            instruction.expanded = expand(&rest, &global).0;
            continue;
        }
        let stage = df.stages.len().checked_sub(1);
        if !seen_from && keyword != "ARG" && KNOWN.contains(&keyword.as_str()) {
            df.issues.push(ParseIssue {
                offset: df.instructions[idx].start,
                message: format!("{keyword} before the first FROM (only ARG may come first)"),
            });
        }
        let expanded = if EXPANDED.contains(&keyword.as_str()) {
            expand(&rest, if seen_from { &vars } else { &global }).0
        } else {
            rest.clone()
        };
        match keyword.as_str() {
            "ARG" => {
                for word in split_words(&rest) {
                    let scope = if seen_from { &vars } else { &global };
                    let (name, default) = match word.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(expand(&unquote(v), scope).0)),
                        None => (word.clone(), None),
                    };
                    if seen_from {
                        // A stage's ARG without a value takes the global default.
                        let value = default.or_else(|| global.get(&name).cloned());
                        vars.insert(name, value.unwrap_or_default());
                    } else {
                        global.insert(name, default.unwrap_or_default());
                    }
                }
            }
            "ENV" if seen_from => {
                for (name, value) in env_pairs(&rest) {
                    let value = expand(&value, &vars).0;
                    vars.insert(name, value);
                }
            }
            _ => {}
        }
        let instruction = &mut df.instructions[idx];
        instruction.stage = stage;
        instruction.expanded = expanded;
    }
    if let Some(last) = df.stages.last_mut() {
        last.instructions.end = count;
        last.vars = vars;
    }
}

/// `image [AS name]` of a FROM line.
fn split_from(rest: &str) -> (String, Option<String>) {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let base = words.first().copied().unwrap_or_default().to_string();
    let name = match words.as_slice() {
        [_, kw, name, ..] if kw.eq_ignore_ascii_case("as") => Some(name.to_string()),
        _ => None,
    };
    (base, name)
}

/// Whitespace-separated words, keeping quoted spans together.
pub fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) if c == '\\' => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == '\\' => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// `ENV a=1 b="x y"` or the legacy `ENV a 1 2`.
pub fn env_pairs(rest: &str) -> Vec<(String, String)> {
    let words = split_words(rest);
    match words.first() {
        Some(first) if !first.contains('=') => {
            let value = rest
                .trim_start()
                .get(first.len()..)
                .unwrap_or_default()
                .trim();
            vec![(first.clone(), unquote(value))]
        }
        _ => words
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Substitutes `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
/// `${VAR+alt}` and `${VAR:?msg}` as the builder does; `\$` stays a literal `$`. Returns the
/// text and whether every variable was known.
pub fn expand(text: &str, vars: &BTreeMap<String, String>) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut resolved = true;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && text[i + 1..].starts_with('$') {
            out.push('$');
            chars.next();
            continue;
        }
        if c != '$' {
            out.push(c);
            continue;
        }
        let after = &text[i + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = matching_brace(inner) else {
                out.push_str(&text[i..]);
                resolved = false;
                break;
            };
            let body = &inner[..close];
            let consumed = 1 + close + 1;
            while chars.peek().is_some_and(|&(j, _)| j < i + 1 + consumed) {
                chars.next();
            }
            let name_len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let (name, op) = body.split_at(name_len);
            let value = vars.get(name);
            let set_nonempty = value.is_some_and(|v| !v.is_empty());
            let word = |w: &str| expand(w, vars);
            let piece = if let Some(default) = op.strip_prefix(":-") {
                if set_nonempty {
                    value.cloned().unwrap_or_default()
                } else {
                    let (w, ok) = word(default);
                    resolved &= ok;
                    w
                }
            } else if let Some(default) = op.strip_prefix('-') {
                match value {
                    Some(v) => v.clone(),
                    None => {
                        let (w, ok) = word(default);
                        resolved &= ok;
                        w
                    }
                }
            } else if let Some(alt) = op.strip_prefix(":+") {
                if set_nonempty {
                    word(alt).0
                } else {
                    String::new()
                }
            } else if let Some(alt) = op.strip_prefix('+') {
                if value.is_some() {
                    word(alt).0
                } else {
                    String::new()
                }
            } else {
                // Plain `${VAR}` or `${VAR:?msg}`.
                if value.is_none() {
                    resolved = false;
                }
                value.cloned().unwrap_or_default()
            };
            out.push_str(&piece);
        } else {
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 {
                out.push('$');
                continue;
            }
            let name = &after[..name_len];
            while chars.peek().is_some_and(|&(j, _)| j < i + 1 + name_len) {
                chars.next();
            }
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => resolved = false,
            }
        }
    }
    (out, resolved)
}

/// Index of the `}` closing a `${`, counting nested `${…}`.
fn matching_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn directives_only_at_the_top() {
        let df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\nRUN x `\n  y\n");
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].rest.text, "x   y");
        let late = parse("FROM a\n# escape=`\nRUN x `\n");
        assert_eq!(late.escape, '\\');
        assert_eq!(late.instructions[1].rest.text, "x `");
    }

    #[test]
    fn continuations_drop_comments_and_keep_positions() {
        let src =
            "FROM debian\nRUN apt-get update && \\\n# a comment\n\n    apt-get install -y curl\n";
        let df = parse(src);
        let run = &df.instructions[1];
        assert_eq!(
            run.rest.text,
            "apt-get update &&     apt-get install -y curl"
        );
        let at = run.rest.text.find("install").unwrap();
        assert_eq!(
            df.pos(run.rest.source_offset(at)),
            Pos {
                line: 5,
                column: 13
            }
        );
        assert_eq!(df.pos(run.end).line, 5);
    }

    #[test]
    fn heredocs_collect_bodies() {
        let src = "FROM a\nRUN <<EOF bash\nset -e\napt-get update\nEOF\nCOPY <<-\"X\" /a\n\thello\n\tX\nCMD [\"a\"]\n";
        let df = parse(src);
        assert_eq!(df.instructions.len(), 4);
        let run = &df.instructions[1];
        assert_eq!(run.heredocs[0].delimiter, "EOF");
        assert_eq!(run.heredocs[0].body.text, "set -e\napt-get update\n");
        let copy = &df.instructions[2];
        assert!(copy.heredocs[0].strip_tabs);
        assert_eq!(copy.heredocs[0].body.text, "hello\n");
        assert_eq!(df.instructions[3].form, Form::Exec(vec!["a".into()]));
        assert!(df.issues.is_empty(), "{:?}", df.issues);
        let open = parse("FROM a\nRUN <<EOF\necho\n");
        assert!(open.issues[0].message.contains("never closed"));
    }

    #[test]
    fn flags_forms_and_stages() {
        let src = "ARG BASE=node:18\nFROM --platform=$BUILDPLATFORM ${BASE} AS build\nRUN --mount=type=cache,target=/root/.npm npm ci\nFROM build AS test\nFROM gcr.io/distroless/nodejs18\nCOPY --from=build --chown=1000:1000 /app /app\nCMD [\"server.js\"]\nENTRYPOINT node x.js\nCMD [broken\n";
        let df = parse(src);
        assert_eq!(df.stages.len(), 3);
        assert_eq!(df.stages[0].base, "node:18");
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
        assert_eq!(df.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(df.stages[1].parent, Some(0));
        let run = &df.instructions[2];
        assert_eq!(
            run.flag_value("mount"),
            Some("type=cache,target=/root/.npm")
        );
        assert_eq!(run.rest.text, "npm ci");
        let copy = &df.instructions[5];
        assert_eq!(copy.flag_value("from"), Some("build"));
        assert_eq!(copy.flag_value("chown"), Some("1000:1000"));
        assert_eq!(df.stage_by_ref("build", 2), Some(0));
        assert_eq!(df.instructions[7].form, Form::Shell);
        assert_eq!(df.instructions[8].form, Form::Shell);
        assert_eq!(df.lineage(1).len(), 2);
    }

    #[test]
    fn substitution_follows_the_builder() {
        let v = vars(&[("A", "1"), ("E", "")]);
        assert_eq!(expand("x${A}y$A", &v), ("x1y1".into(), true));
        assert_eq!(expand("${B:-two}", &v).0, "two");
        assert_eq!(expand("${E:-d}|${E-d}", &v).0, "d|");
        assert_eq!(expand("${A:+yes}${B:+no}", &v).0, "yes");
        assert_eq!(expand("${B:-${A}}", &v).0, "1");
        assert_eq!(expand("\\$A", &v).0, "$A");
        assert!(!expand("$NOPE", &v).1);
        assert!(!expand("${unclosed", &v).1);
        let df = parse("ARG V=3.12\nFROM python:${V}-slim\nARG V\nENV HOME_DIR=/srv/$V\nWORKDIR ${HOME_DIR}/app\n");
        assert_eq!(df.stages[0].base, "python:3.12-slim");
        assert_eq!(df.instructions[4].expanded, "/srv/3.12/app");
        assert_eq!(env_pairs("A 1 2"), vec![("A".into(), "1 2".into())]);
        assert_eq!(
            env_pairs("A=1 B=\"x y\""),
            vec![("A".into(), "1".into()), ("B".into(), "x y".into())]
        );
    }

    #[test]
    fn problems_are_issues_not_panics() {
        let df = parse("RUN x\nFROBNICATE y\nFROM\n\\\n");
        let messages: Vec<_> = df.issues.iter().map(|i| i.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("before the first FROM")));
        assert!(messages.iter().any(|m| m.contains("unknown instruction")));
        for text in [
            "",
            "\n",
            "\\",
            "FROM a \\",
            "RUN <<",
            "RUN <<-'",
            "# escape=\u{e9}",
        ] {
            let df = parse(text);
            for ins in &df.instructions {
                assert!(df.pos(ins.end).line <= df.line_count() + 1);
            }
        }
    }

    #[test]
    fn ignore_comments_attach_to_the_next_instruction() {
        let df =
            parse("# minify-ignore-file: ML015\nFROM a\n# minify-ignore: ML001, ML002\nFROM b\n");
        assert_eq!(df.file_ignore, vec!["ML015"]);
        assert!(df.instructions[0].ignore.is_empty());
        assert_eq!(df.instructions[1].ignore, vec!["ML001", "ML002"]);
    }
}
