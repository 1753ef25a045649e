//! `GET /api/stream`, read with a real SSE parser (and raw bytes where framing matters).

use std::time::Duration;

use crate::helpers::*;
use futures_util::StreamExt;
use pulse::snapshot::Snapshot;

#[tokio::test]
async fn stream_headers_say_event_stream_uncached_unbuffered() {
    let app = spawn_app().await;
    let response = app.get("/api/stream").await;
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(h["content-type"], "text/event-stream");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    assert!(h.get("content-encoding").is_none());
}

#[tokio::test]
async fn sends_the_current_snapshot_at_once_with_a_retry_hint() {
    let app = spawn_app_with(quiet_config()).await;
    let current = app.publish(80);
    let mut events = sse_events(app.get("/api/stream").await);
    let (event, snapshot) = next_snapshot(&mut events).await;
    assert_eq!(snapshot, current);
    assert_eq!(event.id, current.id.to_string());
    assert_eq!(event.event, "message", "default event type, so onmessage fires");
    assert_eq!(event.retry, Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn every_change_is_one_event_with_ids_growing_by_one() {
    let app = spawn_app().await;
    let mut events = sse_events(app.get("/api/stream").await);
    let (_, mut previous) = next_snapshot(&mut events).await;
    for _ in 0..25 {
        let (event, snapshot) = next_snapshot(&mut events).await;
        assert_eq!(snapshot.id, previous.id + 1, "ids grow by exactly one");
        assert_eq!(event.id, snapshot.id.to_string());
        // An event only ever means a change: ticks that leave the count alone send nothing.
        assert_ne!(snapshot.count, previous.count, "event without a change: {snapshot:?}");
        assert!(snapshot.timestamp >= previous.timestamp);
        assert!((0..=200).contains(&snapshot.count));
        previous = snapshot;
    }
}

#[tokio::test]
async fn two_clients_see_the_same_sequence() {
    let app = spawn_app().await;
    let mut a = sse_events(app.get("/api/stream").await);
    let mut b = sse_events(app.get("/api/stream").await);
    let (_, first_a) = next_snapshot(&mut a).await;
    let (_, mut first_b) = next_snapshot(&mut b).await;
    // b may have connected after one more change; line both up on the same id.
    let mut seq_a = vec![first_a];
    while seq_a.last().unwrap().id < first_b.id {
        seq_a.push(next_snapshot(&mut a).await.1);
    }
    while first_b.id < seq_a.last().unwrap().id {
        first_b = next_snapshot(&mut b).await.1;
    }
    let mut got_a = vec![seq_a.pop().unwrap()];
    let mut got_b = vec![first_b];
    for _ in 0..10 {
        got_a.push(next_snapshot(&mut a).await.1);
        got_b.push(next_snapshot(&mut b).await.1);
    }
    assert_eq!(got_a, got_b);
}

async fn first_event(request: reqwest::RequestBuilder) -> Snapshot {
    let mut events = sse_events(request.send().await.unwrap());
    next_snapshot(&mut events).await.1
}

#[tokio::test]
async fn last_event_id_equal_to_the_current_id_skips_the_initial_snapshot() {
    let app = spawn_app_with(quiet_config()).await;
    app.publish(90);
    for via_query in [false, true] {
        let current = app.hub.current().snapshot.clone();
        let request = if via_query {
            app.client.get(app.url(&format!("/api/stream?lastEventId={}", current.id)))
        } else {
            app.client.get(app.url("/api/stream")).header("last-event-id", current.id.to_string())
        };
        // The response has started (headers and the retry hint), so the stream is subscribed.
        let mut events = sse_events(request.send().await.unwrap());
        // Nothing is due until the next change: the first event must be that change.
        let next = app.publish(current.count + 1);
        let (_, first) = next_snapshot(&mut events).await;
        assert_eq!(first, next);
    }
}

#[tokio::test]
async fn any_other_last_event_id_gets_the_current_snapshot() {
    let app = spawn_app_with(quiet_config()).await;
    app.publish(91);
    let current = app.publish(92);
    for value in
        [(current.id - 1).to_string(), (current.id + 5).to_string(), "garbage".into(), "".into()]
    {
        let first =
            first_event(app.client.get(app.url("/api/stream")).header("last-event-id", &value))
                .await;
        assert_eq!(first, current, "Last-Event-ID {value:?}");
    }
    let first = first_event(app.client.get(app.url("/api/stream?lastEventId=x"))).await;
    assert_eq!(first, current);
}

#[tokio::test]
async fn idle_streams_get_heartbeat_comments() {
    let config = pulse::Config { heartbeat: Duration::from_millis(30), ..quiet_config() };
    let app = spawn_app_with(config).await;
    let response = app.get("/api/stream").await;
    let mut body = response.bytes_stream();
    let mut seen = Vec::new();
    within(DEADLINE, "three heartbeats", async {
        while seen.windows(3).filter(|w| *w == b":\n\n").count() < 3 {
            seen.extend_from_slice(&body.next().await.unwrap().unwrap());
        }
    })
    .await;
    let text = String::from_utf8(seen).unwrap();
    // One opening event, then only comments: a quiet count sends no events.
    assert_eq!(text.matches("data:").count(), 1, "{text}");
}

#[tokio::test]
async fn a_slow_reader_skips_to_the_newest_value() {
    let app = spawn_app_with(quiet_config()).await;
    let mut events = sse_events(app.get("/api/stream").await);
    next_snapshot(&mut events).await;
    // Many changes while the client is not reading: it is not owed each one, only the newest.
    let mut last = None;
    for count in 0..200 {
        last = Some(app.publish(count % 150 + 1));
    }
    let last = last.unwrap();
    let (_, mut got) = next_snapshot(&mut events).await;
    while got.id < last.id {
        got = next_snapshot(&mut events).await.1;
    }
    assert_eq!(got, last);
}
