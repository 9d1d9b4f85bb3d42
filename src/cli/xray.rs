//! Flags and driver of `minify xray` and `minify report`, and the CI gate flags shared with
//! `minify build --ci`. Flags become library values here; the analysis lives in
//! [`crate::xray`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use crate::cli::exit;
use crate::docker::{Bollard, DockerApi};
use crate::image::ImageFs;
use crate::xray::gate::{self, Gates};
use crate::xray::scan::HashPolicy;
use crate::xray::{self, Xray, DUPLICATE_MIN_BYTES};
use crate::{Error, Result};

/// CI gate flags (`xray --ci`, `build --ci`). With `--ci` and no threshold, dive's defaults
/// apply (lowest efficiency 0.9, highest user-wasted 0.1) plus no secrets.
#[derive(Debug, Clone, Default, Args)]
pub struct GateArgs {
    /// Evaluate the CI rules, print PASS/FAIL per rule, exit 6 if any fails.
    #[arg(long)]
    pub ci: bool,
    /// Rules file: `key: value` lines (a dive `.dive-ci` works) or `key = value`.
    #[arg(long, value_name = "FILE")]
    pub ci_config: Option<PathBuf>,
    /// Largest allowed image size (e.g. 200MB, 1GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Lowest allowed dive efficiency, 0..1.
    #[arg(long, value_name = "FRACTION")]
    pub lowest_efficiency: Option<f64>,
    /// Most wasted bytes allowed (dive's definition), e.g. 20MB.
    #[arg(long, value_name = "SIZE")]
    pub highest_wasted_bytes: Option<String>,
    /// Highest wasted/user-bytes ratio allowed, 0..1 (dive's highestUserWastedPercent).
    #[arg(long, value_name = "FRACTION")]
    pub highest_user_wasted_percent: Option<f64>,
    /// Fail when any layer holds a secret-looking file (.env, private keys, credentials, .git).
    #[arg(long)]
    pub no_secrets: bool,
    /// Fail when the image runs as root.
    #[arg(long)]
    pub non_root: bool,
}

impl GateArgs {
    /// The rules to apply: config file first, flags override; dive's defaults when none given.
    pub fn gates(&self) -> Result<Gates> {
        let mut gates = match &self.ci_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Usage(format!("--ci-config {}: {e}", path.display())))?;
                Gates::from_config_text(&text)?
            }
            None => Gates::default(),
        };
        if let Some(v) = &self.max_size {
            gates.set("maxImageSize", v)?;
        }
        if let Some(v) = self.lowest_efficiency {
            gates.set("lowestEfficiency", &v.to_string())?;
        }
        if let Some(v) = &self.highest_wasted_bytes {
            gates.set("highestWastedBytes", v)?;
        }
        if let Some(v) = self.highest_user_wasted_percent {
            gates.set("highestUserWastedPercent", &v.to_string())?;
        }
        gates.no_secrets |= self.no_secrets;
        gates.non_root |= self.non_root;
        if gates.is_empty() {
            gates = Gates::defaults();
        }
        Ok(gates)
    }
}

#[derive(Debug, Args)]
pub struct XrayArgs {
    /// The image (name[:tag] or id) in the local daemon. Not needed with --archive.
    #[arg(required_unless_present = "archive")]
    pub image: Option<String>,
    /// Read a `docker save` tarball (plain or gzipped) instead of the daemon.
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    pub archive: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of the terminal tables.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page (treemap, layer bars).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Always read the image through `docker save`, never the daemon's layer store.
    #[arg(long)]
    pub no_layer_store: bool,
    /// Write an SBOM of the image (OS and language packages with purls and licenses).
    #[arg(long, value_name = "FILE")]
    pub sbom: Option<PathBuf>,
    /// The SBOM's format: CycloneDX 1.5 JSON or SPDX 2.3 JSON (with each package's files).
    #[arg(
        long,
        value_enum,
        value_name = "cyclonedx|spdx",
        default_value_t,
        requires = "sbom"
    )]
    pub sbom_format: crate::sbom::Format,
    #[command(flatten)]
    pub gates: GateArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A build report written by `minify build --report`.
    pub report: PathBuf,
    /// Where to write the HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// The source image as a `docker save` tarball, for removed bytes per directory
    /// [default: read the source image from the daemon if it is there].
    #[arg(long, value_name = "FILE")]
    pub source_archive: Option<PathBuf>,
}

fn check_output(path: &Path, flag: &str) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(Error::Usage(format!(
            "{flag} {}: directory {} does not exist",
            path.display(),
            dir.display()
        ))),
        _ => Ok(()),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

/// Analyses one image from the daemon (layer store first, unless told otherwise).
pub fn xray_daemon_image(image: &str, use_layer_store: bool) -> Result<Xray> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::io("starting the async runtime"))?;
    let raw = runtime.block_on(async {
        let docker = Bollard::connect().await?;
        xray::read_from_daemon(&docker, image, use_layer_store).await
    })?;
    Ok(xray::analyze(image, raw, started))
}

/// The flattened image from the daemon (its layer store first, else `docker save`) or a tarball,
/// with the temp dir a `docker save` spool lives in (dropped after `fs`).
fn image_fs(
    image: Option<&str>,
    archive: Option<&Path>,
    use_layer_store: bool,
) -> Result<(ImageFs, String, Option<tempfile::TempDir>)> {
    if let Some(path) = archive {
        let spooled = crate::image::source::from_tarball(path)?;
        let id = spooled.config_digest.clone();
        return Ok((ImageFs::new(spooled)?.0, id, None));
    }
    let image = image.ok_or_else(|| Error::Usage("give an IMAGE or --archive FILE".into()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::io("starting the async runtime"))?;
    runtime.block_on(async {
        let docker = Bollard::connect().await?;
        let summary = docker.inspect_image(image).await?;
        let store = (use_layer_store && crate::docker::endpoint_is_local(docker.endpoint()))
            .then(crate::image::layerstore::docker_root);
        let spool = tempfile::Builder::new()
            .prefix("minify-image-")
            .tempdir()
            .map_err(Error::io("creating a temp dir for the image"))?;
        let (fs, _) = crate::image::source::read_flattened(
            store,
            summary.id.clone(),
            summary.repo_tags.clone(),
            docker.save_image(&summary.id),
            spool.path().to_path_buf(),
        )
        .await?;
        // The spool (if any) is inside `spool`'s dir and read later: keep it alive with `fs`.
        Ok((fs, summary.id, Some(spool)))
    })
}

/// `minify xray --sbom`: the image's inventory as CycloneDX 1.5 or SPDX 2.3.
fn write_sbom(args: &XrayArgs, path: &Path) -> Result<()> {
    let (fs, id, _spool) = image_fs(
        args.image.as_deref(),
        args.archive.as_deref(),
        !args.no_layer_store,
    )?;
    let inventory = crate::packages::inventory(&fs);
    let name = args.image.clone().unwrap_or_else(|| {
        fs.repo_tags
            .first()
            .cloned()
            .unwrap_or_else(|| "image".into())
    });
    crate::sbom::write(args.sbom_format, path, &name, &id, &inventory, &fs)?;
    eprintln!(
        "sbom: {} ({} OS, {} language packages)",
        path.display(),
        inventory.total,
        inventory.language.len()
    );
    Ok(())
}

/// `minify xray`: returns the exit code.
pub fn run(args: XrayArgs) -> Result<i32> {
    let gates = if args.gates.ci {
        Some(args.gates.gates()?)
    } else {
        None
    };
    if let Some(html) = &args.html {
        check_output(html, "--html")?;
    }
    if let Some(sbom) = &args.sbom {
        check_output(sbom, "--sbom")?;
        write_sbom(&args, sbom)?;
    }
    let x = match (&args.archive, &args.image) {
        (Some(path), _) => {
            let started = Instant::now();
            let raw =
                xray::source::read_archive_file(path, HashPolicy::AtLeast(DUPLICATE_MIN_BYTES))?;
            xray::analyze(&path.display().to_string(), raw, started)
        }
        (None, Some(image)) => xray_daemon_image(image, !args.no_layer_store)?,
        (None, None) => return Err(Error::Usage("give an IMAGE or --archive FILE".into())),
    };
    if let Some(html) = &args.html {
        write(html, &xray::html::xray_page(&x))?;
    }
    let results = gates.as_ref().map(|g| gate::evaluate(g, &x));
    if args.json {
        let mut value = serde_json::to_value(&x).map_err(|e| Error::Io {
            context: "serialising the xray report".into(),
            source: e.into(),
        })?;
        if let Some(results) = &results {
            value["ci"] = serde_json::to_value(results).unwrap_or_default();
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", xray::render::text(&x));
        if let Some(results) = &results {
            println!("\nCI rules");
            print!("{}", gate::render(results));
        }
    }
    if let Some(html) = &args.html {
        eprintln!("html: {}", html.display());
    }
    Ok(match results {
        Some(r) if r.iter().any(|r| !r.passed) => exit::GATE_FAILED,
        _ => exit::OK,
    })
}

/// `minify build --ci`: gates the freshly built slim image; prints the rules on stderr.
pub fn gate_built_image(
    image: &str,
    args: &GateArgs,
    build_rules: Vec<gate::RuleResult>,
) -> Result<i32> {
    let gates = args.gates()?;
    let x = xray_daemon_image(image, true)?;
    let mut results = gate::evaluate(&gates, &x);
    results.extend(build_rules);
    eprintln!("CI rules for {image}");
    eprint!("{}", gate::render(&results));
    Ok(if results.iter().any(|r| !r.passed) {
        exit::GATE_FAILED
    } else {
        exit::OK
    })
}

/// `minify report REPORT.json --html FILE`.
pub fn run_report(args: ReportArgs) -> Result<i32> {
    check_output(&args.html, "--html")?;
    let text = std::fs::read_to_string(&args.report)
        .map_err(|e| Error::Usage(format!("{}: {e}", args.report.display())))?;
    let report: serde_json::Value = serde_json::from_str(&text).map_err(Error::json(format!(
        "{}: not a minify build report",
        args.report.display()
    )))?;
    let source = match &args.source_archive {
        Some(path) => Some(xray::analyze(
            "source",
            xray::source::read_archive_file(path, HashPolicy::Skip)?,
            Instant::now(),
        )),
        None => report
            .pointer("/source/name")
            .and_then(serde_json::Value::as_str)
            .and_then(|name| match xray_daemon_image(name, true) {
                Ok(x) => Some(x),
                Err(e) => {
                    eprintln!("note: source image not read ({e}); removed bytes are not shown");
                    None
                }
            }),
    };
    let files = source.map(|x| final_files(&x));
    write(
        &args.html,
        &xray::html::report_page(&report, files.as_deref()),
    )?;
    eprintln!("html: {}", args.html.display());
    Ok(exit::OK)
}

/// The source's sizes as (path, size) leaves of its treemap: deep directories and small
/// siblings are folded there, which is exact for the two-level directory totals the page shows.
fn final_files(x: &Xray) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    fn walk(node: &xray::TreeNode, path: &str, out: &mut Vec<(String, u64)>) {
        if node.children.is_empty() {
            out.push((path.to_string(), node.size));
            return;
        }
        for child in &node.children {
            walk(
                child,
                &format!("{}/{}", path.trim_end_matches('/'), child.name),
                out,
            );
        }
    }
    walk(&x.treemap, "/", &mut out);
    out
}
