//! A scripted [`DockerApi`] for unit tests, as youki fakes its `Syscall`: it records every call,
//! keeps containers in memory, can make any call fail, and can make `create_container` take
//! time (to test what happens when a run is interrupted while a create is in flight).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::docker::{ContainerSpec, ContainerState, DockerApi, ImageSummary, Labelled};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
}

#[derive(Debug, Default)]
pub struct FakeDocker {
    /// Container id → container (shared with the "daemon side" of slow creates).
    pub containers: std::sync::Arc<Mutex<BTreeMap<String, FakeContainer>>>,
    /// Every call, as `name arg`.
    pub calls: Mutex<Vec<String>>,
    /// Calls (by name: `create_container`, `remove_container`, ...) that fail.
    pub failing: BTreeSet<&'static str>,
    /// How long `create_container` takes; the container exists only once it returns, as in the
    /// daemon (which finishes a create even when the client went away).
    pub create_delay: Duration,
    /// Every spec `create_container` was given, in order.
    pub specs: Mutex<Vec<ContainerSpec>>,
}

impl FakeDocker {
    fn call(&self, name: &'static str, arg: &str) -> Result<()> {
        self.calls.lock().unwrap().push(format!("{name} {arg}"));
        if self.failing.contains(name) {
            return Err(Error::Docker {
                call: name,
                message: format!("scripted failure of {name}"),
            });
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
        Err(Error::ImageNotFound {
            image: image.to_string(),
        })
    }

    fn save_image(&self, image: &str) -> BoxStream<'static, std::io::Result<Bytes>> {
        let _ = self.call("save_image", image);
        Box::pin(futures_util::stream::empty())
    }

    async fn load_image(&self, archive: &Path) -> Result<()> {
        self.call("load_image", &archive.display().to_string())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.call("remove_image", image)
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
            self.containers
                .lock()
                .unwrap()
                .get_mut(&id)
                .map(|c| c.running = true)
        }) {
            Some(()) => Ok(()),
            None => Err(Error::Docker {
                call: "start_container",
                message: format!("no container {id}"),
            }),
        }
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        self.call("inspect_container", id)?;
        let running = self
            .find(id)
            .and_then(|id| self.containers.lock().unwrap().get(&id).map(|c| c.running))
            .unwrap_or(false);
        Ok(ContainerState {
            running,
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
}
