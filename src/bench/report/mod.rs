//! What a bench run found: its parameters and one row per transport and client count, with
//! the derived costs. Written out as a terminal table, JSON and a self-contained HTML page.
//!
//! - [`table`]: the side-by-side terminal table.
//! - [`html`]: the HTML report with inline SVG charts.
//!
//! The JSON is this module's types through serde, documented field by field in docs/bench.md.

pub mod html;
pub mod table;

use serde::{Deserialize, Serialize};

use super::clients::Kind;
use super::measure::{Counts, Latency};

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub params: Params,
    pub runs: Vec<Run>,
}

/// How the run was made and on what.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    pub pulse_version: String,
    pub started_at: String,
    /// The command line, when run from one.
    pub command: Option<String>,
    pub target: String,
    /// Whether the bench started its own server (`--spawn`), fresh for every row group.
    pub spawned: bool,
    /// The spawned server's tick, in milliseconds (`None` against `--target`).
    pub tick_ms: Option<u64>,
    pub transports: Vec<Kind>,
    pub clients: Vec<usize>,
    pub duration_s: f64,
    pub poll_interval_s: f64,
    pub longpoll_timeout_s: f64,
    pub ramp_per_s: Option<f64>,
    pub together: bool,
    /// CPU cores of the machine.
    pub cores: usize,
    /// Open files one process may hold (the hard limit, which the bench raises to).
    pub open_file_limit: u64,
    /// Concurrent connections one source address can make to one destination.
    pub ports_per_source: u64,
}

/// One transport at one client count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub transport: Kind,
    pub clients: usize,
    /// Client processes the clients were spread over (1: the bench's own).
    pub workers: usize,
    /// Source addresses the clients connected from (empty: the system's choice).
    pub source_addresses: Vec<String>,
    /// Seconds from the first client's start to the run's end.
    pub elapsed_s: f64,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency_ms: Latency,
    /// The first error any client met, to say what went wrong.
    pub first_error: Option<String>,
    /// `None` when the server has no `/api/stats`.
    pub server: Option<ServerFigures>,
    pub derived: Derived,
}

/// The server's side of a run, from `/api/stats` before, during and after.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerFigures {
    /// CPU time the server process used during the run.
    pub cpu_seconds: f64,
    pub rss_before_bytes: u64,
    /// Highest resident memory seen while the run went on (sampled every half second).
    pub rss_peak_bytes: u64,
    /// Changes of the count the server published during the run (Snapshot ids): the most
    /// updates one client could have received.
    pub changes: u64,
    /// Most open connections seen, less those open before the run.
    pub connections_peak: u64,
    /// This transport's bytes as the server counted them during the run.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Snapshots the server handed to this transport's clients.
    pub events: u64,
    /// The transports that ran at the same time on this server (`--together`): CPU and RSS
    /// belong to all of them.
    pub shared_with: Vec<Kind>,
}

/// Costs derived from the measured figures; `None` when a divisor is zero.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Derived {
    /// Client-side wire bytes (up + down, headers and framing included) per update received.
    pub bytes_per_update: Option<f64>,
    /// Server CPU microseconds per update delivered (with `--together`, per update of all the
    /// transports that shared the server).
    pub server_cpu_us_per_update: Option<f64>,
    /// Server resident-memory growth per open connection, in KiB.
    pub server_rss_kb_per_connection: Option<f64>,
}

impl Derived {
    pub fn of(counts: &Counts, server: Option<&ServerFigures>, updates_sharing_cpu: u64) -> Self {
        let ratio = |a: f64, b: u64| (b > 0).then(|| a / b as f64);
        Derived {
            bytes_per_update: ratio((counts.bytes_up + counts.bytes_down) as f64, counts.updates),
            server_cpu_us_per_update: server
                .and_then(|s| ratio(s.cpu_seconds * 1e6, updates_sharing_cpu)),
            server_rss_kb_per_connection: server.and_then(|s| {
                let grown = s.rss_peak_bytes.saturating_sub(s.rss_before_bytes) as f64 / 1024.0;
                ratio(grown, s.connections_peak)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_costs() {
        let counts = Counts { bytes_up: 100, bytes_down: 900, updates: 10, ..Counts::default() };
        let server = ServerFigures {
            cpu_seconds: 0.5,
            rss_before_bytes: 1 << 20,
            rss_peak_bytes: (1 << 20) + 20 * 1024,
            connections_peak: 10,
            ..ServerFigures::default()
        };
        let d = Derived::of(&counts, Some(&server), 20);
        assert_eq!(d.bytes_per_update, Some(100.0));
        assert_eq!(d.server_cpu_us_per_update, Some(25_000.0));
        assert_eq!(d.server_rss_kb_per_connection, Some(2.0));
        let none = Derived::of(&Counts::default(), None, 0);
        assert!(none.bytes_per_update.is_none() && none.server_cpu_us_per_update.is_none());
    }
}
