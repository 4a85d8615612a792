//! The per-client ordering tracker: judges each delivery against the publisher's own
//! sequence (publisher id, topic, publisher seq), with memory bounded by a sliding
//! bitmap of the most recent [`WINDOW`] publisher seqs per publisher: no per-event
//! vectors, however long the run.
//!
//! Rejected alternative: a `HashSet` of seen seqs grows with the run; a single
//! "highest seen" cannot tell a duplicate from a late (reordered) first delivery.

/// How many recent publisher seqs the bitmap remembers per publisher.
pub(crate) const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

/// What one delivery was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// First delivery, after everything earlier that was delivered.
    InOrder,
    /// First delivery, but a later event of the same publisher had already arrived.
    Reordered,
    /// Already delivered before.
    Duplicate,
    /// Older than the window: first delivery or duplicate cannot be told apart;
    /// counted as a reordered first delivery (see docs/metrics.md).
    TooOld,
}

impl Outcome {
    /// True when this counts as a distinct delivery.
    pub(crate) fn is_first(self) -> bool {
        !matches!(self, Outcome::Duplicate)
    }
}

#[derive(Debug)]
struct Stream {
    publisher: u32,
    topic: u32,
    /// Highest publisher seq delivered so far (0 = none).
    highest: u64,
    /// Bit `p % WINDOW` is set when seq p in `(highest - WINDOW, highest]` was delivered.
    bits: Box<[u64; WORDS]>,
}

impl Stream {
    fn get(&self, p: u64) -> bool {
        let i = (p % WINDOW) as usize;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, p: u64) {
        let i = (p % WINDOW) as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, p: u64) {
        let i = (p % WINDOW) as usize;
        self.bits[i / 64] &= !(1 << (i % 64));
    }
}

/// Counts, for the deliveries the caller says to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OrderingCounts {
    /// Distinct events delivered.
    pub(crate) delivered: u64,
    /// Deliveries of an event already delivered.
    pub(crate) duplicates: u64,
    /// First deliveries that arrived after a later event of the same publisher.
    pub(crate) reordered: u64,
}

/// One client's view of every publisher it hears from.
#[derive(Debug, Default)]
pub(crate) struct OrderingTracker {
    streams: Vec<Stream>,
    counts: OrderingCounts,
}

impl OrderingTracker {
    /// Judges one delivery of `(publisher, topic, pseq)`; counts it when `counted`
    /// (the event is in the client's expected range). State is updated either way,
    /// so an uncounted event still defines what "later" means.
    pub(crate) fn observe(
        &mut self,
        publisher: u32,
        topic: u32,
        pseq: u64,
        counted: bool,
    ) -> Outcome {
        let idx = match self
            .streams
            .iter()
            .position(|s| s.publisher == publisher && s.topic == topic)
        {
            Some(i) => i,
            None => {
                self.streams.push(Stream {
                    publisher,
                    topic,
                    highest: 0,
                    bits: Box::new([0; WORDS]),
                });
                self.streams.len() - 1
            }
        };
        let s = &mut self.streams[idx];
        let outcome = if pseq > s.highest {
            // Slide the window forward, forgetting seqs that fall out of it.
            if pseq - s.highest >= WINDOW {
                s.bits.fill(0);
            } else {
                for p in s.highest + 1..=pseq {
                    s.clear(p);
                }
            }
            s.highest = pseq;
            s.set(pseq);
            Outcome::InOrder
        } else if s.highest - pseq >= WINDOW {
            Outcome::TooOld
        } else if s.get(pseq) {
            Outcome::Duplicate
        } else {
            s.set(pseq);
            Outcome::Reordered
        };
        if counted {
            match outcome {
                Outcome::InOrder => self.counts.delivered += 1,
                Outcome::Reordered | Outcome::TooOld => {
                    self.counts.delivered += 1;
                    self.counts.reordered += 1;
                }
                Outcome::Duplicate => self.counts.duplicates += 1,
            }
        }
        outcome
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> OrderingCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seq: &[u64]) -> (Vec<Outcome>, OrderingCounts) {
        let mut t = OrderingTracker::default();
        let out = seq.iter().map(|&p| t.observe(0, 0, p, true)).collect();
        (out, t.counts())
    }

    #[test]
    fn in_order_is_clean() {
        let (out, c) = run(&[1, 2, 3, 4, 5]);
        assert!(out.iter().all(|o| *o == Outcome::InOrder));
        assert_eq!(
            c,
            OrderingCounts {
                delivered: 5,
                duplicates: 0,
                reordered: 0
            }
        );
    }

    #[test]
    fn skipped_then_late_is_reordered_not_duplicate() {
        // 1 2 4 3 5: 3 arrives after 4.
        let (out, c) = run(&[1, 2, 4, 3, 5]);
        assert_eq!(out[3], Outcome::Reordered);
        assert_eq!(
            c,
            OrderingCounts {
                delivered: 5,
                duplicates: 0,
                reordered: 1
            }
        );
    }

    #[test]
    fn duplicates_are_counted_once_each() {
        // Overlapping setInterval polls: 1 2 3 then 2 3 again, then 4.
        let (out, c) = run(&[1, 2, 3, 2, 3, 4, 4]);
        assert_eq!(out[3], Outcome::Duplicate);
        assert_eq!(out[6], Outcome::Duplicate);
        assert_eq!(
            c,
            OrderingCounts {
                delivered: 4,
                duplicates: 3,
                reordered: 0
            }
        );
    }

    #[test]
    fn gaps_are_not_judged_here() {
        // 1 5 9: nothing reordered or duplicated; loss is expected - delivered.
        let (_, c) = run(&[1, 5, 9]);
        assert_eq!(
            c,
            OrderingCounts {
                delivered: 3,
                duplicates: 0,
                reordered: 0
            }
        );
    }

    #[test]
    fn publishers_are_independent() {
        let mut t = OrderingTracker::default();
        assert_eq!(t.observe(1, 0, 5, true), Outcome::InOrder);
        assert_eq!(t.observe(2, 0, 1, true), Outcome::InOrder);
        assert_eq!(
            t.observe(1, 1, 1, true),
            Outcome::InOrder,
            "topic is part of the key"
        );
        assert_eq!(t.observe(2, 0, 1, true), Outcome::Duplicate);
        assert_eq!(t.observe(1, 0, 4, true), Outcome::Reordered);
    }

    #[test]
    fn uncounted_updates_state_only() {
        let mut t = OrderingTracker::default();
        t.observe(0, 0, 10, false);
        assert_eq!(t.observe(0, 0, 10, true), Outcome::Duplicate);
        assert_eq!(t.observe(0, 0, 9, true), Outcome::Reordered);
        assert_eq!(
            t.counts(),
            OrderingCounts {
                delivered: 1,
                duplicates: 1,
                reordered: 1
            }
        );
    }

    #[test]
    fn window_slides_and_memory_stays_bounded() {
        let mut t = OrderingTracker::default();
        for p in 1..=100_000u64 {
            assert_eq!(t.observe(0, 0, p, true), Outcome::InOrder);
        }
        // Inside the window: a duplicate is recognised.
        assert_eq!(t.observe(0, 0, 100_000 - 10, true), Outcome::Duplicate);
        // Beyond it: counted as a late first delivery.
        assert_eq!(t.observe(0, 0, 10, true), Outcome::TooOld);
        // A jump larger than the window clears it.
        assert_eq!(t.observe(0, 0, 200_000, true), Outcome::InOrder);
        assert_eq!(t.observe(0, 0, 199_999, true), Outcome::Reordered);
        assert_eq!(t.streams.len(), 1);
    }
}
