//! Server-Sent Events: `GET /topics/{t}/sse`.

mod common;

use std::time::{Duration, Instant};

use common::{Chunk, Conn, Resp, Sse, TestServer, fast_config, request_bytes, within};
use pushbench_protocol::wire::SseItem;
use pushbench_server::Config;

#[tokio::test]
async fn headers_retry_first_then_events_with_seq_ids() {
    within(async {
        let s = TestServer::start(Config {
            sse_retry: Duration::from_millis(1500),
            ..fast_config()
        })
        .await;
        s.publish("t", "{\"before\":true}").await;
        let mut sse = s.sse("/topics/t/sse", &[]).await;
        assert_eq!(sse.head.header("content-type"), Some("text/event-stream"));
        assert_eq!(sse.head.header("cache-control"), Some("no-cache"));
        assert_eq!(sse.head.header("x-accel-buffering"), Some("no"));
        assert_eq!(sse.head.header("transfer-encoding"), Some("chunked"));
        assert_eq!(sse.head.header("content-length"), None);
        assert_eq!(
            sse.next().await,
            Some(SseItem::Retry(1500)),
            "retry: comes first"
        );
        // Without a cursor the stream starts at the newest event: only new ones arrive.
        for i in 2..=4 {
            s.publish("t", &format!("{{\"n\":{i},\"s\":\"a b\"}}"))
                .await;
        }
        for i in 2..=4 {
            assert_eq!(
                sse.expect_event(i).await,
                format!("{{\"n\":{i},\"s\":\"a b\"}}")
            );
        }
    })
    .await;
}

#[tokio::test]
async fn exact_bytes_on_the_wire() {
    within(async {
        let s = TestServer::start(Config {
            sse_retry: Duration::from_millis(2000),
            ..fast_config()
        })
        .await;
        s.publish("t", "{ \"a\" : 1 }").await;
        let mut sse = s.sse("/topics/t/sse?since=0", &[]).await;
        let mut got = Vec::new();
        let want = b"retry: 2000\n\nid: 1\ndata: {\"a\":1}\n\n".to_vec();
        while got.len() < want.len() {
            match sse.conn.read_chunk().await {
                Chunk::Data(d) => got.extend_from_slice(&d),
                other => panic!("stream ended: {other:?}"),
            }
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    })
    .await;
}

#[tokio::test]
async fn resume_with_since_and_last_event_id() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for i in 1..=5 {
            s.publish("t", &i.to_string()).await;
        }
        let mut sse = s.sse("/topics/t/sse?since=2", &[]).await;
        for i in 3..=5 {
            assert_eq!(sse.expect_event(i).await, i.to_string());
        }
        // Last-Event-ID (what a reconnecting EventSource sends) wins over ?since=.
        let mut sse = s
            .sse("/topics/t/sse?since=0", &[("Last-Event-ID", "4")])
            .await;
        assert_eq!(sse.expect_event(5).await, "5");
        s.publish("t", "6").await;
        assert_eq!(sse.expect_event(6).await, "6");
        // since=0 replays everything retained.
        let mut sse = s.sse("/topics/t/sse?since=0", &[]).await;
        for i in 1..=6 {
            assert_eq!(sse.expect_event(i).await, i.to_string());
        }
        // Bad cursors are refused before the stream starts.
        s.get_with("/topics/t/sse", &[("Last-Event-ID", "abc")])
            .await
            .assert_error(400, "bad_last_event_id");
        s.get("/topics/t/sse?since=abc")
            .await
            .assert_error(400, "bad_since");
    })
    .await;
}

#[tokio::test]
async fn old_cursor_gets_a_gap_event_then_the_retained_events() {
    within(async {
        let s = TestServer::start(Config {
            retention: 5,
            ..fast_config()
        })
        .await;
        for i in 1..=10 {
            s.publish("t", &i.to_string()).await;
        }
        let streams = [
            s.sse("/topics/t/sse?since=1", &[]).await,
            s.sse("/topics/t/sse", &[("Last-Event-ID", "1")]).await,
        ];
        for (k, mut sse) in streams.into_iter().enumerate() {
            let (id, event, data) = sse.next_event().await.expect("a gap event");
            assert_eq!(event.as_deref(), Some("gap"));
            assert_eq!(id, None, "a gap carries no id, so Last-Event-ID stays put");
            assert_eq!(
                data,
                "{\"type\":\"gap\",\"requested\":1,\"first_seq\":6,\"last_seq\":10}"
            );
            for i in 6..=10 {
                assert_eq!(sse.expect_event(i).await, i.to_string());
            }
            // Then live events (each iteration publishes one more).
            let seq = s.publish("t", &(11 + k).to_string()).await;
            assert_eq!(seq, 11 + k as u64);
            for i in 11..=seq {
                assert_eq!(sse.expect_event(i).await, i.to_string());
            }
        }
        // A cursor ahead of the log (the log was reset): gap, then everything retained.
        let mut sse = s.sse("/topics/t/sse?since=100", &[]).await;
        let (_, event, data) = sse.next_event().await.expect("a gap event");
        assert_eq!(event.as_deref(), Some("gap"));
        assert_eq!(
            data,
            "{\"type\":\"gap\",\"requested\":100,\"first_seq\":8,\"last_seq\":12}"
        );
        for i in 8..=12 {
            assert_eq!(sse.expect_event(i).await, i.to_string());
        }
    })
    .await;
}

#[tokio::test]
async fn heartbeat_comments_at_the_configured_interval() {
    within(async {
        let s = TestServer::start(Config {
            sse_heartbeat: Duration::from_millis(200),
            ..fast_config()
        })
        .await;
        let mut sse = s.sse("/topics/t/sse", &[]).await;
        assert!(matches!(sse.next().await, Some(SseItem::Retry(_))));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(sse.next().await, Some(SseItem::Comment("heartbeat".into())));
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(350),
            "three heartbeats 200 ms apart took {took:?}"
        );
        // Events still flow between heartbeats.
        s.publish("t", "1").await;
        assert_eq!(sse.expect_event(1).await, "1");
    })
    .await;
}

#[tokio::test]
async fn shutdown_ends_the_stream_cleanly() {
    within(async {
        let mut s = TestServer::start(Config {
            shutdown_deadline: Duration::from_secs(10),
            ..fast_config()
        })
        .await;
        let mut a = s.sse("/topics/t/sse", &[]).await;
        let mut b = s.sse("/topics/u/sse?since=0", &[]).await;
        s.publish("t", "1").await;
        assert_eq!(a.expect_event(1).await, "1");
        assert!(matches!(b.next().await, Some(SseItem::Retry(_))));
        let start = Instant::now();
        s.shutdown.cancel();
        for sse in [&mut a, &mut b] {
            assert_eq!(sse.next_event().await, None, "no more events");
            assert_eq!(sse.end, Some(Chunk::End), "the chunked body terminates");
            sse.conn.wait_closed().await;
        }
        s.stop().await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "told at once, not forced at the 10 s deadline"
        );
    })
    .await;
}

#[tokio::test]
async fn origins_outside_allow_origin_are_403() {
    within(async {
        let s = TestServer::start(Config {
            allow_origins: vec!["https://good.example".into()],
            ..fast_config()
        })
        .await;
        let sse = s
            .sse_raw("/topics/t/sse", &[("Origin", "https://evil.example")])
            .await;
        assert_eq!(sse.head.status, 403);
        let r = s
            .get_with("/topics/t/sse", &[("Origin", "https://evil.example")])
            .await;
        r.assert_error(403, "origin_not_allowed");
        assert_eq!(r.header("access-control-allow-origin"), None);

        let mut ok = s
            .sse("/topics/t/sse", &[("Origin", "https://good.example")])
            .await;
        assert_eq!(
            ok.head.header("access-control-allow-origin"),
            Some("https://good.example")
        );
        assert_eq!(ok.head.header("vary"), Some("Origin"));
        // No Origin header (not a browser): allowed.
        let mut plain = s.sse("/topics/t/sse", &[]).await;
        s.publish("t", "1").await;
        assert_eq!(ok.expect_event(1).await, "1");
        assert_eq!(plain.expect_event(1).await, "1");
    })
    .await;
}

#[tokio::test]
async fn subscribers_are_counted_in_metrics() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut a = s.sse("/topics/t/sse", &[]).await;
        let mut b = s.sse("/topics/t/sse", &[]).await;
        assert!(a.next().await.is_some() && b.next().await.is_some());
        assert_eq!(
            s.metric("pushbench_subscribers_open{strategy=\"sse\"}")
                .await,
            2.0
        );
        s.publish("t", "{\"x\":1}").await;
        a.expect_event(1).await;
        b.expect_event(1).await;
        assert_eq!(
            s.metric("pushbench_deliveries_total{strategy=\"sse\"}")
                .await,
            2.0
        );
        drop(a);
        drop(b);
        // The server notices the closed sockets without any traffic to send.
        s.publish("other", "1").await;
        loop {
            if s.metric("pushbench_subscribers_open{strategy=\"sse\"}")
                .await
                == 0.0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_http_1_0_client_gets_a_close_delimited_stream() {
    within(async {
        let mut s = TestServer::start(Config {
            shutdown_deadline: Duration::from_secs(10),
            ..fast_config()
        })
        .await;
        for i in 1..=2 {
            s.publish("t", &i.to_string()).await;
        }
        let mut c = s.connect().await;
        c.send(b"GET /topics/t/sse?since=0 HTTP/1.0\r\n\r\n").await;
        let head = c.read_head().await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        assert_eq!(
            head.header("transfer-encoding"),
            None,
            "no chunking in HTTP/1.0"
        );
        let mut parser = pushbench_protocol::wire::SseParser::new(1 << 16);
        let mut items = Vec::new();
        s.publish("t", "3").await;
        while !items
            .iter()
            .any(|i| matches!(i, SseItem::Event { id: Some(id), .. } if id == "3"))
        {
            let bytes = c.read_some().await;
            assert!(!bytes.is_empty(), "the stream ended early");
            parser.feed(&bytes, &mut items).expect("valid SSE");
        }
        let ids: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                SseItem::Event { id, .. } => id.as_deref(),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        // Shutdown ends it with a close.
        s.shutdown.cancel();
        c.wait_closed().await;
        s.stop().await;
    })
    .await;
}

/// Reads body bytes of a chunked stream until `n` have arrived.
async fn body_bytes(conn: &mut Conn, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        match conn.read_chunk().await {
            Chunk::Data(d) => got.extend_from_slice(&d),
            other => panic!("stream ended after {got:?}: {other:?}"),
        }
    }
    got
}

/// A connection that has already served one request, ready for its second.
async fn kept_alive(s: &TestServer) -> Conn {
    let mut c = s.connect().await;
    c.send(&request_bytes("GET", "/healthz", &[], None)).await;
    assert_eq!(c.read_response(false).await.status, 200);
    c
}

// A stream request that opens its connection is served on the raw socket, one that
// follows another request on a kept-alive connection by hyper: clients must not be
// able to tell them apart.
#[tokio::test]
async fn first_request_and_keep_alive_second_request_stream_the_same_bytes() {
    within(async {
        let s = TestServer::start(Config {
            sse_retry: Duration::from_millis(2500),
            ..fast_config()
        })
        .await;
        for i in 1..=3 {
            s.publish("t", &format!("{{\"n\":{i}}}")).await;
        }
        let headers = [("Origin", "https://a.example"), ("Last-Event-ID", "1")];
        let mut first = s.sse("/topics/t/sse", &headers).await;
        let mut second = Sse::open(kept_alive(&s).await, "/topics/t/sse", &headers).await;
        assert_eq!(second.head.status, 200);
        assert_eq!(first.head.without_date(), second.head.without_date());
        assert!(first.head.header("date").is_some());
        assert_eq!(first.head.header("transfer-encoding"), Some("chunked"));
        assert_eq!(
            s.metric("pushbench_subscribers_open{strategy=\"sse\"}")
                .await,
            2.0
        );
        let replay = b"retry: 2500\n\nid: 2\ndata: {\"n\":2}\n\nid: 3\ndata: {\"n\":3}\n\n";
        assert_eq!(body_bytes(&mut first.conn, replay.len()).await, replay);
        assert_eq!(body_bytes(&mut second.conn, replay.len()).await, replay);
        s.publish("t", "{\"n\":4}").await;
        let live = b"id: 4\ndata: {\"n\":4}\n\n";
        assert_eq!(body_bytes(&mut first.conn, live.len()).await, live);
        assert_eq!(body_bytes(&mut second.conn, live.len()).await, live);
        assert_eq!(
            s.metric("pushbench_deliveries_total{strategy=\"sse\"}")
                .await,
            6.0
        );
    })
    .await;
}

#[tokio::test]
async fn a_request_head_split_across_two_writes_still_streams() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "1").await;
        for split in [3, 20, 40] {
            let mut c = s.connect().await;
            let req = request_bytes(
                "GET",
                "/topics/t/sse?since=0",
                &[("Accept", "text/event-stream")],
                None,
            );
            let (a, b) = req.split_at(split);
            c.send(a).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.send(b).await;
            let head = c.read_head().await;
            assert_eq!(head.status, 200, "split at {split}");
            assert_eq!(head.header("content-type"), Some("text/event-stream"));
            let mut sse = Sse::started(c, head);
            assert_eq!(sse.expect_event(1).await, "1");
        }
        s.publish("t", "2").await;
    })
    .await;
}

#[tokio::test]
async fn refused_streams_get_the_same_answer_first_or_second_on_a_connection() {
    within(async {
        let s = TestServer::start(Config {
            allow_origins: vec!["https://good.example".into()],
            max_topics: 1,
            ..fast_config()
        })
        .await;
        s.publish("t", "1").await;
        // Path, request headers, status, error code.
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            u16,
            &'static str,
        );
        let cases: [Case; 5] = [
            ("/topics/t/sse?since=abc", &[], 400, "bad_since"),
            (
                "/topics/t/sse",
                &[("Last-Event-ID", "x")],
                400,
                "bad_last_event_id",
            ),
            (
                "/topics/t/sse",
                &[("Origin", "https://evil.example")],
                403,
                "origin_not_allowed",
            ),
            ("/topics/other/sse", &[], 429, "too_many_topics"),
            ("/topics/b%20d/sse", &[], 400, "bad_topic"),
        ];
        for (path, headers, status, code) in cases {
            let first: Resp = s.get_with(path, headers).await;
            first.assert_error(status, code);
            let mut c = kept_alive(&s).await;
            c.send(&request_bytes("GET", path, headers, None)).await;
            let second = c.read_response(false).await;
            assert_eq!(first.status, second.status, "{path}");
            assert_eq!(first.text(), second.text(), "{path}");
            let no_date = |r: &Resp| -> Vec<(String, String)> {
                r.headers
                    .iter()
                    .filter(|(k, _)| k != "date")
                    .cloned()
                    .collect()
            };
            assert_eq!(no_date(&first), no_date(&second), "{path}");
        }
    })
    .await;
}
