//! An open SSE stream on the fast path: one small task that owns only the socket (with its
//! meter), a hub receiver and a heartbeat timer, and writes chunks rendered once per change.
//!
//! Nothing is buffered per connection: a change is the shared `Rendered::sse_chunk`, written
//! straight to the socket; a client that reads slowly is handed the newest one when its socket
//! takes more, never a queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::snapshot::Rendered;
use crate::wire::MeteredIo;

/// `transport::sse::HEARTBEAT` (`:\n\n`) as one chunk.
pub const HEARTBEAT_CHUNK: &[u8] = b"3\r\n:\n\n\r\n";
/// The end of a chunked body: how a stream ends on shutdown, as hyper ends it.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
/// Bytes a client sends on an open stream are read (and counted) only to notice it closing.
const PROBE: usize = 64;

/// Writes every change after `skip_through` (and a heartbeat after `heartbeat` without one) until
/// the client goes or `stop` is cancelled. The head and the opening event have been written.
pub async fn run<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: MeteredIo<T>,
    mut rx: watch::Receiver<Arc<Rendered>>,
    skip_through: u64,
    heartbeat: Duration,
    stop: CancellationToken,
) {
    // The heartbeat timer is not reset on every event (10 000 timer updates per change): it
    // fires at the old deadline and is moved to the real one if a write happened since.
    let mut last_write = Instant::now();
    let timer = tokio::time::sleep_until(last_write + heartbeat);
    let stopped = stop.cancelled();
    tokio::pin!(timer, stopped);
    let mut probe = [0u8; PROBE];
    loop {
        let chunk = tokio::select! {
            biased;
            _ = &mut stopped => {
                let _ = io.write_all(LAST_CHUNK).await;
                let _ = io.shutdown().await;
                return;
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = rx.borrow_and_update();
                if current.snapshot.id <= skip_through {
                    continue;
                }
                io.meter().delivered(current.sse_event.len());
                current.sse_chunk.clone()
            }
            _ = &mut timer => {
                let due = last_write + heartbeat;
                if Instant::now() < due {
                    timer.as_mut().reset(due);
                    continue;
                }
                bytes::Bytes::from_static(HEARTBEAT_CHUNK)
            }
            read = io.read(&mut probe) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        };
        if io.write_all(&chunk).await.is_err() {
            return;
        }
        last_write = Instant::now();
        if timer.is_elapsed() {
            timer.as_mut().reset(last_write + heartbeat);
        }
    }
}
