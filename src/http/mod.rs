//! The HTTP edge: routes, shared state, per-request attribution and the JSON endpoints that
//! are not transports (`/api/stats`, `/metrics`, `/healthz`).
//!
//! - [`error`]: `ApiError`, the JSON error body and its status.
//! - [`query`]: query-string parameters, validated.

pub mod error;
pub mod query;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::error::ApiError;
use self::query::Query;
use crate::config::Config;
use crate::hub::Hub;
use crate::source::SourceHealth;
use crate::transport::{self, Transport};
use crate::wire::{ConnMeter, WireStats, metrics, process};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub hub: Hub,
    pub stats: Arc<WireStats>,
    pub config: Arc<Config>,
    pub source: watch::Receiver<SourceHealth>,
    /// Cancelled when the server shuts down: every long-lived response ends on it.
    pub shutdown: CancellationToken,
    /// Upgraded WebSocket tasks, so shutdown can wait for their close frames.
    pub tasks: TaskTracker,
}

/// The whole application as a `Router`, ready to serve or to drive in-process.
pub fn app(state: AppState) -> Router {
    // The 405 fallback is set on each router before its layers, so that on /api/* it runs inside
    // the CORS layer: a preflight OPTIONS is answered by CORS, not refused as a wrong method.
    let api = Router::new()
        .route("/count", get(transport::poll::count))
        .route("/longpoll", get(transport::longpoll::longpoll))
        .route("/stream", get(transport::sse::stream))
        .route("/ws", get(transport::ws::upgrade))
        .route("/stats", get(stats))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors(&state.config.cors_origins));
    Router::new()
        .merge(crate::page::routes())
        .route("/metrics", get(prometheus))
        .route("/healthz", get(healthz))
        .method_not_allowed_fallback(method_not_allowed)
        .nest("/api", api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), attribute))
        .with_state(state)
}

fn cors(origins: &[HeaderValue]) -> CorsLayer {
    let allow = if origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().cloned())
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            header::IF_NONE_MATCH,
            header::CACHE_CONTROL,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::ETAG])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// The meter of the connection a request came on; detached when there is none (in-process).
#[derive(Clone, Debug)]
pub struct Metered(pub Arc<ConnMeter>);

impl<S: Send + Sync> FromRequestParts<S> for Metered {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Metered(
            parts.extensions.get::<Arc<ConnMeter>>().cloned().unwrap_or_else(ConnMeter::detached),
        ))
    }
}

impl std::ops::Deref for Metered {
    type Target = ConnMeter;
    fn deref(&self) -> &ConnMeter {
        &self.0
    }
}

/// Tells the connection's meter which transport and page session this request belongs to.
async fn attribute(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let transport = Transport::of(&request);
    let session = match Query::parse(request.uri().query()).session() {
        Ok(session) => session,
        Err(err) => {
            if let Some(meter) = request.extensions().get::<Arc<ConnMeter>>() {
                meter.begin_request(transport, None);
            }
            return err.into_response();
        }
    };
    if let Some(meter) = request.extensions().get::<Arc<ConnMeter>>() {
        meter.begin_request(transport, session.map(|id| state.stats.session(&id)));
    }
    next.run(request).await
}

/// A header value as text, when it is what `HeaderValue::to_str` accepts (visible ASCII, spaces
/// and tabs); `None` otherwise.
pub fn header_text(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| (b' '..=b'~').contains(&b) || b == b'\t') {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// `/api/stats`: every measured counter, in total or for one page session.
async fn stats(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let session = Query::parse(uri.query()).session()?;
    // A session not seen yet reads as all zeros: the page asks before its first request lands.
    let transports = match &session {
        Some(id) => serde_json::to_value(&*state.stats.find_session(id).unwrap_or_default()),
        None => serde_json::to_value(state.stats.total()),
    }
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let body = serde_json::json!({
        "uptime_seconds": state.stats.uptime_seconds(),
        "session": session.as_ref().map(|s| s.as_str()),
        "source": *state.source.borrow(),
        "snapshot": state.hub.current().snapshot,
        "process": process::report(),
        "connections": {
            "open": state.stats.connections_open(),
            "accepted": state.stats.connections_accepted(),
        },
        "subscribers": state.hub.subscribers(),
        "transports": transports,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `/metrics`: the same counters for Prometheus.
async fn prometheus(State(state): State<AppState>) -> Response {
    let source = state.source.borrow().clone();
    let current = state.hub.current();
    let gauges = metrics::SourceGauges {
        kind: source.kind,
        healthy: source.healthy,
        leader: source.role.is_none_or(|role| role == "leader"),
        snapshot_id: current.snapshot.id,
        count: current.snapshot.count,
        subscribers: state.hub.subscribers(),
    };
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics::render(&state.stats, gauges),
    )
        .into_response()
}

/// `/healthz`: 200 while the source is healthy, 503 while it is degraded (still serving the
/// last known Snapshot).
async fn healthz(State(state): State<AppState>) -> Response {
    let source = state.source.borrow().clone();
    let status = if source.healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "status": if source.healthy { "ok" } else { "degraded" },
        "source": source,
        "snapshot": state.hub.current().snapshot,
    });
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}; use GET", uri.path()),
    )
    .into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}
