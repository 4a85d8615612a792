//! What the charts and findings are drawn from: a run folder read back, plus the
//! optional files only the report reads (`arrivals.csv`, `faults.csv`) and the
//! per-group histograms summed from `latency.hlog`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use pushbench_protocol::record::{GroupSummary, latency_histogram};

use crate::read::{LoadedRun, read_intervals, read_run};
use crate::{ReportError, csv, hlog};

/// Optional: a few sample clients' arrivals per group (see `docs/report.md`).
pub const ARRIVALS_CSV: &str = "arrivals.csv";
/// Optional: the fault timeline of the run (see `docs/report.md`).
pub const FAULTS_CSV: &str = "faults.csv";

/// One sampled delivery: which client of which group got which publisher event when.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    /// Group name.
    pub group: String,
    /// Client index within the group.
    pub client: u64,
    /// The publisher's sequence number of the event.
    pub publisher_seq: u64,
    /// Receive time, milliseconds since the start of the measured window.
    pub receive_ms: f64,
}

/// One fault window of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Fault kind (blackhole, reset, flap, restart, ...).
    pub kind: String,
    /// Start, seconds since the start of the measured window.
    pub start_s: f64,
    /// End, seconds since the start of the measured window.
    pub end_s: f64,
    /// Groups affected; empty means every group.
    pub groups: Vec<String>,
}

/// Server cost of one group, when the run measured it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerCost {
    /// Group name.
    pub group: String,
    /// Server CPU seconds spent on the group.
    pub cpu_s: Option<f64>,
    /// Server resident memory attributed to the group, bytes.
    pub rss_bytes: Option<u64>,
}

/// The whole-run latency histograms of one group.
#[derive(Clone, Debug)]
pub struct Spectrum {
    /// Latency from the intended publish time (corrected), microseconds.
    pub corrected: Histogram<u64>,
    /// Latency from the actual send time, microseconds, when the log has it.
    pub uncorrected: Option<Histogram<u64>>,
}

/// Everything the report renders from one run folder.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The folder and its standard files.
    pub run: LoadedRun,
    /// Per group name, in summary order of appearance (groups with no samples absent).
    pub spectra: BTreeMap<String, Spectrum>,
    /// `arrivals.csv`, empty when absent.
    pub arrivals: Vec<Arrival>,
    /// `faults.csv`, empty when absent.
    pub faults: Vec<Fault>,
    /// Server cost per group, only groups where it was measured.
    pub server_cost: Vec<ServerCost>,
    /// Files that were absent or unreadable and what was skipped because of it.
    pub notes: Vec<String>,
}

impl RunData {
    /// Reads `dir`: the standard files must be there (a missing `summary.json` means an
    /// unfinished run); `latency.hlog`, `arrivals.csv` and `faults.csv` are optional.
    pub fn load(dir: &Path) -> Result<RunData, ReportError> {
        let run = read_run(dir)?;
        let mut notes = Vec::new();
        let spectra = match read_intervals(dir) {
            Ok(intervals) => sum_spectra(&run.summary.groups, &intervals),
            Err(e) => {
                notes.push(format!("latency spectra skipped: {e}"));
                BTreeMap::new()
            }
        };
        let arrivals = match read_optional(&dir.join(ARRIVALS_CSV))? {
            Some((path, text)) => parse_arrivals(&path, &text)?,
            None => Vec::new(),
        };
        let faults = match read_optional(&dir.join(FAULTS_CSV))? {
            Some((path, text)) => parse_faults(&path, &text)?,
            None => Vec::new(),
        };
        let server_cost = server_cost(&dir.join(crate::layout::SUMMARY_JSON))?;
        Ok(RunData {
            run,
            spectra,
            arrivals,
            faults,
            server_cost,
            notes,
        })
    }

    /// The groups, in the order of `summary.json`.
    pub fn groups(&self) -> &[GroupSummary] {
        &self.run.summary.groups
    }
}

/// Sums the interval histograms per group: tag `<group>` is corrected latency,
/// `<group>.uncorrected` latency from the send time. Tags are matched through
/// [`hlog::tag_for`], the same mapping the writer applies.
pub fn sum_spectra(
    groups: &[GroupSummary],
    intervals: &[pushbench_protocol::record::IntervalHistogram],
) -> BTreeMap<String, Spectrum> {
    let mut out = BTreeMap::new();
    for g in groups {
        let tag = hlog::tag_for(&g.name);
        let uncorrected_tag = format!("{tag}.uncorrected");
        let mut corrected = latency_histogram();
        let mut uncorrected = latency_histogram();
        let mut have_uncorrected = false;
        for i in intervals {
            if i.tag == tag {
                // Same bounds on both sides (1 us .. 1 h); a sample outside them cannot
                // have been recorded, so `add` cannot fail in practice.
                let _ = corrected.add(&i.histogram);
            } else if i.tag == uncorrected_tag {
                have_uncorrected = true;
                let _ = uncorrected.add(&i.histogram);
            }
        }
        if corrected.is_empty() {
            continue;
        }
        out.insert(
            g.name.clone(),
            Spectrum {
                corrected,
                uncorrected: (have_uncorrected && !uncorrected.is_empty()).then_some(uncorrected),
            },
        );
    }
    out
}

fn read_optional(path: &Path) -> Result<Option<(PathBuf, String)>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((path.to_owned(), text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReportError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Rows of a CSV with a header naming at least `columns`; yields each row's fields
/// in the order of `columns`.
fn columns(
    path: &Path,
    text: &str,
    wanted: &[&str],
) -> Result<Vec<(usize, Vec<String>)>, ReportError> {
    let csv_err = |line: usize, detail: String| ReportError::Csv {
        path: path.to_owned(),
        line,
        detail,
    };
    let rows = csv::parse(text).map_err(|(line, detail)| csv_err(line, detail))?;
    let Some((header, body)) = rows.split_first() else {
        return Ok(Vec::new());
    };
    let mut idx = Vec::new();
    for w in wanted {
        let i = header
            .fields
            .iter()
            .position(|h| h.trim() == *w)
            .ok_or_else(|| {
                csv_err(
                    header.line,
                    format!(
                        "missing column `{w}`; the header must name {}",
                        wanted.join(", ")
                    ),
                )
            })?;
        idx.push(i);
    }
    body.iter()
        .filter(|r| !(r.fields.len() == 1 && r.fields[0].trim().is_empty()))
        .map(|r| {
            let fields = idx
                .iter()
                .map(|&i| {
                    r.fields.get(i).map(|f| f.trim().to_owned()).ok_or_else(|| {
                        csv_err(
                            r.line,
                            format!("{} fields, expected at least {}", r.fields.len(), i + 1),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((r.line, fields))
        })
        .collect()
}

fn number<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    what: &str,
    s: &str,
) -> Result<T, ReportError> {
    s.parse().map_err(|_| ReportError::Csv {
        path: path.to_owned(),
        line,
        detail: format!("`{what}` is `{s}`, expected a number"),
    })
}

/// Parses `arrivals.csv`: `group,client,publisher_seq,receive_ms`.
pub fn parse_arrivals(path: &Path, text: &str) -> Result<Vec<Arrival>, ReportError> {
    columns(
        path,
        text,
        &["group", "client", "publisher_seq", "receive_ms"],
    )?
    .into_iter()
    .map(|(line, f)| {
        Ok(Arrival {
            group: f[0].clone(),
            client: number(path, line, "client", &f[1])?,
            publisher_seq: number(path, line, "publisher_seq", &f[2])?,
            receive_ms: number(path, line, "receive_ms", &f[3])?,
        })
    })
    .collect()
}

/// Parses `faults.csv`: `kind,start_s,end_s,groups`, groups separated by `;`, empty
/// or `*` for all groups.
pub fn parse_faults(path: &Path, text: &str) -> Result<Vec<Fault>, ReportError> {
    columns(path, text, &["kind", "start_s", "end_s", "groups"])?
        .into_iter()
        .map(|(line, f)| {
            let groups = f[3]
                .split(';')
                .map(str::trim)
                .filter(|g| !g.is_empty() && *g != "*")
                .map(str::to_owned)
                .collect();
            Ok(Fault {
                kind: f[0].clone(),
                start_s: number(path, line, "start_s", &f[1])?,
                end_s: number(path, line, "end_s", &f[2])?,
                groups,
            })
        })
        .collect()
}

/// Server cost per group from optional fields of `summary.json`'s groups
/// (`server_cpu_s`, `server_rss_bytes`): read from the raw JSON so the schema can
/// gain them without this crate failing on runs that lack them.
fn server_cost(path: &Path) -> Result<Vec<ServerCost>, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ReportError::Json {
            path: path.to_owned(),
            source,
        })?;
    let mut out = Vec::new();
    for g in value["groups"].as_array().into_iter().flatten() {
        let cpu_s = g.get("server_cpu_s").and_then(serde_json::Value::as_f64);
        let rss_bytes = g
            .get("server_rss_bytes")
            .and_then(serde_json::Value::as_u64);
        if cpu_s.is_none() && rss_bytes.is_none() {
            continue;
        }
        out.push(ServerCost {
            group: g["name"].as_str().unwrap_or_default().to_owned(),
            cpu_s,
            rss_bytes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_files() {
        let p = Path::new("x.csv");
        let a = parse_arrivals(p, "group,client,publisher_seq,receive_ms\nsse,0,1,12.5\n").unwrap();
        assert_eq!(a[0].group, "sse");
        assert_eq!(a[0].publisher_seq, 1);
        let f = parse_faults(
            p,
            "kind,start_s,end_s,groups\nblackhole,3,5,sse;ws\nreset,7,7.5,*\n",
        )
        .unwrap();
        assert_eq!(f[0].groups, vec!["sse", "ws"]);
        assert!(f[1].groups.is_empty());
        let err = parse_faults(p, "kind,start\nx,1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing column `start_s`"), "{err}");
    }
}
