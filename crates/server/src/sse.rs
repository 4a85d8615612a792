//! Server-Sent Events: `GET /topics/{t}/sse`.
//!
//! One loop, [`stream`], holds the stream's semantics (the `retry:` line, events read
//! from the log by cursor, `event: gap`, `: heartbeat`, slow consumers, shutdown,
//! counters) and writes through one of two transports:
//!
//! - [`Raw`], the usual one: a stream whose request was the first on its connection
//!   and arrived whole is served on the raw socket (see `conn.rs`), one task per
//!   stream, no hyper connection and so none of its two 8 KiB buffers. Each wake-up
//!   writes everything new as one chunk, the event's shared frame between a chunk
//!   header on the stack and `\r\n`, in one `writev`; a timer is armed only when the
//!   socket is full.
//! - [`Queue`], for requests hyper parsed (a keep-alive connection's second request,
//!   a head split across reads, HTTP/1.0): a producer task hands the same frames to a
//!   small bounded channel that the response body drains.
//!
//! A write that cannot complete within `--slow-consumer-timeout` means the socket is
//! not draining, and the whole connection is dropped.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use pushbench_protocol::wire::{SSE_HEARTBEAT, sse_gap, sse_retry};
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::{SendTimeoutError, TrySendError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Strategy;
use crate::query::Query;
use crate::reply::{ApiError, Body};
use crate::routes::{Ctx, check_origin, stream_cursor};
use crate::topic::{Joined, Stored, Topic};

/// Frames queued between the producer and hyper's body. Small, because the socket
/// buffer behind it already holds plenty; a queue is not where lag should hide.
const QUEUE_FRAMES: usize = 32;
/// Largest write made by joining the frames of a subscriber that is behind.
const CHUNK_BYTES: usize = 64 * 1024;
/// Time given to the end of a stream (the last chunk, the peer's close) on the raw path.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A validated stream request: where it reads and from which cursor.
pub struct Start {
    topic: Arc<Topic>,
    cursor: Option<u64>,
}

/// The checks every stream request passes, whichever transport serves it: origin,
/// cursor (`Last-Event-ID`, then `?since=`), topic cap.
pub fn prepare(
    headers: &HeaderMap,
    ctx: &Ctx,
    topic: &str,
    query: &Query<'_>,
) -> Result<Start, ApiError> {
    check_origin(&ctx.app, headers)?;
    let cursor = stream_cursor(headers, query)?;
    let topic = ctx.app.topic(topic)?;
    Ok(Start { topic, cursor })
}

/// The headers of a stream response (CORS is added by the router).
pub fn headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// Opens the stream through hyper.
pub fn handle(
    req: &Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
    query: &Query<'_>,
) -> Result<Response<Body>, ApiError> {
    let start = prepare(req.headers(), ctx, topic, query)?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_FRAMES);
    // Dropped with the body, so the producer can tell when hyper is done with it.
    let (body_alive, body_gone) = oneshot::channel::<()>();
    ctx.tracker
        .spawn(produce(ctx.clone(), start, tx, body_gone));
    let frames = futures_util::stream::unfold((rx, body_alive), |(mut rx, alive)| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, io::Error>(Frame::data(b)), (rx, alive)))
    });
    let mut res = Response::new(StreamBody::new(frames).boxed_unsync());
    *res.status_mut() = StatusCode::OK;
    headers(res.headers_mut());
    Ok(res)
}

/// Why a stream stopped early.
pub enum Stop {
    /// The client went away.
    Gone,
    /// The socket did not drain in time.
    Slow,
    /// The stream fell out of the retained log; the gap notice was handed over.
    Lagged,
}

/// Where the stream's bytes go.
trait Out {
    /// Hands `frame` to the client within `--slow-consumer-timeout`.
    async fn send(&mut self, frame: Bytes) -> Result<(), Stop>;
    /// Resolves when the client is gone.
    async fn gone(&mut self);
}

/// The stream itself, for either transport. `Ok` means the server is shutting down.
async fn stream(ctx: &Ctx, start: Start, out: &mut impl Out) -> Result<(), Stop> {
    let metrics = &ctx.app.metrics;
    let _open = metrics.open(Strategy::Sse);
    let Start { topic, cursor } = start;
    let heartbeat = ctx.app.config.sse_heartbeat;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    // A stream that was busy sends one heartbeat, not a burst of missed ones.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut grew = topic.subscribe();
    let mut cursor = cursor.unwrap_or_else(|| topic.last_seq());
    let mut resumed = false;
    let retry = sse_retry(ctx.app.config.sse_retry.as_millis() as u64);
    metrics.overhead(Strategy::Sse, retry.len() as u64);
    let result: Result<(), Stop> = async {
        out.send(retry).await?;
        loop {
            grew.borrow_and_update();
            // Everything new in one write: one event's shared frame, or the frames
            // of several joined up to CHUNK_BYTES, so a subscriber that lags pays
            // one write (and one chunk header) for many events.
            match topic.read_joined(cursor, CHUNK_BYTES, Stored::sse) {
                Joined::Frames(frames, n, last) => {
                    resumed = true;
                    let len = frames.len() as u64;
                    out.send(frames).await?;
                    metrics.delivered(Strategy::Sse, n as u64, len);
                    cursor = last;
                    continue;
                }
                Joined::Gap(g) => {
                    metrics.gaps.fetch_add(1, Relaxed);
                    let frame = sse_gap(&g);
                    metrics.overhead(Strategy::Sse, frame.len() as u64);
                    out.send(frame).await?;
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
                Joined::CaughtUp => resumed = true,
            }
            tokio::select! {
                changed = grew.changed() => if changed.is_err() { return Ok(()) },
                _ = ticks.tick() => {
                    metrics.overhead(Strategy::Sse, SSE_HEARTBEAT.len() as u64);
                    out.send(Bytes::from_static(SSE_HEARTBEAT)).await?;
                }
                _ = out.gone() => return Err(Stop::Gone),
                _ = ctx.shutdown.cancelled() => return Ok(()),
            }
        }
    }
    .await;
    match &result {
        Err(Stop::Slow) => {
            metrics.slow_consumer_closes.fetch_add(1, Relaxed);
            tracing::info!(cursor, "closing a slow SSE consumer");
        }
        Err(Stop::Lagged) => {
            metrics.slow_consumer_closes.fetch_add(1, Relaxed);
            tracing::info!(
                cursor,
                "ending an SSE stream that fell out of the retained log"
            );
        }
        Ok(()) | Err(Stop::Gone) => {}
    }
    result
}

/// The hyper transport: a bounded channel drained by the response body.
struct Queue {
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
}

impl Out for Queue {
    async fn send(&mut self, frame: Bytes) -> Result<(), Stop> {
        // The common case, room in the queue, arms no timer.
        let frame = match self.tx.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(Stop::Gone),
            Err(TrySendError::Full(frame)) => frame,
        };
        match self.tx.send_timeout(frame, self.timeout).await {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Closed(_)) => Err(Stop::Gone),
            Err(SendTimeoutError::Timeout(_)) => Err(Stop::Slow),
        }
    }

    async fn gone(&mut self) {
        self.tx.closed().await
    }
}

async fn produce(
    ctx: Ctx,
    start: Start,
    tx: mpsc::Sender<Bytes>,
    body_gone: oneshot::Receiver<()>,
) {
    let mut out = Queue {
        tx,
        timeout: ctx.app.config.slow_consumer_timeout,
    };
    match stream(&ctx, start, &mut out).await {
        // Ending the body would leave hyper blocked on the full socket: drop it all.
        Err(Stop::Slow) => ctx.abort.cancel(),
        Err(Stop::Lagged) => {
            // Its socket drains, so end the body after what is queued, the gap notice
            // last: aborting here would drop the notice and the client would never be
            // told. A socket that stops draining now is dropped after the timeout.
            drop(out);
            let timeout = ctx.app.config.slow_consumer_timeout;
            if tokio::time::timeout(timeout, body_gone).await.is_err() {
                ctx.abort.cancel();
            }
        }
        // Shutdown: the body ends and hyper's graceful shutdown closes the connection.
        Ok(()) | Err(Stop::Gone) => {}
    }
}

/// The raw transport: a chunked body written straight to the socket.
struct Raw {
    tcp: TcpStream,
    timeout: Duration,
}

impl Out for Raw {
    async fn send(&mut self, frame: Bytes) -> Result<(), Stop> {
        let mut size = [0u8; 18];
        let size = chunk_size(frame.len(), &mut size);
        self.write(&[size, &frame, b"\r\n"]).await
    }

    async fn gone(&mut self) {
        let mut one = [0u8; 1];
        match self.tcp.peek(&mut one).await {
            // EOF, or a failed socket.
            Ok(0) | Err(_) => {}
            // A request pipelined behind the stream: left in the socket for hyper once
            // the stream ends (as hyper itself would); a close now shows on the next write.
            Ok(_) => std::future::pending().await,
        }
    }
}

impl Raw {
    /// Writes `parts` in full: first one `writev` without a timer, which suffices
    /// unless the socket is full; then within `--slow-consumer-timeout`.
    async fn write(&mut self, parts: &[&[u8]]) -> Result<(), Stop> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut done = 0;
        let wrote = |tcp: &TcpStream, done: &mut usize| -> Result<(), Stop> {
            let mut slices = [IoSlice::new(&[]); 4];
            let n = remaining(parts, *done, &mut slices);
            match tcp.try_write_vectored(&slices[..n]) {
                Ok(w) => *done += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(Stop::Gone),
            }
            Ok(())
        };
        wrote(&self.tcp, &mut done)?;
        if done == total {
            return Ok(());
        }
        let tcp = &self.tcp;
        let rest = async {
            while done < total {
                if tcp.writable().await.is_err() {
                    return Err(Stop::Gone);
                }
                wrote(tcp, &mut done)?;
            }
            Ok(())
        };
        tokio::time::timeout(self.timeout, rest)
            .await
            .unwrap_or(Err(Stop::Slow))
    }

    /// Ends the chunked body.
    async fn end(&mut self) -> Result<(), Stop> {
        self.write(&[b"0\r\n\r\n"]).await
    }

    /// Closes the connection, giving the peer a moment to close first so nothing it
    /// has not read yet is lost to a reset.
    async fn close(mut self) {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            let _ = self.tcp.shutdown().await;
            self.gone().await;
        })
        .await;
    }
}

/// The slices of `parts` after the first `done` bytes, into `out`; how many.
fn remaining<'a>(parts: &[&'a [u8]], mut done: usize, out: &mut [IoSlice<'a>; 4]) -> usize {
    let mut n = 0;
    for p in parts {
        if done >= p.len() {
            done -= p.len();
            continue;
        }
        out[n] = IoSlice::new(&p[done..]);
        done = 0;
        n += 1;
        if n == out.len() {
            break;
        }
    }
    n
}

/// `{len:X}\r\n`, as hyper writes a chunk header.
fn chunk_size(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, digit) in buf[..digits].iter_mut().enumerate() {
        *digit = b"0123456789ABCDEF"[(len >> (4 * (digits - 1 - i))) & 0xf];
    }
    buf[digits] = b'\r';
    buf[digits + 1] = b'\n';
    &buf[..digits + 2]
}

/// Serves a stream on the raw socket: `head` (the response head, already decided by
/// the router) and then the chunked stream, until the client leaves, the stream ends
/// or the server shuts down. Returns the socket when the connection goes on: a stream
/// that fell out of the log ends its body after the gap notice, and the connection
/// serves its next request, as it would through hyper.
pub async fn serve_raw(
    ctx: &Ctx,
    tcp: TcpStream,
    head: Vec<u8>,
    start: Start,
) -> Option<TcpStream> {
    let mut out = Raw {
        tcp,
        timeout: ctx.app.config.slow_consumer_timeout,
    };
    out.write(&[&head]).await.ok()?;
    drop(head);
    match stream(ctx, start, &mut out).await {
        Err(Stop::Lagged) => {
            out.end().await.ok()?;
            Some(out.tcp)
        }
        // Shutdown: the body ends, then the connection.
        Ok(()) => {
            if out.end().await.is_ok() {
                out.close().await;
            }
            None
        }
        Err(Stop::Slow | Stop::Gone) => None,
    }
}

/// The response head of a stream on the raw socket, as hyper would write it.
pub fn raw_head(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\ndate: ");
    out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_uppercase_hex() {
        let mut buf = [0u8; 18];
        for (len, want) in [
            (0, "0\r\n"),
            (13, "D\r\n"),
            (16, "10\r\n"),
            (65536, "10000\r\n"),
            (usize::MAX, "FFFFFFFFFFFFFFFF\r\n"),
        ] {
            assert_eq!(chunk_size(len, &mut buf), want.as_bytes());
        }
    }

    #[test]
    fn remaining_slices_skip_what_was_written() {
        let parts: [&[u8]; 3] = [b"ab", b"cde", b"f"];
        let mut out = [IoSlice::new(&[]); 4];
        let got = |n: usize, out: &[IoSlice<'_>]| -> Vec<u8> {
            out[..n].iter().flat_map(|s| s.iter().copied()).collect()
        };
        for done in 0..=6 {
            let n = remaining(&parts, done, &mut out);
            assert_eq!(got(n, &out), b"abcdef"[done..].to_vec(), "after {done}");
        }
    }
}
