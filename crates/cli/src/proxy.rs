//! `pushbench proxy`: the netem impairment proxy standalone, in front of any TCP
//! server (pushbench's or another), until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use pushbench_netem::{Bandwidth, Impairment, LinkConfig, PRESETS, Proxy, ScheduledFault};
use tokio_util::sync::CancellationToken;

/// Flags of `pushbench proxy`. A preset sets every value; the flags after it
/// override it, both-direction flags first, then `--up-*`/`--down-*`.
#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// Address to accept clients on, e.g. 127.0.0.1:8081.
    #[arg(long, required_unless_present = "list_presets")]
    listen: Option<SocketAddr>,
    /// Server to forward every connection to (HOST:PORT, resolved once at start).
    #[arg(long, required_unless_present = "list_presets")]
    upstream: Option<String>,
    /// Start from a named network: lan, wifi, 3g, satellite, lossy (see --list-presets).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Print the presets, their numbers and sources, and exit.
    #[arg(long)]
    list_presets: bool,
    /// One-way delay added in each direction (the round trip grows by twice this).
    #[arg(long, value_parser = humantime::parse_duration)]
    latency: Option<Duration>,
    /// Each segment's delay is drawn from latency ± jitter (never reordering bytes).
    #[arg(long, value_parser = humantime::parse_duration)]
    jitter: Option<Duration>,
    /// Rate of each connection in each direction, e.g. 1mbit, 500kbit.
    #[arg(long)]
    bandwidth: Option<Bandwidth>,
    /// Rate shared by all connections, per direction (a common bottleneck).
    #[arg(long)]
    shared_bandwidth: Option<Bandwidth>,
    /// Probability that a segment is lost, in each direction (0.01 = 1 %); a loss
    /// stalls the stream for one RTO, as TCP retransmission does.
    #[arg(long)]
    loss: Option<f64>,
    /// Retransmission timeout of the loss model (Linux's minimum is 200ms).
    #[arg(long, value_parser = humantime::parse_duration)]
    rto: Option<Duration>,
    /// Client-to-server delay, overriding --latency.
    #[arg(long, value_parser = humantime::parse_duration)]
    up_latency: Option<Duration>,
    /// Server-to-client delay, overriding --latency.
    #[arg(long, value_parser = humantime::parse_duration)]
    down_latency: Option<Duration>,
    /// Client-to-server jitter, overriding --jitter.
    #[arg(long, value_parser = humantime::parse_duration)]
    up_jitter: Option<Duration>,
    /// Server-to-client jitter, overriding --jitter.
    #[arg(long, value_parser = humantime::parse_duration)]
    down_jitter: Option<Duration>,
    /// Client-to-server rate per connection, overriding --bandwidth.
    #[arg(long)]
    up_bandwidth: Option<Bandwidth>,
    /// Server-to-client rate per connection, overriding --bandwidth.
    #[arg(long)]
    down_bandwidth: Option<Bandwidth>,
    /// Client-to-server loss probability, overriding --loss.
    #[arg(long)]
    up_loss: Option<f64>,
    /// Server-to-client loss probability, overriding --loss.
    #[arg(long)]
    down_loss: Option<f64>,
    /// Bytes queued per connection per direction before the proxy stops reading.
    #[arg(long)]
    queue_bytes: Option<usize>,
    /// Seed of the jitter and loss draws (same seed, same draws per connection).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A fault on a timeline from start, AT:KIND[:DURATION]; repeat for several.
    /// KIND: blackhole, reset, flap=PERIOD/DOWN. E.g. 10s:blackhole:5s, 20s:reset.
    #[arg(long = "fault-at", value_name = "AT:KIND[:DURATION]")]
    faults: Vec<ScheduledFault>,
    /// Time open connections get to close after Ctrl-C.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    shutdown_deadline: Duration,
}

impl ProxyArgs {
    /// The preset (or nothing) with every given flag applied on top.
    fn impairment(&self) -> anyhow::Result<Impairment> {
        let mut imp = match &self.preset {
            Some(name) => Impairment::preset(name)?,
            None => Impairment::none(),
        };
        let apply = |link: &mut LinkConfig,
                     latency: Option<Duration>,
                     jitter: Option<Duration>,
                     bandwidth: Option<Bandwidth>,
                     loss: Option<f64>| {
            if let Some(v) = latency.or(self.latency) {
                link.latency = v;
            }
            if let Some(v) = jitter.or(self.jitter) {
                link.jitter = v;
            }
            if let Some(v) = bandwidth.or(self.bandwidth) {
                link.bandwidth = Some(v);
            }
            if let Some(v) = self.shared_bandwidth {
                link.shared_bandwidth = Some(v);
            }
            if let Some(v) = loss.or(self.loss) {
                link.loss = v;
            }
        };
        apply(
            &mut imp.up,
            self.up_latency,
            self.up_jitter,
            self.up_bandwidth,
            self.up_loss,
        );
        apply(
            &mut imp.down,
            self.down_latency,
            self.down_jitter,
            self.down_bandwidth,
            self.down_loss,
        );
        if let Some(rto) = self.rto {
            imp.rto = rto;
        }
        if let Some(q) = self.queue_bytes {
            imp.queue_bytes = q;
        }
        imp.validate()?;
        Ok(imp)
    }
}

/// Prints the presets table to stdout (a closed pipe, as with `| head`, is not an error).
fn list_presets() -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = PRESETS.iter().try_for_each(|p| {
        let i = p.impairment;
        writeln!(out, "{:<10} {}", p.name, p.description)?;
        writeln!(out, "{:<10} up:   {}", "", i.up)?;
        writeln!(out, "{:<10} down: {}", "", i.down)?;
        writeln!(out, "{:<10} source: {}\n", "", p.source)
    });
    match written {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("writing the presets to stdout")
        }
        _ => Ok(()),
    }
}

/// Runs the proxy until SIGINT or SIGTERM.
pub fn main(args: ProxyArgs) -> anyhow::Result<()> {
    if args.list_presets {
        return list_presets();
    }
    let impairment = args.impairment()?;
    let (Some(listen), Some(upstream)) = (args.listen, args.upstream.clone()) else {
        anyhow::bail!("--listen and --upstream are both required");
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async {
        let upstream_addr = tokio::net::lookup_host(&upstream)
            .await
            .with_context(|| format!("resolving --upstream {upstream} (write HOST:PORT)"))?
            .next()
            .with_context(|| format!("--upstream {upstream} resolved to no address"))?;
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
            format!("binding --listen {listen} (is the port taken? try 127.0.0.1:0)")
        })?;
        let shutdown = CancellationToken::new();
        let proxy = Proxy::start(listener, upstream_addr, impairment, args.seed, shutdown)?;
        tracing::info!(
            "proxying {} -> {upstream_addr}{}",
            proxy.local_addr(),
            args.preset.as_deref().map(|p| format!(" (preset {p})")).unwrap_or_default()
        );
        tracing::info!("up (client to server): {}", impairment.up);
        tracing::info!("down (server to client): {}", impairment.down);
        if impairment.up.loss > 0.0 || impairment.down.loss > 0.0 {
            tracing::info!("loss stalls a stream for one rto ({:?}), doubling on repeats", impairment.rto);
        }
        if !args.faults.is_empty() {
            for fault in &args.faults {
                tracing::info!("fault timeline: {fault}");
            }
            proxy.run_timeline(tokio::time::Instant::now(), &args.faults)?;
        }
        wait_for_signal().await;
        tracing::info!("shutting down: closing connections");
        if !proxy.shutdown(args.shutdown_deadline).await {
            tracing::warn!("some connections outlived --shutdown-deadline {:?}", args.shutdown_deadline);
        }
        let c = proxy.counters();
        tracing::info!(
            "connections {} (upstream failures {}, fault resets {}); up {} B, down {} B; loss stalls up {} down {}",
            c.connections_accepted,
            c.upstream_failures,
            c.fault_resets,
            c.up.bytes_written,
            c.down.bytes_written,
            c.up.retransmission_stalls,
            c.down.retransmission_stalls
        );
        Ok(())
    })
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ProxyArgs,
    }

    fn parse(argv: &[&str]) -> anyhow::Result<Impairment> {
        let mut full = vec![
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
        ];
        full.extend_from_slice(argv);
        Wrapper::try_parse_from(full)?.args.impairment()
    }

    #[test]
    fn flags_override_the_preset_per_direction() {
        let imp = parse(&[
            "--preset",
            "3g",
            "--latency",
            "50ms",
            "--down-latency",
            "10ms",
            "--up-loss",
            "0.01",
        ])
        .unwrap();
        assert_eq!(imp.up.latency, Duration::from_millis(50));
        assert_eq!(imp.down.latency, Duration::from_millis(10));
        assert_eq!(imp.up.loss, 0.01);
        assert_eq!(imp.down.loss, 0.0);
        // Untouched values keep the preset's.
        assert_eq!(
            imp.down.bandwidth,
            Impairment::preset("3g").unwrap().down.bandwidth
        );
    }

    #[test]
    fn plain_flags_apply_to_both_directions() {
        let imp = parse(&[
            "--latency",
            "50ms",
            "--jitter",
            "40ms",
            "--bandwidth",
            "1mbit",
            "--loss",
            "0.02",
            "--rto",
            "300ms",
        ])
        .unwrap();
        for link in [imp.up, imp.down] {
            assert_eq!(link.latency, Duration::from_millis(50));
            assert_eq!(link.jitter, Duration::from_millis(40));
            assert_eq!(link.bandwidth, Some(Bandwidth::from_mbit(1)));
            assert_eq!(link.loss, 0.02);
        }
        assert_eq!(imp.rto, Duration::from_millis(300));
    }

    #[test]
    fn bad_values_are_rejected_with_the_reason() {
        assert!(
            parse(&["--preset", "moon"])
                .unwrap_err()
                .to_string()
                .contains("lan, wifi")
        );
        assert!(parse(&["--loss", "1.5"]).is_err());
        assert!(parse(&["--bandwidth", "1mbps"]).is_err());
        assert!(parse(&["--fault-at", "5s:explode"]).is_err());
        assert!(parse(&["--fault-at", "5s:blackhole:2s", "--fault-at", "9s:reset"]).is_ok());
    }
}
