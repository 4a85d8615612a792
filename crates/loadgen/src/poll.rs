//! Short polling. `fixed-delay` is `setTimeout` (the next request one interval after
//! the last response: ordered); `fixed-rate` is `setInterval` (a request every
//! interval whether or not the last returned, on another connection when the last
//! is busy: responses overlap and can arrive out of order, and the cursor is
//! last-writer-wins, as in the naive browser code this imitates). `cursor = "since"`
//! reads the log; `"latest"` reads only the newest event (state semantics).
//! `conditional` sends `If-None-Match` and counts `304`s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use tokio::task::JoinSet;

use crate::client::{
    ClientCtx, PathTemplate, bootstrap_cursor, cursor_after_gap, parse_gap, parse_poll_body,
};
use crate::connect::{ClientError, HttpConn, ReqPath, Response};
use crate::recorder::ClientRecorder;
use crate::scenario::{CursorStyle, PollCursor, PollSchedule};

/// Poll options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PollOpts {
    pub(crate) interval: Duration,
    pub(crate) schedule: PollSchedule,
    pub(crate) cursor: PollCursor,
    pub(crate) conditional: bool,
    pub(crate) limit: u32,
    pub(crate) max_in_flight: u32,
}

/// Cursor state shared by a client's requests.
#[derive(Debug, Default)]
struct PollState {
    /// `since` cursor (log mode).
    cursor: u64,
    /// Last seq seen (latest mode).
    last_seq: Option<u64>,
    etag: Option<Vec<u8>>,
    last_modified: Option<Vec<u8>>,
}

/// Runs one poll client until the run ends; returns its recorder.
///
/// The client's future is boxed here, at its own size: the task that runs a client
/// is as large as the largest strategy's future (4.8 KB), which every idle
/// connection would otherwise pay.
pub(crate) async fn run(ctx: ClientCtx, rec: ClientRecorder, opts: PollOpts) -> ClientRecorder {
    Box::pin(client(ctx, rec, opts)).await
}

async fn client(mut ctx: ClientCtx, mut rec: ClientRecorder, opts: PollOpts) -> ClientRecorder {
    let mut backoff = ClientCtx::backoff();
    let mut conn: Option<HttpConn> = None;
    let mut state = PollState::default();
    // Log mode starts at the current end of the log: new events only.
    if opts.cursor == PollCursor::Since && ctx.endpoints.poll.takes_cursor() {
        loop {
            if ctx.done.is_cancelled() {
                return rec;
            }
            let attempt = async {
                let mut c = ctx.ensure_http(conn.take()).await?;
                let cur = bootstrap_cursor(&ctx, &mut c).await?;
                Ok::<_, ClientError>((c, cur))
            }
            .await;
            match attempt {
                Ok((c, cur)) => {
                    conn = Some(c);
                    state.cursor = cur;
                    rec.subscribed();
                    break;
                }
                Err(e) => {
                    if !ctx.fail_with(&mut rec, &e, &mut backoff).await {
                        return rec;
                    }
                }
            }
        }
    }
    match opts.schedule {
        PollSchedule::FixedDelay => fixed_delay(ctx, rec, opts, conn, state).await,
        PollSchedule::FixedRate => fixed_rate(ctx, rec, opts, conn, state).await,
    }
}

/// What a poll client sends, expanded once: the path around the cursor and which
/// validators go with it. Per request only the cursor and the validators change.
struct PollReq {
    path: PathTemplate,
    style: CursorStyle,
}

impl PollReq {
    fn new(ctx: &ClientCtx, opts: &PollOpts) -> Self {
        match opts.cursor {
            PollCursor::Since => PollReq {
                path: ctx.path_template(
                    &ctx.endpoints.poll.url,
                    &[("limit", opts.limit.to_string())],
                ),
                style: ctx.endpoints.poll.cursor,
            },
            PollCursor::Latest => PollReq {
                path: ctx.path_template(&ctx.endpoints.latest.url, &[]),
                style: ctx.endpoints.latest.cursor,
            },
        }
    }

    /// Path and headers of the next request (headers: the first `n` of the array).
    fn next<'a>(
        &'a self,
        opts: &PollOpts,
        state: &'a PollState,
    ) -> (ReqPath<'a>, [(&'static str, &'a [u8]); 2], usize) {
        let mut headers: [(&'static str, &[u8]); 2] = [("", b""), ("", b"")];
        let mut n = 0;
        // HTTP validators: with `conditional`, or as the cursor itself for targets
        // whose cursor style is a validator.
        if opts.conditional || self.style == CursorStyle::IfNoneMatch {
            if let Some(e) = &state.etag {
                headers[n] = ("if-none-match", e);
                n += 1;
            }
        }
        if self.style == CursorStyle::IfModifiedSince {
            if let Some(m) = &state.last_modified {
                headers[n] = ("if-modified-since", m);
                n += 1;
            }
        }
        let path = match opts.cursor {
            PollCursor::Since => self.path.with(Some(state.cursor)),
            PollCursor::Latest => self.path.with(None),
        };
        (path, headers, n)
    }
}

async fn fixed_delay(
    mut ctx: ClientCtx,
    mut rec: ClientRecorder,
    opts: PollOpts,
    mut conn: Option<HttpConn>,
    mut state: PollState,
) -> ClientRecorder {
    let mut backoff = ClientCtx::backoff();
    let req = PollReq::new(&ctx, &opts);
    // The pause between polls and the end-of-run signal are set up once, not per
    // request (each set-up registers with a shared lock).
    let done = ctx.done.clone();
    let cancelled = done.cancelled();
    tokio::pin!(cancelled);
    let pause = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pause);
    while !ctx.done.is_cancelled() {
        let mut c = match ctx.ensure_http(conn.take()).await {
            Ok(c) => c,
            Err(e) => {
                if !ctx.fail_with(&mut rec, &e, &mut backoff).await {
                    break;
                }
                continue;
            }
        };
        ctx.count_request();
        let (path, headers, n) = req.next(&opts, &state);
        match c
            .request(
                Method::GET,
                path,
                &headers[..n],
                None,
                Duration::from_secs(30),
            )
            .await
        {
            Ok(r) => {
                backoff.reset();
                if let Err(e) = handle(&ctx, &mut rec, &opts, &mut state, &r) {
                    ctx.group.error(&e);
                }
            }
            Err(e) => {
                if !ctx.fail_with(&mut rec, &e, &mut backoff).await {
                    break;
                }
                continue;
            }
        }
        conn = Some(c);
        if opts.interval.is_zero() {
            // Back to back: no timer (the loop condition sees the end of the run).
            continue;
        }
        pause
            .as_mut()
            .reset(tokio::time::Instant::now() + opts.interval);
        tokio::select! {
            biased;
            () = &mut cancelled => break,
            () = &mut pause => {}
        }
    }
    rec
}

struct Shared {
    state: PollState,
    rec: ClientRecorder,
    idle: Vec<HttpConn>,
}

async fn fixed_rate(
    ctx: ClientCtx,
    rec: ClientRecorder,
    opts: PollOpts,
    conn: Option<HttpConn>,
    state: PollState,
) -> ClientRecorder {
    let shared = Arc::new(Mutex::new(Shared {
        state,
        rec,
        idle: conn.into_iter().collect(),
    }));
    let req = Arc::new(PollReq::new(&ctx, &opts));
    let ctx = Arc::new(ctx);
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut ticker = tokio::time::interval(opts.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = ctx.done.cancelled() => break,
        }
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= opts.max_in_flight as usize {
            ctx.group.error_kind("overlap_limit");
            continue;
        }
        // Requests overlap, so each takes its own copy of the cursor and validators.
        let (cursor, headers, conn) = {
            let mut s = shared.lock().expect("poll state lock never poisoned");
            let (path, h, n) = req.next(&opts, &s.state);
            let cursor = match path {
                ReqPath::Cursor(_, c, _) => Some(c),
                ReqPath::Whole(_) => None,
            };
            let headers: Vec<(&'static str, Vec<u8>)> =
                h[..n].iter().map(|(k, v)| (*k, v.to_vec())).collect();
            (cursor, headers, s.idle.pop())
        };
        let ctx = ctx.clone();
        let shared = shared.clone();
        let req = req.clone();
        in_flight.spawn(async move {
            let mut c = match ctx.ensure_http(conn).await {
                Ok(c) => c,
                Err(e) => {
                    if !ctx.done.is_cancelled() {
                        ctx.group.error(&e);
                    }
                    return;
                }
            };
            ctx.count_request();
            let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, &v[..])).collect();
            let path = req.path.with(cursor);
            match c
                .request(Method::GET, path, &h, None, Duration::from_secs(30))
                .await
            {
                Ok(r) => {
                    let mut s = shared.lock().expect("poll state lock never poisoned");
                    let Shared { state, rec, idle } = &mut *s;
                    if let Err(e) = handle(&ctx, rec, &opts, state, &r) {
                        ctx.group.error(&e);
                    }
                    idle.push(c);
                }
                Err(e) => {
                    if !ctx.done.is_cancelled() {
                        ctx.group.error(&e);
                    }
                }
            }
        });
    }
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    let shared = Arc::try_unwrap(shared)
        .ok()
        .expect("every request task has ended, so no other handle remains")
        .into_inner()
        .expect("poll state lock never poisoned");
    shared.rec
}

/// Keeps a validator, reusing its buffer.
fn keep(slot: &mut Option<Vec<u8>>, value: &[u8]) {
    match slot {
        Some(v) if v == value => {}
        Some(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        None => *slot = Some(value.to_vec()),
    }
}

/// Handles one response: events, empty, 304, 410 gap.
fn handle(
    ctx: &ClientCtx,
    rec: &mut ClientRecorder,
    opts: &PollOpts,
    state: &mut PollState,
    r: &Response<'_>,
) -> Result<(), ClientError> {
    let now = ctx.group.clock.now_ns();
    if let Some(etag) = r.etag {
        keep(&mut state.etag, etag);
    }
    if let Some(m) = r.last_modified {
        keep(&mut state.last_modified, m);
    }
    match (r.status, opts.cursor) {
        (304, _) => {
            ctx.count_empty();
            ctx.group.add(&ctx.group.counters.not_modified, 1);
            rec.subscribed();
            Ok(())
        }
        (204 | 404, PollCursor::Latest) => {
            ctx.count_empty();
            rec.subscribed();
            Ok(())
        }
        (200, PollCursor::Latest) => {
            rec.subscribed();
            #[derive(serde::Deserialize)]
            struct Latest<'a> {
                seq: u64,
                #[serde(borrow)]
                data: &'a serde_json::value::RawValue,
            }
            match serde_json::from_slice::<Latest<'_>>(r.body) {
                Ok(l) if state.last_seq == Some(l.seq) => ctx.count_empty(),
                Ok(l) => {
                    state.last_seq = Some(l.seq);
                    rec.deliver(l.data.get().as_bytes(), now);
                }
                Err(_) => {
                    // A server that answers with the bare body.
                    rec.deliver(r.body, now);
                }
            }
            rec.flush();
            Ok(())
        }
        (200, PollCursor::Since) => {
            rec.subscribed();
            let body = parse_poll_body(r.body)?;
            if body.events.is_empty() {
                ctx.count_empty();
            }
            for data in &body.events {
                rec.deliver(data, now);
            }
            rec.flush();
            // Last writer wins, even when an older response arrives last (setInterval).
            if let Some(next) = body.next.or(body.last_seq) {
                state.cursor = next;
            }
            Ok(())
        }
        (410, PollCursor::Since) => {
            let g = parse_gap(r.body)
                .ok_or_else(|| ClientError::Protocol("410 without a gap notice".into()))?;
            rec.gap();
            state.cursor = cursor_after_gap(&g);
            Ok(())
        }
        (s, _) => Err(ClientError::Status(s)),
    }
}
