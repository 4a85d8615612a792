//! One proxied connection, in one task: a reader and a writer per direction, joined.
//!
//! Each direction is a queue of timestamped segments: the reader stamps what it
//! reads with a release time ([`Schedule`]) and queues it; the writer sleeps until
//! each release time and writes (coalescing whatever is already due). The queue is
//! bounded in bytes by a semaphore (`queue_bytes` permits): when it is full the
//! reader stops reading, so the sender's TCP window closes, which is the
//! backpressure a real bottleneck exerts. Memory per connection is therefore at
//! most two queues (`queue_bytes` each) plus a transient 16 KiB read buffer and a
//! 64 KiB write batch per direction; an idle connection holds neither buffer.
//!
//! Borrowed halves (`TcpStream::split`), not owned ones: dropping an owned write
//! half sends a FIN, which would precede the RST of a reset, and a reset must look
//! like a reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace};

use crate::Impairment;
use crate::counters::{DirectionStats, Stats, add, bump};
use crate::fault::FaultState;
use crate::schedule::{Schedule, SharedLink};

/// Largest single read from a socket. Also the smallest allowed `queue_bytes`.
pub(crate) const READ_CHUNK: usize = 16 * 1024;
/// Largest single write: segments already due are coalesced up to this size.
const WRITE_BATCH: usize = 64 * 1024;
/// How much earlier than a release time the writer's timer is set (see `write_side`).
const TIMER_LEAD: Duration = Duration::from_millis(1);
/// How long dialling the upstream may take before the client is reset.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection task shares with the proxy.
#[derive(Debug)]
pub(crate) struct Context {
    pub upstream: SocketAddr,
    pub impairment: Impairment,
    pub seed: u64,
    pub faults: watch::Sender<FaultState>,
    pub stats: Stats,
    pub shared_up: Option<Arc<SharedLink>>,
    pub shared_down: Option<Arc<SharedLink>>,
}

/// A queued unit of one direction.
enum Item {
    Data { at: Instant, bytes: Bytes },
    Fin { at: Instant },
}

impl Item {
    fn at(&self) -> Instant {
        match self {
            Item::Data { at, .. } | Item::Fin { at } => *at,
        }
    }
}

/// Which socket failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// How a connection ended.
enum End {
    /// Both directions finished with a FIN.
    Closed,
    /// The proxy is shutting down.
    Shutdown,
    /// A reset fault (or a flap) hit it.
    FaultReset,
    /// A socket failed; the other side gets an RST.
    Abort(Side),
}

/// Who a connection is and when its handshake is over.
struct Opened {
    id: u64,
    at: Instant,
    /// The reset epoch it started in; a change resets it.
    epoch: u64,
}

/// Counts an open connection for as long as it lives.
struct Active<'a>(&'a Stats);

impl<'a> Active<'a> {
    fn new(stats: &'a Stats) -> Self {
        bump(&stats.accepted);
        bump(&stats.active);
        Self(stats)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Closes `stream` with an RST instead of a FIN (SO_LINGER = 0, then close).
pub(crate) fn reset(stream: TcpStream) {
    if let Err(err) = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)) {
        debug!(%err, "could not set SO_LINGER 0; the peer sees a FIN, not an RST");
    }
    drop(stream);
}

/// A per-connection, per-direction seed derived from the proxy's seed.
fn seed_for(seed: u64, id: u64, direction: u64) -> u64 {
    seed ^ (id.wrapping_mul(2).wrapping_add(direction).wrapping_add(1))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Proxies one accepted client connection until it ends.
pub(crate) async fn serve(
    mut client: TcpStream,
    id: u64,
    ctx: Arc<Context>,
    cancel: CancellationToken,
) {
    let _active = Active::new(&ctx.stats);
    let mut faults = ctx.faults.subscribe();
    let epoch = faults.borrow().reset_epoch;
    // While blackholed the SYN towards the server is "lost": dial only after the lift.
    let proceed = tokio::select! {
        _ = cancel.cancelled() => return,
        state = faults.wait_for(|s| !s.blackhole || s.reset_epoch != epoch) => {
            state.is_ok_and(|s| s.reset_epoch == epoch)
        }
    };
    if !proceed {
        bump(&ctx.stats.fault_resets);
        bump(&ctx.stats.down.resets);
        reset(client);
        return;
    }
    let dial_started = Instant::now();
    let dialled = tokio::select! {
        _ = cancel.cancelled() => return,
        dialled = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ctx.upstream)) => dialled,
    };
    let mut server = match dialled {
        Ok(Ok(server)) => server,
        failed => {
            let reason = match failed {
                Ok(Err(err)) => err.to_string(),
                _ => format!("no answer within {CONNECT_TIMEOUT:?}"),
            };
            debug!(id, upstream = %ctx.upstream, %reason, "upstream dial failed; resetting the client");
            bump(&ctx.stats.upstream_failures);
            bump(&ctx.stats.down.resets);
            reset(client);
            return;
        }
    };
    bump(&ctx.stats.upstream_connected);
    // The handshake a real link would have made the client wait for (see
    // `Impairment::handshake`): neither direction moves a byte before it is over.
    let imp = &ctx.impairment;
    let handshake = if imp.handshake {
        imp.up.latency + imp.down.latency
    } else {
        Duration::ZERO
    };
    let open_at = dial_started + handshake;
    // The proxy paces by itself; Nagle's algorithm would add its own delays.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    debug!(id, "connection open");

    let opened = Opened {
        id,
        at: open_at,
        epoch,
    };
    let end = pump(opened, &mut client, &mut server, &ctx, &mut faults, &cancel).await;
    match end {
        End::Closed | End::Shutdown => debug!(id, "connection closed"),
        End::FaultReset => {
            debug!(id, "connection reset by fault");
            bump(&ctx.stats.fault_resets);
            bump(&ctx.stats.up.resets);
            bump(&ctx.stats.down.resets);
            reset(client);
            reset(server);
        }
        End::Abort(failed) => {
            // An RST is a packet too: a blackhole swallows it until the lift.
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = faults.wait_for(|s| !s.blackhole || s.reset_epoch != epoch) => {}
            }
            debug!(id, ?failed, "socket failed; resetting the other side");
            let stats = match failed {
                Side::Client => &ctx.stats.up,
                Side::Server => &ctx.stats.down,
            };
            bump(&stats.resets);
            reset(client);
            reset(server);
        }
    }
}

/// Runs both directions until both finish, a socket fails, a reset fault or shutdown.
async fn pump(
    opened: Opened,
    client: &mut TcpStream,
    server: &mut TcpStream,
    ctx: &Context,
    faults: &mut watch::Receiver<FaultState>,
    cancel: &CancellationToken,
) -> End {
    let Opened { id, at: now, epoch } = opened;
    let imp = &ctx.impairment;
    let up = Schedule::new(
        imp.up,
        imp.rto,
        seed_for(ctx.seed, id, 0),
        ctx.shared_up.clone(),
        now,
    );
    let down = Schedule::new(
        imp.down,
        imp.rto,
        seed_for(ctx.seed, id, 1),
        ctx.shared_down.clone(),
        now,
    );
    let (up_budget, down_budget) = (
        Semaphore::new(imp.queue_bytes),
        Semaphore::new(imp.queue_bytes),
    );
    // Unbounded channels, bounded in bytes by the budgets above.
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let (down_tx, down_rx) = mpsc::unbounded_channel();
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let up_segment = imp.up.segments().then_some(imp.segment_bytes);
    let down_segment = imp.down.segments().then_some(imp.segment_bytes);
    let work = async {
        tokio::try_join!(
            read_side(
                client_read,
                up_tx,
                &up_budget,
                up,
                up_segment,
                &ctx.stats.up,
                Side::Client
            ),
            write_side(
                server_write,
                up_rx,
                &up_budget,
                ctx.faults.subscribe(),
                &ctx.stats.up,
                Side::Server
            ),
            read_side(
                server_read,
                down_tx,
                &down_budget,
                down,
                down_segment,
                &ctx.stats.down,
                Side::Server
            ),
            write_side(
                client_write,
                down_rx,
                &down_budget,
                ctx.faults.subscribe(),
                &ctx.stats.down,
                Side::Client
            ),
        )
    };
    tokio::select! {
        done = work => match done {
            Ok(_) => End::Closed,
            Err(side) => End::Abort(side),
        },
        _ = faults.wait_for(|s| s.reset_epoch != epoch) => End::FaultReset,
        _ = cancel.cancelled() => End::Shutdown,
    }
}

/// Reads one side, stamps each segment with its release time and queues it.
async fn read_side(
    src: ReadHalf<'_>,
    tx: mpsc::UnboundedSender<Item>,
    budget: &Semaphore,
    mut schedule: Schedule,
    segment_bytes: Option<usize>,
    stats: &DirectionStats,
    side: Side,
) -> Result<(), Side> {
    loop {
        // Reserve room for a full read first: a full queue stops the reading.
        budget
            .acquire_many(READ_CHUNK as u32)
            .await
            .expect("the queue budget semaphore is never closed")
            .forget();
        // The buffer exists only between readiness and the read, so an idle
        // connection holds no read buffer at all.
        let read = match src.readable().await {
            Ok(()) => {
                let mut buf = BytesMut::with_capacity(READ_CHUNK);
                src.try_read_buf(&mut buf).map(|n| (n, buf))
            }
            Err(err) => Err(err),
        };
        let (n, buf) = match read {
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                budget.add_permits(READ_CHUNK);
                continue; // spurious readiness
            }
            Err(err) => {
                debug!(?side, %err, "read failed");
                return Err(side);
            }
        };
        budget.add_permits(READ_CHUNK - n);
        let now = Instant::now();
        if n == 0 {
            let at = schedule.fin(now);
            let _ = tx.send(Item::Fin { at });
            return Ok(());
        }
        add(&stats.bytes_read, n);
        // A small read is copied out so that it does not pin a 16 KiB allocation
        // for as long as it is delayed.
        let mut bytes = if n < READ_CHUNK / 4 {
            Bytes::copy_from_slice(&buf)
        } else {
            buf.freeze()
        };
        let size = segment_bytes.unwrap_or(n);
        while !bytes.is_empty() {
            let segment = bytes.split_to(size.min(bytes.len()));
            let release = schedule.segment(now, segment.len());
            bump(&stats.segments);
            if release.retransmissions > 0 {
                bump(&stats.retransmission_stalls);
                trace!(
                    ?side,
                    retransmissions = release.retransmissions,
                    "segment lost"
                );
            }
            if tx
                .send(Item::Data {
                    at: release.at,
                    bytes: segment,
                })
                .is_err()
            {
                return Ok(()); // the writer is gone: the connection is ending anyway
            }
        }
    }
}

/// Writes queued segments to the other side when they are due (and not blackholed).
async fn write_side(
    mut dst: WriteHalf<'_>,
    mut rx: mpsc::UnboundedReceiver<Item>,
    budget: &Semaphore,
    mut faults: watch::Receiver<FaultState>,
    stats: &DirectionStats,
    side: Side,
) -> Result<(), Side> {
    let mut next: Option<Item> = None;
    loop {
        let item = match next.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return Ok(()),
            },
        };
        // Tokio rounds a deadline up to its next 1 ms tick and wakes a little after
        // it: aiming TIMER_LEAD early centres the release on the asked-for time
        // (within about ±0.5 ms) instead of 1 ms late on average per direction.
        if item.at() > Instant::now() + TIMER_LEAD {
            tokio::time::sleep_until(item.at() - TIMER_LEAD).await;
        }
        // A blackhole holds everything, the FIN included.
        if faults.wait_for(|s| !s.blackhole).await.is_err() {
            return Ok(());
        }
        match item {
            Item::Fin { .. } => {
                return match dst.shutdown().await {
                    Ok(()) => {
                        bump(&stats.fins);
                        Ok(())
                    }
                    Err(err) => {
                        debug!(?side, %err, "shutdown failed");
                        Err(side)
                    }
                };
            }
            Item::Data { bytes, .. } => {
                // Segments already due go out in one write; the batch buffer is
                // allocated only when there is more than one.
                let mut batch: Option<Vec<u8>> = None;
                let now = Instant::now();
                let mut len = bytes.len();
                while len < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(Item::Data { at, bytes: more }) if at <= now => {
                            let batch = batch.get_or_insert_with(|| {
                                let mut v =
                                    Vec::with_capacity(WRITE_BATCH.min(4 * len.max(more.len())));
                                v.extend_from_slice(&bytes);
                                v
                            });
                            batch.extend_from_slice(&more);
                            len = batch.len();
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let out: &[u8] = batch.as_deref().unwrap_or(&bytes);
                if let Err(err) = dst.write_all(out).await {
                    debug!(?side, %err, "write failed");
                    return Err(side);
                }
                add(&stats.bytes_written, out.len());
                budget.add_permits(out.len());
            }
        }
    }
}
