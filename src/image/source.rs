//! Image sources: where an image's bytes come from. The local daemon's layer store
//! ([`super::layerstore`]) is read in place; a `docker save`-format stream or tarball is read
//! once and spooled layer by layer to disk ([`super::archive`]). None holds the image in memory.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::archive::{self, SpooledImage};
use super::flatten::FlattenWarning;
use super::fs::ImageFs;
use crate::docker::DockerApi;
use crate::{Error, Result};

/// The byte stream of a `docker save`.
pub type SaveStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Streams `docker save IMAGE` from the daemon into a spooled image.
pub async fn from_daemon<D: DockerApi>(
    docker: &D,
    image: &str,
    work_dir: Option<PathBuf>,
) -> Result<SpooledImage> {
    from_stream(docker.save_image(image), work_dir).await
}

/// Spools a `docker save` byte stream (owned, so it can run in a task of its own).
pub async fn from_stream(stream: SaveStream, work_dir: Option<PathBuf>) -> Result<SpooledImage> {
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    tokio::task::spawn_blocking(move || archive::spool_docker_archive(reader, work_dir.as_deref()))
        .await
        .map_err(Error::task("reading the image from the daemon"))?
}

/// Reads a `docker save` tarball from disk.
pub fn from_tarball(path: &Path) -> Result<SpooledImage> {
    archive::spool_tarball(path)
}

/// The flattened image `id`: from the layer store under `store` when it holds the image with
/// its files on disk, else from `save` (a `docker save` stream, only started then), spooled into
/// `spool_dir`. Anything odd about the store falls back to `docker save`, which still gives the
/// true image.
pub async fn read_flattened(
    store: Option<PathBuf>,
    id: String,
    repo_tags: Vec<String>,
    save: SaveStream,
    spool_dir: PathBuf,
) -> Result<(ImageFs, Vec<FlattenWarning>)> {
    if let Some(root) = store {
        let read =
            tokio::task::spawn_blocking(move || match super::layerstore::locate(&root, &id) {
                Some(stored) => ImageFs::from_store(stored, repo_tags),
                None => Ok(None),
            })
            .await
            .map_err(Error::task("reading the layer store"))?;
        match read {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("the layer store could not be read ({e}); reading `docker save`")
            }
        }
    }
    let image = from_stream(save, Some(spool_dir)).await?;
    tokio::task::spawn_blocking(move || ImageFs::new(image))
        .await
        .map_err(Error::task("flattening the image"))?
}
