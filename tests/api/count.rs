//! `GET /api/count`, ETag and 304, CORS, error bodies, `/healthz`, `/metrics`.

use crate::helpers::*;
use pulse::snapshot::Snapshot;
use reqwest::StatusCode;

#[tokio::test]
async fn count_is_the_current_snapshot_as_json() {
    let app = spawn_app_with(quiet_config()).await;
    let published = app.publish(61);
    let response = app.get("/api/count").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["etag"], format!("\"{}\"", published.id));
    let body: serde_json::Value = response.json().await.unwrap();
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["count", "id", "timestamp"]);
    let snapshot: Snapshot = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(snapshot, published);
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(timestamp.ends_with('Z') && timestamp.len() == 24, "{timestamp}");
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304_without_a_body() {
    let app = spawn_app_with(quiet_config()).await;
    let etag = app.get("/api/count").await.headers()["etag"].clone();
    let response =
        app.client.get(app.url("/api/count")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"], etag);
    assert!(response.bytes().await.unwrap().is_empty());

    let changed = app.publish(70);
    let response =
        app.client.get(app.url("/api/count")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Snapshot>().await.unwrap(), changed);
}

#[tokio::test]
async fn any_origin_is_allowed_by_default() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/count"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("etag")
    );

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/stream"))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "last-event-id")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.to_lowercase().contains("last-event-id"), "{allowed}");
}

#[tokio::test]
async fn cors_can_be_restricted_to_named_origins() {
    let config = pulse::Config {
        cors_origins: vec!["https://ok.example".parse().unwrap()],
        ..fast_config()
    };
    let app = spawn_app_with(config).await;
    let ask = |origin: &'static str| {
        app.client.get(app.url("/api/count")).header("origin", origin).send()
    };
    let allowed = ask("https://ok.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://ok.example");
    let refused = ask("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let app = spawn_app().await;
    for path in ["/nope", "/api/nope", "/api/count/extra"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(path), "{path}: {body}");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_json() {
    let app = spawn_app().await;
    for path in ["/api/count", "/api/stream", "/api/longpoll", "/api/stats", "/"] {
        for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE] {
            let response = app.client.request(method.clone(), app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(response.headers()["allow"].to_str().unwrap().contains("GET"));
            let body: serde_json::Value = response.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains(method.as_str()), "{body}");
        }
    }
}

#[tokio::test]
async fn healthz_reports_the_source() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["source"]["kind"], "simulator");
    assert_eq!(body["source"]["healthy"], true);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = spawn_app().await;
    app.get("/api/count").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().contains("openmetrics"));
    let text = response.text().await.unwrap();
    assert!(text.contains("pulse_requests_total{transport=\"poll\"} 1"), "{text}");
    assert!(text.contains("pulse_process_cpu_seconds_total"), "{text}");
    assert!(text.contains("pulse_source_healthy{kind=\"simulator\"} 1"), "{text}");
    assert!(text.contains("pulse_source_leader 1"), "{text}");
    let id = app.hub.current().snapshot.id;
    assert!(text.contains("pulse_snapshot_id ") && id > 0, "{text}");
}
