//! Test harness shared by the integration tests: a server on `127.0.0.1:0`, a raw
//! HTTP/1.1 client that returns exactly what arrived on the socket, an SSE reader,
//! WebSocket clients (tokio-tungstenite, and a raw one for frames a polite client
//! would never send), and `/metrics` scraping.
//!
//! The raw client is deliberate: a client library would hide the bytes under test
//! (status lines, header values, chunk boundaries, premature closes).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use pushbench_protocol::wire::{SseItem, SseParser};
use pushbench_server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Every test body runs under this limit.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` under [`LIMIT`], failing the test if it takes longer.
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("the test did not finish within its time limit")
}

/// A config with short intervals so tests stay fast.
pub fn fast_config() -> Config {
    Config {
        shutdown_deadline: Duration::from_secs(2),
        ..Config::default()
    }
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Cancel to shut it down.
    pub shutdown: CancellationToken,
    /// The `run` task.
    pub task: Option<JoinHandle<()>>,
    /// The server (for its counters).
    pub server: Server,
}

impl TestServer {
    /// Starts `Server::new(config)` on `127.0.0.1:0`.
    pub async fn start(config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = Server::new(config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.clone().run(listener, shutdown.clone()));
        TestServer {
            addr,
            shutdown,
            task: Some(task),
            server,
        }
    }

    /// Starts shutdown and waits (bounded) for `run` to return.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("run returned within 10 s of shutdown")
                .expect("run did not panic");
        }
    }

    /// A new TCP connection.
    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }

    /// One request on its own connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut c = self.connect().await;
        c.send(&request_bytes(method, path, headers, Some(body)))
            .await;
        c.read_response(method == "HEAD").await
    }

    /// `GET path` with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut c = self.connect().await;
        c.send(&request_bytes("GET", path, headers, None)).await;
        c.read_response(false).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[]).await
    }

    /// `POST path` with a body.
    pub async fn post(&self, path: &str, body: &[u8]) -> Resp {
        self.request("POST", path, &[], body).await
    }

    /// Publishes `body` to `topic` and returns the seq, asserting 201.
    pub async fn publish(&self, topic: &str, body: &str) -> u64 {
        let r = self
            .post(&format!("/topics/{topic}/events"), body.as_bytes())
            .await;
        assert_eq!(r.status, 201, "publish answered {}", r.text());
        r.json()["seq"].as_u64().expect("seq is a number")
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics").await;
        assert_eq!(r.status, 200);
        r.text()
    }

    /// One sample of `/metrics` (`name` or `name{labels}`), exactly as named.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics().await, name)
            .unwrap_or_else(|| panic!("/metrics has no sample {name}"))
    }

    /// Polls `/metrics` until `name` reaches at least `min`.
    pub async fn wait_metric(&self, name: &str, min: f64) -> f64 {
        loop {
            let v = self.metric(name).await;
            if v >= min {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens an SSE stream and checks it was answered 200.
    pub async fn sse(&self, path: &str, headers: &[(&str, &str)]) -> Sse {
        let sse = self.sse_raw(path, headers).await;
        assert_eq!(
            sse.head.status, 200,
            "SSE open answered {}",
            sse.head.status
        );
        sse
    }

    /// Opens an SSE stream, whatever the status.
    pub async fn sse_raw(&self, path: &str, headers: &[(&str, &str)]) -> Sse {
        Sse::open(self.connect().await, path, headers).await
    }

    /// Opens an SSE stream on a socket with a small receive buffer.
    pub async fn sse_small(&self, path: &str) -> Sse {
        Sse::open(Conn::connect_small(self.addr).await, path, &[]).await
    }
}

impl Sse {
    /// Sends a stream request on `conn` (a new one, or one that already served
    /// requests) and reads the response head.
    pub async fn open(mut conn: Conn, path: &str, headers: &[(&str, &str)]) -> Sse {
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        conn.send(&request_bytes("GET", path, &all, None)).await;
        let head = conn.read_head().await;
        Sse::started(conn, head)
    }

    /// A stream whose response head was read from `conn`.
    pub fn started(conn: Conn, head: Head) -> Sse {
        Sse {
            conn,
            head,
            parser: SseParser::new(1 << 20),
            items: VecDeque::new(),
            end: None,
        }
    }
}

impl TestServer {
    /// A tokio-tungstenite client on `path` (e.g. `/topics/t/ws?since=0`).
    pub async fn ws(&self, path: &str) -> Ws {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let url = format!("ws://{}{path}", self.addr);
        let (ws, res) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("WebSocket handshake");
        assert_eq!(res.status(), 101);
        ws
    }

    /// A raw WebSocket after a hand-written handshake (101 checked), on a socket
    /// with a small receive buffer.
    pub async fn raw_ws(&self, path: &str) -> RawWs {
        let mut conn = Conn::connect_small(self.addr).await;
        conn.send(&ws_upgrade_bytes(path, &[])).await;
        let head = conn.read_head().await;
        assert_eq!(head.status, 101, "upgrade answered {}", head.status);
        assert_eq!(
            head.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "accept key of RFC 6455's example"
        );
        RawWs { conn }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A request as bytes; `Content-Length` is added when a body is given.
pub fn request_bytes(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        out.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    bytes
}

/// The RFC 6455 example key; its accept value is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket upgrade request with the standard headers, then `extra`.
pub fn ws_upgrade_bytes(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut h = vec![
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", WS_KEY),
        ("Sec-WebSocket-Version", "13"),
    ];
    h.extend_from_slice(extra);
    request_bytes("GET", path, &h, None)
}

/// Finds the value of a sample in Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == name).then(|| v.parse().expect("a sample value is a number"))
    })
}

/// A response head.
#[derive(Debug, Clone)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The head's bytes as received.
    pub raw: Vec<u8>,
}

impl Head {
    /// The headers but `date`, which changes by the second.
    pub fn without_date(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(k, _)| k != "date")
            .cloned()
            .collect()
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies de-chunked), byte for byte.
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// Asserts the JSON error shape with this status and code; returns the body.
    pub fn assert_error(&self, status: u16, code: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "errors are JSON"
        );
        let v = self.json();
        assert_eq!(v["error"], code, "body: {}", self.text());
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "errors carry a detail: {v}"
        );
        v
    }
}

/// One piece of a chunked body.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// A data chunk.
    Data(Vec<u8>),
    /// The terminal zero-length chunk: the body ended cleanly.
    End,
    /// The connection closed (or was reset) in the middle of the body.
    Cut,
}

/// A client TCP connection with a read buffer.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Wraps a connected socket.
    pub fn from_stream(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects with a small receive buffer, so a client that does not read
    /// pushes back on the server quickly.
    pub async fn connect_small(addr: SocketAddr) -> Conn {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connect");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads whatever arrives next (at least one byte); empty at EOF.
    pub async fn read_some(&mut self) -> Vec<u8> {
        if self.buf.is_empty() {
            self.fill().await;
        }
        std::mem::take(&mut self.buf)
    }

    /// Writes all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Writes all of `bytes`, tolerating a server that already closed.
    pub async fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Reads more into the buffer; 0 on EOF or error.
    async fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp).await {
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                n
            }
            Err(_) => 0,
        }
    }

    /// Takes `n` bytes, reading as needed; `None` if the connection ends first.
    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await == 0 {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    async fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Some(line[..i].to_vec());
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Reads a response head, or `None` if the connection closes first.
    pub async fn try_read_head(&mut self) -> Option<Head> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.fill().await == 0 {
                return None;
            }
        };
        let raw: Vec<u8> = self.buf.drain(..end).collect();
        let text = String::from_utf8(raw.clone()).expect("response head is ASCII");
        let mut lines = text.split("\r\n");
        let status_line = lines.next().expect("status line");
        let mut parts = status_line.splitn(3, ' ');
        assert!(
            matches!(parts.next(), Some("HTTP/1.1" | "HTTP/1.0")),
            "status line {status_line:?}"
        );
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap_or_else(|| panic!("header {l:?}"));
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        Some(Head {
            status,
            headers,
            raw,
        })
    }

    /// Reads a response head.
    pub async fn read_head(&mut self) -> Head {
        self.try_read_head()
            .await
            .expect("the server closed the connection before answering")
    }

    /// Reads one chunk of a chunked body.
    pub async fn read_chunk(&mut self) -> Chunk {
        let Some(size_line) = self.line().await else {
            return Chunk::Cut;
        };
        let size_text = String::from_utf8_lossy(&size_line);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("chunk size line {size_text:?}"));
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            loop {
                match self.line().await {
                    None => return Chunk::Cut,
                    Some(l) if l.is_empty() => return Chunk::End,
                    Some(_) => {}
                }
            }
        }
        let Some(data) = self.take(size).await else {
            return Chunk::Cut;
        };
        match self.take(2).await {
            Some(crlf) => assert_eq!(crlf, b"\r\n", "chunk ends with CRLF"),
            None => return Chunk::Cut,
        }
        Chunk::Data(data)
    }

    /// Reads a whole response (the body per Content-Length, chunking, or to EOF).
    pub async fn read_response(&mut self, head_request: bool) -> Resp {
        let head = self.read_head().await;
        let body = self.read_body(&head, head_request).await;
        Resp {
            status: head.status,
            headers: head.headers,
            body,
        }
    }

    /// Reads the body that follows `head`.
    pub async fn read_body(&mut self, head: &Head, head_request: bool) -> Vec<u8> {
        if head_request || head.status < 200 || head.status == 204 || head.status == 304 {
            return Vec::new();
        }
        if head.chunked() {
            let mut body = Vec::new();
            loop {
                match self.read_chunk().await {
                    Chunk::Data(d) => body.extend_from_slice(&d),
                    Chunk::End => return body,
                    Chunk::Cut => panic!("chunked body cut off after {} bytes", body.len()),
                }
            }
        }
        if let Some(len) = head.header("content-length") {
            let len: usize = len.parse().expect("Content-Length is a number");
            return self
                .take(len)
                .await
                .expect("the connection closed inside the body");
        }
        self.read_to_end().await
    }

    /// Everything until the server closes (or resets) the connection.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Waits until the server closes the connection (EOF or reset), discarding data.
    pub async fn wait_closed(&mut self) {
        while self.fill().await > 0 {
            self.buf.clear();
        }
    }

    /// True when nothing arrives (and the connection stays open) for `d`.
    pub async fn quiet_for(&mut self, d: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut tmp = [0u8; 1024];
        match tokio::time::timeout(d, self.stream.read(&mut tmp)).await {
            Err(_) => true,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&tmp[..n]);
                false
            }
            Ok(Err(_)) => false,
        }
    }
}

/// An SSE stream read through [`SseParser`].
pub struct Sse {
    /// The connection.
    pub conn: Conn,
    /// The response head.
    pub head: Head,
    parser: SseParser,
    items: VecDeque<SseItem>,
    /// How the body ended, once it has.
    pub end: Option<Chunk>,
}

impl Sse {
    /// The next item; `None` once the stream has ended (see [`Sse::end`]).
    pub async fn next(&mut self) -> Option<SseItem> {
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(item);
            }
            if self.end.is_some() {
                return None;
            }
            match self.conn.read_chunk().await {
                Chunk::Data(d) => {
                    let mut out = Vec::new();
                    self.parser.feed(&d, &mut out).expect("valid SSE");
                    self.items.extend(out);
                }
                other => self.end = Some(other),
            }
        }
    }

    /// The next dispatched event as `(id, event type, data)`, skipping comments and
    /// `retry:`; `None` once the stream has ended.
    pub async fn next_event(&mut self) -> Option<(Option<String>, Option<String>, String)> {
        loop {
            match self.next().await? {
                SseItem::Event { id, event, data } => return Some((id, event, data)),
                SseItem::Comment(_) | SseItem::Retry(_) => {}
            }
        }
    }

    /// The next event, which must be a message with `id: seq`; returns its data.
    pub async fn expect_event(&mut self, seq: u64) -> String {
        let (id, event, data) = self.next_event().await.expect("the stream ended early");
        assert_eq!(
            id.as_deref(),
            Some(seq.to_string().as_str()),
            "id of {data}"
        );
        assert_eq!(event, None, "a plain message");
        data
    }
}

/// A tokio-tungstenite client.
pub type Ws = WebSocketStream<TcpStream>;

/// The next message that is not a ping or pong frame; `None` when the stream ends.
pub async fn ws_next(ws: &mut Ws) -> Option<Message> {
    loop {
        match ws.next().await? {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => return Some(m),
            Err(e) => panic!("WebSocket error: {e}"),
        }
    }
}

/// A raw WebSocket connection (client side): frames written and read by hand.
pub struct RawWs {
    /// The connection after the 101.
    pub conn: Conn,
}

/// A frame read by [`RawWs::read_frame`].
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// Payload (unmasked).
    pub payload: Vec<u8>,
}

impl Frame {
    /// For a close frame: the code and reason.
    pub fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, 8, "expected a close frame, got {self:?}");
        assert!(self.payload.len() >= 2, "close frame with a code");
        (
            u16::from_be_bytes([self.payload[0], self.payload[1]]),
            String::from_utf8_lossy(&self.payload[2..]).into_owned(),
        )
    }
}

impl RawWs {
    /// Encodes one frame; `mask` is required of clients by RFC 6455.
    pub fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        let mbit = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mbit | n as u8),
            n if n <= 0xffff => {
                out.push(mbit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mbit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(m) => {
                out.extend_from_slice(&m);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// Sends a masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        let f = RawWs::frame(true, opcode, Some([0x12, 0x34, 0x56, 0x78]), payload);
        self.conn.send(&f).await;
    }

    /// Reads one frame from the server; `None` when the connection ends.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        let h = self.conn.take(2).await?;
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let len = match h[1] & 0x7f {
            126 => u16::from_be_bytes(self.conn.take(2).await?.try_into().ok()?) as usize,
            127 => u64::from_be_bytes(self.conn.take(8).await?.try_into().ok()?) as usize,
            n => n as usize,
        };
        let payload = self.conn.take(len).await?;
        Some(Frame {
            fin: h[0] & 0x80 != 0,
            opcode: h[0] & 0x0f,
            payload,
        })
    }

    /// Reads frames until a close frame, skipping others; panics if the
    /// connection ends without one.
    pub async fn read_close(&mut self) -> (u16, String) {
        loop {
            let f = self
                .read_frame()
                .await
                .expect("the connection ended without a close frame");
            if f.opcode == 8 {
                return f.close();
            }
        }
    }
}

/// Reads an SSE stream until event `last` arrives; returns `(seq, data)` of every
/// event, in arrival order. Heartbeats and `retry:` are skipped; a gap is an error.
pub async fn collect_sse(sse: &mut Sse, last: u64) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    while got.last().is_none_or(|(seq, _)| *seq < last) {
        let (id, event, data) = sse
            .next_event()
            .await
            .unwrap_or_else(|| panic!("the stream ended after {} events", got.len()));
        assert_eq!(event, None, "no gap expected: {data}");
        let seq = id
            .expect("events carry an id")
            .parse()
            .expect("id is a seq");
        got.push((seq, data));
    }
    got
}

/// Reads a WebSocket until event `last` arrives; returns `(seq, data)` of every
/// event, text or binary, in arrival order.
pub async fn collect_ws(ws: &mut Ws, last: u64) -> Vec<(u64, String)> {
    use pushbench_protocol::wire::{ServerMessage, decode_binary, decode_text};
    let mut got = Vec::new();
    while got.last().is_none_or(|(seq, _)| *seq < last) {
        let msg = ws_next(ws)
            .await
            .unwrap_or_else(|| panic!("the socket ended after {} events", got.len()));
        let decoded = match &msg {
            Message::Text(t) => decode_text(t.as_str()).expect("decodes"),
            Message::Binary(b) => decode_binary(b).expect("decodes"),
            other => panic!("unexpected {other:?}"),
        };
        match decoded {
            ServerMessage::Event { seq, data } => {
                got.push((seq, String::from_utf8(data.to_vec()).expect("UTF-8 JSON")));
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
    got
}

/// Publishes each body in turn on one keep-alive connection, pipelining up to 64
/// requests at a time (HTTP/1.1 answers them in order); returns the seqs.
pub async fn publish_all(
    addr: SocketAddr,
    topic: &str,
    bodies: impl IntoIterator<Item = String>,
) -> Vec<u64> {
    let mut c = Conn::connect(addr).await;
    let path = format!("/topics/{topic}/events");
    let mut seqs = Vec::new();
    let mut bodies = bodies.into_iter().peekable();
    while bodies.peek().is_some() {
        let mut batch = Vec::new();
        let mut n = 0;
        for body in bodies.by_ref().take(64) {
            batch.extend_from_slice(&request_bytes("POST", &path, &[], Some(body.as_bytes())));
            n += 1;
        }
        c.send(&batch).await;
        for _ in 0..n {
            let r = c.read_response(false).await;
            assert_eq!(r.status, 201, "publish answered {}", r.text());
            seqs.push(r.json()["seq"].as_u64().expect("seq"));
        }
    }
    seqs
}
