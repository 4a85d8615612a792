//! The wire contract: events, their encodings, SSE framing and the publisher's stamp.

mod event;
mod sse;
mod stamp;

pub use event::{
    BINARY_EVENT, BINARY_GAP, ClientMessage, Cursor, Event, EventRef, GapNotice, MAX_TOPIC_LEN,
    PollResponse, ServerMessage, compact_json, decode_binary, decode_text, encode_poll_response,
    validate_topic,
};
pub use sse::{SSE_HEARTBEAT, SseItem, SseParser, SseRef, sse_event, sse_gap, sse_retry};
pub use stamp::{Stamp, encode_stamped_body};

/// Everything that can be wrong with bytes on the wire. Each message names the
/// offending value and what would be accepted instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// A topic name that is empty, too long, or has a character outside `[A-Za-z0-9_.-]`.
    #[error("topic name {0:?} is not valid: use 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'")]
    BadTopic(String),
    /// A cursor that is not a non-negative integer.
    #[error("cursor {0:?} is not a sequence number: use a non-negative integer such as 0 or 42")]
    BadCursor(String),
    /// A body that is not JSON.
    #[error("body is not valid JSON ({0}): send one JSON value, for example {{\"price\": 42}}")]
    BadJson(String),
    /// A body with no bytes (or only whitespace).
    #[error("body is empty: send one JSON value, for example {{\"price\": 42}}")]
    EmptyBody,
    /// A frame or message that does not follow the envelope format.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// An SSE line longer than the parser accepts.
    #[error("SSE line longer than {0} bytes: the stream is not SSE or an event is too large")]
    SseLineTooLong(usize),
}
