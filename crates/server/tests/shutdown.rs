//! Graceful shutdown with every kind of client connected at once: SSE streams end,
//! long polls are answered, WebSockets get close 1001, idle connections close, and
//! `run` returns within the deadline even when a client will not cooperate.

mod common;

use std::time::{Duration, Instant};

use common::{Chunk, Conn, TestServer, fast_config, request_bytes, within, ws_next};
use pushbench_server::{Config, Strategy};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn every_kind_of_client_is_told_and_run_returns() {
    within(async {
        let mut s = TestServer::start(Config {
            shutdown_deadline: Duration::from_secs(10),
            ..fast_config()
        })
        .await;
        s.publish("t", "1").await;
        let mut sse = s.sse("/topics/t/sse?since=0", &[]).await;
        assert_eq!(sse.expect_event(1).await, "1");
        let mut ws = s.ws("/topics/t/ws?since=0").await;
        assert!(matches!(ws_next(&mut ws).await, Some(Message::Text(_))));
        let mut long_poll = s.connect().await;
        long_poll
            .send(&request_bytes(
                "GET",
                "/topics/t/events?since=1&wait=30s",
                &[],
                None,
            ))
            .await;
        let mut idle = s.connect().await;
        idle.send(&request_bytes("GET", "/healthz", &[], None))
            .await;
        assert_eq!(idle.read_response(false).await.status, 200);
        assert!(long_poll.quiet_for(Duration::from_millis(100)).await);

        let start = Instant::now();
        s.shutdown.cancel();
        // SSE: the body ends with its terminating chunk.
        assert_eq!(sse.next_event().await, None);
        assert_eq!(sse.end, Some(Chunk::End));
        // Long poll: answered 204.
        let r = long_poll.read_response(false).await;
        assert_eq!(r.status, 204);
        // WebSocket: close 1001.
        match ws_next(&mut ws).await {
            Some(Message::Close(Some(f))) => assert_eq!(f.code, CloseCode::Away),
            other => panic!("expected close 1001, got {other:?}"),
        }
        // Idle keep-alive connection: closed.
        idle.wait_closed().await;
        sse.conn.wait_closed().await;
        long_poll.wait_closed().await;
        s.stop().await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "cooperative clients need no deadline (10 s): {:?}",
            start.elapsed()
        );
        // New connections are no longer accepted.
        match tokio::net::TcpStream::connect(s.addr).await {
            Err(_) => {}
            Ok(stream) => {
                let mut c = Conn::from_stream(stream);
                c.send(&request_bytes("GET", "/healthz", &[], None)).await;
                assert!(c.try_read_head().await.is_none(), "nobody answers");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn uncooperative_clients_are_dropped_at_the_deadline() {
    within(async {
        let mut s = TestServer::start(Config {
            shutdown_deadline: Duration::from_millis(500),
            header_read_timeout: Duration::from_secs(20),
            ..fast_config()
        })
        .await;
        // A publish whose body never finishes arriving.
        let mut stuck_upload = s.connect().await;
        stuck_upload
            .send(b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")
            .await;
        // A WebSocket that never reads (so never answers the close handshake).
        let mut raw = s.raw_ws("/topics/t/ws").await;
        // An SSE stream on a socket that stopped reading with a full buffer.
        let mut stalled = Conn::connect_small(s.addr).await;
        stalled
            .send(&request_bytes("GET", "/topics/t/sse", &[], None))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pad = "z".repeat(60_000);
        common::publish_all(
            s.addr,
            "t",
            (0..100).map(|i| format!("{{\"i\":{i},\"p\":\"{pad}\"}}")),
        )
        .await;

        let start = Instant::now();
        s.stop().await;
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "run returns soon after the 500 ms deadline: {took:?}"
        );
        // Every one of them was disconnected.
        stuck_upload.wait_closed().await;
        // (Its socket is full, so the close frame may never have fit: the socket is
        // dropped after the close grace either way.)
        while let Some(f) = raw.read_frame().await {
            if f.opcode == 8 {
                assert_eq!(f.close().0, 1001);
            }
        }
        stalled.wait_closed().await;
    })
    .await;
}

#[tokio::test]
async fn a_server_run_again_keeps_its_log() {
    within(async {
        let mut s = TestServer::start(fast_config()).await;
        for i in 1..=3 {
            s.publish("t", &i.to_string()).await;
        }
        let tag = s.get("/topics/t/events?since=3").await;
        let tag = tag.header("etag").expect("an ETag").to_string();
        s.stop().await;
        // The same server on a new listener: a restart that keeps its log.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let token = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(s.server.clone().run(listener, token.clone()));
        let mut c = Conn::connect(addr).await;
        c.send(&request_bytes("GET", "/topics/t/events?since=1", &[], None))
            .await;
        let r = c.read_response(false).await;
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":2,\"data\":2},{\"seq\":3,\"data\":3}],\"next\":3}"
        );
        c.send(&request_bytes(
            "GET",
            "/topics/t/events?since=3",
            &[("If-None-Match", &tag)],
            None,
        ))
        .await;
        assert_eq!(
            c.read_response(false).await.status,
            304,
            "same log, same tag"
        );
        c.send(&request_bytes("POST", "/topics/t/events", &[], Some(b"4")))
            .await;
        assert_eq!(c.read_response(false).await.text(), "{\"seq\":4}");
        token.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("run returns")
            .expect("no panic");
    })
    .await;
}

#[tokio::test]
async fn nothing_outlives_run_by_more_than_the_deadline() {
    within(async {
        let mut s = TestServer::start(Config {
            shutdown_deadline: Duration::from_millis(300),
            slow_consumer_timeout: Duration::from_secs(25),
            ..fast_config()
        })
        .await;
        // A WebSocket and an SSE stream whose sockets stopped draining mid-send.
        let mut raw = s.raw_ws("/topics/t/ws?since=0").await;
        let mut stalled = Conn::connect_small(s.addr).await;
        stalled
            .send(&request_bytes("GET", "/topics/t/sse?since=0", &[], None))
            .await;
        let pad = "q".repeat(60_000);
        common::publish_all(
            s.addr,
            "t",
            (0..200).map(|i| format!("{{\"i\":{i},\"p\":\"{pad}\"}}")),
        )
        .await;
        let metrics = s.server.clone();
        s.stop().await;
        // Within a moment of `run` returning, no subscriber is left (not after the
        // 25 s slow-consumer timeout).
        tokio::time::timeout(Duration::from_secs(5), async {
            while metrics.metrics().open_now(Strategy::WebSocket) > 0
                || metrics.metrics().open_now(Strategy::Sse) > 0
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every subscriber task ended soon after run returned");
        raw.conn.wait_closed().await;
        stalled.wait_closed().await;
    })
    .await;
}
