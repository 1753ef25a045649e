//! Graceful shutdown with streams open: they end, long polls answer, and the server returns
//! within two seconds.

use std::time::Duration;

use crate::helpers::*;
use futures_util::StreamExt;

#[tokio::test]
async fn open_streams_and_long_polls_end_promptly() {
    let app = spawn_app_with(quiet_config()).await;
    let current = app.hub.current().snapshot.clone();
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut events = sse_events(app.get("/api/stream").await);
        next_snapshot(&mut events).await;
        streams.push(events);
    }
    let poll = tokio::spawn(
        app.client.get(app.url(&format!("/api/longpoll?since={}", current.id))).send(),
    );
    eventually("the long poll to be held", || async { (app.hub.subscribers() > 20).then_some(()) })
        .await;

    let took = app.stop().await;
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    for mut events in streams {
        assert!(within(DEADLINE, "the stream to end", events.next()).await.is_none());
    }
    let answer = within(DEADLINE, "the long poll answer", poll).await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_hold_shutdown() {
    let app = spawn_app().await;
    app.get("/api/count").await; // leaves a pooled keep-alive connection open
    let took = app.stop().await;
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}
