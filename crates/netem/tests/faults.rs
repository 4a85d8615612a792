//! Faults: a blackhole is silent (no bytes, no FIN, no RST) and data flows again
//! after the lift; a reset is seen as a reset on both sides; flaps repeat; a
//! timeline starts and ends faults on time; shutdown and upstream failures.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use pushbench_netem::{Fault, Impairment, ScheduledFault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads once with a deadline: `None` if nothing at all happened (no byte, no EOF,
/// no error), otherwise what the read returned.
async fn read_within(stream: &mut TcpStream, ms: u64) -> Option<std::io::Result<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    match tokio::time::timeout(Duration::from_millis(ms), stream.read(&mut buf)).await {
        Err(_) => None,
        Ok(Ok(n)) => Some(Ok(buf[..n].to_vec())),
        Ok(Err(e)) => Some(Err(e)),
    }
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within(5, stream.read_exact(&mut buf)).await.expect("read");
    buf
}

fn is_reset(result: &std::io::Result<Vec<u8>>) -> bool {
    matches!(result, Err(e) if e.kind() == ErrorKind::ConnectionReset)
}

#[tokio::test]
async fn blackhole_is_silent_both_ways_then_flows_after_lift() {
    within(20, async {
        let upstream = upstream().await;
        let proxy = proxy(upstream.local_addr().unwrap(), Impairment::none(), 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let (mut server, _) = within(5, upstream.accept()).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        assert_eq!(read_exactly(&mut server, 5).await, b"hello");

        proxy.apply(Fault::Blackhole).unwrap();
        assert_eq!(proxy.active_fault(), Some(Fault::Blackhole));
        // The server sends data and closes its side; the client sends data.
        server.write_all(b"during").await.unwrap();
        server.shutdown().await.unwrap();
        client.write_all(b"up").await.unwrap();
        // Nothing reaches either side: no byte, no FIN (EOF), no RST.
        assert!(
            read_within(&mut client, 300).await.is_none(),
            "client saw something"
        );
        assert!(
            read_within(&mut server, 100).await.is_none(),
            "server saw something"
        );
        // A new connection is accepted by the kernel, but the server never hears of it.
        let mut late = connect(proxy.local_addr()).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(200), upstream.accept())
                .await
                .is_err(),
            "the upstream was dialled during a blackhole"
        );
        assert!(read_within(&mut late, 10).await.is_none());

        proxy.lift();
        assert_eq!(proxy.active_fault(), None);
        // Held bytes flow, then the held FIN.
        assert_eq!(read_exactly(&mut client, 6).await, b"during");
        assert!(
            matches!(read_within(&mut client, 2000).await, Some(Ok(b)) if b.is_empty()),
            "no FIN after the lift"
        );
        assert_eq!(read_exactly(&mut server, 2).await, b"up");
        // The late connection reaches the server now.
        let (mut late_server, _) = within(5, upstream.accept()).await.unwrap();
        late.write_all(b"late").await.unwrap();
        assert_eq!(read_exactly(&mut late_server, 4).await, b"late");
        let c = proxy.counters();
        assert_eq!(c.faults_applied, 1);
        assert_eq!(c.up.resets + c.down.resets, 0);
    })
    .await;
}

#[tokio::test]
async fn reset_is_seen_as_a_reset_on_both_sides() {
    within(20, async {
        let upstream = upstream().await;
        let proxy = proxy(upstream.local_addr().unwrap(), Impairment::none(), 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let (mut server, _) = within(5, upstream.accept()).await.unwrap();
        client.write_all(b"x").await.unwrap();
        assert_eq!(read_exactly(&mut server, 1).await, b"x");

        proxy.apply(Fault::Reset).unwrap();
        let on_client = read_within(&mut client, 2000)
            .await
            .expect("client saw nothing");
        assert!(
            is_reset(&on_client),
            "client saw {on_client:?}, not a reset"
        );
        let on_server = read_within(&mut server, 2000)
            .await
            .expect("server saw nothing");
        assert!(
            is_reset(&on_server),
            "server saw {on_server:?}, not a reset"
        );
        let c = proxy.counters();
        assert_eq!((c.fault_resets, c.up.resets, c.down.resets), (1, 1, 1));

        // A reset is instantaneous: the next connection works.
        let mut again = connect(proxy.local_addr()).await;
        let (mut server, _) = within(5, upstream.accept()).await.unwrap();
        again.write_all(b"y").await.unwrap();
        assert_eq!(read_exactly(&mut server, 1).await, b"y");
    })
    .await;
}

#[tokio::test]
async fn flap_resets_periodically_and_refuses_while_down() {
    within(20, async {
        let echo = echo_upstream().await;
        let proxy = proxy(echo, Impairment::none(), 1).await;
        let mut client = connect(proxy.local_addr()).await;
        echo_rtt(&mut client, 8).await;
        let period = Duration::from_millis(600);
        let down = Duration::from_millis(250);
        let t0 = Instant::now();
        proxy.apply(Fault::Flap { period, down }).unwrap();
        // The first down phase starts at once and resets the open connection.
        let seen = read_within(&mut client, 1000).await.expect("no reset");
        assert!(is_reset(&seen), "{seen:?}");
        // While down, new connections are reset straight away.
        let mut refused = connect(proxy.local_addr()).await;
        assert!(t0.elapsed() < down, "too slow to test the down phase");
        let seen = read_within(&mut refused, 1000)
            .await
            .expect("refused connection saw nothing");
        assert!(is_reset(&seen), "{seen:?}");
        // After the down phase, connections work until the next one.
        tokio::time::sleep_until((t0 + down + Duration::from_millis(50)).into()).await;
        let mut up = connect(proxy.local_addr()).await;
        echo_rtt(&mut up, 8).await;
        let seen = read_within(&mut up, 1000).await.expect("no second reset");
        let second = t0.elapsed();
        assert!(is_reset(&seen), "{seen:?}");
        assert!(
            second >= period - Duration::from_millis(20)
                && second <= period + Duration::from_millis(100),
            "second down phase at {second:?}, period {period:?}"
        );
        proxy.lift();
        let mut after = connect(proxy.local_addr()).await;
        echo_rtt(&mut after, 8).await;
        let c = proxy.counters();
        assert!(c.connections_refused >= 1 && c.faults_applied >= 2, "{c:?}");
    })
    .await;
}

#[tokio::test]
async fn timeline_faults_start_and_end_on_time() {
    within(20, async {
        let upstream = upstream().await;
        let proxy = proxy(upstream.local_addr().unwrap(), Impairment::none(), 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let (mut server, _) = within(5, upstream.accept()).await.unwrap();
        // The server ticks a byte every 5 ms for 1.2 s.
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(5));
            for _ in 0..240 {
                every.tick().await;
                if server.write_all(b".").await.is_err() {
                    break;
                }
            }
            server
        });
        let start = Instant::now();
        let plan: ScheduledFault = "300ms:blackhole:400ms".parse().unwrap();
        proxy.run_timeline(start.into(), &[plan]).unwrap();
        // Record when bytes arrive; find the longest silence.
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 256];
        while start.elapsed() < Duration::from_millis(1100) {
            match tokio::time::timeout(Duration::from_millis(50), client.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => panic!("stream ended"),
                Ok(Ok(_)) => arrivals.push(start.elapsed()),
                Err(_) => {}
            }
        }
        let (gap_start, gap_end) = arrivals
            .windows(2)
            .map(|w| (w[0], w[1]))
            .max_by_key(|(a, b)| *b - *a)
            .expect("bytes arrived");
        eprintln!("silence from {gap_start:?} to {gap_end:?}");
        // Early by at most 30 ms (the ticker's and timer's granularity); late by at
        // most 50 ms (a busy machine only delays).
        let (early, late) = (Duration::from_millis(30), Duration::from_millis(50));
        let (on, off) = (Duration::from_millis(300), Duration::from_millis(700));
        assert!(
            gap_start + early >= on && gap_start <= on + late,
            "started at {gap_start:?}"
        );
        assert!(
            gap_end + early >= off && gap_end <= off + late,
            "ended at {gap_end:?}"
        );
        drop(ticker.await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    within(20, async {
        let echo = echo_upstream().await;
        let proxy = proxy(echo, Impairment::none(), 1).await;
        let mut client = connect(proxy.local_addr()).await;
        echo_rtt(&mut client, 8).await;
        assert_eq!(proxy.counters().connections_active, 1);
        assert!(
            proxy.shutdown(Duration::from_secs(2)).await,
            "tasks outlived the deadline"
        );
        assert!(matches!(read_within(&mut client, 1000).await, Some(Ok(b)) if b.is_empty()));
        assert_eq!(proxy.counters().connections_active, 0);
        assert!(
            TcpStream::connect(proxy.local_addr()).await.is_err(),
            "still accepting"
        );
    })
    .await;
}

#[tokio::test]
async fn unreachable_upstream_resets_the_client() {
    within(20, async {
        // Bind and drop to get a port nobody listens on.
        let dead = upstream().await.local_addr().unwrap();
        let proxy = proxy(dead, Impairment::none(), 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let seen = read_within(&mut client, 2000)
            .await
            .expect("client saw nothing");
        assert!(is_reset(&seen), "{seen:?}");
        assert_eq!(proxy.counters().upstream_failures, 1);
    })
    .await;
}

#[tokio::test]
async fn fins_are_delayed_like_data_and_half_close_works() {
    within(20, async {
        let upstream = upstream().await;
        let mut imp = Impairment::none();
        imp.up.latency = Duration::from_millis(50);
        let proxy = proxy(upstream.local_addr().unwrap(), imp, 1).await;
        let mut client = connect(proxy.local_addr()).await;
        let (mut server, _) = within(5, upstream.accept()).await.unwrap();
        let start = Instant::now();
        client.write_all(b"bye").await.unwrap();
        client.shutdown().await.unwrap();
        let mut all = Vec::new();
        within(5, server.read_to_end(&mut all)).await.unwrap();
        assert_eq!(all, b"bye");
        assert!(
            start.elapsed() >= Duration::from_millis(48),
            "FIN overtook the delay"
        );
        // The other direction still works after the client's half-close.
        server.write_all(b"ok").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        within(5, client.read_to_end(&mut back)).await.unwrap();
        assert_eq!(back, b"ok");
        eventually(|| {
            let c = proxy.counters();
            ((c.up.fins, c.down.fins) == (1, 1)).then_some(())
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn cancelling_the_token_stops_the_proxy_and_handles_do_not() {
    within(20, async {
        let echo = echo_upstream().await;
        let token = tokio_util::sync::CancellationToken::new();
        let proxy = pushbench_netem::Proxy::bind(
            "127.0.0.1:0".parse().unwrap(),
            echo,
            Impairment::none(),
            1,
            token.clone(),
        )
        .await
        .unwrap();
        let addr = proxy.local_addr();
        let mut client = connect(addr).await;
        echo_rtt(&mut client, 8).await;
        drop(proxy);
        echo_rtt(&mut client, 8).await; // handles gone, proxy still running
        token.cancel();
        assert!(matches!(read_within(&mut client, 1000).await, Some(Ok(b)) if b.is_empty()));
        // The accept loop ends on the same signal, in its own time.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "still accepting");
    })
    .await;
}
