//! `#!` scripts: the interpreter the kernel runs them with, and for `#!/usr/bin/env NAME` the
//! program `env` will find along the image's PATH.

use crate::closure::resolve::join;
use crate::closure::{Builder, ImageView, Reason};
use crate::image::EntryKind;

/// The kernel reads this much of a file to find the `#!` line (`BINPRM_BUF_SIZE`).
pub const SHEBANG_READ_LIMIT: usize = 256;

/// PATH `env` and runc use when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A parsed `#!` line: the interpreter and the optional single argument (Linux passes the rest
/// of the line as one argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    pub interpreter: String,
    pub argument: Option<String>,
}

/// Parses the start of a file; `None` unless it begins with `#!` followed by an interpreter.
pub fn parse_shebang(head: &[u8]) -> Option<Shebang> {
    let rest = head.strip_prefix(b"#!")?;
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = String::from_utf8_lossy(&rest[..line_end]);
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    let (interpreter, argument) = match line.split_once([' ', '\t']) {
        Some((interpreter, argument)) => (interpreter, Some(argument.trim())),
        None => (line, None),
    };
    if interpreter.is_empty() {
        return None;
    }
    Some(Shebang {
        interpreter: interpreter.to_string(),
        argument: argument.filter(|a| !a.is_empty()).map(str::to_string),
    })
}

/// The program `env ARGUMENT` runs: the first word that is neither an option nor a `VAR=value`
/// assignment (`env -S 'python3 -u'` splits its argument first).
pub fn env_program(argument: &str) -> Option<&str> {
    let mut words = argument.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "-S" | "--split-string" | "-i" | "--ignore-environment" | "-" | "-0" | "--null" => {}
            "-u" | "--unset" | "-C" | "--chdir" => {
                words.next();
            }
            _ if word.starts_with("-S") => return Some(&word[2..]).filter(|w| !w.is_empty()),
            _ if word.starts_with('-') || word.contains('=') => {}
            _ => return Some(word.trim_matches(['\'', '"'])),
        }
    }
    None
}

impl<V: ImageView + ?Sized> Builder<'_, V> {
    /// Keeps the interpreter of the script at `path` whose first bytes are `head`.
    pub(super) fn link_script(&mut self, path: &str, head: &[u8]) {
        let Some(shebang) = parse_shebang(head) else {
            return;
        };
        let reason = Reason::Shebang {
            of: path.to_string(),
        };
        if !shebang.interpreter.starts_with('/') {
            self.warn(
                path,
                format!(
                    "relative #! interpreter {} not followed",
                    shebang.interpreter
                ),
            );
            return;
        }
        let Some(interpreter) = self.keep_path(&shebang.interpreter, true, reason.clone()) else {
            self.warn(
                path,
                format!("#! interpreter {} is not in the image", shebang.interpreter),
            );
            return;
        };
        let is_env = interpreter.rsplit('/').next() == Some("env")
            || shebang.interpreter.rsplit('/').next() == Some("env");
        let Some(program) = shebang
            .argument
            .as_deref()
            .filter(|_| is_env)
            .and_then(env_program)
        else {
            return;
        };
        if program.contains('/') {
            if self.keep_path(program, true, reason).is_none() {
                self.warn(
                    path,
                    format!("{program} (run through env) is not in the image"),
                );
            }
            return;
        }
        if self.keep_from_path(program, reason).is_none() {
            self.warn(
                path,
                format!("{program} (run through env) is not on the image's PATH"),
            );
        }
    }

    /// Keeps the first executable `name` along the image's PATH, as `env`/`execvp` find it.
    pub(super) fn keep_from_path(&mut self, name: &str, reason: Reason) -> Option<String> {
        let dirs = self.env_path.clone();
        for dir in dirs.iter().filter(|dir| dir.starts_with('/')) {
            let candidate = join(dir, name);
            let Ok(found) = crate::closure::resolve::resolve(self.view, &candidate, true) else {
                continue;
            };
            let is_executable_file = self.view.entry(&found.path).is_some_and(|entry| {
                matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. })
                    && entry.mode & 0o111 != 0
            });
            if is_executable_file {
                self.keep_resolution(&candidate, &found, reason);
                return Some(found.path);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        let parsed = parse_shebang(b"#!/bin/sh\necho").unwrap();
        assert_eq!(parsed.interpreter, "/bin/sh");
        assert_eq!(parsed.argument, None);
        let parsed = parse_shebang(b"#! /usr/bin/env  python3 -u\r\n").unwrap();
        assert_eq!(parsed.interpreter, "/usr/bin/env");
        assert_eq!(parsed.argument.as_deref(), Some("python3 -u"));
        assert_eq!(parse_shebang(b"#!\n"), None);
        assert_eq!(parse_shebang(b"\x7fELF"), None);
        assert_eq!(
            parse_shebang(b"#!/bin/bash").unwrap().interpreter,
            "/bin/bash"
        );
    }

    #[test]
    fn env_program_skips_options_and_assignments() {
        assert_eq!(env_program("python3"), Some("python3"));
        assert_eq!(env_program("-S python3 -u"), Some("python3"));
        assert_eq!(env_program("-Spython3"), Some("python3"));
        assert_eq!(env_program("-i LANG=C node"), Some("node"));
        assert_eq!(env_program("-u HOME bash"), Some("bash"));
        assert_eq!(env_program("-i"), None);
    }
}
