//! Just enough of the ZIP format to read a few small members of a Java archive (its
//! `pom.properties` and `MANIFEST.MF`): the central directory, stored and deflated members. No
//! ZIP64, encryption or multi-disk archives — a jar whose metadata needs them is not
//! inventoried rather than misread.

use std::io::Read;

const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const DIRECTORY_ENTRY: u32 = 0x0201_4b50;
const LOCAL_HEADER: u32 = 0x0403_4b50;

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The members of `archive` whose name `wanted` accepts, decompressed (each up to `limit`
/// bytes), in directory order. `None` when it is not a ZIP this reader understands.
pub fn members(
    archive: &[u8],
    wanted: impl Fn(&str) -> bool,
    limit: usize,
) -> Option<Vec<(String, Vec<u8>)>> {
    // The end-of-directory record is the last 22 bytes plus a comment of up to 64 KiB.
    let search_from = archive.len().saturating_sub(22 + 0xFFFF);
    let end = (search_from..archive.len().saturating_sub(21))
        .rev()
        .find(|&at| u32_at(archive, at) == Some(END_OF_DIRECTORY))?;
    let count = u16_at(archive, end + 10)?;
    let mut at = u32_at(archive, end + 16)? as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        if u32_at(archive, at)? != DIRECTORY_ENTRY {
            return None;
        }
        let method = u16_at(archive, at + 10)?;
        let compressed = u32_at(archive, at + 20)? as usize;
        let name_len = u16_at(archive, at + 28)?;
        let extra_len = u16_at(archive, at + 30)?;
        let comment_len = u16_at(archive, at + 32)?;
        let local = u32_at(archive, at + 42)? as usize;
        let name = String::from_utf8_lossy(archive.get(at + 46..at + 46 + name_len)?).to_string();
        at += 46 + name_len + extra_len + comment_len;
        if !wanted(&name) {
            continue;
        }
        if u32_at(archive, local)? != LOCAL_HEADER {
            return None;
        }
        let data_at = local + 30 + u16_at(archive, local + 26)? + u16_at(archive, local + 28)?;
        let data = archive.get(data_at..data_at.checked_add(compressed)?)?;
        let content = match method {
            0 => data.iter().copied().take(limit).collect(),
            8 => {
                let mut content = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(limit as u64)
                    .read_to_end(&mut content)
                    .ok()?;
                content
            }
            _ => continue,
        };
        out.push((name, content));
    }
    Some(out)
}

/// A ZIP archive of `files` (name, content, deflated or not), for tests of the readers.
#[cfg(test)]
pub fn build(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, content, deflate) in files {
        let data = if *deflate {
            let mut encoder =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(content).unwrap();
            encoder.finish().unwrap()
        } else {
            content.to_vec()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        out.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0]);
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // time, date, crc (not checked by the reader)
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(content.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&data);
        directory.extend_from_slice(&DIRECTORY_ENTRY.to_le_bytes());
        directory.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
        directory.extend_from_slice(&method.to_le_bytes());
        directory.extend_from_slice(&[0; 8]);
        directory.extend_from_slice(&(data.len() as u32).to_le_bytes());
        directory.extend_from_slice(&(content.len() as u32).to_le_bytes());
        directory.extend_from_slice(&(name.len() as u16).to_le_bytes());
        directory.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(name.as_bytes());
    }
    let directory_at = out.len() as u32;
    out.extend_from_slice(&directory);
    out.extend_from_slice(&END_OF_DIRECTORY.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stored_and_deflated_members_and_refuses_what_is_not_a_zip() {
        let archive = build(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n", true),
            ("a/B.class", &[0xCA, 0xFE], false),
            ("META-INF/maven/g/a/pom.properties", b"version=1\n", false),
        ]);
        let found = members(&archive, |n| n.starts_with("META-INF/"), 1 << 20).unwrap();
        assert_eq!(
            found,
            [
                (
                    "META-INF/MANIFEST.MF".to_string(),
                    b"Manifest-Version: 1.0\n".to_vec()
                ),
                (
                    "META-INF/maven/g/a/pom.properties".to_string(),
                    b"version=1\n".to_vec()
                ),
            ]
        );
        assert!(members(b"not a zip at all, just text", |_| true, 10).is_none());
        let mut truncated = archive.clone();
        truncated.drain(..40);
        assert!(members(&truncated, |_| true, 10).is_none());
    }
}
