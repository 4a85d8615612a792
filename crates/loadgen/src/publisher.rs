//! The open-loop publisher: events on an absolute timeline (`start + offset(i)`,
//! constant, poisson or burst, seeded), each stamped and padded to the payload
//! size, round robin over the topics. A scheduler task hands due events to lanes of
//! pipelined connections through bounded queues, so one slow response never delays
//! the schedule; how far each send fell behind its intended time is the publisher's lag.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::BytesMut;
use hdrhistogram::Histogram;
use pushbench_protocol::record::latency_histogram;
use pushbench_protocol::wire::{Stamp, encode_stamped_body};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::Progress;
use crate::clock::Clock;
use crate::connect::{Target, WireCounters};
use crate::registry::{PubLog, Registry};
use crate::scenario::{Pattern, PublisherConfig};

/// The publisher's counters.
#[derive(Debug, Default)]
pub(crate) struct PublisherStats {
    /// Acknowledged events with intended time in the measured window.
    pub(crate) published_in_window: AtomicU64,
    /// Acknowledged events in total.
    pub(crate) published: AtomicU64,
    /// Failed publishes.
    pub(crate) errors: AtomicU64,
    /// Events the scheduler could not queue (a lane's queue full).
    pub(crate) dropped: AtomicU64,
}

/// Offsets of events from the publisher's start, ns: a pure function of the
/// pattern, rate and seed, so runs repeat.
pub(crate) struct Schedule {
    pattern: Pattern,
    period_ns: f64,
    rng: SmallRng,
    i: u64,
    t: f64,
}

impl Schedule {
    pub(crate) fn new(pattern: Pattern, rate: f64, seed: u64) -> Self {
        Schedule {
            pattern,
            period_ns: 1e9 / rate,
            rng: SmallRng::seed_from_u64(seed),
            i: 0,
            t: 0.0,
        }
    }
}

impl Iterator for Schedule {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let i = self.i;
        self.i += 1;
        Some(match self.pattern {
            Pattern::Constant => (i as f64 * self.period_ns) as u64,
            Pattern::Burst { size } => {
                let size = u64::from(size);
                ((i / size * size) as f64 * self.period_ns) as u64
            }
            Pattern::Poisson => {
                let at = self.t;
                let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
                self.t += -u.ln() * self.period_ns;
                at as u64
            }
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Job {
    topic: usize,
    pseq: u64,
    intended_ns: u64,
}

/// Everything the publisher needs.
pub(crate) struct PublisherCtx {
    pub(crate) config: PublisherConfig,
    pub(crate) seed: u64,
    pub(crate) clock: Clock,
    pub(crate) target: Arc<Target>,
    /// Path of the publish endpoint per topic.
    pub(crate) paths: Vec<String>,
    /// One log per topic.
    pub(crate) logs: Vec<Arc<PubLog>>,
    /// Told about failures, so deliveries can confirm publishes whose answer was lost.
    pub(crate) registry: Arc<Registry>,
    pub(crate) start_ns: u64,
    pub(crate) window_start_ns: u64,
    /// No event is scheduled at or after this time.
    pub(crate) end_ns: u64,
    pub(crate) stats: Arc<PublisherStats>,
    pub(crate) progress: Arc<Progress>,
    /// Stop scheduling (run stopped early).
    pub(crate) stop: CancellationToken,
    /// Stop everything, queued events included.
    pub(crate) kill: CancellationToken,
    /// Extra events of `publisher-burst` faults: offsets from the start, ns, sorted.
    pub(crate) bursts: Vec<u64>,
}

/// The schedule with the bursts' extra events merged in, in time order.
fn with_bursts(base: Schedule, bursts: Vec<u64>) -> impl Iterator<Item = u64> {
    let mut base = base.peekable();
    let mut extra = bursts.into_iter().peekable();
    std::iter::from_fn(move || match (base.peek(), extra.peek()) {
        (Some(b), Some(e)) if e < b => extra.next(),
        (Some(_), _) => base.next(),
        (None, _) => extra.next(),
    })
}

/// Runs the publisher; returns its lag histogram (microseconds).
///
/// Topics are spread over `connections` lanes; each lane is one HTTP/1.1 connection
/// on which requests are *pipelined*: a writer sends each event when it is due
/// without waiting for earlier responses, and a reader matches responses to
/// requests in order. So a slow response never delays the schedule, and events of
/// one topic reach the server in publisher order. (Several connections per topic
/// would race, and the server would append events out of publisher order: every
/// subscriber would then see "reordered" events that no strategy caused.)
pub(crate) async fn run(ctx: PublisherCtx) -> Histogram<u64> {
    // The whole publisher (pacing, stamping, writing, reading acknowledgements) runs
    // on a thread of its own with a current-thread runtime: the event leaves on the
    // thread that waited for its intended time, with no cross-thread wake-up in
    // between (a parked worker takes 50-100 us to wake on a VM), and it never queues
    // behind the clients' tasks on the shared workers, however many there are.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("pushbench-publisher".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "the publisher's runtime did not start; nothing was published");
                    let _ = tx.send(latency_histogram());
                    return;
                }
            };
            let lag = runtime.block_on(publish(ctx));
            let _ = tx.send(lag);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the publisher's thread did not start; nothing was published");
        return latency_histogram();
    }
    rx.await.unwrap_or_else(|_| {
        tracing::error!("the publisher's thread panicked; the schedule ended early");
        latency_histogram()
    })
}

/// Spin (rather than sleep) this close to an event's intended time: a sleep on this
/// kind of VM wakes 75-150 us late even with a 1 us timer slack. Capped at 5% of the
/// mean interval between events, so spinning costs at most 5% of one core.
const SPIN_NS: u64 = 150_000;
/// Farther than this from the intended time, wait on tokio's timer (1 ms wheel,
/// rounds up) so the lanes and their acknowledgements run meanwhile; closer, the
/// thread sleeps (high-resolution timer) and then spins.
const COARSE_NS: u64 = 2_000_000;

async fn publish(ctx: PublisherCtx) -> Histogram<u64> {
    let ctx = Arc::new(ctx);
    let topics = ctx.logs.len();
    let lanes = (ctx.config.connections as usize).min(topics).max(1);
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..lanes {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(65_536);
        senders.push(tx);
        let ctx = ctx.clone();
        workers.push(tokio::spawn(lane(ctx, rx)));
    }
    pace(&ctx, &senders, topics).await;
    drop(senders);
    let mut lag = latency_histogram();
    for w in workers {
        if let Ok(h) = w.await {
            lag.add(&h).expect("same bounds");
        }
    }
    lag
}

/// Hands each event to its lane at its intended time; returns when the schedule
/// ends or the run stops.
async fn pace(ctx: &PublisherCtx, senders: &[tokio::sync::mpsc::Sender<Job>], topics: usize) {
    let schedule = Schedule::new(ctx.config.pattern, ctx.config.rate, ctx.seed);
    let spin_ns = SPIN_NS.min((1e9 / ctx.config.rate / 20.0) as u64);
    for (i, offset) in with_bursts(schedule, ctx.bursts.clone()).enumerate() {
        let intended = ctx.start_ns + offset;
        if intended >= ctx.end_ns {
            break;
        }
        loop {
            if ctx.stop.is_cancelled() {
                return;
            }
            let now = ctx.clock.now_ns();
            if now >= intended {
                break;
            }
            let left = intended - now;
            if left > COARSE_NS {
                // At most 50 ms at a time, so a stop is noticed promptly.
                let wait = Duration::from_nanos((left - COARSE_NS).min(50_000_000));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ctx.stop.cancelled() => return,
                }
            } else if left > spin_ns {
                std::thread::sleep(Duration::from_nanos(left - spin_ns));
            } else {
                std::hint::spin_loop();
            }
        }
        let topic = i % topics;
        let pseq = ctx.logs[topic].schedule(intended);
        if senders[topic % senders.len()]
            .try_send(Job {
                topic,
                pseq,
                intended_ns: intended,
            })
            .is_err()
        {
            ctx.stats.dropped.fetch_add(1, Relaxed);
        }
        // Let the lane write it now (same thread: no wake-up to wait for).
        tokio::task::yield_now().await;
    }
}

fn count_error(ctx: &PublisherCtx, n: u64) {
    ctx.registry.note_failure();
    ctx.stats.errors.fetch_add(n, Relaxed);
    ctx.progress.errors.fetch_add(n, Relaxed);
}

/// One lane: a pipelined connection, reopened when it fails. Events in flight on a
/// failed connection are counted as publish errors (never acknowledged, so no
/// client expects them).
async fn lane(ctx: Arc<PublisherCtx>, mut rx: tokio::sync::mpsc::Receiver<Job>) -> Histogram<u64> {
    let mut lag = latency_histogram();
    let wire = Arc::new(WireCounters::default());
    let mut pending: Option<Job> = None;
    'connection: loop {
        let stream = match ctx.target.connect(&wire).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "publisher connect failed");
                // Events due while the server is unreachable fail; keep the schedule.
                let job = match pending.take() {
                    Some(j) => Some(j),
                    None => tokio::select! { j = rx.recv() => j, _ = ctx.kill.cancelled() => None },
                };
                let Some(_) = job else { break };
                count_error(&ctx, 1);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (read_half, mut write_half) = tokio::io::split(stream);
        let (inflight_tx, inflight_rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let reader = tokio::spawn(read_responses(ctx.clone(), read_half, inflight_rx));
        loop {
            let job = match pending.take() {
                Some(j) => Some(j),
                None => tokio::select! {
                    j = rx.recv() => j,
                    _ = ctx.kill.cancelled() => None,
                },
            };
            let Some(job) = job else {
                // Schedule over: wait for the last responses (bounded by kill).
                drop(inflight_tx);
                tokio::select! {
                    _ = reader => {}
                    _ = ctx.kill.cancelled() => {}
                }
                break 'connection;
            };
            if reader.is_finished() {
                // The connection closed under us: this job goes on a new one.
                pending = Some(job);
                continue 'connection;
            }
            let sent = ctx.clock.now_ns();
            let stamp = Stamp {
                publisher: 0,
                topic: job.topic as u32,
                seq: job.pseq,
                intended_ns: job.intended_ns,
                sent_ns: sent,
            };
            let body = encode_stamped_body(&stamp, ctx.config.payload_bytes);
            let mut req = format!(
                "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                ctx.paths[job.topic],
                ctx.target.authority,
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(&body);
            let _ =
                lag.record((sent.saturating_sub(job.intended_ns) / 1000).clamp(1, 3_600_000_000));
            if inflight_tx.send(job).is_err() {
                pending = Some(job);
                continue 'connection;
            }
            let write = tokio::select! {
                w = write_half.write_all(&req) => w,
                _ = ctx.kill.cancelled() => break 'connection,
            };
            if let Err(e) = write {
                tracing::debug!(error = %e, "publish write failed");
                drop(inflight_tx);
                // The reader settles what was in flight (bounded by kill: a
                // blackholed connection may never answer).
                tokio::select! {
                    _ = reader => {}
                    _ = ctx.kill.cancelled() => break 'connection,
                }
                continue 'connection;
            }
        }
    }
    lag
}

/// Reads pipelined responses in order and acknowledges the matching events.
async fn read_responses(
    ctx: Arc<PublisherCtx>,
    mut read: impl tokio::io::AsyncRead + Unpin,
    mut inflight: tokio::sync::mpsc::UnboundedReceiver<Job>,
) {
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        let Some(job) = inflight.recv().await else {
            return;
        };
        match read_response(&mut read, &mut buf).await {
            Ok((status, close)) => {
                if (200..300).contains(&status) {
                    ctx.logs[job.topic].ack(job.pseq);
                    ctx.stats.published.fetch_add(1, Relaxed);
                    ctx.progress.published.fetch_add(1, Relaxed);
                    if job.intended_ns >= ctx.window_start_ns && job.intended_ns < ctx.end_ns {
                        ctx.stats.published_in_window.fetch_add(1, Relaxed);
                    }
                } else {
                    tracing::debug!(status, "publish refused");
                    count_error(&ctx, 1);
                }
                if close {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "publish response unreadable");
                count_error(&ctx, 1);
                break;
            }
        }
    }
    // Whatever is still in flight on a dead connection failed.
    inflight.close();
    let mut lost = 0;
    while inflight.try_recv().is_ok() {
        lost += 1;
    }
    if lost > 0 {
        count_error(&ctx, lost);
    }
}

/// Reads one HTTP/1.1 response (content-length or chunked body); returns the status
/// and whether the server will close the connection.
async fn read_response(
    read: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> std::io::Result<(u16, bool)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(bad("response head too large"));
        }
        if read.read_buf(buf).await? == 0 {
            return Err(bad("connection closed"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        })
    };
    let close = header("connection").is_some_and(|v| v.contains("close"));
    let _ = buf.split_to(head_end);
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                if read.read_buf(buf).await? == 0 {
                    return Err(bad("connection closed in a chunk"));
                }
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            let need = line_end + 2 + size + 2;
            while buf.len() < need {
                if read.read_buf(buf).await? == 0 {
                    return Err(bad("connection closed in a chunk"));
                }
            }
            let _ = buf.split_to(need);
            if size == 0 {
                return Ok((status, close));
            }
        }
    }
    let length: usize = match header("content-length") {
        Some(v) => v.parse().map_err(|_| bad("bad content-length"))?,
        None if status == 204 || status == 304 => 0,
        None => 0,
    };
    while buf.len() < length {
        if read.read_buf(buf).await? == 0 {
            return Err(bad("connection closed in a body"));
        }
    }
    let _ = buf.split_to(length);
    Ok((status, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let c: Vec<u64> = Schedule::new(Pattern::Constant, 10.0, 1).take(3).collect();
        assert_eq!(c, vec![0, 100_000_000, 200_000_000]);
        let b: Vec<u64> = Schedule::new(Pattern::Burst { size: 2 }, 10.0, 1)
            .take(5)
            .collect();
        assert_eq!(b, vec![0, 0, 200_000_000, 200_000_000, 400_000_000]);
        let p1: Vec<u64> = Schedule::new(Pattern::Poisson, 100.0, 9)
            .take(1000)
            .collect();
        let p2: Vec<u64> = Schedule::new(Pattern::Poisson, 100.0, 9)
            .take(1000)
            .collect();
        assert_eq!(p1, p2, "seeded");
        assert!(p1.windows(2).all(|w| w[0] <= w[1]));
        let mean_gap = p1[999] as f64 / 999.0;
        assert!((5e6..20e6).contains(&mean_gap), "mean gap {mean_gap}");
    }
}
