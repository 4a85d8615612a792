//! `/healthz`, `/metrics`, CORS headers and preflight.

mod common;

use common::{TestServer, fast_config, metric_value, within};
use pushbench_server::Config;

#[tokio::test]
async fn healthz_is_200() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let r = s.get("/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text(), "{\"status\":\"ok\"}");
        // Query strings do not change the route.
        assert_eq!(s.get("/healthz?probe=1").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn metrics_has_every_family_of_the_issue() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "{\"a\":1}").await;
        s.publish("t", "{\"a\":2}").await;
        s.get("/topics/t/events?since=0").await;
        s.post("/beacon", b"12345").await;
        s.post("/topics/t/events", b"{").await;
        let r = s.get("/metrics").await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "Prometheus text"
        );
        let text = r.text();
        for family in [
            "pushbench_subscribers_open",
            "pushbench_deliveries_total",
            "pushbench_bytes_out_total",
            "pushbench_connections_open",
            "pushbench_connections_total",
            "pushbench_connections_rejected_total",
            "pushbench_topics",
            "pushbench_events_published_total",
            "pushbench_publish_rejected_total",
            "pushbench_gaps_total",
            "pushbench_slow_consumer_closes_total",
            "pushbench_heartbeat_timeouts_total",
            "pushbench_beacons_total",
            "pushbench_beacon_bytes_total",
            "pushbench_client_errors_total",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ] {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "HELP for {family}"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "TYPE for {family}"
            );
        }
        for strategy in ["poll", "long-poll", "sse", "websocket"] {
            for family in [
                "pushbench_subscribers_open",
                "pushbench_deliveries_total",
                "pushbench_bytes_out_total",
            ] {
                let name = format!("{family}{{strategy=\"{strategy}\"}}");
                assert!(metric_value(&text, &name).is_some(), "{name}");
            }
        }
        // Every sample line is `name[{labels}] value` with a number.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').expect("name and value");
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
        let m = |n: &str| metric_value(&text, n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(m("pushbench_events_published_total"), 2.0);
        assert_eq!(m("pushbench_publish_rejected_total"), 1.0);
        assert_eq!(m("pushbench_topics"), 1.0);
        assert_eq!(m("pushbench_deliveries_total{strategy=\"poll\"}"), 2.0);
        assert_eq!(m("pushbench_beacons_total"), 1.0);
        assert_eq!(m("pushbench_beacon_bytes_total"), 5.0);
        assert!(m("pushbench_client_errors_total") >= 1.0);
        assert!(m("pushbench_connections_total") >= 6.0);
        assert!(m("pushbench_connections_open") >= 1.0, "this request's own");
        assert!(m("process_cpu_seconds_total") >= 0.0);
        assert!(m("process_resident_memory_bytes") > 0.0);
    })
    .await;
}

#[tokio::test]
async fn cors_headers_and_preflight() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let r = s
            .get_with("/topics/t/events", &[("Origin", "https://page.example")])
            .await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
        // Errors carry CORS headers too, so a page can read them.
        let r = s.get("/nope").await;
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));

        for (path, allow) in [
            ("/topics/t/events", "GET, HEAD, POST, OPTIONS"),
            ("/topics/t/sse", "GET, OPTIONS"),
            ("/beacon", "POST, OPTIONS"),
        ] {
            let r = s
                .request(
                    "OPTIONS",
                    path,
                    &[
                        ("Origin", "https://page.example"),
                        ("Access-Control-Request-Method", "POST"),
                        (
                            "Access-Control-Request-Headers",
                            "content-type, authorization",
                        ),
                    ],
                    b"",
                )
                .await;
            assert_eq!(r.status, 204, "{path}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("access-control-allow-origin"), Some("*"));
            assert_eq!(r.header("access-control-allow-methods"), Some(allow));
            assert_eq!(r.header("allow"), Some(allow));
            let headers = r
                .header("access-control-allow-headers")
                .expect("allowed headers")
                .to_ascii_lowercase();
            for h in [
                "content-type",
                "authorization",
                "if-none-match",
                "last-event-id",
            ] {
                assert!(headers.contains(h), "{h} in {headers}");
            }
            assert!(r.header("access-control-max-age").is_some());
        }
        // A preflight of an unknown path is still a 404.
        s.request("OPTIONS", "/nope", &[], b"")
            .await
            .assert_error(404, "not_found");
    })
    .await;
}

#[tokio::test]
async fn allow_origin_narrows_cors() {
    within(async {
        let s = TestServer::start(Config {
            allow_origins: vec!["https://a.example".into(), "https://b.example".into()],
            ..fast_config()
        })
        .await;
        let r = s
            .get_with("/topics/t/events", &[("Origin", "https://b.example")])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://b.example")
        );
        assert_eq!(r.header("vary"), Some("Origin"));
        let r = s
            .get_with("/topics/t/events", &[("Origin", "https://evil.example")])
            .await;
        assert_eq!(r.header("access-control-allow-origin"), None);
        // Polls stay readable without a browser Origin.
        assert_eq!(s.get("/topics/t/events").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn bytes_out_counts_the_body_and_payload_bytes_sent() {
    within(async {
        let s = TestServer::start(pushbench_server::Config {
            sse_retry: std::time::Duration::from_millis(2000),
            ..fast_config()
        })
        .await;
        s.publish("t", "1").await;
        let mut sse = s.sse("/topics/t/sse?since=0", &[]).await;
        assert_eq!(sse.expect_event(1).await, "1");
        let mut ws = s.ws("/topics/t/ws?since=0").await;
        assert_eq!(
            common::ws_next(&mut ws).await,
            Some(tokio_tungstenite::tungstenite::Message::text(
                "{\"seq\":1,\"data\":1}"
            ))
        );
        let poll = s.get("/topics/t/events?since=0").await;
        let m = |text: &str, n: &str| metric_value(text, n).unwrap_or_else(|| panic!("{n}"));
        let text = s.metrics().await;
        // "retry: 2000\n\n" + "id: 1\ndata: 1\n\n"
        assert_eq!(
            m(&text, "pushbench_bytes_out_total{strategy=\"sse\"}"),
            28.0
        );
        assert_eq!(
            m(&text, "pushbench_bytes_out_total{strategy=\"websocket\"}"),
            18.0
        );
        assert_eq!(
            m(&text, "pushbench_bytes_out_total{strategy=\"poll\"}"),
            poll.body.len() as f64
        );
        assert_eq!(
            m(&text, "pushbench_deliveries_total{strategy=\"sse\"}"),
            1.0
        );
        assert_eq!(
            m(&text, "pushbench_deliveries_total{strategy=\"websocket\"}"),
            1.0
        );
        assert_eq!(
            m(&text, "pushbench_deliveries_total{strategy=\"poll\"}"),
            1.0
        );
    })
    .await;
}

#[tokio::test]
async fn head_answers_with_the_headers_of_get() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "{\"a\":1}").await;
        for path in [
            "/healthz",
            "/metrics",
            "/topics/t/events?since=0",
            "/topics/t/latest",
        ] {
            let get = s.get(path).await;
            let head = s.request("HEAD", path, &[], b"").await;
            assert_eq!(head.status, get.status, "{path}");
            assert!(head.body.is_empty(), "{path}: no body for HEAD");
            assert_eq!(head.header("etag"), get.header("etag"), "{path}");
        }
        // Streams refuse it, and say what they take.
        let r = s.request("HEAD", "/topics/t/sse", &[], b"").await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    })
    .await;
}
