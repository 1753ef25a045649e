//! The wire accounting, checked byte for byte against what raw clients sent and received.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use crate::helpers::*;
use futures_util::StreamExt;
use pulse::transport::Transport;
use pulse::wire::SessionId;
use pulse::wire::stats::CountersReport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A client socket that counts what it sends and receives.
struct Counted {
    inner: TcpStream,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl Counted {
    async fn connect(app: &TestApp) -> Self {
        Counted {
            inner: TcpStream::connect(app.addr).await.unwrap(),
            sent: Default::default(),
            received: Default::default(),
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.received.fetch_add((buf.filled().len() - before) as u64, Relaxed);
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.sent.fetch_add(n as u64, Relaxed);
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sends one request and reads its whole response (Content-Length, or none for 304);
/// returns (request bytes, response bytes, body).
async fn exchange(socket: &mut Counted, request: &str) -> (u64, u64, Vec<u8>) {
    let (sent, received) = (socket.sent.load(Relaxed), socket.received.load(Relaxed));
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let body = within(DEADLINE, "a whole response", async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-response");
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = response.parse(&buf).unwrap() {
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |h| std::str::from_utf8(h.value).unwrap().parse().unwrap());
                if buf.len() >= head + length {
                    assert_eq!(buf.len(), head + length, "no bytes beyond the response");
                    return buf[head..].to_vec();
                }
            }
        }
    })
    .await;
    (socket.sent.load(Relaxed) - sent, socket.received.load(Relaxed) - received, body)
}

/// Reads until `received` ends with `frame`'s chunk (an event ends its chunk with "\n\n\r\n").
async fn read_until(socket: &mut Counted, received: &mut Vec<u8>, frame: bytes::Bytes) {
    let mut tail = frame.to_vec();
    tail.extend_from_slice(b"\r\n");
    within(DEADLINE, "an SSE frame", async {
        while !received.ends_with(&tail) {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "stream closed");
            received.extend_from_slice(&chunk[..n]);
        }
    })
    .await
}

fn session_report(app: &TestApp, session: &str, transport: Transport) -> CountersReport {
    let id = SessionId::parse(session).unwrap();
    app.stats.find_session(&id).expect("session seen").get(transport).report()
}

#[tokio::test]
async fn keep_alive_polling_is_counted_byte_for_byte_per_transport() {
    let app = spawn_app_with(quiet_config()).await;
    let mut socket = Counted::connect(&app).await;
    let plain = "GET /api/count?session=w1 HTTP/1.1\r\nHost: pulse\r\n\r\n";
    let etag = app.hub.current().etag.to_str().unwrap().to_owned();
    let conditional = format!(
        "GET /api/count?session=w1 HTTP/1.1\r\nHost: pulse\r\nIf-None-Match: {etag}\r\n\r\n"
    );
    let (mut poll_in, mut poll_out, mut payload) = (0, 0, 0);
    for _ in 0..3 {
        let (i, o, body) = exchange(&mut socket, plain).await;
        (poll_in, poll_out, payload) = (poll_in + i, poll_out + o, payload + body.len() as u64);
    }
    let (mut etag_in, mut etag_out) = (0, 0);
    for _ in 0..2 {
        let (i, o, body) = exchange(&mut socket, &conditional).await;
        assert!(body.is_empty());
        (etag_in, etag_out) = (etag_in + i, etag_out + o);
    }
    // The same connection switches back: bytes follow the request, not the connection.
    let (i, o, body) = exchange(&mut socket, plain).await;
    (poll_in, poll_out, payload) = (poll_in + i, poll_out + o, payload + body.len() as u64);

    let poll = session_report(&app, "w1", Transport::Poll);
    assert_eq!((poll.requests, poll.bytes_in, poll.bytes_out), (4, poll_in, poll_out));
    assert_eq!((poll.events, poll.payload_bytes_out), (4, payload));
    assert_eq!(poll.open_connections, 1);
    let cond = session_report(&app, "w1", Transport::Etag);
    assert_eq!((cond.requests, cond.bytes_in, cond.bytes_out), (2, etag_in, etag_out));
    assert_eq!((cond.not_modified, cond.events, cond.payload_bytes_out), (2, 0, 0));
    assert_eq!(cond.open_connections, 0);
    // The totals hold the same numbers: the session is a view, not a copy.
    assert_eq!(app.stats.total().get(Transport::Poll).report(), poll);
}

#[tokio::test]
async fn long_polls_are_counted_byte_for_byte() {
    let app = spawn_app_with(quiet_config()).await;
    let mut socket = Counted::connect(&app).await;
    let (i, o, body) =
        exchange(&mut socket, "GET /api/longpoll?session=w2 HTTP/1.1\r\nHost: pulse\r\n\r\n").await;
    let lp = session_report(&app, "w2", Transport::Longpoll);
    assert_eq!((lp.requests, lp.bytes_in, lp.bytes_out), (1, i, o));
    assert_eq!((lp.events, lp.payload_bytes_out), (1, body.len() as u64));
}

#[tokio::test]
async fn sse_streams_are_counted_byte_for_byte_including_chunk_framing() {
    let app = spawn_app_with(quiet_config()).await;
    let mut socket = Counted::connect(&app).await;
    let request = "GET /api/stream?session=w3 HTTP/1.1\r\nHost: pulse\r\n\r\n";
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut frames = vec![app.hub.current().sse_event.clone()];
    read_until(&mut socket, &mut received, frames[0].clone()).await;
    for count in [12, 14] {
        app.publish(count);
        frames.push(app.hub.current().sse_event.clone());
        read_until(&mut socket, &mut received, frames.last().unwrap().clone()).await;
    }
    let sse = session_report(&app, "w3", Transport::Sse);
    assert_eq!(sse.bytes_in, request.len() as u64);
    assert_eq!(sse.bytes_out, received.len() as u64);
    assert_eq!(sse.events, 3);
    assert_eq!(sse.payload_bytes_out, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert_eq!(sse.open_connections, 1);
    drop(socket);
}

#[tokio::test]
async fn websocket_frames_are_counted_byte_for_byte() {
    let app = spawn_app_with(quiet_config()).await;
    let socket = Counted::connect(&app).await;
    let (sent, received) = (socket.sent.clone(), socket.received.clone());
    let url = format!("ws://{}/api/ws?session=w4", app.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, socket).await.unwrap();
    let mut payload = 0;
    for i in 0..3 {
        if i > 0 {
            app.publish(20 + i);
        }
        let message = within(DEADLINE, "a message", ws.next()).await.unwrap().unwrap();
        payload += message.into_data().len() as u64;
    }
    let report = session_report(&app, "w4", Transport::Ws);
    assert_eq!(report.bytes_in, sent.load(Relaxed));
    assert_eq!(report.bytes_out, received.load(Relaxed));
    assert_eq!((report.requests, report.events, report.payload_bytes_out), (1, 3, payload));
}

#[tokio::test]
async fn stats_requests_are_counted_apart() {
    let app = spawn_app_with(quiet_config()).await;
    app.get("/api/count?session=w5").await;
    for _ in 0..3 {
        app.get("/api/stats?session=w5").await;
    }
    let body = app.json("/api/stats?session=w5").await;
    assert_eq!(body["session"], "w5");
    assert_eq!(body["transports"]["poll"]["requests"], 1);
    assert_eq!(body["transports"]["stats"]["requests"], 4, "{body}");
    for key in ["uptime_seconds", "process", "snapshot", "source", "connections"] {
        assert!(body.get(key).is_some(), "{key} missing: {body}");
    }
    assert!(body["process"]["rss_bytes"].as_u64().unwrap() > 0);
    // An unknown session is all zeros, not an error.
    let unknown = app.json("/api/stats?session=never-seen").await;
    assert_eq!(unknown["transports"]["poll"]["requests"], 0);
    let bad = app.get("/api/stats?session=no%20spaces").await;
    assert_eq!(bad.status(), 400);
}
