//! Image configs: carrying a source image's run configuration over to the slim image verbatim
//! ([`slim_config`]), and typed access to the fields needed to run a container of it
//! ([`RunConfig`]).
//!
//! The config is kept as `serde_json::Value` end to end because docker stores fields the OCI spec
//! does not know (Healthcheck, Shell, OnBuild, container_config…) and dropping them would change
//! how the slim image behaves.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{History, RootFs};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Top-level config fields copied unchanged into the slim config. `config` holds everything that
/// decides how the container runs; the platform fields decide where it may run.
const CARRIED_FIELDS: &[&str] = &[
    "architecture",
    "os",
    "variant",
    "os.version",
    "os.features",
    "author",
    "config",
];

/// The config of the slim image: `source`'s platform and run configuration verbatim, one layer
/// (`diff_id`), one history entry noting minify and `note`, created now.
pub fn slim_config(source: &Value, diff_id: &str, note: &str) -> Value {
    let mut slim = Map::new();
    for field in CARRIED_FIELDS {
        if let Some(value) = source.get(*field) {
            slim.insert((*field).to_string(), value.clone());
        }
    }
    let created = rfc3339_utc(SystemTime::now());
    slim.insert("created".into(), Value::String(created.clone()));

    let mut rootfs = RootFs::default();
    rootfs.set_diff_ids(vec![diff_id.to_string()]);
    slim.insert(
        "rootfs".into(),
        serde_json::to_value(rootfs).unwrap_or(Value::Null),
    );

    let mut history = History::default();
    history.set_created(Some(created));
    history.set_created_by(Some(if note.is_empty() {
        "minify".to_string()
    } else {
        format!("minify: {note}")
    }));
    history.set_comment(Some(
        "single layer rebuilt from the files the app used".to_string(),
    ));
    slim.insert(
        "history".into(),
        Value::Array(vec![serde_json::to_value(history).unwrap_or(Value::Null)]),
    );
    Value::Object(slim)
}

/// Changes to the slim image's run configuration (docker-slim's `--new-*`, `--remove-*` and
/// the runtime options `--image-overrides` persists). Applied after the source's config is
/// carried over, in docker-slim's order: additions and replacements, then removals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigEdits {
    /// `Some(vec![])` clears it (docker-slim's single-space value).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    /// `KEY=value`: replaces the variable if the image sets it, else adds it.
    pub env: Vec<String>,
    /// `8080/tcp`.
    pub expose: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub volumes: Vec<String>,
    pub remove_env: Vec<String>,
    pub remove_expose: Vec<String>,
    pub remove_labels: Vec<String>,
    pub remove_volumes: Vec<String>,
}

impl ConfigEdits {
    pub fn is_empty(&self) -> bool {
        self == &ConfigEdits::default()
    }
}

/// Applies `edits` to the `config` object of a full image config.
pub fn apply_edits(image_config: &mut Value, edits: &ConfigEdits) {
    if edits.is_empty() {
        return;
    }
    let Some(root) = image_config.as_object_mut() else {
        return;
    };
    let config = root
        .entry("config")
        .or_insert_with(|| Value::Object(Map::new()));
    if !config.is_object() {
        *config = Value::Object(Map::new());
    }
    let Some(config) = config.as_object_mut() else {
        return;
    };
    let strings =
        |items: &[String]| Value::Array(items.iter().cloned().map(Value::String).collect());
    if let Some(entrypoint) = &edits.entrypoint {
        config.insert(
            "Entrypoint".into(),
            if entrypoint.is_empty() {
                Value::Null
            } else {
                strings(entrypoint)
            },
        );
    }
    if let Some(cmd) = &edits.cmd {
        config.insert(
            "Cmd".into(),
            if cmd.is_empty() {
                Value::Null
            } else {
                strings(cmd)
            },
        );
    }
    if let Some(workdir) = &edits.workdir {
        config.insert("WorkingDir".into(), Value::String(workdir.clone()));
    }
    let mut env: Vec<String> = config
        .get("Env")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let key = |kv: &str| kv.split('=').next().unwrap_or_default().to_string();
    for kv in &edits.env {
        match env.iter_mut().find(|existing| key(existing) == key(kv)) {
            Some(existing) => *existing = kv.clone(),
            None => env.push(kv.clone()),
        }
    }
    env.retain(|kv| !edits.remove_env.contains(&key(kv)));
    if !edits.env.is_empty() || !edits.remove_env.is_empty() {
        config.insert("Env".into(), strings(&env));
    }
    let mut set = |field: &str, add: &[String], remove: &[String]| {
        if add.is_empty() && remove.is_empty() {
            return;
        }
        let mut map = config
            .get(field)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for item in add {
            map.insert(item.clone(), Value::Object(Map::new()));
        }
        for item in remove {
            map.remove(item);
        }
        config.insert(
            field.into(),
            if map.is_empty() {
                Value::Null
            } else {
                Value::Object(map)
            },
        );
    };
    set("ExposedPorts", &edits.expose, &edits.remove_expose);
    set("Volumes", &edits.volumes, &edits.remove_volumes);
    if !edits.labels.is_empty() || !edits.remove_labels.is_empty() {
        let mut labels = config
            .get("Labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &edits.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
        for k in &edits.remove_labels {
            labels.remove(k);
        }
        config.insert(
            "Labels".into(),
            if labels.is_empty() {
                Value::Null
            } else {
                Value::Object(labels)
            },
        );
    }
}

/// The run configuration of an image (docker's `config` object), typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunConfig {
    /// `KEY=value` strings as docker stores them.
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Port and protocol (`tcp`, `udp`, `sctp`).
    pub exposed_ports: Vec<(u16, String)>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Docker's Healthcheck object as-is (Test, Interval, Timeout, StartPeriod, Retries).
    pub healthcheck: Option<Value>,
    pub volumes: Vec<String>,
    pub shell: Vec<String>,
}

impl RunConfig {
    /// Reads the `config` object of a full image config (as docker stores it). Missing or null
    /// fields are empty; fields of the wrong type are an error, since guessing would run the
    /// container differently from docker.
    pub fn from_image_config(image_config: &Value) -> Result<RunConfig> {
        let config = match image_config.get("config") {
            None | Some(Value::Null) => return Ok(RunConfig::default()),
            Some(config @ Value::Object(_)) => config,
            Some(_) => return Err(config_error("config", "not an object")),
        };
        Ok(RunConfig {
            env: string_list(config, "Env")?,
            entrypoint: string_list(config, "Entrypoint")?,
            cmd: string_list(config, "Cmd")?,
            working_dir: optional_string(config, "WorkingDir")?,
            user: optional_string(config, "User")?,
            exposed_ports: exposed_ports(config)?,
            stop_signal: optional_string(config, "StopSignal")?,
            labels: labels(config)?,
            healthcheck: config.get("Healthcheck").filter(|v| !v.is_null()).cloned(),
            volumes: object_keys(config, "Volumes")?,
            shell: string_list(config, "Shell")?,
        })
    }

    /// The value of environment variable `name`, as the container would see it.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    /// The command line the container runs by default: entrypoint followed by cmd.
    pub fn command_line(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

fn config_error(field: &str, message: &str) -> Error {
    Error::Archive {
        context: format!("image config field {field}"),
        message: message.to_string(),
    }
}

fn optional_string(config: &Value, field: &str) -> Result<Option<String>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(config_error(field, "not a string")),
    }
}

fn string_list(config: &Value, field: &str) -> Result<Vec<String>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| config_error(field, "holds a non-string"))
            })
            .collect(),
        Some(_) => Err(config_error(field, "not a list")),
    }
}

fn object_keys(config: &Value, field: &str) -> Result<Vec<String>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => Ok(map.keys().cloned().collect()),
        Some(_) => Err(config_error(field, "not an object")),
    }
}

fn labels(config: &Value) -> Result<BTreeMap<String, String>> {
    match config.get("Labels") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| config_error("Labels", "holds a non-string value"))
            })
            .collect(),
        Some(_) => Err(config_error("Labels", "not an object")),
    }
}

/// `"8080/tcp"` keys; a bare port means tcp, as docker reads it.
fn exposed_ports(config: &Value) -> Result<Vec<(u16, String)>> {
    object_keys(config, "ExposedPorts")?
        .iter()
        .map(|key| {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let port = port
                .parse::<u16>()
                .map_err(|_| config_error("ExposedPorts", &format!("bad port {key:?}")))?;
            Ok((port, proto.to_ascii_lowercase()))
        })
        .collect()
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ`, without pulling in a date crate for one timestamp.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn source() -> Value {
        json!({
            "architecture": "arm64", "os": "linux", "variant": "v8",
            "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) build step"]},
            "config": {
                "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
                "Entrypoint": ["/entry"], "Cmd": null, "WorkingDir": "/srv", "User": "app",
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "Volumes": {"/data": {}}, "Labels": {"a": "b"}, "StopSignal": "SIGQUIT",
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
                "Shell": ["/bin/bash", "-c"], "OnBuild": ["RUN true"]
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]},
            "history": [{"created_by": "a"}, {"created_by": "b"}]
        })
    }

    #[test]
    fn slim_config_carries_run_config_verbatim_and_replaces_layers() {
        let slim = slim_config(&source(), "sha256:cc", "traced 3 probes");
        assert_eq!(slim["config"], source()["config"]);
        assert_eq!(
            (slim["architecture"].as_str(), slim["variant"].as_str()),
            (Some("arm64"), Some("v8"))
        );
        assert_eq!(
            slim["rootfs"],
            json!({"type": "layers", "diff_ids": ["sha256:cc"]})
        );
        let history = slim["history"].as_array().unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["created_by"], "minify: traced 3 probes");
        assert!(slim.get("container_config").is_none());
        assert!(slim["created"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn run_config_reads_docker_fields() {
        let run = RunConfig::from_image_config(&source()).unwrap();
        assert_eq!(run.entrypoint, ["/entry"]);
        assert!(run.cmd.is_empty());
        assert_eq!(run.working_dir.as_deref(), Some("/srv"));
        assert_eq!(run.user.as_deref(), Some("app"));
        let mut ports = run.exposed_ports.clone();
        ports.sort();
        assert_eq!(ports, [(53, "udp".to_string()), (80, "tcp".to_string())]);
        assert_eq!(run.volumes, ["/data"]);
        assert_eq!(run.labels["a"], "b");
        assert_eq!(run.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(run.healthcheck.as_ref().unwrap()["Test"][1], "true");
        assert_eq!(run.env_var("PATH"), Some("/usr/bin"));
        assert_eq!(run.env_var("PAT"), None);
        assert_eq!(run.shell, ["/bin/bash", "-c"]);
        assert_eq!(run.command_line(), ["/entry"]);
    }

    #[test]
    fn run_config_tolerates_missing_and_rejects_wrong_types() {
        assert_eq!(
            RunConfig::from_image_config(&json!({})).unwrap(),
            RunConfig::default()
        );
        assert!(RunConfig::from_image_config(&json!({"config": {"Cmd": "ls"}})).is_err());
        assert!(RunConfig::from_image_config(
            &json!({"config": {"ExposedPorts": {"http/tcp": {}}}})
        )
        .is_err());
    }

    #[test]
    fn edits_add_replace_and_remove_like_docker_slim() {
        let mut slim = slim_config(&source(), "sha256:cc", "");
        let edits = ConfigEdits {
            entrypoint: Some(vec![]),
            cmd: Some(vec!["serve".into(), "--port=80".into()]),
            workdir: Some("/app".into()),
            env: vec!["LANG=C".into(), "MODE=prod".into()],
            expose: vec!["8080/tcp".into()],
            labels: BTreeMap::from([("team".into(), "web".into())]),
            volumes: vec!["/cache".into()],
            remove_env: vec!["PATH".into()],
            remove_expose: vec!["53/udp".into()],
            remove_labels: vec!["a".into()],
            remove_volumes: vec!["/data".into()],
        };
        apply_edits(&mut slim, &edits);
        let run = RunConfig::from_image_config(&slim).unwrap();
        assert!(run.entrypoint.is_empty());
        assert_eq!(run.cmd, ["serve", "--port=80"]);
        assert_eq!(run.working_dir.as_deref(), Some("/app"));
        assert_eq!(run.env, ["LANG=C", "MODE=prod"]);
        let mut ports = run.exposed_ports.clone();
        ports.sort();
        assert_eq!(ports, [(80, "tcp".to_string()), (8080, "tcp".to_string())]);
        assert_eq!(run.labels, BTreeMap::from([("team".into(), "web".into())]));
        assert_eq!(run.volumes, ["/cache"]);
        // What was not edited is carried over verbatim.
        assert_eq!(slim["config"]["StopSignal"], "SIGQUIT");
        assert_eq!(slim["config"]["OnBuild"][0], "RUN true");
        let untouched = slim_config(&source(), "sha256:cc", "");
        let mut same = untouched.clone();
        apply_edits(&mut same, &ConfigEdits::default());
        assert_eq!(same, untouched);
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // leap-year end of Feb
        assert_eq!(rfc3339_utc(t), "2024-02-29T23:59:59Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_868_800);
        assert_eq!(rfc3339_utc(t), "2000-03-01T00:00:00Z");
    }
}
