//! Image sources: where an image's bytes come from. Both read a `docker save`-format stream once
//! and spool its layers to disk ([`super::archive`]); neither holds the image in memory.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::archive::{self, SpooledImage};
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
        .map_err(|e| Error::Archive {
            context: "reading the image from the daemon".into(),
            message: e.to_string(),
        })?
}

/// Reads a `docker save` tarball from disk.
pub fn from_tarball(path: &Path) -> Result<SpooledImage> {
    archive::spool_tarball(path)
}
