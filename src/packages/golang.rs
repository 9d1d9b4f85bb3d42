//! Go binaries' build info: since Go 1.18 the linker writes into every binary (ELF section
//! `.go.buildinfo`) the Go version and the module list `go version -m` prints — `mod` the main
//! module, `dep` each dependency, `=>` a replacement. Each module becomes a `pkg:golang`
//! package located at the binary, and the toolchain's standard library one more (`stdlib`,
//! which is how scanners match Go's own CVEs). Binaries of older Go (pointer-based build info)
//! are not read.

use super::LanguagePackage;
use crate::image::{Entry, EntryKind, ImageView};

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Larger files are not read.
const MAX_BINARY_BYTES: u64 = 512 << 20;

/// One module of a binary's build info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
}

/// What a Go binary says it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.19.8`.
    pub go_version: String,
    /// The main module (`(devel)` when built from a checkout).
    pub main: Option<Module>,
    pub deps: Vec<Module>,
}

/// An executable regular file that may be a Go binary (shared libraries are not).
pub(super) fn may_be_binary(entry: &Entry) -> bool {
    entry.kind == EntryKind::File
        && entry.mode & 0o111 != 0
        && (4096..=MAX_BINARY_BYTES).contains(&entry.size)
        && !entry.path.contains(".so")
}

/// The modules of the Go binary `entry`, if it is one.
pub(super) fn binary<V: ImageView + ?Sized>(
    view: &V,
    entry: &Entry,
    kept: &impl Fn(&str) -> bool,
) -> Vec<LanguagePackage> {
    if !view
        .read(&entry.path, 4)
        .is_ok_and(|head| head == b"\x7fELF")
    {
        return Vec::new();
    }
    let Ok(bytes) = view.read(&entry.path, MAX_BINARY_BYTES as usize) else {
        return Vec::new();
    };
    let Some(info) = build_info(&bytes) else {
        return Vec::new();
    };
    let package = |path: String, version: String| {
        LanguagePackage::new(
            "golang",
            None,
            path,
            version,
            None,
            &entry.path,
            &[entry.path.as_str()],
            kept,
        )
    };
    let mut out: Vec<LanguagePackage> = info
        .main
        .into_iter()
        .chain(info.deps)
        .map(|m| package(m.path, m.version))
        .collect();
    out.push(package(
        "stdlib".into(),
        info.go_version.trim_start_matches("go").to_string(),
    ));
    out
}

/// Where the build info starts: the `.go.buildinfo` section, else (section headers stripped)
/// the first 16-byte-aligned magic.
fn header_offset(bytes: &[u8]) -> Option<usize> {
    if let Ok(elf) = goblin::elf::Elf::parse(bytes) {
        let section = elf
            .section_headers
            .iter()
            .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".go.buildinfo"));
        if let Some(section) = section {
            return Some(section.sh_offset as usize);
        }
    }
    (0..bytes.len().saturating_sub(32))
        .step_by(16)
        .find(|&at| bytes[at..].starts_with(MAGIC))
}

/// An unsigned LEB128 varint at `at`: (value, bytes used).
fn uvarint(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut value: usize = 0;
    for (i, byte) in bytes.get(at..)?.iter().take(10).enumerate() {
        value |= ((byte & 0x7f) as usize).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The build info of a Go binary's bytes (Go 1.18+), `None` for anything else.
pub fn build_info(bytes: &[u8]) -> Option<BuildInfo> {
    let at = header_offset(bytes)?;
    let header = bytes.get(at..at + 32)?;
    // Flag 2: version and module info are inline strings (Go 1.18+), not pointers.
    if !header.starts_with(MAGIC) || header[15] & 2 == 0 {
        return None;
    }
    let mut cursor = at + 32;
    let mut string = || -> Option<String> {
        let (len, used) = uvarint(bytes, cursor)?;
        let start = cursor + used;
        let text = bytes.get(start..start.checked_add(len)?)?;
        cursor = start + len;
        Some(String::from_utf8_lossy(text).to_string())
    };
    let go_version = string()?;
    let mut modinfo = string().unwrap_or_default();
    // The module info is framed by 16-byte sentinels (for `go version -m` on old binaries).
    if modinfo.len() >= 33 && modinfo.as_bytes()[modinfo.len() - 17] == b'\n' {
        modinfo = modinfo[16..modinfo.len() - 16].to_string();
    }
    let (main, deps) = modules(&modinfo);
    Some(BuildInfo {
        go_version,
        main,
        deps,
    })
}

/// The `mod` and `dep` lines of module info, a `=>` replacement applied to the line before it
/// when it names another module (a local directory replacement keeps the required version).
fn modules(modinfo: &str) -> (Option<Module>, Vec<Module>) {
    let mut main = None;
    let mut deps: Vec<Module> = Vec::new();
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let module = || Module {
            path: fields.get(1).unwrap_or(&"").to_string(),
            version: fields.get(2).unwrap_or(&"").to_string(),
        };
        match fields[0] {
            "mod" => main = Some(module()),
            "dep" => deps.push(module()),
            // A directory replacement (`=> ../dep (devel)`) is no module version: the
            // required one is what the binary is known by.
            "=>" if !fields.get(1).is_some_and(|p| {
                p.starts_with("./") || p.starts_with("../") || p.starts_with('/')
            }) =>
            {
                if let Some(last) = deps.last_mut() {
                    *last = module();
                }
            }
            _ => {}
        }
    }
    (main, deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build info as the Go 1.18+ linker lays it out, inside some other bytes.
    fn blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut out = vec![0u8; 48];
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[8, 2]);
        out.extend_from_slice(&[0; 16]);
        for text in [version.to_string(), modinfo.to_string()] {
            let mut len = text.len();
            while len >= 0x80 {
                out.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&[0; 64]);
        out
    }

    #[test]
    fn modules_and_replacements_of_inline_build_info() {
        let sentinel = "0123456789abcdef";
        let info = format!(
            "{sentinel}path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
             dep\tgolang.org/x/text\tv0.3.7\th1:abc=\n\
             dep\texample.com/old\tv1.0.0\th1:x=\n=>\texample.com/new\tv1.1.0\th1:y=\n\
             dep\texample.com/local\tv1.2.3\n=>\t../local\t(devel)\t\nbuild\t-compiler=gc\n{sentinel}"
        );
        let parsed = build_info(&blob("go1.19.8", &info)).unwrap();
        assert_eq!(parsed.go_version, "go1.19.8");
        assert_eq!(
            parsed.main,
            Some(Module {
                path: "example.com/app".into(),
                version: "(devel)".into()
            })
        );
        let deps: Vec<(&str, &str)> = parsed
            .deps
            .iter()
            .map(|m| (m.path.as_str(), m.version.as_str()))
            .collect();
        assert_eq!(
            deps,
            [
                ("golang.org/x/text", "v0.3.7"),
                ("example.com/new", "v1.1.0"),
                ("example.com/local", "v1.2.3")
            ]
        );
    }

    #[test]
    fn pre_118_pointer_build_info_and_other_bytes_are_not_read() {
        let mut old = blob("go1.17", "x");
        old[48 + 15] = 0;
        assert!(build_info(&old).is_none());
        assert!(build_info(b"\x7fELF and nothing else").is_none());
        assert_eq!(uvarint(&[0xac, 0x02], 0), Some((300, 2)));
    }
}
