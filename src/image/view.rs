//! [`ImageView`]: read access to an image's flattened filesystem, path by path. The spooled
//! image ([`crate::image::ImageFs`]) implements it in production, an in-memory fake in tests;
//! the closure ([`crate::closure`]) only ever reads an image through it.

use std::collections::BTreeMap;

use crate::image::Entry;

/// Read access to an image's flattened filesystem; a fake in tests, the spooled image in production.
pub trait ImageView {
    /// The entry at an absolute, normalised path (no symlink following).
    fn entry(&self, path: &str) -> Option<&Entry>;
    /// Up to `limit` bytes of a regular file's content (hard links followed).
    fn read(&self, path: &str, limit: usize) -> std::io::Result<Vec<u8>>;
    /// The entries directly inside directory `dir` (absolute, normalised; no symlink
    /// following), in path order. Empty when `dir` is not a directory of the image.
    fn children(&self, dir: &str) -> Vec<&Entry>;
}

/// [`ImageView::children`] over a path-ordered map of entries (the index and the fake share it).
pub(crate) fn children_in<'a>(entries: &'a BTreeMap<String, Entry>, dir: &str) -> Vec<&'a Entry> {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    entries
        .range::<str, _>((
            std::ops::Bound::Excluded(prefix.as_str()),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(path, _)| path.starts_with(&prefix))
        .filter(|(path, _)| !path[prefix.len()..].contains('/'))
        .map(|(_, entry)| entry)
        .collect()
}
