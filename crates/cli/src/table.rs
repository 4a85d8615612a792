//! The summary table `pushbench run` prints on stdout: one row per group, numbers
//! with their units, columns aligned, then the warnings that make the numbers less
//! trustworthy. Plain text, no colour, so it pastes into issues and notes as is.

use std::fmt::Write as _;

use pushbench_protocol::record::Summary;
use pushbench_report::numbers::{bytes_per_event, latency, ms, percent};

/// Renders the run's headline, the per-group table and its warnings.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let p = &summary.publisher;
    let _ = writeln!(
        out,
        "{}: {:.1} s measured, {} events published ({}/s target, {} B payload, {} topic{}) on {}{}",
        summary.scenario,
        summary.duration_s,
        p.published,
        trim_float(p.rate_per_s),
        p.payload_bytes,
        p.topics,
        if p.topics == 1 { "" } else { "s" },
        summary.target,
        if summary.embedded_server {
            " (embedded server)"
        } else {
            ""
        },
    );
    out.push('\n');

    let mut header = vec![
        "group",
        "strategy",
        "clients",
        "delivered",
        "lost",
        "dup",
        "reord",
        "coherence",
        "p50",
        "p99",
        "bytes/event",
        "errors",
    ];
    // Text columns left-aligned, numbers right-aligned.
    let mut numeric = vec![
        false, false, true, true, true, true, true, true, true, true, true, true,
    ];
    // Fault outcomes only when the run had faults: announced gaps (loss that was
    // told, not silent), clients that detected the fault, detection and recovery
    // medians, and the peak of connections per second (the reconnect storm).
    let faulted = summary
        .groups
        .iter()
        .any(|g| g.detections > 0 || g.recoveries > 0 || g.reconnect_peak_per_s > 0);
    if faulted {
        header.extend([
            "gaps",
            "detected",
            "detect p50",
            "recover p50",
            "conn/s peak",
        ]);
        numeric.extend([true; 5]);
    }
    let rows: Vec<Vec<String>> = summary
        .groups
        .iter()
        .map(|g| {
            let mut row = vec![
                g.name.clone(),
                g.strategy.clone(),
                g.clients.to_string(),
                g.delivered.to_string(),
                g.lost.to_string(),
                g.duplicates.to_string(),
                g.reordered.to_string(),
                percent(g.coherence),
                latency(&g.latency_us, g.latency_us.p50),
                latency(&g.latency_us, g.latency_us.p99),
                bytes_per_event(g),
                g.errors.to_string(),
            ];
            if faulted {
                let of = |n: u64, us: u64| if n == 0 { "-".to_owned() } else { ms(us) };
                row.extend([
                    g.gaps.to_string(),
                    format!("{}/{}", g.detections, g.clients),
                    of(g.detections, g.detect_us_p50),
                    of(g.recoveries, g.recover_us_p50),
                    g.reconnect_peak_per_s.to_string(),
                ]);
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut push_line = |cells: &[String]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if numeric[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    push_line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    for row in &rows {
        push_line(row);
    }

    let mut warnings = Vec::new();
    if summary.partial {
        warnings.push(format!(
            "partial run: {} (numbers cover only the part that ran)",
            summary.partial_reason.as_deref().unwrap_or("stopped early")
        ));
    }
    // The load generator usually says why it was saturated; add the bare fact only
    // when it did not.
    if summary.loadgen.saturated && !summary.warnings.iter().any(|w| w.contains("saturated")) {
        warnings.push(format!(
            "the load generator was saturated (its CPU: {:.0}% of the machine): latencies may include its own delays",
            summary.loadgen.cpu_share * 100.0
        ));
    }
    if p.publish_errors > 0 {
        warnings.push(format!("{} publish attempts failed", p.publish_errors));
    }
    warnings.extend(summary.warnings.iter().cloned());
    if let Some(s) = &summary.server {
        let _ = writeln!(
            out,
            "\nserver (embedded; the process it shares with the load generator): RSS peak {:.1} MiB, {} connections accepted, {} slow consumers closed, {} gaps sent, {} restarts",
            s.rss_peak_bytes as f64 / (1024.0 * 1024.0),
            s.connections_accepted,
            s.slow_consumer_closes,
            s.gaps_sent,
            s.restarts
        );
    }
    if !warnings.is_empty() {
        out.push('\n');
        for w in warnings {
            let _ = writeln!(out, "warning: {w}");
        }
    }
    out
}

/// `100` rather than `100.0`, `2.5` as is.
fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushbench_protocol::record::{GroupSummary, Percentiles, PublisherSummary};

    #[test]
    fn cells_read_as_in_report_md() {
        // The same functions as report.md: a coherence of 0.9375 reads 93.8% in both.
        assert_eq!(percent(0.9375), "93.8%");
        assert_eq!(percent(0.9996), "99.9%");
        let summary = Summary {
            groups: vec![GroupSummary {
                name: "g".into(),
                strategy: "sse".into(),
                clients: 1,
                expected: 16,
                delivered: 15,
                coherence: 0.9375,
                latency_us: Percentiles {
                    count: 15,
                    p50: 850,
                    p99: 52_345,
                    ..Default::default()
                },
                wire_bytes_per_event: 312.4,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&summary);
        let md =
            pushbench_report::markdown::to_markdown(&[pushbench_report::markdown::summary_table(
                &summary.groups,
            )]);
        for cell in ["93.8%", "0.850 ms", "52.3 ms", "312 B"] {
            assert!(text.contains(cell), "{cell} in {text}");
            assert!(md.contains(cell), "{cell} in {md}");
        }
    }

    #[test]
    fn one_aligned_row_per_group_and_warnings() {
        let summary = Summary {
            scenario: "smoke".into(),
            duration_s: 3.0,
            target: "http://127.0.0.1:1".into(),
            embedded_server: true,
            partial: true,
            partial_reason: Some("interrupted (Ctrl-C)".into()),
            publisher: PublisherSummary {
                published: 30,
                rate_per_s: 10.0,
                payload_bytes: 64,
                topics: 1,
                ..Default::default()
            },
            groups: vec![
                GroupSummary {
                    name: "sse".into(),
                    strategy: "sse".into(),
                    clients: 5,
                    delivered: 150,
                    coherence: 1.0,
                    latency_us: Percentiles {
                        count: 150,
                        p50: 420,
                        p99: 1_900,
                        ..Default::default()
                    },
                    wire_bytes_per_event: 140.0,
                    ..Default::default()
                },
                GroupSummary {
                    name: "naive-long-poll".into(),
                    strategy: "long-poll".into(),
                    lost: 12,
                    coherence: 0.92,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let text = render(&summary);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("smoke: 3.0 s measured, 30 events published (10/s target, 64 B payload, 1 topic) on http://127.0.0.1:1 (embedded server)"), "{text}");
        assert!(
            lines[2].starts_with("group            strategy   clients"),
            "{text}"
        );
        assert!(
            lines[3].contains("0.420 ms")
                && lines[3].contains("1.90 ms")
                && lines[3].contains("140 B"),
            "{text}"
        );
        assert!(lines[4].contains("92.0%"), "{text}");
        // Right-aligned numbers end in the same column.
        assert_eq!(
            lines[2].find("errors").map(|i| i + 6),
            Some(lines[3].chars().count())
        );
        assert!(
            text.contains("warning: partial run: interrupted (Ctrl-C)"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod saturation_tests {
    use super::*;
    use pushbench_protocol::record::LoadgenHealth;

    #[test]
    fn saturation_is_said_once() {
        let mut summary = Summary {
            loadgen: LoadgenHealth {
                cpu_s: 1.0,
                cpu_share: 0.95,
                saturated: true,
            },
            ..Default::default()
        };
        let text = render(&summary);
        assert!(
            text.contains("warning: the load generator was saturated (its CPU: 95%"),
            "{text}"
        );
        summary.warnings = vec!["publisher lag: the load generator is saturated".into()];
        let text = render(&summary);
        assert_eq!(text.matches("saturated").count(), 1, "{text}");
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;
    use pushbench_protocol::record::{GroupSummary, ServerCost};

    #[test]
    fn fault_columns_and_server_line_only_when_there_is_something_to_show() {
        let mut summary = Summary {
            groups: vec![GroupSummary {
                name: "ws".into(),
                clients: 5,
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(&summary);
        assert!(
            !text.contains("detect p50") && !text.contains("server ("),
            "{text}"
        );
        summary.groups[0].detections = 4;
        summary.groups[0].detect_us_p50 = 2_090_000;
        summary.groups[0].recoveries = 5;
        summary.groups[0].recover_us_p50 = 43_400;
        summary.groups[0].reconnect_peak_per_s = 5;
        summary.server = Some(ServerCost {
            rss_peak_bytes: 20 << 20,
            slow_consumer_closes: 2,
            ..Default::default()
        });
        let text = render(&summary);
        assert!(
            text.contains("detect p50") && text.contains("conn/s peak"),
            "{text}"
        );
        assert!(text.contains("4/5") && text.contains("2090.0 ms"), "{text}");
        assert!(text.contains("43.4 ms"), "{text}");
        assert!(
            text.contains("RSS peak 20.0 MiB") && text.contains("2 slow consumers closed"),
            "{text}"
        );
    }
}
