//! `Config`: everything `serve` needs to know, with the defaults of `pulse serve`.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderValue;

use crate::source::redis::RedisSettings;
use crate::source::walk::WalkParams;

#[derive(Clone, Debug)]
pub struct Config {
    /// How the simulated count moves and how often it ticks.
    pub walk: WalkParams,
    /// The count the simulation starts from.
    pub start: u32,
    /// Seed of the simulation; `None` draws one from the operating system.
    pub seed: Option<u64>,
    /// Idle SSE streams get a comment line and WebSockets a ping this often. It also bounds how
    /// long a vanished client is still counted as open.
    pub heartbeat: Duration,
    /// The reconnection delay SSE clients are told (`retry:`).
    pub sse_retry: Duration,
    /// Origins allowed to call `/api/*` from a browser; empty means any origin.
    pub cors_origins: Vec<HeaderValue>,
    /// Serve the page from this folder instead of the copy built into the binary.
    pub page_dir: Option<PathBuf>,
    /// Connections served at once; past it new clients get 503 with `Retry-After`.
    pub max_connections: usize,
    /// A client must send its whole request head within this time (slowloris), and an idle
    /// keep-alive connection is closed after it.
    pub header_timeout: Duration,
    /// Share the count with other instances through Redis; `None` runs the simulator
    /// in-process.
    pub redis: Option<RedisSettings>,
    /// How long shutdown waits for open connections to finish before cutting them.
    pub shutdown_grace: Duration,
    /// Answer plain polls and SSE streams on the lean path (`fastpath`); off, every request
    /// goes through hyper and the router. The answers are the same either way.
    pub fast_path: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            walk: WalkParams::default(),
            start: 50,
            seed: None,
            heartbeat: Duration::from_secs(15),
            sse_retry: Duration::from_secs(1),
            cors_origins: Vec::new(),
            page_dir: None,
            max_connections: default_max_connections(),
            header_timeout: Duration::from_secs(10),
            redis: None,
            shutdown_grace: Duration::from_millis(1500),
            fast_path: true,
        }
    }
}

/// Open files kept free for everything that is not a client: listeners, Redis, logs, `/proc`.
pub const FILE_HEADROOM: u64 = 256;

/// The connection limit that fits this process's open-file limit, with headroom.
pub fn default_max_connections() -> usize {
    let files = open_file_limit().unwrap_or(1024);
    files.saturating_sub(FILE_HEADROOM).max(16) as usize
}

/// This process's soft limit on open files.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and has no other effect.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Raises the soft open-file limit to the hard one, since every client is a file; returns the
/// limit in force afterwards.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(raised.rlim_cur);
            }
        }
    }
    Some(limit.rlim_cur)
}
