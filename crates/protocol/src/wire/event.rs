//! Events and their encodings.
//!
//! An event's `data` is compact JSON (validated and stripped of insignificant
//! whitespace at publish time), so it can be spliced into every envelope without
//! re-encoding and an SSE `data:` line never needs splitting.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::WireError;

/// Longest topic name accepted.
pub const MAX_TOPIC_LEN: usize = 64;
/// First byte of a binary WebSocket frame carrying an event: `0x01, seq (u64 BE), data`.
pub const BINARY_EVENT: u8 = 0x01;
/// First byte of a binary WebSocket frame carrying a gap notice:
/// `0x02, requested, first_seq, last_seq` (three u64 BE).
pub const BINARY_GAP: u8 = 0x02;

/// Checks a topic name: 1-64 characters of `[A-Za-z0-9_.-]`.
pub fn validate_topic(name: &str) -> Result<(), WireError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TOPIC_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(WireError::BadTopic(name.chars().take(80).collect()))
    }
}

/// A resume cursor: the client has seen every event up to and including this seq.
/// `Cursor(0)` means "from the beginning".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(pub u64);

impl Cursor {
    /// Parses a cursor from a query parameter or a `Last-Event-ID` header.
    pub fn parse(text: &str) -> Result<Cursor, WireError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WireError::BadCursor(text.chars().take(40).collect()));
        }
        trimmed
            .parse::<u64>()
            .map(Cursor)
            .map_err(|_| WireError::BadCursor(text.chars().take(40).collect()))
    }
}

/// Validates a JSON body and returns it compact: whitespace outside strings removed,
/// key order, numbers and string escapes kept byte for byte.
pub fn compact_json(body: &[u8]) -> Result<Bytes, WireError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WireError::EmptyBody);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|e| WireError::BadJson(e.to_string()))?;
    let mut out = BytesMut::with_capacity(body.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            out.put_u8(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.put_u8(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.put_u8(b);
        }
    }
    Ok(out.freeze())
}

/// One stored event: its per-topic sequence number and its compact JSON data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Per-topic sequence number, from 1.
    pub seq: u64,
    /// Compact JSON (see [`compact_json`]).
    pub data: Bytes,
}

impl Event {
    /// The JSON envelope `{"seq":N,"data":...}`: a WebSocket text frame, and one
    /// element of a poll response's `events` array.
    pub fn to_json(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.data.len() + 32);
        out.put_slice(b"{\"seq\":");
        out.put_slice(itoa_u64(self.seq).as_bytes());
        out.put_slice(b",\"data\":");
        out.put_slice(&self.data);
        out.put_u8(b'}');
        out.freeze()
    }

    /// The binary envelope: `0x01`, seq as u64 big-endian, then the data bytes.
    pub fn to_binary(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.data.len() + 9);
        out.put_u8(BINARY_EVENT);
        out.put_u64(self.seq);
        out.put_slice(&self.data);
        out.freeze()
    }
}

fn itoa_u64(n: u64) -> String {
    n.to_string()
}

/// The server's answer when a cursor is outside the retained log: older than the
/// oldest retained event, or newer than the newest (the log was reset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct GapNotice {
    /// The cursor the client asked for.
    pub requested: u64,
    /// The oldest seq still retained (`last_seq + 1` when the log is empty).
    pub first_seq: u64,
    /// The newest seq in the log (0 when nothing was ever published).
    pub last_seq: u64,
}

impl GapNotice {
    /// Events the client missed for certain: those older than the retained log.
    /// Zero for a reset log (cursor ahead of it): what was lost there is unknown.
    pub fn missed(&self) -> u64 {
        self.first_seq.saturating_sub(self.requested + 1)
    }

    /// The JSON object `{"type":"gap","requested":..,"first_seq":..,"last_seq":..}`.
    pub fn to_json(&self) -> Bytes {
        Bytes::from(format!(
            "{{\"type\":\"gap\",\"requested\":{},\"first_seq\":{},\"last_seq\":{}}}",
            self.requested, self.first_seq, self.last_seq
        ))
    }

    /// The binary control frame: `0x02` then three u64 big-endian.
    pub fn to_binary(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(25);
        out.put_u8(BINARY_GAP);
        out.put_u64(self.requested);
        out.put_u64(self.first_seq);
        out.put_u64(self.last_seq);
        out.freeze()
    }
}

/// Builds a poll response `{"events":[...],"next":N}` from already-encoded event
/// envelopes ([`Event::to_json`]), so the bytes are shared, not re-encoded.
pub fn encode_poll_response<'a>(events: impl IntoIterator<Item = &'a Bytes>, next: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(256);
    out.put_slice(b"{\"events\":[");
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(e);
    }
    out.put_slice(b"],\"next\":");
    out.put_slice(itoa_u64(next).as_bytes());
    out.put_u8(b'}');
    out.freeze()
}

/// An event decoded from any envelope, borrowing its data from the frame.
#[derive(Debug, Deserialize)]
pub struct EventRef<'a> {
    /// Per-topic sequence number.
    pub seq: u64,
    /// The event's JSON data, verbatim.
    #[serde(borrow)]
    pub data: &'a RawValue,
}

/// A decoded poll or long-poll response.
#[derive(Debug, Deserialize)]
pub struct PollResponse<'a> {
    /// Events with seq greater than the request's cursor, oldest first.
    #[serde(borrow)]
    pub events: Vec<EventRef<'a>>,
    /// The cursor to send next time.
    pub next: u64,
}

/// What a server sends on a WebSocket, decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    /// One event.
    Event {
        /// Per-topic sequence number.
        seq: u64,
        /// The event's JSON data, verbatim.
        data: &'a [u8],
    },
    /// The cursor was outside the retained log.
    Gap(GapNotice),
    /// The answer to an application-level `ping`.
    Pong,
    /// An error report: `{"type":"error","error":..,"detail":..}`.
    Error(String),
}

#[derive(Deserialize)]
struct Tagged<'a> {
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    seq: Option<u64>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    requested: Option<u64>,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    #[serde(borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
}

/// Decodes a WebSocket text frame from the server.
pub fn decode_text(text: &str) -> Result<ServerMessage<'_>, WireError> {
    if text == "pong" {
        return Ok(ServerMessage::Pong);
    }
    let t: Tagged<'_> =
        serde_json::from_str(text).map_err(|e| WireError::Malformed(e.to_string()))?;
    match (t.kind, t.seq, t.data) {
        (None, Some(seq), Some(data)) => Ok(ServerMessage::Event {
            seq,
            data: data.get().as_bytes(),
        }),
        (Some("gap"), _, _) => match (t.requested, t.first_seq, t.last_seq) {
            (Some(requested), Some(first_seq), Some(last_seq)) => {
                Ok(ServerMessage::Gap(GapNotice {
                    requested,
                    first_seq,
                    last_seq,
                }))
            }
            _ => Err(WireError::Malformed(
                "gap notice without requested, first_seq and last_seq".into(),
            )),
        },
        (Some("error"), _, _) => Ok(ServerMessage::Error(
            t.error.map(|e| e.into_owned()).unwrap_or_default(),
        )),
        _ => Err(WireError::Malformed(format!(
            "expected {{\"seq\":..,\"data\":..}} or a control message, got {}",
            text.chars().take(80).collect::<String>()
        ))),
    }
}

/// Decodes a binary WebSocket frame from the server.
pub fn decode_binary(frame: &[u8]) -> Result<ServerMessage<'_>, WireError> {
    let u64_at = |i: usize| -> Option<u64> {
        frame
            .get(i..i + 8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("slice of 8 bytes")))
    };
    match frame.first() {
        Some(&BINARY_EVENT) => {
            let seq = u64_at(1).ok_or_else(|| {
                WireError::Malformed(format!(
                    "binary event frame of {} bytes, need >= 9",
                    frame.len()
                ))
            })?;
            Ok(ServerMessage::Event {
                seq,
                data: &frame[9..],
            })
        }
        Some(&BINARY_GAP) => match (u64_at(1), u64_at(9), u64_at(17)) {
            (Some(requested), Some(first_seq), Some(last_seq)) => {
                Ok(ServerMessage::Gap(GapNotice {
                    requested,
                    first_seq,
                    last_seq,
                }))
            }
            _ => Err(WireError::Malformed(format!(
                "binary gap frame of {} bytes, need 25",
                frame.len()
            ))),
        },
        other => Err(WireError::Malformed(format!(
            "binary frame kind {other:?}, expected 0x01 (event) or 0x02 (gap)"
        ))),
    }
}

/// What a client may send on a WebSocket, decoded by the server.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// The application-level heartbeat `ping` (browsers cannot send ping frames).
    Ping,
    /// `{"type":"publish","data":<json>}`: publish `data` to the socket's topic.
    Publish(Bytes),
}

impl ClientMessage {
    /// Decodes a text frame from a client.
    pub fn decode(text: &str) -> Result<ClientMessage, WireError> {
        if text == "ping" {
            return Ok(ClientMessage::Ping);
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Publish<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(borrow)]
            data: &'a RawValue,
        }
        match serde_json::from_str::<Publish<'_>>(text) {
            Ok(p) if p.kind == "publish" => Ok(ClientMessage::Publish(compact_json(
                p.data.get().as_bytes(),
            )?)),
            _ => Err(WireError::Malformed(
                "send the text \"ping\" or {\"type\":\"publish\",\"data\":<json>}".into(),
            )),
        }
    }

    /// Encodes a publish message (the client side of [`ClientMessage::decode`]).
    pub fn publish_text(data: &[u8]) -> String {
        format!(
            "{{\"type\":\"publish\",\"data\":{}}}",
            String::from_utf8_lossy(data)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic("prices.eu-1_A").is_ok());
        assert!(validate_topic(&"a".repeat(64)).is_ok());
        assert!(validate_topic(&"a".repeat(65)).is_err());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a/b").is_err());
        assert!(validate_topic("caf\u{e9}").is_err());
    }

    #[test]
    fn cursors() {
        assert_eq!(Cursor::parse("42"), Ok(Cursor(42)));
        assert_eq!(Cursor::parse(" 7 "), Ok(Cursor(7)));
        assert!(Cursor::parse("abc").is_err());
        assert!(Cursor::parse("-1").is_err());
        assert!(Cursor::parse("").is_err());
        assert!(Cursor::parse("99999999999999999999999").is_err());
    }

    #[test]
    fn compact_keeps_strings_and_order() {
        let body = br#" { "b" : 1 , "a" : "x  y \" z" , "n": [1, 2.50e3] } "#;
        let c = compact_json(body).expect("valid");
        assert_eq!(&c[..], br#"{"b":1,"a":"x  y \" z","n":[1,2.50e3]}"#);
        assert_eq!(compact_json(b"   "), Err(WireError::EmptyBody));
        assert!(matches!(
            compact_json(b"{\"a\":"),
            Err(WireError::BadJson(_))
        ));
        assert!(matches!(compact_json(b"{} {}"), Err(WireError::BadJson(_))));
    }

    #[test]
    fn json_envelope_round_trip() {
        let e = Event {
            seq: 17,
            data: Bytes::from_static(br#"{"x":[1,"\u00e9"]}"#),
        };
        let text = String::from_utf8(e.to_json().to_vec()).expect("utf8");
        assert_eq!(text, r#"{"seq":17,"data":{"x":[1,"\u00e9"]}}"#);
        assert_eq!(
            decode_text(&text),
            Ok(ServerMessage::Event {
                seq: 17,
                data: br#"{"x":[1,"\u00e9"]}"#
            })
        );
    }

    #[test]
    fn binary_envelope_round_trip() {
        let e = Event {
            seq: u64::MAX - 1,
            data: Bytes::from_static(b"[true]"),
        };
        let frame = e.to_binary();
        assert_eq!(frame.len(), 9 + 6);
        assert_eq!(
            decode_binary(&frame),
            Ok(ServerMessage::Event {
                seq: u64::MAX - 1,
                data: b"[true]"
            })
        );
        assert!(decode_binary(&frame[..5]).is_err());
        assert!(decode_binary(b"\x07abc").is_err());
        assert!(decode_binary(b"").is_err());
    }

    #[test]
    fn gap_round_trip_both_encodings() {
        let g = GapNotice {
            requested: 3,
            first_seq: 10,
            last_seq: 20,
        };
        assert_eq!(g.missed(), 6);
        let text = String::from_utf8(g.to_json().to_vec()).expect("utf8");
        assert_eq!(decode_text(&text), Ok(ServerMessage::Gap(g)));
        assert_eq!(decode_binary(&g.to_binary()), Ok(ServerMessage::Gap(g)));
        let reset = GapNotice {
            requested: 500,
            first_seq: 1,
            last_seq: 3,
        };
        assert_eq!(reset.missed(), 0);
    }

    #[test]
    fn poll_response_round_trip() {
        let a = Event {
            seq: 1,
            data: Bytes::from_static(b"1"),
        }
        .to_json();
        let b = Event {
            seq: 2,
            data: Bytes::from_static(br#"{"k":"v"}"#),
        }
        .to_json();
        let body = encode_poll_response([&a, &b], 2);
        assert_eq!(
            &body[..],
            br#"{"events":[{"seq":1,"data":1},{"seq":2,"data":{"k":"v"}}],"next":2}"#
        );
        let parsed: PollResponse<'_> = serde_json::from_slice(&body).expect("parses");
        assert_eq!(parsed.next, 2);
        assert_eq!(parsed.events[1].seq, 2);
        assert_eq!(parsed.events[1].data.get(), r#"{"k":"v"}"#);
        let empty = encode_poll_response([], 9);
        assert_eq!(&empty[..], br#"{"events":[],"next":9}"#);
    }

    #[test]
    fn client_messages() {
        assert_eq!(ClientMessage::decode("ping"), Ok(ClientMessage::Ping));
        let text = ClientMessage::publish_text(br#"{"m":"hi"}"#);
        assert_eq!(
            ClientMessage::decode(&text),
            Ok(ClientMessage::Publish(Bytes::from_static(br#"{"m":"hi"}"#)))
        );
        assert!(ClientMessage::decode("PING").is_err());
        assert!(ClientMessage::decode(r#"{"type":"other","data":1}"#).is_err());
    }
}
