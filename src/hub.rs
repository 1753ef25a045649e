//! The `Hub`: latest-value fan-out of the current Snapshot to every transport.
//!
//! Built on `tokio::sync::watch`: a reader that falls behind skips straight to the newest value,
//! so nothing ever queues per client and memory stays flat whatever the clients do.

use std::sync::Arc;

use tokio::sync::watch;

use crate::snapshot::{Rendered, Snapshot};

/// Handle to the current Snapshot; cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    tx: Arc<watch::Sender<Arc<Rendered>>>,
}

impl Hub {
    pub fn new(initial: Snapshot) -> Self {
        let (tx, _) = watch::channel(Arc::new(Rendered::new(initial)));
        Hub { tx: Arc::new(tx) }
    }

    /// The current Snapshot, rendered.
    pub fn current(&self) -> Arc<Rendered> {
        self.tx.borrow().clone()
    }

    /// Make `snapshot` the current one and wake every subscriber. Renders it once, here.
    ///
    /// A Snapshot whose id is not newer than the current one is ignored, so ids never go
    /// backwards whatever order a source delivers them in.
    pub fn publish(&self, snapshot: Snapshot) -> bool {
        let rendered = Arc::new(Rendered::new(snapshot));
        self.tx.send_if_modified(|current| {
            if rendered.snapshot.id > current.snapshot.id {
                *current = rendered;
                true
            } else {
                false
            }
        })
    }

    /// A receiver that sees the current value as already seen; `changed()` wakes on the next.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Rendered>> {
        self.tx.subscribe()
    }

    /// How many subscribers are attached right now (streams, long polls, WebSockets).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[tokio::test]
    async fn slow_reader_skips_to_the_newest_value() {
        let first = Snapshot::initial(50, Utc::now());
        let hub = Hub::new(first.clone());
        let mut rx = hub.subscribe();
        let mut s = first;
        for count in 51..60 {
            s = s.next(count, Utc::now());
            assert!(hub.publish(s.clone()));
        }
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().snapshot, s);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn stale_ids_are_ignored() {
        let first = Snapshot::initial(50, Utc::now());
        let hub = Hub::new(first.clone());
        let second = first.next(52, Utc::now());
        assert!(hub.publish(second.clone()));
        assert!(!hub.publish(first));
        assert!(!hub.publish(second.clone()));
        assert_eq!(hub.current().snapshot, second);
    }
}
