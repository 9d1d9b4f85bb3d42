//! `DOCKER_HOST=ssh://[user@]host[:port]`, done the way the docker CLI does it: each API
//! connection is an `ssh … docker system dial-stdio` process speaking HTTP on its stdio. bollard
//! is given a private Unix socket in a temp directory whose connections are relayed to such a
//! process. (bollard's own ssh transport drops the port: it hands `user@host:port` to ssh as the
//! destination.) The user's ssh setup (config, keys, agent, known_hosts) applies; `BatchMode`
//! keeps a CI run from hanging on a prompt.

use std::path::PathBuf;

use tokio::net::UnixListener;

use crate::{Error, Result};

/// The parts of an `ssh://` endpoint ssh needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `ssh://[user@]host[:port][/]`; `None` when `endpoint` is not one.
pub fn parse_endpoint(endpoint: &str) -> Option<SshTarget> {
    let rest = endpoint.strip_prefix("ssh://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user.to_string()), host_port),
        None => (None, authority),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    (!host.is_empty()).then(|| SshTarget {
        user,
        host: host.to_string(),
        port,
    })
}

/// The ssh command line for one API connection.
pub fn ssh_args(target: &SshTarget) -> Vec<String> {
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
    pub fn start(target: SshTarget) -> Result<SshRelay> {
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
        let target = parse_endpoint("ssh://me@build.example:2222").unwrap();
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

    #[test]
    fn endpoint_forms() {
        assert_eq!(
            parse_endpoint("ssh://host"),
            Some(SshTarget {
                user: None,
                host: "host".into(),
                port: None
            })
        );
        assert_eq!(
            parse_endpoint("ssh://[fd00::5]:22/").map(|t| (t.host, t.port)),
            Some(("fd00::5".to_string(), Some(22)))
        );
        assert_eq!(parse_endpoint("ssh://host:notaport"), None);
        assert_eq!(parse_endpoint("ssh://"), None);
        assert_eq!(parse_endpoint("tcp://host:2375"), None);
    }
}
