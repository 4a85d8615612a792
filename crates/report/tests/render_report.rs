//! `render_report` on the committed fixture run: `report.md` matches its snapshot,
//! every chart is a valid SVG and PNG, the findings carry the run's own numbers, and
//! `report.html` stands alone.
//!
//! `UPDATE_SNAPSHOTS=1` rewrites `tests/fixtures/report.expected.md`;
//! `UPDATE_FIXTURE=1` rewrites the fixture run itself (`tests/fixtures/run/`).

#[path = "fixtures/builder.rs"]
#[allow(dead_code, missing_docs)]
mod builder;
#[path = "fixtures/checks.rs"]
#[allow(dead_code, missing_docs)]
mod checks;

use std::path::{Path, PathBuf};

use pushbench_protocol::record::Summary;
use pushbench_report::render_report;

fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run");
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("UPDATE_FIXTURE").is_some() {
        ONCE.call_once(|| {
            let _ = std::fs::remove_dir_all(&dir);
            builder::write_fixture(&dir);
        });
    }
    dir
}

/// The fixture rendered once, shared by the tests that only read the output (each
/// rendering draws a dozen charts; the crate's tests stay fast).
fn rendered(_test: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = checks::copy_run(&fixture_dir(), "shared");
        render_report(&dir).expect("render the fixture");
        dir
    })
    .clone()
}

#[test]
fn report_md_matches_snapshot() {
    let dir = rendered("snapshot");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    checks::snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report.expected.md"),
        &md,
    );
}

#[test]
fn every_chart_is_valid_svg_and_png() {
    let dir = rendered("charts");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for stem in [
        "arrivals",
        "bytes-per-event",
        "latency-spectrum",
        "ordering",
        "server-cost",
        "timeseries",
    ] {
        assert!(
            names.contains(&format!("{stem}.svg")),
            "{stem}.svg in {names:?}"
        );
        assert!(
            names.contains(&format!("{stem}.png")),
            "{stem}.png in {names:?}"
        );
    }
    for n in &names {
        checks::valid_chart(&dir.join("charts").join(n));
    }
    // The spectrum has both corrected and uncorrected lines, with the group names.
    let svg = std::fs::read_to_string(dir.join("charts/latency-spectrum.svg")).unwrap();
    assert!(svg.contains("ws-text"));
    assert!(svg.contains("dashed: from send time"));
    assert!(svg.contains("99.9%"));
    // Dashed lines are drawn as many short segments.
    assert!(svg.matches("<polyline").count() > 100);
}

#[test]
fn findings_carry_the_runs_numbers() {
    let dir = rendered("findings");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let g = |n: &str| summary.groups.iter().find(|g| g.name == n).unwrap();

    let latest = g("poll-latest");
    assert!(latest.reordered > 0, "the fixture must reorder");
    assert!(md.contains(&format!(
        "`poll-latest` (poll, schedule=fixed-rate interval=500ms cursor=latest) delivered {} events out of order",
        latest.reordered
    )));
    let rate = g("poll-fixed-rate");
    assert!(rate.duplicates > 0, "the fixture must duplicate");
    assert!(md.contains(&format!(
        "`poll-fixed-rate` (poll, schedule=fixed-rate interval=500ms cursor=since) received {} duplicate deliveries",
        rate.duplicates
    )));

    let naive = g("long-poll-naive");
    assert!(naive.lost > 0, "the fixture must lose events");
    assert!(md.contains(&format!(
        "`long-poll-naive` (long-poll, cursor=none wait=25s) lost {} of {} expected events",
        naive.lost, naive.expected
    )));
    assert!(md.contains("`cursor=none`"));
    // Groups that neither reordered nor lost are never named as doing so.
    for clean in ["sse-resume", "ws-text"] {
        for line in md.lines().filter(|l| l.contains(&format!("`{clean}`"))) {
            assert!(
                !line.contains("out of order") && !line.contains(" lost "),
                "{line}"
            );
        }
    }
    assert!(md.contains("Delivered strictly in publisher order: `poll-fixed-rate`, `poll-fixed-delay`, `long-poll-naive`, `sse-resume`, `ws-text`."));
    // Bytes: the cheapest and dearest with their ratio.
    let cost = |n: &str| {
        let x = g(n);
        (x.bytes_up + x.bytes_down) as f64 / x.delivered as f64
    };
    let mut by_cost: Vec<&str> = summary.groups.iter().map(|g| g.name.as_str()).collect();
    by_cost.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
    let (cheap, dear) = (by_cost[0], by_cost[by_cost.len() - 1]);
    assert!(md.contains(&format!(
        "The dearest, `{dear}` ({:.0} B), costs {:.1}x the cheapest, `{cheap}` ({:.0} B).",
        cost(dear),
        cost(dear) / cost(cheap),
        cost(cheap)
    )));
    // The warning comes before anything else.
    let first_section = md.find("## What was run").unwrap();
    let warning = md.find("Warning from the run: fault timeline").unwrap();
    assert!(warning < first_section);
}

#[test]
fn html_is_self_contained() {
    let dir = rendered("html");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<figure>").count(), 6);
    assert!(html.matches("<svg").count() >= 6);
    for forbidden in ["<script", "<link", "src=\"http", "url(http", "@import"] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    assert!(html.contains("<strong>Read this first.</strong>"));
}

#[test]
fn a_run_without_optional_files_renders_without_their_charts() {
    let dir = checks::copy_run(&fixture_dir(), "minimal");
    // A stale chart from an earlier rendering goes away with its data.
    render_report(&dir).unwrap();
    assert!(dir.join("charts/arrivals.svg").exists());
    for f in ["arrivals.csv", "faults.csv", "latency.hlog"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let files = render_report(&dir).unwrap();
    assert!(!dir.join("charts/arrivals.svg").exists());
    assert!(!dir.join("charts/arrivals.png").exists());
    let names: Vec<&str> = files.charts.iter().map(|c| c.name.as_str()).collect();
    assert!(!names.contains(&"arrivals"));
    assert!(
        names.contains(&"latency-spectrum"),
        "falls back to summary percentiles"
    );
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("No arrival timeline: the run folder has no `arrivals.csv`"));
    assert!(md.contains("latency spectra skipped"));
    for c in &files.charts {
        checks::valid_chart(&c.svg);
        checks::valid_chart(&c.png);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_folder_without_summary_is_an_error_naming_the_file() {
    let dir = checks::copy_run(&fixture_dir(), "nosummary");
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let err = render_report(&dir).unwrap_err().to_string();
    assert!(err.contains("summary.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn partial_and_saturated_runs_say_so_first() {
    let dir = checks::copy_run(&fixture_dir(), "partial");
    let path = dir.join("summary.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["partial"] = serde_json::json!(true);
    v["partial_reason"] = serde_json::json!("interrupted (Ctrl-C)");
    v["duration_s"] = serde_json::json!(6.5);
    v["loadgen"]["saturated"] = serde_json::json!(true);
    v["loadgen"]["cpu_share"] = serde_json::json!(0.97);
    v["groups"][0]["name"] = serde_json::json!("<script>alert(1)</script>");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let files = render_report(&dir).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    let caveats: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("> **Read this first.**"))
        .take_while(|l| l.starts_with('>'))
        .filter(|l| l.starts_with("> - "))
        .collect();
    assert!(
        caveats[0]
            .starts_with("> - This run is partial (interrupted (Ctrl-C)): it stopped after 6.5 s"),
        "{caveats:?}"
    );
    assert!(caveats[1].contains("The load generator was saturated (it used 97%"));
    assert!(caveats[2].starts_with("> - Warning from the run:"));
    assert!(md.find("Read this first").unwrap() < md.find("## What was run").unwrap());
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        !html.contains("<script>"),
        "group names are escaped in HTML"
    );
    assert!(html.contains("&lt;script&gt;"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_with_no_groups_still_renders() {
    let dir = checks::copy_run(&fixture_dir(), "empty");
    let path = dir.join("summary.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["groups"] = serde_json::json!([]);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let ts = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let header = ts.lines().next().unwrap();
    std::fs::write(dir.join("timeseries.csv"), format!("{header}\n")).unwrap();
    for f in ["arrivals.csv", "latency.hlog"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let files = render_report(&dir).unwrap();
    assert!(files.charts.is_empty(), "{:?}", files.charts);
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.contains("The run has no groups."));
    assert!(md.contains("No finding: no group delivered any event."));
    let _ = std::fs::remove_dir_all(&dir);
}
