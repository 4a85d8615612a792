//! Accepting connections: the `--max-connections` cap, one hyper HTTP/1.1 connection
//! per socket, graceful shutdown with a deadline.
//!
//! One exception to hyper: when the first request of a connection is already whole in
//! the socket buffer and the router would answer it with an SSE stream, the head is
//! consumed here and the stream is served on the raw socket (`sse::serve_raw`). An
//! idle SSE stream then costs its task and its socket, not hyper's connection with its
//! two 8 KiB buffers. Anything else (a partial head, another route, an error, HTTP/1.0)
//! goes to hyper untouched, since the head was only peeked.
//!
//! Graceful shutdown alone does not end SSE streams, held long polls or upgraded
//! WebSockets, so every handler also watches the shutdown token; after the deadline
//! a second token drops whatever is still open.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, header};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
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
/// How much of the first request is peeked for the raw SSE path; a longer head goes to hyper.
const PEEK_BYTES: usize = 4096;
/// Headers of a request head parsed for the raw SSE path; more go to hyper.
const PEEK_HEADERS: usize = 32;

/// Holds one place under `--max-connections` and the open-connections gauge; shared
/// by a connection and its upgraded socket, released when both are done.
#[derive(Debug)]
pub struct ConnGuard {
    _permit: OwnedSemaphorePermit,
    app: Arc<App>,
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
                    }),
                    app: app.clone(),
                    shutdown: shutdown.clone(),
                    hard_stop: hard_stop.clone(),
                    abort: CancellationToken::new(),
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
    match first_request_is_sse(&mut stream, &ctx).await {
        Peeked::Sse(start, head) => {
            let next = tokio::select! {
                next = sse::serve_raw(&ctx, stream, head, start) => next,
                _ = ctx.hard_stop.cancelled() => None,
            };
            // The stream ended and the connection goes on (the client was told of a gap).
            if let Some(stream) = next {
                Box::pin(serve_http(stream, ctx)).await;
            }
        }
        Peeked::Other => Box::pin(serve_http(stream, ctx)).await,
        Peeked::Broken => {}
    }
}

async fn serve_http(stream: TcpStream, ctx: Ctx) {
    let app = ctx.app.clone();
    let (shutdown, hard_stop, abort) = (
        ctx.shutdown.clone(),
        ctx.hard_stop.clone(),
        ctx.abort.clone(),
    );
    let service = service_fn(move |req| routes::handle(req, ctx.clone()));
    let conn = builder(&app)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended with an error: {e}");
                }
                break;
            }
            _ = shutdown.cancelled(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = abort.cancelled() => break,
            _ = hard_stop.cancelled() => break,
        }
    }
}

enum Peeked {
    /// An SSE stream: its head was consumed; the response head to write.
    Sse(sse::Start, Vec<u8>),
    /// Anything else: for hyper, nothing consumed.
    Other,
    /// The socket failed.
    Broken,
}

/// Whether the first request, as far as it is already in the socket buffer, is a
/// complete head that the router answers with an SSE stream (routes::sse_stream).
async fn first_request_is_sse(stream: &mut TcpStream, ctx: &Ctx) -> Peeked {
    use tokio::io::AsyncReadExt;
    // On the heap and only for now: the connection's future should not carry it.
    let mut buf = vec![0u8; PEEK_BYTES];
    // speaks_http saw bytes, so this returns at once with what has arrived.
    let Ok(n) = stream.peek(&mut buf).await else {
        return Peeked::Broken;
    };
    let Some((req, len)) = parse_head(&buf[..n]) else {
        return Peeked::Other;
    };
    let Some((start, headers)) = routes::sse_stream(&req, ctx) else {
        return Peeked::Other;
    };
    // The head is in the socket buffer: consume it.
    if stream.read_exact(&mut buf[..len]).await.is_err() {
        return Peeked::Broken;
    }
    Peeked::Sse(start, sse::raw_head(&headers))
}

/// A complete HTTP/1.1 request head without a body, as a request, and its length.
/// `None` for anything hyper should see: a partial head, another version, a body, an
/// upgrade or an expectation, too many headers, bytes that are not a valid head.
fn parse_head(buf: &[u8]) -> Option<(Request<()>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; PEEK_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(buf).ok()? else {
        return None;
    };
    if parsed.version != Some(1) {
        return None;
    }
    let mut req = Request::builder()
        .method(Method::from_bytes(parsed.method?.as_bytes()).ok()?)
        .uri(parsed.path?)
        .version(http::Version::HTTP_11);
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            header::EXPECT,
        ]
        .contains(&name)
        {
            return None;
        }
        req = req.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some((req.body(()).ok()?, len))
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
