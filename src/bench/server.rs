//! The server side of a run: `--spawn` starts a local `pulse serve` child (and always stops it),
//! and `/api/stats` is read before, during and after a run for server CPU, RSS and counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::clients::{Kind, Open};
use super::http1::{self, Conn};
use super::measure::Tally;
use super::target::Target;

/// How long a spawned server may take to answer `/healthz`.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long a stats or health request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of a spawned server's log kept, to show when it fails to start.
const LOG_LINES: usize = 20;

/// A `pulse serve` child process, stopped when this is dropped (also on error and Ctrl-C).
#[derive(Debug)]
pub struct SpawnedServer {
    child: Child,
    pub addr: SocketAddr,
}

impl SpawnedServer {
    /// Starts `pulse serve` on a free loopback port with `tick`, and waits until it is healthy.
    /// The same `seed` gives every run the same sequence of changes, so transports compare on
    /// equal terms.
    pub async fn start(
        tick: Duration,
        heartbeat: Duration,
        seed: u64,
    ) -> anyhow::Result<SpawnedServer> {
        let exe = std::env::current_exe().context("cannot find the pulse executable")?;
        let addr = free_port()?;
        let tick = humantime::format_duration(tick).to_string().replace(' ', "");
        let heartbeat = humantime::format_duration(heartbeat).to_string().replace(' ', "");
        // The child inherits our open-file limit, raised to the hard limit (20 000 here).
        super::limits::raise_open_file_limit();
        let mut child = Command::new(&exe)
            .args(["serve", "--addr", &addr.to_string(), "--tick", &tick])
            .args(["--heartbeat", &heartbeat, "--seed", &seed.to_string()])
            .env("RUST_LOG", "pulse=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                    if log.len() == LOG_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        let mut server = SpawnedServer { child, addr };
        let target = Target::local(addr);
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = server.child.try_wait()? {
                let log = log.lock().unwrap_or_else(|e| e.into_inner());
                bail!(
                    "the spawned server exited at once ({status}):\n{}",
                    log.iter().cloned().collect::<Vec<_>>().join("\n")
                );
            }
            if get(&target, "/healthz").await.is_ok_and(|(status, _)| status == 200) {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the spawned server did not answer /healthz on {addr} within {START_DEADLINE:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL if it lingers).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid; the worst case is ESRCH.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// A free port on 127.0.0.1, found by binding port 0 and letting go of it.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free local port")?;
    Ok(listener.local_addr()?)
}

/// `GET path` on a fresh connection: status and body.
pub async fn get(target: &Target, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let exchange = async {
        let tally = Arc::new(Tally::default());
        let stream = http1::connect(target.addr, None).await?;
        let mut conn = Conn::new((stream, Open::new(tally.clone())), tally);
        conn.send(target.get(path, "Connection: close\r\n").as_bytes()).await?;
        let head = conn.head().await?;
        let body = conn.body(&head).await?;
        Ok::<_, std::io::Error>((head.status, body))
    };
    Ok(tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("GET {path} took longer than {REQUEST_TIMEOUT:?}"))??)
}

/// What `/api/stats` says at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerStats {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub connections_open: u64,
    /// The current Snapshot id: the difference between two readings is the changes published.
    pub snapshot_id: u64,
    /// Per transport: (bytes_in, bytes_out, events, open_connections).
    pub transports: Vec<(Kind, TransportStats)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub events: u64,
    pub open_connections: u64,
}

impl ServerStats {
    /// Reads `/api/stats`; `None` when the server does not have it (not every server speaking
    /// the contract reports its own costs).
    pub async fn fetch(target: &Target) -> Option<ServerStats> {
        let (status, body) = get(target, "/api/stats").await.ok()?;
        if status != 200 {
            return None;
        }
        let json: Value = serde_json::from_slice(&body).ok()?;
        Some(ServerStats::parse(&json))
    }

    fn parse(json: &Value) -> ServerStats {
        let u = |v: &Value| v.as_u64().unwrap_or(0);
        ServerStats {
            cpu_seconds: json["process"]["cpu_seconds"].as_f64().unwrap_or(0.0),
            rss_bytes: u(&json["process"]["rss_bytes"]),
            connections_open: u(&json["connections"]["open"]),
            snapshot_id: u(&json["snapshot"]["id"]),
            transports: Kind::ALL
                .iter()
                .map(|&k| {
                    let t = &json["transports"][k.name()];
                    let stats = TransportStats {
                        bytes_in: u(&t["bytes_in"]),
                        bytes_out: u(&t["bytes_out"]),
                        events: u(&t["events"]),
                        open_connections: u(&t["open_connections"]),
                    };
                    (k, stats)
                })
                .collect(),
        }
    }

    pub fn transport(&self, kind: Kind) -> TransportStats {
        self.transports.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s).unwrap_or_default()
    }
}

/// Samples `/api/stats` while a run goes on, keeping the peaks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Peaks {
    pub rss_bytes: u64,
    pub connections_open: u64,
}

impl Peaks {
    pub fn note(&mut self, stats: &ServerStats) {
        self.rss_bytes = self.rss_bytes.max(stats.rss_bytes);
        self.connections_open = self.connections_open.max(stats.connections_open);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stats_contract() {
        let json = serde_json::json!({
            "process": {"cpu_seconds": 1.5, "rss_bytes": 1000},
            "connections": {"open": 7, "accepted": 9},
            "transports": {"sse": {"bytes_in": 1, "bytes_out": 2, "events": 3, "open_connections": 4}}
        });
        let stats = ServerStats::parse(&json);
        assert_eq!((stats.cpu_seconds, stats.rss_bytes, stats.connections_open), (1.5, 1000, 7));
        assert_eq!(stats.transport(Kind::Sse).events, 3);
        assert_eq!(stats.transport(Kind::Poll), TransportStats::default());
    }
}
