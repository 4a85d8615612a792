//! `scenarios/slow-consumer.toml` at a small size, against a server whose slow
//! consumer timeout is 2 s (the CLI's embedded server waits 10 s): the slow
//! WebSocket readers are closed by the server, the fast ones lose nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use pushbench_loadgen::{Progress, RunOptions, Scenario, run};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_are_closed_and_fast_ones_unaffected() {
    tokio::time::timeout(Duration::from_secs(40), async {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/slow-consumer.toml");
        let s = Scenario::from_file(&path, &["duration=\"7s\"".into()]).expect("valid");
        let config = pushbench_server::Config {
            slow_consumer_timeout: Duration::from_secs(2),
            ..pushbench_server::Config::default()
        };
        let server = pushbench_server::Server::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let token = CancellationToken::new();
        tokio::spawn(server.clone().run(listener, token.clone()));
        let r = run(
            &s,
            RunOptions {
                base_url: format!("http://{addr}"),
                embedded: true,
                server: None,
            },
            Arc::new(Progress::default()),
            CancellationToken::new(),
        )
        .await
        .expect("run");
        token.cancel();
        let closes = server.metrics().slow_consumer_closes.load(Relaxed);
        assert!(closes >= 2, "both slow readers closed, got {closes}");
        let fast = r
            .summary
            .groups
            .iter()
            .find(|g| g.name == "ws-fast")
            .expect("ws-fast");
        assert!(fast.expected > 0, "{fast:?}");
        assert_eq!(
            (fast.lost, fast.duplicates, fast.errors),
            (0, 0, 0),
            "{fast:?}"
        );
        // Unaffected: a fast reader's p99 stays far below the slow readers' stall.
        assert!(fast.latency_us.p99 < 500_000, "{fast:?}");
        let slow = r
            .summary
            .groups
            .iter()
            .find(|g| g.name == "ws-slow")
            .expect("ws-slow");
        assert!(slow.coherence < 0.5, "{slow:?}");
    })
    .await
    .expect("finishes within 40s");
}
