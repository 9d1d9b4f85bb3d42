//! Typed errors of the library. Every variant carries the context a user needs to act on it;
//! `main` turns them into a one-paragraph message and an exit code.
//!
//! A failure of a dependency (the Docker API, I/O, JSON, a task, the probe's wait) is kept as
//! its typed `#[source]`, never flattened into a string, so callers can match on it (a 404 from
//! the daemon, an `io::ErrorKind`). Strings are only for minify's own words: a usage message, a
//! format violation it found, the daemon's text of a streamed pull/build error. Each variant's
//! message also says its source's, because the message is what lands in warnings, reports and
//! logs; so [`Error::paragraph`] (what `main` prints) does not walk the source chain again.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid usage: {0}")]
    Usage(String),

    #[error("cannot reach the Docker daemon at {endpoint}: {}. Is dockerd running and is DOCKER_HOST right?", chain(.source))]
    DaemonUnreachable {
        endpoint: String,
        #[source]
        source: bollard::errors::Error,
    },

    /// `DOCKER_HOST` names a daemon in a form minify cannot connect to.
    #[error(
        "cannot reach the Docker daemon at {endpoint}: expected {expected}. Is DOCKER_HOST right?"
    )]
    BadDockerHost {
        endpoint: String,
        expected: &'static str,
    },

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

    #[error("Docker API call {call} failed: {}", chain(.source))]
    Docker {
        call: &'static str,
        #[source]
        source: bollard::errors::Error,
    },

    /// An image archive or layer that breaks a rule minify checks (a bad digest, a missing
    /// member, a path escaping the root): `message` says which, in minify's words.
    #[error("malformed image archive ({context}): {message}")]
    Archive { context: String, message: String },

    /// The tar reader failed on an image archive or layer (a truncated or corrupt header).
    #[error("malformed image archive ({context}): {source}")]
    Tar {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// An image archive's JSON member (manifest, config) that does not parse.
    #[error("malformed image archive ({member}): {source}")]
    ArchiveJson {
        member: String,
        #[source]
        source: serde_json::Error,
    },

    /// A document minify reads or writes is not the JSON it should be (a report, an SBOM, an
    /// image config, a seccomp profile).
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },

    /// A task minify runs beside the pipeline (a blocking read of the image, a writer) panicked
    /// or was cancelled: a bug in minify, not in the image.
    #[error("{context}: an internal task failed ({source}; a bug in minify)")]
    Task {
        context: String,
        #[source]
        source: tokio::task::JoinError,
    },

    #[error("the kernel sensor could not start: {message}. {hint}")]
    Sensor { message: String, hint: String },

    /// The kernel (through aya) refused a step of starting the eBPF sensor. aya puts the errno
    /// and the verifier log in its errors' sources, so the message says the whole chain.
    #[error("the kernel sensor could not start: {context}: {}. {hint}", chain(.source.as_ref()))]
    Kernel {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        hint: String,
    },

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

    /// A container's ports never got ready for the probes (it still runs: one that exited is
    /// [`Error::ContainerExited`]).
    #[error("probe failed: {}{source}{}", image_prefix(.image), logs_suffix(.logs))]
    NotReady {
        /// The image, when more than one is run (`minify verify`).
        image: Option<String>,
        #[source]
        source: crate::probe::ReadyError,
        /// The container's last log lines (empty when not read).
        logs: String,
    },

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

/// `error` and each of its sources, joined by `: ` (for dependencies whose Display leaves the
/// cause to the source: aya's errno, reqwest's and hyper's connection error). A source whose
/// text the message already ends with is not repeated: some errors (bollard's hyper error)
/// both say their source and return it.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn image_prefix(image: &Option<String>) -> String {
    image.as_ref().map(|i| format!("{i}: ")).unwrap_or_default()
}

fn logs_suffix(logs: &str) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!("\nLast log lines:\n{logs}")
    }
}

fn join_errors(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The paragraph `main` prints: the message, which already says its sources' (see the
    /// module doc), so the source chain is not repeated after it.
    pub fn paragraph(&self) -> String {
        self.to_string()
    }

    /// A failed Docker API call, as the daemon would answer it (for fakes and for calls whose
    /// failure minify detects itself, such as a load that returned no image id).
    pub fn docker(call: &'static str, status_code: u16, message: impl Into<String>) -> Error {
        Error::Docker {
            call,
            source: bollard::errors::Error::DockerResponseServerError {
                status_code,
                message: message.into(),
            },
        }
    }

    /// Whether the image archive or a layer is itself bad (a rule broken, the tar reader's or
    /// JSON parser's error on it), not the machine or the daemon.
    pub fn is_malformed_archive(&self) -> bool {
        matches!(
            self,
            Error::Archive { .. } | Error::Tar { .. } | Error::ArchiveJson { .. }
        )
    }

    /// Wraps the JSON error of an image archive's member.
    pub fn archive_json(member: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let member = member.into();
        move |source| Error::ArchiveJson { member, source }
    }

    /// Wraps a JSON error with what was being read or written.
    pub fn json(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let context = context.into();
        move |source| Error::Json { context, source }
    }

    /// Wraps a tar reader's error with the archive or layer it was reading.
    pub fn tar(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Tar { context, source }
    }

    /// Wraps a failed task's join error with what the task was doing.
    pub fn task(context: impl Into<String>) -> impl FnOnce(tokio::task::JoinError) -> Error {
        let context = context.into();
        move |source| Error::Task { context, source }
    }

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
        Error::docker(call, 500, "boom")
    }

    /// An error that says its source in its message and returns it too, as bollard's hyper
    /// error does.
    #[derive(Debug, thiserror::Error)]
    #[error("client failed: {0}")]
    struct SaysItsSource(#[source] std::io::Error);

    #[test]
    fn chain_says_every_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(chain(&SaysItsSource(refused)), "client failed: refused");
        let inner = Error::Io {
            context: "connecting".into(),
            source: std::io::Error::other("refused"),
        };
        let outer = Error::Kernel {
            context: "loading".into(),
            source: Box::new(inner),
            hint: "hint".into(),
        };
        assert_eq!(
            outer.paragraph(),
            "the kernel sensor could not start: loading: connecting: refused. hint"
        );
    }

    #[test]
    fn the_paragraph_keeps_the_typed_source_and_says_it_once() {
        let err = Error::docker("create container", 409, "name in use");
        assert_eq!(
            err.paragraph(),
            "Docker API call create container failed: Docker responded with status code 409: name in use"
        );
        let Error::Docker {
            source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(*status_code, 409);
        assert!(std::error::Error::source(&err).is_some());
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
        assert!(text.starts_with("interrupted\n(cleaning up afterwards also failed: Docker API call remove_container failed: Docker responded with status code 500: boom; Docker API call sensor failed: Docker responded with status code 500: boom)"), "{text}");
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
