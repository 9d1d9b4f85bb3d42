//! Running the target container as `docker run IMAGE` would: its own entrypoint, cmd, env, user
//! and workdir; exposed ports published on loopback; a unique name and a label so that nothing
//! minify starts can be left behind unnoticed.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::docker::{ContainerSpec, ContainerState, DockerApi};
use crate::{Error, Result};

/// Label put on every container minify creates.
pub const OWNER_LABEL: &str = "dev.minify.run";

/// How many log lines an error shows when the app dies early.
const LOG_LINES_ON_ERROR: usize = 20;

/// A name unique on this host for containers, cgroups and temp files of one run.
pub fn unique_run_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:08x}", std::process::id())
}

/// The spec for running `image` under the run name `run_name`, publishing its TCP ports.
pub fn container_spec(run_name: &str, image: &str, exposed_ports: &[String]) -> ContainerSpec {
    ContainerSpec {
        name: run_name.to_string(),
        image: image.to_string(),
        publish: exposed_ports
            .iter()
            .filter(|p| p.ends_with("/tcp") || !p.contains('/'))
            .cloned()
            .collect(),
        labels: BTreeMap::from([(OWNER_LABEL.to_string(), run_name.to_string())]),
        ..ContainerSpec::default()
    }
}

/// Creates the container, extracts `uploads` (directory, tar) into it, and starts it; removes it
/// again if anything fails.
pub async fn create_and_start<D: DockerApi>(
    docker: &D,
    spec: &ContainerSpec,
    uploads: &[(String, Vec<u8>)],
) -> Result<String> {
    let id = docker.create_container(spec).await?;
    let mut started = Ok(());
    for (dir, tar) in uploads {
        started = docker.upload_archive(&id, dir, tar.clone()).await;
        if started.is_err() {
            break;
        }
    }
    if started.is_ok() {
        started = docker.start_container(&id).await;
    }
    if let Err(e) = started {
        let _ = docker.remove_container(&id).await;
        return Err(e);
    }
    Ok(id)
}

/// The container's state, or [`Error::ContainerExited`] with its last log lines if it is not running.
pub async fn require_running<D: DockerApi>(docker: &D, id: &str) -> Result<ContainerState> {
    let state = docker.inspect_container(id).await?;
    if state.running {
        return Ok(state);
    }
    Err(exited_error(docker, id, &state).await)
}

/// Builds the "exited before it was ready" error, logs included.
pub async fn exited_error<D: DockerApi>(docker: &D, id: &str, state: &ContainerState) -> Error {
    let logs = docker
        .logs_tail(id, LOG_LINES_ON_ERROR)
        .await
        .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
    let logs = if logs.trim().is_empty() {
        "(no output)".to_string()
    } else {
        logs
    };
    let exit_code = if state.oom_killed {
        137
    } else {
        state.exit_code
    };
    Error::ContainerExited {
        container: id.chars().take(12).collect(),
        exit_code,
        logs,
    }
}

/// Stops the container (its STOPSIGNAL, then SIGKILL after `timeout_secs`) and removes it.
/// Removal is attempted even if stopping fails.
pub async fn stop_and_remove<D: DockerApi>(docker: &D, id: &str, timeout_secs: i64) -> Result<()> {
    let stopped = docker.stop_container(id, timeout_secs).await;
    docker.remove_container(id).await?;
    stopped
}
