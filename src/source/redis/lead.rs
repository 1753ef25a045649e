//! The leader lease, and the simulation while this instance holds it.
//!
//! Every instance tries `SET <prefix>:leader <instance> NX PX <ttl>` a few times per lease; the
//! one that gets it runs the walk from the stored count, commits each change (which also checks
//! the lease, atomically) and renews the lease every third of its life. A leader that cannot
//! renew stops once the lease has surely expired; one that shuts down gives the lease up at once.

use std::time::Duration;

use chrono::Utc;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::store::{Commit, Store};
use super::{Health, RESPONSE_TIMEOUT};
use crate::hub::Hub;
use crate::snapshot::Snapshot;
use crate::source::walk::Walk;

/// Competes for the lease until `shutdown`, simulating while it is held.
pub async fn run(
    store: Store,
    mut walk: Walk,
    hub: Hub,
    health: Health,
    ttl: Duration,
    shutdown: CancellationToken,
) {
    let attempt_every = ttl / 3;
    loop {
        let acquired = tokio::select! {
            _ = shutdown.cancelled() => return,
            acquired = store.acquire(ttl) => acquired,
        };
        match acquired {
            Ok(true) => {
                lead(&store, &mut walk, &hub, &health, ttl, &shutdown).await;
                health.role("follower");
            }
            Ok(false) => {}
            // The subscription reports Redis being down; nothing more to say here.
            Err(e) => tracing::debug!(error = %e, "cannot compete for the leader lease"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep(attempt_every) => {}
        }
    }
}

/// Runs the simulation while the lease holds; returns when it is lost or on shutdown.
async fn lead(
    store: &Store,
    walk: &mut Walk,
    hub: &Hub,
    health: &Health,
    ttl: Duration,
    shutdown: &CancellationToken,
) {
    let mut renewed_at = Instant::now();
    // Continue from what Redis holds (writing ours back if it lost its data); an instance that
    // has never reached Redis before offers a fresh count rather than its placeholder.
    let mut current = hub.current().snapshot.clone();
    if current.id == 0 {
        current = Snapshot::initial(walk.count(), Utc::now());
    }
    match store.restore(&current).await {
        Ok(stored) => {
            walk.resume_from(stored.count);
            hub.publish(stored);
        }
        Err(e) => {
            tracing::warn!(error = %e, "took the leader lease but cannot read the count");
            let _ = timeout(RESPONSE_TIMEOUT, store.release()).await;
            return;
        }
    }
    health.role("leader");
    tracing::info!(id = hub.current().snapshot.id, "leading: this instance runs the simulation");

    let mut next_renewal = renewed_at + ttl / 3;
    let mut next_tick = Instant::now() + walk.next_delay();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = timeout(RESPONSE_TIMEOUT, store.release()).await;
                tracing::info!("gave up the leader lease");
                return;
            }
            _ = sleep_until(next_renewal) => {
                let attempted_at = Instant::now();
                match store.renew(ttl).await {
                    Ok(true) => renewed_at = attempted_at,
                    Ok(false) => {
                        tracing::warn!("lost the leader lease; following");
                        return;
                    }
                    Err(e) if renewed_at.elapsed() >= ttl => {
                        tracing::warn!(error = %e, "cannot renew the leader lease; following");
                        return;
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot renew the leader lease yet"),
                }
                next_renewal = Instant::now() + ttl / 3;
            }
            _ = sleep_until(next_tick) => {
                next_tick = Instant::now() + walk.next_delay();
                let current = hub.current().snapshot.clone();
                if walk.count() != current.count {
                    walk.resume_from(current.count);
                }
                if let Some(count) = walk.step() && !commit(store, hub, current.next(count, Utc::now())).await {
                    return;
                }
            }
        }
    }
}

/// Commits `next` and shows it in the hub. False when this instance no longer leads.
async fn commit(store: &Store, hub: &Hub, next: Snapshot) -> bool {
    match store.commit(&next).await {
        Ok(Commit::Committed) => {
            tracing::debug!(count = next.count, id = next.id, "count changed");
            hub.publish(next);
            true
        }
        Ok(Commit::NotLeader) => {
            tracing::warn!("lost the leader lease; following");
            false
        }
        Ok(Commit::Stale) => {
            // Someone wrote a newer Snapshot back (Redis had lost its data): continue from it.
            match store.restore(&hub.current().snapshot).await {
                Ok(stored) => {
                    hub.publish(stored);
                }
                Err(e) => tracing::debug!(error = %e, "cannot resynchronise"),
            }
            true
        }
        // This change is dropped; the next tick starts again from the hub's Snapshot.
        Err(e) => {
            tracing::debug!(error = %e, "cannot commit a change");
            true
        }
    }
}
