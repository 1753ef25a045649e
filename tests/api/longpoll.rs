//! `GET /api/longpoll`: answered at once, held until a change, timed out, bad input.

use std::time::{Duration, Instant};

use crate::helpers::*;
use pulse::snapshot::Snapshot;

#[tokio::test]
async fn answers_at_once_without_since_or_with_an_old_id() {
    let app = spawn_app_with(quiet_config()).await;
    let current = app.publish(40);
    for path in ["/api/longpoll".to_string(), format!("/api/longpoll?since={}", current.id - 1)] {
        let response = within(DEADLINE, "an immediate answer", app.get(&path)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["etag"], format!("\"{}\"", current.id));
        assert_eq!(response.json::<Snapshot>().await.unwrap(), current, "{path}");
    }
}

#[tokio::test]
async fn holds_until_the_next_change() {
    let app = spawn_app_with(quiet_config()).await;
    let current = app.hub.current().snapshot.clone();
    let held = tokio::spawn(
        app.client.get(app.url(&format!("/api/longpoll?since={}", current.id))).send(),
    );
    // Publish once the request is being held (it has subscribed to the hub).
    eventually("the long poll to be held", || async { (app.hub.subscribers() > 0).then_some(()) })
        .await;
    assert!(!held.is_finished(), "answered without a change");
    let next = app.publish(current.count + 2);
    let response = within(DEADLINE, "the held answer", held).await.unwrap().unwrap();
    assert_eq!(response.json::<Snapshot>().await.unwrap(), next);
}

#[tokio::test]
async fn times_out_with_the_unchanged_snapshot() {
    let app = spawn_app_with(quiet_config()).await;
    let current = app.hub.current().snapshot.clone();
    let started = Instant::now();
    let response = app.get(&format!("/api/longpoll?since={}&timeout=0.2", current.id)).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Snapshot>().await.unwrap(), current);
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_clear_message() {
    let app = spawn_app().await;
    for (query, names) in [
        ("since=abc", "since"),
        ("since=-4", "since"),
        ("since=1&since=2", "since"),
        ("timeout=0", "timeout"),
        ("timeout=121", "timeout"),
        ("timeout=soon", "timeout"),
        ("session=bad%20id", "session"),
    ] {
        let response = app.get(&format!("/api/longpoll?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(names), "{query}: {body}");
    }
}
