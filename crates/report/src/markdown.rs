//! `report.md`: the document of a run, built once as [`Block`]s and rendered to
//! Markdown here and to HTML in [`crate::html`], so the two never disagree.
//!
//! Order: caveats first (partial run, saturated load generator, warnings), then what
//! was run, the summary table, the findings, the charts, the resolved scenario.

use pushbench_protocol::record::{GroupSummary, Meta, Summary};

use crate::charts::ChartFile;
use crate::charts::source::RunData;
use crate::findings;
use crate::numbers::{bytes_per_event, fixed, latency, ms, percent};

/// One block of the report. Text is Markdown inline text: only `code` spans are used.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A heading of level 1 to 3.
    Heading(u8, String),
    /// A paragraph.
    Para(String),
    /// A bulleted list.
    Bullets(Vec<String>),
    /// Things the reader must know before trusting the numbers.
    Caveats(Vec<String>),
    /// A table; `right[i]` aligns column i to the right (numbers).
    Table {
        /// Column names.
        header: Vec<String>,
        /// Right alignment per column.
        right: Vec<bool>,
        /// Cells.
        rows: Vec<Vec<String>>,
    },
    /// A code block.
    Code {
        /// Language tag (`toml`).
        lang: String,
        /// The code.
        text: String,
    },
    /// A chart: SVG and PNG paths relative to the document.
    Chart {
        /// Title.
        title: String,
        /// Relative path of the SVG.
        svg: String,
        /// Relative path of the PNG.
        png: String,
        /// How to read it (empty for none).
        caption: String,
    },
}

/// The report of one run.
pub fn build_document(data: &RunData, charts: &[ChartFile]) -> Vec<Block> {
    let s = &data.run.summary;
    let mut doc = vec![Block::Heading(
        1,
        format!("pushbench report: {}", s.scenario),
    )];
    let caveats = findings::caveats(s);
    if !caveats.is_empty() {
        doc.push(Block::Caveats(caveats));
    }
    doc.push(Block::Heading(2, "What was run".to_owned()));
    if !s.description.trim().is_empty() {
        doc.push(Block::Para(s.description.trim().to_owned()));
    }
    doc.push(Block::Bullets(run_facts(s, &data.run.meta)));

    doc.push(Block::Heading(2, "Summary".to_owned()));
    if s.groups.is_empty() {
        doc.push(Block::Para("The run has no groups.".to_owned()));
    } else {
        doc.push(summary_table(&s.groups));
        doc.push(Block::Para(
            "Latency is corrected for coordinated omission (from the intended publish time). Bytes per event count everything the clients wrote and read on their sockets, divided by distinct events delivered.".to_owned(),
        ));
    }

    doc.push(Block::Heading(2, "Findings".to_owned()));
    let f: Vec<String> = findings::findings(s).into_iter().map(|f| f.text).collect();
    if f.is_empty() {
        doc.push(Block::Para(
            "No finding: no group delivered any event.".to_owned(),
        ));
    } else {
        doc.push(Block::Bullets(f));
    }

    doc.push(Block::Heading(2, "Charts".to_owned()));
    for c in charts {
        doc.push(Block::Chart {
            title: c.title.clone(),
            svg: relative(&c.svg),
            png: relative(&c.png),
            caption: crate::charts::run::how_to_read(&c.name).to_owned(),
        });
    }
    let mut missing = Vec::new();
    if data.arrivals.is_empty() {
        missing.push(format!(
            "No arrival timeline: the run folder has no `{}` (sampled per-client arrivals).",
            crate::charts::source::ARRIVALS_CSV
        ));
    }
    if data.server_cost.is_empty() {
        missing.push(
            "No server cost chart: the run did not measure server CPU or memory per group."
                .to_owned(),
        );
    }
    missing.extend(data.notes.iter().cloned());
    if !missing.is_empty() {
        doc.push(Block::Bullets(missing));
    }

    if !data.run.scenario_toml.trim().is_empty() {
        doc.push(Block::Heading(2, "Resolved scenario".to_owned()));
        doc.push(Block::Code {
            lang: "toml".to_owned(),
            text: data.run.scenario_toml.trim_end().to_owned(),
        });
    }
    doc
}

/// `charts/<file>`: chart paths as the report links them (always `/`).
fn relative(path: &std::path::Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}/{file}", crate::charts::run::CHARTS_DIR)
}

fn run_facts(s: &Summary, m: &Meta) -> Vec<String> {
    let p = &s.publisher;
    let mut out = vec![
        format!(
            "Scenario `{}`, started {}, measured for {} s.",
            s.scenario,
            s.started_at,
            fixed(s.duration_s, 1)
        ),
        format!(
            "Target: {} ({}).",
            s.target,
            if s.embedded_server {
                "the built-in server, in-process"
            } else {
                "an external server"
            }
        ),
        format!(
            "Publisher: {} events at {} per second to {} topic{}, {} B payload; send lag behind schedule p99 {}, max {}.",
            p.published,
            trim_float(p.rate_per_s),
            p.topics,
            if p.topics == 1 { "" } else { "s" },
            p.payload_bytes,
            ms(p.lag_us.p99),
            ms(p.lag_us.max)
        ),
        format!(
            "Load generator: {} CPU seconds, {} of the machine.",
            fixed(s.loadgen.cpu_s, 1),
            percent(s.loadgen.cpu_share)
        ),
        format!(
            "Machine: `{}`, {}, {} core{}.",
            m.host,
            m.os,
            m.cores,
            if m.cores == 1 { "" } else { "s" }
        ),
        format!(
            "pushbench {}{}; command `{}`.",
            m.version,
            m.git_revision
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            m.command
        ),
    ];
    if !m.clock.trim().is_empty() {
        out.push(format!("Clock: {}.", m.clock.trim().trim_end_matches('.')));
    }
    out
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The summary table: one row per group.
pub fn summary_table(groups: &[GroupSummary]) -> Block {
    let header = [
        "group",
        "strategy",
        "options",
        "clients",
        "delivered / expected",
        "coherence",
        "dup",
        "reordered",
        "lost",
        "gaps",
        "p50",
        "p99",
        "p99.9",
        "max",
        "bytes/event",
        "requests",
        "errors",
    ];
    let right = header
        .iter()
        .map(|h| !matches!(*h, "group" | "strategy" | "options"))
        .collect();
    let rows = groups
        .iter()
        .map(|g| {
            vec![
                format!("`{}`", g.name),
                g.strategy.clone(),
                g.options.clone(),
                g.clients.to_string(),
                format!("{} / {}", g.delivered, g.expected),
                percent(g.coherence),
                g.duplicates.to_string(),
                g.reordered.to_string(),
                g.lost.to_string(),
                g.gaps.to_string(),
                latency(&g.latency_us, g.latency_us.p50),
                latency(&g.latency_us, g.latency_us.p99),
                latency(&g.latency_us, g.latency_us.p999),
                latency(&g.latency_us, g.latency_us.max),
                bytes_per_event(g),
                g.requests.to_string(),
                g.errors.to_string(),
            ]
        })
        .collect();
    Block::Table {
        header: header.iter().map(|h| (*h).to_owned()).collect(),
        right,
        rows,
    }
}

/// Renders blocks as GitHub-flavoured Markdown.
pub fn to_markdown(doc: &[Block]) -> String {
    let mut out = String::new();
    for b in doc {
        match b {
            Block::Heading(level, text) => {
                out.push_str(&"#".repeat(usize::from(*level).clamp(1, 6)));
                out.push(' ');
                out.push_str(text);
                out.push('\n');
            }
            Block::Para(text) => {
                out.push_str(text);
                out.push('\n');
            }
            Block::Bullets(items) => {
                for i in items {
                    out.push_str("- ");
                    out.push_str(&i.replace('\n', " "));
                    out.push('\n');
                }
            }
            Block::Caveats(items) => {
                out.push_str("> **Read this first.**\n>\n");
                for i in items {
                    out.push_str("> - ");
                    out.push_str(&i.replace('\n', " "));
                    out.push('\n');
                }
            }
            Block::Table {
                header,
                right,
                rows,
            } => {
                out.push_str(&table_row(header));
                let rule: Vec<String> = (0..header.len())
                    .map(|i| {
                        if right.get(i).copied().unwrap_or(false) {
                            "---:".to_owned()
                        } else {
                            "---".to_owned()
                        }
                    })
                    .collect();
                out.push_str(&table_row(&rule));
                for r in rows {
                    out.push_str(&table_row(r));
                }
            }
            Block::Code { lang, text } => {
                let fence = if text.contains("```") { "````" } else { "```" };
                out.push_str(&format!("{fence}{lang}\n{text}\n{fence}\n"));
            }
            Block::Chart {
                title,
                svg,
                png,
                caption,
            } => {
                out.push_str(&format!("### {title}\n\n![{title}]({svg})\n\n"));
                if !caption.is_empty() {
                    out.push_str(&format!("{caption} "));
                }
                out.push_str(&format!("[PNG]({png})\n"));
            }
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn table_row<S: AsRef<str>>(cells: &[S]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|c| c.as_ref().replace('|', "\\|").replace('\n', " "))
        .collect();
    format!("| {} |\n", cells.join(" | "))
}
