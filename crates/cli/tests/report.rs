//! `pushbench report` and `pushbench compare` on copies of the committed fixture run
//! (`crates/report/tests/fixtures/run/`): the report is re-rendered from saved files
//! alone, the terminal table reads as report.md does, folders that are not runs fail
//! with an error saying so, and compare prints ratios and writes compare.md.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, pushbench, workspace};
use predicates::prelude::*;

/// The committed fixture run.
fn fixture() -> PathBuf {
    workspace().join("crates/report/tests/fixtures/run")
}

/// Copies the fixture's files (not earlier reports) into `to`.
fn copy_fixture(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() && !name.starts_with("report.") {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn non_empty(path: &Path) {
    let len = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len();
    assert!(len > 0, "{} is empty", path.display());
}

#[test]
fn report_rerenders_a_run_from_its_files() {
    let tmp = TempDir::new("report");
    let run = tmp.path().join("run");
    copy_fixture(&run);
    assert!(!run.join("report.md").exists());
    let assert = pushbench().arg("report").arg(&run).assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();

    for f in ["report.md", "report.html"] {
        non_empty(&run.join(f));
    }
    for stem in [
        "latency-spectrum",
        "bytes-per-event",
        "ordering",
        "timeseries",
    ] {
        non_empty(&run.join("charts").join(format!("{stem}.svg")));
        non_empty(&run.join("charts").join(format!("{stem}.png")));
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    for g in summary["groups"].as_array().unwrap() {
        assert!(
            stdout.contains(g["name"].as_str().unwrap()),
            "{} in the table:\n{stdout}",
            g["name"]
        );
    }
    assert!(stdout.contains("report:"), "{stdout}");
    assert!(stdout.contains(&run.join("report.md").display().to_string()));
}

/// The terminal table and report.md format every shared cell the same way: each
/// group's coherence, p50, p99 and bytes/event cells of the table appear in that
/// group's row of report.md.
#[test]
fn terminal_table_reads_as_report_md() {
    let tmp = TempDir::new("report-cells");
    let run = tmp.path().join("run");
    copy_fixture(&run);
    let assert = pushbench().arg("report").arg(&run).assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("group "))
        .expect("table header");
    // Columns are separated by at least two spaces; cells such as `52.3 ms` hold one.
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let names = cells(lines[header]);
    let col = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("column {name} in {names:?}"))
    };
    let mut checked = 0;
    for line in lines[header + 1..].iter().take_while(|l| !l.is_empty()) {
        let row = cells(line);
        assert_eq!(row.len(), names.len(), "{line}");
        let name = &row[0];
        let md_row = md
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("{name} row in report.md"));
        let md_cells: Vec<&str> = md_row.split('|').map(str::trim).collect();
        for column in ["coherence", "p50", "p99", "bytes/event"] {
            let cell = &row[col(column)];
            assert!(
                md_cells.contains(&cell.as_str()),
                "{name}: {column} {cell} is not in report.md's row {md_row}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "{checked} rows checked:\n{stdout}");
}

#[test]
fn report_of_a_folder_that_is_not_a_run_says_so() {
    let tmp = TempDir::new("report-bad");
    pushbench()
        .arg("report")
        .arg(tmp.path().join("missing"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "is not a run folder: it does not exist",
        ));
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not a run").unwrap();
    pushbench()
        .arg("report")
        .arg(&empty)
        .assert()
        .failure()
        .stderr(predicate::str::contains("it has no summary.json"));
    pushbench()
        .arg("report")
        .arg(empty.join("notes.txt"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("it is a file"));
    // Nothing was written into the folder that is not a run.
    assert!(!empty.join("report.md").exists());
    assert!(!empty.join("charts").exists());
}

#[test]
fn report_of_a_folder_of_runs_names_the_newest() {
    let tmp = TempDir::new("report-parent");
    let scenario_dir = tmp.path().join("fixture");
    copy_fixture(&scenario_dir.join("2026-11-21T07-00-00Z"));
    copy_fixture(&scenario_dir.join("2026-11-21T08-00-00Z"));
    pushbench()
        .arg("report")
        .arg(&scenario_dir)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("holds runs; the newest is")
                .and(predicate::str::contains("2026-11-21T08-00-00Z")),
        );
}

#[test]
fn report_of_a_damaged_run_names_the_file() {
    let tmp = TempDir::new("report-damaged");
    let run = tmp.path().join("run");
    copy_fixture(&run);
    std::fs::write(run.join("summary.json"), "{ not json").unwrap();
    pushbench()
        .arg("report")
        .arg(&run)
        .assert()
        .failure()
        .stderr(predicate::str::contains("summary.json"));
}

#[test]
fn compare_prints_ratios_and_writes_compare_md() {
    let tmp = TempDir::new("compare");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    copy_fixture(&a);
    copy_fixture(&b);
    // B: the first group's p99 doubled.
    let path = b.join("summary.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let first = v["groups"][0]["name"].as_str().unwrap().to_owned();
    let p99 = v["groups"][0]["latency_us"]["p99"].as_u64().unwrap();
    v["groups"][0]["latency_us"]["p99"] = serde_json::json!(p99 * 2);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();

    let out = tmp.path().join("cmp");
    let assert = pushbench()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("B/A"), "{stdout}");
    let section = stdout
        .split(&format!("\n{first} ("))
        .nth(1)
        .expect("a table for the first group");
    let p99_row = section
        .lines()
        .find(|l| l.trim_start().starts_with("p99 (ms)"))
        .expect("p99 row");
    assert!(p99_row.trim_end().ends_with("2.00x"), "{p99_row}");
    let delivered_row = section
        .lines()
        .find(|l| l.trim_start().starts_with("delivered"))
        .expect("delivered row");
    assert!(
        delivered_row.trim_end().ends_with("1.00x"),
        "{delivered_row}"
    );

    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("2.00x"), "{md}");
    for stem in ["compare-bytes-per-event", "compare-p99"] {
        non_empty(&out.join("charts").join(format!("{stem}.svg")));
        non_empty(&out.join("charts").join(format!("{stem}.png")));
        assert!(md.contains(&format!("charts/{stem}.svg")), "{md}");
    }
    assert!(stdout.contains(&out.join("compare.md").display().to_string()));
}

#[test]
fn compare_needs_two_runs_and_checks_each() {
    let tmp = TempDir::new("compare-bad");
    let a = tmp.path().join("a");
    copy_fixture(&a);
    pushbench().arg("compare").arg(&a).assert().failure();
    let out = tmp.path().join("cmp");
    pushbench()
        .arg("compare")
        .arg(&a)
        .arg(tmp.path().join("nope"))
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope is not a run folder"));
    assert!(!out.exists(), "nothing written when a folder is not a run");
}
