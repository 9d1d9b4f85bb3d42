//! minify: make container images small by watching what they really use.
//!
//! The pipeline reads left to right through the modules:
//! [`image`] source → [`run`] the container → [`sense`] its file accesses → [`probe`] it →
//! [`closure`] of what it needs → [`image`] sink → [`report`].
//! [`pipeline`] strings them together; `main.rs` and [`cli`] only parse flags and print.

pub mod cli;
pub mod closure;
pub mod docker;
pub mod error;
pub mod image;
pub mod lint;
pub mod pipeline;
pub mod probe;
pub mod report;
pub mod run;
pub mod seccomp;
pub mod sense;
pub mod sys;
pub mod verify;
pub mod xray;

pub use error::{Error, Result};
