//! An in-memory [`ImageView`] for tests: entries plus file contents, parents created on demand.

use std::collections::BTreeMap;

use crate::closure::resolve::parent_of;
use crate::closure::ImageView;
use crate::image::{Entry, EntryKind};

#[derive(Debug, Default, Clone)]
pub struct FakeImage {
    pub entries: BTreeMap<String, Entry>,
    pub contents: BTreeMap<String, Vec<u8>>,
}

impl FakeImage {
    pub fn new() -> Self {
        let mut image = Self::default();
        image.insert("/", EntryKind::Dir, 0o755, 0);
        image
    }

    fn insert(&mut self, path: &str, kind: EntryKind, mode: u32, size: u64) {
        if path != "/" {
            let parent = parent_of(path).to_string();
            if !self.entries.contains_key(&parent) {
                self.dir(&parent);
            }
        }
        self.entries.insert(
            path.to_string(),
            Entry {
                path: path.to_string(),
                kind,
                mode,
                uid: 0,
                gid: 0,
                mtime: 0,
                size,
                xattrs: Vec::new(),
                content: None,
                layer: 0,
            },
        );
    }

    pub fn dir(&mut self, path: &str) {
        self.insert(path, EntryKind::Dir, 0o755, 0);
    }

    pub fn file(&mut self, path: &str, content: &[u8]) {
        self.file_with_mode(path, content, 0o644);
    }

    pub fn executable(&mut self, path: &str, content: &[u8]) {
        self.file_with_mode(path, content, 0o755);
    }

    pub fn file_with_mode(&mut self, path: &str, content: &[u8], mode: u32) {
        self.insert(path, EntryKind::File, mode, content.len() as u64);
        self.contents.insert(path.to_string(), content.to_vec());
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.insert(
            path,
            EntryKind::Symlink {
                target: target.to_string(),
            },
            0o777,
            0,
        );
    }

    pub fn hardlink(&mut self, path: &str, target: &str) {
        let mode = self.entries.get(target).map_or(0o644, |e| e.mode);
        self.insert(
            path,
            EntryKind::Hardlink {
                target: target.to_string(),
            },
            mode,
            0,
        );
    }
}

impl ImageView for FakeImage {
    fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    fn children(&self, dir: &str) -> Vec<&Entry> {
        crate::image::view::children_in(&self.entries, dir)
    }

    fn read(&self, path: &str, limit: usize) -> std::io::Result<Vec<u8>> {
        let mut path = path;
        for _ in 0..8 {
            match self.entries.get(path).map(|e| &e.kind) {
                Some(EntryKind::Hardlink { target }) => path = target,
                Some(EntryKind::File) => {
                    let content = self.contents.get(path).map_or(&[][..], Vec::as_slice);
                    return Ok(content[..content.len().min(limit)].to_vec());
                }
                _ => break,
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{path}: not a regular file in the fake image"),
        ))
    }
}
