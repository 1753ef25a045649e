//! The comparison page, built into the binary: `index.html`, `app.js` and `style.css` beside
//! this file. With `--page-dir` the same files are read from disk at each request instead, so the
//! page can be edited without rebuilding.

use std::borrow::Cow;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;
use crate::http::error::ApiError;

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    embedded: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    embedded: include_str!("index.html"),
};
const SCRIPT: Asset = Asset {
    name: "app.js",
    content_type: "text/javascript; charset=utf-8",
    embedded: include_str!("app.js"),
};
const STYLE: Asset = Asset {
    name: "style.css",
    content_type: "text/css; charset=utf-8",
    embedded: include_str!("style.css"),
};

/// No inline script or style, nothing from elsewhere: the page talks only to its own origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|s: State<AppState>| serve(s, &INDEX)))
        .route("/index.html", get(|s: State<AppState>| serve(s, &INDEX)))
        .route("/app.js", get(|s: State<AppState>| serve(s, &SCRIPT)))
        .route("/style.css", get(|s: State<AppState>| serve(s, &STYLE)))
}

async fn serve(State(state): State<AppState>, asset: &'static Asset) -> Response {
    let body = match &state.config.page_dir {
        None => Cow::Borrowed(asset.embedded),
        Some(dir) => match tokio::fs::read_to_string(dir.join(asset.name)).await {
            Ok(text) => Cow::Owned(text),
            Err(e) => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read {} from the page folder: {e}", asset.name),
                )
                .into_response();
            }
        },
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY")),
    ];
    (headers, body).into_response()
}
