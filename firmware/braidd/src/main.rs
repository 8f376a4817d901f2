//! `braidd`: the router's whole userland, and the concentrator on a server.
//!
//! This is the thin I/O shell around the sans-IO protocol crates: it parses the
//! command line, sets up logging, and drives everything from one tokio
//! `current_thread` runtime (a router has one or two slow cores; a work-stealing
//! scheduler would only add memory and context switches).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod classify;
mod concentrator;
mod config;
mod control;
mod init;
mod io;
mod logger;
mod net;
mod router;
mod tun;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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

/// Where the configuration is read from by default.
const DEFAULT_CONFIG: &str = "/etc/braid/braidd.toml";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (router or concentrator, as the configuration says) until
    /// SIGTERM or SIGINT. The default.
    Run {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a configuration file and print what it sets up.
    Check {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print a new private key (base64).
    Genkey,
    /// Read a private key on standard input, print its public key.
    Pubkey,
    /// Ask the running braidd for its paths and counters.
    Status {
        /// Control socket.
        #[arg(long, default_value = "/run/braidd.sock")]
        socket: PathBuf,
    },
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
    let command = cli.command.unwrap_or(Command::Run {
        config: PathBuf::from(DEFAULT_CONFIG),
    });
    match command {
        Command::Run { config } => run(&config),
        Command::Check { config } => match config::Config::load(&config) {
            Ok(c) => {
                println!("{}: ok ({})", config.display(), describe(&c));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("braidd: {e}");
                ExitCode::from(2)
            }
        },
        Command::Genkey => match io::random32() {
            Ok(k) => {
                println!("{}", config::format_key(&k));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("braidd: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Pubkey => {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            match config::parse_key(&line) {
                Ok(k) => {
                    let public = braid_tunnel::handshake::LocalIdentity::new(k).public();
                    println!("{}", config::format_key(&public));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("braidd: standard input: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Status { socket } => match control::query(&socket) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("braidd: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Selftest => selftest(),
    }
}

fn describe(c: &config::Config) -> String {
    match &c.mode {
        config::Mode::Router(r) => format!(
            "router, {} WAN(s) to {}, tunnel {}/{} on {}",
            r.wans.len(),
            r.concentrator,
            r.address.0,
            r.address.1,
            c.tun
        ),
        config::Mode::Concentrator(k) => format!(
            "concentrator on {}, {} router(s), tunnel {}/{} on {}",
            k.listen,
            k.peers.len(),
            k.address.0,
            k.address.1,
            c.tun
        ),
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

/// Runs the daemon with the configuration at `path` until a shutdown signal. Without
/// a configuration file (a fresh router), it only waits for the signal.
pub(crate) fn run(path: &std::path::Path) -> ExitCode {
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
        let cfg = if path.exists() {
            match config::Config::load(path) {
                Ok(c) => Some(c),
                Err(e) => {
                    log::error!("{e}");
                    return ExitCode::from(2);
                }
            }
        } else {
            log::info!("no configuration at {}: idle", path.display());
            None
        };
        let shutdown = async {
            match wait_for_shutdown().await {
                Ok(signal) => log::info!("{signal}: shutting down"),
                Err(e) => log::error!("cannot wait for signals: {e}"),
            }
        };
        let result = match cfg.as_ref().map(|c| (&c.mode, c)) {
            Some((config::Mode::Router(r), c)) => router::run(c, r, shutdown).await,
            Some((config::Mode::Concentrator(k), c)) => concentrator::run(c, k, shutdown).await,
            None => {
                shutdown.await;
                Ok(())
            }
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
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
