//! The embedded server of `pushbench run`: started on 127.0.0.1:0 in this process,
//! and restartable on the same port for `server-restart` faults (the load
//! generator's [`ServerControl`]). Restarting with `keep_log` runs the same
//! `Server` again (it is `Clone` and keeps its topics); without, a new one starts empty.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use pushbench_loadgen::{BoxFuture, ServerControl, ServerSnapshot};
use pushbench_server::{Config, Server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running instance.
#[derive(Debug)]
struct Running {
    server: Server,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// A server this process runs, on a fixed address.
#[derive(Debug)]
pub struct EmbeddedServer {
    addr: SocketAddr,
    config: Config,
    /// A std Mutex: held only to swap values, never across an await.
    running: Mutex<Running>,
    /// Counters of servers replaced by a restart that lost the log, so totals stay monotonic.
    carried: Mutex<ServerSnapshot>,
}

impl EmbeddedServer {
    /// Binds 127.0.0.1:0 and starts serving.
    pub async fn start(config: Config) -> std::io::Result<EmbeddedServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = Server::new(config.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(server.clone().run(listener, stop.clone()));
        Ok(EmbeddedServer {
            addr,
            config,
            running: Mutex::new(Running {
                server,
                stop,
                task: Some(task),
            }),
            carried: Mutex::new(ServerSnapshot::default()),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server; true when it finished within `deadline`.
    pub async fn stop(&self, deadline: Duration) -> bool {
        let task = {
            let mut r = self.lock();
            r.stop.cancel();
            r.task.take()
        };
        match task {
            Some(t) => tokio::time::timeout(deadline, t).await.is_ok(),
            None => true,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().expect("server lock never poisoned")
    }
}

fn snapshot_of(server: &Server) -> ServerSnapshot {
    use std::sync::atomic::Ordering::Relaxed;
    let m = server.metrics();
    ServerSnapshot {
        connections_total: m.connections_total.load(Relaxed),
        slow_consumer_closes: m.slow_consumer_closes.load(Relaxed),
        gaps: m.gaps.load(Relaxed),
    }
}

impl ServerControl for EmbeddedServer {
    fn restart(&self, keep_log: bool, down_for: Duration) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let down_at = tokio::time::Instant::now();
            // Streams, held polls and WebSockets end with the token; the deadline
            // only bounds a server that would not.
            if !self
                .stop(self.config.shutdown_deadline + Duration::from_secs(1))
                .await
            {
                tracing::warn!("the embedded server did not stop in time; restarting anyway");
            }
            tokio::time::sleep_until(down_at + down_for).await;
            let server = {
                let old = self.lock().server.clone();
                if keep_log {
                    old
                } else {
                    let s = snapshot_of(&old);
                    let mut c = self.carried.lock().expect("carried lock never poisoned");
                    c.connections_total += s.connections_total;
                    c.slow_consumer_closes += s.slow_consumer_closes;
                    c.gaps += s.gaps;
                    Server::new(self.config.clone())
                }
            };
            // The old sockets may linger a moment: retry the bind, bounded.
            let mut listener = None;
            let mut last_err = String::new();
            for _ in 0..100 {
                match tokio::net::TcpListener::bind(self.addr).await {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(e) => {
                        last_err = e.to_string();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            let listener =
                listener.ok_or_else(|| format!("cannot bind {} again: {last_err}", self.addr))?;
            let stop = CancellationToken::new();
            let task = tokio::spawn(server.clone().run(listener, stop.clone()));
            *self.lock() = Running {
                server,
                stop,
                task: Some(task),
            };
            tracing::info!(keep_log, addr = %self.addr, "embedded server restarted");
            Ok(())
        })
    }

    fn snapshot(&self) -> ServerSnapshot {
        let now = snapshot_of(&self.lock().server);
        let c = *self.carried.lock().expect("carried lock never poisoned");
        ServerSnapshot {
            connections_total: c.connections_total + now.connections_total,
            slow_consumer_closes: c.slow_consumer_closes + now.slow_consumer_closes,
            gaps: c.gaps + now.gaps,
        }
    }
}
