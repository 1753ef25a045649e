//! The transports: each turns hub changes into its own framing and nothing else.
//!
//! - [`poll`]: `GET /api/count`, plain or conditional (`If-None-Match` → 304).
//! - [`longpoll`]: `GET /api/longpoll?since=ID`, held until the next change.
//! - [`sse`]: `GET /api/stream`, Server-Sent Events.
//! - [`ws`]: `GET /api/ws`, WebSocket.

pub mod longpoll;
pub mod poll;
pub mod sse;
pub mod ws;

use axum::http::{Request, header};
use serde::Serialize;

/// What a request is, for the wire accounting: every byte on a connection is attributed to the
/// transport of the request it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `/api/count` without `If-None-Match`.
    Poll,
    /// `/api/count` with `If-None-Match`.
    Etag,
    Longpoll,
    Sse,
    Ws,
    /// The page, its assets, health checks and anything unknown.
    Page,
    /// `/api/stats` and `/metrics`: counted apart so watching never pollutes the comparison.
    Stats,
}

impl Transport {
    pub const ALL: [Transport; 7] = [
        Transport::Poll,
        Transport::Etag,
        Transport::Longpoll,
        Transport::Sse,
        Transport::Ws,
        Transport::Page,
        Transport::Stats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Poll => "poll",
            Transport::Etag => "etag",
            Transport::Longpoll => "longpoll",
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Page => "page",
            Transport::Stats => "stats",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The transport a request belongs to, from its path and headers alone.
    pub fn of<B>(request: &Request<B>) -> Transport {
        match request.uri().path() {
            "/api/count" if request.headers().contains_key(header::IF_NONE_MATCH) => {
                Transport::Etag
            }
            "/api/count" => Transport::Poll,
            "/api/longpoll" => Transport::Longpoll,
            "/api/stream" => Transport::Sse,
            "/api/ws" => Transport::Ws,
            "/api/stats" | "/metrics" => Transport::Stats,
            _ => Transport::Page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    #[test]
    fn classifies_by_path_and_conditional_header() {
        assert_eq!(Transport::of(&get("/api/count?session=a")), Transport::Poll);
        let conditional =
            Request::get("/api/count").header("if-none-match", "\"3\"").body(()).unwrap();
        assert_eq!(Transport::of(&conditional), Transport::Etag);
        assert_eq!(Transport::of(&get("/api/longpoll?since=3")), Transport::Longpoll);
        assert_eq!(Transport::of(&get("/api/stream")), Transport::Sse);
        assert_eq!(Transport::of(&get("/api/ws")), Transport::Ws);
        assert_eq!(Transport::of(&get("/api/stats")), Transport::Stats);
        assert_eq!(Transport::of(&get("/metrics")), Transport::Stats);
        assert_eq!(Transport::of(&get("/")), Transport::Page);
        assert_eq!(Transport::of(&get("/nope")), Transport::Page);
    }

    #[test]
    fn indexes_match_all() {
        for (i, t) in Transport::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }
}
