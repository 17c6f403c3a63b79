//! Deterministic simulation: what changes on a thread that runs the
//! whole-cluster simulator (`tests/sim`), and only there.
//!
//! The simulator runs every node on one current-thread tokio runtime whose
//! time is paused (it jumps to the next timer when every task waits). On
//! that thread, after [`enter`]: the node's clock reads simulated time
//! ([`crate::clock::now_ms`]); CPU-bound work runs inline rather than on
//! other threads ([`crate::blocking`]); the Raft log's syncer is a task
//! whose fsyncs take a seeded simulated time (`log_store`). Every random
//! choice is drawn from the seed given to [`enter`]; the simulator also
//! seeds its runtime (`Builder::rng_seed`), so the branch order of any
//! unbiased `select!`, openraft's included, replays too. On any other thread
//! nothing here is active and a node behaves exactly as in production.

use std::cell::RefCell;
use std::time::Duration;

thread_local! {
    static SIMULATION: RefCell<Option<Simulation>> = const { RefCell::new(None) };
}

struct Simulation {
    /// Wall-clock milliseconds at simulated time `start`.
    epoch_ms: i64,
    start: tokio::time::Instant,
    rng: SplitMix64,
    fsync_min_ms: u64,
    fsync_max_ms: u64,
}

/// The simulation this thread is in; leaving it (drop) restores production behaviour.
#[must_use = "the simulation ends when this is dropped"]
pub struct Entered {
    // Not Send: a simulation belongs to the thread that entered it.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        SIMULATION.with(|s| s.borrow_mut().take());
    }
}

/// Enters a simulation on this thread, inside the simulator's runtime:
/// the clock reads `epoch_ms` now and advances with the runtime's paused
/// time; a log fsync takes `fsync_ms` (inclusive range, drawn from `seed`).
pub fn enter(seed: u64, epoch_ms: i64, fsync_ms: std::ops::RangeInclusive<u64>) -> Entered {
    assert!(fsync_ms.start() <= fsync_ms.end(), "fsync range is empty");
    SIMULATION.with(|s| {
        *s.borrow_mut() = Some(Simulation {
            epoch_ms,
            start: tokio::time::Instant::now(),
            rng: SplitMix64(seed),
            fsync_min_ms: *fsync_ms.start(),
            fsync_max_ms: *fsync_ms.end(),
        })
    });
    Entered {
        _thread: std::marker::PhantomData,
    }
}

/// Whether this thread is in a simulation.
pub fn active() -> bool {
    SIMULATION.with(|s| s.borrow().is_some())
}

/// Simulated wall-clock time, if this thread is in a simulation.
pub(crate) fn now_ms() -> Option<i64> {
    SIMULATION.with(|s| {
        let s = s.borrow();
        let sim = s.as_ref()?;
        let elapsed = tokio::time::Instant::now().saturating_duration_since(sim.start);
        Some(sim.epoch_ms + i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX / 2))
    })
}

/// How long the next simulated fsync takes (zero outside a simulation).
pub(crate) fn fsync_delay() -> Duration {
    SIMULATION.with(|s| {
        let mut s = s.borrow_mut();
        let Some(sim) = s.as_mut() else {
            return Duration::ZERO;
        };
        let (lo, hi) = (sim.fsync_min_ms, sim.fsync_max_ms);
        Duration::from_millis(sim.rng.range(lo, hi))
    })
}

/// SplitMix64: tiny, seedable, and good enough for fault plans.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (modulo bias is irrelevant at these ranges).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.next_u64() % span,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_seeded_and_in_range() {
        let mut a = SplitMix64(7);
        let mut b = SplitMix64(7);
        for _ in 0..1_000 {
            let x = a.range(3, 9);
            assert_eq!(x, b.range(3, 9));
            assert!((3..=9).contains(&x));
        }
        assert_eq!(SplitMix64(1).range(5, 5), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_simulated_clock_follows_paused_time_and_ends_with_the_guard() {
        assert!(!active());
        let entered = enter(1, 1_000, 2..=2);
        assert_eq!(now_ms(), Some(1_000));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(now_ms(), Some(1_250));
        assert_eq!(fsync_delay(), Duration::from_millis(2));
        drop(entered);
        assert!(!active());
        assert_eq!(now_ms(), None);
        assert_eq!(fsync_delay(), Duration::ZERO);
    }
}
