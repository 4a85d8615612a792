//! Live counters for the CLI's progress display: atomics written by the run and
//! read by the CLI whenever it redraws, so neither side waits on the other.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Live counters for the progress display, updated by the run, read by the CLI.
#[derive(Debug, Default)]
pub struct Progress {
    pub(crate) elapsed_ms: AtomicU64,
    pub(crate) warming_up: AtomicBool,
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) open_connections: AtomicU64,
}

/// One reading of [`Progress`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgressSnapshot {
    /// Milliseconds since the run started (warm-up included).
    pub elapsed_ms: u64,
    /// True during warm-up.
    pub warming_up: bool,
    /// Events the publisher got acknowledged so far.
    pub published: u64,
    /// Distinct events delivered to clients so far (all groups).
    pub delivered: u64,
    /// Errors so far (all groups and the publisher).
    pub errors: u64,
    /// Client connections open now.
    pub open_connections: u64,
}

impl Progress {
    /// Reads every counter.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            elapsed_ms: self.elapsed_ms.load(Relaxed),
            warming_up: self.warming_up.load(Relaxed),
            published: self.published.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            errors: self.errors.load(Relaxed),
            open_connections: self.open_connections.load(Relaxed),
        }
    }
}
