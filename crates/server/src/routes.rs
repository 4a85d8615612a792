//! The router: one `match` over (path, method), as in hyper's `web_api` example.
//! Every route returns `Result<Response, ApiError>`; errors become the JSON error shape
//! here, and CORS headers are added here, once, for every response.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use pushbench_protocol::wire::{Cursor, validate_topic};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::conn::ConnGuard;
use crate::query::Query;
use crate::reply::{ApiError, Body, empty, json};
use crate::{App, beacon, long_poll, poll, publish, sse, websocket};

/// What a request handler may use: the shared state and this connection's tokens.
#[derive(Clone)]
pub struct Ctx {
    /// Shared server state.
    pub app: Arc<App>,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Cancelled when the shutdown deadline has passed: stop at once.
    pub hard_stop: CancellationToken,
    /// Tasks that outlive a response (SSE producers, WebSockets).
    pub tracker: TaskTracker,
    /// Holds this connection's place under `--max-connections` (upgraded sockets keep
    /// it), and the hand-off of an SSE stream from hyper to the connection task.
    pub guard: Arc<ConnGuard>,
}

/// Entry point for every request.
pub async fn handle(req: Request<Incoming>, ctx: Ctx) -> Result<Response<Body>, Infallible> {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut res = match route(req, &ctx).await {
        Ok(res) => res,
        Err(err) => err.into_response(),
    };
    if res.status().is_client_error() {
        ctx.app
            .metrics
            .client_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    cors(&ctx.app, origin.as_ref(), res.headers_mut());
    Ok(res)
}

async fn route(req: Request<Incoming>, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    let allow: &'static str = match segments.as_slice() {
        // HEAD wherever a plain GET answers at once (hyper sends the headers only);
        // not on streams, where a body-less answer would mean nothing.
        ["", "healthz"] | ["", "metrics"] => "GET, HEAD, OPTIONS",
        ["", "beacon"] => "POST, OPTIONS",
        ["", "topics", _, "events"] => "GET, HEAD, POST, OPTIONS",
        ["", "topics", _, "latest"] => "GET, HEAD, OPTIONS",
        ["", "topics", _, "sse" | "ws"] => "GET, OPTIONS",
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no route for {path}: see the API table in the README (/topics/{{topic}}/events, /latest, /sse, /ws, /beacon, /metrics, /healthz)"
                ),
            ));
        }
    };
    if req.method() == Method::OPTIONS {
        return Ok(preflight(allow));
    }
    let method_ok = allow.split(", ").any(|m| m == req.method().as_str());
    if !method_ok {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {path}: use {allow}", req.method()),
        )
        .header(header::ALLOW, allow));
    }
    match segments.as_slice() {
        ["", "healthz"] => Ok(json(
            StatusCode::OK,
            Bytes::from_static(b"{\"status\":\"ok\"}"),
        )),
        ["", "metrics"] => {
            let mut res = Response::new(crate::reply::full(
                ctx.app.metrics.render(ctx.app.topics.len()),
            ));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(res)
        }
        ["", "beacon"] => beacon::handle(req, ctx).await,
        ["", "topics", topic, kind] => {
            validate_topic(topic).map_err(|e| ApiError::bad_request("bad_topic", e.to_string()))?;
            let topic = *topic;
            let uri = req.uri().clone();
            let query = Query::parse(uri.query());
            let is_post = req.method() == Method::POST;
            match (*kind, is_post) {
                ("events", true) => publish::handle(req, ctx, topic).await,
                ("events", _) => match query.wait(ctx.app.config.max_wait)? {
                    Some(wait) => long_poll::handle(ctx, topic, &query, wait).await,
                    None => poll::events(&req, ctx, topic, &query),
                },
                ("latest", _) => poll::latest(&req, ctx, topic),
                ("sse", _) => sse::handle(&req, ctx, topic, &query),
                ("ws", _) => {
                    let since = query.since()?;
                    let format = websocket::Format::parse(query.format)?;
                    websocket::handle(req, ctx, topic, since, format)
                }
                _ => unreachable!("paths were matched above"),
            }
        }
        _ => unreachable!("paths were matched above"),
    }
}

fn preflight(allow: &'static str) -> Response<Body> {
    let mut res = empty(StatusCode::NO_CONTENT);
    let h = res.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(allow));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(allow),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, If-None-Match, Last-Event-ID"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    res
}

/// CORS: any origin may read polls and publish (subject to the token) unless
/// `--allow-origin` narrows it; streams from other origins are refused in
/// [`check_origin`].
fn cors(app: &App, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
    if app.config.allow_origins.is_empty() {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else if let Some(o) = origin.filter(|o| origin_allowed(app, o)) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag"),
    );
}

fn origin_allowed(app: &App, origin: &HeaderValue) -> bool {
    app.config.allow_origins.is_empty()
        || app
            .config
            .allow_origins
            .iter()
            .any(|a| a.as_bytes() == origin.as_bytes())
}

/// Refuses SSE and WebSocket requests from origins outside `--allow-origin`
/// (a defence against cross-site WebSocket hijacking). Requests without an
/// `Origin` header (not from a browser) pass.
pub fn check_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::ORIGIN) {
        Some(o) if !origin_allowed(app, o) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!(
                "origin {:?} may not open streams here: the server allows {} (--allow-origin)",
                String::from_utf8_lossy(o.as_bytes()),
                app.config.allow_origins.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// The cursor of a stream request: `Last-Event-ID` (what a reconnecting EventSource
/// sends) wins over `?since=`.
pub fn stream_cursor(headers: &HeaderMap, query: &Query<'_>) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id") {
        Some(v) => {
            let text = v.to_str().unwrap_or("?");
            Cursor::parse(text).map(|c| Some(c.0)).map_err(|e| {
                ApiError::bad_request("bad_last_event_id", format!("Last-Event-ID: {e}"))
            })
        }
        None => query.since(),
    }
}

/// Reads a request body up to `--max-body` within `--header-read-timeout`.
pub async fn read_body(req: Request<Incoming>, ctx: &Ctx) -> Result<Bytes, ApiError> {
    let max = ctx.app.config.max_body;
    let too_large = |got: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body of {got} bytes is larger than the limit of {max} bytes (--max-body): send a smaller event"),
        )
        .with("limit", max as u64)
    };
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max as u64
    {
        return Err(too_large(len.to_string()));
    }
    let collect = Limited::new(req.into_body(), max).collect();
    match tokio::time::timeout(ctx.app.config.header_read_timeout, collect).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {:?} (--header-read-timeout)",
                ctx.app.config.header_read_timeout
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(too_large(format!("more than {max}")))
        }
        Ok(Err(e)) => Err(ApiError::bad_request(
            "bad_body",
            format!("the request body could not be read: {e}"),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// Checks `Authorization: Bearer <token>` when `--publish-token` is set.
pub fn check_token(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &app.config.publish_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme name is case-insensitive (RFC 9110 section 11.1): `bearer` counts too.
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    // An empty token (`--publish-token "$UNSET"`) matches nothing: fail closed, not open.
    // Compare every byte so timing does not reveal how much of a guess was right.
    let same = !expected.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "publishing needs the header Authorization: Bearer <token> with the server's --publish-token",
        )
        .header(header::WWW_AUTHENTICATE, "Bearer"))
    }
}
