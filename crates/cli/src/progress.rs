//! Progress on stderr while a run goes: on a terminal one line redrawn in place
//! (`\r`, about five times a second); otherwise (CI logs, pipes) a plain line every
//! few seconds, so logs stay readable. Hand-rolled rather than indicatif: one line
//! of text does not need a dependency.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushbench_loadgen::{Progress, ProgressSnapshot};
use tokio_util::sync::CancellationToken;

/// How often the terminal line is redrawn.
const TTY_PERIOD: Duration = Duration::from_millis(200);
/// How often a plain line is printed when stderr is not a terminal.
const PLAIN_PERIOD: Duration = Duration::from_secs(5);
/// The span deliveries/s is measured over on a terminal.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The timeline of a run, for the phase and `elapsed/total` shown.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub measured: Duration,
    /// Time after it for late deliveries.
    pub grace: Duration,
}

impl Timeline {
    fn total(&self) -> Duration {
        self.warmup + self.measured + self.grace
    }

    fn phase(&self, s: &ProgressSnapshot) -> &'static str {
        if s.warming_up {
            "warming up"
        } else if Duration::from_millis(s.elapsed_ms) > self.warmup + self.measured {
            "grace"
        } else {
            "measuring"
        }
    }
}

/// Shows `progress` on stderr until `done` is cancelled.
pub async fn show(progress: Arc<Progress>, timeline: Timeline, done: CancellationToken) {
    let tty = std::io::stderr().is_terminal();
    let period = if tty { TTY_PERIOD } else { PLAIN_PERIOD };
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await; // the first tick is immediate
    // Recent readings: deliveries/s is taken over the last second (terminal) or since
    // the previous line (plain), so the figure neither jitters nor lags.
    let mut recent: VecDeque<(Instant, u64)> =
        VecDeque::from([(Instant::now(), progress.snapshot().delivered)]);
    loop {
        tokio::select! {
            _ = done.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let snap = progress.snapshot();
        while recent.len() > 1 && now.duration_since(recent[1].0) >= RATE_WINDOW.max(period) {
            recent.pop_front();
        }
        let rate = match recent.front() {
            Some(&(at, delivered)) if now > at => {
                snap.delivered.saturating_sub(delivered) as f64
                    / now.duration_since(at).as_secs_f64()
            }
            _ => 0.0,
        };
        recent.push_back((now, snap.delivered));
        let line = format_line(&snap, timeline, rate);
        let mut err = std::io::stderr().lock();
        // A failed write to stderr leaves nothing better to do than carry on.
        let _ = if tty {
            // Cursor parked at column 0 after the line: a log line written meanwhile
            // (tracing also writes to stderr) overwrites the bar instead of being
            // glued to its end, and the next redraw starts on the line below it.
            write!(err, "\r\x1b[2K{line}\r")
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

/// `[ 12.4s/25s] measuring  published 1204  deliveries/s 45.1k  errors 0  open 400`
pub fn format_line(s: &ProgressSnapshot, timeline: Timeline, deliveries_per_s: f64) -> String {
    format!(
        "[{:>5.1}s/{}s] {:<10} published {}  deliveries/s {}  errors {}  open {}",
        s.elapsed_ms as f64 / 1000.0,
        timeline.total().as_secs_f64().ceil() as u64,
        timeline.phase(s),
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
        let timeline = Timeline {
            warmup: Duration::from_secs(2),
            measured: Duration::from_secs(20),
            grace: Duration::from_millis(2_500),
        };
        assert_eq!(
            format_line(&s, timeline, 45_120.0),
            "[ 12.4s/25s] measuring  published 1204  deliveries/s 45.1k  errors 2  open 400"
        );
        let late = ProgressSnapshot {
            elapsed_ms: 23_000,
            ..s
        };
        assert!(format_line(&late, timeline, 0.0).contains("] grace "));
        let early = ProgressSnapshot {
            elapsed_ms: 100,
            warming_up: true,
            ..s
        };
        assert!(format_line(&early, timeline, 0.0).contains("] warming up "));
        assert_eq!(si(999.4), "999");
        assert_eq!(si(4_500_000.0), "4.5M");
    }
}
