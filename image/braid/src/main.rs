//! `braid`: board name in, flashable firmware out. It builds a board's images
//! (`build`), boots QEMU boards (`run`), cross-compiles the daemon for any CPU
//! target in targets/ (`daemon`) and runs cargo with a target's toolchain (`cargo`).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

use braid::pipeline;
use braid::targets::{self, Target};
use braid::toolchain::CrossBuild;
use braid::workspace::Workspace;

/// braid's firmware builder.
#[derive(Debug, Parser)]
#[command(name = "braid", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the boards (board/*.toml).
    Boards,
    /// Build a board's images into out/<board>/.
    Build {
        /// Board name (see `braid boards`).
        #[arg(long)]
        board: String,
        /// Show the plan without building or writing anything.
        #[arg(long)]
        dry_run: bool,
        /// A kernel tree or tarball to build instead of Debian's linux-source-6.1.
        #[arg(long, value_name = "PATH")]
        kernel_source: Option<std::path::PathBuf>,
    },
    /// Configure a board's kernel and verify the config, without building it;
    /// prints the resolved .config's path.
    Config {
        /// Board name (see `braid boards`).
        #[arg(long)]
        board: String,
        /// A kernel tree or tarball to use instead of Debian's linux-source-6.1.
        #[arg(long, value_name = "PATH")]
        kernel_source: Option<std::path::PathBuf>,
        /// Also compile the kernel (with an empty initramfs), so that a later
        /// `braid build` only links it: warms the cache ahead of a build.
        #[arg(long)]
        compile: bool,
    },
    /// Build a QEMU board if needed and boot it, with the serial console here.
    Run {
        /// Board name (see `braid boards`); a QEMU machine.
        #[arg(long, default_value = "qemu-malta-le")]
        board: String,
        /// Number of emulated WAN NICs (one LAN NIC is always added).
        #[arg(long, default_value_t = 1)]
        wan: u8,
        /// Power off right after braidd's boot banner (for tests and benchmarks).
        #[arg(long)]
        poweroff: bool,
        /// Boot what is in out/<board>/ without rebuilding.
        #[arg(long)]
        no_build: bool,
        /// A kernel tree or tarball to build instead of Debian's linux-source-6.1.
        #[arg(long, value_name = "PATH")]
        kernel_source: Option<std::path::PathBuf>,
        /// Extra kernel command-line words.
        #[arg(long, value_name = "WORDS")]
        append: Vec<String>,
    },
    /// List the CPU targets (targets/*.toml).
    Targets,
    /// Cross-compile braidd into a fully static binary for a target.
    Daemon {
        /// Target name (see `braid targets`).
        #[arg(long)]
        target: String,
        /// Build with the size-tuned release profile.
        #[arg(long)]
        release: bool,
    },
    /// Run any cargo command with a target's cross toolchain, e.g.
    /// `braid cargo --target mips test -p braid-tunnel` (tests run under qemu-user).
    Cargo {
        /// Target name (see `braid targets`).
        #[arg(long)]
        target: String,
        /// The cargo subcommand (build, test, run...).
        subcommand: String,
        /// Arguments for the cargo subcommand.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print a target's cross environment as shell `export` lines.
    Env {
        /// Target name (see `braid targets`).
        #[arg(long)]
        target: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("braid: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let ws = Workspace::discover();
    let all = targets::load_dir(&ws.targets_dir())?;
    match cli.command {
        Command::Boards => {
            print_boards(&ws, &all)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build {
            board,
            dry_run,
            kernel_source,
        } => {
            let loaded = pipeline::load(&ws, &board)?;
            let opts = pipeline::Options {
                board,
                kernel_source,
            };
            if dry_run {
                for line in pipeline::plan(&ws, &loaded, &opts) {
                    println!("{line}");
                }
            } else {
                let report = pipeline::build(&ws, &loaded, &opts)?;
                print!("{}", pipeline::summary(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            board,
            kernel_source,
            compile,
        } => {
            let loaded = pipeline::load(&ws, &board)?;
            let src = braid::kernel::source::resolve(kernel_source.as_deref(), &ws.cache)?;
            let kernel =
                braid::kernel::Kernel::new(&loaded.board, &loaded.target, &src, &ws.cache)?;
            if compile {
                kernel.precompile(&pipeline::empty_initramfs()?)?;
            } else {
                kernel.configure()?;
            }
            println!("{}", kernel.dir.join(".config").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            board,
            wan,
            poweroff,
            no_build,
            kernel_source,
            append,
        } => {
            let loaded = pipeline::load(&ws, &board)?;
            anyhow::ensure!(
                loaded.board.qemu().is_some(),
                "{} is a real board, not a QEMU machine; QEMU boards: {}",
                board,
                qemu_boards(&ws, &all)?.join(", ")
            );
            if !no_build {
                let opts = pipeline::Options {
                    board: board.clone(),
                    kernel_source,
                };
                let report = pipeline::build(&ws, &loaded, &opts)?;
                eprint!("{}", pipeline::summary(&report));
            }
            let opts = braid::qemu::RunOptions {
                wans: wan,
                poweroff,
                append,
            };
            let mut cmd = braid::qemu::command(&loaded.board, &ws.out.join(&board), &opts)?;
            eprintln!("braid: booting {board} in QEMU (quit: Ctrl-A then x)");
            let status = cmd.status().context("cannot start QEMU")?;
            Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ))
        }
        Command::Targets => {
            print_targets(&all);
            Ok(ExitCode::SUCCESS)
        }
        Command::Daemon { target, release } => {
            build_daemon(&ws, targets::find(&all, &target)?, release)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cargo {
            target,
            subcommand,
            args,
        } => {
            let target = targets::find(&all, &target)?;
            let build = CrossBuild::new(&ws, target, true)?;
            let status = build
                .command(&subcommand, &args)
                .current_dir(&ws.root)
                .status()
                .context("cannot run cargo")?;
            Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ))
        }
        Command::Env { target } => {
            let target = targets::find(&all, &target)?;
            print!("{}", CrossBuild::new(&ws, target, true)?.shell_exports());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_boards(ws: &Workspace, targets: &[Target]) -> Result<()> {
    let dir = ws.boards.clone();
    println!(
        "{:<22} {:<13} {:<22} {:<18} MODEL",
        "NAME", "TARGET", "IMAGES", "HARDWARE"
    );
    for name in braid::board::list(&dir)? {
        let b = braid::board::load(&dir, &name, targets)?;
        let images: Vec<&str> = b.images.iter().map(|i| i.name()).collect();
        let hw = match &b.hardware {
            braid::board::Hardware::Emulated(q) => format!("QEMU {}", q.machine),
            braid::board::Hardware::Real { verified: true } => "verified".into(),
            braid::board::Hardware::Real { verified: false } => "not verified yet".into(),
        };
        println!(
            "{:<22} {:<13} {:<22} {:<18} {} {}",
            b.name,
            b.target,
            images.join(","),
            hw,
            b.vendor,
            b.model
        );
    }
    Ok(())
}

fn qemu_boards(ws: &Workspace, targets: &[Target]) -> Result<Vec<String>> {
    let dir = ws.boards.clone();
    let mut out = Vec::new();
    for name in braid::board::list(&dir)? {
        if braid::board::load(&dir, &name, targets)?.qemu().is_some() {
            out.push(name);
        }
    }
    Ok(out)
}

fn print_targets(all: &[Target]) {
    println!(
        "{:<13} {:<31} {:<7} {:<27} DESCRIPTION",
        "NAME", "RUST TRIPLE", "STD", "ELF"
    );
    for t in all {
        let std = if t.build_std { "source" } else { "rustup" };
        println!(
            "{:<13} {:<31} {:<7} {:<27} {}",
            t.name,
            t.triple,
            std,
            t.elf.to_string(),
            t.description
        );
    }
}

/// Builds braidd and prints where it is, how big, and how long it took.
fn build_daemon(ws: &Workspace, target: &Target, release: bool) -> Result<()> {
    let d = braid::daemon::build(ws, target, release)?;
    println!(
        "braidd for {} ({}, {})",
        target.name, target.triple, d.profile
    );
    println!("  path   {}", d.path.display());
    println!(
        "  size   {} bytes ({:.2} MiB)",
        d.size,
        d.size as f64 / 1048576.0
    );
    println!("  build  {:.1} s", d.elapsed.as_secs_f64());
    println!("  elf    {}, statically linked", d.elf.spec);
    if !target.forbidden_mnemonics.is_empty() {
        println!(
            "  insns  none of the {} forbidden prefixes",
            target.forbidden_mnemonics.len()
        );
    }
    Ok(())
}
