//! `.dockerignore` files: reading (including the per-Dockerfile `NAME.dockerignore` BuildKit
//! prefers) and matching paths the way the builder does — Go `filepath.Match` segments, `**`
//! across directories, `!` exceptions with the last matching line winning, and a path excluded
//! when one of its parent directories is.

use std::path::Path;

#[derive(Debug, Clone)]
pub struct DockerIgnore {
    /// File name for messages (`.dockerignore`, `api.Dockerfile.dockerignore`).
    pub name: String,
    patterns: Vec<(bool, Vec<String>)>,
}

impl DockerIgnore {
    pub fn parse(name: &str, text: &str) -> DockerIgnore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (negated, p) = match l.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, l),
                };
                let segments = clean(p);
                (!segments.is_empty()).then_some((negated, segments))
            })
            .collect();
        DockerIgnore {
            name: name.to_string(),
            patterns,
        }
    }

    /// The ignore file for a Dockerfile in `context`: `<dockerfile>.dockerignore` first, then
    /// `.dockerignore`. Unreadable files count as absent.
    pub fn for_dockerfile(context: &Path, dockerfile_name: &str) -> Option<DockerIgnore> {
        [
            format!("{dockerfile_name}.dockerignore"),
            ".dockerignore".into(),
        ]
        .into_iter()
        .find_map(|name| {
            let text = std::fs::read_to_string(context.join(&name)).ok()?;
            Some(DockerIgnore::parse(&name, &text))
        })
    }

    /// Whether the builder leaves `path` (relative to the context) out.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        // A path is out when it or any parent directory is matched by the last matching line.
        (1..=path.len()).any(|n| {
            let prefix = &path[..n];
            let mut excluded = false;
            for (negated, pattern) in &self.patterns {
                if matches(pattern, prefix) {
                    excluded = !negated;
                }
            }
            excluded
        })
    }
}

fn clean(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

fn matches(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => segment_match(first, seg) && matches(rest, path_rest),
            None => false,
        },
    }
}

/// `filepath.Match` on one segment: `*`, `?`, `[…]` classes and `\` escapes.
fn segment_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_chars(&p, &n)
}

fn match_chars(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| match_chars(&p[1..], &n[i..])),
        Some('?') => !n.is_empty() && match_chars(&p[1..], &n[1..]),
        Some('[') => {
            let Some(close) = p.iter().position(|&c| c == ']') else {
                return n.first() == Some(&'[') && match_chars(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else { return false };
            let class = &p[1..close];
            let (negate, class) = match class.first() {
                Some('^') | Some('!') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_chars(&p[close + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && match_chars(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && match_chars(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_the_builder() {
        let ig = DockerIgnore::parse(
            ".dockerignore",
            "# c\n/.git/\nnode_modules\n.env*\n!.env.example\n**/*.log\nbuild/[a-c]*\n",
        );
        assert!(ig.excludes(".git") && ig.excludes(".git/HEAD"));
        assert!(ig.excludes("node_modules/x/y.js"));
        assert!(!ig.excludes("src/node_modules"), "no implicit **");
        assert!(ig.excludes(".env") && ig.excludes(".env.local"));
        assert!(!ig.excludes(".env.example"), "exceptions win when last");
        assert!(ig.excludes("a/b/c.log") && ig.excludes("c.log"));
        assert!(ig.excludes("build/b1") && !ig.excludes("build/d1"));
        assert!(!ig.excludes("src/main.rs"));
    }
}
