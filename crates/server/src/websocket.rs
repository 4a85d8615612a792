//! WebSocket: `GET /topics/{t}/ws?since=N&format=text|binary`.
//!
//! One task per socket, no split halves: a `biased` select over shutdown, incoming
//! frames, the ping timer, the pong deadline and "the log grew". Incoming frames
//! come first, so a busy topic never starves pongs or client pings. Events go out in
//! batches (`feed` several frames, one `flush`), each batch bounded by
//! `--slow-consumer-timeout`; the frame payloads are the log's shared encodings.
//!
//! Close codes: 1000 the client closed; 1001 server shutting down; 1002 protocol
//! error; 1007 invalid UTF-8; 1008 slow consumer; 1009 message too big;
//! 4000 heartbeat timeout (no pong within `--ws-pong-timeout`).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pushbench_protocol::wire::ClientMessage;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::conn::Io;
use crate::liveness::Watched;
use crate::metrics::Strategy;
use crate::reply::{ApiError, Body, empty};
use crate::routes::{Ctx, check_origin, check_token};
use crate::topic::{Read, Topic};

/// Events read from the log per batch.
const BATCH: usize = 256;
/// Bytes fed per batch before a flush.
const BATCH_BYTES: usize = 256 * 1024;
/// tungstenite's read buffer per socket, and the most read per `read` call. Clients
/// send pongs, pings and small publishes; a larger message still arrives whole (the
/// buffer grows to the message), in more reads. tungstenite zero-fills the buffer
/// before reading, so all of it is resident for every connection.
const WS_READ_BUFFER: usize = 1024;
/// Time given to a close handshake before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How events are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text frames `{"seq":N,"data":...}`.
    Text,
    /// Binary envelopes `0x01, seq u64 BE, data`.
    Binary,
}

impl Format {
    /// `format=text|binary`, default text.
    pub fn parse(s: Option<&str>) -> Result<Format, ApiError> {
        match s {
            None | Some("text") => Ok(Format::Text),
            Some("binary") => Ok(Format::Binary),
            Some(other) => Err(ApiError::bad_request(
                "bad_format",
                format!("format {other:?} is not known: use format=text or format=binary"),
            )),
        }
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks the upgrade request and answers `101`, then serves the socket in a task.
pub fn handle(
    mut req: Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
    since: Option<u64>,
    format: Format,
) -> Result<Response<Body>, ApiError> {
    check_origin(&ctx.app, req.headers())?;
    let h = req.headers();
    if !has_token(h, header::UPGRADE, "websocket") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "this endpoint speaks WebSocket: connect with a WebSocket client (Upgrade: websocket); for plain HTTP use /events or /sse",
        )
        .header(header::UPGRADE, "websocket"));
    }
    if !has_token(h, header::CONNECTION, "upgrade") {
        return Err(ApiError::bad_request(
            "bad_upgrade",
            "a WebSocket handshake needs the header Connection: Upgrade",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "bad_websocket_version",
            "only WebSocket version 13 (RFC 6455) is spoken: send Sec-WebSocket-Version: 13",
        )
        .header(header::SEC_WEBSOCKET_VERSION, "13"));
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec())
        .filter(|k| {
            k.len() == 24
                && k.ends_with(b"==")
                && k[..22]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_websocket_key",
                "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters)",
            )
        })?;
    let can_publish = check_token(&ctx.app, h).is_ok();
    let topic = ctx.app.topic(topic)?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ctx2 = ctx.clone();
    ctx.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // Clients send small messages (pings, publishes): a 1 KiB read buffer,
                // not tungstenite's 128 KiB, which it zero-fills before every read and
                // which stays resident per connection (docs/performance.md, profiles).
                let config = WebSocketConfig::default()
                    .read_buffer_size(WS_READ_BUFFER)
                    .max_message_size(Some(ctx2.app.config.max_body))
                    .max_frame_size(Some(ctx2.app.config.max_body));
                // Take the TCP stream back from hyper: the session sets its send buffer
                // and watches its writes (see liveness.rs).
                let Ok(parts) = upgraded.downcast::<TokioIo<Io>>() else {
                    tracing::warn!("upgraded connection is not a TCP stream; dropping it");
                    return;
                };
                let Some(tcp) = parts.io.into_inner().into_tcp() else {
                    return;
                };
                // Whatever the client sent after its handshake, copied: hyper hands it
                // over as a view of its 8 KiB read buffer, which would otherwise stay
                // allocated for the life of the socket (docs/performance.md, profiles).
                let pre_read = parts.read_buf.to_vec();
                drop(parts.read_buf);
                let send_buffer = ctx2.app.config.ws_send_buffer;
                if send_buffer > 0
                    && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(send_buffer)
                {
                    tracing::debug!("could not set the WebSocket send buffer: {e}");
                }
                let ws = WebSocketStream::from_partially_read(
                    Watched::new(tcp),
                    pre_read,
                    Role::Server,
                    Some(config),
                )
                .await;
                Session {
                    ctx: ctx2,
                    topic,
                    format,
                    can_publish,
                }
                .run(ws, since)
                .await;
            }
            Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
        }
    });
    let mut res = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(&key)).expect("base64 is a valid header value"),
    );
    Ok(res)
}

type Ws = WebSocketStream<Watched<TcpStream>>;

struct Session {
    ctx: Ctx,
    topic: Arc<Topic>,
    format: Format,
    can_publish: bool,
}

/// Why the session ends.
enum End {
    /// Close the socket with this code and reason.
    Close(CloseCode, String),
    /// Drop the socket without a close handshake (peer gone or not draining).
    Drop,
}

impl Session {
    async fn run(self, mut ws: Ws, since: Option<u64>) {
        let _conn = self.ctx.guard.clone();
        let metrics = &self.ctx.app.metrics;
        let _open = metrics.open(Strategy::WebSocket);
        let end = self.serve(&mut ws, since).await;
        match end {
            End::Close(code, reason) => {
                tracing::debug!(?code, %reason, "closing WebSocket");
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = timeout(CLOSE_GRACE, async {
                    if ws.close(Some(frame)).await.is_ok() {
                        // Wait for the peer's close frame (or the end) so it is not reset.
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                })
                .await;
            }
            End::Drop => {}
        }
    }

    async fn serve(&self, ws: &mut Ws, since: Option<u64>) -> End {
        let cfg = &self.ctx.app.config;
        let metrics = &self.ctx.app.metrics;
        let mut grew = self.topic.subscribe();
        let mut cursor = since.unwrap_or_else(|| self.topic.last_seq());
        let mut resumed = false;
        let mut pings = tokio::time::interval_at(Instant::now() + cfg.ws_ping, cfg.ws_ping);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When the unanswered ping went out; any frame from the peer clears it.
        let mut ping_sent: Option<Instant> = None;
        // Made once, not per wake-up: each `cancelled()` future registers with a
        // server-wide token, a lock shared by every connection.
        let (hard_stop, shutdown) = (
            self.ctx.hard_stop.cancelled(),
            self.ctx.shutdown.cancelled(),
        );
        tokio::pin!(hard_stop, shutdown);
        loop {
            grew.borrow_and_update();
            let caught_up = match self.topic.read(Some(cursor), BATCH).0 {
                Read::Events(evs) => {
                    resumed = true;
                    match self.send_batch(ws, &evs).await {
                        Ok(()) => cursor = evs.last().map_or(cursor, |e| e.seq),
                        Err(end) => return end,
                    }
                    false
                }
                Read::Gap(g) => {
                    metrics.gaps.fetch_add(1, Relaxed);
                    let notice = match self.format {
                        Format::Text => Message::Text(
                            Utf8Bytes::try_from(g.to_json()).expect("gap JSON is ASCII"),
                        ),
                        Format::Binary => Message::Binary(g.to_binary()),
                    };
                    if let Err(end) = self.send(ws, notice).await {
                        return end;
                    }
                    if resumed {
                        metrics.slow_consumer_closes.fetch_add(1, Relaxed);
                        return End::Close(
                            CloseCode::Policy,
                            format!(
                                "slow consumer: fell out of the retained log (cursor {}, oldest retained {})",
                                g.requested, g.first_seq
                            ),
                        );
                    }
                    // Go on from the oldest event kept (not 0: once the log has
                    // wrapped, 0 is itself outside it and would read as a second gap).
                    cursor = g.first_seq - 1;
                    resumed = true;
                    false
                }
                Read::CaughtUp => {
                    resumed = true;
                    true
                }
            };
            // A peer whose TCP acknowledged data since the ping is alive but behind:
            // its pong waits behind that data, so the deadline runs from the last proof.
            let pong_due = ping_sent.map(|sent| pong_deadline(ws, sent, cfg.ws_pong_timeout));
            tokio::select! {
                biased;
                _ = &mut hard_stop => return End::Drop,
                _ = &mut shutdown => {
                    return End::Close(CloseCode::Away, "server shutting down".into());
                }
                incoming = ws.next() => {
                    ping_sent = None;
                    match incoming {
                        None => return End::Drop,
                        Some(Ok(msg)) => {
                            if let Err(end) = self.on_message(ws, msg).await {
                                return end;
                            }
                        }
                        Some(Err(e)) => return read_error(e, cfg.max_body),
                    }
                }
                _ = pings.tick() => {
                    if ping_sent.is_none() {
                        let sent = Instant::now();
                        if let Err(end) = self.send(ws, Message::Ping(Default::default())).await {
                            return end;
                        }
                        ping_sent = Some(sent);
                    }
                }
                _ = sleep_until(pong_due.unwrap_or_else(Instant::now)), if pong_due.is_some() => {
                    let sent = ping_sent.unwrap_or_else(Instant::now);
                    if pong_deadline(ws, sent, cfg.ws_pong_timeout) > Instant::now() {
                        // Proof of life arrived while we slept: wait again from it.
                        continue;
                    }
                    metrics.heartbeat_timeouts.fetch_add(1, Relaxed);
                    return End::Close(
                        CloseCode::Library(4000),
                        format!("heartbeat timeout: no pong within {:?}", cfg.ws_pong_timeout),
                    );
                }
                changed = grew.changed(), if caught_up => {
                    if changed.is_err() {
                        return End::Close(CloseCode::Away, "topic closed".into());
                    }
                }
                _ = std::future::ready(()), if !caught_up => {}
            }
        }
    }

    async fn on_message(&self, ws: &mut Ws, msg: Message) -> Result<(), End> {
        match msg {
            Message::Text(text) => match ClientMessage::decode(&text) {
                Ok(ClientMessage::Ping) => self.send(ws, Message::text("pong")).await,
                Ok(ClientMessage::Publish(data)) if self.can_publish => {
                    self.topic.publish(data);
                    self.ctx.app.metrics.events_published.fetch_add(1, Relaxed);
                    Ok(())
                }
                Ok(ClientMessage::Publish(_)) => {
                    self.send_error(ws, "unauthorized", "publishing needs the server's --publish-token: send Authorization: Bearer <token> with the upgrade request").await
                }
                Err(e) => self.send_error(ws, "bad_message", &e.to_string()).await,
            },
            Message::Binary(_) => {
                self.send_error(
                    ws,
                    "unsupported",
                    "binary messages from clients are not accepted: send the text \"ping\" or {\"type\":\"publish\",\"data\":<json>}",
                )
                .await
            }
            // tungstenite queued the pong; flush it out now.
            Message::Ping(_) => self.flush(ws).await,
            Message::Pong(_) | Message::Frame(_) => Ok(()),
            Message::Close(_) => {
                // tungstenite answered the close; drive it out, then we are done.
                let _ = timeout(CLOSE_GRACE, ws.flush()).await;
                Err(End::Drop)
            }
        }
    }

    async fn send_error(&self, ws: &mut Ws, code: &str, detail: &str) -> Result<(), End> {
        let body = serde_json::json!({"type": "error", "error": code, "detail": detail});
        self.send(ws, Message::text(body.to_string())).await
    }

    async fn send(&self, ws: &mut Ws, msg: Message) -> Result<(), End> {
        self.write(ws.send(msg)).await
    }

    async fn flush(&self, ws: &mut Ws) -> Result<(), End> {
        self.write(ws.flush()).await
    }

    /// Runs a write under the slow-consumer timeout, and drops the socket at once
    /// when the shutdown deadline passes: a socket that does not drain cannot take
    /// a close frame, and the session must not outlive `Server::run` by the
    /// (possibly much longer) slow-consumer timeout.
    async fn write(&self, write: impl Future<Output = Result<(), WsError>>) -> Result<(), End> {
        tokio::select! {
            written = timeout(self.ctx.app.config.slow_consumer_timeout, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Drop),
                Err(_) => Err(self.slow()),
            },
            _ = self.ctx.hard_stop.cancelled() => Err(End::Drop),
        }
    }

    fn slow(&self) -> End {
        self.ctx
            .app
            .metrics
            .slow_consumer_closes
            .fetch_add(1, Relaxed);
        tracing::info!("dropping a slow WebSocket consumer: its socket did not drain");
        End::Drop
    }

    /// Feeds a batch of shared frames and flushes once, all within the slow-consumer timeout.
    async fn send_batch(&self, ws: &mut Ws, evs: &[Arc<crate::topic::Stored>]) -> Result<(), End> {
        let metrics = &self.ctx.app.metrics;
        self.write(async {
            // Counted once per flush, not per frame: the counters are shared by
            // every connection, and this runs for every subscriber of every event.
            let (mut pending_n, mut pending) = (0u64, 0usize);
            for e in evs {
                let msg = match self.format {
                    Format::Text => Message::Text(e.ws_text().clone()),
                    Format::Binary => Message::Binary(e.binary().clone()),
                };
                pending += msg.len();
                pending_n += 1;
                ws.feed(msg).await?;
                if pending >= BATCH_BYTES {
                    ws.flush().await?;
                    metrics.delivered(Strategy::WebSocket, pending_n, pending as u64);
                    (pending_n, pending) = (0, 0);
                }
            }
            ws.flush().await?;
            metrics.delivered(Strategy::WebSocket, pending_n, pending as u64);
            Ok(())
        })
        .await
    }
}

/// When a ping sent at `sent` and still unanswered becomes a heartbeat timeout: the
/// pong timeout counts from the ping, or from the last proof that the peer's TCP
/// acknowledged data (see liveness.rs), whichever is later.
fn pong_deadline(ws: &Ws, sent: Instant, pong_timeout: Duration) -> Instant {
    let proof = ws.get_ref().drained_at().filter(|d| *d > sent);
    proof.unwrap_or(sent) + pong_timeout
}

fn read_error(e: WsError, max: usize) -> End {
    match e {
        WsError::Capacity(c) => End::Close(
            CloseCode::Size,
            format!("message too big ({c}): the limit is {max} bytes (--max-body)"),
        ),
        WsError::Protocol(p) => End::Close(CloseCode::Protocol, format!("protocol error: {p}")),
        WsError::Utf8(_) => End::Close(CloseCode::Invalid, "text frame is not valid UTF-8".into()),
        _ => End::Drop,
    }
}
