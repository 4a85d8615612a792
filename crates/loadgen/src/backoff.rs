//! Reconnect delays: exponential backoff with full jitter, so a thousand clients that
//! lose the server at the same moment do not come back at the same moment (the
//! reconnect storm DESIGN.md's WebSocket row teaches).

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

/// Exponential backoff with jitter: attempt n waits a random time in
/// `[base * 2^n / 2, base * 2^n]`, capped at `max`; `reset` after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base`, never waits longer than `max`.
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the ceiling.
    pub(crate) fn next_delay(&mut self, rng: &mut SmallRng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter_ns = rng.random_range(0..=half.as_nanos().max(1) as u64);
        half + Duration::from_nanos(jitter_ns)
    }

    /// Back to the first delay (after a connection that worked).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grows_caps_and_resets() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d0 = b.next_delay(&mut rng);
        assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
        for _ in 0..10 {
            let d = b.next_delay(&mut rng);
            assert!(d <= Duration::from_secs(2));
        }
        assert!(b.next_delay(&mut rng) >= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay(&mut rng) <= Duration::from_millis(100));
    }
}
