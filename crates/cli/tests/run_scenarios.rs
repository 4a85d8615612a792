//! The shipped impairment and fault scenarios, run as a user would (`pushbench run
//! scenarios/X.toml`, embedded server, netem on 127.0.0.1) at a small size: each
//! shows the outcome its description promises in `summary.json`, and the terminal
//! table shows the fault columns.

mod common;

use common::{TempDir, pushbench, scenario};
use serde_json::Value;

/// Runs a shipped scenario with extra arguments; returns summary.json, stdout and
/// the run folder's files (the folder is removed afterwards).
fn run(name: &str, args: &[&str]) -> (Value, String, Vec<String>) {
    let tmp = TempDir::new(name);
    let out = tmp.path().join("run");
    let assert = pushbench()
        .arg("run")
        .arg(scenario(&format!("{name}.toml")))
        .args(args)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json written");
    let files = std::fs::read_dir(&out)
        .expect("run folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    (
        serde_json::from_str(&text).expect("summary.json parses"),
        stdout,
        files,
    )
}

fn group<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("group {name} in {s:#}"))
}

fn n(g: &Value, field: &str) -> u64 {
    g[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {g:#}"))
}

#[test]
fn jitter_reorders_set_interval_polling_not_set_timeout_polling() {
    let (s, _, files) = run("jitter-reorder", &["--duration", "5s"]);
    let fixed_rate = group(&s, "poll-fixed-rate");
    assert!(n(fixed_rate, "reordered") > 0, "{fixed_rate:#}");
    let fixed_delay = group(&s, "poll-fixed-delay");
    assert!(n(fixed_delay, "delivered") > 0, "{fixed_delay:#}");
    assert_eq!(n(fixed_delay, "reordered"), 0, "{fixed_delay:#}");
    let since = group(&s, "poll-fixed-rate-since");
    assert!(n(since, "duplicates") > 0, "{since:#}");
    assert_eq!(n(since, "lost"), 0, "{since:#}");
    let sse = group(&s, "sse");
    assert!(n(sse, "expected") > 0, "{sse:#}");
    assert_eq!(
        (n(sse, "reordered"), n(sse, "lost"), n(sse, "duplicates")),
        (0, 0, 0),
        "{sse:#}"
    );
    // One way is 50 ms +- 40 ms: SSE's median carries it.
    assert!(n(&group(&s, "sse")["latency_us"], "p50") >= 10_000);
    assert!(files.contains(&"arrivals.csv".to_owned()), "{files:?}");
}

#[test]
fn naive_long_polling_loses_events_cursor_long_polling_does_not() {
    let (s, _, _) = run("naive-longpoll", &["--duration", "4s"]);
    let naive = group(&s, "long-poll-naive");
    assert!(n(naive, "lost") > 0, "{naive:#}");
    let cursor = group(&s, "long-poll-cursor");
    assert!(n(cursor, "expected") > 0);
    assert_eq!(n(cursor, "lost"), 0, "{cursor:#}");
    assert_eq!(n(cursor, "duplicates"), 0, "{cursor:#}");
}

#[test]
fn half_open_is_detected_by_heartbeats_and_read_timeouts_only() {
    let (s, stdout, files) = run(
        "half-open",
        &[
            "--duration",
            "9s",
            "--set",
            "fault.0.at=2s",
            "--set",
            "fault.0.duration=5s",
        ],
    );
    let hb = group(&s, "ws-heartbeat");
    // Ping every 1 s, dead after 2 misses: detected 2-3 s after the blackhole began.
    assert_eq!(n(hb, "detections"), 5, "{hb:#}");
    assert!(
        (1_500_000..=4_000_000).contains(&n(hb, "detect_us_p50")),
        "{hb:#}"
    );
    assert!(n(hb, "reconnects") >= 5, "{hb:#}");
    assert_eq!(n(hb, "lost"), 0, "{hb:#}");
    let silent = group(&s, "ws-silent");
    assert_eq!(n(silent, "detections"), 0, "{silent:#}");
    assert_eq!(n(silent, "reconnects"), 0, "{silent:#}");
    // It notices nothing, yet its events were only held: they arrive after the lift.
    assert!(n(silent, "recoveries") > 0, "{silent:#}");
    let sse = group(&s, "sse-read-timeout");
    assert_eq!(n(sse, "detections"), 5, "{sse:#}");
    assert!(
        (2_500_000..=5_000_000).contains(&n(sse, "detect_us_p50")),
        "{sse:#}"
    );
    assert_eq!(n(sse, "lost"), 0, "{sse:#}");
    assert!(files.contains(&"faults.csv".to_owned()), "{files:?}");
    assert!(stdout.contains("detect p50"), "{stdout}");
    assert!(
        stdout.contains("warning: group ws-silent: 5 of 5 clients never detected the blackhole"),
        "{stdout}"
    );
}

#[test]
fn server_restart_with_the_log_kept_resumers_lose_nothing() {
    let (s, stdout, _) = run(
        "server-restart",
        &["--duration", "6s", "--set", "fault.0.at=2s"],
    );
    for name in ["sse-resume", "ws-resume", "long-poll-cursor"] {
        let g = group(&s, name);
        assert!(n(g, "expected") > 0 && n(g, "detections") > 0, "{g:#}");
        assert_eq!(n(g, "lost"), 0, "{name}: {g:#}");
    }
    let lost: u64 = ["sse-no-resume", "ws-no-resume"]
        .iter()
        .map(|name| n(group(&s, name), "lost"))
        .sum();
    assert!(lost > 0, "{s:#}");
    assert_eq!(s["server"]["restarts"], 1, "{s:#}");
    assert!(n(group(&s, "sse-resume"), "reconnect_peak_per_s") >= 5);
    assert!(stdout.contains("conn/s peak"), "{stdout}");
}

#[test]
fn server_restart_that_loses_the_log_announces_the_gap() {
    let (s, _, _) = run(
        "server-restart",
        &[
            "--duration",
            "6s",
            "--set",
            "fault.0.at=2s",
            "--set",
            "fault.0.keep_log=false",
        ],
    );
    for name in ["sse-resume", "ws-resume", "long-poll-cursor"] {
        let g = group(&s, name);
        // Every resuming client is told its cursor is gone.
        assert!(n(g, "gaps") >= n(g, "clients"), "{name}: {g:#}");
    }
    assert!(n(&s["server"], "gaps_sent") > 0, "{s:#}");
}

#[test]
fn server_restart_against_a_target_is_refused_with_the_reason() {
    let tmp = TempDir::new("restart-target");
    pushbench()
        .arg("run")
        .arg(scenario("server-restart.toml"))
        .args(["--target", "http://127.0.0.1:9", "--out"])
        .arg(tmp.path().join("run"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("server-restart"))
        .stderr(predicates::str::contains("embedded server"));
}

#[test]
fn slow_links_cost_latency_by_round_trips() {
    let small = [
        "--duration",
        "5s",
        "--set",
        "warmup=2s",
        "--set",
        "grace=3s",
    ];
    for (name, one_way_us) in [("mobile-3g", 281_250u64), ("satellite", 290_000)] {
        let (s, _, _) = run(name, &small);
        let sse = group(&s, "sse");
        let ws = group(&s, "websocket");
        let poll = group(&s, "poll");
        for g in [sse, ws] {
            // Pushed events pay the one-way delay, not much more.
            let p50 = n(&g["latency_us"], "p50");
            assert!(
                p50 >= one_way_us * 9 / 10 && p50 < one_way_us * 2,
                "{name}: {g:#}"
            );
            assert_eq!(n(g, "lost"), 0, "{name}: {g:#}");
        }
        // Polling pays the interval and a round trip.
        assert!(
            n(&poll["latency_us"], "p50") > n(&sse["latency_us"], "p50"),
            "{name}: {s:#}"
        );
        let bpe = |g: &Value| g["wire_bytes_per_event"].as_f64().expect("bytes per event");
        // (At this size each client's handshake and bootstrap weigh on a few
        // events; the full-size runs in docs/scenarios.md rank every strategy.)
        assert!(bpe(poll) > bpe(sse), "{name}: {s:#}");
    }
}

#[test]
fn a_fault_cut_short_by_duration_is_warned_and_no_client_is_stuck_behind_it() {
    // The blackhole starts at 5 s, 1 s before this run's end, and never lifts:
    // clients reconnecting into it must still stop at the end.
    let (s, stdout, _) = run("half-open", &["--duration", "3s", "--set", "warmup=500ms"]);
    assert!(stdout.contains("runs past the end of this run"), "{stdout}");
    assert!(!stdout.contains("did not stop"), "{stdout}");
    for g in s["groups"].as_array().expect("groups") {
        assert!(n(g, "expected") > 0, "{g:#}");
    }
}
