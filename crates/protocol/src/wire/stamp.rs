//! The publisher's stamp: who published an event, its place in the publisher's own
//! sequence, and when it was meant to go out and did go out. Loss, duplication and
//! order are judged against this stamp, never against the server's `seq`.

use serde::{Deserialize, Serialize};

use super::WireError;

/// The identity and timing carried inside every event body a pushbench publisher sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Publisher id (the chat pattern has one per client).
    #[serde(rename = "pub")]
    pub publisher: u32,
    /// Topic index within the scenario (0 when there is one topic).
    #[serde(rename = "topic", default)]
    pub topic: u32,
    /// The publisher's own sequence number for this topic, from 1.
    #[serde(rename = "pseq")]
    pub seq: u64,
    /// Intended publish time on the open-loop schedule, wall-clock ns since the Unix epoch.
    #[serde(rename = "intended_ns")]
    pub intended_ns: u64,
    /// When the publisher actually sent it, wall-clock ns since the Unix epoch.
    #[serde(rename = "sent_ns")]
    pub sent_ns: u64,
}

impl Stamp {
    /// Reads the stamp out of an event's JSON data (other fields, such as `pad`, are skipped).
    pub fn decode(data: &[u8]) -> Result<Stamp, WireError> {
        serde_json::from_slice(data).map_err(|e| {
            WireError::Malformed(format!(
                "event data has no pushbench stamp ({e}); was it published by pushbench?"
            ))
        })
    }
}

/// Encodes a stamped body, padded with `x` characters to `size` bytes when the stamp
/// alone is shorter (it is never truncated: the stamp is about 100 bytes).
pub fn encode_stamped_body(stamp: &Stamp, size: usize) -> Vec<u8> {
    let mut out = serde_json::to_vec(stamp).expect("a struct of integers always serializes");
    // `,"pad":""` is 9 bytes; add it only when it fits.
    if out.len() + 9 <= size {
        out.pop();
        out.extend_from_slice(b",\"pad\":\"");
        let fill = size - out.len() - 2;
        out.resize(out.len() + fill, b'x');
        out.extend_from_slice(b"\"}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip_and_padding() {
        let s = Stamp {
            publisher: 3,
            topic: 1,
            seq: 99,
            intended_ns: 1_700_000_000_000_000_000,
            sent_ns: 1_700_000_000_000_000_123,
        };
        for size in [0, 50, 120, 256, 4096] {
            let body = encode_stamped_body(&s, size);
            assert!(body.len() >= size.min(body.len()));
            if size >= 130 {
                assert_eq!(body.len(), size, "padded to the payload size");
            }
            assert_eq!(Stamp::decode(&body), Ok(s));
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok());
        }
        assert!(Stamp::decode(br#"{"price":1}"#).is_err());
    }
}
