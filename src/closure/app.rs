//! The app's own files: what the image's own build steps put outside the system trees (COPY /
//! ADD layers, files a RUN step created in an app directory) and the WORKDIR tree when it is an
//! app directory. They are kept whole — templates, static assets, data files, CGI scripts and
//! included code are small and are exactly what a probe that did not reach a route never
//! touches — except what is never runtime: VCS directories, caches, and dependency trees
//! (`node_modules`, `site-packages`, ...), which the import scanners ([`super::lang`]) resolve
//! file by file instead.
//!
//! Guard rails, because a wrong guess here costs size, not correctness: system trees (`/usr`,
//! `/etc`, `/var` but `/var/www`, ...) never count, and an app root holding more than
//! [`MAX_ROOT_BYTES`] or [`MAX_ROOT_FILES`] is not kept whole (the imports still reach what the
//! code loads) and a warning says so.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::image::{Entry, EntryKind};

/// An app root bigger than this is not kept whole.
pub const MAX_ROOT_BYTES: u64 = 64 * 1024 * 1024;
/// An app root with more files than this is not kept whole.
pub const MAX_ROOT_FILES: usize = 20_000;

/// What made a layer, from the image history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    Copy,
    Add,
    Run,
    /// An imported root filesystem or a step the history does not name.
    Other,
}

/// One layer's instruction (`created_by` of its history entry) and what kind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStep {
    pub kind: LayerKind,
    pub instruction: String,
}

/// Per layer (in `rootfs.diff_ids` order), the history step that made it. History entries with
/// `empty_layer` made no layer; a history shorter than the layers leaves the rest `Other`.
pub fn layer_steps(config: &serde_json::Value, layers: usize) -> Vec<LayerStep> {
    let mut steps: Vec<LayerStep> = config
        .get("history")
        .and_then(|h| h.as_array())
        .map(|history| {
            history
                .iter()
                .filter(|h| {
                    !h.get("empty_layer")
                        .and_then(|e| e.as_bool())
                        .unwrap_or(false)
                })
                .map(|h| {
                    let instruction = h
                        .get("created_by")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_string();
                    LayerStep {
                        kind: classify(&instruction),
                        instruction,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    steps.truncate(layers);
    while steps.len() < layers {
        steps.push(LayerStep {
            kind: LayerKind::Other,
            instruction: String::new(),
        });
    }
    steps
}

/// The kind of a `created_by` line, classic builder (`/bin/sh -c #(nop) COPY dir:… in /app`,
/// `/bin/sh -c apt-get …`, `|2 A=b /bin/sh -c …`) or BuildKit (`COPY . /app # buildkit`,
/// `RUN /bin/sh -c … # buildkit`).
pub fn classify(created_by: &str) -> LayerKind {
    let text = created_by.trim();
    if text.is_empty() {
        return LayerKind::Other;
    }
    let nop = text.split_once("#(nop)").map(|(_, rest)| rest.trim_start());
    let word = nop
        .unwrap_or(text)
        .split_whitespace()
        .next()
        .unwrap_or_default();
    match word {
        "COPY" => LayerKind::Copy,
        "ADD" => {
            // `ADD file:<hash> in /` is how official base images unpack their root filesystem:
            // it is the distribution, not the app.
            if nop.is_some_and(|rest| rest.trim_end().ends_with(" in /")) {
                LayerKind::Other
            } else {
                LayerKind::Add
            }
        }
        "RUN" => LayerKind::Run,
        _ if nop.is_some() => LayerKind::Other,
        // A classic-builder RUN has no `#(nop)`: the shell command itself is the history line.
        _ if text.starts_with("/bin/sh -c ") || text.starts_with('|') => LayerKind::Run,
        _ => LayerKind::Other,
    }
}

/// Trees that belong to the OS, the package managers or the runtime: never the app's own.
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc", "/var", "/boot",
    "/dev", "/proc", "/sys", "/run", "/tmp", "/mnt", "/media",
];

/// Exceptions inside [`SYSTEM_TREES`] that conventionally hold an app.
const APP_TREES_IN_SYSTEM: &[&str] = &["/var/www", "/usr/src/app", "/usr/app"];

/// Directory names that are never runtime (VCS, caches) or are dependency trees resolved by the
/// import scanners instead of kept whole.
const NOT_APP_DIRS: &[&str] = &[
    ".git",
    ".svn",
    ".hg",
    ".bzr",
    "CVS",
    ".cache",
    ".npm",
    ".yarn",
    ".pnpm-store",
    ".tox",
    ".nox",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "__pycache__",
    "node_modules",
    "site-packages",
    "dist-packages",
    "bower_components",
];

/// `true` when `path` lies in a system tree (and not in one of the app exceptions).
pub fn in_system_tree(path: &str) -> bool {
    let under = |root: &str| path == root || path.starts_with(&format!("{root}/"));
    SYSTEM_TREES.iter().any(|t| under(t)) && !APP_TREES_IN_SYSTEM.iter().any(|t| under(t))
}

/// `true` when a component of `path` is a VCS dir, a cache or a dependency tree; Ruby's
/// `vendor/bundle` too.
fn in_excluded_dir(path: &str) -> bool {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    components.iter().any(|c| NOT_APP_DIRS.contains(c))
        || components.windows(2).any(|w| w == ["vendor", "bundle"])
}

/// The root an app path is grouped under for the size bound: its first component, or the first
/// two in `/var/www`, `/usr/src/app`-like trees and `/home/<user>`.
fn app_root(path: &str) -> String {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let depth = match components.first() {
        Some(&"home") | Some(&"opt") | Some(&"srv") => 2,
        Some(&"var") | Some(&"usr") => APP_TREES_IN_SYSTEM
            .iter()
            .find(|t| path.starts_with(&format!("{t}/")) || path == **t)
            .map_or(2, |t| t.split('/').filter(|c| !c.is_empty()).count()),
        _ => 1,
    };
    format!("/{}", components[..depth.min(components.len())].join("/"))
}

/// Whether the WORKDIR is an app directory: not `/`, not a system tree, not a home's top.
pub fn workdir_is_app(workdir: &str) -> bool {
    let w = workdir.trim_end_matches('/');
    !w.is_empty() && !in_system_tree(w) && w != "/root" && w != "/home" && w != "/opt"
}

/// One app file to keep, and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFile {
    pub path: String,
    /// The layer it came from, and that layer's instruction (empty when only the WORKDIR rule
    /// picked it).
    pub layer: usize,
    pub instruction: String,
    /// Content bytes (0 for anything but a regular file).
    pub size: u64,
}

/// An app root that was too big to keep whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRoot {
    pub root: String,
    pub files: usize,
    pub bytes: u64,
}

/// What [`app_files`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppFiles {
    pub files: Vec<AppFile>,
    pub skipped: Vec<SkippedRoot>,
    /// Files a COPY/ADD step put in a system tree (`COPY app.py /usr/local/bin/`): not kept
    /// whole (a system tree is never), but the app's own code wherever it ends up, so when kept
    /// they are scanned like the app's files (lazy loads included), not like a library.
    pub own_code: Vec<String>,
}

/// Whether every layer comes from a step the history does not name as the app's (an imported
/// or squashed root filesystem, `docker commit`): then nothing tells the app from the OS but
/// the tree a file is in.
fn flat(steps: &[LayerStep]) -> bool {
    steps.iter().all(|s| s.kind == LayerKind::Other)
}

/// A shell's dotfile in a home directory (`/root/.bashrc`, `/home/u/.profile`): every root
/// filesystem has them, and no app needs them.
fn home_dotfile(path: &str) -> bool {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    match components.as_slice() {
        ["root", name] | ["home", _, name] => name.starts_with('.'),
        _ => false,
    }
}

/// The app's own files among `entries` (the flattened image), given each layer's step and the
/// image's WORKDIR. Files, symlinks, hard links and directories are returned (an empty upload
/// directory matters too).
pub fn app_files<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    steps: &[LayerStep],
    workdir: &str,
) -> AppFiles {
    let workdir = workdir.trim_end_matches('/');
    let workdir_app = workdir_is_app(workdir);
    let in_workdir = |path: &str| workdir_app && path.starts_with(&format!("{workdir}/"));
    let entries: Vec<&Entry> = entries.into_iter().collect();
    // A virtualenv is a dependency tree like site-packages: its interpreter links, pip and
    // activate scripts are not the app (on the Flask fixture they pulled in pip and setuptools
    // through the scanner, +11 MB); what the app imports from it is resolved by the scanner.
    let venvs: Vec<String> = entries
        .iter()
        .filter_map(|e| e.path.strip_suffix("/pyvenv.cfg"))
        .map(|dir| format!("{dir}/"))
        .collect();
    let flat = flat(steps);
    let mut own_code = Vec::new();
    let mut by_root: BTreeMap<String, Vec<AppFile>> = BTreeMap::new();
    for entry in entries {
        let path = entry.path.as_str();
        if path == "/"
            || in_excluded_dir(path)
            || venvs
                .iter()
                .any(|v| path.starts_with(v.as_str()) || v.strip_suffix('/') == Some(path))
        {
            continue;
        }
        if matches!(
            entry.kind,
            EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } | EntryKind::Fifo
        ) {
            continue;
        }
        let step = steps.get(entry.layer);
        // In a flat image (no history) what is outside the system trees is the app: the
        // imported root filesystem holds it with the OS, in one layer.
        let made_by_app_step =
            step.is_some_and(|s| s.kind != LayerKind::Other) || (flat && !home_dotfile(path));
        let copied = step.is_some_and(|s| matches!(s.kind, LayerKind::Copy | LayerKind::Add));
        let system = in_system_tree(path);
        if copied && system && entry.kind == EntryKind::File {
            own_code.push(path.to_string());
        }
        let picked = in_workdir(path) || (made_by_app_step && !system);
        if !picked {
            continue;
        }
        // A directory alone (`/home/app` made by useradd) is not worth a root of its own: it is
        // kept when a file below it is.
        if entry.kind == EntryKind::Dir && !in_workdir(path) && path.matches('/').count() < 2 {
            continue;
        }
        by_root.entry(app_root(path)).or_default().push(AppFile {
            path: path.to_string(),
            layer: entry.layer,
            instruction: step.map(|s| s.instruction.clone()).unwrap_or_default(),
            size: entry.size,
        });
    }
    let mut out = AppFiles {
        own_code,
        ..AppFiles::default()
    };
    for (root, files) in by_root {
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        let count = files.iter().filter(|f| f.size > 0).count();
        if bytes > MAX_ROOT_BYTES || count > MAX_ROOT_FILES {
            out.skipped.push(SkippedRoot {
                root,
                files: count,
                bytes,
            });
        } else {
            out.files.extend(files);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, layer: usize, size: u64) -> Entry {
        Entry {
            path: path.to_string(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            size,
            xattrs: Vec::new(),
            content: None,
            layer,
        }
    }

    fn file(path: &str, layer: usize) -> Entry {
        entry(path, EntryKind::File, layer, 10)
    }

    fn steps(lines: &[&str]) -> Vec<LayerStep> {
        lines
            .iter()
            .map(|l| LayerStep {
                kind: classify(l),
                instruction: l.to_string(),
            })
            .collect()
    }

    #[test]
    fn history_lines_of_both_builders_are_classified() {
        assert_eq!(
            classify("/bin/sh -c #(nop) COPY dir:0a1b in /app "),
            LayerKind::Copy
        );
        assert_eq!(classify("COPY . /app # buildkit"), LayerKind::Copy);
        assert_eq!(
            classify("/bin/sh -c #(nop) ADD file:9f8e in / "),
            LayerKind::Other,
            "an ADD of a root filesystem is the distribution"
        );
        assert_eq!(
            classify("/bin/sh -c #(nop) ADD file:9f8e in /srv/data.tar "),
            LayerKind::Add
        );
        assert_eq!(
            classify("/bin/sh -c apt-get update && apt-get install -y nginx"),
            LayerKind::Run
        );
        assert_eq!(
            classify("|1 VERSION=2 /bin/sh -c make install"),
            LayerKind::Run
        );
        assert_eq!(classify("RUN /bin/sh -c npm ci # buildkit"), LayerKind::Run);
        assert_eq!(classify("/bin/sh -c #(nop)  CMD [\"x\"]"), LayerKind::Other);
        assert_eq!(classify(""), LayerKind::Other);
    }

    #[test]
    fn layer_steps_skip_empty_layers_and_pad_short_histories() {
        let config = serde_json::json!({"history": [
            {"created_by": "", "comment": "debootstrap"},
            {"created_by": "/bin/sh -c #(nop) WORKDIR /app", "empty_layer": true},
            {"created_by": "/bin/sh -c #(nop) COPY dir:1 in /app "},
        ]});
        let got = layer_steps(&config, 3);
        assert_eq!(
            got.iter().map(|s| s.kind).collect::<Vec<_>>(),
            vec![LayerKind::Other, LayerKind::Copy, LayerKind::Other]
        );
    }

    #[test]
    fn copied_app_files_are_kept_but_not_system_trees_vcs_or_dependency_trees() {
        let steps = steps(&[
            "",
            "/bin/sh -c apt-get install -y python3",
            "COPY . /app # buildkit",
        ]);
        let entries = vec![
            file("/usr/bin/python3", 1),
            file("/etc/python3/sitecustomize.py", 1),
            file("/app/app.py", 2),
            file("/app/templates/report.html", 2),
            file("/app/.git/HEAD", 2),
            file("/app/node_modules/x/index.js", 2),
            file(
                "/app/venv/lib/python3.11/site-packages/flask/__init__.py",
                2,
            ),
            file("/app/__pycache__/app.cpython-311.pyc", 2),
            file("/root/.cache/pip/x", 1),
            file("/home/app/.profile", 0),
        ];
        let got = app_files(&entries, &steps, "/");
        let paths: Vec<&str> = got.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["/app/app.py", "/app/templates/report.html"]);
        assert_eq!(got.files[0].instruction, "COPY . /app # buildkit");
        assert!(got.skipped.is_empty());
    }

    #[test]
    fn the_workdir_tree_counts_whatever_layer_made_it_unless_it_is_a_system_tree() {
        // Layer 0 is the base image's root filesystem, layer 1 the app's own RUN step.
        let steps = steps(&["", "/bin/sh -c useradd app"]);
        let entries = vec![
            file("/srv/site/index.html", 0),
            entry("/srv/site/uploads", EntryKind::Dir, 0, 0),
            file("/usr/share/doc/x", 0),
        ];
        let got = app_files(&entries, &steps, "/srv/site");
        let paths: Vec<&str> = got.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["/srv/site/index.html", "/srv/site/uploads"]);
        assert!(app_files(&entries, &steps, "/usr/share").files.is_empty());
        assert!(app_files(&entries, &steps, "/").files.is_empty());
    }

    #[test]
    fn a_flat_image_keeps_what_is_outside_the_system_trees_but_home_dotfiles() {
        // `docker export | docker import`: one layer, no history naming a step.
        let steps = steps(&[""]);
        let entries = vec![
            file("/srv/shop/app.py", 0),
            file("/srv/shop/templates/report.html", 0),
            file("/opt/venv/lib/python3.11/site-packages/flask/app.py", 0),
            file("/opt/venv/pyvenv.cfg", 0),
            file("/usr/lib/python3.11/csv.py", 0),
            file("/root/.bashrc", 0),
            file("/home/app/.profile", 0),
            file("/home/app/notes/todo.txt", 0),
        ];
        let got = app_files(&entries, &steps, "/");
        let paths: Vec<&str> = got.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/home/app/notes/todo.txt",
                "/srv/shop/app.py",
                "/srv/shop/templates/report.html"
            ]
        );
        assert!(got.own_code.is_empty());
    }

    #[test]
    fn files_copied_into_a_system_tree_are_own_code_but_not_kept_whole() {
        let steps = steps(&[
            "",
            "/bin/sh -c apt-get install -y python3",
            "/bin/sh -c #(nop) COPY file:1 in /usr/local/bin/shop.py ",
            "/bin/sh -c #(nop) COPY dir:2 in /usr/local/lib/shop ",
        ]);
        let entries = vec![
            file("/usr/lib/python3.11/csv.py", 1),
            file("/usr/local/bin/shop.py", 2),
            entry("/usr/local/lib/shop", EntryKind::Dir, 3, 0),
            file("/usr/local/lib/shop/reports.py", 3),
            file("/usr/local/lib/shop/node_modules/x/index.js", 3),
        ];
        let got = app_files(&entries, &steps, "/");
        assert!(got.files.is_empty(), "{:?}", got.files);
        assert_eq!(
            got.own_code,
            vec!["/usr/local/bin/shop.py", "/usr/local/lib/shop/reports.py"]
        );
    }

    #[test]
    fn var_www_is_an_app_tree_inside_var() {
        let steps = steps(&["/bin/sh -c #(nop) COPY dir:2 in /var/www/html "]);
        let entries = vec![file("/var/www/html/index.php", 0), file("/var/lib/x", 0)];
        let got = app_files(&entries, &steps, "/");
        assert_eq!(got.files.len(), 1);
        assert_eq!(got.files[0].path, "/var/www/html/index.php");
    }

    #[test]
    fn an_app_root_over_the_bound_is_not_kept_whole_and_is_reported() {
        let steps = steps(&["COPY data /data # buildkit", "COPY app /app # buildkit"]);
        let entries = vec![
            entry("/data/huge.bin", EntryKind::File, 0, MAX_ROOT_BYTES + 1),
            file("/app/main.py", 1),
        ];
        let got = app_files(&entries, &steps, "/");
        assert_eq!(got.files.len(), 1);
        assert_eq!(
            got.skipped,
            vec![SkippedRoot {
                root: "/data".into(),
                files: 1,
                bytes: MAX_ROOT_BYTES + 1
            }]
        );
    }
}
