//! Server-Sent Events: `GET /api/stream`. A `retry:` hint and the current Snapshot at once, then
//! one event per change, and a comment line when the stream has been idle for a heartbeat.
//!
//! A client resuming with `Last-Event-ID` (header, or `?lastEventId=` since a browser cannot set
//! headers on its first request) equal to the current id is not sent the Snapshot it has.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::http::{AppState, Metered};
use crate::snapshot::Rendered;

/// The heartbeat: an SSE comment, ignored by every client, three bytes on the wire.
pub const HEARTBEAT: &[u8] = b":\n\n";

pub async fn stream(
    State(state): State<AppState>,
    meter: Metered,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query());
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => resume_id(value.as_bytes()),
        None => query.get("lastEventId")?.and_then(|v| resume_id(v.as_bytes())),
    };
    let mut rx = state.hub.subscribe();
    let current = rx.borrow_and_update().clone();
    let resume = Resume::new(last_event_id, current.snapshot.id, state.config.redis.is_some());
    let first = opening(state.config.sse_retry, resume.send_current.then_some(&current));
    if resume.send_current {
        meter.delivered(current.sse_event.len());
    }

    let period = state.config.heartbeat;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let events = Events {
        rx,
        heartbeat,
        shutdown: state.shutdown.clone(),
        meter,
        skip_through: resume.skip_through,
    };
    let body =
        futures_util::stream::unfold((Some(first), events), |(first, mut events)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, Infallible>(first), (None, events)));
            }
            events.next().await.map(|chunk| (Ok(chunk), (None, events)))
        });

    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Where a (re)connecting stream starts, from the client's `Last-Event-ID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// Send the current Snapshot first.
    pub send_current: bool,
    /// Changes with this id or a lower one are not sent: the client has them.
    pub skip_through: u64,
}

impl Resume {
    /// `shared_ids`: the ids come from a store every instance shares (Redis), so they never
    /// restart, and a client ahead of this instance saw a change that has not reached it yet.
    pub fn new(last_event_id: Option<u64>, current: u64, shared_ids: bool) -> Self {
        match last_event_id {
            Some(id) if id == current || (id > current && shared_ids) => {
                Resume { send_current: false, skip_through: id }
            }
            // Older, garbage, or newer from a server that has since restarted its count: the
            // client gets the current Snapshot and every change after it.
            _ => Resume { send_current: true, skip_through: current },
        }
    }
}

/// The Snapshot id a reconnecting client says it has, from its `Last-Event-ID`; `None` for
/// anything that is not a decimal id (surrounding spaces aside).
pub fn resume_id(raw: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The first bytes of a stream: the reconnection hint, and the current event unless the client
/// already has it.
fn opening(retry: Duration, current: Option<&Arc<Rendered>>) -> Bytes {
    let retry = format!("retry: {}\n", retry.as_millis());
    let mut out = BytesMut::with_capacity(retry.len() + current.map_or(1, |c| c.sse_event.len()));
    out.put_slice(retry.as_bytes());
    match current {
        Some(current) => out.put_slice(&current.sse_event),
        None => out.put_u8(b'\n'),
    }
    out.freeze()
}

/// What one open stream waits on.
struct Events {
    rx: watch::Receiver<Arc<Rendered>>,
    heartbeat: Interval,
    shutdown: CancellationToken,
    meter: Metered,
    skip_through: u64,
}

impl Events {
    /// The next chunk to write, or `None` when the stream ends (shutdown).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                changed = self.rx.changed() => {
                    changed.ok()?;
                    let current = self.rx.borrow_and_update().clone();
                    if current.snapshot.id <= self.skip_through {
                        continue;
                    }
                    self.meter.delivered(current.sse_event.len());
                    self.heartbeat.reset();
                    return Some(current.sse_event.clone());
                }
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(HEARTBEAT)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_a_stream_resumes() {
        let send = |current| Resume { send_current: true, skip_through: current };
        let skip = |id| Resume { send_current: false, skip_through: id };
        assert_eq!(Resume::new(None, 7, false), send(7));
        assert_eq!(Resume::new(Some(7), 7, false), skip(7));
        assert_eq!(Resume::new(Some(7), 7, true), skip(7));
        assert_eq!(Resume::new(Some(3), 7, true), send(7));
        // Ahead of this instance: with shared ids it is a lag, without a restarted count.
        assert_eq!(Resume::new(Some(9), 7, true), skip(9));
        assert_eq!(Resume::new(Some(9), 7, false), send(7));
    }

    #[test]
    fn resume_ids() {
        assert_eq!(resume_id(b"42"), Some(42));
        assert_eq!(resume_id(b" 42 "), Some(42));
        for garbage in [&b""[..], b"+42", b"-1", b"4 2", b"x", b"\xff", b"99999999999999999999999"]
        {
            assert_eq!(resume_id(garbage), None, "{garbage:?}");
        }
    }
}
