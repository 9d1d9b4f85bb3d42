//! `DOCKER_HOST=ssh://[user@]host[:port]`, done the way the docker CLI does it: each API
//! connection is an `ssh … docker system dial-stdio` process speaking HTTP on its stdio. bollard
//! is given a private Unix socket in a temp directory whose connections are relayed to such a
//! process. (bollard's own ssh transport drops the port: it hands `user@host:port` to ssh as the
//! destination.) The user's ssh setup (config, keys, agent, known_hosts) applies; `BatchMode`
//! keeps a CI run from hanging on a prompt.

use std::path::PathBuf;

use tokio::net::UnixListener;

use super::RemoteEndpoint;
use crate::{Error, Result};

/// The ssh command line for one API connection.
pub fn ssh_args(target: &RemoteEndpoint) -> Vec<String> {
    let mut args = vec![
        "-o".to_string(),
        "ConnectTimeout=30".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-T".into(),
    ];
    if let Some(user) = &target.user {
        args.extend(["-l".into(), user.clone()]);
    }
    if let Some(port) = target.port {
        args.extend(["-p".into(), port.to_string()]);
    }
    args.extend([
        "--".into(),
        target.host.clone(),
        "docker".into(),
        "system".into(),
        "dial-stdio".into(),
    ]);
    args
}

/// The relay: a Unix socket bollard connects to. Dropping it stops accepting, removes the
/// socket's directory and (through `kill_on_drop`) ends the ssh processes of open connections
/// when the runtime drops their tasks.
pub struct SshRelay {
    dir: PathBuf,
    accept: tokio::task::JoinHandle<()>,
}

impl SshRelay {
    /// Starts relaying on a fresh socket; must run inside a tokio runtime.
    pub fn start(target: RemoteEndpoint) -> Result<SshRelay> {
        let dir = tempfile::Builder::new()
            .prefix("minify-ssh-")
            .tempdir()
            .map_err(Error::io("creating the ssh relay's directory"))?
            .keep();
        let listener = UnixListener::bind(dir.join("docker.sock"))
            .map_err(Error::io("binding the ssh relay's socket"))?;
        let args = ssh_args(&target);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let args = args.clone();
                tokio::spawn(async move {
                    let spawned = tokio::process::Command::new("ssh")
                        .args(&args)
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .kill_on_drop(true)
                        .spawn();
                    let mut child = match spawned {
                        Ok(child) => child,
                        Err(e) => {
                            tracing::warn!("starting ssh for DOCKER_HOST: {e}");
                            return;
                        }
                    };
                    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take())
                    else {
                        return;
                    };
                    let mut remote = tokio::io::join(stdout, stdin);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut remote).await;
                });
            }
        });
        Ok(SshRelay { dir, accept })
    }

    /// `unix://…` address of the relay's socket.
    pub fn socket_uri(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }
}

impl Drop for SshRelay {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_with_user_and_port_becomes_ssh_options() {
        let target = crate::docker::parse_remote("ssh://me@build.example:2222").unwrap();
        assert_eq!(
            ssh_args(&target),
            [
                "-o",
                "ConnectTimeout=30",
                "-o",
                "BatchMode=yes",
                "-T",
                "-l",
                "me",
                "-p",
                "2222",
                "--",
                "build.example",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
    }
}
