//! `minify xray`: where an image's bytes go and what it carries, layer by layer.
//!
//! Owns the whole analysis, from reading layers to the finished [`Xray`] report:
//! - [`scan`]: one layer tar → compact entry records (the fuzzed tar/whiteout reader);
//! - [`source`]: a `docker save` archive or stream, read once; [`layerdb`]: the local daemon's
//!   layer store, which avoids `docker save` altogether;
//! - [`dive`]: efficiency and wasted bytes exactly as dive computes them;
//! - [`findings`]: secret-looking paths and runtime-unneeded categories; [`config`]: the config
//!   summary and the reconstructed Dockerfile;
//! - [`render`] (terminal), [`html`] (self-contained page), [`gate`] (CI thresholds).
//!
//! Only entry metadata is kept in memory (a few hundred bytes per path); file contents are
//! fingerprinted as they stream past and never stored.

pub mod config;
pub mod dive;
pub mod findings;
pub mod gate;
pub mod html;
pub mod layerdb;
pub mod render;
pub mod scan;
pub mod source;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::docker::DockerApi;
use crate::Result;
use scan::{HashPolicy, Kind, RawEntry};
pub use source::RawImage;

/// Files smaller than this are not fingerprinted: duplicates that small are not worth a line.
pub const DUPLICATE_MIN_BYTES: u64 = 1024;
/// How many entries the top-N lists keep.
pub const TOP_N: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub name: String,
    pub id: String,
    pub repo_tags: Vec<String>,
    /// How the layers were read.
    pub source: String,
    /// Σ tar header sizes of all layers (what `docker images` shows, uncompressed).
    pub size_bytes: u64,
    /// Files, dirs and bytes of the final (flattened) filesystem.
    pub final_files: usize,
    pub final_dirs: usize,
    pub final_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub id: String,
    /// The Dockerfile instruction that made it (from history, matched as dive does).
    pub instruction: String,
    pub size_bytes: u64,
    pub entries: usize,
    /// Non-directory paths new in this layer, replacing a lower one, or removed by it.
    pub files_added: usize,
    pub files_modified: usize,
    pub files_removed: usize,
    /// Bytes of this layer's files that a later layer overwrote or removed.
    pub bytes_shadowed_later: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathSize {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DuplicateGroup {
    pub size: u64,
    pub paths: Vec<String>,
    /// `size × (copies − 1)`.
    pub wasted: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemovedFile {
    pub path: String,
    pub size: u64,
    /// Layer that ships the bytes.
    pub added_in: usize,
    /// Layer whose whiteout hides them (they stay extractable from `added_in`).
    pub removed_in: usize,
    /// Set when the path looks like a secret.
    pub secret: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretFinding {
    pub path: String,
    pub layer: usize,
    pub why: &'static str,
    /// True when a later layer removed it: hidden from the container, still in the image.
    pub removed_later: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub name: &'static str,
    pub description: &'static str,
    pub files: usize,
    pub bytes: u64,
    /// Biggest members.
    pub examples: Vec<PathSize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecialFile {
    pub path: String,
    pub size: u64,
    /// Octal permission bits, e.g. `4755`.
    pub mode: String,
}

/// A node of the size treemap (final filesystem), children biggest first.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    pub name: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

/// The whole xray report (`--json` prints exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct Xray {
    pub minify_version: String,
    pub image: ImageInfo,
    pub layers: Vec<LayerReport>,
    pub efficiency: dive::DiveStats,
    pub biggest_files: Vec<PathSize>,
    pub biggest_dirs: Vec<PathSize>,
    pub duplicates: Vec<DuplicateGroup>,
    pub duplicate_wasted_bytes: u64,
    pub removed_but_shipped: Vec<RemovedFile>,
    pub removed_but_shipped_bytes: u64,
    pub secrets: Vec<SecretFinding>,
    pub runtime_extras: Vec<Category>,
    pub setuid_setgid: Vec<SpecialFile>,
    /// Shells, package managers, interpreters, network tools, SSH, setuid/setgid files, files
    /// with capabilities, world-writable dirs of the final filesystem.
    pub attack_surface: crate::surface::Surface,
    pub config: config::ConfigSummary,
    pub dockerfile: String,
    pub treemap: TreeNode,
    pub warnings: Vec<String>,
    pub elapsed_ms: u64,
}

/// Where the final filesystem's entry comes from: (layer, index in that layer).
type Loc = (usize, usize);

/// Reads `image` from the daemon: its layer store when local and readable, else `docker save`.
pub async fn read_from_daemon(
    docker: &(impl DockerApi + Sync),
    image: &str,
    use_layer_store: bool,
) -> Result<RawImage> {
    let summary = docker.inspect_image(image).await?;
    if use_layer_store {
        let root = layerdb::docker_root();
        let id = summary.id.clone();
        let tags = summary.repo_tags.clone();
        let found = tokio::task::spawn_blocking(move || {
            layerdb::read_layer_store(&root, &id, tags, DUPLICATE_MIN_BYTES)
        })
        .await
        .map_err(|e| crate::Error::Io {
            context: "reading the layer store".into(),
            source: std::io::Error::other(e),
        })??;
        if let Some(found) = found {
            return Ok(found);
        }
        tracing::info!("layer store not usable; reading `docker save`");
    }
    let stream = docker.save_image(&summary.id);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let mut raw = tokio::task::spawn_blocking(move || {
        source::read_archive(reader, HashPolicy::AtLeast(DUPLICATE_MIN_BYTES))
    })
    .await
    .map_err(|e| crate::Error::Io {
        context: "reading docker save".into(),
        source: std::io::Error::other(e),
    })??;
    if raw.repo_tags.is_empty() {
        raw.repo_tags = summary.repo_tags;
    }
    Ok(raw)
}

/// Analyses scanned layers into the report. `name` is what the user asked for.
pub fn analyze(name: &str, raw: RawImage, started: std::time::Instant) -> Xray {
    let RawImage {
        layers,
        config,
        repo_tags,
        mut warnings,
        source,
        id: image_id,
    } = raw;
    let scans: Vec<&scan::LayerScan> = layers.iter().map(|(_, s)| s).collect();
    let efficiency = dive::dive_stats(&scans);

    // Stack the layers: the final filesystem, per-layer changes, what later layers hid.
    let mut fs: BTreeMap<&str, Loc> = BTreeMap::new();
    let mut reports = Vec::with_capacity(layers.len());
    let mut shadowed = vec![0u64; layers.len()];
    let mut removed = Vec::new();
    let mut secrets = Vec::new();
    let mut seen_git: std::collections::HashSet<(usize, String)> = Default::default();
    let steps = config::history(&config);
    let mut step_iter = steps.iter().filter(|s| !s.empty_layer);
    for (li, (id, scan)) in layers.iter().enumerate() {
        let (mut added, mut modified, mut removed_count) = (0, 0, 0);
        for (ei, entry) in scan.entries.iter().enumerate() {
            let gone = match entry.kind {
                Kind::Whiteout | Kind::Opaque => {
                    let Some(target) = entry.whiteout_target() else {
                        continue;
                    };
                    hide(&mut fs, &target, entry.kind == Kind::Opaque, li)
                }
                _ => {
                    match fs.insert(&entry.path, (li, ei)) {
                        Some(old) if old.0 < li => {
                            let was = &layers[old.0].1.entries[old.1];
                            if entry.kind != Kind::Dir || was.kind != Kind::Dir {
                                modified += 1;
                                shadowed[old.0] += was.size;
                            }
                        }
                        Some(_) => {}
                        None if entry.kind != Kind::Dir => added += 1,
                        None => {}
                    }
                    if let Some(why) = findings::secret_reason(&entry.path) {
                        let path = findings::git_root(&entry.path).unwrap_or(&entry.path);
                        if seen_git.insert((li, path.to_string())) {
                            secrets.push(SecretFinding {
                                path: path.to_string(),
                                layer: li,
                                why,
                                removed_later: false,
                            });
                        }
                    }
                    Vec::new()
                }
            };
            for (path, loc) in gone {
                let was = &layers[loc.0].1.entries[loc.1];
                if was.kind == Kind::Dir {
                    continue;
                }
                removed_count += 1;
                shadowed[loc.0] += was.size;
                removed.push(RemovedFile {
                    path: path.to_string(),
                    size: was.size,
                    added_in: loc.0,
                    removed_in: li,
                    secret: findings::secret_reason(path),
                });
            }
        }
        let instruction = step_iter
            .next()
            .map(|s| s.instruction.clone())
            .unwrap_or_else(|| "(missing)".into());
        reports.push(LayerReport {
            index: li,
            id: id.clone(),
            instruction,
            size_bytes: scan.content_bytes,
            entries: scan.entries.len(),
            files_added: added,
            files_modified: modified,
            files_removed: removed_count,
            bytes_shadowed_later: 0,
        });
    }
    for (report, bytes) in reports.iter_mut().zip(shadowed) {
        report.bytes_shadowed_later = bytes;
    }
    // A secret whose path is gone from the final filesystem was removed by a later layer.
    for secret in &mut secrets {
        let still = fs
            .range::<str, _>((
                std::ops::Bound::Included(secret.path.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(p, _)| p.starts_with(secret.path.as_str()));
        secret.removed_later = !still;
    }
    let removed_but_shipped_bytes = removed.iter().map(|r| r.size).sum();
    removed.sort_by(|a, b| {
        b.secret
            .is_some()
            .cmp(&a.secret.is_some())
            .then(b.size.cmp(&a.size))
            .then_with(|| a.path.cmp(&b.path))
    });
    removed.truncate(TOP_N.max(removed.iter().filter(|r| r.secret.is_some()).count()));

    let entry = |loc: &Loc| -> &RawEntry { &layers[loc.0].1.entries[loc.1] };
    let (mut final_files, mut final_dirs, mut final_bytes) = (0usize, 0usize, 0u64);
    let mut dir_sizes: HashMap<&str, u64> = HashMap::new();
    let mut files: Vec<(&str, u64)> = Vec::new();
    let mut dupes: HashMap<(u64, u64), Vec<&str>> = HashMap::new();
    // Per category: files, bytes, members.
    type CategoryTally<'a> = (usize, u64, Vec<(&'a str, u64)>);
    let mut cats: Vec<CategoryTally> = vec![(0, 0, Vec::new()); findings::CATEGORIES.len()];
    let mut special = Vec::new();
    let mut attack_surface = crate::surface::Surface::default();
    for (path, loc) in &fs {
        let e = entry(loc);
        crate::surface::add(
            &mut attack_surface,
            &crate::surface::Item {
                path,
                runnable: matches!(e.kind, Kind::File | Kind::Symlink | Kind::Hardlink),
                regular: matches!(e.kind, Kind::File | Kind::Hardlink),
                dir: e.kind == Kind::Dir,
                mode: e.mode,
                capability: e.capability,
            },
        );
        if e.kind == Kind::Dir {
            final_dirs += 1;
            dir_sizes.entry(path).or_insert(0);
            continue;
        }
        final_files += 1;
        final_bytes += e.size;
        files.push((path, e.size));
        let mut dir = *path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            let key = if parent.is_empty() { "/" } else { parent };
            *dir_sizes.entry(key).or_insert(0) += e.size;
            if parent.is_empty() {
                break;
            }
            dir = parent;
        }
        if let (Kind::File, Some(hash)) = (e.kind, e.hash) {
            dupes.entry((e.size, hash)).or_default().push(path);
        }
        if let Some(c) = findings::category(path) {
            cats[c].0 += 1;
            cats[c].1 += e.size;
            cats[c].2.push((path, e.size));
        }
        if e.is_setuid_or_setgid() {
            special.push(SpecialFile {
                path: path.to_string(),
                size: e.size,
                mode: format!("{:o}", e.mode & 0o7777),
            });
        }
    }
    let top = |mut v: Vec<(&str, u64)>, n: usize| -> Vec<PathSize> {
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(p, s)| PathSize {
                path: p.to_string(),
                size: s,
            })
            .collect()
    };
    let treemap = treemap(&dir_sizes, &files);
    let biggest_dirs = top(
        dir_sizes
            .iter()
            .filter(|(p, _)| **p != "/")
            .map(|(p, s)| (*p, *s))
            .collect(),
        TOP_N,
    );
    let biggest_files = top(files, TOP_N);
    let mut duplicates: Vec<DuplicateGroup> = dupes
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|((size, _), mut paths)| {
            paths.sort();
            DuplicateGroup {
                size,
                wasted: size * (paths.len() as u64 - 1),
                paths: paths.into_iter().map(str::to_string).collect(),
            }
        })
        .collect();
    duplicates.sort_by(|a, b| b.wasted.cmp(&a.wasted).then_with(|| a.paths.cmp(&b.paths)));
    let duplicate_wasted_bytes = duplicates.iter().map(|d| d.wasted).sum();
    duplicates.truncate(TOP_N);
    let runtime_extras = findings::CATEGORIES
        .iter()
        .zip(cats)
        .filter(|(_, (n, _, _))| *n > 0)
        .map(|((name, description), (n, bytes, members))| Category {
            name,
            description,
            files: n,
            bytes,
            examples: top(members, 5),
        })
        .collect();
    special.sort_by(|a, b| a.path.cmp(&b.path));

    if layers.is_empty() {
        warnings.push("the image has no layers".into());
    }
    let summary = config::summarize(&config);
    Xray {
        minify_version: env!("CARGO_PKG_VERSION").to_string(),
        image: ImageInfo {
            name: name.to_string(),
            id: image_id,
            repo_tags,
            source,
            size_bytes: efficiency.size_bytes,
            final_files,
            final_dirs,
            final_bytes,
        },
        layers: reports,
        efficiency,
        biggest_files,
        biggest_dirs,
        duplicates,
        duplicate_wasted_bytes,
        removed_but_shipped: removed,
        removed_but_shipped_bytes,
        secrets,
        runtime_extras,
        setuid_setgid: special,
        attack_surface,
        dockerfile: config::dockerfile(&steps),
        config: summary,
        treemap,
        warnings,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Removes what a whiteout (`keep_self` false) or an opaque marker (`keep_self` true) at
/// `prefix` hides from layers below `layer`; returns the removed entries.
fn hide<'a>(
    fs: &mut BTreeMap<&'a str, Loc>,
    prefix: &str,
    keep_self: bool,
    layer: usize,
) -> Vec<(&'a str, Loc)> {
    let mut gone = Vec::new();
    let children = format!("{}/", prefix.trim_end_matches('/'));
    if !keep_self && fs.contains_key(prefix) {
        gone.push(prefix.to_string());
    }
    for (path, loc) in fs.range::<str, _>((
        std::ops::Bound::Included(children.as_str()),
        std::ops::Bound::Unbounded,
    )) {
        if !path.starts_with(&children) {
            break;
        }
        if loc.0 < layer {
            gone.push((*path).to_string());
        }
    }
    gone.into_iter()
        .filter_map(|p| fs.remove_entry(p.as_str()))
        .collect()
}

/// The size tree of the final filesystem, a few levels deep, small entries folded together.
fn treemap(dir_sizes: &HashMap<&str, u64>, files: &[(&str, u64)]) -> TreeNode {
    const DEPTH: usize = 4;
    const WIDTH: usize = 24;
    let mut children: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
    for (path, size) in dir_sizes
        .iter()
        .map(|(p, s)| (*p, *s))
        .chain(files.iter().copied())
    {
        if path == "/" {
            continue;
        }
        let parent = match path.rsplit_once('/') {
            Some(("", _)) => "/",
            Some((parent, _)) => parent,
            None => continue,
        };
        if parent.matches('/').count() < DEPTH || parent == "/" {
            children.entry(parent).or_default().push((path, size));
        }
    }
    fn build(
        path: &str,
        size: u64,
        depth: usize,
        children: &HashMap<&str, Vec<(&str, u64)>>,
    ) -> TreeNode {
        let name = path
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("/");
        let mut node = TreeNode {
            name: name.to_string(),
            size,
            children: Vec::new(),
        };
        if depth >= DEPTH {
            return node;
        }
        if let Some(kids) = children.get(path) {
            let mut kids: Vec<(&str, u64)> = kids.iter().filter(|k| k.1 > 0).copied().collect();
            kids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let rest: u64 = kids.iter().skip(WIDTH).map(|k| k.1).sum();
            for (child, size) in kids.into_iter().take(WIDTH) {
                node.children.push(build(child, size, depth + 1, children));
            }
            if rest > 0 {
                node.children.push(TreeNode {
                    name: "(other)".into(),
                    size: rest,
                    children: Vec::new(),
                });
            }
        }
        node
    }
    build("/", dir_sizes.get("/").copied().unwrap_or(0), 0, &children)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::layer_tar;

    #[test]
    fn end_to_end_on_a_synthetic_archive() {
        use tar::EntryType as T;
        let blob = vec![9u8; 4096];
        let base = layer_tar(&[
            ("bin/", T::Directory, b"", 0o755),
            ("bin/bash", T::Regular, &[1u8; 3000], 0o755),
            ("bin/su", T::Regular, b"su", 0o4755),
            ("app/", T::Directory, b"", 0o755),
            ("app/.env", T::Regular, b"TOKEN=x", 0o600),
            ("app/a.bin", T::Regular, &blob, 0o644),
            ("app/b.bin", T::Regular, &blob, 0o644),
            ("usr/share/doc/x/README", T::Regular, &[2u8; 1500], 0o644),
        ]);
        let top = layer_tar(&[
            ("app/", T::Directory, b"", 0o755),
            ("app/.wh..env", T::Regular, b"", 0o644),
            ("app/a.bin", T::Regular, &[3u8; 100], 0o644),
        ]);
        let config = serde_json::json!({
            "config": {"User": "", "Cmd": ["/app/run"], "Env": ["API_TOKEN=abc"]},
            "history": [
                {"created_by": "/bin/sh -c #(nop) ADD file:1 in / "},
                {"created_by": "/bin/sh -c #(nop)  CMD [\"/app/run\"]", "empty_layer": true},
                {"created_by": "/bin/sh -c rm /app/.env"}
            ],
            "rootfs": {"diff_ids": ["sha256:0", "sha256:1"]}
        });
        let archive = crate::testkit::DockerArchive::of(&[base, top], &config, "t/x:1");
        let raw =
            source::read_archive(&archive[..], HashPolicy::AtLeast(DUPLICATE_MIN_BYTES)).unwrap();
        let x = analyze("t/x:1", raw, std::time::Instant::now());
        assert_eq!(x.layers.len(), 2);
        assert_eq!(x.layers[1].instruction, "RUN rm /app/.env");
        assert_eq!(
            (
                x.layers[1].files_added,
                x.layers[1].files_modified,
                x.layers[1].files_removed
            ),
            (0, 1, 1)
        );
        assert_eq!(x.layers[0].bytes_shadowed_later, 4096 + 7);
        let secret = &x.removed_but_shipped[0];
        assert_eq!(
            (secret.path.as_str(), secret.secret),
            ("/app/.env", Some("dotenv file"))
        );
        assert!(x.secrets[0].removed_later);
        // a.bin was replaced, so only b.bin keeps the 4096-byte content: no duplicate left.
        assert!(x.duplicates.is_empty(), "{:?}", x.duplicates);
        assert_eq!(x.biggest_files[0].path, "/app/b.bin");
        let names: Vec<_> = x.runtime_extras.iter().map(|c| (c.name, c.bytes)).collect();
        assert_eq!(names, vec![("shells", 3000), ("docs", 1500)]);
        assert_eq!(x.setuid_setgid[0].path, "/bin/su");
        assert!(x.config.runs_as_root);
        assert_eq!(x.config.masked_env, vec!["API_TOKEN"]);
        assert!(x
            .dockerfile
            .contains("FROM scratch\nADD file:1 in /\nCMD [\"/app/run\"]\n"));
        assert_eq!(x.treemap.children[0].name, "app");
        assert_eq!(x.image.final_bytes, 3000 + 2 + 4096 + 100 + 1500);
    }
}
