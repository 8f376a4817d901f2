//! Cross-compiling braidd for a target and checking the result: fully static, the
//! target's ELF identity, and no instruction the CPU lacks.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::elf::{check_binary, check_instructions, ElfInfo};
use crate::targets::Target;
use crate::toolchain::{find_objdump, CrossBuild};
use crate::workspace::Workspace;

/// A checked braidd binary in the output directory.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// `out/braidd/<target>/<profile>/braidd`.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// How long cargo took.
    pub elapsed: Duration,
    /// What its ELF header says.
    pub elf: ElfInfo,
    /// "release" or "debug".
    pub profile: &'static str,
}

/// Builds braidd for `target` and installs it into the output directory.
pub fn build(ws: &Workspace, target: &Target, release: bool) -> Result<Daemon> {
    let cross = CrossBuild::new(ws, target, false)?;
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
    let status = cross
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
    let built = cross
        .target_dir
        .join(&target.triple)
        .join(profile)
        .join("braidd");
    let elf = check_binary(&built, &target.elf)?;
    if !target.forbidden_mnemonics.is_empty() {
        check_instructions(&built, &find_objdump(target)?, &target.forbidden_mnemonics)?;
    }
    let path = ws
        .out
        .join("braidd")
        .join(&target.name)
        .join(profile)
        .join("braidd");
    crate::output::install_file(&built, &path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(Daemon {
        size: std::fs::metadata(&path)?.len(),
        path,
        elapsed,
        elf,
        profile,
    })
}
