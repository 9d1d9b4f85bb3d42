//! `--sbom FILE [--sbom-format cyclonedx|spdx]`: the bill of materials of an image, from the
//! package inventory ([`crate::packages`]), as CycloneDX 1.5 JSON or SPDX 2.3 JSON: every OS and
//! language package that is still (partly) there, with its purl
//! (`pkg:deb/debian/NAME@VERSION?arch=…&distro=…`), its declared license, and how much of it
//! was kept (CycloneDX properties `minify:kept` whole/partly, files and bytes kept of the
//! total; in SPDX the kept files themselves, with checksums, per package). Packages that are
//! gone are not listed: the slim image does not contain them.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha1::Digest as _;

use crate::image::ImageView;
use crate::packages::{Kept, LanguagePackage, License, PackageSummary};

/// The SBOM document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// CycloneDX 1.5 JSON.
    #[default]
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

/// Percent-encodes what a purl component may not hold raw (`+` and `~` appear in Debian
/// versions: `1:2.3+dfsg-1~deb12u1`).
fn purl_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The purl of a Debian package (purl-spec's `deb` type: namespace is the distribution's id).
pub fn deb_purl(os_id: &str, name: &str, version: &str, arch: &str, distro: &str) -> String {
    os_purl("deb", os_id, name, version, arch, distro)
}

/// The purl of an OS package: `deb` or `apk`, namespace the distribution's id.
pub fn os_purl(
    kind: &str,
    os_id: &str,
    name: &str,
    version: &str,
    arch: &str,
    distro: &str,
) -> String {
    let mut purl = format!(
        "pkg:{kind}/{}/{}@{}",
        purl_escape(os_id),
        purl_escape(name),
        purl_escape(version)
    );
    let mut qualifiers = Vec::new();
    if !arch.is_empty() {
        qualifiers.push(format!("arch={}", purl_escape(arch)));
    }
    if !distro.is_empty() {
        qualifiers.push(format!("distro={}", purl_escape(distro)));
    }
    if !qualifiers.is_empty() {
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    purl
}

/// The purl of a language package: a Python distribution (name normalised as PEP 503 says), an
/// npm package (`@scope/name` is namespace and name), a gem, a Maven artifact (`group`), a Go
/// module (its path's segments are namespace and name).
pub fn language_purl(ecosystem: &str, group: Option<&str>, name: &str, version: &str) -> String {
    let version = purl_escape(version);
    match ecosystem {
        "gem" => return format!("pkg:gem/{}@{version}", purl_escape(name)),
        "maven" => {
            return match group {
                Some(group) => format!(
                    "pkg:maven/{}/{}@{version}",
                    purl_escape(group),
                    purl_escape(name)
                ),
                None => format!("pkg:maven/{}@{version}", purl_escape(name)),
            }
        }
        "golang" => {
            let path: Vec<String> = name.split('/').map(purl_escape).collect();
            return format!("pkg:golang/{}@{version}", path.join("/"));
        }
        _ => {}
    }
    let version = version.as_str();
    match ecosystem {
        "pypi" => {
            let normalised: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c == '_' || c == '.' { '-' } else { c })
                .collect();
            format!("pkg:pypi/{}@{version}", purl_escape(&normalised))
        }
        _ => match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, bare)) => format!(
                "pkg:npm/%40{}/{}@{version}",
                purl_escape(scope),
                purl_escape(bare)
            ),
            None => format!("pkg:npm/{}@{version}", purl_escape(name)),
        },
    }
}

fn kept_property(kept: Kept) -> Value {
    json!({"name": "minify:kept", "value": if kept == Kept::Whole { "whole" } else { "partly" }})
}

fn files_kept_property(kept: usize, total: usize) -> Value {
    json!({"name": "minify:files_kept", "value": format!("{kept} of {total}")})
}

/// CycloneDX `licenses`: one license by SPDX id (or by name for a `LicenseRef-`), else the
/// SPDX expression.
fn cyclonedx_licenses(license: &License) -> Value {
    if license.is_single() {
        match license.refs.first() {
            Some((_, name)) => json!([{"license": {"name": name}}]),
            None => json!([{"license": {"id": license.expression}}]),
        }
    } else {
        json!([{"expression": license.expression}])
    }
}

fn language_component(p: &LanguagePackage) -> Value {
    let purl = language_purl(p.ecosystem, p.group.as_deref(), &p.name, &p.version);
    let mut component = json!({
        "type": "library",
        "bom-ref": format!("{purl}#{}", p.location),
        "name": p.name,
        "version": p.version,
        "purl": purl,
        "properties": [
            kept_property(p.kept),
            files_kept_property(p.files_kept, p.files_total),
            {"name": "minify:location", "value": p.location},
        ],
    });
    if let Some(group) = &p.group {
        component["group"] = json!(group);
    }
    if let Some(license) = &p.license {
        component["licenses"] = cyclonedx_licenses(license);
    }
    component
}

/// The purl namespace of the OS packages (the os-release `ID`; Debian's or Alpine's when the
/// image has no os-release) and the purl type of its database.
fn os_kind(packages: &PackageSummary) -> (&'static str, &str) {
    let kind = if packages.database == "apk" {
        "apk"
    } else {
        "deb"
    };
    let os_id = match (packages.os_id.as_str(), kind) {
        ("", "apk") => "alpine",
        ("", _) => "debian",
        (id, _) => id,
    };
    (kind, os_id)
}

fn os_package_purl(packages: &PackageSummary, p: &crate::packages::PackageFate) -> String {
    let (kind, os_id) = os_kind(packages);
    os_purl(
        kind,
        os_id,
        &p.name,
        &p.version,
        &p.architecture,
        &packages.distro,
    )
}

/// The CycloneDX 1.5 document for image `name` (`id` its image id), at `timestamp` (RFC 3339).
pub fn cyclonedx(name: &str, id: &str, packages: &PackageSummary, timestamp: &str) -> Value {
    let components: Vec<Value> = packages
        .packages
        .iter()
        .filter(|p| p.kept != Kept::Gone)
        .map(|p| {
            let purl = os_package_purl(packages, p);
            let mut component = json!({
                "type": "library",
                "bom-ref": purl,
                "name": p.name,
                "version": p.version,
                "purl": purl,
                "properties": [
                    kept_property(p.kept),
                    files_kept_property(p.files_kept, p.files_total),
                    {"name": "minify:bytes_kept", "value": format!("{} of {}", p.bytes_kept, p.bytes_total)},
                ],
            });
            if let Some(license) = &p.license {
                component["licenses"] = cyclonedx_licenses(license);
            }
            component
        })
        .collect();
    let mut components = components;
    components.extend(
        packages
            .language
            .iter()
            .filter(|p| p.kept != Kept::Gone)
            .map(language_component),
    );
    let (repo, version) = split_name(name);
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "minify",
                    "version": env!("CARGO_PKG_VERSION"),
                }],
            },
            "component": {
                "type": "container",
                "bom-ref": id,
                "name": repo,
                "version": version,
                "properties": [
                    {"name": "minify:image_id", "value": id},
                    {"name": "minify:packages_removed", "value": format!("{} of {}", packages.gone, packages.total)},
                ],
            },
        },
        "components": components,
    })
}

/// `(repository, tag)` of an image name (`latest` without a tag).
fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    }
}

/// SHA-1 and SHA-256 (lowercase hex) of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksums {
    pub sha1: String,
    pub sha256: String,
}

/// Files larger than this are listed without reading them again for checksums.
const MAX_CHECKSUM_BYTES: usize = 1 << 30;

/// The checksums of the kept files of every listed package (what the SPDX document lists), read
/// from `view`; files that are not regular (a symlink a package owns) are left out.
pub fn kept_file_checksums<V: ImageView + ?Sized>(
    view: &V,
    packages: &PackageSummary,
) -> BTreeMap<String, Checksums> {
    let paths = packages
        .packages
        .iter()
        .flat_map(|p| &p.kept_paths)
        .chain(packages.language.iter().flat_map(|p| &p.kept_paths));
    let mut out = BTreeMap::new();
    for path in paths {
        if out.contains_key(path)
            || !view.entry(path).is_some_and(|e| {
                matches!(
                    e.kind,
                    crate::image::EntryKind::File | crate::image::EntryKind::Hardlink { .. }
                )
            })
        {
            continue;
        }
        if let Ok(bytes) = view.read(path, MAX_CHECKSUM_BYTES) {
            out.insert(
                path.clone(),
                Checksums {
                    sha1: hex::encode(sha1::Sha1::digest(&bytes)),
                    sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                },
            );
        }
    }
    out
}

/// An SPDX id made of what an SPDXID may hold (`[A-Za-z0-9.-]`).
fn spdx_id(prefix: &str, text: &str) -> String {
    let id: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{prefix}-{id}")
}

/// One package of the SPDX document, with the ids of its files (which `files` collects).
struct SpdxPackage<'a> {
    name: &'a str,
    version: &'a str,
    purl: String,
    license: Option<&'a License>,
    kept: Kept,
    files_kept: usize,
    files_total: usize,
    kept_paths: &'a [String],
    location: Option<&'a str>,
}

/// The SPDX 2.3 document for image `name` (`id` its image id) at `timestamp`: the image as
/// the described package (`DESCRIBES`), which `CONTAINS` each kept package; each package lists
/// its kept files (`hasFiles`, checksums from `checksums`) with SPDX's package verification
/// code over them; licenses that are not on the SPDX list are defined as `LicenseRef-`s.
pub fn spdx(
    name: &str,
    id: &str,
    packages: &PackageSummary,
    checksums: &BTreeMap<String, Checksums>,
    timestamp: &str,
) -> Value {
    let listed: Vec<SpdxPackage> = packages
        .packages
        .iter()
        .filter(|p| p.kept != Kept::Gone)
        .map(|p| SpdxPackage {
            name: &p.name,
            version: &p.version,
            purl: os_package_purl(packages, p),
            license: p.license.as_ref(),
            kept: p.kept,
            files_kept: p.files_kept,
            files_total: p.files_total,
            kept_paths: &p.kept_paths,
            location: None,
        })
        .chain(
            packages
                .language
                .iter()
                .filter(|p| p.kept != Kept::Gone)
                .map(|p| SpdxPackage {
                    name: &p.name,
                    version: &p.version,
                    purl: language_purl(p.ecosystem, p.group.as_deref(), &p.name, &p.version),
                    license: p.license.as_ref(),
                    kept: p.kept,
                    files_kept: p.files_kept,
                    files_total: p.files_total,
                    kept_paths: &p.kept_paths,
                    location: Some(&p.location),
                }),
        )
        .collect();
    let (repo, tag) = split_name(name);
    let image_ref = "SPDXRef-Image".to_string();
    let mut file_ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut spdx_packages = vec![json!({
        "SPDXID": image_ref,
        "name": repo,
        "versionInfo": tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": id.strip_prefix("sha256:").map(|hex| vec![json!({"algorithm": "SHA256", "checksumValue": hex})]).unwrap_or_default(),
        "comment": format!("image id {id}; {} of {} OS packages removed", packages.gone, packages.total),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_ref,
    })];
    let mut refs: Vec<(String, String)> = Vec::new();
    for (n, p) in listed.iter().enumerate() {
        let package_id = spdx_id("Package", &format!("{n}-{}", p.name));
        let files: Vec<(&str, &Checksums)> = p
            .kept_paths
            .iter()
            .filter_map(|path| Some((path.as_str(), checksums.get(path)?)))
            .collect();
        let mut has_files = Vec::new();
        for (path, _) in &files {
            let next = file_ids.len();
            let file_id = file_ids
                .entry(path)
                .or_insert_with(|| format!("SPDXRef-File-{next}"));
            has_files.push(file_id.clone());
        }
        let mut package = json!({
            "SPDXID": package_id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": !files.is_empty(),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": p.license.map_or("NOASSERTION", |l| l.expression.as_str()),
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
            "comment": format!(
                "minify: kept {} ({} of {} files){}",
                if p.kept == Kept::Whole { "whole" } else { "partly" },
                p.files_kept,
                p.files_total,
                p.location.map(|l| format!("; at {l}")).unwrap_or_default(),
            ),
        });
        if !files.is_empty() {
            // SPDX 2.3 §7.9: SHA-1 of the sorted, concatenated SHA-1s of the package's files.
            let mut sums: Vec<&str> = files.iter().map(|(_, c)| c.sha1.as_str()).collect();
            sums.sort_unstable();
            package["packageVerificationCode"] = json!({
                "packageVerificationCodeValue": hex::encode(sha1::Sha1::digest(sums.concat().as_bytes())),
            });
            package["hasFiles"] = json!(has_files);
        }
        if let Some(license) = p.license {
            for r in &license.refs {
                if !refs.iter().any(|(id, _)| *id == r.0) {
                    refs.push(r.clone());
                }
            }
        }
        relationships.push(json!({
            "spdxElementId": image_ref,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": package_id,
        }));
        spdx_packages.push(package);
    }
    let files: Vec<Value> = file_ids
        .iter()
        .map(|(path, file_id)| {
            let sums = &checksums[*path];
            json!({
                "SPDXID": file_id,
                "fileName": format!(".{path}"),
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": sums.sha1},
                    {"algorithm": "SHA256", "checksumValue": sums.sha256},
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            })
        })
        .collect();
    let extracted: Vec<Value> = refs
        .iter()
        .map(|(license_id, text)| {
            json!({
                "licenseId": license_id,
                "name": text,
                "extractedText": text,
                "comment": "the license name as the package's metadata gives it; not on the SPDX license list",
            })
        })
        .collect();
    // Unique per document (SPDX 2.3 §6.5): the image, the moment and this process.
    let unique = hex::encode(sha2::Sha256::digest(
        format!(
            "{id} {timestamp} {} {:?}",
            std::process::id(),
            std::time::SystemTime::now()
        )
        .as_bytes(),
    ));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!(
            "http://spdx.org/spdxdocs/minify/{}-{}",
            spdx_id("x", repo).trim_start_matches("SPDXRef-x-"),
            &unique[..32]
        ),
        "creationInfo": {
            "created": timestamp,
            "creators": [format!("Tool: minify-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": spdx_packages,
        "files": files,
        "hasExtractedLicensingInfos": extracted,
        "relationships": relationships,
    })
}

/// Writes the SBOM of `packages` (image `name`, id `id`) in `format` to `path`, reading the
/// kept files' checksums from `view` for SPDX.
pub fn write<V: ImageView + ?Sized>(
    format: Format,
    path: &std::path::Path,
    name: &str,
    id: &str,
    packages: &PackageSummary,
    view: &V,
) -> crate::Result<()> {
    let now = now_rfc3339();
    let document = match format {
        Format::Cyclonedx => cyclonedx(name, id, packages, &now),
        Format::Spdx => spdx(
            name,
            id,
            packages,
            &kept_file_checksums(view, packages),
            &now,
        ),
    };
    let text = serde_json::to_vec_pretty(&document).map_err(crate::Error::json(format!(
        "serialising SBOM {}",
        path.display()
    )))?;
    std::fs::write(path, text).map_err(crate::Error::io(format!("writing {}", path.display())))
}

/// Now as RFC 3339 UTC (`2026-12-02T04:30:00Z`).
pub fn now_rfc3339() -> String {
    crate::image::config::rfc3339_utc(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::PackageFate;

    #[test]
    fn purls_escape_debian_versions() {
        assert_eq!(
            deb_purl("debian", "libc6", "2.36-9+deb12u4", "amd64", "debian-12"),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            deb_purl("debian", "tzdata", "1:2024a~x", "", ""),
            "pkg:deb/debian/tzdata@1%3A2024a%7Ex"
        );
    }

    #[test]
    fn language_purls_follow_the_purl_spec() {
        assert_eq!(
            language_purl("pypi", None, "Flask_SQLAlchemy", "3.1"),
            "pkg:pypi/flask-sqlalchemy@3.1"
        );
        assert_eq!(
            language_purl("npm", None, "@types/node", "20.0.0"),
            "pkg:npm/%40types/node@20.0.0"
        );
        assert_eq!(
            language_purl("npm", None, "ms", "2.1.3"),
            "pkg:npm/ms@2.1.3"
        );
        assert_eq!(
            language_purl("gem", None, "rack", "2.2.22"),
            "pkg:gem/rack@2.2.22"
        );
        assert_eq!(
            language_purl(
                "maven",
                Some("org.apache.commons"),
                "commons-lang3",
                "3.12.0"
            ),
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
        );
        assert_eq!(
            language_purl("golang", None, "golang.org/x/text", "v0.3.7"),
            "pkg:golang/golang.org/x/text@v0.3.7"
        );
        assert_eq!(
            os_purl(
                "apk",
                "alpine",
                "musl",
                "1.2.4-r2",
                "x86_64",
                "alpine-3.19.1"
            ),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
        );
    }

    #[test]
    fn only_kept_packages_are_components() {
        let fate = |name: &str, kept| PackageFate {
            name: name.into(),
            version: "1".into(),
            architecture: "amd64".into(),
            kept,
            files_kept: 1,
            files_total: 2,
            bytes_kept: 10,
            bytes_total: 20,
            license: crate::packages::licenses::parse("GPL-2+ or Artistic"),
            kept_paths: vec!["/usr/lib/libc.so.6".into(), "/usr/lib/gone-link".into()],
        };
        let mut summary = PackageSummary::new(
            "dpkg",
            vec![fate("libc6", Kept::Partly), fate("apt", Kept::Gone)],
        );
        summary.distro = "debian-12".into();
        let bom = cyclonedx("app.slim:1", "sha256:ab", &summary, "2026-12-02T00:00:00Z");
        let names: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["libc6"]);
        assert_eq!(bom["metadata"]["component"]["name"], "app.slim");
        assert_eq!(bom["components"][0]["properties"][0]["value"], "partly");
        assert_eq!(
            bom["components"][0]["licenses"][0]["expression"],
            "GPL-2.0-or-later OR Artistic-1.0"
        );

        // SPDX: the image DESCRIBES-d, CONTAINS the kept package, which lists its checksummed
        // files (the unreadable one left out) with the verification code over them.
        let mut checksums = BTreeMap::new();
        checksums.insert(
            "/usr/lib/libc.so.6".to_string(),
            Checksums {
                sha1: "da39a3ee5e6b4b0d3255bfef95601890afd80709".into(),
                sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            },
        );
        let doc = spdx(
            "app.slim:1",
            "sha256:ab",
            &summary,
            &checksums,
            "2026-12-02T00:00:00Z",
        );
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[1]["name"], "libc6");
        assert_eq!(
            packages[1]["licenseDeclared"],
            "GPL-2.0-or-later OR Artistic-1.0"
        );
        assert_eq!(packages[1]["hasFiles"], json!(["SPDXRef-File-0"]));
        // SHA-1 of the one file's SHA-1 as text.
        assert_eq!(
            packages[1]["packageVerificationCode"]["packageVerificationCodeValue"],
            hex::encode(sha1::Sha1::digest(
                b"da39a3ee5e6b4b0d3255bfef95601890afd80709"
            ))
        );
        assert_eq!(doc["files"][0]["fileName"], "./usr/lib/libc.so.6");
        let relationships: Vec<(String, String, String)> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["spdxElementId"].as_str().unwrap().to_string(),
                    r["relationshipType"].as_str().unwrap().to_string(),
                    r["relatedSpdxElement"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            relationships,
            [
                (
                    "SPDXRef-DOCUMENT".into(),
                    "DESCRIBES".into(),
                    "SPDXRef-Image".into()
                ),
                (
                    "SPDXRef-Image".into(),
                    "CONTAINS".into(),
                    "SPDXRef-Package-0-libc6".into()
                ),
            ]
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
