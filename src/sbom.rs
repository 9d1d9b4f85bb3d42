//! `--sbom FILE`: a CycloneDX 1.5 JSON bill of materials of the slim image, from the package
//! inventory ([`crate::packages`]): every OS package that is still (partly) there, with its
//! purl (`pkg:deb/debian/NAME@VERSION?arch=…&distro=…`), and how much of it was kept as
//! properties (`minify:kept` whole/partly, files and bytes kept of the total). Packages that are
//! gone are not components: the slim image does not contain them.

use serde_json::{json, Value};

use crate::packages::{Kept, PackageSummary};

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
    let mut purl = format!(
        "pkg:deb/{}/{}@{}",
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

/// The purl of a Python distribution (name normalised as PEP 503 says) or an npm package
/// (`@scope/name` is namespace and name).
pub fn language_purl(ecosystem: &str, name: &str, version: &str) -> String {
    match ecosystem {
        "pypi" => {
            let normalised: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c == '_' || c == '.' { '-' } else { c })
                .collect();
            format!(
                "pkg:pypi/{}@{}",
                purl_escape(&normalised),
                purl_escape(version)
            )
        }
        _ => match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, bare)) => format!(
                "pkg:npm/%40{}/{}@{}",
                purl_escape(scope),
                purl_escape(bare),
                purl_escape(version)
            ),
            None => format!("pkg:npm/{}@{}", purl_escape(name), purl_escape(version)),
        },
    }
}

fn kept_property(kept: Kept) -> Value {
    json!({"name": "minify:kept", "value": if kept == Kept::Whole { "whole" } else { "partly" }})
}

fn files_kept_property(kept: usize, total: usize) -> Value {
    json!({"name": "minify:files_kept", "value": format!("{kept} of {total}")})
}

fn language_component(p: &crate::packages::LanguagePackage) -> Value {
    let purl = language_purl(p.ecosystem, &p.name, &p.version);
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
    if let Some(license) = &p.license {
        component["licenses"] = json!([{"license": {"name": license}}]);
    }
    component
}

/// The CycloneDX 1.5 document for image `name` (`id` its image id), at `timestamp` (RFC 3339).
pub fn cyclonedx(name: &str, id: &str, packages: &PackageSummary, timestamp: &str) -> Value {
    let os_id = if packages.os_id.is_empty() {
        "debian"
    } else {
        packages.os_id.as_str()
    };
    let components: Vec<Value> = packages
        .packages
        .iter()
        .filter(|p| p.kept != Kept::Gone)
        .map(|p| {
            let purl = deb_purl(os_id, &p.name, &p.version, &p.architecture, &packages.distro);
            json!({
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
            })
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
    let (repo, version) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    };
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
            language_purl("pypi", "Flask_SQLAlchemy", "3.1"),
            "pkg:pypi/flask-sqlalchemy@3.1"
        );
        assert_eq!(
            language_purl("npm", "@types/node", "20.0.0"),
            "pkg:npm/%40types/node@20.0.0"
        );
        assert_eq!(language_purl("npm", "ms", "2.1.3"), "pkg:npm/ms@2.1.3");
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
        };
        let mut summary =
            PackageSummary::new(vec![fate("libc6", Kept::Partly), fate("apt", Kept::Gone)]);
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
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
