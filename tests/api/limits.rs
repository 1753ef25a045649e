//! Bad input and hostile clients: the connection limit, slow and idle sockets, oversized and
//! malformed requests, clients that stop reading or vanish.

use std::time::Duration;

use crate::helpers::*;
use pulse::transport::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and reads until the server closes the connection.
async fn raw(app: &TestApp, request: &[u8]) -> String {
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut response = Vec::new();
    within(DEADLINE, "the server to answer and close", socket.read_to_end(&mut response))
        .await
        .ok();
    String::from_utf8_lossy(&response).into_owned()
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[tokio::test]
async fn past_max_connections_new_clients_get_503_and_existing_ones_are_untouched() {
    let config = pulse::Config { max_connections: 3, ..quiet_config() };
    let app = spawn_app_with(config).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut events = sse_events(app.get("/api/stream").await);
        next_snapshot(&mut events).await;
        streams.push(events);
    }
    let refused = raw(&app, b"GET /api/count HTTP/1.1\r\nHost: pulse\r\n\r\n").await;
    assert!(status_line(&refused).contains("503"), "{refused}");
    assert!(refused.to_lowercase().contains("retry-after: 1"), "{refused}");
    assert!(refused.contains("connection limit"), "{refused}");

    let next = app.publish(99);
    for events in &mut streams {
        assert_eq!(next_snapshot(events).await.1, next);
    }
}

#[tokio::test]
async fn idle_sockets_that_never_send_a_request_are_closed() {
    let config = pulse::Config { header_timeout: Duration::from_millis(300), ..quiet_config() };
    let app = spawn_app_with(config).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // The server keeps serving while they sit there.
    assert_eq!(app.get("/api/count").await.status(), 200);
    within(DEADLINE, "every idle socket to be closed by the server", async {
        for mut socket in idle {
            let mut buf = [0u8; 64];
            // A closed connection reads as end of file (or a reset).
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => {}
                Ok(n) => panic!("unexpected {n} bytes on an idle socket"),
            }
        }
    })
    .await;
    eventually("the idle sockets to leave the connection count", || async {
        (app.stats.connections_open() <= 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_is_cut_off() {
    let config = pulse::Config { header_timeout: Duration::from_millis(200), ..quiet_config() };
    let app = spawn_app_with(config).await;
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(b"GET /api/count HTTP/1.1\r\nHost: pul").await.unwrap();
    let mut rest = Vec::new();
    within(DEADLINE, "the slow client to be cut off", socket.read_to_end(&mut rest)).await.ok();
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
}

#[tokio::test]
async fn huge_or_too_many_headers_are_431() {
    let app = spawn_app().await;
    let huge = format!(
        "GET /api/count HTTP/1.1\r\nHost: pulse\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let response = raw(&app, huge.as_bytes()).await;
    assert!(status_line(&response).contains("431"), "{}", status_line(&response));

    let mut many = String::from("GET /api/count HTTP/1.1\r\nHost: pulse\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let response = raw(&app, many.as_bytes()).await;
    assert!(status_line(&response).contains("431"), "{}", status_line(&response));
}

#[tokio::test]
async fn non_utf8_and_malformed_requests_get_clear_errors() {
    let app = spawn_app().await;
    let cases: [(&[u8], &str); 6] = [
        (b"GET /api/count?session=%FF%FE HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", "400"),
        (b"GET /api/longpoll?since=%FF HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", "400"),
        (b"GET /api/\xff\xfe HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", "400"),
        (b"BREW /api/count HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", "405"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", "400"),
        (b"GET /nope HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", "404"),
    ];
    for (request, status) in cases {
        let response = raw(&app, request).await;
        assert!(
            status_line(&response).contains(status),
            "{:?} -> {}",
            String::from_utf8_lossy(request),
            status_line(&response)
        );
    }
    // A Last-Event-ID that is not text is garbage like any other: the client gets the Snapshot.
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(b"GET /api/stream HTTP/1.1\r\nHost: p\r\nLast-Event-ID: \xff\xfe\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    within(DEADLINE, "the opening event", async {
        while !String::from_utf8_lossy(&got).contains("data: {") {
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_skipped_not_queued_for() {
    let app = spawn_app_with(quiet_config()).await;
    // A stalled client: subscribes, then never reads again. A small receive buffer makes the
    // kernel's share of the backlog small, so what is left would have to queue in the server.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(app.addr).await.unwrap();
    stalled
        .write_all(b"GET /api/stream?session=stalled HTTP/1.1\r\nHost: p\r\n\r\n")
        .await
        .unwrap();

    let published = 60_000u64;
    let mut last = None;
    for i in 0..published {
        last = Some(app.publish((i % 180) as u32 + 1));
        tokio::task::yield_now().await;
    }
    let last = last.unwrap();
    let mut fresh = sse_events(app.get("/api/stream").await);
    assert_eq!(next_snapshot(&mut fresh).await.1, last, "other clients get the newest value");

    // The stalled client was handed far fewer events than were published: once its socket
    // buffers filled, the server stopped pulling from the hub for it instead of queueing.
    let id = pulse::wire::SessionId::parse("stalled").unwrap();
    let stalled_sse = app.stats.find_session(&id).unwrap().get(Transport::Sse).report();
    assert!(stalled_sse.events < published, "{stalled_sse:?}");
    assert!(stalled_sse.bytes_out < 32 * 1024 * 1024, "{stalled_sse:?}");
    drop(stalled);
}

#[tokio::test]
async fn a_vanished_sse_client_leaves_the_open_count_within_a_heartbeat() {
    let config = pulse::Config { heartbeat: Duration::from_millis(50), ..quiet_config() };
    let app = spawn_app_with(config).await;
    let mut events = sse_events(app.get("/api/stream").await);
    next_snapshot(&mut events).await;
    assert_eq!(app.stats.total().get(Transport::Sse).report().open_connections, 1);
    drop(events);
    eventually("the dead stream to leave the open count", || async {
        let sse = app.stats.total().get(Transport::Sse).report();
        (sse.open_connections == 0 && app.hub.subscribers() == 0).then_some(())
    })
    .await;
}
