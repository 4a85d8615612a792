//! Accepting connections: the `--max-connections` cap, one hyper HTTP/1.1 connection
//! per socket, graceful shutdown with a deadline.
//!
//! SSE streams leave hyper once their head is out: hyper parses the request and the
//! router answers it as for any other route, with a body that never yields
//! (`sse::handle`). As soon as hyper has flushed that head, the connection task drops
//! hyper's connection (and with it its two 8 KiB buffers), takes the socket back from
//! [`Io`] and streams the chunked body itself (`sse::serve_raw`). An idle SSE stream
//! then costs one task and its socket. If the stream ends while the connection can go
//! on (a subscriber that fell out of the log), hyper takes the socket again.

use std::io;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::App;
use crate::reply::ApiError;
use crate::routes::{self, Ctx};
use crate::sse;

/// Connections beyond `--max-connections` that may wait for their 503 at once;
/// past this they are closed without an answer, so a flood cannot grow memory.
const REJECT_BACKLOG: usize = 256;

/// Holds one place under `--max-connections` and the open-connections gauge; shared
/// by a connection and its upgraded socket, released when both are done.
///
/// It also carries the hand-off of an SSE stream from hyper to the connection task.
#[derive(Debug)]
pub struct ConnGuard {
    _permit: OwnedSemaphorePermit,
    app: Arc<App>,
    /// Set by the SSE route: the stream to serve once its head is out.
    stream: Mutex<Option<sse::Start>>,
    /// hyper polled the SSE body: the head is in hyper's write buffer.
    body_polled: AtomicBool,
    /// hyper wrote since it last flushed.
    unflushed: AtomicBool,
    /// The connection task is dropping hyper to take the socket back.
    taking: AtomicBool,
    /// Where [`Io`] leaves the socket when hyper drops it during a hand-off.
    socket: Mutex<Option<TcpStream>>,
}

impl ConnGuard {
    /// Asks for the connection to be handed over to `start`'s stream once hyper has
    /// written the response head (see the module docs).
    pub fn hand_off(&self, start: sse::Start) {
        *self.stream.lock().unwrap_or_else(|e| e.into_inner()) = Some(start);
        self.body_polled.store(false, Relaxed);
        // Until hyper flushes after writing the head.
        self.unflushed.store(true, Relaxed);
    }

    /// Called by the parked SSE body when hyper polls it.
    pub fn body_polled(&self) {
        self.body_polled.store(true, Relaxed);
    }

    /// Whether hyper has flushed the head of an SSE stream.
    fn head_out(&self) -> bool {
        self.body_polled.load(Relaxed) && !self.unflushed.load(Relaxed)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.app.metrics.connections_open.fetch_sub(1, Relaxed);
    }
}

/// Serves `listener` until `shutdown` is cancelled, then drains within the deadline.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(app.config.max_connections));
    let rejects = Arc::new(Semaphore::new(REJECT_BACKLOG));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}; retrying in 50 ms");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        app.metrics.connections_total.fetch_add(1, Relaxed);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                app.metrics.connections_open.fetch_add(1, Relaxed);
                let ctx = Ctx {
                    guard: Arc::new(ConnGuard {
                        _permit: permit,
                        app: app.clone(),
                        stream: Mutex::new(None),
                        body_polled: AtomicBool::new(false),
                        unflushed: AtomicBool::new(false),
                        taking: AtomicBool::new(false),
                        socket: Mutex::new(None),
                    }),
                    app: app.clone(),
                    shutdown: shutdown.clone(),
                    hard_stop: hard_stop.clone(),
                    tracker: tracker.clone(),
                };
                tracker.spawn(connection(stream, ctx));
            }
            Err(_) => {
                app.metrics.connections_rejected.fetch_add(1, Relaxed);
                if let Ok(slot) = rejects.clone().try_acquire_owned() {
                    tracker.spawn(reject(stream, app.clone(), slot));
                }
            }
        }
    }
    drop(listener);
    tracker.close();
    let deadline = app.config.shutdown_deadline;
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {deadline:?} after shutdown began (--shutdown-deadline): closing them"
        );
        hard_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    }
}

fn builder(app: &App) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(app.config.header_read_timeout)
        .max_buf_size(64 * 1024 + 8 * 1024);
    b
}

async fn connection(mut stream: TcpStream, ctx: Ctx) {
    if !speaks_http(&mut stream, &ctx.app).await {
        return;
    }
    loop {
        // hyper's part lives on the heap, so the task of an SSE stream, which outlives
        // it, is not sized for it.
        let Some((tcp, start)) = Box::pin(serve_http(stream, &ctx)).await else {
            return;
        };
        let next = tokio::select! {
            next = sse::serve_raw(&ctx, tcp, start) => next,
            _ = ctx.hard_stop.cancelled() => None,
        };
        // The stream ended and the connection goes on (its client was told of a gap).
        match next {
            Some(tcp) => stream = tcp,
            None => return,
        }
    }
}

/// Serves requests with hyper until the connection ends, or until an SSE stream's
/// head is out: then hyper is dropped and the socket and the stream are returned.
async fn serve_http(stream: TcpStream, ctx: &Ctx) -> Option<(TcpStream, sse::Start)> {
    let guard = &ctx.guard;
    {
        let io = Io {
            tcp: Some(stream),
            guard: guard.clone(),
        };
        let service = {
            let ctx = ctx.clone();
            service_fn(move |req| routes::handle(req, ctx.clone()))
        };
        let conn = builder(&ctx.app)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            // hyper, until it ends or has flushed an SSE head.
            let hyper = std::future::poll_fn(|cx| match conn.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(Some(result)),
                Poll::Pending if guard.head_out() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            });
            tokio::select! {
                ended = hyper => match ended {
                    Some(result) => {
                        if let Err(e) = result {
                            tracing::debug!("connection ended with an error: {e}");
                        }
                        return None;
                    }
                    None => break,
                },
                _ = ctx.shutdown.cancelled(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                _ = ctx.hard_stop.cancelled() => return None,
            }
        }
        // Dropping hyper's connection here leaves the socket in the guard (Io::drop).
        guard.taking.store(true, Relaxed);
    }
    guard.taking.store(false, Relaxed);
    guard.body_polled.store(false, Relaxed);
    let tcp = guard
        .socket
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    let start = guard
        .stream
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    Some((tcp, start))
}

/// The socket as hyper sees it: it tells the guard when hyper writes and flushes, and
/// gives the socket back when hyper is dropped during an SSE hand-off.
#[derive(Debug)]
pub struct Io {
    tcp: Option<TcpStream>,
    guard: Arc<ConnGuard>,
}

impl Io {
    /// The socket, for an upgraded WebSocket.
    pub fn into_tcp(mut self) -> Option<TcpStream> {
        self.tcp.take()
    }

    fn tcp(&mut self) -> Pin<&mut TcpStream> {
        match &mut self.tcp {
            Some(tcp) => Pin::new(tcp),
            None => unreachable!("the socket is only taken when hyper is done with it"),
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if self.guard.taking.load(Relaxed) {
            *self.guard.socket.lock().unwrap_or_else(|e| e.into_inner()) = self.tcp.take();
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().tcp().poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.guard.unflushed.store(true, Relaxed);
        this.tcp().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.guard.unflushed.store(true, Relaxed);
        this.tcp().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = this.tcp().poll_flush(cx);
        if flushed.is_ready() {
            this.guard.unflushed.store(false, Relaxed);
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().tcp().poll_shutdown(cx)
    }
}

/// Looks at the first bytes before hyper does: a client that sends something other
/// than an HTTP/1 request line (TLS to a plain port, a stray binary protocol) gets a
/// JSON 400 that says so, instead of hyper's bare 400, and the connection is closed.
async fn speaks_http(stream: &mut TcpStream, app: &App) -> bool {
    let mut head = [0u8; 8];
    let n = match tokio::time::timeout(app.config.header_read_timeout, stream.peek(&mut head)).await
    {
        Ok(Ok(n)) if n > 0 => n,
        // Closed, failed, or silent past the header timeout: nothing to answer.
        _ => return false,
    };
    let head = &head[..n];
    let method_len = head.iter().take_while(|b| b.is_ascii_uppercase()).count();
    let looks_like_http = method_len > 0 && (method_len == n || head[method_len] == b' ');
    if looks_like_http {
        return true;
    }
    let hint = if head[0] == 0x16 {
        "this looks like TLS: this server speaks plain HTTP/1.1, use http:// not https://"
    } else {
        "expected an HTTP/1.1 request line such as GET /healthz HTTP/1.1"
    };
    let body = format!("{{\"error\":\"not_http\",\"detail\":\"{hint}\"}}");
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    app.metrics.client_errors.fetch_add(1, Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        use tokio::io::AsyncWriteExt;
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    false
}

/// Answers one request with 503 and closes: the server is at `--max-connections`.
async fn reject(stream: TcpStream, app: Arc<App>, _slot: OwnedSemaphorePermit) {
    let limit = app.config.max_connections;
    let service = service_fn(move |_req| async move {
        let mut res = ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            format!(
                "the server holds {limit} connections, its limit (--max-connections): retry later"
            ),
        )
        .header(http::header::RETRY_AFTER, "1")
        .into_response();
        res.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        Ok::<_, std::convert::Infallible>(res)
    });
    let mut b = builder(&app);
    b.keep_alive(false);
    let conn = b.serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(app.config.header_read_timeout, conn).await;
}
