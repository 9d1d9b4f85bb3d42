//! minify: make container images small and safe by watching what they really use.
//!
//! `minify build` reads left to right through the modules:
//! [`acquire`] the source image (there, pulled or built) → [`image`] source → [`run`] the
//! container → [`sense`] its file accesses → [`probe`] it → [`closure`] of what it needs → [`image`] sink → [`report`], with [`verify`] replaying the
//! probes against the slim image and [`seccomp`] turning the syscalls seen into a profile.
//! [`pipeline`] strings them together; [`compose`] starts a compose target's dependencies. Beside it: [`xray`] analyses an image layer by layer and
//! [`lint`] audits Dockerfiles. `main.rs` and [`cli`] only parse flags and print; [`docker`] is
//! the one narrow trait over the Docker API and [`sys`] holds the raw kernel interfaces.

pub mod acquire;
pub mod cli;
pub mod closure;
pub mod compose;
pub mod docker;
pub mod error;
pub mod image;
pub mod packages;
pub mod pipeline;
pub mod probe;
pub mod report;
pub mod run;
pub mod sbom;
pub mod seccomp;
pub mod sense;
pub mod surface;
pub mod sys;
#[cfg(test)]
pub(crate) mod testkit;
pub mod verify;
pub mod xray;

pub use error::{Error, Result};
/// `minify lint` lives in a crate of its own (`crates/minify-lint`) that builds without the
/// BPF toolchain; re-exported so paths stay `minify::lint::…`.
pub use minify_lint as lint;
