//! CI gates over an [`Xray`]: thresholds from flags or a config file, one pass/fail line per
//! rule. Rule names and semantics follow dive's `.dive-ci` (`lowestEfficiency`,
//! `highestWastedBytes`, `highestUserWastedPercent` — a fraction, as in dive), plus minify's
//! `maxImageSize`, `noSecrets` and `nonRoot`. A dive `.dive-ci` file works as a config file.

use serde::Serialize;

use super::Xray;
use crate::report::human_bytes;
use crate::{Error, Result};

/// Thresholds; `None` / `false` disables a rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates {
    pub max_image_size: Option<u64>,
    pub lowest_efficiency: Option<f64>,
    pub highest_wasted_bytes: Option<u64>,
    pub highest_user_wasted_percent: Option<f64>,
    pub no_secrets: bool,
    pub non_root: bool,
}

impl Gates {
    /// dive's defaults, used when `--ci` is given without any threshold, plus `noSecrets`.
    pub fn defaults() -> Gates {
        Gates {
            lowest_efficiency: Some(0.9),
            highest_user_wasted_percent: Some(0.1),
            no_secrets: true,
            ..Gates::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Gates::default()
    }

    /// Sets one rule from a config `key: value` pair (dive's camelCase or kebab-case keys).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |why: String| Error::Usage(format!("CI rule {key} = {value:?}: {why}"));
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        let disabled = value.eq_ignore_ascii_case("disabled") || value.is_empty();
        let norm: String = key
            .trim()
            .trim_start_matches("rules.")
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        let ratio = |v: &str| -> Result<f64> {
            let n: f64 = v.parse().map_err(|e| bad(format!("{e}")))?;
            if !(0.0..=1.0).contains(&n) {
                return Err(bad("expected a fraction between 0 and 1".into()));
            }
            Ok(n)
        };
        let flag = |v: &str| -> Result<bool> {
            match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(true),
                "false" | "no" | "0" | "off" => Ok(false),
                _ => Err(bad("expected true or false".into())),
            }
        };
        match norm.as_str() {
            "maximagesize" | "maxsize" => {
                self.max_image_size = (!disabled).then(|| parse_size(value)).transpose()?
            }
            "lowestefficiency" => {
                self.lowest_efficiency = (!disabled).then(|| ratio(value)).transpose()?
            }
            "highestwastedbytes" => {
                self.highest_wasted_bytes = (!disabled).then(|| parse_size(value)).transpose()?
            }
            "highestuserwastedpercent" => {
                self.highest_user_wasted_percent = (!disabled).then(|| ratio(value)).transpose()?
            }
            "nosecrets" => self.no_secrets = !disabled && flag(value)?,
            "nonroot" => self.non_root = !disabled && flag(value)?,
            _ => return Err(bad("unknown rule".into())),
        }
        Ok(())
    }

    /// Reads `key: value` (YAML-style, as `.dive-ci`) or `key = value` lines; `rules:` section
    /// headers, blank lines and `#` comments are skipped.
    pub fn from_config_text(text: &str) -> Result<Gates> {
        let mut gates = Gates::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.ends_with(':') || line.starts_with('[') {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .or_else(|| line.split_once('='))
                .ok_or_else(|| {
                    Error::Usage(format!("CI config line {line:?}: expected key: value"))
                })?;
            gates.set(key, value)?;
        }
        Ok(gates)
    }
}

/// `100MB`, `1.5 GiB`, `20m`, `4096` → bytes (decimal units as docker, binary with `i`).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| Error::Usage(format!("{text:?} is not a size (try 100MB)")))?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor: f64 = match unit.trim_end_matches('b') {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(Error::Usage(format!(
                "{text:?}: unknown size unit {unit:?}"
            )))
        }
    };
    Ok((number * factor).round() as u64)
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub rule: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Evaluates every enabled rule.
pub fn evaluate(gates: &Gates, x: &Xray) -> Vec<RuleResult> {
    let mut out = Vec::new();
    let mut push = |rule, passed, detail: String| {
        out.push(RuleResult {
            rule,
            passed,
            detail,
        })
    };
    if let Some(max) = gates.max_image_size {
        let size = x.image.size_bytes;
        push(
            "maxImageSize",
            size <= max,
            format!(
                "image size {} (limit {})",
                human_bytes(size),
                human_bytes(max)
            ),
        );
    }
    let e = &x.efficiency;
    if let Some(lowest) = gates.lowest_efficiency {
        push(
            "lowestEfficiency",
            e.efficiency >= lowest,
            format!("efficiency {:.4} (lowest allowed {lowest})", e.efficiency),
        );
    }
    if let Some(highest) = gates.highest_wasted_bytes {
        push(
            "highestWastedBytes",
            e.wasted_bytes <= highest,
            format!(
                "wasted {} bytes (highest allowed {highest})",
                e.wasted_bytes
            ),
        );
    }
    if let Some(highest) = gates.highest_user_wasted_percent {
        push(
            "highestUserWastedPercent",
            e.user_wasted_ratio <= highest,
            format!(
                "user-wasted {:.4} (highest allowed {highest})",
                e.user_wasted_ratio
            ),
        );
    }
    if gates.no_secrets {
        let paths: Vec<&str> = x.secrets.iter().map(|s| s.path.as_str()).collect();
        push(
            "noSecrets",
            paths.is_empty(),
            if paths.is_empty() {
                "no secret-looking files in any layer".into()
            } else {
                format!("{} secret-looking: {}", paths.len(), paths.join(", "))
            },
        );
    }
    if gates.non_root {
        let user = &x.config.user;
        push(
            "nonRoot",
            !x.config.runs_as_root,
            format!(
                "runs as {}",
                if user.is_empty() {
                    "root (User unset)"
                } else {
                    user
                }
            ),
        );
    }
    out
}

/// `PASS rule: detail` lines and a verdict.
pub fn render(results: &[RuleResult]) -> String {
    let mut o = String::new();
    for r in results {
        let verdict = if r.passed { "PASS" } else { "FAIL" };
        o.push_str(&format!("  {verdict}: {}: {}\n", r.rule, r.detail));
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    o.push_str(&format!(
        "Result: {} [Total:{}] [Passed:{}] [Failed:{failed}]\n",
        if failed == 0 { "PASS" } else { "FAIL" },
        results.len(),
        results.len() - failed
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_config_files_parse() {
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("20m").unwrap(), 20_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        let dive_ci = "rules:\n  # dive's file\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n";
        let gates = Gates::from_config_text(dive_ci).unwrap();
        assert_eq!(gates.lowest_efficiency, Some(0.95));
        assert_eq!(gates.highest_wasted_bytes, Some(20_000_000));
        assert_eq!(gates.highest_user_wasted_percent, None);
        let ours = Gates::from_config_text("max-image-size = 50MB\nnon-root = true\n").unwrap();
        assert_eq!(ours.max_image_size, Some(50_000_000));
        assert!(ours.non_root);
        assert!(Gates::from_config_text("lowestEfficiency: 2").is_err());
        assert!(Gates::from_config_text("speed: fast").is_err());
    }
}
