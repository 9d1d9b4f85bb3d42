//! Alpine's package database, `/lib/apk/db/installed`: one record per installed package
//! (`P:` name, `V:` version, `A:` arch, `L:` license, then `F:` directory lines each followed by
//! the `R:` files installed in it), records separated by a blank line. The slim image gets the
//! records of the packages it still (partly) holds, as dpkg's status (see [`super`]).

use std::collections::BTreeSet;

use super::{licenses, package_file, OsPackage};
use crate::image::ImageView;

/// Where apk keeps its database.
pub const INSTALLED: &str = "/lib/apk/db/installed";

/// The packages of the image's apk database, in database order; empty when there is none.
pub fn packages<V: ImageView + ?Sized>(view: &V) -> Vec<OsPackage> {
    let Ok(resolved) = crate::closure::resolve::resolve(view, INSTALLED, true) else {
        return Vec::new();
    };
    let Ok(db) = view.read(&resolved.path, super::MAX_DB_BYTES) else {
        return Vec::new();
    };
    parse(&String::from_utf8_lossy(&db))
        .into_iter()
        .map(|record| {
            let files = record
                .files
                .iter()
                .filter_map(|path| package_file(view, path))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            OsPackage {
                name: record.name,
                version: record.version,
                architecture: record.architecture,
                stanza: record.stanza,
                files,
                license: record.license.as_deref().and_then(licenses::parse),
            }
        })
        .collect()
}

/// One record of the database, its files as absolute paths (not yet looked up in an image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub license: Option<String>,
    pub files: Vec<String>,
    /// The record verbatim, without its trailing blank line.
    pub stanza: String,
}

/// The records of an `installed` file; ones without a `P:` line are skipped.
pub fn parse(db: &str) -> Vec<Record> {
    let mut out = Vec::new();
    for stanza in db.split("\n\n") {
        let stanza = stanza.trim_matches('\n');
        let mut record = Record {
            name: String::new(),
            version: String::new(),
            architecture: String::new(),
            license: None,
            files: Vec::new(),
            stanza: stanza.to_string(),
        };
        let mut dir = String::new();
        for line in stanza.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => record.name = value.to_string(),
                "V" => record.version = value.to_string(),
                "A" => record.architecture = value.to_string(),
                "L" if !value.is_empty() => record.license = Some(value.to_string()),
                "F" => dir = value.trim_matches('/').to_string(),
                "R" if dir.is_empty() => record.files.push(format!("/{value}")),
                "R" => record.files.push(format!("/{dir}/{value}")),
                _ => {}
            }
        }
        if !record.name.is_empty() {
            out.push(record);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;
    use crate::packages::{fates, rewritten_status, Kept};

    const DB: &str = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nR:libc.musl-x86_64.so.1\n\n\
                      C:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\nF:bin\nR:busybox\nF:etc\nR:securetty\n\n\
                      C:Q1ghi=\nP:alpine-baselayout-data\nV:3.4.3-r2\nA:x86_64\nL:GPL-2.0-only\n\n";

    #[test]
    fn records_with_their_files_under_their_dirs() {
        let records = parse(DB);
        let names: Vec<(&str, &str)> = records
            .iter()
            .map(|r| (r.name.as_str(), r.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("musl", "1.2.4-r2"),
                ("busybox", "1.36.1-r15"),
                ("alpine-baselayout-data", "3.4.3-r2")
            ]
        );
        assert_eq!(
            records[0].files,
            ["/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"]
        );
        assert_eq!(records[1].files, ["/bin/busybox", "/etc/securetty"]);
        assert_eq!(records[0].license.as_deref(), Some("MIT"));
        assert!(records[1].stanza.starts_with("C:Q1def=\nP:busybox\n"));
        assert!(records[1].stanza.ends_with("R:securetty"));
    }

    #[test]
    fn the_slim_database_keeps_the_records_of_what_is_kept() {
        let mut image = FakeImage::new();
        image.file(INSTALLED, DB.as_bytes());
        image.file("/lib/ld-musl-x86_64.so.1", &[0; 100]);
        image.file("/lib/libc.musl-x86_64.so.1", &[0; 10]);
        image.file("/bin/busybox", &[0; 1000]);
        image.file("/etc/securetty", b"x");
        let installed = packages(&image);
        assert_eq!(
            installed[1].license.as_ref().unwrap().expression,
            "GPL-2.0-only"
        );
        let fates = fates(&installed, |p| p == "/lib/ld-musl-x86_64.so.1");
        let kept: Vec<(&str, Kept)> = fates.iter().map(|f| (f.name.as_str(), f.kept)).collect();
        assert_eq!(
            kept,
            [
                ("musl", Kept::Partly),
                ("busybox", Kept::Gone),
                ("alpine-baselayout-data", Kept::Whole)
            ]
        );
        let db = rewritten_status(&installed, &fates);
        let records = parse(&db);
        let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["musl", "alpine-baselayout-data"]);
        // apk's own format: every record ends with a blank line.
        assert!(db.ends_with("L:GPL-2.0-only\n\n"), "{db}");
        assert!(db.contains("R:libc.musl-x86_64.so.1\n\nC:Q1ghi="), "{db}");
    }
}
