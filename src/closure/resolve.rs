//! Path resolution inside the image, component by component as the kernel's path walk does:
//! `.` and `..`, symlinks followed wherever they appear (relative targets against the link's
//! directory, absolute ones against the image root), at most [`MAX_SYMLINK_HOPS`] per lookup.
//!
//! The walk reports every directory passed through and every symlink followed, because the slim
//! image must contain them all for the same lookup to succeed there.

use std::collections::VecDeque;

use crate::closure::ImageView;
use crate::image::EntryKind;

/// Linux's `MAXSYMLINKS`: a lookup following more symlinks fails with ELOOP.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// A successful lookup: the object reached and what the walk went through to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The normalised path of the object reached (no symlink in it, unless the final component
    /// is a symlink that was not followed).
    pub path: String,
    /// Directories walked through, in walk order (the image root only if the image has an entry
    /// for it).
    pub dirs: Vec<String>,
    /// Symlinks followed, in walk order.
    pub hops: Vec<String>,
}

/// Why a lookup failed; mirrors the errno the kernel would return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{path}: not absolute")]
    NotAbsolute { path: String },
    #[error("{path}: {missing} does not exist in the image")]
    NotFound {
        path: String,
        missing: String,
        /// The walk up to the directory `missing` would be in (its `path` is that directory):
        /// an app creating `missing` needs it.
        walked: Box<Resolution>,
    },
    #[error("{path}: {at} is not a directory")]
    NotADirectory { path: String, at: String },
    #[error("{path}: more than {MAX_SYMLINK_HOPS} symlinks (loop?) at {at}")]
    TooManySymlinks { path: String, at: String },
}

/// Resolves absolute `path` in `view`. With `follow_final` false a symlink in the last position is
/// returned itself (like `lstat`); a trailing slash always follows it (like the kernel does).
pub fn resolve<V: ImageView + ?Sized>(
    view: &V,
    path: &str,
    follow_final: bool,
) -> Result<Resolution, ResolveError> {
    if !path.starts_with('/') {
        return Err(ResolveError::NotAbsolute {
            path: path.to_string(),
        });
    }
    let follow_final = follow_final || path.ends_with('/');
    let mut pending: VecDeque<String> = components(path).map(str::to_string).collect();
    let mut current = String::from("/");
    let mut dirs = Vec::new();
    let mut hops = Vec::new();
    let mut root_listed = false;
    let mut list_dir = |dirs: &mut Vec<String>, dir: &str| {
        if dir == "/" {
            if root_listed || view.entry("/").is_none() {
                return;
            }
            root_listed = true;
        }
        // Symlinks can lead through the same directory twice; list it once.
        if !dirs.iter().any(|seen| seen == dir) {
            dirs.push(dir.to_string());
        }
    };

    while let Some(name) = pending.pop_front() {
        let is_last = pending.is_empty();
        if name == "." {
            continue;
        }
        list_dir(&mut dirs, &current);
        if name == ".." {
            // `current` never holds a symlink, so the lexical parent is the real parent.
            current = parent_of(&current).to_string();
            continue;
        }
        let candidate = join(&current, &name);
        let Some(entry) = view.entry(&candidate) else {
            return Err(ResolveError::NotFound {
                path: path.to_string(),
                missing: candidate,
                walked: Box::new(Resolution {
                    path: current,
                    dirs: std::mem::take(&mut dirs),
                    hops,
                }),
            });
        };
        match &entry.kind {
            EntryKind::Dir => current = candidate,
            EntryKind::Symlink { target } if !is_last || follow_final => {
                if hops.len() >= MAX_SYMLINK_HOPS {
                    return Err(ResolveError::TooManySymlinks {
                        path: path.to_string(),
                        at: candidate,
                    });
                }
                if target.is_empty() {
                    // The kernel answers ENOENT for an empty link target.
                    return Err(ResolveError::NotFound {
                        path: path.to_string(),
                        missing: candidate.clone(),
                        walked: Box::new(Resolution {
                            path: current,
                            dirs: std::mem::take(&mut dirs),
                            hops,
                        }),
                    });
                }
                hops.push(candidate);
                if target.starts_with('/') {
                    current = String::from("/");
                }
                for part in components(target).rev() {
                    pending.push_front(part.to_string());
                }
                // A target ending in `/` must be a directory, like the trailing slash of a path.
                if target.ends_with('/') && pending.is_empty() {
                    pending.push_back(String::from("."));
                }
            }
            _ if is_last => current = candidate,
            _ => {
                return Err(ResolveError::NotADirectory {
                    path: path.to_string(),
                    at: candidate,
                })
            }
        }
    }
    // A walk ending in `..` lists the object reached as a directory on the way; it is `path`.
    dirs.retain(|dir| dir != &current);
    Ok(Resolution {
        path: current,
        dirs,
        hops,
    })
}

/// Normalises `path` lexically (`.`/`..`/duplicate slashes), without looking at symlinks.
pub fn normalize_lexically(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in components(path) {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The directory part of an absolute normalised path (`/` for `/x`).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `dir` + `/` + `name` without doubling the slash at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|part| !part.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    fn bookworm_loader_layout() -> FakeImage {
        let mut image = FakeImage::new();
        image.dir("/usr/lib/x86_64-linux-gnu");
        image.dir("/usr/lib64");
        image.symlink("/lib64", "usr/lib64");
        image.symlink("/lib", "usr/lib");
        image.symlink(
            "/usr/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        );
        image.file("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b"\x7fELF");
        image
    }

    #[test]
    fn debian_loader_through_merged_usr_symlinks() {
        let image = bookworm_loader_layout();
        let found = resolve(&image, "/lib64/ld-linux-x86-64.so.2", true).unwrap();
        assert_eq!(found.path, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        assert_eq!(
            found.hops,
            ["/lib64", "/usr/lib64/ld-linux-x86-64.so.2", "/lib"]
        );
        assert_eq!(
            found.dirs,
            [
                "/",
                "/usr",
                "/usr/lib64",
                "/usr/lib",
                "/usr/lib/x86_64-linux-gnu"
            ]
        );
    }

    #[test]
    fn final_symlink_not_followed_on_request() {
        let image = bookworm_loader_layout();
        let found = resolve(&image, "/lib64/ld-linux-x86-64.so.2", false).unwrap();
        assert_eq!(found.path, "/usr/lib64/ld-linux-x86-64.so.2");
        assert_eq!(found.hops, ["/lib64"]);
        // A trailing slash forces following.
        let dir = resolve(&image, "/lib/", false).unwrap();
        assert_eq!(dir.path, "/usr/lib");
    }

    #[test]
    fn dot_dot_after_symlink_goes_to_the_real_parent() {
        let mut image = FakeImage::new();
        image.dir("/opt/app/bin");
        image.dir("/opt/app/lib");
        image.file("/opt/app/lib/libx.so", b"x");
        image.dir("/usr/bin");
        image.symlink("/usr/bin/app", "/opt/app/bin");
        // /usr/bin/app/.. is /opt/app (kernel semantics), not /usr/bin.
        let found = resolve(&image, "/usr/bin/app/../lib/libx.so", true).unwrap();
        assert_eq!(found.path, "/opt/app/lib/libx.so");
        assert!(found.dirs.contains(&"/opt/app/bin".to_string()));
        assert_eq!(found.hops, ["/usr/bin/app"]);
        // `..` at the root stays at the root.
        let root = resolve(&image, "/../../opt/./app", true).unwrap();
        assert_eq!(root.path, "/opt/app");
    }

    #[test]
    fn symlink_loop_ends_cleanly() {
        let mut image = FakeImage::new();
        image.symlink("/a", "b");
        image.symlink("/b", "/a");
        image.symlink("/self", "self/x");
        assert!(matches!(
            resolve(&image, "/a", true),
            Err(ResolveError::TooManySymlinks { .. })
        ));
        assert!(matches!(
            resolve(&image, "/self", true),
            Err(ResolveError::TooManySymlinks { .. })
        ));
    }

    #[test]
    fn chain_of_forty_hops_resolves_and_forty_one_fails() {
        let mut image = FakeImage::new();
        image.file("/target", b"t");
        for i in 0..41 {
            let next = if i == 0 {
                "target".to_string()
            } else {
                format!("l{}", i - 1)
            };
            image.symlink(&format!("/l{i}"), &next);
        }
        assert_eq!(resolve(&image, "/l39", true).unwrap().hops.len(), 40);
        assert!(resolve(&image, "/l40", true).is_err());
    }

    #[test]
    fn missing_paths_and_files_used_as_dirs_fail() {
        let image = bookworm_loader_layout();
        assert!(matches!(
            resolve(&image, "/proc/self/maps", true),
            Err(ResolveError::NotFound { .. })
        ));
        assert!(matches!(
            resolve(&image, "/lib64/ld-linux-x86-64.so.2/x", true),
            Err(ResolveError::NotADirectory { .. })
        ));
        assert!(matches!(
            resolve(&image, "relative", true),
            Err(ResolveError::NotAbsolute { .. })
        ));
        let mut dangling = FakeImage::new();
        dangling.symlink("/d", "");
        assert!(resolve(&dangling, "/d", true).is_err());
        assert_eq!(resolve(&dangling, "/d", false).unwrap().path, "/d");
    }

    #[test]
    fn lexical_helpers() {
        assert_eq!(normalize_lexically("/a/./b//../c/"), "/a/c");
        assert_eq!(normalize_lexically("/.."), "/");
        assert_eq!(parent_of("/x"), "/");
        assert_eq!(parent_of("/x/y"), "/x");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
