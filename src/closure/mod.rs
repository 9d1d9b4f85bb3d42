//! The kept set: from the traced paths to everything the app needs to run, each with why.
//!
//! Traced paths are resolved in the image the way the kernel would ([`resolve`]: every directory on
//! the way and every symlink hop kept), ELF files pull in their interpreter and the libraries ld.so
//! would load ([`elf`], [`ldcache`]), scripts pull in their `#!` interpreter, and the files the
//! runtime itself reads are added.

pub mod elf;
pub mod ldcache;
pub mod resolve;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::image::Entry;

/// Read access to an image's flattened filesystem; a fake in tests, the spooled image in production.
pub trait ImageView {
    /// The entry at an absolute, normalised path (no symlink following).
    fn entry(&self, path: &str) -> Option<&Entry>;
    /// Up to `limit` bytes of a regular file's content (hard links followed).
    fn read(&self, path: &str, limit: usize) -> std::io::Result<Vec<u8>>;
}

/// Why a path is in the slim image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Reason {
    /// The app touched it (sensor event kinds).
    Traced { kinds: Vec<crate::sense::AccessKind> },
    /// A directory on the way to a kept path.
    ParentDir,
    /// A symlink followed while resolving `of`.
    SymlinkHop { of: String },
    /// The ELF interpreter (PT_INTERP) of `of`.
    ElfInterpreter { of: String },
    /// A DT_NEEDED library of `of`.
    ElfNeeded { of: String, soname: String },
    /// The `#!` interpreter of script `of`.
    Shebang { of: String },
    /// The target of a kept hard link.
    HardlinkTarget { of: String },
    /// Read by the container runtime or libc itself (e.g. /etc/passwd).
    Runtime { note: String },
    /// Kept by a user rule (flag or probe file).
    Rule { rule: String },
}

/// The paths to keep, each with every reason found for it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeptSet {
    pub paths: BTreeMap<String, Vec<Reason>>,
}

impl KeptSet {
    /// Records `reason` for `path`; returns true when the path is new.
    pub fn add(&mut self, path: &str, reason: Reason) -> bool {
        match self.paths.get_mut(path) {
            Some(reasons) => {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
                false
            }
            None => {
                self.paths.insert(path.to_string(), vec![reason]);
                true
            }
        }
    }

    pub fn contains(&self, path: &str) -> bool {
        self.paths.contains_key(path)
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}
