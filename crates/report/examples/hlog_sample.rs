//! Writes a small, known run folder for checking `latency.hlog` with an independent
//! decoder (`tests/hlog_python_check.sh`): `<dir>/run/` holds the results and
//! `<dir>/expected.json` what each interval must decode to, as computed here.
//!
//! Usage: `cargo run -p pushbench-report --example hlog_sample -- DIR`

use std::collections::BTreeMap;
use std::path::PathBuf;

use pushbench_protocol::record::{
    GroupSummary, IntervalHistogram, Meta, RunRecord, Summary, latency_histogram,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: hlog_sample DIR (the folder to write into)")?,
    );
    let start_ms: u64 = 1_795_246_200_000;
    let mut intervals = Vec::new();
    let mut expected = Vec::new();
    for second in 0..3u64 {
        for (g, tag) in ["sse", "sse.uncorrected", "websocket"].iter().enumerate() {
            let mut h = latency_histogram();
            let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
            // Values below 2048 are exact at 3 significant digits, so every count can
            // be checked value by value; one large value checks the wide buckets.
            for k in 0..500u64 {
                let v = 1 + (k * 37 + second * 11 + g as u64 * 5) % 2000;
                h.record(v)?;
                *counts.entry(v).or_default() += 1;
            }
            h.record(3_000_000)?;
            let duration_ms = if second == 2 { 250 } else { 1000 };
            expected.push(serde_json::json!({
                "tag": tag,
                "start_s": (start_ms + second * 1000) as f64 / 1000.0,
                "length_s": duration_ms as f64 / 1000.0,
                "total_count": h.len(),
                "p50": h.value_at_quantile(0.5),
                "p90": h.value_at_quantile(0.9),
                "p99": h.value_at_quantile(0.99),
                "max": h.max(),
                "counts": counts.iter().map(|(v, c)| (v.to_string(), *c)).collect::<BTreeMap<_, _>>(),
            }));
            intervals.push(IntervalHistogram {
                tag: (*tag).to_owned(),
                start_ms: start_ms + second * 1000,
                duration_ms,
                histogram: h,
            });
        }
    }
    let record = RunRecord {
        summary: Summary {
            scenario: "hlog-sample".into(),
            groups: vec![GroupSummary {
                name: "sse".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
        timeseries: Vec::new(),
        intervals,
        histograms: BTreeMap::new(),
        scenario_toml: String::new(),
        meta: Meta::default(),
        arrivals: Vec::new(),
        faults: Vec::new(),
    };
    pushbench_report::write_run(&dir.join("run"), &record)?;
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_string_pretty(&expected)?,
    )?;
    Ok(())
}
