//! A swarm: the clients one process runs, ramped up, held for the run's duration, then stopped.
//! The bench runs one in its own process for small runs and one per worker process for large.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::clients::{self, Kind, Shared};
use super::measure::{Counts, Tally, TallyResult};
use super::target::Target;

/// How often a swarm reports its counters while it runs.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Longest wait for every client to arrive before the measured duration starts anyway.
pub const ARRIVAL_DEADLINE: Duration = Duration::from_secs(60);

/// What one swarm runs: everything a worker process is told.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwarmSpec {
    pub target: Target,
    /// Clients per transport; several transports run at once (`--together`).
    pub groups: Vec<(Kind, usize)>,
    pub source: Option<IpAddr>,
    /// New clients per second; all at once (bounded by connects in flight) when absent.
    pub ramp_per_sec: Option<f64>,
    /// How long every client stays after the last one has started.
    pub duration: Duration,
    pub poll_interval: Duration,
    pub longpoll_timeout: Duration,
    pub seed: u64,
}

impl SwarmSpec {
    pub fn clients(&self) -> usize {
        self.groups.iter().map(|(_, n)| n).sum()
    }

    /// The order clients start in: round-robin over the groups, so together-runs ramp evenly.
    fn start_order(&self) -> Vec<usize> {
        let mut left: Vec<usize> = self.groups.iter().map(|(_, n)| *n).collect();
        let mut order = Vec::with_capacity(self.clients());
        while left.iter().any(|&n| n > 0) {
            for (group, n) in left.iter_mut().enumerate() {
                if *n > 0 {
                    *n -= 1;
                    order.push(group);
                }
            }
        }
        order
    }
}

/// Runs the swarm; `progress` gets every group's counters every `PROGRESS_EVERY`. Returns one
/// result per group, in the order of `spec.groups`.
pub async fn run(spec: &SwarmSpec, mut progress: impl FnMut(&[Counts])) -> Vec<TallyResult> {
    let shared =
        Shared::new(spec.target.clone(), spec.source, spec.poll_interval, spec.longpoll_timeout);
    let tallies: Vec<Arc<Tally>> = spec.groups.iter().map(|_| Arc::new(Tally::default())).collect();
    let counts = || tallies.iter().map(|t| t.counts()).collect::<Vec<_>>();
    let mut clients = JoinSet::new();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    for (i, group) in spec.start_order().into_iter().enumerate() {
        if let Some(rate) = spec.ramp_per_sec {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    _ = ticker.tick() => progress(&counts()),
                }
            }
        }
        let (kind, tally) = (spec.groups[group].0, tallies[group].clone());
        let seed = spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64);
        clients.spawn(clients::run(kind, shared.clone(), tally, seed));
    }
    // The duration is steady state: it starts once every client has its first Snapshot (or
    // has failed to connect), however long connecting takes.
    let arrival_deadline = Instant::now() + ARRIVAL_DEADLINE;
    while shared.arrived.load(Relaxed) < spec.clients() && Instant::now() < arrival_deadline {
        ticker.tick().await;
        progress(&counts());
    }
    let arrived = shared.arrived.load(Relaxed);
    if arrived < spec.clients() {
        // Said plainly, since these clients are in no error count: they are still trying.
        eprintln!(
            "pulse bench: {} of {} clients had neither a first Snapshot nor a failed connect after \
             {}s (the server or this machine is saturated); measuring without waiting for them",
            spec.clients() - arrived,
            spec.clients(),
            ARRIVAL_DEADLINE.as_secs()
        );
    }
    let end = Instant::now() + spec.duration;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = ticker.tick() => progress(&counts()),
        }
    }
    // Read the counters at the moment the run ends: connections still open count as open.
    let at_end = counts();
    shared.stop.cancel();
    while clients.join_next().await.is_some() {}
    progress(&at_end);
    tallies
        .iter()
        .zip(at_end)
        .map(|(t, end)| {
            let mut result = t.result();
            result.counts.open = end.open;
            result
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_order_interleaves_groups() {
        let spec = SwarmSpec {
            target: Target::local("127.0.0.1:1".parse().unwrap()),
            groups: vec![(Kind::Poll, 3), (Kind::Sse, 1), (Kind::Ws, 2)],
            source: None,
            ramp_per_sec: None,
            duration: Duration::ZERO,
            poll_interval: Duration::from_secs(1),
            longpoll_timeout: Duration::from_secs(30),
            seed: 1,
        };
        assert_eq!(spec.start_order(), vec![0, 1, 2, 0, 2, 0]);
    }
}
