//! `braidd`: the router's whole userland, and the concentrator on a server.
//!
//! This is the thin I/O shell around the sans-IO protocol crates: it parses the
//! command line, sets up logging, and drives everything from one tokio
//! `current_thread` runtime (a router has one or two slow cores; a work-stealing
//! scheduler would only add memory and context switches).

mod init;
mod logger;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Version line: crate version, target triple and build profile.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BRAID_TARGET"),
    ", ",
    env!("BRAID_PROFILE"),
    ")"
);

/// braid's link-bonding daemon.
#[derive(Debug, Parser)]
#[command(name = "braidd", version = VERSION, about)]
struct Cli {
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "info", env = "BRAIDD_LOG")]
    log_level: log::LevelFilter,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM or SIGINT (the default).
    Run,
    /// Check the tunnel cryptography against known answers on this CPU, then exit.
    Selftest,
}

fn main() -> ExitCode {
    if std::process::id() == 1 {
        // As PID 1 the kernel passes its command line's unknown words as arguments;
        // they are not ours to parse.
        logger::init(log::LevelFilter::Info);
        init::main(VERSION);
    }
    let cli = Cli::parse();
    logger::init(cli.log_level);
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(),
        Command::Selftest => selftest(),
    }
}

fn selftest() -> ExitCode {
    match braid_tunnel::selftest() {
        Ok(()) => {
            println!("selftest: ok ({})", env!("BRAID_TARGET"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("selftest: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the daemon until a shutdown signal.
pub(crate) fn run() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        log::info!("braidd {VERSION} running");
        match wait_for_shutdown().await {
            Ok(signal) => {
                log::info!("{signal}: shutting down");
                ExitCode::SUCCESS
            }
            Err(e) => {
                log::error!("cannot wait for signals: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Resolves on the first SIGTERM or SIGINT and names it.
async fn wait_for_shutdown() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}
