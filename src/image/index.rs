//! The flattened filesystem of an image: one [`Entry`] per path with its metadata and where its
//! bytes live in the spooled layers. Paths are absolute, normalised, without trailing slash
//! (`/`, `/usr/bin/env`).

use std::collections::BTreeMap;

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink {
        target: String,
    },
    /// A hard link to another path of the image (absolute, normalised).
    Hardlink {
        target: String,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// Where a regular file's bytes are: `size` bytes at `offset` of spooled layer number `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRef {
    pub layer: usize,
    pub offset: u64,
}

/// One path of the flattened image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits incl. setuid/setgid/sticky (no file-type bits).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Content size for regular files, 0 otherwise.
    pub size: u64,
    /// Extended attributes (PAX `SCHILY.xattr.*`), e.g. `security.capability`.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Location of the content for regular files.
    pub content: Option<ContentRef>,
    /// Index of the layer this entry last came from.
    pub layer: usize,
}

/// The flattened filesystem: path → entry, ordered so parents precede children.
#[derive(Debug, Default, Clone)]
pub struct FsIndex {
    pub entries: BTreeMap<String, Entry>,
}

impl FsIndex {
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Total bytes of regular-file content.
    pub fn content_bytes(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }
}
