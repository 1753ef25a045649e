//! Where counts come from. Transports never know which source runs: they read the `Hub`.
//!
//! - [`walk`]: the simulated random walk, pure logic.
//! - [`simulator`]: runs the walk in-process on a timer and publishes each change to the hub
//!   (the default source).
//! - [`redis`]: many instances share one count through Redis; one leader runs the walk, every
//!   instance mirrors the stored Snapshot into its own hub (`--redis URL`).
//!
//! [`start`] picks the source from the `Config` and returns the hub and the source's health.

pub mod redis;
pub mod simulator;
pub mod walk;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::Hub;
use crate::snapshot::Snapshot;
use walk::Walk;

/// What `/healthz` and `/api/stats` say about the source.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SourceHealth {
    /// `simulator` or `redis`.
    pub kind: &'static str,
    pub healthy: bool,
    /// Why the source is not healthy, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// With Redis: this instance's name in the leader lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// With Redis: `leader` while this instance runs the simulation, else `follower`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
}

impl SourceHealth {
    /// The in-process simulator, which cannot fail.
    pub fn simulator() -> Self {
        SourceHealth { kind: "simulator", healthy: true, detail: None, instance: None, role: None }
    }
}

/// The source `config` asks for, built but not yet running.
#[derive(Debug)]
pub struct Source {
    hub: Hub,
    health: watch::Receiver<SourceHealth>,
    runner: Runner,
}

#[derive(Debug)]
enum Runner {
    Simulator(Walk),
    Redis(redis::RedisSource),
}

impl Source {
    /// The in-process simulator, or the Redis source when `config.redis` is set; `walk` is the
    /// simulation either way (in Redis, only the leader's runs).
    pub fn new(config: &Config, walk: Walk) -> Self {
        match &config.redis {
            None => {
                let hub = Hub::new(Snapshot::initial(walk.count(), chrono::Utc::now()));
                let (_, health) = watch::channel(SourceHealth::simulator());
                Source { hub, health, runner: Runner::Simulator(walk) }
            }
            Some(settings) => {
                let redis = redis::RedisSource::new(settings.clone(), walk);
                Source {
                    hub: redis.hub().clone(),
                    health: redis.health(),
                    runner: Runner::Redis(redis),
                }
            }
        }
    }

    /// The hub every transport reads.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// What `/healthz` and `/api/stats` report about the source, kept current while it runs.
    pub fn health(&self) -> watch::Receiver<SourceHealth> {
        self.health.clone()
    }

    /// Starts the source's tasks on `tasks`, until `shutdown`. Returns once the hub holds a
    /// count to serve: at once for the simulator; for Redis, when the stored Snapshot has been
    /// read (or a bounded wait has passed, leaving the source degraded and still trying).
    pub async fn start(self, tasks: &TaskTracker, shutdown: CancellationToken) {
        match self.runner {
            Runner::Simulator(walk) => {
                tasks.spawn(simulator::run(walk, self.hub, shutdown));
            }
            Runner::Redis(redis) => redis.start(tasks, shutdown).await,
        }
    }
}
