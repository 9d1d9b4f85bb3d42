//! Parser for glibc's `/etc/ld.so.cache`: soname → library paths, with the flags ld.so uses to
//! pick the entry matching the loading object's ABI.
//!
//! Two layouts exist: the current one (magic `glibc-ld.so.cache1.1`, glibc ≥ 2.32 writes only this)
//! and the old `ld.so-1.7.0` one, which older ldconfig versions wrote with the new table embedded
//! after it. Only the new table is read: every glibc since 2.2 writes it, and it alone carries
//! the 64-bit hwcap words. Every offset is bounds-checked: a cache from an image is untrusted input.

use std::collections::HashMap;

const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
/// magic(20) nlibs(4) len_strings(4) flags(1) pad(3) extension_offset(4) unused(12)
const NEW_HEADER_LEN: usize = 48;
/// flags(4) key(4) value(4) osversion(4) hwcap(8)
const NEW_ENTRY_LEN: usize = 24;
/// magic padded to 12 bytes, nlibs(4)
const OLD_HEADER_LEN: usize = 16;
/// flags(4) key(4) value(4)
const OLD_ENTRY_LEN: usize = 12;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_GLIBC_HWCAPS: u32 = 2;
/// Bit 62 of an entry's hwcap word: the low 32 bits index the glibc-hwcaps subdirectory names.
const HWCAP_EXTENSION_BIT: u64 = 1 << 62;

/// `FLAG_ELF_LIBC6`: the library type ldconfig records for glibc-linked objects.
pub const FLAG_ELF_LIBC6: u32 = 0x0003;
/// `FLAG_ELF`: a library of unknown libc; ld.so accepts it for any ABI.
pub const FLAG_ELF: u32 = 0x0001;
/// `FLAG_X8664_LIB64`: the x86-64 ABI bits of the flags word.
pub const FLAG_X8664_LIB64: u32 = 0x0300;
/// `FLAG_AARCH64_LIB64`.
pub const FLAG_AARCH64_LIB64: u32 = 0x0a00;
/// `FLAG_X8664_LIBX32`.
pub const FLAG_X8664_LIBX32: u32 = 0x0800;

/// Why a cache could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdCacheError {
    #[error("not an ld.so.cache (unknown magic)")]
    BadMagic,
    #[error("ld.so.cache truncated: {what} needs bytes {start}..{end} of {len}")]
    Truncated {
        what: &'static str,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("ld.so.cache in the old format has no embedded new-format table")]
    OldFormatOnly,
    #[error("ld.so.cache is big-endian; only little-endian caches are supported")]
    BigEndian,
}

/// One cache entry: ld.so would map `soname` to `path` for objects of a matching ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub soname: String,
    pub path: String,
    /// Library type (low byte) and required ABI (`FLAG_*_LIB64` bits), as ldconfig wrote them.
    pub flags: u32,
    /// Raw hwcap word: a legacy hwcap mask or, with bit 62, a glibc-hwcaps index.
    pub hwcap: u64,
    /// The glibc-hwcaps subdirectory (`x86-64-v3`) this entry is specific to, if any.
    pub hwcaps_subdir: Option<String>,
}

impl CacheEntry {
    /// True when the entry only applies to CPUs with some capability (glibc-hwcaps or legacy
    /// hwcap bits): ld.so may or may not pick it depending on the machine the image runs on.
    pub fn is_hwcap_specific(&self) -> bool {
        self.hwcap != 0
    }

    /// What ld.so's `_dl_cache_check_flags` accepts for an object that wants `abi_flags`.
    pub fn matches_abi(&self, abi_flags: u32) -> bool {
        self.flags == FLAG_ELF || self.flags == abi_flags
    }
}

/// A parsed cache, in the cache's own order (ldconfig sorts so the preferred entry comes first).
#[derive(Debug, Clone, Default)]
pub struct LdCache {
    pub entries: Vec<CacheEntry>,
    by_soname: HashMap<String, Vec<usize>>,
}

impl LdCache {
    /// Parses a cache file's bytes; never panics on garbage.
    pub fn parse(bytes: &[u8]) -> Result<Self, LdCacheError> {
        let new_start = if bytes.starts_with(NEW_MAGIC) {
            0
        } else if bytes.starts_with(OLD_MAGIC) {
            let nlibs = read_u32(bytes, OLD_MAGIC.len() + 1, "old header")? as usize;
            let old_end = nlibs
                .checked_mul(OLD_ENTRY_LEN)
                .and_then(|n| n.checked_add(OLD_HEADER_LEN))
                .ok_or(LdCacheError::OldFormatOnly)?;
            // The new table starts at the next multiple of its alignment (8, from its u64 field).
            let aligned = old_end.checked_add(7).ok_or(LdCacheError::OldFormatOnly)? & !7;
            match bytes.get(aligned..) {
                Some(rest) if rest.starts_with(NEW_MAGIC) => aligned,
                _ => return Err(LdCacheError::OldFormatOnly),
            }
        } else {
            return Err(LdCacheError::BadMagic);
        };
        parse_new(bytes, new_start)
    }

    /// Entries for `soname`, preferred first.
    pub fn lookup<'a>(&'a self, soname: &str) -> impl Iterator<Item = &'a CacheEntry> + 'a {
        self.by_soname
            .get(soname)
            .map(|indices| indices.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|&i| self.entries.get(i))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The cache flags ld.so requires for an object of this ELF machine and class, when known
/// (`_DL_CACHE_DEFAULT_ID` of each port). `None` means: accept any and check the ELF header.
pub fn abi_flags_for(e_machine: u16, is_64: bool) -> Option<u32> {
    use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};
    match (e_machine, is_64) {
        (EM_X86_64, true) => Some(FLAG_ELF_LIBC6 | FLAG_X8664_LIB64),
        (EM_X86_64, false) => Some(FLAG_ELF_LIBC6 | FLAG_X8664_LIBX32),
        (EM_386, false) => Some(FLAG_ELF_LIBC6),
        (EM_AARCH64, true) => Some(FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64),
        _ => None,
    }
}

fn parse_new(bytes: &[u8], start: usize) -> Result<LdCache, LdCacheError> {
    let header = slice(bytes, start, NEW_HEADER_LEN, "header")?;
    let nlibs = read_u32(header, 20, "header")? as usize;
    let endian_flag = header.get(28).copied().unwrap_or(0);
    // 0 = written before the flag existed (host order, which was little-endian wherever this
    // tool runs), 2 = little, 3 = big.
    if endian_flag == 3 {
        return Err(LdCacheError::BigEndian);
    }
    let extension_offset = read_u32(header, 32, "header")? as usize;
    let entries_start = start + NEW_HEADER_LEN;
    let table_len = nlibs
        .checked_mul(NEW_ENTRY_LEN)
        .ok_or(LdCacheError::Truncated {
            what: "entry table",
            start: entries_start,
            end: usize::MAX,
            len: bytes.len(),
        })?;
    let table = slice(bytes, entries_start, table_len, "entry table")?;
    // String offsets of the new format are relative to the start of its header.
    let strings = &bytes[start..];
    let hwcaps_names = if extension_offset != 0 {
        read_hwcaps_names(strings, extension_offset)
    } else {
        Vec::new()
    };

    let mut cache = LdCache::default();
    for raw in table.chunks_exact(NEW_ENTRY_LEN) {
        let flags = read_u32(raw, 0, "entry")?;
        let key = read_u32(raw, 4, "entry")? as usize;
        let value = read_u32(raw, 8, "entry")? as usize;
        let hwcap = read_u64(raw, 16, "entry")?;
        let (Some(soname), Some(path)) = (c_str(strings, key), c_str(strings, value)) else {
            // One bad entry must not hide the rest of the cache.
            continue;
        };
        let hwcaps_subdir = if hwcap & HWCAP_EXTENSION_BIT != 0 {
            hwcaps_names.get((hwcap & 0xffff_ffff) as usize).cloned()
        } else {
            None
        };
        let index = cache.entries.len();
        cache
            .by_soname
            .entry(soname.clone())
            .or_default()
            .push(index);
        cache.entries.push(CacheEntry {
            soname,
            path,
            flags,
            hwcap,
            hwcaps_subdir,
        });
    }
    Ok(cache)
}

/// The glibc-hwcaps subdirectory names of the extension section; empty if absent or malformed
/// (they only label entries, so a bad extension must not fail the whole cache).
fn read_hwcaps_names(strings: &[u8], offset: usize) -> Vec<String> {
    let parse = || -> Result<Vec<String>, LdCacheError> {
        if read_u32(strings, offset, "extension")? != EXTENSION_MAGIC {
            return Ok(Vec::new());
        }
        let count = read_u32(strings, offset + 4, "extension")? as usize;
        let mut names = Vec::new();
        for i in 0..count.min(1024) {
            let section = offset + 8 + i * 16;
            let tag = read_u32(strings, section, "extension section")?;
            if tag != EXTENSION_TAG_GLIBC_HWCAPS {
                continue;
            }
            let data = read_u32(strings, section + 8, "extension section")? as usize;
            let size = read_u32(strings, section + 12, "extension section")? as usize;
            let array = slice(strings, data, size, "hwcaps array")?;
            for chunk in array.chunks_exact(4) {
                let name_offset = read_u32(chunk, 0, "hwcaps array")? as usize;
                names.push(c_str(strings, name_offset).unwrap_or_default());
            }
        }
        Ok(names)
    };
    parse().unwrap_or_default()
}

fn slice<'a>(
    bytes: &'a [u8],
    start: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], LdCacheError> {
    let end = start.checked_add(len);
    end.and_then(|end| bytes.get(start..end))
        .ok_or(LdCacheError::Truncated {
            what,
            start,
            end: end.unwrap_or(usize::MAX),
            len: bytes.len(),
        })
}

fn read_u32(bytes: &[u8], at: usize, what: &'static str) -> Result<u32, LdCacheError> {
    let raw = slice(bytes, at, 4, what)?;
    Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn read_u64(bytes: &[u8], at: usize, what: &'static str) -> Result<u64, LdCacheError> {
    let raw = slice(bytes, at, 8, what)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(raw);
    Ok(u64::from_le_bytes(word))
}

fn c_str(bytes: &[u8], at: usize) -> Option<String> {
    let rest = bytes.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new-format cache with the given (soname, path, flags, hwcap) entries.
    fn build_new(entries: &[(&str, &str, u32, u64)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let strings_base = NEW_HEADER_LEN + entries.len() * NEW_ENTRY_LEN;
        let mut table = Vec::new();
        for (soname, path, flags, hwcap) in entries {
            let key = strings_base + strings.len();
            strings.extend_from_slice(soname.as_bytes());
            strings.push(0);
            let value = strings_base + strings.len();
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&(key as u32).to_le_bytes());
            table.extend_from_slice(&(value as u32).to_le_bytes());
            table.extend_from_slice(&0u32.to_le_bytes());
            table.extend_from_slice(&hwcap.to_le_bytes());
        }
        let mut out = NEW_MAGIC.to_vec();
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&[2, 0, 0, 0]);
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&table);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn parses_generated_new_format() {
        let bytes = build_new(&[
            ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0x0303, 0),
            ("libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 0x0003, 0),
        ]);
        let cache = LdCache::parse(&bytes).expect("valid cache");
        let found: Vec<_> = cache.lookup("libz.so.1").collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, "/lib/x86_64-linux-gnu/libz.so.1");
        let x86_64 = abi_flags_for(goblin::elf::header::EM_X86_64, true).unwrap();
        assert!(found[0].matches_abi(x86_64));
        assert!(!found[1].matches_abi(x86_64));
        assert!(found[1].matches_abi(abi_flags_for(goblin::elf::header::EM_386, false).unwrap()));
        assert_eq!(cache.lookup("libnope.so").count(), 0);
    }

    #[test]
    fn parses_old_format_with_embedded_new_table() {
        let new = build_new(&[("libc.so.6", "/lib/libc.so.6", 0x0303, 0)]);
        let mut bytes = OLD_MAGIC.to_vec();
        bytes.push(0);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; OLD_ENTRY_LEN]);
        while !bytes.len().is_multiple_of(8) {
            bytes.push(0);
        }
        bytes.extend_from_slice(&new);
        let cache = LdCache::parse(&bytes).expect("valid cache");
        assert_eq!(
            cache.lookup("libc.so.6").next().unwrap().path,
            "/lib/libc.so.6"
        );
    }

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        assert_eq!(LdCache::parse(b"").unwrap_err(), LdCacheError::BadMagic);
        assert_eq!(
            LdCache::parse(b"hello world").unwrap_err(),
            LdCacheError::BadMagic
        );
        let full = build_new(&[("libz.so.1", "/lib/libz.so.1", 0x0303, 0)]);
        for cut in 0..full.len() {
            let _ = LdCache::parse(&full[..cut]);
        }
        // A huge entry count must not allocate or read out of bounds.
        let mut huge = full.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(LdCache::parse(&huge).is_err());
        // Offsets pointing outside the file drop the entry, not the cache.
        let mut bad_offset = full.clone();
        bad_offset[NEW_HEADER_LEN + 4..NEW_HEADER_LEN + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(LdCache::parse(&bad_offset).unwrap().is_empty());
        let mut old = OLD_MAGIC.to_vec();
        old.push(0);
        old.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(LdCache::parse(&old).is_err());
        // Pseudo-random byte flips.
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut mutated = full.clone();
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let at = (state as usize >> 8) % mutated.len();
            mutated[at] = (state >> 3) as u8;
            let _ = LdCache::parse(&mutated);
        }
    }

    /// The host (Debian bookworm) cache must agree with `ldconfig -p`.
    #[test]
    fn host_cache_matches_ldconfig_p() {
        let bytes = match std::fs::read("/etc/ld.so.cache") {
            Ok(bytes) => bytes,
            Err(err) => {
                crate::testkit::require("the host's /etc/ld.so.cache", Err(err.to_string()));
                return;
            }
        };
        let output = match std::process::Command::new("ldconfig").arg("-p").output() {
            Ok(output) if output.status.success() => output,
            _ => match std::process::Command::new("/sbin/ldconfig")
                .arg("-p")
                .output()
            {
                Ok(output) => output,
                Err(err) => {
                    crate::testkit::require("ldconfig", Err(err.to_string()));
                    return;
                }
            },
        };
        let cache = LdCache::parse(&bytes).expect("host cache parses");
        let text = String::from_utf8_lossy(&output.stdout);
        let mut expected = Vec::new();
        for line in text.lines().skip(1) {
            // "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1"
            let Some((left, path)) = line.split_once(" => ") else {
                continue;
            };
            let soname = left.trim().split(' ').next().unwrap_or_default();
            expected.push((
                soname.to_string(),
                path.trim().to_string(),
                left.contains("x86-64"),
            ));
        }
        assert_eq!(
            cache.len(),
            expected.len(),
            "entry count differs from ldconfig -p"
        );
        for (soname, path, is_x86_64) in expected {
            let entry = cache
                .lookup(&soname)
                .find(|e| e.path == path)
                .unwrap_or_else(|| panic!("{soname} => {path} missing"));
            assert_eq!(
                entry.flags & 0xff00 == FLAG_X8664_LIB64,
                is_x86_64,
                "{soname}"
            );
        }
    }
}
