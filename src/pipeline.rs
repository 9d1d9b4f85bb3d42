//! `minify build` end to end: read the image (concurrently with the run), run the container under
//! a sensor, probe it, stop it, compute the closure, write and load the slim image, report.
//! Cleanup (container, sensor, cgroup) happens on every path out, Ctrl-C included.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::closure::lang::AppClosure;
use crate::closure::rules;
use crate::closure::{self, app, ClosureInput, Reason};
use std::collections::BTreeMap;

use crate::docker::{ContainerSpec, DockerApi, ImageSummary};
use crate::image::config::{slim_config, RunConfig};
use crate::image::{retain, sink, source, Entry, EntryKind, ImageFs};
use crate::probe::config::{ContinueAfter, KeepRules, ProbeFile};
use crate::probe::http::{self, CrawlLimits};
use crate::probe::session::{Plan, Step, Target};
use crate::probe::ProbeResult;
use crate::report::{FileCounts, ImageRef, KeptPath, Report, SensorSummary, Timings};
use crate::sense::ptrace::SensorChoice;
use crate::sense::{ContainerHooks, Sensor, SensorFactory, Trace};
use crate::verify::{self, Verification};
use crate::{packages, run, Error, Result};

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
    /// `--sbom`: where the slim image's SBOM goes, and in which format.
    pub sbom_path: Option<PathBuf>,
    pub sbom_format: crate::sbom::Format,
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
    /// How the source image gets into the daemon (there already, `--pull`, `--dockerfile`).
    pub acquire: crate::acquire::Acquire,
    /// Modes and owners to set on paths of the slim image (docker-slim's `--path-perms`).
    pub path_perms: Vec<crate::image::perms::PathPerms>,
    /// Compose services to start before the traced run and to keep running through the
    /// verification (`--compose-file`); `run` already puts the target on their networks.
    pub compose: Option<crate::compose::plan::Plan>,
}

/// How long a container with nothing to probe runs when `--continue-after` is not given.
pub const DEFAULT_RUN_WITHOUT_PROBES: Duration = Duration::from_secs(10);

/// What one build accumulates for its report as it goes.
#[derive(Debug, Default)]
struct Progress {
    timings: Timings,
    warnings: Vec<String>,
    notes: BTreeMap<String, String>,
}

/// What the traced run of the original image produced.
struct TracedRun {
    /// The probe plan as it ran (a port found not to speak HTTP is probed as TCP).
    plan: Plan,
    /// The concrete steps that ran, replayed by `--verify`.
    steps: Vec<Step>,
    probes: Vec<ProbeResult>,
    trace: Trace,
}

/// The slim image once loaded.
struct Loaded {
    result: ImageSummary,
    /// The image the tag named before this build, if any.
    previous_id: Option<String>,
}

/// Runs the whole build and returns the report (also written to `options.report_path`).
/// `sensors` starts the sensor (the kernel's in production, a fake in tests); `phase` is told
/// the name of each phase as it starts (for progress display). Each phase is a function below,
/// in the order they run. With compose dependencies they start first and are taken down on
/// every path out, after the target's containers are gone (a cleanup failure is kept next to
/// the build's error).
pub async fn build<D: DockerApi>(
    docker: &D,
    sensors: &dyn SensorFactory,
    options: &BuildOptions,
    phase: &dyn Fn(&str),
) -> Result<Report> {
    let started = Instant::now();
    let mut progress = Progress::default();
    let (acquired, outcome) =
        match crate::acquire::acquire(docker, &options.image, &options.acquire, phase).await {
            Ok(acquired) => {
                note_acquired(&acquired, &mut progress);
                let outcome = build_acquired(docker, sensors, options, phase, started, progress);
                (acquired, outcome.await)
            }
            Err(error) => (crate::acquire::Acquired::default(), Err(error)),
        };
    // `--delete-generated-fat-image` on every path out, as the other cleanups.
    let released = crate::acquire::release(docker, &options.acquire, &acquired).await;
    Error::after_cleanup(outcome, released.err().into_iter().collect())
}

/// The pull or fat-image build in the report: its time and a note.
fn note_acquired(acquired: &crate::acquire::Acquired, progress: &mut Progress) {
    let (phase, note) = match (&acquired.built, acquired.pulled) {
        (Some(tag), _) => (
            "building fat image",
            format!("fat image {tag} built from the Dockerfile"),
        ),
        (None, true) => ("pulling image", "pulled by --pull".to_string()),
        (None, false) => return,
    };
    progress
        .timings
        .phases
        .push((phase.to_string(), acquired.ms));
    progress.notes.insert("source_image".to_string(), note);
}

/// [`build`] once the source image is in the daemon. With compose dependencies they start
/// first and are taken down on every path out, after the target's containers are gone (a
/// cleanup failure is kept next to the build's error).
async fn build_acquired<D: DockerApi>(
    docker: &D,
    sensors: &dyn SensorFactory,
    options: &BuildOptions,
    phase: &dyn Fn(&str),
    started: Instant,
    mut progress: Progress,
) -> Result<Report> {
    let Some(plan) = &options.compose else {
        return build_image(docker, sensors, options, phase, started, progress).await;
    };
    run::check_interrupted()?;
    // Leftovers of killed runs first: their networks could hold this run's names otherwise.
    sweep_leftovers(docker, &mut progress).await;
    phase("starting compose dependencies");
    let up_started = Instant::now();
    let up = run::interruptible(crate::compose::up::up(docker, plan, phase)).await;
    progress.timings.record("compose up", up_started);
    let built = match up {
        Ok(log) => {
            for line in &log {
                eprintln!("minify: compose: {line}");
            }
            progress.notes.insert(
                "compose".to_string(),
                format!("{}: {}", plan.file.display(), log.join("; ")),
            );
            progress
                .warnings
                .extend(plan.warnings.iter().map(|w| format!("compose: {w}")));
            build_image(docker, sensors, options, phase, started, progress).await
        }
        Err(e) => Err(e),
    };
    phase("stopping compose dependencies");
    let cleanup = crate::compose::up::down(docker, plan).await;
    Error::after_cleanup(built, cleanup)
}

/// [`build`] of the image, with whatever runs beside it already up.
async fn build_image<D: DockerApi>(
    docker: &D,
    sensors: &dyn SensorFactory,
    options: &BuildOptions,
    phase: &dyn Fn(&str),
    started: Instant,
    mut progress: Progress,
) -> Result<Report> {
    phase("inspecting image");
    let source = inspect_source(docker, options).await?;
    // Everything this build writes to disk (a `docker save` spool, the slim archive) lives in
    // this dir, which goes when `build` returns, also on an error or an interrupt that leaves
    // the read unfinished.
    let work_dir = tempfile::Builder::new()
        .prefix("minify-build-")
        .tempdir()
        .map_err(Error::io("creating a temp dir for the image"))?;
    // The image is read while the container runs: both take seconds and neither needs the other.
    let reading = start_reading(docker, options, &source, work_dir.path());

    if options.compose.is_none() {
        sweep_leftovers(docker, &mut progress).await;
    }
    let run = traced_run(docker, sensors, options, &source, &mut progress, phase).await;
    if run.is_err() {
        reading.abort();
    }
    let run = run?;
    crate::seccomp::Profile::from_syscalls(&run.trace.syscalls).write(&options.seccomp_path)?;
    progress.notes.insert(
        "seccomp_profile".to_string(),
        options.seccomp_path.display().to_string(),
    );

    run::check_interrupted()?;
    phase("reading image");
    let fs = wait_for_image(reading, &mut progress).await?;

    phase("computing closure");
    let (closure, excluded) = close_over(&fs, &run.trace, options, &mut progress)?;
    let (packages, surface) = inventory(&fs, &closure);

    run::check_interrupted()?;
    phase("writing slim image");
    let entries = retain::retain(&fs.index, |path| closure.kept.contains(path));
    let (patched, missing) = crate::image::perms::patch(&entries, &options.path_perms);
    for rule in missing {
        progress.warnings.push(format!(
            "--path-perms {}: the slim image does not hold this path, nothing to set",
            rule.path
        ));
    }
    let entries: Vec<&Entry> = entries
        .into_iter()
        .map(|e| patched.get(&e.path).unwrap_or(e))
        .collect();
    let archive = write_slim(
        &fs,
        &entries,
        &packages.replaced,
        options,
        work_dir.path(),
        &mut progress,
    )?;

    run::check_interrupted()?;
    phase("loading slim image");
    let loaded = load_slim(docker, &archive, options, &source, &mut progress).await?;
    // From here on the slim image exists: an interrupt (which the load itself does not stop,
    // so that the daemon is never left half-way) takes it away again, so that an interrupted
    // build never leaves an image behind either.
    discard_if_interrupted(docker, options, &loaded).await?;

    // The SBOM (which reads every kept file for its checksums) is written while the slim
    // image is verified: it needs the kept set and the loaded image's id, not the verdict.
    let sbom_started = Instant::now();
    let (verification, sbom) = std::thread::scope(|scope| {
        let sbom = options.sbom_path.as_ref().map(|path| {
            let (id, summary, fs) = (&loaded.result.id, &packages.summary, &fs);
            scope.spawn(move || {
                // The kept files are read from the source image: the slim one holds the same
                // bytes.
                crate::sbom::write(options.sbom_format, path, &options.tag, id, summary, fs)
                    .map(|()| sbom_started.elapsed())
            })
        });
        let verification = if options.verify {
            phase("verifying slim image");
            Some(tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(verify_slim(
                    docker,
                    options,
                    &run,
                    &mut progress,
                ))
            }))
        } else {
            None
        };
        let sbom = sbom.map(|writer| {
            writer.join().unwrap_or_else(|_| {
                Err(Error::File {
                    path: options.sbom_path.clone().unwrap_or_default(),
                    message: "the SBOM writer panicked (a bug in minify)".into(),
                })
            })
        });
        (verification, sbom)
    });
    // A build that fails from here leaves no SBOM of an image it did not make.
    let remove_sbom = || {
        if let Some(path) = &options.sbom_path {
            let _ = std::fs::remove_file(path);
        }
    };
    let verification = match verification {
        Some(Err(e)) => {
            remove_sbom();
            if matches!(e, Error::Interrupted) {
                discard_if_interrupted(docker, options, &loaded).await?;
            }
            return Err(e);
        }
        Some(Ok(v)) => Some(v),
        None => None,
    };
    if let Some(written) = sbom {
        let took = written.inspect_err(|_| remove_sbom())?;
        progress.timings.phases.push((
            "sbom (while verifying)".to_string(),
            took.as_millis() as u64,
        ));
    }
    progress.timings.total_ms = started.elapsed().as_millis() as u64;

    let report = assemble_report(
        options,
        &source,
        run,
        &fs,
        &entries,
        &closure,
        excluded,
        packages.summary,
        surface,
        &loaded.result,
        verification,
        progress,
    );
    discard_if_interrupted(docker, options, &loaded)
        .await
        .inspect_err(|_| remove_sbom())?;
    report.write_json(&options.report_path)?;
    if let Some(verification) = report.verification.as_ref().filter(|v| !v.passed()) {
        return Err(Error::VerifyFailed {
            image: options.tag.clone(),
            differences: verification.describe(),
        });
    }
    Ok(report)
}

/// The source image, refusing a `--tag` that names it (minify never retags the source).
async fn inspect_source<D: DockerApi>(docker: &D, options: &BuildOptions) -> Result<ImageSummary> {
    let mut source = docker.inspect_image(&options.image).await?;
    options.run.apply_to_image(&mut source);
    if source.repo_tags.iter().any(|t| t == &options.tag) {
        return Err(Error::Usage(format!(
            "--tag {} names the source image itself; minify never retags or changes the source image",
            options.tag
        )));
    }
    Ok(source)
}

/// The image read in flight: its flattened filesystem, the read's milliseconds and warnings.
type Reading = tokio::task::JoinHandle<Result<(ImageFs, u64, Vec<String>)>>;

/// Starts reading the source image in a task of its own. The layer store is read only when the
/// daemon is local: a remote daemon's images are not on this host (an image of the same id
/// would be, but then it is the same image).
fn start_reading<D: DockerApi>(
    docker: &D,
    options: &BuildOptions,
    source: &ImageSummary,
    work_dir: &std::path::Path,
) -> Reading {
    let store = (options.layer_store && crate::docker::endpoint_is_local(docker.endpoint()))
        .then(crate::image::layerstore::docker_root);
    tokio::spawn(read_image(
        store,
        source.id.clone(),
        source.repo_tags.clone(),
        docker.save_image(&source.id),
        work_dir.to_path_buf(),
    ))
}

/// Removes containers of minify runs that were killed before they could clean up (SIGKILL,
/// reboot), never those of a live concurrent run, and cgroups of crashed runs. A failure only
/// warns: it concerns earlier runs, not this one.
async fn sweep_leftovers<D: DockerApi>(docker: &D, progress: &mut Progress) {
    match run::sweep_orphans(docker).await {
        Ok(removed) if !removed.is_empty() => progress.warnings.push(format!(
            "removed what minify runs that are gone left behind: {}",
            removed.describe()
        )),
        Ok(_) => {}
        Err(e) => progress
            .warnings
            .push(format!("could not sweep leftovers of earlier runs: {e}")),
    }
    let _ = crate::sense::cgroup::remove_stale(crate::sense::cgroup::NAME_PREFIX);
}

/// Runs the original under a sensor: start the sensor, create, start, probe and stop the
/// container, then clean up whatever happened — the container first, then the sensor (whose
/// cgroup can only go once the container's processes are gone). A cleanup failure is kept next
/// to an earlier error ([`Error::WithCleanup`]), never dropped.
async fn traced_run<D: DockerApi>(
    docker: &D,
    sensors: &dyn SensorFactory,
    options: &BuildOptions,
    source: &ImageSummary,
    progress: &mut Progress,
    phase: &dyn Fn(&str),
) -> Result<TracedRun> {
    run::check_interrupted()?;
    // The probe plan first: it needs nothing running, so a bad probe flag starts nothing.
    let tcp_ports = run::tcp_ports(&source.exposed_ports);
    let probe_file = crate::probe::slim::resolve(
        options.probes.as_ref(),
        options.slim_probes.as_ref(),
        &tcp_ports,
    )?;
    let mut plan = Plan::new(
        probe_file.as_ref(),
        &tcp_ports,
        options.default_probes,
        &options.crawl,
        options.ready_timeout,
    );
    let run_name = run::unique_run_name("minify");
    let sensor_started = Instant::now();
    let chosen = sensors.start(options.sensor, docker.endpoint(), &run_name, source)?;
    progress.timings.record("sensor start", sensor_started);
    let mut sensor: Box<dyn Sensor> = chosen.sensor;
    eprintln!("minify: sensor: {} ({})", sensor.name(), chosen.reason);
    progress.notes.insert(
        "sensor_choice".to_string(),
        format!("{}: {}", sensor.name(), chosen.reason),
    );
    let hooks = sensor.container_hooks();
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
        let ran = observe(
            docker,
            &Observation {
                spec: &spec,
                hooks: &hooks,
            },
            &mut plan,
            options,
            progress,
            phase,
        )
        .await?;
        if let Some(results) = &hooks.results_path {
            let tar = docker.download_archive(&run_name, results).await?;
            sensor.accept_results(tar)?;
        }
        Ok(ran)
    })
    .await;
    phase("cleaning up");
    // By name and by label: a create still in flight at an interrupt was let finish, and is
    // found either way.
    let removed = run::remove_run(docker, &run_name).await;
    let sensor_finished = Instant::now();
    let trace = sensor.finish();
    progress.timings.record("sensor finish", sensor_finished);
    let mut cleanup: Vec<Error> = removed.err().into_iter().collect();
    let observed = match (observed, trace) {
        (Ok(ran), Ok(trace)) => Ok((ran, trace)),
        // With the run fine, a sensor that failed is the build's error (there is no trace).
        (Ok(_), Err(sensor)) => Err(sensor),
        (Err(e), Ok(_)) => Err(e),
        (Err(e), Err(sensor)) => {
            cleanup.push(sensor);
            Err(e)
        }
    };
    let ((steps, probes), trace) = Error::after_cleanup(observed, cleanup)?;
    Ok(TracedRun {
        plan,
        steps,
        probes,
        trace,
    })
}

/// Waits for the image read (interruptibly: a `docker save` of a big image takes seconds).
async fn wait_for_image(reading: Reading, progress: &mut Progress) -> Result<ImageFs> {
    let waited = Instant::now();
    let read =
        run::interruptible(async { reading.await.map_err(Error::task("reading the image"))? })
            .await;
    let (fs, read_ms, flatten_warnings) = read?;
    progress.warnings.extend(flatten_warnings);
    progress
        .notes
        .insert("image_source".to_string(), fs.source.clone());
    progress.timings.phases.push(("read image".into(), read_ms));
    progress.timings.record("wait for image read", waited);
    Ok(fs)
}

/// Most unresolved dynamic loads quoted on stderr; all are in the report.
const MAX_QUOTED_LOADS: usize = 30;

/// The closure of the trace over the image (app files and their imports per `--app-closure`),
/// with `--exclude` applied.
fn close_over(
    fs: &ImageFs,
    trace: &Trace,
    options: &BuildOptions,
    progress: &mut Progress,
) -> Result<(closure::Closure, rules::ExcludeOutcome)> {
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
        progress.warnings.push(format!(
            "app files under {}: {} files, {} bytes, over the bound for keeping them whole \
             ({} MiB / {} files): kept only what the trace and the imports reach",
            skipped.root,
            skipped.files,
            skipped.bytes,
            app::MAX_ROOT_BYTES >> 20,
            app::MAX_ROOT_FILES
        ));
    }
    let mut extra_paths = rules::include_paths(&options.keep, &fs.index);
    // With a package database, the slim image gets one that lists what it holds (and the
    // os-release scanners identify the distribution by); see [`crate::packages`].
    for path in packages::database_files(&fs.index) {
        extra_paths.push((
            path.to_string(),
            Reason::Runtime {
                note: "package scanners read it (the database is rewritten to list what is kept)"
                    .into(),
            },
        ));
    }
    let mut closure = tokio::task::block_in_place(|| {
        closure::compute(
            fs,
            &ClosureInput {
                traced: &trace.accesses,
                env: &run_config.env,
                extra_paths: extra_paths.clone(),
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
                own_code: app_files.own_code.clone(),
                app_closure: options.app_closure,
                workdir: &workdir,
                trace_lost_events: trace.lost_events > 0,
            },
        )
    });
    let excluded = rules::apply_excludes(&mut closure, &rules::exclude_set(&options.keep.exclude)?);
    for (path, why) in &excluded.overridden {
        progress
            .warnings
            .push(format!("--exclude matched {path} but it stays: {why}"));
    }
    progress.timings.record("closure", closure_started);
    progress
        .warnings
        .extend(closure.warnings.iter().map(|w| w.to_string()));
    for load in closure.dynamic_loads.iter().take(MAX_QUOTED_LOADS) {
        progress
            .warnings
            .push(format!("unresolved load (kept code may need more): {load}"));
    }
    if closure.dynamic_loads.len() > MAX_QUOTED_LOADS {
        progress.warnings.push(format!(
            "... and {} more unresolved loads (all in the report's dynamic_loads)",
            closure.dynamic_loads.len() - MAX_QUOTED_LOADS
        ));
    }
    Ok((closure, excluded))
}

/// What the slim image holds, for the report, the SBOM and the scanners: its packages (and the
/// dpkg status rewritten to list them) and its attack surface against the source's.
fn inventory(
    fs: &ImageFs,
    closure: &closure::Closure,
) -> (Packages, crate::surface::SurfaceChange) {
    let kept = |path: &str| closure.kept.contains(path);
    let (summary, database) = packages::take_inventory(fs, kept);
    if let Some(line) = summary.line() {
        eprintln!("minify: {line}");
    }
    let surface = crate::surface::SurfaceChange {
        before: crate::surface::surface(&fs.index, |_| true),
        after: crate::surface::surface(&fs.index, kept),
    };
    eprintln!("minify: {}", surface.line());
    let replaced = database
        .map(|(path, content)| (path, content.into_bytes()))
        .into_iter()
        .collect();
    (Packages { replaced, summary }, surface)
}

/// The slim image's package inventory and the database contents rewritten for it.
#[derive(Debug)]
struct Packages {
    /// Files whose content the slim image gets from here (the rewritten dpkg status or apk
    /// database).
    replaced: BTreeMap<String, Vec<u8>>,
    summary: packages::PackageSummary,
}

/// Writes the kept `entries` as a one-layer docker-archive in `work_dir`; returns its path.
fn write_slim(
    fs: &ImageFs,
    entries: &[&Entry],
    replaced: &BTreeMap<String, Vec<u8>>,
    options: &BuildOptions,
    work_dir: &std::path::Path,
    progress: &mut Progress,
) -> Result<PathBuf> {
    let write_started = Instant::now();
    let archive_path = work_dir.join("slim.tar");
    tokio::task::block_in_place(|| -> Result<()> {
        let layer_path = work_dir.join("layer.tar");
        let layer = sink::write_layer_file(fs, entries, replaced, &layer_path)?;
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
        // The layer is inside the archive now; its own copy is not needed for the load.
        let _ = std::fs::remove_file(&layer_path);
        Ok(())
    })?;
    progress.timings.record("write", write_started);
    Ok(archive_path)
}

/// Loads the slim archive as `options.tag`. The image the tag named before, if it is neither
/// the new one nor the source, would stay behind untagged: it is removed.
async fn load_slim<D: DockerApi>(
    docker: &D,
    archive: &std::path::Path,
    options: &BuildOptions,
    source: &ImageSummary,
    progress: &mut Progress,
) -> Result<Loaded> {
    let load_started = Instant::now();
    let previous = docker.inspect_image(&options.tag).await.ok();
    docker.load_image(archive).await?;
    let result = docker.inspect_image(&options.tag).await?;
    let previous_id = previous.map(|p| p.id);
    if let Some(previous) = previous_id.as_deref() {
        if previous != result.id && previous != source.id {
            if let Err(e) = docker.remove_image(previous).await {
                progress.warnings.push(format!(
                    "the image {previous} previously tagged {} is now untagged and could not be removed: {e}",
                    options.tag
                ));
            }
        }
    }
    progress.timings.record("load", load_started);
    Ok(Loaded {
        result,
        previous_id,
    })
}

/// Replays the run's probe steps on the slim image and compares the answers.
async fn verify_slim<D: DockerApi>(
    docker: &D,
    options: &BuildOptions,
    run: &TracedRun,
    progress: &mut Progress,
) -> Result<Verification> {
    let verify_started = Instant::now();
    let slim_results = verify::replay_on(
        docker,
        &options.tag,
        &run.plan.readiness,
        &run.plan.ports(),
        &run.steps,
        options.stop_timeout_secs,
        &options.run,
    )
    .await?;
    progress.timings.record("verify", verify_started);
    Ok(Verification {
        image: options.tag.clone(),
        differences: verify::compare(&run.probes, &slim_results),
        probes: slim_results,
    })
}

/// The report of a finished build.
#[allow(clippy::too_many_arguments)]
fn assemble_report(
    options: &BuildOptions,
    source: &ImageSummary,
    run: TracedRun,
    fs: &ImageFs,
    entries: &[&Entry],
    closure: &closure::Closure,
    excluded: rules::ExcludeOutcome,
    packages: packages::PackageSummary,
    surface: crate::surface::SurfaceChange,
    result: &ImageSummary,
    verification: Option<Verification>,
    mut progress: Progress,
) -> Report {
    let trace = run.trace;
    let distinct_paths = trace
        .accesses
        .iter()
        .map(|a| a.path.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if trace.lost_events > 0 {
        progress.warnings.push(format!(
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
    let api_operations = crate::report::api_operations(
        &run.steps,
        &run.probes,
        verification.as_ref().map(|v| v.probes.as_slice()),
    );
    Report {
        api_operations,
        app_closure: options.app_closure,
        kept_by_reason: crate::report::kept_by_reason(&kept),
        dynamic_loads: closure.dynamic_loads.clone(),
        lazy_loads_not_followed: closure.lazy_loads_not_followed.clone(),
        minify_version: env!("CARGO_PKG_VERSION").into(),
        source: ImageRef {
            name: options.image.clone(),
            id: source.id.clone(),
            size: source.size,
        },
        result: ImageRef {
            name: options.tag.clone(),
            id: result.id.clone(),
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
            kept_bytes: entries.iter().map(|e| e.size).sum(),
        },
        probes: run.probes,
        kept,
        unresolved_needs: closure
            .unresolved_needs
            .iter()
            .map(|n| (n.of.clone(), n.soname.clone()))
            .collect(),
        excluded,
        packages,
        attack_surface: surface,
        verification,
        warnings: progress.warnings,
        timings: progress.timings,
        notes: progress.notes,
    }
}

/// After an interrupt, removes the slim image the build loaded unless it is the image the tag
/// named before the build (a rebuild that produced the very same image changed nothing), and
/// returns [`Error::Interrupted`]. Without an interrupt it does nothing.
async fn discard_if_interrupted<D: DockerApi>(
    docker: &D,
    options: &BuildOptions,
    loaded: &Loaded,
) -> Result<()> {
    if run::check_interrupted().is_ok() {
        return Ok(());
    }
    if loaded.previous_id.as_deref() != Some(loaded.result.id.as_str()) {
        for tag in std::iter::once(&options.tag).chain(&options.extra_tags) {
            if let Err(e) = docker.remove_image(tag).await {
                tracing::warn!("interrupted: the slim image {tag} could not be removed: {e}");
            }
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
    let (fs, warnings) = source::read_flattened(store, id, repo_tags, save, spool_dir).await?;
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
async fn observe<D: DockerApi>(
    docker: &D,
    observation: &Observation<'_>,
    plan: &mut Plan,
    options: &BuildOptions,
    progress: &mut Progress,
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
    progress.timings.record("start", run_started);

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
            progress.warnings.push(format!(
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
        let target = Target::new(docker, &id, run::published_ports(&state.published));
        match target.prepare(plan, &client).await {
            Ok(notes) => {
                for note in notes {
                    eprintln!("minify: {note}");
                    progress.warnings.push(note);
                }
            }
            Err(source) => {
                let state = docker.inspect_container(&id).await?;
                if !state.running {
                    return Err(run::exited_error(docker, &id, &state).await);
                }
                let logs = docker.logs_tail(&id, 20).await.unwrap_or_default();
                return Err(Error::NotReady {
                    image: None,
                    source,
                    logs,
                });
            }
        }
        let plan_run = target.run_plan(plan, &client).await;
        let configured = plan_run.crawled;
        ran = (plan_run.steps, plan_run.results);
        let operations = crate::report::api_operations(&ran.0, &ran.1, None);
        for line in crate::report::api_summary(&operations) {
            eprintln!("minify: {line}");
        }
        let failures: Vec<String> = ran.1[configured..]
            .iter()
            .filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| format!("{} [{}]: {e}", r.request, r.target))
            })
            .collect();
        if !failures.is_empty() && !options.probe_exit_on_failure {
            progress
                .warnings
                .extend(failures.iter().map(|f| format!("probe failed: {f}")));
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
            progress.warnings.push(format!(
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
    progress.timings.record("probe", probe_started);

    phase("stopping container");
    let stop_started = Instant::now();
    let stopped = run::stop_fast(docker, &id, options.stop_timeout_secs).await?;
    // The report always says which it was; stderr only when it was killed at once.
    if !stopped.graceful {
        progress.warnings.push(format!("stop: {}", stopped.why));
    }
    progress.notes.insert("stop".to_string(), stopped.why);
    progress.timings.record("stop", stop_started);
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

#[cfg(test)]
mod tests {
    //! The cleanup contract of a build, on a fake Docker and a fake sensor that share one call
    //! log: the container goes before the sensor finishes, on every path out, and a cleanup
    //! failure is kept next to the error that came first.
    use super::*;
    use crate::docker::fake::FakeDocker;
    use crate::sense::fake::FakeSensors;
    use crate::sense::{Access, AccessKind};
    use crate::testkit::LayerBuilder;

    const SOURCE: &str = "fake/app:1";
    const SLIM: &str = "fake/app.slim:1";

    fn docker_with_source() -> FakeDocker {
        let docker = FakeDocker::default();
        let layer = LayerBuilder::new()
            .dir("etc")
            .file("etc/app.conf", b"port=80")
            .file("etc/unused", &[0u8; 4096])
            .bytes();
        let config = serde_json::json!({
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/app"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:0"]},
            "history": [{"created_by": "ADD file:rootfs in /"}],
        });
        docker.add_image(
            ImageSummary {
                id: "sha256:source".into(),
                size: 5000,
                repo_tags: vec![SOURCE.into()],
                cmd: vec!["/bin/app".into()],
                ..ImageSummary::default()
            },
            crate::testkit::DockerArchive::of(&[layer], &config, "t/x:1"),
        );
        docker
    }

    fn sensors(docker: &FakeDocker) -> FakeSensors {
        FakeSensors {
            trace: Trace {
                sensor: "fake".into(),
                accesses: vec![Access {
                    path: "/etc/app.conf".into(),
                    kind: AccessKind::Open,
                    pid: 1,
                    comm: "app".into(),
                    result: Some(3),
                }],
                ..Trace::default()
            },
            log: docker.calls.clone(),
            ..FakeSensors::default()
        }
    }

    fn options(dir: &std::path::Path) -> BuildOptions {
        BuildOptions {
            image: SOURCE.into(),
            tag: SLIM.into(),
            report_path: dir.join("report.json"),
            continue_after: Some(ContinueAfter::Probe),
            ready_timeout: Duration::from_secs(1),
            stop_timeout_secs: 1,
            crawl: CrawlLimits {
                max_depth: 1,
                max_pages: 1,
                request_timeout: Duration::from_secs(1),
            },
            probes: None,
            default_probes: false,
            keep: KeepRules::default(),
            verify: false,
            sensor: SensorChoice::Auto,
            seccomp_path: dir.join("seccomp.json"),
            app_closure: AppClosure::Imports,
            layer_store: false,
            sbom_path: None,
            sbom_format: crate::sbom::Format::Cyclonedx,
            slim_probes: None,
            probe_exit_on_failure: true,
            run: run::RunOptions::default(),
            config_edits: Default::default(),
            extra_tags: Vec::new(),
            acquire: Default::default(),
            path_perms: Vec::new(),
            compose: None,
        }
    }

    /// Where the first call starting with `prefix` is in the log.
    fn position(log: &[String], prefix: &str) -> usize {
        log.iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {log:#?}"))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_build_removes_the_container_before_the_sensor_finishes_and_loads_the_kept_files() {
        let dir = tempfile::tempdir().unwrap();
        let docker = docker_with_source();
        let report = build(&docker, &sensors(&docker), &options(dir.path()), &|_| {})
            .await
            .unwrap();
        let log = docker.log();
        let order = [
            "sensor start",
            "create_container",
            "start_container",
            "stop_container",
            "remove_container",
            "sensor finish",
            "load_image",
        ]
        .map(|call| position(&log, call));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{log:#?}");
        assert!(docker.container_names().is_empty());
        let kept: Vec<&str> = report.kept.iter().map(|k| k.path.as_str()).collect();
        assert!(kept.contains(&"/etc/app.conf"), "{kept:?}");
        assert!(!kept.contains(&"/etc/unused"), "{kept:?}");
        assert!(
            docker.find_image(SLIM).is_some(),
            "the slim image is loaded"
        );
        assert!(docker.find_image(SOURCE).is_some(), "the source stays");
        assert_eq!(report.notes["image_source"], "docker save");
        assert!(dir.path().join("report.json").is_file());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_container_that_exits_on_start_is_removed_and_the_sensor_still_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let mut docker = docker_with_source();
        docker.exit_on_start = Some(3);
        let err = build(&docker, &sensors(&docker), &options(dir.path()), &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ContainerExited { exit_code: 3, .. }),
            "{err}"
        );
        let log = docker.log();
        assert!(position(&log, "remove_container") < position(&log, "sensor finish"));
        assert!(docker.container_names().is_empty());
        assert!(!log.iter().any(|c| c.starts_with("load_image")), "{log:#?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_removal_that_fails_after_a_failed_run_is_kept_next_to_the_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut docker = docker_with_source();
        docker.exit_on_start = Some(3);
        docker.failing.insert("remove_container");
        let err = build(&docker, &sensors(&docker), &options(dir.path()), &|_| {})
            .await
            .unwrap_err();
        let Error::WithCleanup { error, cleanup } = &err else {
            panic!("expected the run's error with the cleanup's: {err}");
        };
        assert!(matches!(**error, Error::ContainerExited { .. }), "{error}");
        assert!(
            matches!(
                cleanup[..],
                [Error::Docker {
                    call: "remove_container",
                    ..
                }]
            ),
            "{cleanup:?}"
        );
        assert_eq!(crate::cli::exit_code(&err), crate::cli::exit::PROBE_FAILED);
        // The sensor is finished even so: its kernel resources must go.
        assert!(docker.log().iter().any(|c| c == "sensor finish"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_sensor_that_fails_to_finish_fails_the_build_after_the_container_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let docker = docker_with_source();
        let mut sensors = sensors(&docker);
        sensors.fail_finish = true;
        let err = build(&docker, &sensors, &options(dir.path()), &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Sensor { .. }), "{err}");
        let log = docker.log();
        assert!(position(&log, "remove_container") < position(&log, "sensor finish"));
        assert!(!log.iter().any(|c| c.starts_with("load_image")), "{log:#?}");
        assert!(docker.find_image(SLIM).is_none());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_sensor_that_cannot_start_means_no_container_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let docker = docker_with_source();
        let mut sensors = sensors(&docker);
        sensors.fail_start = true;
        let err = build(&docker, &sensors, &options(dir.path()), &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Sensor { .. }), "{err}");
        assert!(!docker
            .log()
            .iter()
            .any(|c| c.starts_with("create_container")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_tag_naming_the_source_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let docker = docker_with_source();
        let mut options = options(dir.path());
        options.tag = SOURCE.into();
        let err = build(&docker, &sensors(&docker), &options, &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err}");
        assert_eq!(docker.log(), ["inspect_image fake/app:1"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_pulled_source_is_minified_and_stays_in_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let source = docker_with_source();
        let docker = FakeDocker::default();
        let (summary, bytes) = source.find_image(SOURCE).unwrap();
        docker
            .registry
            .lock()
            .unwrap()
            .insert(SOURCE.into(), (summary, bytes, None));
        let mut options = options(dir.path());
        let err = build(&docker, &sensors(&docker), &options, &|_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ImageNotFound { .. }),
            "without --pull: {err}"
        );
        options.acquire = crate::acquire::Acquire::Pull(Default::default());
        let report = build(&docker, &sensors(&docker), &options, &|_| {})
            .await
            .unwrap();
        assert_eq!(report.notes["source_image"], "pulled by --pull");
        assert!(
            docker.find_image(SOURCE).is_some(),
            "the pulled source stays"
        );
        assert!(docker.find_image(SLIM).is_some());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_generated_fat_image_is_deleted_after_a_failed_build_too() {
        let dir = tempfile::tempdir().unwrap();
        let source = docker_with_source();
        let docker = FakeDocker::default();
        *docker.buildable.lock().unwrap() = source.find_image(SOURCE);
        let ctx = dir.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM base\n").unwrap();
        let mut options = options(dir.path());
        options.image = "fake/app.fat:1".into();
        options.acquire = crate::acquire::Acquire::Build(crate::acquire::FatBuild {
            context: ctx.clone(),
            dockerfile: ctx.join("Dockerfile"),
            build: crate::docker::ImageBuild {
                tag: "fake/app.fat:1".into(),
                ..Default::default()
            },
            delete_after: true,
            show_log: false,
        });
        let mut failing = sensors(&docker);
        failing.fail_start = true;
        let err = build(&docker, &failing, &options, &|_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Sensor { .. }), "{err}");
        assert!(
            docker.find_image("fake/app.fat:1").is_none(),
            "{:#?}",
            docker.log()
        );
        let report = build(&docker, &sensors(&docker), &options, &|_| {})
            .await
            .unwrap();
        assert!(report.notes["source_image"].contains("fake/app.fat:1"));
        assert!(docker.find_image("fake/app.fat:1").is_none());
        assert!(docker.find_image(SLIM).is_some());
    }
}
