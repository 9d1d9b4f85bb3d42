//! From a [`Project`] to what a build creates: which services start as dependencies
//! (docker-slim's selection: every service but the target, or `--dep-include-compose-svc`, or
//! the `depends_on` closure of one service, less `--dep-exclude-compose-svc`; whatever a
//! started service depends on starts too), in `depends_on` order with the conditions each one
//! waits for; the networks and volumes; and the target's run options mapped from its service.
//! Pure: names are derived from the run name given, nothing is created here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Condition, Project, Selection, Service, ServiceVolume};
use crate::docker::MountSpec;
use crate::run::RunOptions;
use crate::{Error, Result};

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--target-compose-svc`.
    pub target: Option<String>,
    pub selection: Selection,
    /// Unique on this host (`minify-compose-PID-NANOS`): names the containers and networks
    /// and labels everything created, so that cleanup finds exactly this build's objects.
    pub run_name: String,
    /// `--compose-project-name`: volumes are named `NAME_KEY` as compose names them (so an
    /// existing project's volumes are used, and never removed); else after the run name.
    pub project_name: Option<String>,
    /// `--target-compose-svc-no-ports`: the target's `ports:` are probed but not bound to
    /// the host ports the file names.
    pub no_ports: bool,
    /// `--compose-net`: the compose networks the target joins (default: its own, or all).
    pub target_networks: Vec<String>,
    /// `--compose-svc-start-wait`: a pause before each dependency starts.
    pub start_wait: Duration,
    /// How long each `depends_on` condition may take.
    pub wait_timeout: Duration,
}

/// What [`super::up::up`] creates, in order, and [`super::up::down`] removes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub file: std::path::PathBuf,
    pub run_name: String,
    pub networks: Vec<NetworkPlan>,
    pub volumes: Vec<VolumePlan>,
    /// The dependencies, each after what it depends on.
    pub services: Vec<ServicePlan>,
    /// What the target waits for before it starts: its own `depends_on` among the started
    /// services; when the target is not a service of the file, every started service that
    /// has a healthcheck, healthy.
    pub target_waits: Vec<(String, Condition)>,
    pub start_wait: Duration,
    pub wait_timeout: Duration,
    /// What the file has that minify does not apply.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    /// The key in the file (`default`, `backend`).
    pub key: String,
    /// The daemon's name: unique for a network minify creates, the user's for an external one.
    pub name: String,
    /// False for an external network (used, never created or removed).
    pub create: bool,
    pub driver: Option<String>,
    pub internal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePlan {
    pub key: String,
    pub name: String,
    /// False for an external volume (used, never created or removed).
    pub create: bool,
    pub driver: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub service: String,
    /// `RUN_NAME-SERVICE`.
    pub container: String,
    pub image: String,
    pub run: RunOptions,
    /// Its `depends_on` among the started services.
    pub waits: Vec<(String, Condition)>,
}

/// How the target runs: its service's image and settings, or, for an image that is no service
/// of the file, only the networks it joins.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRun {
    pub image: Option<String>,
    pub run: RunOptions,
}

/// Plans the dependencies of `options.target` (or of an image that is no service of the file,
/// which then joins the project's networks).
pub fn plan(project: &Project, options: &PlanOptions) -> Result<(Plan, TargetRun)> {
    let bad = |message: String| Error::Compose {
        file: project.file.clone(),
        message,
    };
    let known = |name: &str, flag: &str| -> Result<()> {
        if project.services.contains_key(name) {
            Ok(())
        } else {
            Err(bad(format!(
                "{flag} {name}: no such service (the file has {})",
                project
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    if let Some(target) = &options.target {
        known(target, "--target-compose-svc")?;
    }
    let selection = &options.selection;
    for name in &selection.include {
        known(name, "--dep-include-compose-svc")?;
    }
    for name in &selection.exclude {
        known(name, "--dep-exclude-compose-svc")?;
    }
    if let Some(name) = &selection.deps_of {
        known(name, "--dep-include-compose-svc-deps")?;
    }
    let selected = select(project, options);
    let order = start_order(project, &selected).map_err(bad)?;

    let volume_project = options
        .project_name
        .clone()
        .unwrap_or_else(|| options.run_name.clone());
    let mut warnings = project.warnings.clone();
    let target_service = options.target.as_ref().map(|t| &project.services[t]);

    // Networks of the started services and of the target.
    let mut network_keys: BTreeSet<String> = BTreeSet::new();
    for name in &order {
        network_keys.extend(networks_of(&project.services[name]).into_keys());
    }
    let target_networks: Vec<String> = match target_service {
        Some(service) => networks_of(service).into_keys().collect(),
        None if network_keys.is_empty() => vec!["default".to_string()],
        None => network_keys.iter().cloned().collect(),
    };
    let target_networks: Vec<String> = if options.target_networks.is_empty() {
        target_networks
    } else {
        for net in &options.target_networks {
            if net != "default" && !project.networks.contains_key(net) {
                return Err(bad(format!(
                    "--compose-net {net}: no such network in the file"
                )));
            }
        }
        options.target_networks.clone()
    };
    network_keys.extend(target_networks.iter().cloned());
    let networks: Vec<NetworkPlan> = network_keys
        .iter()
        .map(|key| {
            let def = project.networks.get(key).cloned().unwrap_or_default();
            NetworkPlan {
                key: key.clone(),
                name: if def.external {
                    def.name.clone().unwrap_or_else(|| key.clone())
                } else {
                    format!("{}_{key}", options.run_name)
                },
                create: !def.external,
                driver: def.driver.clone(),
                internal: def.internal,
            }
        })
        .collect();
    let network_name = |key: &str| {
        networks
            .iter()
            .find(|n| n.key == key)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    };

    // Volumes the started services and the target mount.
    let mut volume_keys: BTreeSet<String> = BTreeSet::new();
    for service in order
        .iter()
        .map(|n| &project.services[n])
        .chain(target_service)
    {
        for volume in &service.volumes {
            if let ServiceVolume::Named { volume, .. } = volume {
                volume_keys.insert(volume.clone());
            }
        }
    }
    let volumes: Vec<VolumePlan> = volume_keys
        .iter()
        .map(|key| {
            let def = project.volumes.get(key).cloned().unwrap_or_default();
            VolumePlan {
                key: key.clone(),
                name: if def.external {
                    def.name.clone().unwrap_or_else(|| key.clone())
                } else {
                    format!("{volume_project}_{key}")
                },
                create: !def.external,
                driver: def.driver.clone(),
            }
        })
        .collect();
    let volume_name = |key: &str| {
        volumes
            .iter()
            .find(|v| v.key == key)
            .map(|v| v.name.clone())
            .unwrap_or_default()
    };

    let mut services = Vec::new();
    for name in &order {
        let service = &project.services[name];
        let image = image_of(name, service).map_err(bad)?;
        let mut run = run_options(service, &volume_name);
        attach(&mut run, name, &networks_of(service), &network_name);
        services.push(ServicePlan {
            service: name.clone(),
            container: format!("{}-{name}", options.run_name),
            image,
            run,
            waits: waits(service, &selected),
        });
        if !service.ports.is_empty() {
            warnings.push(format!(
                "service {name}: its ports are not published on the host (minify reaches dependencies on the project network)"
            ));
        }
    }

    let (target_run, target_waits) = match (&options.target, target_service) {
        (Some(name), Some(service)) => {
            let image = image_of(name, service).map_err(bad)?;
            let mut run = run_options(service, &volume_name);
            for port in &service.ports {
                if !run.expose.contains(&port.container) {
                    run.expose.push(port.container.clone());
                }
                if !options.no_ports && port.container.ends_with("/tcp") {
                    run.port_bindings.insert(
                        port.container.clone(),
                        (port.host_ip.clone(), port.host_port.clone()),
                    );
                }
            }
            let own = networks_of(service);
            let chosen: BTreeMap<String, Vec<String>> = target_networks
                .iter()
                .map(|key| (key.clone(), own.get(key).cloned().unwrap_or_default()))
                .collect();
            attach(&mut run, name, &chosen, &network_name);
            let target = TargetRun {
                image: Some(image),
                run,
            };
            (target, waits(service, &selected))
        }
        _ => {
            // An image that is no service joins the networks under no alias.
            let mut run = RunOptions::default();
            let chosen: BTreeMap<String, Vec<String>> = target_networks
                .iter()
                .map(|key| (key.clone(), Vec::new()))
                .collect();
            attach_without_alias(&mut run, &chosen, &network_name);
            let waits = order
                .iter()
                .filter(|n| project.services[*n].healthcheck.is_some())
                .map(|n| (n.clone(), Condition::Healthy))
                .collect();
            (TargetRun { image: None, run }, waits)
        }
    };
    Ok((
        Plan {
            file: project.file.clone(),
            run_name: options.run_name.clone(),
            networks,
            volumes,
            services,
            target_waits,
            start_wait: options.start_wait,
            wait_timeout: options.wait_timeout,
            warnings,
        },
        target_run,
    ))
}

/// The services to start: the selection's base set, plus everything it depends on, less the
/// excluded ones and the target.
fn select(project: &Project, options: &PlanOptions) -> BTreeSet<String> {
    let selection = &options.selection;
    if selection.none {
        return BTreeSet::new();
    }
    let mut excluded: BTreeSet<String> = selection.exclude.iter().cloned().collect();
    excluded.extend(options.target.iter().cloned());
    let mut base: BTreeSet<String> = selection.include.iter().cloned().collect();
    if let Some(of) = &selection.deps_of {
        let mut closure = closure_of(project, of);
        closure.remove(of);
        base.extend(closure);
    }
    if selection.include.is_empty() && selection.deps_of.is_none() {
        // Every other service, as docker-slim does; one with profiles only when depended on.
        base = project
            .services
            .iter()
            .filter(|(_, s)| s.profiles.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
    }
    let mut selected = BTreeSet::new();
    for name in base {
        if !excluded.contains(&name) {
            selected.extend(closure_of(project, &name));
        }
    }
    // What the target itself depends on starts too, unless excluded.
    if let Some(target) = &options.target {
        if selection.include.is_empty() && selection.deps_of.is_none() {
            let mut closure = closure_of(project, target);
            closure.remove(target);
            selected.extend(closure);
        }
    }
    selected.retain(|name| !excluded.contains(name));
    selected
}

/// `name` and everything it depends on, transitively.
fn closure_of(project: &Project, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(next) = todo.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        if let Some(service) = project.services.get(&next) {
            todo.extend(service.depends_on.keys().cloned());
        }
    }
    seen
}

/// `selected` in dependency order (ties by name); a cycle is an error naming it.
fn start_order(
    project: &Project,
    selected: &BTreeSet<String>,
) -> std::result::Result<Vec<String>, String> {
    let mut order = Vec::new();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    while placed.len() < selected.len() {
        let ready: Vec<String> = selected
            .iter()
            .filter(|n| !placed.contains(*n))
            .filter(|n| {
                project.services[*n]
                    .depends_on
                    .keys()
                    .all(|d| placed.contains(d) || !selected.contains(d))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            let stuck: Vec<String> = selected
                .iter()
                .filter(|n| !placed.contains(*n))
                .cloned()
                .collect();
            return Err(format!("depends_on has a cycle among {}", stuck.join(", ")));
        }
        for name in ready {
            placed.insert(name.clone());
            order.push(name);
        }
    }
    Ok(order)
}

fn waits(service: &Service, selected: &BTreeSet<String>) -> Vec<(String, Condition)> {
    service
        .depends_on
        .iter()
        .filter(|(dep, _)| selected.contains(*dep))
        .map(|(dep, condition)| (dep.clone(), *condition))
        .collect()
}

fn image_of(name: &str, service: &Service) -> std::result::Result<String, String> {
    match (&service.image, service.has_build) {
        (Some(image), _) => Ok(image.clone()),
        (None, true) => Err(format!(
            "service {name} has a build: section and no image: minify never builds; run \
             `docker compose build`, then name the image with image: (or --target-compose-svc-image)"
        )),
        (None, false) => Err(format!("service {name} has no image:")),
    }
}

/// The service's networks (key → extra aliases); `default` when it names none.
fn networks_of(service: &Service) -> BTreeMap<String, Vec<String>> {
    if service.networks.is_empty() {
        BTreeMap::from([("default".to_string(), Vec::new())])
    } else {
        service.networks.clone()
    }
}

/// Puts `run` on `networks` (the first at create, the others joined before the start), reachable
/// there as `service` and its extra aliases.
fn attach(
    run: &mut RunOptions,
    service: &str,
    networks: &BTreeMap<String, Vec<String>>,
    network_name: &dyn Fn(&str) -> String,
) {
    let with_name: BTreeMap<String, Vec<String>> = networks
        .iter()
        .map(|(key, extra)| {
            let mut aliases = vec![service.to_string()];
            aliases.extend(extra.iter().filter(|a| *a != service).cloned());
            (key.clone(), aliases)
        })
        .collect();
    attach_without_alias(run, &with_name, network_name);
}

fn attach_without_alias(
    run: &mut RunOptions,
    networks: &BTreeMap<String, Vec<String>>,
    network_name: &dyn Fn(&str) -> String,
) {
    // `default` first when present: it is where most services meet.
    let mut keys: Vec<&String> = networks.keys().collect();
    keys.sort_by_key(|k| (k.as_str() != "default", k.as_str()));
    for (i, key) in keys.into_iter().enumerate() {
        let aliases = networks[key].clone();
        if i == 0 {
            run.network = Some(network_name(key));
            run.network_aliases = aliases;
        } else {
            run.more_networks.push((network_name(key), aliases));
        }
    }
}

/// A service's settings as minify's run options (no networks, no published ports).
fn run_options(service: &Service, volume_name: &dyn Fn(&str) -> String) -> RunOptions {
    let mut run = RunOptions {
        env: service.environment.clone(),
        user: service.user.clone(),
        workdir: service.working_dir.clone(),
        entrypoint: service.entrypoint.clone(),
        cmd: service.command.clone(),
        hostname: service.hostname.clone(),
        extra_hosts: service.extra_hosts.clone(),
        labels: service
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with("dev.minify."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        expose: service.expose.clone(),
        healthcheck: service.healthcheck.as_ref().map(|h| h.to_spec()),
        ..RunOptions::default()
    };
    for volume in &service.volumes {
        match volume {
            ServiceVolume::Bind {
                source,
                target,
                read_only,
            } => run.mounts.push(MountSpec {
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
            }),
            ServiceVolume::Named {
                volume,
                target,
                read_only,
            } => run.mounts.push(MountSpec {
                source: volume_name(volume),
                target: target.clone(),
                read_only: *read_only,
            }),
            ServiceVolume::Anonymous { target } => run.volumes.push(target.clone()),
        }
    }
    run
}

/// The target's run options: the service's, then the user's flags over them (a flag's value
/// replaces the service's, list flags add to it; `--env` comes last, so it wins).
pub fn overlay(service: RunOptions, user: &RunOptions) -> RunOptions {
    let mut run = service;
    run.env.extend(user.env.iter().cloned());
    let replace = |slot: &mut Option<String>, flag: &Option<String>| {
        if flag.is_some() {
            slot.clone_from(flag);
        }
    };
    replace(&mut run.user, &user.user);
    replace(&mut run.workdir, &user.workdir);
    replace(&mut run.hostname, &user.hostname);
    if user.entrypoint.is_some() {
        run.entrypoint.clone_from(&user.entrypoint);
        run.cmd.clone_from(&user.cmd);
    } else if user.cmd.is_some() {
        run.cmd.clone_from(&user.cmd);
    }
    run.links.extend(user.links.iter().cloned());
    run.extra_hosts.extend(user.extra_hosts.iter().cloned());
    run.mounts.extend(user.mounts.iter().cloned());
    run.volumes.extend(user.volumes.iter().cloned());
    run.expose.extend(user.expose.iter().cloned());
    run.port_bindings.extend(user.port_bindings.clone());
    run.publish_exposed |= user.publish_exposed;
    if user.shm_size.is_some() {
        run.shm_size = user.shm_size;
    }
    run.sysctls.extend(user.sysctls.clone());
    run.labels.extend(user.labels.clone());
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    /// web → api → (db healthy, cache); tools has a profile; worker stands alone.
    const FILE: &str = r#"
services:
  web:
    image: shop/web:1
    ports: ["8080:8000", "9000"]
    expose: ["7000"]
    environment: {MODE: prod}
    networks:
      front:
      back:
        aliases: [www]
    volumes: [data:/data, ext:/ext:ro, /scratch]
    depends_on:
      api: {condition: service_started}
  api:
    image: shop/api:1
    networks: [back]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  db:
    image: postgres:16
    networks: [back]
    volumes: [data:/var/lib/postgresql/data]
    healthcheck: {test: pg_isready, interval: 1s}
    ports: ["5432:5432"]
  cache:
    image: redis:7
    networks: [back]
  worker:
    image: shop/worker:1
  tools:
    image: shop/tools:1
    profiles: [debug]
volumes:
  data:
  ext: {external: true, name: shop-ext}
networks:
  front:
  back:
"#;

    fn project() -> Project {
        let dir = std::path::PathBuf::from("/srv/shop");
        super::super::parse::parse(
            FILE,
            &dir.join("compose.yaml"),
            dir.clone(),
            &Default::default(),
        )
        .unwrap()
    }

    fn options(target: Option<&str>, selection: Selection) -> PlanOptions {
        PlanOptions {
            target: target.map(String::from),
            selection,
            run_name: "minify-compose-7-ab".into(),
            wait_timeout: Duration::from_secs(5),
            ..PlanOptions::default()
        }
    }

    fn started(plan: &Plan) -> Vec<&str> {
        plan.services.iter().map(|s| s.service.as_str()).collect()
    }

    #[test]
    fn every_other_service_starts_by_default_in_depends_on_order() {
        let (plan, _) = plan(&project(), &options(Some("web"), Selection::default())).unwrap();
        assert_eq!(
            started(&plan),
            ["cache", "db", "worker", "api"],
            "dependencies first, ties by name; the target and the profiled tools left out"
        );
        let api = &plan.services[3];
        assert_eq!(
            api.waits,
            [
                ("cache".to_string(), Condition::Started),
                ("db".to_string(), Condition::Healthy)
            ]
        );
        assert_eq!(api.container, "minify-compose-7-ab-api");
        assert_eq!(plan.target_waits, [("api".to_string(), Condition::Started)]);
        assert!(plan
            .warnings
            .iter()
            .any(|w| w.contains("service db: its ports are not published")));
    }

    #[test]
    fn the_dep_flags_select_as_docker_slim_does() {
        let p = project();
        let pick = |target: Option<&str>, selection: Selection| {
            let (plan, _) = plan(&p, &options(target, selection)).unwrap();
            started(&plan)
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pick(
                Some("web"),
                Selection {
                    deps_of: Some("web".into()),
                    ..Selection::default()
                }
            ),
            ["cache", "db", "api"],
            "--dep-include-target-compose-svc-deps: the closure, no worker"
        );
        assert_eq!(
            pick(
                Some("web"),
                Selection {
                    include: vec!["db".into(), "tools".into()],
                    ..Selection::default()
                }
            ),
            ["db", "tools"],
            "--dep-include-compose-svc: only those (a profile does not matter when named)"
        );
        assert_eq!(
            pick(
                Some("web"),
                Selection {
                    exclude: vec!["worker".into(), "cache".into()],
                    ..Selection::default()
                }
            ),
            ["db", "api"],
            "--dep-exclude-compose-svc wins over depends_on"
        );
        assert_eq!(
            pick(
                Some("web"),
                Selection {
                    include: vec!["api".into()],
                    ..Selection::default()
                }
            ),
            ["cache", "db", "api"],
            "what an included service depends on starts too"
        );
        assert!(pick(
            Some("web"),
            Selection {
                none: true,
                ..Selection::default()
            }
        )
        .is_empty());
        let err = plan(
            &p,
            &options(
                Some("web"),
                Selection {
                    exclude: vec!["nope".into()],
                    ..Selection::default()
                },
            ),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("--dep-exclude-compose-svc nope: no such service"),
            "{err}"
        );
        let err = plan(&p, &options(Some("nope"), Selection::default())).unwrap_err();
        assert!(
            err.to_string().contains("--target-compose-svc nope"),
            "{err}"
        );
    }

    #[test]
    fn the_target_service_maps_onto_run_options_on_the_project_networks() {
        let (plan, target) = plan(&project(), &options(Some("web"), Selection::default())).unwrap();
        assert_eq!(target.image.as_deref(), Some("shop/web:1"));
        let run = &target.run;
        assert_eq!(run.env, ["MODE=prod"]);
        assert_eq!(run.expose, ["7000/tcp", "8000/tcp", "9000/tcp"]);
        assert_eq!(
            run.port_bindings["8000/tcp"],
            (String::new(), "8080".to_string())
        );
        assert_eq!(
            run.port_bindings["9000/tcp"],
            (String::new(), String::new())
        );
        assert_eq!(run.network.as_deref(), Some("minify-compose-7-ab_back"));
        assert_eq!(run.network_aliases, ["web", "www"]);
        assert_eq!(
            run.more_networks,
            [(
                "minify-compose-7-ab_front".to_string(),
                vec!["web".to_string()]
            )]
        );
        let mounts: Vec<(&str, &str, bool)> = run
            .mounts
            .iter()
            .map(|m| (m.source.as_str(), m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(
            mounts,
            [
                ("minify-compose-7-ab_data", "/data", false),
                ("shop-ext", "/ext", true)
            ]
        );
        assert_eq!(run.volumes, ["/scratch"]);
        let networks: Vec<(&str, bool)> = plan
            .networks
            .iter()
            .map(|n| (n.name.as_str(), n.create))
            .collect();
        assert_eq!(
            networks,
            [
                ("minify-compose-7-ab_back", true),
                ("minify-compose-7-ab_default", true),
                ("minify-compose-7-ab_front", true),
            ]
        );
        let volumes: Vec<(&str, bool)> = plan
            .volumes
            .iter()
            .map(|v| (v.name.as_str(), v.create))
            .collect();
        assert_eq!(
            volumes,
            [("minify-compose-7-ab_data", true), ("shop-ext", false)],
            "an external volume is used, never created"
        );
        let worker = plan
            .services
            .iter()
            .find(|s| s.service == "worker")
            .unwrap();
        assert_eq!(
            worker.run.network.as_deref(),
            Some("minify-compose-7-ab_default")
        );
        assert_eq!(worker.run.network_aliases, ["worker"]);
        assert!(worker.run.port_bindings.is_empty());
    }

    #[test]
    fn no_ports_a_project_name_and_compose_net_change_what_they_say() {
        let mut o = options(Some("web"), Selection::default());
        o.no_ports = true;
        o.project_name = Some("shop".into());
        o.target_networks = vec!["front".into()];
        let (plan, target) = plan(&project(), &o).unwrap();
        assert!(target.run.port_bindings.is_empty());
        assert!(
            target.run.expose.contains(&"8000/tcp".to_string()),
            "still probed"
        );
        assert_eq!(
            target.run.network.as_deref(),
            Some("minify-compose-7-ab_front")
        );
        assert!(target.run.more_networks.is_empty());
        assert_eq!(plan.volumes[0].name, "shop_data", "compose's volume name");
        o.target_networks = vec!["elsewhere".into()];
        assert!(super::plan(&project(), &o).is_err());
    }

    #[test]
    fn an_image_that_is_no_service_joins_the_networks_and_waits_for_healthchecks() {
        let (plan, target) = plan(&project(), &options(None, Selection::default())).unwrap();
        assert_eq!(target.image, None);
        assert_eq!(started(&plan), ["cache", "db", "worker", "api", "web"]);
        assert_eq!(
            target.run.network.as_deref(),
            Some("minify-compose-7-ab_default")
        );
        assert!(target.run.network_aliases.is_empty());
        assert_eq!(plan.target_waits, [("db".to_string(), Condition::Healthy)]);
    }

    #[test]
    fn a_depends_on_cycle_and_a_service_without_an_image_are_errors() {
        let dir = std::path::PathBuf::from("/x");
        let cyclic = "services:\n  t: {image: t}\n  a: {image: a, depends_on: [b]}\n  b: {image: b, depends_on: [a]}\n";
        let p = super::super::parse::parse(
            cyclic,
            &dir.join("c.yaml"),
            dir.clone(),
            &Default::default(),
        )
        .unwrap();
        let err = plan(&p, &options(Some("t"), Selection::default())).unwrap_err();
        assert!(err.to_string().contains("cycle among a, b"), "{err}");
        let built = "services:\n  t: {image: t, depends_on: [b]}\n  b: {build: .}\n";
        let p = super::super::parse::parse(built, &dir.join("c.yaml"), dir, &Default::default())
            .unwrap();
        let err = plan(&p, &options(Some("t"), Selection::default())).unwrap_err();
        assert!(err.to_string().contains("minify never builds"), "{err}");
    }

    #[test]
    fn the_users_flags_go_over_the_service_settings() {
        let service = RunOptions {
            env: vec!["A=service".into()],
            user: Some("app".into()),
            cmd: Some(vec!["serve".into()]),
            network: Some("net".into()),
            ..RunOptions::default()
        };
        let user = RunOptions {
            env: vec!["A=flag".into()],
            user: Some("root".into()),
            entrypoint: Some(vec!["/debug".into()]),
            ..RunOptions::default()
        };
        let run = overlay(service, &user);
        assert_eq!(
            run.env,
            ["A=service", "A=flag"],
            "the flag's comes last and wins"
        );
        assert_eq!(run.user.as_deref(), Some("root"));
        assert_eq!(run.entrypoint.as_deref().unwrap(), ["/debug"]);
        assert_eq!(
            run.cmd, None,
            "a new entrypoint drops the cmd, as for the image's"
        );
        assert_eq!(run.network.as_deref(), Some("net"));
    }
}
