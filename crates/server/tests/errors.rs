//! Bad input: unknown paths, wrong methods, garbage instead of HTTP, and proof that
//! none of it harms other connections.

mod common;

use std::time::Duration;

use common::{Conn, RawWs, TestServer, fast_config, request_bytes, within};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn unknown_paths_are_404_json() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for path in [
            "/",
            "/nope",
            "/topics",
            "/topics/t",
            "/topics/t/other",
            "/topics/t/events/extra",
            "/healthz/",
            "/metrics/x",
        ] {
            let r = s.get(path).await;
            r.assert_error(404, "not_found");
        }
        let r = s.post("/nope", b"{}").await;
        r.assert_error(404, "not_found");
    })
    .await;
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for (method, path, allow) in [
            ("DELETE", "/topics/t/events", "GET, HEAD, POST, OPTIONS"),
            ("PUT", "/topics/t/events", "GET, HEAD, POST, OPTIONS"),
            ("POST", "/topics/t/latest", "GET, HEAD, OPTIONS"),
            ("POST", "/topics/t/sse", "GET, OPTIONS"),
            ("PATCH", "/topics/t/ws", "GET, OPTIONS"),
            ("GET", "/beacon", "POST, OPTIONS"),
            ("POST", "/healthz", "GET, HEAD, OPTIONS"),
            ("DELETE", "/metrics", "GET, HEAD, OPTIONS"),
        ] {
            let r = s.request(method, path, &[], b"").await;
            r.assert_error(405, "method_not_allowed");
            assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        }
        // Nothing was published by the refused requests.
        assert_eq!(s.metric("pushbench_events_published_total").await, 0.0);
    })
    .await;
}

#[tokio::test]
async fn garbage_instead_of_http_is_400_not_http_and_closed() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for garbage in [
            &b"\x00\x01\x02\x03garbage\r\n\r\n"[..],
            b"hello there\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"{\"type\":\"publish\"}\n",
            b"get / HTTP/1.1\r\n\r\n",
        ] {
            let mut c = s.connect().await;
            c.send(garbage).await;
            let r = c.read_response(false).await;
            let v = r.assert_error(400, "not_http");
            assert_eq!(r.header("connection"), Some("close"));
            if garbage[0] == 0x16 {
                assert!(
                    v["detail"].as_str().is_some_and(|d| d.contains("TLS")),
                    "a TLS hello gets a hint: {v}"
                );
            }
            c.wait_closed().await;
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_http_gets_400_and_a_close() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for bad in [
            &b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n"[..],
            b"GET /healthz HTTP/9.9\r\n\r\n",
            b"POST /topics/t/events HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}",
            b"POST /topics/t/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let mut c = s.connect().await;
            c.send(bad).await;
            let rest = c.read_to_end().await;
            let text = String::from_utf8_lossy(&rest);
            // hyper answers a malformed head itself (a bare 400, not the JSON shape);
            // a body that cannot be decoded reaches the router and gets JSON `bad_body`.
            assert!(
                text.starts_with("HTTP/1.1 400 "),
                "400 then a close for {:?}, got {text:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(s.metric("pushbench_events_published_total").await, 0.0);
        assert_eq!(s.get("/healthz").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn bad_input_does_not_disturb_other_subscribers() {
    within(async {
        let s = TestServer::start(pushbench_server::Config {
            max_body: 2048,
            retention: 5,
            ..fast_config()
        })
        .await;
        let mut sse = s.sse("/topics/t/sse?since=0", &[]).await;
        let mut ws = s.ws("/topics/t/ws?since=0").await;
        let mut expected = Vec::new();
        let mut publish = async |s: &TestServer, n: usize| {
            let seq = s.publish("t", &format!("{{\"n\":{n}}}")).await;
            expected.push(seq);
        };
        let bad_requests: Vec<Vec<u8>> = vec![
            b"\x00\xffjunk".to_vec(),
            request_bytes("POST", "/topics/t/events", &[], Some(b"{bad json")),
            request_bytes("POST", "/topics/t/events", &[], Some(b"")),
            request_bytes("POST", "/topics/t/events", &[], Some(&[b'1'; 5000])),
            request_bytes("POST", "/topics/b@d/events", &[], Some(b"1")),
            request_bytes("GET", "/topics/t/events?since=abc", &[], None),
            request_bytes("GET", "/topics/t/events?since=0&wait=-1", &[], None),
            request_bytes("GET", "/topics/t/events?since=1", &[], None),
            request_bytes("GET", "/no/such/path", &[], None),
            request_bytes("DELETE", "/topics/t/events", &[], None),
            request_bytes("GET", "/topics/t/ws", &[("Upgrade", "websocket")], None),
            b"GET /topics/t/sse HTTP/1.1\r\nLast-Event-ID: x\r\n\r\n".to_vec(),
        ];
        for (i, bad) in bad_requests.iter().enumerate() {
            publish(&s, i).await;
            let mut c = s.connect().await;
            c.send(bad).await;
            let r = c.read_response(false).await;
            assert!(
                (400..500).contains(&r.status),
                "bad request {i} answered {}",
                r.status
            );
        }
        // Bad WebSocket frames on their own sockets.
        for frame in [
            RawWs::frame(true, 1, None, b"unmasked"),
            RawWs::frame(true, 0xb, Some([1, 2, 3, 4]), b""),
        ] {
            publish(&s, 100).await;
            let mut raw = s.raw_ws("/topics/t/ws").await;
            raw.conn.send(&frame).await;
            assert_eq!(raw.read_close().await.0, 1002);
        }
        // A half-sent request left hanging, and a client that vanishes mid-body.
        let mut hanging = Conn::connect(s.addr).await;
        hanging.send(b"GET /topics/t/events HTTP/1.1\r\nHo").await;
        let mut vanishing = Conn::connect(s.addr).await;
        vanishing
            .send(b"POST /topics/t/events HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a\":")
            .await;
        drop(vanishing);
        publish(&s, 200).await;

        // Both subscribers got every event, complete and in order.
        let total = expected.len() as u64;
        assert_eq!(expected, (1..=total).collect::<Vec<_>>());
        for seq in 1..=total {
            let data = sse.expect_event(seq).await;
            assert!(data.starts_with("{\"n\":"), "{data}");
        }
        let mut got = Vec::new();
        while (got.len() as u64) < total {
            match ws.next().await.expect("open").expect("no error") {
                Message::Text(t) => got.push(t.as_str().to_string()),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        for (i, t) in got.iter().enumerate() {
            assert!(t.starts_with(&format!("{{\"seq\":{},", i + 1)), "{t}");
        }
        assert!(sse.conn.quiet_for(Duration::from_millis(50)).await);
        drop(hanging);
    })
    .await;
}

#[tokio::test]
async fn huge_request_heads_are_431_and_closed() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let big = "a".repeat(1_000_000);
        let mut c = s.connect().await;
        // The server may stop reading (and answer) before all of it is sent.
        c.try_send(&request_bytes("GET", "/healthz", &[("X-Big", &big)], None))
            .await;
        let rest = c.read_to_end().await;
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.starts_with("HTTP/1.1 431 "),
            "431 then a close, got {:?}",
            &text[..text.len().min(100)]
        );
        assert_eq!(s.get("/healthz").await.status, 200);
    })
    .await;
}
