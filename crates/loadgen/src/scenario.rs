//! Scenario files: the raw TOML shape (serde, unknown keys rejected), `--set`
//! overrides applied to the TOML value, and validation into the typed [`Scenario`].
//!
//! Parsing happens in two steps, as ripgrep does with its config: serde checks the
//! shape (names and types of keys), then [`validate`] checks meaning (a poll group
//! may not set `heartbeat`, a rate must be positive) and fills in every default, so
//! the rest of the crate never sees an `Option` that means "use the default".
//!
//! # Keys (defaults in brackets; durations are humantime strings such as "500ms", "20s")
//!
//! - top level: `name` (required), `description`, `duration` ["10s"], `warmup`
//!   ["1s"], `grace` ["2s"], `seed` [1], `source_addresses` (local IP addresses the
//!   clients connect from, spread evenly; one address reaches one server port through at
//!   most the ephemeral port range, ~28k connections) [none: the kernel picks].
//! - `[publisher]`: `rate` events/s over all topics [10], `payload_bytes` [256],
//!   `topics` [1], `pattern` = "constant" | "poisson" | "burst" ["constant"],
//!   `burst_size` (burst only) [10], `connections` (pipelined publishing lanes; topics
//!   are spread over them, events of one topic stay on one) [4].
//! - `[[group]]`: `name` [the strategy], `strategy` = poll | long-poll | sse |
//!   websocket | beacon | chat (required), `clients` [1], `ramp_up` ["0s"], and:
//!   - poll: `interval` ["1s"; "0s": back to back, fixed-delay only], `schedule` =
//!     "fixed-rate" | "fixed-delay" ["fixed-delay"], `cursor` = "since" | "latest"
//!     ["since"], `conditional` [false], `limit` [1000], `max_in_flight` (fixed-rate)
//!     [32];
//!   - long-poll: `cursor` = "since" | "none" ["since"], `wait` ["25s"];
//!   - sse: `resume` [true], `read_timeout` ["30s"];
//!   - websocket: `format` = "text" | "binary" ["text"], `heartbeat` (a duration or
//!     "off") ["off"], `heartbeat_misses` [3], `resume` [true], `read_delay` (a
//!     slow consumer: pause after each frame) ["0s"];
//!   - beacon: `rate` uploads/s per client [1], `payload_bytes` [the publisher's];
//!   - chat: `publish_via` = "websocket" | "post" ["websocket"], `rate` messages/s per
//!     client [1], `payload_bytes` [the publisher's].
//! - `[target]` (optional): `base_url` (required in the table), and per endpoint
//!   (`poll`, `latest`, `long_poll`, `sse`, `websocket`, `publish`, `beacon`) a table
//!   with `url` (a template with `{topic}`, `{cursor}`, `{wait}`, `{format}`,
//!   `{limit}`; query parameters holding `{cursor}` are dropped when there is no
//!   cursor) and `cursor` = "query" | "last-event-id" | "if-none-match" |
//!   "if-modified-since" | "none". Defaults are pushbench's own server's paths.
//! - `[network]` (optional; docs/scenarios.md): `preset` = lan | wifi | 3g | satellite
//!   | lossy, then `latency`, `jitter`, `bandwidth` ("1mbit", "unlimited"), `loss`
//!   (a probability) for both directions, then `[network.up]` / `[network.down]`
//!   with the same keys, each overriding the one before; `publisher` = "direct" |
//!   "proxied" ["direct"].
//! - `[[fault]]` (optional, any number): `at` (from the window start, required),
//!   `kind` (required) and its keys: blackhole (`duration`, `groups`), reset
//!   (`groups`), flap (`duration`, `period`, `down`, `groups`), server-restart
//!   (`duration`, `keep_log` [true]; embedded server only), publisher-burst (`count`,
//!   `rate` [1000]). `groups` lists group names [every group]. A fault must end
//!   before the run does (duration + grace).
//!
//! `--set key=value` addresses keys by dotted path; array entries by index from 0 or
//! by group name: `publisher.rate=200`, `group.0.clients=5`, `group.sse.resume=false`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What is wrong with a scenario. Every message names the file, the key and, where
/// known, the line, and says what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong name, type or value.
    #[error("{path}{}: {}{message}", line.map(|l| format!(" line {l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!("key `{key}`: ") })]
    Invalid {
        /// The file (or `<string>`).
        path: String,
        /// Dotted key path (`group.1.interval`), empty when unknown.
        key: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A `--set key=value` override that cannot be applied.
    #[error("--set {arg:?}: {message}")]
    Override {
        /// The override as given.
        arg: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

// ---------------------------------------------------------------------------------
// Raw shape (what serde reads and what `to_resolved_toml` writes).

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    duration: Option<String>,
    warmup: Option<String>,
    grace: Option<String>,
    seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    source_addresses: Vec<String>,
    publisher: Option<RawPublisher>,
    #[serde(rename = "group", default)]
    groups: Vec<RawGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<RawTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<RawNetwork>,
    #[serde(rename = "fault", default, skip_serializing_if = "Vec::is_empty")]
    faults: Vec<RawFault>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(skip_serializing_if = "Option::is_none")]
    preset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bandwidth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    up: Option<RawLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    down: Option<RawLink>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bandwidth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: Option<String>,
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_log: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    down: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPublisher {
    rate: Option<f64>,
    payload_bytes: Option<u64>,
    topics: Option<u32>,
    pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    burst_size: Option<u32>,
    connections: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Option<String>,
    strategy: Option<String>,
    clients: Option<u32>,
    ramp_up: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conditional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_in_flight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_misses: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_delay: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    poll: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latest: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    long_poll: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sse: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    websocket: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish: Option<RawEndpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    beacon: Option<RawEndpoint>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    url: Option<String>,
    cursor: Option<String>,
}

// ---------------------------------------------------------------------------------
// Typed config.

/// A validated scenario with every default filled in.
#[derive(Clone, Debug)]
pub struct Scenario {
    name: String,
    description: String,
    duration: Duration,
    warmup: Duration,
    grace: Duration,
    seed: u64,
    source_addresses: Vec<std::net::IpAddr>,
    publisher: PublisherConfig,
    groups: Vec<GroupConfig>,
    target: Option<String>,
    endpoints: Endpoints,
    network: Option<NetworkConfig>,
    faults: Vec<FaultConfig>,
}

/// The `[network]` table: the impairment netem applies between the clients and the
/// server (one proxy per group, so faults can target groups).
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The preset the values started from, if any.
    pub preset: Option<String>,
    /// Both directions' settings, preset and explicit values combined.
    pub impairment: pushbench_netem::Impairment,
    /// True when the publisher goes through the impaired link too (`publisher =
    /// "proxied"`); by default it publishes directly, so the link under test is the
    /// subscribers' and publish times are not blurred by it.
    pub publisher_proxied: bool,
}

/// What a `[[fault]]` does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    /// Half-open link: no bytes, no FIN, no RST, for `duration`.
    Blackhole,
    /// Every connection of the groups is reset, once.
    Reset,
    /// The link goes down for `down` every `period`, for `duration`.
    Flap {
        /// Time from one down phase to the next.
        period: Duration,
        /// Length of each down phase.
        down: Duration,
    },
    /// The embedded server stops, stays down for `duration`, and starts again on
    /// the same port, keeping its topic logs or starting empty.
    ServerRestart {
        /// Keep the topic logs (the same server restarted) or lose them (a new one).
        keep_log: bool,
    },
    /// The publisher sends `count` extra events at `rate` per second.
    PublisherBurst {
        /// Events per second during the burst.
        rate: f64,
        /// Extra events.
        count: u32,
    },
}

impl FaultKind {
    /// The name used in scenario files and `faults.csv`.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Blackhole => "blackhole",
            FaultKind::Reset => "reset",
            FaultKind::Flap { .. } => "flap",
            FaultKind::ServerRestart { .. } => "server-restart",
            FaultKind::PublisherBurst { .. } => "publisher-burst",
        }
    }

    /// True for faults netem applies on the clients' links.
    pub fn is_link_fault(&self) -> bool {
        matches!(
            self,
            FaultKind::Blackhole | FaultKind::Reset | FaultKind::Flap { .. }
        )
    }
}

/// One `[[fault]]` of the timeline.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// Start, from the start of the measured window.
    pub at: Duration,
    /// What happens.
    pub kind: FaultKind,
    /// How long it lasts (zero for a reset; the burst's length for a burst).
    pub duration: Duration,
    /// Groups whose links it hits; empty = every group.
    pub groups: Vec<String>,
}

/// How the publisher spaces events on its open-loop timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pattern {
    /// Evenly spaced: event i at `start + i / rate`.
    Constant,
    /// Exponential gaps with mean `1 / rate` (seeded).
    Poisson,
    /// `size` events at once, bursts spaced so the average is `rate`.
    Burst {
        /// Events per burst.
        size: u32,
    },
}

/// The `[publisher]` table.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// Events per second over all topics.
    pub rate: f64,
    /// Size of each event body in bytes (the stamp is never truncated).
    pub payload_bytes: usize,
    /// Topics published to, round robin.
    pub topics: u32,
    /// Spacing of events.
    pub pattern: Pattern,
    /// Concurrent publishing connections, so one slow response never delays the schedule.
    pub connections: u32,
}

/// `poll` `schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollSchedule {
    /// `setInterval`: a request every interval, overlapping when the last is busy.
    FixedRate,
    /// `setTimeout`: next request one interval after the last response.
    FixedDelay,
}

/// `poll` `cursor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollCursor {
    /// Log semantics: `?since=N`, every event.
    Since,
    /// State semantics: `/latest`, only the newest event.
    Latest,
}

/// `long-poll` `cursor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongPollCursor {
    /// `?since=N`: nothing is lost between requests.
    Since,
    /// Naive: wait for the next event; events between responses are lost.
    None,
}

/// WebSocket frame format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFormat {
    /// `{"seq":..,"data":..}` text frames.
    Text,
    /// `0x01 + seq + data` binary frames.
    Binary,
}

/// How chat clients publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishVia {
    /// `{"type":"publish","data":..}` on the client's WebSocket.
    WebSocket,
    /// `POST /topics/{t}/events` on a separate keep-alive connection.
    Post,
}

/// One strategy with its options.
#[derive(Clone, Debug)]
pub enum Strategy {
    /// Short polling.
    Poll {
        /// Time between requests.
        interval: Duration,
        /// fixed-rate or fixed-delay.
        schedule: PollSchedule,
        /// since or latest.
        cursor: PollCursor,
        /// Send `If-None-Match` and count 304s.
        conditional: bool,
        /// `limit=` per request.
        limit: u32,
        /// fixed-rate only: most requests in flight per client (ticks beyond it are skipped and counted).
        max_in_flight: u32,
    },
    /// Long polling.
    LongPoll {
        /// since or none.
        cursor: LongPollCursor,
        /// How long the server may hold a request.
        wait: Duration,
    },
    /// Server-Sent Events.
    Sse {
        /// Send `Last-Event-ID` on reconnect.
        resume: bool,
        /// Reconnect when nothing (not even a heartbeat) arrives for this long.
        read_timeout: Duration,
    },
    /// WebSocket.
    WebSocket {
        /// Frame format.
        format: WsFormat,
        /// Application ping interval; `None` = no heartbeat.
        heartbeat: Option<Duration>,
        /// Unanswered pings before the peer is declared dead.
        heartbeat_misses: u32,
        /// Reconnect with `?since=` the last seq seen.
        resume: bool,
        /// A slow consumer: pause this long after reading each frame (`None`: read at once).
        read_delay: Option<Duration>,
    },
    /// `sendBeacon`-style uploads.
    Beacon {
        /// Uploads per second per client.
        rate: f64,
        /// Upload body size.
        payload_bytes: usize,
    },
    /// Bidirectional chat: every client publishes and receives everything on one topic.
    Chat {
        /// How clients publish.
        publish_via: PublishVia,
        /// Messages per second per client.
        rate: f64,
        /// Message body size.
        payload_bytes: usize,
    },
}

impl Strategy {
    /// The strategy's name as written in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            Strategy::Poll { .. } => "poll",
            Strategy::LongPoll { .. } => "long-poll",
            Strategy::Sse { .. } => "sse",
            Strategy::WebSocket { .. } => "websocket",
            Strategy::Beacon { .. } => "beacon",
            Strategy::Chat { .. } => "chat",
        }
    }
}

/// One `[[group]]`.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// Unique name (the hlog tag).
    pub name: String,
    /// Clients in the group.
    pub clients: u32,
    /// Clients start evenly spread over this time.
    pub ramp_up: Duration,
    /// What the clients do.
    pub strategy: Strategy,
}

/// How a client tells a server where it is in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorStyle {
    /// `{cursor}` in the URL template.
    Query,
    /// `Last-Event-ID` header.
    LastEventId,
    /// `If-None-Match` with the last `ETag`.
    IfNoneMatch,
    /// `If-Modified-Since` with the last `Last-Modified`.
    IfModifiedSince,
    /// The server keeps no cursor.
    None,
}

impl CursorStyle {
    fn parse(s: &str) -> Option<CursorStyle> {
        Some(match s {
            "query" => CursorStyle::Query,
            "last-event-id" => CursorStyle::LastEventId,
            "if-none-match" => CursorStyle::IfNoneMatch,
            "if-modified-since" => CursorStyle::IfModifiedSince,
            "none" => CursorStyle::None,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            CursorStyle::Query => "query",
            CursorStyle::LastEventId => "last-event-id",
            CursorStyle::IfNoneMatch => "if-none-match",
            CursorStyle::IfModifiedSince => "if-modified-since",
            CursorStyle::None => "none",
        }
    }
}

/// A URL template (`{topic}`, `{cursor}`, `{wait}`, `{format}`, `{limit}`) and a cursor style.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Path (and query) template, appended to the base URL unless it starts with a scheme.
    pub url: String,
    /// How the cursor travels.
    pub cursor: CursorStyle,
}

impl Endpoint {
    /// True when a cursor reaches the server (in the URL or a `Last-Event-ID`), so a
    /// client can start from an exact position; otherwise the server decides where a
    /// subscription starts, and the client counts itself subscribed once it answers.
    pub fn takes_cursor(&self) -> bool {
        match self.cursor {
            CursorStyle::Query => self.url.contains("{cursor}"),
            CursorStyle::LastEventId => true,
            _ => false,
        }
    }
}

/// URL templates for every strategy; the defaults are pushbench's own server.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Short poll (log).
    pub poll: Endpoint,
    /// Latest-state poll.
    pub latest: Endpoint,
    /// Long poll (`{cursor}` is left out entirely for cursor = "none").
    pub long_poll: Endpoint,
    /// SSE.
    pub sse: Endpoint,
    /// WebSocket.
    pub websocket: Endpoint,
    /// Publish (POST).
    pub publish: Endpoint,
    /// Beacon (POST).
    pub beacon: Endpoint,
}

impl Default for Endpoints {
    fn default() -> Self {
        let e = |url: &str, cursor| Endpoint {
            url: url.to_string(),
            cursor,
        };
        Endpoints {
            poll: e(
                "/topics/{topic}/events?since={cursor}&limit={limit}",
                CursorStyle::Query,
            ),
            latest: e("/topics/{topic}/latest", CursorStyle::None),
            long_poll: e(
                "/topics/{topic}/events?since={cursor}&wait={wait}",
                CursorStyle::Query,
            ),
            sse: e("/topics/{topic}/sse", CursorStyle::LastEventId),
            websocket: e(
                "/topics/{topic}/ws?since={cursor}&format={format}",
                CursorStyle::Query,
            ),
            publish: e("/topics/{topic}/events", CursorStyle::None),
            beacon: e("/beacon", CursorStyle::None),
        }
    }
}

impl Scenario {
    /// Reads, overrides (`key=value`, dotted paths such as `publisher.rate=200` or
    /// `group.0.clients=5`) and validates a scenario file.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_str_with(&text, &path.display().to_string(), overrides)
    }

    /// Like [`Scenario::from_file`] for TOML already in memory; `origin` names it in errors.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Scenario, ScenarioError> {
        Scenario::from_str_with(text, origin, overrides)
    }

    fn from_str_with(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Scenario, ScenarioError> {
        let invalid_from_toml = |e: toml::de::Error, src: &str| {
            let line = e.span().map(|s| line_of(src, s.start));
            ScenarioError::Invalid {
                path: origin.to_string(),
                key: String::new(),
                line,
                message: e.message().trim().to_string(),
            }
        };
        // First pass on the text itself, so shape errors carry a line number.
        let raw: RawScenario = toml::from_str(text).map_err(|e| invalid_from_toml(e, text))?;
        let raw = if overrides.is_empty() {
            raw
        } else {
            let mut table: toml::Table =
                toml::from_str(text).map_err(|e| invalid_from_toml(e, text))?;
            for arg in overrides {
                apply_override(&mut table, arg)?;
            }
            toml::Value::Table(table)
                .try_into::<RawScenario>()
                .map_err(|e| ScenarioError::Invalid {
                    path: format!("{origin} (after --set {})", overrides.join(" --set ")),
                    key: String::new(),
                    line: None,
                    message: e.message().trim().to_string(),
                })?
        };
        validate(raw, origin, text, overrides)
    }

    /// Scenario name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// What the scenario teaches.
    pub fn description(&self) -> &str {
        &self.description
    }
    /// The measured window, without warm-up.
    pub fn duration(&self) -> Duration {
        self.duration
    }
    /// Changes the measured window (the CLI's `--duration`).
    pub fn set_duration(&mut self, d: Duration) {
        self.duration = d;
    }
    /// Warm-up before the measured window.
    pub fn warmup(&self) -> Duration {
        self.warmup
    }
    /// Time after the measured window for late deliveries to arrive.
    pub fn grace(&self) -> Duration {
        self.grace
    }
    /// Seed of every random choice.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Local addresses the clients connect from, spread evenly (empty: the kernel picks).
    pub fn source_addresses(&self) -> &[std::net::IpAddr] {
        &self.source_addresses
    }
    /// The `[publisher]` table.
    pub fn publisher(&self) -> &PublisherConfig {
        &self.publisher
    }
    /// The `[[group]]`s.
    pub fn groups(&self) -> &[GroupConfig] {
        &self.groups
    }
    /// `[target] base_url`, if the file gives one.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }
    /// URL templates (pushbench's own unless `[target]` overrides them).
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
    /// The `[network]` impairment, if any.
    pub fn network(&self) -> Option<&NetworkConfig> {
        self.network.as_ref()
    }
    /// The `[[fault]]` timeline, in file order.
    pub fn faults(&self) -> &[FaultConfig] {
        &self.faults
    }
    /// True when the clients need netem proxies: a `[network]` or a link fault.
    pub fn needs_proxies(&self) -> bool {
        self.network.is_some() || self.faults.iter().any(|f| f.kind.is_link_fault())
    }
    /// True when a fault restarts the server (only the embedded one can be).
    pub fn restarts_server(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.kind, FaultKind::ServerRestart { .. }))
    }

    /// The scenario as TOML with every default filled in (`scenario.resolved.toml`).
    pub fn to_resolved_toml(&self) -> String {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        let p = &self.publisher;
        let (pattern, burst_size) = match p.pattern {
            Pattern::Constant => ("constant", None),
            Pattern::Poisson => ("poisson", None),
            Pattern::Burst { size } => ("burst", Some(size)),
        };
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let mut r = RawGroup {
                    name: Some(g.name.clone()),
                    strategy: Some(g.strategy.kind().to_string()),
                    clients: Some(g.clients),
                    ramp_up: Some(d(g.ramp_up)),
                    ..RawGroup::default()
                };
                match &g.strategy {
                    Strategy::Poll {
                        interval,
                        schedule,
                        cursor,
                        conditional,
                        limit,
                        max_in_flight,
                    } => {
                        r.interval = Some(d(*interval));
                        r.schedule = Some(
                            match schedule {
                                PollSchedule::FixedRate => "fixed-rate",
                                PollSchedule::FixedDelay => "fixed-delay",
                            }
                            .into(),
                        );
                        r.cursor = Some(
                            match cursor {
                                PollCursor::Since => "since",
                                PollCursor::Latest => "latest",
                            }
                            .into(),
                        );
                        r.conditional = Some(*conditional);
                        r.limit = Some(*limit);
                        r.max_in_flight = Some(*max_in_flight);
                    }
                    Strategy::LongPoll { cursor, wait } => {
                        r.cursor = Some(
                            match cursor {
                                LongPollCursor::Since => "since",
                                LongPollCursor::None => "none",
                            }
                            .into(),
                        );
                        r.wait = Some(d(*wait));
                    }
                    Strategy::Sse {
                        resume,
                        read_timeout,
                    } => {
                        r.resume = Some(*resume);
                        r.read_timeout = Some(d(*read_timeout));
                    }
                    Strategy::WebSocket {
                        format,
                        heartbeat,
                        heartbeat_misses,
                        resume,
                        read_delay,
                    } => {
                        r.read_delay = read_delay.map(d);
                        r.format = Some(
                            match format {
                                WsFormat::Text => "text",
                                WsFormat::Binary => "binary",
                            }
                            .into(),
                        );
                        r.heartbeat = Some(heartbeat.map(d).unwrap_or_else(|| "off".into()));
                        r.heartbeat_misses = Some(*heartbeat_misses);
                        r.resume = Some(*resume);
                    }
                    Strategy::Beacon {
                        rate,
                        payload_bytes,
                    } => {
                        r.rate = Some(*rate);
                        r.payload_bytes = Some(*payload_bytes as u64);
                    }
                    Strategy::Chat {
                        publish_via,
                        rate,
                        payload_bytes,
                    } => {
                        r.publish_via = Some(
                            match publish_via {
                                PublishVia::WebSocket => "websocket",
                                PublishVia::Post => "post",
                            }
                            .into(),
                        );
                        r.rate = Some(*rate);
                        r.payload_bytes = Some(*payload_bytes as u64);
                    }
                }
                r
            })
            .collect();
        let target = self.target.as_ref().map(|base| {
            let ep = |e: &Endpoint| {
                Some(RawEndpoint {
                    url: Some(e.url.clone()),
                    cursor: Some(e.cursor.as_str().to_string()),
                })
            };
            let e = &self.endpoints;
            RawTarget {
                base_url: Some(base.clone()),
                poll: ep(&e.poll),
                latest: ep(&e.latest),
                long_poll: ep(&e.long_poll),
                sse: ep(&e.sse),
                websocket: ep(&e.websocket),
                publish: ep(&e.publish),
                beacon: ep(&e.beacon),
            }
        });
        let raw = RawScenario {
            name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            duration: Some(d(self.duration)),
            warmup: Some(d(self.warmup)),
            grace: Some(d(self.grace)),
            seed: Some(self.seed),
            source_addresses: self
                .source_addresses
                .iter()
                .map(|a| a.to_string())
                .collect(),
            publisher: Some(RawPublisher {
                rate: Some(p.rate),
                payload_bytes: Some(p.payload_bytes as u64),
                topics: Some(p.topics),
                pattern: Some(pattern.into()),
                burst_size,
                connections: Some(p.connections),
            }),
            groups,
            target,
            network: self.network.as_ref().map(|n| {
                let link = |l: &pushbench_netem::LinkConfig| RawLink {
                    latency: Some(d(l.latency)),
                    jitter: Some(d(l.jitter)),
                    bandwidth: l.bandwidth.map(|b| b.to_string()),
                    loss: Some(l.loss),
                };
                RawNetwork {
                    preset: n.preset.clone(),
                    publisher: Some(
                        if n.publisher_proxied {
                            "proxied"
                        } else {
                            "direct"
                        }
                        .into(),
                    ),
                    up: Some(link(&n.impairment.up)),
                    down: Some(link(&n.impairment.down)),
                    ..RawNetwork::default()
                }
            }),
            faults: self
                .faults
                .iter()
                .map(|f| {
                    let mut r = RawFault {
                        at: Some(d(f.at)),
                        kind: Some(f.kind.name().into()),
                        groups: (!f.groups.is_empty()).then(|| f.groups.clone()),
                        ..RawFault::default()
                    };
                    match f.kind {
                        FaultKind::Blackhole | FaultKind::ServerRestart { .. } => {
                            r.duration = Some(d(f.duration));
                        }
                        FaultKind::Flap { period, down } => {
                            r.duration = Some(d(f.duration));
                            r.period = Some(d(period));
                            r.down = Some(d(down));
                        }
                        FaultKind::Reset => {}
                        FaultKind::PublisherBurst { rate, count } => {
                            r.rate = Some(rate);
                            r.count = Some(count);
                        }
                    }
                    if let FaultKind::ServerRestart { keep_log } = f.kind {
                        r.keep_log = Some(keep_log);
                    }
                    r
                })
                .collect(),
        };
        toml::to_string(&raw).expect("a scenario of strings and numbers always serializes")
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The first key that is present but not in `allowed` (a key of another strategy
/// or fault kind).
fn first_not_allowed<'a>(set: &[(&'a str, bool)], allowed: &[&str]) -> Option<&'a str> {
    set.iter()
        .find(|(key, present)| *present && !allowed.contains(key))
        .map(|(key, _)| *key)
}

/// Best-effort line of a dotted key (`duration`, `publisher.rate`, `group.2.interval`)
/// in the source text, for errors found after serde (which has no spans then).
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let parts: Vec<&str> = key.split('.').collect();
    let (header, index, leaf): (Option<String>, usize, &str) = match parts.as_slice() {
        [leaf] => (None, 0, leaf),
        [table, leaf] => (Some(format!("[{table}]")), 0, leaf),
        [table, idx, leaf] => (Some(format!("[[{table}]]")), idx.parse().ok()?, leaf),
        [table, idx, sub, leaf] => {
            let _ = idx;
            (Some(format!("[{table}.{sub}]")), 0, leaf)
        }
        _ => return None,
    };
    let mut in_section = header.is_none();
    let mut seen = 0usize;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let h: String = t.chars().filter(|c| !c.is_whitespace()).collect();
            in_section = match &header {
                Some(want) if h.starts_with(want.as_str()) => {
                    seen += 1;
                    seen == index + 1
                }
                _ => false,
            };
            if in_section && leaf.is_empty() {
                return Some(n + 1);
            }
            continue;
        }
        if in_section {
            if let Some(rest) = t.strip_prefix(leaf) {
                if rest.trim_start().starts_with('=') {
                    return Some(n + 1);
                }
            }
        }
    }
    None
}

/// Applies one `key=value` to the TOML table before validation.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), ScenarioError> {
    let err = |message: String| ScenarioError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| err("expected key=value, for example publisher.rate=200".into()))?;
    let key = key.trim();
    let value_text = value.trim();
    // A TOML value if it parses as one (numbers, booleans, quoted strings), else a bare string.
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value_text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value_text.to_string()));
    let parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(err("empty key".into()));
    }
    if parts.len() == 1 {
        table.insert(parts[0].to_string(), value);
        return Ok(());
    }
    let mut node: &mut toml::Value = table
        .entry(parts[0].to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    for (i, part) in parts.iter().enumerate().skip(1) {
        let last = i + 1 == parts.len();
        node = match node {
            toml::Value::Table(t) => {
                if last {
                    t.insert(part.to_string(), value);
                    return Ok(());
                }
                t.entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(items) => {
                let pos = match part.parse::<usize>() {
                    Ok(n) if n < items.len() => n,
                    Ok(n) => {
                        return Err(err(format!(
                            "index {n} is out of range: there are {} entries (counted from 0)",
                            items.len()
                        )));
                    }
                    Err(_) => items
                        .iter()
                        .position(|it| it.get("name").and_then(|n| n.as_str()) == Some(part))
                        .ok_or_else(|| {
                            err(format!(
                                "no entry named {part:?}: use an index from 0 or a group name"
                            ))
                        })?,
                };
                if last {
                    items[pos] = value;
                    return Ok(());
                }
                &mut items[pos]
            }
            _ => {
                return Err(err(format!(
                    "{} is not a table, so it has no key {part:?}",
                    parts[..i].join(".")
                )));
            }
        };
    }
    Ok(())
}

fn validate(
    raw: RawScenario,
    origin: &str,
    text: &str,
    overrides: &[String],
) -> Result<Scenario, ScenarioError> {
    let bad = |key: &str, message: String| {
        // A value that came from --set has no line in the file: name the override.
        match overrides
            .iter()
            .find(|o| o.split('=').next().map(str::trim) == Some(key))
        {
            Some(o) => ScenarioError::Invalid {
                path: format!("{origin} (--set {o})"),
                key: key.to_string(),
                line: None,
                message,
            },
            None => ScenarioError::Invalid {
                path: origin.to_string(),
                key: key.to_string(),
                line: find_key_line(text, key),
                message,
            },
        }
    };
    let dur =
        |key: &str, v: &Option<String>, default: Duration| -> Result<Duration, ScenarioError> {
            match v {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s.trim()).map_err(|e| {
                bad(
                    key,
                    format!(
                        "{s:?} is not a duration ({e}): write it like \"20s\", \"500ms\" or \"2m\""
                    ),
                )
            }),
        }
        };
    let name = raw
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            bad(
                "name",
                "missing: every scenario needs a name, e.g. name = \"smoke\"".into(),
            )
        })?;
    let description = raw.description.clone().unwrap_or_default();
    let duration = dur("duration", &raw.duration, Duration::from_secs(10))?;
    if duration.is_zero() {
        return Err(bad("duration", "must be longer than 0s".into()));
    }
    let warmup = dur("warmup", &raw.warmup, Duration::from_secs(1))?;
    let grace = dur("grace", &raw.grace, Duration::from_secs(2))?;
    let seed = raw.seed.unwrap_or(1);
    let source_addresses = raw
        .source_addresses
        .iter()
        .map(|a| {
            a.trim().parse::<std::net::IpAddr>().map_err(|_| {
                bad(
                    "source_addresses",
                    format!("{a:?} is not an IP address: list local addresses, e.g. [\"127.0.0.2\", \"127.0.0.3\"]"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if source_addresses.len() > 256 {
        return Err(bad(
            "source_addresses",
            format!("{} addresses: use at most 256", source_addresses.len()),
        ));
    }

    let rp = raw.publisher.unwrap_or_default();
    let rate = rp.rate.unwrap_or(10.0);
    if !(rate > 0.0 && rate <= 1_000_000.0) {
        return Err(bad(
            "publisher.rate",
            format!(
                "{rate} is not allowed: use events per second, more than 0 and at most 1000000"
            ),
        ));
    }
    let payload_bytes = rp.payload_bytes.unwrap_or(256);
    if payload_bytes > 1 << 20 {
        return Err(bad(
            "publisher.payload_bytes",
            format!("{payload_bytes} is too large: use at most 1048576"),
        ));
    }
    let topics = rp.topics.unwrap_or(1);
    if topics == 0 || topics > 10_000 {
        return Err(bad(
            "publisher.topics",
            format!("{topics} is not allowed: use 1..=10000"),
        ));
    }
    let pattern = match rp.pattern.as_deref().unwrap_or("constant") {
        "constant" => Pattern::Constant,
        "poisson" => Pattern::Poisson,
        "burst" => Pattern::Burst {
            size: rp.burst_size.unwrap_or(10).max(1),
        },
        other => {
            return Err(bad(
                "publisher.pattern",
                format!("{other:?} is not a pattern: use \"constant\", \"poisson\" or \"burst\""),
            ));
        }
    };
    if rp.burst_size.is_some() && !matches!(pattern, Pattern::Burst { .. }) {
        return Err(bad(
            "publisher.burst_size",
            "only allowed with pattern = \"burst\"".into(),
        ));
    }
    let connections = rp.connections.unwrap_or(4);
    if connections == 0 || connections > 256 {
        return Err(bad(
            "publisher.connections",
            format!("{connections} is not allowed: use 1..=256"),
        ));
    }
    let publisher = PublisherConfig {
        rate,
        payload_bytes: payload_bytes as usize,
        topics,
        pattern,
        connections,
    };

    if raw.groups.is_empty() {
        return Err(bad(
            "group",
            "no [[group]]: add at least one, e.g. [[group]] name = \"sse\" strategy = \"sse\" clients = 10".into(),
        ));
    }
    let mut groups = Vec::new();
    for (i, g) in raw.groups.iter().enumerate() {
        let k = |leaf: &str| format!("group.{i}.{leaf}");
        let strategy_name = g.strategy.clone().ok_or_else(|| {
            bad(
                &k("strategy"),
                "missing: use poll, long-poll, sse, websocket, beacon or chat".into(),
            )
        })?;
        let name = g.name.clone().unwrap_or_else(|| strategy_name.clone());
        if groups.iter().any(|x: &GroupConfig| x.name == name) {
            return Err(bad(
                &k("name"),
                format!("{name:?} is used by two groups: give each group a unique name"),
            ));
        }
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',') {
            return Err(bad(
                &k("name"),
                format!("{name:?} is not allowed: use a non-empty name without spaces or commas"),
            ));
        }
        let clients = g.clients.unwrap_or(1);
        if clients > 100_000 {
            return Err(bad(
                &k("clients"),
                format!("{clients} is too many: use at most 100000"),
            ));
        }
        let ramp_up = dur(&k("ramp_up"), &g.ramp_up, Duration::ZERO)?;
        // Which option keys each strategy accepts.
        let allowed: &[&str] = match strategy_name.as_str() {
            "poll" => &[
                "interval",
                "schedule",
                "cursor",
                "conditional",
                "limit",
                "max_in_flight",
            ],
            "long-poll" => &["cursor", "wait"],
            "sse" => &["resume", "read_timeout"],
            "websocket" => &[
                "format",
                "heartbeat",
                "heartbeat_misses",
                "resume",
                "read_delay",
            ],
            "beacon" => &["rate", "payload_bytes"],
            "chat" => &["publish_via", "rate", "payload_bytes"],
            other => {
                return Err(bad(
                    &k("strategy"),
                    format!(
                        "{other:?} is not a strategy: use poll, long-poll, sse, websocket, beacon or chat"
                    ),
                ));
            }
        };
        let set: [(&str, bool); 16] = [
            ("read_delay", g.read_delay.is_some()),
            ("interval", g.interval.is_some()),
            ("schedule", g.schedule.is_some()),
            ("cursor", g.cursor.is_some()),
            ("conditional", g.conditional.is_some()),
            ("limit", g.limit.is_some()),
            ("max_in_flight", g.max_in_flight.is_some()),
            ("wait", g.wait.is_some()),
            ("resume", g.resume.is_some()),
            ("read_timeout", g.read_timeout.is_some()),
            ("format", g.format.is_some()),
            ("heartbeat", g.heartbeat.is_some()),
            ("heartbeat_misses", g.heartbeat_misses.is_some()),
            ("rate", g.rate.is_some()),
            ("publish_via", g.publish_via.is_some()),
            ("payload_bytes", g.payload_bytes.is_some()),
        ];
        if let Some(key) = first_not_allowed(&set, allowed) {
            return Err(bad(
                &k(key),
                format!(
                    "not an option of strategy {strategy_name:?}: it accepts {}",
                    allowed.join(", ")
                ),
            ));
        }
        let rate_of = |default: f64| -> Result<f64, ScenarioError> {
            let r = g.rate.unwrap_or(default);
            if r > 0.0 && r <= 100_000.0 {
                Ok(r)
            } else {
                Err(bad(
                    &k("rate"),
                    format!("{r} is not allowed: use a rate per client per second, more than 0"),
                ))
            }
        };
        let strategy = match strategy_name.as_str() {
            "poll" => {
                let interval = dur(&k("interval"), &g.interval, Duration::from_secs(1))?;
                let schedule = match g.schedule.as_deref().unwrap_or("fixed-delay") {
                    "fixed-rate" => PollSchedule::FixedRate,
                    "fixed-delay" => PollSchedule::FixedDelay,
                    other => {
                        return Err(bad(
                            &k("schedule"),
                            format!(
                                "{other:?} is not allowed: use \"fixed-rate\" (setInterval) or \"fixed-delay\" (setTimeout)"
                            ),
                        ));
                    }
                };
                // 0s with fixed-delay: the next request as soon as the last answer
                // is in (back to back, as wrk and oha poll). A fixed rate needs a period.
                if interval.is_zero() && schedule == PollSchedule::FixedRate {
                    return Err(bad(
                        &k("interval"),
                        "0s is only allowed with schedule = \"fixed-delay\" (back-to-back polling); a fixed-rate interval must be at least 1ms".into(),
                    ));
                }
                if !interval.is_zero() && interval < Duration::from_millis(1) {
                    return Err(bad(
                        &k("interval"),
                        "must be at least 1ms, or 0s for back-to-back polling (fixed-delay)".into(),
                    ));
                }
                Strategy::Poll {
                    interval,
                    schedule,
                    cursor: match g.cursor.as_deref().unwrap_or("since") {
                        "since" => PollCursor::Since,
                        "latest" => PollCursor::Latest,
                        other => {
                            return Err(bad(
                                &k("cursor"),
                                format!(
                                    "{other:?} is not allowed for poll: use \"since\" (log) or \"latest\" (state)"
                                ),
                            ));
                        }
                    },
                    conditional: g.conditional.unwrap_or(false),
                    limit: g.limit.unwrap_or(1000).max(1),
                    max_in_flight: g.max_in_flight.unwrap_or(32).max(1),
                }
            }
            "long-poll" => Strategy::LongPoll {
                cursor: match g.cursor.as_deref().unwrap_or("since") {
                    "since" => LongPollCursor::Since,
                    "none" => LongPollCursor::None,
                    other => {
                        return Err(bad(
                            &k("cursor"),
                            format!(
                                "{other:?} is not allowed for long-poll: use \"since\" or \"none\" (naive)"
                            ),
                        ));
                    }
                },
                wait: dur(&k("wait"), &g.wait, Duration::from_secs(25))?,
            },
            "sse" => Strategy::Sse {
                resume: g.resume.unwrap_or(true),
                read_timeout: dur(&k("read_timeout"), &g.read_timeout, Duration::from_secs(30))?,
            },
            "websocket" => Strategy::WebSocket {
                format: match g.format.as_deref().unwrap_or("text") {
                    "text" => WsFormat::Text,
                    "binary" => WsFormat::Binary,
                    other => {
                        return Err(bad(
                            &k("format"),
                            format!("{other:?} is not allowed: use \"text\" or \"binary\""),
                        ));
                    }
                },
                heartbeat: match g.heartbeat.as_deref() {
                    None | Some("off") | Some("none") => None,
                    Some(_) => Some(dur(&k("heartbeat"), &g.heartbeat, Duration::ZERO)?)
                        .filter(|d| !d.is_zero()),
                },
                heartbeat_misses: g.heartbeat_misses.unwrap_or(3).max(1),
                resume: g.resume.unwrap_or(true),
                read_delay: dur(&k("read_delay"), &g.read_delay, Duration::ZERO)
                    .map(|d| Some(d).filter(|d| !d.is_zero()))?,
            },
            "beacon" => Strategy::Beacon {
                rate: rate_of(1.0)?,
                payload_bytes: g.payload_bytes.unwrap_or(payload_bytes) as usize,
            },
            "chat" => Strategy::Chat {
                publish_via: match g.publish_via.as_deref().unwrap_or("websocket") {
                    "websocket" => PublishVia::WebSocket,
                    "post" => PublishVia::Post,
                    other => {
                        return Err(bad(
                            &k("publish_via"),
                            format!("{other:?} is not allowed: use \"websocket\" or \"post\""),
                        ));
                    }
                },
                rate: rate_of(1.0)?,
                payload_bytes: g.payload_bytes.unwrap_or(payload_bytes) as usize,
            },
            _ => unreachable!("strategy names were checked above"),
        };
        groups.push(GroupConfig {
            name,
            clients,
            ramp_up,
            strategy,
        });
    }

    let mut endpoints = Endpoints::default();
    let mut target = None;
    if let Some(t) = &raw.target {
        let base = t.base_url.clone().ok_or_else(|| {
            bad(
                "target.base_url",
                "missing: [target] needs base_url = \"http://host:port\"".into(),
            )
        })?;
        if !(base.starts_with("http://") || base.starts_with("ws://")) {
            return Err(bad(
                "target.base_url",
                format!("{base:?} is not supported: use an http:// URL (TLS is not supported)"),
            ));
        }
        target = Some(base.trim_end_matches('/').to_string());
        let slots: [(&str, &Option<RawEndpoint>, &mut Endpoint); 7] = [
            ("poll", &t.poll, &mut endpoints.poll),
            ("latest", &t.latest, &mut endpoints.latest),
            ("long_poll", &t.long_poll, &mut endpoints.long_poll),
            ("sse", &t.sse, &mut endpoints.sse),
            ("websocket", &t.websocket, &mut endpoints.websocket),
            ("publish", &t.publish, &mut endpoints.publish),
            ("beacon", &t.beacon, &mut endpoints.beacon),
        ];
        for (name, raw_ep, slot) in slots {
            if let Some(r) = raw_ep {
                if let Some(url) = &r.url {
                    slot.url = url.clone();
                }
                if let Some(c) = &r.cursor {
                    slot.cursor = CursorStyle::parse(c).ok_or_else(|| {
                        bad(
                            &format!("target.0.{name}.cursor"),
                            format!("{c:?} is not a cursor style: use query, last-event-id, if-none-match, if-modified-since or none"),
                        )
                    })?;
                }
            }
        }
    }

    let network = match &raw.network {
        None => None,
        Some(n) => Some(validate_network(n, &bad, &dur)?),
    };
    let mut faults = Vec::new();
    for (i, f) in raw.faults.iter().enumerate() {
        faults.push(validate_fault(i, f, &groups, duration + grace, &bad, &dur)?);
    }

    Ok(Scenario {
        name,
        description,
        duration,
        warmup,
        grace,
        seed,
        source_addresses,
        publisher,
        groups,
        target,
        endpoints,
        network,
        faults,
    })
}

type Bad<'a> = dyn Fn(&str, String) -> ScenarioError + 'a;
type Dur<'a> = dyn Fn(&str, &Option<String>, Duration) -> Result<Duration, ScenarioError> + 'a;

/// `[network]`: a preset, then values for both directions, then `[network.up]` /
/// `[network.down]`, each overriding the one before.
fn validate_network(
    n: &RawNetwork,
    bad: &Bad<'_>,
    dur: &Dur<'_>,
) -> Result<NetworkConfig, ScenarioError> {
    use pushbench_netem::{Bandwidth, Impairment, LinkConfig, PRESETS};
    let mut imp = match &n.preset {
        None => Impairment::none(),
        Some(name) => Impairment::preset(name).map_err(|_| {
            bad(
                "network.preset",
                format!(
                    "{name:?} is not a preset: use {}",
                    PRESETS
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
    };
    let apply = |l: &mut LinkConfig,
                 prefix: &str,
                 latency: &Option<String>,
                 jitter: &Option<String>,
                 bandwidth: &Option<String>,
                 loss: Option<f64>|
     -> Result<(), ScenarioError> {
        let key = |leaf: &str| format!("{prefix}{leaf}");
        l.latency = dur(&key("latency"), latency, l.latency)?;
        l.jitter = dur(&key("jitter"), jitter, l.jitter)?;
        if let Some(b) = bandwidth {
            l.bandwidth = match b.trim() {
                "off" | "none" | "unlimited" => None,
                text => Some(text.parse::<Bandwidth>().map_err(|e| {
                    bad(
                        &key("bandwidth"),
                        format!("{e}: write it like \"1mbit\", \"750kbit\" or \"unlimited\""),
                    )
                })?),
            };
        }
        if let Some(p) = loss {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(
                    &key("loss"),
                    format!("{p} is not a probability in [0, 1): write 0.01 for 1 %"),
                ));
            }
            l.loss = p;
        }
        Ok(())
    };
    for l in [&mut imp.up, &mut imp.down] {
        apply(l, "network.", &n.latency, &n.jitter, &n.bandwidth, n.loss)?;
    }
    if let Some(u) = &n.up {
        apply(
            &mut imp.up,
            "network.up.",
            &u.latency,
            &u.jitter,
            &u.bandwidth,
            u.loss,
        )?;
    }
    if let Some(d) = &n.down {
        apply(
            &mut imp.down,
            "network.down.",
            &d.latency,
            &d.jitter,
            &d.bandwidth,
            d.loss,
        )?;
    }
    imp.validate().map_err(|e| bad("network", format!("{e}")))?;
    let publisher_proxied = match n.publisher.as_deref().unwrap_or("direct") {
        "direct" => false,
        "proxied" => true,
        other => {
            return Err(bad(
                "network.publisher",
                format!(
                    "{other:?} is not allowed: use \"direct\" (the publisher bypasses the impaired link) or \"proxied\""
                ),
            ));
        }
    };
    Ok(NetworkConfig {
        preset: n.preset.clone(),
        impairment: imp,
        publisher_proxied,
    })
}

/// One `[[fault]]`: its kind's keys and nothing else, inside the run.
fn validate_fault(
    i: usize,
    f: &RawFault,
    groups: &[GroupConfig],
    run_len: Duration,
    bad: &Bad<'_>,
    dur: &Dur<'_>,
) -> Result<FaultConfig, ScenarioError> {
    let k = |leaf: &str| format!("fault.{i}.{leaf}");
    let kinds = "blackhole, reset, flap, server-restart or publisher-burst";
    let kind_name = f
        .kind
        .clone()
        .ok_or_else(|| bad(&k("kind"), format!("missing: use {kinds}")))?;
    let at = match &f.at {
        Some(_) => dur(&k("at"), &f.at, Duration::ZERO)?,
        None => {
            return Err(bad(
                &k("at"),
                "missing: when the fault starts, from the start of the measured window, e.g. at = \"5s\"".into(),
            ));
        }
    };
    let allowed: &[&str] = match kind_name.as_str() {
        "blackhole" => &["duration", "groups"],
        "reset" => &["groups"],
        "flap" => &["duration", "groups", "period", "down"],
        "server-restart" => &["duration", "keep_log"],
        "publisher-burst" => &["rate", "count"],
        other => {
            return Err(bad(
                &k("kind"),
                format!("{other:?} is not a fault kind: use {kinds}"),
            ));
        }
    };
    let set = [
        ("duration", f.duration.is_some()),
        ("groups", f.groups.is_some()),
        ("keep_log", f.keep_log.is_some()),
        ("period", f.period.is_some()),
        ("down", f.down.is_some()),
        ("rate", f.rate.is_some()),
        ("count", f.count.is_some()),
    ];
    if let Some(key) = first_not_allowed(&set, allowed) {
        return Err(bad(
            &k(key),
            format!(
                "not a key of fault kind {kind_name:?}: it accepts {}",
                allowed.join(", ")
            ),
        ));
    }
    let required = |key: &str, v: &Option<String>| -> Result<Duration, ScenarioError> {
        match v {
            None => Err(bad(
                &k(key),
                format!("missing: a {kind_name} fault needs {key}, e.g. {key} = \"2s\""),
            )),
            Some(_) => {
                let d = dur(&k(key), v, Duration::ZERO)?;
                if d.is_zero() {
                    Err(bad(&k(key), "must be longer than 0s".into()))
                } else {
                    Ok(d)
                }
            }
        }
    };
    let (kind, duration) = match kind_name.as_str() {
        "blackhole" => (FaultKind::Blackhole, required("duration", &f.duration)?),
        "reset" => (FaultKind::Reset, Duration::ZERO),
        "flap" => {
            let period = required("period", &f.period)?;
            let down = required("down", &f.down)?;
            if down >= period {
                return Err(bad(
                    &k("down"),
                    format!(
                        "{} must be shorter than period {}",
                        humantime::format_duration(down),
                        humantime::format_duration(period)
                    ),
                ));
            }
            (
                FaultKind::Flap { period, down },
                required("duration", &f.duration)?,
            )
        }
        "server-restart" => (
            FaultKind::ServerRestart {
                keep_log: f.keep_log.unwrap_or(true),
            },
            required("duration", &f.duration)?,
        ),
        "publisher-burst" => {
            let rate = f.rate.unwrap_or(1000.0);
            if !(rate > 0.0 && rate <= 1_000_000.0) {
                return Err(bad(
                    &k("rate"),
                    format!("{rate} is not allowed: use events per second, more than 0"),
                ));
            }
            let count = f.count.ok_or_else(|| {
                bad(
                    &k("count"),
                    "missing: how many extra events the burst publishes, e.g. count = 500".into(),
                )
            })?;
            if count == 0 || count > 1_000_000 {
                return Err(bad(
                    &k("count"),
                    format!("{count} is not allowed: use 1..=1000000"),
                ));
            }
            (
                FaultKind::PublisherBurst { rate, count },
                Duration::from_secs_f64(f64::from(count) / rate),
            )
        }
        _ => unreachable!("kinds were checked above"),
    };
    if at + duration > run_len {
        return Err(bad(
            &k("at"),
            format!(
                "the fault runs to {} but the run ends at {} (duration + grace): start it earlier or shorten it",
                humantime::format_duration(at + duration),
                humantime::format_duration(run_len)
            ),
        ));
    }
    let names = f.groups.clone().unwrap_or_default();
    for n in &names {
        if !groups.iter().any(|g| &g.name == n) {
            return Err(bad(
                &k("groups"),
                format!(
                    "{n:?} is not a group: use {}",
                    groups
                        .iter()
                        .map(|g| g.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(FaultConfig {
        at,
        kind,
        duration,
        groups: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
name = "mini"
description = "teaches nothing"
duration = "3s"

[publisher]
rate = 20

[[group]]
name = "p"
strategy = "poll"
interval = "200ms"

[[group]]
name = "s"
strategy = "sse"
clients = 2
"#;

    #[test]
    fn parses_and_fills_defaults() {
        let s = Scenario::from_toml_str(MINI, "mini.toml", &[]).expect("valid");
        assert_eq!(s.name(), "mini");
        assert_eq!(s.duration(), Duration::from_secs(3));
        assert_eq!(s.groups().len(), 2);
        let resolved = s.to_resolved_toml();
        assert!(
            resolved.contains("schedule = \"fixed-delay\""),
            "{resolved}"
        );
        let again = Scenario::from_toml_str(&resolved, "resolved", &[]).expect("round trip");
        assert_eq!(again.to_resolved_toml(), resolved);
    }

    #[test]
    fn a_zero_poll_interval_is_back_to_back_and_only_with_fixed_delay() {
        let zero = |schedule: &str| {
            Scenario::from_toml_str(
                MINI,
                "mini.toml",
                &[
                    "group.p.interval=\"0s\"".into(),
                    format!("group.p.schedule=\"{schedule}\""),
                ],
            )
        };
        assert!(zero("fixed-delay").is_ok());
        let e = zero("fixed-rate").unwrap_err().to_string();
        assert!(
            e.contains("0s is only allowed with schedule = \"fixed-delay\""),
            "{e}"
        );
        let e = Scenario::from_toml_str(MINI, "mini.toml", &["group.p.interval=\"500us\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1ms, or 0s"), "{e}");
    }

    #[test]
    fn source_addresses_parse_round_trip_and_name_a_bad_entry() {
        let s = Scenario::from_toml_str(
            MINI,
            "mini.toml",
            &[r#"source_addresses=["127.0.0.2", "127.0.0.3"]"#.into()],
        )
        .expect("valid");
        assert_eq!(s.source_addresses().len(), 2);
        let resolved = s.to_resolved_toml();
        let again = Scenario::from_toml_str(&resolved, "resolved", &[]).expect("round trip");
        assert_eq!(again.source_addresses(), s.source_addresses());
        let e = Scenario::from_toml_str(
            MINI,
            "mini.toml",
            &[r#"source_addresses=["127.0.0.2", "localhost"]"#.into()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("source_addresses") && e.contains("\"localhost\" is not an IP address"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_line_and_allowed() {
        let text = MINI.replace("clients = 2", "clients = 2\nheartbeet = \"1s\"");
        let e = Scenario::from_toml_str(&text, "mini.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mini.toml line 18"), "{e}");
        assert!(e.contains("heartbeet"), "{e}");
    }

    #[test]
    fn wrong_option_for_strategy() {
        let text = MINI.replace("clients = 2", "clients = 2\ninterval = \"1s\"");
        let e = Scenario::from_toml_str(&text, "mini.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 18"), "{e}");
        assert!(e.contains("group.1.interval"), "{e}");
        assert!(e.contains("resume, read_timeout"), "{e}");
    }

    #[test]
    fn bad_duration() {
        let text = MINI.replace("\"3s\"", "\"three\"");
        let e = Scenario::from_toml_str(&text, "mini.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4") && e.contains("duration"), "{e}");
    }

    #[test]
    fn overrides() {
        let s = Scenario::from_toml_str(
            MINI,
            "mini.toml",
            &[
                "publisher.rate=200".into(),
                "group.1.clients=5".into(),
                "group.p.interval=50ms".into(),
                "duration=\"1s\"".into(),
            ],
        )
        .expect("valid overrides");
        assert_eq!(s.publisher().rate, 200.0);
        assert_eq!(s.groups()[1].clients, 5);
        assert_eq!(s.duration(), Duration::from_secs(1));
        match s.groups()[0].strategy {
            Strategy::Poll { interval, .. } => assert_eq!(interval, Duration::from_millis(50)),
            _ => panic!("poll"),
        }
        let e = Scenario::from_toml_str(MINI, "mini.toml", &["group.7.clients=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
        let e = Scenario::from_toml_str(MINI, "mini.toml", &["publisher.rate=-1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(--set publisher.rate=-1)") && !e.contains("line"),
            "{e}"
        );
        let e = Scenario::from_toml_str(MINI, "mini.toml", &["publisher.rat=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("rat"), "{e}");
    }

    #[test]
    fn network_and_faults() {
        let text = format!(
            "{MINI}\n[network]\npreset = \"3g\"\njitter = \"5ms\"\n[network.down]\nbandwidth = \"2mbit\"\n\n[[fault]]\nat = \"1s\"\nkind = \"blackhole\"\nduration = \"1s\"\ngroups = [\"s\"]\n\n[[fault]]\nat = \"2s\"\nkind = \"server-restart\"\nduration = \"500ms\"\nkeep_log = false\n"
        );
        let s = Scenario::from_toml_str(&text, "f.toml", &[]).expect("valid");
        let n = s.network().expect("network");
        assert_eq!(n.impairment.up.jitter, Duration::from_millis(5));
        assert_eq!(
            n.impairment.down.bandwidth.map(|b| b.bits_per_second()),
            Some(2_000_000)
        );
        assert!(!n.publisher_proxied && s.needs_proxies() && s.restarts_server());
        assert_eq!(
            s.faults()[1].kind,
            FaultKind::ServerRestart { keep_log: false }
        );
        let again =
            Scenario::from_toml_str(&s.to_resolved_toml(), "resolved", &[]).expect("round trip");
        assert_eq!(again.to_resolved_toml(), s.to_resolved_toml());

        let err = |t: String| {
            Scenario::from_toml_str(&t, "f.toml", &[])
                .unwrap_err()
                .to_string()
        };
        let e = err(text.replace("\"3g\"", "\"4g\""));
        assert!(
            e.contains("network.preset") && e.contains("satellite"),
            "{e}"
        );
        let e = err(text.replace("groups = [\"s\"]", "groups = [\"x\"]"));
        assert!(
            e.contains("fault.0.groups") && e.contains("\"x\" is not a group"),
            "{e}"
        );
        let e = err(text.replace("keep_log = false", "period = \"1s\""));
        assert!(
            e.contains("fault.1.period") && e.contains("duration, keep_log"),
            "{e}"
        );
        let e = err(text.replace("at = \"1s\"", "at = \"30s\""));
        assert!(e.contains("fault.0.at") && e.contains("run ends"), "{e}");
        let e = err(format!(
            "{MINI}\n[[fault]]\nat = \"1s\"\nkind = \"flap\"\nduration = \"2s\"\nperiod = \"1s\"\ndown = \"1s\"\n"
        ));
        assert!(e.contains("shorter than period"), "{e}");
    }
}
