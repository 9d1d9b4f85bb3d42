//! Just enough POSIX shell to read a RUN line: splits a script into simple commands at `&&`,
//! `||`, `;`, `|`, `&`, newlines and parentheses, unquotes words, and keeps each word's byte
//! range so rules can point at (and fixes can edit) the exact word. Command substitutions and
//! nested quotes stay inside one word; nothing here executes or expands anything.

/// One word of a command, unquoted, with its byte range in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// A simple command: its words, shell keywords (`if`, `then`, `do`, `{`…) already dropped.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub words: Vec<Word>,
    /// Whether it is on the right of a `|`.
    pub piped_into: bool,
}

/// A parsed script.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    /// An unquoted `#` comment occurs (appending to the script would land in the comment).
    pub has_comment: bool,
    /// A top-level `|` occurs.
    pub has_pipe: bool,
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac", "!",
    "{", "}", "time",
];

impl Command {
    /// Words after leading `NAME=value` assignments, `sudo`/`env` wrappers and their options.
    pub fn argv(&self) -> &[Word] {
        let mut words = self.words.as_slice();
        loop {
            match words.first() {
                Some(w) if is_assignment(&w.text) => words = &words[1..],
                Some(w) if matches!(base(&w.text), "sudo" | "env" | "nice" | "nohup") => {
                    words = &words[1..];
                    while words
                        .first()
                        .is_some_and(|w| w.text.starts_with('-') || is_assignment(&w.text))
                    {
                        words = &words[1..];
                    }
                }
                _ => return words,
            }
        }
    }

    /// The program's base name (`/usr/bin/apt-get` → `apt-get`), after wrappers.
    pub fn program(&self) -> Option<&str> {
        self.argv().first().map(|w| base(&w.text))
    }

    /// The first word that is not an option, after the program (`apt-get -y install` →
    /// `install`); options in `takes_value` consume the next word.
    pub fn subcommand(&self, takes_value: &[&str]) -> Option<&Word> {
        let argv = self.argv();
        let mut i = 1;
        while let Some(w) = argv.get(i) {
            if takes_value.contains(&w.text.as_str()) {
                i += 2;
            } else if w.text.starts_with('-') {
                i += 1;
            } else {
                return Some(w);
            }
        }
        None
    }

    /// Whether any word equals one of `flags` (or starts with `flag=`).
    pub fn has_flag(&self, flags: &[&str]) -> bool {
        self.words.iter().any(|w| {
            flags.iter().any(|f| {
                w.text == *f
                    || w.text
                        .strip_prefix(f)
                        .is_some_and(|rest| rest.starts_with('='))
            })
        })
    }

    /// Words after the subcommand that are not options.
    pub fn operands<'a>(&'a self, sub: &Word) -> impl Iterator<Item = &'a Word> + 'a {
        let end = sub.end;
        self.argv()
            .iter()
            .filter(move |w| w.start > end && !w.text.starts_with('-'))
    }

    /// Whether the command is `python -m pip …`/`pip …`; returns the pip subcommand.
    pub fn pip_subcommand(&self) -> Option<&Word> {
        let argv = self.argv();
        let program = base(&argv.first()?.text);
        if program.starts_with("pip") {
            return self.subcommand(&[]);
        }
        if program.starts_with("python") {
            let m = argv.iter().position(|w| w.text == "-m")?;
            if argv.get(m + 1).is_some_and(|w| w.text.starts_with("pip")) {
                return argv[m + 2..].iter().find(|w| !w.text.starts_with('-'));
            }
        }
        None
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `/usr/bin/apt-get` → `apt-get`.
pub fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Splits a script into simple commands. Never fails: unbalanced quotes end at the end.
pub fn parse(script: &str) -> Script {
    let bytes = script.as_bytes();
    let mut out = Script::default();
    let mut current = Command::default();
    let mut word: Option<(String, usize)> = None;
    let mut i = 0;

    fn finish_word(word: &mut Option<(String, usize)>, end: usize, cmd: &mut Command) {
        if let Some((text, start)) = word.take() {
            // Keywords only count in command position.
            if cmd.words.is_empty() && KEYWORDS.contains(&text.as_str()) {
                return;
            }
            cmd.words.push(Word { text, start, end });
        }
    }
    fn finish_command(cmd: &mut Command, out: &mut Script, piped: bool) {
        let done = std::mem::take(cmd);
        if !done.words.is_empty() {
            out.commands.push(done);
        }
        cmd.piped_into = piped;
    }

    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' => {
                finish_word(&mut word, i, &mut current);
                i += 1;
            }
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => {
                // Line continuation inside a heredoc body.
                i += 2;
            }
            b'\n' | b';' | b'(' | b')' => {
                finish_word(&mut word, i, &mut current);
                finish_command(&mut current, &mut out, false);
                i += 1;
            }
            b'&' | b'|' => {
                finish_word(&mut word, i, &mut current);
                let doubled = bytes.get(i + 1) == Some(&c);
                let piped = c == b'|' && !doubled;
                out.has_pipe |= piped;
                finish_command(&mut current, &mut out, piped);
                i += if doubled { 2 } else { 1 };
            }
            b'#' if word.is_none() => {
                out.has_comment = true;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {
                let (text, _) = word.get_or_insert_with(|| (String::new(), i));
                i = read_word_piece(script, i, text);
            }
        }
    }
    finish_word(&mut word, bytes.len(), &mut current);
    finish_command(&mut current, &mut out, false);
    out
}

/// Reads one piece of a word at `i` (a quoted span, `$(…)`, an escaped char or a plain char)
/// into `text`; returns the index after it.
fn read_word_piece(script: &str, i: usize, text: &mut String) -> usize {
    let bytes = script.as_bytes();
    let rest = &script[i..];
    match bytes[i] {
        b'\'' => {
            let close = rest[1..].find('\'').map_or(rest.len(), |j| j + 1);
            text.push_str(&rest[1..close]);
            i + (close + 1).min(rest.len())
        }
        b'"' => {
            let mut j = 1;
            while j < rest.len() {
                match bytes[i + j] {
                    b'\\' if j + 1 < rest.len() => {
                        j += 1;
                        push_char(text, rest, j);
                        j += char_len(rest, j);
                    }
                    b'"' => return i + j + 1,
                    _ => {
                        push_char(text, rest, j);
                        j += char_len(rest, j);
                    }
                }
            }
            i + rest.len()
        }
        b'\\' => {
            if rest.len() > 1 {
                push_char(text, rest, 1);
                i + 1 + char_len(rest, 1)
            } else {
                i + 1
            }
        }
        b'$' if rest.starts_with("$(") || rest.starts_with("${") => {
            let (open, close) = if rest.starts_with("$(") {
                (b'(', b')')
            } else {
                (b'{', b'}')
            };
            let mut depth = 0usize;
            let mut j = 1;
            while j < rest.len() {
                let b = bytes[i + j];
                if b == open {
                    depth += 1;
                } else if b == close {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        j += 1;
                        break;
                    }
                }
                j += 1;
            }
            text.push_str(&rest[..j]);
            i + j
        }
        b'`' => {
            let close = rest[1..].find('`').map_or(rest.len(), |j| j + 2);
            text.push_str(&rest[..close]);
            i + close
        }
        _ => {
            push_char(text, rest, 0);
            i + char_len(rest, 0)
        }
    }
}

fn char_len(s: &str, at: usize) -> usize {
    s[at..].chars().next().map_or(1, char::len_utf8)
}

fn push_char(text: &mut String, s: &str, at: usize) {
    if let Some(c) = s[at..].chars().next() {
        text.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(script: &str) -> Vec<String> {
        parse(script)
            .commands
            .iter()
            .filter_map(|c| c.program().map(str::to_string))
            .collect()
    }

    #[test]
    fn splits_on_operators_and_drops_keywords() {
        assert_eq!(
            programs("apt-get update && apt-get install -y x || true; cd /a | tee f & echo"),
            ["apt-get", "apt-get", "true", "cd", "tee", "echo"]
        );
        assert_eq!(
            programs("if [ -f x ]; then sudo -E /usr/bin/pip install y; fi"),
            ["[", "pip"]
        );
        assert_eq!(programs("(cd /src && make)"), ["cd", "make"]);
    }

    #[test]
    fn words_are_unquoted_with_ranges() {
        let script = r#"FOO=1 echo "a b" 'c'd \$e $(x "y z")"#;
        let cmd = &parse(script).commands[0];
        let texts: Vec<_> = cmd.argv().iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["echo", "a b", "cd", "$e", "$(x \"y z\")"]);
        let w = &cmd.argv()[1];
        assert_eq!(&script[w.start..w.end], "\"a b\"");
    }

    #[test]
    fn subcommands_and_flags() {
        let s = parse("apt-get -o Acquire::Retries=3 -y install --no-install-recommends curl");
        let cmd = &s.commands[0];
        assert_eq!(cmd.subcommand(&["-o"]).unwrap().text, "install");
        assert!(cmd.has_flag(&["--no-install-recommends"]));
        let sub = cmd.subcommand(&["-o"]).unwrap();
        assert_eq!(
            cmd.operands(sub)
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>(),
            ["curl"]
        );
        let pip = parse("python3 -m pip install --no-cache-dir=1 -r r.txt");
        assert_eq!(pip.commands[0].pip_subcommand().unwrap().text, "install");
        assert!(pip.commands[0].has_flag(&["--no-cache-dir"]));
    }

    #[test]
    fn comments_pipes_and_garbage() {
        let s = parse("make # build it\ncurl x | sh");
        assert!(s.has_comment && s.has_pipe);
        assert!(s.commands[2].piped_into);
        assert!(!parse("echo a#b").has_comment);
        for junk in ["\"", "'", "$(", "${", "`", "\\", "é\\", "\"é\\"] {
            let s = parse(junk);
            for c in &s.commands {
                for w in &c.words {
                    assert!(w.start <= w.end && w.end <= junk.len());
                }
            }
        }
    }
}
