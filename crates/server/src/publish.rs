//! `POST /topics/{t}/events`: validate, compact and append one event.

use std::sync::atomic::Ordering::Relaxed;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use pushbench_protocol::wire::{WireError, compact_json};

use crate::reply::{ApiError, Body, json};
use crate::routes::{Ctx, check_token, read_body};

/// Publishes the request body to `topic`: `201 {"seq": N}`.
pub async fn handle(
    req: Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
) -> Result<Response<Body>, ApiError> {
    let result = publish(req, ctx, topic).await;
    if result.is_err() {
        ctx.app.metrics.publish_rejected.fetch_add(1, Relaxed);
    }
    result
}

async fn publish(
    req: Request<Incoming>,
    ctx: &Ctx,
    topic: &str,
) -> Result<Response<Body>, ApiError> {
    check_token(&ctx.app, req.headers())?;
    let body = read_body(req, ctx).await?;
    let data = compact_json(&body).map_err(bad_json)?;
    let topic = ctx.app.topic(topic)?;
    let seq = topic.publish(data);
    ctx.app.metrics.events_published.fetch_add(1, Relaxed);
    Ok(json(StatusCode::CREATED, format!("{{\"seq\":{seq}}}")))
}

/// The 400 answer for a body that is not one JSON value.
pub fn bad_json(e: WireError) -> ApiError {
    let code = match e {
        WireError::EmptyBody => "empty_body",
        _ => "bad_json",
    };
    ApiError::bad_request(code, e.to_string())
}
