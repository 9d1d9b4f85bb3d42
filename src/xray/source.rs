//! Where an xray's layers come from, each read ONCE as a stream:
//! - a `docker save` archive (a file, `--archive`, or the daemon's save stream): every layer tar
//!   is scanned as it streams past (layers come before `manifest.json` in Docker 20.10's output,
//!   so scans are keyed by member name and ordered once the manifest is known);
//! - the daemon's own layer store ([`super::layerdb`]), which skips `docker save` entirely.
//!
//! Docker (`manifest.json`) and OCI (`index.json`, `blobs/sha256/…`) layouts are both read;
//! gzip layers are decompressed on the way. Nothing is ever written to disk.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde_json::Value;

use super::scan::{normalize, scan_layer, HashPolicy, LayerScan};
use crate::image::manifest::{archive_error, image_refs, ImageRefs};
use crate::{Error, Result};

/// JSON members larger than this are not metadata; refusing them bounds memory.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;
const STREAM_BUFFER_BYTES: usize = 256 * 1024;

/// An image's layers, scanned and ordered bottom first, with its config.
#[derive(Debug, Default)]
pub struct RawImage {
    /// `(layer id, scan)`: the id is the archive member or the diff id.
    pub layers: Vec<(String, LayerScan)>,
    pub config: Value,
    pub repo_tags: Vec<String>,
    /// Non-fatal oddities met while reading (hostile names, dangling hardlinks…).
    pub warnings: Vec<String>,
    /// How the layers were read, for the report.
    pub source: String,
    /// `sha256:` of the config bytes: the image id.
    pub id: String,
}

/// Counts bytes pulled through it so a truncated member can be told from a short one.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

enum Member {
    Layer(LayerScan),
    Json(Vec<u8>),
    Zstd,
}

/// Reads an image archive file (optionally gzipped as a whole).
pub fn read_archive_file(path: &Path, policy: HashPolicy) -> Result<RawImage> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        context: format!("opening image archive {}", path.display()),
        source,
    })?;
    let mut reader = BufReader::with_capacity(STREAM_BUFFER_BYTES, file);
    let gz = {
        let head = io::BufRead::fill_buf(&mut reader).map_err(|source| Error::Io {
            context: format!("reading image archive {}", path.display()),
            source,
        })?;
        head.starts_with(&[0x1f, 0x8b])
    };
    let mut image = if gz {
        read_archive(MultiGzDecoder::new(reader), policy)?
    } else {
        read_archive(reader, policy)?
    };
    image.source = format!("archive {}", path.display());
    Ok(image)
}

/// Reads a `docker save` stream once, scanning each layer as it passes.
pub fn read_archive(reader: impl Read, policy: HashPolicy) -> Result<RawImage> {
    let mut archive = tar::Archive::new(BufReader::with_capacity(STREAM_BUFFER_BYTES, reader));
    let entries = archive
        .entries()
        .map_err(Error::tar("reading the image archive"))?;
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut warnings = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::tar("reading the image archive"))?;
        let Ok(Some(name)) = normalize(&entry.path_bytes()) else {
            continue;
        };
        let entry_type = entry.header().entry_type();
        if entry_type.is_symlink() {
            // Older dockers store a layer shared by two images once and symlink the other.
            if let Some(target) = entry.link_name_bytes() {
                let parent = name.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                let joined = if target.starts_with(b"/") {
                    target.to_vec()
                } else {
                    [parent.as_bytes(), b"/", &target].concat()
                };
                if let Ok(Some(resolved)) = normalize(&joined) {
                    aliases.insert(name, resolved);
                }
            }
            continue;
        }
        if !entry_type.is_file() {
            continue;
        }
        let declared = entry.size();
        let mut counted = Counting {
            inner: entry,
            count: 0,
        };
        let member = read_member(&mut counted, &name, declared, policy, &mut warnings)?;
        io::copy(&mut counted, &mut io::sink())
            .map_err(Error::tar(format!("archive member {name}")))?;
        if counted.count != declared {
            return Err(archive_error(
                format!("archive member {name}"),
                format!("truncated: {} of {declared} bytes present", counted.count),
            ));
        }
        if let Some(member) = member {
            members.insert(name, member);
        }
    }
    for (alias, target) in aliases {
        if let Some(Member::Layer(scan)) = members.get(&target) {
            let copy = Member::Layer(scan.clone());
            members.insert(alias, copy);
        }
    }
    let mut image = assemble(members)?;
    image.warnings.splice(0..0, warnings);
    image.source = "docker save stream".into();
    Ok(image)
}

fn read_member(
    reader: &mut impl Read,
    name: &str,
    declared: u64,
    policy: HashPolicy,
    warnings: &mut Vec<String>,
) -> Result<Option<Member>> {
    let context = || format!("archive member {name}");
    let mut head = Vec::with_capacity(512);
    reader
        .take(512)
        .read_to_end(&mut head)
        .map_err(Error::tar(context()))?;
    let rest = io::Cursor::new(head.clone()).chain(reader);
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if head.starts_with(&[0x1f, 0x8b]) {
        let scan = scan_layer(MultiGzDecoder::new(rest), name, policy, warnings)?;
        return Ok(Some(Member::Layer(scan)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Some(Member::Zstd));
    }
    let looks_tar = head.len() >= 263 && &head[257..262] == b"ustar";
    let empty_tar = head.len() == 512 && head.iter().all(|&b| b == 0);
    if looks_tar || empty_tar || name.ends_with(".tar") {
        let scan = scan_layer(rest, name, policy, warnings)?;
        return Ok(Some(Member::Layer(scan)));
    }
    if first == Some(b'{') || first == Some(b'[') {
        if declared > MAX_JSON_BYTES {
            return Err(archive_error(
                context(),
                format!("{declared} bytes is too large for JSON metadata"),
            ));
        }
        let mut bytes = Vec::new();
        rest.take(MAX_JSON_BYTES)
            .read_to_end(&mut bytes)
            .map_err(Error::tar(context()))?;
        return Ok(Some(Member::Json(bytes)));
    }
    Ok(None)
}

fn json(members: &HashMap<String, Member>, name: &str) -> Result<Value> {
    match members.get(name) {
        Some(Member::Json(bytes)) => {
            serde_json::from_slice(bytes).map_err(Error::archive_json(name))
        }
        _ => Err(archive_error(
            name.to_string(),
            "referenced but missing from the archive, or not JSON (truncated?)",
        )),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Orders the scanned layers as the manifest (or OCI index) says.
fn assemble(mut members: HashMap<String, Member>) -> Result<RawImage> {
    let ImageRefs {
        config: config_ref,
        layers: layer_refs,
        repo_tags,
    } = image_refs(
        |name| members.contains_key(name),
        |name| json(&members, name),
    )?;
    let config = json(&members, &config_ref)?;
    let id = match members.get(&config_ref) {
        Some(Member::Json(bytes)) => format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
        ),
        _ => String::new(),
    };
    let diff_ids = strings(config.pointer("/rootfs/diff_ids"));
    if !diff_ids.is_empty() && diff_ids.len() != layer_refs.len() {
        return Err(archive_error(
            "image config",
            format!(
                "rootfs lists {} layers but the manifest {}",
                diff_ids.len(),
                layer_refs.len()
            ),
        ));
    }
    let mut layers: Vec<(String, LayerScan)> = Vec::with_capacity(layer_refs.len());
    for (i, reference) in layer_refs.iter().enumerate() {
        let scan = match members.remove(reference) {
            Some(Member::Layer(scan)) => scan,
            Some(Member::Zstd) => {
                return Err(archive_error(
                    format!("layer {reference}"),
                    "zstd-compressed layers are not supported",
                ))
            }
            // The same layer listed twice (identical diff ids) was taken by its first mention.
            _ => match layer_refs[..i].iter().position(|r| r == reference) {
                Some(previous) => layers[previous].1.clone(),
                None => {
                    return Err(archive_error(
                        format!("layer {reference}"),
                        "referenced by the manifest but missing from the archive (truncated?)",
                    ))
                }
            },
        };
        let id = diff_ids
            .get(i)
            .cloned()
            .unwrap_or_else(|| reference.clone());
        layers.push((id, scan));
    }
    Ok(RawImage {
        layers,
        config,
        repo_tags,
        warnings: Vec::new(),
        source: String::new(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::layer_tar;

    fn docker_archive(layers: &[Vec<u8>], config: &Value) -> Vec<u8> {
        crate::testkit::DockerArchive::of(layers, config, "t/x:1")
    }

    #[test]
    fn orders_layers_by_manifest_and_rejects_truncation() {
        use tar::EntryType as T;
        let l0 = layer_tar(&[("a", T::Regular, b"0", 0o644)]);
        let l1 = layer_tar(&[("b", T::Regular, b"11", 0o644)]);
        let config = serde_json::json!({"rootfs": {"diff_ids": ["sha256:a", "sha256:b"]}});
        let archive = docker_archive(&[l0, l1], &config);
        let image = read_archive(&archive[..], HashPolicy::AtLeast(1)).unwrap();
        assert_eq!(image.repo_tags, vec!["t/x:1"]);
        let ids: Vec<_> = image
            .layers
            .iter()
            .map(|(id, s)| (id.as_str(), s.content_bytes))
            .collect();
        assert_eq!(ids, vec![("sha256:a", 1), ("sha256:b", 2)]);

        for cut in [100, archive.len() / 2, archive.len() - 1500] {
            let err = read_archive(&archive[..cut], HashPolicy::AtLeast(1)).unwrap_err();
            assert!(err.is_malformed_archive(), "cut at {cut}: {err}");
        }
    }

    /// A stable stand-in for the cargo-fuzz target: deterministic byte flips and cuts of a
    /// valid archive must end in Ok or a typed error, never a panic.
    #[test]
    fn mutated_archives_never_panic() {
        use tar::EntryType as T;
        let l0 = layer_tar(&[
            ("d/", T::Directory, b"", 0o755),
            ("d/f", T::Regular, &[5u8; 1500], 0o644),
            ("d/.wh.g", T::Regular, b"", 0o644),
            ("d/h", T::Link, b"d/f", 0o644),
        ]);
        let archive = docker_archive(&[l0], &serde_json::json!({}));
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..1500 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = archive.clone();
            let at = (state % bytes.len() as u64) as usize;
            bytes[at] ^= (state >> 32) as u8 | 1;
            if round % 3 == 0 {
                bytes.truncate(at);
            }
            if let Ok(raw) = read_archive(&bytes[..], HashPolicy::AtLeast(1)) {
                let _ = crate::xray::analyze("m", raw, std::time::Instant::now());
            }
        }
    }
}
