//! Retaining: choosing which entries of a flattened image go into the slim layer, in an order a
//! tar extractor can apply (every directory before its contents, every hard-link target before
//! its links).

use std::collections::BTreeSet;

use crate::image::flatten::parent_path;
use crate::image::{Entry, EntryKind, FsIndex};

/// The entries whose path `keep` accepts, plus every ancestor directory of them (so that the
/// slim image keeps the original directory modes and owners instead of extractor defaults).
///
/// Order: parents before children; hard links after everything else so their targets exist
/// when they are extracted. A kept hard link whose target is not kept is still returned as a
/// hard link entry: [`crate::image::sink::write_layer`] writes it as a regular file with the
/// shared content (see [`written_as_file`]).
pub fn retain<'a>(index: &'a FsIndex, keep: impl Fn(&str) -> bool) -> Vec<&'a Entry> {
    let mut chosen: BTreeSet<&'a str> = BTreeSet::new();
    for entry in index.iter() {
        if entry.path == "/" || !keep(&entry.path) {
            continue;
        }
        if !chosen.insert(entry.path.as_str()) {
            continue;
        }
        let mut ancestor = parent_path(&entry.path);
        while let Some(dir) = ancestor {
            if dir == "/" || !chosen.insert(dir) {
                break;
            }
            ancestor = parent_path(dir);
        }
    }
    // BTreeSet order already puts every path before its extensions, i.e. parents first.
    let (links, others): (Vec<&Entry>, Vec<&Entry>) = chosen
        .iter()
        .filter_map(|path| index.get(path))
        .partition(|entry| matches!(entry.kind, EntryKind::Hardlink { .. }));
    let mut ordered = others;
    ordered.extend(links);
    ordered
}

/// Whether `entry` must be written as a regular file: it is a hard link whose target is not
/// among `written_paths`, or whose target path now holds a different file (a later layer
/// replaced it), so a tar hard link would point at the wrong inode.
pub fn written_as_file(entry: &Entry, index: &FsIndex, written_paths: &BTreeSet<&str>) -> bool {
    let EntryKind::Hardlink { target } = &entry.kind else {
        return false;
    };
    if !written_paths.contains(target.as_str()) {
        return true;
    }
    match index.get(target) {
        Some(target_entry) => {
            target_entry.kind != EntryKind::File || target_entry.content != entry.content
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.to_string(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            xattrs: Vec::new(),
            content: None,
            layer: 0,
        }
    }

    fn index(entries: Vec<Entry>) -> FsIndex {
        FsIndex {
            entries: entries
                .into_iter()
                .map(|e| (e.path.clone(), e))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn keeps_ancestors_orders_parents_first_and_links_last() {
        let index = index(vec![
            entry("/", EntryKind::Dir),
            entry("/a", EntryKind::Dir),
            entry(
                "/a/link",
                EntryKind::Hardlink {
                    target: "/z/file".into(),
                },
            ),
            entry("/a-b", EntryKind::File),
            entry("/z", EntryKind::Dir),
            entry("/z/file", EntryKind::File),
            entry("/z/other", EntryKind::File),
        ]);
        let kept = retain(&index, |p| p == "/a/link" || p == "/z/file" || p == "/a-b");
        let paths: Vec<&str> = kept.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/a", "/a-b", "/z", "/z/file", "/a/link"]);
    }

    #[test]
    fn hardlink_without_kept_target_is_flagged_as_file() {
        let index = index(vec![
            entry("/bin", EntryKind::Dir),
            entry("/bin/real", EntryKind::File),
            entry(
                "/bin/link",
                EntryKind::Hardlink {
                    target: "/bin/real".into(),
                },
            ),
        ]);
        let kept = retain(&index, |p| p == "/bin/link");
        let written: BTreeSet<&str> = kept.iter().map(|e| e.path.as_str()).collect();
        let link = kept.iter().find(|e| e.path == "/bin/link").unwrap();
        assert!(written_as_file(link, &index, &written));
    }
}
