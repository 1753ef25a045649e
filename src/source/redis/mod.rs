//! The Redis source: many pulse instances share one count.
//!
//! The Snapshot lives in Redis at `<prefix>:snapshot` (its JSON); every change is published on
//! `<prefix>:changes`. Every instance subscribes and mirrors the stored Snapshot into its own hub,
//! so polling and streaming answer from local memory, never from Redis per request. One instance,
//! the holder of the lease `<prefix>:leader`, runs the simulated walk and commits each change.
//!
//! - [`store`]: the data in Redis and the atomic scripts that change it.
//! - [`follow`]: the subscription that keeps the hub in step, resynchronises after a loss, and
//!   decides whether the source is healthy.
//! - [`lead`]: the leader lease and, while held, the simulation.
//!
//! Why ids never repeat nor go backwards, whoever leads: a change is committed by a script that
//! checks, atomically, that the committer still holds the lease and that the new id is the stored
//! id plus one. If Redis loses its data (a restart without persistence), every instance writes
//! back its own last Snapshot unless Redis already holds a newer one, so the highest id survives.

pub mod follow;
pub mod lead;
pub mod store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SourceHealth;
use super::walk::Walk;
use crate::hub::Hub;
use crate::snapshot::Snapshot;
use store::Store;

/// How an instance reaches Redis, from `--redis`, `--redis-prefix` and `--redis-lease`.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`; may hold a password, so never logged as is.
    pub url: String,
    /// Prefix of every key and channel, so several deployments (or tests) can share a server.
    pub prefix: String,
    /// How long the leader lease lasts without renewal: a dead leader is replaced within about
    /// this long (plus one attempt interval, a third of it).
    pub lease_ttl: Duration,
}

impl RedisSettings {
    pub const DEFAULT_PREFIX: &str = "pulse";
    /// The default of `--redis-lease`.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);
    /// Shorter leases would have the leader renewing faster than Redis round trips can be
    /// trusted to complete on a busy machine.
    pub const MIN_LEASE_TTL: Duration = Duration::from_millis(300);

    /// Checks the URL and the lease; the error names the flag and never shows a password.
    pub fn new(url: &str, prefix: &str, lease_ttl: Duration) -> Result<Self, String> {
        let shown = redact(url);
        ::redis::Client::open(url).map_err(|e| {
            format!(
                "--redis {shown:?} is not a Redis URL ({e}); expected redis://HOST[:PORT][/DB], \
                 optionally with USER:PASSWORD@ before the host"
            )
        })?;
        if prefix.is_empty() {
            return Err("--redis-prefix must not be empty".into());
        }
        if lease_ttl < Self::MIN_LEASE_TTL {
            return Err(format!(
                "--redis-lease {lease_ttl:?} is too short; use at least {:?}",
                Self::MIN_LEASE_TTL
            ));
        }
        Ok(RedisSettings { url: url.to_owned(), prefix: prefix.to_owned(), lease_ttl })
    }

    /// The URL as it may be shown in logs and health reports.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

/// The URL with its password (if any) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            let hidden = if userinfo.contains(':') { format!("{user}:***") } else { "***".into() };
            format!("{scheme}://{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Every Redis command gives up after this long, so a hung server is noticed as a failure.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `serve` waits for Redis at startup before serving a placeholder, degraded.
const STARTUP_SYNC_TIMEOUT: Duration = Duration::from_secs(3);

/// The Redis source, built but not yet running.
#[derive(Debug)]
pub struct RedisSource {
    settings: RedisSettings,
    walk: Walk,
    hub: Hub,
    health: Health,
    instance: String,
    /// Offered to Redis when it holds no Snapshot yet.
    initial: Snapshot,
}

impl RedisSource {
    /// The hub starts from a placeholder with id 0, which any real Snapshot replaces; `start`
    /// replaces it with the stored one before the server accepts its first client.
    pub fn new(settings: RedisSettings, walk: Walk) -> Self {
        let instance = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let health = Health::new(&instance, &settings);
        let initial = Snapshot::initial(walk.count(), chrono::Utc::now());
        let hub = Hub::new(Snapshot { id: 0, ..initial.clone() });
        RedisSource { settings, walk, hub, health, instance, initial }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn health(&self) -> watch::Receiver<SourceHealth> {
        self.health.subscribe()
    }

    /// Reads the stored Snapshot (waiting at most `STARTUP_SYNC_TIMEOUT`), then spawns the
    /// follower and the lease tasks on `tasks`.
    pub async fn start(self, tasks: &TaskTracker, shutdown: CancellationToken) {
        let RedisSource { settings, walk, hub, health, instance, initial } = self;
        let client =
            ::redis::Client::open(settings.url.as_str()).expect("checked in RedisSettings");
        // The manager reconnects on its own; its retries stay few because our loops retry on
        // their own schedule and must see failures quickly to report them.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(follow::BACKOFF_MAX);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .expect("no automatic resubscription is asked for");
        let store = Store::new(connection, &settings.prefix, instance.clone());

        match tokio::time::timeout(STARTUP_SYNC_TIMEOUT, store.restore(&initial)).await {
            Ok(Ok(stored)) => {
                hub.publish(stored);
            }
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {STARTUP_SYNC_TIMEOUT:?}"),
                };
                tracing::warn!(redis = %settings.redacted_url(), error = %why,
                    "Redis is unreachable; serving a placeholder (id 0) until it answers");
                health.degraded(format!("waiting for Redis: {why}"));
            }
        }
        tracing::info!(redis = %settings.redacted_url(), prefix = %settings.prefix, %instance,
            "sharing the count through Redis");

        tasks.spawn(follow::run(
            client,
            store.clone(),
            hub.clone(),
            health.clone(),
            initial,
            shutdown.clone(),
        ));
        tasks.spawn(lead::run(store, walk, hub, health, settings.lease_ttl, shutdown));
    }
}

/// The source's health as the tasks see it: `follow` says whether the hub is in step with Redis,
/// `lead` says which role this instance plays.
#[derive(Clone, Debug)]
pub struct Health {
    tx: Arc<watch::Sender<SourceHealth>>,
}

impl Health {
    fn new(instance: &str, settings: &RedisSettings) -> Self {
        let (tx, _) = watch::channel(SourceHealth {
            kind: "redis",
            healthy: false,
            detail: Some(format!("connecting to {}", settings.redacted_url())),
            instance: Some(instance.to_owned()),
            role: Some("follower"),
        });
        Health { tx: Arc::new(tx) }
    }

    fn subscribe(&self) -> watch::Receiver<SourceHealth> {
        self.tx.subscribe()
    }

    pub fn healthy(&self) {
        self.tx.send_if_modified(|h| {
            let changed = !h.healthy;
            (h.healthy, h.detail) = (true, None);
            changed
        });
    }

    pub fn degraded(&self, detail: String) {
        self.tx.send_if_modified(|h| {
            let changed = h.healthy || h.detail.as_deref() != Some(detail.as_str());
            (h.healthy, h.detail) = (false, Some(detail));
            changed
        });
    }

    pub fn role(&self, role: &'static str) {
        self.tx.send_if_modified(|h| {
            let changed = h.role != Some(role);
            h.role = Some(role);
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://127.0.0.1:6379/2"), "redis://127.0.0.1:6379/2");
        assert_eq!(redact("redis://:s3cret@host:6379"), "redis://:***@host:6379");
        assert_eq!(redact("redis://ann:p@ss@host/1"), "redis://ann:***@host/1");
        assert_eq!(redact("rediss://token@host"), "rediss://***@host");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn bad_settings_are_refused_without_showing_the_password() {
        let ok = RedisSettings::new("redis://127.0.0.1:6379/0", "pulse", Duration::from_secs(3));
        assert!(ok.is_ok());
        let bad = RedisSettings::new("http://:hunter2@host", "pulse", Duration::from_secs(3));
        let message = bad.unwrap_err();
        assert!(message.contains("--redis") && !message.contains("hunter2"), "{message}");
        let short = RedisSettings::new("redis://h", "pulse", Duration::from_millis(10));
        assert!(short.unwrap_err().contains("--redis-lease"));
        assert!(RedisSettings::new("redis://h", "", Duration::from_secs(3)).is_err());
        let debug =
            format!("{:?}", RedisSettings::new("redis://:pw@h", "p", Duration::from_secs(1)));
        assert!(!debug.contains("pw@"), "{debug}");
    }
}
