//! `--fix`: applies the mechanical rewrites the rules attach to findings ([`super::rules::Edit`])
//! and renders the change as a unified diff.
//!
//! Only rules that can be rewritten without changing what the image does beyond the finding's
//! point attach edits: adding `--no-install-recommends`, `--no-cache-dir`, `apk --no-cache`,
//! appending apt list cleanup, merging a cleanup-only RUN into the install RUN right above it,
//! and exec-form CMD for commands without shell syntax. Overlapping edits are applied in later
//! passes (the file is linted again after each pass), so every edit sees the text it was made for.

use super::rules::{Context, Finding};
use super::{lint_text, Options};

/// The result of fixing one file.
#[derive(Debug, Clone)]
pub struct Fixed {
    pub text: String,
    /// `line N: RULE name` for every applied edit, in order.
    pub applied: Vec<String>,
}

/// Most passes: each pass applies at least one edit, and edits never re-create findings.
const MAX_PASSES: usize = 8;

/// Applies every safe edit to `text`, linting again between passes.
pub fn fix(text: &str, ctx: &Context, options: &Options) -> Fixed {
    let mut current = text.to_string();
    let mut applied = Vec::new();
    for _ in 0..MAX_PASSES {
        let (_, findings) = lint_text(&current, ctx, options);
        let (next, notes) = apply(&current, &findings);
        if notes.is_empty() {
            break;
        }
        current = next;
        applied.extend(notes);
    }
    Fixed {
        text: current,
        applied,
    }
}

/// Applies the non-overlapping edits of `findings` (first come first served); returns the new
/// text and a note per applied edit.
pub fn apply(text: &str, findings: &[Finding]) -> (String, Vec<String>) {
    let mut chosen: Vec<(&super::rules::Edit, &Finding)> = Vec::new();
    for f in findings {
        let Some(edit) = &f.edit else { continue };
        let valid = edit.start <= edit.end
            && edit.end <= text.len()
            && text.is_char_boundary(edit.start)
            && text.is_char_boundary(edit.end);
        let overlaps = chosen.iter().any(|(other, _)| {
            edit.start < other.end.max(other.start + 1)
                && other.start < edit.end.max(edit.start + 1)
        });
        if valid && !overlaps {
            chosen.push((edit, f));
        }
    }
    chosen.sort_by_key(|(e, _)| std::cmp::Reverse(e.start));
    let mut out = text.to_string();
    let mut notes = Vec::new();
    for (edit, f) in &chosen {
        out.replace_range(edit.start..edit.end, &edit.text);
        notes.push(format!(
            "line {}: {} {}",
            f.start.line, f.rule.id, f.rule.name
        ));
    }
    notes.reverse();
    (out, notes)
}

/// A unified diff of `before` → `after` with three lines of context.
pub fn diff(path: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> Fixed {
        fix(text, &Context::default(), &Options::default())
    }

    #[test]
    fn apt_pip_apk_and_cmd_are_rewritten() {
        let src = "FROM debian:bookworm-slim\nRUN apt-get update && \\\n    apt-get install -y curl\nRUN pip install flask\nRUN apk add git\nCMD python3 -m http.server 8000\n";
        let out = fixed(src);
        assert_eq!(
            out.text,
            "FROM debian:bookworm-slim\nRUN apt-get update && \\\n    apt-get install --no-install-recommends -y curl \\\n    && rm -rf /var/lib/apt/lists/*\nRUN pip install --no-cache-dir flask\nRUN apk add --no-cache git\nCMD [\"python3\", \"-m\", \"http.server\", \"8000\"]\n"
        );
        assert_eq!(out.applied.len(), 5, "{:?}", out.applied);
        let again = fixed(&out.text);
        assert!(again.applied.is_empty(), "fixing is idempotent");
    }

    #[test]
    fn cleanup_run_is_merged_into_install_run() {
        let src = "FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y --no-install-recommends curl\nRUN rm -rf /var/lib/apt/lists/*\nUSER 1000\n";
        let out = fixed(src);
        assert_eq!(
            out.text,
            "FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y --no-install-recommends curl \\\n    && rm -rf /var/lib/apt/lists/*\nUSER 1000\n"
        );
        assert!(out.applied[0].contains("ML006"));
    }

    #[test]
    fn unsafe_cases_are_left_alone() {
        for src in [
            // A trailing comment would swallow an appended command.
            "FROM debian:bookworm-slim\nRUN apt-get install -y --no-install-recommends curl # tools\n",
            // Shell syntax in CMD: exec form would stop expanding $PORT.
            "FROM debian:bookworm-slim\nCMD serve --port $PORT\n",
            // With an ENTRYPOINT, CMD becomes its arguments: rewriting changes them.
            "FROM debian:bookworm-slim\nENTRYPOINT [\"tini\", \"--\"]\nCMD serve\n",
            // A cache mount on the install RUN: merging would run the cleanup inside it.
            "FROM debian:bookworm-slim\nRUN --mount=type=cache,target=/root/.cache pip install --no-cache-dir x\nRUN rm -rf /tmp/*\n",
        ] {
            let out = fixed(src);
            assert_eq!(out.text, src, "{:?}", out.applied);
        }
    }

    #[test]
    fn diff_is_unified() {
        let d = diff("Dockerfile", "a\nb\n", "a\nc\n");
        assert!(d.starts_with("--- a/Dockerfile\n+++ b/Dockerfile\n@@"));
        assert!(d.contains("-b\n+c\n"));
    }
}
