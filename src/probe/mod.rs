//! Probes: drive the running container through its real paths so the sensor sees them.
//!
//! Default probing ([`http`]) waits for each exposed TCP port to answer HTTP, then crawls
//! same-origin links from `/`. Each probe yields a [`ProbeResult`] that the report keeps and that
//! verification compares between the original and the slim image. [`apispec`] turns an
//! OpenAPI/Swagger document into one request per operation.

pub mod apispec;
pub mod config;
pub mod http;
pub mod session;
pub mod slim;

pub use session::ReadyError;

use serde::{Deserialize, Serialize};

/// The outcome of one probe, comparable across runs of the original and the slim image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// `http`, `tcp`, `exec`, ...
    pub kind: String,
    /// Container port (`80/tcp`) or command the probe targeted.
    pub target: String,
    /// What was asked, e.g. `GET /index.html`.
    pub request: String,
    pub status: Option<u16>,
    pub body_sha256: Option<String>,
    pub body_bytes: u64,
    /// Exit code of exec and host probes.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Why the probe failed: no answer, or an expectation of the probe file not met.
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The API spec operation this request exercised (`--http-probe-apispec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// Which operation of which API spec a request was generated for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The spec's file, or `GET PATH` on the port it was fetched from.
    pub spec: String,
    pub method: String,
    /// The path as the spec writes it (`/items/{itemId}`).
    pub path: String,
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}
