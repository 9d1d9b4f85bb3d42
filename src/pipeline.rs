//! `minify build` end to end (pending the image and closure modules).

use std::path::PathBuf;
use std::time::Duration;

use crate::probe::http::CrawlLimits;

/// Everything `minify build` needs, already validated.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub image: String,
    pub tag: String,
    pub report_path: PathBuf,
    pub continue_after: Option<Duration>,
    pub ready_timeout: Duration,
    pub stop_timeout_secs: i64,
    pub crawl: CrawlLimits,
}

/// Temporary until the image and closure modules land: keeps the binary compiling.
pub async fn build<D: crate::docker::DockerApi>(
    _docker: &D,
    _options: &BuildOptions,
    _phase: &dyn Fn(&str),
) -> crate::Result<crate::report::Report> {
    Err(crate::Error::Usage("build is not wired up yet".into()))
}
