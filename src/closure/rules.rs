//! User keep/drop rules (`--include-path`, `--include-bin`, `--include-shell`, `--preserve-path`,
//! `--exclude`): turning includes into extra closure inputs, and applying excludes to a computed
//! closure without breaking what the loader needs.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::{Closure, Reason};
use crate::image::FsIndex;
use crate::probe::config::KeepRules;
use crate::{Error, Result};

/// What `--include-shell` adds when the image has it: a shell and the basics to look around.
pub const SHELL_BASICS: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "/bin/dash",
    "/bin/ash",
    "/bin/busybox",
    "/bin/ls",
    "/bin/cat",
    "/bin/echo",
    "/bin/ps",
    "/bin/grep",
    "/bin/pwd",
    "/bin/mkdir",
    "/bin/rm",
    "/bin/cp",
    "/bin/mv",
    "/bin/ln",
    "/bin/chmod",
    "/bin/sleep",
    "/usr/bin/env",
    "/usr/bin/id",
    "/usr/bin/head",
    "/usr/bin/tail",
    "/usr/bin/find",
    "/usr/bin/which",
    "/usr/bin/wc",
    "/usr/bin/du",
    "/usr/bin/less",
    "/usr/bin/stat",
];

/// Expands include rules into closure inputs: single paths as they are, directories with their
/// whole tree (from the index, since the closure only sees one path at a time).
pub fn include_paths(rules: &KeepRules, index: &FsIndex) -> Vec<(String, Reason)> {
    let mut out = Vec::new();
    let mut tree = |path: &str, rule: &str| {
        let reason = Reason::Rule {
            rule: format!("{rule} {path}"),
        };
        out.push((path.to_string(), reason.clone()));
        let prefix = format!("{}/", path.trim_end_matches('/'));
        for entry in index
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
        {
            out.push((entry.0.clone(), reason.clone()));
        }
    };
    for path in &rules.include_paths {
        tree(path, "--include-path");
    }
    for path in &rules.preserve_paths {
        tree(path, "--preserve-path");
    }
    for path in &rules.include_sets {
        for set_path in super::named::path_set(path) {
            if index.get(set_path).is_some() {
                tree(set_path, &format!("--include-{path}"));
            }
        }
    }
    if !rules.include_exes.is_empty()
        || !rules.include_node_packages.is_empty()
        || !rules.include_sets.is_empty()
    {
        let found = super::named::resolve_by_name(
            &rules.include_exes,
            &rules.include_node_packages,
            &rules.include_sets,
            index.entries.keys().cloned(),
        );
        for path in found {
            tree(
                &path,
                "docker-slim --include-exe/--include-node-package/--include-*",
            );
        }
    }
    for path in &rules.include_bins {
        // The closure adds an ELF file's interpreter and libraries by itself.
        out.push((
            path.clone(),
            Reason::Rule {
                rule: format!("--include-bin {path}"),
            },
        ));
    }
    if rules.include_shell {
        for path in SHELL_BASICS
            .iter()
            .filter(|p| index.get(p).is_some() || is_usrmerged(index, p))
        {
            out.push((
                path.to_string(),
                Reason::Rule {
                    rule: "--include-shell".into(),
                },
            ));
        }
    }
    out
}

/// `/bin/x` exists through a `/bin -> usr/bin` link even though the index has no `/bin/x`.
fn is_usrmerged(index: &FsIndex, path: &str) -> bool {
    index.get(&format!("/usr{path}")).is_some()
}

/// What `--exclude` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExcludeOutcome {
    /// Kept paths removed by an exclude pattern.
    pub removed: Vec<String>,
    /// Paths an exclude pattern matched but that stayed, with why (the loader needs them, or
    /// they are directories on the way to kept paths).
    pub overridden: Vec<(String, String)>,
}

/// Compiles exclude globs; a bad pattern is a usage error naming it.
pub fn exclude_set(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob =
            Glob::new(pattern).map_err(|e| Error::Usage(format!("--exclude {pattern:?}: {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| Error::Usage(format!("--exclude: {e}")))
}

/// Removes kept paths matching `excludes`, except what ld.so needs to start a kept program and
/// directories that still hold kept paths.
pub fn apply_excludes(closure: &mut Closure, excludes: &GlobSet) -> ExcludeOutcome {
    let mut outcome = ExcludeOutcome::default();
    if excludes.is_empty() {
        return outcome;
    }
    let matched: Vec<String> = closure
        .kept
        .paths
        .keys()
        .filter(|path| excludes.is_match(path.as_str()))
        .cloned()
        .collect();
    for path in &matched {
        let reasons = &closure.kept.paths[path];
        let loader_needs = reasons
            .iter()
            .any(|r| matches!(r, Reason::ElfInterpreter { .. } | Reason::ElfNeeded { .. }));
        if loader_needs {
            outcome
                .overridden
                .push((path.clone(), "the dynamic loader needs it".into()));
        } else {
            closure.kept.paths.remove(path);
            outcome.removed.push(path.clone());
        }
    }
    // A directory that still holds kept paths stays, whatever the pattern said.
    for path in &outcome.removed.clone() {
        let prefix = format!("{path}/");
        let holds_kept = closure
            .kept
            .paths
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix));
        if holds_kept {
            closure.kept.add(path, Reason::ParentDir);
            outcome.removed.retain(|p| p != path);
            outcome
                .overridden
                .push((path.clone(), "a directory holding kept paths".into()));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::KeptSet;
    use crate::image::{Entry, EntryKind};

    fn index(paths: &[&str]) -> FsIndex {
        let mut index = FsIndex::default();
        for path in paths {
            index.entries.insert(
                path.to_string(),
                Entry {
                    path: path.to_string(),
                    kind: EntryKind::File,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    size: 1,
                    xattrs: Vec::new(),
                    content: None,
                    layer: 0,
                },
            );
        }
        index
    }

    #[test]
    fn include_path_takes_the_whole_tree_and_shell_only_what_exists() {
        let index = index(&[
            "/app",
            "/app/a",
            "/app/sub/b",
            "/apple",
            "/usr/bin/ls",
            "/bin/sh",
        ]);
        let rules = KeepRules {
            include_paths: vec!["/app".into()],
            include_shell: true,
            ..KeepRules::default()
        };
        let paths: Vec<String> = include_paths(&rules, &index)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert!(paths.contains(&"/app/sub/b".to_string()));
        assert!(
            !paths.contains(&"/apple".to_string()),
            "a sibling with the same prefix is not in the tree"
        );
        assert!(
            paths.contains(&"/bin/ls".to_string()),
            "found through merged /usr"
        );
        assert!(paths.contains(&"/bin/sh".to_string()));
        assert!(!paths.contains(&"/bin/bash".to_string()));
    }

    #[test]
    fn excludes_spare_loader_needs_and_dirs_of_kept_paths() {
        let mut kept = KeptSet::default();
        kept.add("/usr/share/doc/x/README", Reason::Traced { kinds: vec![] });
        kept.add(
            "/usr/lib/libc.so.6",
            Reason::ElfNeeded {
                of: "/bin/app".into(),
                soname: "libc.so.6".into(),
            },
        );
        kept.add("/var/www/about.html", Reason::Traced { kinds: vec![] });
        kept.add("/var/www", Reason::ParentDir);
        kept.add("/var/www/index.html", Reason::Traced { kinds: vec![] });
        let mut closure = Closure {
            kept,
            unresolved_needs: Vec::new(),
            warnings: Vec::new(),
            dynamic_loads: Vec::new(),
            lazy_loads_not_followed: Vec::new(),
            stats: Default::default(),
        };
        let set = exclude_set(&[
            "/usr/share/doc/**".into(),
            "/usr/lib/*.so*".into(),
            "/var/www".into(),
            "/var/www/about*".into(),
        ])
        .unwrap();
        let outcome = apply_excludes(&mut closure, &set);
        assert!(!closure.kept.contains("/usr/share/doc/x/README"));
        assert!(closure.kept.contains("/usr/lib/libc.so.6"));
        assert!(closure.kept.contains("/var/www"), "still holds kept files");
        assert!(!closure.kept.contains("/var/www/about.html"));
        assert!(outcome
            .overridden
            .iter()
            .any(|(p, why)| p == "/usr/lib/libc.so.6" && why.contains("loader")));
        assert!(exclude_set(&["[".into()]).is_err());
    }
}
