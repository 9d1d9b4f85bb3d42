//! The image config as a reader wants it (secret-looking env values masked) and a Dockerfile
//! reconstructed from the build history.

use serde::Serialize;
use serde_json::Value;

use super::findings::secret_env;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigSummary {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value`, values of secret-looking variables masked.
    pub env: Vec<String>,
    pub masked_env: Vec<String>,
    /// As configured (empty means root).
    pub user: String,
    pub runs_as_root: bool,
    pub exposed_ports: Vec<String>,
    pub healthcheck: Option<String>,
    pub working_dir: String,
    pub stop_signal: String,
    pub volumes: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub architecture: String,
    pub os: String,
    pub created: String,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn keys(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or("").to_string()
}

/// Whether a `User` value means uid 0.
pub fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("").trim();
    name.is_empty() || name == "root" || name == "0"
}

pub fn summarize(config: &Value) -> ConfigSummary {
    let c = config.get("config").or_else(|| config.get("Config"));
    let get = |k: &str| c.and_then(|c| c.get(k));
    let mut masked_env = Vec::new();
    let env = strings(get("Env"))
        .into_iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((&pair, ""));
            if secret_env(name, value) {
                masked_env.push(name.to_string());
                format!("{name}=****** (masked, {} chars)", value.chars().count())
            } else {
                pair.clone()
            }
        })
        .collect();
    let healthcheck = get("Healthcheck").and_then(|h| {
        let test = strings(h.get("Test"));
        let (kind, rest) = test.split_first()?;
        let nanos = |k: &str| h.get(k).and_then(Value::as_u64).unwrap_or(0);
        let timing = format!(
            " (interval {}s, timeout {}s, retries {})",
            nanos("Interval") / 1_000_000_000,
            nanos("Timeout") / 1_000_000_000,
            h.get("Retries").and_then(Value::as_u64).unwrap_or(0)
        );
        Some(match kind.as_str() {
            "NONE" => "NONE".to_string(),
            "CMD-SHELL" => format!("CMD-SHELL {}{timing}", rest.join(" ")),
            _ => format!(
                "{kind} {}{timing}",
                serde_json::to_string(rest).unwrap_or_default()
            ),
        })
    });
    let user = text(get("User"));
    let mut labels: Vec<(String, String)> = get("Labels")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    ConfigSummary {
        entrypoint: strings(get("Entrypoint")),
        cmd: strings(get("Cmd")),
        env,
        masked_env,
        runs_as_root: is_root_user(&user),
        user,
        exposed_ports: keys(get("ExposedPorts")),
        healthcheck,
        working_dir: text(get("WorkingDir")),
        stop_signal: text(get("StopSignal")),
        volumes: keys(get("Volumes")),
        labels,
        architecture: text(config.get("architecture")),
        os: text(config.get("os")),
        created: text(config.get("created")),
    }
}

/// One history entry: the instruction and whether it made a layer.
#[derive(Debug, Clone)]
pub struct HistoryStep {
    pub instruction: String,
    pub empty_layer: bool,
}

pub fn history(config: &Value) -> Vec<HistoryStep> {
    config
        .get("history")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .map(|step| HistoryStep {
                    instruction: instruction(&text(step.get("created_by"))),
                    empty_layer: step
                        .get("empty_layer")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `created_by` as a Dockerfile line: classic-builder `/bin/sh -c #(nop) ` and BuildKit
/// `# buildkit` decorations removed, shell steps turned into `RUN`.
pub fn instruction(created_by: &str) -> String {
    let line = created_by.trim();
    let line = line.strip_suffix("# buildkit").unwrap_or(line).trim_end();
    if line.is_empty() {
        return "(missing)".into();
    }
    if let Some(rest) = line.strip_prefix("/bin/sh -c #(nop)") {
        let rest = rest.trim();
        if let Some(ports) = rest.strip_prefix("EXPOSE map[") {
            let ports: Vec<&str> = ports
                .trim_end_matches(']')
                .split(' ')
                .filter_map(|p| p.split(':').next())
                .filter(|p| !p.is_empty())
                .collect();
            return format!("EXPOSE {}", ports.join(" "));
        }
        return rest.to_string();
    }
    // Both builders put the build args of a RUN first: `|2 A=1 B=2 /bin/sh -c cmd`.
    let without_args = |text: &str| -> String {
        let text = text.trim();
        if let Some(count) = text
            .strip_prefix('|')
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            let mut words = text.splitn(count + 2, ' ');
            words.nth(count);
            return words.next().unwrap_or("").to_string();
        }
        text.to_string()
    };
    let line = &without_args(line);
    if let Some(rest) = line.strip_prefix("/bin/sh -c ") {
        return format!("RUN {}", rest.trim());
    }
    if let Some(rest) = line.strip_prefix("RUN ") {
        let rest = without_args(rest);
        let rest = rest.strip_prefix("/bin/sh -c ").unwrap_or(&rest);
        return format!("RUN {}", rest.trim());
    }
    line.to_string()
}

/// The history as a Dockerfile. Base image steps are included: the result starts FROM scratch.
pub fn dockerfile(steps: &[HistoryStep]) -> String {
    let mut out = String::from(
        "# Reconstructed from the image history by minify xray.\n\
         # ADD/COPY sources are shown as the builder recorded them (often content hashes).\n\
         FROM scratch\n",
    );
    for step in steps {
        out.push_str(&step.instruction);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_from_both_builders() {
        assert_eq!(
            instruction("/bin/sh -c #(nop)  CMD [\"nginx\" \"-g\"]"),
            "CMD [\"nginx\" \"-g\"]"
        );
        assert_eq!(
            instruction("/bin/sh -c #(nop)  EXPOSE map[80/tcp:{} 443/tcp:{}]"),
            "EXPOSE 80/tcp 443/tcp"
        );
        assert_eq!(
            instruction("/bin/sh -c apt-get update"),
            "RUN apt-get update"
        );
        assert_eq!(
            instruction("RUN |1 V=2 /bin/sh -c make V=$V # buildkit"),
            "RUN make V=$V"
        );
        assert_eq!(
            instruction("|1 DEBIAN_FRONTEND=noninteractive /bin/sh -c apt-get update"),
            "RUN apt-get update"
        );
        assert_eq!(
            instruction("COPY app.py /app/ # buildkit"),
            "COPY app.py /app/"
        );
        assert_eq!(instruction(""), "(missing)");
    }

    #[test]
    fn config_masks_secrets_and_knows_root() {
        let config = serde_json::json!({"config": {
            "Env": ["PATH=/bin", "DB_PASSWORD=hunter2"], "User": "app",
            "ExposedPorts": {"80/tcp": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000u64}
        }});
        let s = summarize(&config);
        assert_eq!(s.env[0], "PATH=/bin");
        assert!(!s.env[1].contains("hunter2"));
        assert_eq!(s.masked_env, vec!["DB_PASSWORD"]);
        assert!(!s.runs_as_root);
        assert_eq!(s.exposed_ports, vec!["80/tcp"]);
        assert!(s
            .healthcheck
            .unwrap()
            .starts_with("CMD [\"true\"] (interval 5s"));
        assert!(is_root_user("") && is_root_user("0:0") && !is_root_user("1000"));
    }
}
