//! Long polling: a request the server holds until an event exists or the wait ends
//! (`204`), then at once the next request. `cursor = "since"` loses nothing (the
//! cursor covers the re-request gap); `"none"` is the naive version that waits for
//! "the next event" and loses whatever is published while it re-requests.

use std::time::Duration;

use http::Method;

use crate::client::{ClientCtx, bootstrap_cursor, cursor_after_gap, parse_gap, parse_poll_body};
use crate::connect::{ClientError, HttpConn};
use crate::recorder::ClientRecorder;
use crate::scenario::LongPollCursor;

/// Runs one long-poll client until the run ends; returns its recorder.
///
/// The client's future is boxed here, at its own size: the task that runs a client
/// is as large as the largest strategy's future (4.8 KB), which every idle
/// connection would otherwise pay.
pub(crate) async fn run(
    ctx: ClientCtx,
    rec: ClientRecorder,
    cursor_mode: LongPollCursor,
    wait: Duration,
) -> ClientRecorder {
    Box::pin(client(ctx, rec, cursor_mode, wait)).await
}

async fn client(
    mut ctx: ClientCtx,
    mut rec: ClientRecorder,
    cursor_mode: LongPollCursor,
    wait: Duration,
) -> ClientRecorder {
    let mut backoff = ClientCtx::backoff();
    let mut conn: Option<HttpConn> = None;
    let mut cursor: Option<u64> = None;
    let wait_text = format!("{}ms", wait.as_millis());
    while !ctx.done.is_cancelled() {
        // The end of the run interrupts a connect stuck behind a dead link too.
        let done = ctx.done.clone();
        let attempt = async {
            let mut c = ctx.ensure_http(conn.take()).await?;
            if cursor_mode == LongPollCursor::Since && cursor.is_none() {
                if ctx.endpoints.long_poll.takes_cursor() {
                    cursor = Some(bootstrap_cursor(&ctx, &mut c).await?);
                } else {
                    // A target without cursors: subscribed from the first request.
                    cursor = Some(0);
                }
                rec.subscribed();
            }
            if cursor_mode == LongPollCursor::None {
                // Naive: subscribed from the first request on; what is published
                // between a response and the next request is lost, and counted so.
                rec.subscribed();
            }
            let path = ctx.path(
                &ctx.endpoints.long_poll.url,
                cursor,
                &[("wait", wait_text.clone())],
            );
            ctx.count_request();
            let r = tokio::select! {
                r = c.request(Method::GET, path.as_str(), &[], None, wait + Duration::from_secs(10)) => r?,
                _ = ctx.done.cancelled() => return Ok(None),
            };
            // The response borrows the connection: keep what is needed of it.
            let r = (r.status, r.body.to_vec());
            Ok::<_, ClientError>(Some((c, r)))
        };
        let step = tokio::select! {
            r = attempt => r,
            _ = done.cancelled() => Ok(None),
        };
        match step {
            Ok(None) => break,
            Ok(Some((c, r))) => {
                conn = Some(c);
                backoff.reset();
                let now = ctx.group.clock.now_ns();
                let (status, body) = r;
                match status {
                    200 => match parse_poll_body(&body) {
                        Ok(body) => {
                            if body.events.is_empty() {
                                ctx.count_empty();
                            }
                            for data in &body.events {
                                rec.deliver(data, now);
                            }
                            rec.flush();
                            if cursor_mode == LongPollCursor::Since {
                                if let Some(n) = body.next.or(body.last_seq) {
                                    cursor = Some(n);
                                }
                            }
                        }
                        Err(e) => {
                            if !ctx.fail_with(&mut rec, &e, &mut backoff).await {
                                break;
                            }
                        }
                    },
                    204 | 304 => ctx.count_empty(),
                    410 => match parse_gap(&body) {
                        Some(g) => {
                            rec.gap();
                            if cursor.is_some() {
                                cursor = Some(cursor_after_gap(&g));
                            }
                        }
                        None => ctx.group.error(&ClientError::Status(410)),
                    },
                    s => {
                        if !ctx
                            .fail_with(&mut rec, &ClientError::Status(s), &mut backoff)
                            .await
                        {
                            break;
                        }
                    }
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
