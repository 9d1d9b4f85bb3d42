//! Package inventory: the OS packages an image holds (Debian/Ubuntu's dpkg database, Alpine's
//! apk database) and its language packages (Python distributions, npm packages, Ruby gems, Java
//! jars, Go modules of Go binaries), with their declared licenses; for a slim image, what became
//! of each — kept whole, kept partly (n of m files) or gone — and the slim image's own package
//! database rewritten to list only what is (partly) still there.
//!
//! Why rewrite it: scanners (Trivy, Grype, Docker Scout) read `/var/lib/dpkg/status` to decide
//! what is inside. A slim image carrying the full database makes them report CVEs for packages
//! that are gone; one without it makes them report nothing at all, a false all-clear. minify
//! knows exactly which files it kept, so the database it writes says the truth; a partly kept
//! package stays listed (its remaining files can still carry its vulnerabilities).

pub mod apk;
mod gem;
pub mod golang;
mod java;
pub mod licenses;
mod zip;

use std::collections::BTreeSet;

use serde::Serialize;

pub use licenses::License;

use crate::closure::resolve::resolve;
use crate::image::{EntryKind, ImageView};

/// Where dpkg keeps its database.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const DPKG_INFO: &str = "/var/lib/dpkg/info";
/// Bounds what is read of the database (a full Debian desktop's status is ~3 MB).
const MAX_DB_BYTES: usize = 64 << 20;

/// One installed OS package (dpkg or apk), as its database record and file list say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Its record of the database (a dpkg status stanza, an apk `installed` record), verbatim
    /// (no trailing blank line).
    pub stanza: String,
    /// The non-directory paths it installed, resolved to where they are in the image
    /// (bookworm's `/lib/…` is `/usr/lib/…` behind the `/lib` symlink), with their sizes.
    pub files: Vec<(String, u64)>,
    /// What it declares: Debian's machine-readable `copyright`, apk's `L:`.
    pub license: Option<License>,
}

/// Where Debian keeps a package's copyright file (DEP-5 when machine-readable).
fn debian_license<V: ImageView + ?Sized>(view: &V, name: &str) -> Option<License> {
    // `/usr/share/doc/PKG` may be a symlink to the doc dir of the package it was built with.
    let path = resolve(view, &format!("/usr/share/doc/{name}/copyright"), true).ok()?;
    let text = view.read(&path.path, 1 << 20).ok()?;
    licenses::dep5(&String::from_utf8_lossy(&text))
}

/// The field `name` of a stanza (first line only; continuation lines are not needed here).
fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The installed packages of the image's dpkg database, in database order; empty when there is
/// none (Alpine, distroless, `FROM scratch`).
pub fn debian_packages<V: ImageView + ?Sized>(view: &V) -> Vec<OsPackage> {
    let Ok(status) = view.read(DPKG_STATUS, MAX_DB_BYTES) else {
        return Vec::new();
    };
    let status = String::from_utf8_lossy(&status);
    let mut packages = Vec::new();
    for stanza in status.split("\n\n") {
        let stanza = stanza.trim_matches('\n');
        let (Some(name), Some(state)) = (field(stanza, "Package"), field(stanza, "Status")) else {
            continue;
        };
        // `deinstall ok config-files` and half-installed packages have no files to speak of.
        if !state.ends_with(" installed") {
            continue;
        }
        let architecture = field(stanza, "Architecture")
            .unwrap_or_default()
            .to_string();
        let list = [
            format!("{DPKG_INFO}/{name}:{architecture}.list"),
            format!("{DPKG_INFO}/{name}.list"),
        ]
        .into_iter()
        .find_map(|path| view.read(&path, MAX_DB_BYTES).ok())
        .unwrap_or_default();
        let files = String::from_utf8_lossy(&list)
            .lines()
            .filter(|line| line.starts_with('/'))
            .filter_map(|line| package_file(view, line))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        packages.push(OsPackage {
            name: name.to_string(),
            version: field(stanza, "Version").unwrap_or_default().to_string(),
            architecture,
            stanza: stanza.to_string(),
            files,
            license: debian_license(view, name),
        });
    }
    packages
}

/// Where a `.list` path is in the image (its directories' symlinks followed, not the file's
/// own) and its size; `None` for directories and for files no longer there.
pub(crate) fn package_file<V: ImageView + ?Sized>(view: &V, listed: &str) -> Option<(String, u64)> {
    // A listed directory the image has as a symlink to one (merged /usr: `/lib`) is a directory.
    let followed = resolve(view, listed, true).ok()?;
    if view
        .entry(&followed.path)
        .is_some_and(|e| e.kind == EntryKind::Dir)
    {
        return None;
    }
    let resolved = resolve(view, listed, false).ok()?;
    let entry = view.entry(&resolved.path)?;
    match entry.kind {
        EntryKind::Dir => None,
        _ => Some((resolved.path, entry.size)),
    }
}

/// What became of a package in the slim image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kept {
    Whole,
    Partly,
    Gone,
}

/// One package of the source image and its fate in the slim one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageFate {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub kept: Kept,
    pub files_kept: usize,
    pub files_total: usize,
    pub bytes_kept: u64,
    pub bytes_total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
    /// The kept files themselves (for the SPDX document's per-package files; not in the report).
    #[serde(skip)]
    pub kept_paths: Vec<String>,
}

/// The fate of each package given which paths the slim image keeps. A package with no files
/// at all (a metapackage) follows the database: it is kept when anything is.
pub fn fates(packages: &[OsPackage], kept: impl Fn(&str) -> bool) -> Vec<PackageFate> {
    let any_kept = packages
        .iter()
        .any(|p| p.files.iter().any(|(path, _)| kept(path)));
    packages
        .iter()
        .map(|p| {
            let kept_files: Vec<&(String, u64)> =
                p.files.iter().filter(|(path, _)| kept(path)).collect();
            let state = match (kept_files.len(), p.files.len()) {
                (_, 0) if any_kept => Kept::Whole,
                (_, 0) => Kept::Gone,
                (0, _) => Kept::Gone,
                (n, m) if n == m => Kept::Whole,
                _ => Kept::Partly,
            };
            PackageFate {
                name: p.name.clone(),
                version: p.version.clone(),
                architecture: p.architecture.clone(),
                kept: state,
                files_kept: kept_files.len(),
                files_total: p.files.len(),
                bytes_kept: kept_files.iter().map(|(_, size)| size).sum(),
                bytes_total: p.files.iter().map(|(_, size)| size).sum(),
                license: p.license.clone(),
                kept_paths: kept_files.iter().map(|(path, _)| path.clone()).collect(),
            }
        })
        .collect()
}

/// The slim image's `/var/lib/dpkg/status` (or apk `installed`): the records of the packages
/// still (partly) there, in the original order, in the database's own format (records
/// separated by one blank line, as dpkg and apk both write them).
pub fn rewritten_status(packages: &[OsPackage], fates: &[PackageFate]) -> String {
    let mut out = String::new();
    for (package, fate) in packages.iter().zip(fates) {
        if fate.kept != Kept::Gone {
            out.push_str(&package.stanza);
            out.push_str("\n\n");
        }
    }
    out
}

/// A language package (Python distribution, npm package, gem, jar, Go module) and its fate in
/// the slim image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguagePackage {
    /// The purl type: `pypi`, `npm`, `gem`, `maven`, `golang`.
    pub ecosystem: &'static str,
    /// Maven's groupId.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub name: String,
    pub version: String,
    /// From the metadata, where it says.
    pub license: Option<License>,
    /// Where its metadata is (`…/site-packages/flask-3.0.3.dist-info`, `…/node_modules/ms`,
    /// a gemspec, a jar, a Go binary).
    pub location: String,
    pub kept: Kept,
    pub files_kept: usize,
    pub files_total: usize,
    /// The kept files themselves (for the SPDX document; not in the report).
    #[serde(skip)]
    pub kept_paths: Vec<String>,
}

impl LanguagePackage {
    /// A package whose files are `files`, given which the slim image keeps.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ecosystem: &'static str,
        group: Option<String>,
        name: String,
        version: String,
        license: Option<License>,
        location: &str,
        files: &[&str],
        kept: &impl Fn(&str) -> bool,
    ) -> Self {
        let kept_paths: Vec<String> = files
            .iter()
            .filter(|f| kept(f))
            .map(|f| f.to_string())
            .collect();
        LanguagePackage {
            ecosystem,
            group,
            name,
            version,
            license,
            location: location.to_string(),
            kept: fate_of(kept_paths.len(), files.len()),
            files_kept: kept_paths.len(),
            files_total: files.len(),
            kept_paths,
        }
    }
}

/// The Python distributions (`*.dist-info` with a RECORD, in site-/dist-packages), npm
/// packages (`node_modules/NAME/package.json`, scoped too), Ruby gems (`specifications/*.gemspec`),
/// Java archives (`*.jar`, `*.war`, `*.ear`) and Go binaries' modules of the image, with what the
/// slim image keeps of their files (`kept`).
pub fn language_packages<V: ImageView + ?Sized>(
    index: &crate::image::FsIndex,
    view: &V,
    kept: impl Fn(&str) -> bool,
) -> Vec<LanguagePackage> {
    let mut out = Vec::new();
    for entry in index.iter() {
        let path = entry.path.as_str();
        if let Some(dist) = path
            .strip_suffix("/METADATA")
            .filter(|d| d.ends_with(".dist-info"))
        {
            out.extend(python_distribution(index, view, dist, &kept));
        } else if let Some(dir) = path.strip_suffix("/package.json") {
            out.extend(npm_package(index, view, dir, &kept));
        } else if path.ends_with(".gemspec") {
            out.extend(gem::gem(index, view, path, &kept));
        } else if entry.kind == EntryKind::File && java::is_archive(path) {
            out.extend(java::archive(view, entry, &kept));
        } else if golang::may_be_binary(entry) {
            out.extend(golang::binary(view, entry, &kept));
        }
    }
    out
}

fn fate_of(kept: usize, total: usize) -> Kept {
    match (kept, total) {
        (0, _) => Kept::Gone,
        (k, t) if k >= t => Kept::Whole,
        _ => Kept::Partly,
    }
}

fn python_distribution<V: ImageView + ?Sized>(
    index: &crate::image::FsIndex,
    view: &V,
    dist: &str,
    kept: &impl Fn(&str) -> bool,
) -> Option<LanguagePackage> {
    let site = crate::closure::resolve::parent_of(dist);
    if !(site.ends_with("/site-packages") || site.ends_with("/dist-packages")) {
        return None;
    }
    let metadata = view.read(&format!("{dist}/METADATA"), 1 << 20).ok()?;
    let metadata = String::from_utf8_lossy(&metadata);
    // Headers end at the first blank line (the long description follows).
    let headers = metadata.split("\n\n").next().unwrap_or_default();
    let name = field(headers, "Name")?.to_string();
    let version = field(headers, "Version").unwrap_or_default().to_string();
    let license = licenses::python(headers);
    let record = view
        .read(&format!("{dist}/RECORD"), 16 << 20)
        .unwrap_or_default();
    let files: Vec<String> = String::from_utf8_lossy(&record)
        .lines()
        .filter_map(|line| line.split(',').next())
        .filter(|rel| !rel.is_empty() && !rel.ends_with(".pyc"))
        .map(|rel| crate::closure::resolve::normalize_lexically(&format!("{site}/{rel}")))
        .filter(|path| index.get(path).is_some() && !path.contains(".dist-info/"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    Some(LanguagePackage::new(
        "pypi", None, name, version, license, dist, &files, kept,
    ))
}

fn npm_package<V: ImageView + ?Sized>(
    index: &crate::image::FsIndex,
    view: &V,
    dir: &str,
    kept: &impl Fn(&str) -> bool,
) -> Option<LanguagePackage> {
    // `…/node_modules/NAME` or `…/node_modules/@scope/NAME`: a package, not a file of one.
    let parent = crate::closure::resolve::parent_of(dir);
    let scoped = crate::closure::resolve::parent_of(parent);
    let is_package = parent.ends_with("/node_modules")
        || (parent.rsplit('/').next()?.starts_with('@') && scoped.ends_with("/node_modules"));
    if !is_package {
        return None;
    }
    let text = view.read(&format!("{dir}/package.json"), 4 << 20).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let name = json["name"].as_str()?.to_string();
    let prefix = format!("{dir}/");
    let nested = format!("{dir}/node_modules/");
    let files: Vec<&str> = index
        .entries
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter(|(p, e)| !p.starts_with(&nested) && e.kind != EntryKind::Dir)
        .map(|(p, _)| p.as_str())
        .collect();
    // `license` is an SPDX expression; the legacy `licenses: [{type}]` array lists a choice.
    let license = match &json["license"] {
        serde_json::Value::String(text) => licenses::parse(text),
        serde_json::Value::Object(legacy) => legacy
            .get("type")
            .and_then(|t| t.as_str())
            .and_then(licenses::parse),
        _ => json["licenses"].as_array().and_then(|all| {
            let names: Vec<String> = all
                .iter()
                .filter_map(|l| l["type"].as_str().or(l.as_str()))
                .map(str::to_string)
                .collect();
            licenses::any_of(&names)
        }),
    };
    Some(LanguagePackage::new(
        "npm",
        None,
        name,
        json["version"].as_str().unwrap_or_default().to_string(),
        license,
        dir,
        &files,
        kept,
    ))
}

/// `(ID, ID-VERSION_ID)` of the image's os-release (`/etc/os-release`, else
/// `/usr/lib/os-release`), empty strings when it has none.
pub fn os_release<V: ImageView + ?Sized>(view: &V) -> (String, String) {
    let text = ["/etc/os-release", "/usr/lib/os-release"]
        .into_iter()
        .find_map(|path| {
            let resolved = resolve(view, path, true).ok()?;
            view.read(&resolved.path, 64 << 10).ok()
        })
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let (id, version) = (value("ID"), value("VERSION_ID"));
    let distro = match (id.is_empty(), version.is_empty()) {
        (false, false) => format!("{id}-{version}"),
        (false, true) => id.clone(),
        _ => String::new(),
    };
    (id, distro)
}

/// The report's summary of the OS packages, and the fates themselves.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PackageSummary {
    /// Which database was read (`dpkg`, `apk`), empty when the image has none.
    pub database: String,
    /// `ID` of the image's os-release (`debian`, `ubuntu`): the purl namespace.
    pub os_id: String,
    /// `ID-VERSION_ID` of the image's os-release (`debian-12`): the purl `distro` qualifier.
    pub distro: String,
    pub total: usize,
    pub whole: usize,
    pub partly: usize,
    pub gone: usize,
    pub packages: Vec<PackageFate>,
    /// Python distributions, npm packages, gems, jars and Go modules, and what is kept of each.
    pub language: Vec<LanguagePackage>,
}

impl PackageSummary {
    /// The summary of `fates`, read from `database` (`dpkg`, `apk`).
    pub fn new(database: &str, fates: Vec<PackageFate>) -> Self {
        let count = |k: Kept| fates.iter().filter(|f| f.kept == k).count();
        PackageSummary {
            database: if fates.is_empty() { "" } else { database }.into(),
            os_id: String::new(),
            distro: String::new(),
            total: fates.len(),
            whole: count(Kept::Whole),
            partly: count(Kept::Partly),
            gone: count(Kept::Gone),
            packages: fates,
            language: Vec::new(),
        }
    }

    /// What the database's packages are called on stderr.
    fn kind(&self) -> (&'static str, &'static str) {
        match self.database.as_str() {
            "apk" => ("Alpine", "apk database"),
            _ => ("Debian", "dpkg status"),
        }
    }

    /// One line for stderr, e.g. "removed 212 of 246 Debian packages (30 kept whole, 4 partly)".
    pub fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.total > 0 {
            let (kind, database) = self.kind();
            parts.push(format!(
                "removed {} of {} {kind} packages ({} kept whole, {} partly; the slim image's \
                 {database} lists only those)",
                self.gone, self.total, self.whole, self.partly
            ));
        }
        if !self.language.is_empty() {
            let kept = self
                .language
                .iter()
                .filter(|p| p.kept != Kept::Gone)
                .count();
            parts.push(format!(
                "kept {kept} of {} language packages (whole or partly)",
                self.language.len()
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The package database files the slim image keeps when the source has them (rewritten to list
/// what is kept), and the release files scanners identify the distribution by.
pub fn database_files(index: &crate::image::FsIndex) -> Vec<&'static str> {
    let (database, release): (&str, &[&str]) = if index.get(DPKG_STATUS).is_some() {
        (DPKG_STATUS, &["/etc/os-release"])
    } else if index.get(apk::INSTALLED).is_some() {
        (apk::INSTALLED, &["/etc/os-release", "/etc/alpine-release"])
    } else {
        return Vec::new();
    };
    std::iter::once(database)
        .chain(release.iter().copied().filter(|p| index.get(p).is_some()))
        .collect()
}

/// The inventory of `fs` given which paths the slim image keeps (dpkg or apk packages,
/// os-release, language packages), and the slim image's package database rewritten as
/// `(path, content)` (`None` without a database).
pub fn take_inventory(
    fs: &crate::image::ImageFs,
    kept: impl Fn(&str) -> bool,
) -> (PackageSummary, Option<(String, String)>) {
    let (database, path, installed) = if fs.index.get(DPKG_STATUS).is_some() {
        ("dpkg", DPKG_STATUS, debian_packages(fs))
    } else {
        ("apk", apk::INSTALLED, apk::packages(fs))
    };
    let fates = fates(&installed, &kept);
    let rewritten = fs
        .index
        .get(path)
        .map(|_| (path.to_string(), rewritten_status(&installed, &fates)));
    let mut summary = PackageSummary::new(database, fates);
    (summary.os_id, summary.distro) = os_release(fs);
    summary.language = language_packages(&fs.index, fs, &kept);
    (summary, rewritten)
}

/// The whole inventory of an image as it is (every package kept whole), for `minify xray
/// --sbom`.
pub fn inventory(fs: &crate::image::ImageFs) -> PackageSummary {
    take_inventory(fs, |_| true).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;

    fn image() -> FakeImage {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\nDescription: GNU C Library\n  continuation line\n\n\
                      Package: apt\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.6.1\n\n\
                      Package: gone-conf\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\n\
                      Package: meta\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n";
        let mut image = FakeImage::new();
        image.dir("/usr");
        image.dir("/usr/lib");
        image.dir("/usr/bin");
        image.symlink("/lib", "usr/lib");
        image.file("/usr/lib/libc.so.6", &[0; 2000]);
        image.file("/usr/lib/ld.so", &[0; 200]);
        image.file("/usr/bin/apt", &[0; 300]);
        image.file(DPKG_STATUS, status.as_bytes());
        image.file(
            "/var/lib/dpkg/info/libc6:amd64.list",
            b"/.\n/lib\n/lib/libc.so.6\n/lib/ld.so\n/usr/share/doc/libc6/gone\n",
        );
        image.file(
            "/usr/share/doc/libc6/copyright",
            b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: LGPL-2.1+\n\nFiles: debian/*\nLicense: GPL-2+\n",
        );
        image.file(
            "/var/lib/dpkg/info/apt.list",
            b"/usr\n/usr/bin\n/usr/bin/apt\n",
        );
        image
    }

    #[test]
    fn reads_installed_packages_and_their_files_through_symlinked_dirs() {
        let packages = debian_packages(&image());
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libc6", "apt", "meta"]);
        assert_eq!(packages[0].version, "2.36-9");
        assert_eq!(
            packages[0].files,
            [
                ("/usr/lib/ld.so".to_string(), 200),
                ("/usr/lib/libc.so.6".to_string(), 2000)
            ]
        );
        assert_eq!(packages[1].files, [("/usr/bin/apt".to_string(), 300)]);
        // Licenses from the machine-readable copyright file; apt has none in this image.
        assert_eq!(
            packages[0].license.as_ref().unwrap().expression,
            "LGPL-2.1-or-later AND GPL-2.0-or-later"
        );
        assert!(packages[1].license.is_none());
        assert!(packages[2].files.is_empty());
    }

    #[test]
    fn fates_and_the_rewritten_database_list_only_what_is_left() {
        let packages = debian_packages(&image());
        let fates = fates(&packages, |p| p == "/usr/lib/libc.so.6");
        let kept: Vec<(&str, Kept, usize, usize)> = fates
            .iter()
            .map(|f| (f.name.as_str(), f.kept, f.files_kept, f.files_total))
            .collect();
        assert_eq!(
            kept,
            [
                ("libc6", Kept::Partly, 1, 2),
                ("apt", Kept::Gone, 0, 1),
                ("meta", Kept::Whole, 0, 0)
            ]
        );
        let status = rewritten_status(&packages, &fates);
        assert!(status.starts_with("Package: libc6\n"), "{status}");
        assert!(
            status.contains("  continuation line\n\nPackage: meta\n"),
            "{status}"
        );
        assert!(!status.contains("Package: apt"), "{status}");
        let summary = PackageSummary::new("dpkg", fates);
        assert_eq!(
            (summary.total, summary.whole, summary.partly, summary.gone),
            (3, 1, 1, 1)
        );
        assert!(summary
            .line()
            .unwrap()
            .starts_with("removed 1 of 3 Debian packages"));
    }

    #[test]
    fn python_distributions_and_npm_packages_with_what_is_kept() {
        let mut image = FakeImage::new();
        let site = "/app/venv/lib/python3.11/site-packages";
        image.file(
            &format!("{site}/flask-3.0.3.dist-info/METADATA"),
            b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.3\nLicense: BSD-3-Clause\n\nlong text\nName: not-this\n",
        );
        image.file(
            &format!("{site}/flask-3.0.3.dist-info/RECORD"),
            b"flask/__init__.py,sha256=x,10\nflask/app.py,sha256=y,20\nflask/__pycache__/app.cpython-311.pyc,,\nflask-3.0.3.dist-info/METADATA,,\n../../../bin/flask,,\n",
        );
        image.file(&format!("{site}/flask/__init__.py"), b"x");
        image.file(&format!("{site}/flask/app.py"), b"x");
        image.file("/app/venv/bin/flask", b"x");
        image.file(
            "/app/node_modules/ms/package.json",
            br#"{"name":"ms","version":"2.1.3","license":"MIT"}"#,
        );
        image.file("/app/node_modules/ms/index.js", b"x");
        image.file(
            "/app/node_modules/@types/node/package.json",
            br#"{"name":"@types/node","version":"20.0.0"}"#,
        );
        image.file("/app/node_modules/@types/node/index.d.ts", b"x");
        image.file(
            "/app/node_modules/ms/lib/package.json",
            br#"{"name":"inner"}"#,
        );
        let index = crate::image::FsIndex {
            entries: image.entries.clone(),
        };
        let kept =
            |p: &str| p.ends_with("/flask/__init__.py") || p.starts_with("/app/node_modules/ms/");
        let found = language_packages(&index, &image, kept);
        let summary: Vec<(&str, &str, &str, Kept, usize, usize)> = found
            .iter()
            .map(|p| {
                (
                    p.ecosystem,
                    p.name.as_str(),
                    p.version.as_str(),
                    p.kept,
                    p.files_kept,
                    p.files_total,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("npm", "@types/node", "20.0.0", Kept::Gone, 0, 2),
                ("npm", "ms", "2.1.3", Kept::Whole, 3, 3),
                ("pypi", "Flask", "3.0.3", Kept::Partly, 1, 3),
            ]
        );
        assert_eq!(
            found[2].license.as_ref().unwrap().expression,
            "BSD-3-Clause"
        );
        assert_eq!(found[1].license.as_ref().unwrap().expression, "MIT");
    }

    #[test]
    fn an_image_without_dpkg_has_no_packages() {
        let mut image = FakeImage::new();
        image.file("/bin/app", b"x");
        let packages = debian_packages(&image);
        assert!(packages.is_empty());
        assert!(PackageSummary::new("dpkg", fates(&packages, |_| true))
            .line()
            .is_none());
    }
}
