//! The `braid-linkem` command: `run` emulates the links of a config file,
//! `ctl` sends one command to a running instance's control socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use braid_linkem::shell;
use clap::{Parser, Subcommand};

const ABOUT: &str = "User-space WAN link emulator (netem replacement) for braid's tests.

Bridges the two interfaces of each [[path]] (usually veth ends in a dedicated
network namespace) through AF_PACKET sockets and emulates, per direction, a
bottleneck rate, delay, uniform jitter, random loss and a tail-drop queue.
Rates count the whole Ethernet frame as the packet socket sees it (14-byte
MAC header + IP packet; no preamble, FCS or inter-frame gap). Frames are
never reordered. Turn offloads off on every veth end
(ethtool -K IFACE tso off gso off gro off): super-frames larger than the
MTU are dropped.";

#[derive(Parser)]
#[command(name = "braid-linkem", version, about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the emulator until SIGTERM/SIGINT; prints "linkem: ready" on stdout
    /// once every interface is open, and final per-direction stats on exit.
    Run {
        /// TOML config: [[path]] name/a/b with [path.up] (a->b) and
        /// [path.down] (b->a) rate/delay/jitter/loss/limit, and [[event]]s.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Listen for control commands on this unix socket (see `ctl`).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
        /// Base seed of the loss and jitter draws (same seed, same draws).
        #[arg(long, value_name = "N", default_value_t = 1)]
        seed: u64,
        /// Real-time (SCHED_FIFO) priority, 1-99, so that other busy processes
        /// do not delay frames; 0 (the default) keeps the normal scheduler.
        /// Best at light load: near a full core, a real-time linkem starves the
        /// kernel's deferred network work and the receivers (see README).
        /// A warning, not an error, when not allowed.
        #[arg(long, value_name = "PRIO", default_value_t = 0,
              value_parser = clap::value_parser!(u8).range(0..=99))]
        priority: u8,
    },
    /// Send one command to a running emulator and print the reply; exits 1 if
    /// the reply is an error. Commands: cut PATH [up|down|both],
    /// restore PATH [DIR], rate PATH DIR RATE, delay PATH DIR DELAY [JITTER],
    /// jitter PATH DIR JITTER, loss PATH DIR LOSS, limit PATH DIR LIMIT, stats, help.
    Ctl {
        /// The control socket given to `run --control`.
        sock: PathBuf,
        /// The command words, e.g. `rate wan0 up 20mbit`.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

fn ctl(sock: &PathBuf, words: &[String]) -> anyhow::Result<bool> {
    let mut s =
        UnixStream::connect(sock).with_context(|| format!("control socket {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("{}\n", words.join(" ")).as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).context("reading the reply")?;
    print!("{reply}");
    let last = reply.lines().last().unwrap_or("");
    if last == "ok" {
        Ok(true)
    } else if last.starts_with("error:") {
        Ok(false)
    } else {
        anyhow::bail!("incomplete reply from {}: {reply:?}", sock.display())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run {
            config,
            control,
            seed,
            priority,
        } => shell::run(&shell::Options {
            config,
            control,
            seed,
            priority,
        })
        .map(|()| true),
        Cmd::Ctl { sock, command } => ctl(&sock, &command),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("braid-linkem: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
