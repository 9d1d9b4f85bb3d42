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
