//! Following the shared count: a dedicated subscription mirrors every published Snapshot into the
//! hub; after each (re)subscription the stored Snapshot is read again, so nothing published while
//! the subscription was down is missed. This task alone decides whether the source is healthy.

use std::time::Duration;

use ::redis::Client;
use futures_util::StreamExt;
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;

use super::store::Store;
use super::{CONNECT_TIMEOUT, Health, RESPONSE_TIMEOUT};
use crate::hub::Hub;
use crate::snapshot::Snapshot;

/// First wait before reconnecting after Redis was lost; doubled per failed attempt up to
/// `BACKOFF_MAX`, so a long outage costs one attempt every few seconds per instance.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// A subscription that is silent does not prove Redis is alive: ping it this often.
const PING_EVERY: Duration = Duration::from_secs(1);

/// Follows Redis until `shutdown`, reconnecting with backoff whenever the subscription is lost.
/// `initial` is what to offer Redis if it holds no Snapshot and the hub has none yet.
pub async fn run(
    client: Client,
    store: Store,
    hub: Hub,
    health: Health,
    initial: Snapshot,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let (was_in_sync, why) = tokio::select! {
            _ = shutdown.cancelled() => return,
            ended = follow_once(&client, &store, &hub, &health, &initial) => ended,
        };
        if was_in_sync {
            backoff = BACKOFF_MIN;
            tracing::warn!(error = %why, "lost Redis; serving the last Snapshot and reconnecting");
        } else {
            // Said once when Redis went away; each further failed attempt only at debug level.
            tracing::debug!(error = %why, "still no Redis; retrying in {backoff:?}");
        }
        let serving = match hub.current().snapshot.id {
            0 => "no count received yet",
            _ => "serving the last known Snapshot",
        };
        health.degraded(format!("{why}; {serving}, retrying"));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One subscription's life. Returns whether it got in sync, and why it ended.
async fn follow_once(
    client: &Client,
    store: &Store,
    hub: &Hub,
    health: &Health,
    initial: &Snapshot,
) -> (bool, String) {
    let pubsub = match timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(e)) => return (false, format!("cannot subscribe to Redis: {e}")),
        Err(_) => return (false, format!("Redis did not answer within {CONNECT_TIMEOUT:?}")),
    };
    let (mut sink, mut stream) = pubsub.split();
    match timeout(RESPONSE_TIMEOUT, sink.subscribe(store.channel())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return (false, format!("cannot subscribe to Redis: {e}")),
        Err(_) => return (false, "Redis did not confirm the subscription".into()),
    }

    // Read the stored Snapshot only now that the subscription is live, so a change published
    // in between is never missed; write ours back if Redis lost its data.
    let current = hub.current().snapshot.clone();
    let candidate = if current.id == 0 { initial } else { &current };
    let stored = match timeout(RESPONSE_TIMEOUT, store.restore(candidate)).await {
        Ok(Ok(stored)) => stored,
        Ok(Err(e)) => return (false, format!("cannot read the count from Redis: {e}")),
        Err(_) => return (false, "Redis did not answer in time".into()),
    };
    tracing::info!(id = stored.id, count = stored.count, "in sync with Redis");
    hub.publish(stored);
    health.healthy();

    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return (true, "lost the connection to Redis".into());
                };
                match serde_json::from_slice::<Snapshot>(message.get_payload_bytes()) {
                    Ok(snapshot) => {
                        hub.publish(snapshot);
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed change from Redis"),
                }
            }
            _ = ping.tick() => {
                match timeout(RESPONSE_TIMEOUT, sink.ping::<::redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return (true, format!("lost the connection to Redis: {e}")),
                    Err(_) => return (true, format!("Redis did not answer a ping within {RESPONSE_TIMEOUT:?}")),
                }
            }
        }
    }
}
