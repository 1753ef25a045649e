//! The simulated "users online" random walk: pure logic, no clock, reproducible from a seed.

use std::ops::RangeInclusive;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the simulated count moves.
#[derive(Clone, Debug, PartialEq)]
pub struct WalkParams {
    /// The count never leaves this range.
    pub bounds: RangeInclusive<u32>,
    /// Chance that a tick moves the count at all.
    pub change_probability: f64,
    /// A moving tick adds a uniform integer from this range.
    pub delta: RangeInclusive<i64>,
    /// Time between ticks, drawn uniformly from this range.
    pub tick: RangeInclusive<Duration>,
}

impl Default for WalkParams {
    fn default() -> Self {
        WalkParams {
            bounds: 0..=200,
            change_probability: 0.7,
            delta: -3..=5,
            tick: Duration::from_secs(2)..=Duration::from_secs(3),
        }
    }
}

/// The walk's state: the current count and the random number generator that drives it.
#[derive(Clone, Debug)]
pub struct Walk {
    params: WalkParams,
    count: u32,
    rng: ChaCha8Rng,
}

impl Walk {
    /// A walk starting at `start` (clamped into the bounds). The same seed gives the same walk.
    pub fn new(params: WalkParams, start: u32, seed: u64) -> Self {
        let count = start.clamp(*params.bounds.start(), *params.bounds.end());
        Walk { params, count, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Continue the walk from `count` (clamped into the bounds), keeping the random sequence: for a
    /// source that learns the count from elsewhere, such as a new Redis leader.
    pub fn resume_from(&mut self, count: u32) {
        self.count = count.clamp(*self.params.bounds.start(), *self.params.bounds.end());
    }

    /// How long to wait before the next tick.
    pub fn next_delay(&mut self) -> Duration {
        let (lo, hi) = (*self.params.tick.start(), *self.params.tick.end());
        if lo >= hi { lo } else { self.rng.random_range(lo..=hi) }
    }

    /// One tick. Returns the new count when it changed, `None` when the tick left it as it was.
    pub fn step(&mut self) -> Option<u32> {
        if !self.rng.random_bool(self.params.change_probability) {
            return None;
        }
        let delta = self.rng.random_range(self.params.delta.clone());
        let (lo, hi) = (*self.params.bounds.start(), *self.params.bounds.end());
        let next = (i64::from(self.count) + delta).clamp(i64::from(lo), i64::from(hi));
        let next = u32::try_from(next).expect("clamped into u32 bounds");
        if next == self.count {
            return None;
        }
        self.count = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: usize = 200_000;

    #[test]
    fn bounds_always_hold() {
        for (start, bounds) in [(0, 0..=200), (200, 0..=200), (5, 3..=9), (50, 0..=200)] {
            let params = WalkParams { bounds: bounds.clone(), ..WalkParams::default() };
            let mut walk = Walk::new(params, start, 7);
            for _ in 0..STEPS {
                walk.step();
                assert!(bounds.contains(&walk.count()), "{} left {bounds:?}", walk.count());
            }
        }
    }

    #[test]
    fn start_outside_the_bounds_is_clamped() {
        let params = WalkParams { bounds: 10..=20, ..WalkParams::default() };
        assert_eq!(Walk::new(params.clone(), 50, 1).count(), 20);
        assert_eq!(Walk::new(params, 0, 1).count(), 10);
    }

    #[test]
    fn seventy_thirty_split_and_delta_range_hold() {
        // Wide bounds so clamping never interferes with the measured deltas.
        let params = WalkParams { bounds: 0..=u32::MAX, ..WalkParams::default() };
        let mut walk = Walk::new(params, 1_000_000, 42);
        let mut histogram = [0usize; 9]; // deltas -3..=5
        let mut unchanged = 0usize;
        for _ in 0..STEPS {
            let before = i64::from(walk.count());
            match walk.step() {
                Some(after) => {
                    let delta = i64::from(after) - before;
                    assert!((-3..=5).contains(&delta) && delta != 0, "delta {delta}");
                    histogram[(delta + 3) as usize] += 1;
                }
                None => unchanged += 1,
            }
        }
        // A tick moves with p = 0.7 and then draws delta 0 with p = 1/9: P(change) = 0.7 * 8/9.
        let changed = (STEPS - unchanged) as f64 / STEPS as f64;
        assert!((changed - 0.7 * 8.0 / 9.0).abs() < 0.01, "changed fraction {changed}");
        // Each non-zero delta is drawn with p = 0.7/9 of all ticks.
        for (i, &n) in histogram.iter().enumerate() {
            let share = n as f64 / STEPS as f64;
            if i == 3 {
                assert_eq!(n, 0);
            } else {
                assert!((share - 0.7 / 9.0).abs() < 0.005, "delta {} share {share}", i as i64 - 3);
            }
        }
    }

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        let run = |seed| {
            let mut w = Walk::new(WalkParams::default(), 50, seed);
            (0..1000).map(|_| (w.next_delay(), w.step())).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn delays_stay_in_the_tick_range() {
        let mut w = Walk::new(WalkParams::default(), 50, 9);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let d = w.next_delay();
            assert!(WalkParams::default().tick.contains(&d));
            lo = lo.min(d);
            hi = hi.max(d);
        }
        // Uniform over the range: both ends are approached.
        assert!(lo < Duration::from_millis(2050) && hi > Duration::from_millis(2950));
    }

    #[test]
    fn resume_from_clamps_and_continues() {
        let params = WalkParams { bounds: 10..=20, ..WalkParams::default() };
        let mut walk = Walk::new(params, 15, 1);
        walk.resume_from(99);
        assert_eq!(walk.count(), 20);
        walk.resume_from(12);
        assert_eq!(walk.count(), 12);
    }

    #[test]
    fn fixed_tick_is_allowed() {
        let tick = Duration::from_millis(100);
        let params = WalkParams { tick: tick..=tick, ..WalkParams::default() };
        assert_eq!(Walk::new(params, 50, 0).next_delay(), tick);
    }
}
