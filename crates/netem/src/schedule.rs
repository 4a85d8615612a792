//! When each segment of one direction of one connection may be released to the
//! other side. Pure arithmetic over instants plus a seeded RNG, so it is unit-tested
//! without sockets.
//!
//! Model, per segment of `len` bytes arriving at `t`:
//! 1. serialization at the bottleneck(s): it starts when it has arrived and both
//!    the connection's own link and the shared link are free (a pacing token
//!    bucket whose depth is one segment), and takes `len / rate` on each;
//! 2. propagation: `latency ± jitter`, drawn per segment;
//! 3. loss: with probability `loss` the segment must be retransmitted one RTO
//!    later, and again with doubled RTO while the retransmission is lost too;
//! 4. order: release = max(previous release, the above), so nothing overtakes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::{Bandwidth, LinkConfig};

/// Most consecutive losses of one segment (RTO doubles each time, like TCP's
/// backoff); caps the stall at 2^6 - 1 = 63 RTOs even for absurd loss rates.
const MAX_RETRANSMISSIONS: u32 = 6;

/// A bottleneck shared by all connections in one direction.
#[derive(Debug)]
pub(crate) struct SharedLink {
    rate: Bandwidth,
    /// When the link finishes what it already accepted. A std Mutex, not a tokio
    /// one: it is held for a comparison and an addition, never across an await.
    free_at: Mutex<Instant>,
}

impl SharedLink {
    pub(crate) fn new(rate: Bandwidth) -> Arc<Self> {
        Arc::new(Self {
            rate,
            free_at: Mutex::new(Instant::now()),
        })
    }
}

/// One segment's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Release {
    /// When its bytes may be written to the destination.
    pub at: Instant,
    /// How many times it was "lost" (0: delivered first time).
    pub retransmissions: u32,
}

/// The release-time state of one direction of one connection.
#[derive(Debug)]
pub(crate) struct Schedule {
    link: LinkConfig,
    rto: Duration,
    rng: StdRng,
    shared: Option<Arc<SharedLink>>,
    /// When this connection's own bottleneck is free again.
    link_free_at: Instant,
    /// Release time of the previous segment (the no-reordering floor).
    last_release: Instant,
}

impl Schedule {
    pub(crate) fn new(
        link: LinkConfig,
        rto: Duration,
        seed: u64,
        shared: Option<Arc<SharedLink>>,
        now: Instant,
    ) -> Self {
        Self {
            link,
            rto,
            rng: StdRng::seed_from_u64(seed),
            shared,
            link_free_at: now,
            last_release: now,
        }
    }

    /// Schedules one segment of `len` bytes that arrived at `arrival`.
    pub(crate) fn segment(&mut self, arrival: Instant, len: usize) -> Release {
        let own = self.link.bandwidth.map(|b| b.transmit_time(len));
        let mut start = arrival.max(self.link_free_at);
        let mut end = start;
        if let Some(shared) = &self.shared {
            let mut free_at = shared.free_at.lock().expect("shared link lock poisoned");
            start = start.max(*free_at);
            let tx = shared.rate.transmit_time(len);
            *free_at = start + tx;
            end = start + tx;
        }
        if let Some(tx) = own {
            self.link_free_at = start + tx;
            end = end.max(start + tx);
        }
        let mut retransmissions = 0;
        let mut stall = Duration::ZERO;
        while retransmissions < MAX_RETRANSMISSIONS
            && self.link.loss > 0.0
            && self.rng.random::<f64>() < self.link.loss
        {
            stall += self.rto * (1 << retransmissions);
            retransmissions += 1;
        }
        let at = (end + self.delay() + stall).max(self.last_release);
        self.last_release = at;
        Release {
            at,
            retransmissions,
        }
    }

    /// Schedules the end of the stream (FIN): it follows the last segment and is
    /// delayed like one, but takes no bandwidth and is never lost.
    pub(crate) fn fin(&mut self, arrival: Instant) -> Instant {
        let at = (arrival.max(self.link_free_at) + self.delay()).max(self.last_release);
        self.last_release = at;
        at
    }

    /// One draw of the propagation delay: uniform in `latency ± jitter`, floored at 0.
    fn delay(&mut self) -> Duration {
        let latency = self.link.latency;
        let jitter = self.link.jitter;
        if jitter.is_zero() {
            return latency;
        }
        let j = jitter.as_nanos() as i128;
        let offset = self.rng.random_range(-j..=j);
        let nanos = (latency.as_nanos() as i128 + offset).max(0);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> LinkConfig {
        LinkConfig::NONE
    }

    #[test]
    fn latency_only_shifts_every_segment() {
        let t0 = Instant::now();
        let mut s = Schedule::new(
            LinkConfig {
                latency: Duration::from_millis(50),
                ..link()
            },
            Duration::from_millis(200),
            1,
            None,
            t0,
        );
        let r = s.segment(t0, 1000);
        assert_eq!(r.at, t0 + Duration::from_millis(50));
        assert_eq!(r.retransmissions, 0);
        let later = t0 + Duration::from_millis(10);
        assert_eq!(s.segment(later, 1000).at, later + Duration::from_millis(50));
    }

    #[test]
    fn bandwidth_paces_back_to_back_segments() {
        let t0 = Instant::now();
        let mut s = Schedule::new(
            LinkConfig {
                bandwidth: Some(Bandwidth::from_mbit(1)),
                ..link()
            },
            Duration::from_millis(200),
            1,
            None,
            t0,
        );
        // 10 segments of 1250 bytes = 100 kbit = 100 ms at 1 Mbit/s.
        let last = (0..10).map(|_| s.segment(t0, 1250).at).last().unwrap();
        assert_eq!(last, t0 + Duration::from_millis(100));
        // An idle link earns no credit: a segment after a pause takes its own 10 ms.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.segment(t1, 1250).at, t1 + Duration::from_millis(10));
    }

    #[test]
    fn shared_link_is_split_between_connections() {
        let shared = SharedLink::new(Bandwidth::from_mbit(1));
        let t0 = Instant::now();
        let mut a = Schedule::new(link(), Duration::ZERO, 1, Some(shared.clone()), t0);
        let mut b = Schedule::new(link(), Duration::ZERO, 2, Some(shared), t0);
        let mut last = t0;
        for _ in 0..5 {
            last = last.max(a.segment(t0, 1250).at).max(b.segment(t0, 1250).at);
        }
        assert_eq!(last, t0 + Duration::from_millis(100));
    }

    #[test]
    fn jitter_never_reorders_and_stays_in_range() {
        let t0 = Instant::now();
        let cfg = LinkConfig {
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(40),
            ..link()
        };
        let mut s = Schedule::new(cfg, Duration::from_millis(200), 7, None, t0);
        let mut prev = t0;
        let mut spread = (Duration::MAX, Duration::ZERO);
        for i in 0..1000u64 {
            let arrival = t0 + Duration::from_millis(i * 100);
            let r = s.segment(arrival, 100);
            assert!(r.at >= prev);
            prev = r.at;
            let d = r.at - arrival;
            assert!(
                d >= Duration::from_millis(10) && d <= Duration::from_millis(90),
                "{d:?}"
            );
            spread = (spread.0.min(d), spread.1.max(d));
        }
        assert!(spread.0 < Duration::from_millis(15) && spread.1 > Duration::from_millis(85));
    }

    #[test]
    fn loss_stalls_by_rto_with_backoff_and_blocks_followers() {
        let t0 = Instant::now();
        let cfg = LinkConfig {
            loss: 0.5,
            ..link()
        };
        let rto = Duration::from_millis(200);
        let mut s = Schedule::new(cfg, rto, 3, None, t0);
        let mut lost = 0;
        for _ in 0..2000 {
            let before = s.last_release;
            let r = s.segment(t0, 100);
            let own = rto * ((1 << r.retransmissions) - 1);
            assert_eq!(r.at, (t0 + own).max(before));
            lost += u32::from(r.retransmissions > 0);
        }
        assert!(
            (900..1100).contains(&lost),
            "lost {lost} of 2000 at p = 0.5"
        );
    }

    #[test]
    fn same_seed_same_schedule() {
        let t0 = Instant::now();
        let cfg = LinkConfig {
            jitter: Duration::from_millis(30),
            latency: Duration::from_millis(30),
            loss: 0.1,
            ..link()
        };
        let run = |seed| {
            let mut s = Schedule::new(cfg, Duration::from_millis(200), seed, None, t0);
            (0..100).map(|_| s.segment(t0, 10).at).collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
