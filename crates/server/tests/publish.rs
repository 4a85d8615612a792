//! Publishing: `POST /topics/{t}/events` and its refusals.

mod common;

use common::{Conn, TestServer, fast_config, request_bytes, within};
use pushbench_server::Config;

#[tokio::test]
async fn seq_counts_from_one_per_topic() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let r = s.post("/topics/a/events", b"{\"n\":1}").await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, b"{\"seq\":1}");
        assert_eq!(s.publish("a", "{\"n\":2}").await, 2);
        assert_eq!(s.publish("b", "{\"n\":1}").await, 1, "topics count apart");
        assert_eq!(s.publish("a", "3").await, 3);
        assert_eq!(s.publish("b.c-d_E", "\"x\"").await, 1);
    })
    .await;
}

#[tokio::test]
async fn body_is_stored_compact_with_key_order_kept() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let sent = "{ \"z\" : 1 ,\n\t\"a\" : [ 1 , 2.50 , \"two  words\\n\" ] , \"m\" : { \"y\" : null , \"b\" : true } }\r\n";
        s.publish("t", sent).await;
        let r = s.get("/topics/t/events?since=0").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":1,\"data\":{\"z\":1,\"a\":[1,2.50,\"two  words\\n\"],\"m\":{\"y\":null,\"b\":true}}}],\"next\":1}"
        );
    })
    .await;
}

#[tokio::test]
async fn bad_and_empty_bodies_are_400() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for bad in [
            &b"{\"a\":"[..],
            b"{\"a\":1}x",
            b"not json",
            b"{'a':1}",
            b"[1,]",
        ] {
            let r = s.post("/topics/t/events", bad).await;
            r.assert_error(400, "bad_json");
        }
        s.post("/topics/t/events", b"")
            .await
            .assert_error(400, "empty_body");
        s.post("/topics/t/events", b"  \n ")
            .await
            .assert_error(400, "empty_body");
        // Nothing was stored.
        assert_eq!(
            s.get("/topics/t/events").await.text(),
            "{\"events\":[],\"next\":0}"
        );
        assert_eq!(s.publish("t", "1").await, 1);
    })
    .await;
}

#[tokio::test]
async fn oversize_body_is_413_with_content_length_and_chunked() {
    within(async {
        let s = TestServer::start(Config {
            max_body: 100,
            ..fast_config()
        })
        .await;
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(200));
        let r = s.post("/topics/t/events", big.as_bytes()).await;
        let v = r.assert_error(413, "body_too_large");
        assert_eq!(v["limit"], 100);

        // Chunked, in two chunks, with no Content-Length to judge by.
        let mut c = s.connect().await;
        let mut req = request_bytes(
            "POST",
            "/topics/t/events",
            &[("Transfer-Encoding", "chunked")],
            None,
        );
        let (a, b) = big.as_bytes().split_at(60);
        for part in [a, b] {
            req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            req.extend_from_slice(part);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        c.send(&req).await;
        let r = c.read_response(false).await;
        r.assert_error(413, "body_too_large");

        // Exactly at the limit is fine.
        let fits = format!("\"{}\"", "y".repeat(98));
        assert_eq!(fits.len(), 100);
        assert_eq!(s.publish("t", &fits).await, 1);
        // A chunked body under the limit is fine too.
        let mut c = Conn::connect(s.addr).await;
        let mut req = request_bytes(
            "POST",
            "/topics/t/events",
            &[("Transfer-Encoding", "chunked")],
            None,
        );
        req.extend_from_slice(b"3\r\n{\"a\r\n4\r\n\":2}\r\n0\r\n\r\n");
        c.send(&req).await;
        let r = c.read_response(false).await;
        assert_eq!((r.status, r.text()), (201, "{\"seq\":2}".to_string()));
    })
    .await;
}

#[tokio::test]
async fn bad_topic_names_are_400() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let long = "a".repeat(65);
        for name in [
            "bad!name",
            "sp%20ace",
            "a:b",
            "%C3%A9t%C3%A9",
            long.as_str(),
        ] {
            let r = s.post(&format!("/topics/{name}/events"), b"1").await;
            r.assert_error(400, "bad_topic");
            let r = s.get(&format!("/topics/{name}/events")).await;
            r.assert_error(400, "bad_topic");
        }
        // 64 characters is the longest allowed.
        assert_eq!(s.publish(&"a".repeat(64), "1").await, 1);
        // An empty name has no route.
        s.post("/topics//events", b"1")
            .await
            .assert_error(400, "bad_topic");
    })
    .await;
}

#[tokio::test]
async fn publish_token_is_required_when_set() {
    within(async {
        let s = TestServer::start(Config {
            publish_token: Some("s3cret".into()),
            ..fast_config()
        })
        .await;
        let r = s.post("/topics/t/events", b"1").await;
        r.assert_error(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        for bad in [
            "Bearer wrong",
            "Bearer s3cre",
            "Bearer s3cret2",
            "s3cret",
            "Basic s3cret",
            "Bearers3cret",
            "Bearer",
            "Bearer  ",
        ] {
            let r = s
                .request("POST", "/topics/t/events", &[("Authorization", bad)], b"1")
                .await;
            r.assert_error(401, "unauthorized");
        }
        let r = s
            .request(
                "POST",
                "/topics/t/events",
                &[("Authorization", "Bearer s3cret")],
                b"1",
            )
            .await;
        assert_eq!((r.status, r.text()), (201, "{\"seq\":1}".to_string()));
        // The scheme name is case-insensitive.
        for ok in ["bearer s3cret", "BEARER s3cret"] {
            let r = s
                .request("POST", "/topics/t/events", &[("Authorization", ok)], b"1")
                .await;
            assert_eq!(r.status, 201, "{ok}");
        }
        // Reading needs no token.
        assert_eq!(s.get("/topics/t/events").await.status, 200);
        assert_eq!(s.metric("pushbench_publish_rejected_total").await, 9.0);
    })
    .await;
}

#[tokio::test]
async fn topic_cap_is_429() {
    within(async {
        let s = TestServer::start(Config {
            max_topics: 2,
            ..fast_config()
        })
        .await;
        s.publish("one", "1").await;
        s.publish("two", "1").await;
        s.post("/topics/three/events", b"1")
            .await
            .assert_error(429, "too_many_topics");
        // Existing topics still take events; a stream on a new topic is refused too.
        assert_eq!(s.publish("one", "2").await, 2);
        let sse = s.sse_raw("/topics/four/sse", &[]).await;
        assert_eq!(sse.head.status, 429);
        assert_eq!(s.metric("pushbench_topics").await, 2.0);
    })
    .await;
}

#[tokio::test]
async fn beacon_answers_204_and_counts() {
    within(async {
        let s = TestServer::start(Config {
            max_body: 1000,
            ..fast_config()
        })
        .await;
        let r = s.post("/beacon", b"{\"seen\":[1,2,3]}").await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        // Any bytes are accepted: a beacon is not parsed.
        assert_eq!(s.post("/beacon", b"not json at all").await.status, 204);
        s.post("/beacon", &[b'x'; 1001])
            .await
            .assert_error(413, "body_too_large");
        assert_eq!(s.metric("pushbench_beacons_total").await, 2.0);
        assert_eq!(s.metric("pushbench_beacon_bytes_total").await, 31.0);
    })
    .await;
}

#[tokio::test]
async fn an_unread_oversize_body_is_never_taken_for_the_next_request() {
    within(async {
        let s = TestServer::start(Config {
            max_body: 100,
            ..fast_config()
        })
        .await;
        let mut c = s.connect().await;
        // The refused body itself looks like requests: none of them may run.
        let smuggled = request_bytes("POST", "/topics/smuggled/events", &[], Some(b"1"));
        let big = [smuggled.as_slice(); 10].concat();
        c.send(&request_bytes("POST", "/topics/t/events", &[], Some(&big)))
            .await;
        c.read_response(false)
            .await
            .assert_error(413, "body_too_large");
        // The connection either serves the next real request or is closed.
        if c.try_send(&request_bytes("GET", "/healthz", &[], None))
            .await
            && let Some(head) = c.try_read_head().await
        {
            assert_eq!(head.status, 200);
        }
        assert_eq!(s.metric("pushbench_events_published_total").await, 0.0);
        assert_eq!(s.metric("pushbench_topics").await, 0.0);
    })
    .await;
}

#[tokio::test]
async fn expect_100_continue_as_curl_sends_it() {
    within(async {
        let s = TestServer::start(Config {
            max_body: 100,
            ..fast_config()
        })
        .await;
        let mut c = s.connect().await;
        c.send(b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n")
            .await;
        assert_eq!(c.read_head().await.status, 100);
        c.send(b"{\"a\":1}").await;
        let r = c.read_response(false).await;
        assert_eq!((r.status, r.text().as_str()), (201, "{\"seq\":1}"));
        // Too large: refused before the body is sent.
        let mut c = s.connect().await;
        c.send(b"POST /topics/t/events HTTP/1.1\r\nHost: x\r\nContent-Length: 700\r\nExpect: 100-continue\r\n\r\n")
            .await;
        c.read_response(false)
            .await
            .assert_error(413, "body_too_large");
    })
    .await;
}

#[tokio::test]
async fn an_empty_publish_token_fails_closed() {
    within(async {
        let s = TestServer::start(Config {
            publish_token: Some(String::new()),
            ..fast_config()
        })
        .await;
        for headers in [
            &[][..],
            &[("Authorization", "Bearer ")][..],
            &[("Authorization", "Bearer x")][..],
        ] {
            s.request("POST", "/topics/t/events", headers, b"1")
                .await
                .assert_error(401, "unauthorized");
        }
    })
    .await;
}
