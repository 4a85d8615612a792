//! `pushbench`: the one binary. It reads argv, installs logging, runs one subcommand
//! and exits; every subcommand lives in its own module and the libraries do the work.

mod compare;
mod embedded;
mod progress;
mod provenance;
mod proxy;
mod report;
mod run;
mod scenarios;
mod serve;
mod table;

use clap::{Parser, Subcommand};

/// Compare how a web server pushes updates: short polling, long polling, SSE,
/// WebSocket and beacon uploads, measured for latency, bytes on the wire and order.
#[derive(Parser)]
#[command(name = "pushbench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the reference push server (every strategy over one topic log).
    Serve(serve::ServeArgs),
    /// Impair a TCP link: a proxy adding latency, jitter, bandwidth limits, loss and faults.
    Proxy(proxy::ProxyArgs),
    /// Run a scenario: measure every strategy group, print a table, write results/.
    Run(run::RunArgs),
    /// Re-render a run folder's charts, report.md and report.html from its saved files.
    Report(report::ReportArgs),
    /// Put runs side by side: a table with ratios to the first, and compare.md with charts.
    Compare(compare::CompareArgs),
    /// List the scenario files of a folder with what each one teaches.
    Scenarios(scenarios::ScenariosArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::main(args),
        Command::Proxy(args) => proxy::main(args),
        Command::Run(args) => run::main(args),
        Command::Report(args) => report::main(args),
        Command::Compare(args) => compare::main(args),
        Command::Scenarios(args) => scenarios::main(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
