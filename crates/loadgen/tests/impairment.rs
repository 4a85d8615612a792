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
