//! Connection limits: `--max-connections` (503) and `--header-read-timeout`.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, TestServer, fast_config, request_bytes, within};
use pushbench_server::Config;

#[tokio::test]
async fn connections_beyond_the_cap_get_503_json() {
    within(async {
        let s = TestServer::start(Config {
            max_connections: 3,
            ..fast_config()
        })
        .await;
        // Three keep-alive connections, each proven accepted by an answer.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut c = s.connect().await;
            c.send(&request_bytes("GET", "/healthz", &[], None)).await;
            assert_eq!(c.read_response(false).await.status, 200);
            held.push(c);
        }
        let mut fourth = s.connect().await;
        fourth
            .send(&request_bytes("GET", "/healthz", &[], None))
            .await;
        let r = fourth.read_response(false).await;
        let v = r.assert_error(503, "too_many_connections");
        assert!(v["detail"].as_str().is_some_and(|d| d.contains('3')), "{v}");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.header("connection"), Some("close"));
        fourth.wait_closed().await;

        // The held connections still work.
        for c in held.iter_mut() {
            c.send(&request_bytes("GET", "/healthz", &[], None)).await;
            assert_eq!(c.read_response(false).await.status, 200);
        }
        // Closing one frees its place (once the server has seen the close).
        drop(held.pop());
        let ws = loop {
            let stream = tokio::net::TcpStream::connect(s.addr)
                .await
                .expect("connect");
            let url = format!("ws://{}/topics/t/ws", s.addr);
            match tokio_tungstenite::client_async(url, stream).await {
                Ok((ws, _)) => break ws,
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                    assert_eq!(res.status(), 503);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("handshake failed: {e}"),
            }
        };
        // A WebSocket holds its place after the upgrade, too: with two held and
        // one WebSocket open, a fourth connection is refused.
        let r = s.get("/healthz").await;
        r.assert_error(503, "too_many_connections");
        drop(held);
        drop(ws);
        let mut c = s.connect().await;
        c.send(&request_bytes("GET", "/metrics", &[], None)).await;
        loop {
            let r = c.read_response(false).await;
            if r.status == 200 {
                assert!(
                    common::metric_value(&r.text(), "pushbench_connections_rejected_total")
                        .is_some_and(|v| v >= 2.0)
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            c = s.connect().await;
            c.send(&request_bytes("GET", "/metrics", &[], None)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    within(async {
        let s = TestServer::start(Config {
            header_read_timeout: Duration::from_millis(300),
            ..fast_config()
        })
        .await;
        // Sends nothing at all.
        let mut silent = s.connect().await;
        let start = Instant::now();
        let got = silent.read_to_end().await;
        let took = start.elapsed();
        assert!(got.is_empty(), "nothing is answered to nothing: {got:?}");
        assert!(
            took >= Duration::from_millis(250),
            "closed too early: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "closed too late: {took:?}");

        // Sends half a request head and stops.
        let mut partial = s.connect().await;
        partial
            .send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        let start = Instant::now();
        let got = partial.read_to_end().await;
        let took = start.elapsed();
        let text = String::from_utf8_lossy(&got);
        assert!(
            got.is_empty() || text.starts_with("HTTP/1.1 408"),
            "a close, or a 408: {text:?}"
        );
        assert!(took < Duration::from_secs(5), "closed too late: {took:?}");
        // The server still serves others.
        assert_eq!(s.get("/healthz").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408() {
    within(async {
        let s = TestServer::start(Config {
            header_read_timeout: Duration::from_millis(300),
            ..fast_config()
        })
        .await;
        let mut c = Conn::connect(s.addr).await;
        c.send(b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"a\":")
            .await;
        let r = c.read_response(false).await;
        r.assert_error(408, "body_timeout");
        assert_eq!(s.metric("pushbench_events_published_total").await, 0.0);
    })
    .await;
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_places_forever() {
    within(async {
        let s = TestServer::start(Config {
            max_connections: 2,
            header_read_timeout: Duration::from_millis(300),
            ..fast_config()
        })
        .await;
        let mut a = s.connect().await;
        let mut b = s.connect().await;
        for c in [&mut a, &mut b] {
            c.send(&request_bytes("GET", "/healthz", &[], None)).await;
            assert_eq!(c.read_response(false).await.status, 200);
        }
        // Both go idle; the server closes them and frees their places.
        a.wait_closed().await;
        b.wait_closed().await;
        loop {
            let r = s.get("/healthz").await;
            if r.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
