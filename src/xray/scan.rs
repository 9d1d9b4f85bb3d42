//! The per-layer scan: turns ONE layer tar (as a byte stream) into a compact list of
//! [`RawEntry`] records, never extracting anything and never holding file contents. Members are
//! decoded by the image core's one decoder ([`crate::image::layer::decode`], which `build`'s
//! flattener uses too); what is xray's own is dive's accounting (raw `.wh.` names, header
//! sizes) and content fingerprints. This is the
//! code the fuzz target exercises: hostile names (`..`, absolute paths), truncated members and
//! absurd header sizes end as [`Error::Archive`] or a warning, never a panic.

use std::io::{self, Read};

use crate::image::layer::{decode, Decoded, MemberKind};
use crate::{Error, Result};

/// What a layer entry is, with overlay whiteouts told apart from ordinary files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    /// Devices, fifos and other specials.
    Other,
    /// `.wh.NAME`: removes NAME (and everything under it) from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: hides everything the layers below had in this directory.
    Opaque,
}

/// One tar entry of a layer. `path` is normalised to `/a/b` (whiteouts keep their `.wh.` name so
/// that dive's accounting, which works on the raw names, can be replicated).
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub path: Box<str>,
    pub kind: Kind,
    /// Size from the tar header (0 for anything but regular files in docker layers).
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Link target of symlinks and hardlinks.
    pub link: Option<Box<str>>,
    /// Content fingerprint, when the hash policy asked for one (duplicate detection).
    pub hash: Option<u64>,
    /// Carries file capabilities (a `security.capability` xattr in its PAX header).
    pub capability: bool,
}

impl RawEntry {
    /// The path a whiteout removes (`/a/.wh.b` → `/a/b`), or the directory an opaque marker
    /// empties.
    pub fn whiteout_target(&self) -> Option<String> {
        let (dir, name) = self.path.rsplit_once('/')?;
        match self.kind {
            Kind::Whiteout => Some(format!("{dir}/{}", name.strip_prefix(".wh.")?)),
            Kind::Opaque => Some(if dir.is_empty() {
                "/".to_string()
            } else {
                dir.to_string()
            }),
            _ => None,
        }
    }

    pub fn is_setuid_or_setgid(&self) -> bool {
        self.kind == Kind::File && self.mode & 0o6000 != 0
    }
}

/// Which file contents to fingerprint while they stream past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashPolicy {
    /// Never read contents (they are skipped; a source may supply fingerprints itself).
    Skip,
    /// Hash regular files of at least this many bytes. A stream cannot be rewound, so whether a
    /// file has a same-size twin is unknown when it passes; tiny files are not worth reporting as
    /// duplicates, so they are never hashed.
    AtLeast(u64),
}

/// A scanned layer: its entries in tar order and the sum of header sizes (dive's layer size).
#[derive(Debug, Clone, Default)]
pub struct LayerScan {
    pub entries: Vec<RawEntry>,
    pub content_bytes: u64,
}

/// Normalises a tar member name to `/a/b` with the image core's one normaliser
/// ([`crate::image::flatten::normalize_path`]). `None` for the root itself; `Err` when `..`
/// climbs above the root (such an entry could write outside an extraction dir: it is reported,
/// never followed).
pub fn normalize(raw: &[u8]) -> std::result::Result<Option<String>, String> {
    let text = String::from_utf8_lossy(raw);
    match crate::image::flatten::normalize_path(&text) {
        None => Err(format!("{text:?} climbs above the root")),
        Some(path) if path == "/" => Ok(None),
        Some(path) => Ok(Some(path)),
    }
}

fn layer_error(layer: &str, message: impl ToString) -> Error {
    Error::Archive {
        context: format!("layer {layer}"),
        message: message.to_string(),
    }
}

/// Reads one layer tar from `reader` to its end. `layer` names it in errors and warnings.
pub fn scan_layer(
    reader: impl Read,
    layer: &str,
    policy: HashPolicy,
    warnings: &mut Vec<String>,
) -> Result<LayerScan> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| layer_error(layer, e))?;
    let mut scan = LayerScan::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| layer_error(layer, e))?;
        let member = match decode(&mut entry, u64::MAX) {
            Decoded::Member(member) => member,
            Decoded::Skipped { raw_path, why } => {
                warnings.push(format!("layer {layer}: entry {raw_path:?} skipped: {why}"));
                continue;
            }
            Decoded::Ignored => {
                warnings.push(format!("layer {layer}: stray pax header entry ignored"));
                continue;
            }
        };
        if member.path == "/" {
            continue;
        }
        let (kind, link) = match member.kind {
            MemberKind::File { .. } => (Kind::File, None),
            MemberKind::Dir => (Kind::Dir, None),
            MemberKind::Symlink { target } => (Kind::Symlink, Some(target.into_boxed_str())),
            MemberKind::Hardlink { target } => (Kind::Hardlink, Some(target.into_boxed_str())),
            MemberKind::CharDevice { .. } | MemberKind::BlockDevice { .. } | MemberKind::Fifo => {
                (Kind::Other, None)
            }
            MemberKind::Opaque { .. } => (Kind::Opaque, None),
            // dive counts every `.wh.` name as a whiteout, aufs bookkeeping included.
            MemberKind::Whiteout { .. } | MemberKind::AufsMeta => (Kind::Whiteout, None),
        };
        // Files with capabilities are part of the attack surface.
        let capability = member
            .xattrs
            .iter()
            .any(|(name, _)| name == "security.capability");
        let (path, size, mode, uid, gid) = (
            member.path,
            member.header_size,
            member.mode,
            member.uid,
            member.gid,
        );
        let hash = match policy {
            HashPolicy::AtLeast(min) if kind == Kind::File && size >= min => Some(
                hash_exact(&mut entry, size)
                    .map_err(|e| layer_error(layer, format!("{path}: {e}")))?,
            ),
            _ => None,
        };
        scan.content_bytes = scan.content_bytes.saturating_add(size);
        scan.entries.push(RawEntry {
            path: path.into_boxed_str(),
            kind,
            size,
            mode,
            uid,
            gid,
            link,
            hash,
            capability,
        });
    }
    check_hardlinks(&scan, layer, warnings);
    Ok(scan)
}

/// Hashes exactly `size` bytes; a shorter body means the archive was cut.
fn hash_exact(reader: &mut impl Read, size: u64) -> io::Result<u64> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = [0u8; 64 * 1024];
    let mut seen = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        seen += n as u64;
    }
    if seen != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("truncated: {seen} of {size} bytes present"),
        ));
    }
    Ok(hasher.digest())
}

/// A hardlink must point at an entry of the same layer (that is how docker writes them); one
/// that does not is reported rather than trusted.
fn check_hardlinks(scan: &LayerScan, layer: &str, warnings: &mut Vec<String>) {
    let links: Vec<&RawEntry> = scan
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Hardlink)
        .collect();
    if links.is_empty() {
        return;
    }
    let paths: std::collections::HashSet<&str> = scan.entries.iter().map(|e| &*e.path).collect();
    for link in links {
        let target = link.link.as_deref().unwrap_or("");
        let resolved = normalize(target.as_bytes()).ok().flatten();
        if !resolved.as_deref().is_some_and(|t| paths.contains(t)) {
            warnings.push(format!(
                "layer {layer}: hardlink {} points at {target:?}, which this layer does not contain",
                link.path
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::layer_tar;

    #[test]
    fn normalize_handles_dots_and_refuses_escapes() {
        assert_eq!(
            normalize(b"./usr//bin/").unwrap().as_deref(),
            Some("/usr/bin")
        );
        assert_eq!(
            normalize(b"/etc/a/../b").unwrap().as_deref(),
            Some("/etc/b")
        );
        assert_eq!(normalize(b"./").unwrap(), None);
        assert!(normalize(b"../../etc/passwd").is_err());
        assert!(normalize(b"a/../../x").is_err());
    }

    #[test]
    fn scans_kinds_whiteouts_and_hashes() {
        use tar::EntryType as T;
        let tar = layer_tar(&[
            ("etc/", T::Directory, b"", 0o755),
            ("etc/big", T::Regular, &[7u8; 2048], 0o644),
            ("etc/small", T::Regular, b"hi", 0o4755),
            ("etc/.wh.gone", T::Regular, b"", 0o644),
            ("var/.wh..wh..opq", T::Regular, b"", 0o644),
            ("etc/sl", T::Symlink, b"big", 0o777),
        ]);
        let mut warnings = Vec::new();
        let scan = scan_layer(&tar[..], "l", HashPolicy::AtLeast(1024), &mut warnings).unwrap();
        let kinds: Vec<_> = scan.entries.iter().map(|e| (&*e.path, e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("/etc", Kind::Dir),
                ("/etc/big", Kind::File),
                ("/etc/small", Kind::File),
                ("/etc/.wh.gone", Kind::Whiteout),
                ("/var/.wh..wh..opq", Kind::Opaque),
                ("/etc/sl", Kind::Symlink),
            ]
        );
        assert_eq!(scan.content_bytes, 2050);
        assert!(scan.entries[1].hash.is_some() && scan.entries[2].hash.is_none());
        assert!(scan.entries[2].is_setuid_or_setgid());
        assert_eq!(
            scan.entries[3].whiteout_target().as_deref(),
            Some("/etc/gone")
        );
        assert_eq!(scan.entries[4].whiteout_target().as_deref(), Some("/var"));
        assert_eq!(scan.entries[5].link.as_deref(), Some("big"));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn hostile_entries_warn_and_truncation_errors() {
        use tar::EntryType as T;
        let mut tar = layer_tar(&[
            ("ok", T::Regular, b"x", 0o644),
            ("hl", T::Link, b"missing", 0o644),
            ("big", T::Regular, &[1u8; 4096], 0o644),
        ]);
        // The builder refuses `..`; write the raw name into a header by hand.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        let name = b"zz/../../evil";
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_size(1);
        header.set_entry_type(T::Regular);
        header.set_cksum();
        builder.append(&header, &b"e"[..]).unwrap();
        let escaping = builder.into_inner().unwrap();
        let mut warnings = Vec::new();
        let scan = scan_layer(&escaping[..], "l", HashPolicy::AtLeast(1), &mut warnings).unwrap();
        assert!(scan.entries.is_empty());
        assert!(
            warnings.iter().any(|w| w.contains("climbs")),
            "{warnings:?}"
        );

        let full = scan_layer(&tar[..], "l", HashPolicy::AtLeast(1), &mut warnings).unwrap();
        assert_eq!(full.entries.len(), 3);
        assert!(
            warnings.iter().any(|w| w.contains("hardlink /hl")),
            "{warnings:?}"
        );

        tar.truncate(tar.len() - 1024 - 2048);
        let err = scan_layer(&tar[..], "l", HashPolicy::AtLeast(1), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = scan_layer(&tar[..], "l", HashPolicy::Skip, &mut Vec::new());
        assert!(
            err.is_err(),
            "a cut body must not pass silently when skipping either"
        );
    }
}
