//! `GET /api/ws`, with a real WebSocket client.

use std::time::Duration;

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use pulse::snapshot::Snapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp) -> Socket {
    let url = format!("ws://{}/api/ws", app.addr);
    let (socket, response) = tokio_tungstenite::connect_async(url).await.expect("ws handshake");
    assert_eq!(response.status(), 101);
    socket
}

/// The next text message as a Snapshot, answering pings on the way.
async fn next_snapshot_ws(socket: &mut Socket) -> Snapshot {
    within(DEADLINE, "a WebSocket message", async {
        loop {
            match socket.next().await.expect("socket closed").expect("ws error") {
                Message::Text(text) => return serde_json::from_str(&text).expect("a Snapshot"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn sends_the_snapshot_at_once_and_at_every_change() {
    let app = spawn_app_with(quiet_config()).await;
    let current = app.publish(33);
    let mut socket = connect(&app).await;
    assert_eq!(next_snapshot_ws(&mut socket).await, current);
    for count in [34, 30, 35] {
        let next = app.publish(count);
        assert_eq!(next_snapshot_ws(&mut socket).await, next);
    }
}

#[tokio::test]
async fn ids_grow_by_one_with_the_simulator() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    let mut previous = next_snapshot_ws(&mut socket).await;
    for _ in 0..15 {
        let next = next_snapshot_ws(&mut socket).await;
        assert_eq!(next.id, previous.id + 1);
        assert_ne!(next.count, previous.count);
        previous = next;
    }
}

#[tokio::test]
async fn server_pings_and_a_silent_peer_is_dropped() {
    let config = pulse::Config { heartbeat: Duration::from_millis(50), ..quiet_config() };
    let app = spawn_app_with(config).await;
    // A raw client that completes the handshake and then never writes a byte: it cannot answer
    // pings, as a vanished peer could not.
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(
        b"GET /api/ws HTTP/1.1\r\nHost: pulse\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut received = Vec::new();
    within(DEADLINE, "the server to drop a peer that never answers pings", async {
        tcp.read_to_end(&mut received).await
    })
    .await
    .ok();
    assert!(received.starts_with(b"HTTP/1.1 101"), "{:?}", String::from_utf8_lossy(&received));
    // 0x89: a final frame with the ping opcode, sent before giving up on the peer.
    assert!(received.contains(&0x89), "the server never pinged");
    eventually("the connection to leave the open count", || async {
        let ws = app.stats.total().get(pulse::transport::Transport::Ws).report();
        (ws.open_connections == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays() {
    let config = pulse::Config { heartbeat: Duration::from_millis(30), ..quiet_config() };
    let app = spawn_app_with(config).await;
    let mut socket = connect(&app).await;
    next_snapshot_ws(&mut socket).await;
    let mut pings = 0;
    within(DEADLINE, "five pings answered", async {
        while pings < 5 {
            match socket.next().await.unwrap().unwrap() {
                Message::Ping(payload) => {
                    pings += 1;
                    socket.send(Message::Pong(payload)).await.unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    let next = app.publish(77);
    assert_eq!(next_snapshot_ws(&mut socket).await, next);
}

#[tokio::test]
async fn shutdown_closes_with_going_away() {
    let app = spawn_app_with(quiet_config()).await;
    let mut socket = connect(&app).await;
    next_snapshot_ws(&mut socket).await;
    let stopping = tokio::spawn(app.stop());
    let frame = within(DEADLINE, "a close frame", async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(frame.expect("a close code").code, CloseCode::Away);
    assert!(stopping.await.unwrap() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_plain_get_is_a_clear_400() {
    let app = spawn_app().await;
    let response = app.get("/api/ws").await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("WebSocket"), "{body}");
}
