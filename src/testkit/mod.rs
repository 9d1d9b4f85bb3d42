//! Test plumbing shared by every unit test (compiled only for `cargo test`): the skip-or-fail
//! rule for missing facilities, the layer and image-archive builders, and a loopback HTTP
//! server. `ci.rs` and `layers.rs` are also included by the end-to-end tests' `tests/common`,
//! so there is one copy of each.

pub mod ci;
pub mod http;
pub mod layers;

pub use ci::require;
pub use layers::{gzip, layer_tar, write_layers, DockerArchive, LayerBuilder};
