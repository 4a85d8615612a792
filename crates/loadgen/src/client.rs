//! What every strategy client shares: its context (group, target, topic, stop
//! signal), URL templates, and reading events out of response bodies.

use std::sync::Arc;
use std::time::Duration;

use pushbench_protocol::wire::{GapNotice, PollResponse, Stamp};
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::connect::{ClientError, HttpConn, ReqPath, Target};
use crate::recorder::{ClientRecorder, GroupShared};
use crate::scenario::Endpoints;

/// One client's context.
pub(crate) struct ClientCtx {
    /// Index within the group.
    pub(crate) id: u32,
    pub(crate) group: Arc<GroupShared>,
    pub(crate) target: Arc<Target>,
    pub(crate) endpoints: Arc<Endpoints>,
    /// Topic name on the server.
    pub(crate) topic: Arc<str>,
    /// Cancelled at the end of the grace period (or on stop): the client returns.
    pub(crate) done: CancellationToken,
    pub(crate) rng: SmallRng,
}

impl ClientCtx {
    /// A reconnect backoff with the crate's defaults (100 ms doubling to 5 s).
    pub(crate) fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// Sleeps, or returns false when the run ends first.
    pub(crate) async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.done.cancelled() => false,
        }
    }

    /// Counts an error and waits the next backoff delay; false when the run ended.
    pub(crate) async fn fail(&mut self, e: &ClientError, backoff: &mut Backoff) -> bool {
        if !self.done.is_cancelled() {
            self.group.error(e);
            tracing::trace!(group = %self.group.name, client = self.id, error = %e, "client error");
        }
        let d = backoff.next_delay(&mut self.rng);
        self.sleep(d).await
    }

    /// [`ClientCtx::fail`] for a client that lost its connection: the recorder
    /// times the detection (and later the recovery) first.
    pub(crate) async fn fail_with(
        &mut self,
        rec: &mut ClientRecorder,
        e: &ClientError,
        backoff: &mut Backoff,
    ) -> bool {
        if !self.done.is_cancelled() {
            rec.connection_lost();
        }
        self.fail(e, backoff).await
    }

    /// An open HTTP connection: the one given if still usable, else a new one.
    pub(crate) async fn ensure_http(
        &self,
        conn: Option<HttpConn>,
    ) -> Result<HttpConn, ClientError> {
        match conn {
            Some(c) if c.is_usable() => Ok(c),
            _ => self.target.http(&self.group.counters.wire).await,
        }
    }

    /// Path for a template: base prefix + template with `{topic}`, `{cursor}`,
    /// `{wait}`, `{format}`, `{limit}` filled in. With no cursor, query parameters
    /// that carry `{cursor}` are left out.
    pub(crate) fn path(
        &self,
        template: &str,
        cursor: Option<u64>,
        extra: &[(&str, String)],
    ) -> String {
        expand(&self.target.prefix, template, &self.topic, cursor, extra)
    }

    /// Counts a request.
    pub(crate) fn count_request(&self) {
        self.group.add(&self.group.counters.requests, 1);
    }

    /// Counts a response that carried no event.
    pub(crate) fn count_empty(&self) {
        self.group.add(&self.group.counters.empty, 1);
    }

    /// Counts a reconnect.
    pub(crate) fn count_reconnect(&self) {
        self.group.add(&self.group.counters.reconnects, 1);
    }
}

/// One streaming client's way of connecting and streaming once (SSE, WebSocket,
/// chat), so that [`stay_connected`] can keep any of them connected.
pub(crate) trait Streaming {
    /// The error a stream that the server ended counts as.
    fn ended(&self) -> ClientError;

    /// Connects and streams once. Sets `connected` once subscribed (and resets the
    /// backoff then); returns `Ok(())` when the server ended the stream.
    fn attempt<'a>(
        &'a mut self,
        ctx: &'a ClientCtx,
        rec: &'a mut ClientRecorder,
        backoff: &'a mut Backoff,
        connected: &'a mut bool,
    ) -> impl Future<Output = Result<(), ClientError>> + Send + 'a;
}

/// Keeps a streaming client connected until the run ends. The loop every streaming
/// client shares, written once: an attempt after one that subscribed counts as a
/// reconnect; the end of the run interrupts an attempt stuck in a connect or a read
/// behind a dead link (a blackhole holds new connections too); a stream the server
/// ends counts as an error; failures back off.
pub(crate) async fn stay_connected(
    ctx: &mut ClientCtx,
    rec: &mut ClientRecorder,
    client: &mut impl Streaming,
) {
    let mut backoff = ClientCtx::backoff();
    let mut connected_once = false;
    let mut first = true;
    while !ctx.done.is_cancelled() {
        if !first && connected_once {
            ctx.count_reconnect();
        }
        first = false;
        let done = ctx.done.clone();
        let result = tokio::select! {
            r = client.attempt(&*ctx, &mut *rec, &mut backoff, &mut connected_once) => r,
            _ = done.cancelled() => Ok(()),
        };
        rec.flush();
        if ctx.done.is_cancelled() {
            break;
        }
        let e = result.err().unwrap_or_else(|| client.ended());
        if !ctx.fail_with(rec, &e, &mut backoff).await {
            break;
        }
    }
}

/// A path template expanded once, around its cursor: what a poller sends is
/// `before` + the cursor in decimal + `after` (no string built per request).
#[derive(Clone, Debug)]
pub(crate) struct PathTemplate {
    before: String,
    /// `None`: the template has no single `{cursor}` (then `before` is unused).
    after: Option<String>,
    /// The path without a cursor (query parameters that carry it dropped).
    no_cursor: String,
}

impl PathTemplate {
    /// The request path for `cursor`.
    pub(crate) fn with(&self, cursor: Option<u64>) -> ReqPath<'_> {
        match (&self.after, cursor) {
            (Some(after), Some(c)) => ReqPath::Cursor(&self.before, c, after),
            _ => ReqPath::Whole(&self.no_cursor),
        }
    }
}

impl ClientCtx {
    /// [`ClientCtx::path`] expanded once, for any cursor.
    pub(crate) fn path_template(&self, template: &str, extra: &[(&str, String)]) -> PathTemplate {
        let no_cursor = self.path(template, None, extra);
        match template.split_once("{cursor}") {
            Some((before, after)) if !after.contains("{cursor}") => {
                let fill = |part: &str| {
                    let mut out = part.replace("{topic}", &self.topic);
                    for (k, v) in extra {
                        out = out.replace(&format!("{{{k}}}"), v);
                    }
                    out
                };
                PathTemplate {
                    before: format!("{}{}", self.target.prefix, fill(before)),
                    after: Some(fill(after)),
                    no_cursor,
                }
            }
            _ => PathTemplate {
                before: String::new(),
                after: None,
                no_cursor,
            },
        }
    }
}

/// See [`ClientCtx::path`].
pub(crate) fn expand(
    prefix: &str,
    template: &str,
    topic: &str,
    cursor: Option<u64>,
    extra: &[(&str, String)],
) -> String {
    let template = match cursor {
        Some(_) => template.to_string(),
        None => drop_cursor_params(template),
    };
    let mut out = template.replace("{topic}", topic);
    if let Some(c) = cursor {
        out = out.replace("{cursor}", &c.to_string());
    }
    for (k, v) in extra {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    format!("{prefix}{out}")
}

fn drop_cursor_params(template: &str) -> String {
    let Some((path, query)) = template.split_once('?') else {
        return template.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.contains("{cursor}"))
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// What a poll body held.
pub(crate) struct PollBody<'a> {
    /// Event data, oldest first.
    pub(crate) events: Vec<&'a [u8]>,
    /// The server's next cursor, when it gave one.
    pub(crate) next: Option<u64>,
    /// Highest server seq among the events, when known.
    pub(crate) last_seq: Option<u64>,
}

/// Reads a poll response: pushbench's `{"events":[..],"next":N}`, or (for servers
/// that relay bodies verbatim) a bare stamped body or a JSON array of them.
pub(crate) fn parse_poll_body(body: &[u8]) -> Result<PollBody<'_>, ClientError> {
    if let Ok(p) = serde_json::from_slice::<PollResponse<'_>>(body) {
        let last_seq = p.events.last().map(|e| e.seq);
        return Ok(PollBody {
            events: p.events.iter().map(|e| e.data.get().as_bytes()).collect(),
            next: Some(p.next),
            last_seq,
        });
    }
    if Stamp::decode(body).is_ok() {
        return Ok(PollBody {
            events: vec![body],
            next: None,
            last_seq: None,
        });
    }
    if let Ok(items) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body) {
        return Ok(PollBody {
            events: items.iter().map(|r| r.get().as_bytes()).collect(),
            next: None,
            last_seq: None,
        });
    }
    Err(ClientError::Protocol(format!(
        "poll body is not {{\"events\":[..],\"next\":N}}: {}",
        String::from_utf8_lossy(&body[..body.len().min(80)])
    )))
}

/// Reads a `410` gap body; `None` when it is not one.
pub(crate) fn parse_gap(body: &[u8]) -> Option<GapNotice> {
    serde_json::from_slice::<GapNotice>(body).ok()
}

/// The cursor to continue from after a gap: the oldest retained event, or the
/// start of a reset log.
pub(crate) fn cursor_after_gap(g: &GapNotice) -> u64 {
    if g.requested > g.last_seq {
        0
    } else {
        g.first_seq.saturating_sub(1)
    }
}

/// Reads the current end of the log from `latest` (`{"seq":N,..}`), 0 when empty.
/// Cursor-based clients start here, so they receive new events only.
pub(crate) async fn bootstrap_cursor(
    ctx: &ClientCtx,
    conn: &mut HttpConn,
) -> Result<u64, ClientError> {
    let path = ctx.path(&ctx.endpoints.latest.url.clone(), None, &[]);
    ctx.count_request();
    let r = conn
        .request(
            http::Method::GET,
            path.as_str(),
            &[],
            None,
            Duration::from_secs(10),
        )
        .await?;
    match r.status {
        200 => {
            #[derive(serde::Deserialize)]
            struct Latest {
                seq: u64,
            }
            Ok(serde_json::from_slice::<Latest>(r.body)
                .map(|l| l.seq)
                .unwrap_or(0))
        }
        // A target without a latest endpoint: start from the beginning of what is
        // usually a fresh topic (pushbench's topic names are new for every run).
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = "/topics/{topic}/events?since={cursor}&wait={wait}";
        assert_eq!(
            expand("", t, "a", Some(5), &[("wait", "25s".into())]),
            "/topics/a/events?since=5&wait=25s"
        );
        assert_eq!(
            expand("/p", t, "a", None, &[("wait", "25s".into())]),
            "/p/topics/a/events?wait=25s"
        );
        assert_eq!(
            expand("", "/topics/{topic}/ws?since={cursor}", "b", None, &[]),
            "/topics/b/ws"
        );
    }

    #[test]
    fn poll_bodies() {
        let b = br#"{"events":[{"seq":3,"data":{"pub":0,"pseq":1}},{"seq":4,"data":{"x":1}}],"next":4}"#;
        let p = parse_poll_body(b).expect("pushbench body");
        assert_eq!(
            p.events,
            vec![&br#"{"pub":0,"pseq":1}"#[..], &br#"{"x":1}"#[..]]
        );
        assert_eq!(p.next, Some(4));
        assert_eq!(p.last_seq, Some(4));
        assert!(parse_poll_body(b"<html>").is_err());
        let g = parse_gap(
            br#"{"error":"gap","detail":"x","requested":1,"first_seq":10,"last_seq":20}"#,
        )
        .expect("gap");
        assert_eq!(cursor_after_gap(&g), 9);
    }
}
