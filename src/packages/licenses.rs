//! Licenses of packages as SPDX license expressions: the names each ecosystem writes (Debian's
//! machine-readable `copyright` files, Python METADATA, npm's `license`, gemspecs, Alpine's `L:`)
//! mapped to SPDX license list ids where there is one, else to `LicenseRef-NAME` (which the SPDX
//! document then defines, and CycloneDX carries as a license name).
//!
//! Names that are SPDX ids (any case) are taken as such, from the SPDX list CycloneDX's schema
//! vendors (tests/sbom/spdx.SNAPSHOT.schema.json, compiled in). The names in the wild often are
//! not (Debian writes `Expat`, `GPL-2+`, `BSD-3-clause`; PyPI classifiers say `MIT License`):
//! a table maps the common ones, and a name it does not know stays a `LicenseRef-` (mapping a
//! name wrongly is worse than not mapping it). Every id the table yields is checked against the
//! list.

use serde::Serialize;

/// A declared license: an SPDX license expression and the `LicenseRef-` ids it uses, each with
/// the name it was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    pub expression: String,
    pub refs: Vec<(String, String)>,
}

impl Serialize for License {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expression)
    }
}

impl License {
    /// The expression is one license id (`MIT`), not `A OR B` / `A WITH E`.
    pub fn is_single(&self) -> bool {
        !self.expression.contains(' ')
    }

    /// The expressions `parts`, all of which apply (`A AND (B OR C)`); `None` when empty.
    pub fn all_of(parts: Vec<License>) -> Option<License> {
        let mut distinct: Vec<License> = Vec::new();
        for part in parts {
            if !distinct.iter().any(|d| d.expression == part.expression) {
                distinct.push(part);
            }
        }
        match distinct.len() {
            0 => None,
            1 => distinct.pop(),
            _ => {
                let mut refs: Vec<(String, String)> = Vec::new();
                let terms: Vec<String> = distinct
                    .into_iter()
                    .map(|l| {
                        for r in l.refs {
                            if !refs.contains(&r) {
                                refs.push(r);
                            }
                        }
                        if l.expression.contains(" OR ") {
                            format!("({})", l.expression)
                        } else {
                            l.expression
                        }
                    })
                    .collect();
                Some(License {
                    expression: terms.join(" AND "),
                    refs,
                })
            }
        }
    }
}

/// SPDX ids by the lowercased names packages use for them (SPDX ids themselves included).
const NAMES: &[(&str, &str)] = &[
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("mit/x11", "MIT"),
    ("mit license", "MIT"),
    ("the mit license", "MIT"),
    ("x11", "X11"),
    ("mit-0", "MIT-0"),
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("apache 2.0", "Apache-2.0"),
    ("apache license 2.0", "Apache-2.0"),
    ("apache license, version 2.0", "Apache-2.0"),
    ("apache software license", "Apache-2.0"),
    ("apache-1.1", "Apache-1.1"),
    ("artistic", "Artistic-1.0"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-1.0-perl", "Artistic-1.0-Perl"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("3c-bsd", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsd-4-clause-uc", "BSD-4-Clause-UC"),
    ("0bsd", "0BSD"),
    ("isc", "ISC"),
    ("isc license", "ISC"),
    ("isc license (iscl)", "ISC"),
    ("zlib", "Zlib"),
    ("zlib/libpng", "Zlib"),
    ("libpng", "Libpng"),
    ("libpng-2.0", "libpng-2.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("unlicense", "Unlicense"),
    ("the unlicense (unlicense)", "Unlicense"),
    ("wtfpl", "WTFPL"),
    ("bsl-1.0", "BSL-1.0"),
    ("boost", "BSL-1.0"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("mozilla public license 2.0 (mpl 2.0)", "MPL-2.0"),
    ("epl-1.0", "EPL-1.0"),
    ("epl-2.0", "EPL-2.0"),
    ("cddl-1.0", "CDDL-1.0"),
    ("openssl", "OpenSSL"),
    ("curl", "curl"),
    ("python-2.0", "Python-2.0"),
    ("psf-2.0", "PSF-2.0"),
    ("psf-2", "PSF-2.0"),
    ("python software foundation license", "PSF-2.0"),
    ("zpl-2.1", "ZPL-2.1"),
    ("ofl-1.1", "OFL-1.1"),
    ("sil-1.1", "OFL-1.1"),
    ("sleepycat", "Sleepycat"),
    ("postgresql", "PostgreSQL"),
    ("ntp", "NTP"),
    ("ijg", "IJG"),
    ("icu", "ICU"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("ftl", "FTL"),
    ("hpnd", "HPND"),
    ("bzip2-1.0.6", "bzip2-1.0.6"),
    ("tcl", "TCL"),
    ("w3c", "W3C"),
    ("ruby", "Ruby"),
    ("fsfullr", "FSFULLR"),
    ("fsfap", "FSFAP"),
    ("fsful", "FSFUL"),
    ("latex2e", "Latex2e"),
    ("beerware", "Beerware"),
    ("kazlib", "Kazlib"),
    ("vim", "Vim"),
    ("blueoak-1.0.0", "BlueOak-1.0.0"),
];

/// Exceptions (`GPL-3+ with Bison exception`) by lowercased name.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("autoconf-2.0", "Autoconf-exception-2.0"),
    ("autoconf-3.0", "Autoconf-exception-3.0"),
    ("bison", "Bison-exception-2.2"),
    ("bison-2.2", "Bison-exception-2.2"),
    ("classpath", "Classpath-exception-2.0"),
    ("font", "Font-exception-2.0"),
    ("gcc-3.1", "GCC-exception-3.1"),
    ("libtool", "Libtool-exception"),
    ("linux-syscall-note", "Linux-syscall-note"),
    ("llvm", "LLVM-exception"),
    ("texinfo", "Texinfo-exception"),
];

/// The GNU family with a version (`GPL-2+`, `LGPL-2.1`, `GPL-3.0-or-later`, `GFDL-NIV-1.3+`),
/// for the versions the SPDX list has.
fn gnu(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let (family, rest) = [
        ("lgpl-", "LGPL"),
        ("agpl-", "AGPL"),
        ("gfdl-niv-", "GFDL-NIV"),
        ("gfdl-", "GFDL"),
        ("gpl-", "GPL"),
    ]
    .into_iter()
    .find_map(|(prefix, family)| lower.strip_prefix(prefix).map(|rest| (family, rest)))?;
    let (version, later) = if let Some(v) = rest.strip_suffix('+') {
        (v, true)
    } else if let Some(v) = rest.strip_suffix("-or-later") {
        (v, true)
    } else {
        (rest.strip_suffix("-only").unwrap_or(rest), false)
    };
    let version = match version {
        "1" => "1.0",
        "2" => "2.0",
        "3" => "3.0",
        other => other,
    };
    let known: &[&str] = match family {
        "GPL" => &["1.0", "2.0", "3.0"],
        "LGPL" => &["2.0", "2.1", "3.0"],
        "AGPL" => &["3.0"],
        _ => &["1.1", "1.2", "1.3"],
    };
    if !known.contains(&version) {
        return None;
    }
    let suffix = if later { "or-later" } else { "only" };
    Some(match family {
        "GFDL-NIV" => format!("GFDL-{version}-no-invariants-{suffix}"),
        _ => format!("{family}-{version}-{suffix}"),
    })
}

/// The SPDX license list (ids and exceptions) as CycloneDX's schema vendors it: any name that
/// is an SPDX id in any case is that id (`apache-2.0`, `EUPL-1.2`).
fn spdx_list() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/sbom/spdx.SNAPSHOT.schema.json"))
                .unwrap_or_default();
        schema["enum"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The SPDX id of a license name, where the table, the GNU rule or the SPDX list knows it.
pub fn spdx_id(name: &str) -> Option<String> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, id)| id.to_string())
        .or_else(|| gnu(name))
        .or_else(|| {
            spdx_list()
                .iter()
                .find(|id| id.eq_ignore_ascii_case(name) && !id.contains("exception"))
                .cloned()
        })
}

/// `LicenseRef-` plus the name with what an id may not hold (`[A-Za-z0-9.-]` only) as `-`.
fn license_ref(name: &str) -> String {
    let id: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-{}", id.trim_matches('-'))
}

/// One license of an expression: `NAME` or `NAME with EXCEPTION exception` (Debian) or
/// `NAME WITH EXCEPTION` (SPDX).
fn atom(text: &str, refs: &mut Vec<(String, String)>) -> String {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if let Some(at) = lower.find(" with ") {
        let base = &text[..at];
        let exception = lower[at + 6..]
            .trim()
            .trim_end_matches(" exception")
            .trim()
            .to_string();
        let exception_id = EXCEPTIONS
            .iter()
            .find(|(n, id)| *n == exception || id.eq_ignore_ascii_case(&exception))
            .map(|(_, id)| id.to_string())
            .or_else(|| {
                // Autoconf's exception is versioned like the GPL it goes with.
                (exception == "autoconf").then(|| {
                    if base.contains('3') {
                        "Autoconf-exception-3.0".to_string()
                    } else {
                        "Autoconf-exception-2.0".to_string()
                    }
                })
            });
        if let (Some(base_id), Some(exception_id)) = (spdx_id(base), exception_id) {
            return format!("{base_id} WITH {exception_id}");
        }
    } else if let Some(id) = spdx_id(text) {
        return id;
    }
    let id = license_ref(text);
    if !refs.iter().any(|(r, _)| *r == id) {
        refs.push((id.clone(), text.to_string()));
    }
    id
}

/// Parses a license expression as packages write it: SPDX (`MIT OR Apache-2.0`), Debian's
/// (`GPL-2+ or Artistic`, `GPL-3+ with Bison exception`, `BSD-3-clause, and MIT`), a single
/// name (`MIT License`). Parentheses are kept; unknown names become `LicenseRef-`.
pub fn parse(text: &str) -> Option<License> {
    let text = text.trim();
    if text.is_empty() || text.len() > 200 || text.contains('\n') {
        return None;
    }
    let mut refs = Vec::new();
    // Debian's comma is a low-precedence AND: `A or B, and C` is `(A OR B) AND C`.
    let parts: Vec<String> = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            let part = part
                .strip_prefix("and ")
                .or_else(|| part.strip_prefix("AND "))
                .unwrap_or(part);
            expression(part, &mut refs)
        })
        .filter(|p| !p.is_empty())
        .collect();
    let expression = match parts.len() {
        0 => return None,
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => parts
            .into_iter()
            .map(|p| {
                if p.contains(" OR ") {
                    format!("({p})")
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    };
    Some(License { expression, refs })
}

/// One comma-free expression: words `and`/`or` (any case) are operators, parentheses are kept,
/// everything between them is one license atom (names may hold spaces: `MIT License`).
fn expression(text: &str, refs: &mut Vec<(String, String)>) -> String {
    let mut out = String::new();
    let mut current: Vec<&str> = Vec::new();
    let flush = |current: &mut Vec<&str>, out: &mut String, refs: &mut Vec<(String, String)>| {
        if !current.is_empty() {
            out.push_str(&atom(&current.join(" "), refs));
            current.clear();
        }
    };
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    for word in spaced.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            // `and/or` leaves the choice: it is at least an OR.
            operator @ ("and" | "or" | "and/or") => {
                flush(&mut current, &mut out, refs);
                out.push_str(if operator == "and" { " AND " } else { " OR " });
            }
            "(" => {
                flush(&mut current, &mut out, refs);
                out.push('(');
            }
            ")" => {
                flush(&mut current, &mut out, refs);
                out.push(')');
            }
            _ => current.push(word),
        }
    }
    flush(&mut current, &mut out, refs);
    out.trim().to_string()
}

/// The licenses a Debian machine-readable `copyright` file (DEP-5) declares: the `License:` of
/// its header and of each `Files:` paragraph (stand-alone `License:` paragraphs only hold
/// texts), all applying together. `None` for a free-form file (no `Format:` header).
pub fn dep5(text: &str) -> Option<License> {
    let mut paragraphs = text.split("\n\n").map(|p| p.trim_matches('\n'));
    let header = paragraphs.next()?;
    if !header.starts_with("Format:") {
        return None;
    }
    let first_line = |paragraph: &str, field: &str| -> Option<String> {
        paragraph.lines().find_map(|line| {
            line.strip_prefix(field)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        })
    };
    let mut parts = Vec::new();
    for (i, paragraph) in std::iter::once(header).chain(paragraphs).enumerate() {
        let is_files = first_line(paragraph, "Files").is_some();
        if i > 0 && !is_files {
            continue;
        }
        if let Some(license) = first_line(paragraph, "License").as_deref().and_then(parse) {
            parts.push(license);
        }
    }
    License::all_of(parts)
}

/// The license a Python distribution's METADATA headers declare: `License-Expression` (PEP
/// 639, SPDX already), else a `License:` the table knows, else the `License ::` classifiers,
/// else a short `License:` as a `LicenseRef-`.
pub fn python(headers: &str) -> Option<License> {
    let field = |name: &str| {
        headers.lines().find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("UNKNOWN"))
        })
    };
    if let Some(license) = field("License-Expression").and_then(parse) {
        return Some(license);
    }
    let free = field("License").filter(|l| l.len() <= 100);
    if let Some(id) = free.and_then(spdx_id) {
        return Some(License {
            expression: id,
            refs: vec![],
        });
    }
    // A classifier naming no one license (`BSD License`) is kept as what it says.
    let classified: Vec<String> = headers
        .lines()
        .filter_map(|line| line.strip_prefix("Classifier:"))
        .filter_map(|c| c.trim().strip_prefix("License ::"))
        .map(|c| {
            let name = c.rsplit("::").next().unwrap_or_default().trim();
            classifier(name).map_or_else(|| name.to_string(), str::to_string)
        })
        .collect();
    // Several classifiers mean a choice (`MIT` and `Apache` both listed).
    any_of(&classified).or_else(|| free.and_then(parse))
}

/// The SPDX id of a trove classifier's last part, where it names one license.
fn classifier(name: &str) -> Option<&'static str> {
    Some(match name {
        "MIT License" => "MIT",
        "Apache Software License" => "Apache-2.0",
        "ISC License (ISCL)" => "ISC",
        "Mozilla Public License 2.0 (MPL 2.0)" => "MPL-2.0",
        "Python Software Foundation License" => "PSF-2.0",
        "The Unlicense (Unlicense)" => "Unlicense",
        "GNU General Public License v2 (GPLv2)" => "GPL-2.0-only",
        "GNU General Public License v2 or later (GPLv2+)" => "GPL-2.0-or-later",
        "GNU General Public License v3 (GPLv3)" => "GPL-3.0-only",
        "GNU General Public License v3 or later (GPLv3+)" => "GPL-3.0-or-later",
        "GNU Lesser General Public License v2 (LGPLv2)" => "LGPL-2.0-only",
        "GNU Lesser General Public License v2 or later (LGPLv2+)" => "LGPL-2.0-or-later",
        "GNU Lesser General Public License v3 (LGPLv3)" => "LGPL-3.0-only",
        "GNU Lesser General Public License v3 or later (LGPLv3+)" => "LGPL-3.0-or-later",
        "GNU Affero General Public License v3" => "AGPL-3.0-only",
        "Zope Public License" => "ZPL-2.1",
        _ => return None,
    })
}

/// Several licenses of which one may be chosen (a gemspec's `s.licenses`, npm's legacy
/// `licenses` array).
pub fn any_of(names: &[String]) -> Option<License> {
    let parsed: Vec<License> = names.iter().filter_map(|n| parse(n)).collect();
    match parsed.len() {
        0 => None,
        1 => parsed.into_iter().next(),
        _ => {
            let mut refs = Vec::new();
            let terms: Vec<String> = parsed
                .into_iter()
                .map(|l| {
                    let single = l.is_single() || l.expression.contains(" WITH ");
                    refs.extend(l.refs);
                    if single {
                        l.expression
                    } else {
                        format!("({})", l.expression)
                    }
                })
                .collect();
            Some(License {
                expression: terms.join(" OR "),
                refs,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> String {
        parse(text).unwrap().expression
    }

    #[test]
    fn debian_names_map_to_spdx_ids() {
        assert_eq!(expr("Expat"), "MIT");
        assert_eq!(expr("GPL-2+"), "GPL-2.0-or-later");
        assert_eq!(expr("GPL-2"), "GPL-2.0-only");
        assert_eq!(expr("LGPL-2.1+"), "LGPL-2.1-or-later");
        assert_eq!(
            expr("GPL-1+ or Artistic"),
            "GPL-1.0-or-later OR Artistic-1.0"
        );
        assert_eq!(expr("BSD-3-clause"), "BSD-3-Clause");
        assert_eq!(
            expr("GPL-3+ with Bison exception"),
            "GPL-3.0-or-later WITH Bison-exception-2.2"
        );
        assert_eq!(
            expr("GPL-2+ or Artistic, and BSD-3-clause"),
            "(GPL-2.0-or-later OR Artistic-1.0) AND BSD-3-Clause"
        );
        assert_eq!(
            expr("MIT OR (Apache-2.0 AND Zlib)"),
            "MIT OR (Apache-2.0 AND Zlib)"
        );
        let pd = parse("public-domain").unwrap();
        assert_eq!(pd.expression, "LicenseRef-public-domain");
        assert_eq!(
            pd.refs,
            [("LicenseRef-public-domain".into(), "public-domain".into())]
        );
        assert_eq!(
            expr("GPL-2 with weird exception"),
            "LicenseRef-GPL-2-with-weird-exception"
        );
        assert!(parse("").is_none());
        // On the SPDX list in another case.
        assert_eq!(expr("eupl-1.2"), "EUPL-1.2");
        assert_eq!(
            expr("BSD-3-clause and/or GPL-3"),
            "BSD-3-Clause OR GPL-3.0-only"
        );
    }

    /// Every id the table and the rules produce is on the SPDX license list (as CycloneDX's
    /// schema vendors it), so `license.id` validates and SPDX tools know it.
    #[test]
    fn every_mapped_id_is_on_the_spdx_list() {
        let schema: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/sbom/spdx.SNAPSHOT.schema.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let list: std::collections::BTreeSet<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let mut ids: Vec<String> = NAMES.iter().map(|(_, id)| id.to_string()).collect();
        ids.extend(EXCEPTIONS.iter().map(|(_, id)| id.to_string()));
        for family in ["GPL", "LGPL", "AGPL", "GFDL", "GFDL-NIV"] {
            for version in ["1", "1.1", "1.2", "1.3", "2", "2.1", "3"] {
                for suffix in ["", "+"] {
                    ids.extend(gnu(&format!("{family}-{version}{suffix}")));
                }
            }
        }
        assert!(ids.len() > 100, "{}", ids.len());
        for id in &ids {
            assert!(list.contains(id.as_str()), "{id} is not an SPDX id");
        }
    }

    #[test]
    fn dep5_reads_header_and_files_paragraphs_not_standalone_texts() {
        let copyright =
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
                         Upstream-Name: x\n\n\
                         Files: *\nCopyright: 2020 A\nLicense: GPL-2+\n\n\
                         Files: lib/*\nCopyright: 2020 B\nLicense: Expat\n\n\
                         Files: debian/*\nLicense: GPL-2+\n\n\
                         License: Expat\n Permission is hereby granted\n\n\
                         License: Unused\n text\n";
        assert_eq!(
            dep5(copyright).unwrap().expression,
            "GPL-2.0-or-later AND MIT"
        );
        assert!(dep5("This is a free-form copyright file.\nGPL-2\n").is_none());
    }

    #[test]
    fn python_metadata_prefers_expression_then_known_name_then_classifiers() {
        assert_eq!(
            python("Name: a\nLicense-Expression: MIT OR Apache-2.0\nLicense: BSD\n")
                .unwrap()
                .expression,
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            python("Name: a\nLicense: BSD-3-Clause\n")
                .unwrap()
                .expression,
            "BSD-3-Clause"
        );
        assert_eq!(
            python(
                "Name: a\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n"
            )
            .unwrap()
            .expression,
            "MIT"
        );
        assert_eq!(
            python("Name: a\nLicense: Custom thing\n")
                .unwrap()
                .expression,
            "LicenseRef-Custom-thing"
        );
        assert_eq!(
            python("Name: a\nClassifier: License :: OSI Approved :: BSD License\n")
                .unwrap()
                .expression,
            "LicenseRef-BSD-License"
        );
        assert!(python("Name: a\n").is_none());
    }

    #[test]
    fn a_choice_and_a_conjunction() {
        let choice = any_of(&["Ruby".into(), "BSD-2-Clause".into()]).unwrap();
        assert_eq!(choice.expression, "Ruby OR BSD-2-Clause");
        let all = License::all_of(vec![parse("MIT").unwrap(), choice, parse("MIT").unwrap()]);
        assert_eq!(all.unwrap().expression, "MIT AND (Ruby OR BSD-2-Clause)");
    }
}
