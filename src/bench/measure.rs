//! What the clients of one transport measure: counters, the update-latency histogram, and the
//! per-client bookkeeping that turns receipts into updates, misses and wasted requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// Highest latency the histogram holds, in microseconds (an hour); longer ones are clamped.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Counters shared by every client of one transport in one process.
#[derive(Debug)]
pub struct Tally {
    /// Clients that got at least one connection through.
    pub connected: AtomicU64,
    /// Clients holding a connection right now.
    pub open: AtomicI64,
    pub connect_errors: AtomicU64,
    /// Connections that ended before the run did (reset, closed by the server, bad framing).
    pub disconnects: AtomicU64,
    /// Answers with an unexpected status.
    pub http_errors: AtomicU64,
    pub requests: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// New Snapshot ids received, not counting the one each client found on arrival.
    pub updates: AtomicU64,
    /// Ids skipped between two receipts of one client.
    pub missed: AtomicU64,
    /// Requests whose answer brought no new id (same id, `304`, long-poll timeout).
    pub wasted: AtomicU64,
    first_error: Mutex<Option<String>>,
    latency_us: Mutex<Histogram<u64>>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            connected: AtomicU64::new(0),
            open: AtomicI64::new(0),
            connect_errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            http_errors: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            first_error: Mutex::new(None),
            latency_us: Mutex::new(new_histogram()),
        }
    }
}

/// An empty latency histogram: 1 µs to an hour, three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

impl Tally {
    /// Remembers the first error of each kind worth telling the user about.
    pub fn error(&self, what: impl FnOnce() -> String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what());
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            connected: self.connected.load(Relaxed),
            open: self.open.load(Relaxed).max(0) as u64,
            connect_errors: self.connect_errors.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
            http_errors: self.http_errors.load(Relaxed),
            requests: self.requests.load(Relaxed),
            bytes_up: self.bytes_up.load(Relaxed),
            bytes_down: self.bytes_down.load(Relaxed),
            updates: self.updates.load(Relaxed),
            missed: self.missed.load(Relaxed),
            wasted: self.wasted.load(Relaxed),
        }
    }

    /// Everything measured, in a form that crosses a process boundary.
    pub fn result(&self) -> TallyResult {
        let histogram = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        TallyResult {
            counts: self.counts(),
            first_error: self.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            latency_us: histogram
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    fn record_latency(&self, us: u64) {
        let mut h = self.latency_us.lock().unwrap_or_else(|e| e.into_inner());
        h.saturating_record(us.clamp(1, MAX_LATENCY_US));
    }
}

/// A point-in-time copy of a `Tally`'s counters; adds up across processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub connected: u64,
    /// Clients holding a connection when the run ended.
    #[serde(rename = "open_at_end")]
    pub open: u64,
    pub connect_errors: u64,
    pub disconnects: u64,
    pub http_errors: u64,
    pub requests: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    #[serde(rename = "updates_received")]
    pub updates: u64,
    #[serde(rename = "updates_missed")]
    pub missed: u64,
    #[serde(rename = "wasted_requests")]
    pub wasted: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.connected += o.connected;
        self.open += o.open;
        self.connect_errors += o.connect_errors;
        self.disconnects += o.disconnects;
        self.http_errors += o.http_errors;
        self.requests += o.requests;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
        self.updates += o.updates;
        self.missed += o.missed;
        self.wasted += o.wasted;
    }
}

/// A finished tally: counters, first error, and the latency histogram as (µs, count) pairs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TallyResult {
    pub counts: Counts,
    pub first_error: Option<String>,
    pub latency_us: Vec<(u64, u64)>,
}

impl TallyResult {
    /// Adds another process's result to this one.
    pub fn merge(&mut self, other: TallyResult) {
        self.counts += other.counts;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency_us.extend(other.latency_us);
    }

    pub fn latency(&self) -> Latency {
        let mut h = new_histogram();
        for &(value, count) in &self.latency_us {
            h.saturating_record_n(value, count);
        }
        Latency::of(&h)
    }
}

/// Update latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One client's view of the ids it has received.
#[derive(Debug, Default)]
pub struct Seen {
    last: Option<u64>,
}

/// What a receipt meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Receipt {
    /// The state found on arrival: not an update, no latency.
    First,
    /// A new id: an update.
    New,
    /// Nothing new.
    Stale,
}

impl Seen {
    /// Notes the receipt of `snapshot` at wall-clock `now_us` (µs since the Unix epoch) and
    /// records it in `tally`.
    pub fn receive(&mut self, snapshot: &Snapshot, now_us: i64, tally: &Tally) -> Receipt {
        let receipt = self.classify(snapshot.id);
        match receipt {
            Receipt::First => {}
            Receipt::New => {
                let last = self.last.unwrap_or(snapshot.id);
                tally.updates.fetch_add(1, Relaxed);
                tally.missed.fetch_add(snapshot.id.saturating_sub(last + 1), Relaxed);
                // The timestamp has millisecond precision and is the moment the count changed;
                // on one host clock the difference is the latency a user of this transport sees.
                let latency = now_us - snapshot.timestamp_ms() * 1000;
                tally.record_latency(latency.max(0) as u64);
            }
            Receipt::Stale => {}
        }
        if receipt != Receipt::Stale {
            self.last = Some(snapshot.id);
        }
        receipt
    }

    fn classify(&self, id: u64) -> Receipt {
        match self.last {
            None => Receipt::First,
            Some(last) if id > last => Receipt::New,
            Some(_) => Receipt::Stale,
        }
    }

    /// The newest id received.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snap(id: u64, ms: i64) -> Snapshot {
        Snapshot { count: 1, id, timestamp: chrono::Utc.timestamp_millis_opt(ms).unwrap() }
    }

    #[test]
    fn receipts_become_updates_misses_and_latency() {
        let tally = Tally::default();
        let mut seen = Seen::default();
        assert_eq!(seen.receive(&snap(5, 1_000), 9_000_000, &tally), Receipt::First);
        assert_eq!(seen.receive(&snap(5, 1_000), 9_000_000, &tally), Receipt::Stale);
        assert_eq!(seen.receive(&snap(6, 2_000), 2_010_000, &tally), Receipt::New);
        assert_eq!(seen.receive(&snap(9, 3_000), 3_500_000, &tally), Receipt::New);
        assert_eq!(seen.receive(&snap(8, 2_900), 3_600_000, &tally), Receipt::Stale);
        let result = tally.result();
        assert_eq!((result.counts.updates, result.counts.missed), (2, 2));
        let latency = result.latency();
        assert_eq!(latency.samples, 2);
        assert!((latency.p50_ms - 10.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 500.0).abs() < 1.0, "{latency:?}");
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let l = Latency::of(&h);
        assert_eq!(l.samples, 1000);
        for (got, want) in
            [(l.p50_ms, 500.0), (l.p90_ms, 900.0), (l.p99_ms, 990.0), (l.max_ms, 1000.0)]
        {
            assert!((got - want).abs() / want < 0.002, "{got} vs {want}");
        }
        assert!((l.mean_ms - 500.5).abs() < 1.0);
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
    }

    #[test]
    fn results_merge_across_processes() {
        let (a, b) = (Tally::default(), Tally::default());
        a.record_latency(1_000);
        b.record_latency(3_000);
        b.requests.fetch_add(4, Relaxed);
        b.error(|| "refused".into());
        let mut merged = a.result();
        merged.merge(b.result());
        assert_eq!(merged.counts.requests, 4);
        assert_eq!(merged.first_error.as_deref(), Some("refused"));
        let l = merged.latency();
        assert_eq!(l.samples, 2);
        assert!((l.max_ms - 3.0).abs() < 0.01);
    }
}
