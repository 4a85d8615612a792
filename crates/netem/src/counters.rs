//! Counters: atomics the tasks bump ([`Stats`]) and the plain snapshot a caller
//! reads ([`Counters`]). Relaxed ordering: they are statistics, not synchronization.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What happened in one direction ("up": towards the server, "down": towards the client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    /// Bytes read from the sending side.
    pub bytes_read: u64,
    /// Bytes written to the receiving side.
    pub bytes_written: u64,
    /// Segments scheduled (chunks when the direction needs no segmenting).
    pub segments: u64,
    /// Segments that were "lost" and stalled by at least one RTO.
    pub retransmission_stalls: u64,
    /// FINs (end of stream) forwarded to the receiving side.
    pub fins: u64,
    /// RSTs sent to the receiving side (faults, upstream failures, peer aborts).
    pub resets: u64,
}

/// A snapshot of everything the proxy counts since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Client connections accepted.
    pub connections_accepted: u64,
    /// Client connections currently open.
    pub connections_active: u64,
    /// Upstream connections established.
    pub upstream_connected: u64,
    /// Upstream dials that failed (the client is reset).
    pub upstream_failures: u64,
    /// Connections reset at accept because a flap was in its down phase.
    pub connections_refused: u64,
    /// Connections reset by a [`crate::Fault::Reset`] or a flap.
    pub fault_resets: u64,
    /// Faults applied (each flap down phase counts once).
    pub faults_applied: u64,
    /// Client to server.
    pub up: DirectionCounters,
    /// Server to client.
    pub down: DirectionCounters,
}

#[derive(Debug, Default)]
pub(crate) struct DirectionStats {
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub segments: AtomicU64,
    pub retransmission_stalls: AtomicU64,
    pub fins: AtomicU64,
    pub resets: AtomicU64,
}

impl DirectionStats {
    fn snapshot(&self) -> DirectionCounters {
        DirectionCounters {
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            segments: self.segments.load(Relaxed),
            retransmission_stalls: self.retransmission_stalls.load(Relaxed),
            fins: self.fins.load(Relaxed),
            resets: self.resets.load(Relaxed),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    pub upstream_connected: AtomicU64,
    pub upstream_failures: AtomicU64,
    pub refused: AtomicU64,
    pub fault_resets: AtomicU64,
    pub faults_applied: AtomicU64,
    pub up: DirectionStats,
    pub down: DirectionStats,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> Counters {
        Counters {
            connections_accepted: self.accepted.load(Relaxed),
            connections_active: self.active.load(Relaxed),
            upstream_connected: self.upstream_connected.load(Relaxed),
            upstream_failures: self.upstream_failures.load(Relaxed),
            connections_refused: self.refused.load(Relaxed),
            fault_resets: self.fault_resets.load(Relaxed),
            faults_applied: self.faults_applied.load(Relaxed),
            up: self.up.snapshot(),
            down: self.down.snapshot(),
        }
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}
