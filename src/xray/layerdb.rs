//! `xray`'s fast path for images in a LOCAL daemon: the layer store
//! ([`crate::image::layerstore`]) replayed header by header instead of `docker save`, with the
//! tar-split CRCs as content fingerprints for duplicate detection. Anything unexpected makes
//! [`read_layer_store`] return `Ok(None)`; the caller then falls back to the `docker save` stream.

use std::path::Path;

use super::scan::{scan_layer, HashPolicy, Kind};
use super::source::RawImage;
use crate::image::layerstore::{self, open_split};
use crate::Result;

pub use crate::image::layerstore::docker_root;

/// Reads image `id` (`sha256:…`) from the local layer store, or `None` to fall back.
pub fn read_layer_store(
    root: &Path,
    id: &str,
    repo_tags: Vec<String>,
    min_hash_size: u64,
) -> Result<Option<RawImage>> {
    let Some(stored) = layerstore::locate(root, id) else {
        return Ok(None);
    };
    let mut image = RawImage {
        source: stored.describe(),
        config: stored.config,
        repo_tags,
        id: id.to_string(),
        ..RawImage::default()
    };
    for layer in stored.layers {
        let Ok(mut split) = open_split(&layer.tar_split) else {
            return Ok(None);
        };
        let scanned = scan_layer(
            &mut split,
            &layer.diff_id,
            HashPolicy::Skip,
            &mut image.warnings,
        );
        let mut scan = match scanned {
            Ok(scan) => scan,
            Err(e) => {
                tracing::debug!(layer = layer.diff_id, error = %e, "layer store unreadable; falling back");
                return Ok(None);
            }
        };
        for entry in &mut scan.entries {
            if entry.kind == Kind::File && entry.size >= min_hash_size {
                entry.hash = split.crcs().get(&*entry.path).copied();
            }
        }
        image.layers.push((layer.diff_id, scan));
    }
    Ok(Some(image))
}
