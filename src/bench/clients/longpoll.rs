//! Long polling: `GET /api/longpoll?since=ID&timeout=SECS` in a loop on a keep-alive
//! connection; each answer's id is the next request's `since`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::{Me, RECONNECT_DELAY, Shared, bad_status, lost};
use crate::bench::http1::Conn;
use crate::bench::measure::{Receipt, Seen, Tally, now_us};
use crate::snapshot::Snapshot;

pub async fn run(shared: Arc<Shared>, tally: Arc<Tally>) {
    let (mut seen, mut conn, mut me) = (Seen::default(), None, Me::default());
    let timeout = shared.longpoll_timeout.as_secs_f64();
    loop {
        if conn.is_none() {
            match shared.open(&tally, &mut me).await {
                Some(opened) => conn = Some(Conn::new(opened, tally.clone())),
                None if shared.pause(RECONNECT_DELAY).await => continue,
                None => return,
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let path = match seen.last() {
            Some(id) => format!("/api/longpoll?since={id}&timeout={timeout}"),
            None => "/api/longpoll".to_owned(),
        };
        let request = shared.target.get(&path, "");
        let exchange = c.exchange(request.as_bytes());
        let result = tokio::select! {
            _ = shared.stop.cancelled() => return,
            result = exchange => result,
        };
        let retry_later = match result {
            Ok((head, body)) => {
                if head.close {
                    conn = None;
                }
                match head.status {
                    200 => match serde_json::from_slice::<Snapshot>(&body) {
                        Ok(snapshot) => {
                            let receipt =
                                shared.receive(&mut me, &mut seen, &snapshot, now_us(), &tally);
                            if receipt == Receipt::Stale {
                                // Held until the timeout, and nothing changed.
                                tally.wasted.fetch_add(1, Relaxed);
                            }
                            false
                        }
                        Err(e) => {
                            lost(&tally, "GET /api/longpoll: body is not a Snapshot", &e);
                            true
                        }
                    },
                    status => {
                        bad_status(&tally, "GET /api/longpoll", status);
                        shared.arrive(&mut me);
                        true
                    }
                }
            }
            Err(e) => {
                let idle_close = conn.as_ref().is_some_and(|c| c.closed_while_idle(&e));
                if !idle_close {
                    lost(&tally, "GET /api/longpoll", &e);
                }
                conn = None;
                !idle_close
            }
        };
        // An error answered at once would otherwise turn the loop into a flood.
        if retry_later && !shared.pause(RECONNECT_DELAY).await {
            return;
        }
    }
}
