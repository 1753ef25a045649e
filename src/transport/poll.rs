//! Polling: `GET /api/count`, the current Snapshot, with an `ETag` so a conditional request
//! (`If-None-Match`) is answered `304 Not Modified` with no body when nothing changed.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::http::{AppState, Metered};
use crate::snapshot::Rendered;

pub async fn count(State(state): State<AppState>, meter: Metered, headers: HeaderMap) -> Response {
    let current = state.hub.current();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| if_none_match_hits(tags.as_bytes(), current.etag.as_bytes()));
    if fresh {
        meter.not_modified();
        return snapshot_response(StatusCode::NOT_MODIFIED, &current, Body::empty());
    }
    meter.delivered(current.json.len());
    snapshot_response(StatusCode::OK, &current, Body::from(current.json.clone()))
}

/// A Snapshot answer: the JSON (or no body), its ETag, and never cached by the browser.
pub fn snapshot_response(status: StatusCode, current: &Rendered, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if status != StatusCode::NOT_MODIFIED {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::ETAG, current.etag.clone());
    response
}

/// Whether an `If-None-Match` header value names `etag` (weak comparison, as RFC 9110 asks for
/// GET). A value that is not visible ASCII names nothing. Both request paths ask this.
pub fn if_none_match_hits(header: &[u8], etag: &[u8]) -> bool {
    let Some(list) = crate::http::header_text(header) else { return false };
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        let ours = b"\"42\"";
        let hit = |h: &'static str| if_none_match_hits(h.as_bytes(), ours);
        assert!(hit("\"42\""));
        assert!(hit("W/\"42\""));
        assert!(hit("\"1\", \"42\""));
        assert!(hit("*"));
        assert!(!hit("\"41\""));
        assert!(!hit("42"));
        assert!(!hit(""));
        assert!(!if_none_match_hits(b"\xff", ours));
    }
}
