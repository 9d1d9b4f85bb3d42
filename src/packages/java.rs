//! Java archives (`.jar`, `.war`, `.ear`): the Maven coordinates of every
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties` inside (a shaded jar carries several), else
//! the title and version its `META-INF/MANIFEST.MF` declares, else its file name
//! (`commons-io-2.11.0.jar`). Jars nested in a war are not opened. The archive is the one file
//! of each package: the slim image keeps it or not.

use super::{licenses, LanguagePackage};
use crate::image::{Entry, ImageView};

/// Larger archives are not read (an application server's bundle, not a library).
const MAX_ARCHIVE_BYTES: u64 = 256 << 20;

pub(super) fn is_archive(path: &str) -> bool {
    [".jar", ".war", ".ear"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

/// `key=value` lines of a properties file.
fn property<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix(['=', ':'])
            .map(str::trim)
            .filter(|v| !v.is_empty())
    })
}

/// A manifest's main attributes, continuation lines (a leading space) joined.
fn manifest_attribute(manifest: &str, key: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in manifest.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break; // the main section ends at the first blank line
        }
        match (&mut value, line.strip_prefix(' ')) {
            (Some(v), Some(more)) => v.push_str(more),
            (Some(_), None) => break,
            (None, _) => {
                value = line
                    .strip_prefix(key)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim_start().to_string());
            }
        }
    }
    value.filter(|v| !v.is_empty())
}

/// The packages of one Java archive `entry`.
pub(super) fn archive<V: ImageView + ?Sized>(
    view: &V,
    entry: &Entry,
    kept: &impl Fn(&str) -> bool,
) -> Vec<LanguagePackage> {
    if entry.size > MAX_ARCHIVE_BYTES {
        return Vec::new();
    }
    let Ok(bytes) = view.read(&entry.path, MAX_ARCHIVE_BYTES as usize) else {
        return Vec::new();
    };
    packages_of(&bytes, &entry.path, kept)
}

/// The packages the archive `bytes` (at `path`) describes.
pub fn packages_of(bytes: &[u8], path: &str, kept: &impl Fn(&str) -> bool) -> Vec<LanguagePackage> {
    let Some(members) = super::zip::members(
        bytes,
        |name| {
            name == "META-INF/MANIFEST.MF"
                || (name.starts_with("META-INF/maven/") && name.ends_with("/pom.properties"))
        },
        1 << 20,
    ) else {
        return Vec::new();
    };
    let manifest = members
        .iter()
        .find(|(name, _)| name == "META-INF/MANIFEST.MF")
        .map(|(_, text)| String::from_utf8_lossy(text).to_string())
        .unwrap_or_default();
    // `Bundle-License` is an SPDX id, a name or a URL; only the first two say which.
    let license = manifest_attribute(&manifest, "Bundle-License")
        .filter(|l| !l.contains("://"))
        .and_then(|l| licenses::parse(&l));
    let package = |group: Option<String>, name: String, version: String| {
        LanguagePackage::new(
            "maven",
            group,
            name,
            version,
            license.clone(),
            path,
            &[path],
            kept,
        )
    };
    let mut out: Vec<LanguagePackage> = members
        .iter()
        .filter(|(name, _)| name.ends_with("/pom.properties"))
        .filter_map(|(_, text)| {
            let text = String::from_utf8_lossy(text);
            Some(package(
                property(&text, "groupId").map(str::to_string),
                property(&text, "artifactId")?.to_string(),
                property(&text, "version")?.to_string(),
            ))
        })
        .collect();
    if out.is_empty() {
        let title = manifest_attribute(&manifest, "Implementation-Title")
            .or_else(|| manifest_attribute(&manifest, "Bundle-SymbolicName"));
        let version = manifest_attribute(&manifest, "Implementation-Version")
            .or_else(|| manifest_attribute(&manifest, "Bundle-Version"));
        let from_name = path
            .rsplit('/')
            .next()
            .and_then(|file| file.rsplit_once('.'))
            .and_then(|(stem, _)| {
                let at = stem.rfind('-')?;
                stem[at + 1..]
                    .starts_with(|c: char| c.is_ascii_digit())
                    .then(|| (stem[..at].to_string(), stem[at + 1..].to_string()))
            });
        let group = manifest_attribute(&manifest, "Implementation-Vendor-Id");
        match (title, version, from_name) {
            (Some(title), Some(version), _) => out.push(package(group, title, version)),
            (_, _, Some((name, version))) => out.push(package(group, name, version)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::zip::build;
    use super::*;
    use crate::packages::Kept;

    #[test]
    fn maven_coordinates_then_the_manifest_then_the_file_name() {
        let shaded = build(&[
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\r\nBundle-License: Apache-2.0\r\nImplementation-Title: ignored\r\n",
                true,
            ),
            (
                "META-INF/maven/org.apache.commons/commons-lang3/pom.properties",
                b"#Generated by Maven\ngroupId=org.apache.commons\nartifactId=commons-lang3\nversion=3.12.0\n",
                true,
            ),
            (
                "META-INF/maven/com.google.guava/guava/pom.properties",
                b"version=32.1.2-jre\ngroupId=com.google.guava\nartifactId=guava\n",
                false,
            ),
        ]);
        let kept = |p: &str| p == "/app/lib/app.jar";
        let found = packages_of(&shaded, "/app/lib/app.jar", &kept);
        let coordinates: Vec<(Option<&str>, &str, &str, Kept)> = found
            .iter()
            .map(|p| {
                (
                    p.group.as_deref(),
                    p.name.as_str(),
                    p.version.as_str(),
                    p.kept,
                )
            })
            .collect();
        assert_eq!(
            coordinates,
            [
                (
                    Some("org.apache.commons"),
                    "commons-lang3",
                    "3.12.0",
                    Kept::Whole
                ),
                (Some("com.google.guava"), "guava", "32.1.2-jre", Kept::Whole),
            ]
        );
        assert_eq!(found[0].license.as_ref().unwrap().expression, "Apache-2.0");

        let manifest_only = build(&[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\nImplementation-Title: tool\nImplementation-Version: 2.\n 0.1\nImplementation-Vendor-Id: org.example\n\nName: other\nImplementation-Version: 9\n",
            true,
        )]);
        let found = packages_of(&manifest_only, "/opt/tool.jar", &kept);
        assert_eq!(
            (
                found[0].group.as_deref(),
                found[0].name.as_str(),
                found[0].version.as_str(),
                found[0].kept
            ),
            (Some("org.example"), "tool", "2.0.1", Kept::Gone)
        );

        let bare = build(&[("a/B.class", b"x", false)]);
        let found = packages_of(&bare, "/usr/share/java/commons-io-2.11.0.jar", &kept);
        assert_eq!(
            (found[0].name.as_str(), found[0].version.as_str()),
            ("commons-io", "2.11.0")
        );
        assert!(packages_of(&bare, "/usr/share/java/plain.jar", &kept).is_empty());
        assert!(packages_of(b"not a zip", "/x.jar", &kept).is_empty());
    }
}
