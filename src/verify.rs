//! Verification: replay the probes that ran against the original on the slim image and compare
//! every answer (status, body hash, exit code, failure), so a build is proven rather than hoped.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::docker::DockerApi;
use crate::probe::config::WaitStrategy;
use crate::probe::session::{Plan, Step, Target};
use crate::probe::{http, ProbeResult};
use crate::{run, Error, Result};

/// One answer that differs between the original and the slim image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub request: String,
    pub target: String,
    pub original: String,
    pub slim: String,
}

/// The outcome of a verification run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    pub image: String,
    pub probes: Vec<ProbeResult>,
    pub differences: Vec<Difference>,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }

    /// One line per difference, for stderr and error messages.
    pub fn describe(&self) -> String {
        self.differences
            .iter()
            .map(|d| {
                format!(
                    "  {} [{}]: original {} / slim {}",
                    d.request, d.target, d.original, d.slim
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How an answer looks for comparison.
fn summary(result: &ProbeResult) -> String {
    let mut parts = Vec::new();
    if let Some(status) = result.status {
        parts.push(format!("status {status}"));
    }
    if let Some(code) = result.exit_code {
        parts.push(format!("exit {code}"));
    }
    if let Some(hash) = &result.body_sha256 {
        parts.push(format!("body {}", &hash[..12.min(hash.len())]));
    }
    if let Some(error) = &result.error {
        parts.push(format!("failed: {error}"));
    }
    if parts.is_empty() {
        "no answer".into()
    } else {
        parts.join(", ")
    }
}

/// Pairs the results of the same steps and lists every difference.
pub fn compare(original: &[ProbeResult], slim: &[ProbeResult]) -> Vec<Difference> {
    let mut differences = Vec::new();
    for (i, original_result) in original.iter().enumerate() {
        let Some(slim_result) = slim.get(i) else {
            differences.push(Difference {
                request: original_result.request.clone(),
                target: original_result.target.clone(),
                original: summary(original_result),
                slim: "not run".into(),
            });
            continue;
        };
        let same = original_result.status == slim_result.status
            && original_result.exit_code == slim_result.exit_code
            && original_result.body_sha256 == slim_result.body_sha256
            && original_result.error.is_some() == slim_result.error.is_some();
        if !same {
            differences.push(Difference {
                request: original_result.request.clone(),
                target: original_result.target.clone(),
                original: summary(original_result),
                slim: summary(slim_result),
            });
        }
    }
    differences
}

/// What to do with a container once it is ready.
enum Drive<'a> {
    /// Run a plan (crawls expand into the requests they make); it comes back as it ran.
    Plan(Plan),
    /// Replay concrete steps of an earlier run.
    Replay(&'a [Step]),
}

/// Steps that ran, their results, and the readiness used.
type Probed = (
    Vec<Step>,
    Vec<ProbeResult>,
    BTreeMap<u16, (WaitStrategy, Duration)>,
);

/// Runs `image` (no sensor) with `ports` published, waits for `readiness`, drives it, stops and
/// removes it (also on error or Ctrl-C). Returns the steps that ran, their results and the
/// readiness they ran with (a plan's ports found not to speak HTTP wait as TCP).
async fn probe_image<D: DockerApi>(
    docker: &D,
    image: &str,
    ports: &[u16],
    readiness: &BTreeMap<u16, (WaitStrategy, Duration)>,
    drive: Drive<'_>,
    stop_timeout_secs: i64,
    run_options: &run::RunOptions,
) -> Result<Probed> {
    let name = run::unique_run_name("minify-verify");
    let publish: Vec<String> = ports.iter().map(|p| format!("{p}/tcp")).collect();
    let spec = run::container_spec_with(&name, image, &publish, run_options);
    let outcome = run::interruptible(async {
        let id = run::create_and_start(docker, &spec, &[]).await?;
        let state = run::require_running(docker, &id).await?;
        let target = Target::new(docker, &id, run::published_ports(&state.published));
        let client = http::client(Duration::from_secs(10));
        // A plan's ports found not to speak HTTP are probed as TCP, as in `minify build`; a
        // replay waits for the readiness it was given.
        let mut drive = drive;
        let ready = match &mut drive {
            Drive::Plan(plan) => target.prepare(plan, &client).await.map(|notes| {
                for note in notes {
                    eprintln!("minify: {image}: {note}");
                }
            }),
            Drive::Replay(_) => target.wait_ready(readiness, &client).await,
        };
        if let Err(source) = ready {
            let state = docker.inspect_container(&id).await?;
            if !state.running {
                return Err(run::exited_error(docker, &id, &state).await);
            }
            return Err(Error::NotReady {
                image: Some(image.to_string()),
                source,
                logs: String::new(),
            });
        }
        let ran = match drive {
            Drive::Plan(plan) => {
                let ran = target.run_plan(&plan, &client).await;
                (ran.steps, ran.results, plan.readiness)
            }
            Drive::Replay(steps) => (
                steps.to_vec(),
                target.replay(steps, &client).await,
                readiness.clone(),
            ),
        };
        run::stop_fast(docker, &id, stop_timeout_secs).await?;
        Ok(ran)
    })
    .await;
    let removed = run::remove_run(docker, &name).await;
    let ran = outcome?;
    removed?;
    Ok(ran)
}

/// Runs `image` (no sensor, with the user's run options), waits for `readiness`, replays
/// `steps`, stops and removes it.
pub async fn replay_on<D: DockerApi>(
    docker: &D,
    image: &str,
    readiness: &BTreeMap<u16, (WaitStrategy, Duration)>,
    ports: &[u16],
    steps: &[Step],
    stop_timeout_secs: i64,
    run_options: &run::RunOptions,
) -> Result<Vec<ProbeResult>> {
    let drive = Drive::Replay(steps);
    let (_, results, _) = probe_image(
        docker,
        image,
        ports,
        readiness,
        drive,
        stop_timeout_secs,
        run_options,
    )
    .await?;
    Ok(results)
}

/// Runs the original with `plan`, then the slim image with the same concrete steps, and
/// compares (`minify verify ORIGINAL SLIM`).
pub async fn verify_images<D: DockerApi>(
    docker: &D,
    original: &str,
    slim: &str,
    plan_for: impl Fn(&[u16]) -> Plan,
    stop_timeout_secs: i64,
    run_options: &run::RunOptions,
) -> Result<(Vec<ProbeResult>, Verification)> {
    let mut source = docker.inspect_image(original).await?;
    run_options.apply_to_image(&mut source);
    docker.inspect_image(slim).await?;
    let plan = plan_for(&run::tcp_ports(&source.exposed_ports));
    let ports = plan.ports();
    let (steps, original_results, readiness) = probe_image(
        docker,
        original,
        &ports,
        &plan.readiness,
        Drive::Plan(plan.clone()),
        stop_timeout_secs,
        run_options,
    )
    .await?;
    let failed: Vec<String> = original_results
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.request)))
        .collect();
    if !failed.is_empty() {
        return Err(Error::Probe {
            message: format!(
                "the original image {original} failed its probes:\n  {}",
                failed.join("\n  ")
            ),
        });
    }
    let slim_results = replay_on(
        docker,
        slim,
        &readiness,
        &ports,
        &steps,
        stop_timeout_secs,
        run_options,
    )
    .await?;
    let differences = compare(&original_results, &slim_results);
    Ok((
        original_results,
        Verification {
            image: slim.into(),
            probes: slim_results,
            differences,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(request: &str, status: u16, body: &str) -> ProbeResult {
        ProbeResult {
            kind: "http".into(),
            target: "80/tcp".into(),
            request: request.into(),
            status: Some(status),
            body_sha256: Some(body.into()),
            body_bytes: 0,
            exit_code: None,
            error: None,
            duration_ms: 0,
            operation: None,
        }
    }

    #[test]
    fn compare_reports_status_body_and_missing_answers() {
        let original = vec![
            answer("GET /", 200, "aaa"),
            answer("GET /about", 200, "bbb"),
            answer("GET /x", 404, "c"),
        ];
        let slim = vec![
            answer("GET /", 200, "aaa"),
            answer("GET /about", 404, "zzz"),
        ];
        let diffs = compare(&original, &slim);
        assert_eq!(diffs.len(), 2);
        assert_eq!(diffs[0].request, "GET /about");
        assert!(diffs[0].original.contains("status 200") && diffs[0].slim.contains("status 404"));
        assert_eq!(diffs[1].slim, "not run");
        assert!(compare(&original[..1], &slim[..1]).is_empty());
    }

    #[test]
    fn ports_parse_from_docker_notation() {
        assert_eq!(
            run::tcp_ports(&["80/tcp".into(), "53/udp".into(), "8080".into()]),
            vec![80, 8080]
        );
        let map = BTreeMap::from([("80/tcp".to_string(), 32768u16)]);
        assert_eq!(
            run::published_ports(&map),
            BTreeMap::from([(80u16, 32768u16)])
        );
    }
}
