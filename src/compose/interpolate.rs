//! Compose's variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}` and `$$` for a
//! literal `$`, with defaults that may themselves interpolate (`${A:-${B}}`), over a plain map
//! of variables (the `.env` file or `--compose-env-file`, overlaid by the host environment).
//! It also reads the `.env` / `env_file` format.

use std::collections::BTreeMap;

/// The variables interpolation sees.
pub type Vars = BTreeMap<String, String>;

/// Interpolates `text`. A variable that is unset and has no default becomes the empty string
/// and its name is added to `unset` (compose warns about it); `${VAR:?msg}` of an unset
/// variable is an error carrying `msg`.
pub fn interpolate(
    text: &str,
    vars: &Vars,
    unset: &mut Vec<String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = matching_brace(body).ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            out.push_str(&expand(&body[..close], vars, unset, text)?);
            rest = &body[close + 1..];
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                // A lone `$` (before a space, a digit, the end) stays as it is.
                out.push('$');
                rest = after;
            } else {
                let name = &after[..name_len];
                match vars.get(name) {
                    Some(value) => out.push_str(value),
                    None => unset.push(name.to_string()),
                }
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the variable name at the start of `text` (`[A-Za-z_][A-Za-z0-9_]*`).
fn name_length(text: &str) -> usize {
    let mut len = 0;
    for (i, c) in text.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// The index of the `}` closing a `${` whose body starts `body`, nested `${…}` skipped.
fn matching_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${…}` body: `NAME`, then nothing or an operator and its word.
fn expand(
    body: &str,
    vars: &Vars,
    unset: &mut Vec<String>,
    text: &str,
) -> std::result::Result<String, String> {
    let name_len = name_length(body);
    if name_len == 0 {
        return Err(format!("invalid interpolation ${{{body}}} in {text:?}"));
    }
    let name = &body[..name_len];
    let op = &body[name_len..];
    let value = vars.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let word = |w: &str, unset: &mut Vec<String>| interpolate(w, vars, unset);
    if op.is_empty() {
        if !set {
            unset.push(name.to_string());
        }
        return Ok(value.cloned().unwrap_or_default());
    }
    let (operator, argument) = if op.starts_with(':') && op.len() >= 2 {
        op.split_at(2)
    } else {
        op.split_at(1)
    };
    match operator {
        ":-" => Ok(if non_empty {
            value.cloned().unwrap_or_default()
        } else {
            word(argument, unset)?
        }),
        "-" => Ok(if set {
            value.cloned().unwrap_or_default()
        } else {
            word(argument, unset)?
        }),
        ":+" => Ok(if non_empty {
            word(argument, unset)?
        } else {
            String::new()
        }),
        "+" => Ok(if set {
            word(argument, unset)?
        } else {
            String::new()
        }),
        ":?" | "?" => {
            let ok = if operator == ":?" { non_empty } else { set };
            if ok {
                Ok(value.cloned().unwrap_or_default())
            } else {
                let message = word(argument, unset)?;
                Err(if message.is_empty() {
                    format!("required variable {name} is not set")
                } else {
                    format!("required variable {name} is not set: {message}")
                })
            }
        }
        _ => Err(format!("invalid interpolation ${{{body}}} in {text:?}")),
    }
}

/// Reads the `.env` / `env_file` format: `KEY=VALUE` lines, `#` comments and blank lines
/// skipped, an `export ` prefix allowed, one pair of matching quotes around the value removed
/// (escapes `\n`, `\"` and `\\` read in double quotes), `KEY` alone meaning the variable of that
/// name from `lookup` (left out when it has none).
pub fn parse_env_lines(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (line, None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(format!(
                "line {}: expected KEY=VALUE, got {line:?}",
                number + 1
            ));
        }
        let value = match value {
            None => match lookup(key) {
                Some(value) => value,
                None => continue,
            },
            Some(value) => unquote(value),
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') {
        return value[1..value.len() - 1].to_string();
    }
    if quoted('"') {
        let inner = &value[1..value.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    // An unquoted value ends at ` #` (an inline comment).
    match value.find(" #") {
        Some(comment) => value[..comment].trim_end().to_string(),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::from([
            ("HOST".to_string(), "redis".to_string()),
            ("EMPTY".to_string(), String::new()),
            ("PORT".to_string(), "6379".to_string()),
        ])
    }

    fn run(text: &str) -> (String, Vec<String>) {
        let mut unset = Vec::new();
        let out = interpolate(text, &vars(), &mut unset).unwrap();
        (out, unset)
    }

    #[test]
    fn variables_defaults_and_escapes_interpolate_as_compose_does() {
        assert_eq!(run("$HOST:${PORT}").0, "redis:6379");
        assert_eq!(run("${MISSING:-fallback}").0, "fallback");
        assert_eq!(run("${EMPTY:-fallback}").0, "fallback");
        assert_eq!(run("${EMPTY-fallback}").0, "", "set but empty: no default");
        assert_eq!(run("${MISSING-fallback}").0, "fallback");
        assert_eq!(run("${HOST:+on}|${EMPTY:+on}|${EMPTY+on}").0, "on||on");
        assert_eq!(run("${MISSING:-${HOST}-x}").0, "redis-x", "nested default");
        assert_eq!(run("$$HOST costs $5 $").0, "$HOST costs $5 $");
        assert_eq!(run("${HOST}_1").0, "redis_1");
        let (out, unset) = run("a${MISSING}b$ALSO_MISSING");
        assert_eq!(out, "ab");
        assert_eq!(unset, ["MISSING", "ALSO_MISSING"]);
    }

    #[test]
    fn required_variables_and_bad_syntax_are_errors() {
        let mut unset = Vec::new();
        let err = interpolate("${TOKEN:?set TOKEN first}", &vars(), &mut unset).unwrap_err();
        assert!(
            err.contains("TOKEN") && err.contains("set TOKEN first"),
            "{err}"
        );
        assert!(interpolate("${EMPTY?}", &vars(), &mut unset).is_ok());
        assert!(interpolate("${EMPTY:?}", &vars(), &mut unset).is_err());
        assert!(interpolate("${HOST", &vars(), &mut unset).is_err());
        assert!(interpolate("${-x}", &vars(), &mut unset).is_err());
        assert!(interpolate("${HOST!x}", &vars(), &mut unset).is_err());
    }

    #[test]
    fn env_files_read_comments_quotes_exports_and_bare_keys() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted \\\"x\\\"\\nline\"\nD='single $X'\nE=plain # note\nFROM_HOST\nNOT_SET\n";
        let lookup = |k: &str| (k == "FROM_HOST").then(|| "host value".to_string());
        let pairs = parse_env_lines(text, lookup).unwrap();
        assert_eq!(
            pairs,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "quoted \"x\"\nline".into()),
                ("D".into(), "single $X".into()),
                ("E".into(), "plain".into()),
                ("FROM_HOST".into(), "host value".into()),
            ]
        );
        assert!(parse_env_lines("BAD KEY=1", |_| None).is_err());
    }
}
