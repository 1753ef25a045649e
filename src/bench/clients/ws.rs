//! WebSocket: `GET /api/ws` upgraded with `tokio-tungstenite` over a byte-counting socket; one
//! text message per change. Pings are answered by tungstenite while reading.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{Me, Open, RECONNECT_DELAY, Shared, lost};
use crate::bench::measure::{Seen, Tally, now_us};
use crate::snapshot::Snapshot;

/// Read buffer per connection: a Snapshot message is ~60 bytes, and tungstenite's default
/// (128 KiB) times ten thousand clients would be more than a gigabyte.
const READ_BUFFER: usize = 4 * 1024;

pub async fn run(shared: Arc<Shared>, tally: Arc<Tally>) {
    let (mut seen, mut me) = (Seen::default(), Me::default());
    let url = format!("ws://{}{}/api/ws", shared.target.host, shared.target.prefix);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20));
    loop {
        let Some((stream, open)) = shared.open(&tally, &mut me).await else {
            if shared.pause(RECONNECT_DELAY).await {
                continue;
            }
            return;
        };
        let session = async {
            let io = Counted { inner: stream, tally: tally.clone(), _open: open };
            tally.requests.fetch_add(1, Relaxed);
            let (mut ws, _) =
                tokio_tungstenite::client_async_with_config(url.as_str(), io, Some(config)).await?;
            while let Some(message) = ws.next().await {
                match message? {
                    Message::Text(text) => match serde_json::from_str::<Snapshot>(&text) {
                        Ok(snapshot) => {
                            shared.receive(&mut me, &mut seen, &snapshot, now_us(), &tally);
                        }
                        Err(e) => {
                            tally.error(|| format!("a WebSocket message is not a Snapshot: {e}"))
                        }
                    },
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)
        };
        let result: Result<(), _> = tokio::select! {
            _ = shared.stop.cancelled() => return,
            result = session => result,
        };
        if let Err(e) = result {
            lost(&tally, "GET /api/ws", &e);
        }
        if !shared.pause(RECONNECT_DELAY).await {
            return;
        }
    }
}

/// The socket, counting every byte into the tally (handshake and frames included).
struct Counted {
    inner: TcpStream,
    tally: Arc<Tally>,
    _open: Open,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.tally.bytes_down.fetch_add(n as u64, Relaxed);
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.tally.bytes_up.fetch_add(n as u64, Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
