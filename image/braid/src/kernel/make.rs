//! Running the kernel's own build tools (make, merge_config.sh, objcopy, cpp and
//! dtc) for an out-of-tree build, with a reproducible environment, progress, and
//! a log whose tail is shown when something fails.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::progress::Step;

/// make for one kernel tree and build directory.
pub struct Make<'a> {
    tree: &'a Path,
    dir: &'a Path,
    arch: &'a str,
    cross: &'a str,
}

impl<'a> Make<'a> {
    /// A make for `tree` building into `dir`.
    pub fn new(tree: &'a Path, dir: &'a Path, arch: &'a str, cross: &'a str) -> Self {
        Self {
            tree,
            dir,
            arch,
            cross,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("braid-build.log")
    }

    /// A command with the reproducible build environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.tree)
            .env("LC_ALL", "C")
            .env("KBUILD_BUILD_USER", "braid")
            .env("KBUILD_BUILD_HOST", "braid")
            .env("KBUILD_BUILD_VERSION", "1")
            .env(
                "KBUILD_BUILD_TIMESTAMP",
                crate::epoch::kbuild_timestamp(crate::epoch::source_date_epoch()),
            )
            .env("ARCH", self.arch)
            .env("CROSS_COMPILE", self.cross)
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL")
            .env_remove("CC")
            .env_remove("CFLAGS")
            .env_remove("LDFLAGS");
        cmd
    }

    /// `make O=<dir> ARCH=.. CROSS_COMPILE=.. -j<n> <goals>`.
    pub fn run(&self, goals: &[&str], step: &Step) -> Result<()> {
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut cmd = self.command("make");
        cmd.arg(format!("O={}", self.dir.display()))
            .arg(format!("ARCH={}", self.arch))
            .arg(format!("CROSS_COMPILE={}", self.cross))
            .arg(format!("-j{jobs}"))
            .args(goals);
        self.stream(cmd, &format!("make {}", goals.join(" ")), step)
    }

    /// Runs a script of the kernel tree (e.g. scripts/kconfig/merge_config.sh).
    pub fn script(&self, script: &str, args: &[String], step: &Step) -> Result<()> {
        let mut cmd = self.command(self.tree.join(script));
        cmd.args(args);
        self.stream(cmd, script, step)
    }

    /// Runs `cmd`, appending its output to the build log and counting compiled
    /// files on the spinner; on failure, the error quotes the log's tail.
    fn stream(&self, mut cmd: Command, what: &str, step: &Step) -> Result<()> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("cannot open {}", self.log_path().display()))?;
        writeln!(log, "### {what}")?;
        let (reader, writer) = std::io::pipe()?;
        cmd.stdout(writer.try_clone()?)
            .stderr(writer)
            .stdin(Stdio::null());
        let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
        drop(cmd);
        let mut tail = std::collections::VecDeque::new();
        let mut compiled = 0usize;
        for line in BufReader::new(reader).lines() {
            let line = line.unwrap_or_default();
            writeln!(log, "{line}")?;
            let t = line.trim_start();
            if t.starts_with("CC ")
                || t.starts_with("AS ")
                || t.starts_with("LD ")
                || t.starts_with("AR ")
            {
                compiled += 1;
                step.set_message(format!("{compiled} files  {t}"));
            }
            if tail.len() == 25 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "{what} failed ({status}); last lines of {}:\n{}",
                self.log_path().display(),
                Vec::from(tail).join("\n")
            );
        }
        Ok(())
    }

    /// Converts an ELF vmlinux to the raw image boot loaders load (the sections
    /// arch/mips/boot/Makefile drops for vmlinux.bin are dropped here too).
    pub fn objcopy_binary(&self, elf: &Path, out: &Path) -> Result<()> {
        let objcopy = format!("{}objcopy", self.cross);
        let mut cmd = self.command(&objcopy);
        cmd.arg("-O").arg("binary");
        for s in [
            ".reginfo",
            ".mdebug",
            ".comment",
            ".note",
            ".pdr",
            ".options",
            ".MIPS.options",
            ".MIPS.abiflags",
        ] {
            cmd.arg("-R").arg(s);
        }
        let out_status = cmd
            .arg(elf)
            .arg(out)
            .output()
            .with_context(|| format!("cannot run {objcopy}"))?;
        if !out_status.status.success() {
            bail!(
                "{objcopy} failed: {}",
                String::from_utf8_lossy(&out_status.stderr)
            );
        }
        Ok(())
    }

    /// Compiles a board's device tree source with the kernel's preprocessor setup
    /// and the dtc built in the build directory.
    pub fn dtb(&self, dts: &Path, out: &Path, srcarch: &str) -> Result<()> {
        let dts_root = self.tree.join("arch").join(srcarch).join("boot/dts");
        let mut includes = vec![
            self.tree.join("include"),
            self.tree.join("scripts/dtc/include-prefixes"),
            dts_root.clone(),
            dts.parent().map(Path::to_path_buf).unwrap_or_default(),
        ];
        if let Ok(entries) = std::fs::read_dir(&dts_root) {
            let mut subdirs: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            subdirs.sort();
            includes.extend(subdirs);
        }
        let pre = self.dir.join("braid-board.dts.pre");
        let mut cpp = self.command("cpp");
        cpp.args([
            "-nostdinc",
            "-undef",
            "-D__DTS__",
            "-x",
            "assembler-with-cpp",
            "-P",
        ]);
        for i in &includes {
            cpp.arg("-I").arg(i);
        }
        let o = cpp
            .arg(dts)
            .arg("-o")
            .arg(&pre)
            .output()
            .context("cannot run cpp")?;
        if !o.status.success() {
            bail!(
                "cpp {} failed:\n{}",
                dts.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let mut dtc = self.command(self.dir.join("scripts/dtc/dtc"));
        dtc.args(["-I", "dts", "-O", "dtb", "-q"]);
        for i in &includes {
            dtc.arg("-i").arg(i);
        }
        let o = dtc
            .arg("-o")
            .arg(out)
            .arg(&pre)
            .output()
            .context("cannot run dtc")?;
        if !o.status.success() {
            bail!(
                "dtc {} failed:\n{}",
                dts.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(())
    }
}
