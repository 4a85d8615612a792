//! `POST /beacon`: the `navigator.sendBeacon` pattern. The body is counted and
//! dropped; the answer is `204` at once, since a beacon sender never reads it.

use std::sync::atomic::Ordering::Relaxed;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::reply::{ApiError, Body, empty};
use crate::routes::{Ctx, read_body};

/// Counts the upload and answers 204.
pub async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let body = read_body(req, ctx).await?;
    ctx.app.metrics.beacon_count.fetch_add(1, Relaxed);
    ctx.app
        .metrics
        .beacon_bytes
        .fetch_add(body.len() as u64, Relaxed);
    Ok(empty(StatusCode::NO_CONTENT))
}
