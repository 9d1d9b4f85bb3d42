//! Flattening: applying an image's layer tars in order to one [`FsIndex`], the way docker's
//! overlay would show the filesystem. Only tar headers are read (content is skipped by seeking);
//! each regular file remembers where its bytes sit in its layer tar.
//!
//! Whiteouts follow the OCI/aufs convention: `.wh.<name>` deletes `<name>` and its subtree from
//! LOWER layers; `.wh..wh..opq` hides the lower-layer children of its directory but never entries
//! of its own layer, whatever order the tar lists them in. Both work without buffering a layer:
//! every entry remembers its layer, and deletions only touch entries of lower layers.

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use crate::image::layer::{decode, Decoded, Member, MemberKind};
use crate::image::{ContentRef, Entry, EntryKind, FsIndex};
use crate::{Error, Result};

/// Something in a layer that was skipped or repaired instead of failing the whole image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenWarning {
    pub layer: usize,
    /// The member path as the tar spelled it.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FlattenWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "layer {} entry {:?}: {}",
            self.layer, self.path, self.message
        )
    }
}

/// Normalises a tar member or image path to the index form: absolute, no `.`/`..` components,
/// no duplicate or trailing slashes. `None` when `..` would climb above the root.
pub fn normalize_path(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The parent of a normalised path (`None` for `/`).
pub fn parent_path(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// Flattens `layers` (bottom first); warnings are logged.
pub fn flatten(layers: &[PathBuf]) -> Result<FsIndex> {
    let (index, warnings) = flatten_with_warnings(layers)?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(index)
}

/// Flattens `layers` (bottom first) and returns what had to be skipped or repaired. The index
/// always holds `/` (a default 0755 root dir unless a layer lists `./`).
pub fn flatten_with_warnings(layers: &[PathBuf]) -> Result<(FsIndex, Vec<FlattenWarning>)> {
    let layers: Vec<Layer> = layers.iter().cloned().map(Layer::Tar).collect();
    flatten_layers(&layers)
}

/// Where one layer of an image is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// An uncompressed layer tar on disk (spooled from `docker save`): headers and contents,
    /// the latter read at the offsets flattening records.
    Tar(PathBuf),
    /// A layer of the local daemon's store ([`super::layerstore`]): headers replayed from its
    /// `tar-split.json.gz`, contents read from its `files` directory (overlay2 `diff`).
    Stored { tar_split: PathBuf, files: PathBuf },
}

/// Flattens `layers` (bottom first), tar files or layer-store layers alike: one whiteout and
/// opaque-dir logic for both. Returns what had to be skipped or repaired.
pub fn flatten_layers(layers: &[Layer]) -> Result<(FsIndex, Vec<FlattenWarning>)> {
    let mut flattener = Flattener::default();
    // The root always exists, so lookups and parent walks never special-case an empty image.
    flattener
        .index
        .entries
        .insert("/".to_string(), default_dir("/".to_string(), 0));
    for (index, layer) in layers.iter().enumerate() {
        match layer {
            Layer::Tar(path) => {
                let context = || format!("layer {index} ({})", path.display());
                let file = File::open(path).map_err(Error::io(context()))?;
                let len = file.metadata().map_err(Error::io(context()))?.len();
                let reader = BufReader::with_capacity(64 * 1024, file);
                flattener.apply_layer(index, reader, len, &context())?;
            }
            Layer::Stored { tar_split, .. } => {
                let context = || format!("layer {index} ({})", tar_split.display());
                let split =
                    super::layerstore::open_split(tar_split).map_err(Error::io(context()))?;
                // Contents come from the layer's files, never from the replay (whose bodies are
                // holes), so no declared size can be "past the end".
                flattener.apply_layer(index, split, u64::MAX, &context())?;
            }
        }
    }
    Ok((flattener.index, flattener.warnings))
}

#[derive(Default)]
struct Flattener {
    index: FsIndex,
    warnings: Vec<FlattenWarning>,
}

/// What one tar member does to the filesystem.
enum Change {
    Add(Entry),
    /// `.wh.<name>`: delete the path.
    Whiteout(String),
    /// `.wh..wh..opq`: hide the lower contents of the dir.
    Opaque(String),
    Skip,
}

impl Flattener {
    fn warn(&mut self, layer: usize, path: &str, message: impl Into<String>) {
        self.warnings.push(FlattenWarning {
            layer,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Applies one layer tar (`layer_len` bytes long, as far as anyone knows) to the index.
    fn apply_layer<R: std::io::Read + std::io::Seek>(
        &mut self,
        layer: usize,
        reader: R,
        layer_len: u64,
        context: &str,
    ) -> Result<()> {
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries_with_seek().map_err(Error::tar(context))?;
        for member in entries {
            let mut member = member.map_err(Error::tar(context))?;
            let change = self.read_member(layer, layer_len, &mut member);
            match change {
                Change::Add(entry) => self.add(entry),
                Change::Whiteout(path) => self.remove_lower(layer, &path, true),
                Change::Opaque(dir) => self.remove_lower(layer, &dir, false),
                Change::Skip => {}
            }
        }
        Ok(())
    }

    fn read_member<R: std::io::Read>(
        &mut self,
        layer: usize,
        layer_len: u64,
        member: &mut tar::Entry<'_, R>,
    ) -> Change {
        let member = match decode(member, layer_len) {
            Decoded::Member(member) => member,
            Decoded::Skipped { raw_path, why } => {
                self.warn(layer, &raw_path, why);
                return Change::Skip;
            }
            Decoded::Ignored => return Change::Skip,
        };
        let Member {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
            header_size: _,
        } = member;
        let mut entry = Entry {
            path: path.clone(),
            kind: EntryKind::File,
            mode,
            uid,
            gid,
            mtime,
            size: 0,
            xattrs,
            content: None,
            layer,
        };
        entry.kind = match kind {
            MemberKind::Whiteout { target } => return Change::Whiteout(target),
            MemberKind::Opaque { dir } => return Change::Opaque(dir),
            MemberKind::AufsMeta => return Change::Skip,
            MemberKind::File { size, offset } => {
                entry.size = size;
                entry.content = Some(ContentRef { layer, offset });
                EntryKind::File
            }
            MemberKind::Dir => EntryKind::Dir,
            MemberKind::Symlink { target } => EntryKind::Symlink { target },
            MemberKind::Hardlink { target } => return self.hardlink(entry, &target),
            MemberKind::CharDevice { major, minor } => EntryKind::CharDevice { major, minor },
            MemberKind::BlockDevice { major, minor } => EntryKind::BlockDevice { major, minor },
            MemberKind::Fifo => EntryKind::Fifo,
        };
        Change::Add(entry)
    }

    /// A hard link shares its target's inode: it takes the target's content and metadata, so that
    /// it stays readable even if the target is whited out by a later layer.
    fn hardlink(&mut self, mut entry: Entry, link_target: &str) -> Change {
        let layer = entry.layer;
        let raw_path = entry.path.clone();
        let raw_path = raw_path.as_str();
        let Some(target) = normalize_path(link_target) else {
            self.warn(
                layer,
                raw_path,
                "hard link target missing or climbs above the root; skipped",
            );
            return Change::Skip;
        };
        if target == entry.path {
            self.warn(layer, raw_path, "hard link to itself; skipped");
            return Change::Skip;
        }
        let Some(existing) = self.index.get(&target) else {
            self.warn(
                layer,
                raw_path,
                format!("hard link to {target}, which does not exist; skipped"),
            );
            return Change::Skip;
        };
        match &existing.kind {
            EntryKind::File | EntryKind::Hardlink { .. } => {
                // Link to the final inode, never to another link: chains would break when the
                // intermediate link is not kept.
                let inode_path = match &existing.kind {
                    EntryKind::Hardlink { target } => target.clone(),
                    _ => target,
                };
                entry.kind = EntryKind::Hardlink { target: inode_path };
                entry.size = existing.size;
                entry.content = existing.content;
                entry.mode = existing.mode;
                entry.uid = existing.uid;
                entry.gid = existing.gid;
                entry.mtime = existing.mtime;
                entry.xattrs = existing.xattrs.clone();
                Change::Add(entry)
            }
            EntryKind::Dir => {
                self.warn(
                    layer,
                    raw_path,
                    format!("hard link to directory {target}; skipped"),
                );
                Change::Skip
            }
            // Links to symlinks, devices and fifos: an independent copy is indistinguishable.
            _ => {
                let mut copy = existing.clone();
                copy.path = entry.path;
                copy.layer = layer;
                Change::Add(copy)
            }
        }
    }

    fn add(&mut self, entry: Entry) {
        let layer = entry.layer;
        self.ensure_parents(layer, &entry.path);
        if entry.kind != EntryKind::Dir {
            // A non-directory replaces a whole subtree (docker removes the old dir first).
            self.remove_descendants(&entry.path, |_| true);
        }
        self.index.entries.insert(entry.path.clone(), entry);
    }

    /// Makes every ancestor of `path` a directory: missing ones get a default entry, a
    /// non-directory in the way is replaced (with a warning) as docker's unpacker would fail or
    /// clobber it.
    fn ensure_parents(&mut self, layer: usize, path: &str) {
        let mut missing = Vec::new();
        let mut current = parent_path(path);
        while let Some(dir) = current {
            match self.index.get(dir) {
                Some(e) if e.kind == EntryKind::Dir => break,
                Some(_) => {
                    self.warn(
                        layer,
                        path,
                        format!("parent {dir} is not a directory; replaced by one"),
                    );
                    missing.push(dir.to_string());
                }
                None => missing.push(dir.to_string()),
            }
            current = parent_path(dir);
        }
        for dir in missing {
            self.index
                .entries
                .insert(dir.clone(), default_dir(dir, layer));
        }
    }

    /// Deletes lower-layer entries under `path` (and `path` itself when `including_self`).
    fn remove_lower(&mut self, layer: usize, path: &str, including_self: bool) {
        if including_self && path != "/" && self.index.get(path).is_some_and(|e| e.layer < layer) {
            self.index.entries.remove(path);
        }
        self.remove_descendants(path, |e| e.layer < layer);
        // A same-layer entry may sit under a lower-layer dir that was just removed (a layer that
        // omits its parent dir headers): give it its parents back.
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let survivors: Vec<String> = self
            .index
            .entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for survivor in survivors {
            self.ensure_parents(layer, &survivor);
        }
    }

    fn remove_descendants(&mut self, path: &str, should_remove: impl Fn(&Entry) -> bool) {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let doomed: Vec<String> = self
            .index
            .entries
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter(|(key, entry)| key.as_str() != "/" && should_remove(entry))
            .map(|(key, _)| key.clone())
            .collect();
        for key in doomed {
            self.index.entries.remove(&key);
        }
    }
}

/// The entry of a directory no layer described: root-owned 0755, as docker's unpacker makes it.
fn default_dir(path: String, layer: usize) -> Entry {
    Entry {
        path,
        kind: EntryKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        size: 0,
        xattrs: Vec::new(),
        content: None,
        layer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{write_layers, LayerBuilder};
    use std::io::Read;

    fn flatten_layers(
        layers: Vec<Vec<u8>>,
    ) -> (
        FsIndex,
        Vec<FlattenWarning>,
        Vec<PathBuf>,
        tempfile::TempDir,
    ) {
        let (dir, paths) = write_layers(layers);
        let (index, warnings) = flatten_with_warnings(&paths).unwrap();
        (index, warnings, paths, dir)
    }

    fn content(paths: &[PathBuf], entry: &Entry) -> Vec<u8> {
        use std::io::{Seek, SeekFrom};
        let content = entry.content.unwrap();
        let mut file = File::open(&paths[content.layer]).unwrap();
        file.seek(SeekFrom::Start(content.offset)).unwrap();
        let mut out = Vec::new();
        file.take(entry.size).read_to_end(&mut out).unwrap();
        out
    }

    fn keys(index: &FsIndex) -> Vec<&str> {
        index.entries.keys().map(String::as_str).collect()
    }

    #[test]
    fn normalize_path_handles_dots_slashes_and_escapes() {
        assert_eq!(normalize_path("./usr//bin/"), Some("/usr/bin".into()));
        assert_eq!(normalize_path("/a/./b/../c"), Some("/a/c".into()));
        assert_eq!(normalize_path("."), Some("/".into()));
        assert_eq!(normalize_path("../../etc/passwd"), None);
        assert_eq!(normalize_path("a/../../x"), None);
        assert_eq!(parent_path("/a/b"), Some("/a"));
        assert_eq!(parent_path("/a"), Some("/"));
        assert_eq!(parent_path("/"), None);
    }

    #[test]
    fn later_layers_override_and_content_points_into_the_right_layer() {
        let lower = LayerBuilder::new()
            .dir("etc/")
            .file("etc/a", b"old")
            .file("etc/b", b"bee")
            .bytes();
        let upper = LayerBuilder::new().file("etc/a", b"new!").bytes();
        let (index, warnings, paths, _dir) = flatten_layers(vec![lower, upper]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(keys(&index), ["/", "/etc", "/etc/a", "/etc/b"]);
        let a = index.get("/etc/a").unwrap();
        assert_eq!((a.layer, a.size), (1, 4));
        assert_eq!(content(&paths, a), b"new!");
        assert_eq!(content(&paths, index.get("/etc/b").unwrap()), b"bee");
    }

    #[test]
    fn implicit_parents_get_default_dirs() {
        let layer = LayerBuilder::new().file("usr/local/bin/tool", b"x").bytes();
        let (index, _, _, _dir) = flatten_layers(vec![layer]);
        let dir = index.get("/usr/local").unwrap();
        assert_eq!(
            (dir.kind.clone(), dir.mode, dir.uid),
            (EntryKind::Dir, 0o755, 0)
        );
    }

    #[test]
    fn whiteout_deletes_path_and_subtree_of_lower_layers() {
        let lower = LayerBuilder::new()
            .file("app/keep", b"k")
            .file("app/gone/deep/file", b"d")
            .file("app/gone2", b"g")
            .bytes();
        let upper = LayerBuilder::new()
            .file("app/.wh.gone", b"")
            .file("app/.wh.gone2", b"")
            .bytes();
        let (index, _, _, _dir) = flatten_layers(vec![lower, upper]);
        assert_eq!(keys(&index), ["/", "/app", "/app/keep"]);
    }

    #[test]
    fn opaque_dir_hides_lower_children_but_not_same_layer_ones_in_either_order() {
        let lower = LayerBuilder::new()
            .file("d/lower", b"l")
            .file("d/sub/lower2", b"l")
            .file("other", b"o")
            .bytes();
        let marker_first = LayerBuilder::new()
            .dir("d/")
            .file("d/.wh..wh..opq", b"")
            .file("d/upper", b"u")
            .bytes();
        let marker_last = LayerBuilder::new()
            .dir("d/")
            .file("d/upper", b"u")
            .file("d/.wh..wh..opq", b"")
            .bytes();
        for upper in [marker_first, marker_last] {
            let (index, _, _, _dir) = flatten_layers(vec![lower.clone(), upper]);
            assert_eq!(keys(&index), ["/", "/d", "/d/upper", "/other"]);
        }
    }

    #[test]
    fn whiteout_in_same_layer_does_not_delete_own_entries() {
        let layer = LayerBuilder::new()
            .file("x", b"1")
            .file(".wh.x", b"")
            .bytes();
        let (index, _, _, _dir) = flatten_layers(vec![layer]);
        assert!(index.get("/x").is_some());
    }

    #[test]
    fn hardlink_copies_content_and_survives_target_whiteout() {
        let lower = LayerBuilder::new()
            .file("bin/real", b"payload")
            .hardlink("bin/alias", "bin/real")
            .hardlink("bin/alias2", "./bin/alias")
            .bytes();
        let upper = LayerBuilder::new().file("bin/.wh.real", b"").bytes();
        let (index, warnings, paths, _dir) = flatten_layers(vec![lower, upper]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(index.get("/bin/real").is_none());
        for link in ["/bin/alias", "/bin/alias2"] {
            let entry = index.get(link).unwrap();
            assert_eq!(
                entry.kind,
                EntryKind::Hardlink {
                    target: "/bin/real".into()
                }
            );
            assert_eq!(entry.size, 7);
            assert_eq!(content(&paths, entry), b"payload");
        }
    }

    #[test]
    fn hardlink_to_missing_target_is_a_warning() {
        let layer = LayerBuilder::new().hardlink("a", "nowhere").bytes();
        let (index, warnings, _, _dir) = flatten_layers(vec![layer]);
        assert!(index.get("/a").is_none());
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn symlink_loops_and_absolute_targets_are_stored_as_is() {
        let layer = LayerBuilder::new()
            .symlink("loop1", "loop2")
            .symlink("loop2", "loop1")
            .symlink("abs", "/etc/../../../etc/passwd")
            .bytes();
        let (index, _, _, _dir) = flatten_layers(vec![layer]);
        assert_eq!(
            index.get("/loop1").unwrap().kind,
            EntryKind::Symlink {
                target: "loop2".into()
            }
        );
        assert_eq!(
            index.get("/abs").unwrap().kind,
            EntryKind::Symlink {
                target: "/etc/../../../etc/passwd".into()
            }
        );
    }

    #[test]
    fn xattrs_devices_and_modes_are_recorded() {
        let capability: &[u8] = &[
            1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let layer = LayerBuilder::new()
            .file_with_xattrs("bin/ping", b"elf", &[("security.capability", capability)])
            .device("dev/null", tar::EntryType::Char, 1, 3)
            .device("dev/sda", tar::EntryType::Block, 8, 0)
            .device("run/fifo", tar::EntryType::Fifo, 0, 0)
            .bytes();
        let (index, warnings, _, _dir) = flatten_layers(vec![layer]);
        assert!(warnings.is_empty(), "{warnings:?}");
        let ping = index.get("/bin/ping").unwrap();
        assert_eq!(
            ping.xattrs,
            vec![("security.capability".to_string(), capability.to_vec())]
        );
        assert_eq!(
            (ping.mode, ping.uid, ping.gid, ping.mtime),
            (0o4755, 1000, 1001, 1_700_000_000)
        );
        assert_eq!(
            index.get("/dev/null").unwrap().kind,
            EntryKind::CharDevice { major: 1, minor: 3 }
        );
        assert_eq!(
            index.get("/dev/sda").unwrap().kind,
            EntryKind::BlockDevice { major: 8, minor: 0 }
        );
        assert_eq!(index.get("/run/fifo").unwrap().kind, EntryKind::Fifo);
    }

    #[test]
    fn hostile_paths_are_skipped_with_warnings() {
        let layer = LayerBuilder::new()
            .raw_file(b"../../etc/passwd", b"root::0:0")
            .raw_file(b"/abs/olute", b"fine")
            .raw_file(b"a/../../escape", b"no")
            .bytes();
        let (index, warnings, _, _dir) = flatten_layers(vec![layer]);
        assert_eq!(keys(&index), ["/", "/abs", "/abs/olute"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn file_replacing_directory_drops_the_subtree() {
        let lower = LayerBuilder::new().file("thing/inside", b"i").bytes();
        let upper = LayerBuilder::new().file("thing", b"now a file").bytes();
        let (index, _, _, _dir) = flatten_layers(vec![lower, upper]);
        assert_eq!(keys(&index), ["/", "/thing"]);
    }

    #[test]
    fn huge_declared_size_is_a_warning_not_a_panic() {
        let mut bytes = LayerBuilder::new()
            .file("ok", b"fine")
            .file("big", &[0u8; 1024])
            .bytes();
        // Rewrite the second header's size to 8 GiB - 1 (octal field at offset 124).
        let header_at = 1024;
        bytes[header_at + 124..header_at + 136].copy_from_slice(b"77777777777\0");
        let header = tar::Header::from_byte_slice(&bytes[header_at..header_at + 512]).clone();
        let mut header = header;
        header.set_cksum();
        bytes[header_at..header_at + 512].copy_from_slice(header.as_bytes());
        let (index, warnings, _, _dir) = flatten_layers(vec![bytes]);
        assert!(index.get("/ok").is_some());
        assert!(index.get("/big").is_none());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn truncated_or_garbage_layers_are_errors() {
        let bytes = LayerBuilder::new()
            .file("a", &[1u8; 2000])
            .file("b", b"x")
            .bytes();
        for cut in [100, 600, 3000] {
            let (_dir, paths) = write_layers(vec![bytes[..cut].to_vec()]);
            let result = flatten_with_warnings(&paths);
            // A cut inside a header must fail; a cut inside content may only lose that entry.
            match result {
                Err(e) if e.is_malformed_archive() => {}
                Ok((_, warnings)) => assert!(!warnings.is_empty(), "cut {cut}"),
                Err(other) => panic!("cut {cut}: unexpected {other}"),
            }
        }
        let (_dir, paths) = write_layers(vec![vec![0x55; 1536]]);
        assert!(flatten_with_warnings(&paths).is_err_and(|e| e.is_malformed_archive()));
    }
}
