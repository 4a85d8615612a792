//! End-to-end: the smoke scenario against the real server on 127.0.0.1:0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pushbench_loadgen::{Progress, RunOptions, Scenario, run};
use pushbench_protocol::record::{GroupSummary, RunRecord};
use tokio_util::sync::CancellationToken;

fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
}

async fn start_server() -> (String, CancellationToken) {
    let server = pushbench_server::Server::new(pushbench_server::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound");
    let token = CancellationToken::new();
    tokio::spawn(server.clone().run(listener, token.clone()));
    (format!("http://{addr}"), token)
}

async fn run_scenario(s: &Scenario) -> RunRecord {
    let (url, token) = start_server().await;
    let progress = Arc::new(Progress::default());
    let record = run(
        s,
        RunOptions {
            base_url: url,
            embedded: true,
            server: None,
        },
        progress.clone(),
        CancellationToken::new(),
    )
    .await
    .expect("run succeeds");
    token.cancel();
    let snap = progress.snapshot();
    assert!(snap.published > 0, "progress saw publishes: {snap:?}");
    record
}

/// Every group's interval histograms (the hlog) hold exactly the samples of its
/// totals, corrected and uncorrected: none recorded after the last interval is lost.
fn assert_hlog_matches_totals(r: &RunRecord) {
    for g in &r.summary.groups {
        for (tag, total) in [
            (g.name.clone(), g.latency_us.count),
            (
                format!("{}.uncorrected", g.name),
                g.latency_uncorrected_us.count,
            ),
        ] {
            let in_hlog: u64 = r
                .intervals
                .iter()
                .filter(|i| i.tag == tag)
                .map(|i| i.histogram.len())
                .sum();
            assert_eq!(in_hlog, total, "{tag}: hlog intervals vs summary count");
        }
    }
}

fn group<'a>(r: &'a RunRecord, name: &str) -> &'a GroupSummary {
    r.summary
        .groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("group {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_measures_every_strategy() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let s =
            Scenario::from_file(&scenario_path("smoke.toml"), &[]).expect("smoke.toml is valid");
        let r = run_scenario(&s).await;
        let summary = &r.summary;
        eprintln!(
            "{}",
            serde_json::to_string_pretty(summary).expect("serializes")
        );
        assert!(!summary.partial);
        assert!(
            summary.publisher.published >= 25,
            "published {}",
            summary.publisher.published
        );
        assert_eq!(summary.publisher.publish_errors, 0);

        // Loss-free strategies: every expected event, once, in order.
        for name in [
            "sse",
            "websocket",
            "websocket-binary",
            "long-poll",
            "poll",
            "chat",
        ] {
            let g = group(&r, name);
            assert!(g.expected > 0, "{name}: expected {}", g.expected);
            assert_eq!(
                (g.lost, g.duplicates, g.reordered),
                (0, 0, 0),
                "{name}: {g:?}"
            );
            assert_eq!(g.delivered, g.expected, "{name}");
            assert_eq!(g.coherence, 1.0, "{name}");
            assert!(g.latency_us.count > 0 && g.latency_us.p50 > 0, "{name}");
            assert_eq!(g.errors, 0, "{name}: {:?}", g.errors_by_kind);
        }
        // State polling slower than the publisher sees only some events.
        let latest = group(&r, "poll-latest");
        assert!(latest.coherence < 1.0 && latest.delivered > 0, "{latest:?}");
        assert!(
            latest.not_modified > 0 || latest.empty_responses > 0,
            "{latest:?}"
        );
        // Beacons upload.
        let beacon = group(&r, "beacon");
        assert!(beacon.uploads > 0 && beacon.bytes_up > 0, "{beacon:?}");
        // Bytes per event: polling > long polling > SSE > WebSocket.
        let bpe = |n: &str| group(&r, n).wire_bytes_per_event;
        assert!(
            bpe("poll") > bpe("long-poll"),
            "poll {} long-poll {}",
            bpe("poll"),
            bpe("long-poll")
        );
        assert!(
            bpe("long-poll") > bpe("sse"),
            "long-poll {} sse {}",
            bpe("long-poll"),
            bpe("sse")
        );
        assert!(
            bpe("sse") > bpe("websocket-binary"),
            "sse {} websocket-binary {}",
            bpe("sse"),
            bpe("websocket-binary")
        );

        // Records for the report.
        assert!(!r.timeseries.is_empty());
        assert!(
            r.intervals
                .iter()
                .any(|i| i.tag == "sse" && !i.histogram.is_empty())
        );
        assert!(r.intervals.iter().any(|i| i.tag == "sse.uncorrected"));
        assert_hlog_matches_totals(&r);
        assert!(r.histograms.contains_key("websocket"));
        assert!(r.scenario_toml.contains("name = \"smoke\""));
        assert!(!r.meta.version.is_empty() && r.meta.cores >= 1);
    })
    .await
    .expect("smoke run finishes within 30s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_publisher_naive_long_poll_loses_cursor_strategies_do_not() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let s = Scenario::from_file(
            &scenario_path("smoke.toml"),
            &[
                "publisher.rate=200".into(),
                "publisher.pattern=poisson".into(),
                "duration=\"2s\"".into(),
            ],
        )
        .expect("smoke.toml with overrides is valid");
        let r = run_scenario(&s).await;
        let naive = group(&r, "long-poll-naive");
        assert!(
            naive.expected > 0 && naive.lost > 0,
            "naive long poll under 200 ev/s: {naive:?}"
        );
        assert!(naive.coherence < 1.0);
        for name in ["sse", "websocket", "websocket-binary", "long-poll", "poll"] {
            let g = group(&r, name);
            assert!(g.expected > 0, "{name}");
            assert_eq!(
                (g.lost, g.duplicates, g.reordered),
                (0, 0, 0),
                "{name}: {g:?}"
            );
        }
        let latest = group(&r, "poll-latest");
        assert!(latest.coherence < 0.5, "{latest:?}");
    })
    .await
    .expect("run finishes within 30s");
}

#[test]
fn every_shipped_scenario_is_valid_and_described() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::from_file(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                s.description().len() > 40,
                "{} needs a description",
                path.display()
            );
            let again = Scenario::from_toml_str(&s.to_resolved_toml(), "resolved", &[])
                .expect("resolved TOML parses");
            assert_eq!(again.to_resolved_toml(), s.to_resolved_toml());
            names.push(s.name().to_string());
        }
    }
    for want in ["smoke", "quickstart", "ticker", "chat", "fanout"] {
        assert!(
            names.iter().any(|n| n == want),
            "scenarios/{want}.toml is missing"
        );
    }
}

/// The quickstart at full size: not part of the suite (it takes half a minute and
/// the whole machine); run with `cargo test -p pushbench-loadgen --release -- --ignored`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn quickstart_full_size() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let secs = std::env::var("QUICKSTART_SECS").unwrap_or_else(|_| "20".into());
        let s = Scenario::from_file(&scenario_path("quickstart.toml"), &[format!("duration=\"{secs}s\"")])
            .expect("quickstart.toml is valid");
        let r = run_scenario(&s).await;
        for g in &r.summary.groups {
            eprintln!(
                "{:16} exp {:6} del {:6} lost {:5} dup {:4} reord {:4} coh {:.3} p50 {:6} p99 {:7} B/ev {:7.1} req {:6} err {:?} conns {}",
                g.name, g.expected, g.delivered, g.lost, g.duplicates, g.reordered, g.coherence,
                g.latency_us.p50, g.latency_us.p99, g.wire_bytes_per_event, g.requests, g.errors_by_kind, g.connections_opened
            );
        }
        eprintln!("publisher {:?}\nloadgen {:?}\nwarnings {:?}", r.summary.publisher, r.summary.loadgen, r.summary.warnings);
        for name in ["sse", "websocket", "long-poll", "poll", "chat"] {
            let g = group(&r, name);
            assert_eq!((g.lost, g.duplicates, g.reordered), (0, 0, 0), "{name}: {g:?}");
        }
        assert!(group(&r, "poll-latest").coherence < 1.0);
        assert!(group(&r, "long-poll-naive").lost > 0);
        let bpe = |n: &str| group(&r, n).wire_bytes_per_event;
        assert!(bpe("poll") > bpe("long-poll") && bpe("long-poll") > bpe("sse") && bpe("sse") > bpe("websocket"));
    })
    .await
    .expect("quickstart finishes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_partial_results() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let s = Scenario::from_file(&scenario_path("smoke.toml"), &["duration=\"30s\"".into()])
            .expect("valid");
        let (url, token) = start_server().await;
        let stop = CancellationToken::new();
        let progress = Arc::new(Progress::default());
        let stopper = {
            let stop = stop.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                // Stop once the measured window has begun.
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let p = progress.snapshot();
                    if !p.warming_up && p.elapsed_ms > 1500 {
                        break;
                    }
                }
                stop.cancel();
            })
        };
        let started = std::time::Instant::now();
        let r = run(
            &s,
            RunOptions {
                base_url: url,
                embedded: true,
                server: None,
            },
            progress.clone(),
            stop,
        )
        .await
        .expect("run");
        stopper.await.expect("stopper");
        token.cancel();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "stopped long before the 30 s window"
        );
        assert!(r.summary.partial);
        assert!(r.summary.partial_reason.is_some());
        assert!(r.summary.duration_s < 5.0, "{}", r.summary.duration_s);
        let sse = group(&r, "sse");
        assert!(
            sse.delivered > 0 && sse.duplicates == 0 && sse.reordered == 0,
            "{sse:?}"
        );
        assert_hlog_matches_totals(&r);
        assert!(progress.snapshot().open_connections == 0 || r.summary.partial);
    })
    .await
    .expect("stopped run returns within 20s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_templates_and_cursor_styles() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (url, token) = start_server().await;
        let text = format!(
            r#"
name = "target"
description = "the built-in server described as if it were someone else's"
duration = "2s"
warmup = "300ms"
grace = "1s"
[publisher]
rate = 20
[[group]]
name = "sse"
strategy = "sse"
clients = 2
[[group]]
name = "websocket"
strategy = "websocket"
clients = 2
[[group]]
name = "long-poll"
strategy = "long-poll"
clients = 2
wait = "5s"
[target]
base_url = "{url}"
[target.sse]
url = "/topics/{{topic}}/sse?since={{cursor}}"
cursor = "query"
[target.websocket]
url = "/topics/{{topic}}/ws?format={{format}}&since={{cursor}}"
[target.long_poll]
url = "/topics/{{topic}}/events?wait={{wait}}&since={{cursor}}"
"#
        );
        let s = Scenario::from_toml_str(&text, "target.toml", &[]).expect("valid target scenario");
        assert_eq!(s.target(), Some(url.as_str()));
        assert!(s.to_resolved_toml().contains("cursor = \"query\""));
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
        for name in ["sse", "websocket", "long-poll"] {
            let g = group(&r, name);
            assert!(g.expected > 0, "{name}");
            assert_eq!(
                (g.lost, g.duplicates, g.reordered, g.errors),
                (0, 0, 0, 0),
                "{name}: {g:?}"
            );
        }
    })
    .await
    .expect("target run finishes within 20s");
}

#[tokio::test]
async fn unreachable_target_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let s = Scenario::from_file(&scenario_path("smoke.toml"), &[]).expect("valid");
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        run(
            &s,
            RunOptions {
                base_url: format!("http://{addr}"),
                embedded: false,
                server: None,
            },
            Arc::new(Progress::default()),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("fails fast")
    .expect_err("nothing listens");
    assert!(e.to_string().contains("cannot reach"), "{e}");
}

/// Any shipped scenario at full size, printed: `SCENARIO=fanout SECS=5 cargo test -p
/// pushbench-loadgen --release -- --ignored any_scenario --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn any_scenario() {
    let name = std::env::var("SCENARIO").unwrap_or_else(|_| "ticker".into());
    let secs = std::env::var("SECS").unwrap_or_else(|_| "5".into());
    let s = Scenario::from_file(
        &scenario_path(&format!("{name}.toml")),
        &[format!("duration=\"{secs}s\"")],
    )
    .expect("valid scenario");
    let r = tokio::time::timeout(Duration::from_secs(180), run_scenario(&s))
        .await
        .expect("finishes");
    for g in &r.summary.groups {
        eprintln!(
            "{:16} exp {:7} del {:7} lost {:5} dup {:4} reord {:4} coh {:.3} p50 {:7} p99 {:8} B/ev {:7.1} err {:?} conns {}",
            g.name,
            g.expected,
            g.delivered,
            g.lost,
            g.duplicates,
            g.reordered,
            g.coherence,
            g.latency_us.p50,
            g.latency_us.p99,
            g.wire_bytes_per_event,
            g.errors_by_kind,
            g.connections_opened
        );
    }
    eprintln!(
        "publisher {:?}\nloadgen {:?}\nwarnings {:?}",
        r.summary.publisher, r.summary.loadgen, r.summary.warnings
    );
}
