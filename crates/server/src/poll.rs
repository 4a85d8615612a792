//! Short polling: `GET /topics/{t}/events?since=N&limit=M` answers at once, and
//! `GET /topics/{t}/latest` gives only the newest event (state, not a log). Both
//! carry an `ETag` so a conditional poll costs a `304` and no body when nothing changed.

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use pushbench_protocol::wire::{GapNotice, encode_poll_response};

use crate::metrics::Strategy;
use crate::query::Query;
use crate::reply::{ApiError, Body, empty, json};
use crate::routes::Ctx;
use crate::topic::Read;

/// Short poll of the log.
pub fn events(
    req: &Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
    query: &Query<'_>,
) -> Result<Response<Body>, ApiError> {
    // Without `since` the client claims no cursor: it gets what is retained, never a gap.
    // `since=0` claims "I have seen nothing": if events were evicted, that is a gap.
    let requested = query.since()?;
    let limit = query.limit()?;
    let metrics = &ctx.app.metrics;
    let _open = metrics.open(Strategy::Poll);
    let (read, since) = match ctx.app.topics.get(topic) {
        Some(t) => {
            let (read, _, since) = t.read(requested, limit);
            (read, since)
        }
        // A topic nobody published to reads as an empty log.
        None => match requested {
            None | Some(0) => (Read::CaughtUp, 0),
            Some(since) => (
                Read::Gap(GapNotice {
                    requested: since,
                    first_seq: 1,
                    last_seq: 0,
                }),
                since,
            ),
        },
    };
    if let Read::Gap(g) = read {
        metrics
            .gaps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(gap_error(g));
    }
    let next = match &read {
        Read::Events(evs) => evs.last().map_or(since, |e| e.seq),
        _ => since,
    };
    // The tag names what this answer holds, the events up to `next`; not the log's
    // newest seq, or an answer cut short by `limit` would match the request for the
    // next page, and a poller that is behind would get 304s until the next publish.
    let tag = ctx.app.etag(next);
    if not_modified(req.headers(), &tag) {
        return Ok(with_etag(empty(StatusCode::NOT_MODIFIED), &tag));
    }
    let (body, n) = match &read {
        Read::Events(evs) => (
            encode_poll_response(evs.iter().map(|e| &e.json), next),
            evs.len() as u64,
        ),
        _ => (encode_poll_response([], since), 0),
    };
    if n > 0 {
        metrics.delivered(Strategy::Poll, n, body.len() as u64);
    } else {
        metrics.overhead(Strategy::Poll, body.len() as u64);
    }
    Ok(with_etag(json(StatusCode::OK, body), &tag))
}

/// The newest event only: `200 {"seq":N,"data":...}`, or `204` when the topic is empty.
pub fn latest(req: &Request<Incoming>, ctx: &Ctx, topic: &str) -> Result<Response<Body>, ApiError> {
    let metrics = &ctx.app.metrics;
    let _open = metrics.open(Strategy::Poll);
    let newest = ctx.app.topics.get(topic).and_then(|t| t.latest());
    let tag = ctx.app.etag(newest.as_ref().map_or(0, |e| e.seq));
    if not_modified(req.headers(), &tag) {
        return Ok(with_etag(empty(StatusCode::NOT_MODIFIED), &tag));
    }
    Ok(match newest {
        Some(e) => {
            metrics.delivered(Strategy::Poll, 1, e.json.len() as u64);
            with_etag(json(StatusCode::OK, e.json.clone()), &tag)
        }
        None => with_etag(empty(StatusCode::NO_CONTENT), &tag),
    })
}

/// The 410 answer for a cursor outside the retained log.
pub fn gap_error(g: GapNotice) -> ApiError {
    let detail = if g.requested > g.last_seq {
        format!(
            "cursor {} is ahead of this log, which ends at {} (the server's log was reset): resume with since={}",
            g.requested,
            g.last_seq,
            g.first_seq - 1
        )
    } else {
        format!(
            "events after {} are no longer retained; the oldest retained is {}: {} events were missed, resume with since={}",
            g.requested,
            g.first_seq,
            g.missed(),
            g.first_seq - 1
        )
    };
    ApiError::new(StatusCode::GONE, "gap", detail)
        .with("requested", g.requested)
        .with("first_seq", g.first_seq)
        .with("last_seq", g.last_seq)
}

fn with_etag(mut res: Response<Body>, tag: &HeaderValue) -> Response<Body> {
    let h = res.headers_mut();
    h.insert(header::ETAG, tag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// `If-None-Match` holds this tag (weak or strong) or `*`.
fn not_modified(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let tag = tag.to_str().unwrap_or("");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}
