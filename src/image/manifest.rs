//! Which members of an image archive make the image: `manifest.json` of a `docker save`, or
//! `index.json` of an OCI layout (nested indexes followed a few hops). Shared by the spooling
//! reader ([`super::archive`]) and xray's streaming reader, which hold members differently and
//! so hand in a JSON reader.

use serde_json::Value;

use crate::{Error, Result};

/// The config and layer members of the first image in an archive, as normalised member names
/// (`/<id>/layer.tar`, `/blobs/sha256/<hex>`), with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRefs {
    pub config: String,
    pub layers: Vec<String>,
    pub repo_tags: Vec<String>,
}

/// A rule of the archive format broken, in minify's words (a reader's own error is kept typed:
/// [`Error::tar`], [`Error::json`]).
pub(crate) fn archive_error(context: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Archive {
        context: context.into(),
        message: message.into(),
    }
}

/// Finds the image of an archive. `has` tells whether a member exists, `read_json` parses one.
pub fn image_refs(
    has: impl Fn(&str) -> bool,
    read_json: impl Fn(&str) -> Result<Value>,
) -> Result<ImageRefs> {
    if has("/manifest.json") {
        docker_manifest_refs(&read_json("/manifest.json")?)
    } else if has("/index.json") {
        oci_index_refs(&read_json("/index.json")?, read_json)
    } else {
        Err(archive_error(
            "image archive",
            "no manifest.json or index.json found: not a docker save / OCI archive, or truncated",
        ))
    }
}

fn reference_name(reference: &str) -> Result<String> {
    crate::image::flatten::normalize_path(reference)
        .filter(|name| name != "/")
        .ok_or_else(|| archive_error("manifest", format!("bad member reference {reference:?}")))
}

fn docker_manifest_refs(manifest: &Value) -> Result<ImageRefs> {
    let first = manifest
        .as_array()
        .and_then(|images| images.first())
        .ok_or_else(|| archive_error("manifest.json", "expected a non-empty array of images"))?;
    let config = first
        .get("Config")
        .and_then(Value::as_str)
        .ok_or_else(|| archive_error("manifest.json", "image without a Config"))?;
    let layers = first
        .get("Layers")
        .and_then(Value::as_array)
        .ok_or_else(|| archive_error("manifest.json", "image without Layers"))?
        .iter()
        .map(|layer| {
            layer
                .as_str()
                .ok_or_else(|| archive_error("manifest.json", "a layer reference is not a string"))
                .and_then(reference_name)
        })
        .collect::<Result<Vec<_>>>()?;
    let repo_tags = first
        .get("RepoTags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(ImageRefs {
        config: reference_name(config)?,
        layers,
        repo_tags,
    })
}

/// `sha256:<hex>` → `/blobs/sha256/<hex>`, refusing digests that could escape the blob dir.
pub fn blob_name(digest: &str) -> Result<String> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| archive_error("index.json", format!("bad digest {digest:?}")))?;
    let clean = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !clean(algorithm) || !clean(hex) {
        return Err(archive_error(
            "index.json",
            format!("bad digest {digest:?}"),
        ));
    }
    Ok(format!("/blobs/{algorithm}/{hex}"))
}

fn descriptor_digest<'a>(descriptor: &'a Value, what: &str) -> Result<&'a str> {
    descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| archive_error(what.to_string(), "descriptor without a digest"))
}

fn oci_index_refs(index: &Value, read_json: impl Fn(&str) -> Result<Value>) -> Result<ImageRefs> {
    let mut descriptor = index
        .get("manifests")
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .ok_or_else(|| archive_error("index.json", "no manifests"))?
        .clone();
    let repo_tags = descriptor
        .pointer("/annotations/io.containerd.image.name")
        .or_else(|| descriptor.pointer("/annotations/org.opencontainers.image.ref.name"))
        .and_then(Value::as_str)
        .map(|tag| vec![tag.to_string()])
        .unwrap_or_default();
    // A nested index (multi-platform) points at further indexes; a few hops at most.
    for _ in 0..4 {
        let name = blob_name(descriptor_digest(&descriptor, "index.json")?)?;
        let manifest = read_json(&name)?;
        if let Some(nested) = manifest
            .get("manifests")
            .and_then(Value::as_array)
            .and_then(|m| m.first())
        {
            descriptor = nested.clone();
            continue;
        }
        let config_digest = manifest
            .get("config")
            .ok_or_else(|| archive_error(name.clone(), "manifest without a config"))
            .and_then(|c| descriptor_digest(c, &name))?;
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| archive_error(name.clone(), "manifest without layers"))?
            .iter()
            .map(|layer| descriptor_digest(layer, &name).and_then(blob_name))
            .collect::<Result<Vec<_>>>()?;
        return Ok(ImageRefs {
            config: blob_name(config_digest)?,
            layers,
            repo_tags,
        });
    }
    Err(archive_error("index.json", "index nesting too deep"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_and_oci_layouts_name_the_same_kind_of_members() {
        let manifest = serde_json::json!([{"Config": "abc.json", "RepoTags": ["a:1"], "Layers": ["l1/layer.tar"]}]);
        let refs = image_refs(|n| n == "/manifest.json", |_| Ok(manifest.clone())).unwrap();
        assert_eq!(refs.config, "/abc.json");
        assert_eq!(refs.layers, vec!["/l1/layer.tar"]);
        assert_eq!(refs.repo_tags, vec!["a:1"]);

        let index = serde_json::json!({"manifests": [{"digest": "sha256:aa"}]});
        let oci = serde_json::json!({"config": {"digest": "sha256:cc"}, "layers": [{"digest": "sha256:ll"}]});
        let refs = image_refs(
            |n| n == "/index.json",
            |n| {
                Ok(if n == "/index.json" {
                    index.clone()
                } else {
                    oci.clone()
                })
            },
        )
        .unwrap();
        assert_eq!(refs.config, "/blobs/sha256/cc");
        assert_eq!(refs.layers, vec!["/blobs/sha256/ll"]);
        assert!(blob_name("sha256:../../x").is_err());
        assert!(image_refs(|_| false, |_| Ok(Value::Null)).is_err());
    }
}
