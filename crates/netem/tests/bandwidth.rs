//! Bandwidth is within 10 % of what was asked, per connection and shared.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pushbench_netem::{Bandwidth, Impairment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `bytes` from the server side to a client through the proxy and returns
/// how long the client took to receive them, from the first write.
async fn download(bytes: usize, imp: Impairment) -> Duration {
    let upstream = upstream().await;
    let proxy = proxy(upstream.local_addr().unwrap(), imp, 1).await;
    let mut client = connect(proxy.local_addr()).await;
    let (mut server, _) = upstream.accept().await.unwrap();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        server.write_all(&vec![1u8; bytes]).await.unwrap();
        server
    });
    let mut got = vec![0u8; bytes];
    client.read_exact(&mut got).await.unwrap();
    let took = start.elapsed();
    drop(writer.await.unwrap());
    eventually(|| (proxy.counters().down.bytes_written == bytes as u64).then_some(())).await;
    took
}

fn assert_within_ten_percent(took: Duration, bytes: usize, rate: Bandwidth) {
    let expected = rate.transmit_time(bytes);
    let ratio = took.as_secs_f64() / expected.as_secs_f64();
    eprintln!("{bytes} B at {rate}: {took:?}, expected {expected:?} (ratio {ratio:.3})");
    assert!(
        (0.9..=1.1).contains(&ratio),
        "took {took:?}, expected {expected:?}"
    );
}

#[tokio::test]
async fn per_connection_bandwidth_within_ten_percent() {
    within(20, async {
        let rate: Bandwidth = "2mbit".parse().unwrap();
        let mut imp = Impairment::none();
        imp.down.bandwidth = Some(rate);
        let bytes = 300_000;
        assert_within_ten_percent(download(bytes, imp).await, bytes, rate);
    })
    .await;
}

#[tokio::test]
async fn upload_bandwidth_within_ten_percent() {
    within(20, async {
        let rate: Bandwidth = "1mbit".parse().unwrap();
        let mut imp = Impairment::none();
        imp.up.bandwidth = Some(rate);
        let upstream = upstream().await;
        let proxy = proxy(upstream.local_addr().unwrap(), imp, 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let (mut server, _) = upstream.accept().await.unwrap();
        let bytes = 150_000;
        let start = Instant::now();
        let writer = tokio::spawn(async move {
            client.write_all(&vec![2u8; bytes]).await.unwrap();
            client
        });
        let mut got = vec![0u8; bytes];
        server.read_exact(&mut got).await.unwrap();
        assert_within_ten_percent(start.elapsed(), bytes, rate);
        drop(writer.await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn shared_bandwidth_is_split_between_connections() {
    within(20, async {
        let rate: Bandwidth = "2mbit".parse().unwrap();
        let mut imp = Impairment::none();
        imp.down.shared_bandwidth = Some(rate);
        let upstream = upstream().await;
        let proxy = proxy(upstream.local_addr().unwrap(), imp, 1).await;
        let per_connection = 125_000;
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..2 {
            clients.push(connect(proxy.local_addr()).await);
            servers.push(upstream.accept().await.unwrap().0);
        }
        let start = Instant::now();
        let writers: Vec<_> = servers
            .into_iter()
            .map(|mut s| {
                tokio::spawn(async move {
                    s.write_all(&vec![3u8; per_connection]).await.unwrap();
                    s
                })
            })
            .collect();
        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                tokio::spawn(async move {
                    let mut got = vec![0u8; per_connection];
                    c.read_exact(&mut got).await.unwrap();
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for r in readers {
            times.push(r.await.unwrap());
        }
        for w in writers {
            drop(w.await.unwrap());
        }
        // Together they get the shared rate; each finishes near the end (fair share).
        let total = *times.iter().max().unwrap();
        assert_within_ten_percent(total, 2 * per_connection, rate);
        let first = *times.iter().min().unwrap();
        assert!(
            first.as_secs_f64() > 0.75 * total.as_secs_f64(),
            "one connection starved the other: {times:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_slow_link_holds_at_most_queue_bytes_per_direction() {
    within(20, async {
        let mut imp = Impairment::none();
        imp.down.bandwidth = Some("200kbit".parse().unwrap());
        imp.queue_bytes = 32 * 1024;
        let upstream = upstream().await;
        let proxy = proxy(upstream.local_addr().unwrap(), imp, 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let (mut server, _) = upstream.accept().await.unwrap();
        // The server pushes far more than the link carries in the test's time.
        let writer = tokio::spawn(async move {
            let _ = server.write_all(&vec![5u8; 4 << 20]).await;
        });
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let mut most_held = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let c = proxy.counters().down;
            most_held = most_held.max(c.bytes_read - c.bytes_written);
        }
        eprintln!("most bytes held by the proxy: {most_held}");
        assert!(most_held <= imp.queue_bytes as u64, "held {most_held} B");
        assert!(
            most_held >= imp.queue_bytes as u64 / 2,
            "the queue never filled: {most_held} B"
        );
        writer.abort();
        reader.abort();
    })
    .await;
}
