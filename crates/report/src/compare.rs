//! `pushbench compare A B [...]`: runs side by side, groups matched by name, every
//! metric as a value per run and a ratio to the first run (B/A), as a terminal table
//! and as `compare.md` with overlaid charts (the same group's latency spectrum across
//! runs, bytes per event and p99 per group and run).

use std::path::{Path, PathBuf};

use pushbench_protocol::record::GroupSummary;

use crate::ReportError;
use crate::atomic::write_atomic;
use crate::charts::draw::{BarSeries, Bars, Line, Lines, Plot, XAxis, color};
use crate::charts::run::{bytes_split, spectrum_from_percentiles, spectrum_points};
use crate::charts::source::RunData;
use crate::charts::{ChartFile, SIZE, write_chart};
use crate::layout::safe_file_name;
use crate::markdown::{Block, to_markdown};
use crate::numbers::fixed;

/// `compare.md`, written into the output folder.
pub const COMPARE_MD: &str = "compare.md";

/// What [`compare`] produced.
#[derive(Clone, Debug)]
pub struct CompareOutput {
    /// The side-by-side table for the terminal (plain text, aligned columns).
    pub text: String,
    /// `<out>/compare.md`.
    pub markdown: PathBuf,
    /// Overlaid charts under `<out>/charts/`.
    pub charts: Vec<ChartFile>,
}

/// One compared metric.
struct Metric {
    name: &'static str,
    get: fn(&GroupSummary) -> f64,
    decimals: usize,
}

const METRICS: [Metric; 12] = [
    Metric {
        name: "delivered",
        get: |g| g.delivered as f64,
        decimals: 0,
    },
    Metric {
        name: "coherence (%)",
        get: |g| g.coherence * 100.0,
        decimals: 1,
    },
    Metric {
        name: "lost",
        get: |g| g.lost as f64,
        decimals: 0,
    },
    Metric {
        name: "reordered",
        get: |g| g.reordered as f64,
        decimals: 0,
    },
    Metric {
        name: "duplicates",
        get: |g| g.duplicates as f64,
        decimals: 0,
    },
    Metric {
        name: "p50 (ms)",
        get: |g| g.latency_us.p50 as f64 / 1000.0,
        decimals: 2,
    },
    Metric {
        name: "p99 (ms)",
        get: |g| g.latency_us.p99 as f64 / 1000.0,
        decimals: 2,
    },
    Metric {
        name: "p99.9 (ms)",
        get: |g| g.latency_us.p999 as f64 / 1000.0,
        decimals: 2,
    },
    Metric {
        name: "max (ms)",
        get: |g| g.latency_us.max as f64 / 1000.0,
        decimals: 2,
    },
    Metric {
        name: "bytes/event",
        get: |g| {
            let (p, o) = bytes_split(g);
            p + o
        },
        decimals: 0,
    },
    Metric {
        name: "requests",
        get: |g| g.requests as f64,
        decimals: 0,
    },
    Metric {
        name: "errors",
        get: |g| g.errors as f64,
        decimals: 0,
    },
];

/// Letter of the `i`-th run: A, B, ..., Z, then R27, R28, ...
fn letter(i: usize) -> String {
    if i < 26 {
        char::from(b'A' + i as u8).to_string()
    } else {
        format!("R{}", i + 1)
    }
}

/// `b / a` as `1.23x`; `-` when `a` is zero (no ratio to a zero).
fn ratio(a: f64, b: f64) -> String {
    if a == 0.0 {
        if b == 0.0 {
            "=".to_owned()
        } else {
            "-".to_owned()
        }
    } else {
        format!("{:.2}x", b / a)
    }
}

/// Compares the run folders `dirs` (the first is the baseline, A) and writes
/// `compare.md` and its charts into `out` (created if missing).
pub fn compare(dirs: &[PathBuf], out: &Path) -> Result<CompareOutput, ReportError> {
    if dirs.len() < 2 {
        return Err(ReportError::Render {
            path: out.join(COMPARE_MD),
            detail: format!("compare needs at least two run folders, got {}", dirs.len()),
        });
    }
    let runs = dirs
        .iter()
        .map(|d| RunData::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io {
        path: out.to_owned(),
        source,
    })?;

    // Group names in order of first appearance across runs.
    let mut names: Vec<String> = Vec::new();
    for r in &runs {
        for g in r.groups() {
            if !names.contains(&g.name) {
                names.push(g.name.clone());
            }
        }
    }
    let find = |r: &RunData, name: &str| r.groups().iter().find(|g| g.name == name).cloned();

    let mut doc = vec![Block::Heading(1, "pushbench comparison".to_owned())];
    let run_lines: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = &r.run.summary;
            let m = &r.run.meta;
            format!(
                "{} = `{}`: scenario `{}`, started {}, {} s, target {}, host `{}` ({} cores), pushbench {}{}{}",
                letter(i),
                r.run.dir.display(),
                s.scenario,
                s.started_at,
                fixed(s.duration_s, 1),
                s.target,
                m.host,
                m.cores,
                m.version,
                m.git_revision
                    .as_deref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default(),
                if s.partial { " (partial run)" } else { "" }
            )
        })
        .collect();
    doc.push(Block::Bullets(run_lines.clone()));
    let settings = setting_differences(&runs);
    if !settings.is_empty() {
        doc.push(Block::Para(
            "Scenario settings that differ from A (from `scenario.resolved.toml`):".to_owned(),
        ));
        doc.push(Block::Bullets(settings.clone()));
    }
    let caveats: Vec<String> = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            crate::findings::caveats(&r.run.summary)
                .into_iter()
                .map(move |c| format!("{}: {c}", letter(i)))
        })
        .collect();
    if !caveats.is_empty() {
        doc.insert(1, Block::Caveats(caveats.clone()));
    }
    doc.push(Block::Para(
        "Ratios are each run's value divided by A's (`-` where A is 0, `=` where both are 0). Groups are matched by name; a group missing from a run shows `n/a`."
            .to_owned(),
    ));

    let mut text = String::new();
    for l in &caveats {
        text.push_str(&format!("! {l}\n"));
    }
    for l in &run_lines {
        text.push_str(&l.replace('`', ""));
        text.push('\n');
    }
    if !settings.is_empty() {
        text.push_str("settings that differ from A:\n");
        for l in &settings {
            text.push_str(&format!("  {}\n", l.replace('`', "")));
        }
    }

    let letters: Vec<String> = (0..runs.len()).map(letter).collect();
    for name in &names {
        let per_run: Vec<Option<GroupSummary>> = runs.iter().map(|r| find(r, name)).collect();
        let mut header = vec!["metric".to_owned()];
        header.extend(letters.iter().cloned());
        header.extend(letters[1..].iter().map(|l| format!("{l}/A")));
        let rows: Vec<Vec<String>> = METRICS
            .iter()
            .map(|m| {
                let vals: Vec<Option<f64>> =
                    per_run.iter().map(|g| g.as_ref().map(m.get)).collect();
                let mut row = vec![m.name.to_owned()];
                row.extend(vals.iter().map(|v| match v {
                    Some(v) => fixed(*v, m.decimals),
                    None => "n/a".to_owned(),
                }));
                row.extend(vals[1..].iter().map(|v| match (vals[0], v) {
                    (Some(a), Some(b)) => ratio(a, *b),
                    _ => "n/a".to_owned(),
                }));
                row
            })
            .collect();
        let strategy = per_run
            .iter()
            .flatten()
            .map(|g| g.strategy.clone())
            .next()
            .unwrap_or_default();
        doc.push(Block::Heading(2, format!("`{name}` ({strategy})")));
        text.push_str(&format!("\n{name} ({strategy})\n"));
        text.push_str(&aligned(&header, &rows));
        doc.push(Block::Table {
            right: (0..header.len()).map(|i| i > 0).collect(),
            header,
            rows,
        });
    }

    let charts_dir = out.join(crate::charts::run::CHARTS_DIR);
    let mut charts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let lines: Vec<Line> = runs
            .iter()
            .enumerate()
            .filter_map(|(ri, r)| {
                let points = match r.spectra.get(name) {
                    Some(s) => spectrum_points(&s.corrected),
                    None => spectrum_from_percentiles(&find(r, name)?.latency_us),
                };
                (!points.is_empty()).then(|| Line {
                    label: format!("{}: {name}", letter(ri)),
                    color: color(ri),
                    dashed: false,
                    points,
                })
            })
            .collect();
        if lines.len() < 2 {
            continue;
        }
        let title = format!("Latency by percentile of {name}, run against run (corrected)");
        let plot = Plot::Lines(Lines {
            title: title.clone(),
            x_desc: "percentile".to_owned(),
            y_desc: "latency (ms, log scale)".to_owned(),
            x_axis: XAxis::Nines,
            y_log: true,
            lines,
            shades: Vec::new(),
            legend: true,
        });
        let stem = format!("compare-latency-{}-{}", i + 1, safe_file_name(name));
        charts.push(write_chart(&charts_dir, &stem, &title, &plot, SIZE)?);
    }
    let bars =
        |title: &str, y_desc: &str, get: fn(&GroupSummary) -> f64, fmt: fn(f64) -> String| {
            Plot::Bars(Bars {
                title: title.to_owned(),
                y_desc: y_desc.to_owned(),
                categories: names.clone(),
                series: runs
                    .iter()
                    .enumerate()
                    .map(|(ri, r)| BarSeries {
                        label: letter(ri),
                        values: names
                            .iter()
                            .map(|n| find(r, n).map_or(f64::NAN, |g| get(&g)))
                            .collect(),
                        color: color(ri),
                    })
                    .collect(),
                stacked: false,
                y_max: None,
                value_label: fmt,
            })
        };
    for (stem, plot) in [
        (
            "compare-bytes-per-event",
            bars(
                "Wire bytes per delivered event, run against run",
                "bytes per event (up + down)",
                METRICS[9].get,
                |v| format!("{v:.0}"),
            ),
        ),
        (
            "compare-p99",
            bars(
                "p99 delivery latency (corrected), run against run",
                "p99 latency (ms)",
                METRICS[6].get,
                crate::charts::draw::short_number,
            ),
        ),
    ] {
        let title = match &plot {
            Plot::Bars(b) => b.title.clone(),
            _ => String::new(),
        };
        charts.push(write_chart(&charts_dir, stem, &title, &plot, SIZE)?);
    }
    doc.push(Block::Heading(2, "Charts".to_owned()));
    for c in &charts {
        doc.push(Block::Chart {
            title: c.title.clone(),
            svg: format!("{}/{}.svg", crate::charts::run::CHARTS_DIR, c.name),
            png: format!("{}/{}.png", crate::charts::run::CHARTS_DIR, c.name),
            caption: if c.name.starts_with("compare-latency-") {
                "One line per run; lower is better. Read across to a percentile, up to its latency."
                    .to_owned()
            } else {
                "One bar per run and group; a missing bar means the group is not in that run."
                    .to_owned()
            },
        });
    }
    let markdown = out.join(COMPARE_MD);
    write_atomic(&markdown, to_markdown(&doc).as_bytes())?;
    Ok(CompareOutput {
        text,
        markdown,
        charts,
    })
}

/// `B: publisher.rate 10 -> 50` for every scenario setting (flattened key path) in
/// which a run differs from A; settings absent on one side show `(none)`. A scenario
/// that does not parse is reported as such rather than compared.
fn setting_differences(runs: &[RunData]) -> Vec<String> {
    let flat = |r: &RunData| -> Option<std::collections::BTreeMap<String, String>> {
        let v: toml::Value = toml::from_str(&r.run.scenario_toml).ok()?;
        let mut out = std::collections::BTreeMap::new();
        flatten("", &v, &mut out);
        Some(out)
    };
    let Some(base) = flat(&runs[0]) else {
        return vec!["A: scenario.resolved.toml does not parse; settings not compared".to_owned()];
    };
    let mut out = Vec::new();
    for (i, r) in runs.iter().enumerate().skip(1) {
        let Some(other) = flat(r) else {
            out.push(format!(
                "{}: scenario.resolved.toml does not parse; settings not compared",
                letter(i)
            ));
            continue;
        };
        let keys: std::collections::BTreeSet<&String> = base.keys().chain(other.keys()).collect();
        for k in keys {
            let (a, b) = (base.get(k), other.get(k));
            if a != b {
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(none)".to_owned());
                out.push(format!("{}: `{k}` {} -> {}", letter(i), show(a), show(b)));
            }
        }
    }
    out
}

/// `group.0.clients = 3` style key paths for every leaf of a TOML value.
fn flatten(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&join(k), v, out);
            }
        }
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) && !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.to_string());
        }
    }
}

/// A plain-text table: first column left-aligned, the rest right-aligned.
fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(std::iter::once(&header[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("  {c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_letters() {
        assert_eq!(ratio(2.0, 3.0), "1.50x");
        assert_eq!(ratio(0.0, 3.0), "-");
        assert_eq!(ratio(0.0, 0.0), "=");
        assert_eq!(letter(0), "A");
        assert_eq!(letter(2), "C");
        assert_eq!(letter(26), "R27");
    }
}
