//! Connecting, written once for every strategy: a TCP stream wrapped so every byte
//! up and down is counted at the socket (HTTP headers, chunk framing and WebSocket
//! frame overhead included), HTTP/1.1 connections over it (a small client of its
//! own, one request at a time, keep-alive), and WebSocket handshakes over it.
//!
//! Metering wraps the stream rather than summing body sizes because what a strategy
//! costs on the wire is mostly framing: headers of every poll, chunk sizes of SSE.
//!
//! The HTTP client is written here rather than taken from hyper because the load
//! generator must cost less than the server it measures: hyper's client runs each
//! connection as its own task behind a channel, and builds a request, a header map
//! and a body per request. Here a connection is a socket and two reused buffers:
//! the request head (and body) is written from one buffer with one write, the
//! response head is parsed in place with `httparse`, and a body is either returned
//! as a slice of the read buffer (framed by `Content-Length`, chunked, or ended by
//! the server closing) or read incrementally from the socket (SSE).

use std::io;
use std::io::Write as _;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
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
    /// HTTP-level failure (connection closed mid-request, malformed response).
    #[error("http: {0}")]
    Http(String),
    /// A response head (status line and headers) longer than the client accepts.
    #[error("http: response head longer than {0} bytes")]
    HeadTooLarge(usize),
    /// A response body longer than the client reads whole.
    #[error("http: response body of {0} bytes or more, the most read whole is {1}")]
    BodyTooLarge(u64, usize),
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
            ClientError::Http(_) | ClientError::HeadTooLarge(_) | ClientError::BodyTooLarge(..) => {
                "http"
            }
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
        let io = self.connect(counters).await?;
        Ok(HttpConn::new(io, &self.authority))
    }
}

/// Longest response head (status line and headers) accepted: a longer one is an
/// error, not a buffer that grows.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Longest response body read whole (poll, long poll, latest, beacon answers).
pub(crate) const MAX_BODY: usize = 16 << 20;
/// Most headers in a response head.
const MAX_HEADERS: usize = 64;
/// The read buffer a connection starts with: an idle connection's cost. It grows for
/// a longer head or body and is given back (down to this size) once such a
/// response has been consumed.
const READ_BUF: usize = 2 * 1024;
/// tungstenite's read buffer per WebSocket (see [`Target::websocket`]).
const WS_READ_BUF: usize = 1024;
/// A read buffer or request buffer larger than this is given back after use.
const KEEP_BUF: usize = 16 * 1024;
/// Least free space in the read buffer before a read (else it grows).
const MIN_READ: usize = 512;
/// A keep-alive connection idle this long is checked for a close by the server
/// before it is reused (one non-blocking peek). Servers close idle connections
/// after seconds, not milliseconds; a busy poller never pays for the check.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// A request path: whole, or split around a cursor written as a decimal number
/// (so a poller builds no string per request).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ReqPath<'a> {
    Whole(&'a str),
    Cursor(&'a str, u64, &'a str),
}

impl<'a> From<&'a str> for ReqPath<'a> {
    fn from(p: &'a str) -> Self {
        ReqPath::Whole(p)
    }
}

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (`HEAD`, `1xx`, `204`, `304`), or the body has been read.
    Empty,
    /// `Content-Length`: this many bytes (left).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    Close,
}

/// One parsed response head; ranges index the read buffer.
struct Head {
    status: u16,
    /// `Upgrade: websocket` and `Connection: upgrade` (a WebSocket handshake's answer).
    websocket: (bool, bool),
    /// The `Sec-WebSocket-Accept` header's value.
    ws_accept: Option<Range<usize>>,
    len: usize,
    framing: Framing,
    keep_alive: bool,
    etag: Option<Range<usize>>,
    last_modified: Option<Range<usize>>,
}

/// One HTTP/1.1 connection: one request at a time, reused while it stays open.
pub(crate) struct HttpConn {
    io: Metered<TcpStream>,
    /// What was read and not yet consumed: the last response stays here (its body
    /// is borrowed by the caller) until the next request.
    rbuf: BytesMut,
    /// Bytes of `rbuf` the last response used, dropped at the next request.
    consumed: usize,
    /// The request being written (head and body together, one write).
    wbuf: Vec<u8>,
    host: Box<str>,
    /// False while a request is under way (a request cancelled half-way leaves the
    /// connection unusable), after `Connection: close`, and while streaming.
    reusable: bool,
    idle_since: tokio::time::Instant,
    /// The framing of the streaming body being read (after [`HttpConn::send`]).
    stream: Framing,
    chunked: Chunked,
}

/// A complete response, borrowed from the connection until its next request.
#[derive(Debug)]
pub(crate) struct Response<'a> {
    pub(crate) status: u16,
    pub(crate) body: &'a [u8],
    /// The `ETag` header's value, if any.
    pub(crate) etag: Option<&'a [u8]>,
    /// The `Last-Modified` header's value, if any.
    pub(crate) last_modified: Option<&'a [u8]>,
}

impl HttpConn {
    fn new(io: Metered<TcpStream>, host: &str) -> Self {
        HttpConn {
            io,
            rbuf: BytesMut::new(),
            consumed: 0,
            wbuf: Vec::new(),
            host: host.into(),
            reusable: true,
            idle_since: tokio::time::Instant::now(),
            stream: Framing::Empty,
            chunked: Chunked::default(),
        }
    }

    /// The WebSocket opening handshake (RFC 6455 section 4.1) for `path` with
    /// `key`: returns what the server sent after its `101` head (usually nothing).
    async fn upgrade(&mut self, path: &str, key: &str) -> Result<Vec<u8>, ClientError> {
        let headers: [(&str, &[u8]); 4] = [
            ("connection", b"Upgrade"),
            ("upgrade", b"websocket"),
            ("sec-websocket-version", b"13"),
            ("sec-websocket-key", key.as_bytes()),
        ];
        self.write_request("GET", ReqPath::Whole(path), &headers, None)
            .await?;
        let head = self.read_head(false, true).await?;
        if head.status != 101 {
            return Err(ClientError::Status(head.status));
        }
        if head.websocket != (true, true) {
            return Err(ClientError::WebSocket(
                "the 101 response lacks Upgrade: websocket or Connection: Upgrade".into(),
            ));
        }
        let expected = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        if head.ws_accept.map(|r| &self.rbuf[r]) != Some(expected.as_bytes()) {
            return Err(ClientError::WebSocket(
                "Sec-WebSocket-Accept does not match the key sent".into(),
            ));
        }
        Ok(self.rbuf[head.len..].to_vec())
    }

    /// False once the server closed the connection (or asked to), a request was
    /// cancelled half-way, or it carries a stream.
    pub(crate) fn is_usable(&self) -> bool {
        if !self.reusable {
            return false;
        }
        if self.idle_since.elapsed() < CHECK_IDLE_AFTER {
            return true;
        }
        // An idle connection the server closed reads end-of-stream; one that has
        // bytes waiting (say a 408 before the close) is not reusable either.
        let mut probe = [0u8; 1];
        self.io.inner.peek(&mut probe).now_or_never().is_none()
    }

    /// Sends a request and reads the whole response, all within `timeout`.
    pub(crate) async fn request<'p>(
        &mut self,
        method: http::Method,
        path: impl Into<ReqPath<'p>>,
        headers: &[(&str, &[u8])],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Response<'_>, ClientError> {
        let path = path.into();
        let head_only = method == http::Method::HEAD;
        let (head, body) = tokio::time::timeout(timeout, async {
            self.write_request(method.as_str(), path, headers, body)
                .await?;
            let head = self.read_head(head_only, false).await?;
            let body = self.read_body(&head).await?;
            Ok::<_, ClientError>((head, body))
        })
        .await
        .map_err(|_| ClientError::Timeout)??;
        self.reusable = head.keep_alive;
        self.idle_since = tokio::time::Instant::now();
        let buf = &self.rbuf[..];
        Ok(Response {
            status: head.status,
            body: &buf[body],
            etag: head.etag.map(|r| &buf[r]),
            last_modified: head.last_modified.map(|r| &buf[r]),
        })
    }

    /// Sends a request and reads the response head; the body is then read with
    /// [`HttpConn::read_stream`]. The connection is not reused afterwards.
    pub(crate) async fn send<'p>(
        &mut self,
        method: http::Method,
        path: impl Into<ReqPath<'p>>,
        headers: &[(&str, &[u8])],
        body: Option<&[u8]>,
    ) -> Result<u16, ClientError> {
        let head_only = method == http::Method::HEAD;
        self.write_request(method.as_str(), path.into(), headers, body)
            .await?;
        // A streamed connection sends nothing more: give the request buffer back.
        self.wbuf = Vec::new();
        let head = self.read_head(head_only, false).await?;
        self.rbuf.advance(head.len);
        self.stream = head.framing;
        self.chunked = Chunked::default();
        Ok(head.status)
    }

    /// Reads the next part of a streaming body, calling `on_data` with every piece
    /// of body data (chunk framing removed) that is there: what was buffered, else
    /// what one read brings. `Ok(false)`: the body ended. Cancel-safe (the only
    /// await is one socket read).
    pub(crate) async fn read_stream(
        &mut self,
        mut on_data: impl FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<bool, ClientError> {
        loop {
            let (progressed, ended) = self.decode_stream(&mut on_data)?;
            if ended {
                return Ok(false);
            }
            if progressed {
                return Ok(true);
            }
            if self.fill().await? == 0 {
                return match self.stream {
                    Framing::Close => {
                        self.stream = Framing::Empty;
                        Ok(false)
                    }
                    _ => Err(ClientError::Http(
                        "connection closed in the middle of the response body".into(),
                    )),
                };
            }
        }
    }

    /// Hands what is buffered of the streaming body to `on_data`:
    /// (some data or framing consumed, body ended).
    fn decode_stream(
        &mut self,
        on_data: &mut impl FnMut(&[u8]) -> Result<(), ClientError>,
    ) -> Result<(bool, bool), ClientError> {
        let progressed = match self.stream {
            Framing::Empty => return Ok((false, true)),
            Framing::Length(left) => {
                let n = (self.rbuf.len() as u64).min(left) as usize;
                if n > 0 {
                    on_data(&self.rbuf[..n])?;
                    self.rbuf.advance(n);
                }
                self.stream = if left == n as u64 {
                    Framing::Empty
                } else {
                    Framing::Length(left - n as u64)
                };
                n > 0
            }
            Framing::Close => {
                let n = self.rbuf.len();
                if n > 0 {
                    on_data(&self.rbuf[..])?;
                    self.rbuf.clear();
                }
                n > 0
            }
            Framing::Chunked => {
                let mut pos = 0;
                loop {
                    let (used, data) = self.chunked.step(&self.rbuf[pos..])?;
                    if let Some(d) = data {
                        on_data(&self.rbuf[pos + d.start..pos + d.end])?;
                    }
                    pos += used;
                    if self.chunked.is_done() {
                        self.stream = Framing::Empty;
                        break;
                    }
                    if used == 0 {
                        break;
                    }
                }
                self.rbuf.advance(pos);
                pos > 0
            }
        };
        if self.rbuf.is_empty() {
            self.shrink();
        }
        Ok((progressed, self.stream == Framing::Empty))
    }

    /// Writes the request: head and body from one buffer, in one write.
    async fn write_request(
        &mut self,
        method: &str,
        path: ReqPath<'_>,
        headers: &[(&str, &[u8])],
        body: Option<&[u8]>,
    ) -> Result<(), ClientError> {
        self.reusable = false;
        // The previous response (and its body) is no longer borrowed: drop it.
        if self.consumed >= self.rbuf.len() {
            self.rbuf.clear();
        } else {
            self.rbuf.advance(self.consumed);
        }
        self.consumed = 0;
        self.shrink();
        let w = &mut self.wbuf;
        w.clear();
        w.extend_from_slice(method.as_bytes());
        w.push(b' ');
        match path {
            ReqPath::Whole(p) => w.extend_from_slice(p.as_bytes()),
            ReqPath::Cursor(before, cursor, after) => {
                w.extend_from_slice(before.as_bytes());
                // Writing an integer into a Vec cannot fail.
                let _ = write!(w, "{cursor}");
                w.extend_from_slice(after.as_bytes());
            }
        }
        w.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        w.extend_from_slice(self.host.as_bytes());
        w.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            w.extend_from_slice(name.as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value);
            w.extend_from_slice(b"\r\n");
        }
        if let Some(body) = body {
            w.extend_from_slice(b"content-type: application/json\r\ncontent-length: ");
            let _ = write!(w, "{}", body.len());
            w.extend_from_slice(b"\r\n\r\n");
            w.extend_from_slice(body);
        } else {
            w.extend_from_slice(b"\r\n");
        }
        let r = self.io.write_all(&self.wbuf).await;
        if self.wbuf.capacity() > KEEP_BUF {
            self.wbuf = Vec::new();
        }
        r.map_err(|e| ClientError::Http(format!("sending the request: {e}")))
    }

    /// Reads into the free end of the read buffer (growing it when nearly full).
    /// Returns the bytes read, 0 at end of stream.
    async fn fill(&mut self) -> Result<usize, ClientError> {
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ {
            self.rbuf.reserve(self.rbuf.len().max(READ_BUF));
        }
        self.io
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| ClientError::Http(format!("reading the response: {e}")))
    }

    /// Gives back a read buffer that grew for a big response, once it is empty.
    fn shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_BUF {
            self.rbuf = BytesMut::new();
        }
    }

    /// Reads and parses the response head, skipping `1xx` responses. The head
    /// stays at the start of the read buffer.
    async fn read_head(&mut self, head_only: bool, upgrade: bool) -> Result<Head, ClientError> {
        loop {
            if let Some(head) = self.parse_head(head_only)? {
                if (100..200).contains(&head.status) && head.status != 101 {
                    // 100 Continue, 103 Early Hints: the real response follows.
                    self.rbuf.advance(head.len);
                    continue;
                }
                if head.status == 101 && !upgrade {
                    return Err(ClientError::Http(
                        "the server switched protocols (101) on a plain HTTP request".into(),
                    ));
                }
                return Ok(head);
            }
            if self.rbuf.len() >= MAX_HEAD {
                return Err(ClientError::HeadTooLarge(MAX_HEAD));
            }
            if self.fill().await? == 0 {
                return Err(ClientError::Http(if self.rbuf.is_empty() {
                    "connection closed before the response".into()
                } else {
                    "connection closed in the middle of the response head".into()
                }));
            }
        }
    }

    /// Parses the head at the start of the read buffer; `None` when incomplete.
    fn parse_head(&self, head_only: bool) -> Result<Option<Head>, ClientError> {
        let buf = &self.rbuf[..];
        if buf.is_empty() {
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(ClientError::Http(format!(
                    "malformed response head ({e}): {:?}",
                    String::from_utf8_lossy(&buf[..buf.len().min(64)])
                )));
            }
        };
        if len > MAX_HEAD {
            return Err(ClientError::HeadTooLarge(MAX_HEAD));
        }
        let status = resp.code.unwrap_or(0);
        let mut keep_alive = resp.version == Some(1);
        let mut length: Option<u64> = None;
        let mut chunked = None;
        let (mut etag, mut last_modified, mut ws_accept) = (None, None, None);
        let mut websocket = (false, false);
        let range_of = |v: &[u8]| {
            let start = v.as_ptr() as usize - buf.as_ptr() as usize;
            start..start + v.len()
        };
        for h in resp.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                for v in h.value.split(|&b| b == b',') {
                    let v = v.trim_ascii();
                    let n = std::str::from_utf8(v)
                        .ok()
                        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| {
                            ClientError::Http(format!(
                                "malformed content-length {:?}",
                                String::from_utf8_lossy(h.value)
                            ))
                        })?;
                    if length.is_some_and(|l| l != n) {
                        return Err(ClientError::Http(
                            "conflicting content-length headers".into(),
                        ));
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked when it is the last coding applied.
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    websocket.1 |= token.eq_ignore_ascii_case(b"upgrade");
                    if token.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && resp.version == Some(0) {
                        keep_alive = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("etag") {
                etag = Some(range_of(h.value));
            } else if name.eq_ignore_ascii_case("last-modified") {
                last_modified = Some(range_of(h.value));
            } else if name.eq_ignore_ascii_case("upgrade") {
                websocket.0 = h.value.trim_ascii().eq_ignore_ascii_case(b"websocket");
            } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
                ws_accept = Some(range_of(h.value.trim_ascii()));
            }
        }
        let framing = if head_only || (100..200).contains(&status) || status == 204 || status == 304
        {
            Framing::Empty
        } else {
            match (chunked, length) {
                (Some(true), _) => Framing::Chunked,
                (Some(false), _) => Framing::Close,
                (None, Some(0)) => Framing::Empty,
                (None, Some(n)) => Framing::Length(n),
                (None, None) => Framing::Close,
            }
        };
        if framing == Framing::Close {
            keep_alive = false;
        }
        Ok(Some(Head {
            status,
            websocket,
            ws_accept,
            len,
            framing,
            keep_alive,
            etag,
            last_modified,
        }))
    }

    /// Reads the whole body after `head`; returns where it is in the read buffer
    /// (a chunked body is moved together in place, over its framing).
    async fn read_body(&mut self, head: &Head) -> Result<Range<usize>, ClientError> {
        let start = head.len;
        match head.framing {
            Framing::Empty => {
                self.consumed = start;
                Ok(start..start)
            }
            Framing::Length(n) => {
                if n > MAX_BODY as u64 {
                    return Err(ClientError::BodyTooLarge(n, MAX_BODY));
                }
                let end = start + n as usize;
                if self.rbuf.len() < end {
                    self.rbuf.reserve(end - self.rbuf.len());
                }
                while self.rbuf.len() < end {
                    if self.fill().await? == 0 {
                        return Err(ClientError::Http(format!(
                            "connection closed in the middle of the body ({} of {n} bytes)",
                            self.rbuf.len() - start
                        )));
                    }
                }
                self.consumed = end;
                Ok(start..end)
            }
            Framing::Close => {
                loop {
                    if self.rbuf.len() - start > MAX_BODY {
                        return Err(ClientError::BodyTooLarge(
                            (self.rbuf.len() - start) as u64,
                            MAX_BODY,
                        ));
                    }
                    if self.fill().await? == 0 {
                        break;
                    }
                }
                self.consumed = self.rbuf.len();
                Ok(start..self.rbuf.len())
            }
            Framing::Chunked => {
                // Data is moved down to `end` as chunks are decoded from `pos` on.
                let mut chunked = Chunked::default();
                let (mut pos, mut end) = (start, start);
                loop {
                    let (used, data) = chunked.step(&self.rbuf[pos..])?;
                    if let Some(d) = data {
                        let len = d.end - d.start;
                        if end - start + len > MAX_BODY {
                            return Err(ClientError::BodyTooLarge(
                                (end - start + len) as u64,
                                MAX_BODY,
                            ));
                        }
                        self.rbuf.copy_within(pos + d.start..pos + d.end, end);
                        end += len;
                    }
                    pos += used;
                    if chunked.is_done() {
                        break;
                    }
                    if self.rbuf.len() - start > 2 * MAX_BODY {
                        // Framing (extensions, tiny chunks) far beyond the data.
                        return Err(ClientError::BodyTooLarge(
                            (self.rbuf.len() - start) as u64,
                            MAX_BODY,
                        ));
                    }
                    if used == 0 && self.fill().await? == 0 {
                        return Err(ClientError::Http(
                            "connection closed in the middle of a chunked body".into(),
                        ));
                    }
                }
                self.consumed = pos;
                Ok(start..end)
            }
        }
    }
}

/// Incremental decoder of `Transfer-Encoding: chunked` (RFC 9112 section 7.1):
/// sizes in hex, extensions ignored, trailers skipped (bounded), CRLF or bare LF.
#[derive(Clone, Copy, Debug, Default)]
struct Chunked {
    state: ChunkState,
    /// Bytes of trailer section seen (bounded like a head).
    trailer_bytes: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading the size; `digits` so far.
    #[default]
    SizeStart,
    Size {
        size: u64,
    },
    /// After the size: extension up to the end of the line.
    Ext {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section; `line_start` when at the start of a line.
    Trailer {
        line_start: bool,
    },
    TrailerLf {
        line_start: bool,
    },
    Done,
}

impl Chunked {
    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from the start of `input`: (bytes used, data found, as a range of
    /// `input`). Stops after one piece of data, at the end of the body, or when
    /// `input` is used up. (0, None) means more input is needed.
    fn step(&mut self, input: &[u8]) -> Result<(usize, Option<Range<usize>>), ClientError> {
        let bad = |what: &str| ClientError::Http(format!("malformed chunked body: {what}"));
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Done => break,
                ChunkState::SizeStart | ChunkState::Size { .. } => {
                    let size = match self.state {
                        ChunkState::Size { size } => Some(size),
                        _ => None,
                    };
                    if let Some(d) = (b as char).to_digit(16) {
                        let size = size
                            .unwrap_or(0)
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(d as u64))
                            .filter(|&s| s <= MAX_BODY as u64 * 16)
                            .ok_or_else(|| bad("chunk size too large"))?;
                        self.state = ChunkState::Size { size };
                    } else {
                        let size = size.ok_or_else(|| bad("no chunk size"))?;
                        self.state = match b {
                            b';' | b' ' | b'\t' => ChunkState::Ext { size },
                            b'\r' => ChunkState::SizeLf { size },
                            b'\n' => self.after_size(size),
                            _ => return Err(bad("invalid character in chunk size")),
                        };
                    }
                    i += 1;
                }
                ChunkState::Ext { size } => {
                    self.state = match b {
                        b'\r' => ChunkState::SizeLf { size },
                        b'\n' => self.after_size(size),
                        _ => ChunkState::Ext { size },
                    };
                    i += 1;
                }
                ChunkState::SizeLf { size } => {
                    if b != b'\n' {
                        return Err(bad("chunk size line not ended by CRLF"));
                    }
                    self.state = self.after_size(size);
                    i += 1;
                }
                ChunkState::Data { left } => {
                    let n = ((input.len() - i) as u64).min(left) as usize;
                    self.state = if n as u64 == left {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data {
                            left: left - n as u64,
                        }
                    };
                    return Ok((i + n, Some(i..i + n)));
                }
                ChunkState::DataCr => {
                    self.state = match b {
                        b'\r' => ChunkState::DataLf,
                        b'\n' => ChunkState::SizeStart,
                        _ => return Err(bad("chunk data longer than its size")),
                    };
                    i += 1;
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(bad("chunk data not ended by CRLF"));
                    }
                    self.state = ChunkState::SizeStart;
                    i += 1;
                }
                ChunkState::Trailer { line_start } => {
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_HEAD {
                        return Err(ClientError::HeadTooLarge(MAX_HEAD));
                    }
                    self.state = match b {
                        b'\r' => ChunkState::TrailerLf { line_start },
                        b'\n' if line_start => ChunkState::Done,
                        b'\n' => ChunkState::Trailer { line_start: true },
                        _ => ChunkState::Trailer { line_start: false },
                    };
                    i += 1;
                }
                ChunkState::TrailerLf { line_start } => {
                    if b != b'\n' {
                        return Err(bad("trailer line not ended by CRLF"));
                    }
                    self.state = if line_start {
                        ChunkState::Done
                    } else {
                        ChunkState::Trailer { line_start: true }
                    };
                    i += 1;
                }
            }
        }
        Ok((i, None))
    }

    fn after_size(&self, size: u64) -> ChunkState {
        if size == 0 {
            ChunkState::Trailer { line_start: true }
        } else {
            ChunkState::Data { left: size }
        }
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
        let mut conn = HttpConn::new(self.connect(counters).await?, &self.authority);
        // A 1 KiB read buffer, not tungstenite's 128 KiB: it zero-fills the buffer
        // before every read and keeps it resident per connection, which dominated the
        // load generator's CPU in WebSocket fan-out (docs/performance.md, profiles),
        // and it is most of an idle connection's memory. Event frames are small
        // (several fit); a larger frame gets a buffer of its own size.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUF)
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20));
        // The handshake is this module's HTTP client's: tungstenite's own keeps its
        // 4 KiB handshake read buffer as the connection's read buffer for good.
        let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
        let rest = tokio::time::timeout(Duration::from_secs(10), conn.upgrade(path, &key))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let HttpConn { io, .. } = conn;
        Ok(tokio_tungstenite::WebSocketStream::from_partially_read(
            io,
            rest,
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            Some(config),
        )
        .await)
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
                    &[("if-none-match", &b"\"abc\""[..])],
                    None,
                    Duration::from_secs(5),
                )
                .await
                .expect("request");
            assert_eq!(r.status, 200);
            assert_eq!(r.body, &RESPONSE[RESPONSE.len() - 40..]);
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

    /// A hand-written server for one connection: for each scripted response it
    /// reads one request head, then writes the response's pieces one at a time,
    /// pausing between them so that the client sees them in separate reads. After
    /// the script it closes (`close`) or waits for the client to close. Returns
    /// the request heads it read and the bytes it wrote.
    async fn scripted(
        script: Vec<Vec<Vec<u8>>>,
        close: bool,
    ) -> (Target, tokio::task::JoinHandle<(Vec<String>, usize)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            sock.set_nodelay(true).expect("nodelay");
            let (mut heads, mut written, mut pending) = (Vec::new(), 0, Vec::new());
            let mut buf = [0u8; 4096];
            for response in script {
                let end = loop {
                    if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return (heads, written);
                    }
                    pending.extend_from_slice(&buf[..n]);
                };
                heads.push(String::from_utf8_lossy(&pending[..end]).into_owned());
                pending.drain(..end);
                for piece in response {
                    if sock.write_all(&piece).await.is_err() {
                        return (heads, written);
                    }
                    written += piece.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            if !close {
                while sock.read(&mut buf).await.unwrap_or(0) > 0 {}
            }
            (heads, written)
        });
        let target = Target::parse(&format!("http://{addr}")).expect("valid base URL");
        (target, server)
    }

    fn pieces(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    async fn get<'a>(conn: &'a mut HttpConn, path: &str) -> Result<Response<'a>, ClientError> {
        conn.request(http::Method::GET, path, &[], None, Duration::from_secs(5))
            .await
    }

    #[tokio::test]
    async fn bodies_split_across_reads_on_one_kept_alive_connection() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let script = vec![
                // Content-Length, split inside the head and inside the body.
                pieces(&[
                    b"HTTP/1.1 200 OK\r\nconte",
                    b"nt-length: 11\r\netag: \"v1\"\r\n\r\nhel",
                    b"lo world",
                ]),
                // A 100 Continue first, then chunked, split everywhere, with an
                // extension and a trailer.
                pieces(&[
                    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
                    b"lo\r\n6;ext=1\r\n worl",
                    b"d\r\n0\r",
                    b"\nx-trailer: 1\r\n\r\n",
                ]),
                // 304: no body even with a content-length.
                pieces(&[b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n"]),
            ];
            let (target, server) = scripted(script, false).await;
            let counters = Arc::new(WireCounters::default());
            let mut conn = target.http(&counters).await.expect("connect");
            let r = get(&mut conn, "/a").await.expect("content-length response");
            assert_eq!((r.status, r.body, r.etag), (200, &b"hello world"[..], Some(&b"\"v1\""[..])));
            assert!(conn.is_usable());
            let r = get(&mut conn, "/b").await.expect("chunked response");
            assert_eq!((r.status, r.body), (200, &b"hello world"[..]));
            assert!(conn.is_usable());
            let r = conn
                .request(
                    http::Method::GET,
                    ReqPath::Cursor("/c?since=", 42, "&limit=5"),
                    &[("if-none-match", &b"\"v1\""[..])],
                    None,
                    Duration::from_secs(5),
                )
                .await
                .expect("304 response");
            assert_eq!((r.status, r.body), (304, &b""[..]));
            assert!(conn.is_usable());
            drop(conn);
            let (heads, written) = server.await.expect("server");
            assert_eq!(heads.len(), 3);
            assert!(heads[0].starts_with("GET /a HTTP/1.1\r\nhost: 127.0.0.1:"), "{}", heads[0]);
            assert!(
                heads[2].starts_with("GET /c?since=42&limit=5 HTTP/1.1\r\n")
                    && heads[2].contains("\r\nif-none-match: \"v1\"\r\n"),
                "{}",
                heads[2]
            );
            assert_eq!(counters.opened.load(Relaxed), 1, "one connection, kept alive");
            assert_eq!(counters.bytes_down.load(Relaxed), written as u64);
            let up: usize = heads.iter().map(|h| h.len()).sum();
            assert_eq!(counters.bytes_up.load(Relaxed), up as u64);
        })
        .await
        .expect("finishes within 10s");
    }

    #[tokio::test]
    async fn connection_close_and_close_delimited_bodies_end_the_connection() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let script = vec![pieces(&[
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            ])];
            let (target, server) = scripted(script, true).await;
            let counters = Arc::new(WireCounters::default());
            let mut conn = target.http(&counters).await.expect("connect");
            let r = get(&mut conn, "/").await.expect("response");
            assert_eq!((r.status, r.body), (200, &b"ok"[..]));
            assert!(!conn.is_usable(), "Connection: close is honoured");
            server.await.expect("server");

            // A foreign server with neither length nor chunks: the body ends at close.
            let script = vec![pieces(&[b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"the end"])];
            let (target, server) = scripted(script, true).await;
            let mut conn = target.http(&counters).await.expect("connect");
            let r = get(&mut conn, "/").await.expect("response");
            assert_eq!((r.status, r.body), (200, &b"until the end"[..]));
            assert!(!conn.is_usable());
            server.await.expect("server");
        })
        .await
        .expect("finishes within 10s");
    }

    #[tokio::test]
    async fn malformed_truncated_and_oversized_responses_are_clear_errors() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let counters = Arc::new(WireCounters::default());
            let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
                (
                    pieces(&[b"HTTP/1.1 abc OK\r\n\r\n"]),
                    "malformed response head",
                ),
                (pieces(&[b"SMTP ready\r\n\r\n"]), "malformed response head"),
                (
                    pieces(&[
                        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
                    ]),
                    "conflicting content-length",
                ),
                (
                    pieces(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"]),
                    "malformed chunked body",
                ),
                (
                    pieces(&[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]),
                    "closed in the middle of the body (5 of 10 bytes)",
                ),
                (
                    pieces(&[b"HTTP/1.1 200 OK\r\ncontent-"]),
                    "closed in the middle of the response head",
                ),
                (vec![], "closed before the response"),
            ];
            for (response, expected) in cases {
                let (target, server) = scripted(vec![response], true).await;
                let mut conn = target.http(&counters).await.expect("connect");
                let e = get(&mut conn, "/").await.expect_err("an error");
                assert_eq!(e.kind(), "http");
                assert!(
                    e.to_string().contains(expected),
                    "{e} (expected {expected:?})"
                );
                assert!(!conn.is_usable());
                drop(conn);
                server.await.expect("server");
            }

            // A head longer than the cap is refused, not buffered.
            let mut big = b"HTTP/1.1 200 OK\r\nx-pad: ".to_vec();
            big.resize(big.len() + 2 * MAX_HEAD, b'a');
            big.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
            let (target, server) = scripted(vec![vec![big]], true).await;
            let mut conn = target.http(&counters).await.expect("connect");
            let e = get(&mut conn, "/").await.expect_err("too large");
            assert!(matches!(e, ClientError::HeadTooLarge(MAX_HEAD)), "{e}");
            assert_eq!(
                e.to_string(),
                format!("http: response head longer than {MAX_HEAD} bytes")
            );
            drop(conn);
            server.await.expect("server");

            // A body longer than the cap is refused before it is read.
            let script = vec![pieces(&[
                b"HTTP/1.1 200 OK\r\ncontent-length: 999999999999\r\n\r\n",
            ])];
            let (target, server) = scripted(script, true).await;
            let mut conn = target.http(&counters).await.expect("connect");
            let e = get(&mut conn, "/").await.expect_err("too large");
            assert!(
                matches!(e, ClientError::BodyTooLarge(999_999_999_999, MAX_BODY)),
                "{e}"
            );
            drop(conn);
            server.await.expect("server");
        })
        .await
        .expect("finishes within 10s");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_the_connection_is_not_reused() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let script = vec![pieces(&[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"])];
            let (target, server) = scripted(script, false).await;
            let counters = Arc::new(WireCounters::default());
            let mut conn = target.http(&counters).await.expect("connect");
            let e = conn
                .request(
                    http::Method::GET,
                    "/",
                    &[],
                    None,
                    Duration::from_millis(300),
                )
                .await
                .expect_err("times out");
            assert!(matches!(e, ClientError::Timeout), "{e}");
            assert!(!conn.is_usable());
            drop(conn);
            server.await.expect("server");
        })
        .await
        .expect("finishes within 10s");
    }

    #[tokio::test]
    async fn a_streaming_body_is_read_incrementally() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let script = vec![pieces(&[
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
                b"f\r\nid: 1\ndata: a\n\n\r\nf\r\nid: 2\nda",
                b"ta: b\n\n\r",
                b"\n0\r\n\r\n",
            ])];
            let (target, server) = scripted(script, false).await;
            let counters = Arc::new(WireCounters::default());
            let mut conn = target.http(&counters).await.expect("connect");
            let status = conn
                .send(http::Method::GET, "/sse", &[("accept", &b"text/event-stream"[..])], None)
                .await
                .expect("head");
            assert_eq!(status, 200);
            let mut got = Vec::new();
            let mut reads = 0;
            while conn
                .read_stream(|d| {
                    got.extend_from_slice(d);
                    Ok(())
                })
                .await
                .expect("stream")
            {
                reads += 1;
            }
            assert_eq!(got, b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n");
            assert!(reads >= 2, "data handed over as it arrives ({reads} reads)");
            assert!(!conn.is_usable(), "a streamed connection is not reused");
            drop(conn);
            server.await.expect("server");
        })
        .await
        .expect("finishes within 10s");
    }

    #[tokio::test]
    async fn websocket_handshakes_that_fail_are_clear_errors() {
        tokio::time::timeout(Duration::from_secs(10), async {
            let counters = Arc::new(WireCounters::default());
            let cases: Vec<(&[u8], &str)> = vec![
                (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", "status 404"),
                (
                    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: bm90IHRoZSBrZXk=\r\n\r\n",
                    "websocket: Sec-WebSocket-Accept does not match",
                ),
                (
                    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: Upgrade\r\n\r\n",
                    "websocket: the 101 response lacks Upgrade",
                ),
            ];
            for (response, expected) in cases {
                let (target, server) = scripted(vec![pieces(&[response])], true).await;
                let e = target
                    .websocket(&counters, "/topics/t/ws")
                    .await
                    .expect_err("refused");
                assert!(e.to_string().starts_with(expected), "{e} (expected {expected:?})");
                let (heads, _) = server.await.expect("server");
                assert!(
                    heads[0].starts_with("GET /topics/t/ws HTTP/1.1\r\n")
                        && heads[0].contains("\r\nupgrade: websocket\r\n")
                        && heads[0].contains("\r\nsec-websocket-version: 13\r\n"),
                    "{}",
                    heads[0]
                );
            }
        })
        .await
        .expect("finishes within 10s");
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
