//! Registry credentials for `--pull`, found as the docker CLI finds them: docker-slim's
//! `--registry-account`/`--registry-secret`, else the docker config file (`--docker-config-path`,
//! else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): its `auths` entry for the
//! image's registry (base64 `auth` or `username`/`password`), or the credential helper its
//! `credHelpers`/`credsStore` names (`docker-credential-NAME get`).

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::{Error, Result};

/// What the daemon is given to log in to a registry for one pull.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// The registry as the config names it (`127.0.0.1:5000`, `https://index.docker.io/v1/`).
    pub server: String,
}

// Never print the secret (error messages and `--verbose` debug output show the struct).
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Docker Hub's registry host, for references without one (`nginx`, `library/nginx:1`).
pub const DOCKER_HUB: &str = "docker.io";

/// The registry host of an image reference, as the docker CLI reads it: the first path
/// component when it looks like a host (has a `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => DOCKER_HUB.to_string(),
    }
}

/// `host[:port]` of a config key or registry name: the scheme and path go (`auths` keys may be
/// `https://host:5000/v1/`), and Docker Hub's several spellings become [`DOCKER_HUB`].
fn normalize(server: &str) -> String {
    let bare = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = bare.split('/').next().unwrap_or(bare).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

/// Where the docker config is: `--docker-config-path` (a `config.json` file or the directory
/// holding one), else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = flag {
        return Some(if path.is_dir() {
            path.join("config.json")
        } else {
            path.to_path_buf()
        });
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// What a docker config says about one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEntry {
    /// Credentials written in the file.
    Inline(Credentials),
    /// A credential helper to ask (`docker-credential-NAME`), for this server key.
    Helper {
        helper: String,
        server: String,
    },
    None,
}

/// The entry of a docker config (its JSON text) for `registry`; `Err` says what is malformed.
pub fn lookup(config: &str, registry: &str) -> std::result::Result<ConfigEntry, String> {
    let value: serde_json::Value =
        serde_json::from_str(config).map_err(|e| format!("not JSON: {e}"))?;
    let wanted = normalize(registry);
    let str_field = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    // A helper for this very registry wins over everything (as in the docker CLI).
    if let Some(helpers) = value.get("credHelpers").and_then(|h| h.as_object()) {
        if let Some((server, helper)) = helpers.iter().find(|(k, _)| normalize(k) == wanted) {
            if let Some(helper) = helper.as_str().filter(|h| !h.is_empty()) {
                return Ok(ConfigEntry::Helper {
                    helper: helper.to_string(),
                    server: server.clone(),
                });
            }
        }
    }
    let auths = value.get("auths").and_then(|a| a.as_object());
    let entry = auths.and_then(|auths| auths.iter().find(|(k, _)| normalize(k) == wanted));
    if let Some((server, entry)) = entry {
        if let Some(auth) = str_field(entry, "auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| format!("auths.{server:?}.auth is not base64: {e}"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| format!("auths.{server:?}.auth is not UTF-8 text"))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| format!("auths.{server:?}.auth does not decode to USER:PASSWORD"))?;
            return Ok(ConfigEntry::Inline(Credentials {
                username: username.to_string(),
                password: password.to_string(),
                server: server.clone(),
            }));
        }
        if let (Some(username), Some(password)) =
            (str_field(entry, "username"), str_field(entry, "password"))
        {
            return Ok(ConfigEntry::Inline(Credentials {
                username,
                password,
                server: server.clone(),
            }));
        }
    }
    // An `auths` entry without credentials is what `docker login` writes next to a store.
    if let Some(store) = str_field(&value, "credsStore") {
        return Ok(ConfigEntry::Helper {
            helper: store,
            server: entry.map_or_else(|| registry.to_string(), |(k, _)| k.clone()),
        });
    }
    Ok(ConfigEntry::None)
}

/// Asks `docker-credential-HELPER get` for `server`'s credentials (its protocol: the server on
/// stdin, `{"Username":…,"Secret":…}` on stdout). `None` when the helper has none.
fn ask_helper(helper: &str, server: &str) -> Result<Option<Credentials>> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let fail = |message: String| Error::Usage(format!("credential helper {program}: {message}"));
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it ({e}); is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helpers' protocol: "credentials not found in native keychain" is no credentials.
        if stdout.contains("not found")
            || String::from_utf8_lossy(&out.stderr).contains("not found")
        {
            return Ok(None);
        }
        return Err(fail(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let value: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|e| fail(format!("its answer is not JSON: {e}")))?;
    let field = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    if field("Secret").is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: field("Username").to_string(),
        password: field("Secret").to_string(),
        server: server.to_string(),
    }))
}

/// The credentials a pull of `image` uses: `account`/`secret` when given (both or neither),
/// else what the docker config at `config_flag` (or the default place) holds for the image's
/// registry. `None`: pull anonymously. A `--docker-config-path` that does not exist, or a
/// malformed config, is an error; a missing default config is not.
pub fn resolve(
    image: &str,
    account: Option<&str>,
    secret: Option<&str>,
    config_flag: Option<&Path>,
) -> Result<Option<Credentials>> {
    let registry = registry_of(image);
    match (account, secret) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                username: username.to_string(),
                password: password.to_string(),
                server: registry,
            }))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Usage(
                "--registry-account and --registry-secret go together".into(),
            ))
        }
        (None, None) => {}
    }
    let Some(path) = config_path(config_flag) else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config_flag.is_none() => {
            return Ok(None)
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "--docker-config-path {}: cannot read it: {e}",
                path.display()
            )))
        }
    };
    match lookup(&text, &registry).map_err(|message| Error::File {
        path: path.clone(),
        message: format!("a docker config file: {message}"),
    })? {
        ConfigEntry::Inline(credentials) => Ok(Some(credentials)),
        ConfigEntry::Helper { helper, server } => ask_helper(&helper, &server),
        ConfigEntry::None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn the_registry_of_a_reference_is_its_first_component_when_that_is_a_host() {
        assert_eq!(registry_of("127.0.0.1:5000/x:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("ghcr.io/team/app@sha256:ab"), "ghcr.io");
        assert_eq!(registry_of("nginx:1"), DOCKER_HUB);
        assert_eq!(registry_of("team/app"), DOCKER_HUB);
    }

    #[test]
    fn auths_entries_are_found_under_any_spelling_of_the_server() {
        let config = format!(
            r#"{{"auths":{{
                "https://127.0.0.1:5000/v1/":{{"auth":"{}"}},
                "reg.example":{{"username":"bob","password":"pw"}},
                "https://index.docker.io/v1/":{{"auth":"{}"}}
            }}}}"#,
            b64("alice:s3cr:et"),
            b64("hub:hubpw")
        );
        let inline = |registry: &str| match lookup(&config, registry).unwrap() {
            ConfigEntry::Inline(c) => (c.username, c.password),
            other => panic!("{registry}: {other:?}"),
        };
        // The password may contain a colon: only the first one separates.
        assert_eq!(inline("127.0.0.1:5000"), ("alice".into(), "s3cr:et".into()));
        assert_eq!(inline("REG.example"), ("bob".into(), "pw".into()));
        assert_eq!(inline(DOCKER_HUB), ("hub".into(), "hubpw".into()));
        assert_eq!(lookup(&config, "other:5000").unwrap(), ConfigEntry::None);
    }

    #[test]
    fn helpers_are_named_per_registry_or_for_all() {
        let config =
            r#"{"auths":{"a.example":{}},"credsStore":"pass","credHelpers":{"b.example":"gcr"}}"#;
        assert_eq!(
            lookup(config, "b.example").unwrap(),
            ConfigEntry::Helper {
                helper: "gcr".into(),
                server: "b.example".into()
            }
        );
        assert_eq!(
            lookup(config, "a.example").unwrap(),
            ConfigEntry::Helper {
                helper: "pass".into(),
                server: "a.example".into()
            }
        );
    }

    #[test]
    fn malformed_configs_say_what_is_wrong() {
        assert!(lookup("{", "x").unwrap_err().contains("not JSON"));
        let bad = r#"{"auths":{"x.example":{"auth":"%%%"}}}"#;
        assert!(lookup(bad, "x.example").unwrap_err().contains("base64"));
        let no_colon = format!(
            r#"{{"auths":{{"x.example":{{"auth":"{}"}}}}}}"#,
            b64("nocolon")
        );
        assert!(lookup(&no_colon, "x.example")
            .unwrap_err()
            .contains("USER:PASSWORD"));
    }

    #[test]
    fn flags_win_over_the_config_and_a_named_config_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths":{{"r.example:5000":{{"auth":"{}"}}}}}}"#,
                b64("u:p")
            ),
        )
        .unwrap();
        let from_dir = resolve("r.example:5000/app:1", None, None, Some(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!(
            (from_dir.username.as_str(), from_dir.password.as_str()),
            ("u", "p")
        );
        let flags = resolve("r.example:5000/app:1", Some("a"), Some("b"), Some(&file))
            .unwrap()
            .unwrap();
        assert_eq!(
            (flags.username.as_str(), flags.server.as_str()),
            ("a", "r.example:5000")
        );
        assert!(resolve("r.example:5000/app", None, None, Some(&file))
            .unwrap()
            .is_some());
        assert!(resolve("other.example/app", None, None, Some(&file))
            .unwrap()
            .is_none());
        let missing = dir.path().join("nope.json");
        assert!(matches!(
            resolve("app", None, None, Some(&missing)),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            resolve("app", Some("a"), None, None),
            Err(Error::Usage(_))
        ));
        // The secret never shows in debug output.
        assert!(!format!("{flags:?}").contains("\"b\""));
    }
}
