//! No byte is lost, duplicated or reordered inside a connection, whatever the
//! jitter and loss: a property test over random seeds and random write sizes.

mod common;

use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CASES: u64 = 12;
const COUNTERS: u32 = 25_000; // 100 kB each way per case

/// One case: a random impairment from `seed`; sends a counter sequence through an
/// echo upstream in randomly sized writes and checks what comes back.
async fn case(seed: u64, echo: std::net::SocketAddr) -> u64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut imp = both(|l| {
        l.latency = Duration::from_millis(rng.random_range(0..10));
        l.jitter = Duration::from_millis(rng.random_range(0..10));
        l.loss = rng.random_range(0.0..0.05);
        if rng.random_bool(0.5) {
            l.bandwidth = Some(pushbench_netem::Bandwidth::from_mbit(
                rng.random_range(20..100),
            ));
        }
    });
    imp.rto = Duration::from_millis(rng.random_range(5..20));
    imp.segment_bytes = rng.random_range(100..1500);
    let proxy = proxy(echo, imp, seed).await;
    let stream = connect(proxy.local_addr()).await;
    let (mut r, mut w) = stream.into_split();
    let payload: Vec<u8> = (0..COUNTERS).flat_map(|i| i.to_be_bytes()).collect();
    let expected = payload.clone();
    let mut sizes = StdRng::seed_from_u64(seed ^ 0xABCD);
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        while sent < payload.len() {
            let n = sizes.random_range(1..4000).min(payload.len() - sent);
            w.write_all(&payload[sent..sent + n]).await.unwrap();
            sent += n;
        }
        w
    });
    let mut got = vec![0u8; expected.len()];
    r.read_exact(&mut got).await.unwrap();
    drop(writer.await.unwrap());
    if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!("seed {seed} ({imp:?}): first difference at byte {i}");
    }
    // The client can read the last bytes before the proxy's task counts them.
    let total = expected.len() as u64;
    let c = eventually(|| {
        let c = proxy.counters();
        (c.up.bytes_written == total && c.down.bytes_written == total).then_some(c)
    })
    .await;
    assert_eq!(c.up.bytes_read, total, "seed {seed}");
    c.up.retransmission_stalls + c.down.retransmission_stalls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arrive_intact_and_in_order_under_jitter_and_loss() {
    within(40, async {
        let echo = echo_upstream().await;
        let mut seeds = StdRng::seed_from_u64(20_261_121);
        let cases: Vec<_> = (0..CASES)
            .map(|_| tokio::spawn(case(seeds.random(), echo)))
            .collect();
        let mut stalls = 0;
        for c in cases {
            stalls += c.await.expect("a case failed");
        }
        eprintln!("{CASES} cases, {stalls} retransmission stalls");
        assert!(stalls > 0, "the cases exercised no loss");
    })
    .await;
}
