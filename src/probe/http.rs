//! Default HTTP probing: readiness by retrying `GET /` with backoff, then a bounded breadth-first
//! crawl of same-origin links (href/src attributes, CSS `url()`), so static sites, templates and
//! linked assets are all exercised.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use reqwest::Url;
use sha2::{Digest, Sha256};

use super::ProbeResult;

/// Bounds of the default crawl.
#[derive(Debug, Clone)]
pub struct CrawlLimits {
    pub max_depth: usize,
    pub max_pages: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        CrawlLimits {
            max_depth: 3,
            max_pages: 100,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// A client for loopback probing: no proxies (the host's `http_proxy` must not capture
/// 127.0.0.1), self-signed certificates accepted.
pub fn client(request_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(request_timeout)
        .build()
        .unwrap_or_default()
}

/// Fetches `url` once and summarises the answer.
pub async fn fetch(
    client: &reqwest::Client,
    target: &str,
    url: &Url,
) -> (ProbeResult, Option<String>) {
    let started = Instant::now();
    let mut result = ProbeResult {
        kind: "http".into(),
        target: target.into(),
        request: format!("GET {}", path_and_query(url)),
        status: None,
        body_sha256: None,
        body_bytes: 0,
        exit_code: None,
        error: None,
        duration_ms: 0,
        operation: None,
    };
    let mut html = None;
    match client.get(url.clone()).send().await {
        Ok(response) => {
            result.status = Some(response.status().as_u16());
            let is_text = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains("html") || ct.contains("css"));
            match response.bytes().await {
                Ok(body) => {
                    result.body_bytes = body.len() as u64;
                    result.body_sha256 = Some(hex::encode(Sha256::digest(&body)));
                    if is_text {
                        html = Some(String::from_utf8_lossy(&body).into_owned());
                    }
                }
                Err(e) => result.error = Some(format!("reading body: {e}")),
            }
        }
        Err(e) => result.error = Some(crate::error::chain(&e)),
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    (result, html)
}

/// Why [`wait_until_answering`] gave up.
#[derive(Debug)]
pub enum WaitError {
    /// The deadline passed; the last attempt's error.
    Timeout(reqwest::Error),
    /// `still_alive` said no.
    Stopped,
}

/// Waits until `base` answers any HTTP response, retrying with exponential backoff until
/// `deadline`. `still_alive` is asked between attempts so a crashed app ends the wait early.
pub async fn wait_until_answering<F, Fut>(
    client: &reqwest::Client,
    base: &Url,
    deadline: Instant,
    mut still_alive: F,
) -> Result<(), WaitError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    // Short and slowly growing: the wait is polled on loopback, where a poll costs nothing
    // and a long backoff step is pure delay once the app is up (nginx: ~0.1 s of 0.36).
    let mut delay = Duration::from_millis(20);
    loop {
        // A short per-attempt timeout: while the container's network comes up, docker's proxy
        // may hold a connection without answering, and a long wait here is pure delay.
        let attempt = client.get(base.clone()).timeout(Duration::from_secs(1));
        let last_error = match attempt.send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() + delay > deadline {
            return Err(WaitError::Timeout(last_error));
        }
        if !still_alive().await {
            return Err(WaitError::Stopped);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_millis(250));
    }
}

/// Crawls from `base` breadth-first, following same-origin links up to the limits.
pub async fn crawl(
    client: &reqwest::Client,
    target: &str,
    base: &Url,
    limits: &CrawlLimits,
) -> Vec<ProbeResult> {
    let mut results = Vec::new();
    let mut seen = BTreeSet::from([base.to_string()]);
    let mut queue = VecDeque::from([(base.clone(), 0usize)]);
    while let Some((url, depth)) = queue.pop_front() {
        if results.len() >= limits.max_pages {
            break;
        }
        let (result, text) = fetch_with_retries(client, target, &url).await;
        results.push(result);
        let Some(text) = text else { continue };
        if depth >= limits.max_depth {
            continue;
        }
        for link in extract_links(&text) {
            let Ok(mut next) = url.join(&link) else {
                continue;
            };
            next.set_fragment(None);
            if next.origin() != base.origin() || !seen.insert(next.to_string()) {
                continue;
            }
            queue.push_back((next, depth + 1));
        }
    }
    results
}

/// Retries connection-level failures (not HTTP error statuses) three times with backoff.
pub async fn fetch_with_retries(
    client: &reqwest::Client,
    target: &str,
    url: &Url,
) -> (ProbeResult, Option<String>) {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        let (result, text) = fetch(client, target, url).await;
        attempt += 1;
        if result.status.is_some() || attempt >= 3 {
            return (result, text);
        }
        tokio::time::sleep(delay).await;
        delay *= 3;
    }
}

/// Link targets in HTML (`href=`, `src=`) and CSS (`url(...)`), in document order.
pub fn extract_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let lower = text.to_ascii_lowercase();
    for marker in ["href=", "src=", "url("] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(marker) {
            let start = from + pos + marker.len();
            from = start;
            let rest = &text[start..];
            let (quoted, body) = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => (Some(q), &rest[1..]),
                _ => (None, rest),
            };
            let end = body
                .find(|c: char| match quoted {
                    Some(q) => c == q,
                    None => c.is_whitespace() || c == '>' || c == ')',
                })
                .unwrap_or(body.len());
            let link = body[..end].trim();
            let skip = link.is_empty()
                || link.starts_with('#')
                || ["javascript:", "mailto:", "data:", "tel:"]
                    .iter()
                    .any(|scheme| link.to_ascii_lowercase().starts_with(scheme));
            if !skip {
                links.push(link.to_string());
            }
        }
    }
    links
}

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_quoted_unquoted_and_css_links_but_not_fragments_or_scripts() {
        let html = r##"<a href="/a.html">a</a> <img SRC='img/b.png'> <a href=c.html>c</a>
            <a href="#top">x</a> <a href="javascript:void(0)">y</a>
            <style>body { background: url(/bg.png) }</style>"##;
        assert_eq!(
            extract_links(html),
            vec!["/a.html", "c.html", "img/b.png", "/bg.png"]
        );
    }

    #[tokio::test]
    async fn crawl_stays_on_origin_and_respects_page_limit() {
        use crate::testkit::http::{serve, Reply};
        let port = serve(0, |request| {
            let body = match request.path.as_str() {
                "/" => r#"<a href="/one">1</a><a href="http://example.com/x">ext</a><a href="/two#frag">2</a>"#.to_string(),
                "/one" => r#"<a href="/">home</a><a href="/deep/three">3</a>"#.to_string(),
                path => format!("page {path}"),
            };
            Reply::html(&body)
        })
        .await;
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let client = client(Duration::from_secs(5));
        let results = crawl(&client, "80/tcp", &base, &CrawlLimits::default()).await;
        let requests: Vec<_> = results.iter().map(|r| r.request.as_str()).collect();
        assert_eq!(
            requests,
            vec!["GET /", "GET /one", "GET /two", "GET /deep/three"]
        );
        assert!(results.iter().all(|r| r.status == Some(200)));

        let limited = CrawlLimits {
            max_pages: 2,
            ..CrawlLimits::default()
        };
        assert_eq!(crawl(&client, "80/tcp", &base, &limited).await.len(), 2);
    }
}
