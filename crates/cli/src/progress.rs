//! Progress on stderr while a run goes: on a terminal one line redrawn in place
//! (`\r`, about five times a second); otherwise (CI logs, pipes) a plain line every
//! few seconds, so logs stay readable. Hand-rolled rather than indicatif: one line
//! of text does not need a dependency.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushbench_loadgen::{Progress, ProgressSnapshot};
use tokio_util::sync::CancellationToken;

/// How often the terminal line is redrawn.
const TTY_PERIOD: Duration = Duration::from_millis(200);
/// How often a plain line is printed when stderr is not a terminal.
const PLAIN_PERIOD: Duration = Duration::from_secs(5);

/// Shows `progress` on stderr until `done` is cancelled; `total` is the expected
/// length of the run (warm-up + measured window + grace), for the `elapsed/total`.
pub async fn show(progress: Arc<Progress>, total: Duration, done: CancellationToken) {
    let tty = std::io::stderr().is_terminal();
    let period = if tty { TTY_PERIOD } else { PLAIN_PERIOD };
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await; // the first tick is immediate
    let mut last: Option<(Instant, ProgressSnapshot)> = None;
    // Deliveries per second over a ~2 s window, so the terminal figure does not jitter.
    let mut rate = 0.0;
    loop {
        tokio::select! {
            _ = done.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let snap = progress.snapshot();
        if let Some((at, prev)) = last {
            let dt = now.duration_since(at).as_secs_f64();
            if dt > 0.0 {
                let instant = snap.delivered.saturating_sub(prev.delivered) as f64 / dt;
                let alpha = (dt / 2.0).min(1.0);
                rate = if tty {
                    rate + alpha * (instant - rate)
                } else {
                    instant
                };
            }
        }
        last = Some((now, snap));
        let line = format_line(&snap, total, rate);
        let mut err = std::io::stderr().lock();
        // A failed write to stderr leaves nothing better to do than carry on.
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
    if tty {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// `[ 12.4s/25s] measuring  published 1,204  deliveries/s 45.1k  errors 0  open 400`
pub fn format_line(s: &ProgressSnapshot, total: Duration, deliveries_per_s: f64) -> String {
    format!(
        "[{:>5.1}s/{}s] {:<10} published {}  deliveries/s {}  errors {}  open {}",
        s.elapsed_ms as f64 / 1000.0,
        total.as_secs_f64().ceil() as u64,
        if s.warming_up {
            "warming up"
        } else {
            "measuring"
        },
        s.published,
        si(deliveries_per_s),
        s.errors,
        s.open_connections,
    )
}

/// `950`, `12.3k`, `4.5M`: a rate short enough for one line.
fn si(v: f64) -> String {
    if v < 1_000.0 {
        format!("{v:.0}")
    } else if v < 1_000_000.0 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.1}M", v / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_elapsed_counts_and_rate() {
        let s = ProgressSnapshot {
            elapsed_ms: 12_400,
            warming_up: false,
            published: 1204,
            delivered: 99,
            errors: 2,
            open_connections: 400,
        };
        assert_eq!(
            format_line(&s, Duration::from_millis(24_500), 45_120.0),
            "[ 12.4s/25s] measuring  published 1204  deliveries/s 45.1k  errors 2  open 400"
        );
        assert_eq!(si(999.4), "999");
        assert_eq!(si(4_500_000.0), "4.5M");
    }
}
