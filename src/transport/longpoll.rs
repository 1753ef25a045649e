//! Long polling: `GET /api/longpoll?since=ID[&timeout=SECS]`. Answers at once when the current
//! id differs from `since` (or `since` is absent); otherwise holds the request until the next
//! change or the timeout, then answers with the current Snapshot either way.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;

use super::poll::snapshot_response;
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::http::{AppState, Metered};

/// How long a request is held when it names no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest hold a client may ask for; longer holds only tie up connections behind proxies
/// that cut idle requests anyway.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn longpoll(
    State(state): State<AppState>,
    meter: Metered,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query());
    let since = query.id("since")?;
    let timeout = query.seconds("timeout", MAX_TIMEOUT)?.unwrap_or(DEFAULT_TIMEOUT);

    // Subscribe before looking, so a change between the look and the wait is not missed.
    let mut rx = state.hub.subscribe();
    let seen = rx.borrow_and_update().snapshot.id;
    if since == Some(seen) {
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep(timeout) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
    let current = rx.borrow().clone();
    meter.delivered(current.json.len());
    Ok(snapshot_response(StatusCode::OK, &current, Body::from(current.json.clone())))
}
