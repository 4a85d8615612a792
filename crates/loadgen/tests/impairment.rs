//! The strategies over an impaired link (pushbench-netem in front of the server):
//! what DESIGN.md says each strategy teaches must show in the numbers.

use std::sync::Arc;
use std::time::Duration;

use pushbench_loadgen::{Progress, RunOptions, Scenario, run};
use pushbench_netem::{Fault, Impairment, LinkConfig, Proxy, ProxyHandle};
use pushbench_protocol::record::{GroupSummary, RunRecord};
use tokio_util::sync::CancellationToken;

async fn server_behind_proxy(impairment: Impairment) -> (String, ProxyHandle, CancellationToken) {
    let server = pushbench_server::Server::new(pushbench_server::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let upstream = listener.local_addr().expect("bound");
    let token = CancellationToken::new();
    tokio::spawn(server.clone().run(listener, token.clone()));
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let proxy =
        Proxy::start(proxy_listener, upstream, impairment, 5, token.clone()).expect("proxy starts");
    (format!("http://{}", proxy.local_addr()), proxy, token)
}

fn group<'a>(r: &'a RunRecord, name: &str) -> &'a GroupSummary {
    r.summary
        .groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("group {name}"))
}

const JITTER: &str = r#"
name = "jitter"
description = "setInterval polling over a jittery link"
duration = "3s"
warmup = "500ms"
grace = "2s"
[publisher]
rate = 20
pattern = "poisson"
[[group]]
name = "poll-interval"
strategy = "poll"
clients = 3
interval = "100ms"
schedule = "fixed-rate"
[[group]]
name = "poll-delay"
strategy = "poll"
clients = 3
interval = "100ms"
schedule = "fixed-delay"
[[group]]
name = "sse"
strategy = "sse"
clients = 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_interval_polling_over_jitter_delivers_out_of_order() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let down = LinkConfig {
            latency: Duration::from_millis(150),
            jitter: Duration::from_millis(140),
            ..LinkConfig::NONE
        };
        let mut impairment = Impairment::none();
        impairment.down = down;
        let (url, _proxy, token) = server_behind_proxy(impairment).await;
        let s = Scenario::from_toml_str(JITTER, "jitter.toml", &[]).expect("valid");
        let r = run(
            &s,
            RunOptions {
                base_url: url,
                embedded: false,
                server: None,
            },
            Arc::new(Progress::default()),
            CancellationToken::new(),
        )
        .await
        .expect("run");
        token.cancel();
        let fixed_rate = group(&r, "poll-interval");
        eprintln!("{fixed_rate:?}");
        // Overlapping requests on several connections: responses cross, the
        // last-writer-wins cursor moves back, events come twice or late.
        assert!(fixed_rate.connections_opened > 3, "{fixed_rate:?}");
        assert!(
            fixed_rate.duplicates + fixed_rate.reordered > 0,
            "{fixed_rate:?}"
        );
        // setTimeout polling and SSE stay ordered and complete.
        for name in ["poll-delay", "sse"] {
            let g = group(&r, name);
            assert!(g.expected > 0, "{name}");
            assert_eq!(
                (g.lost, g.duplicates, g.reordered),
                (0, 0, 0),
                "{name}: {g:?}"
            );
        }
        // Latency carries the link's delay.
        assert!(group(&r, "sse").latency_us.p50 >= 10_000);
    })
    .await
    .expect("finishes within 30s");
}

const RESET: &str = r#"
name = "reset"
description = "every connection reset mid-run"
duration = "3s"
warmup = "500ms"
grace = "2s"
[publisher]
rate = 20
[[group]]
name = "sse"
strategy = "sse"
clients = 2
resume = true
[[group]]
name = "websocket"
strategy = "websocket"
clients = 2
resume = true
[[group]]
name = "long-poll"
strategy = "long-poll"
clients = 2
[[group]]
name = "websocket-no-resume"
strategy = "websocket"
clients = 2
resume = false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_clients_survive_a_reset_without_loss() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (url, proxy, token) = server_behind_proxy(Impairment::none()).await;
        let s = Scenario::from_toml_str(RESET, "reset.toml", &[]).expect("valid");
        let progress = Arc::new(Progress::default());
        let resetter = {
            let progress = progress.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if progress.snapshot().elapsed_ms > 1800 {
                        break;
                    }
                }
                proxy.apply(Fault::Reset).expect("reset applies");
                proxy
            })
        };
        let r = run(
            &s,
            RunOptions {
                base_url: url,
                embedded: false,
                server: None,
            },
            progress,
            CancellationToken::new(),
        )
        .await
        .expect("run");
        let _proxy = resetter.await.expect("resetter");
        token.cancel();
        for name in ["sse", "websocket", "long-poll"] {
            let g = group(&r, name);
            eprintln!("{g:?}");
            assert!(g.expected > 0, "{name}");
            assert_eq!(
                (g.lost, g.duplicates, g.reordered),
                (0, 0, 0),
                "{name}: {g:?}"
            );
        }
        for name in ["sse", "websocket", "websocket-no-resume"] {
            assert!(group(&r, name).reconnects > 0, "{name} reconnected");
        }
        // A publish whose answer the reset swallowed still counts once a client has it.
        for g in &r.summary.groups {
            assert!(g.delivered <= g.expected && g.coherence <= 1.0, "{g:?}");
        }
    })
    .await
    .expect("finishes within 30s");
}

const HALF_OPEN: &str = r#"
name = "half-open"
description = "a blackhole in the middle of the run"
duration = "4s"
warmup = "500ms"
grace = "3s"
[publisher]
rate = 20
[[group]]
name = "ws-heartbeat"
strategy = "websocket"
clients = 2
heartbeat = "200ms"
heartbeat_misses = 2
resume = true
[[group]]
name = "ws-silent"
strategy = "websocket"
clients = 2
resume = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_detects_a_half_open_connection() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (url, proxy, token) = server_behind_proxy(Impairment::none()).await;
        let s = Scenario::from_toml_str(HALF_OPEN, "half-open.toml", &[]).expect("valid");
        let progress = Arc::new(Progress::default());
        let faults = {
            let progress = progress.clone();
            tokio::spawn(async move {
                while progress.snapshot().elapsed_ms < 1500 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                proxy.apply(Fault::Blackhole).expect("blackhole applies");
                tokio::time::sleep(Duration::from_millis(1500)).await;
                proxy.lift();
                proxy
            })
        };
        let r = run(
            &s,
            RunOptions {
                base_url: url,
                embedded: false,
                server: None,
            },
            progress,
            CancellationToken::new(),
        )
        .await
        .expect("run");
        let _proxy = faults.await.expect("fault task");
        token.cancel();
        let hb = group(&r, "ws-heartbeat");
        let silent = group(&r, "ws-silent");
        eprintln!("{hb:?}\n{silent:?}");
        // The heartbeat notices the dead peer and reconnects; resume loses nothing.
        assert!(
            hb.errors_by_kind.get("dead_peer").copied().unwrap_or(0) >= 2,
            "{hb:?}"
        );
        assert!(hb.reconnects >= 2, "{hb:?}");
        assert_eq!((hb.lost, hb.duplicates, hb.reordered), (0, 0, 0), "{hb:?}");
        // Without a heartbeat nothing is noticed: the connection just goes quiet
        // until the blackhole ends and the held bytes arrive.
        assert!(
            !silent.errors_by_kind.contains_key("dead_peer"),
            "{silent:?}"
        );
        assert_eq!(silent.reconnects, 0, "{silent:?}");
        assert!(
            silent.latency_us.max > 1_000_000,
            "events waited out the blackhole: {silent:?}"
        );
    })
    .await
    .expect("finishes within 30s");
}

const TIMELINE: &str = r#"
name = "timeline"
description = "a reset on one group, a flap on another, a publisher burst; one group spared"
duration = "4s"
warmup = "500ms"
grace = "2s"
[publisher]
rate = 20
[[group]]
name = "reset"
strategy = "sse"
clients = 3
[[group]]
name = "flap"
strategy = "websocket"
clients = 3
[[group]]
name = "spared"
strategy = "sse"
clients = 3
[[fault]]
at = "1s"
kind = "reset"
groups = ["reset"]
[[fault]]
at = "1s"
kind = "flap"
duration = "2s"
period = "1s"
down = "300ms"
groups = ["flap"]
[[fault]]
at = "2s"
kind = "publisher-burst"
rate = 500
count = 100
"#;

/// Faults hit only the groups they name (one proxy per group), resuming clients
/// lose nothing through them, and a burst adds its events to the publisher's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_timeline_targets_groups_and_bursts_publish() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let server = pushbench_server::Server::new(pushbench_server::Config::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let token = CancellationToken::new();
        tokio::spawn(server.run(listener, token.clone()));
        let s = Scenario::from_toml_str(TIMELINE, "timeline.toml", &[]).expect("valid");
        let r = run(
            &s,
            RunOptions {
                base_url: format!("http://{addr}"),
                embedded: false,
                server: None,
            },
            Arc::new(Progress::default()),
            CancellationToken::new(),
        )
        .await
        .expect("run");
        token.cancel();
        // 4 s at 20/s, plus the burst's 100.
        assert!(
            r.summary.publisher.published >= 170,
            "{:?}",
            r.summary.publisher
        );
        let reset = group(&r, "reset");
        assert_eq!(reset.detections, 3, "{reset:?}");
        assert!(reset.reconnects >= 3 && reset.recoveries >= 3, "{reset:?}");
        let flap = group(&r, "flap");
        assert!(flap.reconnects >= 3 && flap.detections == 3, "{flap:?}");
        assert!(flap.reconnect_peak_per_s >= 3, "{flap:?}");
        for g in [reset, flap] {
            assert_eq!((g.lost, g.duplicates), (0, 0), "{g:?}");
        }
        let spared = group(&r, "spared");
        assert_eq!(
            (spared.reconnects, spared.detections, spared.lost),
            (0, 0, 0),
            "{spared:?}"
        );
        let kinds: Vec<&str> = r.faults.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["reset", "flap", "publisher-burst"],
            "{:?}",
            r.faults
        );
        let flap_row = &r.faults[1];
        assert!(
            (flap_row.end_s - flap_row.start_s - 2.0).abs() < 0.2,
            "{flap_row:?}"
        );
        assert!(
            r.arrivals
                .iter()
                .any(|a| a.group == "spared" && a.client == 2)
        );
        assert!(r.arrivals.iter().all(|a| a.client < 3));
    })
    .await
    .expect("finishes within 30s");
}
