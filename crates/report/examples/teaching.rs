//! The generator behind `docs/teaching/regenerate.sh`: runs each teaching scenario
//! with the release binary into a temporary folder, keeps its `summary.json`,
//! `meta.json` and the charts its lesson needs under `docs/teaching/<run>/`, draws the
//! header-overhead-at-scale chart, and rewrites the generated blocks of
//! `docs/teaching.md` from the kept `summary.json` files. Every number in the guide is
//! in a generated block, so the text can never contradict the committed charts.
//!
//! ```text
//! cargo run --release -p pushbench-report --example teaching -- \
//!     --bin target/release/pushbench [--only RUN[,RUN]] [--text-only]
//! ```
//!
//! `--text-only` skips the runs and rewrites the text (and the scale chart) from the
//! committed summaries. A run whose scenario file does not exist yet is skipped and
//! its blocks say so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pushbench_protocol::record::{GroupSummary, Meta, Summary};
use pushbench_report::charts::draw::{BarSeries, Bars, Plot, color};
use pushbench_report::charts::run::bytes_split;
use pushbench_report::charts::{SIZE, write_chart};
use pushbench_report::markdown::{Block, to_markdown};
use pushbench_report::numbers::{fixed, latency, percent};

/// One committed run: the scenario it comes from and the charts the guide shows.
pub struct RunSpec {
    /// Folder under `docs/teaching/` (the scenario's file stem).
    pub dir: &'static str,
    /// Scenario file, relative to the workspace root.
    pub scenario: &'static str,
    /// Chart stems copied from the run's `charts/`.
    pub charts: &'static [&'static str],
}

/// The runs behind the guide, in the order they are run.
pub const RUNS: &[RunSpec] = &[
    RunSpec {
        dir: "interval-dilemma",
        scenario: "docs/teaching/scenarios/interval-dilemma.toml",
        charts: &["latency-spectrum"],
    },
    RunSpec {
        dir: "quickstart",
        scenario: "scenarios/quickstart.toml",
        charts: &["bytes-per-event", "latency-spectrum", "ordering"],
    },
    RunSpec {
        dir: "ticker",
        scenario: "scenarios/ticker.toml",
        charts: &["bytes-per-event"],
    },
    RunSpec {
        dir: "chat",
        scenario: "scenarios/chat.toml",
        charts: &["bytes-per-event", "latency-spectrum"],
    },
    RunSpec {
        dir: "fanout",
        scenario: "scenarios/fanout.toml",
        charts: &["latency-spectrum"],
    },
    RunSpec {
        dir: "jitter-reorder",
        scenario: "scenarios/jitter-reorder.toml",
        charts: &["arrivals", "ordering"],
    },
    RunSpec {
        dir: "naive-longpoll",
        scenario: "scenarios/naive-longpoll.toml",
        charts: &["arrivals", "ordering"],
    },
    RunSpec {
        dir: "half-open",
        scenario: "scenarios/half-open.toml",
        charts: &["timeseries"],
    },
    RunSpec {
        dir: "server-restart",
        scenario: "scenarios/server-restart.toml",
        charts: &["timeseries"],
    },
    RunSpec {
        dir: "slow-consumer",
        scenario: "scenarios/slow-consumer.toml",
        charts: &["timeseries"],
    },
    RunSpec {
        dir: "mobile-3g",
        scenario: "scenarios/mobile-3g.toml",
        charts: &["latency-spectrum"],
    },
    RunSpec {
        dir: "satellite",
        scenario: "scenarios/satellite.toml",
        charts: &["latency-spectrum"],
    },
];

/// Client counts of the header-overhead-at-scale lesson.
pub const SCALES: [u64; 3] = [1_000, 10_000, 100_000];

/// Folder of the computed scale chart under `docs/teaching/`.
pub const SCALE_DIR: &str = "scale";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let mut bin = PathBuf::from("target/release/pushbench");
    let mut only: Option<Vec<String>> = None;
    let mut text_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bin" => bin = PathBuf::from(args.next().ok_or("--bin needs a path")?),
            "--only" => {
                only = Some(
                    args.next()
                        .ok_or("--only needs run names")?
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "--text-only" => text_only = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let root = workspace();
    let teaching = root.join("docs/teaching");
    if !text_only {
        let tmp = std::env::temp_dir().join(format!("pushbench-teaching-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for spec in RUNS {
            if only
                .as_ref()
                .is_some_and(|o| !o.iter().any(|n| n == spec.dir))
            {
                continue;
            }
            let scenario = root.join(spec.scenario);
            if !scenario.is_file() {
                eprintln!(
                    "skip {}: {} does not exist yet",
                    spec.dir,
                    scenario.display()
                );
                continue;
            }
            run_one(
                &bin,
                &scenario,
                &tmp.join(spec.dir),
                &teaching.join(spec.dir),
                spec,
            )?;
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let runs = load_runs(&teaching);
    for run in ["half-open", "server-restart"] {
        if let Some(k) = runs.get(run) {
            outcomes_chart(&k.summary, &k.raw, &teaching.join(run))?;
        }
    }
    if let Some(d) = runs.get("interval-dilemma") {
        dilemma_chart(&d.summary, &teaching.join("interval-dilemma"))?;
    }
    if let Some(q) = runs.get("quickstart") {
        scale_chart(&q.summary, &teaching.join(SCALE_DIR))?;
    }
    recompress_pngs(&teaching);
    let guide = root.join("docs/teaching.md");
    let text = std::fs::read_to_string(&guide).map_err(|e| format!("{}: {e}", guide.display()))?;
    let new = fill_blocks(&text, &runs, &teaching);
    std::fs::write(&guide, new).map_err(|e| format!("{}: {e}", guide.display()))?;
    eprintln!("wrote {}", guide.display());
    Ok(())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// Runs one scenario into `tmp`, then replaces `keep` with its summary, meta and charts.
fn run_one(
    bin: &Path,
    scenario: &Path,
    tmp: &Path,
    keep: &Path,
    spec: &RunSpec,
) -> Result<(), String> {
    let started = Instant::now();
    eprintln!("run {} ...", spec.dir);
    let status = Command::new(bin)
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(tmp)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", spec.scenario));
    }
    let _ = std::fs::remove_dir_all(keep);
    std::fs::create_dir_all(keep).map_err(|e| format!("{}: {e}", keep.display()))?;
    let copy = |from: PathBuf, to: PathBuf| -> Result<(), String> {
        std::fs::copy(&from, &to)
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", from.display()))
    };
    for f in ["summary.json", "meta.json", "scenario.resolved.toml"] {
        copy(tmp.join(f), keep.join(f))?;
    }
    for c in spec.charts {
        for ext in ["svg", "png"] {
            let from = tmp.join("charts").join(format!("{c}.{ext}"));
            if from.is_file() {
                copy(from, keep.join(format!("{c}.{ext}")))?;
            } else {
                eprintln!("  {}: no {c}.{ext} (the run lacks its data)", spec.dir);
            }
        }
    }
    eprintln!(
        "  {} done in {:.0} s",
        spec.dir,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A committed run: its summary and where it was made.
pub struct Kept {
    /// `summary.json`.
    pub summary: Summary,
    /// `meta.json`, when readable.
    pub meta: Option<Meta>,
    /// `summary.json` as JSON, for fields newer than [`Summary`] (fault detection
    /// and recovery), read when present.
    pub raw: serde_json::Value,
}

/// Every committed run under `teaching` with a readable `summary.json`.
pub fn load_runs(teaching: &Path) -> BTreeMap<String, Kept> {
    let mut out = BTreeMap::new();
    for spec in RUNS {
        let dir = teaching.join(spec.dir);
        let Ok(text) = std::fs::read_to_string(dir.join("summary.json")) else {
            continue;
        };
        let (Ok(summary), Ok(raw)) = (
            serde_json::from_str::<Summary>(&text),
            serde_json::from_str::<serde_json::Value>(&text),
        ) else {
            eprintln!("{}: summary.json does not parse; skipped", dir.display());
            continue;
        };
        let meta = std::fs::read_to_string(dir.join("meta.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        out.insert(spec.dir.to_owned(), Kept { summary, meta, raw });
    }
    out
}

/// Replaces the body of every `<!-- generated:NAME -->` ... `<!-- /generated:NAME -->`
/// block with what [`block`] makes of the committed runs.
pub fn fill_blocks(text: &str, runs: &BTreeMap<String, Kept>, teaching: &Path) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!-- generated:") {
        let open_end = rest[start..].find(" -->").map(|i| start + i);
        let name = open_end.map(|e| &rest[start + "<!-- generated:".len()..e]);
        let close = name.map(|n| format!("<!-- /generated:{n} -->"));
        let (Some(open_end), Some(name), Some(end)) = (
            open_end,
            name,
            close.as_ref().and_then(|c| rest.find(c.as_str())),
        ) else {
            // A marker mentioned in prose, not a block: keep it as is.
            let skip = start + "<!-- generated:".len();
            out.push_str(&rest[..skip]);
            rest = &rest[skip..];
            continue;
        };
        let close = close.expect("found above");
        out.push_str(&rest[..open_end + " -->".len()]);
        out.push_str("\n\n");
        out.push_str(block(name, runs, teaching).trim_end());
        out.push_str("\n\n");
        out.push_str(&close);
        rest = &rest[end + close.len()..];
    }
    out.push_str(rest);
    out
}

/// The generated Markdown of block `name`.
pub fn block(name: &str, runs: &BTreeMap<String, Kept>, teaching: &Path) -> String {
    type Body = fn(&Summary, &serde_json::Value) -> String;
    // (run, charts shown, groups shown (empty: all), the text)
    let (run, charts, only, body): (&str, &[&str], &[&str], Body) = match name {
        "polling" => (
            "quickstart",
            &["bytes-per-event", "latency-spectrum"],
            &[
                "poll",
                "poll-interval",
                "poll-latest",
                "long-poll",
                "sse",
                "websocket",
            ],
            polling,
        ),
        "interval-dilemma" => (
            "interval-dilemma",
            &["latency-spectrum"],
            &[],
            interval_dilemma,
        ),
        "ordering" => ("jitter-reorder", &["arrivals", "ordering"], &[], ordering),
        "ordering-loopback" => ("quickstart", &[], &["poll", "poll-interval"], ordering),
        "long-poll" => ("naive-longpoll", &["arrivals", "ordering"], &[], long_poll),
        "long-poll-quickstart" => (
            "quickstart",
            &["ordering"],
            &["long-poll", "long-poll-naive"],
            long_poll,
        ),
        "sse" => ("ticker", &[], &["sse", "long-poll"], sse),
        "framing" => (
            "ticker",
            &["bytes-per-event"],
            &["sse", "websocket-text", "websocket-binary"],
            framing,
        ),
        "heartbeat" => ("half-open", &["timeseries"], &[], faults),
        "reconnect" => ("server-restart", &["timeseries"], &[], faults),
        "slow-consumer" => ("slow-consumer", &["timeseries"], &[], faults),
        "beacon" => ("chat", &["bytes-per-event"], &[], beacon),
        "beacon-quickstart" => ("quickstart", &[], &["beacon", "chat"], beacon),
        "networks-3g" => ("mobile-3g", &["latency-spectrum"], &[], polling),
        "networks-satellite" => ("satellite", &["latency-spectrum"], &[], polling),
        "fanout" => ("fanout", &["latency-spectrum"], &[], fanout),
        "scale" => ("quickstart", &[], &[], scale),
        other => return format!("_Unknown generated block `{other}`._"),
    };
    let spec = RUNS
        .iter()
        .find(|r| r.dir == run)
        .expect("every block names a run");
    let Some(kept) = runs.get(run) else {
        let mut s = format!(
            "_Not generated yet: `{}` has not been run. `docs/teaching/regenerate.sh` runs it and fills this block with its numbers._\n",
            spec.scenario
        );
        for c in charts {
            let _ = writeln!(s, "\n_Chart to come here: `teaching/{run}/{c}.png`._");
        }
        return s;
    };
    let mut summary = kept.summary.clone();
    if !only.is_empty() {
        summary.groups.retain(|g| only.contains(&g.name.as_str()));
    }
    let mut s = body(&summary, &kept.raw);
    if name == "interval-dilemma" && teaching.join(run).join("interval-dilemma.svg").is_file() {
        let _ = write!(
            s,
            "\n![The interval dilemma: latency and bytes per event by polling interval](teaching/{run}/interval-dilemma.svg)\n\n[PNG](teaching/{run}/interval-dilemma.png)\n"
        );
    }
    if matches!(name, "heartbeat" | "reconnect")
        && teaching.join(run).join("fault-outcomes.svg").is_file()
    {
        let _ = write!(
            s,
            "\n![Fault outcomes per group: time to detect, time to recover, events lost, reconnect peak](teaching/{run}/fault-outcomes.svg)\n\nA missing bar is a group that never detected the fault (or had nothing to recover). [PNG](teaching/{run}/fault-outcomes.png)\n"
        );
    }
    if name == "scale"
        && teaching
            .join(SCALE_DIR)
            .join("overhead-at-scale.svg")
            .is_file()
    {
        let _ = write!(
            s,
            "\n![Protocol overhead at 1k, 10k and 100k clients](teaching/{SCALE_DIR}/overhead-at-scale.svg)\n\n[PNG](teaching/{SCALE_DIR}/overhead-at-scale.png)\n"
        );
    }
    for c in charts.iter() {
        if teaching.join(run).join(format!("{c}.svg")).is_file() {
            let _ = write!(
                s,
                "\n![{c} of the {run} run](teaching/{run}/{c}.svg)\n\n[PNG](teaching/{run}/{c}.png)\n"
            );
        } else {
            let _ = write!(
                s,
                "\n_Chart missing: the {run} run drew no `{c}` (its data was absent)._\n"
            );
        }
    }
    let _ = write!(s, "\n{}\n", source_line(run, kept));
    s
}

fn source_line(run: &str, kept: &Kept) -> String {
    let s = &kept.summary;
    let rev = kept
        .meta
        .as_ref()
        .map(|m| {
            format!(
                ", pushbench {}{} on {} cores",
                m.version,
                m.git_revision
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                m.cores
            )
        })
        .unwrap_or_default();
    let mut line = format!(
        "<sub>Numbers from [`teaching/{run}/summary.json`](teaching/{run}/summary.json): scenario `{}`, started {}, {} s measured{rev}.",
        s.scenario,
        s.started_at,
        fixed(s.duration_s, 1)
    );
    if s.partial {
        line.push_str(" **Partial run.**");
    }
    if s.loadgen.saturated {
        line.push_str(" **The load generator was saturated: latencies include its own delays.**");
    }
    line.push_str("</sub>");
    line
}

/// A table of `groups` (all when empty) with the given columns.
fn table(s: &Summary, raw: &serde_json::Value, columns: &[&str]) -> String {
    let mut header = vec!["group".to_owned(), "strategy, options".to_owned()];
    header.extend(columns.iter().map(|c| (*c).to_owned()));
    let rows = s
        .groups
        .iter()
        .map(|g| {
            let mut row = vec![
                format!("`{}`", g.name),
                format!("{} {}", g.strategy, g.options).trim().to_owned(),
            ];
            row.extend(columns.iter().map(|c| cell(g, s, &extra(raw, &g.name), c)));
            row
        })
        .collect();
    let right = (0..header.len()).map(|i| i >= 2).collect();
    to_markdown(&[Block::Table {
        header,
        right,
        rows,
    }])
}

fn cell(g: &GroupSummary, s: &Summary, x: &Extra, column: &str) -> String {
    let (payload, overhead) = bytes_split(g);
    match column {
        "clients" => g.clients.to_string(),
        "delivered / expected" => format!("{} / {}", g.delivered, g.expected),
        "coherence" => percent(g.coherence),
        "lost" => g.lost.to_string(),
        "gaps" => g.gaps.to_string(),
        "reordered" => g.reordered.to_string(),
        "duplicates" => g.duplicates.to_string(),
        "p50" => latency(&g.latency_us, g.latency_us.p50),
        "p99" => latency(&g.latency_us, g.latency_us.p99),
        "max" => latency(&g.latency_us, g.latency_us.max),
        "bytes/event" => {
            if g.delivered == 0 {
                "-".to_owned()
            } else {
                format!("{} B", fixed(payload + overhead, 0))
            }
        }
        "overhead/event" => {
            if g.delivered == 0 {
                "-".to_owned()
            } else {
                format!("{} B", fixed(overhead, 0))
            }
        }
        "requests" => g.requests.to_string(),
        "empty" => g.empty_responses.to_string(),
        "304s" => g.not_modified.to_string(),
        "requests/s per client" => {
            if g.clients == 0 || s.duration_s <= 0.0 {
                "-".to_owned()
            } else {
                fixed(g.requests as f64 / g.clients as f64 / s.duration_s, 1)
            }
        }
        "uploads" => g.uploads.to_string(),
        "bytes up/upload" => {
            if g.uploads == 0 {
                "-".to_owned()
            } else {
                format!("{} B", fixed(g.bytes_up as f64 / g.uploads as f64, 0))
            }
        }
        "reconnects" => g.reconnects.to_string(),
        "errors" => g.errors.to_string(),
        "conn/s peak" => x.reconnect_peak_per_s.to_string(),
        "detected" => x.detections.to_string(),
        "detect p50" => dash_secs(x.detections, x.detect_us_p50),
        "recovered" => x.recoveries.to_string(),
        "recover p50" => dash_secs(x.recoveries, x.recover_us_p50),
        other => format!("?{other}"),
    }
}

/// Fault detection and recovery of a group, from `summary.json` fields newer than
/// [`Summary`] (0 when absent).
#[derive(Default)]
struct Extra {
    detections: u64,
    detect_us_p50: u64,
    detect_us_max: u64,
    recoveries: u64,
    recover_us_p50: u64,
    recover_us_max: u64,
    reconnect_peak_per_s: u64,
}

fn extra(raw: &serde_json::Value, group: &str) -> Extra {
    let Some(g) = raw["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == group))
    else {
        return Extra::default();
    };
    let n = |k: &str| g[k].as_u64().unwrap_or(0);
    Extra {
        detections: n("detections"),
        detect_us_p50: n("detect_us_p50"),
        detect_us_max: n("detect_us_max"),
        recoveries: n("recoveries"),
        recover_us_p50: n("recover_us_p50"),
        recover_us_max: n("recover_us_max"),
        reconnect_peak_per_s: n("reconnect_peak_per_s"),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `secs(us)`, or `-` when `n` (the count the median is of) is 0.
fn dash_secs(n: u64, us: u64) -> String {
    if n == 0 { "-".to_owned() } else { secs(us) }
}

fn secs(us: u64) -> String {
    format!("{} s", fixed(us as f64 / 1e6, 1))
}

fn find<'a>(s: &'a Summary, name: &str) -> Option<&'a GroupSummary> {
    s.groups.iter().find(|g| g.name == name)
}

fn per_event(g: &GroupSummary) -> f64 {
    let (p, o) = bytes_split(g);
    p + o
}

/// Cheapest and dearest groups by bytes per event, as a sentence.
fn bytes_sentence(s: &Summary) -> String {
    let mut gs: Vec<&GroupSummary> = s.groups.iter().filter(|g| g.delivered > 0).collect();
    gs.sort_by(|a, b| per_event(a).total_cmp(&per_event(b)));
    match (gs.first(), gs.last()) {
        (Some(c), Some(d)) if per_event(c) > 0.0 => format!(
            "In this run `{}` cost the most wire bytes per delivered event ({} B) and `{}` the least ({} B): {}x as much.",
            d.name,
            fixed(per_event(d), 0),
            c.name,
            fixed(per_event(c), 0),
            fixed(per_event(d) / per_event(c), 1)
        ),
        _ => String::new(),
    }
}

fn polling(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "requests/s per client",
            "empty",
            "304s",
            "bytes/event",
            "overhead/event",
            "p50",
            "p99",
            "coherence",
        ],
    );
    let _ = write!(out, "\n{}", bytes_sentence(s));
    let polls: Vec<&GroupSummary> = s
        .groups
        .iter()
        .filter(|g| g.strategy == "poll" && g.requests > 0)
        .collect();
    for g in polls {
        let _ = write!(
            out,
            " `{}` sent {} requests, {} of them answered with no event ({}).",
            g.name,
            g.requests,
            g.empty_responses + g.not_modified,
            percent((g.empty_responses + g.not_modified) as f64 / g.requests as f64)
        );
    }
    out.push('\n');
    out
}

fn ordering(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "delivered / expected",
            "reordered",
            "duplicates",
            "lost",
            "p50",
            "p99",
        ],
    );
    let reordered: Vec<String> = s
        .groups
        .iter()
        .filter(|g| g.reordered > 0)
        .map(|g| {
            format!(
                "`{}` delivered {} events out of order ({} of its deliveries)",
                g.name,
                g.reordered,
                percent(g.reordered as f64 / (g.delivered + g.duplicates).max(1) as f64)
            )
        })
        .collect();
    let twice: Vec<String> = s
        .groups
        .iter()
        .filter(|g| g.duplicates > 0)
        .map(|g| format!("`{}` received {} events twice", g.name, g.duplicates))
        .collect();
    if reordered.is_empty() {
        let _ = writeln!(
            out,
            "\nNo group delivered an event out of order in this run."
        );
    } else {
        let _ = writeln!(out, "\nIn this run {}.", reordered.join("; "));
        let in_order: Vec<String> = s
            .groups
            .iter()
            .filter(|g| g.reordered == 0 && g.delivered > 0)
            .map(|g| format!("`{}`", g.name))
            .collect();
        if !in_order.is_empty() {
            let _ = writeln!(out, "In order throughout: {}.", in_order.join(", "));
        }
    }
    if !twice.is_empty() {
        let _ = writeln!(out, "Duplicates: {}.", twice.join("; "));
    }
    out
}

fn long_poll(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "delivered / expected",
            "coherence",
            "lost",
            "gaps",
            "requests",
            "p50",
            "p99",
        ],
    );
    for g in s.groups.iter().filter(|g| g.strategy == "long-poll") {
        let _ = write!(
            out,
            "\n`{}` ({}) lost {} of {} expected events (coherence {}){}.",
            g.name,
            g.options,
            g.lost,
            g.expected,
            percent(g.coherence),
            if g.gaps > 0 {
                format!(", with {} gaps announced", g.gaps)
            } else {
                String::new()
            }
        );
    }
    out.push('\n');
    out
}

fn sse(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "delivered / expected",
            "lost",
            "bytes/event",
            "overhead/event",
            "p50",
            "p99",
            "reconnects",
        ],
    );
    if let Some(g) = find(s, "sse") {
        let (_, o) = bytes_split(g);
        let _ = writeln!(
            out,
            "\nEach SSE event cost `{}`'s clients {} B of framing and headers on top of its payload (the `id:`, `data:` lines, the blank line, the chunk size, and the one-time response headers spread over every event).",
            g.name,
            fixed(o, 0)
        );
    }
    out
}

fn framing(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(s, raw, &["bytes/event", "overhead/event", "p50", "p99"]);
    if let (Some(t), Some(b)) = (find(s, "websocket-text"), find(s, "websocket-binary")) {
        let _ = writeln!(
            out,
            "\nOn {}-byte payloads, text frames cost {} B per event and binary frames {} B ({} B of overhead against {} B).",
            s.publisher.payload_bytes,
            fixed(per_event(t), 0),
            fixed(per_event(b), 0),
            fixed(bytes_split(t).1, 0),
            fixed(bytes_split(b).1, 0)
        );
    }
    out
}

fn faults(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "delivered / expected",
            "lost",
            "gaps",
            "duplicates",
            "reconnects",
            "conn/s peak",
            "detected",
            "detect p50",
            "recovered",
            "recover p50",
            "max",
        ],
    );
    let any_detection = s.groups.iter().any(|g| extra(raw, &g.name).detections > 0);
    for g in &s.groups {
        let x = extra(raw, &g.name);
        let mut parts = Vec::new();
        if x.detections > 0 {
            parts.push(format!(
                "{} of {} clients declared the connection dead, a median {} after the fault began (slowest {})",
                x.detections,
                g.clients,
                secs(x.detect_us_p50),
                secs(x.detect_us_max)
            ));
        } else if any_detection {
            parts.push("no client detected the fault".to_owned());
        }
        if g.reconnects > 0 {
            parts.push(format!(
                "{} reconnect{} (at most {} connections opened in one second)",
                g.reconnects,
                if g.reconnects == 1 { "" } else { "s" },
                x.reconnect_peak_per_s
            ));
        }
        if x.recoveries > 0 {
            parts.push(format!(
                "{} recover{}, delivering again a median {} after the link was back (slowest {})",
                x.recoveries,
                if x.recoveries == 1 { "y" } else { "ies" },
                secs(x.recover_us_p50),
                secs(x.recover_us_max)
            ));
        }
        parts.push(format!(
            "{} of {} expected events lost{}{}",
            g.lost,
            g.expected,
            if g.gaps > 0 {
                format!(" ({} gaps announced)", g.gaps)
            } else {
                String::new()
            },
            if g.duplicates > 0 {
                format!(", {} delivered twice", g.duplicates)
            } else {
                String::new()
            }
        ));
        let _ = write!(out, "\n`{}`: {}.", g.name, parts.join("; "));
    }
    let server = &raw["server"];
    if server.is_object() {
        let n = |k: &str| server[k].as_u64().unwrap_or(0);
        let _ = write!(
            out,
            "\n\nServer: {} connections accepted, {} slow consumer{} closed, {} gap notice{} sent, {} restart{}; resident memory peak {} MiB ({}).",
            n("connections_accepted"),
            n("slow_consumer_closes"),
            plural(n("slow_consumer_closes")),
            n("gaps_sent"),
            plural(n("gaps_sent")),
            n("restarts"),
            plural(n("restarts")),
            fixed(n("rss_peak_bytes") as f64 / (1024.0 * 1024.0), 1),
            server["scope"].as_str().unwrap_or("")
        );
    }
    for w in &s.warnings {
        let _ = write!(out, "\n\n> {w}");
    }
    out.push('\n');
    out
}

fn beacon(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "clients",
            "uploads",
            "bytes up/upload",
            "bytes/event",
            "p50",
            "p99",
        ],
    );
    let uploaders: Vec<String> = s
        .groups
        .iter()
        .filter(|g| g.uploads > 0)
        .map(|g| {
            format!(
                "`{}` ({}) {} B",
                g.name,
                g.options,
                fixed(g.bytes_up as f64 / g.uploads as f64, 0)
            )
        })
        .collect();
    if !uploaders.is_empty() {
        let _ = writeln!(
            out,
            "\nBytes sent upstream per uploaded event (every byte the clients wrote, connection setup included, divided by uploads): {}.",
            uploaders.join(", ")
        );
    }
    out
}

fn fanout(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "clients",
            "delivered / expected",
            "p50",
            "p99",
            "max",
            "bytes/event",
        ],
    );
    let _ = writeln!(
        out,
        "\n{} events published at {}/s, each written to {} sockets.",
        s.publisher.published,
        fixed(s.publisher.rate_per_s, 0),
        s.groups.iter().map(|g| g.clients).sum::<u64>()
    );
    out
}

/// The groups that receive pushed events (not the uploaders: beacon, chat).
fn push_groups(s: &Summary) -> Vec<&GroupSummary> {
    s.groups
        .iter()
        .filter(|g| g.delivered > 0 && !matches!(g.strategy.as_str(), "beacon" | "chat"))
        .collect()
}

/// Wire bytes per second per client of `g`: bytes per event times the events each
/// client received per second, split into (payload, overhead).
pub fn per_client_rate(g: &GroupSummary, s: &Summary) -> (f64, f64) {
    if g.clients == 0 || s.duration_s <= 0.0 {
        return (0.0, 0.0);
    }
    let events_per_s = g.delivered as f64 / g.clients as f64 / s.duration_s;
    let (p, o) = bytes_split(g);
    (p * events_per_s, o * events_per_s)
}

fn mbit(bytes_per_s: f64) -> f64 {
    bytes_per_s * 8.0 / 1e6
}

fn scale(s: &Summary, _raw: &serde_json::Value) -> String {
    let mut header = vec![
        "group".to_owned(),
        "bytes/event".to_owned(),
        "overhead/event".to_owned(),
        "events/s per client".to_owned(),
    ];
    header.extend(
        SCALES
            .iter()
            .map(|n| format!("overhead at {}k clients", n / 1000)),
    );
    let groups = push_groups(s);
    let rows = groups
        .iter()
        .map(|g| {
            let (_, o) = bytes_split(g);
            let (_, orate) = per_client_rate(g, s);
            let mut row = vec![
                format!("`{}`", g.name),
                format!("{} B", fixed(per_event(g), 0)),
                format!("{} B", fixed(o, 0)),
                fixed(
                    g.delivered as f64 / g.clients.max(1) as f64 / s.duration_s.max(1e-9),
                    2,
                ),
            ];
            row.extend(
                SCALES
                    .iter()
                    .map(|n| format!("{} Mbit/s", fixed(mbit(orate * *n as f64), 2))),
            );
            row
        })
        .collect();
    let right = (0..header.len()).map(|i| i > 0).collect();
    let mut out = to_markdown(&[Block::Table {
        header,
        right,
        rows,
    }]);
    let mut by_cost: Vec<(&GroupSummary, f64)> = groups
        .iter()
        .map(|g| (*g, per_client_rate(g, s).1))
        .collect();
    by_cost.sort_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some((c, cr)), Some((d, dr))) = (by_cost.first(), by_cost.last()) {
        let n = SCALES[SCALES.len() - 1];
        let _ = writeln!(
            out,
            "\nAt {}k clients, each receiving events as fast as in this run, `{}` spends {} Mbit/s on protocol overhead alone and `{}` {} Mbit/s.",
            n / 1000,
            d.name,
            fixed(mbit(dr * n as f64), 1),
            c.name,
            fixed(mbit(cr * n as f64), 2)
        );
    }
    out
}

/// Draws `overhead-at-scale.{svg,png}`: one panel per client count, protocol overhead
/// in Mbit/s per group (each panel its own scale, values printed on the bars).
pub fn scale_chart(s: &Summary, dir: &Path) -> Result<(), String> {
    let groups = push_groups(s);
    let panels = SCALES
        .iter()
        .map(|n| {
            Plot::Bars(Bars {
                title: format!("{}k clients", n / 1000),
                y_desc: "protocol overhead (Mbit/s)".to_owned(),
                categories: groups.iter().map(|g| g.name.clone()).collect(),
                series: vec![BarSeries {
                    label: "overhead".to_owned(),
                    values: groups
                        .iter()
                        .map(|g| mbit(per_client_rate(g, s).1 * *n as f64))
                        .collect(),
                    color: color(1),
                }],
                stacked: false,
                y_max: None,
                value_label: pushbench_report::charts::draw::short_number,
            })
        })
        .collect();
    let title = format!(
        "Protocol overhead at 1k, 10k, 100k clients, projected from the {} run",
        s.scenario
    );
    let plot = Plot::Grid {
        title: title.clone(),
        columns: 1,
        panels,
        legend: Vec::new(),
    };
    write_chart(
        dir,
        "overhead-at-scale",
        &title,
        &plot,
        (SIZE.0, SIZE.1 * 3 / 2),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

fn interval_dilemma(s: &Summary, raw: &serde_json::Value) -> String {
    let mut out = table(
        s,
        raw,
        &[
            "requests/s per client",
            "empty",
            "bytes/event",
            "overhead/event",
            "p50",
            "p99",
        ],
    );
    let polls: Vec<&GroupSummary> = s
        .groups
        .iter()
        .filter(|g| g.strategy == "poll" && g.delivered > 0)
        .collect();
    if let (Some(fast), Some(slow)) = (polls.first(), polls.last()) {
        let _ = write!(
            out,
            "\nFrom `{}` to `{}`: the median wait grew from {} to {}, and the wire bytes per event fell from {} B to {} B.",
            fast.name,
            slow.name,
            latency(&fast.latency_us, fast.latency_us.p50),
            latency(&slow.latency_us, slow.latency_us.p50),
            fixed(per_event(fast), 0),
            fixed(per_event(slow), 0),
        );
    }
    if let Some(g) = s
        .groups
        .iter()
        .find(|g| g.strategy == "sse" && g.delivered > 0)
    {
        let _ = write!(
            out,
            " `{}` delivered at a median of {} for {} B per event.",
            g.name,
            latency(&g.latency_us, g.latency_us.p50),
            fixed(per_event(g), 0)
        );
    }
    out.push('\n');
    out
}

/// One bar chart panel: a value per category, in one color, titled as its series.
fn bar_panel(title: &str, y: &str, categories: &[String], values: Vec<f64>, c: usize) -> Plot {
    Plot::Bars(Bars {
        title: title.to_owned(),
        y_desc: y.to_owned(),
        categories: categories.to_vec(),
        series: vec![BarSeries {
            label: title.to_owned(),
            values,
            color: color(c),
        }],
        stacked: false,
        y_max: None,
        value_label: pushbench_report::charts::draw::short_number,
    })
}

/// Draws `interval-dilemma.{svg,png}`: median latency and wire bytes per event per
/// group, side by side, so the two costs of an interval read at one glance.
pub fn dilemma_chart(s: &Summary, dir: &Path) -> Result<(), String> {
    let groups: Vec<&GroupSummary> = s.groups.iter().filter(|g| g.delivered > 0).collect();
    let categories: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let panel = |title: &str, y: &str, values: Vec<f64>, c: usize| {
        bar_panel(title, y, &categories, values, c)
    };
    let plot = Plot::Grid {
        title: "The polling interval dilemma: wait less, pay more".to_owned(),
        columns: 2,
        panels: vec![
            panel(
                "Median delivery latency",
                "p50 latency (ms)",
                groups
                    .iter()
                    .map(|g| g.latency_us.p50 as f64 / 1000.0)
                    .collect(),
                4,
            ),
            panel(
                "Wire bytes per delivered event",
                "bytes per event (up + down)",
                groups.iter().map(|g| per_event(g)).collect(),
                1,
            ),
        ],
        legend: Vec::new(),
    };
    write_chart(
        dir,
        "interval-dilemma",
        "The polling interval dilemma",
        &plot,
        SIZE,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Draws `fault-outcomes.{svg,png}` for a fault run: per group, the median time to
/// detect the dead connection and to deliver again, the events lost and the most
/// connections opened in one second. A group that never detected has no bar.
pub fn outcomes_chart(s: &Summary, raw: &serde_json::Value, dir: &Path) -> Result<(), String> {
    let categories: Vec<String> = s.groups.iter().map(|g| g.name.clone()).collect();
    let xs: Vec<Extra> = s.groups.iter().map(|g| extra(raw, &g.name)).collect();
    let panel = |title: &str, y: &str, values: Vec<f64>, c: usize| {
        bar_panel(title, y, &categories, values, c)
    };
    let median = |n: u64, us: u64| if n == 0 { f64::NAN } else { us as f64 / 1e6 };
    let plot = Plot::Grid {
        title: format!("What the fault did to each group ({})", s.scenario),
        columns: 2,
        panels: vec![
            panel(
                "Time to detect the dead connection (median)",
                "seconds after the fault began",
                xs.iter()
                    .map(|x| median(x.detections, x.detect_us_p50))
                    .collect(),
                4,
            ),
            panel(
                "Time to deliver again (median)",
                "seconds after the link was back",
                xs.iter()
                    .map(|x| median(x.recoveries, x.recover_us_p50))
                    .collect(),
                2,
            ),
            panel(
                "Events lost",
                "events",
                s.groups.iter().map(|g| g.lost as f64).collect(),
                5,
            ),
            panel(
                "Reconnect storm: most connections opened in one second",
                "connections per second",
                xs.iter().map(|x| x.reconnect_peak_per_s as f64).collect(),
                1,
            ),
        ],
        legend: Vec::new(),
    };
    write_chart(
        dir,
        "fault-outcomes",
        "What the fault did to each group",
        &plot,
        SIZE,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Re-encodes every PNG under `dir` with the strongest compression and adaptive
/// filtering (plotters writes fast, large PNGs): the committed charts stay small.
/// A PNG that does not decode is left as it is.
fn recompress_pngs(dir: &Path) {
    use image::ImageEncoder as _;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|x| x != "png") {
                continue;
            }
            let Ok(img) = image::open(&path) else {
                continue;
            };
            let rgb = img.to_rgb8();
            let mut out = Vec::new();
            let encoder =
                PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive);
            let before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if encoder
                .write_image(&rgb, rgb.width(), rgb.height(), image::ColorType::Rgb8)
                .is_ok()
                && (out.len() as u64) < before
            {
                let _ = std::fs::write(&path, &out);
            }
        }
    }
}
