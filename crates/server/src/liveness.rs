//! Evidence that a WebSocket peer is alive while its pong is stuck behind a backlog.
//!
//! A peer that reads slowly answers pings late: the ping waits behind everything
//! queued before it. Closing it as dead would be wrong, and would hide what it
//! really is, a slow consumer. So a write that had to wait for buffer space and then
//! went through counts as proof of life: space only frees up when the peer's TCP
//! acknowledges data. A blackholed peer never frees space and still times out.
//! This only works if writes can block early, hence the capped send buffer
//! (`--ws-send-buffer`) on WebSocket sockets.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// A stream that remembers when a blocked write last went through.
#[derive(Debug)]
pub struct Watched<IO> {
    io: IO,
    blocked: bool,
    drained_at: Option<Instant>,
}

impl<IO> Watched<IO> {
    /// Wraps a stream.
    pub fn new(io: IO) -> Self {
        Watched {
            io,
            blocked: false,
            drained_at: None,
        }
    }

    /// When a write that had been refused for lack of space last succeeded.
    pub fn drained_at(&self) -> Option<Instant> {
        self.drained_at
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        match &result {
            Poll::Pending => self.blocked = true,
            Poll::Ready(Ok(n)) if *n > 0 && self.blocked => {
                self.blocked = false;
                self.drained_at = Some(Instant::now());
            }
            _ => {}
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
