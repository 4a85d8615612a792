//! Server-Sent Events framing (server side) and an incremental parser (client side),
//! following the WHATWG event-stream rules: lines end in LF, CRLF or CR; `data:`
//! lines join with LF; a blank line dispatches; `:` starts a comment.

use bytes::Bytes;

use super::{GapNotice, WireError};

/// The heartbeat comment the server sends so idle streams keep proxies and clients awake.
pub const SSE_HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// `id: N` + `data: <json>` + blank line. `data` must be compact JSON (one line).
pub fn sse_event(seq: u64, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `event: gap` with the notice as JSON data. It carries no `id:`, so the client's
/// Last-Event-ID stays where it was.
pub fn sse_gap(gap: &GapNotice) -> Bytes {
    let json = gap.to_json();
    let mut out = Vec::with_capacity(json.len() + 20);
    out.extend_from_slice(b"event: gap\ndata: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `retry: MS`: how long a client should wait before reconnecting.
pub fn sse_retry(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

/// One thing an SSE stream delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event {
        /// The `id:` field of this event, if it had one.
        id: Option<String>,
        /// The `event:` field; `None` means the default type `message`.
        event: Option<String>,
        /// The `data:` lines joined with LF.
        data: String,
    },
    /// A comment line (without the leading colon and one optional space).
    Comment(String),
    /// A `retry:` field with a valid integer.
    Retry(u64),
}

/// Incremental SSE parser: feed it bytes as they arrive, take items out.
/// Memory is bounded by `max_line` (a longer line is an error, not a buffer that grows).
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    max_line: usize,
}

impl SseParser {
    /// A parser that accepts lines up to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            id: None,
            event: None,
            data: None,
            max_line,
        }
    }

    /// Feeds bytes, appending every completed item to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseItem>) -> Result<(), WireError> {
        while !bytes.is_empty() {
            if self.after_cr && bytes[0] == b'\n' {
                bytes = &bytes[1..];
                self.after_cr = false;
                continue;
            }
            self.after_cr = false;
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.push_line_part(&bytes[..i])?;
                    self.after_cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, out);
                }
                None => {
                    self.push_line_part(bytes)?;
                    bytes = &[];
                }
            }
        }
        Ok(())
    }

    fn push_line_part(&mut self, part: &[u8]) -> Result<(), WireError> {
        if self.line.len() + part.len() > self.max_line {
            self.line.clear();
            return Err(WireError::SseLineTooLong(self.max_line));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseItem>) {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseItem::Event {
                    id: self.id.clone(),
                    event: self.event.take(),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(SseItem::Comment(
                comment.strip_prefix(' ').unwrap_or(comment).to_string(),
            ));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    out.push(SseItem::Retry(ms));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut p = SseParser::new(1 << 16);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).expect("parses");
        }
        out
    }

    #[test]
    fn event_round_trip_in_any_split() {
        let frame = sse_event(42, br#"{"a":1}"#);
        assert_eq!(&frame[..], b"id: 42\ndata: {\"a\":1}\n\n");
        for split in 0..frame.len() {
            let items = parse_all(&[&frame[..split], &frame[split..]]);
            assert_eq!(
                items,
                vec![SseItem::Event {
                    id: Some("42".into()),
                    event: None,
                    data: r#"{"a":1}"#.into()
                }],
                "split at {split}"
            );
        }
    }

    #[test]
    fn gap_heartbeat_retry_and_line_endings() {
        let gap = GapNotice {
            requested: 1,
            first_seq: 5,
            last_seq: 9,
        };
        let mut stream = Vec::new();
        stream.extend_from_slice(&sse_retry(1500));
        stream.extend_from_slice(SSE_HEARTBEAT);
        stream.extend_from_slice(&sse_gap(&gap));
        stream.extend_from_slice(b"id: 7\r\ndata: a\r\ndata: b\r\n\r\n");
        stream.extend_from_slice(b"data: c\r\r");
        let items = parse_all(&[&stream]);
        assert_eq!(items[0], SseItem::Retry(1500));
        assert_eq!(items[1], SseItem::Comment("heartbeat".into()));
        assert_eq!(
            items[2],
            SseItem::Event {
                id: None,
                event: Some("gap".into()),
                data: String::from_utf8(gap.to_json().to_vec()).expect("utf8"),
            }
        );
        assert_eq!(
            items[3],
            SseItem::Event {
                id: Some("7".into()),
                event: None,
                data: "a\nb".into()
            }
        );
        // The last event id persists for events without their own id.
        assert_eq!(
            items[4],
            SseItem::Event {
                id: Some("7".into()),
                event: None,
                data: "c".into()
            }
        );
    }

    #[test]
    fn long_line_is_an_error() {
        let mut p = SseParser::new(8);
        let mut out = Vec::new();
        assert_eq!(
            p.feed(b"data: 0123456789\n\n", &mut out),
            Err(WireError::SseLineTooLong(8))
        );
    }
}
