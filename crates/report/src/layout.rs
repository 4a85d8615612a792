//! The shape of a run folder: file names, and the default place a run goes,
//! `results/<scenario>/<UTC time>/` with a time like `2026-11-21T07-30-00Z`
//! (dashes instead of colons, so the name is valid on every file system).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The scenario with every default filled in (TOML).
pub const SCENARIO_FILE: &str = "scenario.resolved.toml";
/// Where and with what the run was made (JSON).
pub const META_FILE: &str = "meta.json";
/// The run's results, one entry per group (JSON). Written last: its presence marks a
/// complete folder.
pub const SUMMARY_JSON: &str = "summary.json";
/// The same per-group results as a table (CSV).
pub const SUMMARY_CSV: &str = "summary.csv";
/// Per second, per group (CSV).
pub const TIMESERIES_CSV: &str = "timeseries.csv";
/// Latency interval histograms (HdrHistogram log format, V2 + DEFLATE).
pub const LATENCY_HLOG: &str = "latency.hlog";

/// Every file [`write_run`](crate::write_run) writes, in the order it writes them.
pub const ALL_FILES: [&str; 6] = [
    SCENARIO_FILE,
    META_FILE,
    TIMESERIES_CSV,
    LATENCY_HLOG,
    SUMMARY_CSV,
    SUMMARY_JSON,
];

/// `<results_root>/<scenario>/<UTC time>`: the default folder of a run started at `at`.
/// Characters of the scenario name that are unsafe in a path become `_`.
pub fn default_run_dir(results_root: &Path, scenario: &str, at: SystemTime) -> PathBuf {
    results_root
        .join(safe_file_name(scenario))
        .join(run_dir_name(at))
}

/// `2026-11-21T07-30-00Z`: a UTC time to the second, usable as a folder name and
/// sorting in time order.
pub fn run_dir_name(at: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = utc_parts(at);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}Z")
}

/// `2026-11-21T07:30:00.123Z`: RFC 3339 UTC with milliseconds.
pub fn rfc3339(at: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = utc_parts(at);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// A scenario name as one path component: `[A-Za-z0-9_.-]` kept, anything else `_`,
/// never empty, never `.` or `..`.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "unnamed".to_owned()
    } else {
        cleaned
    }
}

/// (year, month, day, hour, minute, second, millisecond) in UTC. Times before the
/// epoch are clamped to it (no clock is that wrong on a machine running benchmarks).
fn utc_parts(at: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    (
        y,
        m,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis(),
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm);
/// a date library for one function would be the heavier choice.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_246_200_123);
        assert_eq!(run_dir_name(t), "2026-11-21T07-30-00Z");
        assert_eq!(rfc3339(t), "2026-11-21T07:30:00.123Z");
        assert_eq!(run_dir_name(UNIX_EPOCH), "1970-01-01T00-00-00Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn default_dir_is_scenario_then_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_246_200);
        assert_eq!(
            default_run_dir(Path::new("results"), "my scenario/../x", t),
            Path::new("results/my_scenario_.._x/2026-11-21T07-30-00Z")
        );
        assert_eq!(safe_file_name(".."), "unnamed");
    }
}
