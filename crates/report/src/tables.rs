//! The two CSV tables and their column order, in one place (documented in
//! `docs/results.md`): `summary.csv`, one row per group, and `timeseries.csv`, one
//! row per second per group. Nested JSON fields are flattened with `_`
//! (`latency_us.p50` becomes `latency_us_p50`), so a column is easy to find in
//! `summary.json` too.

use std::collections::BTreeMap;

use pushbench_protocol::record::{GroupSummary, Percentiles, Summary, TimeseriesRow};

use crate::csv;

/// A column of `summary.csv`: its header and how to render it from the run and one group.
type SummaryColumn = (&'static str, fn(&Summary, &GroupSummary) -> String);

/// A sub-column of a latency block: its suffix and how to render it.
type PercentileColumn = (&'static str, fn(&Percentiles) -> String);

fn percentile_columns() -> [PercentileColumn; 7] {
    [
        ("count", |p| p.count.to_string()),
        ("p50", |p| p.p50.to_string()),
        ("p90", |p| p.p90.to_string()),
        ("p99", |p| p.p99.to_string()),
        ("p999", |p| p.p999.to_string()),
        ("max", |p| p.max.to_string()),
        ("mean", |p| fmt_f64(p.mean)),
    ]
}

/// The columns of `summary.csv` before and after the two latency blocks.
const SUMMARY_HEAD: [SummaryColumn; 13] = [
    ("scenario", |s, _| s.scenario.clone()),
    ("partial", |s, _| s.partial.to_string()),
    ("group", |_, g| g.name.clone()),
    ("strategy", |_, g| g.strategy.clone()),
    ("options", |_, g| g.options.clone()),
    ("clients", |_, g| g.clients.to_string()),
    ("expected", |_, g| g.expected.to_string()),
    ("delivered", |_, g| g.delivered.to_string()),
    ("duplicates", |_, g| g.duplicates.to_string()),
    ("reordered", |_, g| g.reordered.to_string()),
    ("lost", |_, g| g.lost.to_string()),
    ("gaps", |_, g| g.gaps.to_string()),
    ("coherence", |_, g| fmt_f64(g.coherence)),
];

const SUMMARY_TAIL: [SummaryColumn; 22] = [
    ("bytes_up", |_, g| g.bytes_up.to_string()),
    ("bytes_down", |_, g| g.bytes_down.to_string()),
    ("payload_bytes_down", |_, g| {
        g.payload_bytes_down.to_string()
    }),
    ("wire_bytes_per_event", |_, g| {
        fmt_f64(g.wire_bytes_per_event)
    }),
    ("requests", |_, g| g.requests.to_string()),
    ("empty_responses", |_, g| g.empty_responses.to_string()),
    ("not_modified", |_, g| g.not_modified.to_string()),
    ("connections_opened", |_, g| {
        g.connections_opened.to_string()
    }),
    ("reconnects", |_, g| g.reconnects.to_string()),
    ("errors", |_, g| g.errors.to_string()),
    ("errors_by_kind", |_, g| fmt_kinds(&g.errors_by_kind)),
    ("uploads", |_, g| g.uploads.to_string()),
    // Run-level, repeated on each row so rows from several runs can be stacked.
    ("publisher_lag_us_p99", |s, _| {
        s.publisher.lag_us.p99.to_string()
    }),
    // Fault outcomes (appended after the run-level column: columns only ever append).
    ("detections", |_, g| g.detections.to_string()),
    ("detect_us_p50", |_, g| g.detect_us_p50.to_string()),
    ("detect_us_max", |_, g| g.detect_us_max.to_string()),
    ("recoveries", |_, g| g.recoveries.to_string()),
    ("recover_us_p50", |_, g| g.recover_us_p50.to_string()),
    ("recover_us_max", |_, g| g.recover_us_max.to_string()),
    ("lost_per_reconnect", |_, g| fmt_f64(g.lost_per_reconnect)),
    ("duplicates_per_reconnect", |_, g| {
        fmt_f64(g.duplicates_per_reconnect)
    }),
    ("reconnect_peak_per_s", |_, g| {
        g.reconnect_peak_per_s.to_string()
    }),
];

/// The header of `summary.csv`, in order.
pub fn summary_header() -> Vec<String> {
    let mut names: Vec<String> = SUMMARY_HEAD.iter().map(|(n, _)| (*n).to_owned()).collect();
    for block in ["latency_us", "latency_uncorrected_us"] {
        for (n, _) in percentile_columns() {
            names.push(format!("{block}_{n}"));
        }
    }
    names.extend(SUMMARY_TAIL.iter().map(|(n, _)| (*n).to_owned()));
    names
}

/// `summary.csv`: the header and one row per group, in the scenario's group order.
pub fn summary_csv(summary: &Summary) -> String {
    let mut out = String::new();
    csv::push_row(&mut out, &summary_header());
    for g in &summary.groups {
        let mut row: Vec<String> = SUMMARY_HEAD.iter().map(|(_, f)| f(summary, g)).collect();
        for p in [&g.latency_us, &g.latency_uncorrected_us] {
            row.extend(percentile_columns().iter().map(|(_, f)| f(p)));
        }
        row.extend(SUMMARY_TAIL.iter().map(|(_, f)| f(summary, g)));
        csv::push_row(&mut out, &row);
    }
    out
}

/// The header of `timeseries.csv`, in order.
pub const TIMESERIES_HEADER: [&str; 9] = [
    "second",
    "group",
    "deliveries",
    "p99_us",
    "open_connections",
    "bytes_up",
    "bytes_down",
    "errors",
    "published",
];

/// `timeseries.csv`: the header and one row per second per group, in the given order.
pub fn timeseries_csv(rows: &[TimeseriesRow]) -> String {
    let mut out = String::new();
    csv::push_row(&mut out, &TIMESERIES_HEADER);
    for r in rows {
        csv::push_row(
            &mut out,
            &[
                r.second.to_string(),
                r.group.clone(),
                r.deliveries.to_string(),
                r.p99_us.to_string(),
                r.open_connections.to_string(),
                r.bytes_up.to_string(),
                r.bytes_down.to_string(),
                r.errors.to_string(),
                r.published.to_string(),
            ],
        );
    }
    out
}

/// Parses `timeseries.csv` text. Columns are found by header name, so a file with
/// extra columns (a newer writer) still reads. Errors are (line, what was wrong).
pub fn parse_timeseries(text: &str) -> Result<Vec<TimeseriesRow>, (usize, String)> {
    let rows = csv::parse(text)?;
    let Some((header, body)) = rows.split_first() else {
        return Err((1, "empty file: expected a header row".to_owned()));
    };
    let mut index = [0usize; TIMESERIES_HEADER.len()];
    for (slot, name) in index.iter_mut().zip(TIMESERIES_HEADER) {
        *slot = header
            .fields
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| {
                (
                    header.line,
                    format!("missing column `{name}` in the header"),
                )
            })?;
    }
    body.iter()
        .map(|row| {
            let field = |i: usize| -> Result<&str, (usize, String)> {
                row.fields.get(index[i]).map(String::as_str).ok_or_else(|| {
                    (
                        row.line,
                        format!(
                            "row has {} fields, header has {}",
                            row.fields.len(),
                            header.fields.len()
                        ),
                    )
                })
            };
            let int = |i: usize| -> Result<u64, (usize, String)> {
                let v = field(i)?;
                v.parse().map_err(|_| {
                    (
                        row.line,
                        format!(
                            "column `{}`: `{v}` is not a non-negative integer",
                            TIMESERIES_HEADER[i]
                        ),
                    )
                })
            };
            let second = field(0)?;
            Ok(TimeseriesRow {
                second: second.parse().map_err(|_| {
                    (
                        row.line,
                        format!("column `second`: `{second}` is not an integer"),
                    )
                })?,
                group: field(1)?.to_owned(),
                deliveries: int(2)?,
                p99_us: int(3)?,
                open_connections: int(4)?,
                bytes_up: int(5)?,
                bytes_down: int(6)?,
                errors: int(7)?,
                published: int(8)?,
            })
        })
        .collect()
}

/// Shortest text that reads back as the same f64 (`0.5`, `1`, `0.1`).
fn fmt_f64(v: f64) -> String {
    format!("{v}")
}

/// `connect=2;timeout=1`: a map in one CSV field, keys sorted.
fn fmt_kinds(kinds: &BTreeMap<String, u64>) -> String {
    kinds
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON field names, nested objects flattened with `_` (maps kept whole).
    fn flattened_fields(value: serde_json::Value, keep_whole: &[&str]) -> Vec<String> {
        let serde_json::Value::Object(map) = value else {
            panic!("not an object")
        };
        let mut out = Vec::new();
        for (k, v) in map {
            match v {
                serde_json::Value::Object(inner) if !keep_whole.contains(&k.as_str()) => {
                    out.extend(inner.keys().map(|sub| format!("{k}_{sub}")))
                }
                _ => out.push(k),
            }
        }
        out
    }

    /// A field added to `GroupSummary` without a column (and a line in
    /// docs/results.md) fails here, not silently in a user's spreadsheet.
    #[test]
    fn summary_csv_has_a_column_for_every_group_field() {
        let header = summary_header();
        let fields = flattened_fields(
            serde_json::to_value(GroupSummary::default()).unwrap(),
            &["errors_by_kind"],
        );
        for f in fields {
            let column = if f == "name" { "group".to_owned() } else { f };
            assert!(
                header.contains(&column),
                "GroupSummary field `{column}` has no summary.csv column: add it in tables.rs and docs/results.md"
            );
        }
    }

    #[test]
    fn timeseries_csv_has_a_column_for_every_field() {
        let fields = flattened_fields(serde_json::to_value(TimeseriesRow::default()).unwrap(), &[]);
        for f in fields {
            assert!(
                TIMESERIES_HEADER.contains(&f.as_str()),
                "TimeseriesRow field `{f}` has no timeseries.csv column: add it in tables.rs and docs/results.md"
            );
        }
    }

    #[test]
    fn summary_rows_match_header_and_quote_names() {
        let summary = Summary {
            scenario: "s".into(),
            groups: vec![
                GroupSummary {
                    name: "a,b".into(),
                    coherence: 0.5,
                    errors_by_kind: [("connect".to_owned(), 2), ("timeout".to_owned(), 1)].into(),
                    ..Default::default()
                },
                GroupSummary::default(),
            ],
            ..Default::default()
        };
        let text = summary_csv(&summary);
        let rows = csv::parse(&text).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .all(|r| r.fields.len() == summary_header().len())
        );
        let col = |name: &str| summary_header().iter().position(|h| h == name).unwrap();
        assert_eq!(rows[1].fields[col("group")], "a,b");
        assert_eq!(rows[1].fields[col("coherence")], "0.5");
        assert_eq!(rows[1].fields[col("errors_by_kind")], "connect=2;timeout=1");
    }

    #[test]
    fn timeseries_round_trips_and_tolerates_extra_columns() {
        let rows = vec![
            TimeseriesRow {
                second: -1,
                group: "ws".into(),
                deliveries: 10,
                ..Default::default()
            },
            TimeseriesRow {
                second: 0,
                group: "a \"q\"".into(),
                p99_us: 1234,
                published: 7,
                ..Default::default()
            },
        ];
        let text = timeseries_csv(&rows);
        assert_eq!(parse_timeseries(&text).unwrap(), rows);
        let extra = "published,second,group,deliveries,p99_us,open_connections,bytes_up,bytes_down,errors,new\n1,2,g,3,4,5,6,7,8,x\n";
        let parsed = parse_timeseries(extra).unwrap();
        assert_eq!(parsed[0].published, 1);
        assert_eq!(parsed[0].errors, 8);
        let err = parse_timeseries("second,group\n").unwrap_err();
        assert!(err.1.contains("deliveries"), "{err:?}");
    }
}
