//! `pushbench-report`: writes one run's results to a folder and reads them back.
//!
//! Its job is the files, not the numbers: the load generator hands over a
//! [`RunRecord`](pushbench_protocol::record::RunRecord) and this crate turns it into
//! `scenario.resolved.toml`, `meta.json`, `summary.json`, `summary.csv`,
//! `timeseries.csv` and `latency.hlog` (see `docs/results.md`). It has no async
//! runtime and never prints: the binary decides what the user sees.
//!
//! # Layout
//!
//! - [`layout`]: the file names of a run folder and the default folder name.
//! - [`atomic`]: write-to-temp-then-rename, so no half-written file is ever visible.
//! - [`csv`]: the small CSV dialect used (RFC 4180 quoting), written and read.
//! - [`tables`]: the column order of `summary.csv` and `timeseries.csv`.
//! - [`hlog`]: `latency.hlog`, the HdrHistogram interval log (V2 + DEFLATE).
//! - [`write`] and [`read`]: a whole run folder.
//! - [`render`]: `report.md`, `report.html` and `charts/` from a run folder
//!   ([`render_report`]), built from [`charts`] (plotters, SVG and PNG, bundled font),
//!   [`findings`] (sentences computed from the numbers), [`markdown`] and [`html`]
//!   (one document, two renderings). See `docs/report.md`.
//! - [`numbers`]: how latencies, shares and bytes read, shared by every rendering
//!   and by the terminal table of the CLI.
//! - [`compare`](mod@compare): runs side by side with ratios, and `compare.md`.
//!
//! # Key decision
//!
//! Every file is written atomically and `summary.json` is written last, so a folder
//! with a `summary.json` is complete and a crash mid-write leaves at worst a folder
//! without one, never a truncated file. A hand-rolled CSV writer (one dialect, no
//! serde magic) rather than the `csv` crate keeps the column order explicit and
//! documented in one place, [`tables`].

pub mod atomic;
pub mod charts;
pub mod compare;
pub mod csv;
pub mod error;
pub mod findings;
pub mod hlog;
pub mod html;
pub mod layout;
pub mod markdown;
pub mod numbers;
pub mod read;
pub mod render;
pub mod tables;
pub mod write;

pub use compare::{CompareOutput, compare};
pub use error::ReportError;
pub use read::{LoadedRun, read_intervals, read_run};
pub use render::{ReportFiles, render_report};
pub use write::write_run;
