//! Reading an image archive (`docker save` output, docker-archive or OCI layout flavour) in ONE
//! pass and spooling it to a temp dir: every layer ends up as an uncompressed tar file on disk,
//! the config as parsed JSON. Nothing larger than a JSON document is ever held in memory.
//!
//! The archive's table of contents (`manifest.json`, or `index.json` for pure OCI layouts) usually
//! comes LAST in the stream, so every member is spooled as an anonymous blob first and matched to
//! the manifest afterwards.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::manifest::{self, archive_error};
use crate::{Error, Result};

/// Members bigger than this cannot be JSON metadata; refusing them keeps a hostile archive from
/// making us parse gigabytes as JSON.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Buffer between the (often unbuffered) source stream and the tar parser.
const STREAM_BUFFER_BYTES: usize = 256 * 1024;

/// An image read from an archive: its layers as uncompressed tar files in a private temp dir
/// (deleted on drop), and its config.
#[derive(Debug)]
pub struct SpooledImage {
    dir: tempfile::TempDir,
    /// Uncompressed layer tars, bottom layer first (manifest order).
    pub layers: Vec<PathBuf>,
    /// The raw image config JSON as docker stores it.
    pub config: Value,
    /// `sha256:<hex>` of the config bytes: the image id.
    pub config_digest: String,
    pub repo_tags: Vec<String>,
}

impl SpooledImage {
    /// Assembles a spooled image from layer tars that already live in `dir` (tests, other sources).
    pub fn from_parts(
        dir: tempfile::TempDir,
        layers: Vec<PathBuf>,
        config: Value,
        repo_tags: Vec<String>,
    ) -> Self {
        let config_digest = sha256_prefixed(&serde_json::to_vec(&config).unwrap_or_default());
        SpooledImage {
            dir,
            layers,
            config,
            config_digest,
            repo_tags,
        }
    }

    /// The temp dir holding the spooled layers; a good place for derived files that should vanish
    /// with the image.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Total bytes of the spooled (uncompressed) layer tars.
    pub fn layers_bytes(&self) -> u64 {
        self.layers
            .iter()
            .filter_map(|layer| std::fs::metadata(layer).ok())
            .map(|meta| meta.len())
            .sum()
    }
}

/// How a spooled member was stored in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    /// Decompressed while spooling.
    Gzip,
    /// Kept as-is: we have no zstd decoder, so it is an error only if a layer needs it.
    Zstd,
}

#[derive(Debug)]
struct SpooledMember {
    file: PathBuf,
    /// Bytes as stored in the archive (before decompression).
    archived_size: u64,
    compression: Compression,
}

/// Reads a `docker save` stream once and spools it to `work_dir` (or the system temp dir).
///
/// Accepts the Docker 20.10 layout (`manifest.json`, `<id>.json`, `<id>/layer.tar`) and the OCI
/// layout newer dockers write (`index.json`, `blobs/sha256/…`, possibly with a `manifest.json`
/// too). Gzip-compressed layers are decompressed on the way. When the archive holds several
/// images, the first one of the manifest is taken.
pub fn spool_docker_archive(reader: impl Read, work_dir: Option<&Path>) -> Result<SpooledImage> {
    let dir = match work_dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("minify-image-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("minify-image-").tempdir(),
    }
    .map_err(Error::io(
        "creating a temp dir to spool the image archive into",
    ))?;

    let members = spool_members(reader, dir.path())?;
    resolve_image(dir, members)
}

/// Spools an image archive file from disk (a `docker save -o` output, optionally gzipped as a
/// whole) into a temp dir next to nothing in particular (the system temp dir).
pub fn spool_tarball(path: &Path) -> Result<SpooledImage> {
    let file = File::open(path).map_err(|source| Error::Io {
        context: format!("opening image archive {}", path.display()),
        source,
    })?;
    let mut reader = BufReader::with_capacity(STREAM_BUFFER_BYTES, file);
    let head = peek(&mut reader).map_err(|source| Error::Io {
        context: format!("reading image archive {}", path.display()),
        source,
    })?;
    if sniff_compression(&head) == Compression::Gzip {
        spool_docker_archive(MultiGzDecoder::new(reader), None)
    } else {
        spool_docker_archive(reader, None)
    }
}

/// Spools every regular member of the stream, keyed by its normalised member path.
fn spool_members(reader: impl Read, dir: &Path) -> Result<HashMap<String, SpooledMember>> {
    let mut archive = tar::Archive::new(BufReader::with_capacity(STREAM_BUFFER_BYTES, reader));
    let entries = archive
        .entries()
        .map_err(Error::tar("reading the image archive"))?;
    let mut members = HashMap::new();
    for (blob_number, entry) in entries.enumerate() {
        let entry = entry.map_err(Error::tar("reading the image archive"))?;
        if !entry.header().entry_type().is_file() {
            // Directories, symlinks (docker dedups layers with symlinks in old versions: those
            // point at a member we spool anyway) and oddities carry no blob of their own.
            if let (Some(name), Some(target)) = (
                member_name(&entry.path_bytes()),
                entry.link_name_bytes().and_then(|t| member_name(&t)),
            ) {
                if entry.header().entry_type().is_symlink() {
                    let resolved = resolve_member_symlink(&name, &target);
                    members.insert(name, SpooledMember::alias(&resolved));
                }
            }
            continue;
        }
        let Some(name) = member_name(&entry.path_bytes()) else {
            continue;
        };
        let file = dir.join(format!("blob-{blob_number}"));
        let member = spool_member(entry, &name, &file)?;
        members.insert(name, member);
    }
    resolve_aliases(&mut members);
    Ok(members)
}

impl SpooledMember {
    /// A placeholder for a symlinked member, resolved by [`resolve_aliases`].
    fn alias(target: &str) -> Self {
        SpooledMember {
            file: PathBuf::from(format!("alias:{target}")),
            archived_size: 0,
            compression: Compression::None,
        }
    }

    fn alias_target(&self) -> Option<&str> {
        self.file.to_str()?.strip_prefix("alias:")
    }
}

/// Replaces symlinked members with the member they point to (one hop is all docker ever writes).
fn resolve_aliases(members: &mut HashMap<String, SpooledMember>) {
    let aliases: Vec<(String, String)> = members
        .iter()
        .filter_map(|(name, m)| Some((name.clone(), m.alias_target()?.to_string())))
        .collect();
    for (name, target) in aliases {
        match members.get(&target) {
            Some(real) if real.alias_target().is_none() => {
                let copy = SpooledMember {
                    file: real.file.clone(),
                    archived_size: real.archived_size,
                    compression: real.compression,
                };
                members.insert(name, copy);
            }
            _ => {
                members.remove(&name);
            }
        }
    }
}

fn resolve_member_symlink(name: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    let parent = name.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    crate::image::flatten::normalize_path(&format!("{parent}/{target}"))
        .unwrap_or_else(|| target.to_string())
}

/// Member names normalised the same way as manifest references, so that `./abc/layer.tar` and
/// `abc/layer.tar` match.
fn member_name(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let normalised = crate::image::flatten::normalize_path(text)?;
    (normalised != "/").then_some(normalised)
}

/// Counts the bytes read through it, so that a truncated member can be told from a short one.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn peek(reader: &mut impl io::BufRead) -> io::Result<Vec<u8>> {
    let buf = reader.fill_buf()?;
    Ok(buf[..buf.len().min(8)].to_vec())
}

fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn spool_member<R: Read>(
    entry: tar::Entry<'_, R>,
    name: &str,
    file: &Path,
) -> Result<SpooledMember> {
    let declared_size = entry.size();
    let context = || format!("spooling archive member {name}");
    let mut source = BufReader::with_capacity(
        64 * 1024,
        CountingReader {
            inner: entry,
            count: 0,
        },
    );
    let head = peek(&mut source).map_err(Error::tar(context()))?;
    let compression = sniff_compression(&head);
    let out = File::create(file).map_err(Error::io(format!(
        "creating spool file {} for {name}",
        file.display()
    )))?;
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let copied = match compression {
        Compression::Gzip => {
            let mut decoder = MultiGzDecoder::new(&mut source);
            io::copy(&mut decoder, &mut out)
        }
        Compression::None | Compression::Zstd => io::copy(&mut source, &mut out),
    };
    copied.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            Error::tar(context())(e)
        }
        _ => Error::Io {
            context: context(),
            source: e,
        },
    })?;
    out.flush().map_err(Error::io(context()))?;
    // Whatever trailing bytes the decoder left belong to the member too.
    io::copy(&mut source, &mut io::sink()).map_err(Error::tar(context()))?;
    let archived_size = source.into_inner().count;
    // tar hands out a short read, not an error, when the stream ends inside a member.
    if archived_size != declared_size {
        return Err(archive_error(
            context(),
            format!("truncated: {archived_size} of {declared_size} bytes present"),
        ));
    }
    Ok(SpooledMember {
        file: file.to_path_buf(),
        archived_size,
        compression,
    })
}

/// One image as the manifest describes it, with member names normalised.
fn resolve_image(
    dir: tempfile::TempDir,
    members: HashMap<String, SpooledMember>,
) -> Result<SpooledImage> {
    let refs = manifest::image_refs(
        |name| members.contains_key(name),
        |name| read_json(lookup(&members, name, "manifest")?, name),
    )?;

    let config_member = lookup(&members, &refs.config, "config")?;
    let config_bytes = read_bounded(config_member, &refs.config)?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(Error::archive_json(format!("image config {}", refs.config)))?;
    let config_digest = sha256_prefixed(&config_bytes);

    let mut layers = Vec::with_capacity(refs.layers.len());
    for layer in &refs.layers {
        let member = lookup(&members, layer, "layer")?;
        if member.compression == Compression::Zstd {
            return Err(archive_error(
                format!("layer {layer}"),
                "zstd-compressed layers are not supported; save the image uncompressed or gzipped",
            ));
        }
        layers.push(member.file.clone());
    }
    check_layer_count(&config, layers.len())?;

    Ok(SpooledImage {
        dir,
        layers,
        config,
        config_digest,
        repo_tags: refs.repo_tags,
    })
}

/// A config whose rootfs lists a different number of layers than the manifest would flatten to
/// a filesystem docker would never build: refuse it instead of minifying the wrong thing.
fn check_layer_count(config: &Value, layer_count: usize) -> Result<()> {
    let Some(diff_ids) = config.pointer("/rootfs/diff_ids").and_then(Value::as_array) else {
        return Ok(());
    };
    if diff_ids.len() != layer_count {
        return Err(archive_error(
            "image config",
            format!(
                "rootfs lists {} layers but the manifest {}",
                diff_ids.len(),
                layer_count
            ),
        ));
    }
    Ok(())
}

fn lookup<'a>(
    members: &'a HashMap<String, SpooledMember>,
    reference: &str,
    what: &str,
) -> Result<&'a SpooledMember> {
    members.get(reference).ok_or_else(|| {
        archive_error(
            format!("{what} {reference}"),
            "referenced by the manifest but missing from the archive (truncated?)",
        )
    })
}

fn read_bounded(member: &SpooledMember, name: &str) -> Result<Vec<u8>> {
    if member.archived_size > MAX_JSON_BYTES {
        return Err(archive_error(
            name.to_string(),
            format!(
                "{} bytes is too large for JSON metadata",
                member.archived_size
            ),
        ));
    }
    let file = File::open(&member.file).map_err(Error::io(format!("reading spooled {name}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::io(format!("reading spooled {name}")))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(archive_error(
            name.to_string(),
            "too large for JSON metadata",
        ));
    }
    Ok(bytes)
}

fn read_json(member: &SpooledMember, name: &str) -> Result<Value> {
    let bytes = read_bounded(member, name)?;
    serde_json::from_slice(&bytes).map_err(Error::archive_json(name))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{gzip, DockerArchive, LayerBuilder};

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        files
            .iter()
            .fold(LayerBuilder::new(), |layer, (path, data)| {
                layer.file(path, data)
            })
            .bytes()
    }

    fn config_json(layers: usize) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": vec!["sha256:00"; layers]},
        }))
        .unwrap()
    }

    /// A docker-save archive with the manifest last, as docker writes it.
    fn docker_archive(layers: &[Vec<u8>]) -> Vec<u8> {
        let config: Value = serde_json::from_slice(&config_json(layers.len())).unwrap();
        DockerArchive::of(layers, &config, "t:1")
    }

    #[test]
    fn docker_layout_spools_layers_in_manifest_order_and_gunzips() {
        let plain = tar_of(&[("a", b"first")]);
        let compressed = gzip(&tar_of(&[("b", b"second")]));
        let archive = docker_archive(&[plain.clone(), compressed]);
        let image = spool_docker_archive(archive.as_slice(), None).unwrap();
        assert_eq!(image.layers.len(), 2);
        assert_eq!(std::fs::read(&image.layers[0]).unwrap(), plain);
        assert_eq!(
            std::fs::read(&image.layers[1]).unwrap(),
            tar_of(&[("b", b"second")])
        );
        assert_eq!(image.repo_tags, vec!["t:1".to_string()]);
        assert_eq!(image.config["config"]["Cmd"][0], "/bin/sh");
        assert_eq!(image.config_digest, sha256_prefixed(&config_json(2)));
    }

    #[test]
    fn oci_layout_is_followed_from_index_json() {
        let layer = tar_of(&[("x", b"oci")]);
        let config = config_json(1);
        let hex = |b: &[u8]| hex::encode(Sha256::digest(b));
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"digest": format!("sha256:{}", hex(&config)), "size": config.len()},
            "layers": [{"digest": format!("sha256:{}", hex(&layer)), "size": layer.len()}],
        }))
        .unwrap();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"digest": format!("sha256:{}", hex(&manifest)),
                "annotations": {"io.containerd.image.name": "oci:tag"}}],
        }))
        .unwrap();
        let archive = [&layer, &config, &manifest]
            .into_iter()
            .fold(
                LayerBuilder::new().file("index.json", &index),
                |tar, blob| tar.file(&format!("blobs/sha256/{}", hex(blob)), blob),
            )
            .bytes();
        let image = spool_docker_archive(archive.as_slice(), None).unwrap();
        assert_eq!(std::fs::read(&image.layers[0]).unwrap(), layer);
        assert_eq!(image.repo_tags, vec!["oci:tag".to_string()]);
    }

    #[test]
    fn missing_manifest_is_an_archive_error() {
        let archive = tar_of(&[("layer0/layer.tar", &tar_of(&[("a", b"x")]))]);
        let err = spool_docker_archive(archive.as_slice(), None).unwrap_err();
        assert!(err.is_malformed_archive(), "{err}");
    }

    #[test]
    fn missing_layer_is_an_archive_error() {
        let manifest = serde_json::json!([{"Config": "cfg.json", "Layers": ["gone/layer.tar"]}]);
        let archive = tar_of(&[
            ("cfg.json", &config_json(1)),
            ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
        ]);
        let err = spool_docker_archive(archive.as_slice(), None).unwrap_err();
        assert!(err.to_string().contains("gone/layer.tar"), "{err}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let layer = tar_of(&[("a", &[7u8; 3000])]);
        let archive = docker_archive(&[layer.clone(), gzip(&layer)]);
        // Cutting off the trailing zero blocks loses nothing; anything earlier must fail.
        let content_end = archive.len() - 1024;
        for cut in (0..content_end).step_by(97) {
            let result = spool_docker_archive(&archive[..cut], None);
            assert!(
                result.as_ref().is_err_and(Error::is_malformed_archive),
                "cut at {cut} of {}: {result:?}",
                archive.len()
            );
        }
    }

    #[test]
    fn garbage_is_an_archive_error() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
        assert!(
            spool_docker_archive(garbage.as_slice(), None).is_err_and(|e| e.is_malformed_archive())
        );
    }

    #[test]
    fn layer_count_mismatch_with_config_is_refused() {
        let manifest = serde_json::json!([{"Config": "cfg.json", "Layers": ["l/layer.tar"]}]);
        let archive = tar_of(&[
            ("l/layer.tar", &tar_of(&[("a", b"x")])),
            ("cfg.json", &config_json(3)),
            ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
        ]);
        assert!(spool_docker_archive(archive.as_slice(), None).is_err());
    }

    #[test]
    fn gzipped_whole_tarball_is_accepted() {
        let archive = docker_archive(&[tar_of(&[("a", b"x")])]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.tar.gz");
        std::fs::write(&path, gzip(&archive)).unwrap();
        let image = spool_tarball(&path).unwrap();
        assert_eq!(image.layers.len(), 1);
    }
}
