//! Reading a compose file into a [`Project`]: YAML (anchors and `<<` merge keys applied),
//! interpolation of every string value, then each key of the subset minify runs, in both the
//! short and the long syntax. Keys that would change how a service runs and that minify cannot
//! honour are errors; keys that do not matter for a build's run (`restart`, `deploy`, `logging`,
//! ...) are ignored; any other key is named in the project's warnings (the report has them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use super::interpolate::{self, Vars};
use super::{Condition, Healthcheck, NetworkDef, Port, Project, Service, ServiceVolume, VolumeDef};
use crate::{Error, Result};

/// Where the compose file is and which variables it sees.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub file: PathBuf,
    /// `--compose-env-file`: read instead of the project dir's `.env`.
    pub env_file: Option<PathBuf>,
    /// The host environment (empty with `--compose-env-nohost`); it overrides the env file.
    pub host_env: Vars,
    /// `--compose-workdir`: the project dir instead of the file's directory.
    pub workdir: Option<PathBuf>,
}

/// Service keys that change nothing in a build's run, or that minify does its own way
/// (`container_name`: minify names its containers uniquely): ignored without a warning.
const IGNORED_QUIETLY: &[&str] = &[
    "container_name",
    "restart",
    "pull_policy",
    "platform",
    "stop_grace_period",
    "stop_signal",
    "tty",
    "stdin_open",
    "init",
    "logging",
    "deploy",
    "x-",
];

/// Service keys that are read.
const SUPPORTED: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "networks",
    "depends_on",
    "healthcheck",
    "working_dir",
    "user",
    "hostname",
    "labels",
    "extra_hosts",
    "profiles",
];

/// Service keys that make a run minify cannot do faithfully: an error naming them.
const REFUSED: &[(&str, &str)] = &[
    ("extends", "merge the extended service into this file"),
    (
        "network_mode",
        "minify runs services on the project's networks; remove network_mode",
    ),
    ("volumes_from", "mount the volumes by name instead"),
    (
        "secrets",
        "pass the secret as a bind mount (volumes:) instead",
    ),
    (
        "configs",
        "pass the config as a bind mount (volumes:) instead",
    ),
];

/// Reads, interpolates and checks a compose file.
pub fn load(options: &LoadOptions) -> Result<Project> {
    let file = &options.file;
    let bad = |message: String| Error::Compose {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let dir = match &options.workdir {
        Some(dir) => dir.clone(),
        None => file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let dir = std::path::absolute(&dir)
        .map_err(|e| bad(format!("project dir {}: {e}", dir.display())))?;
    let mut vars = Vars::new();
    let env_path = options.env_file.clone().or_else(|| {
        let default = dir.join(".env");
        default.is_file().then_some(default)
    });
    if let Some(path) = &env_path {
        let env_text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("env file {}: {e}", path.display())))?;
        let pairs = interpolate::parse_env_lines(&env_text, |k| options.host_env.get(k).cloned())
            .map_err(|e| bad(format!("env file {}: {e}", path.display())))?;
        vars.extend(pairs);
    }
    vars.extend(options.host_env.clone());
    parse(&text, file, dir, &vars)
}

/// [`load`] on text already read, with the variables given.
pub(super) fn parse(text: &str, file: &Path, dir: PathBuf, vars: &Vars) -> Result<Project> {
    let bad = |message: String| Error::Compose {
        file: file.to_path_buf(),
        message,
    };
    let mut root: Value =
        serde_yaml::from_str(text).map_err(|e| bad(format!("not valid YAML: {e}")))?;
    root.apply_merge()
        .map_err(|e| bad(format!("YAML merge keys: {e}")))?;
    let mut unset = Vec::new();
    interpolate_tree(&mut root, vars, &mut unset).map_err(bad)?;
    let mut project = Project {
        file: file.to_path_buf(),
        dir,
        ..Project::default()
    };
    unset.sort();
    unset.dedup();
    for name in unset {
        project.warnings.push(format!(
            "variable {name} is not set: it reads as the empty string"
        ));
    }
    let Value::Mapping(top) = root else {
        return Err(bad(
            "expected a mapping with a services key at the top".into()
        ));
    };
    for (key, value) in &top {
        let key = key.as_str().unwrap_or_default();
        match key {
            "version" => {}
            "name" => project.name = scalar(value),
            "services" => {}
            "volumes" => {
                for (name, def) in mapping(value, "volumes").map_err(&bad)? {
                    project
                        .volumes
                        .insert(name.clone(), volume_def(&name, def).map_err(&bad)?);
                }
            }
            "networks" => {
                for (name, def) in mapping(value, "networks").map_err(&bad)? {
                    project
                        .networks
                        .insert(name.clone(), network_def(&name, def).map_err(&bad)?);
                }
            }
            "include" => {
                return Err(bad(
                    "the top-level include is not supported: merge the included files into one"
                        .into(),
                ))
            }
            k if k.starts_with("x-") => {}
            "secrets" | "configs" => {}
            other => project
                .warnings
                .push(format!("top-level key {other:?} is not read by minify")),
        }
    }
    let services = top
        .get("services")
        .ok_or_else(|| bad("no services: key".into()))?;
    let entries = mapping(services, "services").map_err(&bad)?;
    let names: Vec<String> = entries.iter().map(|(name, _)| name.clone()).collect();
    for (name, value) in entries {
        let service = service(value, &project.dir, &names, vars)
            .map_err(|e| bad(format!("service {name}: {e}")))?;
        project.services.insert(name, service);
    }
    // Second pass: what services refer to must exist.
    let mut warnings = Vec::new();
    for (name, value) in mapping(services, "services").map_err(&bad)? {
        if let Value::Mapping(map) = value {
            let ignored: Vec<&str> = map
                .keys()
                .filter_map(Value::as_str)
                .filter(|k| {
                    !SUPPORTED.contains(k)
                        && !IGNORED_QUIETLY
                            .iter()
                            .any(|q| *k == *q || (q.ends_with('-') && k.starts_with(q)))
                })
                .collect();
            if !ignored.is_empty() {
                warnings.push(format!(
                    "service {name}: not applied by minify: {}",
                    ignored.join(", ")
                ));
            }
        }
    }
    project.warnings.extend(warnings);
    check_references(&project).map_err(bad)?;
    if project.services.is_empty() {
        return Err(bad("services: is empty".into()));
    }
    Ok(project)
}

/// Every service's `depends_on`, named volumes and networks exist.
fn check_references(project: &Project) -> std::result::Result<(), String> {
    for (name, service) in &project.services {
        for dep in service.depends_on.keys() {
            if !project.services.contains_key(dep) {
                return Err(format!(
                    "service {name} depends on {dep}, which is not a service"
                ));
            }
            if dep == name {
                return Err(format!("service {name} depends on itself"));
            }
        }
        for volume in &service.volumes {
            if let ServiceVolume::Named { volume, .. } = volume {
                if !project.volumes.contains_key(volume) {
                    return Err(format!(
                        "service {name} mounts volume {volume}, which the top-level volumes: does not declare"
                    ));
                }
            }
        }
        for network in service.networks.keys() {
            if network != "default" && !project.networks.contains_key(network) {
                return Err(format!(
                    "service {name} is on network {network}, which the top-level networks: does not declare"
                ));
            }
        }
    }
    Ok(())
}

/// Interpolates every string value (not the keys) of the tree.
fn interpolate_tree(
    value: &mut Value,
    vars: &Vars,
    unset: &mut Vec<String>,
) -> std::result::Result<(), String> {
    match value {
        Value::String(s) => *s = interpolate::interpolate(s, vars, unset)?,
        Value::Sequence(items) => {
            for item in items {
                interpolate_tree(item, vars, unset)?;
            }
        }
        Value::Mapping(map) => {
            for (_, item) in map.iter_mut() {
                interpolate_tree(item, vars, unset)?;
            }
        }
        Value::Tagged(tagged) => interpolate_tree(&mut tagged.value, vars, unset)?,
        _ => {}
    }
    Ok(())
}

/// A string, number or bool as a string.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_of(value: &Value, what: &str) -> std::result::Result<String, String> {
    scalar(value).ok_or_else(|| format!("{what}: expected a string, got {}", describe(value)))
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A mapping's entries by string key; null is an empty mapping.
fn mapping<'a>(
    value: &'a Value,
    what: &str,
) -> std::result::Result<Vec<(String, &'a Value)>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(map) => map
            .iter()
            .map(|(k, v)| Ok((scalar_of(k, what)?, v)))
            .collect(),
        other => Err(format!(
            "{what}: expected a mapping, got {}",
            describe(other)
        )),
    }
}

/// A string or a list of strings.
fn string_list(value: &Value, what: &str) -> std::result::Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items.iter().map(|i| scalar_of(i, what)).collect(),
        other => Ok(vec![scalar_of(other, what)?]),
    }
}

/// `command`/`entrypoint`: a list as is, a string split into words (compose runs no shell).
fn exec_form(value: &Value, what: &str) -> std::result::Result<Option<Vec<String>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Sequence(_) => Ok(Some(string_list(value, what)?)),
        other => {
            let text = scalar_of(other, what)?;
            crate::run::shell_words(&text)
                .map(Some)
                .map_err(|e| format!("{what} {text:?}: {e}"))
        }
    }
}

/// A map (`KEY: value`) or a list (`KEY=value`) of pairs; a value-less key comes from `lookup`.
fn key_values(
    value: &Value,
    what: &str,
    separator: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    match value {
        Value::Null => {}
        Value::Mapping(_) => {
            for (key, v) in mapping(value, what)? {
                match v {
                    Value::Null => {
                        if let Some(found) = lookup(&key) {
                            out.push((key, found));
                        }
                    }
                    other => out.push((key, scalar_of(other, what)?)),
                }
            }
        }
        Value::Sequence(items) => {
            for item in items {
                let text = scalar_of(item, what)?;
                match text.split_once(separator) {
                    Some((k, v)) => out.push((k.to_string(), v.to_string())),
                    None => {
                        if let Some(found) = lookup(&text) {
                            out.push((text, found));
                        }
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "{what}: expected a mapping or a list, got {}",
                describe(other)
            ))
        }
    }
    Ok(out)
}

fn bool_of(value: &Value, what: &str) -> std::result::Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(format!(
            "{what}: expected true or false, got {}",
            describe(other)
        )),
    }
}

/// `external: true` (or the v3.3 `external: {name: X}`) and `name:`.
fn external_and_name(
    def: &Value,
    what: &str,
) -> std::result::Result<(bool, Option<String>), String> {
    let mut name = def.get("name").and_then(scalar);
    let external = match def.get("external") {
        None | Some(Value::Null) => false,
        Some(Value::Mapping(m)) => {
            if let Some(n) = m.get("name").and_then(scalar) {
                name = Some(n);
            }
            true
        }
        Some(other) => bool_of(other, &format!("{what}: external"))?,
    };
    Ok((external, name))
}

fn volume_def(name: &str, def: &Value) -> std::result::Result<VolumeDef, String> {
    if !matches!(def, Value::Null | Value::Mapping(_)) {
        return Err(format!("volume {name}: expected a mapping"));
    }
    let (external, explicit) = external_and_name(def, &format!("volume {name}"))?;
    Ok(VolumeDef {
        external,
        name: explicit,
        driver: def.get("driver").and_then(scalar),
    })
}

fn network_def(name: &str, def: &Value) -> std::result::Result<NetworkDef, String> {
    if !matches!(def, Value::Null | Value::Mapping(_)) {
        return Err(format!("network {name}: expected a mapping"));
    }
    let (external, explicit) = external_and_name(def, &format!("network {name}"))?;
    let internal = match def.get("internal") {
        None => false,
        Some(v) => bool_of(v, &format!("network {name}: internal"))?,
    };
    Ok(NetworkDef {
        external,
        name: explicit,
        driver: def.get("driver").and_then(scalar),
        internal,
    })
}

/// One service; `services` are the names of all of them (an optional dependency on one that is
/// not there is dropped).
fn service(
    value: &Value,
    dir: &Path,
    services: &[String],
    vars: &Vars,
) -> std::result::Result<Service, String> {
    let Value::Mapping(map) = value else {
        return Err(format!("expected a mapping, got {}", describe(value)));
    };
    for (key, why) in REFUSED {
        if map.contains_key(*key) {
            return Err(format!("{key} is not supported: {why}"));
        }
    }
    let get = |key: &str| map.get(key);
    let lookup = |k: &str| vars.get(k).cloned();
    let mut service = Service {
        image: get("image").map(|v| scalar_of(v, "image")).transpose()?,
        has_build: get("build").is_some_and(|b| !b.is_null()),
        command: get("command")
            .map(|v| exec_form(v, "command"))
            .transpose()?
            .flatten(),
        entrypoint: get("entrypoint")
            .map(|v| exec_form(v, "entrypoint"))
            .transpose()?
            .flatten(),
        working_dir: get("working_dir")
            .map(|v| scalar_of(v, "working_dir"))
            .transpose()?,
        user: get("user").map(|v| scalar_of(v, "user")).transpose()?,
        hostname: get("hostname")
            .map(|v| scalar_of(v, "hostname"))
            .transpose()?,
        ..Service::default()
    };
    // env_file first: `environment` wins over it, as in compose.
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(files) = get("env_file") {
        let entries: Vec<(String, bool)> = match files {
            Value::Sequence(items) => items
                .iter()
                .map(|item| match item {
                    Value::Mapping(m) => Ok((
                        m.get("path")
                            .and_then(scalar)
                            .ok_or("env_file: an entry needs a path")?,
                        m.get("required")
                            .map(|r| bool_of(r, "env_file: required"))
                            .transpose()?
                            .unwrap_or(true),
                    )),
                    other => Ok((scalar_of(other, "env_file")?, true)),
                })
                .collect::<std::result::Result<_, String>>()?,
            other => vec![(scalar_of(other, "env_file")?, true)],
        };
        for (path, required) in entries {
            let path = dir.join(&path);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(_) if !required => continue,
                Err(e) => return Err(format!("env_file {}: {e}", path.display())),
            };
            env.extend(
                interpolate::parse_env_lines(&text, lookup)
                    .map_err(|e| format!("env_file {}: {e}", path.display()))?,
            );
        }
    }
    if let Some(environment) = get("environment") {
        env.extend(key_values(environment, "environment", '=', &lookup)?);
    }
    // One value per key, the last one (environment over env_file), in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in env {
        if !values.contains_key(&k) {
            order.push(k.clone());
        }
        values.insert(k, v);
    }
    service.environment = order
        .into_iter()
        .map(|k| format!("{k}={}", values[&k]))
        .collect();
    if let Some(ports) = get("ports") {
        let Value::Sequence(items) = ports else {
            return Err("ports: expected a list".into());
        };
        for item in items {
            service.ports.extend(port(item)?);
        }
    }
    if let Some(expose) = get("expose") {
        for raw in string_list(expose, "expose")? {
            service.expose.extend(port_range(&raw, "expose")?);
        }
    }
    if let Some(volumes) = get("volumes") {
        let Value::Sequence(items) = volumes else {
            return Err("volumes: expected a list".into());
        };
        for item in items {
            if let Some(volume) = service_volume(item, dir)? {
                service.volumes.push(volume);
            }
        }
    }
    if let Some(networks) = get("networks") {
        match networks {
            Value::Sequence(_) => {
                for network in string_list(networks, "networks")? {
                    service.networks.insert(network, Vec::new());
                }
            }
            Value::Mapping(_) => {
                for (network, settings) in mapping(networks, "networks")? {
                    let aliases = match settings.get("aliases") {
                        Some(a) => string_list(a, "networks: aliases")?,
                        None => Vec::new(),
                    };
                    service.networks.insert(network, aliases);
                }
            }
            other => {
                return Err(format!(
                    "networks: expected a list or a mapping, got {}",
                    describe(other)
                ))
            }
        }
    }
    if let Some(depends_on) = get("depends_on") {
        match depends_on {
            Value::Sequence(_) => {
                for dep in string_list(depends_on, "depends_on")? {
                    service.depends_on.insert(dep, Condition::Started);
                }
            }
            Value::Mapping(_) => {
                for (dep, settings) in mapping(depends_on, "depends_on")? {
                    let condition = match settings.get("condition").and_then(scalar).as_deref() {
                        None | Some("service_started") => Condition::Started,
                        Some("service_healthy") => Condition::Healthy,
                        Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                        Some(other) => {
                            return Err(format!(
                                "depends_on {dep}: condition {other:?} is not one of service_started, service_healthy, service_completed_successfully"
                            ))
                        }
                    };
                    let required = settings
                        .get("required")
                        .map(|r| bool_of(r, "depends_on: required"))
                        .transpose()?
                        .unwrap_or(true);
                    if !required && !services.contains(&dep) {
                        continue;
                    }
                    service.depends_on.insert(dep, condition);
                }
            }
            other => {
                return Err(format!(
                    "depends_on: expected a list or a mapping, got {}",
                    describe(other)
                ))
            }
        }
    }
    if let Some(check) = get("healthcheck") {
        service.healthcheck = healthcheck(check)?;
    }
    if let Some(labels) = get("labels") {
        service.labels = key_values(labels, "labels", '=', &|_| Some(String::new()))?
            .into_iter()
            .collect();
    }
    if let Some(hosts) = get("extra_hosts") {
        service.extra_hosts = match hosts {
            Value::Mapping(_) => key_values(hosts, "extra_hosts", ':', &|_| None)?
                .into_iter()
                .map(|(h, ip)| format!("{h}:{ip}"))
                .collect(),
            other => string_list(other, "extra_hosts")?
                .into_iter()
                // `host=ip` is the newer spelling of `host:ip`.
                .map(|entry| match entry.split_once('=') {
                    Some((h, ip)) => format!("{h}:{ip}"),
                    None => entry,
                })
                .collect(),
        };
    }
    if let Some(profiles) = get("profiles") {
        service.profiles = string_list(profiles, "profiles")?;
    }
    Ok(service)
}

/// A `ports:` entry, short (`"8000"`, `"8080:8000"`, `"127.0.0.1::8000/udp"`, ranges) or long.
fn port(item: &Value) -> std::result::Result<Vec<Port>, String> {
    if let Value::Mapping(m) = item {
        let target = m
            .get("target")
            .and_then(scalar)
            .ok_or("ports: a long-syntax entry needs a target")?;
        let protocol = m
            .get("protocol")
            .and_then(scalar)
            .unwrap_or_else(|| "tcp".into());
        let container = port_range(&format!("{target}/{protocol}"), "ports")?;
        let published = m.get("published").and_then(scalar).unwrap_or_default();
        let host_ip = m.get("host_ip").and_then(scalar).unwrap_or_default();
        return pair_ports(container, &published, &host_ip);
    }
    let raw = scalar_of(item, "ports")?;
    let (spec, protocol) = raw.split_once('/').unwrap_or((raw.as_str(), "tcp"));
    // The host IP may be an IPv6 address in brackets.
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(v6) => {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("ports {raw:?}: unclosed ["))?;
            (
                ip.to_string(),
                after.strip_prefix(':').unwrap_or(after).to_string(),
            )
        }
        None => {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.as_slice() {
                [_] | [_, _] => (String::new(), spec.to_string()),
                [ip, host, container] => (ip.to_string(), format!("{host}:{container}")),
                _ => {
                    return Err(format!(
                        "ports {raw:?}: expected [[IP:]HOST:]CONTAINER[/PROTO]"
                    ))
                }
            }
        }
    };
    let (published, container) = match rest.rsplit_once(':') {
        Some((host, container)) => (host.to_string(), container.to_string()),
        None => (String::new(), rest),
    };
    let container = port_range(&format!("{container}/{protocol}"), "ports")?;
    pair_ports(container, &published, &host_ip)
}

/// Pairs container ports with a host port or range (empty: random ports).
fn pair_ports(
    container: Vec<String>,
    published: &str,
    host_ip: &str,
) -> std::result::Result<Vec<Port>, String> {
    let hosts: Vec<String> = if published.is_empty() {
        vec![String::new(); container.len()]
    } else {
        let (start, end) = published.split_once('-').unwrap_or((published, published));
        let (start, end): (u16, u16) = (
            start
                .parse()
                .map_err(|_| format!("ports: bad host port {published:?}"))?,
            end.parse()
                .map_err(|_| format!("ports: bad host port {published:?}"))?,
        );
        if end < start {
            return Err(format!("ports: bad host port range {published:?}"));
        }
        if end == start {
            vec![start.to_string(); container.len()]
        } else {
            (start..=end).map(|p| p.to_string()).collect()
        }
    };
    if hosts.len() != container.len() {
        return Err(format!(
            "ports: host range {published:?} and container range differ in length"
        ));
    }
    Ok(container
        .into_iter()
        .zip(hosts)
        .map(|(container, host_port)| Port {
            container,
            host_ip: host_ip.to_string(),
            host_port,
        })
        .collect())
}

/// `8000`, `8000/udp`, `8000-8002` → `8000/tcp`...
fn port_range(raw: &str, what: &str) -> std::result::Result<Vec<String>, String> {
    let bad = || format!("{what} {raw:?}: expected PORT[-END][/PROTO]");
    let (ports, protocol) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
        return Err(bad());
    }
    let (start, end) = ports.split_once('-').unwrap_or((ports, ports));
    let start: u16 = start.trim().parse().map_err(|_| bad())?;
    let end: u16 = end.trim().parse().map_err(|_| bad())?;
    if start == 0 || end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{protocol}")).collect())
}

/// A service's `volumes:` entry; `None` for a tmpfs (not mounted by minify: it holds nothing
/// of the image).
fn service_volume(item: &Value, dir: &Path) -> std::result::Result<Option<ServiceVolume>, String> {
    let host_path = |source: &str| -> String {
        let expanded = match source.strip_prefix('~') {
            Some(rest) => format!(
                "{}{rest}",
                std::env::var("HOME").unwrap_or_else(|_| "/root".into())
            ),
            None => source.to_string(),
        };
        let path = Path::new(&expanded);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        normalize(&absolute)
    };
    if let Value::Mapping(m) = item {
        let kind = m
            .get("type")
            .and_then(scalar)
            .unwrap_or_else(|| "volume".into());
        let target = m
            .get("target")
            .and_then(scalar)
            .ok_or("volumes: a long-syntax entry needs a target")?;
        let read_only = match m.get("read_only") {
            Some(v) => bool_of(v, "volumes: read_only")?,
            None => false,
        };
        let source = m.get("source").and_then(scalar);
        return match (kind.as_str(), source) {
            ("bind", Some(source)) => Ok(Some(ServiceVolume::Bind {
                source: host_path(&source),
                target,
                read_only,
            })),
            ("bind", None) => Err("volumes: a bind mount needs a source".into()),
            ("volume", Some(volume)) => Ok(Some(ServiceVolume::Named {
                volume,
                target,
                read_only,
            })),
            ("volume", None) => Ok(Some(ServiceVolume::Anonymous { target })),
            ("tmpfs", _) => Ok(None),
            (other, _) => Err(format!(
                "volumes: type {other:?} is not supported (bind, volume, tmpfs)"
            )),
        };
    }
    let raw = scalar_of(item, "volumes")?;
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, options] => (Some(*source), *target, *options),
        _ => return Err(format!("volumes {raw:?}: expected [SOURCE:]TARGET[:MODE]")),
    };
    if !target.starts_with('/') {
        return Err(format!(
            "volumes {raw:?}: the container path must be absolute"
        ));
    }
    let read_only = options.split(',').any(|o| o == "ro");
    let target = target.to_string();
    Ok(Some(match source {
        None => ServiceVolume::Anonymous { target },
        Some(source) if source.starts_with(['/', '.', '~']) => ServiceVolume::Bind {
            source: host_path(source),
            target,
            read_only,
        },
        Some(volume) => ServiceVolume::Named {
            volume: volume.to_string(),
            target,
            read_only,
        },
    }))
}

/// `a/./b/../c` → `a/c`, without touching the filesystem (the daemon resolves the path).
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(part) => parts.push(part),
            _ => {}
        }
    }
    let joined: PathBuf = parts.iter().collect();
    format!("/{}", joined.display())
}

fn healthcheck(value: &Value) -> std::result::Result<Option<Healthcheck>, String> {
    if value.is_null() {
        return Ok(None);
    }
    if !value.is_mapping() {
        return Err("healthcheck: expected a mapping".into());
    }
    let disabled = match value.get("disable") {
        Some(v) => bool_of(v, "healthcheck: disable")?,
        None => false,
    };
    let test = match value.get("test") {
        _ if disabled => vec!["NONE".to_string()],
        None => return Err("healthcheck: no test (write disable: true to turn it off)".into()),
        Some(Value::Sequence(_)) => {
            let test = string_list(
                value.get("test").unwrap_or(&Value::Null),
                "healthcheck: test",
            )?;
            match test.first().map(String::as_str) {
                Some("CMD" | "CMD-SHELL" | "NONE") => test,
                _ => {
                    return Err(format!(
                        "healthcheck: test {test:?} must start with CMD, CMD-SHELL or NONE"
                    ))
                }
            }
        }
        Some(other) => vec![
            "CMD-SHELL".to_string(),
            scalar_of(other, "healthcheck: test")?,
        ],
    };
    let duration = |key: &str| -> std::result::Result<Option<Duration>, String> {
        value
            .get(key)
            .map(|v| {
                let text = scalar_of(v, key)?;
                parse_duration(&text).ok_or_else(|| {
                    format!(
                        "healthcheck: {key} {text:?}: expected a duration like 10s, 1m30s, 500ms"
                    )
                })
            })
            .transpose()
    };
    let retries = value
        .get("retries")
        .map(|v| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| "healthcheck: retries: expected a whole number".to_string())
        })
        .transpose()?;
    Ok(Some(Healthcheck {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start_period")?,
        retries,
    }))
}

/// Compose's (Go's) durations: `1h`, `1m30s`, `10s`, `500ms`, `20us`, `1.5s`.
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
version: "3.8"
x-env: &env
  LOG_LEVEL: debug
services:
  web:
    image: "shop/web:${TAG:-1.0}"
    command: python3 app.py --greeting "hello there"
    entrypoint: ["/entry.sh"]
    environment:
      <<: *env
      REDIS_URL: redis://cache:6379
      FROM_HOST:
      NOT_ANYWHERE:
      PORT: 8000
    env_file: web.env
    ports:
      - "8080:8000"
      - "127.0.0.1::9000"
      - 9100-9101:9200-9201
      - "[::1]:7443:443/tcp"
      - target: 5353
        published: 15353
        protocol: udp
    expose: ["7000", 7001]
    volumes:
      - ./static:/srv/static:ro
      - data:/var/lib/data
      - /tmp/cache
      - type: tmpfs
        target: /run
      - type: bind
        source: ../shared
        target: /shared
        read_only: true
      - shared:/mnt/shared
    networks:
      front:
      back:
        aliases: [api]
    depends_on:
      cache:
        condition: service_healthy
      db:
        condition: service_started
      seed:
        condition: service_completed_successfully
      optional:
        condition: service_started
        required: false
    working_dir: /srv
    user: 1000
    hostname: web1
    labels: ["team=shop"]
    extra_hosts: ["metrics.local=10.0.0.9", "logs.local:10.0.0.8"]
    restart: always
    cap_add: [NET_ADMIN]
  cache:
    image: redis:7
    healthcheck:
      test: redis-cli ping
      interval: 1s
      timeout: 500ms
      retries: 30
      start_period: 1m30s
  db:
    image: postgres:16
    depends_on: [cache]
    networks: [back]
  seed:
    image: shop/seed:1
    healthcheck:
      disable: true
    profiles: [tools]
volumes:
  data:
  shared:
    external: true
    name: ${SHARED:?set SHARED to the shared volume}
networks:
  front:
  back:
    internal: true
"#;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse_in(dir: &Path, text: &str, vars: &Vars) -> Result<Project> {
        parse(text, &dir.join("compose.yaml"), dir.to_path_buf(), vars)
    }

    #[test]
    fn a_compose_file_reads_into_services_volumes_and_networks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.env"), "PORT=1\nFROM_FILE=yes\n").unwrap();
        let vars = vars(&[("SHARED", "shop-shared"), ("FROM_HOST", "h")]);
        let project = parse_in(dir.path(), SHOP, &vars).unwrap();
        let web = &project.services["web"];
        assert_eq!(web.image.as_deref(), Some("shop/web:1.0"));
        assert_eq!(
            web.command.as_deref().unwrap(),
            ["python3", "app.py", "--greeting", "hello there"]
        );
        assert_eq!(web.entrypoint.as_deref().unwrap(), ["/entry.sh"]);
        assert_eq!(
            web.environment,
            [
                "PORT=8000",
                "FROM_FILE=yes",
                "REDIS_URL=redis://cache:6379",
                "FROM_HOST=h",
                "LOG_LEVEL=debug",
            ],
            "env_file first, environment over it, merge keys applied, unset keys left out"
        );
        let ports: Vec<(&str, &str, &str)> = web
            .ports
            .iter()
            .map(|p| {
                (
                    p.container.as_str(),
                    p.host_ip.as_str(),
                    p.host_port.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("8000/tcp", "", "8080"),
                ("9000/tcp", "127.0.0.1", ""),
                ("9200/tcp", "", "9100"),
                ("9201/tcp", "", "9101"),
                ("443/tcp", "::1", "7443"),
                ("5353/udp", "", "15353"),
            ]
        );
        assert_eq!(web.expose, ["7000/tcp", "7001/tcp"]);
        let root = dir.path().display().to_string();
        let parent = dir.path().parent().unwrap().display().to_string();
        assert_eq!(
            web.volumes,
            [
                ServiceVolume::Bind {
                    source: format!("{root}/static"),
                    target: "/srv/static".into(),
                    read_only: true
                },
                ServiceVolume::Named {
                    volume: "data".into(),
                    target: "/var/lib/data".into(),
                    read_only: false
                },
                ServiceVolume::Anonymous {
                    target: "/tmp/cache".into()
                },
                ServiceVolume::Bind {
                    source: format!("{parent}/shared"),
                    target: "/shared".into(),
                    read_only: true
                },
                ServiceVolume::Named {
                    volume: "shared".into(),
                    target: "/mnt/shared".into(),
                    read_only: false
                },
            ],
            "the tmpfs is not mounted"
        );
        assert_eq!(web.networks["back"], ["api"]);
        assert!(web.networks["front"].is_empty());
        assert_eq!(
            web.depends_on,
            BTreeMap::from([
                ("cache".to_string(), Condition::Healthy),
                ("db".to_string(), Condition::Started),
                ("seed".to_string(), Condition::CompletedSuccessfully),
            ]),
            "an optional dependency on a missing service is dropped"
        );
        assert_eq!(web.working_dir.as_deref(), Some("/srv"));
        assert_eq!(web.user.as_deref(), Some("1000"));
        assert_eq!(web.hostname.as_deref(), Some("web1"));
        assert_eq!(web.labels["team"], "shop");
        assert_eq!(
            web.extra_hosts,
            ["metrics.local:10.0.0.9", "logs.local:10.0.0.8"]
        );
        let cache = project.services["cache"].healthcheck.clone().unwrap();
        assert_eq!(cache.test, ["CMD-SHELL", "redis-cli ping"]);
        assert_eq!(cache.interval, Some(Duration::from_secs(1)));
        assert_eq!(cache.timeout, Some(Duration::from_millis(500)));
        assert_eq!(cache.start_period, Some(Duration::from_secs(90)));
        assert_eq!(cache.retries, Some(30));
        assert_eq!(
            project.services["seed"].healthcheck.as_ref().unwrap().test,
            ["NONE"]
        );
        assert_eq!(project.services["seed"].profiles, ["tools"]);
        assert_eq!(
            project.services["db"].depends_on["cache"],
            Condition::Started
        );
        assert_eq!(
            project.volumes["shared"],
            VolumeDef {
                external: true,
                name: Some("shop-shared".into()),
                driver: None
            }
        );
        assert!(!project.volumes["data"].external);
        assert!(project.networks["back"].internal);
        let warnings = project.warnings.join("\n");
        assert!(
            warnings.contains("service web: not applied by minify: cap_add"),
            "{warnings}"
        );
        assert!(!warnings.contains("restart"), "{warnings}");
    }

    #[test]
    fn the_env_file_and_the_host_environment_feed_interpolation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        std::fs::write(
            &file,
            "services:\n  app:\n    image: app:${TAG}\n    environment:\n      HOST: ${HOST:-localhost}\n      MISSING: x${NOPE}y\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".env"), "TAG=from-dotenv\nHOST=db\n").unwrap();
        let load_with = |env_file: Option<PathBuf>, host: &[(&str, &str)]| {
            load(&LoadOptions {
                file: file.clone(),
                env_file,
                host_env: vars(host),
                workdir: None,
            })
            .unwrap()
        };
        let project = load_with(None, &[]);
        assert_eq!(
            project.services["app"].image.as_deref(),
            Some("app:from-dotenv")
        );
        assert_eq!(
            project.services["app"].environment,
            ["HOST=db", "MISSING=xy"]
        );
        assert!(
            project.warnings.iter().any(|w| w.contains("NOPE")),
            "{:?}",
            project.warnings
        );
        let project = load_with(None, &[("TAG", "from-host")]);
        assert_eq!(
            project.services["app"].image.as_deref(),
            Some("app:from-host"),
            "the host environment overrides .env"
        );
        let other = dir.path().join("ci.env");
        std::fs::write(&other, "TAG=from-flag\n").unwrap();
        let project = load_with(Some(other), &[]);
        assert_eq!(
            project.services["app"].image.as_deref(),
            Some("app:from-flag")
        );
        assert_eq!(
            project.services["app"].environment[0], "HOST=localhost",
            "--compose-env-file replaces .env"
        );
    }

    #[test]
    fn what_minify_cannot_run_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| {
            parse_in(dir.path(), text, &Vars::new())
                .unwrap_err()
                .to_string()
        };
        let e = err("services:\n  a:\n    image: x\n    network_mode: host\n");
        assert!(
            e.contains("service a: network_mode is not supported"),
            "{e}"
        );
        let e = err("services:\n  a:\n    image: x\n    depends_on: [b]\n");
        assert!(e.contains("depends on b, which is not a service"), "{e}");
        let e = err("services:\n  a:\n    image: x\n    volumes: [data:/d]\n");
        assert!(
            e.contains("volume data, which the top-level volumes: does not declare"),
            "{e}"
        );
        let e = err("services:\n  a:\n    image: x\n    networks: [back]\n");
        assert!(e.contains("network back"), "{e}");
        let e = err("services:\n  a:\n    image: ${TOKEN:?needed for the registry}\n");
        assert!(
            e.contains("TOKEN") && e.contains("needed for the registry"),
            "{e}"
        );
        let e = err("services: [a, b]\n");
        assert!(e.contains("services: expected a mapping"), "{e}");
        let e = err("services:\n  a:\n    image: x\n    ports: [\"1:2:3:4\"]\n");
        assert!(e.contains("ports"), "{e}");
        let e = err("services:\n  a:\n    image: x\n    healthcheck:\n      test: [curl, x]\n");
        assert!(e.contains("CMD, CMD-SHELL or NONE"), "{e}");
        let e = err("services:\n  a:\n    image: x\n    healthcheck:\n      test: x\n      interval: soon\n");
        assert!(e.contains("interval"), "{e}");
        let e = err("services:\n  a:\n    image: x\n    depends_on:\n      a:\n        condition: service_started\n");
        assert!(e.contains("depends on itself"), "{e}");
        let e = err("services:\n  a: {image: x\n");
        assert!(e.contains("not valid YAML"), "{e}");
        let e = err("include: [other.yaml]\nservices:\n  a:\n    image: x\n");
        assert!(e.contains("include"), "{e}");
    }

    #[test]
    fn durations_read_as_compose_writes_them() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None, "a unit is needed");
        assert_eq!(parse_duration("5x"), None);
    }
}
