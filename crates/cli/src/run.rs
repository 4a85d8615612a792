//! `pushbench run SCENARIO`: load and check the scenario (nothing starts if it is
//! wrong), start the built-in server on 127.0.0.1:0 unless a target is given, run the
//! load generator with progress on stderr, and write the results folder (then its
//! charts and report.md) even when the run is interrupted; then print the summary
//! table on stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow};
use pushbench_loadgen::{Progress, RunOptions, Scenario};
use pushbench_protocol::record::RunRecord;
use tokio_util::sync::CancellationToken;

use crate::embedded::EmbeddedServer;
use crate::{progress, provenance, table};

/// How long the embedded server gets to close its connections after the run.
const SERVER_STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Arguments of `pushbench run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario file (TOML); `pushbench scenarios` lists the shipped ones.
    scenario: PathBuf,
    /// Folder for the results [default: results/<scenario>/<UTC time>/].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Measure the server at this base URL (http://host:port) instead of starting
    /// the built-in one; overrides the scenario's [target].
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// Override a scenario key, e.g. `--set publisher.rate=200 --set group.0.clients=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Length of the measured window, e.g. `10s`, `2m` (overrides `duration`).
    #[arg(long, value_name = "DURATION")]
    duration: Option<humantime::Duration>,
}

/// Runs one scenario end to end. Errors are setup errors (bad scenario, unusable
/// target or output folder); an interrupted run is not an error.
pub fn main(args: RunArgs) -> anyhow::Result<()> {
    // ScenarioError's message already names the file, key and line: print it once,
    // without repeating its source.
    let mut scenario =
        Scenario::from_file(&args.scenario, &args.set).map_err(|e| anyhow!("{e}"))?;
    if let Some(d) = args.duration {
        let d: Duration = d.into();
        anyhow::ensure!(!d.is_zero(), "--duration must be longer than 0s");
        scenario.set_duration(d);
    }
    let target = args
        .target
        .clone()
        .or_else(|| scenario.target().map(str::to_owned));
    if let Some(url) = &target {
        anyhow::ensure!(
            !scenario.restarts_server(),
            "{} has a server-restart fault, which stops and restarts the embedded server; a server at {url} is not pushbench's to restart: run without --target / [target], or remove the fault",
            args.scenario.display()
        );
    }
    let dir = args.out.clone().unwrap_or_else(|| {
        pushbench_report::layout::default_run_dir(
            Path::new("results"),
            scenario.name(),
            SystemTime::now(),
        )
    });
    // Made before the run so an unwritable place fails in a second, not after it.
    let dir_existed = dir.is_dir();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the results folder {}", dir.display()))?;

    // Threads inherit the timer slack of the thread that creates them, and this (the
    // main) thread creates them all: 1 us instead of Linux's default 50 us lets the
    // publisher's sleeps end closer to each event's intended time. Best effort: where
    // /proc/self/timerslack_ns is missing or read-only the default stays.
    let _ = std::fs::write("/proc/self/timerslack_ns", "1000");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(execute(&scenario, target));
    // Tasks stuck in a dead connection must not hold the results hostage.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let mut record = match outcome {
        Ok(record) => record,
        Err(err) => {
            if !dir_existed {
                // Only removes the folder if it is still empty.
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(err);
        }
    };

    provenance::fill(&mut record.meta);
    pushbench_report::write_run(&dir, &record)
        .with_context(|| format!("cannot write the results to {}", dir.display()))?;
    // The charts and report.md are a view of the files just written: if they fail,
    // the results still stand, so it is a warning, not an error.
    let report = match pushbench_report::render_report(&dir) {
        Ok(files) => Some(files.markdown),
        Err(err) => {
            eprintln!("warning: results written, but the report could not be rendered: {err}");
            None
        }
    };
    print!("{}", table::render(&record.summary));
    println!();
    println!("results: {}", dir.display());
    if let Some(path) = report {
        println!("report:  {}", path.display());
    }
    Ok(())
}

/// The async part: server, Ctrl-C watch, progress display and the load generator.
async fn execute(scenario: &Scenario, target: Option<String>) -> anyhow::Result<RunRecord> {
    let mut embedded_server = None;
    let (base_url, embedded) = match target {
        Some(url) => (url, false),
        None => {
            let server = EmbeddedServer::start(pushbench_server::Config::default())
                .await
                .context("cannot bind 127.0.0.1:0 for the embedded server")?;
            let url = format!("http://{}", server.addr());
            embedded_server = Some(Arc::new(server));
            (url, true)
        }
    };
    let total = scenario.warmup() + scenario.duration() + scenario.grace();
    eprintln!(
        "pushbench: running {} against {}{} for {} (warm-up {}, measured {}, grace {}); Ctrl-C stops early and keeps the results",
        scenario.name(),
        base_url,
        if embedded { " (embedded server)" } else { "" },
        humantime::format_duration(total),
        humantime::format_duration(scenario.warmup()),
        humantime::format_duration(scenario.duration()),
        humantime::format_duration(scenario.grace()),
    );

    let stop = CancellationToken::new();
    let ctrl_c = tokio::spawn(watch_ctrl_c(stop.clone()));
    let progress = Arc::new(Progress::default());
    let display_done = CancellationToken::new();
    let timeline = progress::Timeline {
        warmup: scenario.warmup(),
        measured: scenario.duration(),
        grace: scenario.grace(),
    };
    let display = tokio::spawn(progress::show(
        progress.clone(),
        timeline,
        display_done.clone(),
    ));

    let options = RunOptions {
        base_url,
        embedded,
        server: embedded_server
            .clone()
            .map(|s| s as Arc<dyn pushbench_loadgen::ServerControl>),
    };
    let result = pushbench_loadgen::run(scenario, options, progress, stop).await;

    display_done.cancel();
    let _ = display.await;
    ctrl_c.abort();
    if let Some(server) = embedded_server {
        if !server.stop(SERVER_STOP_DEADLINE).await {
            tracing::warn!(
                "the embedded server did not stop within {SERVER_STOP_DEADLINE:?}; results are unaffected"
            );
        }
    }
    result.map_err(|e| anyhow!("{e}"))
}

/// First Ctrl-C: stop the run (it ends early, results are written, marked partial).
/// Second Ctrl-C: exit at once.
async fn watch_ctrl_c(stop: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling on this platform: the run simply cannot be interrupted
        // gracefully.
        return;
    }
    eprintln!("\npushbench: stopping; writing partial results (Ctrl-C again to quit at once)");
    stop.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("pushbench: interrupted twice, exiting without writing results");
        std::process::exit(130);
    }
}
