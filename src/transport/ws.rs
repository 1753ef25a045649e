//! WebSocket: `GET /api/ws`. The Snapshot JSON as a text message at once and at every change;
//! a ping every heartbeat, and a peer that has not answered the previous ping is dropped; close
//! code 1001 (going away) on shutdown.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::{Instant, MissedTickBehavior};

use crate::http::error::ApiError;
use crate::http::{AppState, Metered};
use crate::snapshot::Rendered;

/// Close code for "the server is going away".
const GOING_AWAY: u16 = 1001;
/// Read buffer of a connection: client frames are pongs and close frames.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes that may wait to be written when the socket is not taking them; past it a send fails
/// and the connection ends, rather than memory growing behind a client that does not read.
const MAX_WRITE_BUFFER: usize = 64 * 1024;
/// Largest message or frame a client may send; nothing it sends is read for content.
const MAX_MESSAGE: usize = 16 * 1024;
/// How long shutdown waits for the client to answer the close frame.
const CLOSE_WAIT: Duration = Duration::from_millis(500);

pub async fn upgrade(
    State(state): State<AppState>,
    meter: Metered,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => {
            let tasks = state.tasks.clone();
            // Messages are a few dozen bytes each way: the library's 128 KiB buffers would be
            // most of a connection's memory.
            ws.read_buffer_size(READ_BUFFER)
                .write_buffer_size(0)
                .max_write_buffer_size(MAX_WRITE_BUFFER)
                .max_message_size(MAX_MESSAGE)
                .max_frame_size(MAX_MESSAGE)
                .on_upgrade(move |socket| tasks.track_future(run(socket, state, meter)))
        }
        Err(rejection) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("/api/ws needs a WebSocket upgrade request: {}", rejection.body_text()),
        )
        .into_response(),
    }
}

async fn run(mut socket: WebSocket, state: AppState, meter: Metered) {
    let mut rx = state.hub.subscribe();
    let first = rx.borrow_and_update().clone();
    if send(&mut socket, &first, &meter).await.is_err() {
        return;
    }
    let period = state.config.heartbeat;
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => {
                let frame = CloseFrame { code: GOING_AWAY, reason: Utf8Bytes::from_static("server shutting down") };
                if socket.send(Message::Close(Some(frame))).await.is_ok() {
                    // Give the client a moment to answer, as the closing handshake asks.
                    let _ = tokio::time::timeout(CLOSE_WAIT, async {
                        while let Some(Ok(message)) = socket.recv().await {
                            if matches!(message, Message::Close(_)) { break; }
                        }
                    }).await;
                }
                return;
            }
            changed = rx.changed() => {
                if changed.is_err() { return; }
                let current = rx.borrow_and_update().clone();
                if send(&mut socket, &current, &meter).await.is_err() { return; }
            }
            _ = ping.tick() => {
                if awaiting_pong {
                    tracing::debug!("WebSocket peer missed a ping; dropping it");
                    return;
                }
                if socket.send(Message::Ping(Bytes::new())).await.is_err() { return; }
                awaiting_pong = true;
            }
            message = socket.recv() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                // Anything the client says counts as a sign of life; its content is ignored.
                Some(Ok(_)) => awaiting_pong = false,
            },
        }
    }
}

async fn send(
    socket: &mut WebSocket,
    current: &Rendered,
    meter: &Metered,
) -> Result<(), axum::Error> {
    let text = Utf8Bytes::try_from(current.json.clone()).expect("Snapshot JSON is UTF-8");
    socket.send(Message::Text(text)).await?;
    meter.delivered(current.json.len());
    Ok(())
}
