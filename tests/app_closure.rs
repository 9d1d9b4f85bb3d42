//! End to end: the slim image still works where the probes did not go. Four app fixtures
//! (Flask in a venv, Express from npm, PHP's built-in server, Sinatra on puma) have a few pages
//! linked from `/` — all a default crawl reaches — and several routes no page links to, which
//! load code and files only on first use: lazy imports and requires (stdlib modules with C
//! extensions, the app's own modules, a package only that route uses, importlib / a run-time
//! name), includes on demand, a template or view only that route renders, static and data
//! files. `minify build` with no probe file and no flags must give an image that answers every
//! route of integration/requests/<fixture>.txt exactly like the original (status and body).
//!
//! The fixtures must really hold what tracing alone misses, or the first check proves nothing:
//! built with `--app-closure off` (only what the sensor saw), some route must answer
//! differently.

mod common;

use std::time::Duration;

use common::*;

/// Answers of all `routes` from a container of `image` (removed by `cleanup`).
fn answers(cleanup: &mut Cleanup, image: &str, routes: &[String]) -> Vec<Answer> {
    let port = exposed_port(image);
    let host_port = run_published(cleanup, image, port);
    wait_answering(host_port, Duration::from_secs(60));
    routes
        .iter()
        .map(|route| {
            get(host_port, route).unwrap_or_else(|e| panic!("{image}: GET {route}: no answer: {e}"))
        })
        .collect()
}

/// The one TCP port the fixture image exposes (its config, so the test follows the fixture).
fn exposed_port(image: &str) -> u16 {
    let ports = docker(&[
        "image",
        "inspect",
        "--format",
        "{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}",
        image,
    ]);
    ports
        .split_whitespace()
        .find_map(|p| p.strip_suffix("/tcp").and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("{image} exposes no TCP port ({ports:?})"))
}

/// `route: STATUS -> STATUS (first bytes of the other body)` for every route answered
/// differently by `other`.
fn differences(routes: &[String], original: &[Answer], other: &[Answer]) -> Vec<String> {
    routes
        .iter()
        .zip(original.iter().zip(other))
        .filter(|(_, (a, b))| a != b)
        .map(|(route, (a, b))| {
            let start = String::from_utf8_lossy(&b.body[..b.body.len().min(120)]).into_owned();
            format!("GET {route}: {} -> {} ({start:?})", a.status, b.status)
        })
        .collect()
}

/// `minify build IMAGE --tag TAG --report R EXTRA...`; the parsed report. The tag is in
/// `cleanup` before the build starts, so a failing test removes it too.
fn build(cleanup: &mut Cleanup, image: &str, tag: &str, extra: &[&str]) -> serde_json::Value {
    cleanup.image(tag);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut args = vec![
        "build",
        image,
        "--tag",
        tag,
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, stderr) = minify(&args);
    assert_eq!(code, 0, "minify {args:?} failed:\n{stderr}");
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn kept_paths(report: &serde_json::Value) -> Vec<String> {
    report["kept"]
        .as_array()
        .expect("report.kept is a list")
        .iter()
        .filter_map(|k| k["path"].as_str().map(String::from))
        .collect()
}

fn every_route_answers_like_the_original(fixture: &str) {
    let _serial = serial();
    let image = format!("minify-fixture/{fixture}:1");
    if !require_fixture(&image) {
        return;
    }
    let mut cleanup = Cleanup::default();
    every_route_of_image_answers_like_the_original(&mut cleanup, fixture, &image);
}

/// [`every_route_answers_like_the_original`] for `image`, with the requests of `fixture`.
fn every_route_of_image_answers_like_the_original(
    cleanup: &mut Cleanup,
    fixture: &str,
    image: &str,
) {
    let routes = request_list(fixture);
    let slim = format!("minify-test/{fixture}.slim:{}", unique("closure"));
    let trace_only = format!("minify-test/{fixture}.slim:{}", unique("off"));

    // As a user would run it: no probe file, no flags.
    let report = build(cleanup, image, &slim, &[]);
    let trace_only_report = build(cleanup, image, &trace_only, &["--app-closure", "off"]);

    let original = answers(cleanup, image, &routes);
    let broken: Vec<String> = routes
        .iter()
        .zip(&original)
        .filter(|(_, a)| a.status >= 500)
        .map(|(route, a)| format!("GET {route}: {}", a.status))
        .collect();
    assert!(
        broken.is_empty(),
        "{image} itself fails routes of its request list (fix the fixture): {broken:#?}"
    );

    let slim_answers = answers(cleanup, &slim, &routes);
    let differ = differences(&routes, &original, &slim_answers);
    assert!(
        differ.is_empty(),
        "{fixture}: the slim image answers {} of {} routes differently (probed: {}):\n{}",
        differ.len(),
        routes.len(),
        probed(&report).join(" "),
        differ.join("\n")
    );

    // The fixture is meaningful: what the trace alone keeps breaks some route.
    let trace_only_answers = answers(cleanup, &trace_only, &routes);
    let missed = differences(&routes, &original, &trace_only_answers);
    assert!(
        !missed.is_empty(),
        "{fixture}: with --app-closure off every route still answers like the original, so the \
         fixture holds nothing that tracing misses"
    );
    eprintln!(
        "{fixture}: {} routes; with --app-closure off {} differ:\n  {}",
        routes.len(),
        missed.len(),
        missed.join("\n  ")
    );

    // VCS directories are never runtime: none of their content is kept.
    let vcs: Vec<String> = kept_paths(&report)
        .into_iter()
        .filter(|p| p.contains("/.git/"))
        .collect();
    assert!(vcs.is_empty(), "{fixture}: kept VCS files: {vcs:?}");

    let size = |r: &serde_json::Value| r["result"]["size"].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "{fixture}: original {:.1} MB, trace only {:.1} MB, slim {:.1} MB",
        report["source"]["size"].as_f64().unwrap_or(f64::NAN) / 1e6,
        size(&trace_only_report) / 1e6,
        size(&report) / 1e6
    );
    assert_eq!(leftover_containers(), "", "minify left containers behind");
}

/// The requests the default probes made (`GET /about`, ...), for failure messages.
fn probed(report: &serde_json::Value) -> Vec<String> {
    report["probes"]
        .as_array()
        .map(|probes| {
            probes
                .iter()
                .filter_map(|p| p["request"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn flask_slim_answers_unlinked_routes_like_the_original() {
    every_route_answers_like_the_original("flask");
}

/// The app is a distribution `pip install`ed from a source directory the Dockerfile then
/// removed: only its `direct_url.json` says it is the app (its lazy imports were taken for a
/// library's and not followed).
#[test]
fn packaged_flask_app_installed_from_a_local_directory_answers_unlinked_routes() {
    every_route_answers_like_the_original("flaskpkg");
}

/// The flask fixture flattened (`docker export | docker import`): no history and no WORKDIR
/// say which files are the app's, only that they are outside the system trees.
#[test]
fn flattened_flask_image_without_history_answers_unlinked_routes() {
    let _serial = serial();
    let fixture = "minify-fixture/flask:1";
    if !require_fixture(fixture) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let flat = format!("minify-test/flask-flat:{}", unique("flat"));
    cleanup.image(&flat);
    let container = docker(&["create", fixture]);
    cleanup.container(&container);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker export {container} | docker import \
               --change 'CMD [\"/app/venv/bin/python\", \"/app/wsgi.py\"]' \
               --change 'EXPOSE 5000' \
               --change 'ENV SHOP_NAME=\"minify flask fixture\" PYTHONUNBUFFERED=1' - {flat}"
        ))
        .status()
        .unwrap();
    assert!(status.success(), "docker export | docker import failed");
    let history = docker(&["history", "--format", "{{.CreatedBy}}", &flat]);
    assert!(
        !history.contains("COPY"),
        "the flattened image still names its steps: {history}"
    );
    every_route_of_image_answers_like_the_original(&mut cleanup, "flask", &flat);
}

#[test]
fn express_slim_answers_unlinked_routes_like_the_original() {
    every_route_answers_like_the_original("express");
}

#[test]
fn php_slim_answers_unlinked_routes_like_the_original() {
    every_route_answers_like_the_original("php");
}

#[test]
fn sinatra_slim_answers_unlinked_routes_like_the_original() {
    every_route_answers_like_the_original("sinatra");
}
