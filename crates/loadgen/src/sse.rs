//! Server-Sent Events: one streaming response per connection, parsed incrementally.
//! On a lost stream the client reconnects with backoff; with `resume` it sends
//! `Last-Event-ID` (or `?since=` for targets whose cursor style is `query`), so
//! nothing is lost; without it, the server starts again at the end of its log.

use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use pushbench_protocol::wire::{GapNotice, SseItem, SseParser};

use crate::client::{ClientCtx, bootstrap_cursor};
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
    let mut backoff = ClientCtx::backoff();
    let mut last_id: Option<String> = None;
    let mut first = true;
    let mut connected_once = false;
    while !ctx.done.is_cancelled() {
        if !first && connected_once {
            ctx.count_reconnect();
        }
        first = false;
        // The end of the run interrupts a connect or request stuck behind a dead
        // link (a blackhole holds new connections too), not only a read.
        let done = ctx.done.clone();
        let result = tokio::select! {
            r = stream_once(
                &ctx,
                &mut rec,
                resume,
                read_timeout,
                &mut last_id,
                &mut connected_once,
                &mut backoff,
            ) => r,
            _ = done.cancelled() => Ok(()),
        };
        rec.flush();
        match result {
            Ok(()) if ctx.done.is_cancelled() => break,
            Ok(()) => {
                // The server ended the stream: count it, then reconnect.
                if !ctx
                    .fail_with(
                        &mut rec,
                        &ClientError::Http("stream closed by server".into()),
                        &mut backoff,
                    )
                    .await
                {
                    break;
                }
            }
            Err(e) => {
                if !ctx.fail_with(&mut rec, &e, &mut backoff).await {
                    break;
                }
            }
        }
    }
    rec
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
