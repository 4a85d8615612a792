//! Starting a proxy ([`Proxy::start`]), its accept loop, and the [`ProxyHandle`]
//! through which a caller triggers faults, reads counters and shuts it down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::connection::{self, Context};
use crate::counters::{Stats, bump};
use crate::fault::FaultState;
use crate::schedule::SharedLink;
use crate::{Counters, Error, Fault, Impairment, ScheduledFault};

/// The entry point: `Proxy::start(...)` returns a running proxy's handle.
#[derive(Debug)]
pub struct Proxy;

impl Proxy {
    /// Starts proxying connections accepted on `listener` to `upstream` with
    /// `impairment`, randomness seeded by `seed` (connection *i* in accept order
    /// gets the same delays and losses on every run with the same seed). Runs until
    /// `shutdown` is cancelled or [`ProxyHandle::shutdown`]. Must be called inside a
    /// tokio runtime with time and I/O enabled.
    pub fn start(
        listener: TcpListener,
        upstream: SocketAddr,
        impairment: Impairment,
        seed: u64,
        shutdown: CancellationToken,
    ) -> Result<ProxyHandle, Error> {
        impairment.validate()?;
        let local_addr = listener.local_addr()?;
        let (faults, _) = watch::channel(FaultState::default());
        let ctx = Arc::new(Context {
            upstream,
            impairment,
            seed,
            faults,
            stats: Stats::default(),
            shared_up: impairment.up.shared_bandwidth.map(SharedLink::new),
            shared_down: impairment.down.shared_bandwidth.map(SharedLink::new),
        });
        let cancel = shutdown.child_token();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            ctx.clone(),
            cancel.clone(),
            tracker.clone(),
        ));
        info!(listen = %local_addr, %upstream, %impairment, seed, "netem proxy started");
        Ok(ProxyHandle {
            inner: Arc::new(Inner {
                ctx,
                cancel,
                tracker,
                local_addr,
                active: Mutex::new(Active::default()),
            }),
        })
    }
}

impl Proxy {
    /// Binds `listen` (port 0 picks a free one; see [`ProxyHandle::local_addr`])
    /// and [`Proxy::start`]s.
    pub async fn bind(
        listen: SocketAddr,
        upstream: SocketAddr,
        impairment: Impairment,
        seed: u64,
        shutdown: CancellationToken,
    ) -> Result<ProxyHandle, Error> {
        impairment.validate()?;
        let listener = TcpListener::bind(listen).await?;
        Self::start(listener, upstream, impairment, seed, shutdown)
    }
}

/// Accepts clients until cancelled; each gets its own task.
async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Context>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                if ctx.faults.borrow().refuse {
                    bump(&ctx.stats.accepted);
                    bump(&ctx.stats.refused);
                    bump(&ctx.stats.down.resets);
                    connection::reset(stream);
                    continue;
                }
                let id = next_id;
                next_id += 1;
                tracker.spawn(connection::serve(stream, id, ctx.clone(), cancel.clone()));
            }
            Err(err) => {
                // Usually out of file descriptors: back off instead of spinning.
                warn!(%err, "accept failed; retrying in 50 ms");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// What is currently applied, besides the watch state: the flap task's token.
#[derive(Debug, Default)]
struct Active {
    fault: Option<Fault>,
    flap: Option<CancellationToken>,
}

#[derive(Debug)]
struct Inner {
    ctx: Arc<Context>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    local_addr: SocketAddr,
    /// A std Mutex: held only to swap small values, never across an await.
    active: Mutex<Active>,
}

/// A running proxy. Cheap to clone; every clone controls the same proxy. Dropping
/// handles does not stop it (like a spawned task): cancel the `shutdown` token
/// given to [`Proxy::start`], or call [`ProxyHandle::shutdown`], which also waits
/// for the connections to close.
#[derive(Debug, Clone)]
pub struct ProxyHandle {
    inner: Arc<Inner>,
}

impl ProxyHandle {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.inner.ctx.upstream
    }

    /// What the proxy applies.
    pub fn impairment(&self) -> &Impairment {
        &self.inner.ctx.impairment
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.inner.ctx.stats.snapshot()
    }

    /// The lasting fault in force (blackhole or flap), if any.
    pub fn active_fault(&self) -> Option<Fault> {
        self.lock().fault
    }

    /// Applies `fault` now. A lasting fault (blackhole, flap) replaces the one in
    /// force; a reset leaves it in place. Errors only for an invalid flap.
    pub fn apply(&self, fault: Fault) -> Result<(), Error> {
        fault.validate()?;
        info!(%fault, "fault applied");
        let faults = &self.inner.ctx.faults;
        match fault {
            Fault::Reset => {
                bump(&self.inner.ctx.stats.faults_applied);
                faults.send_modify(|s| s.reset_epoch += 1);
            }
            Fault::Blackhole => {
                bump(&self.inner.ctx.stats.faults_applied);
                self.stop_flap();
                self.lock().fault = Some(fault);
                faults.send_modify(|s| {
                    s.blackhole = true;
                    s.refuse = false;
                });
            }
            Fault::Flap { period, down } => {
                self.stop_flap();
                faults.send_modify(|s| s.blackhole = false);
                let token = self.inner.cancel.child_token();
                {
                    let mut active = self.lock();
                    active.fault = Some(fault);
                    active.flap = Some(token.clone());
                }
                let ctx = self.inner.ctx.clone();
                self.inner.tracker.spawn(flap(ctx, token, period, down));
            }
        }
        Ok(())
    }

    /// Ends every lasting fault: forwarding resumes (held bytes flow) and flapping stops.
    pub fn lift(&self) {
        self.stop_flap();
        self.lock().fault = None;
        self.inner.ctx.faults.send_modify(|s| {
            s.blackhole = false;
            s.refuse = false;
        });
        info!("faults lifted");
    }

    /// Plays a fault timeline: each entry is applied at `start + at` and lifted
    /// `duration` later (a lift ends every lasting fault, so overlapping entries end
    /// together). Runs in the background until done or the proxy shuts down.
    pub fn run_timeline(&self, start: Instant, timeline: &[ScheduledFault]) -> Result<(), Error> {
        enum Step {
            Lift,
            Apply(Fault),
        }
        let mut steps = Vec::with_capacity(timeline.len() * 2);
        for entry in timeline {
            entry.fault.validate()?;
            steps.push((start + entry.at, 1, Step::Apply(entry.fault)));
            if let Some(duration) = entry.duration {
                // At equal instants a lift goes first, so back-to-back entries chain.
                steps.push((start + entry.at + duration, 0, Step::Lift));
            }
        }
        steps.sort_by_key(|(at, order, _)| (*at, *order));
        let handle = self.clone();
        let cancel = self.inner.cancel.clone();
        self.inner.tracker.spawn(async move {
            for (at, _, step) in steps {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(at) => {}
                }
                match step {
                    Step::Lift => handle.lift(),
                    Step::Apply(fault) => {
                        handle
                            .apply(fault)
                            .expect("validated when the timeline was given");
                    }
                }
            }
        });
        Ok(())
    }

    /// Stops accepting, closes every connection (FIN, not RST) and waits up to
    /// `deadline` for the tasks to end; true if they all did.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        let done = tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_ok();
        info!(counters = ?self.counters(), "netem proxy stopped");
        done
    }

    /// A token cancelled when this proxy shuts down.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        self.inner.active.lock().expect("fault state lock poisoned")
    }

    fn stop_flap(&self) {
        if let Some(token) = self.lock().flap.take() {
            token.cancel();
        }
        self.inner.ctx.faults.send_modify(|s| s.refuse = false);
    }
}

/// Periodic link failure: reset everything, refuse for `down`, recover, repeat.
async fn flap(ctx: Arc<Context>, token: CancellationToken, period: Duration, down: Duration) {
    loop {
        // Checked under the watch lock so that a lift racing with us wins.
        let mut started = false;
        ctx.faults.send_if_modified(|s| {
            if token.is_cancelled() {
                return false;
            }
            s.refuse = true;
            s.reset_epoch += 1;
            started = true;
            true
        });
        if !started {
            return;
        }
        bump(&ctx.stats.faults_applied);
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(down) => {}
        }
        ctx.faults.send_if_modified(|s| {
            if token.is_cancelled() {
                return false;
            }
            s.refuse = false;
            true
        });
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(period - down) => {}
        }
    }
}
