//! The bench's clients, one per transport, each speaking the real protocol over its own socket.
//!
//! - [`poll`]: `GET /api/count` at an interval with jitter, plain or conditional (ETag).
//! - [`longpoll`]: a `GET /api/longpoll?since=ID` loop.
//! - [`sse`]: `GET /api/stream`, read with the incremental SSE parser.
//! - [`ws`]: `GET /api/ws`, through `tokio-tungstenite`.

pub mod longpoll;
pub mod poll;
pub mod sse;
pub mod ws;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::bench::measure::{Receipt, Seen};
use crate::snapshot::Snapshot;
use tokio_util::sync::CancellationToken;

use super::http1;
use super::measure::Tally;
use super::target::Target;

/// How long one connection attempt may take before it counts as a connect error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection attempts in flight at once per process: more only overflow the server's accept
/// backlog, and a dropped SYN costs a full second of retransmission.
pub const CONNECTS_IN_FLIGHT: usize = 256;
/// Wait after a failed connection before the next attempt.
pub const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The transports the bench drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Poll,
    Etag,
    Longpoll,
    Sse,
    Ws,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Poll, Kind::Etag, Kind::Longpoll, Kind::Sse, Kind::Ws];

    /// The name used on the command line, in reports and in the server's `/api/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Poll => "poll",
            Kind::Etag => "etag",
            Kind::Longpoll => "longpoll",
            Kind::Sse => "sse",
            Kind::Ws => "ws",
        }
    }

    /// Whether each client makes a request per look (polling), rather than holding a stream.
    pub fn is_request_per_look(self) -> bool {
        matches!(self, Kind::Poll | Kind::Etag | Kind::Longpoll)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.name() == s.trim()).ok_or_else(|| {
            format!("unknown transport {s:?}; choose from poll, etag, longpoll, sse, ws")
        })
    }
}

/// What every client of one process shares.
#[derive(Debug)]
pub struct Shared {
    pub target: Target,
    /// Source address to connect from (a loopback alias), or the system's choice.
    pub source: Option<IpAddr>,
    pub poll_interval: Duration,
    pub longpoll_timeout: Duration,
    /// Cancelled when the run ends: every client loop `select!`s on it.
    pub stop: CancellationToken,
    pub connects: Semaphore,
    /// Clients that have arrived: received their first Snapshot, or failed their first connect.
    pub arrived: AtomicUsize,
}

/// One client's progress through its first connection.
#[derive(Debug, Default)]
pub struct Me {
    connected: bool,
    arrived: bool,
}

impl Shared {
    pub fn new(
        target: Target,
        source: Option<IpAddr>,
        poll_interval: Duration,
        longpoll_timeout: Duration,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            target,
            source,
            poll_interval,
            longpoll_timeout,
            stop: CancellationToken::new(),
            connects: Semaphore::new(CONNECTS_IN_FLIGHT),
            arrived: AtomicUsize::new(0),
        })
    }

    /// Opens a connection, counting it (or its failure) in `tally`; `None` when it failed or
    /// the run ended first.
    pub async fn open(&self, tally: &Arc<Tally>, me: &mut Me) -> Option<(TcpStream, Open)> {
        let attempt = async {
            let _permit = self.connects.acquire().await;
            tokio::time::timeout(CONNECT_TIMEOUT, http1::connect(self.target.addr, self.source))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))
                })
        };
        let result = tokio::select! {
            _ = self.stop.cancelled() => return None,
            result = attempt => result,
        };
        match result {
            Ok(stream) => {
                if !std::mem::replace(&mut me.connected, true) {
                    tally.connected.fetch_add(1, Relaxed);
                }
                Some((stream, Open::new(tally.clone())))
            }
            Err(e) => {
                tally.connect_errors.fetch_add(1, Relaxed);
                self.arrive(me);
                tally.error(|| connect_error(&self.target, self.source, &e));
                None
            }
        }
    }

    /// Notes that a client has arrived (once per client); the run's duration starts when
    /// every client has.
    /// Records a Snapshot a client received at `at_us`; its first one makes it arrive.
    pub fn receive(
        &self,
        me: &mut Me,
        seen: &mut Seen,
        snapshot: &Snapshot,
        at_us: i64,
        tally: &Tally,
    ) -> Receipt {
        let receipt = seen.receive(snapshot, at_us, tally);
        if receipt == Receipt::First {
            self.arrive(me);
        }
        receipt
    }

    pub fn arrive(&self, me: &mut Me) {
        if !std::mem::replace(&mut me.arrived, true) {
            self.arrived.fetch_add(1, Relaxed);
        }
    }

    /// Waits `delay` unless the run ends first; `false` when it ended.
    pub async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

/// A connect error, with what most likely caused it.
fn connect_error(target: &Target, source: Option<IpAddr>, e: &std::io::Error) -> String {
    let from = source.map(|s| format!(" from {s}")).unwrap_or_default();
    let hint = match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            " (this client process is out of file descriptors: its open-file limit is reached)"
        }
        Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => {
            " (out of ephemeral ports for this source address: ~28 000 per address and destination)"
        }
        Some(libc::ECONNREFUSED) => " (nothing listens there, or its accept backlog is full)",
        Some(libc::ECONNRESET) => {
            " (the server reset the connection: it may be out of file descriptors)"
        }
        _ => "",
    };
    format!("connect to {}{from}: {e}{hint}", target.addr)
}

/// Counts a connection as open while it lives.
#[derive(Debug)]
pub struct Open(Arc<Tally>);

impl Open {
    pub fn new(tally: Arc<Tally>) -> Open {
        tally.open.fetch_add(1, Relaxed);
        Open(tally)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// Notes that an established connection ended before the run did.
pub fn lost(tally: &Tally, what: &str, e: &dyn fmt::Display) {
    tally.disconnects.fetch_add(1, Relaxed);
    tally.error(|| format!("{what}: {e}"));
}

/// Notes an answer with a status the client did not expect.
pub fn bad_status(tally: &Tally, what: &str, status: u16) {
    tally.http_errors.fetch_add(1, Relaxed);
    let hint = match status {
        503 => " (the server refused it: at its connection limit, or its source is down)",
        429 => " (the server is rate-limiting)",
        _ => "",
    };
    tally.error(|| format!("{what} answered HTTP {status}{hint}"));
}

/// Runs one client of `kind` until the run ends.
pub async fn run(kind: Kind, shared: Arc<Shared>, tally: Arc<Tally>, seed: u64) {
    match kind {
        Kind::Poll => poll::run(shared, tally, false, seed).await,
        Kind::Etag => poll::run(shared, tally, true, seed).await,
        Kind::Longpoll => longpoll::run(shared, tally).await,
        Kind::Sse => sse::run(shared, tally).await,
        Kind::Ws => ws::run(shared, tally).await,
    }
}
