//! [`ImageFs`]: an image's layers together with their flattened index, readable path by path
//! without unpacking anything. Content is read straight from where the layer lives: a spooled
//! layer tar at the offset flattening recorded, or a file of the daemon's layer store.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::image::archive::SpooledImage;
use crate::image::flatten::{flatten_layers, FlattenWarning, Layer};
use crate::image::layerstore::StoredImage;
use crate::image::view::ImageView;
use crate::image::{Entry, EntryKind, FsIndex};
use crate::Result;

/// A flattened image. Dropping it deletes the spooled layers, if any.
#[derive(Debug)]
pub struct ImageFs {
    pub index: FsIndex,
    /// The layers, bottom first; [`crate::image::ContentRef::layer`] indexes this.
    pub layers: Vec<Layer>,
    /// The raw image config JSON as docker stores it.
    pub config: Value,
    pub repo_tags: Vec<String>,
    /// How the layers were read, for the report (`docker save`, `daemon layer store …`).
    pub source: String,
    /// Holds the temp dir of a `docker save` spool for as long as the image is read.
    _spool: Option<SpooledImage>,
}

impl ImageFs {
    /// Flattens a spooled `docker save`; warnings are returned for the caller to report.
    pub fn new(image: SpooledImage) -> Result<(Self, Vec<FlattenWarning>)> {
        let layers: Vec<Layer> = image.layers.iter().cloned().map(Layer::Tar).collect();
        let (index, warnings) = flatten_layers(&layers)?;
        let fs = ImageFs {
            index,
            layers,
            config: image.config.clone(),
            repo_tags: image.repo_tags.clone(),
            source: "docker save".into(),
            _spool: Some(image),
        };
        Ok((fs, warnings))
    }

    /// Flattens an image of the local layer store, whose layers' files are on disk; `None` when
    /// some layer's files are not (a storage driver other than overlay2).
    pub fn from_store(
        stored: StoredImage,
        repo_tags: Vec<String>,
    ) -> Result<Option<(Self, Vec<FlattenWarning>)>> {
        let description = stored.describe();
        let Some(layers) = stored
            .layers
            .into_iter()
            .map(|l| {
                // Canonical once here, so that each file's own check is one realpath.
                let files = std::fs::canonicalize(l.files?).ok()?;
                Some(Layer::Stored {
                    tar_split: l.tar_split,
                    files,
                })
            })
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let (index, warnings) = flatten_layers(&layers)?;
        let fs = ImageFs {
            index,
            layers,
            config: stored.config,
            repo_tags,
            source: description,
            _spool: None,
        };
        Ok(Some((fs, warnings)))
    }

    /// A reader over the full content of the regular file (or hard link) at `path`.
    pub fn open(&self, path: &str) -> io::Result<ContentReader> {
        let entry = self.index.get(path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{path}: not in the image"))
        })?;
        self.open_entry(entry)
    }

    /// A reader over the content of `entry`, which must be a regular file or a hard link.
    pub fn open_entry(&self, entry: &Entry) -> io::Result<ContentReader> {
        let content = match (&entry.kind, entry.content) {
            (EntryKind::File | EntryKind::Hardlink { .. }, Some(content)) => content,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a regular file", entry.path),
                ))
            }
        };
        let layer = self.layers.get(content.layer).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: layer {} is not read", entry.path, content.layer),
            )
        })?;
        let file = match layer {
            Layer::Tar(tar) => {
                let mut file = File::open(tar)?;
                file.seek(SeekFrom::Start(content.offset))?;
                file
            }
            Layer::Stored { files, .. } => {
                // The content lives at the path of the inode's first name in the layer that
                // wrote it: a hard link points at its final inode path, a file at itself.
                let inode_path = match &entry.kind {
                    EntryKind::Hardlink { target } => target.as_str(),
                    _ => entry.path.as_str(),
                };
                open_stored(files, inode_path, entry.size)?
            }
        };
        Ok(ContentReader {
            inner: file.take(entry.size),
            remaining: entry.size,
            path: entry.path.clone(),
        })
    }
}

/// Opens `path` (absolute, normalised) under a layer's files dir (canonical), refusing anything that is not
/// that very regular file of `size` bytes: no symlink along the way may lead out of the layer
/// (an absolute link would read the HOST's files into the slim image), and a size other than
/// the tar-split's says the store is not what the index was built from.
fn open_stored(files: &Path, path: &str, size: u64) -> io::Result<File> {
    let wanted: PathBuf = files.join(path.trim_start_matches('/'));
    let real = std::fs::canonicalize(&wanted)?;
    if real != wanted {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{path}: the layer store's copy goes through a symlink ({} -> {})",
                wanted.display(),
                real.display()
            ),
        ));
    }
    let file = File::open(&real)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{path}: the layer store holds {} bytes where the layer lists {size}",
                meta.len()
            ),
        ));
    }
    Ok(file)
}

/// Exactly `size` bytes of one file's content; a layer shorter than the index promised is an
/// error, never silently short content (a short file would corrupt the tar written from it).
#[derive(Debug)]
pub struct ContentReader {
    inner: io::Take<File>,
    remaining: u64,
    path: String,
}

impl ContentReader {
    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: layer ended {} bytes before the file's end",
                    self.path, self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl ImageView for ImageFs {
    fn entry(&self, path: &str) -> Option<&Entry> {
        self.index.get(path)
    }

    fn children(&self, dir: &str) -> Vec<&Entry> {
        crate::image::view::children_in(&self.index.entries, dir)
    }

    fn read(&self, path: &str, limit: usize) -> io::Result<Vec<u8>> {
        let reader = self.open(path)?;
        let wanted = reader.remaining().min(limit as u64);
        let mut out = Vec::with_capacity(wanted as usize);
        reader.take(wanted).read_to_end(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testkit::write_layers;
    use crate::testkit::LayerBuilder;

    pub(crate) fn image_fs(layers: Vec<Vec<u8>>) -> ImageFs {
        let (dir, paths) = write_layers(layers);
        let image = SpooledImage::from_parts(dir, paths, serde_json::json!({}), vec![]);
        ImageFs::new(image).unwrap().0
    }

    /// The same layers read through `docker save` and from the layer store.
    fn both_ways(layers: Vec<Vec<u8>>) -> (ImageFs, ImageFs, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let id = crate::image::layerstore::tests::store_image(root.path(), &layers);
        let stored = crate::image::layerstore::locate(root.path(), &id).unwrap();
        let from_store = ImageFs::from_store(stored, vec![]).unwrap().unwrap().0;
        (image_fs(layers), from_store, root)
    }

    #[test]
    fn the_layer_store_gives_the_same_index_and_contents_as_docker_save() {
        let (saved, stored, _root) = both_ways(vec![
            LayerBuilder::new()
                .dir("etc")
                .file("etc/os", b"debian")
                .dir("gone")
                .file("gone/x", b"x")
                .dir("opaque")
                .file("opaque/old", b"old")
                .file("big", &[7u8; 100_000])
                .file("empty", b"")
                .symlink("link", "/etc/os")
                .bytes(),
            LayerBuilder::new()
                .file(".wh.gone", b"")
                .file("opaque/.wh..wh..opq", b"")
                .file("opaque/new", b"new")
                .file("etc/os", b"trixie")
                .hardlink("etc/os2", "etc/os")
                .bytes(),
        ]);
        assert_eq!(saved.index.entries, stored.index.entries);
        assert!(stored.index.get("/gone/x").is_none());
        assert!(stored.index.get("/opaque/old").is_none());
        for entry in saved.index.iter() {
            if matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. }) {
                let want = saved.read(&entry.path, usize::MAX).unwrap();
                assert_eq!(
                    stored.read(&entry.path, usize::MAX).unwrap(),
                    want,
                    "{}",
                    entry.path
                );
            }
        }
        assert_eq!(stored.read("/etc/os2", 100).unwrap(), b"trixie");
        assert!(stored.source.starts_with("daemon layer store"));
        assert_eq!(saved.source, "docker save");
    }

    #[test]
    fn a_layer_store_file_reached_through_a_symlink_is_refused() {
        let (_saved, stored, root) = both_ways(vec![LayerBuilder::new()
            .dir("etc")
            .file("etc/hostname", b"slim")
            .bytes()]);
        // A layer dir replaced by a link to the host's /etc: its files must not be read.
        let Layer::Stored { files, .. } = &stored.layers[0] else {
            panic!("not a stored layer");
        };
        std::fs::remove_dir_all(files.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", files.join("etc")).unwrap();
        let err = stored.read("/etc/hostname", 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        drop(root);
    }

    #[test]
    fn a_layer_store_file_of_another_size_is_refused() {
        let (_saved, stored, _root) =
            both_ways(vec![LayerBuilder::new().file("f", b"four").bytes()]);
        let Layer::Stored { files, .. } = &stored.layers[0] else {
            panic!("not a stored layer");
        };
        std::fs::write(files.join("f"), b"changed").unwrap();
        let err = stored.read("/f", 100).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds 7 bytes where the layer lists 4"),
            "{err}"
        );
    }

    #[test]
    fn read_follows_hardlinks_and_honours_the_limit() {
        let fs = image_fs(vec![
            LayerBuilder::new()
                .file("a", b"hello world")
                .hardlink("b", "a")
                .symlink("c", "a")
                .bytes(),
            LayerBuilder::new().file(".wh.a", b"").bytes(),
        ]);
        assert_eq!(fs.read("/b", 5).unwrap(), b"hello");
        assert_eq!(fs.read("/b", 100).unwrap(), b"hello world");
        assert_eq!(
            fs.read("/a", 5).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.read("/c", 5).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(fs.entry("/c").is_some());
    }
}
