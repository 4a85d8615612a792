//! Writing a whole run folder from a [`RunRecord`].

use std::path::Path;
use std::time::SystemTime;

use pushbench_protocol::record::{ArrivalRow, FaultRow, RunRecord};
use serde::Serialize;

use crate::atomic::write_atomic;
use crate::charts::source::{ARRIVALS_CSV, FAULTS_CSV};
use crate::layout::{
    LATENCY_HLOG, META_FILE, SCENARIO_FILE, SUMMARY_CSV, SUMMARY_JSON, TIMESERIES_CSV,
};
use crate::{ReportError, csv, hlog, tables};

/// Writes every result file of `record` into `dir` (created if missing), each one
/// atomically, `summary.json` last. Existing files of the same names are replaced.
pub fn write_run(dir: &Path, record: &RunRecord) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;

    write_atomic(&dir.join(SCENARIO_FILE), record.scenario_toml.as_bytes())?;
    write_json(&dir.join(META_FILE), &record.meta)?;
    write_atomic(
        &dir.join(TIMESERIES_CSV),
        tables::timeseries_csv(&record.timeseries).as_bytes(),
    )?;
    let hlog_path = dir.join(LATENCY_HLOG);
    let hlog =
        hlog::render(&record.intervals, SystemTime::now()).map_err(|detail| ReportError::Hlog {
            path: hlog_path.clone(),
            detail,
        })?;
    write_atomic(&hlog_path, hlog.as_bytes())?;
    if !record.arrivals.is_empty() {
        write_atomic(
            &dir.join(ARRIVALS_CSV),
            arrivals_csv(&record.arrivals).as_bytes(),
        )?;
    }
    if !record.faults.is_empty() {
        write_atomic(&dir.join(FAULTS_CSV), faults_csv(&record.faults).as_bytes())?;
    }
    write_atomic(
        &dir.join(SUMMARY_CSV),
        tables::summary_csv(&record.summary).as_bytes(),
    )?;
    write_json(&dir.join(SUMMARY_JSON), &record.summary)?;
    Ok(())
}

/// `arrivals.csv` (docs/report.md): `group,client,publisher_seq,receive_ms`.
pub fn arrivals_csv(rows: &[ArrivalRow]) -> String {
    let mut out = String::new();
    csv::push_row(
        &mut out,
        &["group", "client", "publisher_seq", "receive_ms"],
    );
    for r in rows {
        csv::push_row(
            &mut out,
            &[
                r.group.clone(),
                r.client.to_string(),
                r.publisher_seq.to_string(),
                format!("{:.3}", r.receive_ms),
            ],
        );
    }
    out
}

/// `faults.csv` (docs/report.md): `kind,start_s,end_s,groups`, groups joined by `;`,
/// `*` for all.
pub fn faults_csv(rows: &[FaultRow]) -> String {
    let mut out = String::new();
    csv::push_row(&mut out, &["kind", "start_s", "end_s", "groups"]);
    for r in rows {
        csv::push_row(
            &mut out,
            &[
                r.kind.clone(),
                format!("{:.3}", r.start_s),
                format!("{:.3}", r.end_s),
                if r.groups.is_empty() {
                    "*".to_owned()
                } else {
                    r.groups.join(";")
                },
            ],
        );
    }
    out
}

/// Pretty JSON with a final newline, written atomically.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ReportError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| ReportError::Json {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}
