//! Server-Sent Events: one streaming response per connection, parsed incrementally.
//! On a lost stream the client reconnects with backoff; with `resume` it sends
//! `Last-Event-ID` (or `?since=` for targets whose cursor style is `query`), so
//! nothing is lost; without it, the server starts again at the end of its log.

use std::time::Duration;

use http::Method;
use pushbench_protocol::wire::{SseParser, SseRef};

use crate::backoff::Backoff;
use crate::client::{ClientCtx, Streaming, bootstrap_cursor, stay_connected};
use crate::connect::{ClientError, HttpConn};
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
    // Boxed at its own size: the task that runs a client is as large as the
    // largest strategy's future (4.8 KB), which every idle stream would pay.
    Box::pin(stay_connected(&mut ctx, &mut rec, &mut client)).await;
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
    // Connecting is boxed: its futures are freed once the stream is open, so an
    // idle stream keeps only what reading needs.
    let mut conn = Box::pin(open_stream(ctx, rec, resume, last_id, *connected_once)).await?;
    // For targets without cursors, the stream's start is the subscription.
    rec.subscribed();
    *connected_once = true;
    backoff.reset();
    let mut parser = SseParser::new(4 << 20);
    let clock = ctx.group.clock;
    // The read timeout is one timer, armed once: when it fires, the stream is dead
    // if nothing arrived since it was last armed, else it is armed again. (A dead
    // stream is declared between one and two read timeouts after its last bytes;
    // no timer is set or reset per read.)
    let deadline = tokio::time::sleep(read_timeout);
    tokio::pin!(deadline);
    let cancelled = ctx.done.cancelled();
    tokio::pin!(cancelled);
    let mut heard = false;
    loop {
        tokio::select! {
            biased;
            more = conn.read_stream(|data| {
                // The raw socket bytes go to the parser: no copy, no frame per chunk.
                let now = clock.now_ns();
                parser
                    .feed_with(data, |item| match item {
                        SseRef::Event { event: Some("gap"), .. } => rec.gap(),
                        SseRef::Event { id, data, .. } => {
                            rec.deliver(data.as_bytes(), now);
                            if let Some(id) = id {
                                match last_id {
                                    Some(s) if s == id => {}
                                    Some(s) => {
                                        s.clear();
                                        s.push_str(id);
                                    }
                                    None => *last_id = Some(id.to_string()),
                                }
                            }
                        }
                        SseRef::Comment(_) | SseRef::Retry(_) => {}
                    })
                    .map_err(|e| ClientError::Protocol(e.to_string()))
            }) => {
                if !more? {
                    return Ok(());
                }
                heard = true;
                rec.flush();
            }
            () = &mut deadline => {
                if !heard {
                    return Err(ClientError::Timeout);
                }
                heard = false;
                deadline.as_mut().reset(tokio::time::Instant::now() + read_timeout);
            }
            () = &mut cancelled => return Ok(()),
        }
    }
}

/// Connects, reads the first cursor when the stream starts from one, and sends the
/// GET: the connection with the stream's response head read.
async fn open_stream(
    ctx: &ClientCtx,
    rec: &mut ClientRecorder,
    resume: bool,
    last_id: &Option<String>,
    connected_once: bool,
) -> Result<HttpConn, ClientError> {
    let mut conn = ctx.ensure_http(None).await?;
    let ep = &ctx.endpoints.sse;
    // The first stream starts from an explicit cursor (the log's end, read from
    // `latest`), so "subscribed" has an exact moment: a server that picks the end
    // of its log itself does so some time after the client sees the response head.
    let cursor = if !connected_once && ep.takes_cursor() {
        let c = bootstrap_cursor(ctx, &mut conn).await?;
        rec.subscribed();
        Some(c)
    } else if !connected_once {
        None
    } else if resume {
        last_id.as_deref().and_then(|s| s.parse::<u64>().ok())
    } else {
        None
    };
    let cursor_text = cursor.map(|c| c.to_string());
    let mut headers: [(&str, &[u8]); 2] = [("accept", b"text/event-stream"), ("", b"")];
    let mut n = 1;
    let path = match ep.cursor {
        CursorStyle::Query => ctx.path(&ep.url, cursor, &[]),
        CursorStyle::None => ctx.path(&ep.url, None, &[]),
        _ => {
            if let Some(c) = &cursor_text {
                headers[1] = ("last-event-id", c.as_bytes());
                n = 2;
            }
            ctx.path(&ep.url, None, &[])
        }
    };
    ctx.count_request();
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        conn.send(Method::GET, path.as_str(), &headers[..n], None),
    )
    .await
    .map_err(|_| ClientError::Timeout)??;
    if status != 200 {
        return Err(ClientError::Status(status));
    }
    Ok(conn)
}
