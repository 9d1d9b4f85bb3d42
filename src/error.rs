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

    #[error("image {image} was not found in the Docker daemon (pass --pull to pull it from its registry, or build or load it first)")]
    ImageNotFound { image: String },

    #[error("pulling {image} failed: {message} (a registry that wants a login takes --registry-account/--registry-secret or the auths of a docker config, --docker-config-path)")]
    Pull { image: String, message: String },

    #[error("building the fat image {tag} from the Dockerfile failed: {message}\nLast lines of the build output:\n{output}")]
    FatBuild {
        tag: String,
        message: String,
        output: String,
    },

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

    /// An API spec file (`--http-probe-apispec-file`, a probe file's `api_specs`) that is not
    /// a usable OpenAPI/Swagger document.
    #[error(transparent)]
    ApiSpec(#[from] crate::probe::apispec::SpecError),

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

    /// A compose file minify cannot read or run (bad YAML, an unknown service, a key that
    /// changes the run and is not supported, a variable that must be set).
    #[error("compose file {file}: {message}")]
    Compose { file: PathBuf, message: String },

    /// A compose service started as a dependency did not come up as its `depends_on`
    /// condition asks (exited, unhealthy, no healthcheck, timed out).
    #[error("compose service {service} (a dependency) {message}")]
    Dependency { service: String, message: String },

    #[error("verification failed: the slim image {image} answered differently from the original:\n{differences}")]
    VerifyFailed { image: String, differences: String },

    /// A failure, and the failures of the cleanup that ran after it, kept side by side (youki's
    /// `CreateContainerError(run, cleanup)`): the first error decides the exit code, the
    /// cleanup's say what may have been left behind.
    #[error("{error}\n(cleaning up afterwards also failed: {})", join_errors(.cleanup))]
    WithCleanup {
        error: Box<Error>,
        cleanup: Vec<Error>,
    },
}

fn join_errors(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// `work`'s outcome once its cleanup ran: a cleanup failure never hides the first error and
    /// is never dropped either; with no first error, the first cleanup failure is the error.
    pub fn after_cleanup<T>(work: Result<T>, cleanup: Vec<Error>) -> Result<T> {
        let mut cleanup = cleanup;
        match work {
            Ok(value) if cleanup.is_empty() => Ok(value),
            Ok(_) => {
                let first = cleanup.remove(0);
                if cleanup.is_empty() {
                    Err(first)
                } else {
                    Err(Error::WithCleanup {
                        error: Box::new(first),
                        cleanup,
                    })
                }
            }
            Err(error) if cleanup.is_empty() => Err(error),
            Err(error) => Err(Error::WithCleanup {
                error: Box::new(error),
                cleanup,
            }),
        }
    }

    /// The error that decides what happened (the first one, not its cleanup's).
    pub fn primary(&self) -> &Error {
        match self {
            Error::WithCleanup { error, .. } => error.primary(),
            other => other,
        }
    }

    /// Wraps an I/O error with what was being done when it happened.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

impl From<minify_lint::Error> for Error {
    fn from(error: minify_lint::Error) -> Self {
        match error {
            minify_lint::Error::Io { context, source } => Error::Io { context, source },
            minify_lint::Error::File { path, message } => Error::File { path, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(call: &'static str) -> Error {
        Error::Docker {
            call,
            message: "boom".into(),
        }
    }

    #[test]
    fn a_cleanup_failure_is_kept_next_to_the_first_error() {
        let err = Error::after_cleanup::<()>(
            Err(Error::Interrupted),
            vec![docker("remove_container"), docker("sensor")],
        )
        .unwrap_err();
        assert!(matches!(err.primary(), Error::Interrupted));
        let text = err.to_string();
        assert!(text.starts_with("interrupted\n(cleaning up afterwards also failed: Docker API call remove_container failed: boom; Docker API call sensor failed: boom)"), "{text}");
    }

    #[test]
    fn without_a_first_error_the_cleanup_failure_is_the_error() {
        let err = Error::after_cleanup(Ok(1), vec![docker("remove_container")]).unwrap_err();
        assert!(matches!(
            err,
            Error::Docker {
                call: "remove_container",
                ..
            }
        ));
        assert_eq!(Error::after_cleanup(Ok(1), vec![]).unwrap(), 1);
        assert!(matches!(
            Error::after_cleanup::<()>(Err(Error::Interrupted), vec![]).unwrap_err(),
            Error::Interrupted
        ));
    }
}
