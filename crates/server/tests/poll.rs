//! Short polling: `GET /topics/{t}/events?since=&limit=`, ETags, `/latest`, gaps.

mod common;

use common::{TestServer, fast_config, within};
use pushbench_protocol::wire::PollResponse;
use pushbench_server::Config;

#[tokio::test]
async fn since_and_limit_select_events_and_next() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        // A topic nobody published to reads as an empty log.
        let r = s.get("/topics/t/events").await;
        assert_eq!((r.status, r.text().as_str()), (200, "{\"events\":[],\"next\":0}"));
        for i in 1..=5 {
            s.publish("t", &format!("{{\"i\":{i}}}")).await;
        }
        let r = s.get("/topics/t/events?since=0").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":1,\"data\":{\"i\":1}},{\"seq\":2,\"data\":{\"i\":2}},{\"seq\":3,\"data\":{\"i\":3}},{\"seq\":4,\"data\":{\"i\":4}},{\"seq\":5,\"data\":{\"i\":5}}],\"next\":5}"
        );
        // No since means from the beginning.
        assert_eq!(s.get("/topics/t/events").await.body, r.body);
        let r = s.get("/topics/t/events?since=2&limit=2").await;
        assert_eq!(
            r.text(),
            "{\"events\":[{\"seq\":3,\"data\":{\"i\":3}},{\"seq\":4,\"data\":{\"i\":4}}],\"next\":4}"
        );
        let r = s.get("/topics/t/events?since=4&limit=1000&_=cachebuster").await;
        assert_eq!(r.text(), "{\"events\":[{\"seq\":5,\"data\":{\"i\":5}}],\"next\":5}");
        let r = s.get("/topics/t/events?since=5").await;
        assert_eq!((r.status, r.text().as_str()), (200, "{\"events\":[],\"next\":5}"));
        // Following `next` walks the whole log once, in order.
        let mut cursor = 0;
        let mut seen = Vec::new();
        loop {
            let r = s
                .get(&format!("/topics/t/events?since={cursor}&limit=2"))
                .await;
            let p: PollResponse<'_> = serde_json::from_slice(&r.body).expect("poll response");
            if p.events.is_empty() {
                assert_eq!(p.next, cursor);
                break;
            }
            seen.extend(p.events.iter().map(|e| e.seq));
            cursor = p.next;
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    })
    .await;
}

#[tokio::test]
async fn large_limits_are_clamped() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut c = s.connect().await;
        for i in 0..(pushbench_server::MAX_LIMIT + 5) {
            let body = format!("{i}");
            c.send(&common::request_bytes(
                "POST",
                "/topics/t/events",
                &[],
                Some(body.as_bytes()),
            ))
            .await;
            assert_eq!(c.read_response(false).await.status, 201);
        }
        let r = s.get("/topics/t/events?since=0&limit=999999").await;
        let p: PollResponse<'_> = serde_json::from_slice(&r.body).expect("poll response");
        assert_eq!(p.events.len(), pushbench_server::MAX_LIMIT);
        assert_eq!(p.next, pushbench_server::MAX_LIMIT as u64);
        let r = s.get("/topics/t/events?since=0").await;
        let p: PollResponse<'_> = serde_json::from_slice(&r.body).expect("poll response");
        assert_eq!(p.events.len(), pushbench_server::DEFAULT_LIMIT);
    })
    .await;
}

#[tokio::test]
async fn etag_and_if_none_match_give_304_until_a_publish() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "1").await;
        let r = s.get("/topics/t/events?since=1").await;
        assert_eq!(r.status, 200);
        let tag = r.header("etag").expect("an ETag").to_string();
        assert!(
            tag.starts_with('"') && tag.ends_with('"'),
            "a strong quoted tag: {tag}"
        );
        assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));

        let r = s
            .get_with("/topics/t/events?since=1", &[("If-None-Match", &tag)])
            .await;
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        // Weak comparison and lists are honoured.
        let weak = format!("\"other\", W/{tag}");
        let r = s
            .get_with("/topics/t/events?since=1", &[("If-None-Match", &weak)])
            .await;
        assert_eq!(r.status, 304);
        let r = s
            .get_with("/topics/t/events?since=1", &[("If-None-Match", "\"nope\"")])
            .await;
        assert_eq!(r.status, 200);

        s.publish("t", "2").await;
        let r = s
            .get_with("/topics/t/events?since=1", &[("If-None-Match", &tag)])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "{\"events\":[{\"seq\":2,\"data\":2}],\"next\":2}");
        let tag2 = r.header("etag").expect("an ETag");
        assert_ne!(tag2, tag, "a new event changes the tag");
    })
    .await;
}

#[tokio::test]
async fn latest_gives_only_the_newest_event() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let r = s.get("/topics/t/latest").await;
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        let empty_tag = r.header("etag").expect("an ETag").to_string();
        let r = s
            .get_with("/topics/t/latest", &[("If-None-Match", &empty_tag)])
            .await;
        assert_eq!(r.status, 304);

        s.publish("t", "{\"v\":1}").await;
        s.publish("t", "{\"v\":2}").await;
        let r = s
            .get_with("/topics/t/latest", &[("If-None-Match", &empty_tag)])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text(), "{\"seq\":2,\"data\":{\"v\":2}}");
        let tag = r.header("etag").expect("an ETag").to_string();
        let r = s
            .get_with("/topics/t/latest", &[("If-None-Match", &tag)])
            .await;
        assert_eq!((r.status, r.body.len()), (304, 0));
        let r = s
            .get_with("/topics/t/latest", &[("If-None-Match", "*")])
            .await;
        assert_eq!(r.status, 304);
        s.publish("t", "{\"v\":3}").await;
        let r = s
            .get_with("/topics/t/latest", &[("If-None-Match", &tag)])
            .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "{\"seq\":3,\"data\":{\"v\":3}}")
        );
    })
    .await;
}

#[tokio::test]
async fn old_cursor_is_a_410_gap_with_first_seq() {
    within(async {
        let s = TestServer::start(Config {
            retention: 5,
            ..fast_config()
        })
        .await;
        for i in 1..=10 {
            s.publish("t", &i.to_string()).await;
        }
        let r = s.get("/topics/t/events?since=1").await;
        let v = r.assert_error(410, "gap");
        assert_eq!(v["requested"], 1);
        assert_eq!(v["first_seq"], 6);
        assert_eq!(v["last_seq"], 10);
        // since=4 also missed event 5; since=5 missed nothing.
        let v = s
            .get("/topics/t/events?since=4")
            .await
            .assert_error(410, "gap");
        assert_eq!(v["first_seq"], 6);
        let r = s.get("/topics/t/events?since=5").await;
        assert_eq!(r.status, 200);
        let p: PollResponse<'_> = serde_json::from_slice(&r.body).expect("poll response");
        let seqs: Vec<u64> = p.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![6, 7, 8, 9, 10]);
        // Even a 304 is not given for an old cursor.
        let tag = r.header("etag").expect("an ETag").to_string();
        let r = s
            .get_with("/topics/t/events?since=1", &[("If-None-Match", &tag)])
            .await;
        assert_eq!(r.status, 410);
        assert!(s.metric("pushbench_gaps_total").await >= 3.0);
    })
    .await;
}

#[tokio::test]
async fn without_since_a_poll_gets_what_is_retained_and_since_0_gets_the_gap() {
    within(async {
        let s = TestServer::start(Config {
            retention: 3,
            ..fast_config()
        })
        .await;
        for i in 1..=7 {
            s.publish("t", &i.to_string()).await;
        }
        // No cursor claimed: the retained events, no gap.
        let r = s.get("/topics/t/events").await;
        assert_eq!(r.status, 200);
        let p: PollResponse<'_> = serde_json::from_slice(&r.body).expect("poll response");
        let seqs: Vec<u64> = p.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![5, 6, 7]);
        assert_eq!(p.next, 7);
        // since=0 claims "I have seen nothing": events 1-4 are gone, and it is told.
        let v = s
            .get("/topics/t/events?since=0")
            .await
            .assert_error(410, "gap");
        assert_eq!(v["first_seq"], 5);
        // An unknown topic without a cursor is simply empty.
        let r = s.get("/topics/nobody/events").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), r#"{"events":[],"next":0}"#);
    })
    .await;
}

#[tokio::test]
async fn cursor_ahead_of_the_log_is_410() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for i in 1..=3 {
            s.publish("t", &i.to_string()).await;
        }
        let v = s
            .get("/topics/t/events?since=20")
            .await
            .assert_error(410, "gap");
        assert_eq!(v["requested"], 20);
        assert_eq!(v["last_seq"], 3);
        // A topic that does not exist yet, with a cursor: the log was reset.
        let v = s
            .get("/topics/fresh/events?since=7")
            .await
            .assert_error(410, "gap");
        assert_eq!(v["last_seq"], 0);
    })
    .await;
}

#[tokio::test]
async fn bad_query_values_are_400() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        s.publish("t", "1").await;
        for (q, code) in [
            ("since=abc", "bad_since"),
            ("since=-1", "bad_since"),
            ("since=", "bad_since"),
            ("since=1.5", "bad_since"),
            ("since=99999999999999999999999", "bad_since"),
            ("limit=0", "bad_limit"),
            ("limit=abc", "bad_limit"),
            ("limit=-3", "bad_limit"),
        ] {
            s.get(&format!("/topics/t/events?{q}"))
                .await
                .assert_error(400, code);
        }
    })
    .await;
}

#[tokio::test]
async fn a_conditional_poller_paging_with_limit_is_not_told_304_while_behind() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        for i in 1..=5 {
            s.publish("t", &i.to_string()).await;
        }
        // A client that follows `next` and always sends the last ETag it got.
        let mut since = 0;
        let mut tag: Option<String> = None;
        let mut seen = Vec::new();
        let mut not_modified = 0;
        for _ in 0..6 {
            let path = format!("/topics/t/events?since={since}&limit=2");
            let r = match &tag {
                Some(t) => s.get_with(&path, &[("If-None-Match", t)]).await,
                None => s.get(&path).await,
            };
            tag = r.header("etag").map(str::to_string);
            if r.status == 304 {
                not_modified += 1;
                continue;
            }
            assert_eq!(r.status, 200);
            let p: PollResponse<'_> = serde_json::from_slice(&r.body).expect("poll response");
            seen.extend(p.events.iter().map(|e| e.seq));
            since = p.next;
        }
        assert_eq!(
            seen,
            vec![1, 2, 3, 4, 5],
            "every event, though the log was 5 ahead"
        );
        assert!(not_modified >= 2, "and 304s once caught up");
    })
    .await;
}
