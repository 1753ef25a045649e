//! `Config`: everything `serve` needs to know, with the defaults of `pulse serve`.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderValue;

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
    /// How long shutdown waits for open connections to finish before cutting them.
    pub shutdown_grace: Duration,
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
            shutdown_grace: Duration::from_millis(1500),
        }
    }
}
