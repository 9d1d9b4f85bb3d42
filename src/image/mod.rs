//! Image plumbing, layered like go-containerregistry:
//! - sources ([`source`]): a daemon's `docker save` stream or a tarball on disk, read once and
//!   spooled layer by layer to a temp dir ([`archive`]) so nothing holds the image in RAM;
//! - one layer-tar member decoder ([`layer`]) for every reader of layers, build's and xray's;
//! - pure transforms: [`flatten`] (layers → one filesystem [`index`], whiteouts applied),
//!   [`retain`] (keep only chosen paths), [`perms`] (docker-slim's `--path-perms` on them),
//!   [`config`] (carry the source config over);
//! - sinks ([`sink`]): a single-layer docker-archive, streamed into the daemon's load endpoint;
//! - [`fs::ImageFs`]: a spooled image plus its index, readable path by path through
//!   [`view::ImageView`] (what [`crate::closure`] inspects and the sink copies from).

pub mod archive;
pub mod config;
pub mod flatten;
pub mod fs;
pub mod index;
pub mod layer;
pub mod layerstore;
pub mod manifest;
pub mod perms;
pub mod retain;
pub mod sink;
pub mod source;
pub mod view;

pub use archive::{spool_docker_archive, spool_tarball, SpooledImage};
pub use config::{slim_config, RunConfig};
pub use flatten::{flatten, flatten_with_warnings, FlattenWarning};
pub use fs::ImageFs;
pub use index::{ContentRef, Entry, EntryKind, FsIndex};
pub use retain::retain;
pub use sink::{
    write_docker_archive, write_docker_archive_tagged, write_layer, write_layer_file, LayerInfo,
};
pub use view::ImageView;
