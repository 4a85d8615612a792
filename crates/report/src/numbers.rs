//! How numbers read, in every rendering: the terminal table of `pushbench run` and
//! `pushbench report`, `report.md`, `report.html`, the findings and `compare.md` all
//! format through these functions, so a value never reads 93.7% in one and 93.8% in
//! another.

use pushbench_protocol::record::{GroupSummary, Percentiles};

/// Microseconds as milliseconds with at least three significant digits:
/// `1234.5 ms`, `12.3 ms`, `1.23 ms`, `0.045 ms`.
pub fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    if v >= 10.0 {
        format!("{v:.1} ms")
    } else if v >= 1.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.3} ms")
    }
}

/// One percentile of a latency block as [`ms`], or `-` when the block has no samples
/// (its fields are then 0, which means "no data", not "no latency").
pub fn latency(p: &Percentiles, us: u64) -> String {
    if p.count == 0 { "-".to_owned() } else { ms(us) }
}

/// A ratio as a percentage with one decimal, two below 1% so small shares never read
/// 0.0%. Rounds to nearest, except that it never rounds a shortfall up to 100% (a
/// coherence of 0.9996 reads 99.9%, not 100.0%) nor a non-zero share down to zero
/// (`<0.01%`).
pub fn percent(r: f64) -> String {
    if !r.is_finite() {
        return "-".to_owned();
    }
    let p = r * 100.0;
    let decimals = if p != 0.0 && p.abs() < 1.0 { 2 } else { 1 };
    let text = format!("{p:.decimals$}");
    let shown: f64 = text.parse().unwrap_or(p);
    if p < 100.0 && shown >= 100.0 {
        return format!("{:.1}%", (p * 10.0).floor() / 10.0);
    }
    if p > 0.0 && shown == 0.0 {
        return "<0.01%".to_owned();
    }
    format!("{text}%")
}

/// Wire bytes (up + down) per delivered event, `312 B`; `-` when the group delivered
/// nothing. The value is `summary.json`'s `wire_bytes_per_event` (or its definition
/// when absent), the same the bytes chart stacks.
pub fn bytes_per_event(g: &GroupSummary) -> String {
    if g.delivered == 0 {
        return "-".to_owned();
    }
    let (payload, overhead) = crate::charts::run::bytes_split(g);
    format!("{} B", fixed(payload + overhead, 0))
}

/// A float with `decimals` digits after the point.
pub fn fixed(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_to_nearest_but_never_to_the_ends() {
        assert_eq!(percent(0.9375), "93.8%");
        assert_eq!(percent(0.92), "92.0%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.9996), "99.9%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(0.005), "0.50%");
        assert_eq!(percent(0.000_001), "<0.01%");
        assert_eq!(percent(f64::NAN), "-");
    }

    #[test]
    fn latency_has_three_digits_and_a_dash_without_samples() {
        assert_eq!(ms(850), "0.850 ms");
        assert_eq!(ms(1_234), "1.23 ms");
        assert_eq!(ms(52_345), "52.3 ms");
        assert_eq!(ms(2_500_000), "2500.0 ms");
        let none = Percentiles::default();
        assert_eq!(latency(&none, none.p50), "-");
        let some = Percentiles {
            count: 1,
            p50: 420,
            ..Default::default()
        };
        assert_eq!(latency(&some, some.p50), "0.420 ms");
    }

    #[test]
    fn bytes_per_event_is_the_wire_total() {
        let mut g = GroupSummary {
            delivered: 10,
            bytes_down: 3_000,
            bytes_up: 124,
            payload_bytes_down: 2_560,
            wire_bytes_per_event: 312.4,
            ..Default::default()
        };
        assert_eq!(bytes_per_event(&g), "312 B");
        g.delivered = 0;
        assert_eq!(bytes_per_event(&g), "-");
    }
}
