//! Typed errors of the library. Every variant carries the context a user needs to act on it;
//! `main` turns them into a one-paragraph message and an exit code.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid usage: {0}")]
    Usage(String),

    #[error("cannot reach the Docker daemon at {endpoint}: {message}. Is dockerd running and is DOCKER_HOST right?")]
    DaemonUnreachable { endpoint: String, message: String },

    #[error("image {image} was not found in the Docker daemon (minify never pulls: build or load it first)")]
    ImageNotFound { image: String },

    #[error("Docker API call {call} failed: {message}")]
    Docker { call: &'static str, message: String },

    #[error("malformed image archive ({context}): {message}")]
    Archive { context: String, message: String },

    #[error("the kernel sensor could not start: {message}. {hint}")]
    Sensor { message: String, hint: String },

    #[error("container {container} exited (code {exit_code}) before it was ready.\nLast log lines:\n{logs}")]
    ContainerExited {
        container: String,
        exit_code: i64,
        logs: String,
    },

    #[error("probe failed: {message}")]
    Probe { message: String },

    #[error("interrupted")]
    Interrupted,

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    /// The in-container (ptrace) sensor cannot wrap the image or its findings are unusable.
    #[error("the in-container sensor failed: {message}")]
    InContainerSensor { message: String },

    #[error("verification failed: the slim image {image} answered differently from the original:\n{differences}")]
    VerifyFailed { image: String, differences: String },
}

impl Error {
    /// Wraps an I/O error with what was being done when it happened.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
