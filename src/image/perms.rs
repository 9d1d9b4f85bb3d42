//! docker-slim's path permissions: `--path-perms PATH:MODE[#UID[#GID]]` (and the same suffix on
//! `--include-path`/`--preserve-path` values) set the mode and owner of that path in the slim
//! image. A pure transform of the retained entries, after the closure and before the sink: the
//! source image is never touched, and a path the slim image does not hold is only reported.

use std::collections::BTreeMap;

use crate::image::Entry;

/// A mode and owner to set on one path of the slim image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPerms {
    pub path: String,
    /// Octal permission bits; with `perms_only` only the `0o777` bits (a 3-digit MODE keeps the
    /// path's setuid/setgid/sticky bits), else `0o7777` (a 4-digit MODE sets them too).
    pub mode: u32,
    pub perms_only: bool,
    /// `None` (or `-1` on the command line): unchanged.
    pub uid: Option<u64>,
    pub gid: Option<u64>,
}

/// Splits `PATH:MODE[#UID[#GID]]`. `Ok(None)` when the value has no such suffix (what follows
/// the last `:` is not an octal MODE with optional `#` ids): then all of it is a path, so a
/// path with a colon in its name still works.
pub fn split(raw: &str) -> std::result::Result<Option<PathPerms>, String> {
    let Some((path, suffix)) = raw.rsplit_once(':') else {
        return Ok(None);
    };
    let mut parts = suffix.split('#');
    let mode_text = parts.next().unwrap_or_default();
    let is_octal = |s: &str| !s.is_empty() && s.chars().all(|c| ('0'..='7').contains(&c));
    if !is_octal(mode_text) {
        return Ok(None);
    }
    if mode_text.len() > 4 {
        return Err(format!(
            "{raw:?}: MODE {mode_text} has more than 4 octal digits (e.g. 0755 or 4755)"
        ));
    }
    if path.is_empty() {
        return Err(format!("{raw:?}: the path before ':' is empty"));
    }
    let mode = u32::from_str_radix(mode_text, 8).map_err(|e| format!("{raw:?}: {e}"))?;
    let id = |text: Option<&str>, what: &str| -> std::result::Result<Option<u64>, String> {
        match text {
            None | Some("-1") | Some("") => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                format!("{raw:?}: {what} {text:?} is not a number (or -1: unchanged)")
            }),
        }
    };
    let uid = id(parts.next(), "UID")?;
    let gid = id(parts.next(), "GID")?;
    if parts.next().is_some() {
        return Err(format!("{raw:?}: expected PATH:MODE[#UID[#GID]]"));
    }
    Ok(Some(PathPerms {
        path: path.to_string(),
        mode,
        perms_only: mode_text.len() <= 3,
        uid,
        gid,
    }))
}

/// `entry` with `perms` applied.
pub fn apply(entry: &Entry, perms: &PathPerms) -> Entry {
    let mut out = entry.clone();
    out.mode = if perms.perms_only {
        (entry.mode & !0o777) | (perms.mode & 0o777)
    } else {
        perms.mode & 0o7777
    };
    if let Some(uid) = perms.uid {
        out.uid = uid;
    }
    if let Some(gid) = perms.gid {
        out.gid = gid;
    }
    out
}

/// The retained entries that `perms` change, by path (a later rule for the same path wins),
/// and the rules whose path the slim image does not hold.
pub fn patch<'a>(
    entries: &[&Entry],
    perms: &'a [PathPerms],
) -> (BTreeMap<String, Entry>, Vec<&'a PathPerms>) {
    let by_path: BTreeMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), *e)).collect();
    let mut patched: BTreeMap<String, Entry> = BTreeMap::new();
    let mut missing = Vec::new();
    for rule in perms {
        let path = rule.path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        match patched.get(path).or_else(|| by_path.get(path).copied()) {
            Some(entry) => {
                let changed = apply(entry, rule);
                patched.insert(path.to_string(), changed);
            }
            None => missing.push(rule),
        }
    }
    (patched, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::EntryKind;

    fn entry(path: &str, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            xattrs: Vec::new(),
            content: None,
            layer: 0,
        }
    }

    #[test]
    fn suffixes_parse_as_docker_slim_writes_them() {
        let p = split("/app/data:0770#1000#1001").unwrap().unwrap();
        assert_eq!(
            (p.path.as_str(), p.mode, p.perms_only, p.uid, p.gid),
            ("/app/data", 0o770, false, Some(1000), Some(1001))
        );
        let p = split("/bin/tool:755#-1#50").unwrap().unwrap();
        assert_eq!(
            (p.mode, p.perms_only, p.uid, p.gid),
            (0o755, true, None, Some(50))
        );
        assert!(split("/etc/app.conf").unwrap().is_none());
        // A colon in a path name is not a suffix.
        assert!(split("/srv/a:b").unwrap().is_none());
        for bad in ["/x:77777", ":0755", "/x:0755#me", "/x:0755#1#2#3"] {
            assert!(split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_three_digit_mode_keeps_the_special_bits_and_missing_paths_are_reported() {
        let tool = entry("/bin/tool", 0o4755);
        let data = entry("/data", 0o755);
        let rules = vec![
            split("/bin/tool:700").unwrap().unwrap(),
            split("/data/:1777#33#33").unwrap().unwrap(),
            split("/absent:0644").unwrap().unwrap(),
        ];
        let (patched, missing) = patch(&[&tool, &data], &rules);
        assert_eq!(patched["/bin/tool"].mode, 0o4700);
        assert_eq!(
            (
                patched["/data"].mode,
                patched["/data"].uid,
                patched["/data"].gid
            ),
            (0o1777, 33, 33)
        );
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].path, "/absent");
        // The source entries are untouched.
        assert_eq!(tool.mode, 0o4755);
    }
}
