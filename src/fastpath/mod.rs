//! The fast path: plain `GET /api/count` and `GET /api/stream` answered straight from the
//! socket, without hyper, axum or tower; every other request is handed to them untouched.
//!
//! Why: a poll through the router costs routing, layers, header maps and boxed bodies, and an
//! open SSE stream through hyper keeps its read and write buffers (8 KiB and more) and a boxed
//! body for the stream's whole life. Here a poll is one parse and one write of bytes rendered
//! from the current Snapshot, and a stream is a task owning only its socket, a hub receiver and
//! a timer. Both send exactly the heads the full path sends (see [`heads`]), and every byte
//! still goes through the connection's meter, attributed as the full path attributes it.
//!
//! - [`request`]: parses a request head and decides whether the fast path may answer it.
//! - [`heads`]: the response heads, learned from the router at start-up.
//! - [`date`]: the `Date` header, rendered at most once a second.
//! - [`stream`]: the task of one open SSE stream.
//! - [`rewind`]: replays the bytes already read when a connection is handed to hyper.

pub mod date;
pub mod heads;
pub mod request;
pub mod rewind;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::heads::Heads;
use self::request::{Parsed, Route};
use self::rewind::Rewind;
use crate::http::AppState;
use crate::hub::Hub;
use crate::server::MAX_HEADER_BYTES;
use crate::snapshot::chunk;
use crate::transport::Transport;
use crate::transport::sse::Resume;
use crate::wire::stats::TransportTable;
use crate::wire::{MeteredIo, WireStats};

/// The first read buffer of a connection: a browser's request head fits; it grows (up to the
/// head limit) only for bigger ones, and is freed once a stream starts.
const HEAD_BUFFER: usize = 1024;

/// What the fast path needs to answer; one per server, shared by every connection.
#[derive(Debug)]
pub struct FastPath {
    hub: Hub,
    stats: Arc<WireStats>,
    heads: Heads,
    /// `retry: <ms>\n`, the first line of every stream.
    retry_line: Vec<u8>,
    heartbeat: Duration,
    header_timeout: Duration,
    /// Ids come from a store every instance shares (Redis); see `Resume`.
    shared_ids: bool,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// How the fast path left a connection.
#[derive(Debug)]
pub enum Served<T> {
    /// Closed, or living on as a stream task.
    Done,
    /// For hyper: its reads replay what the fast path had read.
    HandOff(Rewind<MeteredIo<T>>),
}

impl FastPath {
    pub fn new(state: &AppState, heads: Heads) -> Self {
        FastPath {
            hub: state.hub.clone(),
            stats: state.stats.clone(),
            heads,
            retry_line: format!("retry: {}\n", state.config.sse_retry.as_millis()).into_bytes(),
            heartbeat: state.config.heartbeat,
            header_timeout: state.config.header_timeout,
            shared_ids: state.config.redis.is_some(),
            stop: state.shutdown.clone(),
            tasks: state.tasks.clone(),
        }
    }

    /// Serves requests on `io` until one is not for the fast path (then hands the connection
    /// over), a stream starts, the client goes, a head takes longer than the header timeout,
    /// or the server stops.
    pub async fn serve<T>(&self, mut io: MeteredIo<T>) -> Served<T>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut buf = Vec::with_capacity(HEAD_BUFFER);
        let mut out = Vec::new();
        // The header timeout runs from the end of the previous answer (idle keep-alive included),
        // as hyper's does. The timer is moved only when it fires early, not at every request.
        let mut deadline = Instant::now() + self.header_timeout;
        let timer = tokio::time::sleep_until(deadline);
        let stopped = self.stop.cancelled();
        tokio::pin!(timer, stopped);
        loop {
            let current = self.hub.current();
            let request =
                match request::parse(&buf, current.etag.as_bytes(), self.heads.origin_sensitive) {
                    Parsed::Fast(request) => request,
                    Parsed::HandOff => return Served::HandOff(Rewind::new(io, buf)),
                    Parsed::Partial if buf.len() >= MAX_HEADER_BYTES => {
                        // hyper reads the rest and refuses it (431).
                        return Served::HandOff(Rewind::new(io, buf));
                    }
                    Parsed::Partial => {
                        drop(current);
                        if buf.len() == buf.capacity() {
                            buf.reserve(buf.len().max(HEAD_BUFFER));
                        }
                        let read = tokio::select! {
                            biased;
                            _ = &mut stopped => return Served::Done,
                            // Bytes that are there are read before the timer is looked at: on a
                            // busy server a head that arrived in time may be polled late.
                            read = io.read_buf(&mut buf) => read,
                            _ = &mut timer => {
                                if Instant::now() >= deadline {
                                    return Served::Done;
                                }
                                timer.as_mut().reset(deadline);
                                continue;
                            }
                        };
                        match read {
                            Ok(0) | Err(_) => return Served::Done,
                            Ok(_) => continue,
                        }
                    }
                };
            let session = request.session.as_ref().map(|id| self.stats.session(id));
            out.clear();
            match request.route {
                Route::Count { conditional, fresh } => {
                    let meter = io.meter();
                    meter.begin_request(
                        if conditional { Transport::Etag } else { Transport::Poll },
                        session,
                    );
                    if fresh {
                        meter.not_modified();
                        self.heads.put_not_modified(&mut out, current.etag.as_bytes());
                    } else {
                        meter.delivered(current.json.len());
                        self.heads.put_count(&mut out, current.etag.as_bytes(), &current.json);
                    }
                    drop(current);
                    buf.drain(..request.len);
                    if io.write_all(&out).await.is_err() {
                        return Served::Done;
                    }
                    io.meter().end_response();
                    deadline = Instant::now() + self.header_timeout;
                }
                Route::Stream { last_event_id } => {
                    if buf.len() > request.len {
                        // Bytes after a stream request: nothing a browser sends; hyper decides.
                        return Served::HandOff(Rewind::new(io, buf));
                    }
                    drop((current, buf));
                    self.open_stream(io, out, last_event_id, session).await;
                    return Served::Done;
                }
            }
        }
    }

    /// Writes the head and the opening of a stream, then leaves the socket to a stream task.
    async fn open_stream<T>(
        &self,
        mut io: MeteredIo<T>,
        mut out: Vec<u8>,
        last_event_id: Option<u64>,
        session: Option<Arc<TransportTable>>,
    ) where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let meter = io.meter().clone();
        meter.begin_request(Transport::Sse, session);
        let mut rx = self.hub.subscribe();
        let current = rx.borrow_and_update().clone();
        // Anything but the current id (older, newer, garbage) gets the current Snapshot.
        let resume = Resume::new(last_event_id, current.snapshot.id, self.shared_ids);
        self.heads.put_stream(&mut out);
        let mut opening = self.retry_line.clone();
        if resume.send_current {
            meter.delivered(current.sse_event.len());
            opening.extend_from_slice(&current.sse_event);
        } else {
            opening.push(b'\n');
        }
        out.extend_from_slice(&chunk(&opening));
        drop((current, opening));
        if io.write_all(&out).await.is_err() {
            return;
        }
        drop(out);
        let (heartbeat, stop) = (self.heartbeat, self.stop.clone());
        self.tasks.spawn(stream::run(io, rx, resume.skip_through, heartbeat, stop));
    }
}
