//! The in-process source: ticks the walk on a timer and publishes every change to the hub.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::walk::Walk;
use crate::hub::Hub;

/// Ticks `walk` until `shutdown`, publishing each change as the next Snapshot.
pub async fn run(mut walk: Walk, hub: Hub, shutdown: CancellationToken) {
    loop {
        let delay = walk.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        if let Some(count) = walk.step() {
            let next = hub.current().snapshot.next(count, Utc::now());
            tracing::debug!(count, id = next.id, "count changed");
            hub.publish(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;
    use crate::source::walk::WalkParams;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn publishes_each_change_with_consecutive_ids() {
        let params = WalkParams {
            tick: Duration::from_secs(2)..=Duration::from_secs(3),
            ..WalkParams::default()
        };
        let walk = Walk::new(params.clone(), 50, 11);
        let hub = Hub::new(Snapshot::initial(50, Utc::now()));
        let mut rx = hub.subscribe();
        let stop = CancellationToken::new();
        tokio::spawn(run(walk, hub.clone(), stop.clone()));

        // The same walk, stepped by hand, predicts every published count.
        let mut expected = Walk::new(params, 50, 11);
        let mut id = 1;
        for _ in 0..20 {
            let count = loop {
                expected.next_delay();
                if let Some(c) = expected.step() {
                    break c;
                }
            };
            rx.changed().await.unwrap();
            let got = rx.borrow_and_update().snapshot.clone();
            id += 1;
            assert_eq!((got.count, got.id), (count, id));
        }
        stop.cancel();
    }
}
