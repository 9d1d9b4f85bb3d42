//! `minify build` end to end: read the image (concurrently with the run), run the container under
//! a sensor, probe it, stop it, compute the closure, write and load the slim image, report.
//! Cleanup (container, sensor, cgroup) happens on every path out, Ctrl-C included.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::closure::lang::AppClosure;
use crate::closure::rules;
use crate::closure::{self, app, ClosureInput, Reason};
use crate::docker::{ContainerSpec, DockerApi};
use crate::image::config::{slim_config, RunConfig};
use crate::image::{retain, sink, source, EntryKind, ImageFs};
use crate::probe::config::{ContinueAfter, KeepRules, ProbeFile};
use crate::probe::http::{self, CrawlLimits};
use crate::probe::session::{Plan, Step, Target};
use crate::probe::ProbeResult;
use crate::report::{FileCounts, ImageRef, KeptPath, Report, SensorSummary, Timings};
use crate::sense::ptrace::{start_sensor, SensorChoice};
use crate::sense::{ContainerHooks, Sensor};
use crate::verify::{self, Verification};
use crate::{run, Error, Result};

/// Everything `minify build` needs, already validated.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub image: String,
    pub tag: String,
    pub report_path: PathBuf,
    /// From the flag, else the probe file; `None` = stop after probing (or run
    /// [`DEFAULT_RUN_WITHOUT_PROBES`] when there is nothing to probe).
    pub continue_after: Option<ContinueAfter>,
    pub ready_timeout: Duration,
    pub stop_timeout_secs: i64,
    pub crawl: CrawlLimits,
    /// The probe file, already loaded and checked.
    pub probes: Option<ProbeFile>,
    /// `--no-default-probes` sets this to false.
    pub default_probes: bool,
    /// Flags merged with the probe file's `keep` section.
    pub keep: KeepRules,
    /// Replay the probes against the slim image and fail on any difference.
    pub verify: bool,
    /// `--sensor`: which sensor records the run.
    pub sensor: SensorChoice,
    /// `--seccomp`: where the generated seccomp profile goes.
    pub seccomp_path: PathBuf,
    /// `--app-closure`: how far the closure goes beyond the trace.
    pub app_closure: AppClosure,
    /// Read the image from the local daemon's layer store when it can be (else `docker save`).
    pub layer_store: bool,
    /// docker-slim's probing flags, merged into `probes` once the exposed ports are known.
    pub slim_probes: Option<crate::probe::slim::SlimProbes>,
    /// A failing probe of the probe file fails the build (docker-slim's
    /// `--http-probe-exit-on-failure`, default true); false: a warning.
    pub probe_exit_on_failure: bool,
    /// How the target runs (env, mounts, network...), for the traced and the verify run.
    pub run: run::RunOptions,
    /// Changes to the slim image's config (`--new-*`, `--remove-*`, `--image-overrides`).
    pub config_edits: crate::image::config::ConfigEdits,
    /// More names for the slim image (`--tag` given more than once).
    pub extra_tags: Vec<String>,
}

/// How long a container with nothing to probe runs when `--continue-after` is not given.
pub const DEFAULT_RUN_WITHOUT_PROBES: Duration = Duration::from_secs(10);

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
    let mut source = docker.inspect_image(&options.image).await?;
    options.run.apply_to_image(&mut source);
    if source.repo_tags.iter().any(|t| t == &options.tag) {
        return Err(Error::Usage(format!(
            "--tag {} names the source image itself; minify never retags or changes the source image",
            options.tag
        )));
    }

    // The image is read while the container runs: both take seconds and neither needs the other.
    // The layer store is read only when the daemon is local: a remote daemon's images are not
    // on this host (an image of the same id would be, but then it is the same image).
    let store = (options.layer_store && crate::docker::endpoint_is_local(docker.endpoint()))
        .then(crate::image::layerstore::docker_root);
    // A `docker save` spool lives in this dir, which goes when `build` returns, also on an
    // error or an interrupt that leaves the read unfinished.
    let spool_dir = tempfile::Builder::new()
        .prefix("minify-build-")
        .tempdir()
        .map_err(Error::io("creating a temp dir for the image"))?;
    let reading = tokio::spawn(read_image(
        store,
        source.id.clone(),
        source.repo_tags.clone(),
        docker.save_image(&source.id),
        spool_dir.path().to_path_buf(),
    ));

    let run_name = run::unique_run_name("minify");
    // Containers of minify runs that were killed before they could clean up (SIGKILL, reboot);
    // never those of a live concurrent run.
    match run::sweep_orphans(docker).await {
        Ok(removed) if !removed.is_empty() => warnings.push(format!(
            "removed {} container(s) left by minify runs that are gone: {}",
            removed.len(),
            removed.join(", ")
        )),
        Ok(_) => {}
        Err(e) => warnings.push(format!("could not sweep leftovers of earlier runs: {e}")),
    }
    run::check_interrupted()?;
    // Cgroups of runs that crashed before cleaning up (older than a couple of minutes).
    let _ = crate::sense::cgroup::remove_stale(crate::sense::cgroup::NAME_PREFIX);
    let sensor_started = Instant::now();
    let chosen = start_sensor(options.sensor, docker.endpoint(), &run_name, &source)?;
    timings.record("sensor start", sensor_started);
    let mut sensor: Box<dyn Sensor> = chosen.sensor;
    eprintln!("minify: sensor: {} ({})", sensor.name(), chosen.reason);
    let mut sensor_notes = std::collections::BTreeMap::from([(
        "sensor_choice".to_string(),
        format!("{}: {}", sensor.name(), chosen.reason),
    )]);
    let hooks = sensor.container_hooks();
    let probe_file = crate::probe::slim::resolve(
        options.probes.as_ref(),
        options.slim_probes.as_ref(),
        &verify::tcp_ports(&source.exposed_ports),
    )?;
    let mut plan = Plan::new(
        probe_file.as_ref(),
        &verify::tcp_ports(&source.exposed_ports),
        options.default_probes,
        &options.crawl,
        options.ready_timeout,
    );
    let mut publish = source.exposed_ports.clone();
    publish.extend(plan.ports().iter().map(|p| format!("{p}/tcp")));
    publish.sort();
    publish.dedup();
    let mut spec = run::container_spec_with(&run_name, &source.id, &publish, &options.run);
    spec.cgroup_parent = hooks.cgroup_parent.clone();
    if hooks.entrypoint.is_some() || hooks.cmd.is_some() {
        spec.entrypoint = hooks.entrypoint.clone();
        spec.cmd = hooks.cmd.clone();
    }

    let observed = run::interruptible(async {
        let probes = observe(
            docker,
            &Observation {
                spec: &spec,
                hooks: &hooks,
            },
            &mut plan,
            options,
            &mut timings,
            &mut warnings,
            &mut sensor_notes,
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
    // By name and by label: a create still in flight at an interrupt was let finish, and is
    // found either way.
    let removed = run::remove_run(docker, &run_name).await;
    let sensor_finished = Instant::now();
    let trace = sensor.finish();
    timings.record("sensor finish", sensor_finished);
    if observed.is_err() {
        reading.abort();
    }
    let (steps, probes) = observed?;
    removed?;
    let trace = trace?;
    crate::seccomp::Profile::from_syscalls(&trace.syscalls).write(&options.seccomp_path)?;
    sensor_notes.insert(
        "seccomp_profile".to_string(),
        options.seccomp_path.display().to_string(),
    );

    run::check_interrupted()?;
    phase("reading image");
    let waited = Instant::now();
    // A `docker save` of a big image can take many seconds: an interrupt must not wait for it.
    let read = run::interruptible(async {
        reading.await.map_err(|e| Error::Archive {
            context: "reading the image".into(),
            message: e.to_string(),
        })?
    })
    .await;
    let (fs, read_ms, flatten_warnings) = read?;
    warnings.extend(flatten_warnings);
    sensor_notes.insert("image_source".to_string(), fs.source.clone());
    timings.phases.push(("read image".into(), read_ms));
    timings.record("wait for image read", waited);

    phase("computing closure");
    let closure_started = Instant::now();
    let run_config = RunConfig::from_image_config(&fs.config)?;
    let workdir = run_config.working_dir.clone().unwrap_or_else(|| "/".into());
    let app_files = if options.app_closure == AppClosure::Off {
        app::AppFiles::default()
    } else {
        let steps = app::layer_steps(&fs.config, fs.layers.len());
        app::app_files(fs.index.iter(), &steps, &workdir)
    };
    for skipped in &app_files.skipped {
        warnings.push(format!(
            "app files under {}: {} files, {} bytes, over the bound for keeping them whole \
             ({} MiB / {} files): kept only what the trace and the imports reach",
            skipped.root,
            skipped.files,
            skipped.bytes,
            app::MAX_ROOT_BYTES >> 20,
            app::MAX_ROOT_FILES
        ));
    }
    let closure = tokio::task::block_in_place(|| {
        closure::compute(
            &fs,
            &ClosureInput {
                traced: &trace.accesses,
                env: &run_config.env,
                extra_paths: rules::include_paths(&options.keep, &fs.index),
                app_files: app_files
                    .files
                    .iter()
                    .map(|f| {
                        (
                            f.path.clone(),
                            Reason::AppFile {
                                layer: f.layer,
                                instruction: f.instruction.clone(),
                            },
                        )
                    })
                    .collect(),
                app_closure: options.app_closure,
                workdir: &workdir,
            },
        )
    });
    let mut closure = closure;
    let excluded = rules::apply_excludes(&mut closure, &rules::exclude_set(&options.keep.exclude)?);
    for (path, why) in &excluded.overridden {
        warnings.push(format!("--exclude matched {path} but it stays: {why}"));
    }
    timings.record("closure", closure_started);
    warnings.extend(closure.warnings.iter().map(|w| w.to_string()));
    const MAX_QUOTED_LOADS: usize = 30;
    for load in closure.dynamic_loads.iter().take(MAX_QUOTED_LOADS) {
        warnings.push(format!("unresolved load (kept code may need more): {load}"));
    }
    if closure.dynamic_loads.len() > MAX_QUOTED_LOADS {
        warnings.push(format!(
            "... and {} more unresolved loads (all in the report's dynamic_loads)",
            closure.dynamic_loads.len() - MAX_QUOTED_LOADS
        ));
    }

    run::check_interrupted()?;
    phase("writing slim image");
    let write_started = Instant::now();
    let work_dir = tempfile::tempdir().map_err(Error::io("creating a temp dir"))?;
    let archive_path = work_dir.path().join("slim.tar");
    let entries = retain::retain(&fs.index, |path| closure.kept.contains(path));
    let kept_bytes: u64 = entries.iter().map(|e| e.size).sum();
    tokio::task::block_in_place(|| -> Result<()> {
        let layer_path = work_dir.path().join("layer.tar");
        let layer = sink::write_layer_file(&fs, &entries, &layer_path)?;
        let mut config = slim_config(
            &fs.config,
            &layer.diff_id,
            &format!("minify build {}", options.image),
        );
        crate::image::config::apply_edits(&mut config, &options.config_edits);
        let out = std::fs::File::create(&archive_path)
            .map_err(Error::io("creating the image archive"))?;
        let tags: Vec<String> = std::iter::once(options.tag.clone())
            .chain(options.extra_tags.iter().cloned())
            .collect();
        sink::write_docker_archive_tagged(
            &layer_path,
            &layer,
            &config,
            &tags,
            std::io::BufWriter::new(out),
        )?;
        Ok(())
    })?;
    timings.record("write", write_started);

    run::check_interrupted()?;
    phase("loading slim image");
    let load_started = Instant::now();
    let previous = docker.inspect_image(&options.tag).await.ok();
    docker.load_image(&archive_path).await?;
    let result = docker.inspect_image(&options.tag).await?;
    let previous_id = previous.as_ref().map(|p| p.id.clone());
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
    // From here on the slim image exists: an interrupt (which the load itself does not stop,
    // so that the daemon is never left half-way) takes it away again, so that an interrupted
    // build never leaves an image behind either.
    discard_if_interrupted(docker, &options.tag, previous_id.as_deref(), &result.id).await?;

    let verification = if options.verify {
        phase("verifying slim image");
        let verify_started = Instant::now();
        let slim_results = verify::replay_on(
            docker,
            &options.tag,
            &plan.readiness,
            &plan.ports(),
            &steps,
            options.stop_timeout_secs,
            &options.run,
        )
        .await;
        if matches!(slim_results, Err(Error::Interrupted)) {
            discard_if_interrupted(docker, &options.tag, previous_id.as_deref(), &result.id)
                .await?;
        }
        let slim_results = slim_results?;
        timings.record("verify", verify_started);
        Some(Verification {
            image: options.tag.clone(),
            differences: verify::compare(&probes, &slim_results),
            probes: slim_results,
        })
    } else {
        None
    };
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
    let kept: Vec<KeptPath> = entries
        .iter()
        .map(|e| KeptPath {
            path: e.path.clone(),
            kind: kind_name(&e.kind),
            size: e.size,
            reasons: closure.kept.paths.get(&e.path).cloned().unwrap_or_default(),
        })
        .collect();
    let report = Report {
        app_closure: options.app_closure,
        kept_by_reason: crate::report::kept_by_reason(&kept),
        dynamic_loads: closure.dynamic_loads.clone(),
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
        kept,
        unresolved_needs: closure
            .unresolved_needs
            .iter()
            .map(|n| (n.of.clone(), n.soname.clone()))
            .collect(),
        excluded,
        verification,
        warnings,
        timings,
        notes: sensor_notes,
    };
    discard_if_interrupted(
        docker,
        &options.tag,
        previous_id.as_deref(),
        &report.result.id,
    )
    .await?;
    report.write_json(&options.report_path)?;
    if let Some(verification) = report.verification.as_ref().filter(|v| !v.passed()) {
        return Err(Error::VerifyFailed {
            image: options.tag.clone(),
            differences: verification.describe(),
        });
    }
    Ok(report)
}

/// After an interrupt, removes the slim image `tag` names (`id`) unless it is the image the tag
/// named before the build (`previous`: a rebuild that produced the very same image changed
/// nothing), and returns [`Error::Interrupted`]. Without an interrupt it does nothing.
async fn discard_if_interrupted<D: DockerApi>(
    docker: &D,
    tag: &str,
    previous: Option<&str>,
    id: &str,
) -> Result<()> {
    if run::check_interrupted().is_ok() {
        return Ok(());
    }
    if previous != Some(id) {
        if let Err(e) = docker.remove_image(tag).await {
            tracing::warn!("interrupted: the slim image {tag} could not be removed: {e}");
        }
    }
    Err(Error::Interrupted)
}

/// Most flatten warnings quoted in the report; the rest are counted.
const MAX_QUOTED_WARNINGS: usize = 20;

/// Reads the image into a flattened [`ImageFs`]: from the layer store under `store` when it
/// holds the image with its files on disk, else from `save` (a `docker save` stream, which is
/// only started then). Returns it with the time taken and the warnings flattening raised.
async fn read_image(
    store: Option<PathBuf>,
    id: String,
    repo_tags: Vec<String>,
    save: source::SaveStream,
    spool_dir: PathBuf,
) -> Result<(ImageFs, u64, Vec<String>)> {
    let started = Instant::now();
    let from_store = match store {
        Some(root) => {
            let read =
                tokio::task::spawn_blocking(move || {
                    match crate::image::layerstore::locate(&root, &id) {
                        Some(stored) => ImageFs::from_store(stored, repo_tags),
                        None => Ok(None),
                    }
                })
                .await
                .map_err(|e| Error::Archive {
                    context: "reading the layer store".into(),
                    message: e.to_string(),
                })?;
            // Whatever is odd about the store, `docker save` still gives the true image.
            read.unwrap_or_else(|e| {
                tracing::warn!("the layer store could not be read ({e}); reading `docker save`");
                None
            })
        }
        None => None,
    };
    let (fs, warnings) = match from_store {
        Some(found) => found,
        None => {
            let image = source::from_stream(save, Some(spool_dir)).await?;
            tokio::task::spawn_blocking(move || ImageFs::new(image))
                .await
                .map_err(|e| Error::Archive {
                    context: "flattening the image".into(),
                    message: e.to_string(),
                })??
        }
    };
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

/// What [`observe`] runs: the container spec and the sensor's hooks.
struct Observation<'a> {
    spec: &'a ContainerSpec,
    hooks: &'a ContainerHooks,
}

/// Starts the container, waits for it, runs the probe plan, lets it run on if asked, and stops
/// it. Returns the concrete steps that ran (for `--verify`) and their results. A probe of the
/// probe file failing on the original is an error: the slim image could not be judged by it.
/// `plan` comes back as it ran: a port found not to speak HTTP is probed as TCP.
#[allow(clippy::too_many_arguments)]
async fn observe<D: DockerApi>(
    docker: &D,
    observation: &Observation<'_>,
    plan: &mut Plan,
    options: &BuildOptions,
    timings: &mut Timings,
    warnings: &mut Vec<String>,
    notes: &mut std::collections::BTreeMap<String, String>,
    phase: &dyn Fn(&str),
) -> Result<(Vec<Step>, Vec<ProbeResult>)> {
    let Observation { spec, hooks } = observation;
    // Installed before anything runs: a SIGUSR1 sent early must not kill minify.
    let mut go_signal = match options.continue_after {
        Some(ContinueAfter::Signal) => Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .map_err(Error::io("installing the SIGUSR1 handler"))?,
        ),
        _ => None,
    };
    phase("starting container");
    let run_started = Instant::now();
    let id = run::create_and_start(docker, spec, &hooks.uploads).await?;
    let state = docker.inspect_container(&id).await?;
    timings.record("start", run_started);

    phase("probing");
    let probe_started = Instant::now();
    let finished_cleanly = plan.is_empty() && state.exit_code == 0;
    if !state.running && !finished_cleanly {
        // Ports are only published while the container runs: an early exit must be told apart
        // from an image without ports.
        return Err(run::exited_error(docker, &id, &state).await);
    }
    let mut ran = (Vec::new(), Vec::new());
    let continue_after = if plan.is_empty() {
        let wait = match &options.continue_after {
            Some(ContinueAfter::Duration(wait)) => *wait,
            Some(ContinueAfter::Probe) => Duration::ZERO,
            Some(ContinueAfter::Signal) => Duration::MAX,
            None => DEFAULT_RUN_WITHOUT_PROBES,
        };
        if wait != Duration::MAX {
            let why = if spec.publish.is_empty() {
                "the image exposes no TCP ports"
            } else {
                "default probes are off and the probe file has none"
            };
            warnings.push(format!(
                "{why}: no probes were run; traced the app for {}s (--continue-after)",
                wait.as_secs()
            ));
        }
        options
            .continue_after
            .clone()
            .or(Some(ContinueAfter::Duration(wait)))
    } else {
        let client = http::client(options.crawl.request_timeout);
        let target = Target::new(docker, &id, verify::published_ports(&state.published));
        match target.prepare(plan, &client).await {
            Ok(notes) => {
                for note in notes {
                    eprintln!("minify: {note}");
                    warnings.push(note);
                }
            }
            Err(message) => {
                let state = docker.inspect_container(&id).await?;
                if !state.running {
                    return Err(run::exited_error(docker, &id, &state).await);
                }
                let logs = docker.logs_tail(&id, 20).await.unwrap_or_default();
                return Err(Error::Probe {
                    message: format!("{message}\nLast log lines:\n{logs}"),
                });
            }
        }
        ran = target.run_plan(plan, &client).await;
        let configured = ran.1.len() - plan.steps.len();
        let failures: Vec<String> = ran.1[configured..]
            .iter()
            .filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| format!("{} [{}]: {e}", r.request, r.target))
            })
            .collect();
        if !failures.is_empty() && !options.probe_exit_on_failure {
            warnings.extend(failures.iter().map(|f| format!("probe failed: {f}")));
        } else if !failures.is_empty() {
            return Err(Error::Probe {
                message: format!(
                    "{} of the probe file's probes failed on the original image:\n  {}",
                    failures.len(),
                    failures.join("\n  ")
                ),
            });
        }
        for failed in ran.1[..configured].iter().filter(|r| !r.ok()) {
            warnings.push(format!(
                "crawl {} [{}] failed: {}",
                failed.request,
                failed.target,
                failed.error.as_deref().unwrap_or_default()
            ));
        }
        options.continue_after.clone()
    };
    match continue_after {
        None | Some(ContinueAfter::Probe) => {}
        Some(ContinueAfter::Duration(wait)) => wait_while_running(docker, &id, wait).await?,
        Some(ContinueAfter::Signal) => {
            phase("driving: send SIGUSR1 or press Enter to finish");
            if let Some(go_signal) = go_signal.as_mut() {
                wait_for_go_signal(docker, &id, go_signal).await?;
            }
        }
    }
    timings.record("probe", probe_started);

    phase("stopping container");
    let stop_started = Instant::now();
    let stopped = run::stop_fast(docker, &id, options.stop_timeout_secs).await?;
    // The report always says which it was; stderr only when it was killed at once.
    if !stopped.graceful {
        warnings.push(format!("stop: {}", stopped.why));
    }
    notes.insert("stop".to_string(), stopped.why);
    timings.record("stop", stop_started);
    Ok(ran)
}

/// Waits for SIGUSR1 or a line on stdin (manual driving), or for the container to exit.
async fn wait_for_go_signal<D: DockerApi>(
    docker: &D,
    id: &str,
    usr1: &mut tokio::signal::unix::Signal,
) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    eprintln!(
        "minify: the container runs; drive it, then send SIGUSR1 to minify (pid {}) or press Enter",
        std::process::id()
    );
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = usr1.recv() => return Ok(()),
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(_)) => return Ok(()),
                // EOF (no terminal, or stdin closed) is not Enter: keep waiting for the signal.
                _ => stdin_open = false,
            },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if !docker.inspect_container(id).await?.running {
                    return Ok(());
                }
            }
        }
    }
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
