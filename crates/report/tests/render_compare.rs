//! `compare` on the fixture run and a changed copy of it: groups matched by name,
//! ratios B/A per metric, a group missing from B shown as n/a, overlaid charts valid.

#[path = "fixtures/checks.rs"]
#[allow(dead_code, missing_docs)]
mod checks;

use std::path::Path;

use pushbench_report::compare;

#[test]
fn compares_two_runs_by_group_name() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run");
    let a = checks::copy_run(&fixture, "compare-a");
    let b = checks::copy_run(&fixture, "compare-b");
    // B: SSE twice as slow at p99, the naive long poll gone.
    let path = b.join("summary.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let groups = v["groups"].as_array_mut().unwrap();
    groups.retain(|g| g["name"] != "long-poll-naive");
    let sse = groups
        .iter_mut()
        .find(|g| g["name"] == "sse-resume")
        .unwrap();
    let p99 = sse["latency_us"]["p99"].as_u64().unwrap();
    sse["latency_us"]["p99"] = serde_json::json!(p99 * 2);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    std::fs::remove_file(b.join("latency.hlog")).unwrap();
    let toml_path = b.join("scenario.resolved.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(&toml_path, toml.replace("rate = 20.0", "rate = 40.0")).unwrap();

    let out = checks::scratch("compare-out");
    let result = compare(&[a.clone(), b.clone()], &out).unwrap();

    let sse_block = result
        .text
        .split("\n\n")
        .find(|b| b.starts_with("sse-resume (sse)"))
        .unwrap_or_else(|| panic!("no sse block in\n{}", result.text));
    let p99_line = sse_block
        .lines()
        .find(|l| l.trim_start().starts_with("p99 (ms)"))
        .unwrap();
    assert!(p99_line.trim_end().ends_with("2.00x"), "{p99_line}");
    let delivered = sse_block
        .lines()
        .find(|l| l.trim_start().starts_with("delivered"))
        .unwrap();
    assert!(delivered.trim_end().ends_with("1.00x"), "{delivered}");
    let naive = result
        .text
        .split("\n\n")
        .find(|b| b.starts_with("long-poll-naive"))
        .unwrap();
    assert!(naive.contains("n/a"), "{naive}");

    assert!(
        result.text.contains("B: publisher.rate 20.0 -> 40.0"),
        "{}",
        result.text
    );
    let md = std::fs::read_to_string(&result.markdown).unwrap();
    assert!(md.contains("- B: `publisher.rate` 20.0 -> 40.0"));
    assert!(md.contains("## `sse-resume` (sse)"));
    assert!(md.contains("| metric | A | B | B/A |"));
    assert!(md.contains("![Latency by percentile of sse-resume"));
    // A group in only one run gets no overlay; every other group does, plus two bar charts.
    assert_eq!(result.charts.len(), 5 + 2);
    for c in &result.charts {
        checks::valid_chart(&c.svg);
        checks::valid_chart(&c.png);
    }
    assert!(
        compare(std::slice::from_ref(&a), &out).is_err(),
        "one run is not a comparison"
    );
    for d in [a, b, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}
