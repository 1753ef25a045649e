//! The per-connection meter and `MeteredIo`, the socket wrapper that feeds it.
//!
//! Every accepted connection is wrapped before hyper sees it, so the counts are exact: request
//! line and headers in; status line, headers, chunk framing, bodies and WebSocket frames out.
//! Bytes belong to the request being served. Request bytes arrive before the request is routed,
//! so reads between two requests wait in `pending_in` and go to the next request's transport.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stats::{Counters, TransportTable, WireStats};
use crate::transport::Transport;

/// What one connection has been doing, for attribution.
#[derive(Debug)]
pub struct ConnMeter {
    stats: Arc<WireStats>,
    // A std Mutex: held for a few atomic adds, never across an await, and only this connection's
    // task (and its upgraded WebSocket) ever touches it, so it is uncontended.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    transport: Transport,
    session: Option<Arc<TransportTable>>,
    /// Reads go to `transport` while a request is being served; between requests they wait.
    in_request: bool,
    pending_in: u64,
    /// The transport whose `open_connections` counts this connection.
    open_in: Option<Transport>,
}

impl ConnMeter {
    pub fn new(stats: Arc<WireStats>) -> Arc<Self> {
        stats.connection_opened();
        Arc::new(ConnMeter {
            stats,
            state: Mutex::new(State {
                transport: Transport::Page,
                session: None,
                in_request: false,
                pending_in: 0,
                open_in: None,
            }),
        })
    }

    /// A meter for a request that did not come through the accept loop (in-process tests).
    pub fn detached() -> Arc<Self> {
        Self::new(Arc::new(WireStats::default()))
    }

    pub fn stats(&self) -> &Arc<WireStats> {
        &self.stats
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn each(&self, state: &State, f: impl Fn(&Counters)) {
        f(self.stats.total().get(state.transport));
        if let Some(session) = &state.session {
            f(session.get(state.transport));
        }
    }

    /// A request arrived: from now on its bytes (and those read just before it) are its own.
    pub fn begin_request(&self, transport: Transport, session: Option<Arc<TransportTable>>) {
        let mut state = self.state();
        if state.open_in != Some(transport) {
            if let Some(old) = state.open_in.replace(transport) {
                self.stats.total().get(old).open_connections.fetch_sub(1, Relaxed);
            }
            self.stats.total().get(transport).open_connections.fetch_add(1, Relaxed);
        }
        if let Some(old) = &state.session {
            old.get(state.transport).open_connections.fetch_sub(1, Relaxed);
        }
        if let Some(new) = &session {
            new.get(transport).open_connections.fetch_add(1, Relaxed);
        }
        state.transport = transport;
        state.session = session;
        state.in_request = true;
        let pending = std::mem::take(&mut state.pending_in);
        self.each(&state, |c| {
            c.requests.fetch_add(1, Relaxed);
            c.bytes_in.fetch_add(pending, Relaxed);
        });
    }

    /// The response body has been handed over in full: later reads belong to the next request.
    pub fn end_response(&self) {
        self.state().in_request = false;
    }

    /// A Snapshot was handed to this connection; `payload` is its size in the transport's
    /// framing without HTTP overhead (JSON body, SSE event, WebSocket message).
    pub fn delivered(&self, payload: usize) {
        let state = self.state();
        self.each(&state, |c| {
            c.events.fetch_add(1, Relaxed);
            c.payload_bytes_out.fetch_add(payload as u64, Relaxed);
        });
    }

    /// A conditional request was answered 304 Not Modified.
    pub fn not_modified(&self) {
        let state = self.state();
        self.each(&state, |c| {
            c.not_modified.fetch_add(1, Relaxed);
        });
    }

    fn read(&self, n: usize) {
        let mut state = self.state();
        if state.in_request {
            self.each(&state, |c| {
                c.bytes_in.fetch_add(n as u64, Relaxed);
            });
        } else {
            state.pending_in += n as u64;
        }
    }

    fn wrote(&self, n: usize) {
        let state = self.state();
        self.each(&state, |c| {
            c.bytes_out.fetch_add(n as u64, Relaxed);
        });
    }
}

impl Drop for ConnMeter {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        // Bytes of a request that never got routed (cut short, or refused by hyper itself).
        let pending = state.pending_in;
        if let Some(open) = state.open_in {
            self.stats.total().get(open).open_connections.fetch_sub(1, Relaxed);
        }
        if let Some(session) = &state.session {
            session.get(state.transport).open_connections.fetch_sub(1, Relaxed);
        }
        self.stats.total().get(state.transport).bytes_in.fetch_add(pending, Relaxed);
        if let Some(session) = &state.session {
            session.get(state.transport).bytes_in.fetch_add(pending, Relaxed);
        }
        self.stats.connection_closed();
    }
}

/// A socket that reports every byte it moves to its `ConnMeter`.
#[derive(Debug)]
pub struct MeteredIo<T> {
    inner: T,
    meter: Arc<ConnMeter>,
}

impl<T> MeteredIo<T> {
    pub fn new(inner: T, meter: Arc<ConnMeter>) -> Self {
        MeteredIo { inner, meter }
    }

    /// The meter this socket reports to.
    pub fn meter(&self) -> &Arc<ConnMeter> {
        &self.meter
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MeteredIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.meter.read(n);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MeteredIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.meter.wrote(n);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            self.meter.wrote(n);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that tells the meter when it has been handed over in full (dropped), so the
/// reads that follow go to the next request.
#[derive(Debug)]
pub struct MeteredBody {
    inner: axum::body::Body,
    meter: Option<Arc<ConnMeter>>,
}

impl MeteredBody {
    pub fn new(inner: axum::body::Body, meter: Arc<ConnMeter>) -> Self {
        MeteredBody { inner, meter: Some(meter) }
    }

    /// The body of a `101 Switching Protocols`: the connection stays with this request.
    pub fn upgrade(inner: axum::body::Body) -> Self {
        MeteredBody { inner, meter: None }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if let Some(meter) = &self.meter {
            meter.end_response();
        }
    }
}

impl http_body::Body for MeteredBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SessionId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_go_to_the_request_they_belong_to() {
        let stats = Arc::new(WireStats::default());
        let meter = ConnMeter::new(stats.clone());
        let (client, server) = tokio::io::duplex(1024);
        let mut io = MeteredIo::new(server, meter.clone());
        let mut client = client;
        let session = stats.session(&SessionId::parse("s").unwrap());

        // First request: read before routing, then attributed to poll (and the session).
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = io.read(&mut buf).await.unwrap();
        meter.begin_request(Transport::Poll, Some(session.clone()));
        io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        meter.delivered(5);
        meter.end_response();

        // Second request on the same connection goes to sse.
        client.write_all(b"GET /stream HTTP/1.1\r\n\r\n").await.unwrap();
        let m = io.read(&mut buf).await.unwrap();
        meter.begin_request(Transport::Sse, None);
        io.write_all(b"xyz").await.unwrap();

        let poll = stats.total().get(Transport::Poll).report();
        assert_eq!((poll.requests, poll.bytes_in, poll.bytes_out), (1, n as u64, 19));
        assert_eq!((poll.events, poll.payload_bytes_out, poll.open_connections), (1, 5, 0));
        assert_eq!(session.get(Transport::Poll).report(), poll);
        let sse = stats.total().get(Transport::Sse).report();
        assert_eq!((sse.requests, sse.bytes_in, sse.bytes_out), (1, m as u64, 3));
        assert_eq!(sse.open_connections, 1);
        assert_eq!(session.get(Transport::Sse).report().requests, 0);

        drop(io);
        drop(meter);
        assert_eq!(stats.total().get(Transport::Sse).report().open_connections, 0);
        assert_eq!(stats.connections_open(), 0);
    }
}
