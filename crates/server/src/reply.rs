//! Building responses: JSON bodies, the error shape every failure uses, CORS headers.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// The response body type of every route: full bodies and SSE streams alike.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A response with a JSON body.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = status;
    res
}

/// A failure, answered as `{"error": code, "detail": ...}` with extra fields if any.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine-readable code.
    pub code: &'static str,
    /// What was wrong and what to do.
    pub detail: String,
    /// Extra JSON fields (e.g. the gap's first_seq).
    pub extra: Vec<(&'static str, serde_json::Value)>,
    /// Extra headers (e.g. `Allow`, `WWW-Authenticate`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status, a code and a detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// Adds a JSON field.
    pub fn with(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> ApiError {
        self.extra.push((key, value.into()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: header::HeaderName, value: &'static str) -> ApiError {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// The response.
    pub fn into_response(self) -> Response<Body> {
        let mut obj = serde_json::Map::new();
        obj.insert("error".into(), self.code.into());
        obj.insert("detail".into(), self.detail.into());
        for (k, v) in self.extra {
            obj.insert(k.into(), v);
        }
        let body = serde_json::to_vec(&serde_json::Value::Object(obj))
            .expect("a JSON map always serializes");
        let mut res = json(self.status, body);
        for (k, v) in self.headers {
            res.headers_mut().insert(k, v);
        }
        res
    }
}
