//! The slim image works where the probes did not go: for app fixtures in four stacks (Flask in
//! a venv, Express from npm, PHP, Sinatra), each with linked pages and routes no page links to
//! that import lazily, include on demand and read templates, static and data files on first
//! use, `minify build` with no configuration must give an image that answers every route of
//! integration/requests/<fixture>.txt exactly like the original (status and body). And the
//! fixtures must really contain what tracing alone misses: with `--app-closure off` some route
//! answers differently.

mod common;

use common::*;

/// Every route's answer of `image`, run with its port published.
fn answers(cleanup: &mut Cleanup, image: &str, port: u16, routes: &[String]) -> Vec<Answer> {
    let host_port = run_published(cleanup, image, port);
    wait_answering(host_port, std::time::Duration::from_secs(60));
    routes
        .iter()
        .map(|route| {
            // PHP's built-in server now and then resets a connection it accepted right after
            // the previous one closed: a reset is no answer, so ask again (a few times).
            let mut last = None;
            for _ in 0..5 {
                match get(host_port, route) {
                    Ok(answer) => return answer,
                    Err(e) => last = Some(e),
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            panic!("{image} {route}: {last:?}")
        })
        .collect()
}

/// The routes whose answers differ, as `route: original status -> slim status`.
fn differences(routes: &[String], original: &[Answer], slim: &[Answer]) -> Vec<String> {
    routes
        .iter()
        .zip(original.iter().zip(slim))
        .filter(|(_, (a, b))| a != b)
        .map(|(route, (a, b))| format!("{route}: {} -> {}", a.status, b.status))
        .collect()
}

fn build(image: &str, tag: &str, extra: &[&str]) -> serde_json::Value {
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
    assert_eq!(code, 0, "minify build {image} {extra:?}:\n{stderr}");
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn every_route_answers_like_the_original(fixture: &str, port: u16) {
    let _serial = serial();
    let image = format!("minify-fixture/{fixture}:1");
    if !require_fixture(&image) {
        return;
    }
    let routes = request_list(fixture);
    let mut cleanup = Cleanup::default();
    let slim = format!("minify-test/{fixture}.slim:{}", unique("imports"));
    let trace_only = format!("minify-test/{fixture}.slim:{}", unique("off"));
    cleanup.image(&slim);
    cleanup.image(&trace_only);

    let report = build(&image, &slim, &[]);
    let trace_only_report = build(&image, &trace_only, &["--app-closure", "off"]);

    let original = answers(&mut cleanup, &image, port, &routes);
    let unlinked_ok = original.iter().filter(|a| a.status == 200).count();
    assert!(
        unlinked_ok >= 5,
        "{image}: too few routes answer 200 on the original: {:?}",
        original.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let with_closure = answers(&mut cleanup, &slim, port, &routes);
    assert_eq!(
        differences(&routes, &original, &with_closure),
        Vec::<String>::new(),
        "{fixture}: routes that answer differently in the slim image"
    );
    let without = answers(&mut cleanup, &trace_only, port, &routes);
    assert!(
        !differences(&routes, &original, &without).is_empty(),
        "{fixture}: with --app-closure off every route still works, so the fixture does not \
         exercise what tracing misses"
    );
    // The report says what the app closure added and stays close to the trace-only size.
    let reasons = &report["kept_by_reason"];
    assert!(
        reasons.get("app_file").is_some() || reasons.get("import").is_some(),
        "{reasons}"
    );
    assert_eq!(report["app_closure"], "imports");
    let size = report["result"]["size"].as_f64().unwrap();
    let trace_size = trace_only_report["result"]["size"].as_f64().unwrap();
    eprintln!(
        "{fixture}: trace-only {:.1} MB, imports {:.1} MB (+{:.1} %)",
        trace_size / 1e6,
        size / 1e6,
        (size / trace_size - 1.0) * 100.0
    );
}

#[test]
fn flask_unlinked_routes_work_in_the_slim_image() {
    every_route_answers_like_the_original("flask", 5000);
}

#[test]
fn express_unlinked_routes_work_in_the_slim_image() {
    every_route_answers_like_the_original("express", 3000);
}

#[test]
fn php_unlinked_routes_work_in_the_slim_image() {
    every_route_answers_like_the_original("php", 8080);
}

#[test]
fn sinatra_unlinked_routes_work_in_the_slim_image() {
    every_route_answers_like_the_original("sinatra", 4567);
}
