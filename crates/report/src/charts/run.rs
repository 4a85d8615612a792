//! The charts of one run: which exist, what each is drawn from, in which order.
//! A chart whose data the run lacks (no arrivals sampled, no server cost measured) is
//! left out, never drawn empty.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use pushbench_protocol::record::{GroupSummary, Percentiles};

use super::draw::{
    BarSeries, Bars, LegendEntry, Line, Lines, Marker, Plot, PointSet, Points, Shade, XAxis, color,
    short_number,
};
use super::source::RunData;
use super::{ChartFile, SIZE, write_chart};
use crate::ReportError;

/// Sub-folder of a run folder that holds the charts.
pub const CHARTS_DIR: &str = "charts";

/// Deepest percentile plotted: 99.999% ("five nines").
const MAX_NINES: f64 = 5.0;

/// Every chart a run can have, by file stem.
pub const RUN_CHARTS: [&str; 6] = [
    "latency-spectrum",
    "bytes-per-event",
    "ordering",
    "arrivals",
    "timeseries",
    "server-cost",
];

/// Draws every chart the data supports into `<dir>/charts/`, and removes the files of
/// charts an earlier rendering drew that this data no longer supports (so a folder
/// never shows a chart its report does not).
pub fn render_run_charts(data: &RunData, dir: &Path) -> Result<Vec<ChartFile>, ReportError> {
    let out = dir.join(CHARTS_DIR);
    let charts = run_plots(data)
        .into_iter()
        .map(|(name, title, plot)| write_chart(&out, name, &title, &plot, size_of(&plot)))
        .collect::<Result<Vec<_>, _>>()?;
    for stem in RUN_CHARTS {
        if charts.iter().any(|c| c.name == stem) {
            continue;
        }
        for ext in ["svg", "png"] {
            let path = out.join(format!("{stem}.{ext}"));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ReportError::Io { path, source: e });
                }
                _ => {}
            }
        }
    }
    Ok(charts)
}

/// The charts of a run as (file stem, title, plot), in report order.
pub fn run_plots(data: &RunData) -> Vec<(&'static str, String, Plot)> {
    let mut out = Vec::new();
    let groups = data.groups();
    if let Some(p) = spectrum_plot(data) {
        out.push(("latency-spectrum", title_of(&p), p));
    }
    if groups.iter().any(|g| g.delivered > 0) {
        let p = bytes_plot(groups);
        out.push(("bytes-per-event", title_of(&p), p));
    }
    if !groups.is_empty() {
        let p = ordering_plot(groups);
        out.push(("ordering", title_of(&p), p));
    }
    if let Some(p) = arrivals_plot(data) {
        out.push(("arrivals", title_of(&p), p));
    }
    if let Some(p) = timeseries_plot(data) {
        out.push(("timeseries", title_of(&p), p));
    }
    if let Some(p) = server_cost_plot(data) {
        out.push(("server-cost", title_of(&p), p));
    }
    out
}

/// 16:9, except grids of more than two rows, which get more height.
pub fn size_of(p: &Plot) -> (u32, u32) {
    match p {
        Plot::Grid {
            columns, panels, ..
        } if panels.len().div_ceil((*columns).max(1)) > 2 => (SIZE.0, SIZE.1 * 3 / 2),
        Plot::Grid {
            columns: 1, panels, ..
        } if panels.len() == 2 => (SIZE.0, SIZE.1 * 4 / 3),
        _ => SIZE,
    }
}

/// How to read the chart with file stem `name`: what its marks mean, never what the
/// run showed (that is for the findings, which are computed).
pub fn how_to_read(name: &str) -> &'static str {
    match name {
        "latency-spectrum" => {
            "One line per group: read across to a percentile, up to its latency; lower is better, and a line ends at its maximum. Dashed lines measure from the actual send time instead of the intended publish time."
        }
        "bytes-per-event" => {
            "Everything the group's clients wrote and read on their sockets, per distinct event delivered: the lower part is event payload, the upper part protocol overhead."
        }
        "ordering" => {
            "Counts over all clients of each group. Coherence is the share of the events each client should have seen that it did see."
        }
        "arrivals" => {
            "One dot per delivery to a sampled client: in-order delivery draws a rising line; crosses arrived after a later event, rings are repeats, missing steps are events never delivered."
        }
        "timeseries" => {
            "One point per second of the measured window, drawn at the middle of the second; shaded bands are fault windows."
        }
        "server-cost" => "Server CPU time and resident memory attributed to each group.",
        _ => "",
    }
}

fn title_of(p: &Plot) -> String {
    match p {
        Plot::Bars(b) => b.title.clone(),
        Plot::Lines(l) => l.title.clone(),
        Plot::Points(p) => p.title.clone(),
        Plot::Grid { title, .. } => title.clone(),
    }
}

/// The color of a group: its position in the summary, the same in every chart.
fn group_color(groups: &[GroupSummary], name: &str) -> plotters::style::RGBColor {
    color(
        groups
            .iter()
            .position(|g| g.name == name)
            .unwrap_or(groups.len()),
    )
}

/// HdrHistogram-style percentile spectrum: (nines, latency in ms), from 0% to the
/// deepest percentile the sample count supports (at most five nines), ending at
/// the maximum.
pub fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let count = h.len();
    if count == 0 {
        return Vec::new();
    }
    let top = (count as f64).log10().clamp(1.0, MAX_NINES);
    let steps = (top * 60.0) as usize;
    let mut pts: Vec<(f64, f64)> = (0..steps)
        .map(|i| {
            let n = top * i as f64 / steps as f64;
            let q = 1.0 - 10f64.powf(-n);
            (n, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect();
    pts.push((top, h.max() as f64 / 1000.0));
    pts
}

/// A coarse spectrum from the summary's percentiles, for runs without `latency.hlog`.
pub fn spectrum_from_percentiles(p: &Percentiles) -> Vec<(f64, f64)> {
    if p.count == 0 {
        return Vec::new();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let top = (p.count as f64).log10().clamp(3.0, MAX_NINES);
    vec![
        (2f64.log10(), ms(p.p50)),
        (1.0, ms(p.p90)),
        (2.0, ms(p.p99)),
        (3.0, ms(p.p999)),
        (top, ms(p.max)),
    ]
}

fn spectrum_plot(data: &RunData) -> Option<Plot> {
    let groups = data.groups();
    let mut lines = Vec::new();
    let mut from_hlog = true;
    for g in groups {
        let c = group_color(groups, &g.name);
        match data.spectra.get(&g.name) {
            Some(s) => {
                lines.push(Line {
                    label: g.name.clone(),
                    color: c,
                    dashed: false,
                    points: spectrum_points(&s.corrected),
                });
                if let Some(u) = &s.uncorrected {
                    lines.push(Line {
                        label: String::new(),
                        color: c,
                        dashed: true,
                        points: spectrum_points(u),
                    });
                }
            }
            None if g.latency_us.count > 0 => {
                from_hlog = false;
                lines.push(Line {
                    label: g.name.clone(),
                    color: c,
                    dashed: false,
                    points: spectrum_from_percentiles(&g.latency_us),
                });
                if g.latency_uncorrected_us.count > 0 {
                    lines.push(Line {
                        label: String::new(),
                        color: c,
                        dashed: true,
                        points: spectrum_from_percentiles(&g.latency_uncorrected_us),
                    });
                }
            }
            None => {}
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut legend = legend_for(&lines);
    if lines.iter().any(|l| l.dashed) {
        legend.push(LegendEntry {
            label: "dashed: from send time".to_owned(),
            color: plotters::style::RGBColor(150, 150, 150),
            shade: false,
        });
    }
    Some(Plot::Grid {
        title: format!(
            "Delivery latency by percentile{} (solid: corrected)",
            if from_hlog {
                ""
            } else {
                ", summary percentiles only"
            }
        ),
        columns: 1,
        panels: vec![Plot::Lines(Lines {
            title: String::new(),
            x_desc: "percentile".to_owned(),
            y_desc: "latency (ms, log scale)".to_owned(),
            x_axis: XAxis::Nines,
            y_log: true,
            lines,
            shades: Vec::new(),
            legend: false,
        })],
        legend,
    })
}

/// One legend entry per labelled line.
fn legend_for(lines: &[Line]) -> Vec<LegendEntry> {
    lines
        .iter()
        .filter(|l| !l.label.is_empty())
        .map(|l| LegendEntry {
            label: l.label.clone(),
            color: l.color,
            shade: false,
        })
        .collect()
}

/// Wire bytes per delivered event, split into payload and protocol overhead.
pub fn bytes_split(g: &GroupSummary) -> (f64, f64) {
    if g.delivered == 0 {
        return (0.0, 0.0);
    }
    let d = g.delivered as f64;
    // The summary's own per-event figure when it has one, so the report's numbers are
    // the ones in summary.json.
    let total = if g.wire_bytes_per_event > 0.0 {
        g.wire_bytes_per_event
    } else {
        (g.bytes_up + g.bytes_down) as f64 / d
    };
    let payload = g.payload_bytes_down as f64 / d;
    (payload.min(total), (total - payload).max(0.0))
}

fn bytes_plot(groups: &[GroupSummary]) -> Plot {
    // Groups that delivered nothing (an upload-only beacon) have no bytes per event.
    let groups: Vec<GroupSummary> = groups.iter().filter(|g| g.delivered > 0).cloned().collect();
    let groups = groups.as_slice();
    let (payload, overhead): (Vec<f64>, Vec<f64>) = groups.iter().map(bytes_split).unzip();
    Plot::Bars(Bars {
        title: "Wire bytes per delivered event".to_owned(),
        y_desc: "bytes per event (up + down)".to_owned(),
        categories: groups.iter().map(|g| g.name.clone()).collect(),
        series: vec![
            BarSeries {
                label: "payload".to_owned(),
                values: payload,
                color: color(0),
            },
            BarSeries {
                label: "protocol overhead (headers, framing, requests)".to_owned(),
                values: overhead,
                color: color(1),
            },
        ],
        stacked: true,
        y_max: None,
        value_label: |v| format!("{v:.0} B"),
    })
}

fn ordering_plot(groups: &[GroupSummary]) -> Plot {
    let cats: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let series = |label: &str, i: usize, f: fn(&GroupSummary) -> u64| BarSeries {
        label: label.to_owned(),
        values: groups.iter().map(|g| f(g) as f64).collect(),
        color: color(i),
    };
    let counts = Bars {
        title: "Ordering faults (events, all clients)".to_owned(),
        y_desc: "events".to_owned(),
        categories: cats.clone(),
        series: vec![
            series("duplicates", 0, |g| g.duplicates),
            series("reordered", 1, |g| g.reordered),
            series("lost", 5, |g| g.lost),
            series("gaps announced", 3, |g| g.gaps),
        ],
        stacked: false,
        y_max: None,
        value_label: short_number,
    };
    let coherence = Bars {
        title: "Coherence (share of expected events seen)".to_owned(),
        y_desc: "coherence (%)".to_owned(),
        categories: cats,
        series: vec![BarSeries {
            label: "delivered / expected".to_owned(),
            values: groups.iter().map(|g| g.coherence * 100.0).collect(),
            color: color(2),
        }],
        stacked: false,
        y_max: Some(115.0),
        value_label: |v| format!("{v:.1}%"),
    };
    Plot::Grid {
        title: "Ordering: duplicates, reordering, loss, gaps and coherence per group".to_owned(),
        columns: 1,
        panels: vec![Plot::Bars(counts), Plot::Bars(coherence)],
        legend: Vec::new(),
    }
}

/// Most groups drawn in the arrival timeline.
const MAX_ARRIVAL_PANELS: usize = 6;
/// Most clients drawn per group in the arrival timeline.
const MAX_ARRIVAL_CLIENTS: usize = 5;

fn arrivals_plot(data: &RunData) -> Option<Plot> {
    if data.arrivals.is_empty() {
        return None;
    }
    let groups = data.groups();
    // Summary order first, then any group only arrivals.csv names.
    let mut names: Vec<&str> = groups
        .iter()
        .map(|g| g.name.as_str())
        .filter(|n| data.arrivals.iter().any(|a| a.group == *n))
        .collect();
    for a in &data.arrivals {
        if !names.contains(&a.group.as_str()) {
            names.push(&a.group);
        }
    }
    names.truncate(MAX_ARRIVAL_PANELS);
    let panels = names
        .iter()
        .map(|name| {
            let mut per_client: BTreeMap<u64, Vec<(f64, u64)>> = BTreeMap::new();
            for a in data.arrivals.iter().filter(|a| a.group == *name) {
                per_client
                    .entry(a.client)
                    .or_default()
                    .push((a.receive_ms, a.publisher_seq));
            }
            let mut sets = Vec::new();
            let mut late = Vec::new();
            let mut dups = Vec::new();
            for (i, (client, mut pts)) in
                per_client.into_iter().take(MAX_ARRIVAL_CLIENTS).enumerate()
            {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut highest = 0u64;
                let mut seen = std::collections::HashSet::new();
                let mut in_order = Vec::new();
                for (ms, seq) in pts {
                    let p = (ms / 1000.0, seq as f64);
                    if !seen.insert(seq) {
                        dups.push(p);
                    } else if seq < highest {
                        late.push(p);
                    } else {
                        in_order.push(p);
                    }
                    highest = highest.max(seq);
                }
                sets.push(PointSet {
                    label: format!("client {client}"),
                    color: color([0, 4, 2, 3, 6][i % 5]),
                    marker: Marker::Dot,
                    points: in_order,
                });
            }
            if !late.is_empty() {
                sets.push(PointSet {
                    label: "out of order (after a later event)".to_owned(),
                    color: color(5),
                    marker: Marker::Cross,
                    points: late,
                });
            }
            if !dups.is_empty() {
                sets.push(PointSet {
                    label: "duplicate (seen before)".to_owned(),
                    color: color(6),
                    marker: Marker::Ring,
                    points: dups,
                });
            }
            Plot::Points(Points {
                title: (*name).to_owned(),
                x_desc: "receive time (s)".to_owned(),
                y_desc: "publisher sequence".to_owned(),
                sets,
            })
        })
        .collect::<Vec<_>>();
    Some(Plot::Grid {
        title: "Arrival timeline of sample clients (gaps in a line = events lost)".to_owned(),
        columns: if panels.len() > 1 { 2 } else { 1 },
        panels,
        legend: Vec::new(),
    })
}

fn timeseries_plot(data: &RunData) -> Option<Plot> {
    let groups = data.groups();
    let rows: Vec<_> = data
        .run
        .timeseries
        .iter()
        .filter(|r| r.second >= 0)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    for r in &rows {
        if !names.contains(&r.group.as_str()) {
            names.push(&r.group);
        }
    }
    let shades: Vec<Shade> = data
        .faults
        .iter()
        .map(|f| Shade {
            label: if f.groups.is_empty() {
                format!("fault: {}", f.kind)
            } else {
                format!("fault: {} ({})", f.kind, f.groups.join(", "))
            },
            x0: f.start_s,
            x1: f.end_s,
        })
        .collect();
    let panel = |title: &str,
                 y_desc: &str,
                 legend: bool,
                 f: &dyn Fn(&pushbench_protocol::record::TimeseriesRow) -> f64| {
        let lines = names
            .iter()
            .map(|name| Line {
                label: (*name).to_owned(),
                color: group_color(groups, name),
                dashed: false,
                points: rows
                    .iter()
                    .filter(|r| r.group == *name)
                    // A row covers [second, second + 1): drawn at its middle, so a
                    // fault window's shading lines up with the seconds it covered.
                    .map(|r| (r.second as f64 + 0.5, f(r)))
                    .collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        Plot::Lines(Lines {
            title: title.to_owned(),
            x_desc: "time (s)".to_owned(),
            y_desc: y_desc.to_owned(),
            x_axis: XAxis::Linear,
            y_log: false,
            lines,
            shades: shades.clone(),
            legend,
        })
    };
    let mut legend: Vec<LegendEntry> = names
        .iter()
        .filter(|name| rows.iter().any(|r| r.group == **name))
        .map(|name| LegendEntry {
            label: (*name).to_owned(),
            color: group_color(groups, name),
            shade: false,
        })
        .collect();
    let mut seen_shades: Vec<&str> = Vec::new();
    for sh in &shades {
        if !seen_shades.contains(&sh.label.as_str()) {
            seen_shades.push(&sh.label);
            legend.push(LegendEntry {
                label: sh.label.clone(),
                color: plotters::style::RGBColor(213, 94, 0),
                shade: true,
            });
        }
    }
    Some(Plot::Grid {
        title: "Per second: deliveries, p99 latency, open connections, bytes".to_owned(),
        legend,
        columns: 2,
        panels: vec![
            panel("Deliveries", "events per second", false, &|r| {
                r.deliveries as f64
            }),
            // No delivery in a second means no p99: the line breaks there.
            panel("p99 latency (corrected)", "ms", false, &|r| {
                if r.deliveries == 0 {
                    f64::NAN
                } else {
                    r.p99_us as f64 / 1000.0
                }
            }),
            panel("Open connections", "connections", false, &|r| {
                r.open_connections as f64
            }),
            panel("Wire bytes (up + down)", "KiB per second", false, &|r| {
                (r.bytes_up + r.bytes_down) as f64 / 1024.0
            }),
        ],
    })
}

fn server_cost_plot(data: &RunData) -> Option<Plot> {
    if data.server_cost.is_empty() {
        return None;
    }
    let mut panels = Vec::new();
    let cpu: Vec<_> = data
        .server_cost
        .iter()
        .filter(|c| c.cpu_s.is_some())
        .collect();
    if !cpu.is_empty() {
        panels.push(Plot::Bars(Bars {
            title: "Server CPU".to_owned(),
            y_desc: "CPU seconds".to_owned(),
            categories: cpu.iter().map(|c| c.group.clone()).collect(),
            series: vec![BarSeries {
                label: "server CPU time".to_owned(),
                values: cpu.iter().map(|c| c.cpu_s.unwrap_or(0.0)).collect(),
                color: color(0),
            }],
            stacked: false,
            y_max: None,
            value_label: |v| format!("{v:.2} s"),
        }));
    }
    let rss: Vec<_> = data
        .server_cost
        .iter()
        .filter(|c| c.rss_bytes.is_some())
        .collect();
    if !rss.is_empty() {
        panels.push(Plot::Bars(Bars {
            title: "Server memory".to_owned(),
            y_desc: "resident memory (MiB)".to_owned(),
            categories: rss.iter().map(|c| c.group.clone()).collect(),
            series: vec![BarSeries {
                label: "server RSS".to_owned(),
                values: rss
                    .iter()
                    .map(|c| c.rss_bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0))
                    .collect(),
                color: color(3),
            }],
            stacked: false,
            y_max: None,
            value_label: |v| format!("{v:.1} MiB"),
        }));
    }
    Some(Plot::Grid {
        title: "Server cost per group".to_owned(),
        columns: panels.len(),
        panels,
        legend: Vec::new(),
    })
}
