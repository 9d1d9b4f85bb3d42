//! The tests' one way to build tar members, layers and image archives: [`LayerBuilder`] writes a
//! layer (in memory, or streamed into any writer for the big generated images), and
//! [`DockerArchive`] wraps layers into a `docker save` archive with the manifest last, as
//! Docker 20.10 writes it. Self-contained (std, tar, serde_json, flate2, tempfile only) so the end-to-end
//! tests include this same file from `tests/common`.

use std::io::{Read, Write};

/// The pax record prefix GNU tar and Docker use for extended attributes.
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

/// Builds layer tars member by member; every member has mtime 1 700 000 000.
pub struct LayerBuilder<W: Write = Vec<u8>> {
    builder: tar::Builder<W>,
}

impl Default for LayerBuilder<Vec<u8>> {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerBuilder<Vec<u8>> {
    /// A layer built in memory.
    pub fn new() -> Self {
        Self::to(Vec::new())
    }

    /// The layer's bytes.
    pub fn bytes(self) -> Vec<u8> {
        self.finish()
    }
}

impl<W: Write> LayerBuilder<W> {
    /// A layer streamed into `writer` (for generated images too big to hold in RAM).
    pub fn to(writer: W) -> Self {
        LayerBuilder {
            builder: tar::Builder::new(writer),
        }
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub fn finish(self) -> W {
        self.builder.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        header.set_size(0);
        header
    }

    /// Any member: `body` is the content of a file, the target of a (hard or sym) link.
    pub fn entry(mut self, path: &str, kind: tar::EntryType, body: &[u8], mode: u32) -> Self {
        let mut header = Self::header(kind, mode);
        if kind.is_symlink() || kind.is_hard_link() {
            let target = std::str::from_utf8(body).unwrap();
            self.builder.append_link(&mut header, path, target).unwrap();
        } else {
            header.set_size(body.len() as u64);
            self.builder.append_data(&mut header, path, body).unwrap();
        }
        self
    }

    /// A regular file, mode 0644.
    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.entry(path, tar::EntryType::Regular, data, 0o644)
    }

    /// A regular file of `size` bytes read from `data` (streamed, never buffered).
    #[allow(dead_code)] // the end-to-end tests' generated big images
    pub fn file_from(mut self, path: &str, mode: u32, size: u64, data: impl Read) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode);
        header.set_size(size);
        self.builder.append_data(&mut header, path, data).unwrap();
        self
    }

    /// A directory, mode 0755.
    pub fn dir(self, path: &str) -> Self {
        self.entry(path, tar::EntryType::Directory, b"", 0o755)
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(path, tar::EntryType::Symlink, target.as_bytes(), 0o777)
    }

    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(path, tar::EntryType::Link, target.as_bytes(), 0o644)
    }

    pub fn device(mut self, path: &str, kind: tar::EntryType, major: u32, minor: u32) -> Self {
        let mut header = Self::header(kind, 0o600);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.builder
            .append_data(&mut header, path, &[][..])
            .unwrap();
        self
    }

    /// Extended attributes (`security.capability`, ...) for the next member, as a pax header.
    pub fn xattrs(mut self, xattrs: &[(&str, &[u8])]) -> Self {
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("{XATTR_PAX_PREFIX}{k}"), *v))
            .collect();
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        self
    }

    /// A setuid file owned by 1000:1001 with extended attributes.
    pub fn file_with_xattrs(self, path: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> Self {
        self.xattrs(xattrs).owned(path, data, 0o4755, 1000, 1001)
    }

    /// A file with mode 0640 owned by `uid:gid`.
    pub fn owned_file(self, path: &str, data: &[u8], uid: u64, gid: u64) -> Self {
        self.owned(path, data, 0o640, uid, gid)
    }

    fn owned(mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_size(data.len() as u64);
        self.builder.append_data(&mut header, path, data).unwrap();
        self
    }

    /// A member whose name is written raw into the header, bypassing tar's path checks (for
    /// hostile archives: `../` escapes and the like).
    pub fn raw_file(mut self, raw_name: &[u8], data: &[u8]) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, 0o644);
        header.set_size(data.len() as u64);
        let name = &mut header.as_old_mut().name;
        name.fill(0);
        name[..raw_name.len()].copy_from_slice(raw_name);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }
}

/// A `docker save` archive: `l<i>/layer.tar` members, then the config, then `manifest.json`.
pub struct DockerArchive<W: Write = Vec<u8>> {
    tar: LayerBuilder<W>,
    layers: Vec<String>,
}

impl DockerArchive<Vec<u8>> {
    /// An archive built in memory.
    pub fn new() -> Self {
        Self::to(Vec::new())
    }

    /// The whole archive of `layers` with `config` tagged `tag`, in memory.
    pub fn of(layers: &[Vec<u8>], config: &serde_json::Value, tag: &str) -> Vec<u8> {
        layers
            .iter()
            .fold(Self::new(), |archive, layer| archive.layer(layer))
            .finish(config, &[tag])
    }
}

impl Default for DockerArchive<Vec<u8>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Write> DockerArchive<W> {
    pub fn to(writer: W) -> Self {
        DockerArchive {
            tar: LayerBuilder::to(writer),
            layers: Vec::new(),
        }
    }

    fn next_name(&mut self) -> String {
        let name = format!("l{}/layer.tar", self.layers.len());
        self.layers.push(name.clone());
        name
    }

    /// The next layer, from memory (plain or compressed: the bytes go in as they are).
    pub fn layer(mut self, bytes: &[u8]) -> Self {
        let name = self.next_name();
        self.tar = self.tar.file(&name, bytes);
        self
    }

    /// The next layer, streamed from a file.
    #[allow(dead_code)] // the end-to-end tests' generated big images
    pub fn layer_file(mut self, path: &std::path::Path) -> Self {
        let name = self.next_name();
        let size = std::fs::metadata(path).unwrap().len();
        let file = std::fs::File::open(path).unwrap();
        self.tar = self.tar.file_from(&name, 0o644, size, file);
        self
    }

    /// Writes the config (`cfg.json`) and the manifest naming `tags`; returns the writer.
    pub fn finish(self, config: &serde_json::Value, tags: &[&str]) -> W {
        let manifest = serde_json::json!([
            {"Config": "cfg.json", "RepoTags": tags, "Layers": self.layers}
        ]);
        self.tar
            .file("cfg.json", &serde_json::to_vec(config).unwrap())
            .file("manifest.json", &serde_json::to_vec(&manifest).unwrap())
            .finish()
    }
}

/// `data` gzipped (fast level).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A layer of `(path, type, body, mode)` members, in memory (a link's body is its target).
pub fn layer_tar(entries: &[(&str, tar::EntryType, &[u8], u32)]) -> Vec<u8> {
    entries
        .iter()
        .fold(LayerBuilder::new(), |layer, (path, kind, body, mode)| {
            layer.entry(path, *kind, body, *mode)
        })
        .bytes()
}

/// Writes layers to a temp dir and returns it with their paths.
pub fn write_layers(layers: Vec<Vec<u8>>) -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = layers
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.path().join(format!("layer{i}.tar"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();
    (dir, paths)
}
