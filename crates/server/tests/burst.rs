//! A burst: 2,000 events published while 50 SSE and 50 WebSocket subscribers are
//! connected reach every one of them, complete and in order.

mod common;

use common::{TestServer, collect_sse, collect_ws, fast_config, publish_all, within};

const EVENTS: u64 = 2_000;
const SSE: usize = 50;
const WS: usize = 50;

fn body(i: u64) -> String {
    format!("{{\"i\":{i},\"note\":\"event number {i} of the burst\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_reaches_every_subscriber_complete_and_in_order() {
    within(async {
        let s = TestServer::start(fast_config()).await;
        let mut readers = Vec::new();
        // since=0 so a subscriber whose session starts late still begins at event 1.
        for k in 0..SSE {
            let mut sse = s.sse("/topics/burst/sse?since=0", &[]).await;
            readers.push(tokio::spawn(async move {
                (format!("sse {k}"), collect_sse(&mut sse, EVENTS).await)
            }));
        }
        for k in 0..WS {
            let format = if k % 2 == 0 { "text" } else { "binary" };
            let mut ws = s
                .ws(&format!("/topics/burst/ws?since=0&format={format}"))
                .await;
            readers.push(tokio::spawn(async move {
                (
                    format!("websocket {k} ({format})"),
                    collect_ws(&mut ws, EVENTS).await,
                )
            }));
        }
        let seqs = publish_all(s.addr, "burst", (1..=EVENTS).map(body)).await;
        assert_eq!(seqs, (1..=EVENTS).collect::<Vec<_>>());
        for reader in readers {
            let (who, got) = reader.await.expect("reader");
            assert_eq!(got.len() as u64, EVENTS, "{who}: every event exactly once");
            for (k, (seq, data)) in got.iter().enumerate() {
                let i = k as u64 + 1;
                assert_eq!(*seq, i, "{who}: in order");
                assert_eq!(*data, body(i), "{who}: event {i} complete");
            }
        }
        assert_eq!(
            s.metric("pushbench_deliveries_total{strategy=\"sse\"}")
                .await,
            (EVENTS as usize * SSE) as f64
        );
        assert_eq!(
            s.metric("pushbench_deliveries_total{strategy=\"websocket\"}")
                .await,
            (EVENTS as usize * WS) as f64
        );
        assert_eq!(s.metric("pushbench_slow_consumer_closes_total").await, 0.0);
        assert_eq!(s.metric("pushbench_gaps_total").await, 0.0);
    })
    .await;
}
