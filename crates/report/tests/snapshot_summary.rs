//! Snapshots of `summary.csv` and `summary.json` for the fixed fixture run: the
//! seeded simulation of `tests/fixtures/builder.rs` written by `write_run` must
//! produce exactly the committed `tests/fixtures/summary.expected.{csv,json}`.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test -p pushbench-report --test snapshot_summary`
//! rewrites them after a deliberate change to the writer (review the diff: a changed
//! column or number is a change to the results schema, see docs/results.md).

#[path = "fixtures/builder.rs"]
#[allow(dead_code, missing_docs)]
mod builder;
#[path = "fixtures/checks.rs"]
#[allow(dead_code, missing_docs)]
mod checks;

use std::path::Path;

#[test]
fn summary_csv_and_json_match_snapshots() {
    let dir = checks::scratch("snapshot-summary");
    builder::write_fixture(&dir);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, expected) in [
        ("summary.csv", "summary.expected.csv"),
        ("summary.json", "summary.expected.json"),
    ] {
        let actual = std::fs::read_to_string(dir.join(file)).unwrap();
        checks::snapshot(&fixtures.join(expected), &actual);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The committed fixture run is what the builder writes today (so the render tests
/// read the same numbers the snapshots pin).
#[test]
fn committed_fixture_agrees_with_the_snapshots() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, expected) in [
        ("summary.csv", "summary.expected.csv"),
        ("summary.json", "summary.expected.json"),
    ] {
        let run = std::fs::read_to_string(fixtures.join("run").join(file)).unwrap();
        let want = std::fs::read_to_string(fixtures.join(expected)).unwrap();
        assert!(
            run == want,
            "tests/fixtures/run/{file} differs from {expected}: rebuild the fixture with UPDATE_FIXTURE=1 UPDATE_SNAPSHOTS=1 cargo test -p pushbench-report"
        );
    }
}
