//! Sinks: writing the slim image. [`write_layer`] streams the retained entries into one layer tar
//! (content copied straight from the spooled layers, hashed on the way); [`write_docker_archive`]
//! wraps that layer and a config into a docker-archive that `docker load` (Docker 20.10) accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::image::archive::sha256_prefixed;
use crate::image::fs::ImageFs;
use crate::image::retain::written_as_file;
use crate::image::{Entry, EntryKind};
use crate::{Error, Result};

const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";
/// Largest values the ustar octal fields hold; beyond them the value goes into a PAX record.
const USTAR_MAX_ID: u64 = 0o7777777;
const USTAR_MAX_SIZE: u64 = 0o77777777777;

/// The written layer: its uncompressed digest (what configs call a diff_id) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the layer tar.
    pub diff_id: String,
    pub size: u64,
}

/// Passes bytes through while hashing and counting them.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `entries` of `fs` as one layer tar to `out`, with full metadata: modes incl.
/// setuid/setgid/sticky, numeric owners, mtimes, xattrs (PAX `SCHILY.xattr.*`), devices, fifos,
/// symlinks and hard links; long names go into PAX records.
///
/// Hard links are written after all other entries so their targets exist on extraction; a hard
/// link whose target is not written (or was replaced) becomes a regular file with its content.
/// The root entry `/` is skipped (the runtime owns the root's metadata).
pub fn write_layer(fs: &ImageFs, entries: &[&Entry], out: impl Write) -> Result<LayerInfo> {
    write_layer_with(fs, entries, &BTreeMap::new(), out)
}

/// [`write_layer`], with the content of the regular files named in `replaced` taken from there
/// instead of the image (the entry's metadata stays): how the slim image gets a package
/// database that lists only what it holds.
pub fn write_layer_with(
    fs: &ImageFs,
    entries: &[&Entry],
    replaced: &BTreeMap<String, Vec<u8>>,
    out: impl Write,
) -> Result<LayerInfo> {
    let written_paths: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut builder = tar::Builder::new(HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        bytes: 0,
    });
    let mut seen = BTreeSet::new();
    let (links, others): (Vec<&Entry>, Vec<&Entry>) = entries.iter().partition(|entry| {
        matches!(entry.kind, EntryKind::Hardlink { .. })
            && !written_as_file(entry, &fs.index, &written_paths)
    });
    for entry in others.into_iter().chain(links) {
        if entry.path == "/" || !seen.insert(entry.path.as_str()) {
            continue;
        }
        let as_file = written_as_file(entry, &fs.index, &written_paths);
        let replacement = replaced
            .get(&entry.path)
            .filter(|_| entry.kind == EntryKind::File);
        append_entry(&mut builder, fs, entry, as_file, replacement).map_err(|source| {
            Error::Io {
                context: format!("writing {} into the slim layer", entry.path),
                source,
            }
        })?;
    }
    let writer = builder
        .into_inner()
        .map_err(Error::io("finishing the slim layer"))?;
    let HashingWriter {
        mut inner,
        hasher,
        bytes,
    } = writer;
    inner
        .flush()
        .map_err(Error::io("flushing the slim layer"))?;
    Ok(LayerInfo {
        diff_id: format!("sha256:{}", hex::encode(hasher.finalize())),
        size: bytes,
    })
}

/// Writes `entries` to a new layer tar file at `path` (contents replaced as in
/// [`write_layer_with`]).
pub fn write_layer_file(
    fs: &ImageFs,
    entries: &[&Entry],
    replaced: &BTreeMap<String, Vec<u8>>,
    path: &Path,
) -> Result<LayerInfo> {
    let file = File::create(path).map_err(Error::io(format!("creating {}", path.display())))?;
    write_layer_with(
        fs,
        entries,
        replaced,
        io::BufWriter::with_capacity(256 * 1024, file),
    )
}

fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    fs: &ImageFs,
    entry: &Entry,
    as_file: bool,
    replacement: Option<&Vec<u8>>,
) -> io::Result<()> {
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut header = tar::Header::new_ustar();
    let relative = entry.path.trim_start_matches('/');
    let name = if entry.kind == EntryKind::Dir {
        format!("{relative}/")
    } else {
        relative.to_string()
    };
    if header.set_path(&name).is_err() {
        pax.push(("path".into(), name.clone().into_bytes()));
        set_truncated(&mut header.as_old_mut().name, name.as_bytes());
    }
    header.set_mode(entry.mode & 0o7777);
    header.set_mtime(entry.mtime);
    for (key, id, set) in [
        (
            "uid",
            entry.uid,
            tar::Header::set_uid as fn(&mut tar::Header, u64),
        ),
        ("gid", entry.gid, tar::Header::set_gid),
    ] {
        if id > USTAR_MAX_ID {
            pax.push((key.into(), id.to_string().into_bytes()));
        }
        set(&mut header, id);
    }
    for (key, value) in &entry.xattrs {
        pax.push((format!("{XATTR_PAX_PREFIX}{key}"), value.clone()));
    }

    let mut size = 0;
    let mut link_name = None;
    let kind = if as_file {
        &EntryKind::File
    } else {
        &entry.kind
    };
    match kind {
        EntryKind::File => {
            header.set_entry_type(tar::EntryType::Regular);
            size = replacement.map_or(entry.size, |bytes| bytes.len() as u64);
        }
        EntryKind::Dir => header.set_entry_type(tar::EntryType::Directory),
        EntryKind::Symlink { target } => {
            header.set_entry_type(tar::EntryType::Symlink);
            link_name = Some(target.clone());
        }
        EntryKind::Hardlink { target } => {
            header.set_entry_type(tar::EntryType::Link);
            link_name = Some(target.trim_start_matches('/').to_string());
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            header.set_entry_type(if matches!(kind, EntryKind::CharDevice { .. }) {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            header.set_device_major(*major)?;
            header.set_device_minor(*minor)?;
        }
        EntryKind::Fifo => header.set_entry_type(tar::EntryType::Fifo),
    }
    if let Some(target) = &link_name {
        if header.set_link_name(target).is_err() {
            pax.push(("linkpath".into(), target.clone().into_bytes()));
            set_truncated(&mut header.as_old_mut().linkname, target.as_bytes());
        }
    }
    if size > USTAR_MAX_SIZE {
        pax.push(("size".into(), size.to_string().into_bytes()));
    }
    header.set_size(size);
    header.set_cksum();

    if !pax.is_empty() {
        builder.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    if let Some(bytes) = replacement {
        builder.append(&header, &bytes[..])
    } else if size > 0 {
        let mut reader = fs.open_entry(entry)?;
        builder.append(&header, &mut reader)
    } else {
        builder.append(&header, io::empty())
    }
}

/// Fills a fixed header field with as much of `value` as fits; readers take the real value from
/// the PAX record written before it.
fn set_truncated(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes a docker-archive (manifest.json, `<config sha>.json`, `<layer sha>/layer.tar`) holding
/// `layer_tar` and `config`, tagged `repo_tag` (none when empty), to `out`. Returns the image id
/// (`sha256:` of the config), which is what `docker load` will report.
///
/// `config`'s rootfs must list exactly `layer.diff_id`, or docker would refuse the load.
pub fn write_docker_archive(
    layer_tar: &Path,
    layer: &LayerInfo,
    config: &Value,
    repo_tag: &str,
    out: impl Write,
) -> Result<String> {
    let tags: Vec<String> = (!repo_tag.is_empty())
        .then(|| repo_tag.to_string())
        .into_iter()
        .collect();
    write_docker_archive_tagged(layer_tar, layer, config, &tags, out)
}

/// [`write_docker_archive`] naming the image by every tag in `repo_tags` (docker-slim's
/// repeatable `--tag`).
pub fn write_docker_archive_tagged(
    layer_tar: &Path,
    layer: &LayerInfo,
    config: &Value,
    repo_tags: &[String],
    out: impl Write,
) -> Result<String> {
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect::<Vec<_>>());
    if diff_ids.as_deref() != Some(&[layer.diff_id.as_str()][..]) {
        return Err(Error::Archive {
            context: "slim image config".into(),
            message: format!(
                "rootfs.diff_ids must be [{}], found {:?}",
                layer.diff_id,
                config.pointer("/rootfs/diff_ids")
            ),
        });
    }
    let layer_hex = layer
        .diff_id
        .strip_prefix("sha256:")
        .filter(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| Error::Archive {
            context: "slim layer".into(),
            message: format!("bad diff_id {:?}", layer.diff_id),
        })?;

    let config_bytes = serde_json::to_vec(config).map_err(Error::json("slim image config"))?;
    let image_id = sha256_prefixed(&config_bytes);
    let config_name = format!("{}.json", image_id.trim_start_matches("sha256:"));
    let layer_name = format!("{layer_hex}/layer.tar");
    let repo_tags: Value = if repo_tags.is_empty() {
        Value::Null
    } else {
        Value::Array(repo_tags.iter().cloned().map(Value::String).collect())
    };
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": repo_tags,
        "Layers": [layer_name],
    }]))
    .map_err(Error::json("slim image manifest"))?;

    let mut layer_file = File::open(layer_tar).map_err(Error::io(format!(
        "opening slim layer {}",
        layer_tar.display()
    )))?;
    let on_disk = layer_file
        .metadata()
        .map_err(Error::io(format!(
            "reading slim layer {}",
            layer_tar.display()
        )))?
        .len();
    if on_disk != layer.size {
        return Err(Error::Archive {
            context: format!("slim layer {}", layer_tar.display()),
            message: format!("{on_disk} bytes on disk, {} expected", layer.size),
        });
    }

    let context = "writing the slim docker-archive";
    let mut builder = tar::Builder::new(out);
    let mut append = |name: &str, size: u64, data: &mut dyn io::Read| -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(size);
        builder
            .append_data(&mut header, name, data)
            .map_err(Error::io(context))
    };
    append(
        &config_name,
        config_bytes.len() as u64,
        &mut config_bytes.as_slice(),
    )?;
    append(&layer_name, layer.size, &mut layer_file)?;
    append(
        "manifest.json",
        manifest.len() as u64,
        &mut manifest.as_slice(),
    )?;
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(Error::io(context))?;
    Ok(image_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::archive::{spool_docker_archive, SpooledImage};
    use crate::image::config::slim_config;
    use crate::image::flatten::flatten_with_warnings;
    use crate::image::retain::retain;
    use crate::image::view::ImageView;
    use crate::testkit::write_layers;
    use crate::testkit::LayerBuilder;
    use std::io::Read;

    use crate::image::fs::tests::image_fs;

    fn rich_image() -> ImageFs {
        let capability: &[u8] = &[1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0];
        let long_dir = "deep/".repeat(40);
        image_fs(vec![
            LayerBuilder::new()
                .dir("bin/")
                .file("bin/real", b"real content")
                .hardlink("bin/alias", "bin/real")
                .hardlink("bin/orphan", "bin/real")
                .file_with_xattrs(
                    "bin/ping",
                    b"\x7fELF ping",
                    &[("security.capability", capability)],
                )
                .symlink("bin/loop", "loop")
                .symlink("lib", "usr/lib")
                .device("dev/null", tar::EntryType::Char, 1, 3)
                .device("dev/loop0", tar::EntryType::Block, 7, 0)
                .device("run/fifo", tar::EntryType::Fifo, 0, 0)
                .file(&format!("{long_dir}file-with-a-long-name"), b"long")
                .symlink("long-link", &format!("/{long_dir}file-with-a-long-name"))
                .owned_file("home/nobody/data", b"big ids", 4_294_967_294, 3_000_000)
                .file("unwanted/big", &[9u8; 5000])
                .bytes(),
            LayerBuilder::new()
                .file("bin/.wh.orphan-never", b"")
                .bytes(),
        ])
    }

    fn reflatten(layer: &[u8]) -> (ImageFs, Vec<String>) {
        let (dir, paths) = write_layers(vec![layer.to_vec()]);
        let (_, warnings) = flatten_with_warnings(&paths).unwrap();
        let image = SpooledImage::from_parts(dir, paths, serde_json::json!({}), vec![]);
        let fs = ImageFs::new(image).unwrap().0;
        (fs, warnings.iter().map(ToString::to_string).collect())
    }

    /// The entry without what legitimately changes in a round trip (layer, content offsets).
    fn comparable(entry: &Entry) -> Entry {
        Entry {
            layer: 0,
            content: None,
            ..entry.clone()
        }
    }

    #[test]
    fn round_trip_keeps_metadata_and_contents() {
        let fs = rich_image();
        let kept = retain(&fs.index, |p| {
            !p.starts_with("/unwanted") && p != "/bin/orphan"
        });
        let mut layer = Vec::new();
        let info = write_layer(&fs, &kept, &mut layer).unwrap();
        assert_eq!(info.size, layer.len() as u64);
        assert_eq!(info.diff_id, sha256_prefixed(&layer));

        let (again, warnings) = reflatten(&layer);
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut expected: Vec<_> = kept.iter().map(|e| comparable(e)).collect();
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        let actual: Vec<_> = again
            .index
            .iter()
            .filter(|e| e.path != "/")
            .map(comparable)
            .collect();
        assert_eq!(actual, expected);
        for entry in again.index.iter().filter(|e| e.content.is_some()) {
            let original = fs.read(&entry.path, usize::MAX).unwrap();
            assert_eq!(
                again.read(&entry.path, usize::MAX).unwrap(),
                original,
                "{}",
                entry.path
            );
        }
    }

    #[test]
    fn hardlink_without_its_target_becomes_a_regular_file() {
        let fs = rich_image();
        let kept = retain(&fs.index, |p| p == "/bin/alias");
        let mut layer = Vec::new();
        write_layer(&fs, &kept, &mut layer).unwrap();
        let (again, _) = reflatten(&layer);
        let alias = again.index.get("/bin/alias").unwrap();
        assert_eq!(alias.kind, EntryKind::File);
        assert_eq!(again.read("/bin/alias", 100).unwrap(), b"real content");
    }

    #[test]
    fn docker_archive_spools_back_with_config_and_tag() {
        let fs = rich_image();
        let kept = retain(&fs.index, |p| p.starts_with("/bin"));
        let dir = tempfile::tempdir().unwrap();
        let layer_path = dir.path().join("layer.tar");
        let info = write_layer_file(&fs, &kept, &Default::default(), &layer_path).unwrap();
        let source = serde_json::json!({"architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/real"]}, "rootfs": {"type": "layers", "diff_ids": []}});
        let config = slim_config(&source, &info.diff_id, "test");
        let mut archive = Vec::new();
        let id =
            write_docker_archive(&layer_path, &info, &config, "slim:test", &mut archive).unwrap();

        let image = spool_docker_archive(archive.as_slice(), None).unwrap();
        assert_eq!(image.config_digest, id);
        assert_eq!(image.repo_tags, ["slim:test"]);
        assert_eq!(image.config["config"]["Cmd"][0], "/bin/real");
        let mut spooled = Vec::new();
        File::open(&image.layers[0])
            .unwrap()
            .read_to_end(&mut spooled)
            .unwrap();
        assert_eq!(sha256_prefixed(&spooled), info.diff_id);
    }

    #[test]
    fn docker_archive_refuses_a_config_for_another_layer() {
        let dir = tempfile::tempdir().unwrap();
        let layer_path = dir.path().join("layer.tar");
        std::fs::write(&layer_path, [0u8; 1024]).unwrap();
        let info = LayerInfo {
            diff_id: sha256_prefixed(&[0u8; 1024]),
            size: 1024,
        };
        let config = slim_config(&serde_json::json!({}), "sha256:other", "");
        let result = write_docker_archive(&layer_path, &info, &config, "", Vec::new());
        assert!(matches!(result, Err(Error::Archive { .. })));
    }

    /// A stable stand-in for a fuzz target of the reader that writes slim images: byte flips
    /// and cuts of a valid `docker save` archive (spool, flatten, keep all, write the layer) and
    /// of a layer store's tar-split replay must end in Ok or a typed error, never a panic.
    #[test]
    fn mutated_archives_and_tar_splits_never_panic_the_build_reader() {
        let layers = vec![
            LayerBuilder::new()
                .dir("d")
                .file("d/f", &[5u8; 1500])
                .hardlink("d/h", "d/f")
                .symlink("d/s", "/d/f")
                .bytes(),
            LayerBuilder::new()
                .file("d/.wh.f", b"")
                .file("d/.wh..wh..opq", b"")
                .file("d/g", b"g")
                .bytes(),
        ];
        let archive = crate::testkit::DockerArchive::of(&layers, &serde_json::json!({}), "t/x:1");
        let lines =
            crate::image::layerstore::tests::split_lines(&layers[0], &[("d/f", 1024, 1500)]);
        let work = tempfile::tempdir().unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let write_all = |fs: &ImageFs| {
            let entries = retain(&fs.index, |_| true);
            let _ = write_layer(fs, &entries, io::sink());
        };
        for round in 0..600 {
            let r = next();
            let mut bytes = archive.clone();
            let at = (r % bytes.len() as u64) as usize;
            bytes[at] ^= (r >> 32) as u8 | 1;
            if round % 3 == 0 {
                bytes.truncate(at);
            }
            if let Ok(image) = spool_docker_archive(&bytes[..], Some(work.path())) {
                if let Ok((fs, _)) = ImageFs::new(image) {
                    write_all(&fs);
                }
            }
            let r = next();
            let mut split = lines.clone().into_bytes();
            let at = (r % split.len() as u64) as usize;
            split[at] ^= (r >> 32) as u8 | 1;
            if round % 3 == 1 {
                split.truncate(at);
            }
            let mut replay = crate::image::layerstore::SplitReader::new(&split[..]);
            let _ = tar::Archive::new(&mut replay)
                .entries_with_seek()
                .map(|entries| entries.count());
        }
    }
}
