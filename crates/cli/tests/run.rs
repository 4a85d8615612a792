//! `pushbench run` end to end on the embedded server: every result file is written,
//! `summary.json` has the promised fields, the table is printed; bad scenarios and
//! unreachable targets fail before anything is written; Ctrl-C keeps partial results.

mod common;

use common::{TempDir, pushbench, scenario};
use predicates::prelude::*;

const RESULT_FILES: [&str; 6] = [
    "scenario.resolved.toml",
    "meta.json",
    "summary.json",
    "summary.csv",
    "timeseries.csv",
    "latency.hlog",
];

const GROUP_FIELDS: [&str; 21] = [
    "name",
    "strategy",
    "clients",
    "expected",
    "delivered",
    "duplicates",
    "reordered",
    "lost",
    "gaps",
    "coherence",
    "latency_us",
    "latency_uncorrected_us",
    "bytes_up",
    "bytes_down",
    "wire_bytes_per_event",
    "requests",
    "empty_responses",
    "not_modified",
    "connections_opened",
    "reconnects",
    "errors",
];

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn smoke_run_writes_every_file_and_prints_the_table() {
    let tmp = TempDir::new("smoke");
    let out = tmp.path().join("run");
    let assert = pushbench()
        .arg("run")
        .arg(scenario("smoke.toml"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();

    for file in RESULT_FILES {
        let path = out.join(file);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{file} missing: {e}"))
            .len();
        assert!(len > 0, "{file} is empty");
    }
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["partial"], false, "{summary:#}");
    assert!(summary["publisher"]["lag_us"].is_object(), "publisher lag");
    assert!(
        summary["publisher"]["published"].as_u64().unwrap() > 0,
        "events were published"
    );
    let groups = summary["groups"].as_array().expect("groups array");
    assert!(!groups.is_empty());
    for g in groups {
        for field in GROUP_FIELDS {
            assert!(g.get(field).is_some(), "group {} lacks {field}", g["name"]);
        }
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(g["latency_us"].get(p).is_some(), "latency_us.{p}");
            assert!(
                g["latency_uncorrected_us"].get(p).is_some(),
                "latency_uncorrected_us.{p}"
            );
        }
        let name = g["name"].as_str().unwrap();
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "no table row for {name}:\n{stdout}"
        );
    }
    let meta = read_json(&out.join("meta.json"));
    assert!(
        meta["command"].as_str().unwrap().contains("smoke.toml"),
        "{meta:#}"
    );
    assert!(meta["cores"].as_u64().unwrap() > 0);

    // summary.csv has a header and one row per group.
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), groups.len() + 1, "{csv}");
    // latency.hlog has the Java header lines and tagged intervals.
    let hlog = std::fs::read_to_string(out.join("latency.hlog")).unwrap();
    assert!(hlog.contains("#[BaseTime: "), "{hlog}");
    assert!(hlog.contains(
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    ));
    assert!(
        hlog.lines().any(|l| l.starts_with("Tag=")),
        "no interval lines"
    );

    // The report is rendered from the results.
    assert!(out.join("report.md").is_file(), "report.md");
    assert!(stdout.contains("report:"), "{stdout}");

    // The folder reads back, and the resolved scenario is itself a valid scenario.
    let loaded = pushbench_report::read_run(&out).expect("the run folder reads back");
    assert_eq!(loaded.summary.groups.len(), groups.len());
    assert!(!loaded.timeseries.is_empty());
    let intervals = pushbench_report::read_intervals(&out).expect("latency.hlog reads back");
    assert!(intervals.iter().any(|i| !i.histogram.is_empty()));
    pushbench()
        .arg("scenarios")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("smoke"))
        .stdout(predicate::str::contains("invalid").not());

    assert!(stdout.contains("group"), "table header:\n{stdout}");
    assert!(
        stdout.contains(&format!("results: {}", out.display())),
        "{stdout}"
    );
}

#[test]
fn unknown_key_fails_naming_file_and_key_and_writes_nothing() {
    let tmp = TempDir::new("unknown-key");
    let file = tmp.path().join("bad.toml");
    let smoke = std::fs::read_to_string(scenario("smoke.toml")).expect("smoke.toml exists");
    std::fs::write(&file, format!("colour_of_the_sky = \"blue\"\n{smoke}")).unwrap();
    let out = tmp.path().join("out");
    pushbench()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains("colour_of_the_sky"));
    assert!(!out.exists(), "nothing may be written for a bad scenario");
}

#[test]
fn bad_value_fails_naming_file_and_key_and_writes_nothing() {
    let tmp = TempDir::new("bad-value");
    let file = tmp.path().join("bad-value.toml");
    let smoke = std::fs::read_to_string(scenario("smoke.toml")).expect("smoke.toml exists");
    let mut replaced = false;
    let text: Vec<String> = smoke
        .lines()
        .map(|l| {
            if !replaced && l.trim_start().starts_with("duration") {
                replaced = true;
                "duration = \"a fortnight or so\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(replaced, "smoke.toml has a top-level duration line");
    std::fs::write(&file, text.join("\n")).unwrap();
    let out = tmp.path().join("out");
    pushbench()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad-value.toml"))
        .stderr(predicate::str::contains("duration"));
    assert!(!out.exists(), "nothing may be written for a bad scenario");
}

#[test]
fn bad_override_fails_and_writes_nothing() {
    let tmp = TempDir::new("bad-set");
    let out = tmp.path().join("out");
    pushbench()
        .arg("run")
        .arg(scenario("smoke.toml"))
        .args(["--set", "publisher.rate=fast"])
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("rate"));
    assert!(!out.exists());
}

#[test]
fn missing_scenario_file_fails_clearly() {
    pushbench()
        .args(["run", "no/such/scenario.toml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no/such/scenario.toml"));
}

#[test]
fn unreachable_target_is_a_setup_error_and_writes_nothing() {
    let tmp = TempDir::new("unreachable");
    let out = tmp.path().join("out");
    // Bind then drop a listener: the port is (almost certainly) closed afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pushbench()
        .arg("run")
        .arg(scenario("smoke.toml"))
        .args(["--target", &format!("http://127.0.0.1:{port}")])
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!("127.0.0.1:{port}")));
    assert!(
        !out.exists(),
        "no results folder for a run that never started"
    );
}

/// Ctrl-C (SIGINT) in the middle of a run: it stops early, exits 0, and the
/// results are written with `partial = true`.
#[cfg(unix)]
#[test]
fn interrupt_writes_partial_results() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let tmp = TempDir::new("interrupt");
    let out = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(scenario("smoke.toml"))
        .args(["--duration", "60s", "--out"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pushbench did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "an interrupted run is not an error: {status}"
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["partial"], true, "{summary:#}");
    for file in RESULT_FILES {
        assert!(out.join(file).exists(), "{file} missing after Ctrl-C");
    }
}

/// `--target` measures a server that is not in-process: here `pushbench serve` as a
/// separate process on a free port.
#[test]
fn target_measures_a_separate_server() {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_pushbench"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The server logs "listening on http://127.0.0.1:PORT" (possibly in colour).
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("http://127.0.0.1:") {
                let rest = &line[at + "http://127.0.0.1:".len()..];
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = tx.send(format!("http://127.0.0.1:{port}"));
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("pushbench serve reports its address within 30 s");

    let tmp = TempDir::new("target");
    let out = tmp.path().join("run");
    pushbench()
        .arg("run")
        .arg(scenario("smoke.toml"))
        .args(["--target", &url, "--duration", "2s", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(url.as_str()));
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["embedded_server"], false, "{summary:#}");
    assert_eq!(summary["target"], url.as_str());
    let sse = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["strategy"] == "sse")
        .expect("smoke has an SSE group");
    assert!(sse["delivered"].as_u64().unwrap() > 0, "{sse:#}");
    drop(server);
}
