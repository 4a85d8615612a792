//! The impaired network and the fault timeline: one netem proxy per group between
//! its clients and the server (so a fault can hit one group and spare the others),
//! the `[[fault]]` entries played at their times, and [`ServerControl`], the hook
//! through which the embedding program restarts its server.
//!
//! Key decision: the publisher connects to the server directly unless the scenario
//! says `publisher = "proxied"`: what is measured is the subscribers' link, and a
//! fault on a group must not also stop the events every other group receives.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushbench_netem::{Fault, Impairment, Proxy, ProxyHandle};
use pushbench_protocol::record::FaultRow;
use tokio_util::sync::CancellationToken;

use crate::LoadgenError;
use crate::clock::Clock;
use crate::connect::Target;
use crate::recorder::GroupShared;
use crate::scenario::{FaultConfig, FaultKind, Scenario};

/// A boxed future, so [`ServerControl`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the load generator may ask of a server it runs beside (the CLI's embedded
/// server). A `server-restart` fault needs it; a remote `--target` has none.
pub trait ServerControl: Send + Sync + std::fmt::Debug {
    /// Stops the server, waits `down_for`, and starts it again on the same address:
    /// the same server with its topic logs when `keep_log`, a new empty one if not.
    /// Resolves once the server accepts connections again.
    fn restart(&self, keep_log: bool, down_for: Duration) -> BoxFuture<'_, Result<(), String>>;
    /// The server's own counters now.
    fn snapshot(&self) -> ServerSnapshot;
}

/// A server's counters at one moment (monotonic over restarts that keep the server).
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerSnapshot {
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Subscribers closed as slow consumers.
    pub slow_consumer_closes: u64,
    /// Gap notices sent.
    pub gaps: u64,
}

/// The proxies of one run.
pub(crate) struct Links {
    /// Per group: the proxy its clients connect through (None: direct).
    pub(crate) groups: Vec<Option<ProxyHandle>>,
    /// The publisher's proxy, when it is proxied too.
    pub(crate) publisher: Option<ProxyHandle>,
    /// Cancelled at the end of the run: every proxy stops.
    pub(crate) token: CancellationToken,
}

impl Links {
    /// A target that goes through `proxy` (same path prefix), or `direct`.
    pub(crate) fn target_via(proxy: Option<&ProxyHandle>, direct: &Arc<Target>) -> Arc<Target> {
        match proxy {
            Some(p) => Arc::new(Target {
                authority: p.local_addr().to_string(),
                prefix: direct.prefix.clone(),
                sources: direct.sources.clone(),
            }),
            None => direct.clone(),
        }
    }

    /// Stops every proxy (their connections close with FIN).
    pub(crate) async fn shutdown(&self) {
        self.token.cancel();
        for p in self.groups.iter().flatten().chain(self.publisher.iter()) {
            p.shutdown(Duration::from_secs(1)).await;
        }
    }
}

/// Starts the proxies the scenario needs on 127.0.0.1 (none without `[network]` or
/// a link fault), each seeded from the scenario seed and its group index.
pub(crate) async fn start_links(
    scenario: &Scenario,
    target: &Target,
) -> Result<Links, LoadgenError> {
    let token = CancellationToken::new();
    let n = scenario.groups().len();
    if !scenario.needs_proxies() {
        return Ok(Links {
            groups: vec![None; n],
            publisher: None,
            token,
        });
    }
    let upstream: SocketAddr = tokio::net::lookup_host(&target.authority)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LoadgenError::Network(format!("cannot resolve {}", target.authority)))?;
    let impairment = scenario
        .network()
        .map(|n| n.impairment)
        .unwrap_or_else(Impairment::none);
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("a literal socket address");
    let mut groups = Vec::with_capacity(n);
    for gi in 0..n {
        let seed = scenario.seed() ^ (0x9e37_79b9 + gi as u64);
        let p = Proxy::bind(listen, upstream, impairment, seed, token.clone())
            .await
            .map_err(|e| LoadgenError::Network(e.to_string()))?;
        groups.push(Some(p));
    }
    let publisher = match scenario.network() {
        Some(n) if n.publisher_proxied => Some(
            Proxy::bind(listen, upstream, impairment, scenario.seed(), token.clone())
                .await
                .map_err(|e| LoadgenError::Network(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(Links {
        groups,
        publisher,
        token,
    })
}

/// Everything the timeline needs.
pub(crate) struct Timeline {
    pub(crate) faults: Vec<FaultConfig>,
    pub(crate) groups: Vec<Arc<GroupShared>>,
    pub(crate) proxies: Vec<Option<ProxyHandle>>,
    pub(crate) server: Option<Arc<dyn ServerControl>>,
    pub(crate) clock: Clock,
    pub(crate) window_start_ns: u64,
    pub(crate) stop: CancellationToken,
}

/// What the timeline did: `faults.csv` rows (in start order) and restarts made.
#[derive(Debug, Default)]
pub(crate) struct Played {
    pub(crate) rows: Vec<FaultRow>,
    pub(crate) restarts: u64,
    /// (scheduled start, file index) of each row, for a stable order.
    order: Vec<(Duration, usize)>,
}

/// Plays every fault at `window start + at`, each in its own task (they may
/// overlap), until all are done or `stop` is cancelled.
pub(crate) async fn play(t: Timeline) -> Played {
    let played = Arc::new(Mutex::new(Played::default()));
    let t = Arc::new(t);
    let mut tasks = Vec::new();
    for (i, f) in t.faults.iter().enumerate() {
        let (t, played) = (t.clone(), played.clone());
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let at = t.window_start_ns + f.at.as_nanos() as u64;
            tokio::select! {
                _ = tokio::time::sleep_until(t.clock.instant(at)) => {}
                _ = t.stop.cancelled() => return,
            }
            let secs = |ns: u64| ns.saturating_sub(t.window_start_ns) as f64 / 1e9;
            let start = t.clock.now_ns();
            let end = tokio::select! {
                e = play_one(&t, &f, i, &played) => e,
                _ = t.stop.cancelled() => t.clock.now_ns(),
            };
            let mut p = played.lock().expect("played lock never poisoned");
            p.rows.push(FaultRow {
                kind: f.kind.name().to_string(),
                start_s: secs(start),
                end_s: secs(end),
                groups: f.groups.clone(),
            });
            p.order.push((f.at, i));
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let mut p = std::mem::take(&mut *played.lock().expect("played lock never poisoned"));
    // In scheduled order, file order for equal starts (not the order tasks ended).
    let mut rows: Vec<_> = p.order.drain(..).zip(p.rows.drain(..)).collect();
    rows.sort_by_key(|(o, _)| *o);
    p.rows = rows.into_iter().map(|(_, r)| r).collect();
    p
}

/// Applies one fault and waits out its duration; returns when it ended, ns.
async fn play_one(t: &Timeline, f: &FaultConfig, index: usize, played: &Mutex<Played>) -> u64 {
    let targets: Vec<usize> = (0..t.groups.len())
        .filter(|&gi| f.groups.is_empty() || f.groups.contains(&t.groups[gi].name))
        .collect();
    let now = || t.clock.now_ns();
    let mark_start = |gs: &[usize]| {
        let n = now();
        for &gi in gs {
            t.groups[gi].fault_started(n);
        }
    };
    let mark_end = |gs: &[usize]| {
        let n = now();
        for &gi in gs {
            t.groups[gi].fault_ended(n);
        }
        n
    };
    let link = |fault: Fault| {
        for &gi in &targets {
            if let Some(p) = &t.proxies[gi] {
                if let Err(e) = p.apply(fault) {
                    tracing::warn!(fault = index, error = %e, "fault not applied");
                }
            }
        }
    };
    match f.kind {
        FaultKind::Reset => {
            mark_start(&targets);
            link(Fault::Reset);
            mark_end(&targets)
        }
        FaultKind::Blackhole | FaultKind::Flap { .. } => {
            mark_start(&targets);
            link(match f.kind {
                FaultKind::Flap { period, down } => Fault::Flap { period, down },
                _ => Fault::Blackhole,
            });
            tokio::time::sleep(f.duration).await;
            for &gi in &targets {
                if let Some(p) = &t.proxies[gi] {
                    p.lift();
                }
            }
            mark_end(&targets)
        }
        FaultKind::ServerRestart { keep_log } => {
            let all: Vec<usize> = (0..t.groups.len()).collect();
            mark_start(&all);
            match &t.server {
                Some(s) => match s.restart(keep_log, f.duration).await {
                    Ok(()) => {
                        played.lock().expect("played lock never poisoned").restarts += 1;
                    }
                    Err(e) => tracing::warn!(error = %e, "server restart failed"),
                },
                None => tracing::warn!("no server to restart"),
            }
            mark_end(&all)
        }
        FaultKind::PublisherBurst { .. } => {
            // The publisher's schedule carries the burst; this only times its row.
            tokio::time::sleep(f.duration).await;
            now()
        }
    }
}

/// The extra events of every `publisher-burst`: offsets from the publisher's start, ns.
pub(crate) fn burst_offsets(faults: &[FaultConfig], window_offset_ns: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for f in faults {
        if let FaultKind::PublisherBurst { rate, count } = f.kind {
            let start = window_offset_ns + f.at.as_nanos() as u64;
            out.extend((0..u64::from(count)).map(|k| start + (k as f64 * 1e9 / rate) as u64));
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_spread_at_their_rate() {
        let s = Scenario::from_toml_str(
            r#"
name = "b"
duration = "10s"
[[group]]
strategy = "sse"
[[fault]]
at = "2s"
kind = "publisher-burst"
rate = 100
count = 3
"#,
            "b.toml",
            &[],
        )
        .expect("valid");
        assert_eq!(
            burst_offsets(s.faults(), 1_000_000_000),
            vec![3_000_000_000, 3_010_000_000, 3_020_000_000]
        );
    }
}
