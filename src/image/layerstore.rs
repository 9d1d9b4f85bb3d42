//! The local daemon's layer store, read directly instead of through `docker save` (which
//! re-assembles and streams every byte of every layer: ~20 s for a 1 GB image here, while the
//! slim image needs only the few MB that are kept). Shared by `build` and `xray`.
//!
//! Docker keeps, per layer (`image/<driver>/layerdb/sha256/<chain id>/`):
//! - `diff`: the layer's diff id, checked against the image config's `rootfs.diff_ids`;
//! - `tar-split.json.gz`: the layer tar's exact header bytes plus, per file, its size and CRC-64
//!   (that is how `docker save` rebuilds byte-identical tars). Replaying it with holes where file
//!   bodies go ([`SplitReader`]) yields the very tar headers `docker save` would send, at a few
//!   MB of reading; the CRCs serve xray as content fingerprints;
//! - `cache-id`: the storage driver's directory for the layer; with overlay2, the files
//!   themselves are under `<root>/overlay2/<cache-id>/diff`, which is where `build` reads the
//!   content of the files it keeps.
//!
//! Anything unexpected (no such image under this root, a remote daemon's image, another storage
//! driver, unreadable files, digests that do not match) makes [`locate`] return `None`; callers
//! then fall back to the `docker save` stream.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use flate2::read::GzDecoder;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The daemon's data root (`docker info` → DockerRootDir); `MINIFY_DOCKER_ROOT` overrides.
pub fn docker_root() -> PathBuf {
    std::env::var_os("MINIFY_DOCKER_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/docker"))
}

/// One layer of a stored image, bottom first.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    /// `sha256:…` of the uncompressed layer tar.
    pub diff_id: String,
    /// The layer's `tar-split.json.gz`.
    pub tar_split: PathBuf,
    /// The overlay2 `diff` directory holding the layer's files; `None` for other drivers.
    pub files: Option<PathBuf>,
}

/// An image found in the local layer store, every layer checked against the config.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// `<root>/image/<driver>`.
    pub driver_dir: PathBuf,
    /// The storage driver's name (`overlay2`, …).
    pub driver: String,
    pub config: Value,
    pub layers: Vec<StoredLayer>,
}

impl StoredImage {
    /// Whether every layer's files can be read from disk (overlay2 `diff` dirs).
    pub fn has_layer_files(&self) -> bool {
        self.layers.iter().all(|l| l.files.is_some())
    }

    /// A one-line description for reports.
    pub fn describe(&self) -> String {
        format!("daemon layer store {}", self.driver_dir.display())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Finds the image config by id under `<root>/image/<driver>/imagedb`, checking its digest.
fn find_config(root: &Path, hex_id: &str) -> Option<(PathBuf, Value)> {
    for driver in std::fs::read_dir(root.join("image")).ok()?.flatten() {
        let path = driver.path().join("imagedb/content/sha256").join(hex_id);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if sha256_hex(&bytes) != hex_id {
            return None;
        }
        let config = serde_json::from_slice(&bytes).ok()?;
        return Some((driver.path(), config));
    }
    None
}

/// The chain ids of a list of diff ids (OCI image spec: `chain(n) = sha256(chain(n-1) + " " +
/// diff(n))`), which name the layerdb directories.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain = String::new();
    diff_ids
        .iter()
        .map(|diff_id| {
            chain = if chain.is_empty() {
                diff_id.clone()
            } else {
                format!(
                    "sha256:{}",
                    sha256_hex(format!("{chain} {diff_id}").as_bytes())
                )
            };
            chain.clone()
        })
        .collect()
}

/// Locates image `id` (`sha256:…`) in the layer store under `root`, or `None` to fall back.
pub fn locate(root: &Path, id: &str) -> Option<StoredImage> {
    let hex_id = id.strip_prefix("sha256:")?;
    if hex_id.len() != 64 || !hex_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (driver_dir, config) = find_config(root, hex_id)?;
    let driver = driver_dir.file_name()?.to_str()?.to_string();
    let diff_ids: Vec<String> = config
        .pointer("/rootfs/diff_ids")?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<_>>()?;
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (diff_id, chain) in diff_ids.iter().zip(chain_ids(&diff_ids)) {
        let dir = driver_dir
            .join("layerdb/sha256")
            .join(chain.strip_prefix("sha256:")?);
        let recorded = std::fs::read_to_string(dir.join("diff")).ok()?;
        if recorded.trim() != diff_id {
            return None;
        }
        let tar_split = dir.join("tar-split.json.gz");
        if !tar_split.is_file() {
            return None;
        }
        let files = (driver == "overlay2")
            .then(|| std::fs::read_to_string(dir.join("cache-id")).ok())
            .flatten()
            .map(|cache_id| root.join("overlay2").join(cache_id.trim()).join("diff"))
            .filter(|diff| diff.is_dir());
        layers.push(StoredLayer {
            diff_id: diff_id.clone(),
            tar_split,
            files,
        });
    }
    Some(StoredImage {
        driver_dir,
        driver,
        config,
        layers,
    })
}

#[derive(Deserialize)]
struct SplitEntry {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    payload: Option<String>,
}

/// Replays a tar-split stream as a tar: header segments verbatim, file bodies as holes that read
/// as zeros and that [`Seek`] skips without producing them (so a tar reader with seeking walks a
/// 1 GB layer at the cost of its headers). Collects each file's CRC-64 on the way.
pub struct SplitReader<R> {
    lines: R,
    line: String,
    pending: Vec<u8>,
    pending_at: usize,
    hole: u64,
    /// Bytes of the replayed tar consumed so far (read or skipped).
    position: u64,
    crcs: HashMap<String, u64>,
}

/// The replay of a `tar-split.json.gz` file.
pub type SplitFile = SplitReader<BufReader<GzDecoder<BufReader<File>>>>;

/// Opens a layer's `tar-split.json.gz` for replay.
pub fn open_split(path: &Path) -> io::Result<SplitFile> {
    Ok(SplitReader::new(BufReader::new(GzDecoder::new(
        BufReader::new(File::open(path)?),
    ))))
}

impl<R: BufRead> SplitReader<R> {
    /// Replays the tar-split lines read from `lines`.
    pub fn new(lines: R) -> Self {
        SplitReader {
            lines,
            line: String::new(),
            pending: Vec::new(),
            pending_at: 0,
            hole: 0,
            position: 0,
            crcs: HashMap::new(),
        }
    }

    /// The CRC-64 of each file replayed so far, by normalised path.
    pub fn crcs(&self) -> &HashMap<String, u64> {
        &self.crcs
    }

    /// Loads the next segment or hole; `false` at the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            self.line.clear();
            if self.lines.read_line(&mut self.line)? == 0 {
                return Ok(false);
            }
            if self.line.trim().is_empty() {
                continue;
            }
            let entry: SplitEntry = serde_json::from_str(&self.line)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let payload = match entry.payload.as_deref() {
                Some(p) => base64::engine::general_purpose::STANDARD
                    .decode(p)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                None => Vec::new(),
            };
            match entry.kind {
                2 => {
                    self.pending = payload;
                    self.pending_at = 0;
                    return Ok(true);
                }
                1 => {
                    if let (Some(name), Ok(crc)) = (entry.name, <[u8; 8]>::try_from(&payload[..])) {
                        if let Some(path) = super::flatten::normalize_path(&name) {
                            self.crcs.insert(path, u64::from_be_bytes(crc));
                        }
                    }
                    if entry.size > 0 {
                        self.hole = entry.size;
                        return Ok(true);
                    }
                }
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown tar-split entry type {other}"),
                    ))
                }
            }
        }
    }

    /// Consumes up to `max` bytes, copying them into `into` when given; returns how many.
    fn advance(&mut self, max: u64, mut into: Option<&mut [u8]>) -> io::Result<u64> {
        loop {
            if self.pending_at < self.pending.len() {
                let n = max.min((self.pending.len() - self.pending_at) as u64) as usize;
                if let Some(buf) = into.as_deref_mut() {
                    buf[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
                }
                self.pending_at += n;
                self.position += n as u64;
                return Ok(n as u64);
            }
            if self.hole > 0 {
                let n = max.min(self.hole);
                if let Some(buf) = into.as_deref_mut() {
                    buf[..n as usize].fill(0);
                }
                self.hole -= n;
                self.position += n;
                return Ok(n);
            }
            if max == 0 || !self.refill()? {
                return Ok(0);
            }
        }
    }
}

impl<R: BufRead> Read for SplitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf.len() as u64;
        self.advance(max, Some(buf)).map(|n| n as usize)
    }
}

impl<R: BufRead> Seek for SplitReader<R> {
    /// Forward seeks only (what a tar reader skipping bodies asks for); holes are skipped
    /// without being produced. `SeekFrom::Current(0)` reports the position.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(at) => at,
            SeekFrom::Current(delta) => {
                self.position.checked_add_signed(delta).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "seek before the start")
                })?
            }
            SeekFrom::End(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a tar-split replay has no known end",
                ))
            }
        };
        if target < self.position {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a tar-split replay cannot seek backwards",
            ));
        }
        while self.position < target {
            if self.advance(target - self.position, None)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "seek past the end of the tar-split replay",
                ));
            }
        }
        Ok(self.position)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Splits a tar the way tar-split does: header blocks (and padding) as segments, bodies as
    /// files with a fake CRC. `bodies` are `(name, offset, size)` of each regular file's content.
    pub(crate) fn split_lines(tar: &[u8], bodies: &[(&str, usize, usize)]) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut lines = String::new();
        let mut at = 0;
        for (i, (name, offset, size)) in bodies.iter().enumerate() {
            lines += &format!(
                "{{\"type\":2,\"payload\":\"{}\"}}\n",
                b64(&tar[at..*offset])
            );
            lines += &format!(
                "{{\"type\":1,\"name\":\"{name}\",\"size\":{size},\"payload\":\"{}\"}}\n",
                b64(&(i as u64 + 7).to_be_bytes())
            );
            at = offset + size;
        }
        lines += &format!("{{\"type\":2,\"payload\":\"{}\"}}\n", b64(&tar[at..]));
        lines
    }

    /// Writes `layers` (uncompressed tars, bottom first) into a layer store under `root` the way
    /// dockerd's overlay2 driver keeps it (imagedb config, layerdb chain dirs with `diff`,
    /// `tar-split.json.gz` and `cache-id`, overlay2 `diff` dirs with the files) and returns the
    /// image id.
    pub(crate) fn store_image(root: &Path, layers: &[Vec<u8>]) -> String {
        use std::io::Write as _;
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|tar| format!("sha256:{}", sha256_hex(tar)))
            .collect();
        let driver = root.join("image/overlay2");
        for (i, (tar, chain)) in layers.iter().zip(chain_ids(&diff_ids)).enumerate() {
            let mut bodies = Vec::new();
            let mut archive = tar::Archive::new(&tar[..]);
            for member in archive.entries().unwrap() {
                let member = member.unwrap();
                if member.size() > 0 && member.header().entry_type().is_file() {
                    let name = String::from_utf8_lossy(&member.path_bytes()).into_owned();
                    bodies.push((
                        name,
                        member.raw_file_position() as usize,
                        member.size() as usize,
                    ));
                }
            }
            let bodies: Vec<(&str, usize, usize)> = bodies
                .iter()
                .map(|(n, o, s)| (n.as_str(), *o, *s))
                .collect();
            let dir = driver.join("layerdb/sha256").join(&chain[7..]);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("diff"), &diff_ids[i]).unwrap();
            let cache_id = format!("cache{i:02}");
            std::fs::write(dir.join("cache-id"), &cache_id).unwrap();
            let mut gz = flate2::write::GzEncoder::new(
                File::create(dir.join("tar-split.json.gz")).unwrap(),
                flate2::Compression::fast(),
            );
            gz.write_all(split_lines(tar, &bodies).as_bytes()).unwrap();
            gz.finish().unwrap();
            let files = root.join("overlay2").join(&cache_id).join("diff");
            std::fs::create_dir_all(&files).unwrap();
            let mut archive = tar::Archive::new(&tar[..]);
            archive.set_preserve_permissions(true);
            archive.unpack(&files).unwrap();
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let hex = sha256_hex(&config);
        let imagedb = driver.join("imagedb/content/sha256");
        std::fs::create_dir_all(&imagedb).unwrap();
        std::fs::write(imagedb.join(&hex), config).unwrap();
        format!("sha256:{hex}")
    }

    #[test]
    fn a_stored_image_is_located_with_its_layers_files() {
        use crate::testkit::LayerBuilder;
        let root = tempfile::tempdir().unwrap();
        let layers = [
            LayerBuilder::new().file("a", b"1").bytes(),
            LayerBuilder::new().file("b", b"2").bytes(),
        ];
        let id = store_image(root.path(), &layers);
        let stored = locate(root.path(), &id).unwrap();
        assert_eq!(stored.driver, "overlay2");
        assert_eq!(stored.layers.len(), 2);
        assert!(stored.has_layer_files());
        assert_eq!(
            std::fs::read(stored.layers[1].files.as_ref().unwrap().join("b")).unwrap(),
            b"2"
        );
        // A layer whose recorded diff id is not the config's is not this image's layer.
        let chain = &chain_ids(&[stored.layers[0].diff_id.clone()])[0][7..];
        let diff = root
            .path()
            .join("image/overlay2/layerdb/sha256")
            .join(chain)
            .join("diff");
        std::fs::write(&diff, format!("sha256:{}", "1".repeat(64))).unwrap();
        assert!(locate(root.path(), &id).is_none());
    }

    #[test]
    fn replays_headers_with_holes_and_collects_crcs() {
        use tar::EntryType as T;
        let tar = crate::testkit::layer_tar(&[
            ("d/", T::Directory, b"", 0o755),
            ("d/f", T::Regular, b"hello", 0o644),
        ]);
        let lines = split_lines(&tar, &[("d/f", 1024, 5)]);
        let mut split = SplitReader::new(lines.as_bytes());
        let mut replayed = Vec::new();
        split.read_to_end(&mut replayed).unwrap();
        assert_eq!(replayed.len(), tar.len());
        assert_eq!(&replayed[..1024], &tar[..1024]);
        assert_eq!(&replayed[1024..1029], &[0; 5]);
        assert_eq!(&replayed[1029..], &tar[1029..]);
        assert_eq!(split.crcs().get("/d/f"), Some(&7));
    }

    #[test]
    fn seeking_skips_holes_and_segments_and_reports_the_position() {
        use tar::EntryType as T;
        let tar = crate::testkit::layer_tar(&[
            ("a", T::Regular, &[1u8; 3000], 0o644),
            ("b", T::Regular, b"xy", 0o644),
        ]);
        // a's body at 512..3512, padded to 3584; b's header at 3584, body at 4096.
        let lines = split_lines(&tar, &[("a", 512, 3000), ("b", 4096, 2)]);
        let mut split = SplitReader::new(lines.as_bytes());
        let mut header = [0u8; 512];
        split.read_exact(&mut header).unwrap();
        assert_eq!(header[..], tar[..512]);
        // Past a's body and padding, into b's header, in one seek.
        assert_eq!(split.seek(SeekFrom::Current(3072)).unwrap(), 3584);
        split.read_exact(&mut header).unwrap();
        assert_eq!(header[..], tar[3584..4096]);
        assert_eq!(split.stream_position().unwrap(), 4096);
        assert!(split.seek(SeekFrom::Start(10)).is_err());
        assert!(split.seek(SeekFrom::Current(1 << 40)).is_err());
    }

    #[test]
    fn a_tar_reader_with_seeking_sees_every_member() {
        use tar::EntryType as T;
        let tar = crate::testkit::layer_tar(&[
            ("d/", T::Directory, b"", 0o755),
            ("d/big", T::Regular, &[9u8; 70_000], 0o644),
            ("d/small", T::Regular, b"abc", 0o600),
        ]);
        let lines = split_lines(&tar, &[("d/big", 1024, 70_000), ("d/small", 71_680, 3)]);
        let mut archive = tar::Archive::new(SplitReader::new(lines.as_bytes()));
        let members: Vec<(String, u64, u64)> = archive
            .entries_with_seek()
            .unwrap()
            .map(|m| {
                let m = m.unwrap();
                (
                    m.path().unwrap().display().to_string(),
                    m.size(),
                    m.raw_file_position(),
                )
            })
            .collect();
        assert_eq!(
            members,
            [
                ("d/".to_string(), 0, 512),
                ("d/big".to_string(), 70_000, 1024),
                ("d/small".to_string(), 3, 71_680)
            ]
        );
    }

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let ids = chain_ids(&["sha256:a".to_string(), "sha256:b".to_string()]);
        assert_eq!(ids[0], "sha256:a");
        assert_eq!(
            ids[1],
            format!("sha256:{}", sha256_hex(b"sha256:a sha256:b"))
        );
    }

    #[test]
    fn an_unknown_id_or_root_is_not_located() {
        let dir = tempfile::tempdir().unwrap();
        assert!(locate(dir.path(), &format!("sha256:{}", "0".repeat(64))).is_none());
        assert!(locate(dir.path(), "sha256:nothex").is_none());
        assert!(locate(dir.path(), "latest").is_none());
    }
}
