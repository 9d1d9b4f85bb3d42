//! A scripted [`DockerApi`] for unit tests, as youki fakes its `Syscall`: it records every call,
//! keeps containers and images in memory, can make any call fail, can report a container that
//! exits on start, can serve an image's `docker save` bytes and load an archive, and can make
//! `create_container` take time (to test what happens when a run is interrupted while a create
//! is in flight). Networks and volumes are kept too, and containers with a healthcheck report
//! `healthy` once started unless their image is scripted as unhealthy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::docker::{
    auth, ContainerSpec, ContainerState, DockerApi, ImageBuild, ImageSummary, Labelled,
    LabelledResource, NetworkSpec, ResourceKind, VolumeSpec,
};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
    pub exit_code: i64,
    pub image: String,
    /// Whether it was created with a healthcheck.
    pub healthcheck: bool,
    /// Networks it is on: the create's, then those joined.
    pub networks: Vec<String>,
}

/// An image a fake registry serves: its summary, its `docker save` bytes and, when the
/// registry wants a login, the (username, password) it accepts.
pub type RegistryImage = (ImageSummary, Vec<u8>, Option<(String, String)>);

#[derive(Debug, Default)]
pub struct FakeDocker {
    /// Container id → container (shared with the "daemon side" of slow creates).
    pub containers: std::sync::Arc<Mutex<BTreeMap<String, FakeContainer>>>,
    /// Every call, as `name arg` (shareable with a fake sensor, for one ordered log).
    pub calls: std::sync::Arc<Mutex<Vec<String>>>,
    /// Images by id: their summary and `docker save` bytes. Found by id or by a repo tag.
    pub images: Mutex<BTreeMap<String, (ImageSummary, Vec<u8>)>>,
    /// A started container exits at once with this code (an app crashing on start).
    pub exit_on_start: Option<i64>,
    /// Calls (by name: `create_container`, `remove_container`, ...) that fail.
    pub failing: BTreeSet<&'static str>,
    /// How long `create_container` takes; the container exists only once it returns, as in the
    /// daemon (which finishes a create even when the client went away).
    pub create_delay: Duration,
    /// Every spec `create_container` was given, in order.
    pub specs: Mutex<Vec<ContainerSpec>>,
    /// What a registry serves to `pull_image`, by reference.
    pub registry: Mutex<BTreeMap<String, RegistryImage>>,
    /// What `build_image` produces (tagged with the build's tag), else the build fails.
    pub buildable: Mutex<Option<(ImageSummary, Vec<u8>)>>,
    /// Every build `build_image` was asked for, with the paths in its context tar.
    pub builds: Mutex<Vec<(ImageBuild, Vec<String>)>>,
    /// Containers of these images exit at once with this code when started.
    pub exit_images: BTreeMap<String, i64>,
    /// Containers of these images report `unhealthy` instead of `healthy`.
    pub unhealthy_images: BTreeSet<String>,
    /// Networks by name, with their labels.
    pub networks: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Volumes by name, with their labels.
    pub volumes: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl FakeDocker {
    fn call(&self, name: &'static str, arg: &str) -> Result<()> {
        self.calls.lock().unwrap().push(format!("{name} {arg}"));
        if self.failing.contains(name) {
            return Err(Error::docker(
                name,
                500,
                format!("scripted failure of {name}"),
            ));
        }
        Ok(())
    }

    pub fn container_names(&self) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .values()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Adds an image: its summary and the bytes `docker save` of it gives.
    pub fn add_image(&self, summary: ImageSummary, save: Vec<u8>) {
        self.images
            .lock()
            .unwrap()
            .insert(summary.id.clone(), (summary, save));
    }

    /// The image with this id or tag.
    pub fn find_image(&self, image: &str) -> Option<(ImageSummary, Vec<u8>)> {
        self.images
            .lock()
            .unwrap()
            .values()
            .find(|(s, _)| s.id == image || s.repo_tags.iter().any(|t| t == image))
            .cloned()
    }

    /// The networks a container (by name) is on.
    pub fn networks_of(&self, name: &str) -> Vec<String> {
        self.containers
            .lock()
            .unwrap()
            .values()
            .find(|c| c.name == name)
            .map(|c| c.networks.clone())
            .unwrap_or_default()
    }

    /// Every call made so far.
    pub fn log(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn find(&self, id_or_name: &str) -> Option<String> {
        let containers = self.containers.lock().unwrap();
        containers
            .iter()
            .find(|(id, c)| *id == id_or_name || c.name == id_or_name)
            .map(|(id, _)| id.clone())
    }
}

impl DockerApi for FakeDocker {
    fn endpoint(&self) -> &str {
        "unix:///fake/docker.sock"
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageSummary> {
        self.call("inspect_image", image)?;
        self.find_image(image)
            .map(|(summary, _)| summary)
            .ok_or_else(|| Error::ImageNotFound {
                image: image.to_string(),
            })
    }

    fn save_image(&self, image: &str) -> BoxStream<'static, std::io::Result<Bytes>> {
        let _ = self.call("save_image", image);
        match self.find_image(image) {
            Some((_, bytes)) => Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))])),
            None => Box::pin(futures_util::stream::iter([Err(std::io::Error::other(
                format!("no such image: {image}"),
            ))])),
        }
    }

    async fn load_image(&self, archive: &Path) -> Result<()> {
        self.call("load_image", &archive.display().to_string())?;
        // What the daemon does: read the manifest's tags and config, and tag the new image.
        let bytes = std::fs::read(archive).map_err(Error::io("reading the archive to load"))?;
        let mut manifest = None;
        let mut tar = tar::Archive::new(&bytes[..]);
        for member in tar.entries().map_err(Error::io("reading the archive"))? {
            let mut member = member.map_err(Error::io("reading the archive"))?;
            if member.path_bytes().as_ref() == b"manifest.json" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut member, &mut text)
                    .map_err(Error::io("reading manifest.json"))?;
                manifest = serde_json::from_str::<serde_json::Value>(&text).ok();
            }
        }
        let manifest = manifest
            .ok_or_else(|| Error::docker("load_image", 400, "the archive has no manifest.json"))?;
        let tags: Vec<String> = manifest[0]["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let id = format!(
            "sha256:{}",
            manifest[0]["Config"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches(".json")
        );
        let mut images = self.images.lock().unwrap();
        for (summary, _) in images.values_mut() {
            summary.repo_tags.retain(|t| !tags.contains(t));
        }
        images.insert(
            id.clone(),
            (
                ImageSummary {
                    id,
                    size: bytes.len() as u64,
                    repo_tags: tags,
                    ..ImageSummary::default()
                },
                bytes,
            ),
        );
        Ok(())
    }

    /// As `docker rmi`: a tag is untagged and its image goes once no tag is left; an id goes.
    async fn remove_image(&self, image: &str) -> Result<()> {
        self.call("remove_image", image)?;
        let mut images = self.images.lock().unwrap();
        if images.remove(image).is_none() {
            let tagged: Vec<String> = images
                .iter()
                .filter(|(_, (s, _))| s.repo_tags.iter().any(|t| t == image))
                .map(|(id, _)| id.clone())
                .collect();
            for id in tagged {
                if let Some((summary, _)) = images.get_mut(&id) {
                    summary.repo_tags.retain(|t| t != image);
                    if summary.repo_tags.is_empty() {
                        images.remove(&id);
                    }
                }
            }
        }
        Ok(())
    }

    async fn pull_image(
        &self,
        image: &str,
        credentials: Option<&auth::Credentials>,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<()> {
        self.call("pull_image", image)?;
        let fail = |message: &str| Error::Pull {
            image: image.to_string(),
            message: message.to_string(),
        };
        let (mut summary, bytes, login) = self
            .registry
            .lock()
            .unwrap()
            .get(image)
            .cloned()
            .ok_or_else(|| fail("manifest unknown"))?;
        if let Some((user, password)) = login {
            match credentials {
                Some(c) if c.username == user && c.password == password => {}
                _ => return Err(fail("unauthorized: authentication required")),
            }
        }
        progress("Pull complete");
        summary.repo_tags = vec![image.to_string()];
        self.add_image(summary, bytes);
        Ok(())
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        context: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<String> {
        use futures_util::TryStreamExt;
        self.call("build_image", &build.tag)?;
        let chunks: Vec<Bytes> = context
            .try_collect()
            .await
            .map_err(Error::io("reading the build context"))?;
        let tar_bytes = chunks.concat();
        let mut paths = Vec::new();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        for member in archive
            .entries()
            .map_err(Error::io("reading the context"))?
        {
            let member = member.map_err(Error::io("reading the context"))?;
            paths.push(String::from_utf8_lossy(&member.path_bytes()).into_owned());
        }
        self.builds.lock().unwrap().push((build.clone(), paths));
        let Some((mut summary, bytes)) = self.buildable.lock().unwrap().clone() else {
            return Err(Error::FatBuild {
                tag: build.tag.clone(),
                message: "scripted build failure".into(),
                output: "Step 1/2 : FROM base".into(),
            });
        };
        summary.repo_tags = vec![build.tag.clone()];
        self.add_image(summary, bytes);
        Ok(format!("Successfully tagged {}\n", build.tag))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.call("create_container", &spec.name)?;
        self.specs.lock().unwrap().push(spec.clone());
        // The daemon's side of the create: it completes whether or not the caller still waits.
        let id = format!("id-{}", spec.name);
        let record = FakeContainer {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            running: false,
            exit_code: 0,
            image: spec.image.clone(),
            healthcheck: spec.healthcheck.is_some(),
            networks: spec.network.iter().cloned().collect(),
        };
        let containers = self.containers.clone();
        let delay = self.create_delay;
        let key = id.clone();
        let daemon = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            containers.lock().unwrap().insert(key, record);
        });
        // The client waits for the daemon's answer; dropping this future does not stop it.
        let _ = daemon.await;
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.call("start_container", id)?;
        let found = self.find(id);
        match found.and_then(|id| {
            self.containers.lock().unwrap().get_mut(&id).map(|c| {
                let exit = self
                    .exit_on_start
                    .or_else(|| self.exit_images.get(&c.image).copied());
                c.running = exit.is_none();
                c.exit_code = exit.unwrap_or(0);
            })
        }) {
            Some(()) => Ok(()),
            None => Err(Error::docker(
                "start_container",
                404,
                format!("no container {id}"),
            )),
        }
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        self.call("inspect_container", id)?;
        let found = self
            .find(id)
            .and_then(|id| self.containers.lock().unwrap().get(&id).cloned());
        let Some(c) = found else {
            return Ok(ContainerState::default());
        };
        let health = (c.healthcheck && c.running).then(|| {
            if self.unhealthy_images.contains(&c.image) {
                "unhealthy".to_string()
            } else {
                "healthy".to_string()
            }
        });
        Ok(ContainerState {
            running: c.running,
            exit_code: c.exit_code,
            health,
            ..ContainerState::default()
        })
    }

    async fn stop_container(&self, id: &str, _timeout_secs: i64) -> Result<()> {
        self.call("stop_container", id)?;
        if let Some(id) = self.find(id) {
            if let Some(c) = self.containers.lock().unwrap().get_mut(&id) {
                c.running = false;
            }
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.call("remove_container", id)?;
        if let Some(id) = self.find(id) {
            self.containers.lock().unwrap().remove(&id);
        }
        Ok(())
    }

    async fn logs_tail(&self, id: &str, _lines: usize) -> Result<String> {
        self.call("logs_tail", id)?;
        Ok(String::new())
    }

    async fn upload_archive(&self, id: &str, dir: &str, _tar: Vec<u8>) -> Result<()> {
        self.call("upload_archive", &format!("{id} {dir}"))
    }

    async fn download_archive(&self, id: &str, path: &str) -> Result<Vec<u8>> {
        self.call("download_archive", &format!("{id} {path}"))?;
        Ok(Vec::new())
    }

    async fn exec(&self, id: &str, command: &[String]) -> Result<(i64, String)> {
        self.call("exec", &format!("{id} {}", command.join(" ")))?;
        Ok((0, String::new()))
    }

    async fn list_labelled(&self, key: &str) -> Result<Vec<Labelled>> {
        self.call("list_labelled", key)?;
        Ok(self
            .containers
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, c)| {
                Some(Labelled {
                    id: id.clone(),
                    name: c.name.clone(),
                    label_value: c.labels.get(key)?.clone(),
                })
            })
            .collect())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        self.call("create_network", &spec.name)?;
        let mut networks = self.networks.lock().unwrap();
        if networks.contains_key(&spec.name) {
            return Err(Error::docker(
                "create_network",
                409,
                format!("network {} exists", spec.name),
            ));
        }
        networks.insert(spec.name.clone(), spec.labels.clone());
        Ok(())
    }

    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: &[String],
    ) -> Result<()> {
        self.call(
            "connect_network",
            &format!("{network} {container} {}", aliases.join(",")),
        )?;
        if !self.networks.lock().unwrap().contains_key(network) {
            return Err(Error::docker(
                "connect_network",
                404,
                format!("no network {network}"),
            ));
        }
        if let Some(id) = self.find(container) {
            if let Some(c) = self.containers.lock().unwrap().get_mut(&id) {
                c.networks.push(network.to_string());
            }
        }
        Ok(())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<()> {
        self.call("create_volume", &spec.name)?;
        self.volumes
            .lock()
            .unwrap()
            .entry(spec.name.clone())
            .or_insert_with(|| spec.labels.clone());
        Ok(())
    }

    async fn remove_resource(&self, kind: ResourceKind, name: &str) -> Result<()> {
        match kind {
            ResourceKind::Network => {
                self.call("remove_network", name)?;
                let attached = self
                    .containers
                    .lock()
                    .unwrap()
                    .values()
                    .any(|c| c.networks.iter().any(|n| n == name));
                if attached {
                    return Err(Error::docker(
                        "remove_network",
                        409,
                        format!("network {name} has active endpoints"),
                    ));
                }
                self.networks.lock().unwrap().remove(name);
            }
            ResourceKind::Volume => {
                self.call("remove_volume", name)?;
                self.volumes.lock().unwrap().remove(name);
            }
        }
        Ok(())
    }

    async fn list_labelled_resources(
        &self,
        kind: ResourceKind,
        key: &str,
    ) -> Result<Vec<LabelledResource>> {
        self.call("list_labelled_resources", &format!("{} {key}", kind.noun()))?;
        let store = match kind {
            ResourceKind::Network => self.networks.lock().unwrap().clone(),
            ResourceKind::Volume => self.volumes.lock().unwrap().clone(),
        };
        Ok(store
            .into_iter()
            .filter(|(_, labels)| labels.contains_key(key))
            .map(|(name, labels)| LabelledResource { name, labels })
            .collect())
    }
}
