//! One request head, parsed with `httparse`, and whether the fast path may answer it.
//!
//! The fast path takes only what it answers exactly as the full path would: `GET` over HTTP/1.1
//! of `/api/count` or `/api/stream`, with valid parameters, no body, no `Connection`, `Upgrade`
//! or `Expect`, and no `Origin` when the CORS policy depends on it. Everything else, including
//! heads that are malformed, too big or have too many headers, goes to hyper, which answers it
//! (400, 404, 405, 431, …) as it always has.

use crate::http::query::Query;
use crate::server::MAX_HEADERS;
use crate::transport::poll::if_none_match_hits;
use crate::transport::sse::resume_id;
use crate::wire::SessionId;

/// What the bytes read so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// Not for the fast path: hyper answers it.
    HandOff,
    /// A request the fast path answers.
    Fast(FastRequest),
}

#[derive(Debug, PartialEq, Eq)]
pub struct FastRequest {
    /// Length of the head in bytes; what follows belongs to the next request.
    pub len: usize,
    pub session: Option<SessionId>,
    pub route: Route,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /api/count`: `conditional` when it carries `If-None-Match`, `fresh` when that names
    /// the current ETag.
    Count { conditional: bool, fresh: bool },
    /// `GET /api/stream`, resuming from `last_event_id` when it is a number.
    Stream { last_event_id: Option<u64> },
}

/// Headers that change how a request is framed or answered; the fast path leaves them to hyper.
const HANDED_OFF_HEADERS: [&str; 5] =
    ["connection", "upgrade", "transfer-encoding", "content-length", "expect"];

/// Parses the head at the start of `buf`. `etag` is the current ETag, for `If-None-Match`.
pub fn parse(buf: &[u8], etag: &[u8], origin_sensitive: bool) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::HandOff,
    };
    if request.method != Some("GET") || request.version != Some(1) {
        return Parsed::HandOff;
    }
    let Some(target) = request.path else { return Parsed::HandOff };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let stream = match path {
        "/api/count" => false,
        "/api/stream" => true,
        _ => return Parsed::HandOff,
    };
    let (mut if_none_match, mut last_event_id) = (None, None);
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("origin") {
            if origin_sensitive {
                return Parsed::HandOff;
            }
        } else if HANDED_OFF_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return Parsed::HandOff;
        } else if name.eq_ignore_ascii_case("if-none-match") {
            // The first one counts, as `HeaderMap::get` has it.
            if_none_match.get_or_insert(header.value);
        } else if name.eq_ignore_ascii_case("last-event-id") {
            last_event_id.get_or_insert(header.value);
        }
    }
    let query = Query::parse(query);
    let Ok(session) = query.session() else { return Parsed::HandOff };
    let route = if stream {
        // As the SSE handler reads it: the header wins; a header that is not text is garbage
        // (no resumption) and the query is then not consulted.
        let last_event_id = match last_event_id {
            Some(value) => resume_id(value),
            None => match query.get("lastEventId") {
                Ok(value) => value.and_then(|id| resume_id(id.as_bytes())),
                Err(_) => return Parsed::HandOff,
            },
        };
        Route::Stream { last_event_id }
    } else {
        Route::Count {
            conditional: if_none_match.is_some(),
            fresh: if_none_match.is_some_and(|tags| if_none_match_hits(tags, etag)),
        }
    };
    Parsed::Fast(FastRequest { len, session, route })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(head: &str) -> FastRequest {
        match parse(head.as_bytes(), b"\"7\"", false) {
            Parsed::Fast(request) => request,
            other => panic!("{head:?}: {other:?}"),
        }
    }

    fn route(head: &str) -> Route {
        fast(head).route
    }

    #[test]
    fn plain_and_conditional_polls() {
        let head = "GET /api/count HTTP/1.1\r\nHost: p\r\n\r\nGET /next";
        let request = fast(head);
        assert_eq!(request.len, head.len() - "GET /next".len());
        assert_eq!(request.route, Route::Count { conditional: false, fresh: false });
        let head = "GET /api/count HTTP/1.1\r\nIf-None-Match: W/\"7\"\r\n\r\n";
        assert_eq!(route(head), Route::Count { conditional: true, fresh: true });
        let head = "GET /api/count HTTP/1.1\r\nif-none-match: \"6\"\r\n\r\n";
        assert_eq!(route(head), Route::Count { conditional: true, fresh: false });
    }

    #[test]
    fn streams_resume_from_the_header_before_the_query() {
        let route = |head: &str| route(head);
        assert_eq!(
            route("GET /api/stream HTTP/1.1\r\n\r\n"),
            Route::Stream { last_event_id: None }
        );
        assert_eq!(
            route("GET /api/stream?lastEventId=%205 HTTP/1.1\r\n\r\n"),
            Route::Stream { last_event_id: Some(5) }
        );
        assert_eq!(
            route("GET /api/stream?lastEventId=5 HTTP/1.1\r\nLast-Event-ID: 9\r\n\r\n"),
            Route::Stream { last_event_id: Some(9) }
        );
        assert_eq!(
            route("GET /api/stream?lastEventId=5 HTTP/1.1\r\nLast-Event-ID: x\r\n\r\n"),
            Route::Stream { last_event_id: None }
        );
    }

    #[test]
    fn sessions_are_kept() {
        let request = fast("GET /api/count?session=ab-1 HTTP/1.1\r\n\r\n");
        assert_eq!(request.session.unwrap().as_str(), "ab-1");
    }

    #[test]
    fn anything_else_is_handed_off() {
        for head in [
            "HEAD /api/count HTTP/1.1\r\n\r\n",
            "POST /api/stream HTTP/1.1\r\n\r\n",
            "GET /api/count HTTP/1.0\r\n\r\n",
            "GET /api/count/ HTTP/1.1\r\n\r\n",
            "GET /api/stats HTTP/1.1\r\n\r\n",
            "GET http://p/api/count HTTP/1.1\r\n\r\n",
            "GET /api/count HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /api/stream HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /api/count HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "GET /api/count?session=a%20b HTTP/1.1\r\n\r\n",
            "GET /api/count?session=a&session=b HTTP/1.1\r\n\r\n",
            "GET /api/stream?lastEventId=1&lastEventId=2 HTTP/1.1\r\n\r\n",
            "\x16\x03\x01 not http\r\n\r\n",
        ] {
            assert_eq!(parse(head.as_bytes(), b"\"7\"", false), Parsed::HandOff, "{head:?}");
        }
        let with_origin = b"GET /api/count HTTP/1.1\r\nOrigin: https://a.example\r\n\r\n";
        assert_eq!(parse(with_origin, b"\"7\"", true), Parsed::HandOff);
        assert!(matches!(parse(with_origin, b"\"7\"", false), Parsed::Fast(_)));
    }

    #[test]
    fn too_many_headers_are_handed_off_for_hyper_to_refuse() {
        let mut head = String::from("GET /api/count HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            head.push_str(&format!("X-H{i}: v\r\n"));
        }
        head.push_str("\r\n");
        assert_eq!(parse(head.as_bytes(), b"\"7\"", false), Parsed::HandOff);
    }

    #[test]
    fn an_unfinished_head_is_partial() {
        assert_eq!(parse(b"GET /api/count HTTP/1.1\r\nHo", b"\"7\"", false), Parsed::Partial);
        assert_eq!(parse(b"", b"\"7\"", false), Parsed::Partial);
    }
}
