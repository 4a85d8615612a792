//! Long polling: `GET /topics/{t}/events?since=N&wait=25s` is held until an event
//! with seq > N exists (answered the moment it is published) or the wait ends (204).
//! Without `since` the request waits for the next event after its arrival: the naive
//! pattern whose re-request gap loses events, kept so it can be measured.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use pushbench_protocol::wire::encode_poll_response;

use crate::metrics::Strategy;
use crate::poll::gap_error;
use crate::query::Query;
use crate::reply::{ApiError, Body, empty, json};
use crate::routes::Ctx;
use crate::topic::Read;

/// Holds the request until there is something to answer.
pub async fn handle(
    ctx: &Ctx,
    topic: &str,
    query: &Query<'_>,
    wait: Duration,
) -> Result<Response<Body>, ApiError> {
    let since = query.since()?;
    let limit = query.limit()?;
    let topic = ctx.app.topic(topic)?;
    let metrics = &ctx.app.metrics;
    let _open = metrics.open(Strategy::LongPoll);
    // Subscribe before reading, so an event published in between still wakes us.
    let mut grew = topic.subscribe();
    let cursor = since.unwrap_or_else(|| topic.last_seq());
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        grew.borrow_and_update();
        match topic.read(Some(cursor), limit).0 {
            Read::Events(evs) => {
                let next = evs.last().map_or(cursor, |e| e.seq);
                let body = encode_poll_response(evs.iter().map(|e| &e.json), next);
                metrics.delivered(Strategy::LongPoll, evs.len() as u64, body.len() as u64);
                let mut res = json(StatusCode::OK, body);
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                return Ok(res);
            }
            Read::Gap(g) => {
                metrics
                    .gaps
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(gap_error(g));
            }
            Read::CaughtUp => {}
        }
        tokio::select! {
            changed = grew.changed() => {
                if changed.is_err() {
                    return Ok(empty(StatusCode::NO_CONTENT));
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Ok(empty(StatusCode::NO_CONTENT)),
            _ = ctx.shutdown.cancelled() => {
                let mut res = empty(StatusCode::NO_CONTENT);
                res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Ok(res);
            }
        }
    }
}
