//! The build context of `minify build --dockerfile`: which files of the context directory go to
//! the daemon (its `.dockerignore`, with Docker's matching rules), and their tar, written on a
//! blocking thread and streamed to the daemon chunk by chunk (a big context is never held whole).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use globset::{GlobBuilder, GlobMatcher};

use crate::{Error, Result};

/// One `.dockerignore` rule: a glob over context-relative paths, or an exception (`!glob`).
#[derive(Debug, Clone)]
struct Rule {
    glob: GlobMatcher,
    exception: bool,
}

/// The `.dockerignore` of a context, as Docker reads it: one pattern a line, `#` comments,
/// `!` exceptions, a leading `/` ignored, `*` and `?` within one path component, `**` across
/// any number; a pattern that matches a directory excludes what is under it; the last pattern
/// that matches a path decides.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    /// Parses the text of a `.dockerignore`; a pattern that is not a valid glob is an error.
    pub fn parse(text: &str) -> std::result::Result<Ignore, String> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("pattern {line:?}: {e}"))?
                .compile_matcher();
            rules.push(Rule { glob, exception });
        }
        Ok(Ignore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) stays out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            // A pattern matches the path or one of the directories it is in (Docker's rule).
            let mut matched = rule.glob.is_match(path);
            let mut prefix = path;
            while !matched {
                match prefix.rfind('/') {
                    Some(slash) => {
                        prefix = &prefix[..slash];
                        matched = rule.glob.is_match(prefix);
                    }
                    None => break,
                }
            }
            if matched {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether some exception could bring back a path under an excluded directory (then the
    /// directory must still be walked).
    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }
}

/// `filepath.Clean` of a pattern, without its leading `/` (patterns are context-relative).
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// What goes into the context tar: `(host path, path in the tar)`, directories before what
/// they hold; and the Dockerfile's path inside the tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPlan {
    pub entries: Vec<(PathBuf, String)>,
    pub dockerfile: String,
}

/// The name a Dockerfile from outside the context gets in the tar (the docker CLI does the same).
pub const OUTSIDE_DOCKERFILE: &str = ".minify.Dockerfile";

/// Lists the context `dir` minus what its `.dockerignore` excludes; the Dockerfile and the
/// `.dockerignore` always go (the daemon needs them). A `dockerfile` outside `dir` is added as
/// [`OUTSIDE_DOCKERFILE`]. Symlinks are sent as symlinks, never followed.
pub fn plan(dir: &Path, dockerfile: &Path) -> Result<ContextPlan> {
    let read_error =
        |path: &Path| Error::io(format!("reading the build context {}", path.display()));
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => Ignore::parse(&text).map_err(|message| Error::File {
            path: dir.join(".dockerignore"),
            message,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(read_error(&dir.join(".dockerignore"))(e)),
    };
    let dir = dir.canonicalize().map_err(read_error(dir))?;
    let dockerfile_abs = dockerfile.canonicalize().map_err(read_error(dockerfile))?;
    let inside = dockerfile_abs
        .strip_prefix(&dir)
        .ok()
        .map(|rel| rel.to_string_lossy().replace('\\', "/"));
    let always: Vec<String> = [Some(".dockerignore".to_string()), inside.clone()]
        .into_iter()
        .flatten()
        .collect();
    let mut entries = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(current) = pending.pop() {
        let mut children: Vec<_> = std::fs::read_dir(&current)
            .map_err(read_error(&current))?
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(read_error(&current))?;
        children.sort_by_key(|c| c.file_name());
        // Depth-first in name order, each directory before its contents.
        let mut subdirs = Vec::new();
        for child in children {
            let path = child.path();
            let rel = path
                .strip_prefix(&dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let kind = child.file_type().map_err(read_error(&path))?;
            let excluded = ignore.excludes(&rel) && !always.contains(&rel);
            if kind.is_dir() {
                if excluded && !ignore.has_exceptions() {
                    continue;
                }
                if !excluded {
                    entries.push((path.clone(), rel));
                }
                subdirs.push(path);
            } else if !excluded && (kind.is_file() || kind.is_symlink()) {
                entries.push((path, rel));
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    let dockerfile_in_tar = match inside {
        Some(rel) => rel,
        None => {
            entries.push((dockerfile_abs, OUTSIDE_DOCKERFILE.to_string()));
            OUTSIDE_DOCKERFILE.to_string()
        }
    };
    Ok(ContextPlan {
        entries,
        dockerfile: dockerfile_in_tar,
    })
}

/// A `std::io::Write` that hands what is written to an async receiver in chunks.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sender
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the daemon stopped reading the build context",
                )
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes one entry: owned by root, as the docker CLI sends a context.
fn append(
    builder: &mut tar::Builder<impl std::io::Write>,
    path: &Path,
    name: &str,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    header.set_uid(0);
    header.set_gid(0);
    if meta.file_type().is_symlink() {
        header.set_size(0);
        let target = std::fs::read_link(path)?;
        builder.append_link(&mut header, name, target)
    } else if meta.is_dir() {
        header.set_size(0);
        builder.append_data(&mut header, name, std::io::empty())
    } else {
        let file = std::fs::File::open(path)?;
        builder.append_data(&mut header, name, file)
    }
}

/// The tar of `plan`, as a stream: written on a blocking thread in 64 KiB chunks, at most a few
/// chunks ahead of the daemon. A file that cannot be read ends the stream with that error.
pub fn tar_stream(plan: &ContextPlan) -> BoxStream<'static, std::io::Result<Bytes>> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let entries = plan.entries.clone();
    tokio::task::spawn_blocking(move || {
        let errors = sender.clone();
        let writer = std::io::BufWriter::with_capacity(64 << 10, ChannelWriter { sender });
        let mut builder = tar::Builder::new(writer);
        let written = entries
            .iter()
            .try_for_each(|(path, name)| {
                append(&mut builder, path, name)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            })
            .and_then(|()| builder.into_inner())
            .and_then(|mut writer| std::io::Write::flush(&mut writer));
        if let Err(e) = written {
            let _ = errors.blocking_send(Err(e));
        }
    });
    Box::pin(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    #[test]
    fn dockerignore_follows_dockers_rules() {
        let ignore = Ignore::parse(
            "# comment\n/node_modules\n*.log\n**/*.tmp\n!keep.log\ndocs/*\n!docs/README.md\n",
        )
        .unwrap();
        for excluded in [
            "node_modules",
            "node_modules/x/index.js",
            "a.log",
            "deep/er/x.tmp",
            "x.tmp",
            "docs/guide.md",
        ] {
            assert!(ignore.excludes(excluded), "{excluded}");
        }
        for kept in [
            "keep.log",
            "sub/a.log",
            "docs/README.md",
            "src/app.py",
            "docs",
        ] {
            assert!(!ignore.excludes(kept), "{kept}");
        }
        assert!(Ignore::parse("[").is_err());
        assert_eq!(clean("/a/./b/../c/"), "a/c");
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn the_context_tar_holds_what_dockerignore_lets_through_and_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        write(&ctx, "Dockerfile", "FROM x\n");
        write(&ctx, "app/main.py", "print(1)\n");
        write(&ctx, "app/cache/big.bin", "x");
        write(&ctx, "secret.env", "K=V\n");
        write(&ctx, ".dockerignore", "app/cache\nsecret.env\nDockerfile\n");
        std::os::unix::fs::symlink("main.py", ctx.join("app/link")).unwrap();
        let plan = plan(&ctx, &ctx.join("Dockerfile")).unwrap();
        assert_eq!(plan.dockerfile, "Dockerfile");
        let names: Vec<&str> = plan.entries.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "app",
                "app/link",
                "app/main.py"
            ]
        );
        let chunks: Vec<Bytes> = tar_stream(&plan).try_collect().await.unwrap();
        let bytes = chunks.concat();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(entry.header().uid().unwrap(), 0);
            if name == "app/link" {
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("main.py")
                );
            }
            if name == "app/main.py" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
                assert_eq!(text, "print(1)\n");
            }
            seen.push(name);
        }
        assert_eq!(seen.len(), names.len());

        // A Dockerfile from elsewhere travels under a name of its own.
        write(dir.path(), "other/Dockerfile.prod", "FROM y\n");
        let outside = super::plan(&ctx, &dir.path().join("other/Dockerfile.prod")).unwrap();
        assert_eq!(outside.dockerfile, OUTSIDE_DOCKERFILE);
        assert_eq!(outside.entries.last().unwrap().1, OUTSIDE_DOCKERFILE);
    }

    #[tokio::test]
    async fn an_unreadable_file_ends_the_stream_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Dockerfile", "FROM x\n");
        let mut plan = plan(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        plan.entries
            .push((dir.path().join("vanished"), "vanished".to_string()));
        let result: std::io::Result<Vec<Bytes>> = tar_stream(&plan).try_collect().await;
        assert!(result.unwrap_err().to_string().contains("vanished"));
    }
}
