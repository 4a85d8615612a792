//! Server-Sent Events: `GET /topics/{t}/sse`.
//!
//! hyper parses the request and the router checks it like any other; the answer is a
//! response head whose body never yields. Once hyper has flushed that head, the
//! connection task drops hyper and serves the stream on the raw socket (see conn.rs):
//! one task per stream, which reads the topic log by cursor and writes the shared,
//! pre-encoded frames itself, with no hyper connection (and none of its two 8 KiB
//! buffers), no producer task and no per-stream queue.
//!
//! Each wake-up writes everything new as one chunk: one event's shared frame between
//! a chunk header on the stack and `\r\n`, in one `writev`, or the frames of a
//! subscriber that is behind joined up to 64 KiB. A timer is armed only when the
//! socket is full: a write that cannot complete within `--slow-consumer-timeout` means
//! the socket is not draining, and the connection is dropped.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use pushbench_protocol::wire::{SSE_HEARTBEAT, sse_gap, sse_retry};
use tokio::net::TcpStream;

use crate::conn::ConnGuard;
use crate::metrics::Strategy;
use crate::query::Query;
use crate::reply::{ApiError, Body};
use crate::routes::{Ctx, check_origin, stream_cursor};
use crate::topic::{Joined, Stored, Topic};

/// Largest write made by joining the frames of a subscriber that is behind.
const CHUNK_BYTES: usize = 64 * 1024;
/// Time given to the end of a stream (the last chunk, the peer's close) on the raw path.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A validated stream request: where it reads, from which cursor, how it is framed.
#[derive(Debug)]
pub struct Start {
    topic: Arc<Topic>,
    cursor: Option<u64>,
    /// HTTP/1.1: a chunked body (hyper said so in the head); HTTP/1.0: close-delimited.
    chunked: bool,
    /// Whether the connection may serve another request after the stream ends.
    keep_alive: bool,
}

/// Opens the stream: checks the request (origin, cursor `Last-Event-ID` then
/// `?since=`, topic cap) and answers with the stream's head and a parked body; the
/// connection takes it from there once hyper has written the head.
pub fn handle(
    req: &Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
    query: &Query<'_>,
) -> Result<Response<Body>, ApiError> {
    let headers = req.headers();
    check_origin(&ctx.app, headers)?;
    let cursor = stream_cursor(headers, query)?;
    let topic = ctx.app.topic(topic)?;
    let chunked = req.version() == Version::HTTP_11;
    let close = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("close"));
    ctx.guard.hand_off(Start {
        topic,
        cursor,
        chunked,
        keep_alive: chunked && !close,
    });
    let mut res = Response::new(
        Parked {
            guard: ctx.guard.clone(),
        }
        .boxed_unsync(),
    );
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

/// The body hyper sees: it never yields. That hyper polls it means the head has been
/// encoded; the connection task takes over once it is flushed.
struct Parked {
    guard: Arc<ConnGuard>,
}

impl hyper::body::Body for Parked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.guard.body_polled();
        Poll::Pending
    }
}

/// Why a stream stopped early.
enum Stop {
    /// The client went away.
    Gone,
    /// The socket did not drain in time.
    Slow,
    /// The stream fell out of the retained log; the gap notice was handed over.
    Lagged,
}

/// The stream itself. `Ok` means the server is shutting down.
async fn stream(ctx: &Ctx, start: Start, out: &mut Raw) -> Result<(), Stop> {
    let metrics = &ctx.app.metrics;
    let _open = metrics.open(Strategy::Sse);
    let Start { topic, cursor, .. } = start;
    let heartbeat = ctx.app.config.sse_heartbeat;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    // A stream that was busy sends one heartbeat, not a burst of missed ones.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut grew = topic.subscribe();
    let mut cursor = cursor.unwrap_or_else(|| topic.last_seq());
    let mut resumed = false;
    let retry = sse_retry(ctx.app.config.sse_retry.as_millis() as u64);
    metrics.overhead(Strategy::Sse, retry.len() as u64);
    // Made once, not per wake-up: a `cancelled()` future registers with the server-wide
    // shutdown token (a lock shared by every stream) and a `peek` with the socket.
    let shutdown = ctx.shutdown.cancelled();
    let gone = out.gone();
    tokio::pin!(shutdown, gone);
    let result: Result<(), Stop> = async {
        out.send(retry).await?;
        loop {
            let newest = *grew.borrow_and_update();
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
                    if last < newest {
                        continue;
                    }
                    // Caught up with the wake-up: the next publish marks `grew`
                    // changed, so there is no need to read the log again first.
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
                _ = &mut gone => return Err(Stop::Gone),
                _ = &mut shutdown => return Ok(()),
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

/// The stream's body written straight to the socket: chunked, or close-delimited
/// for HTTP/1.0 (as hyper announced in the head).
struct Raw {
    tcp: TcpStream,
    timeout: Duration,
    chunked: bool,
}

impl Raw {
    /// Hands `frame` to the client within `--slow-consumer-timeout`.
    async fn send(&self, frame: Bytes) -> Result<(), Stop> {
        if !self.chunked {
            return self.write(&[&frame]).await;
        }
        let mut size = [0u8; 18];
        let size = chunk_size(frame.len(), &mut size);
        self.write(&[size, &frame, b"\r\n"]).await
    }

    /// Resolves when the client is gone.
    async fn gone(&self) {
        let mut one = [0u8; 1];
        match self.tcp.peek(&mut one).await {
            // EOF, or a failed socket.
            Ok(0) | Err(_) => {}
            // A request pipelined behind the stream: left in the socket for hyper once
            // the stream ends (as hyper itself would); a close now shows on the next write.
            Ok(_) => std::future::pending().await,
        }
    }

    /// Writes `parts` in full: first one `writev` without a timer, which suffices
    /// unless the socket is full; then within `--slow-consumer-timeout`.
    async fn write(&self, parts: &[&[u8]]) -> Result<(), Stop> {
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

    /// Ends the body (a close-delimited one ends with the connection).
    async fn end(&self) -> Result<(), Stop> {
        if !self.chunked {
            return Ok(());
        }
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

/// Serves a stream on the raw socket, whose response head hyper has written, until
/// the client leaves, the stream ends or the server shuts down. Returns the socket
/// when the connection goes on: a stream that fell out of the log ends its body after
/// the gap notice, and the connection serves its next request, as it would in hyper.
pub async fn serve_raw(ctx: &Ctx, tcp: TcpStream, start: Start) -> Option<TcpStream> {
    let keep_alive = start.keep_alive;
    let mut out = Raw {
        tcp,
        timeout: ctx.app.config.slow_consumer_timeout,
        chunked: start.chunked,
    };
    match stream(ctx, start, &mut out).await {
        Err(Stop::Lagged) if keep_alive => {
            out.end().await.ok()?;
            Some(out.tcp)
        }
        // Shutdown (or the end of a stream on a connection that cannot go on): the
        // body ends, then the connection.
        Ok(()) | Err(Stop::Lagged) => {
            if out.end().await.is_ok() {
                out.close().await;
            }
            None
        }
        Err(Stop::Slow | Stop::Gone) => None,
    }
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
