//! `pushbench serve`: the reference push server, one flag per limit.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use pushbench_server::{Config, Server};
use tokio_util::sync::CancellationToken;

/// Flags of `pushbench serve`. Defaults are those of `pushbench_server::Config`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; use 0.0.0.0:8080 to accept other hosts.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Events retained per topic; older cursors get a gap notice.
    #[arg(long, default_value_t = 10_000)]
    retention: usize,
    /// Most topics held at once (429 beyond).
    #[arg(long, default_value_t = 1_024)]
    max_topics: usize,
    /// Most concurrent connections (503 beyond).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Largest request body and WebSocket message, in bytes (413 beyond).
    #[arg(long, default_value_t = 64 * 1024)]
    max_body: usize,
    /// Time to read a request's headers (and body); also the keep-alive idle timeout.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,
    /// Longest long-poll hold; larger `wait=` values are clamped.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    max_wait: Duration,
    /// Interval between SSE `: heartbeat` comments.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    sse_heartbeat: Duration,
    /// `retry:` advice sent to SSE clients.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    sse_retry: Duration,
    /// Interval between WebSocket pings.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    ws_ping: Duration,
    /// Time a WebSocket peer has to answer a ping before it is closed (4000).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    ws_pong_timeout: Duration,
    /// Kernel send buffer of WebSocket sockets in bytes (0: kernel autotuning).
    #[arg(long, default_value_t = 64 * 1024)]
    ws_send_buffer: usize,
    /// Time a subscriber's socket may refuse to drain before it is closed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    slow_consumer_timeout: Duration,
    /// Origin allowed to open SSE and WebSocket streams (repeat for several);
    /// none given allows every origin.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Require `Authorization: Bearer TOKEN` to publish.
    #[arg(long, env = "PUSHBENCH_PUBLISH_TOKEN", hide_env_values = true)]
    publish_token: Option<String>,
    /// Time open connections get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    shutdown_deadline: Duration,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        anyhow::ensure!(self.retention >= 1, "--retention must be at least 1");
        anyhow::ensure!(
            self.max_connections >= 1,
            "--max-connections must be at least 1"
        );
        anyhow::ensure!(self.max_topics >= 1, "--max-topics must be at least 1");
        for (name, d) in [
            ("--sse-heartbeat", self.sse_heartbeat),
            ("--ws-ping", self.ws_ping),
            ("--ws-pong-timeout", self.ws_pong_timeout),
            ("--slow-consumer-timeout", self.slow_consumer_timeout),
            ("--header-read-timeout", self.header_read_timeout),
        ] {
            anyhow::ensure!(!d.is_zero(), "{name} must be longer than zero");
        }
        Ok(Config {
            retention: self.retention,
            max_topics: self.max_topics,
            max_connections: self.max_connections,
            max_body: self.max_body,
            header_read_timeout: self.header_read_timeout,
            max_wait: self.max_wait,
            sse_heartbeat: self.sse_heartbeat,
            sse_retry: self.sse_retry,
            ws_ping: self.ws_ping,
            ws_pong_timeout: self.ws_pong_timeout,
            ws_send_buffer: self.ws_send_buffer,
            slow_consumer_timeout: self.slow_consumer_timeout,
            allow_origins: self.allow_origins.clone(),
            publish_token: self.publish_token.clone(),
            shutdown_deadline: self.shutdown_deadline,
        })
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn main(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| {
                format!(
                    "binding {} (is another server on that port? try --addr 127.0.0.1:0)",
                    args.addr
                )
            })?;
        let addr = listener.local_addr()?;
        tracing::info!("pushbench server listening on http://{addr}");
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!(
                "shutting down: ending streams, answering long polls, closing WebSockets"
            );
            signal.cancel();
        });
        Server::new(config).run(listener, shutdown).await;
        tracing::info!("server stopped");
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
