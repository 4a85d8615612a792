//! Long polling: `GET /topics/{t}/events?since=N&wait=D`.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, fast_config, request_bytes, within};
use pushbench_server::Config;

#[tokio::test]
async fn held_until_an_event_is_published_then_answered_with_it() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "{\"n\":1}").await;
        let mut c = s.connect().await;
        c.send(&request_bytes("GET", "/topics/t/events?since=1&wait=10s", &[], None))
            .await;
        assert!(
            c.quiet_for(Duration::from_millis(300)).await,
            "a long poll with nothing new is held"
        );
        s.publish("t", "{\"n\":2}").await;
        let r = c.read_response(false).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text(), "{\"events\":[{\"seq\":2,\"data\":{\"n\":2}}],\"next\":2}");
        // The connection is kept alive: a second long poll on it answers at once.
        c.send(&request_bytes("GET", "/topics/t/events?since=0&wait=10s", &[], None))
            .await;
        let r = c.read_response(false).await;
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":1,\"data\":{\"n\":1}},{\"seq\":2,\"data\":{\"n\":2}}],\"next\":2}"
        );
    })
    .await;
}

#[tokio::test]
async fn answers_204_when_the_wait_ends() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "1").await;
        for wait in ["300ms", "0", "0s"] {
            let start = Instant::now();
            let r = s
                .get(&format!("/topics/t/events?since=1&wait={wait}"))
                .await;
            assert_eq!(r.status, 204, "wait={wait}");
            assert!(r.body.is_empty());
            if wait == "300ms" {
                assert!(
                    start.elapsed() >= Duration::from_millis(250),
                    "held for the wait"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn wait_is_clamped_to_max_wait() {
    within(async {
        let s = TestServer::start(Config {
            max_wait: Duration::from_millis(300),
            ..fast_config()
        })
        .await;
        let start = Instant::now();
        let r = s.get("/topics/t/events?since=0&wait=1m").await;
        assert_eq!(r.status, 204);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "held for max_wait, not a minute"
        );
    })
    .await;
}

#[tokio::test]
async fn without_since_it_waits_for_the_next_event_only() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for i in 1..=3 {
            s.publish("t", &i.to_string()).await;
        }
        let mut c = s.connect().await;
        c.send(&request_bytes(
            "GET",
            "/topics/t/events?wait=10s",
            &[],
            None,
        ))
        .await;
        assert!(
            c.quiet_for(Duration::from_millis(300)).await,
            "the naive long poll ignores what was published before it"
        );
        s.publish("t", "4").await;
        let r = c.read_response(false).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "{\"events\":[{\"seq\":4,\"data\":4}],\"next\":4}");
    })
    .await;
}

#[tokio::test]
async fn limit_applies_and_old_cursor_is_410() {
    within(async {
        let s = TestServer::start(Config {
            retention: 3,
            ..fast_config()
        })
        .await;
        for i in 1..=5 {
            s.publish("t", &i.to_string()).await;
        }
        let r = s.get("/topics/t/events?since=2&wait=5s&limit=2").await;
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":3,\"data\":3},{\"seq\":4,\"data\":4}],\"next\":4}"
        );
        let v = s
            .get("/topics/t/events?since=1&wait=5s")
            .await
            .assert_error(410, "gap");
        assert_eq!(v["first_seq"], 3);
        assert_eq!(v["last_seq"], 5);
    })
    .await;
}

#[tokio::test]
async fn bad_waits_are_400() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for w in [
            "-1",
            "abc",
            "",
            "1h",
            "1.5s",
            "99999999999999999999s",
            "5%20s",
        ] {
            s.get(&format!("/topics/t/events?since=0&wait={w}"))
                .await
                .assert_error(400, "bad_wait");
        }
        s.get("/topics/t/events?since=x&wait=1s")
            .await
            .assert_error(400, "bad_since");
    })
    .await;
}

#[tokio::test]
async fn shutdown_answers_a_held_long_poll() {
    within(async {
        let mut s = TestServer::start(Config {
            shutdown_deadline: Duration::from_secs(10),
            ..fast_config()
        })
        .await;
        let mut c = s.connect().await;
        c.send(&request_bytes(
            "GET",
            "/topics/t/events?since=0&wait=30s",
            &[],
            None,
        ))
        .await;
        assert!(c.quiet_for(Duration::from_millis(200)).await);
        let stop = Instant::now();
        s.shutdown.cancel();
        let r = c.read_response(false).await;
        assert_eq!(r.status, 204);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(
            stop.elapsed() < Duration::from_secs(5),
            "answered at once, not at the 10 s deadline"
        );
        c.wait_closed().await;
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_client_that_goes_away_frees_its_held_poll() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut c = s.connect().await;
        c.send(&request_bytes(
            "GET",
            "/topics/t/events?since=0&wait=30s",
            &[],
            None,
        ))
        .await;
        s.wait_metric("pushbench_subscribers_open{strategy=\"long-poll\"}", 1.0)
            .await;
        drop(c);
        // Noticed without waiting out the 30 s hold.
        loop {
            let open = s
                .metric("pushbench_subscribers_open{strategy=\"long-poll\"}")
                .await;
            if open == 0.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Deliveries are counted per strategy.
        let mut c = s.connect().await;
        c.send(&request_bytes(
            "GET",
            "/topics/t/events?since=0&wait=30s",
            &[],
            None,
        ))
        .await;
        s.wait_metric("pushbench_subscribers_open{strategy=\"long-poll\"}", 1.0)
            .await;
        s.publish("t", "1").await;
        assert_eq!(c.read_response(false).await.status, 200);
        assert_eq!(
            s.metric("pushbench_deliveries_total{strategy=\"long-poll\"}")
                .await,
            1.0
        );
    })
    .await;
}
