//! `latency.hlog`: HdrHistogram's interval log format, the one the Java
//! `HistogramLogWriter` writes and `HistogramLogProcessor` / HdrHistogramVisualizer
//! read: header comments, `#[StartTime: ...]`, `#[BaseTime: ...]`, the legend line,
//! then one line per interval, `Tag=<group>,<start s>,<length s>,<max>,<base64>`, the
//! histogram V2-encoded and DEFLATE-compressed.
//!
//! Values are microseconds. `Interval_Max` is divided by [`MAX_VALUE_DIVISOR`] so it
//! reads in milliseconds, as in Java-written logs. Interval lines are formatted here
//! rather than through the crate's `IntervalLogWriter` because that writer cannot
//! emit the legend line Java's tools write after the header.

use std::fmt::Write as _;
use std::io::Cursor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use pushbench_protocol::record::IntervalHistogram;

use crate::layout::rfc3339;

/// `Interval_Max` = the interval's max (microseconds) / this, i.e. milliseconds.
pub const MAX_VALUE_DIVISOR: f64 = 1000.0;

/// The legend line Java's `HistogramLogWriter.outputLegend()` writes.
pub const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// A tag as the format allows it: no `,`, space, `\r` or `\n` (each becomes `_`).
pub fn tag_for(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, ',' | ' ' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Renders intervals as the text of a `.hlog` file. `StartTime` and `BaseTime` are
/// both the earliest interval start (or `fallback_start` when there is none), and
/// interval timestamps are seconds since it, so Java's reader applies no heuristic.
pub fn render(
    intervals: &[IntervalHistogram],
    fallback_start: SystemTime,
) -> Result<String, String> {
    let base_ms = intervals
        .iter()
        .map(|i| i.start_ms)
        .min()
        .unwrap_or_else(|| {
            fallback_start
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64
        });
    let base = UNIX_EPOCH + Duration::from_millis(base_ms);
    let base_s = format!("{}.{:03}", base_ms / 1000, base_ms % 1000);

    let mut out = String::new();
    // Writes to a String cannot fail; `let _ =` keeps that visible instead of unwrap.
    let _ = writeln!(
        out,
        "#[pushbench latency log: values in microseconds; one interval per second per group; tag <group> = latency from the intended publish time, <group>.uncorrected = from the actual send time]"
    );
    let _ = writeln!(out, "#[Histogram log format version 1.3]");
    let _ = writeln!(
        out,
        "#[StartTime: {base_s} (seconds since epoch), {}]",
        rfc3339(base)
    );
    let _ = writeln!(out, "#[BaseTime: {base_s} (seconds since epoch)]");
    let _ = writeln!(out, "#[MaxValueDivisor: {MAX_VALUE_DIVISOR:.3}]");
    let _ = writeln!(out, "{LEGEND}");

    let mut serializer = V2DeflateSerializer::new();
    let mut buf = Vec::new();
    for interval in intervals {
        buf.clear();
        serializer
            .serialize(&interval.histogram, &mut buf)
            .map_err(|e| {
                format!(
                    "interval `{}` at {} ms: {e:?}",
                    interval.tag, interval.start_ms
                )
            })?;
        let offset = interval.start_ms - base_ms;
        let _ = writeln!(
            out,
            "Tag={},{}.{:03},{}.{:03},{:.3},{}",
            tag_for(&interval.tag),
            offset / 1000,
            offset % 1000,
            interval.duration_ms / 1000,
            interval.duration_ms % 1000,
            interval.histogram.max() as f64 / MAX_VALUE_DIVISOR,
            base64::engine::general_purpose::STANDARD.encode(&buf),
        );
    }
    Ok(out)
}

/// Reads a `.hlog` back with the hdrhistogram crate's own parser: absolute interval
/// start times (BaseTime added when present), tags, decoded histograms.
pub fn parse(bytes: &[u8]) -> Result<Vec<IntervalHistogram>, String> {
    let mut base = Duration::ZERO;
    let mut start_time = None;
    let mut have_base = false;
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        match entry.map_err(|e| format!("unparsable line: {e:?}"))? {
            LogEntry::BaseTime(b) => {
                base = b;
                have_base = true;
            }
            LogEntry::StartTime(s) => start_time = Some(s),
            LogEntry::Interval(i) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(i.encoded_histogram())
                    .map_err(|e| {
                        format!("interval at {:?}: bad base64: {e}", i.start_timestamp())
                    })?;
                let histogram = deserializer
                    .deserialize(&mut Cursor::new(raw))
                    .map_err(|e| {
                        format!(
                            "interval at {:?}: bad histogram: {e:?}",
                            i.start_timestamp()
                        )
                    })?;
                // Java's rule without BaseTime: timestamps far (over a year) below
                // StartTime are deltas from it, others are absolute.
                let offset = if have_base {
                    base
                } else {
                    match start_time {
                        Some(s) if i.start_timestamp() + Duration::from_secs(365 * 86_400) < s => s,
                        _ => Duration::ZERO,
                    }
                };
                out.push(IntervalHistogram {
                    tag: i.tag().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                    start_ms: (offset + i.start_timestamp()).as_millis() as u64,
                    duration_ms: i.duration().as_millis() as u64,
                    histogram,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushbench_protocol::record::latency_histogram;

    #[test]
    fn header_has_java_lines_in_order() {
        let text = render(&[], UNIX_EPOCH + Duration::from_millis(1_795_246_200_250)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[2],
            "#[StartTime: 1795246200.250 (seconds since epoch), 2026-11-21T07:30:00.250Z]"
        );
        assert_eq!(
            lines[3],
            "#[BaseTime: 1795246200.250 (seconds since epoch)]"
        );
        assert_eq!(lines[4], "#[MaxValueDivisor: 1000.000]");
        assert_eq!(lines[5], LEGEND);
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn interval_line_shape_and_tag_sanitised() {
        let mut h = latency_histogram();
        h.record(1500).unwrap();
        let intervals = vec![IntervalHistogram {
            tag: "my group".into(),
            start_ms: 1_795_246_201_000,
            duration_ms: 1000,
            histogram: h,
        }];
        let text = render(&intervals, UNIX_EPOCH).unwrap();
        let line = text.lines().last().unwrap();
        assert!(
            line.starts_with("Tag=my_group,0.000,1.000,1.500,HISTF"),
            "{line}"
        );
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back[0].start_ms, 1_795_246_201_000);
        assert_eq!(back[0].histogram.max(), intervals[0].histogram.max());
    }
}
