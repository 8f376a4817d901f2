//! `braid`: board name in, flashable firmware out. For now it cross-compiles the
//! daemon for any CPU target in targets/ and runs cargo with that target's toolchain.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

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

/// Builds braidd, checks the binary, and copies it into the output directory.
fn build_daemon(ws: &Workspace, target: &Target, release: bool) -> Result<PathBuf> {
    let build = CrossBuild::new(ws, target, false)?;
    let profile = if release { "release" } else { "debug" };
    let mut args = vec!["-p".to_string(), "braidd".to_string()];
    if release {
        args.push("--release".into());
    }
    eprintln!(
        "braid: building braidd for {} ({}, {profile})",
        target.name, target.triple
    );
    let started = Instant::now();
    let status = build
        .command("build", &args)
        .current_dir(&ws.root)
        .status()
        .context("cannot run cargo")?;
    anyhow::ensure!(
        status.success(),
        "cargo build failed for target {}",
        target.name
    );
    let elapsed = started.elapsed();

    let built = build
        .target_dir
        .join(&target.triple)
        .join(profile)
        .join("braidd");
    let info = braid::elf::check_binary(&built, &target.elf)?;
    if !target.forbidden_mnemonics.is_empty() {
        let objdump = braid::toolchain::find_objdump(target)?;
        braid::elf::check_instructions(&built, &objdump, &target.forbidden_mnemonics)?;
    }
    let dest = ws
        .out
        .join("braidd")
        .join(&target.name)
        .join(profile)
        .join("braidd");
    install_atomically(&built, &dest)?;
    let size = std::fs::metadata(&dest)?.len();
    println!("braidd for {} ({}, {profile})", target.name, target.triple);
    println!("  path   {}", dest.display());
    println!("  size   {size} bytes ({:.2} MiB)", size as f64 / 1048576.0);
    println!("  build  {:.1} s", elapsed.as_secs_f64());
    println!("  elf    {}, statically linked", info.spec);
    if !target.forbidden_mnemonics.is_empty() {
        println!(
            "  insns  none of the {} forbidden prefixes",
            target.forbidden_mnemonics.len()
        );
    }
    Ok(dest)
}

/// Copies `from` to `to` through a temporary file in the same directory, so `to`
/// is either the old file or the complete new one, never a partial copy.
fn install_atomically(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().context("output path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::copy(from, &tmp)
        .with_context(|| format!("cannot copy {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("cannot rename to {}", to.display()))?;
    Ok(())
}
