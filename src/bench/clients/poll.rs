//! Polling: `GET /api/count` every poll interval (with jitter) on a keep-alive connection,
//! plain or conditional (`If-None-Match` with the last `ETag`, answered `304` when unchanged).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::{Me, Shared, bad_status, lost};
use crate::bench::http1::Conn;
use crate::bench::measure::{Receipt, Seen, Tally, now_us};
use crate::snapshot::Snapshot;

/// Each wait is the interval times a factor drawn from this range, so clients that started
/// together drift apart as browsers' timers do.
const JITTER: std::ops::Range<f64> = 0.9..1.1;

pub async fn run(shared: Arc<Shared>, tally: Arc<Tally>, conditional: bool, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let interval = shared.poll_interval;
    let (mut seen, mut etag, mut conn, mut me) =
        (Seen::default(), None::<String>, None, Me::default());
    // The first poll at a random point of the first interval: clients do not arrive in step.
    let mut next = Instant::now() + interval.mul_f64(rng.random::<f64>());
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next = (next + interval.mul_f64(rng.random_range(JITTER))).max(Instant::now());
        if conn.is_none() {
            match shared.open(&tally, &mut me).await {
                Some(opened) => conn = Some(Conn::new(opened, tally.clone())),
                None => continue,
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let header = match (&etag, conditional) {
            (Some(tag), true) => format!("If-None-Match: {tag}\r\n"),
            _ => String::new(),
        };
        let request = shared.target.get("/api/count", &header);
        let exchange = c.exchange(request.as_bytes());
        let result = tokio::select! {
            _ = shared.stop.cancelled() => return,
            result = exchange => result,
        };
        match result {
            Ok((head, body)) => {
                match head.status {
                    200 => match serde_json::from_slice::<Snapshot>(&body) {
                        Ok(snapshot) => {
                            let receipt =
                                shared.receive(&mut me, &mut seen, &snapshot, now_us(), &tally);
                            if receipt == Receipt::Stale {
                                tally.wasted.fetch_add(1, Relaxed);
                            }
                            etag = head.etag.clone();
                        }
                        Err(e) => lost(&tally, "GET /api/count: body is not a Snapshot", &e),
                    },
                    304 => {
                        tally.wasted.fetch_add(1, Relaxed);
                    }
                    status => {
                        bad_status(&tally, "GET /api/count", status);
                        shared.arrive(&mut me);
                    }
                }
                if head.close {
                    conn = None;
                }
            }
            Err(e) => {
                if conn.as_ref().is_some_and(|c| c.closed_while_idle(&e)) {
                    next = Instant::now();
                } else {
                    lost(&tally, "GET /api/count", &e);
                }
                conn = None;
            }
        }
    }
}
