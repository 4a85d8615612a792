//! Server-Sent Events: one streaming response per connection, parsed incrementally.
//! On a lost stream the client reconnects with backoff; with `resume` it sends
//! `Last-Event-ID` (or `?since=` for targets whose cursor style is `query`), so
//! nothing is lost; without it, the server starts again at the end of its log.

use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use pushbench_protocol::wire::{GapNotice, SseItem, SseParser};

use crate::backoff::Backoff;
use crate::client::{ClientCtx, Streaming, bootstrap_cursor, stay_connected};
use crate::connect::ClientError;
use crate::recorder::ClientRecorder;
use crate::scenario::CursorStyle;

/// Runs one SSE client until the run ends; returns its recorder.
pub(crate) async fn run(
    mut ctx: ClientCtx,
    mut rec: ClientRecorder,
    resume: bool,
    read_timeout: Duration,
) -> ClientRecorder {
    let mut client = SseClient {
        resume,
        read_timeout,
        last_id: None,
    };
    stay_connected(&mut ctx, &mut rec, &mut client).await;
    rec
}

struct SseClient {
    resume: bool,
    read_timeout: Duration,
    /// The last `id:` received: the `Last-Event-ID` of a resume.
    last_id: Option<String>,
}

impl Streaming for SseClient {
    fn ended(&self) -> ClientError {
        ClientError::Http("stream closed by server".into())
    }

    fn attempt<'a>(
        &'a mut self,
        ctx: &'a ClientCtx,
        rec: &'a mut ClientRecorder,
        backoff: &'a mut Backoff,
        connected: &'a mut bool,
    ) -> impl Future<Output = Result<(), ClientError>> + Send + 'a {
        stream_once(
            ctx,
            rec,
            self.resume,
            self.read_timeout,
            &mut self.last_id,
            connected,
            backoff,
        )
    }
}

async fn stream_once(
    ctx: &ClientCtx,
    rec: &mut ClientRecorder,
    resume: bool,
    read_timeout: Duration,
    last_id: &mut Option<String>,
    connected_once: &mut bool,
    backoff: &mut crate::backoff::Backoff,
) -> Result<(), ClientError> {
    let mut conn = ctx.ensure_http(None).await?;
    let ep = &ctx.endpoints.sse;
    // The first stream starts from an explicit cursor (the log's end, read from
    // `latest`), so "subscribed" has an exact moment: a server that picks the end
    // of its log itself does so some time after the client sees the response head.
    let cursor = if !*connected_once && ep.takes_cursor() {
        let c = bootstrap_cursor(ctx, &mut conn).await?;
        rec.subscribed();
        Some(c)
    } else if !*connected_once {
        None
    } else if resume {
        last_id.as_deref().and_then(|s| s.parse::<u64>().ok())
    } else {
        None
    };
    let mut headers = vec![("accept", "text/event-stream".to_string())];
    let path = match ep.cursor {
        CursorStyle::Query => ctx.path(&ep.url, cursor, &[]),
        CursorStyle::None => ctx.path(&ep.url, None, &[]),
        _ => {
            if let Some(c) = cursor {
                headers.push(("last-event-id", c.to_string()));
            }
            ctx.path(&ep.url, None, &[])
        }
    };
    ctx.count_request();
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        conn.send(Method::GET, &path, &headers, None),
    )
    .await
    .map_err(|_| ClientError::Timeout)??;
    if resp.status() != 200 {
        return Err(ClientError::Status(resp.status().as_u16()));
    }
    // For targets without cursors, the stream's start is the subscription.
    rec.subscribed();
    *connected_once = true;
    backoff.reset();
    let mut body = resp.into_body();
    let mut parser = SseParser::new(4 << 20);
    let mut items = Vec::new();
    loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(read_timeout, body.frame()) => f.map_err(|_| ClientError::Timeout)?,
            _ = ctx.done.cancelled() => return Ok(()),
        };
        let Some(frame) = frame else { return Ok(()) };
        let frame = frame.map_err(|e| ClientError::Http(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = ctx.group.clock.now_ns();
        parser
            .feed(&data, &mut items)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        for item in items.drain(..) {
            match item {
                SseItem::Event {
                    event: Some(ev),
                    data,
                    ..
                } if ev == "gap" => {
                    let _ = serde_json::from_str::<GapNotice>(&data);
                    rec.gap();
                }
                SseItem::Event { id, data, .. } => {
                    rec.deliver(data.as_bytes(), now);
                    if id.is_some() {
                        *last_id = id;
                    }
                }
                SseItem::Comment(_) | SseItem::Retry(_) => {}
            }
        }
        rec.flush();
    }
}
