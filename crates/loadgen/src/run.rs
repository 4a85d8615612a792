//! One run: the timeline and the record it returns.
//!
//! ```text
//!  t0 ──ramp-up/warm-up──▶ window start ──measured window──▶ window end ──grace──▶ end
//!  publisher: t0 ............................................ stops scheduling
//!  clients:   start spread over ramp_up ................................. stop at end
//! ```
//! Only events whose *intended* time falls in the measured window are counted;
//! the grace period lets the last of them arrive.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::Histogram;
use pushbench_protocol::record::{
    ArrivalRow, GroupSummary, IntervalHistogram, LoadgenHealth, Meta, Percentiles,
    PublisherSummary, RunRecord, SCHEMA_VERSION, ServerCost, Summary, TimeseriesRow,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use crate::client::ClientCtx;
use crate::clock::Clock;
use crate::connect::Target;
use crate::faults::{self, Links, ServerControl, Timeline};
use crate::health;
use crate::publisher::{self, PublisherCtx, PublisherStats};
use crate::recorder::{ClientRecorder, ClientResult, CounterValues, GroupShared};
use crate::registry::Registry;
use crate::scenario::{
    FaultKind, GroupConfig, LongPollCursor, PollCursor, PollSchedule, PublishVia, Strategy,
    WsFormat,
};
use crate::source::SourceAddresses;
use crate::{Progress, Scenario};
use crate::{beacon, chat, long_poll, poll, sse, websocket};

/// Where and how to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Base URL of the server, e.g. `http://127.0.0.1:40123`.
    pub base_url: String,
    /// True when the server runs in this process (recorded in the summary).
    pub embedded: bool,
    /// The server's control, when the caller runs it: needed by `server-restart`
    /// faults, and the source of the summary's server cost.
    pub server: Option<Arc<dyn ServerControl>>,
}

/// Why a run could not produce results.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The base URL cannot be used.
    #[error("target URL {0:?} is not usable: give http://host:port (TLS is not supported)")]
    BadTarget(String),
    /// A `server-restart` fault without a server this process controls.
    #[error(
        "the scenario restarts the server (a server-restart fault), which only works with the embedded server: drop --target / [target], or remove the fault"
    )]
    NoServerControl,
    /// The impaired network could not be set up.
    #[error("cannot start the netem proxies for [network] / [[fault]]: {0}")]
    Network(String),
    /// A `source_addresses` entry is not an address of this machine.
    #[error("{0}")]
    SourceAddress(String),
    /// The server did not answer at all.
    #[error("cannot reach the server at {url}: {detail}; is it running?")]
    Unreachable {
        /// Base URL.
        url: String,
        /// The connect or HTTP error.
        detail: String,
    },
}

const SECOND_NS: u64 = 1_000_000_000;

/// Publisher id of chat and beacon client `c` of group `g` (the main publisher is 0).
fn client_publisher_id(g: usize, c: u32) -> u32 {
    1 + g as u32 * 100_000 + c
}

/// Topic index of group `g`'s chat topic (stamps carry it; publisher topics are 0..n).
fn chat_topic_index(g: usize) -> u32 {
    1_000_000 + g as u32
}

/// Runs the scenario. Cancelling `stop` ends the run early: results are still
/// returned, with `summary.partial = true`.
pub async fn run(
    scenario: &Scenario,
    options: RunOptions,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> Result<RunRecord, LoadgenError> {
    let mut target = Target::parse(&options.base_url)
        .ok_or_else(|| LoadgenError::BadTarget(options.base_url.clone()))?;
    let sources = SourceAddresses::new(scenario.source_addresses().to_vec());
    sources.check().map_err(LoadgenError::SourceAddress)?;
    target.sources = Arc::new(sources);
    let target = Arc::new(target);
    // Fail fast, before any task starts, when nothing listens.
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&target.authority),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(LoadgenError::Unreachable {
                url: options.base_url.clone(),
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return Err(LoadgenError::Unreachable {
                url: options.base_url.clone(),
                detail: "connect timed out after 5s".into(),
            });
        }
    }

    if scenario.restarts_server() && options.server.is_none() {
        return Err(LoadgenError::NoServerControl);
    }
    let links = faults::start_links(scenario, &target).await?;
    let server_before = options.server.as_ref().map(|s| s.snapshot());

    let clock = Clock::new();
    let cpu_before = health::process_cpu_seconds();
    let endpoints = Arc::new(scenario.endpoints().clone());
    let nonce = format!("{:06x}", (clock.now_ns() / 1000) & 0xff_ffff);
    let t0 = clock.now_ns() + 200_000_000;
    let window_start = t0 + scenario.warmup().as_nanos() as u64;
    let window_end = window_start + scenario.duration().as_nanos() as u64;
    let end = window_end + scenario.grace().as_nanos() as u64;
    tracing::info!(scenario = scenario.name(), target = %options.base_url, "run starting");

    let registry = Arc::new(Registry::default());
    let pcfg = scenario.publisher().clone();
    let topic_names: Vec<Arc<str>> = (0..pcfg.topics)
        .map(|i| Arc::from(format!("pb-{nonce}-{i}")))
        .collect();
    let logs = (0..pcfg.topics).map(|i| registry.log(0, i)).collect();
    let stats = Arc::new(PublisherStats::default());
    let publisher_stop = CancellationToken::new();
    let publisher_kill = CancellationToken::new();
    let publish_paths = topic_names
        .iter()
        .map(|t| crate::client::expand(&target.prefix, &endpoints.publish.url, t, None, &[]))
        .collect();
    let publisher_task = tokio::spawn(publisher::run(PublisherCtx {
        config: pcfg.clone(),
        seed: scenario.seed(),
        clock,
        target: Links::target_via(links.publisher.as_ref(), &target),
        paths: publish_paths,
        logs,
        registry: registry.clone(),
        start_ns: t0,
        window_start_ns: window_start,
        end_ns: window_end,
        stats: stats.clone(),
        progress: progress.clone(),
        stop: publisher_stop.clone(),
        kill: publisher_kill.clone(),
        bursts: faults::burst_offsets(scenario.faults(), window_start - t0),
    }));

    // Clients.
    let done = CancellationToken::new();
    let mut groups: Vec<Arc<GroupShared>> = Vec::new();
    let mut client_tasks: Vec<Vec<tokio::task::JoinHandle<(ClientRecorder, u32)>>> = Vec::new();
    for (gi, g) in scenario.groups().iter().enumerate() {
        let shared = Arc::new(GroupShared::new(
            &g.name,
            clock,
            window_start,
            window_end,
            progress.clone(),
            registry.clone(),
        ));
        let chat_topic: Arc<str> = Arc::from(format!("pb-{nonce}-chat-{gi}"));
        let group_target = Links::target_via(links.groups[gi].as_ref(), &target);
        let mut tasks = Vec::new();
        for c in 0..g.clients {
            let start_at = t0
                + (g.ramp_up.as_nanos() as u64).saturating_mul(u64::from(c))
                    / u64::from(g.clients.max(1));
            let (topic, topic_index) = match g.strategy {
                Strategy::Chat { .. } => (chat_topic.clone(), chat_topic_index(gi)),
                _ => {
                    let i = c % pcfg.topics;
                    (topic_names[i as usize].clone(), i)
                }
            };
            let ctx = ClientCtx {
                id: c,
                group: shared.clone(),
                target: group_target.clone(),
                endpoints: endpoints.clone(),
                topic,
                done: done.clone(),
                rng: SmallRng::seed_from_u64(scenario.seed() ^ ((gi as u64) << 32) ^ u64::from(c)),
            };
            let strategy = g.strategy.clone();
            let chat_log = matches!(strategy, Strategy::Chat { .. })
                .then(|| registry.log(client_publisher_id(gi, c), topic_index));
            let publisher_id = client_publisher_id(gi, c);
            tasks.push(tokio::spawn(async move {
                let rec = ClientRecorder::new(ctx.group.clone(), ctx.id);
                tokio::select! {
                    _ = tokio::time::sleep_until(clock.instant(start_at)) => {}
                    _ = ctx.done.cancelled() => return (rec, topic_index),
                }
                let rec = match strategy {
                    Strategy::Poll {
                        interval,
                        schedule,
                        cursor,
                        conditional,
                        limit,
                        max_in_flight,
                    } => {
                        poll::run(
                            ctx,
                            rec,
                            poll::PollOpts {
                                interval,
                                schedule,
                                cursor,
                                conditional,
                                limit,
                                max_in_flight,
                            },
                        )
                        .await
                    }
                    Strategy::LongPoll { cursor, wait } => {
                        long_poll::run(ctx, rec, cursor, wait).await
                    }
                    Strategy::Sse {
                        resume,
                        read_timeout,
                    } => sse::run(ctx, rec, resume, read_timeout).await,
                    Strategy::WebSocket {
                        format,
                        heartbeat,
                        heartbeat_misses,
                        resume,
                        read_delay,
                    } => {
                        websocket::run(
                            ctx,
                            rec,
                            websocket::WsOpts {
                                format,
                                heartbeat,
                                heartbeat_misses,
                                resume,
                                read_delay,
                            },
                        )
                        .await
                    }
                    Strategy::Beacon {
                        rate,
                        payload_bytes,
                    } => beacon::run(ctx, rec, publisher_id, rate, payload_bytes).await,
                    Strategy::Chat {
                        publish_via,
                        rate,
                        payload_bytes,
                    } => {
                        let log = chat_log.expect("created above for chat groups");
                        chat::run(
                            ctx,
                            rec,
                            chat::ChatOpts {
                                publish_via,
                                rate,
                                payload_bytes,
                                publisher_id,
                                topic_index,
                                log,
                            },
                        )
                        .await
                    }
                };
                (rec, topic_index)
            }));
        }
        groups.push(shared);
        client_tasks.push(tasks);
    }

    // The fault timeline.
    let timeline_stop = CancellationToken::new();
    let timeline = tokio::spawn(faults::play(Timeline {
        faults: scenario.faults().to_vec(),
        groups: groups.clone(),
        proxies: links.groups.clone(),
        server: options.server.clone(),
        clock,
        window_start_ns: window_start,
        stop: timeline_stop.clone(),
    }));
    // Reconnect storms are counted from the first fault that breaks connections.
    let storm_from = scenario
        .faults()
        .iter()
        .filter(|f| !matches!(f.kind, FaultKind::PublisherBurst { .. }))
        .map(|f| window_start + f.at.as_nanos() as u64)
        .min();

    // Per-second sampler: timeseries rows and hlog intervals.
    let sampler_done = CancellationToken::new();
    let sampler = tokio::spawn(sample(
        groups.clone(),
        stats.clone(),
        clock,
        (t0, window_start, end),
        storm_from,
        sampler_done.clone(),
    ));

    // Wait for the end, updating the progress display.
    let mut partial_reason = None;
    loop {
        let now = clock.now_ns();
        progress
            .elapsed_ms
            .store(now.saturating_sub(t0) / 1_000_000, Relaxed);
        progress.warming_up.store(now < window_start, Relaxed);
        if now >= end {
            break;
        }
        if now >= window_end {
            publisher_stop.cancel();
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.cancelled() => {
                partial_reason = Some("stopped early (interrupted)".to_string());
                break;
            }
        }
    }
    let stopped_at = clock.now_ns();
    publisher_stop.cancel();
    if partial_reason.is_some() {
        // Count only what was meant to go out before the stop, and give events
        // already on their way a moment to arrive.
        for g in &groups {
            g.window_end_ns
                .fetch_min(stopped_at.max(window_start), Relaxed);
        }
        tokio::time::sleep(scenario.grace().min(Duration::from_millis(500))).await;
    }
    timeline_stop.cancel();
    let played = timeline.await.unwrap_or_default();
    done.cancel();
    sampler_done.cancel();

    // One deadline for every client: a client stuck in a dead connection is
    // abandoned (and counted in the log), never waited for one by one.
    let join_deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut results: Vec<Vec<ClientResult>> = Vec::new();
    let mut abandoned = 0u64;
    for tasks in client_tasks {
        let mut group_results = Vec::new();
        for mut t in tasks {
            match tokio::time::timeout_at(join_deadline, &mut t).await {
                Ok(Ok((rec, topic))) => {
                    let reg = registry.clone();
                    group_results.push(rec.finish(move |from, to| reg.expected(topic, from, to)));
                }
                _ => {
                    t.abort();
                    abandoned += 1;
                }
            }
        }
        results.push(group_results);
    }
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "clients did not finish within 5s of the end; their results are missing"
        );
    }
    publisher_kill.cancel();
    links.shutdown().await;
    let lag = match tokio::time::timeout(Duration::from_secs(5), publisher_task).await {
        Ok(Ok(h)) => h,
        _ => pushbench_protocol::record::latency_histogram(),
    };
    let Sampled {
        rows: timeseries,
        mut intervals,
        baselines,
        storm_peaks,
        rss_peak,
    } = sampler.await.unwrap_or_default();
    // Samples recorded after the sampler's last interval (the clients' final
    // flushes at the end of grace) belong to the last interval: the hlog and the
    // totals count the same samples.
    for g in &groups {
        let (hc, hu) = g
            .hists
            .lock()
            .expect("histogram lock never poisoned")
            .take_interval();
        merge_into_last(&mut intervals, &g.name, hc);
        merge_into_last(&mut intervals, &format!("{}.uncorrected", g.name), hu);
    }

    // Health.
    let wall_s = (clock.now_ns().saturating_sub(t0)) as f64 / 1e9;
    let cpu_s = (health::process_cpu_seconds() - cpu_before).max(0.0);
    let cores = health::cores();
    let cpu_share = if wall_s > 0.0 {
        cpu_s / (wall_s * f64::from(cores))
    } else {
        0.0
    };
    let dropped = stats.dropped.load(Relaxed);
    let lag_p = percentiles(&lag);
    let mut warnings = Vec::new();
    let mut saturated = false;
    if lag_p.p99 > health::LAG_LIMIT_US || dropped > 0 {
        saturated = true;
        warnings.push(format!(
            "the publisher fell behind its schedule (lag p99 {} us, {} events not sent): the load generator, or the machine it shares, could not keep up, and latencies include that delay",
            lag_p.p99, dropped
        ));
    }
    if cpu_share > health::CPU_LIMIT {
        saturated = true;
        warnings.push(format!(
            "the load generator process used {:.0}% of all {} cores{}: results may measure it rather than the server",
            cpu_share * 100.0,
            cores,
            if options.embedded { " (the embedded server included)" } else { "" }
        ));
    }
    if abandoned > 0 {
        warnings.push(format!(
            "{abandoned} clients did not stop within 5 s of the end; their deliveries are missing from the counts"
        ));
    }
    let run_len = Duration::from_nanos(end - window_start);
    for f in scenario.faults() {
        if f.at + f.duration > run_len {
            warnings.push(format!(
                "the {} fault at {} (lasting {}) runs past the end of this run ({} after the window start): it was cut short or never happened; was --duration shorter than the scenario's?",
                f.kind.name(),
                humantime::format_duration(f.at),
                humantime::format_duration(f.duration),
                humantime::format_duration(run_len)
            ));
        }
    }
    let publish_errors = stats.errors.load(Relaxed);
    if publish_errors > 0 {
        warnings.push(if played.restarts > 0 {
            format!(
                "{publish_errors} publishes failed, most while the server was down for a server-restart fault; those events are not expected by any client"
            )
        } else {
            format!("{publish_errors} publishes failed; those events are not expected by any client")
        });
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }

    let end_counters: Vec<CounterValues> = groups.iter().map(|g| g.counters.values()).collect();
    let mut summaries = Vec::new();
    let mut histograms = BTreeMap::new();
    for (gi, (g, cfg)) in groups.iter().zip(scenario.groups()).enumerate() {
        let base = baselines.get(gi).copied().unwrap_or_default();
        let c = end_counters[gi].since(&base);
        let whole = end_counters[gi];
        let (total, total_u) = {
            let h = g.hists.lock().expect("histogram lock never poisoned");
            (h.total.clone(), h.total_uncorrected.clone())
        };
        let mut s = GroupSummary {
            name: cfg.name.clone(),
            strategy: cfg.strategy.kind().to_string(),
            options: options_text(cfg),
            clients: u64::from(cfg.clients),
            latency_us: percentiles(&total),
            latency_uncorrected_us: percentiles(&total_u),
            bytes_up: c.bytes_up,
            bytes_down: c.bytes_down,
            payload_bytes_down: c.payload_bytes_down,
            requests: c.requests,
            empty_responses: c.empty,
            not_modified: c.not_modified,
            // Connections and errors count the whole run: a stream opened during
            // warm-up still serves the window, and an error is worth knowing anyway.
            connections_opened: whole.connections_opened,
            reconnects: whole.reconnects,
            errors: whole.error_total(),
            errors_by_kind: whole.errors_by_kind(),
            uploads: c.uploads,
            reconnect_peak_per_s: storm_peaks.get(gi).copied().unwrap_or(0),
            ..GroupSummary::default()
        };
        {
            let fs = g
                .fault_samples
                .lock()
                .expect("fault sample lock never poisoned");
            (s.detections, s.detect_us_p50, s.detect_us_max) = median_max(&fs.detect_us);
            (s.recoveries, s.recover_us_p50, s.recover_us_max) = median_max(&fs.recover_us);
        }
        for r in &results[gi] {
            s.expected += r.expected;
            s.delivered += r.counts.delivered;
            s.duplicates += r.counts.duplicates;
            s.reordered += r.counts.reordered;
            s.lost += r.expected.saturating_sub(r.counts.delivered);
            s.gaps += r.gaps;
        }
        s.coherence = if s.expected == 0 {
            1.0
        } else {
            s.delivered as f64 / s.expected as f64
        };
        if s.reconnects > 0 {
            s.lost_per_reconnect = s.lost as f64 / s.reconnects as f64;
            s.duplicates_per_reconnect = s.duplicates as f64 / s.reconnects as f64;
        }
        let events = if matches!(cfg.strategy, Strategy::Beacon { .. }) {
            s.uploads
        } else {
            s.delivered
        };
        s.wire_bytes_per_event = if events == 0 {
            0.0
        } else {
            (s.bytes_up + s.bytes_down) as f64 / events as f64
        };
        histograms.insert(cfg.name.clone(), total);
        // A half-open link nobody noticed is the lesson, but say it plainly.
        let blackholed = scenario.faults().iter().any(|f| {
            f.kind == FaultKind::Blackhole
                && f.at + f.duration <= run_len
                && (f.groups.is_empty() || f.groups.contains(&s.name))
        });
        if blackholed && s.detections < s.clients && s.clients > 0 {
            let w = format!(
                "group {}: {} of {} clients never detected the blackhole (no heartbeat or read timeout shorter than it): a half-open connection is only noticed when it ends, and one that never ends is never noticed",
                s.name,
                s.clients - s.detections,
                s.clients
            );
            tracing::warn!("{w}");
            warnings.push(w);
        }
        summaries.push(s);
    }

    let partial = partial_reason.is_some();
    let measured_ns = if partial {
        stopped_at.min(window_end).saturating_sub(window_start)
    } else {
        window_end - window_start
    };
    let summary = Summary {
        schema_version: SCHEMA_VERSION,
        scenario: scenario.name().to_string(),
        description: scenario.description().to_string(),
        started_at: humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_nanos(window_start),
        )
        .to_string(),
        duration_s: measured_ns as f64 / 1e9,
        partial,
        partial_reason,
        target: options.base_url.clone(),
        embedded_server: options.embedded,
        publisher: PublisherSummary {
            published: stats.published_in_window.load(Relaxed),
            publish_errors,
            rate_per_s: pcfg.rate,
            payload_bytes: pcfg.payload_bytes as u64,
            topics: pcfg.topics,
            lag_us: lag_p,
        },
        loadgen: LoadgenHealth {
            cpu_s,
            cpu_share,
            saturated,
        },
        groups: summaries,
        warnings,
        server: options.server.as_ref().map(|ctl| {
            let after = ctl.snapshot();
            let before = server_before.unwrap_or_default();
            ServerCost {
                scope: "the whole pushbench process: the embedded server and the load generator share it, so the server's own share cannot be separated".into(),
                rss_peak_bytes: rss_peak.max(health::process_rss_bytes()),
                rss_end_bytes: health::process_rss_bytes(),
                cpu_s,
                connections_accepted: after
                    .connections_total
                    .saturating_sub(before.connections_total),
                slow_consumer_closes: after
                    .slow_consumer_closes
                    .saturating_sub(before.slow_consumer_closes),
                gaps_sent: after.gaps.saturating_sub(before.gaps),
                restarts: played.restarts,
            }
        }),
    };
    let mut arrivals = Vec::new();
    for g in &groups {
        let mut rows = g
            .arrivals
            .lock()
            .expect("arrivals lock never poisoned")
            .clone();
        rows.sort_by_key(|r| r.2);
        arrivals.extend(rows.into_iter().map(|(client, seq, at)| ArrivalRow {
            group: g.name.clone(),
            client,
            publisher_seq: seq,
            receive_ms: (at as i128 - window_start as i128) as f64 / 1e6,
        }));
    }
    let local = target.authority.starts_with("127.")
        || target.authority.starts_with("localhost")
        || target.authority.starts_with("[::1]");
    let meta = Meta {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: None,
        host: health::host_name(),
        cores,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        command: String::new(),
        clock: if local {
            "one host clock: publisher stamps and receive times are read on the same machine".into()
        } else {
            "one host clock for stamps and receive times (the load generator's); the server's clock is not used".into()
        },
    };
    tracing::info!(scenario = scenario.name(), partial, "run finished");
    Ok(RunRecord {
        summary,
        timeseries,
        intervals,
        histograms,
        scenario_toml: scenario.to_resolved_toml(),
        meta,
        arrivals,
        faults: played.rows,
    })
}

/// `key=value` options of a group, for the summary table.
fn options_text(g: &GroupConfig) -> String {
    let d = |d: Duration| humantime::format_duration(d).to_string();
    match &g.strategy {
        Strategy::Poll {
            interval,
            schedule,
            cursor,
            conditional,
            ..
        } => format!(
            "interval={} schedule={} cursor={} conditional={}",
            d(*interval),
            if *schedule == PollSchedule::FixedRate {
                "fixed-rate"
            } else {
                "fixed-delay"
            },
            if *cursor == PollCursor::Since {
                "since"
            } else {
                "latest"
            },
            conditional
        ),
        Strategy::LongPoll { cursor, wait } => format!(
            "cursor={} wait={}",
            if *cursor == LongPollCursor::Since {
                "since"
            } else {
                "none"
            },
            d(*wait)
        ),
        Strategy::Sse {
            resume,
            read_timeout,
        } => format!("resume={resume} read_timeout={}", d(*read_timeout)),
        Strategy::WebSocket {
            format,
            heartbeat,
            heartbeat_misses,
            resume,
            read_delay,
        } => format!(
            "format={} heartbeat={} heartbeat_misses={heartbeat_misses} resume={resume}{}",
            if *format == WsFormat::Text {
                "text"
            } else {
                "binary"
            },
            heartbeat.map(d).unwrap_or_else(|| "off".into()),
            read_delay
                .map(|r| format!(" read_delay={}", d(r)))
                .unwrap_or_default()
        ),
        Strategy::Beacon {
            rate,
            payload_bytes,
        } => format!("rate={rate} payload_bytes={payload_bytes}"),
        Strategy::Chat {
            publish_via,
            rate,
            payload_bytes,
        } => format!(
            "publish_via={} rate={rate} payload_bytes={payload_bytes}",
            if *publish_via == PublishVia::WebSocket {
                "websocket"
            } else {
                "post"
            }
        ),
    }
}

/// Adds `h` into the last interval tagged `tag` (a new, wider histogram when `h`
/// holds larger values than it can); a no-op for an empty `h`. With no interval of
/// that tag (a run stopped before the window), the samples were out of the window.
fn merge_into_last(intervals: &mut [IntervalHistogram], tag: &str, h: Histogram<u64>) {
    if h.is_empty() {
        return;
    }
    let Some(last) = intervals.iter_mut().rev().find(|i| i.tag == tag) else {
        return;
    };
    last.histogram = merged(&last.histogram, &h);
}

/// The sum of two histograms, sized to the larger maximum (interval histograms are
/// compacted to their own range, so one cannot always take the other's values).
fn merged(a: &Histogram<u64>, b: &Histogram<u64>) -> Histogram<u64> {
    let high = a.max().max(b.max()).max(2);
    let mut out = Histogram::new_with_bounds(1, high, 3).expect("bounds 1..high>=2 are valid");
    out.add(a)
        .expect("same precision, range covers every value");
    out.add(b)
        .expect("same precision, range covers every value");
    out
}

/// (count, median, max) of a sample list; zeros when empty.
fn median_max(v: &[u64]) -> (u64, u64, u64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    let mut v = v.to_vec();
    v.sort_unstable();
    (v.len() as u64, v[(v.len() - 1) / 2], v[v.len() - 1])
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: h.mean(),
    }
}

/// What the per-second sampler saw.
#[derive(Default)]
struct Sampled {
    rows: Vec<TimeseriesRow>,
    intervals: Vec<IntervalHistogram>,
    /// Each group's counters at the window start.
    baselines: Vec<CounterValues>,
    /// Each group's most connections opened in one second since `storm_from`.
    storm_peaks: Vec<u64>,
    /// Peak resident memory of the process, bytes.
    rss_peak: u64,
}

/// Every second (aligned on the window start): one timeseries row per group, and
/// from the window start on, one hlog interval per group and tag. Also returns each
/// group's counters at the window start, the baseline of the summary's counters.
/// Times are (t0, window start, end), ns.
async fn sample(
    groups: Vec<Arc<GroupShared>>,
    stats: Arc<PublisherStats>,
    clock: Clock,
    (t0, window_start, end): (u64, u64, u64),
    storm_from: Option<u64>,
    done: CancellationToken,
) -> Sampled {
    let mut storm_peaks = vec![0u64; groups.len()];
    let mut rss_peak = 0u64;
    let mut rows = Vec::new();
    let mut intervals = Vec::new();
    let mut prev_values: Vec<CounterValues> = vec![CounterValues::default(); groups.len()];
    let mut baselines = prev_values.clone();
    let mut prev_published = 0u64;
    let mut carry: Vec<Option<(Histogram<u64>, Histogram<u64>)>> = vec![None; groups.len()];
    // Boundaries: window_start + k seconds; the first one after t0.
    let back = (window_start - t0) / SECOND_NS;
    let mut next = window_start - back * SECOND_NS;
    if next <= t0 {
        next += SECOND_NS;
    }
    let mut prev = t0;
    loop {
        let last = tokio::select! {
            _ = tokio::time::sleep_until(clock.instant(next)) => false,
            _ = done.cancelled() => true,
        };
        let at = if last {
            clock.now_ns().max(prev + 1)
        } else {
            next
        };
        let published = stats.published.load(Relaxed);
        let second = (prev as i128 - window_start as i128).div_euclid(SECOND_NS as i128) as i64;
        for (gi, g) in groups.iter().enumerate() {
            let now_values = g.counters.values();
            let d = now_values.since(&prev_values[gi]);
            if storm_from.is_some_and(|f| at > f) {
                storm_peaks[gi] = storm_peaks[gi].max(d.connections_opened);
            }
            let (hc, hu) = g
                .hists
                .lock()
                .expect("histogram lock never poisoned")
                .take_interval();
            rows.push(TimeseriesRow {
                second,
                group: g.name.clone(),
                deliveries: d.deliveries,
                p99_us: if hc.is_empty() {
                    0
                } else {
                    hc.value_at_quantile(0.99)
                },
                open_connections: now_values.open,
                bytes_up: d.bytes_up,
                bytes_down: d.bytes_down,
                errors: d.error_total(),
                published: published - prev_published,
            });
            if prev >= window_start {
                let start_ms = prev / 1_000_000;
                let duration_ms = (at - prev) / 1_000_000;
                let (hc, hu) = match carry[gi].take() {
                    Some((cc, cu)) => (merged(&cc, &hc), merged(&cu, &hu)),
                    None => (hc, hu),
                };
                intervals.push(IntervalHistogram {
                    tag: g.name.clone(),
                    start_ms,
                    duration_ms,
                    histogram: hc,
                });
                intervals.push(IntervalHistogram {
                    tag: format!("{}.uncorrected", g.name),
                    start_ms,
                    duration_ms,
                    histogram: hu,
                });
            } else if !hc.is_empty() || !hu.is_empty() {
                // Only in-window events are ever recorded, so these arrived after the
                // window start but before this (late) wake-up: the first interval's.
                carry[gi] = Some((hc, hu));
            }
            if at == window_start {
                baselines[gi] = now_values;
            }
            prev_values[gi] = now_values;
        }
        prev_published = published;
        rss_peak = rss_peak.max(health::process_rss_bytes());
        prev = at;
        next = at + SECOND_NS;
        if last || at >= end {
            break;
        }
    }
    Sampled {
        rows,
        intervals,
        baselines,
        storm_peaks,
        rss_peak,
    }
}
