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

/// Splits a command line like a POSIX shell: quotes, backslash escapes; no expansion (how
/// docker-slim reads `--cmd` and compose a string `command`).
pub fn shell_words(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `80/tcp` → 80 for TCP ports (and bare numbers).
pub fn tcp_ports(exposed: &[String]) -> Vec<u16> {
    exposed
        .iter()
        .filter(|p| p.ends_with("/tcp") || !p.contains('/'))
        .filter_map(|p| p.split('/').next()?.parse().ok())
        .collect()
}

/// Docker's `80/tcp` → host port map, keyed by the number.
pub fn published_ports(published: &BTreeMap<String, u16>) -> BTreeMap<u16, u16> {
    published
        .iter()
        .filter_map(|(port, host)| Some((port.split('/').next()?.parse().ok()?, *host)))
        .collect()
}

/// The spec for running `image` under the run name `run_name`, publishing its TCP ports.
pub fn container_spec(run_name: &str, image: &str, exposed_ports: &[String]) -> ContainerSpec {
    container_spec_with(run_name, image, exposed_ports, &RunOptions::default())
}

/// How the user wants the target run (docker-slim's `--env`, `--mount`, `--network`, ...):
/// applied to the traced run and to the `--verify` run of the slim image alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// `KEY=value`, `--env-file` lines first, then `--env`.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Replaces the image's entrypoint (then the image's cmd is not used, as with the Docker API).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub hostname: Option<String>,
    pub network: Option<String>,
    pub links: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub mounts: Vec<crate::docker::MountSpec>,
    /// Anonymous volumes (docker-slim's `--volume PATH`).
    pub volumes: Vec<String>,
    /// Extra exposed ports (`8080/tcp`), published and probed like the image's own.
    pub expose: Vec<String>,
    /// `--publish-port`: container port → (host IP, host port).
    pub port_bindings: BTreeMap<String, (String, String)>,
    /// `--publish-exposed-ports`: every exposed port on the same host port.
    pub publish_exposed: bool,
    pub shm_size: Option<i64>,
    pub sysctls: BTreeMap<String, String>,
    /// Labels on the container (docker-slim's runtime `--label`); minify's own stay.
    pub labels: BTreeMap<String, String>,
    /// DNS aliases on [`RunOptions::network`] (a compose service's name).
    pub network_aliases: Vec<String>,
    /// More networks to join (name, aliases): a compose service on several networks.
    pub more_networks: Vec<(String, Vec<String>)>,
    /// Replaces the image's HEALTHCHECK (a compose service's `healthcheck`).
    pub healthcheck: Option<crate::docker::HealthcheckSpec>,
}

impl RunOptions {
    /// The image as it runs with these options: entrypoint, cmd and exposed ports overridden
    /// (what an in-container sensor wraps, what is published and probed).
    pub fn apply_to_image(&self, image: &mut crate::docker::ImageSummary) {
        if let Some(entrypoint) = &self.entrypoint {
            image.entrypoint = entrypoint.clone();
            image.cmd = self.cmd.clone().unwrap_or_default();
        } else if let Some(cmd) = &self.cmd {
            image.cmd = cmd.clone();
        }
        for port in self.expose.iter().chain(self.port_bindings.keys()) {
            if !image.exposed_ports.contains(port) {
                image.exposed_ports.push(port.clone());
            }
        }
    }
}

/// [`container_spec`] with the user's run options.
pub fn container_spec_with(
    run_name: &str,
    image: &str,
    exposed_ports: &[String],
    options: &RunOptions,
) -> ContainerSpec {
    let mut publish: Vec<String> = exposed_ports
        .iter()
        .chain(&options.expose)
        .filter(|p| p.ends_with("/tcp") || !p.contains('/'))
        .cloned()
        .collect();
    publish.sort();
    publish.dedup();
    let mut port_bindings = options.port_bindings.clone();
    if options.publish_exposed {
        for port in &publish {
            let number = port.split('/').next().unwrap_or_default().to_string();
            port_bindings
                .entry(port.clone())
                .or_insert((String::new(), number));
        }
    }
    let mut labels = options.labels.clone();
    labels.insert(OWNER_LABEL.to_string(), run_name.to_string());
    labels.insert(OWNER_PROCESS_LABEL.to_string(), owner_token());
    ContainerSpec {
        name: run_name.to_string(),
        image: image.to_string(),
        publish,
        labels,
        entrypoint: options.entrypoint.clone(),
        cmd: options.cmd.clone(),
        env: options.env.clone(),
        user: options.user.clone(),
        workdir: options.workdir.clone(),
        hostname: options.hostname.clone(),
        network: options.network.clone(),
        links: options.links.clone(),
        extra_hosts: options.extra_hosts.clone(),
        mounts: options.mounts.clone(),
        volumes: options.volumes.clone(),
        port_bindings,
        shm_size: options.shm_size,
        sysctls: options.sysctls.clone(),
        network_aliases: options.network_aliases.clone(),
        more_networks: options.more_networks.clone(),
        healthcheck: options.healthcheck.clone(),
        ..ContainerSpec::default()
    }
}

/// Creates the container, extracts `uploads` (directory, tar) into it, joins its further
/// networks, and starts it; removes it again if anything fails.
pub async fn create_and_start<D: DockerApi>(
    docker: &D,
    spec: &ContainerSpec,
    uploads: &[(String, Vec<u8>)],
) -> Result<String> {
    let id = shielded(docker.create_container(spec)).await?;
    let mut started = Ok(());
    for (dir, tar) in uploads {
        started = docker.upload_archive(&id, dir, tar.clone()).await;
        if started.is_err() {
            break;
        }
    }
    for (network, aliases) in &spec.more_networks {
        if started.is_err() {
            break;
        }
        started = docker.connect_network(network, &id, aliases).await;
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

/// Stops the container ([`stop_fast`]) and removes it. Removal is attempted even if stopping
/// fails.
pub async fn stop_and_remove<D: DockerApi>(docker: &D, id: &str, timeout_secs: i64) -> Result<()> {
    let stopped = stop_fast(docker, id, timeout_secs).await.map(|_| ());
    docker.remove_container(id).await?;
    stopped
}

/// Label carrying the identity of the minify process that created an object:
/// `BOOT_ID:PID:STARTTIME`, so that a later run (or `minify gc`) can tell the leftovers of a
/// process that is gone (killed with SIGKILL, its machine rebooted) from a live concurrent run.
pub const OWNER_PROCESS_LABEL: &str = "dev.minify.owner";

/// This process's owner token (see [`OWNER_PROCESS_LABEL`]).
pub fn owner_token() -> String {
    let pid = std::process::id();
    format!(
        "{}:{pid}:{}",
        boot_id().unwrap_or_default(),
        process_start_time(pid).unwrap_or_default()
    )
}

/// Whether the process an owner token names still runs: same boot, same pid, same start time
/// (a recycled pid has another start time). A token this host cannot judge counts as alive.
pub fn owner_alive(token: &str) -> bool {
    let mut parts = token.splitn(3, ':');
    let (Some(boot), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return true;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    match boot_id() {
        Some(ours) if !boot.is_empty() && ours != boot => return false,
        _ => {}
    }
    match process_start_time(pid) {
        None => false,
        Some(now) => start.is_empty() || now == start,
    }
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot); `None` if no such process.
fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Removes every container of run `run_name` — by name and by its [`OWNER_LABEL`], so that one
/// whose create was still in flight when the run was interrupted is found too.
pub async fn remove_run<D: DockerApi>(docker: &D, run_name: &str) -> Result<()> {
    let by_name = docker.remove_container(run_name).await;
    let mut first_error = by_name.err();
    match docker.list_labelled(OWNER_LABEL).await {
        Ok(containers) => {
            for container in containers.iter().filter(|c| c.label_value == run_name) {
                if let Err(e) = docker.remove_container(&container.id).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(e) => {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Label on every network and volume minify creates for a compose project (value: the
/// project), beside [`OWNER_LABEL`] and [`OWNER_PROCESS_LABEL`]: what carries it is minify's
/// to remove. A volume Docker creates for a `--mount` carries only the other two, so that it is
/// never removed (it is the user's data).
pub const PROJECT_LABEL: &str = "dev.minify.project";

/// What a sweep removed, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }

    /// `2 container(s): a, b; 1 network(s): n` (the kinds with something in them).
    pub fn describe(&self) -> String {
        [
            ("container", &self.containers),
            ("network", &self.networks),
            ("volume", &self.volumes),
        ]
        .iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(noun, names)| format!("{} {noun}(s): {}", names.len(), names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
    }
}

/// Removes the containers of minify processes that are gone (see [`owner_alive`]), then the
/// networks and volumes they created for compose projects ([`PROJECT_LABEL`]); never those of
/// a live run. Containers go first: a network with a container on it cannot be removed.
pub async fn sweep_orphans<D: DockerApi>(docker: &D) -> Result<Swept> {
    let mut swept = Swept::default();
    for container in docker.list_labelled(OWNER_PROCESS_LABEL).await? {
        if owner_alive(&container.label_value) {
            continue;
        }
        docker.remove_container(&container.id).await?;
        swept.containers.push(container.name);
    }
    for kind in [
        crate::docker::ResourceKind::Network,
        crate::docker::ResourceKind::Volume,
    ] {
        for resource in docker.list_labelled_resources(kind, PROJECT_LABEL).await? {
            let owner = resource.labels.get(OWNER_PROCESS_LABEL);
            if owner.is_none_or(|owner| owner_alive(owner)) {
                continue;
            }
            docker.remove_resource(kind, &resource.name).await?;
            match kind {
                crate::docker::ResourceKind::Network => swept.networks.push(resource.name),
                crate::docker::ResourceKind::Volume => swept.volumes.push(resource.name),
            }
        }
    }
    Ok(swept)
}

/// How long an interrupted run waits for Docker calls that create something to finish, so that
/// cleanup finds what they made. A create that takes longer is still found by a later sweep.
pub const SHIELD_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// Process-wide interrupt state: set once SIGINT, SIGTERM or SIGHUP arrives.
static INTERRUPT: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> =
    std::sync::OnceLock::new();
/// How many shielded calls ([`shielded`]) are in flight.
static IN_FLIGHT: std::sync::OnceLock<tokio::sync::watch::Sender<usize>> =
    std::sync::OnceLock::new();

fn in_flight() -> &'static tokio::sync::watch::Sender<usize> {
    IN_FLIGHT.get_or_init(|| tokio::sync::watch::channel(0).0)
}

/// Installs the SIGINT/SIGTERM/SIGHUP handlers (idempotent; needs a Tokio runtime). `main`
/// calls it before any daemon or kernel work: a signal in the first moments of a run must
/// also end in cleanup and exit 130, not in the default action (exit 143).
pub fn install_interrupt_handlers() -> Result<()> {
    if INTERRUPT.get().is_some() {
        return Ok(());
    }
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(Error::io(format!("installing the {name} handler")))
    };
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    let mut hangup = install(SignalKind::hangup(), "SIGHUP")?;
    let (sender, _) = tokio::sync::watch::channel(false);
    if INTERRUPT.set(sender).is_err() {
        return Ok(());
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
        if let Some(sender) = INTERRUPT.get() {
            sender.send_replace(true);
        }
    });
    Ok(())
}

/// Whether an interrupt arrived (after [`install_interrupt_handlers`]).
pub fn interrupted() -> bool {
    INTERRUPT.get().is_some_and(|s| *s.borrow())
}

/// [`Error::Interrupted`] if an interrupt arrived: for the phase boundaries of a run.
pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Runs `work` unless an interrupt arrives first (see [`interruptible_with`]).
pub async fn interruptible<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    install_interrupt_handlers()?;
    match INTERRUPT.get() {
        Some(sender) => interruptible_with(sender.subscribe(), work).await,
        // install_interrupt_handlers sets it or fails: not reached, but never a panic.
        None => work.await,
    }
}

/// Runs `work` until it finishes or `interrupt` turns true. On an interrupt the shielded calls
/// in flight (creates) are let finish, up to [`SHIELD_BOUND`], then `work` is dropped and
/// [`Error::Interrupted`] returned, so that the caller's cleanup sees everything `work` made.
pub async fn interruptible_with<T>(
    mut interrupt: tokio::sync::watch::Receiver<bool>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => return result,
        _ = interrupt.wait_for(|on| *on) => {}
    }
    let mut pending = in_flight().subscribe();
    let _ = tokio::time::timeout(SHIELD_BOUND, async {
        tokio::select! {
            _ = &mut work => {}
            _ = pending.wait_for(|n| *n == 0) => {}
        }
    })
    .await;
    Err(Error::Interrupted)
}

/// Marks `call` (a Docker call that creates something) as in flight while it runs, so that an
/// interrupt waits for it ([`interruptible_with`]) instead of dropping it half-way: a create
/// dropped mid-request still completes in the daemon, after cleanup has looked.
pub async fn shielded<T>(call: impl std::future::Future<Output = T>) -> T {
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            in_flight().send_modify(|n| *n = n.saturating_sub(1));
        }
    }
    in_flight().send_modify(|n| *n += 1);
    let _guard = InFlight;
    call.await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::FakeDocker;
    use std::time::Duration;

    fn spec(name: &str) -> ContainerSpec {
        container_spec(name, "app:1", &["80/tcp".to_string()])
    }

    #[tokio::test]
    async fn a_create_in_flight_at_an_interrupt_finishes_and_cleanup_removes_it() {
        let docker = FakeDocker {
            create_delay: Duration::from_millis(300),
            ..FakeDocker::default()
        };
        let (interrupt, receiver) = tokio::sync::watch::channel(false);
        let name = "minify-1-race";
        let spec = spec(name);
        let run = interruptible_with(receiver, create_and_start(&docker, &spec, &[]));
        let signal = async {
            // The signal comes while the create is in flight.
            tokio::time::sleep(Duration::from_millis(50)).await;
            interrupt.send_replace(true);
        };
        let (outcome, ()) = tokio::join!(run, signal);
        assert!(matches!(outcome, Err(Error::Interrupted)), "{outcome:?}");
        assert_eq!(
            docker.container_names(),
            vec![name.to_string()],
            "the create was let finish"
        );
        remove_run(&docker, name).await.unwrap();
        // Later than any create could still land: nothing appears after cleanup.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(docker.container_names().is_empty());
    }

    #[tokio::test]
    async fn cleanup_by_label_finds_a_container_whose_name_lookup_missed_it() {
        let docker = FakeDocker::default();
        let mut renamed = spec("minify-2-x");
        renamed.name = "something-else".into();
        docker.create_container(&renamed).await.unwrap();
        remove_run(&docker, "minify-2-x").await.unwrap();
        assert!(docker.container_names().is_empty());
    }

    #[tokio::test]
    async fn a_failed_cleanup_call_is_reported_not_dropped() {
        let docker = FakeDocker {
            failing: ["remove_container"].into(),
            ..FakeDocker::default()
        };
        docker.create_container(&spec("minify-3-x")).await.unwrap();
        let err = remove_run(&docker, "minify-3-x").await.unwrap_err();
        assert!(err.to_string().contains("remove_container"), "{err}");
    }

    #[tokio::test]
    async fn the_sweep_removes_containers_of_gone_processes_only() {
        let docker = FakeDocker::default();
        let mut ours = spec("minify-live");
        ours.labels
            .insert(OWNER_PROCESS_LABEL.into(), owner_token());
        docker.create_container(&ours).await.unwrap();
        let mut gone = spec("minify-gone");
        // A pid that cannot exist (above pid_max) on this boot.
        let boot = boot_id().unwrap_or_default();
        gone.labels
            .insert(OWNER_PROCESS_LABEL.into(), format!("{boot}:4999999:1"));
        docker.create_container(&gone).await.unwrap();
        let mut rebooted = spec("minify-rebooted");
        rebooted.labels.insert(
            OWNER_PROCESS_LABEL.into(),
            format!("another-boot:{}:1", std::process::id()),
        );
        docker.create_container(&rebooted).await.unwrap();
        let mut removed = sweep_orphans(&docker).await.unwrap().containers;
        removed.sort();
        assert_eq!(removed, vec!["minify-gone", "minify-rebooted"]);
        assert_eq!(docker.container_names(), vec!["minify-live"]);
    }

    #[test]
    fn stop_signals_are_read_by_name_or_number() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(signal_number("SIGQUIT"), Some(3));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGNOPE"), None);
    }

    #[test]
    fn sigcgt_tells_whether_pid_1_catches_its_stop_signal() {
        // nginx's master catches TERM (15), QUIT, HUP, USR1...; python's http.server only INT.
        let nginx = "Name:\tnginx\nSigCgt:\t0000000018016a07\n";
        let python = "Name:\tpython3\nSigCgt:\t0000000000000002\n";
        assert_eq!(catches_signal(nginx, 15), Some(true));
        assert_eq!(catches_signal(python, 15), Some(false));
        assert_eq!(catches_signal(python, 2), Some(true));
        assert_eq!(catches_signal("Name:\tx\n", 15), None);
    }

    #[tokio::test]
    async fn a_container_whose_pid_1_cannot_be_inspected_gets_the_grace_period() {
        let docker = FakeDocker::default();
        docker.create_container(&spec("minify-4-x")).await.unwrap();
        let outcome = stop_fast(&docker, "minify-4-x", 7).await.unwrap();
        assert!(outcome.graceful, "{outcome:?}");
        assert!(docker
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c == "stop_container minify-4-x"));
    }

    #[tokio::test]
    async fn run_options_reach_the_create_request() {
        use crate::docker::MountSpec;
        let options = RunOptions {
            env: vec!["A=1".into()],
            user: Some("1000".into()),
            workdir: Some("/srv".into()),
            entrypoint: Some(vec!["/bin/app".into()]),
            hostname: Some("svc".into()),
            network: Some("appnet".into()),
            links: vec!["db:db".into()],
            extra_hosts: vec!["api.local:10.0.0.1".into()],
            mounts: vec![
                MountSpec {
                    source: "/host/data".into(),
                    target: "/data".into(),
                    read_only: true,
                },
                MountSpec {
                    source: "cache".into(),
                    target: "/cache".into(),
                    read_only: false,
                },
            ],
            volumes: vec!["/scratch".into()],
            expose: vec!["9000/tcp".into(), "53/udp".into()],
            port_bindings: BTreeMap::from([(
                "8080/tcp".to_string(),
                (String::new(), "18080".to_string()),
            )]),
            publish_exposed: true,
            shm_size: Some(64 << 20),
            sysctls: BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]),
            labels: BTreeMap::from([
                ("team".into(), "web".into()),
                (OWNER_LABEL.into(), "spoofed".into()),
            ]),
            ..RunOptions::default()
        };
        let spec = container_spec_with("minify-5-x", "app:1", &["80/tcp".into()], &options);
        assert_eq!(spec.publish, ["80/tcp", "9000/tcp"], "udp is not published");
        assert_eq!(
            spec.port_bindings["80/tcp"].1, "80",
            "--publish-exposed-ports"
        );
        let docker = FakeDocker::default();
        create_and_start(&docker, &spec, &[]).await.unwrap();
        assert_eq!(docker.specs.lock().unwrap()[0].env, ["A=1"]);

        let body = crate::docker::create_body(&spec, "127.0.0.1");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["Env"][0], "A=1");
        assert_eq!(json["User"], "1000");
        assert_eq!(json["WorkingDir"], "/srv");
        assert_eq!(json["Entrypoint"][0], "/bin/app");
        assert_eq!(json["Hostname"], "svc");
        let host = &json["HostConfig"];
        assert_eq!(host["NetworkMode"], "appnet");
        assert_eq!(host["Links"][0], "db:db");
        assert_eq!(host["ExtraHosts"][0], "api.local:10.0.0.1");
        assert_eq!(host["ShmSize"], 64 << 20);
        assert_eq!(host["Sysctls"]["net.core.somaxconn"], "1024");
        assert!(host.get("Privileged").is_none_or(|p| p == false));
        assert_eq!(host["Mounts"][0]["Type"], "bind");
        assert_eq!(host["Mounts"][0]["ReadOnly"], true);
        assert_eq!(host["Mounts"][1]["Type"], "volume");
        assert_eq!(
            host["Mounts"][1]["VolumeOptions"]["Labels"][OWNER_LABEL], "minify-5-x",
            "a volume Docker creates for the run is labelled as minify's"
        );
        assert!(host["Mounts"][0].get("VolumeOptions").is_none());
        assert_eq!(host["PortBindings"]["8080/tcp"][0]["HostPort"], "18080");
        assert_eq!(host["PortBindings"]["8080/tcp"][0]["HostIp"], "127.0.0.1");
        assert_eq!(host["PortBindings"]["9000/tcp"][0]["HostPort"], "9000");
        assert!(
            json["Volumes"].get("/scratch").is_some(),
            "{}",
            json["Volumes"]
        );
    }

    #[test]
    fn run_options_override_what_the_sensor_wraps_and_what_is_probed() {
        let mut image = crate::docker::ImageSummary {
            id: "sha256:x".into(),
            size: 0,
            repo_tags: vec![],
            exposed_ports: vec!["80/tcp".into()],
            entrypoint: vec!["/entry".into()],
            cmd: vec!["serve".into()],
        };
        let options = RunOptions {
            cmd: Some(vec!["serve".into(), "--debug".into()]),
            expose: vec!["9000/tcp".into()],
            ..RunOptions::default()
        };
        options.apply_to_image(&mut image);
        assert_eq!(image.entrypoint, ["/entry"]);
        assert_eq!(image.cmd, ["serve", "--debug"]);
        assert_eq!(image.exposed_ports, ["80/tcp", "9000/tcp"]);
        let options = RunOptions {
            entrypoint: Some(vec!["/other".into()]),
            ..RunOptions::default()
        };
        options.apply_to_image(&mut image);
        assert_eq!(image.entrypoint, ["/other"]);
        assert!(
            image.cmd.is_empty(),
            "a new entrypoint drops the image's cmd"
        );
    }

    #[test]
    fn this_process_is_alive_by_its_own_token() {
        assert!(owner_alive(&owner_token()));
        assert!(owner_alive("unparseable"), "unknown tokens are left alone");
    }
}

/// How a container was stopped, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOutcome {
    /// Its STOPSIGNAL was sent and waited for (up to the stop timeout).
    pub graceful: bool,
    pub why: String,
}

/// The signal number of a STOPSIGNAL value (`SIGTERM`, `TERM`, `15`).
pub fn signal_number(name: &str) -> Option<u32> {
    let name = name.trim();
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    let name = name.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    nix::sys::signal::Signal::iterator()
        .find(|s| s.as_str().strip_prefix("SIG") == Some(name))
        .map(|s| s as u32)
}

/// Whether the process whose `/proc/PID/status` is `status` catches signal `signal`
/// (its bit in `SigCgt`); `None` when the field is missing.
pub fn catches_signal(status: &str, signal: u32) -> Option<bool> {
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    Some((1..=64).contains(&signal) && mask & (1u64 << (signal - 1)) != 0)
}

/// Stops the container as fast as is safe. The kernel drops a signal sent to a PID namespace's
/// init that installed no handler for it, so a PID 1 that does not catch its STOPSIGNAL
/// (python, node, php or sh as PID 1 install none for SIGTERM) would just sit out the whole
/// grace period: it is killed at once. One that catches it gets the signal and up to
/// `timeout_secs`, since a graceful shutdown can touch files that must be traced (redis
/// writes its dump). Only a local daemon's PID 1 can be inspected; elsewhere the grace applies.
pub async fn stop_fast<D: DockerApi>(
    docker: &D,
    id: &str,
    timeout_secs: i64,
) -> Result<StopOutcome> {
    let state = docker.inspect_container(id).await?;
    let signal_name = state
        .stop_signal
        .clone()
        .unwrap_or_else(|| "SIGTERM".into());
    let caught =
        if state.running && state.pid > 0 && crate::docker::endpoint_is_local(docker.endpoint()) {
            let status = std::fs::read_to_string(format!("/proc/{}/status", state.pid)).ok();
            signal_number(&signal_name).and_then(|n| catches_signal(status.as_deref()?, n))
        } else {
            None
        };
    let outcome = match caught {
        Some(false) => StopOutcome {
            graceful: false,
            why: format!("PID 1 does not catch {signal_name}: killed at once"),
        },
        Some(true) => StopOutcome {
            graceful: true,
            why: format!("PID 1 catches {signal_name}: sent it, waited up to {timeout_secs}s"),
        },
        None => StopOutcome {
            graceful: true,
            why: format!(
                "sent {signal_name}, waited up to {timeout_secs}s (PID 1 not inspectable)"
            ),
        },
    };
    let timeout = if outcome.graceful { timeout_secs } else { 0 };
    docker.stop_container(id, timeout).await?;
    Ok(outcome)
}
