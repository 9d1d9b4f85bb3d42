//! Starting a [`Plan`]'s dependencies through the Docker API and taking them down again.
//! Every network and volume minify creates carries [`OWNER_LABEL`], [`OWNER_PROCESS_LABEL`]
//! and [`PROJECT_LABEL`] (value: the run name), every container the first two as the target's
//! do, so [`down`] finds them by label (also one whose create an interrupt let finish) and a
//! later run or `minify gc` sweeps what a killed build left. External networks and volumes are
//! used, never created or removed; nor is a volume of that name that existed already.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::plan::Plan;
use super::Condition;
use crate::docker::{DockerApi, NetworkSpec, ResourceKind, VolumeSpec};
use crate::run::{self, OWNER_LABEL, OWNER_PROCESS_LABEL, PROJECT_LABEL};
use crate::{Error, Result};

/// How often a `depends_on` condition is checked.
const POLL: Duration = Duration::from_millis(200);

/// The labels of a network or volume minify creates for run `run_name`.
pub fn resource_labels(run_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (OWNER_LABEL.to_string(), run_name.to_string()),
        (OWNER_PROCESS_LABEL.to_string(), run::owner_token()),
        (PROJECT_LABEL.to_string(), run_name.to_string()),
    ])
}

/// Creates the plan's networks and volumes, then starts each dependency once what it depends
/// on meets its condition, then waits for the target's conditions. `phase` hears each step;
/// the returned lines say what started and how long each wait took (for the report). On an
/// error what was created stays for [`down`], which the caller runs on every path out.
pub async fn up<D: DockerApi>(
    docker: &D,
    plan: &Plan,
    phase: &dyn Fn(&str),
) -> Result<Vec<String>> {
    let mut log = Vec::new();
    // Every image first: a missing one fails before anything is created.
    for service in &plan.services {
        docker
            .inspect_image(&service.image)
            .await
            .map_err(|e| match e {
                Error::ImageNotFound { image } => Error::ImageNotFound {
                    image: format!("{image} (compose service {})", service.service),
                },
                other => other,
            })?;
    }
    let labels = resource_labels(&plan.run_name);
    for network in plan.networks.iter().filter(|n| n.create) {
        let spec = NetworkSpec {
            name: network.name.clone(),
            driver: network.driver.clone(),
            internal: network.internal,
            labels: labels.clone(),
        };
        run::shielded(docker.create_network(&spec)).await?;
    }
    for volume in plan.volumes.iter().filter(|v| v.create) {
        let spec = VolumeSpec {
            name: volume.name.clone(),
            driver: volume.driver.clone(),
            labels: labels.clone(),
        };
        run::shielded(docker.create_volume(&spec)).await?;
    }
    let container_of = |service: &str| {
        plan.services
            .iter()
            .find(|s| s.service == service)
            .map(|s| s.container.clone())
            .unwrap_or_default()
    };
    for service in &plan.services {
        for (dep, condition) in &service.waits {
            let waited = wait_for(
                docker,
                dep,
                &container_of(dep),
                *condition,
                plan.wait_timeout,
            )
            .await?;
            log.push(waited);
        }
        if !plan.start_wait.is_zero() {
            tokio::time::sleep(plan.start_wait).await;
        }
        phase(&format!("starting compose service {}", service.service));
        let spec = run::container_spec_with(&service.container, &service.image, &[], &service.run);
        run::create_and_start(docker, &spec, &[]).await?;
        log.push(format!(
            "started {} ({}) as {}",
            service.service, service.image, service.container
        ));
    }
    for (dep, condition) in &plan.target_waits {
        phase(&format!("waiting for compose service {dep}"));
        let waited = wait_for(
            docker,
            dep,
            &container_of(dep),
            *condition,
            plan.wait_timeout,
        )
        .await?;
        log.push(waited);
    }
    Ok(log)
}

/// Waits until `container` (of compose service `service`) meets `condition`; returns a line
/// saying how long that took.
async fn wait_for<D: DockerApi>(
    docker: &D,
    service: &str,
    container: &str,
    condition: Condition,
    timeout: Duration,
) -> Result<String> {
    let started = Instant::now();
    let failed = |message: String| Error::Dependency {
        service: service.to_string(),
        message,
    };
    loop {
        let state = docker.inspect_container(container).await?;
        let done =
            match condition {
                Condition::Started => state.running || state.exit_code == 0,
                Condition::Healthy => match state.health.as_deref() {
                    Some("healthy") => true,
                    Some("unhealthy") => {
                        return Err(failed(format!(
                        "is unhealthy (depends_on asks for service_healthy).\nLast log lines:\n{}",
                        logs(docker, container).await
                    )))
                    }
                    None if state.running => return Err(failed(
                        "has no healthcheck, but a depends_on asks for service_healthy: give it \
                         a healthcheck: or use condition: service_started"
                            .into(),
                    )),
                    _ => false,
                },
                Condition::CompletedSuccessfully => !state.running && state.exit_code == 0,
            };
        if done {
            return Ok(format!(
                "{service}: {} after {:.1}s",
                condition.name(),
                started.elapsed().as_secs_f64()
            ));
        }
        // A run to exit 0 was done above: any other exit fails the condition.
        if !state.running {
            return Err(failed(format!(
                "exited with code {} before {}.\nLast log lines:\n{}",
                if state.oom_killed {
                    137
                } else {
                    state.exit_code
                },
                condition.name(),
                logs(docker, container).await
            )));
        }
        if started.elapsed() >= timeout {
            return Err(failed(format!(
                "did not reach {} within {}s (--ready-timeout).\nLast log lines:\n{}",
                condition.name(),
                timeout.as_secs(),
                logs(docker, container).await
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn logs<D: DockerApi>(docker: &D, container: &str) -> String {
    match docker.logs_tail(container, 20).await {
        Ok(text) if !text.trim().is_empty() => text,
        Ok(_) => "(no output)".into(),
        Err(e) => format!("(logs unavailable: {e})"),
    }
}

/// Removes what [`up`] created: the dependency containers (by name and label), then the
/// networks and volumes labelled with the plan's run name (never an external one, nor a
/// volume that existed before). Runs every step even when one fails; returns the failures.
pub async fn down<D: DockerApi>(docker: &D, plan: &Plan) -> Vec<Error> {
    let mut failures = Vec::new();
    for service in plan.services.iter().rev() {
        if let Err(e) = run::remove_run(docker, &service.container).await {
            failures.push(e);
        }
    }
    for kind in [ResourceKind::Network, ResourceKind::Volume] {
        match docker.list_labelled_resources(kind, PROJECT_LABEL).await {
            Ok(found) => {
                for resource in found
                    .iter()
                    .filter(|r| r.labels.get(PROJECT_LABEL) == Some(&plan.run_name))
                {
                    if let Err(e) = docker.remove_resource(kind, &resource.name).await {
                        failures.push(e);
                    }
                }
            }
            Err(e) => failures.push(e),
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::plan::{plan, PlanOptions};
    use crate::docker::fake::FakeDocker;
    use crate::docker::ImageSummary;

    const FILE: &str = "services:\n  app:\n    image: app:1\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: db:1\n    healthcheck: {test: ok}\n    networks: [default, back]\n    volumes: [data:/data, ext:/ext]\nvolumes:\n  data:\n  ext: {external: true}\nnetworks:\n  back:\n";

    fn setup() -> (FakeDocker, Plan) {
        let docker = FakeDocker::default();
        for image in ["app:1", "db:1"] {
            docker.add_image(
                ImageSummary {
                    id: format!("sha256:{image}"),
                    repo_tags: vec![image.into()],
                    ..ImageSummary::default()
                },
                Vec::new(),
            );
        }
        let dir = std::path::PathBuf::from("/p");
        let project =
            super::super::parse::parse(FILE, &dir.join("c.yaml"), dir, &Default::default())
                .unwrap();
        let options = PlanOptions {
            target: Some("app".into()),
            run_name: "minify-compose-1-x".into(),
            wait_timeout: Duration::from_secs(2),
            ..PlanOptions::default()
        };
        (docker, plan(&project, &options).unwrap().0)
    }

    #[tokio::test]
    async fn up_labels_what_it_creates_and_down_removes_only_that() {
        let (docker, plan) = setup();
        // A volume of the user's with the external one's name: used, never removed.
        docker
            .volumes
            .lock()
            .unwrap()
            .insert("ext".into(), Default::default());
        let log = up(&docker, &plan, &|_| {}).await.unwrap();
        assert!(
            log.iter().any(|l| l.starts_with("db: service_healthy")),
            "{log:?}"
        );
        assert_eq!(
            docker.networks_of("minify-compose-1-x-db"),
            ["minify-compose-1-x_default", "minify-compose-1-x_back"],
            "created on default, back joined before the start"
        );
        let networks = docker.networks.lock().unwrap().clone();
        assert_eq!(
            networks["minify-compose-1-x_default"][PROJECT_LABEL],
            "minify-compose-1-x"
        );
        assert!(networks["minify-compose-1-x_back"].contains_key(OWNER_PROCESS_LABEL));
        assert!(!docker.log().iter().any(|c| c == "create_volume ext"));
        assert!(down(&docker, &plan).await.is_empty());
        assert!(docker.container_names().is_empty());
        assert!(docker.networks.lock().unwrap().is_empty());
        let volumes: Vec<String> = docker.volumes.lock().unwrap().keys().cloned().collect();
        assert_eq!(volumes, ["ext"]);
    }

    #[tokio::test]
    async fn an_unhealthy_dependency_fails_up_and_down_still_cleans_up() {
        let (mut docker, plan) = setup();
        docker.unhealthy_images.insert("db:1".into());
        let err = up(&docker, &plan, &|_| {}).await.unwrap_err();
        assert!(
            matches!(&err, Error::Dependency { service, .. } if service == "db"),
            "{err}"
        );
        assert!(err.to_string().contains("unhealthy"), "{err}");
        assert!(down(&docker, &plan).await.is_empty());
        assert!(docker.container_names().is_empty());
        assert!(docker.networks.lock().unwrap().is_empty());
        assert!(docker.volumes.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_missing_dependency_image_fails_before_anything_is_created() {
        let (docker, mut plan) = setup();
        plan.services[0].image = "nope:1".into();
        let err = up(&docker, &plan, &|_| {}).await.unwrap_err();
        assert!(err.to_string().contains("compose service db"), "{err}");
        assert!(!docker.log().iter().any(|c| c.starts_with("create_")));
    }

    #[tokio::test]
    async fn the_sweep_removes_compose_resources_of_gone_runs_only() {
        let docker = FakeDocker::default();
        let mut gone = resource_labels("minify-compose-9-old");
        gone.insert(OWNER_PROCESS_LABEL.into(), "no-such-boot:4999999:1".into());
        docker
            .networks
            .lock()
            .unwrap()
            .insert("old_default".into(), gone.clone());
        docker
            .volumes
            .lock()
            .unwrap()
            .insert("old_data".into(), gone);
        docker
            .volumes
            .lock()
            .unwrap()
            .insert("live_data".into(), resource_labels("minify-compose-live"));
        let swept = run::sweep_orphans(&docker).await.unwrap();
        assert_eq!(swept.networks, ["old_default"]);
        assert_eq!(swept.volumes, ["old_data"]);
        let left: Vec<String> = docker.volumes.lock().unwrap().keys().cloned().collect();
        assert_eq!(left, ["live_data"]);
    }
}
