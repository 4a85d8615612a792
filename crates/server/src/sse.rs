//! Server-Sent Events: `GET /topics/{t}/sse`. One producer task per stream reads the
//! log by cursor and hands shared, pre-encoded frames to a small bounded channel that
//! the response body drains. The channel bounds memory; a send that cannot complete
//! within `--slow-consumer-timeout` means the socket is not draining, and the whole
//! connection is dropped (ending the body would leave hyper blocked on a full socket).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use pushbench_protocol::wire::{SSE_HEARTBEAT, sse_gap, sse_retry};
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Strategy;
use crate::query::Query;
use crate::reply::{ApiError, Body};
use crate::routes::{Ctx, check_origin, stream_cursor};
use crate::topic::{Read, Stored, Topic};

/// Frames queued between the producer and the socket. Small, because the socket
/// buffer behind it already holds plenty; a queue is not where lag should hide.
const QUEUE_FRAMES: usize = 32;
/// Events read from the log per batch.
const BATCH: usize = 256;
/// Largest chunk made by joining the frames of a subscriber that is behind.
const CHUNK_BYTES: usize = 64 * 1024;

/// Opens the stream.
pub fn handle(
    req: &Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
    query: &Query<'_>,
) -> Result<Response<Body>, ApiError> {
    check_origin(&ctx.app, req.headers())?;
    let cursor = stream_cursor(req.headers(), query)?;
    let topic = ctx.app.topic(topic)?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_FRAMES);
    // Dropped with the body, so the producer can tell when hyper is done with it.
    let (body_alive, body_gone) = oneshot::channel::<()>();
    ctx.tracker
        .spawn(produce(ctx.clone(), topic, cursor, tx, body_gone));
    let frames = futures_util::stream::unfold((rx, body_alive), |(mut rx, alive)| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, io::Error>(Frame::data(b)), (rx, alive)))
    });
    let mut res = Response::new(StreamBody::new(frames).boxed_unsync());
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

enum Stop {
    /// The client went away.
    Gone,
    /// The socket did not drain in time.
    Slow,
    /// The stream fell out of the retained log; the gap notice is queued.
    Lagged,
}

async fn send(ctx: &Ctx, tx: &mpsc::Sender<Bytes>, frame: Bytes) -> Result<(), Stop> {
    // The common case, room in the queue, arms no timer.
    let frame = match tx.try_send(frame) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Closed(_)) => return Err(Stop::Gone),
        Err(TrySendError::Full(frame)) => frame,
    };
    match tx
        .send_timeout(frame, ctx.app.config.slow_consumer_timeout)
        .await
    {
        Ok(()) => Ok(()),
        Err(SendTimeoutError::Closed(_)) => Err(Stop::Gone),
        Err(SendTimeoutError::Timeout(_)) => Err(Stop::Slow),
    }
}

/// The frames of the first events of `evs`, joined up to about CHUNK_BYTES, and how
/// many events that is (at least one). A single event's frame is shared, not copied.
fn join_frames(evs: &[Arc<Stored>]) -> (Bytes, usize) {
    let first = evs[0].sse();
    let mut n = 1;
    let mut total = first.len();
    while n < evs.len() && total + evs[n].sse().len() <= CHUNK_BYTES {
        total += evs[n].sse().len();
        n += 1;
    }
    if n == 1 {
        return (first.clone(), 1);
    }
    let mut joined = BytesMut::with_capacity(total);
    for e in &evs[..n] {
        joined.extend_from_slice(e.sse());
    }
    (joined.freeze(), n)
}

async fn produce(
    ctx: Ctx,
    topic: Arc<Topic>,
    cursor: Option<u64>,
    tx: mpsc::Sender<Bytes>,
    body_gone: oneshot::Receiver<()>,
) {
    let metrics = &ctx.app.metrics;
    let _open = metrics.open(Strategy::Sse);
    let heartbeat = ctx.app.config.sse_heartbeat;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    // A producer that was busy sends one heartbeat, not a burst of missed ones.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut grew = topic.subscribe();
    let mut cursor = cursor.unwrap_or_else(|| topic.last_seq());
    let mut resumed = false;
    let retry = sse_retry(ctx.app.config.sse_retry.as_millis() as u64);
    metrics.overhead(Strategy::Sse, retry.len() as u64);
    let result: Result<(), Stop> = async {
        send(&ctx, &tx, retry).await?;
        loop {
            grew.borrow_and_update();
            match topic.read(Some(cursor), BATCH).0 {
                Read::Events(evs) => {
                    resumed = true;
                    // One event: its shared frame. Behind by several: their frames
                    // joined into chunks of up to CHUNK_BYTES, so a subscriber that
                    // lags pays one write (and one chunk header) for many events.
                    let mut i = 0;
                    while i < evs.len() {
                        let (frame, n) = join_frames(&evs[i..]);
                        let len = frame.len() as u64;
                        send(&ctx, &tx, frame).await?;
                        metrics.delivered(Strategy::Sse, n as u64, len);
                        i += n;
                        cursor = evs[i - 1].seq;
                    }
                    continue;
                }
                Read::Gap(g) => {
                    metrics.gaps.fetch_add(1, Relaxed);
                    let frame = sse_gap(&g);
                    metrics.overhead(Strategy::Sse, frame.len() as u64);
                    send(&ctx, &tx, frame).await?;
                    if resumed {
                        // A connected stream fell out of the retained log: it is too slow.
                        return Err(Stop::Lagged);
                    }
                    // A resume from an old cursor (or one ahead of a reset log): say what
                    // was missed, go on from the oldest event kept. Not from 0: once the
                    // log has wrapped, 0 is itself outside it and would read as a second gap.
                    cursor = g.first_seq - 1;
                    resumed = true;
                    continue;
                }
                Read::CaughtUp => resumed = true,
            }
            tokio::select! {
                changed = grew.changed() => if changed.is_err() { return Ok(()) },
                _ = ticks.tick() => {
                    metrics.overhead(Strategy::Sse, SSE_HEARTBEAT.len() as u64);
                    send(&ctx, &tx, Bytes::from_static(SSE_HEARTBEAT)).await?;
                }
                _ = tx.closed() => return Err(Stop::Gone),
                _ = ctx.shutdown.cancelled() => return Ok(()),
            }
        }
    }
    .await;
    match result {
        Err(Stop::Slow) => {
            metrics.slow_consumer_closes.fetch_add(1, Relaxed);
            tracing::info!(cursor, "closing a slow SSE consumer");
            ctx.abort.cancel();
        }
        Err(Stop::Lagged) => {
            metrics.slow_consumer_closes.fetch_add(1, Relaxed);
            tracing::info!(
                cursor,
                "ending an SSE stream that fell out of the retained log"
            );
            // Its socket drains, so end the body after what is queued, the gap notice
            // last: aborting here would drop the notice and the client would never be
            // told. A socket that stops draining now is dropped after the timeout.
            drop(tx);
            let timeout = ctx.app.config.slow_consumer_timeout;
            if tokio::time::timeout(timeout, body_gone).await.is_err() {
                ctx.abort.cancel();
            }
        }
        Ok(()) | Err(Stop::Gone) => {}
    }
}
