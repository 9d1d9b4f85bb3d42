//! [`ImageFs`]: a spooled image together with its flattened index, readable path by path without
//! unpacking anything — content is read straight from the layer tars at the recorded offsets.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use crate::image::archive::SpooledImage;
use crate::image::flatten::{flatten_with_warnings, FlattenWarning};
use crate::image::view::ImageView;
use crate::image::{Entry, EntryKind, FsIndex};
use crate::Result;

/// A flattened, spooled image. Dropping it deletes the spooled layers.
#[derive(Debug)]
pub struct ImageFs {
    pub index: FsIndex,
    pub image: SpooledImage,
}

impl ImageFs {
    /// Flattens `image`; warnings are returned for the caller to report.
    pub fn new(image: SpooledImage) -> Result<(Self, Vec<FlattenWarning>)> {
        let (index, warnings) = flatten_with_warnings(&image.layers)?;
        Ok((ImageFs { index, image }, warnings))
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
        let layer = self.image.layers.get(content.layer).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: layer {} is not spooled", entry.path, content.layer),
            )
        })?;
        let mut file = File::open(layer)?;
        file.seek(SeekFrom::Start(content.offset))?;
        Ok(ContentReader {
            inner: file.take(entry.size),
            remaining: entry.size,
            path: entry.path.clone(),
        })
    }
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
mod tests {
    use super::*;
    use crate::image::flatten::tests::{write_layers, LayerBuilder};

    pub(crate) fn image_fs(layers: Vec<Vec<u8>>) -> ImageFs {
        let (dir, paths) = write_layers(layers);
        let image = SpooledImage::from_parts(dir, paths, serde_json::json!({}), vec![]);
        ImageFs::new(image).unwrap().0
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
