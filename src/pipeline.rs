//! `minify build` end to end: read the image (concurrently with the run), run the container under
//! a sensor, probe it, stop it, compute the closure, write and load the slim image, report.
//! Cleanup (container, sensor, cgroup) happens on every path out, Ctrl-C included.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::closure::{self, ClosureInput};
use crate::docker::{ContainerSpec, DockerApi};
use crate::image::config::{slim_config, RunConfig};
use crate::image::{retain, sink, source, EntryKind, ImageFs};
use crate::probe::http::{self, CrawlLimits};
use crate::probe::ProbeResult;
use crate::report::{FileCounts, ImageRef, KeptPath, Report, SensorSummary, Timings};
use crate::sense::{ebpf::EbpfSensor, ContainerHooks, Sensor};
use crate::{run, Error, Result};

/// Everything `minify build` needs, already validated.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub image: String,
    pub tag: String,
    pub report_path: PathBuf,
    pub continue_after: Option<Duration>,
    pub ready_timeout: Duration,
    pub stop_timeout_secs: i64,
    pub crawl: CrawlLimits,
}

/// How long a container without exposed ports runs when `--continue-after` is not given.
const DEFAULT_RUN_WITHOUT_PORTS: Duration = Duration::from_secs(10);

/// Runs the whole build and returns the report (also written to `options.report_path`).
/// `phase` is told the name of each phase as it starts (for progress display).
pub async fn build<D: DockerApi>(
    docker: &D,
    options: &BuildOptions,
    phase: &dyn Fn(&str),
) -> Result<Report> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let mut warnings = Vec::new();

    phase("inspecting image");
    let source = docker.inspect_image(&options.image).await?;
    if source.repo_tags.iter().any(|t| t == &options.tag) {
        return Err(Error::Usage(format!(
            "--tag {} names the source image itself; minify never retags or changes the source image",
            options.tag
        )));
    }

    // The image is read while the container runs: both take seconds and neither needs the other.
    let reading = tokio::spawn(read_image(docker.save_image(&source.id)));

    let run_name = run::unique_run_name("minify");
    // Cgroups of runs that crashed before cleaning up (older than a couple of minutes).
    let _ = crate::sense::cgroup::remove_stale(crate::sense::cgroup::NAME_PREFIX);
    let mut sensor: Box<dyn Sensor> = Box::new(EbpfSensor::start(&run_name)?);
    let hooks = sensor.container_hooks();
    let mut spec = run::container_spec(&run_name, &source.id, &source.exposed_ports);
    spec.cgroup_parent = hooks.cgroup_parent.clone();
    spec.entrypoint = hooks.entrypoint.clone();
    spec.cmd = hooks.cmd.clone();

    let observed = interruptible(async {
        let probes = observe(
            docker,
            &spec,
            &hooks,
            options,
            &mut timings,
            &mut warnings,
            phase,
        )
        .await?;
        if let Some(results) = &hooks.results_path {
            let tar = docker.download_archive(&run_name, results).await?;
            sensor.accept_results(tar)?;
        }
        Ok(probes)
    })
    .await;
    // Cleanup runs whatever happened above: the container goes first, then the sensor (whose
    // cgroup can only be removed once the container's processes are gone).
    phase("cleaning up");
    let removed = docker.remove_container(&run_name).await;
    let trace = sensor.finish();
    if observed.is_err() {
        reading.abort();
    }
    let probes = observed?;
    removed?;
    let trace = trace?;

    phase("reading image");
    let waited = Instant::now();
    let (fs, read_ms, flatten_warnings) = reading.await.map_err(|e| Error::Archive {
        context: "reading the image".into(),
        message: e.to_string(),
    })??;
    warnings.extend(flatten_warnings);
    timings.phases.push(("read image".into(), read_ms));
    timings.record("wait for image read", waited);

    phase("computing closure");
    let closure_started = Instant::now();
    let run_config = RunConfig::from_image_config(&fs.image.config)?;
    let closure = tokio::task::block_in_place(|| {
        closure::compute(
            &fs,
            &ClosureInput {
                traced: &trace.accesses,
                env: &run_config.env,
                extra_paths: Vec::new(),
            },
        )
    });
    timings.record("closure", closure_started);
    warnings.extend(closure.warnings.iter().map(|w| w.to_string()));

    phase("writing slim image");
    let write_started = Instant::now();
    let work_dir = tempfile::tempdir().map_err(Error::io("creating a temp dir"))?;
    let archive_path = work_dir.path().join("slim.tar");
    let entries = retain::retain_kept(&fs.index, &closure.kept);
    let kept_bytes: u64 = entries.iter().map(|e| e.size).sum();
    tokio::task::block_in_place(|| -> Result<()> {
        let layer_path = work_dir.path().join("layer.tar");
        let layer = sink::write_layer_file(&fs, &entries, &layer_path)?;
        let config = slim_config(
            &fs.image.config,
            &layer.diff_id,
            &format!("minify build {}", options.image),
        );
        let out = std::fs::File::create(&archive_path)
            .map_err(Error::io("creating the image archive"))?;
        sink::write_docker_archive(
            &layer_path,
            &layer,
            &config,
            &options.tag,
            std::io::BufWriter::new(out),
        )?;
        Ok(())
    })?;
    timings.record("write", write_started);

    phase("loading slim image");
    let load_started = Instant::now();
    let previous = docker.inspect_image(&options.tag).await.ok();
    docker.load_image(&archive_path).await?;
    let result = docker.inspect_image(&options.tag).await?;
    if let Some(previous) = previous {
        if previous.id != result.id && previous.id != source.id {
            // The tag moved; the image it named would stay behind untagged.
            if let Err(e) = docker.remove_image(&previous.id).await {
                warnings.push(format!(
                    "the image {} previously tagged {} is now untagged and could not be removed: {e}",
                    previous.id, options.tag
                ));
            }
        }
    }
    timings.record("load", load_started);
    timings.total_ms = started.elapsed().as_millis() as u64;

    let distinct_paths = trace
        .accesses
        .iter()
        .map(|a| a.path.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if trace.lost_events > 0 {
        warnings.push(format!(
            "the sensor lost {} events: the slim image may miss files (run with --verify)",
            trace.lost_events
        ));
    }
    let report = Report {
        minify_version: env!("CARGO_PKG_VERSION").into(),
        source: ImageRef {
            name: options.image.clone(),
            id: source.id.clone(),
            size: source.size,
        },
        result: ImageRef {
            name: options.tag.clone(),
            id: result.id,
            size: result.size,
        },
        sensor: SensorSummary {
            name: trace.sensor.clone(),
            accesses: trace.accesses.len(),
            distinct_paths,
            lost_events: trace.lost_events,
            unresolved_paths: trace.unresolved_paths,
        },
        files: FileCounts {
            source_entries: fs.index.len(),
            source_bytes: fs.index.content_bytes(),
            kept_entries: entries.len(),
            kept_bytes,
        },
        probes,
        kept: entries
            .iter()
            .map(|e| KeptPath {
                path: e.path.clone(),
                kind: kind_name(&e.kind),
                size: e.size,
                reasons: closure.kept.paths.get(&e.path).cloned().unwrap_or_default(),
            })
            .collect(),
        unresolved_needs: closure
            .unresolved_needs
            .iter()
            .map(|n| (n.of.clone(), n.soname.clone()))
            .collect(),
        warnings,
        timings,
        notes: Default::default(),
    };
    report.write_json(&options.report_path)?;
    Ok(report)
}

/// Most flatten warnings quoted in the report; the rest are counted.
const MAX_QUOTED_WARNINGS: usize = 20;

/// Reads `docker save` output into a flattened, spooled image; returns it with the time taken
/// and the warnings flattening raised.
async fn read_image(stream: source::SaveStream) -> Result<(ImageFs, u64, Vec<String>)> {
    let started = Instant::now();
    let image = source::from_stream(stream, None).await?;
    let (fs, warnings) = tokio::task::spawn_blocking(move || ImageFs::new(image))
        .await
        .map_err(|e| Error::Archive {
            context: "flattening the image".into(),
            message: e.to_string(),
        })??;
    let mut quoted: Vec<String> = warnings
        .iter()
        .take(MAX_QUOTED_WARNINGS)
        .map(|w| w.to_string())
        .collect();
    if warnings.len() > MAX_QUOTED_WARNINGS {
        quoted.push(format!(
            "... and {} more image warnings",
            warnings.len() - MAX_QUOTED_WARNINGS
        ));
    }
    Ok((fs, started.elapsed().as_millis() as u64, quoted))
}

/// Starts the container, probes it, lets it run on if asked, and stops it.
async fn observe<D: DockerApi>(
    docker: &D,
    spec: &ContainerSpec,
    hooks: &ContainerHooks,
    options: &BuildOptions,
    timings: &mut Timings,
    warnings: &mut Vec<String>,
    phase: &dyn Fn(&str),
) -> Result<Vec<ProbeResult>> {
    phase("starting container");
    let run_started = Instant::now();
    let id = run::create_and_start(docker, spec, &hooks.uploads).await?;
    let state = docker.inspect_container(&id).await?;
    timings.record("start", run_started);

    phase("probing");
    let probe_started = Instant::now();
    let mut probes = Vec::new();
    let finished_cleanly = spec.publish.is_empty() && state.exit_code == 0;
    if !state.running && !finished_cleanly {
        // Ports are only published while the container runs: an early exit must be told apart
        // from an image without ports.
        return Err(run::exited_error(docker, &id, &state).await);
    }
    if spec.publish.is_empty() {
        let wait = options.continue_after.unwrap_or(DEFAULT_RUN_WITHOUT_PORTS);
        warnings.push(format!(
            "the image exposes no TCP ports: no probes were run; traced the app for {}s (--continue-after)",
            wait.as_secs()
        ));
        wait_while_running(docker, &id, wait).await?;
        let state = docker.inspect_container(&id).await?;
        if !state.running && state.exit_code != 0 {
            return Err(run::exited_error(docker, &id, &state).await);
        }
    } else {
        let client = http::client(options.crawl.request_timeout);
        for (port, host_port) in &state.published {
            let base =
                reqwest::Url::parse(&format!("http://127.0.0.1:{host_port}/")).map_err(|e| {
                    Error::Probe {
                        message: e.to_string(),
                    }
                })?;
            let deadline = Instant::now() + options.ready_timeout;
            let alive = || async { docker.inspect_container(&id).await.is_ok_and(|s| s.running) };
            if let Err(message) = http::wait_until_answering(&client, &base, deadline, alive).await
            {
                let state = docker.inspect_container(&id).await?;
                if !state.running {
                    return Err(run::exited_error(docker, &id, &state).await);
                }
                warnings.push(format!("port {port}: {message}"));
                probes.push(ProbeResult {
                    kind: "http".into(),
                    target: port.clone(),
                    request: "GET /".into(),
                    status: None,
                    body_sha256: None,
                    body_bytes: 0,
                    error: Some(message),
                    duration_ms: 0,
                });
                continue;
            }
            probes.extend(http::crawl(&client, port, &base, &options.crawl).await);
        }
        if let Some(wait) = options.continue_after {
            wait_while_running(docker, &id, wait).await?;
        }
    }
    timings.record("probe", probe_started);

    phase("stopping container");
    let stop_started = Instant::now();
    docker
        .stop_container(&id, options.stop_timeout_secs)
        .await?;
    timings.record("stop", stop_started);
    Ok(probes)
}

/// Sleeps up to `wait`, returning early once the container has exited.
async fn wait_while_running<D: DockerApi>(docker: &D, id: &str, wait: Duration) -> Result<()> {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if !docker.inspect_container(id).await?.running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200).min(until - Instant::now())).await;
    }
    Ok(())
}

/// Runs `work` unless Ctrl-C or SIGTERM arrives first, in which case it is dropped mid-flight
/// and [`Error::Interrupted`] returned so the caller's cleanup runs.
pub async fn interruptible<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::io("installing the SIGTERM handler"))?;
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        _ = terminate.recv() => Err(Error::Interrupted),
    }
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink { .. } => "symlink",
        EntryKind::Hardlink { .. } => "hardlink",
        EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => "device",
        EntryKind::Fifo => "fifo",
    }
}
