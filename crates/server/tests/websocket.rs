//! WebSocket: `GET /topics/{t}/ws?since=N&format=text|binary`, heartbeats, close codes,
//! and the refusals of bad handshakes and bad frames.

mod common;

use std::time::{Duration, Instant};

use common::{
    RawWs, TestServer, collect_ws, fast_config, publish_all, within, ws_next, ws_upgrade_bytes,
};
use futures_util::{SinkExt, StreamExt};
use pushbench_protocol::wire::{GapNotice, ServerMessage, decode_binary, decode_text};
use pushbench_server::Config;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The next text frame, decoded.
async fn next_text(ws: &mut common::Ws) -> String {
    match ws_next(ws).await.expect("a message") {
        Message::Text(t) => t.as_str().to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Asserts the next text frame is event `seq` with `data`.
async fn expect_text_event(ws: &mut common::Ws, seq: u64, data: &str) {
    let text = next_text(ws).await;
    assert_eq!(text, format!("{{\"seq\":{seq},\"data\":{data}}}"));
    assert_eq!(
        decode_text(&text).expect("decodes"),
        ServerMessage::Event {
            seq,
            data: data.as_bytes()
        }
    );
}

/// Asserts the next binary frame is event `seq` with `data`.
async fn expect_binary_event(ws: &mut common::Ws, seq: u64, data: &str) {
    match ws_next(ws).await.expect("a message") {
        Message::Binary(b) => assert_eq!(
            decode_binary(&b).expect("decodes"),
            ServerMessage::Event {
                seq,
                data: data.as_bytes()
            }
        ),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// The next close frame's code and reason.
async fn expect_close(ws: &mut common::Ws) -> (CloseCode, String) {
    match ws_next(ws).await.expect("a close frame") {
        Message::Close(Some(f)) => (f.code, f.reason.as_str().to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn text_frames_with_since_and_live_events() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for i in 1..=3 {
            s.publish("t", &format!("{{\"i\":{i}}}")).await;
        }
        let mut ws = s.ws("/topics/t/ws?since=0").await;
        for i in 1..=3 {
            expect_text_event(&mut ws, i, &format!("{{\"i\":{i}}}")).await;
        }
        s.publish("t", "{ \"i\" : 4 }").await;
        expect_text_event(&mut ws, 4, "{\"i\":4}").await;

        let mut resumed = s.ws("/topics/t/ws?since=2&format=text").await;
        expect_text_event(&mut resumed, 3, "{\"i\":3}").await;
        expect_text_event(&mut resumed, 4, "{\"i\":4}").await;

        // Without since, only events published after the connection arrive.
        let mut fresh = s.ws("/topics/t/ws").await;
        assert_eq!(
            s.metric("pushbench_subscribers_open{strategy=\"websocket\"}")
                .await,
            3.0
        );
        s.publish("t", "5").await;
        expect_text_event(&mut fresh, 5, "5").await;
        expect_text_event(&mut ws, 5, "5").await;
    })
    .await;
}

#[tokio::test]
async fn binary_frames_decode() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for i in 1..=3 {
            s.publish("t", &format!("[{i},\"x\"]")).await;
        }
        let mut ws = s.ws("/topics/t/ws?since=1&format=binary").await;
        expect_binary_event(&mut ws, 2, "[2,\"x\"]").await;
        expect_binary_event(&mut ws, 3, "[3,\"x\"]").await;
        s.publish("t", "{\"live\":true}").await;
        match ws_next(&mut ws).await.expect("a message") {
            Message::Binary(b) => {
                let mut want = vec![0x01];
                want.extend_from_slice(&4u64.to_be_bytes());
                want.extend_from_slice(b"{\"live\":true}");
                assert_eq!(&b[..], &want[..], "0x01, seq u64 BE, data");
            }
            other => panic!("expected a binary frame, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn old_cursor_gets_a_gap_control_frame_then_retained_events() {
    within(async {
        let s = TestServer::start(Config {
            retention: 5,
            ..fast_config()
        })
        .await;
        for i in 1..=10 {
            s.publish("t", &i.to_string()).await;
        }
        let gap = GapNotice {
            requested: 1,
            first_seq: 6,
            last_seq: 10,
        };
        let mut ws = s.ws("/topics/t/ws?since=1").await;
        let text = next_text(&mut ws).await;
        assert_eq!(
            text,
            "{\"type\":\"gap\",\"requested\":1,\"first_seq\":6,\"last_seq\":10}"
        );
        assert_eq!(
            decode_text(&text).expect("decodes"),
            ServerMessage::Gap(gap)
        );
        for i in 6..=10 {
            expect_text_event(&mut ws, i, &i.to_string()).await;
        }

        let mut bin = s.ws("/topics/t/ws?since=1&format=binary").await;
        match ws_next(&mut bin).await.expect("a message") {
            Message::Binary(b) => {
                assert_eq!(decode_binary(&b).expect("decodes"), ServerMessage::Gap(gap));
            }
            other => panic!("expected a binary gap frame, got {other:?}"),
        }
        for i in 6..=10 {
            expect_binary_event(&mut bin, i, &i.to_string()).await;
        }

        // A cursor ahead of the log: a gap, then everything retained.
        let mut ahead = s.ws("/topics/t/ws?since=50").await;
        assert_eq!(
            decode_text(&next_text(&mut ahead).await).expect("decodes"),
            ServerMessage::Gap(GapNotice {
                requested: 50,
                first_seq: 6,
                last_seq: 10
            })
        );
        for i in 6..=10 {
            expect_text_event(&mut ahead, i, &i.to_string()).await;
        }
        // All three go on receiving live events.
        s.publish("t", "11").await;
        expect_text_event(&mut ws, 11, "11").await;
        expect_binary_event(&mut bin, 11, "11").await;
        expect_text_event(&mut ahead, 11, "11").await;
    })
    .await;
}

#[tokio::test]
async fn app_ping_gets_pong() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut ws = s.ws("/topics/t/ws").await;
        for _ in 0..3 {
            ws.send(Message::text("ping")).await.expect("send");
            let t = next_text(&mut ws).await;
            assert_eq!(t, "pong");
            assert_eq!(decode_text(&t).expect("decodes"), ServerMessage::Pong);
        }
    })
    .await;
}

#[tokio::test]
async fn publish_over_the_socket_reaches_other_subscribers() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut a = s.ws("/topics/t/ws").await;
        let mut b = s.ws("/topics/t/ws?format=binary").await;
        let mut sse = s.sse("/topics/t/sse", &[]).await;
        a.send(Message::text(
            "{\"type\":\"publish\",\"data\":{ \"from\" : \"a\" }}",
        ))
        .await
        .expect("send");
        expect_binary_event(&mut b, 1, "{\"from\":\"a\"}").await;
        expect_text_event(&mut a, 1, "{\"from\":\"a\"}").await;
        assert_eq!(sse.expect_event(1).await, "{\"from\":\"a\"}");
        let r = s.get("/topics/t/events?since=0").await;
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":1,\"data\":{\"from\":\"a\"}}],\"next\":1}"
        );
        assert_eq!(s.metric("pushbench_events_published_total").await, 1.0);
        // Malformed publishes get an error message; the socket stays open.
        for bad in [
            "{\"type\":\"publish\",\"data\":{\"x\":}}",
            "{\"type\":\"subscribe\"}",
            "hello",
        ] {
            a.send(Message::text(bad)).await.expect("send");
            let t = next_text(&mut a).await;
            assert_eq!(
                decode_text(&t).expect("decodes"),
                ServerMessage::Error("bad_message".into()),
                "{t}"
            );
        }
        a.send(Message::text("ping")).await.expect("send");
        assert_eq!(next_text(&mut a).await, "pong");
    })
    .await;
}

#[tokio::test]
async fn publish_over_the_socket_needs_the_token_when_set() {
    within(async {
        let s = TestServer::start(Config {
            publish_token: Some("tok".into()),
            ..fast_config()
        })
        .await;
        let mut anon = s.ws("/topics/t/ws").await;
        anon.send(Message::text("{\"type\":\"publish\",\"data\":1}"))
            .await
            .expect("send");
        assert_eq!(
            decode_text(&next_text(&mut anon).await).expect("decodes"),
            ServerMessage::Error("unauthorized".into())
        );
        let mut req = format!("ws://{}/topics/t/ws", s.addr)
            .into_client_request()
            .expect("request");
        req.headers_mut()
            .insert("Authorization", "Bearer tok".parse().expect("header value"));
        let stream = tokio::net::TcpStream::connect(s.addr)
            .await
            .expect("connect");
        let (mut authed, _) = tokio_tungstenite::client_async(req, stream)
            .await
            .expect("handshake");
        authed
            .send(Message::text("{\"type\":\"publish\",\"data\":2}"))
            .await
            .expect("send");
        expect_text_event(&mut anon, 1, "2").await;
        expect_text_event(&mut authed, 1, "2").await;
    })
    .await;
}

#[tokio::test]
async fn binary_from_client_is_an_error_message_and_the_socket_stays_open() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut ws = s.ws("/topics/t/ws").await;
        ws.send(Message::binary(vec![1u8, 2, 3]))
            .await
            .expect("send");
        let t = next_text(&mut ws).await;
        let v: serde_json::Value = serde_json::from_str(&t).expect("JSON");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"], "unsupported");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
        s.publish("t", "1").await;
        expect_text_event(&mut ws, 1, "1").await;
        ws.send(Message::text("ping")).await.expect("send");
        assert_eq!(next_text(&mut ws).await, "pong");
    })
    .await;
}

#[tokio::test]
async fn server_pings_and_an_answering_client_stays_connected() {
    within(async {
        let s = TestServer::start(Config {
            ws_ping: Duration::from_millis(100),
            ws_pong_timeout: Duration::from_millis(300),
            ..fast_config()
        })
        .await;
        let mut ws = s.ws("/topics/t/ws").await;
        let start = Instant::now();
        let mut pings = 0;
        // tungstenite answers each ping with a pong as it reads.
        while start.elapsed() < Duration::from_millis(1000) {
            match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => panic!("no ping within 2 s"),
            }
        }
        // Every 100 ms for a second: well over the pong timeout, so the pongs counted.
        assert!(pings >= 4, "pings every 100 ms, got {pings} in 1 s");
        s.publish("t", "1").await;
        expect_text_event(&mut ws, 1, "1").await;
        assert_eq!(s.metric("pushbench_heartbeat_timeouts_total").await, 0.0);
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_closed_with_4000() {
    within(async {
        let s = TestServer::start(Config {
            ws_ping: Duration::from_millis(150),
            ws_pong_timeout: Duration::from_millis(200),
            ..fast_config()
        })
        .await;
        let mut raw = s.raw_ws("/topics/t/ws").await;
        let f = raw.read_frame().await.expect("a ping");
        let start = Instant::now();
        assert_eq!((f.fin, f.opcode), (true, 9), "a ping frame: {f:?}");
        let (code, reason) = raw.read_close().await;
        assert_eq!(code, 4000);
        assert!(reason.contains("heartbeat timeout"), "{reason}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(150),
            "closed about 200 ms after the ping, not at once: {took:?}"
        );
        assert_eq!(s.metric("pushbench_heartbeat_timeouts_total").await, 1.0);
        // The server then gives up on the close handshake and drops the socket.
        raw.conn.wait_closed().await;
        loop {
            let open = s
                .metric("pushbench_subscribers_open{strategy=\"websocket\"}")
                .await;
            if open == 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_slow_reader_behind_a_backlog_is_not_taken_for_a_dead_peer() {
    within(async {
        // Pings every 100 ms, 500 ms to answer; the reader needs seconds to get through
        // its 3 MB backlog, so each ping waits far longer than that behind queued events.
        let s = TestServer::start(Config {
            ws_ping: Duration::from_millis(100),
            ws_pong_timeout: Duration::from_millis(500),
            ..fast_config()
        })
        .await;
        let pad = "x".repeat(1000);
        let n = 3000u64;
        publish_all(
            s.addr,
            "t",
            (1..=n).map(|i| format!("{{\"i\":{i},\"pad\":\"{pad}\"}}")),
        )
        .await;
        // A client with a small receive buffer, so what is queued ahead of a ping sits
        // mostly in the server's hands (where its writes show the peer is alive), not in
        // kernel buffers (where nothing shows it; see the server's liveness.rs).
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(32 * 1024).expect("SO_RCVBUF");
        let stream = socket.connect(s.addr).await.expect("connect");
        let url = format!("ws://{}/topics/t/ws?since=0", s.addr);
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("WebSocket handshake");
        let mut last = 0;
        while last < n {
            let got = collect_ws(&mut ws, last + 1).await;
            assert_eq!(got[0].0, last + 1, "in order, nothing skipped");
            last = got[got.len() - 1].0;
            // Read about one event per millisecond: 3,000 events take seconds.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(s.metric("pushbench_heartbeat_timeouts_total").await, 0.0);
        assert_eq!(s.metric("pushbench_slow_consumer_closes_total").await, 0.0);
    })
    .await;
}

#[tokio::test]
async fn shutdown_sends_close_1001() {
    within(async {
        let mut s = TestServer::start(fast_config()).await;
        let mut a = s.ws("/topics/t/ws").await;
        let mut raw = s.raw_ws("/topics/t/ws?format=binary").await;
        s.publish("t", "1").await;
        expect_text_event(&mut a, 1, "1").await;
        let f = raw.read_frame().await.expect("the event");
        assert_eq!(f.opcode, 2);
        s.shutdown.cancel();
        let (code, reason) = expect_close(&mut a).await;
        assert_eq!(code, CloseCode::Away);
        assert_eq!(reason, "server shutting down");
        assert!(
            ws_next(&mut a).await.is_none(),
            "the stream ends after the close"
        );
        let (code, _) = raw.read_close().await;
        assert_eq!(code, 1001);
        // Answer the close like a polite client; the server then closes TCP.
        raw.send(8, &1001u16.to_be_bytes()).await;
        raw.conn.wait_closed().await;
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn oversize_message_is_closed_with_1009() {
    within(async {
        let s = TestServer::start(Config {
            max_body: 1024,
            ..fast_config()
        })
        .await;
        let mut ws = s.ws("/topics/t/ws").await;
        let fits = format!("{{\"type\":\"publish\",\"data\":\"{}\"}}", "x".repeat(900));
        ws.send(Message::text(fits)).await.expect("send");
        let t = next_text(&mut ws).await;
        assert!(t.starts_with("{\"seq\":1,"), "{}", &t[..20]);
        let big = format!("{{\"type\":\"publish\",\"data\":\"{}\"}}", "x".repeat(2000));
        ws.send(Message::text(big)).await.expect("send");
        let (code, reason) = expect_close(&mut ws).await;
        assert_eq!(code, CloseCode::Size);
        assert!(
            reason.contains("1024"),
            "the reason names the limit: {reason}"
        );
        // Fragmented messages are judged by their total size too.
        let mut raw = s.raw_ws("/topics/t/ws").await;
        let mask = Some([1, 2, 3, 4]);
        let part = vec![b'a'; 700];
        raw.conn.send(&RawWs::frame(false, 1, mask, &part)).await;
        raw.conn.send(&RawWs::frame(true, 0, mask, &part)).await;
        assert_eq!(raw.read_close().await.0, 1009);
        assert_eq!(s.metric("pushbench_events_published_total").await, 1.0);
    })
    .await;
}

#[tokio::test]
async fn bad_upgrade_requests_get_json_errors() {
    within(async {
        let s = TestServer::start(Config {
            allow_origins: vec!["https://good.example".into()],
            ..fast_config()
        })
        .await;
        let send = |req: Vec<u8>| {
            let addr = s.addr;
            async move {
                let mut c = common::Conn::connect(addr).await;
                c.send(&req).await;
                c.read_response(false).await
            }
        };
        // A plain GET: no Upgrade header.
        let r = s.get("/topics/t/ws").await;
        r.assert_error(426, "websocket_required");
        assert_eq!(r.header("upgrade"), Some("websocket"));
        // Wrong version.
        let req = common::request_bytes(
            "GET",
            "/topics/t/ws",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", common::WS_KEY),
                ("Sec-WebSocket-Version", "8"),
            ],
            None,
        );
        let r = send(req).await;
        r.assert_error(426, "bad_websocket_version");
        assert_eq!(r.header("sec-websocket-version"), Some("13"));
        // Missing or malformed key.
        for key in [None, Some("short"), Some("!!!!!!!!!!!!!!!!!!!!!!==")] {
            let mut h = vec![
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
            ];
            if let Some(k) = key {
                h.push(("Sec-WebSocket-Key", k));
            }
            let r = send(common::request_bytes("GET", "/topics/t/ws", &h, None)).await;
            r.assert_error(400, "bad_websocket_key");
        }
        // Upgrade without Connection: Upgrade.
        let req = common::request_bytes(
            "GET",
            "/topics/t/ws",
            &[
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Key", common::WS_KEY),
                ("Sec-WebSocket-Version", "13"),
            ],
            None,
        );
        send(req).await.assert_error(400, "bad_upgrade");
        // Bad query values and a disallowed origin.
        send(ws_upgrade_bytes("/topics/t/ws?format=xml", &[]))
            .await
            .assert_error(400, "bad_format");
        send(ws_upgrade_bytes("/topics/t/ws?since=abc", &[]))
            .await
            .assert_error(400, "bad_since");
        send(ws_upgrade_bytes("/topics/b!d/ws", &[]))
            .await
            .assert_error(400, "bad_topic");
        send(ws_upgrade_bytes(
            "/topics/t/ws",
            &[("Origin", "https://evil.example")],
        ))
        .await
        .assert_error(403, "origin_not_allowed");
        // The same handshake from the allowed origin, and with case-insensitive tokens, works.
        let mut c = common::Conn::connect(s.addr).await;
        c.send(&common::request_bytes(
            "GET",
            "/topics/t/ws",
            &[
                ("Upgrade", "WebSocket"),
                ("Connection", "keep-alive, Upgrade"),
                ("Sec-WebSocket-Key", common::WS_KEY),
                ("Sec-WebSocket-Version", "13"),
                ("Origin", "https://good.example"),
            ],
            None,
        ))
        .await;
        let head = c.read_head().await;
        assert_eq!(head.status, 101);
        assert_eq!(head.header("upgrade"), Some("websocket"));
        assert_eq!(
            head.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    })
    .await;
}

#[tokio::test]
async fn invalid_frames_are_closed_with_1002() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        // An unmasked client frame.
        let mut raw = s.raw_ws("/topics/t/ws").await;
        raw.conn.send(&RawWs::frame(true, 1, None, b"ping")).await;
        let (code, reason) = raw.read_close().await;
        assert_eq!(code, 1002, "{reason}");
        // A reserved opcode.
        let mut raw = s.raw_ws("/topics/t/ws").await;
        raw.send(0x3, b"?").await;
        assert_eq!(raw.read_close().await.0, 1002);
        // A reserved bit set.
        let mut raw = s.raw_ws("/topics/t/ws").await;
        let mut f = RawWs::frame(true, 1, Some([9, 9, 9, 9]), b"ping");
        f[0] |= 0x40;
        raw.conn.send(&f).await;
        assert_eq!(raw.read_close().await.0, 1002);
        // A fragmented control frame.
        let mut raw = s.raw_ws("/topics/t/ws").await;
        raw.conn
            .send(&RawWs::frame(false, 9, Some([1, 1, 1, 1]), b"x"))
            .await;
        assert_eq!(raw.read_close().await.0, 1002);
        // Text that is not UTF-8.
        let mut raw = s.raw_ws("/topics/t/ws").await;
        raw.send(1, &[0xff, 0xfe, 0x80]).await;
        assert_eq!(raw.read_close().await.0, 1007);
        // None of it harmed a well-behaved subscriber.
        let mut ws = s.ws("/topics/t/ws").await;
        s.publish("t", "1").await;
        expect_text_event(&mut ws, 1, "1").await;
    })
    .await;
}

#[tokio::test]
async fn client_close_is_answered() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut raw = s.raw_ws("/topics/t/ws").await;
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        raw.send(8, &payload).await;
        let (code, _) = raw.read_close().await;
        assert_eq!(code, 1000, "the close is echoed");
        raw.conn.wait_closed().await;
        loop {
            let open = s
                .metric("pushbench_subscribers_open{strategy=\"websocket\"}")
                .await;
            if open == 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn ping_frames_from_the_client_get_pongs_with_the_same_payload() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut raw = s.raw_ws("/topics/t/ws").await;
        raw.send(9, b"are you there").await;
        let f = raw.read_frame().await.expect("a pong");
        assert_eq!((f.fin, f.opcode), (true, 10));
        assert_eq!(f.payload, b"are you there");
        // An unsolicited pong is ignored, and the socket goes on.
        raw.send(10, b"").await;
        raw.send(1, b"ping").await;
        let f = raw.read_frame().await.expect("a text pong");
        assert_eq!((f.opcode, f.payload.as_slice()), (1, &b"pong"[..]));
    })
    .await;
}

#[tokio::test]
async fn a_fragmented_publish_is_reassembled() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut raw = s.raw_ws("/topics/t/ws").await;
        let mask = Some([7, 7, 7, 7]);
        let msg = b"{\"type\":\"publish\",\"data\":{\"parts\":3}}";
        let (a, rest) = msg.split_at(10);
        let (b, c) = rest.split_at(12);
        raw.conn.send(&RawWs::frame(false, 1, mask, a)).await;
        // A ping may come between fragments; it is answered at once.
        raw.send(9, b"mid").await;
        let f = raw.read_frame().await.expect("a pong");
        assert_eq!((f.opcode, f.payload.as_slice()), (10, &b"mid"[..]));
        raw.conn.send(&RawWs::frame(false, 0, mask, b)).await;
        raw.conn.send(&RawWs::frame(true, 0, mask, c)).await;
        let f = raw.read_frame().await.expect("the event");
        assert_eq!(f.opcode, 1);
        assert_eq!(f.payload, b"{\"seq\":1,\"data\":{\"parts\":3}}");
    })
    .await;
}
