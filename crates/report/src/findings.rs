//! Findings: plain sentences computed from a run's numbers.
//!
//! Every sentence is built from the summary and emitted only when the condition it
//! states holds, so no finding can contradict the run it describes. Each carries the
//! numbers it rests on. Caveats (partial run, saturated load generator, warnings)
//! are separate, because the report must put them first.

use pushbench_protocol::record::{GroupSummary, Summary};

use crate::charts::run::bytes_split;
use crate::numbers::{fixed, ms, percent as percent_f};

/// One finding: a topic and its sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// What it is about: `ordering`, `duplicates`, `loss`, `bytes`, `latency`,
    /// `coordinated-omission`, `requests`, `errors`.
    pub topic: &'static str,
    /// The sentence (Markdown inline text: group names in backticks).
    pub text: String,
}

/// What makes the run's numbers less trustworthy, in the order the report states it:
/// partial run, saturated load generator, then each warning.
pub fn caveats(summary: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if summary.partial {
        let why = summary
            .partial_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        out.push(format!(
            "This run is partial{why}: it stopped after {} s of measurement, so counts cover only that window and events still in flight may be counted as lost.",
            seconds(summary.duration_s)
        ));
    }
    if summary.loadgen.saturated {
        out.push(format!(
            "The load generator was saturated (it used {:.0}% of the machine's CPU, {} CPU seconds): latencies include its own queueing and are not the server's alone.",
            summary.loadgen.cpu_share * 100.0,
            fixed(summary.loadgen.cpu_s, 1)
        ));
    }
    for w in &summary.warnings {
        out.push(format!("Warning from the run: {w}"));
    }
    out
}

/// Every finding the numbers support, in the order the report lists them.
pub fn findings(summary: &Summary) -> Vec<Finding> {
    let groups = &summary.groups;
    let mut out = Vec::new();
    ordering(groups, &mut out);
    duplicates(groups, &mut out);
    loss(groups, &mut out);
    bytes(groups, &mut out);
    latency(groups, &mut out);
    coordinated_omission(summary, &mut out);
    requests(groups, &mut out);
    errors(summary, &mut out);
    out
}

fn ordering(groups: &[GroupSummary], out: &mut Vec<Finding>) {
    let reordered: Vec<&GroupSummary> = groups.iter().filter(|g| g.reordered > 0).collect();
    for g in &reordered {
        out.push(Finding {
            topic: "ordering",
            text: format!(
                "`{}` ({}) delivered {} events out of order: {} of its {} delivered events arrived after a later event of the same publisher.",
                g.name,
                strategy(g),
                g.reordered,
                percent(g.reordered, g.delivered),
                g.delivered
            ),
        });
    }
    let delivering = groups.iter().filter(|g| g.delivered > 0).count();
    if reordered.is_empty() && delivering > 0 {
        out.push(Finding {
            topic: "ordering",
            text: format!(
                "No group delivered an event out of order (reordered = 0 in all {delivering} groups that delivered events)."
            ),
        });
    } else if !reordered.is_empty() {
        let in_order: Vec<String> = groups
            .iter()
            .filter(|g| g.reordered == 0 && g.delivered > 0)
            .map(|g| format!("`{}`", g.name))
            .collect();
        if !in_order.is_empty() {
            out.push(Finding {
                topic: "ordering",
                text: format!(
                    "Delivered strictly in publisher order: {}.",
                    in_order.join(", ")
                ),
            });
        }
    }
}

fn duplicates(groups: &[GroupSummary], out: &mut Vec<Finding>) {
    for g in groups.iter().filter(|g| g.duplicates > 0) {
        out.push(Finding {
            topic: "duplicates",
            text: format!(
                "`{}` ({}) received {} duplicate deliveries (events its clients had already seen), {} on top of {} distinct events.",
                g.name,
                strategy(g),
                g.duplicates,
                percent(g.duplicates, g.delivered),
                g.delivered
            ),
        });
    }
}

fn loss(groups: &[GroupSummary], out: &mut Vec<Finding>) {
    for g in groups.iter().filter(|g| g.lost > 0) {
        let mut text = format!(
            "`{}` ({}) lost {} of {} expected events ({}); coherence {}.",
            g.name,
            strategy(g),
            g.lost,
            g.expected,
            percent(g.lost, g.expected),
            percent_f(g.coherence)
        );
        if g.gaps > 0 {
            text.push_str(&format!(
                " The server announced {} gap{} (a client's cursor fell behind the retained log).",
                g.gaps,
                plural(g.gaps)
            ));
        } else {
            text.push_str(" The server announced no gap, so the loss was silent to the clients.");
        }
        if has_option(g, "cursor", "none") {
            text.push_str(
                " Its options say `cursor=none`: each request waits for the next event without a resume cursor, so events published between a response and the next request are never asked for.",
            );
        } else if has_option(g, "cursor", "latest") {
            text.push_str(
                " Its options say `cursor=latest`: each poll reads only the newest event (state, not a log), so events replaced between polls are skipped.",
            );
        }
        out.push(Finding {
            topic: "loss",
            text,
        });
    }
    for g in groups.iter().filter(|g| g.gaps > 0 && g.lost == 0) {
        out.push(Finding {
            topic: "loss",
            text: format!(
                "`{}` was told of {} gap{} (its cursor fell behind the retained log) and still lost no expected event.",
                g.name,
                g.gaps,
                plural(g.gaps)
            ),
        });
    }
    let delivering: Vec<&GroupSummary> = groups.iter().filter(|g| g.expected > 0).collect();
    if !delivering.is_empty() && delivering.iter().all(|g| g.lost == 0) {
        out.push(Finding {
            topic: "loss",
            text: format!(
                "No group lost an event: all {} groups with expected events saw every one (lost = 0).",
                delivering.len()
            ),
        });
    }
}

fn bytes(groups: &[GroupSummary], out: &mut Vec<Finding>) {
    let mut costs: Vec<(&GroupSummary, f64, f64)> = groups
        .iter()
        .filter(|g| g.delivered > 0)
        .map(|g| {
            let (payload, overhead) = bytes_split(g);
            (g, payload + overhead, overhead)
        })
        .collect();
    if costs.is_empty() {
        return;
    }
    costs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let list: Vec<String> = costs
        .iter()
        .map(|(g, total, overhead)| {
            format!(
                "`{}` {} B ({} overhead)",
                g.name,
                fixed(*total, 0),
                share(*overhead, *total)
            )
        })
        .collect();
    let mut text = format!(
        "Wire bytes per delivered event (up + down, cheapest first): {}.",
        list.join(", ")
    );
    let (cheap, cheap_b, _) = costs[0];
    let (dear, dear_b, _) = costs[costs.len() - 1];
    if costs.len() > 1 && cheap_b > 0.0 && dear_b > cheap_b {
        text.push_str(&format!(
            " The dearest, `{}` ({} B), costs {}x the cheapest, `{}` ({} B).",
            dear.name,
            fixed(dear_b, 0),
            fixed(dear_b / cheap_b, 1),
            cheap.name,
            fixed(cheap_b, 0)
        ));
    }
    out.push(Finding {
        topic: "bytes",
        text,
    });
}

fn latency(groups: &[GroupSummary], out: &mut Vec<Finding>) {
    let measured: Vec<&GroupSummary> = groups.iter().filter(|g| g.latency_us.count > 0).collect();
    if measured.is_empty() {
        return;
    }
    let rank = |key: fn(&GroupSummary) -> u64| {
        let mut v = measured.clone();
        v.sort_by_key(|g| key(g));
        v
    };
    let by_p50 = rank(|g| g.latency_us.p50);
    let by_p99 = rank(|g| g.latency_us.p99);
    // A beacon's latency is its upload's, not a delivery's: said where it is listed.
    let list = |v: &[&GroupSummary], key: fn(&GroupSummary) -> u64| {
        v.iter()
            .map(|g| {
                let upload = if g.strategy == "beacon" {
                    " (upload)"
                } else {
                    ""
                };
                format!("`{}` {}{upload}", g.name, ms(key(g)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "Median delivery latency (corrected), fastest first: {}. At p99: {}.",
        list(&by_p50, |g| g.latency_us.p50),
        list(&by_p99, |g| g.latency_us.p99)
    );
    let few: Vec<String> = measured
        .iter()
        .filter(|g| g.latency_us.count < 100)
        .map(|g| format!("`{}` {}", g.name, g.latency_us.count))
        .collect();
    if !few.is_empty() {
        text.push_str(&format!(
            " With fewer than 100 samples, p99 is the largest sample ({}).",
            few.join(", ")
        ));
    }
    if measured.len() > 1 && by_p50[0].name != by_p99[0].name {
        text.push_str(&format!(
            " The fastest at the median (`{}`) is not the fastest at p99 (`{}`).",
            by_p50[0].name, by_p99[0].name
        ));
    }
    out.push(Finding {
        topic: "latency",
        text,
    });
}

/// Corrected p99 at least this many times the uncorrected p99 is worth a sentence.
const CO_RATIO: f64 = 2.0;

fn coordinated_omission(summary: &Summary, out: &mut Vec<Finding>) {
    let hits: Vec<String> = summary
        .groups
        .iter()
        .filter_map(|g| {
            let (c, u) = (g.latency_us.p99, g.latency_uncorrected_us.p99);
            if g.latency_uncorrected_us.count == 0 || u == 0 {
                return None;
            }
            let ratio = c as f64 / u as f64;
            (ratio >= CO_RATIO)
                .then(|| format!("`{}` {} vs {} ({}x)", g.name, ms(c), ms(u), fixed(ratio, 1)))
        })
        .collect();
    if hits.is_empty() {
        return;
    }
    out.push(Finding {
        topic: "coordinated-omission",
        text: format!(
            "p99 latency from the intended publish time vs from the actual send time: {}. The difference is time the events waited before being sent (the publisher's send lag was p99 {}, max {}); latency measured from the send time alone would hide it.",
            hits.join(", "),
            ms(summary.publisher.lag_us.p99),
            ms(summary.publisher.lag_us.max)
        ),
    });
}

fn requests(groups: &[GroupSummary], out: &mut Vec<Finding>) {
    for g in groups
        .iter()
        .filter(|g| g.requests > 0 && g.empty_responses > 0)
    {
        let mut text = format!(
            "`{}` sent {} requests; {} of them ({}) returned no event",
            g.name,
            g.requests,
            g.empty_responses,
            percent(g.empty_responses, g.requests)
        );
        if g.not_modified > 0 {
            text.push_str(&format!(", {} as 304 Not Modified", g.not_modified));
        }
        text.push('.');
        out.push(Finding {
            topic: "requests",
            text,
        });
    }
}

fn errors(summary: &Summary, out: &mut Vec<Finding>) {
    for g in summary
        .groups
        .iter()
        .filter(|g| g.errors > 0 || g.reconnects > 0)
    {
        let kinds: Vec<String> = g
            .errors_by_kind
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let mut text = format!("`{}` had {} error{}", g.name, g.errors, plural(g.errors));
        if !kinds.is_empty() {
            text.push_str(&format!(" ({})", kinds.join(", ")));
        }
        if g.reconnects > 0 {
            text.push_str(&format!(
                " and reconnected {} time{}",
                g.reconnects,
                plural(g.reconnects)
            ));
        }
        text.push('.');
        out.push(Finding {
            topic: "errors",
            text,
        });
    }
    let p = &summary.publisher;
    if p.publish_errors > 0 {
        out.push(Finding {
            topic: "errors",
            text: format!(
                "The publisher failed {} of {} publish attempts.",
                p.publish_errors,
                p.published + p.publish_errors
            ),
        });
    }
}

fn strategy(g: &GroupSummary) -> String {
    if g.options.trim().is_empty() {
        g.strategy.clone()
    } else {
        format!("{}, {}", g.strategy, g.options.trim())
    }
}

fn has_option(g: &GroupSummary, key: &str, value: &str) -> bool {
    g.options
        .split_whitespace()
        .any(|kv| kv.split_once('=') == Some((key, value)))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `12.3%` of a count; `0%` when the whole is zero.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_owned();
    }
    percent_f(part as f64 / whole as f64)
}

fn share(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        "0%".to_owned()
    } else {
        format!("{:.0}%", part / whole * 100.0)
    }
}

fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushbench_protocol::record::Percentiles;

    fn g(name: &str) -> GroupSummary {
        GroupSummary {
            name: name.into(),
            strategy: "sse".into(),
            clients: 1,
            expected: 100,
            delivered: 100,
            coherence: 1.0,
            bytes_up: 0,
            bytes_down: 30_000,
            payload_bytes_down: 25_600,
            latency_us: Percentiles {
                count: 100,
                p50: 1000,
                p99: 5000,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn clean_run_says_so_and_no_more() {
        let s = Summary {
            groups: vec![g("a"), g("b")],
            ..Default::default()
        };
        assert!(caveats(&s).is_empty());
        let f = findings(&s);
        let text: Vec<&str> = f.iter().map(|f| f.text.as_str()).collect();
        assert!(
            text[0].starts_with("No group delivered an event out of order"),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("No group lost")));
        assert!(!text.iter().any(|t| t.contains("duplicate")));
        // Equal costs: no ratio sentence.
        assert!(!text.iter().any(|t| t.contains("dearest")));
    }

    #[test]
    fn caveats_come_in_order() {
        let s = Summary {
            partial: true,
            partial_reason: Some("interrupted (Ctrl-C)".into()),
            duration_s: 4.0,
            loadgen: pushbench_protocol::record::LoadgenHealth {
                cpu_s: 7.5,
                cpu_share: 0.97,
                saturated: true,
            },
            warnings: vec!["clock skew".into()],
            ..Default::default()
        };
        let c = caveats(&s);
        assert_eq!(c.len(), 3);
        assert!(
            c[0].starts_with("This run is partial (interrupted (Ctrl-C)): it stopped after 4 s")
        );
        assert!(c[1].contains("saturated (it used 97%"));
        assert_eq!(c[2], "Warning from the run: clock skew");
    }

    #[test]
    fn coordinated_omission_is_one_finding_with_the_lag() {
        let mut a = g("a");
        a.latency_uncorrected_us = Percentiles {
            count: 100,
            p99: 1000,
            ..Default::default()
        };
        let mut b = g("b");
        b.latency_uncorrected_us = Percentiles {
            count: 100,
            p99: 4000,
            ..Default::default()
        };
        let mut beacon = g("up");
        beacon.strategy = "beacon".into();
        let mut s = Summary {
            groups: vec![a, b, beacon],
            ..Default::default()
        };
        s.publisher.lag_us.p99 = 4000;
        s.publisher.lag_us.max = 9000;
        let f = findings(&s);
        let co: Vec<&Finding> = f
            .iter()
            .filter(|f| f.topic == "coordinated-omission")
            .collect();
        assert_eq!(co.len(), 1);
        assert!(
            co[0].text.contains("`a` 5.00 ms vs 1.00 ms (5.0x)"),
            "{}",
            co[0].text
        );
        assert!(!co[0].text.contains("`b`"), "1.25x is below the threshold");
        assert!(co[0].text.contains("p99 4.00 ms, max 9.00 ms"));
        let lat = f.iter().find(|f| f.topic == "latency").unwrap();
        assert!(lat.text.contains("`up` 1.00 ms (upload)"), "{}", lat.text);
    }

    #[test]
    fn loss_names_cursor_none() {
        let mut lossy = g("naive");
        lossy.strategy = "long-poll".into();
        lossy.options = "cursor=none".into();
        lossy.delivered = 90;
        lossy.lost = 10;
        lossy.coherence = 0.9;
        let f = findings(&Summary {
            groups: vec![lossy],
            ..Default::default()
        });
        let loss = f.iter().find(|f| f.topic == "loss").unwrap();
        assert!(loss.text.starts_with("`naive` (long-poll, cursor=none) lost 10 of 100 expected events (10.0%); coherence 90.0%."), "{}", loss.text);
        assert!(loss.text.contains("silent"));
    }
}
