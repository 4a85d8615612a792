//! The results schema: what `pushbench run` writes and `pushbench report` reads.
//! Integers (nanoseconds, microseconds, bytes, counts) everywhere except ratios.
//! `docs/results.md` documents each field; changing a field here changes that page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of this schema, written into `summary.json` as `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// `summary.json`: one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// What the scenario teaches (from the scenario file).
    pub description: String,
    /// Start of the measured window, RFC 3339 UTC.
    pub started_at: String,
    /// Measured seconds (warm-up excluded).
    pub duration_s: f64,
    /// True when the run stopped early (Ctrl-C, error); `partial_reason` says why.
    pub partial: bool,
    /// Why the run is partial.
    pub partial_reason: Option<String>,
    /// Base URL measured, and whether it was the embedded server.
    pub target: String,
    /// True when the server ran in-process.
    pub embedded_server: bool,
    /// The publisher's side of the run.
    pub publisher: PublisherSummary,
    /// The load generator's own health.
    pub loadgen: LoadgenHealth,
    /// One entry per `[[group]]`.
    pub groups: Vec<GroupSummary>,
    /// Warnings that make numbers less trustworthy (saturation, clock, errors).
    pub warnings: Vec<String>,
    /// The embedded server's cost, when the server ran in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerCost>,
}

/// The publisher's side of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PublisherSummary {
    /// Events published (acknowledged by the server) in the measured window.
    pub published: u64,
    /// Publish attempts that failed.
    pub publish_errors: u64,
    /// Target rate, events per second (all topics).
    pub rate_per_s: f64,
    /// Payload size in bytes.
    pub payload_bytes: u64,
    /// Topics published to.
    pub topics: u32,
    /// How far sends fell behind the schedule, in microseconds.
    pub lag_us: Percentiles,
}

/// The load generator's own health: when it is saturated the numbers are not the server's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadgenHealth {
    /// CPU seconds the load generator process used (includes an embedded server).
    pub cpu_s: f64,
    /// CPU used as a share of the machine (1.0 = every core busy).
    pub cpu_share: f64,
    /// True when the load generator judged itself a bottleneck.
    pub saturated: bool,
}

/// One `[[group]]`'s results (one row of `summary.csv`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Group name from the scenario.
    pub name: String,
    /// Strategy: poll, long-poll, sse, websocket, beacon, chat.
    pub strategy: String,
    /// The options that matter, as `key=value` pairs joined by spaces.
    pub options: String,
    /// Clients in the group.
    pub clients: u64,
    /// Events each client should have seen, summed over clients (see docs/metrics.md).
    pub expected: u64,
    /// Distinct events delivered, summed over clients.
    pub delivered: u64,
    /// Deliveries of an event the client had already seen.
    pub duplicates: u64,
    /// Deliveries that arrived after a later event of the same publisher.
    pub reordered: u64,
    /// Expected events never delivered by the end of the grace period.
    pub lost: u64,
    /// Gap notices the server sent.
    pub gaps: u64,
    /// delivered / expected (1.0 when nothing was expected).
    pub coherence: f64,
    /// Latency from the intended publish time (coordinated-omission corrected).
    pub latency_us: Percentiles,
    /// Latency from the actual send time.
    pub latency_uncorrected_us: Percentiles,
    /// Bytes the group's clients wrote to their sockets.
    pub bytes_up: u64,
    /// Bytes the group's clients read from their sockets.
    pub bytes_down: u64,
    /// Payload bytes (event data) among `bytes_down`.
    pub payload_bytes_down: u64,
    /// (bytes_up + bytes_down) / delivered; 0 when nothing was delivered.
    pub wire_bytes_per_event: f64,
    /// HTTP requests sent (polls, long polls, connects, uploads).
    pub requests: u64,
    /// Responses that carried no event.
    pub empty_responses: u64,
    /// 304 Not Modified responses.
    pub not_modified: u64,
    /// TCP connections opened.
    pub connections_opened: u64,
    /// Reconnects after a connection was lost.
    pub reconnects: u64,
    /// Errors of every kind.
    pub errors: u64,
    /// Errors by kind (connect, timeout, http_5xx, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Events uploaded (beacon, chat).
    pub uploads: u64,
    /// Clients that declared a connection dead (or lost it) after a fault started
    /// (one per client per fault); the `detect_us_*` fields describe them.
    #[serde(default)]
    pub detections: u64,
    /// Time from a fault's start to a client declaring its connection dead, median, us.
    #[serde(default)]
    pub detect_us_p50: u64,
    /// The same, the slowest client, us.
    #[serde(default)]
    pub detect_us_max: u64,
    /// Recoveries: first event delivered again after a fault ended or a lost connection.
    #[serde(default)]
    pub recoveries: u64,
    /// Time from the later of the fault's end and the client's detection to its
    /// first event delivered again, median, us.
    #[serde(default)]
    pub recover_us_p50: u64,
    /// The same, the slowest recovery, us.
    #[serde(default)]
    pub recover_us_max: u64,
    /// lost / reconnects: events lost per reconnect on average (0 without reconnects).
    #[serde(default)]
    pub lost_per_reconnect: f64,
    /// duplicates / reconnects: events delivered twice per reconnect on average.
    #[serde(default)]
    pub duplicates_per_reconnect: f64,
    /// Reconnect storm: the most connections the group opened in one second, from
    /// the first fault on (0 when the scenario has no fault).
    #[serde(default)]
    pub reconnect_peak_per_s: u64,
}

/// The server's side of the run, when the server is embedded (run level: the server
/// shares the load generator's process, so per-group attribution would be invented).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCost {
    /// What the numbers cover (the whole pushbench process when the server is embedded).
    pub scope: String,
    /// Peak resident memory of that process during the run, bytes (0 when unknown).
    pub rss_peak_bytes: u64,
    /// Resident memory at the end of the run, bytes.
    pub rss_end_bytes: u64,
    /// CPU seconds of that process during the run.
    pub cpu_s: f64,
    /// Connections the server accepted during the run.
    pub connections_accepted: u64,
    /// Subscribers the server closed as slow consumers.
    pub slow_consumer_closes: u64,
    /// Gap notices the server sent.
    pub gaps_sent: u64,
    /// Times the server was restarted by a fault.
    pub restarts: u64,
}

/// One row of `arrivals.csv`: one delivery (duplicates included) to a sampled client.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArrivalRow {
    /// Group name.
    pub group: String,
    /// Client index in the group.
    pub client: u32,
    /// The publisher's sequence number stamped in the event.
    pub publisher_seq: u64,
    /// Receive time, ms since the start of the measured window.
    pub receive_ms: f64,
}

/// One row of `faults.csv`: a fault as it happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultRow {
    /// blackhole, reset, flap, server-restart or publisher-burst.
    pub kind: String,
    /// Start, seconds since the start of the measured window.
    pub start_s: f64,
    /// End (equal to the start for an instant fault).
    pub end_s: f64,
    /// Groups hit; empty = all.
    pub groups: Vec<String>,
}

/// One row of `timeseries.csv`: one second of one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeseriesRow {
    /// Seconds since the start of the measured window (warm-up is negative).
    pub second: i64,
    /// Group name.
    pub group: String,
    /// Events delivered in this second.
    pub deliveries: u64,
    /// p99 corrected latency of this second, microseconds.
    pub p99_us: u64,
    /// Open connections at the end of this second.
    pub open_connections: u64,
    /// Bytes written by clients in this second.
    pub bytes_up: u64,
    /// Bytes read by clients in this second.
    pub bytes_down: u64,
    /// Errors in this second.
    pub errors: u64,
    /// Events the publisher sent in this second (the same for every group).
    pub published: u64,
}

/// `meta.json`: where and with what the run was made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// pushbench version.
    pub version: String,
    /// `git describe` of the source, when known.
    pub git_revision: Option<String>,
    /// Host name.
    pub host: String,
    /// Logical CPU cores.
    pub cores: u32,
    /// Operating system and architecture.
    pub os: String,
    /// Command line.
    pub command: String,
    /// Clock note: latencies use one host clock unless a target is remote.
    pub clock: String,
}

/// One interval histogram of one group: a line of `latency.hlog`.
#[derive(Clone, Debug)]
pub struct IntervalHistogram {
    /// Tag: the group name, with `.uncorrected` appended for latency from the send time.
    pub tag: String,
    /// Interval start, milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Interval length in milliseconds (1000 except for the last one).
    pub duration_ms: u64,
    /// Latency in microseconds, 1 us .. 1 h, 3 significant digits.
    pub histogram: hdrhistogram::Histogram<u64>,
}

/// Everything one run produced, handed from the load generator to the report writer.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// `summary.json` / `summary.csv`.
    pub summary: Summary,
    /// `timeseries.csv`.
    pub timeseries: Vec<TimeseriesRow>,
    /// `latency.hlog`, in start-time order.
    pub intervals: Vec<IntervalHistogram>,
    /// Whole-run corrected latency histogram per group (for charts), keyed by group name.
    pub histograms: BTreeMap<String, hdrhistogram::Histogram<u64>>,
    /// `scenario.resolved.toml`: the scenario with every default filled in.
    pub scenario_toml: String,
    /// `meta.json`.
    pub meta: Meta,
    /// `arrivals.csv`: a few sample clients' deliveries per group (empty: not written).
    pub arrivals: Vec<ArrivalRow>,
    /// `faults.csv`: the fault timeline as it happened (empty: not written).
    pub faults: Vec<FaultRow>,
}

/// A fresh latency histogram with the range pushbench uses everywhere:
/// 1 us .. 1 h in microseconds, 3 significant digits.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("constant bounds are valid")
}
