//! Connecting, written once for every strategy: a TCP stream wrapped so every byte
//! up and down is counted at the socket (HTTP headers, chunk framing and WebSocket
//! frame overhead included), HTTP/1.1 connections over it (hyper's client `conn`
//! API, one request at a time, keep-alive), and WebSocket handshakes over it.
//!
//! Metering wraps the stream rather than summing body sizes because what a strategy
//! costs on the wire is mostly framing: headers of every poll, chunk sizes of SSE.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Byte and connection counters a metered stream adds to (one set per group).
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    /// Bytes written to sockets.
    pub(crate) bytes_up: AtomicU64,
    /// Bytes read from sockets.
    pub(crate) bytes_down: AtomicU64,
    /// Connections opened.
    pub(crate) opened: AtomicU64,
    /// Connections open now.
    pub(crate) open: AtomicU64,
    /// Shared with the progress display: connections open now, all groups.
    pub(crate) progress_open: Option<Arc<crate::Progress>>,
}

/// A stream that counts the bytes it moves. Dropping it closes the connection and
/// lowers the open-connections gauge.
#[derive(Debug)]
pub(crate) struct Metered<S> {
    inner: S,
    counters: Arc<WireCounters>,
}

impl<S> Metered<S> {
    pub(crate) fn new(inner: S, counters: Arc<WireCounters>) -> Self {
        counters.opened.fetch_add(1, Relaxed);
        counters.open.fetch_add(1, Relaxed);
        if let Some(p) = &counters.progress_open {
            p.open_connections.fetch_add(1, Relaxed);
        }
        Metered { inner, counters }
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Relaxed);
        if let Some(p) = &self.counters.progress_open {
            p.open_connections.fetch_sub(1, Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.counters.bytes_down.fetch_add(n as u64, Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters.bytes_up.fetch_add(*n as u64, Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters.bytes_up.fetch_add(*n as u64, Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A failed request or connection, by kind (the `errors_by_kind` keys).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// Nothing in time.
    #[error("timeout")]
    Timeout,
    /// HTTP-level failure (connection closed mid-request, bad response).
    #[error("http: {0}")]
    Http(String),
    /// An unexpected status code.
    #[error("status {0}")]
    Status(u16),
    /// A body or frame that does not follow the envelope format.
    #[error("protocol: {0}")]
    Protocol(String),
    /// WebSocket failure.
    #[error("websocket: {0}")]
    WebSocket(String),
}

impl ClientError {
    /// The `errors_by_kind` key.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect(_) => "connect",
            ClientError::Timeout => "timeout",
            ClientError::Http(_) => "http",
            ClientError::Status(s) if *s >= 500 => "http_5xx",
            ClientError::Status(_) => "http_4xx",
            ClientError::Protocol(_) => "protocol",
            ClientError::WebSocket(_) => "websocket",
        }
    }
}

/// Where the server is: TCP address, `Host` header and path prefix, from the base URL.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `host:port` to connect to and send as `Host`.
    pub(crate) authority: String,
    /// Path prefix of the base URL (usually empty).
    pub(crate) prefix: String,
    /// Local addresses to connect from (scenario `source_addresses`).
    pub(crate) sources: Arc<crate::source::SourceAddresses>,
}

impl Target {
    /// Parses `http://host[:port][/prefix]`.
    pub(crate) fn parse(base_url: &str) -> Option<Target> {
        let rest = base_url
            .strip_prefix("http://")
            .or_else(|| base_url.strip_prefix("ws://"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return None;
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Some(Target {
            authority,
            prefix: prefix.to_string(),
            sources: Arc::default(),
        })
    }

    /// Opens a metered TCP connection (with `TCP_NODELAY`: latency is what we measure).
    pub(crate) async fn connect(
        &self,
        counters: &Arc<WireCounters>,
    ) -> Result<Metered<TcpStream>, ClientError> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            self.sources.connect(&self.authority),
        )
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(ClientError::Connect)?;
        let _ = tcp.set_nodelay(true);
        Ok(Metered::new(tcp, counters.clone()))
    }

    /// Opens an HTTP/1.1 keep-alive connection.
    pub(crate) async fn http(&self, counters: &Arc<WireCounters>) -> Result<HttpConn, ClientError> {
        let stream = self.connect(counters).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let task = tokio::spawn(async move {
            // Ends when the connection closes or every handle is dropped.
            let _ = conn.await;
        });
        Ok(HttpConn {
            sender,
            task,
            host: self.authority.clone(),
        })
    }
}

/// One HTTP/1.1 connection: one request at a time, reused while it stays open.
pub(crate) struct HttpConn {
    sender: http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
    host: String,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        // A connection must never outlive its client (a held long poll would).
        self.task.abort();
    }
}

/// A complete response: status, headers, body.
pub(crate) struct FullResponse {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl HttpConn {
    /// False once the server closed the connection or it failed.
    pub(crate) fn is_usable(&self) -> bool {
        !self.sender.is_closed() && !self.task.is_finished()
    }

    /// Sends a request and returns the response head with a streaming body.
    pub(crate) async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        self.sender
            .ready()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.host);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let has_body = body.is_some();
        if has_body {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        self.sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// Sends a request and reads the whole body, all within `timeout`.
    pub(crate) async fn request(
        &mut self,
        method: http::Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<FullResponse, ClientError> {
        tokio::time::timeout(timeout, async {
            let resp = self.send(method, path, headers, body).await?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?
                .to_bytes();
            Ok(FullResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        })
        .await
        .map_err(|_| ClientError::Timeout)?
    }
}

/// A WebSocket over a metered stream.
pub(crate) type WsStream = tokio_tungstenite::WebSocketStream<Metered<TcpStream>>;

impl Target {
    /// Connects and performs the WebSocket handshake for `path`.
    pub(crate) async fn websocket(
        &self,
        counters: &Arc<WireCounters>,
        path: &str,
    ) -> Result<WsStream, ClientError> {
        let stream = self.connect(counters).await?;
        let url = format!("ws://{}{}", self.authority, path);
        // A 4 KiB read buffer, not tungstenite's 128 KiB: it zero-fills the buffer
        // before every read and keeps it resident per connection, which dominated the
        // load generator's CPU in WebSocket fan-out (docs/performance.md, profiles).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20));
        let (ws, _resp) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
        )
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                ClientError::Status(resp.status().as_u16())
            }
            other => ClientError::WebSocket(other.to_string()),
        })?;
        Ok(ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A tiny raw server records exactly what it received and sends a fixed
    /// response; the metered byte counts must equal those byte strings' lengths.
    #[tokio::test]
    async fn metered_bytes_equal_bytes_on_the_wire() {
        tokio::time::timeout(Duration::from_secs(10), async {
            const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n{\"events\":[{\"seq\":1,\"data\":1}],\"next\":1}";
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = tokio::spawn(async move {
                let (mut sock, _) = listener.accept().await.expect("accept");
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.expect("read");
                    assert!(n > 0, "client closed early");
                    got.extend_from_slice(&buf[..n]);
                }
                sock.write_all(RESPONSE).await.expect("write");
                // Keep the socket open until the client is done reading.
                let _ = sock.read(&mut buf).await;
                got
            });
            let target = Target::parse(&format!("http://{addr}")).expect("valid base URL");
            let counters = Arc::new(WireCounters::default());
            let mut conn = target.http(&counters).await.expect("connect");
            let r = conn
                .request(
                    http::Method::GET,
                    "/topics/t/events?since=0&limit=10",
                    &[("if-none-match", "\"abc\"".into())],
                    None,
                    Duration::from_secs(5),
                )
                .await
                .expect("request");
            assert_eq!(r.status, 200);
            assert_eq!(&r.body[..], &RESPONSE[RESPONSE.len() - 40..]);
            drop(conn);
            let got = server.await.expect("server task");
            let (up, down) = (counters.bytes_up.load(Relaxed), counters.bytes_down.load(Relaxed));
            assert_eq!(up, got.len() as u64, "bytes up = the request as the server read it: {:?}", String::from_utf8_lossy(&got));
            assert_eq!(down, RESPONSE.len() as u64, "bytes down = the fixed response");
            assert_eq!(counters.opened.load(Relaxed), 1);
            assert_eq!(counters.open.load(Relaxed), 0, "closed after drop");
        })
        .await
        .expect("metering test finishes within 10s");
    }

    #[test]
    fn base_urls() {
        let t = Target::parse("http://127.0.0.1:8080/prefix/").expect("valid");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.prefix, "/prefix");
        assert_eq!(
            Target::parse("http://localhost").expect("valid").authority,
            "localhost:80"
        );
        assert!(Target::parse("https://x").is_none());
        assert!(Target::parse("http://").is_none());
    }
}
