//! The one layer-tar member decoder every reader of layers shares: `build`'s flattener
//! ([`super::flatten`]), over `docker save` layers or the layer store's tar-split replay, and
//! `xray`'s per-layer scan ([`crate::xray::scan`]). It owns what a member *is* — its normalised
//! path ([`super::flatten::normalize_path`], the one normaliser), overlay whiteouts and opaque
//! markers told apart from files, link targets, devices, PAX xattrs and mtimes — and refuses
//! what no reader may follow (`..` above the root, non-UTF-8 names, a body past the end of the
//! layer, unsupported types) with a reason instead of a panic. What the member *does* (delete
//! lower entries, resolve a hard link against the index, count it as dive does) is the
//! reader's business.

use crate::image::flatten::{normalize_path, parent_path};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
pub(crate) const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

/// What a layer member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// A regular file of `size` bytes whose body starts `offset` bytes into the layer tar.
    File {
        size: u64,
        offset: u64,
    },
    Dir,
    /// Stored as written: resolving is the reader's business (and loops are legal).
    Symlink {
        target: String,
    },
    /// The link name as written (not normalised: readers resolve it against their own view).
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
    /// `.wh.NAME`: removes `target` (and everything under it) from the layers below.
    Whiteout {
        target: String,
    },
    /// `.wh..wh..opq`: hides what the layers below had in directory `dir`.
    Opaque {
        dir: String,
    },
    /// aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): not part of the filesystem.
    AufsMeta,
}

/// One decoded member. `path` is the normalised member name (a whiteout keeps its `.wh.` name,
/// which dive's accounting counts; its target is in the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub kind: MemberKind,
    /// Permission bits (`0o7777`), as in the header.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds; a PAX `mtime` wins over the header's.
    pub mtime: u64,
    /// PAX `SCHILY.xattr.*` records, in archive order.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The size the header declares, whatever the type (dive sums these).
    pub header_size: u64,
}

/// What [`decode`] made of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Member(Member),
    /// Refused, with why; `raw_path` is the name as the tar spelled it (lossily).
    Skipped {
        raw_path: String,
        why: String,
    },
    /// Not a filesystem entry at all (a PAX global header).
    Ignored,
}

/// Decodes the member `member` of a layer tar `layer_len` bytes long (`u64::MAX` when unknown
/// or when bodies are not read from this tar). Reads only the header and PAX records: the
/// body stays readable from `member` after.
pub fn decode<R: std::io::Read>(member: &mut tar::Entry<'_, R>, layer_len: u64) -> Decoded {
    let raw_path = String::from_utf8_lossy(&member.path_bytes()).into_owned();
    let skipped = |why: String| Decoded::Skipped {
        raw_path: raw_path.clone(),
        why,
    };
    let header = member.header();
    let entry_type = header.entry_type();
    if entry_type.is_pax_global_extensions() || entry_type.is_pax_local_extensions() {
        return Decoded::Ignored;
    }
    let Ok(path_text) = std::str::from_utf8(&member.path_bytes()).map(str::to_string) else {
        return skipped("path is not UTF-8; skipped".into());
    };
    let Some(path) = normalize_path(&path_text) else {
        return skipped("path climbs above the root; skipped".into());
    };
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let uid = header.uid().unwrap_or(0);
    let gid = header.gid().unwrap_or(0);
    let mut mtime = header.mtime().unwrap_or(0);
    let header_size = member.size();
    let device = (
        header.device_major().ok().flatten().unwrap_or(0),
        header.device_minor().ok().flatten().unwrap_or(0),
    );
    let link_target = member
        .link_name_bytes()
        .map(|t| String::from_utf8_lossy(&t).into_owned());

    let name = path.rsplit('/').next().unwrap_or("");
    let whiteout = name.strip_prefix(WHITEOUT_PREFIX).map(|whited| {
        let dir = parent_path(&path).unwrap_or("/");
        if name == OPAQUE_MARKER {
            MemberKind::Opaque {
                dir: dir.to_string(),
            }
        } else if whited.starts_with(WHITEOUT_PREFIX) || whited.is_empty() {
            MemberKind::AufsMeta
        } else if dir == "/" {
            MemberKind::Whiteout {
                target: format!("/{whited}"),
            }
        } else {
            MemberKind::Whiteout {
                target: format!("{dir}/{whited}"),
            }
        }
    });

    let mut xattrs = Vec::new();
    if let Ok(Some(extensions)) = member.pax_extensions() {
        for extension in extensions.flatten() {
            let Ok(key) = extension.key() else { continue };
            if let Some(name) = key.strip_prefix(XATTR_PAX_PREFIX) {
                xattrs.push((name.to_string(), extension.value_bytes().to_vec()));
            } else if key == "mtime" {
                // PAX mtimes are decimal seconds with an optional fraction.
                if let Some(seconds) = extension
                    .value()
                    .ok()
                    .and_then(|v| v.split('.').next())
                    .and_then(|v| v.parse().ok())
                {
                    mtime = seconds;
                }
            }
        }
    }

    use tar::EntryType as T;
    let kind = match (whiteout, entry_type) {
        (Some(kind), _) => kind,
        (None, T::Regular | T::Continuous) => {
            let offset = member.raw_file_position();
            if offset.saturating_add(header_size) > layer_len {
                return skipped(format!(
                    "declares {header_size} bytes, past the end of the layer; skipped"
                ));
            }
            MemberKind::File {
                size: header_size,
                offset,
            }
        }
        (None, T::Directory) => MemberKind::Dir,
        (None, T::Symlink) => match link_target {
            Some(target) => MemberKind::Symlink { target },
            None => return skipped("symlink without a target; skipped".into()),
        },
        (None, T::Link) => match link_target {
            Some(target) => MemberKind::Hardlink { target },
            None => return skipped("hard link without a target; skipped".into()),
        },
        (None, T::Char) => MemberKind::CharDevice {
            major: device.0,
            minor: device.1,
        },
        (None, T::Block) => MemberKind::BlockDevice {
            major: device.0,
            minor: device.1,
        },
        (None, T::Fifo) => MemberKind::Fifo,
        (None, other) => {
            return skipped(format!(
                "unsupported tar entry type {:?}; skipped",
                other.as_byte() as char
            ))
        }
    };
    if path == "/" && kind != MemberKind::Dir {
        return skipped("non-directory at the root; skipped".into());
    }
    Decoded::Member(Member {
        path,
        kind,
        mode,
        uid,
        gid,
        mtime,
        xattrs,
        header_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::LayerBuilder;

    fn decode_all(tar: &[u8]) -> Vec<Decoded> {
        let len = tar.len() as u64;
        let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
        archive
            .entries_with_seek()
            .unwrap()
            .map(|m| decode(&mut m.unwrap(), len))
            .collect()
    }

    fn kinds(tar: &[u8]) -> Vec<(String, MemberKind)> {
        decode_all(tar)
            .into_iter()
            .filter_map(|d| match d {
                Decoded::Member(m) => Some((m.path, m.kind)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn whiteouts_opaque_markers_and_aufs_bookkeeping_are_told_apart() {
        let tar = LayerBuilder::new()
            .file("etc/.wh.motd", b"")
            .file("var/cache/.wh..wh..opq", b"")
            .file(".wh.tmp", b"")
            .file(".wh..wh.aufs", b"")
            .bytes();
        let got = kinds(&tar);
        assert_eq!(
            got[0],
            (
                "/etc/.wh.motd".into(),
                MemberKind::Whiteout {
                    target: "/etc/motd".into()
                }
            )
        );
        assert_eq!(
            got[1].1,
            MemberKind::Opaque {
                dir: "/var/cache".into()
            }
        );
        assert_eq!(
            got[2].1,
            MemberKind::Whiteout {
                target: "/tmp".into()
            }
        );
        assert_eq!(got[3].1, MemberKind::AufsMeta);
    }

    #[test]
    fn files_links_and_xattrs_keep_what_readers_need() {
        let tar = LayerBuilder::new()
            .dir("bin")
            .file("bin/ping", b"elf")
            .symlink("bin/sh", "dash")
            .hardlink("bin/ping2", "bin/ping")
            .file_with_xattrs("bin/cap", b"x", &[("security.capability", b"\x01")])
            .bytes();
        let got = kinds(&tar);
        assert!(matches!(got[1].1, MemberKind::File { size: 3, .. }));
        assert_eq!(
            got[2].1,
            MemberKind::Symlink {
                target: "dash".into()
            }
        );
        assert_eq!(
            got[3].1,
            MemberKind::Hardlink {
                target: "bin/ping".into()
            }
        );
        let Decoded::Member(cap) = &decode_all(&tar)[4] else {
            panic!("cap not decoded");
        };
        assert_eq!(
            cap.xattrs,
            vec![("security.capability".to_string(), b"\x01".to_vec())]
        );
    }

    #[test]
    fn hostile_members_are_refused_with_a_reason() {
        let tar = LayerBuilder::new()
            .raw_file(b"../../etc/passwd", b"x")
            .raw_file(b"bad\xffname", b"x")
            .bytes();
        let got = decode_all(&tar);
        assert!(
            matches!(&got[0], Decoded::Skipped { why, .. } if why.contains("climbs above")),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], Decoded::Skipped { why, .. } if why.contains("UTF-8")),
            "{got:?}"
        );
        // A body declared past the end of the layer (a truncated or lying header).
        let tar = LayerBuilder::new().file("big", b"0123456789").bytes();
        let mut archive = tar::Archive::new(std::io::Cursor::new(&tar));
        let mut member = archive
            .entries_with_seek()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(matches!(
            decode(&mut member, 515),
            Decoded::Skipped { why, .. } if why.contains("past the end")
        ));
    }
}
