//! `pushbench report DIR`: re-renders a run folder's charts, `report.md` and
//! `report.html` from the files the run saved (no server, no network), then prints
//! the same summary table `pushbench run` printed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pushbench_report::layout::SUMMARY_JSON;

use crate::table;

/// Arguments of `pushbench report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A run folder, as written by `pushbench run` (e.g. results/quickstart/<time>/).
    dir: PathBuf,
}

/// Checks that `dir` is a run folder, renders it and prints the table and paths.
pub fn main(args: ReportArgs) -> anyhow::Result<()> {
    let dir = args.dir;
    check_run_dir(&dir)?;
    let files = pushbench_report::render_report(&dir)
        .with_context(|| format!("cannot render the report of {}", dir.display()))?;
    let run = pushbench_report::read_run(&dir)
        .with_context(|| format!("cannot read the run in {}", dir.display()))?;
    print!("{}", table::render(&run.summary));
    println!();
    println!(
        "charts:  {} files in {}",
        files.charts.len() * 2,
        dir.join("charts").display()
    );
    println!("report:  {}", files.markdown.display());
    println!("html:    {}", files.html.display());
    Ok(())
}

/// A clear error for a folder that is not a finished run: missing, a file, or
/// without `summary.json` (which a run writes last). A folder of runs (such as
/// `results/quickstart/`) is named as such, with its newest run suggested.
pub fn check_run_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("{} is not a run folder: it does not exist", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!(
            "{} is not a run folder: it is a file; pass the folder `pushbench run` wrote (e.g. results/<scenario>/<time>/)",
            dir.display()
        );
    }
    if dir.join(SUMMARY_JSON).is_file() {
        return Ok(());
    }
    if let Some(newest) = newest_run_inside(dir) {
        anyhow::bail!(
            "{} is not a run folder (no {SUMMARY_JSON}) but holds runs; the newest is {}",
            dir.display(),
            newest.display()
        );
    }
    anyhow::bail!(
        "{} is not a run folder: it has no {SUMMARY_JSON} (a run writes it last, so the folder is not a pushbench run or the run never finished writing); pass the folder `pushbench run` wrote (e.g. results/<scenario>/<time>/)",
        dir.display()
    )
}

/// The last-named sub-folder holding a `summary.json` (run folders are named by UTC
/// start time, so the last name is the newest run).
fn newest_run_inside(dir: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(SUMMARY_JSON).is_file())
        .collect();
    runs.sort();
    runs.pop()
}
