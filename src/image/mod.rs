//! Image plumbing, layered like go-containerregistry:
//! - sources ([`source`]): a daemon's `docker save` stream or a tarball on disk, read once and
//!   spooled layer by layer to a temp dir ([`archive`]) so nothing holds the image in RAM;
//! - pure transforms: [`flatten`] (layers → one filesystem [`index`], whiteouts applied),
//!   [`retain`] (keep only chosen paths), [`config`] (carry the source config over);
//! - sinks ([`sink`]): a single-layer docker-archive, streamed into the daemon's load endpoint.

pub mod archive;
pub mod config;
pub mod flatten;
pub mod index;
pub mod retain;
pub mod sink;
pub mod source;

pub use index::{ContentRef, Entry, EntryKind, FsIndex};
