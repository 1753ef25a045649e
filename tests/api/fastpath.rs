//! The fast path (plain polls and SSE streams answered without hyper) against the full path:
//! the same bytes for the same request, and every odd request still answered by the full path.

use std::net::SocketAddr;

use crate::helpers::*;
use chrono::TimeZone;
use pulse::snapshot::Snapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Two servers with the same Snapshot, one with the fast path and one without.
async fn fast_and_full(config: pulse::Config) -> (TestApp, TestApp) {
    let fast = spawn_app_with(pulse::Config { fast_path: true, ..config.clone() }).await;
    let full = spawn_app_with(pulse::Config { fast_path: false, ..config }).await;
    let timestamp = chrono::Utc.timestamp_millis_opt(1_796_412_274_123).unwrap();
    for app in [&fast, &full] {
        assert!(app.hub.publish(Snapshot { count: 57, id: 4242, timestamp }));
    }
    (fast, full)
}

/// Whether `buf` holds a whole response: a head, then its Content-Length of body or, for a
/// chunked stream, its first chunk.
fn complete(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head)) = response.parse(buf) else { return false };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    if header("transfer-encoding").is_some() {
        return buf[head..].windows(4).any(|w| w == b"\n\r\n" || w == b"\n\n\r\n");
    }
    let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    buf.len() >= head + length
}

/// Sends `request` and reads `responses` whole responses (the last one up to its first chunk).
async fn exchange(addr: SocketAddr, request: &[u8], responses: usize) -> Vec<String> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    within(DEADLINE, "the responses", async {
        while out.len() < responses {
            while !complete(&buf) {
                let mut chunk = [0u8; 4096];
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed after {} responses: {:?}", out.len(), buf);
                buf.extend_from_slice(&chunk[..n]);
            }
            let len = response_len(&buf);
            out.push(without_date(&String::from_utf8_lossy(&buf[..len])));
            buf.drain(..len);
        }
    })
    .await;
    out
}

fn response_len(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        _ => unreachable!("complete() said so"),
    };
    let header = |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
    if header("transfer-encoding").is_some() {
        // A stream: what has been read of it.
        return buf.len();
    }
    let length = header("content-length")
        .map_or(0, |h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
    head + length
}

/// The response with its `date` line blanked: the one header that depends on the second.
fn without_date(response: &str) -> String {
    response
        .split("\r\n")
        .map(|line| if line.starts_with("date: ") { "date: <now>" } else { line })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn both_paths_send_the_same_bytes() {
    let (fast, full) = fast_and_full(quiet_config()).await;
    let requests: [&[u8]; 10] = [
        b"GET /api/count HTTP/1.1\r\nHost: p\r\n\r\n",
        b"GET /api/count?session=same HTTP/1.1\r\nHost: p\r\nOrigin: https://a.example\r\n\r\n",
        b"GET /api/count HTTP/1.1\r\nHost: p\r\nIf-None-Match: \"4242\"\r\n\r\n",
        b"GET /api/count HTTP/1.1\r\nHost: p\r\nIf-None-Match: \"1\", W/\"4242\"\r\n\r\n",
        b"GET /api/count HTTP/1.1\r\nHost: p\r\nIf-None-Match: \"4241\"\r\n\r\n",
        b"GET /api/stream HTTP/1.1\r\nHost: p\r\nAccept: text/event-stream\r\n\r\n",
        b"GET /api/stream?session=s HTTP/1.1\r\nHost: p\r\nLast-Event-ID: 4242\r\n\r\n",
        b"GET /api/stream?lastEventId=4242 HTTP/1.1\r\nHost: p\r\n\r\n",
        b"GET /api/stream?lastEventId=4241 HTTP/1.1\r\nHost: p\r\n\r\n",
        b"GET /api/stream HTTP/1.1\r\nHost: p\r\nLast-Event-ID: \xff\r\n\r\n",
    ];
    for request in requests {
        let a = exchange(fast.addr, request, 1).await;
        let b = exchange(full.addr, request, 1).await;
        assert_eq!(a, b, "{:?}", String::from_utf8_lossy(request));
    }
    // The fast path did answer them: hyper was never asked for a poll or a stream.
    let poll = fast.stats.total().get(pulse::transport::Transport::Poll).report();
    assert_eq!(poll.requests, 2);
}

#[tokio::test]
async fn restricted_cors_sends_the_same_bytes_on_both_paths() {
    let config = pulse::Config {
        cors_origins: vec!["https://ok.example".parse().unwrap()],
        ..quiet_config()
    };
    let (fast, full) = fast_and_full(config).await;
    for origin in ["", "Origin: https://ok.example\r\n", "Origin: https://evil.example\r\n"] {
        for path in ["/api/count", "/api/stream"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: p\r\n{origin}\r\n");
            let a = exchange(fast.addr, request.as_bytes(), 1).await;
            let b = exchange(full.addr, request.as_bytes(), 1).await;
            assert_eq!(a, b, "{request:?}");
        }
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_across_both_paths() {
    let (fast, full) = fast_and_full(quiet_config()).await;
    let request = "GET /api/count HTTP/1.1\r\nHost: p\r\n\r\n\
                   GET /api/count HTTP/1.1\r\nHost: p\r\nIf-None-Match: \"4242\"\r\n\r\n\
                   GET /api/nope HTTP/1.1\r\nHost: p\r\n\r\n\
                   GET /api/count HTTP/1.1\r\nHost: p\r\n\r\n";
    let a = exchange(fast.addr, request.as_bytes(), 4).await;
    let b = exchange(full.addr, request.as_bytes(), 4).await;
    assert_eq!(a, b);
    assert!(a[0].starts_with("HTTP/1.1 200"), "{}", a[0]);
    assert!(a[1].starts_with("HTTP/1.1 304"), "{}", a[1]);
    assert!(a[2].starts_with("HTTP/1.1 404"), "{}", a[2]);
    assert!(a[3].starts_with("HTTP/1.1 200"), "{}", a[3]);
}

#[tokio::test]
async fn a_head_split_across_many_small_writes_is_answered() {
    let app = spawn_app_with(quiet_config()).await;
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.set_nodelay(true).unwrap();
    for byte in b"GET /api/count?session=slow HTTP/1.1\r\nHost: p\r\nX-Pad: 0123456789\r\n\r\n" {
        socket.write_all(&[*byte]).await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut buf = Vec::new();
    within(DEADLINE, "the answer", async {
        while !complete(&buf) {
            let mut chunk = [0u8; 1024];
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("\r\n\r\n{\"count\":"), "{text}");
    let id = pulse::wire::SessionId::parse("slow").unwrap();
    let report =
        app.stats.find_session(&id).unwrap().get(pulse::transport::Transport::Poll).report();
    assert_eq!(report.requests, 1);
}

#[tokio::test]
async fn odd_requests_on_fast_routes_still_get_the_full_path_answers() {
    let app = spawn_app_with(quiet_config()).await;
    let cases: [(&str, &str); 5] = [
        ("POST /api/stream HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n", "405"),
        ("GET /api/count?session=a%20b HTTP/1.1\r\nHost: p\r\n\r\n", "400"),
        ("GET /api/stream?lastEventId=1&lastEventId=2 HTTP/1.1\r\nHost: p\r\n\r\n", "400"),
        ("GET /api/count HTTP/1.0\r\nHost: p\r\n\r\n", "200"),
        ("GET /api/count HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n", "200"),
    ];
    for (request, status) in cases {
        let got = exchange(app.addr, request.as_bytes(), 1).await;
        let status_line = got[0].lines().next().unwrap_or_default().to_owned();
        assert!(status_line.contains(&format!(" {status} ")), "{request:?} -> {}", got[0]);
    }
    let huge = format!(
        "GET /api/stream HTTP/1.1\r\nHost: p\r\nX-Big: {}\r\n\r\n",
        "a".repeat(pulse::server::MAX_HEADER_BYTES)
    );
    let got = exchange(app.addr, huge.as_bytes(), 1).await;
    assert!(got[0].starts_with("HTTP/1.1 431"), "{}", got[0]);
}
