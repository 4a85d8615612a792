//! pushbench's reference push server: one set of topic logs, served by every push
//! strategy, so that strategies can be compared on equal terms.
//!
//! Its job is to be a server people trust as a reference: correct under every
//! strategy, honest about gaps (a cursor outside the retained log is always
//! announced, never skipped silently), hard to crash, and bounded in memory
//! whatever clients do. It must not print to the terminal or read argv: the CLI does.
//!
//! The key decision: subscribers read the topic log by cursor and are woken when it
//! grows. There is no per-subscriber queue to overflow; a slow subscriber simply
//! falls behind its cursor, and one that falls out of the log is told or closed. Each
//! event is encoded once per format and the bytes are shared by every subscriber.
//!
//! # Layout
//! - `config.rs`: every limit and its default.
//! - `topic.rs`: topic logs (ring buffers), cursors, wake-ups.
//! - `conn.rs`: accept loop, connection cap, graceful shutdown, and the hand-off of SSE
//!   streams from hyper to their own task once their head is out.
//! - `routes.rs`: the router, CORS, origin and token checks, body reading.
//! - one module per strategy: `poll.rs` (short poll and latest), `long_poll.rs`,
//!   `sse.rs`, `websocket.rs`, `beacon.rs`; and `publish.rs`.
//! - `liveness.rs`: proof of life for WebSocket peers whose pongs are stuck behind a backlog.
//! - `metrics.rs`: counters and the Prometheus text of `/metrics`.
//! - `reply.rs`, `query.rs`: responses and the JSON error shape; query parsing.

mod beacon;
mod config;
mod conn;
mod liveness;
mod long_poll;
mod metrics;
mod poll;
mod publish;
mod query;
mod reply;
mod routes;
mod sse;
mod topic;
mod websocket;

use std::sync::Arc;

use http::HeaderValue;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use metrics::{Metrics, Strategy, process_usage};
pub use query::{DEFAULT_LIMIT, MAX_LIMIT};

/// The shared state behind every connection.
#[derive(Debug)]
pub struct App {
    config: Config,
    topics: topic::Topics,
    metrics: Metrics,
    /// Distinguishes this server's logs from an earlier one's in ETags.
    epoch: u64,
}

impl App {
    fn topic(&self, name: &str) -> Result<Arc<topic::Topic>, reply::ApiError> {
        self.topics.get_or_create(name).map_err(|e| {
            reply::ApiError::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_topics",
                e.to_string(),
            )
        })
    }

    fn etag(&self, last_seq: u64) -> HeaderValue {
        HeaderValue::from_str(&format!("\"{:x}-{last_seq}\"", self.epoch))
            .expect("hex and digits are a valid header value")
    }
}

/// The server. Cheap to clone; clones share topics and counters, so the same
/// `Server` can be run again on a new listener (a restart that keeps its log).
#[derive(Clone, Debug)]
pub struct Server {
    app: Arc<App>,
}

impl Server {
    /// A server with empty topics.
    pub fn new(config: Config) -> Server {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Server {
            app: Arc::new(App {
                topics: topic::Topics::new(config.retention, config.max_topics),
                config,
                metrics: Metrics::default(),
                epoch,
            }),
        }
    }

    /// Serves `listener` until `shutdown` is cancelled; then SSE streams end, held
    /// long polls are answered, WebSockets get close 1001, and it returns once every
    /// connection is gone or `shutdown_deadline` has passed.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        conn::serve(self.app, listener, shutdown).await;
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.app.metrics
    }

    /// The settings it runs with.
    pub fn config(&self) -> &Config {
        &self.app.config
    }
}
