//! Every limit of the server, each with its default. The CLI maps one flag to each field.

use std::time::Duration;

/// Server settings. `Config::default()` is what `pushbench serve` runs with no flags.
#[derive(Clone, Debug)]
pub struct Config {
    /// Events kept per topic (the ring buffer); older ones are answered with a gap. Default 10,000.
    pub retention: usize,
    /// Most topics that may exist; a publish or subscribe that would create one more gets 429. Default 1,024.
    pub max_topics: usize,
    /// Most concurrent TCP connections; beyond it a connection gets 503 and is closed. Default 10,000.
    pub max_connections: usize,
    /// Largest request body (publish, beacon) and WebSocket message, in bytes; 413 beyond it. Default 64 KiB.
    pub max_body: usize,
    /// Time allowed to read a request's headers (and body) before the connection is closed;
    /// it also closes keep-alive connections idle for that long. Default 30 s (hyper's own).
    pub header_read_timeout: Duration,
    /// Longest long-poll hold; a larger `wait=` is clamped to it. Default 30 s.
    pub max_wait: Duration,
    /// Interval between SSE `: heartbeat` comments. Default 15 s.
    pub sse_heartbeat: Duration,
    /// The `retry:` advice sent at the start of every SSE stream. Default 2 s.
    pub sse_retry: Duration,
    /// Interval between WebSocket ping frames from the server. Default 20 s.
    pub ws_ping: Duration,
    /// Time a WebSocket peer has to answer a ping before it is closed. Default 10 s.
    pub ws_pong_timeout: Duration,
    /// Kernel send buffer of a WebSocket socket, in bytes (0 keeps the kernel's autotuning,
    /// which grows to megabytes). Small, so a backlog stays in the log where the server
    /// sees it, and a ping is not queued behind megabytes. Default 64 KiB.
    pub ws_send_buffer: usize,
    /// Time a subscriber's socket may refuse to drain before it is closed as a slow consumer. Default 10 s.
    pub slow_consumer_timeout: Duration,
    /// Origins allowed to open SSE and WebSocket streams; empty allows every origin. Default empty.
    pub allow_origins: Vec<String>,
    /// When set, publishing needs `Authorization: Bearer <token>`. Default none.
    pub publish_token: Option<String>,
    /// Time given to open connections to finish after shutdown starts. Default 5 s.
    pub shutdown_deadline: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            retention: 10_000,
            max_topics: 1_024,
            max_connections: 10_000,
            max_body: 64 * 1024,
            header_read_timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(30),
            sse_heartbeat: Duration::from_secs(15),
            sse_retry: Duration::from_secs(2),
            ws_ping: Duration::from_secs(20),
            ws_pong_timeout: Duration::from_secs(10),
            ws_send_buffer: 64 * 1024,
            slow_consumer_timeout: Duration::from_secs(10),
            allow_origins: Vec::new(),
            publish_token: None,
            shutdown_deadline: Duration::from_secs(5),
        }
    }
}
