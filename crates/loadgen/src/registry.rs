//! What was published when: per (publisher, topic), the intended time of every
//! publisher seq and whether the server acknowledged it. A client's `expected` is
//! read from here at the end of the run (events acknowledged on its topic whose
//! intended time falls in its subscribed part of the measured window).
//!
//! This is the one per-event structure in the load generator (9 bytes an event,
//! one per publisher, not per client): clients stay bounded, and `expected` is exact
//! even for clients that never see most events (state polling, naive long polling).
//!
//! A publish whose answer never came (connection reset after the request went out)
//! may or may not have reached the server. It is not acknowledged, so nobody expects
//! it, until some client receives it: then it certainly existed, it is acknowledged
//! ("confirmed"), and every subscriber that missed it has lost it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One publisher's log on one topic.
#[derive(Debug, Default)]
pub(crate) struct PubLog {
    inner: Mutex<PubLogInner>,
}

#[derive(Debug, Default)]
struct PubLogInner {
    /// Intended time of pseq `i + 1`, non-decreasing.
    intended: Vec<u64>,
    /// Bit i set when pseq `i + 1` was acknowledged.
    acked: Vec<u64>,
}

impl PubLog {
    /// Records the next pseq (returned, from 1) with its intended time.
    pub(crate) fn schedule(&self, intended_ns: u64) -> u64 {
        let mut g = self
            .inner
            .lock()
            .expect("registry lock never poisoned: no panics under it");
        let last = g.intended.last().copied().unwrap_or(0);
        // Keep intended times sorted so ranges are binary searches.
        g.intended.push(intended_ns.max(last));
        let n = g.intended.len();
        if g.acked.len() * 64 < n {
            g.acked.push(0);
        }
        n as u64
    }

    /// Marks a pseq as acknowledged by the server.
    pub(crate) fn ack(&self, pseq: u64) {
        let mut g = self
            .inner
            .lock()
            .expect("registry lock never poisoned: no panics under it");
        let Some(i) = pseq.checked_sub(1).map(|i| i as usize) else {
            return;
        };
        if i >= g.intended.len() {
            return;
        }
        if let Some(w) = g.acked.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Acknowledged events with intended time in `[from_ns, to_ns)`.
    pub(crate) fn acked_between(&self, from_ns: u64, to_ns: u64) -> u64 {
        if from_ns >= to_ns {
            return 0;
        }
        let g = self
            .inner
            .lock()
            .expect("registry lock never poisoned: no panics under it");
        let lo = g.intended.partition_point(|&t| t < from_ns);
        let hi = g.intended.partition_point(|&t| t < to_ns);
        (lo..hi)
            .filter(|&i| g.acked[i / 64] & (1 << (i % 64)) != 0)
            .count() as u64
    }
}

/// Every publisher log, by topic index.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    topics: Mutex<HashMap<u32, Vec<Arc<PubLog>>>>,
    by_key: Mutex<HashMap<(u32, u32), Arc<PubLog>>>,
    /// Set once any publish failed: only then do deliveries need confirming.
    any_failed: AtomicBool,
}

impl Registry {
    /// A new log for one publisher on one topic.
    pub(crate) fn log(&self, publisher: u32, topic: u32) -> Arc<PubLog> {
        let log = Arc::new(PubLog::default());
        self.topics
            .lock()
            .expect("registry lock never poisoned: no panics under it")
            .entry(topic)
            .or_default()
            .push(log.clone());
        self.by_key
            .lock()
            .expect("registry lock never poisoned: no panics under it")
            .insert((publisher, topic), log.clone());
        log
    }

    /// A publish failed: from now on deliveries are checked against acknowledgements.
    pub(crate) fn note_failure(&self) {
        self.any_failed.store(true, Relaxed);
    }

    /// A client received `(publisher, topic, pseq)`: it existed on the server, so it
    /// counts as acknowledged even if the publisher never got the answer.
    pub(crate) fn confirm(&self, publisher: u32, topic: u32, pseq: u64) {
        if !self.any_failed.load(Relaxed) || pseq == 0 {
            return;
        }
        let log = self
            .by_key
            .lock()
            .expect("registry lock never poisoned: no panics under it")
            .get(&(publisher, topic))
            .cloned();
        if let Some(log) = log {
            log.ack(pseq);
        }
    }

    /// Acknowledged events on `topic`, all publishers, intended in `[from_ns, to_ns)`.
    pub(crate) fn expected(&self, topic: u32, from_ns: u64, to_ns: u64) -> u64 {
        let logs: Vec<Arc<PubLog>> = self
            .topics
            .lock()
            .expect("registry lock never poisoned: no panics under it")
            .get(&topic)
            .cloned()
            .unwrap_or_default();
        logs.iter().map(|l| l.acked_between(from_ns, to_ns)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_acked_in_range() {
        let r = Registry::default();
        let a = r.log(0, 0);
        let b = r.log(1, 0);
        for t in [10, 20, 30, 40, 50] {
            let p = a.schedule(t);
            if p != 3 {
                a.ack(p);
            }
        }
        let p = b.schedule(25);
        b.ack(p);
        // a: 10,20,(30 not acked),40,50 ; b: 25
        assert_eq!(r.expected(0, 0, 100), 5);
        assert_eq!(r.expected(0, 20, 50), 3); // 20, 40, 25
        assert_eq!(r.expected(0, 51, 100), 0);
        assert_eq!(r.expected(1, 0, 100), 0);
        // pseq 3 (intended 30) never got its answer, but a client received it.
        r.confirm(0, 0, 3);
        assert_eq!(
            r.expected(0, 0, 100),
            5,
            "nothing failed yet: confirm is a no-op"
        );
        r.note_failure();
        r.confirm(0, 0, 3);
        assert_eq!(r.expected(0, 0, 100), 6);
    }
}
