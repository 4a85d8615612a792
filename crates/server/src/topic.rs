//! Topic logs: per-topic append-only ring buffers read by cursor.
//!
//! Subscribers never get a queue of their own: they hold a cursor into the log and a
//! `watch` receiver that wakes them when the log grows. A `watch`, not a `Notify`,
//! because a receiver that was busy while several events arrived sees the change on
//! its next `changed()` instead of missing the wake-up. The log sits behind a std
//! `RwLock`, not a tokio one, because no await happens while it is held.
//!
//! Every stored event keeps its encodings (JSON envelope eagerly; SSE and binary on
//! first use), so a frame is encoded once and shared by every subscriber it goes to.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use pushbench_protocol::wire::{Event, GapNotice, sse_event};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One event as stored, with its encodings shared by every subscriber.
#[derive(Debug)]
pub struct Stored {
    /// Per-topic sequence number.
    pub seq: u64,
    /// Compact JSON data.
    pub data: Bytes,
    /// `{"seq":N,"data":...}`: poll bodies and WebSocket text frames.
    pub json: Bytes,
    sse: OnceLock<Bytes>,
    binary: OnceLock<Bytes>,
    ws_text: OnceLock<Utf8Bytes>,
}

impl Stored {
    fn new(seq: u64, data: Bytes) -> Stored {
        let event = Event { seq, data };
        Stored {
            seq,
            json: event.to_json(),
            data: event.data,
            sse: OnceLock::new(),
            binary: OnceLock::new(),
            ws_text: OnceLock::new(),
        }
    }

    /// The SSE frame `id: N\ndata: ...\n\n`, encoded on first use.
    pub fn sse(&self) -> &Bytes {
        self.sse.get_or_init(|| sse_event(self.seq, &self.data))
    }

    /// The JSON envelope as a WebSocket text payload: checked as UTF-8 once, on first
    /// use, not once per subscriber. It shares the bytes of [`Stored::json`].
    pub fn ws_text(&self) -> &Utf8Bytes {
        self.ws_text.get_or_init(|| {
            Utf8Bytes::try_from(self.json.clone()).expect("stored JSON was validated as UTF-8")
        })
    }

    /// The binary WebSocket envelope, encoded on first use.
    pub fn binary(&self) -> &Bytes {
        self.binary.get_or_init(|| {
            Event {
                seq: self.seq,
                data: self.data.clone(),
            }
            .to_binary()
        })
    }
}

/// The answer to "what comes after my cursor?".
#[derive(Debug)]
pub enum Read {
    /// Events with seq > cursor, oldest first (at most the requested number).
    Events(Vec<Arc<Stored>>),
    /// Nothing newer than the cursor yet.
    CaughtUp,
    /// The cursor is outside the retained log.
    Gap(GapNotice),
}

/// The answer of [`Topic::read_joined`].
#[derive(Debug)]
pub enum Joined {
    /// The frames of `n` events joined (or one event's shared frame), and the seq of the last.
    Frames(Bytes, usize, u64),
    /// Nothing newer than the cursor yet.
    CaughtUp,
    /// The cursor is outside the retained log.
    Gap(GapNotice),
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<Stored>>,
    last_seq: u64,
}

impl Ring {
    fn first_seq(&self) -> u64 {
        self.events.front().map_or(self.last_seq + 1, |e| e.seq)
    }
}

/// One topic: its log and the wake-up signal for its subscribers.
#[derive(Debug)]
pub struct Topic {
    log: RwLock<Ring>,
    grew: watch::Sender<u64>,
    retention: usize,
}

impl Topic {
    fn new(retention: usize) -> Topic {
        Topic {
            log: RwLock::new(Ring {
                events: VecDeque::with_capacity(retention.min(1024)),
                last_seq: 0,
            }),
            grew: watch::Sender::new(0),
            retention: retention.max(1),
        }
    }

    /// Appends an event, evicting the oldest beyond retention, and wakes subscribers.
    pub fn publish(&self, data: Bytes) -> u64 {
        let seq = {
            let mut ring = self.log.write().unwrap_or_else(|e| e.into_inner());
            let seq = ring.last_seq + 1;
            ring.events.push_back(Arc::new(Stored::new(seq, data)));
            ring.last_seq = seq;
            while ring.events.len() > self.retention {
                ring.events.pop_front();
            }
            seq
        };
        self.grew.send_replace(seq);
        seq
    }

    /// A receiver that wakes when the log grows. Take it before reading so no
    /// growth between the read and the wait is missed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.grew.subscribe()
    }

    /// The newest seq (0 when nothing was published).
    pub fn last_seq(&self) -> u64 {
        self.log.read().unwrap_or_else(|e| e.into_inner()).last_seq
    }

    /// The newest event, if any.
    pub fn latest(&self) -> Option<Arc<Stored>> {
        self.log
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .back()
            .cloned()
    }

    /// Events after `cursor`, at most `max` of them, or a gap notice; with the
    /// newest seq at the moment of the read.
    ///
    /// `None` means "no cursor": start at the oldest retained event, which is never a
    /// gap because the client claimed nothing. The returned cursor is where it started.
    pub fn read(&self, cursor: Option<u64>, max: usize) -> (Read, u64, u64) {
        let ring = self.log.read().unwrap_or_else(|e| e.into_inner());
        let (first, last) = (ring.first_seq(), ring.last_seq);
        let cursor = cursor.unwrap_or(first - 1);
        (Self::read_ring(&ring, cursor, max), last, cursor)
    }

    /// What comes after `cursor`, as bytes ready to write: the `frame` of the next
    /// event shared as is (no copy), or, when several are new, their frames joined
    /// up to `max_bytes` (at least one event). One read lock, one allocation at most.
    pub fn read_joined(
        &self,
        cursor: u64,
        max_bytes: usize,
        frame: impl Fn(&Stored) -> &Bytes,
    ) -> Joined {
        let ring = self.log.read().unwrap_or_else(|e| e.into_inner());
        let (first, last) = (ring.first_seq(), ring.last_seq);
        if cursor > last || cursor + 1 < first {
            return Joined::Gap(GapNotice {
                requested: cursor,
                first_seq: first,
                last_seq: last,
            });
        }
        if cursor == last {
            return Joined::CaughtUp;
        }
        let start = usize::try_from(cursor + 1 - first).expect("index within the ring");
        let mut evs = ring.events.range(start..);
        let head = evs.next().expect("cursor < last, so an event follows it");
        let one = frame(head);
        let (mut n, mut total) = (1, one.len());
        for e in evs.clone() {
            let len = frame(e).len();
            if total + len > max_bytes {
                break;
            }
            total += len;
            n += 1;
        }
        if n == 1 {
            return Joined::Frames(one.clone(), 1, head.seq);
        }
        let mut joined = Vec::with_capacity(total);
        joined.extend_from_slice(one);
        let mut last_seq = head.seq;
        for e in evs.take(n - 1) {
            joined.extend_from_slice(frame(e));
            last_seq = e.seq;
        }
        Joined::Frames(Bytes::from(joined), n, last_seq)
    }

    fn read_ring(ring: &Ring, cursor: u64, max: usize) -> Read {
        let (first, last) = (ring.first_seq(), ring.last_seq);
        if cursor > last || cursor + 1 < first {
            Read::Gap(GapNotice {
                requested: cursor,
                first_seq: first,
                last_seq: last,
            })
        } else if cursor == last {
            Read::CaughtUp
        } else {
            let start = usize::try_from(cursor + 1 - first).expect("index within the ring");
            Read::Events(ring.events.iter().skip(start).take(max).cloned().collect())
        }
    }
}

/// Why a topic could not be had.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server already holds {0} topics, its limit (--max-topics): use an existing topic or raise the limit"
)]
pub struct TooManyTopics(pub usize);

/// All topics, created on first use, up to a cap.
#[derive(Debug)]
pub struct Topics {
    map: RwLock<HashMap<String, Arc<Topic>>>,
    retention: usize,
    max_topics: usize,
}

impl Topics {
    /// An empty registry.
    pub fn new(retention: usize, max_topics: usize) -> Topics {
        Topics {
            map: RwLock::new(HashMap::new()),
            retention,
            max_topics,
        }
    }

    /// The topic if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The topic, created empty if it does not exist yet.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Topic>, TooManyTopics> {
        if let Some(t) = self.get(name) {
            return Ok(t);
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = map.get(name) {
            return Ok(t.clone());
        }
        if map.len() >= self.max_topics {
            return Err(TooManyTopics(self.max_topics));
        }
        let topic = Arc::new(Topic::new(self.retention));
        map.insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// Number of topics.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs((r, _, _): (Read, u64, u64)) -> Vec<u64> {
        match r {
            Read::Events(v) => v.iter().map(|e| e.seq).collect(),
            other => panic!("expected events, got {other:?}"),
        }
    }

    #[test]
    fn cursor_reads_and_gaps() {
        let t = Topic::new(3);
        assert!(matches!(t.read(Some(0), 10).0, Read::CaughtUp));
        for i in 1..=5 {
            assert_eq!(t.publish(Bytes::from(i.to_string())), i);
        }
        // Retained: 3, 4, 5.
        assert_eq!(seqs(t.read(Some(2), 10)), vec![3, 4, 5]);
        assert_eq!(seqs(t.read(Some(3), 1)), vec![4]);
        assert!(matches!(t.read(Some(5), 10).0, Read::CaughtUp));
        match t.read(Some(1), 10).0 {
            Read::Gap(g) => assert_eq!((g.requested, g.first_seq, g.last_seq), (1, 3, 5)),
            other => panic!("expected a gap, got {other:?}"),
        }
        // A cursor ahead of the log (the log was reset) is a gap too.
        assert!(matches!(t.read(Some(9), 10).0, Read::Gap(_)));
        // No cursor: whatever is retained, never a gap.
        assert_eq!(seqs(t.read(None, 2)), vec![3, 4]);
    }

    #[test]
    fn encodings_are_shared() {
        let t = Topic::new(10);
        t.publish(Bytes::from_static(b"{\"a\":1}"));
        let (Read::Events(a), _, _) = t.read(Some(0), 1) else {
            panic!("events")
        };
        let (Read::Events(b), _, _) = t.read(Some(0), 1) else {
            panic!("events")
        };
        assert_eq!(a[0].sse().as_ptr(), b[0].sse().as_ptr(), "one SSE encoding");
        assert_eq!(&a[0].sse()[..], b"id: 1\ndata: {\"a\":1}\n\n");
        assert_eq!(&a[0].json[..], b"{\"seq\":1,\"data\":{\"a\":1}}");
    }

    #[test]
    fn joined_reads_share_one_frame_and_join_several() {
        let t = Topic::new(4);
        assert!(matches!(
            t.read_joined(0, 100, |e| e.sse()),
            Joined::CaughtUp
        ));
        for i in 1..=6 {
            t.publish(Bytes::from(i.to_string()));
        }
        // Retained: 3..=6, each frame `id: N\ndata: N\n\n` is 16 bytes.
        let Joined::Frames(one, 1, 6) = t.read_joined(5, 100, |e| e.sse()) else {
            panic!("one event")
        };
        let (Read::Events(evs), _, _) = t.read(Some(5), 1) else {
            panic!("events")
        };
        assert_eq!(one.as_ptr(), evs[0].sse().as_ptr(), "shared, not copied");
        let Joined::Frames(two, 2, 4) = t.read_joined(2, 40, |e| e.sse()) else {
            panic!("two events fit in 40 bytes")
        };
        assert_eq!(&two[..], b"id: 3\ndata: 3\n\nid: 4\ndata: 4\n\n");
        // Never less than one event, however small the limit.
        assert!(matches!(
            t.read_joined(2, 1, |e| e.sse()),
            Joined::Frames(_, 1, 3)
        ));
        assert!(matches!(t.read_joined(1, 100, |e| e.sse()), Joined::Gap(_)));
        assert!(matches!(
            t.read_joined(6, 100, |e| e.sse()),
            Joined::CaughtUp
        ));
    }

    #[test]
    fn topic_cap() {
        let ts = Topics::new(10, 2);
        ts.get_or_create("a").expect("first");
        ts.get_or_create("b").expect("second");
        ts.get_or_create("a").expect("existing is fine");
        assert!(ts.get_or_create("c").is_err());
    }
}
