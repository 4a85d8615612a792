//! The chat pattern: every client is both publisher and subscriber on one shared
//! topic. It receives over a WebSocket (text, resuming) and publishes on its own
//! open-loop schedule, over the same WebSocket (`{"type":"publish",..}`) or by POST
//! on a separate keep-alive connection. Every client expects every message sent
//! while it was subscribed, its own included.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use pushbench_protocol::wire::{ClientMessage, Stamp, encode_stamped_body};
use rand::Rng;

use crate::backoff::Backoff;
use crate::client::{ClientCtx, Streaming, stay_connected};
use crate::connect::{ClientError, HttpConn};
use crate::recorder::ClientRecorder;
use crate::registry::PubLog;
use crate::scenario::{PublishVia, WsFormat};
use crate::websocket::{OutMsg, WsOpts, first_cursor, open_path, session};

/// Chat options for one client.
#[derive(Clone)]
pub(crate) struct ChatOpts {
    pub(crate) publish_via: PublishVia,
    pub(crate) rate: f64,
    pub(crate) payload_bytes: usize,
    pub(crate) publisher_id: u32,
    pub(crate) topic_index: u32,
    pub(crate) log: Arc<PubLog>,
}

/// Runs one chat client until the run ends; returns its recorder.
///
/// The client's future is boxed here, at its own size: the task that runs a client
/// is as large as the largest strategy's future (4.8 KB), which every idle
/// connection would otherwise pay.
pub(crate) async fn run(ctx: ClientCtx, rec: ClientRecorder, opts: ChatOpts) -> ClientRecorder {
    Box::pin(client(ctx, rec, opts)).await
}

async fn client(mut ctx: ClientCtx, mut rec: ClientRecorder, opts: ChatOpts) -> ClientRecorder {
    let (tx, rx) = tokio::sync::mpsc::channel::<OutMsg>(64);
    let clock = ctx.group.clock;
    let period_ns = (1e9 / opts.rate) as u64;
    let phase = ctx.rng.random_range(0..period_ns.max(1));
    let publisher = {
        let done = ctx.done.clone();
        let group = ctx.group.clone();
        let target = ctx.target.clone();
        let path = ctx.path(&ctx.endpoints.publish.url, None, &[]);
        let opts = opts.clone();
        tokio::spawn(async move {
            let start = clock.now_ns() + phase;
            let end_ns = group
                .window_end_ns
                .load(std::sync::atomic::Ordering::Relaxed);
            let mut conn: Option<HttpConn> = None;
            for i in 0u64.. {
                let intended = start + i * period_ns;
                if intended >= end_ns {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(clock.instant(intended)) => {}
                    _ = done.cancelled() => break,
                }
                let pseq = opts.log.schedule(intended);
                let stamp = Stamp {
                    publisher: opts.publisher_id,
                    topic: opts.topic_index,
                    seq: pseq,
                    intended_ns: intended,
                    sent_ns: clock.now_ns(),
                };
                let body = encode_stamped_body(&stamp, opts.payload_bytes);
                match opts.publish_via {
                    PublishVia::WebSocket => {
                        let msg = OutMsg {
                            text: ClientMessage::publish_text(&body),
                            ack: Some((opts.log.clone(), pseq)),
                        };
                        // A full queue (socket down) drops the message: never acked, never expected.
                        let _ = tx.try_send(msg);
                    }
                    PublishVia::Post => {
                        let result = async {
                            let mut c = match conn.take() {
                                Some(c) if c.is_usable() => c,
                                _ => target.http(&group.counters.wire).await?,
                            };
                            group.add(&group.counters.requests, 1);
                            let status = c
                                .request(
                                    Method::POST,
                                    path.as_str(),
                                    &[],
                                    Some(&body),
                                    Duration::from_secs(10),
                                )
                                .await?
                                .status;
                            Ok::<_, ClientError>((c, status))
                        }
                        .await;
                        match result {
                            Ok((c, s)) if (200..300).contains(&s) => {
                                conn = Some(c);
                                opts.log.ack(pseq);
                                group.add(&group.counters.uploads, 1);
                            }
                            Ok((c, s)) => {
                                conn = Some(c);
                                group.registry.note_failure();
                                group.error(&ClientError::Status(s));
                            }
                            Err(e) => {
                                group.registry.note_failure();
                                group.error(&e);
                            }
                        }
                    }
                }
            }
        })
    };
    let ws_opts = WsOpts {
        format: WsFormat::Text,
        heartbeat: None,
        heartbeat_misses: 3,
        resume: true,
        read_delay: None,
    };
    let mut client = ChatClient {
        ws_opts,
        last_seq: None,
        outgoing: rx,
    };
    stay_connected(&mut ctx, &mut rec, &mut client).await;
    publisher.abort();
    let _ = publisher.await;
    rec
}

/// The receiving side of a chat client: a text WebSocket that also carries what the
/// client publishes.
struct ChatClient {
    ws_opts: WsOpts,
    /// The last seq received: the `since` of a resume.
    last_seq: Option<u64>,
    /// Messages the client's publisher task wants sent over the socket.
    outgoing: tokio::sync::mpsc::Receiver<OutMsg>,
}

impl Streaming for ChatClient {
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
        if self.last_seq.is_none() && ctx.endpoints.websocket.takes_cursor() {
            self.last_seq = Some(Box::pin(first_cursor(ctx, rec)).await?);
        }
        let path = open_path(ctx, self.last_seq, WsFormat::Text);
        ctx.count_request();
        let ws = Box::pin(ctx.target.websocket(&ctx.group.counters.wire, &path)).await?;
        rec.subscribed();
        *connected = true;
        backoff.reset();
        session(
            ctx,
            rec,
            ws,
            &self.ws_opts,
            &mut self.last_seq,
            Some(&mut self.outgoing),
        )
        .await
    }
}
