//! `pushbench report DIR`: charts, `report.md` and `report.html` from a run folder
//! alone (no async runtime, nothing but the files the run wrote).

use std::path::{Path, PathBuf};

use crate::ReportError;
use crate::atomic::write_atomic;
use crate::charts::ChartFile;
use crate::charts::run::render_run_charts;
use crate::charts::source::RunData;
use crate::{html, markdown};

/// `report.md`, written into the run folder.
pub const REPORT_MD: &str = "report.md";
/// `report.html`, written into the run folder.
pub const REPORT_HTML: &str = "report.html";

/// What [`render_report`] wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// `<dir>/report.md`.
    pub markdown: PathBuf,
    /// `<dir>/report.html`.
    pub html: PathBuf,
    /// Every chart, SVG and PNG, under `<dir>/charts/`.
    pub charts: Vec<ChartFile>,
}

/// Reads the run folder `dir` and writes `charts/`, `report.md` and `report.html`
/// into it, replacing earlier ones. Fails when the folder lacks a standard file
/// (`summary.json` above all: without it the run never finished writing).
pub fn render_report(dir: &Path) -> Result<ReportFiles, ReportError> {
    let data = RunData::load(dir)?;
    let charts = render_run_charts(&data, dir)?;
    let doc = markdown::build_document(&data, &charts);
    let md_path = dir.join(REPORT_MD);
    write_atomic(&md_path, markdown::to_markdown(&doc).as_bytes())?;
    let title = format!("pushbench report: {}", data.run.summary.scenario);
    let page = html::to_html(&doc, &title, dir)?;
    let html_path = dir.join(REPORT_HTML);
    write_atomic(&html_path, page.as_bytes())?;
    Ok(ReportFiles {
        markdown: md_path,
        html: html_path,
        charts,
    })
}
