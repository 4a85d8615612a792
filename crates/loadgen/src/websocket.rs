//! WebSocket: one frame per event, text or binary envelope. With `heartbeat`, the
//! client sends the application ping `"ping"` every interval and declares the peer
//! dead after `heartbeat_misses` unanswered pings (browsers cannot send ping frames,
//! and without this a half-open connection is never noticed); it then reconnects
//! with exponential backoff and jitter, with `?since=` the last seq when `resume`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pushbench_protocol::wire::{ServerMessage, decode_binary, decode_text};
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::Backoff;
use crate::client::{ClientCtx, Streaming, bootstrap_cursor, stay_connected};
use crate::connect::{ClientError, WsStream};
use crate::recorder::ClientRecorder;
use crate::scenario::WsFormat;

/// WebSocket options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WsOpts {
    pub(crate) format: WsFormat,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) heartbeat_misses: u32,
    pub(crate) resume: bool,
    /// Pause after each frame: a slow consumer whose socket fills up.
    pub(crate) read_delay: Option<Duration>,
}

/// Runs one WebSocket client until the run ends; returns its recorder.
pub(crate) async fn run(
    mut ctx: ClientCtx,
    mut rec: ClientRecorder,
    opts: WsOpts,
) -> ClientRecorder {
    let mut client = WsClient {
        opts,
        last_seq: None,
    };
    // Boxed at its own size: the task that runs a client is as large as the
    // largest strategy's future (4.8 KB), which every idle socket would pay.
    Box::pin(stay_connected(&mut ctx, &mut rec, &mut client)).await;
    rec
}

struct WsClient {
    opts: WsOpts,
    /// The last seq received: the `since` of a resume.
    last_seq: Option<u64>,
}

impl Streaming for WsClient {
    fn ended(&self) -> ClientError {
        ClientError::WebSocket("closed by server".into())
    }

    async fn attempt<'a>(
        &'a mut self,
        ctx: &'a ClientCtx,
        rec: &'a mut ClientRecorder,
        backoff: &'a mut Backoff,
        connected: &'a mut bool,
    ) -> Result<(), ClientError> {
        let cursor =
            if self.last_seq.is_none() && !*connected && ctx.endpoints.websocket.takes_cursor() {
                Some(Box::pin(first_cursor(ctx, rec)).await?)
            } else if self.opts.resume {
                self.last_seq
            } else {
                None
            };
        let path = open_path(ctx, cursor, self.opts.format);
        ctx.count_request();
        // Connecting is boxed: the handshake's futures are freed once it is done,
        // so an idle socket keeps only what reading needs.
        let ws = Box::pin(ctx.target.websocket(&ctx.group.counters.wire, &path)).await?;
        rec.subscribed();
        *connected = true;
        backoff.reset();
        session(ctx, rec, ws, &self.opts, &mut self.last_seq, None).await
    }
}

/// The cursor of the first connection: the log's end, read from `latest` on a
/// short HTTP connection. A server that picks the end of its log itself does so
/// after the handshake, so "subscribed" would have no exact moment.
pub(crate) async fn first_cursor(
    ctx: &ClientCtx,
    rec: &mut ClientRecorder,
) -> Result<u64, ClientError> {
    let mut conn = ctx.ensure_http(None).await?;
    let c = bootstrap_cursor(ctx, &mut conn).await?;
    rec.subscribed();
    Ok(c)
}

/// Path of the WebSocket endpoint for a cursor and format.
pub(crate) fn open_path(ctx: &ClientCtx, cursor: Option<u64>, format: WsFormat) -> String {
    let format = match format {
        WsFormat::Text => "text",
        WsFormat::Binary => "binary",
    };
    ctx.path(
        &ctx.endpoints.websocket.url,
        cursor,
        &[("format", format.to_string())],
    )
}

/// A message to send on the socket besides heartbeats (the chat pattern's messages),
/// acknowledged in the registry once written.
pub(crate) struct OutMsg {
    pub(crate) text: String,
    pub(crate) ack: Option<(std::sync::Arc<crate::registry::PubLog>, u64)>,
}

/// The receiving end of a client's outgoing messages.
pub(crate) type Outgoing = tokio::sync::mpsc::Receiver<OutMsg>;

/// Reads frames until the socket closes, the peer is declared dead, or the run ends
/// (then closes politely). `Ok(())` means the run ended.
pub(crate) async fn session(
    ctx: &ClientCtx,
    rec: &mut ClientRecorder,
    mut ws: WsStream,
    opts: &WsOpts,
    last_seq: &mut Option<u64>,
    mut outgoing: Option<&mut Outgoing>,
) -> Result<(), ClientError> {
    let period = opts.heartbeat.unwrap_or(Duration::from_secs(3600));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut unanswered = 0u32;
    loop {
        tokio::select! {
            msg = ws.next() => {
                let Some(msg) = msg else { return Err(ClientError::WebSocket("closed".into())) };
                let msg = msg.map_err(|e| ClientError::WebSocket(e.to_string()))?;
                let now = ctx.group.clock.now_ns();
                let decoded = match &msg {
                    Message::Text(t) => Some((decode_text(t.as_str()), t.as_bytes())),
                    Message::Binary(b) => Some((decode_binary(b), &b[..])),
                    Message::Close(_) => return Err(ClientError::WebSocket("closed by server".into())),
                    _ => None,
                };
                if let Some((decoded, raw)) = decoded {
                    match decoded {
                        Ok(ServerMessage::Event { seq, data }) => {
                            rec.deliver(data, now);
                            *last_seq = Some(seq);
                        }
                        Ok(ServerMessage::Gap(_)) => rec.gap(),
                        Ok(ServerMessage::Pong) => unanswered = 0,
                        Ok(ServerMessage::Error(e)) => ctx.group.error(&ClientError::Protocol(e)),
                        // A server that relays bodies verbatim: the frame is the body.
                        Err(_) => {
                            rec.deliver(raw, now);
                        }
                    }
                    rec.flush();
                }
                if let Some(d) = opts.read_delay {
                    // A slow consumer: the frames pile up in the socket buffers
                    // and then at the server, which must close or skip us.
                    if !ctx.sleep(d).await {
                        return Ok(());
                    }
                }
            }
            _ = heartbeat.tick(), if opts.heartbeat.is_some() => {
                if unanswered >= opts.heartbeat_misses {
                    ctx.group.error_kind("dead_peer");
                    return Err(ClientError::Timeout);
                }
                unanswered += 1;
                ws.send(Message::text("ping")).await.map_err(|e| ClientError::WebSocket(e.to_string()))?;
            }
            out = next_outgoing(&mut outgoing) => {
                match out {
                    Some(m) => {
                        if let Err(e) = ws.send(Message::text(m.text)).await {
                            // Maybe sent, maybe not: a client that receives it confirms it.
                            ctx.group.registry.note_failure();
                            return Err(ClientError::WebSocket(e.to_string()));
                        }
                        if let Some((log, pseq)) = m.ack {
                            log.ack(pseq);
                        }
                        ctx.group.add(&ctx.group.counters.uploads, 1);
                    }
                    None => outgoing = None,
                }
            }
            _ = ctx.done.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
                return Ok(());
            }
        }
    }
}

async fn next_outgoing(out: &mut Option<&mut Outgoing>) -> Option<OutMsg> {
    match out {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
