//! Server-Sent Events: `GET /api/stream`, the body decoded and fed to the incremental parser;
//! on a dropped stream, reconnects after the server's `retry:` with `Last-Event-ID`, as a
//! browser's `EventSource` does.

use std::sync::Arc;

use super::{Me, RECONNECT_DELAY, Shared, bad_status, lost};
use crate::bench::http1::Conn;
use crate::bench::measure::{Seen, Tally, now_us};
use crate::bench::sse_parser::SseParser;
use crate::snapshot::Snapshot;

pub async fn run(shared: Arc<Shared>, tally: Arc<Tally>) {
    let (mut seen, mut me) = (Seen::default(), Me::default());
    let mut last_event_id: Option<String> = None;
    let mut retry = RECONNECT_DELAY;
    let mut chunk = Vec::new();
    loop {
        let Some(opened) = shared.open(&tally, &mut me).await else {
            if shared.pause(retry).await {
                continue;
            }
            return;
        };
        let mut conn = Conn::new(opened, tally.clone());
        let mut extra = "Accept: text/event-stream\r\nCache-Control: no-cache\r\n".to_owned();
        if let Some(id) = &last_event_id {
            extra.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        let mut parser = SseParser::new();
        let stream = async {
            conn.request(shared.target.get("/api/stream", &extra).as_bytes()).await?;
            let head = conn.head().await?;
            if head.status != 200 {
                bad_status(&tally, "GET /api/stream", head.status);
                shared.arrive(&mut me);
                return Ok(());
            }
            let mut decoder = head.body();
            loop {
                chunk.clear();
                if !conn.stream_body(&mut decoder, &mut chunk).await? {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server ended the stream",
                    ));
                }
                let now = now_us();
                for event in parser.feed(&chunk) {
                    match serde_json::from_str::<Snapshot>(&event.data) {
                        Ok(snapshot) => {
                            shared.receive(&mut me, &mut seen, &snapshot, now, &tally);
                        }
                        Err(e) => tally.error(|| format!("an SSE event is not a Snapshot: {e}")),
                    }
                }
                if let Some(id) = parser.last_event_id() {
                    last_event_id = Some(id.to_owned());
                }
                if let Some(r) = parser.retry() {
                    retry = r;
                }
            }
        };
        let result = tokio::select! {
            _ = shared.stop.cancelled() => return,
            result = stream => result,
        };
        if let Err(e) = result {
            lost(&tally, "GET /api/stream", &e);
        }
        drop(conn);
        if !shared.pause(retry).await {
            return;
        }
    }
}
