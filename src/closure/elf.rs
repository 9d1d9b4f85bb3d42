//! ELF dependencies: the interpreter (PT_INTERP) and the DT_NEEDED libraries an object pulls in,
//! found the way the dynamic loader would find them inside the image.
//!
//! glibc's order (elf/dl-load.c `_dl_map_object`): a name with `/` is a path; otherwise DT_RPATH
//! of the requesting object and of each object up its loading chain (only while the requester
//! has no DT_RUNPATH; an object with DT_RUNPATH has no effective DT_RPATH), LD_LIBRARY_PATH,
//! DT_RUNPATH of the requester, `/etc/ld.so.cache`, then the default directories (the last two
//! skipped for DF_1_NODEFLIB). Each directory is tried with its `glibc-hwcaps/*` subdirectories
//! first; objects of the wrong ELF class or machine are skipped. Because the CPU the slim image
//! will run on is unknown, every hwcaps variant found is kept besides the baseline library.
//! musl's loader (Alpine) is followed too: LD_LIBRARY_PATH, RPATH/RUNPATH up the chain, then
//! `/etc/ld-musl-ARCH.path` or `/lib:/usr/local/lib:/usr/lib`.

use std::collections::HashSet;
use std::rc::Rc;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{Dynamic, DF_1_NODEFLIB, DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME};
use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};
use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP};
use goblin::elf::Elf;
use goblin::strtab::Strtab;

use crate::closure::ldcache::abi_flags_for;
use crate::closure::resolve::{join, parent_of, resolve, Resolution};
use crate::closure::{Builder, ImageView, Reason};
use crate::image::EntryKind;

pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
/// Objects whose dynamic section lies beyond this are not parsed (noted as a warning): nothing
/// real comes close, and everything up to it is read into memory.
pub const MAX_ELF_BYTES: u64 = 512 * 1024 * 1024;
/// First read of an ELF file: headers and, for small objects, everything else.
const INITIAL_ELF_READ: usize = 64 * 1024;
/// Bound on the objects one loading chain may pull in, against pathological images.
const MAX_OBJECTS_PER_ROOT: usize = 4096;

/// The ABI identity the loader compares before accepting a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElfAbi {
    pub is_64: bool,
    pub little_endian: bool,
    pub machine: u16,
}

impl ElfAbi {
    /// Reads class, data encoding and e_machine from the first 20 bytes of an ELF file.
    pub fn from_ident(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 20 || !bytes.starts_with(ELF_MAGIC) {
            return None;
        }
        let is_64 = match bytes[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little_endian = match bytes[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let raw = [bytes[18], bytes[19]];
        let machine = if little_endian {
            u16::from_le_bytes(raw)
        } else {
            u16::from_be_bytes(raw)
        };
        Some(Self {
            is_64,
            little_endian,
            machine,
        })
    }

    /// The Debian multiarch triplet, used for default library directories and `$LIB`.
    fn multiarch(&self) -> Option<&'static str> {
        match (self.machine, self.is_64) {
            (EM_X86_64, true) => Some("x86_64-linux-gnu"),
            (EM_X86_64, false) => Some("x86_64-linux-gnux32"),
            (EM_386, false) => Some("i386-linux-gnu"),
            (EM_AARCH64, true) => Some("aarch64-linux-gnu"),
            _ => None,
        }
    }

    /// glibc's default search directories for this ABI (Debian multiarch first, then the
    /// lib64/lib32 and plain ones other distributions use).
    fn default_dirs(&self) -> Vec<String> {
        let mut dirs = Vec::new();
        if let Some(triplet) = self.multiarch() {
            dirs.push(format!("/lib/{triplet}"));
            dirs.push(format!("/usr/lib/{triplet}"));
        }
        if self.is_64 {
            dirs.extend(["/lib64".to_string(), "/usr/lib64".to_string()]);
        } else {
            dirs.extend(["/lib32".to_string(), "/usr/lib32".to_string()]);
        }
        dirs.extend(["/lib".to_string(), "/usr/lib".to_string()]);
        dirs
    }

    /// Subdirectories of `glibc-hwcaps/` ld.so may prefer, best first.
    fn hwcaps_subdirs(&self) -> &'static [&'static str] {
        match (self.machine, self.is_64) {
            (EM_X86_64, true) => &["x86-64-v4", "x86-64-v3", "x86-64-v2"],
            _ => &[],
        }
    }

    /// Expansions of `$LIB`: Debian's multiarch dir first, then the lib64/lib spellings.
    fn lib_expansions(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(triplet) = self.multiarch() {
            out.push(format!("lib/{triplet}"));
        }
        out.push(if self.is_64 { "lib64" } else { "lib" }.to_string());
        out.push("lib".to_string());
        out.dedup();
        out
    }

    /// `$PLATFORM` as the kernel's AT_PLATFORM gives it.
    fn platform(&self) -> &'static str {
        match (self.machine, self.is_64) {
            (EM_X86_64, true) => "x86_64",
            (EM_386, _) | (EM_X86_64, false) => "i686",
            (EM_AARCH64, _) => "aarch64",
            _ => "unknown",
        }
    }
}

/// What the loader needs to know about one ELF object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub abi: ElfAbi,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// DT_RPATH entries, already split on `:`; empty when the object has DT_RUNPATH.
    pub rpath: Vec<String>,
    /// DT_RUNPATH entries, split on `:`.
    pub runpath: Vec<String>,
    pub soname: Option<String>,
    /// DF_1_NODEFLIB: the cache and default directories are not searched for its needs.
    pub nodeflib: bool,
}

/// Why an ELF file could not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// The bytes given end before offset `needed`, which the parse has to reach.
    #[error("ELF data needed up to byte {needed}")]
    Truncated { needed: usize },
}

/// Parses only the parts the loader uses (header, program headers, dynamic section, its string
/// table) from a prefix of the file: symbol tables are skipped and, for a static binary, only
/// the headers are needed. When the prefix is too short, [`ElfError::Truncated`] says how many
/// bytes would do.
pub fn parse_elf(bytes: &[u8]) -> Result<ElfInfo, ElfError> {
    let abi = ElfAbi::from_ident(bytes).ok_or(ElfError::NotElf)?;
    let header_len = if abi.is_64 { 64 } else { 52 };
    require_prefix(bytes, Some(header_len))?;
    let malformed = |err: goblin::error::Error| ElfError::Malformed(err.to_string());
    let header = Elf::parse_header(bytes).map_err(malformed)?;
    let container = if abi.is_64 {
        Container::Big
    } else {
        Container::Little
    };
    let endian = if abi.little_endian {
        Endian::Little
    } else {
        Endian::Big
    };
    let ctx = Ctx::new(container, endian);
    let phdrs_end = usize::try_from(header.e_phoff).ok().and_then(|start| {
        let table = usize::from(header.e_phnum).checked_mul(usize::from(header.e_phentsize))?;
        start.checked_add(table)
    });
    require_prefix(bytes, phdrs_end)?;
    let program_headers =
        ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)
            .map_err(malformed)?;
    for ph in &program_headers {
        if ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC {
            let end = ph.p_offset.checked_add(ph.p_filesz);
            require_prefix(bytes, end.and_then(|end| usize::try_from(end).ok()))?;
        }
    }
    let interpreter = program_headers
        .iter()
        .find(|ph| ph.p_type == PT_INTERP)
        .and_then(|ph| {
            let start = usize::try_from(ph.p_offset).ok()?;
            let len = usize::try_from(ph.p_filesz).ok()?;
            let raw = bytes.get(start..start.checked_add(len)?)?;
            let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
            String::from_utf8(raw.to_vec()).ok()
        });
    let mut info = ElfInfo {
        abi,
        interpreter,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
        soname: None,
        nodeflib: false,
    };
    let Some(dynamic) = Dynamic::parse(bytes, &program_headers, ctx).map_err(malformed)? else {
        return Ok(info);
    };
    require_prefix(bytes, dynamic.info.strtab.checked_add(dynamic.info.strsz))?;
    let strtab =
        Strtab::parse(bytes, dynamic.info.strtab, dynamic.info.strsz, 0).map_err(malformed)?;
    let string_at = |offset: u64| -> Option<String> {
        strtab
            .get_at(usize::try_from(offset).ok()?)
            .map(str::to_string)
    };
    for entry in &dynamic.dyns {
        match entry.d_tag {
            DT_NEEDED => info.needed.extend(string_at(entry.d_val)),
            DT_RPATH => info.rpath.extend(split_search_path(
                &string_at(entry.d_val).unwrap_or_default(),
            )),
            DT_RUNPATH => info.runpath.extend(split_search_path(
                &string_at(entry.d_val).unwrap_or_default(),
            )),
            DT_SONAME => info.soname = string_at(entry.d_val),
            _ => {}
        }
    }
    info.nodeflib = dynamic.info.flags_1 & DF_1_NODEFLIB != 0;
    if !info.runpath.is_empty() {
        info.rpath.clear();
    }
    Ok(info)
}

/// `Ok` when `bytes` reaches `end`; an offset that overflows is malformed.
fn require_prefix(bytes: &[u8], end: Option<usize>) -> Result<(), ElfError> {
    match end {
        Some(end) if end <= bytes.len() => Ok(()),
        Some(end) => Err(ElfError::Truncated { needed: end }),
        None => Err(ElfError::Malformed("offset overflows".to_string())),
    }
}

/// Splits an RPATH/RUNPATH/LD_LIBRARY_PATH value; empty elements (meaning the working
/// directory) are dropped, the image's working directory not being known here.
pub fn split_search_path(value: &str) -> Vec<String> {
    value
        .split([':', ';'])
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

/// Expands the dynamic string tokens of one search-path element. `$LIB` has several possible
/// values (distribution-dependent), so several paths may come back; an unknown token leaves the
/// element out, as ld.so does.
pub fn expand_dst(element: &str, origin: &str, abi: &ElfAbi) -> Vec<String> {
    let mut results = vec![String::new()];
    let mut rest = element;
    while let Some(dollar) = rest.find('$') {
        for result in &mut results {
            result.push_str(&rest[..dollar]);
        }
        let after = &rest[dollar + 1..];
        let (token, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => return Vec::new(),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let values: Vec<String> = match token {
            "ORIGIN" => vec![origin.to_string()],
            "PLATFORM" => vec![abi.platform().to_string()],
            "LIB" => abi.lib_expansions(),
            _ => return Vec::new(),
        };
        results = results
            .iter()
            .flat_map(|prefix| values.iter().map(move |value| format!("{prefix}{value}")))
            .collect();
        rest = &after[consumed..];
    }
    for result in &mut results {
        result.push_str(rest);
    }
    results
}

/// One object in a loading chain: how it was found and its loader (the object that needed it).
struct Loaded {
    /// The path the loader opened (its directory is `$ORIGIN`).
    opened_as: String,
    real_path: String,
    info: Rc<ElfInfo>,
    loader: Option<usize>,
}

/// A library found for one DT_NEEDED name.
struct FoundLibrary {
    opened_as: String,
    resolution: Resolution,
    /// CPU-specific copies (glibc-hwcaps) that ld.so may prefer on some machines.
    variants: Vec<(String, Resolution)>,
}

impl<V: ImageView + ?Sized> Builder<'_, V> {
    /// Keeps the interpreter and the whole DT_NEEDED tree of the ELF object at `path` (a real,
    /// resolved path of the image), breadth-first as ld.so loads it.
    pub(super) fn link_elf(&mut self, path: &str) {
        let Some(root_info) = self.elf_info(path) else {
            return;
        };
        let mut interpreter_path = None;
        if let Some(interpreter) = root_info.interpreter.as_deref() {
            let reason = Reason::ElfInterpreter {
                of: path.to_string(),
            };
            interpreter_path = self.keep_path(interpreter, true, reason);
            if interpreter_path.is_none() && interpreter.starts_with('/') {
                self.warn(
                    path,
                    format!("ELF interpreter {interpreter} is not in the image"),
                );
            }
        }
        if root_info.needed.is_empty() {
            return;
        }
        let musl = root_info.interpreter.as_deref().is_some_and(|interp| {
            interp
                .rsplit('/')
                .next()
                .unwrap_or("")
                .starts_with("ld-musl-")
        });

        let mut objects = vec![Loaded {
            opened_as: path.to_string(),
            real_path: path.to_string(),
            info: root_info.clone(),
            loader: None,
        }];
        // Names (DT_NEEDED strings and sonames) already loaded: ld.so reuses those objects.
        let mut loaded_names: HashSet<String> = HashSet::new();
        if let (Some(interp), Some(real)) = (root_info.interpreter.as_deref(), interpreter_path) {
            if let Some(info) = self.elf_info(&real) {
                loaded_names.insert(interp.to_string());
                if let Some(soname) = &info.soname {
                    loaded_names.insert(soname.clone());
                }
            }
        }
        if let Some(soname) = &root_info.soname {
            loaded_names.insert(soname.clone());
        }

        let mut next = 0;
        while next < objects.len() && objects.len() < MAX_OBJECTS_PER_ROOT {
            let requester = next;
            next += 1;
            let needed = objects[requester].info.needed.clone();
            let requester_path = objects[requester].real_path.clone();
            for name in needed {
                if loaded_names.contains(&name) {
                    self.note_need(&requester_path, &name, true);
                    continue;
                }
                let Some(found) = self.find_library(&name, requester, &objects, musl) else {
                    self.note_need(&requester_path, &name, false);
                    continue;
                };
                self.note_need(&requester_path, &name, true);
                let reason = Reason::ElfNeeded {
                    of: requester_path.clone(),
                    soname: name.clone(),
                };
                for (opened_as, resolution) in &found.variants {
                    self.keep_resolution(opened_as, resolution, reason.clone());
                }
                self.keep_resolution(&found.opened_as, &found.resolution, reason);
                let real_path = found.resolution.path.clone();
                let Some(info) = self.elf_info(&real_path) else {
                    continue;
                };
                loaded_names.insert(name);
                if let Some(soname) = &info.soname {
                    loaded_names.insert(soname.clone());
                }
                // ld.so recognises a file it already mapped under another name (same inode).
                if objects.iter().any(|object| object.real_path == real_path) {
                    continue;
                }
                objects.push(Loaded {
                    opened_as: found.opened_as,
                    real_path,
                    info,
                    loader: Some(requester),
                });
            }
        }
    }

    fn find_library(
        &mut self,
        name: &str,
        requester: usize,
        objects: &[Loaded],
        musl: bool,
    ) -> Option<FoundLibrary> {
        let abi = objects[requester].info.abi;
        if name.contains('/') {
            // Relative names are opened against the working directory, unknown here.
            if !name.starts_with('/') {
                return None;
            }
            return self
                .try_candidate(name, &abi)
                .map(|resolution| FoundLibrary {
                    opened_as: name.to_string(),
                    resolution,
                    variants: Vec::new(),
                });
        }
        let root_origin = parent_of(&objects[0].real_path).to_string();
        let chain_origin = |object: &Loaded| parent_of(&object.opened_as).to_string();
        let mut dirs: Vec<String> = Vec::new();
        let push_expanded = |dirs: &mut Vec<String>, elements: &[String], origin: &str| {
            for element in elements {
                dirs.extend(expand_dst(element, origin, &abi));
            }
        };
        let ld_library_path = self.ld_library_path.clone();
        if musl {
            push_expanded(&mut dirs, &ld_library_path, &root_origin);
            let mut link = Some(requester);
            while let Some(index) = link {
                let object = &objects[index];
                let own: Vec<String> = object
                    .info
                    .rpath
                    .iter()
                    .chain(&object.info.runpath)
                    .cloned()
                    .collect();
                push_expanded(&mut dirs, &own, &chain_origin(object));
                link = object.loader;
            }
            dirs.extend(self.musl_system_dirs(&abi));
            return dirs.iter().find_map(|dir| self.try_dir(dir, name, &abi));
        }

        let requester_info = objects[requester].info.clone();
        if requester_info.runpath.is_empty() {
            let mut link = Some(requester);
            while let Some(index) = link {
                let object = &objects[index];
                push_expanded(&mut dirs, &object.info.rpath, &chain_origin(object));
                link = object.loader;
            }
        }
        push_expanded(&mut dirs, &ld_library_path, &root_origin);
        push_expanded(
            &mut dirs,
            &requester_info.runpath,
            &chain_origin(&objects[requester]),
        );
        if let Some(found) = dirs.iter().find_map(|dir| self.try_dir(dir, name, &abi)) {
            return Some(found);
        }
        if requester_info.nodeflib {
            return None;
        }
        if let Some(found) = self.try_ld_cache(name, &abi) {
            return Some(found);
        }
        abi.default_dirs()
            .iter()
            .find_map(|dir| self.try_dir(dir, name, &abi))
    }

    /// Looks for `name` in `dir`, its glibc-hwcaps subdirectories included.
    fn try_dir(&mut self, dir: &str, name: &str, abi: &ElfAbi) -> Option<FoundLibrary> {
        let mut variants = Vec::new();
        for subdir in abi.hwcaps_subdirs() {
            let candidate = join(&join(dir, &format!("glibc-hwcaps/{subdir}")), name);
            if let Some(resolution) = self.try_candidate(&candidate, abi) {
                variants.push((candidate, resolution));
            }
        }
        let candidate = join(dir, name);
        match self.try_candidate(&candidate, abi) {
            Some(resolution) => Some(FoundLibrary {
                opened_as: candidate,
                resolution,
                variants,
            }),
            None if !variants.is_empty() => {
                let (opened_as, resolution) = variants.remove(0);
                Some(FoundLibrary {
                    opened_as,
                    resolution,
                    variants,
                })
            }
            None => None,
        }
    }

    fn try_ld_cache(&mut self, name: &str, abi: &ElfAbi) -> Option<FoundLibrary> {
        let wanted_flags = abi_flags_for(abi.machine, abi.is_64);
        let candidates: Vec<(String, bool)> = self
            .ld_cache
            .as_ref()?
            .lookup(name)
            .filter(|entry| wanted_flags.is_none_or(|flags| entry.matches_abi(flags)))
            .map(|entry| (entry.path.clone(), entry.is_hwcap_specific()))
            .collect();
        let mut baseline = None;
        let mut variants = Vec::new();
        for (path, hwcap_specific) in candidates {
            let Some(resolution) = self.try_candidate(&path, abi) else {
                continue;
            };
            if hwcap_specific {
                variants.push((path, resolution));
            } else if baseline.is_none() {
                baseline = Some((path, resolution));
            }
        }
        let (opened_as, resolution) = match baseline {
            Some(found) => found,
            None if !variants.is_empty() => variants.remove(0),
            None => return None,
        };
        Some(FoundLibrary {
            opened_as,
            resolution,
            variants,
        })
    }

    /// A candidate is accepted when it resolves to a regular file of the requester's ABI.
    fn try_candidate(&mut self, path: &str, abi: &ElfAbi) -> Option<Resolution> {
        let resolution = resolve(self.view, path, true).ok()?;
        let entry = self.view.entry(&resolution.path)?;
        if !matches!(entry.kind, EntryKind::File | EntryKind::Hardlink { .. }) {
            return None;
        }
        (self.elf_abi(&resolution.path)? == *abi).then_some(resolution)
    }

    fn musl_system_dirs(&mut self, abi: &ElfAbi) -> Vec<String> {
        let arch = match (abi.machine, abi.is_64) {
            (EM_X86_64, true) => "x86_64",
            (EM_386, false) => "i386",
            (EM_AARCH64, true) => "aarch64",
            _ => "",
        };
        let path_file = format!("/etc/ld-musl-{arch}.path");
        let note = "musl's loader reads its library search path from it";
        if let Some(real) = self.keep_path(&path_file, true, Reason::Runtime { note: note.into() })
        {
            if let Ok(bytes) = self.view.read(&real, 64 * 1024) {
                let text = String::from_utf8_lossy(&bytes);
                return text
                    .split(|c: char| c == ':' || c.is_whitespace())
                    .filter(|part| !part.is_empty())
                    .map(str::to_string)
                    .collect();
            }
        }
        ["/lib", "/usr/local/lib", "/usr/lib"]
            .map(String::from)
            .to_vec()
    }

    /// The ABI of the ELF file at `path`, cached; `None` for anything that is not ELF.
    fn elf_abi(&mut self, path: &str) -> Option<ElfAbi> {
        if let Some(abi) = self.elf_abis.get(path) {
            return *abi;
        }
        let abi = self
            .view
            .read(path, 20)
            .ok()
            .and_then(|bytes| ElfAbi::from_ident(&bytes));
        self.elf_abis.insert(path.to_string(), abi);
        abi
    }

    /// Parsed loader information of the ELF file at `path`, cached; failures become warnings.
    pub(super) fn elf_info(&mut self, path: &str) -> Option<Rc<ElfInfo>> {
        if let Some(info) = self.elf_infos.get(path) {
            return info.clone();
        }
        let info = self.load_elf_info(path);
        self.elf_infos.insert(path.to_string(), info.clone());
        info
    }

    fn load_elf_info(&mut self, path: &str) -> Option<Rc<ElfInfo>> {
        let mut limit = INITIAL_ELF_READ;
        loop {
            let bytes = match self.view.read(path, limit) {
                Ok(bytes) => bytes,
                Err(err) => {
                    self.warn(path, format!("cannot read: {err}"));
                    return None;
                }
            };
            let message = match parse_elf(&bytes) {
                Ok(info) => return Some(Rc::new(info)),
                Err(ElfError::NotElf) => return None,
                Err(ElfError::Truncated { needed }) if bytes.len() < limit => {
                    format!(
                        "malformed ELF: data needed up to byte {needed} of {}",
                        bytes.len()
                    )
                }
                Err(ElfError::Truncated { needed }) if needed as u64 > MAX_ELF_BYTES => {
                    format!("not analysed: needs {needed} bytes read (limit {MAX_ELF_BYTES})")
                }
                Err(ElfError::Truncated { needed }) => {
                    limit = needed
                        .max(limit.saturating_mul(2))
                        .min(MAX_ELF_BYTES as usize);
                    continue;
                }
                Err(err) => err.to_string(),
            };
            self.warn(path, message);
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: ElfAbi = ElfAbi {
        is_64: true,
        little_endian: true,
        machine: EM_X86_64,
    };

    #[test]
    fn dst_expansion_like_ld_so() {
        assert_eq!(
            expand_dst("$ORIGIN/../lib", "/opt/app/bin", &X86_64),
            ["/opt/app/bin/../lib"]
        );
        assert_eq!(expand_dst("${ORIGIN}/x", "/o", &X86_64), ["/o/x"]);
        assert_eq!(expand_dst("/p/$PLATFORM", "/o", &X86_64), ["/p/x86_64"]);
        assert_eq!(
            expand_dst("/usr/$LIB/tls", "/o", &X86_64),
            [
                "/usr/lib/x86_64-linux-gnu/tls",
                "/usr/lib64/tls",
                "/usr/lib/tls"
            ]
        );
        assert!(expand_dst("$UNKNOWN/x", "/o", &X86_64).is_empty());
        assert!(expand_dst("${ORIGIN", "/o", &X86_64).is_empty());
        assert_eq!(expand_dst("/plain", "/o", &X86_64), ["/plain"]);
    }

    #[test]
    fn abi_from_ident_rejects_garbage() {
        assert_eq!(ElfAbi::from_ident(b"\x7fELF"), None);
        assert_eq!(ElfAbi::from_ident(&[0u8; 64]), None);
        let mut ident = [0u8; 20];
        ident[..4].copy_from_slice(ELF_MAGIC);
        ident[4] = 2;
        ident[5] = 1;
        ident[18] = 62;
        assert_eq!(ElfAbi::from_ident(&ident), Some(X86_64));
    }

    #[test]
    fn parse_elf_never_panics_on_truncated_or_mutated_input() {
        let Ok(ls) = std::fs::read("/usr/bin/ls") else {
            eprintln!("skipping: no /usr/bin/ls on this host");
            return;
        };
        let info = parse_elf(&ls).expect("host ls parses");
        assert_eq!(info.abi, X86_64);
        assert!(info.needed.contains(&"libc.so.6".to_string()));
        assert_eq!(
            info.interpreter.as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        for cut in [0, 4, 20, 63, 64, 200, 1000, 4096, ls.len() / 2] {
            let _ = parse_elf(&ls[..cut.min(ls.len())]);
        }
        // A prefix too short says how much more is needed, and that much is enough.
        match parse_elf(&ls[..4096]) {
            Err(ElfError::Truncated { needed }) => {
                assert!(needed > 4096 && needed <= ls.len());
                let mut prefix = needed;
                loop {
                    match parse_elf(&ls[..prefix]) {
                        Ok(found) => break assert_eq!(found, info),
                        Err(ElfError::Truncated { needed }) => {
                            assert!(needed > prefix);
                            prefix = needed;
                        }
                        Err(err) => panic!("{err}"),
                    }
                }
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        let mut state = 0x9e37_79b9u32;
        for _ in 0..300 {
            let mut mutated = ls[..ls.len().min(64 * 1024)].to_vec();
            for _ in 0..8 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (state as usize >> 4) % 4096.min(mutated.len());
                mutated[at] = (state >> 11) as u8;
            }
            let _ = parse_elf(&mutated);
        }
    }
}
