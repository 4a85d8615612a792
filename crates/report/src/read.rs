//! Reading a run folder back (for `pushbench report` and `compare`).

use std::path::{Path, PathBuf};

use pushbench_protocol::record::{IntervalHistogram, Meta, Summary, TimeseriesRow};
use serde::de::DeserializeOwned;

use crate::layout::{LATENCY_HLOG, META_FILE, SCENARIO_FILE, SUMMARY_JSON, TIMESERIES_CSV};
use crate::{ReportError, hlog, tables};

/// A run folder as read back from disk.
#[derive(Clone, Debug)]
pub struct LoadedRun {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// `summary.json`.
    pub summary: Summary,
    /// `meta.json`.
    pub meta: Meta,
    /// `timeseries.csv`.
    pub timeseries: Vec<TimeseriesRow>,
    /// `scenario.resolved.toml`, as text.
    pub scenario_toml: String,
}

/// Reads `summary.json`, `meta.json`, `timeseries.csv` and `scenario.resolved.toml`
/// from `dir`. A missing `summary.json` means the run never finished writing.
pub fn read_run(dir: &Path) -> Result<LoadedRun, ReportError> {
    let summary = read_json(&dir.join(SUMMARY_JSON))?;
    let meta = read_json(&dir.join(META_FILE))?;
    let ts_path = dir.join(TIMESERIES_CSV);
    let timeseries =
        tables::parse_timeseries(&read_text(&ts_path)?).map_err(|(line, detail)| {
            ReportError::Csv {
                path: ts_path.clone(),
                line,
                detail,
            }
        })?;
    let scenario_toml = read_text(&dir.join(SCENARIO_FILE))?;
    Ok(LoadedRun {
        dir: dir.to_owned(),
        summary,
        meta,
        timeseries,
        scenario_toml,
    })
}

/// Reads `latency.hlog` from `dir`: every interval with its tag, absolute start time
/// and decoded histogram.
pub fn read_intervals(dir: &Path) -> Result<Vec<IntervalHistogram>, ReportError> {
    let path = dir.join(LATENCY_HLOG);
    let bytes = std::fs::read(&path).map_err(|e| ReportError::io(&path, e))?;
    hlog::parse(&bytes).map_err(|detail| ReportError::Hlog { path, detail })
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|e| ReportError::io(path, e))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    serde_json::from_str(&read_text(path)?).map_err(|source| ReportError::Json {
        path: path.to_owned(),
        source,
    })
}
