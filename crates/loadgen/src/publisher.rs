//! The open-loop publisher: events on an absolute timeline (`start + offset(i)`,
//! constant, poisson or burst, seeded), each stamped and padded to the payload
//! size, round robin over the topics. A scheduler task hands due events to a pool
//! of connections through a bounded queue, so one slow response never delays the
//! schedule; how far each send fell behind its intended time is the publisher's lag.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Method;
use pushbench_protocol::record::latency_histogram;
use pushbench_protocol::wire::{Stamp, encode_stamped_body};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio_util::sync::CancellationToken;

use crate::Progress;
use crate::clock::Clock;
use crate::connect::{ClientError, HttpConn, Target, WireCounters};
use crate::registry::PubLog;
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
    /// Events the scheduler could not queue (every connection busy, queue full).
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
}

/// Runs the publisher; returns its lag histogram (microseconds).
pub(crate) async fn run(ctx: PublisherCtx) -> Histogram<u64> {
    let ctx = Arc::new(ctx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Job>(65_536);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let wire = Arc::new(WireCounters::default());
    let mut workers = Vec::new();
    for _ in 0..ctx.config.connections {
        let ctx = ctx.clone();
        let rx = rx.clone();
        let wire = wire.clone();
        workers.push(tokio::spawn(async move { worker(ctx, rx, wire).await }));
    }
    let mut topic_seq = vec![0u64; ctx.logs.len()];
    let topics = ctx.logs.len();
    for (i, offset) in Schedule::new(ctx.config.pattern, ctx.config.rate, ctx.seed).enumerate() {
        let intended = ctx.start_ns + offset;
        if intended >= ctx.end_ns {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(ctx.clock.instant(intended)) => {}
            _ = ctx.stop.cancelled() => break,
        }
        let topic = i % topics;
        let pseq = ctx.logs[topic].schedule(intended);
        topic_seq[topic] = pseq;
        if tx.try_send(Job { topic, pseq, intended_ns: intended }).is_err() {
            ctx.stats.dropped.fetch_add(1, Relaxed);
        }
    }
    drop(tx);
    let mut lag = latency_histogram();
    for w in workers {
        if let Ok(h) = w.await {
            lag.add(&h).expect("same bounds");
        }
    }
    lag
}

async fn worker(
    ctx: Arc<PublisherCtx>,
    rx: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Job>>>,
    wire: Arc<WireCounters>,
) -> Histogram<u64> {
    let mut lag = latency_histogram();
    let mut conn: Option<HttpConn> = None;
    loop {
        let job = tokio::select! {
            j = async { rx.lock().await.recv().await } => j,
            _ = ctx.kill.cancelled() => None,
        };
        let Some(job) = job else { break };
        let sent = ctx.clock.now_ns();
        let stamp = Stamp {
            publisher: 0,
            topic: job.topic as u32,
            seq: job.pseq,
            intended_ns: job.intended_ns,
            sent_ns: sent,
        };
        let body = Bytes::from(encode_stamped_body(&stamp, ctx.config.payload_bytes));
        let _ = lag.record((sent.saturating_sub(job.intended_ns) / 1000).clamp(1, 3_600_000_000));
        let result = tokio::select! {
            r = async {
                let mut c = match conn.take() {
                    Some(c) if c.is_usable() => c,
                    _ => ctx.target.http(&wire).await?,
                };
                let r = c
                    .request(Method::POST, &ctx.paths[job.topic], &[], Some(body), Duration::from_secs(10))
                    .await?;
                Ok::<_, ClientError>((c, r.status))
            } => r,
            _ = ctx.kill.cancelled() => break,
        };
        match result {
            Ok((c, status)) if (200..300).contains(&status) => {
                conn = Some(c);
                ctx.logs[job.topic].ack(job.pseq);
                ctx.stats.published.fetch_add(1, Relaxed);
                ctx.progress.published.fetch_add(1, Relaxed);
                if job.intended_ns >= ctx.window_start_ns && job.intended_ns < ctx.end_ns {
                    ctx.stats.published_in_window.fetch_add(1, Relaxed);
                }
            }
            Ok((c, status)) => {
                conn = Some(c);
                tracing::debug!(status, "publish refused");
                ctx.stats.errors.fetch_add(1, Relaxed);
                ctx.progress.errors.fetch_add(1, Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, "publish failed");
                ctx.stats.errors.fetch_add(1, Relaxed);
                ctx.progress.errors.fetch_add(1, Relaxed);
                // Do not hammer a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    lag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let c: Vec<u64> = Schedule::new(Pattern::Constant, 10.0, 1).take(3).collect();
        assert_eq!(c, vec![0, 100_000_000, 200_000_000]);
        let b: Vec<u64> = Schedule::new(Pattern::Burst { size: 2 }, 10.0, 1).take(5).collect();
        assert_eq!(b, vec![0, 0, 200_000_000, 200_000_000, 400_000_000]);
        let p1: Vec<u64> = Schedule::new(Pattern::Poisson, 100.0, 9).take(1000).collect();
        let p2: Vec<u64> = Schedule::new(Pattern::Poisson, 100.0, 9).take(1000).collect();
        assert_eq!(p1, p2, "seeded");
        assert!(p1.windows(2).all(|w| w[0] <= w[1]));
        let mean_gap = p1[999] as f64 / 999.0;
        assert!((5e6..20e6).contains(&mean_gap), "mean gap {mean_gap}");
    }
}
