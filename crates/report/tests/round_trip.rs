//! A hand-built run written to a folder and read back: every file exists, the
//! summary, meta and time series survive unchanged, and `latency.hlog` decodes with
//! the hdrhistogram crate's own interval log reader to the same histograms.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use pushbench_protocol::record::{
    GroupSummary, IntervalHistogram, LoadgenHealth, Meta, Percentiles, PublisherSummary, RunRecord,
    SCHEMA_VERSION, Summary, TimeseriesRow, latency_histogram,
};
use pushbench_report::layout::ALL_FILES;

const START_MS: u64 = 1_795_246_200_000;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pushbench-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn group(name: &str, strategy: &str, base_us: u64) -> GroupSummary {
    GroupSummary {
        name: name.into(),
        strategy: strategy.into(),
        options: "resume=true format=text".into(),
        clients: 10,
        expected: 1000,
        delivered: 990,
        duplicates: 2,
        reordered: 3,
        lost: 10,
        gaps: 1,
        coherence: 0.99,
        latency_us: Percentiles {
            count: 990,
            p50: base_us,
            p90: base_us * 2,
            p99: base_us * 3,
            p999: base_us * 4,
            max: base_us * 5,
            mean: 1234.5,
        },
        latency_uncorrected_us: Percentiles {
            count: 990,
            p50: base_us / 2,
            ..Default::default()
        },
        bytes_up: 4096,
        bytes_down: 123_456,
        payload_bytes_down: 100_000,
        wire_bytes_per_event: 128.75,
        requests: 12,
        empty_responses: 4,
        not_modified: 1,
        connections_opened: 11,
        reconnects: 1,
        errors: 3,
        errors_by_kind: BTreeMap::from([("connect".to_owned(), 2), ("timeout".to_owned(), 1)]),
        uploads: 0,
        ..Default::default()
    }
}

fn record() -> RunRecord {
    let groups = vec![
        group("sse-resume", "sse", 800),
        group("poll, fixed \"rate\"", "poll", 50_000),
    ];
    let mut intervals = Vec::new();
    let mut histograms = BTreeMap::new();
    for (gi, g) in groups.iter().enumerate() {
        let mut whole = latency_histogram();
        for second in 0..3u64 {
            for suffix in ["", ".uncorrected"] {
                let mut h = latency_histogram();
                for k in 1..=100u64 {
                    h.record(g.latency_us.p50 * k / 50 + second + gi as u64)
                        .unwrap();
                }
                if suffix.is_empty() {
                    whole.add(&h).unwrap();
                }
                intervals.push(IntervalHistogram {
                    tag: format!("{}{suffix}", g.name),
                    start_ms: START_MS + second * 1000,
                    duration_ms: if second == 2 { 437 } else { 1000 },
                    histogram: h,
                });
            }
        }
        histograms.insert(g.name.clone(), whole);
    }
    let timeseries = (-1..3)
        .flat_map(|s| {
            groups.iter().map(move |g| TimeseriesRow {
                second: s,
                group: g.name.clone(),
                deliveries: 100 + s.unsigned_abs(),
                p99_us: 2400,
                open_connections: 10,
                bytes_up: 10,
                bytes_down: 1000,
                errors: u64::from(s == 1),
                published: 10,
            })
        })
        .collect();
    RunRecord {
        summary: Summary {
            schema_version: SCHEMA_VERSION,
            scenario: "roundtrip".into(),
            description: "A hand-built run.\nSecond line.".into(),
            started_at: "2026-11-21T07:30:00.000Z".into(),
            duration_s: 2.5,
            partial: true,
            partial_reason: Some("interrupted (Ctrl-C)".into()),
            target: "http://127.0.0.1:4000".into(),
            embedded_server: true,
            publisher: PublisherSummary {
                published: 100,
                publish_errors: 1,
                rate_per_s: 40.0,
                payload_bytes: 256,
                topics: 2,
                lag_us: Percentiles {
                    count: 100,
                    p50: 5,
                    p90: 9,
                    p99: 20,
                    p999: 40,
                    max: 80,
                    mean: 6.25,
                },
            },
            loadgen: LoadgenHealth {
                cpu_s: 1.5,
                cpu_share: 0.25,
                saturated: false,
            },
            groups,
            warnings: vec!["one warning".into()],
            server: None,
        },
        timeseries,
        intervals,
        histograms,
        scenario_toml: "name = \"roundtrip\"\nduration = \"3s\"\n".into(),
        meta: Meta {
            version: "0.1.0".into(),
            git_revision: Some("f38809a-dirty".into()),
            host: "box".into(),
            cores: 2,
            os: "linux x86_64".into(),
            command: "pushbench run roundtrip.toml".into(),
            clock: "one host clock".into(),
        },
        arrivals: Vec::new(),
        faults: Vec::new(),
    }
}

#[test]
fn run_folder_round_trips() {
    let dir = temp_dir("roundtrip");
    let record = record();
    pushbench_report::write_run(&dir, &record).unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = ALL_FILES.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected, "exactly the result files, no temporaries");

    let loaded = pushbench_report::read_run(&dir).unwrap();
    assert_eq!(loaded.summary, record.summary);
    assert_eq!(loaded.meta, record.meta);
    assert_eq!(loaded.timeseries, record.timeseries);
    assert_eq!(loaded.scenario_toml, record.scenario_toml);

    // summary.json is pretty and carries the fields issue 3 promises.
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(text.contains("\n  \"groups\": ["), "pretty-printed");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["partial"], true);
    let g = &json["groups"][0];
    for key in [
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
    ] {
        assert!(g.get(key).is_some(), "group field {key}");
    }
    assert_eq!(g["latency_us"]["p999"], 3200);

    // summary.csv: a header and one row per group, the awkward name quoted.
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let rows = pushbench_report::csv::parse(&csv).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].fields[2], "poll, fixed \"rate\"");
    let header = &rows[0].fields;
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    assert_eq!(rows[1].fields[col("latency_us_p99")], "2400");
    assert_eq!(rows[1].fields[col("wire_bytes_per_event")], "128.75");

    // Our own reader gives back the intervals exactly.
    let back = pushbench_report::read_intervals(&dir).unwrap();
    assert_eq!(back.len(), record.intervals.len());
    for (a, b) in back.iter().zip(&record.intervals) {
        assert_eq!(a.tag, pushbench_report::hlog::tag_for(&b.tag));
        assert_eq!((a.start_ms, a.duration_ms), (b.start_ms, b.duration_ms));
        assert_eq!(a.histogram, b.histogram);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Decodes latency.hlog with nothing but the hdrhistogram crate's parser and
/// deserializer, following the format's own rules (BaseTime + offset).
#[test]
fn hlog_reads_with_hdrhistogram_crate() {
    let dir = temp_dir("hlog");
    let record = record();
    pushbench_report::write_run(&dir, &record).unwrap();
    let bytes = std::fs::read(dir.join("latency.hlog")).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"));

    let mut base = None;
    let mut start = None;
    let mut seen = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.unwrap() {
            LogEntry::BaseTime(b) => base = Some(b),
            LogEntry::StartTime(s) => start = Some(s),
            LogEntry::Interval(i) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .unwrap();
                let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut Cursor::new(raw))
                    .unwrap();
                assert!(
                    (i.max() - h.max() as f64 / 1000.0).abs() < 0.001,
                    "Interval_Max in ms"
                );
                seen.push((
                    i.tag().unwrap().as_str().to_owned(),
                    base.unwrap() + i.start_timestamp(),
                    i.duration(),
                    h,
                ));
            }
        }
    }
    assert_eq!(base, Some(Duration::from_millis(START_MS)));
    assert_eq!(start, base);
    assert_eq!(seen.len(), 12);
    for ((tag, at, len, h), want) in seen.iter().zip(&record.intervals) {
        assert_eq!(tag, &pushbench_report::hlog::tag_for(&want.tag));
        assert_eq!(*at, Duration::from_millis(want.start_ms));
        assert_eq!(*len, Duration::from_millis(want.duration_ms));
        assert_eq!(h.len(), 100);
        assert_eq!(
            h.value_at_quantile(0.5),
            want.histogram.value_at_quantile(0.5)
        );
        assert_eq!(h.max(), want.histogram.max());
    }
    assert!(
        seen.iter()
            .any(|s| s.0 == "poll__fixed_\"rate\".uncorrected"),
        "tag sanitised"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_summary_is_an_error_naming_the_file() {
    let dir = temp_dir("missing");
    std::fs::create_dir_all(&dir).unwrap();
    let err = pushbench_report::read_run(&dir).unwrap_err().to_string();
    assert!(err.contains("summary.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
