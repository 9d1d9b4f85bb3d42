//! Package inventory: the OS packages an image holds (Debian/Ubuntu's dpkg database today) and,
//! for a slim image, what became of each — kept whole, kept partly (n of m files) or gone — and
//! the slim image's own package database rewritten to list only what is (partly) still there.
//!
//! Why rewrite it: scanners (Trivy, Grype, Docker Scout) read `/var/lib/dpkg/status` to decide
//! what is inside. A slim image carrying the full database makes them report CVEs for packages
//! that are gone; one without it makes them report nothing at all, a false all-clear. minify
//! knows exactly which files it kept, so the database it writes says the truth; a partly kept
//! package stays listed (its remaining files can still carry its vulnerabilities).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::closure::resolve::resolve;
use crate::image::{EntryKind, ImageView};

/// Where dpkg keeps its database.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const DPKG_INFO: &str = "/var/lib/dpkg/info";
/// Bounds what is read of the database (a full Debian desktop's status is ~3 MB).
const MAX_DB_BYTES: usize = 64 << 20;

/// One installed Debian package, as its status stanza and file list say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Its stanza of the status file, verbatim (no trailing blank line).
    pub stanza: String,
    /// The non-directory paths its `info/*.list` names, resolved to where they are in the image
    /// (bookworm's `/lib/…` is `/usr/lib/…` behind the `/lib` symlink), with their sizes.
    pub files: Vec<(String, u64)>,
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
pub fn debian_packages<V: ImageView + ?Sized>(view: &V) -> Vec<DebPackage> {
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
        packages.push(DebPackage {
            name: name.to_string(),
            version: field(stanza, "Version").unwrap_or_default().to_string(),
            architecture,
            stanza: stanza.to_string(),
            files,
        });
    }
    packages
}

/// Where a `.list` path is in the image (its directories' symlinks followed, not the file's
/// own) and its size; `None` for directories and for files no longer there.
fn package_file<V: ImageView + ?Sized>(view: &V, listed: &str) -> Option<(String, u64)> {
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
}

/// The fate of each package given which paths the slim image keeps. A package with no files
/// at all (a metapackage) follows the database: it is kept when anything is.
pub fn fates(packages: &[DebPackage], kept: impl Fn(&str) -> bool) -> Vec<PackageFate> {
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
            }
        })
        .collect()
}

/// The slim image's `/var/lib/dpkg/status`: the stanzas of the packages still (partly) there,
/// in the original order, in dpkg's own format (stanzas separated by one blank line).
pub fn rewritten_status(packages: &[DebPackage], fates: &[PackageFate]) -> String {
    let mut out = String::new();
    for (package, fate) in packages.iter().zip(fates) {
        if fate.kept != Kept::Gone {
            out.push_str(&package.stanza);
            out.push_str("\n\n");
        }
    }
    out
}

/// A language package (Python distribution, npm package) and its fate in the slim image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguagePackage {
    /// `pypi` or `npm` (the purl type).
    pub ecosystem: &'static str,
    pub name: String,
    pub version: String,
    /// From the metadata, where it says.
    pub license: Option<String>,
    /// Where its metadata is (`…/site-packages/flask-3.0.3.dist-info`, `…/node_modules/ms`).
    pub location: String,
    pub kept: Kept,
    pub files_kept: usize,
    pub files_total: usize,
}

/// The Python distributions (`*.dist-info` with a RECORD, in site-/dist-packages) and npm
/// packages (`node_modules/NAME/package.json`, scoped too) of the image, with what the slim
/// image keeps of their files (`kept`).
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
            if let Some(package) = python_distribution(index, view, dist, &kept) {
                out.push(package);
            }
        } else if let Some(dir) = path.strip_suffix("/package.json") {
            if let Some(package) = npm_package(index, view, dir, &kept) {
                out.push(package);
            }
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
    let license = field(headers, "License-Expression")
        .or_else(|| field(headers, "License"))
        .filter(|l| !l.is_empty() && l.len() < 100)
        .map(str::to_string);
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
    let files_kept = files.iter().filter(|f| kept(f)).count();
    Some(LanguagePackage {
        ecosystem: "pypi",
        name,
        version,
        license,
        location: dist.to_string(),
        kept: fate_of(files_kept, files.len()),
        files_kept,
        files_total: files.len(),
    })
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
    let files_kept = files.iter().filter(|f| kept(f)).count();
    Some(LanguagePackage {
        ecosystem: "npm",
        name,
        version: json["version"].as_str().unwrap_or_default().to_string(),
        license: json["license"].as_str().map(str::to_string),
        location: dir.to_string(),
        kept: fate_of(files_kept, files.len()),
        files_kept,
        files_total: files.len(),
    })
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
    /// Which database was read (`dpkg`), empty when the image has none.
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
    /// Python distributions and npm packages, and what is kept of each.
    pub language: Vec<LanguagePackage>,
}

impl PackageSummary {
    pub fn new(fates: Vec<PackageFate>) -> Self {
        let count = |k: Kept| fates.iter().filter(|f| f.kept == k).count();
        PackageSummary {
            database: if fates.is_empty() { "" } else { "dpkg" }.into(),
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

    /// One line for stderr, e.g. "removed 212 of 246 Debian packages (30 kept whole, 4 partly)".
    pub fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.total > 0 {
            parts.push(format!(
                "removed {} of {} Debian packages ({} kept whole, {} partly; the slim image's \
                 dpkg status lists only those)",
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
                "kept {kept} of {} Python/npm packages (whole or partly)",
                self.language.len()
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The inventory of `fs` given which paths the slim image keeps (dpkg packages, os-release,
/// Python and npm packages), and the slim image's dpkg status (`None` without a dpkg database).
pub fn take_inventory(
    fs: &crate::image::ImageFs,
    kept: impl Fn(&str) -> bool,
) -> (PackageSummary, Option<String>) {
    let installed = debian_packages(fs);
    let fates = fates(&installed, &kept);
    let status = fs
        .index
        .get(DPKG_STATUS)
        .map(|_| rewritten_status(&installed, &fates));
    let mut summary = PackageSummary::new(fates);
    (summary.os_id, summary.distro) = os_release(fs);
    summary.language = language_packages(&fs.index, fs, &kept);
    (summary, status)
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
        let summary = PackageSummary::new(fates);
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
        assert_eq!(found[2].license.as_deref(), Some("BSD-3-Clause"));
        assert_eq!(found[1].license.as_deref(), Some("MIT"));
    }

    #[test]
    fn an_image_without_dpkg_has_no_packages() {
        let mut image = FakeImage::new();
        image.file("/bin/app", b"x");
        let packages = debian_packages(&image);
        assert!(packages.is_empty());
        assert!(PackageSummary::new(fates(&packages, |_| true))
            .line()
            .is_none());
    }
}
