//! The unit tests' one loopback HTTP server: it reads each request whole (headers, then as much
//! body as Content-Length says) and answers what the test's handler says, including the ways
//! real ports misbehave: closing without an answer, holding the connection silently, answering
//! another protocol.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET /path HTTP/1.1`.
    pub line: String,
    /// The request target of the line.
    pub path: String,
    /// The body, as much as Content-Length said.
    pub body: Vec<u8>,
}

/// What the server does with a request.
pub enum Reply {
    /// These bytes, then close.
    Raw(Vec<u8>),
    /// Nothing; the connection stays open for a minute.
    Hold,
    /// Close the connection without a word.
    Close,
}

impl Reply {
    /// `200 OK` with `body` and its Content-Length, no Content-Type.
    pub fn ok(body: &str) -> Reply {
        Self::ok_with("", body)
    }

    /// `200 OK` with `body` as `text/html`.
    pub fn html(body: &str) -> Reply {
        Self::ok_with("content-type: text/html\r\n", body)
    }

    fn ok_with(headers: &str, body: &str) -> Reply {
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// Starts a server on a loopback port and returns the port. The first `closed_first`
/// connections are closed unanswered (Docker's proxy with nothing listening behind it); every
/// later request gets `handler`'s reply.
pub async fn serve<F>(closed_first: usize, handler: F) -> u16
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        let mut seen = 0usize;
        while let Ok((mut stream, _)) = listener.accept().await {
            seen = seen.saturating_add(1);
            if seen <= closed_first {
                continue;
            }
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else {
                    return;
                };
                match handler(request) {
                    Reply::Raw(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                    }
                    Reply::Hold => tokio::time::sleep(Duration::from_secs(60)).await,
                    Reply::Close => {}
                }
            });
        }
    });
    port
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let body_start = loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..body_start]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while raw.len() < body_start + length {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let line = head.lines().next().unwrap_or("").to_string();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    Some(Request {
        line,
        path,
        body: raw[body_start..].to_vec(),
    })
}
