//! Added latency is what was asked for, within a couple of milliseconds on
//! loopback, per direction; and loss shows up as RTO stalls, never as lost bytes.

mod common;

use std::time::Duration;

use common::*;
use pushbench_netem::Impairment;

const SAMPLES: usize = 25;

async fn rtts(addr: std::net::SocketAddr) -> Vec<Duration> {
    let mut stream = connect(addr).await;
    echo_rtt(&mut stream, 64).await; // warm up: connection set-up is not measured
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        samples.push(echo_rtt(&mut stream, 64).await);
    }
    samples
}

#[tokio::test]
async fn added_latency_matches_configuration_per_direction() {
    within(20, async {
        let echo = echo_upstream().await;
        let mut imp = Impairment::none();
        imp.up.latency = Duration::from_millis(25);
        imp.down.latency = Duration::from_millis(15);
        let proxy = proxy(echo, imp, 1).await;
        let mut direct = rtts(echo).await;
        let mut proxied = rtts(proxy.local_addr()).await;
        let asked = Duration::from_millis(40);
        // Releases are centred on the asked-for time within the timer's 1 ms tick
        // (about ±0.5 ms per direction): no round trip is more than 2 ms early.
        let floor = asked - Duration::from_millis(2);
        assert!(
            proxied.iter().all(|&d| d >= floor),
            "a round trip beat the added latency: {proxied:?}"
        );
        let added = median(&mut proxied).saturating_sub(median(&mut direct));
        // Sorted by `median`. Scheduling noise on a busy machine only ever adds
        // delay, so the fastest round trip shows the proxy's own accuracy.
        let best = proxied[0].saturating_sub(direct[0]);
        eprintln!("asked {asked:?}, added {added:?} (median of {SAMPLES}), {best:?} (fastest)");
        let ms = Duration::from_millis;
        assert!(
            best + ms(2) >= asked && best <= asked + ms(2),
            "added {best:?} (fastest) for {asked:?}"
        );
        // The median too, with room for a machine shared with compilers.
        assert!(
            added + ms(1) >= asked && added <= asked + ms(10),
            "added {added:?} (median) for {asked:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn unimpaired_proxy_adds_almost_nothing() {
    within(20, async {
        let echo = echo_upstream().await;
        let proxy = proxy(echo, Impairment::none(), 1).await;
        let mut direct = rtts(echo).await;
        let mut proxied = rtts(proxy.local_addr()).await;
        let added = median(&mut proxied).saturating_sub(median(&mut direct));
        eprintln!("plain proxy adds {added:?} (median of {SAMPLES})");
        assert!(
            added < Duration::from_millis(5),
            "plain proxying added {added:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn jitter_spreads_delay_within_bounds() {
    within(20, async {
        let echo = echo_upstream().await;
        let imp = both(|l| {
            l.latency = Duration::from_millis(20);
            l.jitter = Duration::from_millis(10);
        });
        let proxy = proxy(echo, imp, 9).await;
        let mut samples = rtts(proxy.local_addr()).await;
        samples.sort();
        eprintln!(
            "jittered RTTs: min {:?} max {:?}",
            samples[0],
            samples[SAMPLES - 1]
        );
        // Two draws in [10, 30] ms each: the RTT lies in [20, 60] ms (+ slack) and varies.
        assert!(samples[0] >= Duration::from_millis(18));
        // Noise on a busy machine only adds delay: most samples, not all, must fit.
        let beyond = samples
            .iter()
            .filter(|&&d| d > Duration::from_millis(62))
            .count();
        assert!(
            beyond <= SAMPLES / 5,
            "{beyond} samples above 62 ms: {samples:?}"
        );
        assert!(
            samples[SAMPLES - 1] - samples[0] >= Duration::from_millis(5),
            "no spread: {samples:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn loss_is_a_retransmission_stall() {
    within(20, async {
        let echo = echo_upstream().await;
        let mut imp = Impairment::none();
        imp.down.loss = 0.3;
        imp.rto = Duration::from_millis(60);
        let proxy = proxy(echo, imp, 4).await;
        let samples = rtts(proxy.local_addr()).await;
        let stalled = samples
            .iter()
            .filter(|&&d| d >= Duration::from_millis(58))
            .count();
        eprintln!("{stalled} of {SAMPLES} round trips stalled");
        assert!(stalled > 0, "no stall at 30 % loss: {samples:?}");
        assert!(stalled < SAMPLES, "every round trip stalled: {samples:?}");
        // Each sample's response is one segment: every counted stall (but perhaps
        // the warm-up's) is a round trip at least one RTO long.
        let c = proxy.counters();
        assert!(c.down.retransmission_stalls > 0);
        assert!(
            stalled as u64 + 1 >= c.down.retransmission_stalls,
            "{c:?} {samples:?}"
        );
        assert_eq!(c.up.retransmission_stalls, 0);
        eventually(|| {
            let c = proxy.counters();
            (c.down.bytes_written == c.down.bytes_read).then_some(())
        })
        .await; // loss never drops bytes
    })
    .await;
}

#[tokio::test]
async fn connection_setup_costs_one_round_trip() {
    within(20, async {
        let echo = echo_upstream().await;
        let rtt = Duration::from_millis(60);
        let mut imp = both(|l| l.latency = rtt / 2);
        let ms = Duration::from_millis;
        for (handshake, expected) in [(true, 2 * rtt), (false, rtt)] {
            imp.handshake = handshake;
            let proxy = common::proxy(echo, imp, 1).await;
            // Connect and one exchange: the handshake's RTT (if charged) + one RTT.
            let mut samples = Vec::new();
            for _ in 0..5 {
                let start = std::time::Instant::now();
                let mut stream = connect(proxy.local_addr()).await;
                echo_rtt(&mut stream, 8).await;
                samples.push(start.elapsed());
            }
            samples.sort();
            eprintln!("handshake {handshake}: connect + first exchange {samples:?}");
            // Noise only adds delay: the fastest sample shows the proxy's accuracy.
            assert!(
                samples[0] + ms(2) >= expected && samples[0] <= expected + ms(3),
                "{samples:?}"
            );
        }
    })
    .await;
}
