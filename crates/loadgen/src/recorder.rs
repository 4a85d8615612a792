//! Recording per group: counters (atomics, read by the per-second sampler), latency
//! histograms (shared per group, fed in batches), and the per-client recorder that
//! judges each delivery with the ordering tracker.
//!
//! Histograms are per group behind a std `Mutex` (no await while held), fed from a
//! small per-client sample buffer: a histogram with pushbench's range is about 190 KB,
//! so one per client would not scale to fanout's thousands of subscribers, and a
//! channel message per sample would cost more than the lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use pushbench_protocol::record::latency_histogram;
use pushbench_protocol::wire::Stamp;

use crate::Progress;
use crate::clock::Clock;
use crate::connect::{ClientError, WireCounters};
use crate::ordering::{OrderingCounts, OrderingTracker};
use crate::registry::Registry;

/// Error kinds counted per group (the keys of `errors_by_kind`).
pub(crate) const ERROR_KINDS: &[&str] = &[
    "connect",
    "timeout",
    "http",
    "http_4xx",
    "http_5xx",
    "protocol",
    "websocket",
    "closed",
    "dead_peer",
    "overlap_limit",
    "not_stamped",
];

/// Counters of one group, all monotonic.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) wire: Arc<WireCounters>,
    pub(crate) requests: AtomicU64,
    pub(crate) empty: AtomicU64,
    pub(crate) not_modified: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) payload_bytes_down: AtomicU64,
    pub(crate) errors: [AtomicU64; 11],
}

/// A plain copy of [`Counters`] at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CounterValues {
    pub(crate) bytes_up: u64,
    pub(crate) bytes_down: u64,
    pub(crate) connections_opened: u64,
    pub(crate) open: u64,
    pub(crate) requests: u64,
    pub(crate) empty: u64,
    pub(crate) not_modified: u64,
    pub(crate) reconnects: u64,
    pub(crate) uploads: u64,
    pub(crate) deliveries: u64,
    pub(crate) payload_bytes_down: u64,
    pub(crate) errors: [u64; 11],
}

impl CounterValues {
    /// `self - earlier`, for every monotonic counter (`open` is a gauge, kept).
    pub(crate) fn since(&self, earlier: &CounterValues) -> CounterValues {
        let mut errors = [0; 11];
        for (i, e) in errors.iter_mut().enumerate() {
            *e = self.errors[i].saturating_sub(earlier.errors[i]);
        }
        CounterValues {
            bytes_up: self.bytes_up.saturating_sub(earlier.bytes_up),
            bytes_down: self.bytes_down.saturating_sub(earlier.bytes_down),
            connections_opened: self
                .connections_opened
                .saturating_sub(earlier.connections_opened),
            open: self.open,
            requests: self.requests.saturating_sub(earlier.requests),
            empty: self.empty.saturating_sub(earlier.empty),
            not_modified: self.not_modified.saturating_sub(earlier.not_modified),
            reconnects: self.reconnects.saturating_sub(earlier.reconnects),
            uploads: self.uploads.saturating_sub(earlier.uploads),
            deliveries: self.deliveries.saturating_sub(earlier.deliveries),
            payload_bytes_down: self
                .payload_bytes_down
                .saturating_sub(earlier.payload_bytes_down),
            errors,
        }
    }

    /// Errors of every kind.
    pub(crate) fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Errors by kind, zero kinds left out.
    pub(crate) fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        ERROR_KINDS
            .iter()
            .zip(self.errors)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect()
    }
}

impl Counters {
    pub(crate) fn values(&self) -> CounterValues {
        let mut errors = [0; 11];
        for (i, e) in errors.iter_mut().enumerate() {
            *e = self.errors[i].load(Relaxed);
        }
        CounterValues {
            bytes_up: self.wire.bytes_up.load(Relaxed),
            bytes_down: self.wire.bytes_down.load(Relaxed),
            connections_opened: self.wire.opened.load(Relaxed),
            open: self.wire.open.load(Relaxed),
            requests: self.requests.load(Relaxed),
            empty: self.empty.load(Relaxed),
            not_modified: self.not_modified.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            uploads: self.uploads.load(Relaxed),
            deliveries: self.deliveries.load(Relaxed),
            payload_bytes_down: self.payload_bytes_down.load(Relaxed),
            errors,
        }
    }
}

/// Latency histograms of one group: whole run and the current one-second interval,
/// each corrected (from the intended time) and uncorrected (from the send time).
#[derive(Debug)]
pub(crate) struct Hists {
    pub(crate) total: Histogram<u64>,
    pub(crate) total_uncorrected: Histogram<u64>,
    pub(crate) interval: Histogram<u64>,
    pub(crate) interval_uncorrected: Histogram<u64>,
}

impl Hists {
    fn new() -> Self {
        Hists {
            total: latency_histogram(),
            total_uncorrected: latency_histogram(),
            interval: latency_histogram(),
            interval_uncorrected: latency_histogram(),
        }
    }

    /// Takes the current interval's histograms (compacted to their used range) and
    /// starts fresh ones.
    pub(crate) fn take_interval(&mut self) -> (Histogram<u64>, Histogram<u64>) {
        (
            compact(&mut self.interval),
            compact(&mut self.interval_uncorrected),
        )
    }
}

/// Copies a histogram into one sized to its largest value (hlog lines only carry
/// non-zero counts, so nothing is lost), and resets the original.
fn compact(h: &mut Histogram<u64>) -> Histogram<u64> {
    let high = h.max().max(2);
    let mut out = Histogram::new_with_bounds(1, high, 3).expect("bounds 1..high>=2 are valid");
    out.add(&*h)
        .expect("same precision, range covers every value");
    h.reset();
    out
}

/// Most `arrivals.csv` rows per sampled client, and the sampled clients per group.
pub(crate) const ARRIVAL_ROWS_PER_CLIENT: usize = 400;
/// Clients `0..ARRIVAL_CLIENTS` of each group are sampled for `arrivals.csv`.
pub(crate) const ARRIVAL_CLIENTS: u32 = 3;
/// Publisher seqs sampled per client: from its first in-window event on.
const ARRIVAL_SEQS: u64 = 150;
/// Most detection or recovery samples kept per group (a bound, not a sample size).
const FAULT_SAMPLES: usize = 100_000;

/// The fault state of a group's link, written by the fault timeline, read by its clients.
#[derive(Debug, Default)]
pub(crate) struct FaultMarks {
    /// Start of the latest fault on the group, ns (0: none yet).
    pub(crate) start_ns: AtomicU64,
    /// End of the latest finished fault, ns.
    pub(crate) end_ns: AtomicU64,
    /// Faults finished so far: a client that sees it move recovers.
    pub(crate) epoch: AtomicU64,
}

/// Detection and recovery samples of a group, microseconds.
#[derive(Debug, Default)]
pub(crate) struct FaultSamples {
    pub(crate) detect_us: Vec<u64>,
    pub(crate) recover_us: Vec<u64>,
}

/// Everything a group's clients share.
#[derive(Debug)]
pub(crate) struct GroupShared {
    pub(crate) name: String,
    pub(crate) counters: Counters,
    pub(crate) hists: Mutex<Hists>,
    pub(crate) clock: Clock,
    /// Start of the measured window, ns.
    pub(crate) window_start_ns: u64,
    /// End of the measured window, ns (moved earlier when the run is stopped).
    pub(crate) window_end_ns: AtomicU64,
    pub(crate) progress: Arc<Progress>,
    /// What was published; deliveries confirm publishes whose answer was lost.
    pub(crate) registry: Arc<Registry>,
    /// The group's fault state.
    pub(crate) faults: FaultMarks,
    /// Time to detect and to recover, per client and fault.
    pub(crate) fault_samples: Mutex<FaultSamples>,
    /// Sampled arrivals: (client, publisher seq, receive ns).
    pub(crate) arrivals: Mutex<Vec<(u32, u64, u64)>>,
}

impl GroupShared {
    pub(crate) fn new(
        name: &str,
        clock: Clock,
        window_start_ns: u64,
        window_end_ns: u64,
        progress: Arc<Progress>,
        registry: Arc<Registry>,
    ) -> Self {
        let wire = WireCounters {
            progress_open: Some(progress.clone()),
            ..WireCounters::default()
        };
        GroupShared {
            name: name.to_string(),
            counters: Counters {
                wire: Arc::new(wire),
                ..Counters::default()
            },
            hists: Mutex::new(Hists::new()),
            clock,
            window_start_ns,
            window_end_ns: AtomicU64::new(window_end_ns),
            progress,
            registry,
            faults: FaultMarks::default(),
            fault_samples: Mutex::new(FaultSamples::default()),
            arrivals: Mutex::new(Vec::new()),
        }
    }

    /// A fault starts on this group's link (or server) now.
    pub(crate) fn fault_started(&self, now_ns: u64) {
        self.faults.start_ns.store(now_ns.max(1), Relaxed);
    }

    /// The fault ends now: clients that see the epoch move measure their recovery.
    pub(crate) fn fault_ended(&self, now_ns: u64) {
        self.faults.end_ns.store(now_ns, Relaxed);
        self.faults.epoch.fetch_add(1, Relaxed);
    }

    fn fault_sample(&self, detect: bool, us: u64) {
        let mut s = self
            .fault_samples
            .lock()
            .expect("fault sample lock never poisoned");
        let v = if detect {
            &mut s.detect_us
        } else {
            &mut s.recover_us
        };
        if v.len() < FAULT_SAMPLES {
            v.push(us);
        }
    }

    /// Counts an error by kind.
    pub(crate) fn error(&self, e: &ClientError) {
        self.error_kind(e.kind());
    }

    /// Counts an error by its `errors_by_kind` key.
    pub(crate) fn error_kind(&self, kind: &str) {
        let i = ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .expect("every error kind is listed in ERROR_KINDS");
        self.counters.errors[i].fetch_add(1, Relaxed);
        self.progress.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    fn in_window(&self, intended_ns: u64) -> bool {
        intended_ns >= self.window_start_ns && intended_ns < self.window_end_ns.load(Relaxed)
    }

    /// Records one latency sample outside ordering (beacon acknowledgements).
    pub(crate) fn record_upload_latency(&self, intended_ns: u64, sent_ns: u64, now_ns: u64) {
        if !self.in_window(intended_ns) {
            return;
        }
        let mut h = self.hists.lock().expect("histogram lock never poisoned");
        record_into(&mut h, intended_ns, sent_ns, now_ns);
    }
}

fn record_into(h: &mut Hists, intended_ns: u64, sent_ns: u64, now_ns: u64) {
    let corrected = (now_ns.saturating_sub(intended_ns) / 1000).clamp(1, 3_600_000_000);
    let uncorrected = (now_ns.saturating_sub(sent_ns) / 1000).clamp(1, 3_600_000_000);
    let _ = h.total.record(corrected);
    let _ = h.interval.record(corrected);
    let _ = h.total_uncorrected.record(uncorrected);
    let _ = h.interval_uncorrected.record(uncorrected);
}

/// The stamp of a body in exactly the layout [`encode_stamped_body`] writes
/// (`{"pub":N,"topic":N,"pseq":N,"intended_ns":N,"sent_ns":N}`, optionally padded
/// with `,"pad":"xx..x"` before the brace), read without a JSON parser; `None` for
/// anything else, which [`Stamp::decode`] then judges. Every delivery passes here.
///
/// [`encode_stamped_body`]: pushbench_protocol::wire::encode_stamped_body
fn fast_stamp(data: &[u8]) -> Option<Stamp> {
    fn field(p: &mut &[u8], name: &[u8]) -> Option<u64> {
        *p = p.strip_prefix(name)?;
        let digits = p.iter().take_while(|b| b.is_ascii_digit()).count();
        // JSON has no leading zeros; a u64 has at most 20 digits.
        if digits == 0 || digits > 20 || (digits > 1 && p[0] == b'0') {
            return None;
        }
        let mut n: u64 = 0;
        for &b in &p[..digits] {
            n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        *p = &p[digits..];
        Some(n)
    }
    let mut p = data;
    let publisher = u32::try_from(field(&mut p, b"{\"pub\":")?).ok()?;
    let topic = u32::try_from(field(&mut p, b",\"topic\":")?).ok()?;
    let seq = field(&mut p, b",\"pseq\":")?;
    let intended_ns = field(&mut p, b",\"intended_ns\":")?;
    let sent_ns = field(&mut p, b",\"sent_ns\":")?;
    let rest = match p.strip_prefix(b",\"pad\":\"") {
        Some(pad) => pad.strip_suffix(b"\"}")?.iter().all(|&b| b == b'x'),
        None => p == b"}",
    };
    rest.then_some(Stamp {
        publisher,
        topic,
        seq,
        intended_ns,
        sent_ns,
    })
}

/// What one client contributes to its group's summary.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientResult {
    pub(crate) expected: u64,
    pub(crate) counts: OrderingCounts,
    pub(crate) gaps: u64,
}

/// Samples a client buffers before taking the histogram lock (it also flushes after
/// every read). 16 x 24 bytes: part of what every idle connection costs.
const SAMPLE_BATCH: usize = 16;

/// One client's recorder: ordering tracker, subscription start, sample buffer,
/// and what it needs to time detection and recovery around faults.
#[derive(Debug)]
pub(crate) struct ClientRecorder {
    pub(crate) group: Arc<GroupShared>,
    id: u32,
    /// The fault start this client already reported a detection for.
    detected_for: u64,
    /// When the client lost its connection, until an event arrives again.
    lost_at: Option<u64>,
    /// The group's fault epoch this client last saw.
    seen_epoch: u64,
    /// Receive time of its latest delivery.
    last_delivery_ns: u64,
    /// First in-window publisher seq seen (arrivals sampling).
    first_pseq: Option<u64>,
    arrival_rows: usize,
    tracker: OrderingTracker,
    /// When the client's first subscription was confirmed, ns (None: not yet).
    subscribed_ns: Option<u64>,
    samples: Vec<(u64, u64, u64)>,
    gaps: u64,
    pending_deliveries: u64,
}

impl ClientRecorder {
    pub(crate) fn new(group: Arc<GroupShared>, id: u32) -> Self {
        ClientRecorder {
            group,
            id,
            detected_for: 0,
            lost_at: None,
            seen_epoch: 0,
            last_delivery_ns: 0,
            first_pseq: None,
            arrival_rows: 0,
            tracker: OrderingTracker::default(),
            subscribed_ns: None,
            samples: Vec::with_capacity(SAMPLE_BATCH),
            gaps: 0,
            pending_deliveries: 0,
        }
    }

    /// The client's subscription is confirmed (first time only counts): from now on
    /// every event published on its topic is expected.
    pub(crate) fn subscribed(&mut self) {
        if self.subscribed_ns.is_none() {
            self.subscribed_ns = Some(self.group.clock.now_ns());
        }
    }

    /// Lower bound of the expected range, if subscribed.
    pub(crate) fn expected_from_ns(&self) -> Option<u64> {
        self.subscribed_ns
            .map(|s| s.max(self.group.window_start_ns))
    }

    /// The client lost its connection or declared it dead (heartbeat, read
    /// timeout, reset, refused). The first time after a fault started, that is the
    /// fault's detection; recovery is timed from here to the next event.
    pub(crate) fn connection_lost(&mut self) {
        let now = self.group.clock.now_ns();
        let start = self.group.faults.start_ns.load(Relaxed);
        if start != 0 && start > self.detected_for && now >= start {
            self.detected_for = start;
            self.group
                .fault_sample(true, now.saturating_sub(start) / 1000);
        }
        self.lost_at.get_or_insert(now);
    }

    /// Recovery timing on every delivery (duplicates included: an event is an event).
    fn note_delivery(&mut self, now: u64) {
        let epoch = self.group.faults.epoch.load(Relaxed);
        if epoch != self.seen_epoch {
            self.seen_epoch = epoch;
            let start = self.group.faults.start_ns.load(Relaxed);
            let end = self.group.faults.end_ns.load(Relaxed);
            // Affected: it lost its connection, or nothing reached it since the
            // fault began (a link that silently held its bytes).
            if self.lost_at.is_some() || self.last_delivery_ns < start {
                let from = end.max(self.lost_at.unwrap_or(0));
                self.group
                    .fault_sample(false, now.saturating_sub(from) / 1000);
            }
            self.lost_at = None;
        } else if let Some(lost) = self.lost_at.take() {
            self.group
                .fault_sample(false, now.saturating_sub(lost) / 1000);
        }
        self.last_delivery_ns = now;
    }

    /// A gap notice from the server.
    pub(crate) fn gap(&mut self) {
        self.gaps += 1;
    }

    /// One event's data arrived at `now_ns`. Returns false when it carries no stamp.
    pub(crate) fn deliver(&mut self, data: &[u8], now_ns: u64) -> bool {
        self.group
            .add(&self.group.counters.payload_bytes_down, data.len() as u64);
        let stamp = match fast_stamp(data).map_or_else(|| Stamp::decode(data), Ok) {
            Ok(s) => s,
            // A server that wraps bodies in pushbench's own envelope where we expected
            // the bare body (or the other way round).
            Err(_) => match serde_json::from_slice::<pushbench_protocol::wire::EventRef<'_>>(data)
                .ok()
                .and_then(|e| Stamp::decode(e.data.get().as_bytes()).ok())
            {
                Some(s) => s,
                None => {
                    self.group.error_kind("not_stamped");
                    return false;
                }
            },
        };
        self.deliver_stamp(&stamp, now_ns);
        true
    }

    fn deliver_stamp(&mut self, stamp: &Stamp, now_ns: u64) {
        let counted = match self.expected_from_ns() {
            Some(from) => {
                stamp.intended_ns >= from
                    && stamp.intended_ns < self.group.window_end_ns.load(Relaxed)
            }
            None => false,
        };
        self.note_delivery(now_ns);
        if self.id < ARRIVAL_CLIENTS
            && stamp.publisher == 0
            && stamp.intended_ns >= self.group.window_start_ns
            && self.arrival_rows < ARRIVAL_ROWS_PER_CLIENT
        {
            let first = *self.first_pseq.get_or_insert(stamp.seq);
            if stamp.seq >= first && stamp.seq < first + ARRIVAL_SEQS {
                self.arrival_rows += 1;
                self.group
                    .arrivals
                    .lock()
                    .expect("arrivals lock never poisoned")
                    .push((self.id, stamp.seq, now_ns));
            }
        }
        let outcome = self
            .tracker
            .observe(stamp.publisher, stamp.topic, stamp.seq, counted);
        if counted && outcome.is_first() {
            self.group
                .registry
                .confirm(stamp.publisher, stamp.topic, stamp.seq);
            self.pending_deliveries += 1;
            self.samples
                .push((stamp.intended_ns, stamp.sent_ns, now_ns));
            if self.samples.len() >= SAMPLE_BATCH {
                self.flush();
            }
        }
    }

    /// Moves buffered samples into the group's histograms. Call after each read.
    pub(crate) fn flush(&mut self) {
        if !self.samples.is_empty() {
            let mut h = self
                .group
                .hists
                .lock()
                .expect("histogram lock never poisoned");
            for &(i, s, n) in &self.samples {
                record_into(&mut h, i, s, n);
            }
            drop(h);
            self.samples.clear();
        }
        if self.pending_deliveries > 0 {
            self.group
                .add(&self.group.counters.deliveries, self.pending_deliveries);
            self.group
                .progress
                .delivered
                .fetch_add(self.pending_deliveries, Relaxed);
            self.pending_deliveries = 0;
        }
    }

    /// Final numbers; `expected` comes from the registry for the client's topic.
    pub(crate) fn finish(mut self, expected: impl Fn(u64, u64) -> u64) -> ClientResult {
        self.flush();
        let end = self.group.window_end_ns.load(Relaxed);
        ClientResult {
            expected: self
                .expected_from_ns()
                .map(|from| expected(from, end))
                .unwrap_or(0),
            counts: self.tracker.counts(),
            gaps: self.gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushbench_protocol::wire::encode_stamped_body;

    #[test]
    fn fast_stamp_reads_what_the_publisher_writes_and_nothing_else() {
        let stamps = [
            Stamp {
                publisher: 0,
                topic: 0,
                seq: 1,
                intended_ns: 0,
                sent_ns: 0,
            },
            Stamp {
                publisher: u32::MAX,
                topic: 7,
                seq: u64::MAX,
                intended_ns: 1_700_000_000_000_000_000,
                sent_ns: u64::MAX,
            },
        ];
        for s in stamps {
            for size in [0, 64, 130, 256, 4096] {
                let body = encode_stamped_body(&s, size);
                assert_eq!(
                    fast_stamp(&body),
                    Some(s),
                    "{}",
                    String::from_utf8_lossy(&body)
                );
                assert_eq!(Stamp::decode(&body), Ok(s));
            }
        }
        // Anything else is left to the JSON parser (which may still accept it).
        for other in [
            &br#"{"pub":1,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6,"extra":1}"#[..],
            br#"{"pub": 1,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6}"#,
            br#"{"pub":01,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6}"#,
            br#"{"pub":4294967296,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6}"#,
            br#"{"pub":1,"topic":0,"pseq":18446744073709551616,"intended_ns":5,"sent_ns":6}"#,
            br#"{"pub":1,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6,"pad":"xy"}"#,
            br#"{"pub":1,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6} "#,
            br#"{"pub":1,"topic":0,"pseq":1,"intended_ns":5,"sent_ns":6"#,
            br#"{"price":1}"#,
            b"",
        ] {
            assert_eq!(
                fast_stamp(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
