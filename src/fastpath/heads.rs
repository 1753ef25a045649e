//! The response heads the fast path writes, learned once from the router at start-up, so that
//! the handlers and the CORS layer stay the one place that decides every header: the fast path
//! only replays what the full path would send.
//!
//! hyper adds the framing headers itself (`content-length` or `transfer-encoding: chunked`,
//! then `date`) after the handler's headers; the templates do the same, in the same order.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use tower::ServiceExt as _;

use super::date;

/// An origin no configuration names: used to learn whether `Origin` changes the headers.
const PROBE_ORIGIN: &str = "http://probe.pulse.invalid";

/// A status line and headers, with the per-Snapshot values (`etag`, `content-length`) left open
/// where the handler put them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Header lines (or the status line) sent as they are.
    Text(Vec<u8>),
    /// `etag: <the current ETag>`.
    Etag,
    /// `content-length: <the body's length>`.
    ContentLength,
}

impl Template {
    fn learn(status: StatusCode, headers: &HeaderMap) -> Self {
        let status_line =
            format!("HTTP/1.1 {} {}\r\n", status.as_str(), status.canonical_reason().unwrap_or(""));
        let mut parts = vec![Part::Text(status_line.into_bytes())];
        for (name, value) in headers {
            let slot = match *name {
                header::ETAG => Some(Part::Etag),
                header::CONTENT_LENGTH => Some(Part::ContentLength),
                // hyper writes its own; the template adds them as hyper does.
                header::DATE | header::TRANSFER_ENCODING => continue,
                _ => None,
            };
            if let Some(slot) = slot {
                parts.push(slot);
                continue;
            }
            if !matches!(parts.last(), Some(Part::Text(_))) {
                parts.push(Part::Text(Vec::new()));
            }
            if let Some(Part::Text(out)) = parts.last_mut() {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        Template { parts }
    }

    /// Appends the head, with `etag`, the body's framing and `date` as hyper adds them, up to and
    /// including the blank line.
    fn put(&self, out: &mut Vec<u8>, etag: &[u8], framing: Framing) {
        let mut length_written = false;
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text),
                Part::Etag => {
                    out.extend_from_slice(b"etag: ");
                    out.extend_from_slice(etag);
                    out.extend_from_slice(b"\r\n");
                }
                Part::ContentLength => {
                    if let Framing::Length(n) = framing {
                        put_content_length(out, n);
                        length_written = true;
                    }
                }
            }
        }
        match framing {
            Framing::Length(n) if !length_written => put_content_length(out, n),
            Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        out.extend_from_slice(b"date: ");
        date::put(out);
        out.extend_from_slice(b"\r\n\r\n");
    }
}

fn put_content_length(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"content-length: ");
    put_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// How the body is delimited, as hyper would write it.
#[derive(Clone, Copy, Debug)]
pub enum Framing {
    Length(usize),
    Chunked,
    /// No body and no length (304).
    None,
}

/// Every head the fast path sends.
#[derive(Debug, Clone)]
pub struct Heads {
    count: Template,
    not_modified: Template,
    stream: Template,
    /// Whether a request's `Origin` changes any of them (a `--cors-origin` list): such requests
    /// then take the full path, which checks the origin.
    pub origin_sensitive: bool,
}

impl Heads {
    /// Asks the router for `/api/count` (plain and conditional) and `/api/stream`, without an
    /// `Origin`, then with an unknown one and with each of `origins` (the `--cors-origin` list),
    /// and keeps the heads without. `None` when the router does not answer them as expected;
    /// the fast path is then off and every request takes the full path.
    pub async fn learn(router: &Router, origins: &[HeaderValue]) -> Option<Heads> {
        let plain = Self::learn_with(router, None).await?;
        let mut origin_sensitive = false;
        let probes = std::iter::once(HeaderValue::from_static(PROBE_ORIGIN));
        for origin in probes.chain(origins.iter().cloned()) {
            origin_sensitive |= Self::learn_with(router, Some(origin)).await? != plain;
        }
        let (count, not_modified, stream) = plain;
        Some(Heads { count, not_modified, stream, origin_sensitive })
    }

    async fn learn_with(
        router: &Router,
        origin: Option<HeaderValue>,
    ) -> Option<(Template, Template, Template)> {
        let count = ask(router, "/api/count", origin.clone(), None).await?;
        // `*` matches whatever the current ETag is, so a change meanwhile cannot spoil the 304.
        let not_modified = ask(router, "/api/count", origin.clone(), Some("*")).await?;
        let stream = ask(router, "/api/stream", origin, None).await?;
        let expected = [
            (&count, StatusCode::OK, "application/json"),
            (&not_modified, StatusCode::NOT_MODIFIED, ""),
            (&stream, StatusCode::OK, "text/event-stream"),
        ];
        for (head, status, content_type) in expected {
            let got = head.1.get(header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
            if head.0 != status || got != content_type.as_bytes() {
                tracing::warn!(?head, "unexpected answer while learning heads; fast path off");
                return None;
            }
        }
        Some((
            Template::learn(count.0, &count.1),
            Template::learn(not_modified.0, &not_modified.1),
            Template::learn(stream.0, &stream.1),
        ))
    }

    /// `200` with the Snapshot JSON: head and body.
    pub fn put_count(&self, out: &mut Vec<u8>, etag: &[u8], json: &[u8]) {
        self.count.put(out, etag, Framing::Length(json.len()));
        out.extend_from_slice(json);
    }

    /// `304 Not Modified`.
    pub fn put_not_modified(&self, out: &mut Vec<u8>, etag: &[u8]) {
        self.not_modified.put(out, etag, Framing::None);
    }

    /// The head of an SSE stream; the body follows in chunks.
    pub fn put_stream(&self, out: &mut Vec<u8>) {
        self.stream.put(out, b"", Framing::Chunked);
    }
}

async fn ask(
    router: &Router,
    path: &str,
    origin: Option<HeaderValue>,
    if_none_match: Option<&str>,
) -> Option<(StatusCode, HeaderMap)> {
    let mut request = Request::get(path);
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if let Some(tags) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, tags);
    }
    let request = request.body(Body::empty()).ok()?;
    let response = router.clone().oneshot(request).await.ok()?;
    // The body (a stream, for SSE) is dropped unread: only the head is wanted.
    Some((response.status(), response.headers().clone()))
}

/// `n` in decimal, without allocating.
fn put_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for n in [0, 7, 58, 1000, usize::MAX] {
            let mut out = Vec::new();
            put_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
