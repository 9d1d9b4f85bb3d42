//! The lint config file: defaults for flags and per-rule settings, so a repository can keep its
//! policy next to its Dockerfiles. Looked up as `--config FILE`, else `.minify-lint.toml` in the
//! current directory or its parents (the first found wins).
//!
//! ```toml
//! format = "text"        # text | json | sarif
//! fail_on = "warning"    # error | warning | info | never
//! ignore = ["ML016", "cd-in-run"]
//! [severity]
//! ML002 = "warning"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::catalog::{self, Severity};
use crate::{Error, Result};

pub const FILE_NAME: &str = ".minify-lint.toml";

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub format: Option<String>,
    pub fail_on: Option<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub severity: BTreeMap<String, String>,
}

impl Config {
    /// Parses and checks a config: unknown keys, rules and severities are errors, so a typo
    /// does not silently disable a policy.
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let bad = |message: String| Error::File {
            path: path.to_path_buf(),
            message,
        };
        let config: Config = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for rule in config.ignore.iter().chain(config.severity.keys()) {
            if catalog::find(rule).is_none() {
                return Err(bad(format!(
                    "unknown rule {rule:?} (see `docs/lint-rules.md`)"
                )));
            }
        }
        for value in config.severity.values() {
            value.parse::<Severity>().map_err(bad)?;
        }
        Ok(config)
    }

    /// Severity overrides, checked by [`Config::parse`].
    pub fn severities(&self) -> BTreeMap<String, Severity> {
        self.severity
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.parse().ok()?)))
            .collect()
    }

    /// Loads `explicit`, or the nearest `.minify-lint.toml` from `start` upwards; no file is
    /// the default config.
    pub fn load(explicit: Option<&Path>, start: &Path) -> Result<(Config, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => start
                .ancestors()
                .map(|dir| dir.join(FILE_NAME))
                .find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok((Config::default(), None));
        };
        let text = std::fs::read_to_string(&path)
            .map_err(Error::io(format!("reading lint config {}", path.display())))?;
        Ok((Config::parse(&path, &text)?, Some(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_typos() {
        let p = Path::new("c.toml");
        let c = Config::parse(
            p,
            "fail_on = \"info\"\nignore = [\"ML016\"]\n[severity]\npip-cache = \"error\"\n",
        )
        .unwrap();
        assert_eq!(c.fail_on.as_deref(), Some("info"));
        assert_eq!(c.severities().get("pip-cache"), Some(&Severity::Error));
        assert!(Config::parse(p, "fail-on = \"x\"").is_err(), "unknown key");
        assert!(
            Config::parse(p, "ignore = [\"ML999\"]").is_err(),
            "unknown rule"
        );
        assert!(Config::parse(p, "[severity]\nML001 = \"fatal\"").is_err());
    }

    #[test]
    fn found_in_parent_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "format = \"json\"\n").unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let (config, path) = Config::load(None, &sub).unwrap();
        assert_eq!(config.format.as_deref(), Some("json"));
        assert_eq!(path, Some(dir.path().join(FILE_NAME)));
    }
}
