//! One clock for stamps and receive times: wall-clock nanoseconds since the Unix
//! epoch, read as a fixed wall-clock base plus a monotonic `Instant` offset, so
//! latencies never go negative when NTP steps the wall clock mid-run.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock nanoseconds, monotonic within a run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    base: Instant,
    base_ns: u64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let base_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock {
            base: Instant::now(),
            base_ns,
        }
    }

    /// Now, ns since the Unix epoch.
    pub(crate) fn now_ns(&self) -> u64 {
        self.base_ns + self.base.elapsed().as_nanos() as u64
    }

    /// The `tokio::time::Instant` of a wall-clock ns value.
    pub(crate) fn instant(&self, ns: u64) -> tokio::time::Instant {
        let offset = Duration::from_nanos(ns.saturating_sub(self.base_ns));
        tokio::time::Instant::from_std(self.base + offset)
    }
}
