//! Counters for `/metrics`, in Prometheus text format. Plain atomics, no registry
//! crate: the set is fixed and small, and each increment is one relaxed add.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The ways a client can receive events, as labelled in `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `GET /topics/{t}/events` without `wait`, and `/latest`.
    Poll,
    /// `GET /topics/{t}/events?wait=`.
    LongPoll,
    /// `GET /topics/{t}/sse`.
    Sse,
    /// `GET /topics/{t}/ws`.
    WebSocket,
}

impl Strategy {
    const ALL: [Strategy; 4] = [
        Strategy::Poll,
        Strategy::LongPoll,
        Strategy::Sse,
        Strategy::WebSocket,
    ];

    fn label(self) -> &'static str {
        match self {
            Strategy::Poll => "poll",
            Strategy::LongPoll => "long-poll",
            Strategy::Sse => "sse",
            Strategy::WebSocket => "websocket",
        }
    }
}

#[derive(Debug, Default)]
struct PerStrategy {
    open: AtomicU64,
    deliveries: AtomicU64,
    bytes_out: AtomicU64,
}

/// Every counter the server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    per: [PerStrategy; 4],
    /// TCP connections open now.
    pub connections_open: AtomicU64,
    /// TCP connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections answered 503 because of `--max-connections`.
    pub connections_rejected: AtomicU64,
    /// Events published.
    pub events_published: AtomicU64,
    /// Publish or beacon requests refused (bad JSON, too large, unauthorized).
    pub publish_rejected: AtomicU64,
    /// Gap notices sent.
    pub gaps: AtomicU64,
    /// Subscribers closed as slow consumers.
    pub slow_consumer_closes: AtomicU64,
    /// WebSocket peers closed for not answering pings.
    pub heartbeat_timeouts: AtomicU64,
    /// Beacon uploads received.
    pub beacon_count: AtomicU64,
    /// Beacon body bytes received.
    pub beacon_bytes: AtomicU64,
    /// Requests answered with a 4xx status.
    pub client_errors: AtomicU64,
}

/// Counts one open connection of a strategy while alive.
#[derive(Debug)]
pub struct OpenGuard<'a>(&'a AtomicU64);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// Marks a subscriber of `s` as open until the guard drops.
    pub fn open(&self, s: Strategy) -> OpenGuard<'_> {
        let c = &self.per[s as usize].open;
        c.fetch_add(1, Relaxed);
        OpenGuard(c)
    }

    /// Records `n` events delivered (handed to the socket) with `bytes` of body/payload.
    pub fn delivered(&self, s: Strategy, n: u64, bytes: u64) {
        let p = &self.per[s as usize];
        p.deliveries.fetch_add(n, Relaxed);
        p.bytes_out.fetch_add(bytes, Relaxed);
    }

    /// Records body bytes that carried no event (heartbeats, empty poll bodies, control frames).
    pub fn overhead(&self, s: Strategy, bytes: u64) {
        self.per[s as usize].bytes_out.fetch_add(bytes, Relaxed);
    }

    /// Open subscribers of one strategy.
    pub fn open_now(&self, s: Strategy) -> u64 {
        self.per[s as usize].open.load(Relaxed)
    }

    /// Deliveries of one strategy so far.
    pub fn deliveries(&self, s: Strategy) -> u64 {
        self.per[s as usize].deliveries.load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self, topics: usize) -> String {
        let mut out = String::with_capacity(4096);
        let mut family = |name: &str, kind: &str, help: &str, rows: &[(Option<&str>, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (label, v) in rows {
                match label {
                    Some(l) => {
                        let _ = writeln!(out, "{name}{{strategy=\"{l}\"}} {v}");
                    }
                    None => {
                        let _ = writeln!(out, "{name} {v}");
                    }
                }
            }
        };
        let per = |f: &dyn Fn(&PerStrategy) -> u64| -> Vec<(Option<&str>, f64)> {
            Strategy::ALL
                .iter()
                .map(|s| (Some(s.label()), f(&self.per[*s as usize]) as f64))
                .collect()
        };
        let one = |c: &AtomicU64| vec![(None, c.load(Relaxed) as f64)];
        family(
            "pushbench_subscribers_open",
            "gauge",
            "Subscribers connected now (held long polls, SSE streams, WebSockets; polls in flight).",
            &per(&|p| p.open.load(Relaxed)),
        );
        family(
            "pushbench_deliveries_total",
            "counter",
            "Events handed to a client's socket.",
            &per(&|p| p.deliveries.load(Relaxed)),
        );
        family(
            "pushbench_bytes_out_total",
            "counter",
            "Response body / frame payload bytes written (HTTP headers and WebSocket frame headers excluded).",
            &per(&|p| p.bytes_out.load(Relaxed)),
        );
        family(
            "pushbench_connections_open",
            "gauge",
            "TCP connections open.",
            &one(&self.connections_open),
        );
        family(
            "pushbench_connections_total",
            "counter",
            "TCP connections accepted.",
            &one(&self.connections_total),
        );
        family(
            "pushbench_connections_rejected_total",
            "counter",
            "Connections answered 503 because --max-connections was reached.",
            &one(&self.connections_rejected),
        );
        family(
            "pushbench_topics",
            "gauge",
            "Topics in memory.",
            &[(None, topics as f64)],
        );
        family(
            "pushbench_events_published_total",
            "counter",
            "Events published.",
            &one(&self.events_published),
        );
        family(
            "pushbench_publish_rejected_total",
            "counter",
            "Publish requests refused (bad JSON, too large, unauthorized, too many topics).",
            &one(&self.publish_rejected),
        );
        family(
            "pushbench_gaps_total",
            "counter",
            "Gap notices sent (cursor outside the retained log).",
            &one(&self.gaps),
        );
        family(
            "pushbench_slow_consumer_closes_total",
            "counter",
            "Subscribers closed because their socket did not drain or they fell out of the retained log.",
            &one(&self.slow_consumer_closes),
        );
        family(
            "pushbench_heartbeat_timeouts_total",
            "counter",
            "WebSocket peers closed for not answering a ping within --ws-pong-timeout.",
            &one(&self.heartbeat_timeouts),
        );
        family(
            "pushbench_beacons_total",
            "counter",
            "Beacon uploads received.",
            &one(&self.beacon_count),
        );
        family(
            "pushbench_beacon_bytes_total",
            "counter",
            "Beacon body bytes received.",
            &one(&self.beacon_bytes),
        );
        family(
            "pushbench_client_errors_total",
            "counter",
            "Requests answered with a 4xx status.",
            &one(&self.client_errors),
        );
        let (cpu, rss) = process_usage();
        family(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the server process, in seconds.",
            &[(None, cpu)],
        );
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size of the server process, in bytes.",
            &[(None, rss)],
        );
        out
    }
}

/// CPU seconds and RSS bytes of this process, from `/proc` (zeros where there is none).
/// `/proc/self/stat` counts in USER_HZ, which Linux fixes at 100 for user space.
pub fn process_usage() -> (f64, f64) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024.0)
        })
        .unwrap_or(0.0);
    (cpu, rss)
}
