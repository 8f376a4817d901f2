//! The host tools a target needs, and the environment that makes cargo
//! cross-compile for it.
//!
//! Every router target is built the same way (../shared/TOOLCHAIN.md): Rust's std
//! from source where no prebuilt one exists (`-Zbuild-std`, enabled on the pinned
//! stable toolchain with `RUSTC_BOOTSTRAP=1`), and zig's clang with its bundled musl
//! as C compiler and linker (through `targets/zig-cc`). Static linking itself is set
//! for all musl targets in `.cargo/config.toml`; this module adds the per-CPU parts
//! as `CARGO_TARGET_<TRIPLE>_*` variables, which add to that file instead of
//! replacing it (a plain `RUSTFLAGS` would, so it is removed from the environment).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::targets::Target;
use crate::workspace::Workspace;

/// A required tool is not installed.
#[derive(Debug, thiserror::Error)]
#[error("{tool} not found ({looked}); it {role}. Install {package} (ci/setup installs it).")]
pub struct MissingTool {
    /// The tool.
    pub tool: String,
    /// Where it was looked for.
    pub looked: String,
    /// What it is needed for.
    pub role: &'static str,
    /// What provides it.
    pub package: String,
}

/// Finds an executable on `PATH`, or at `name` itself if it contains a slash.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds zig: `BRAID_ZIG`, else the copy ci/setup installs in the cache, else `PATH`.
pub fn find_zig(ws: &Workspace) -> Result<PathBuf, MissingTool> {
    let cached = ws.cache.join("zig/ziglang/zig");
    let mut looked = Vec::new();
    if let Some(explicit) = std::env::var_os("BRAID_ZIG") {
        let p = PathBuf::from(explicit);
        if is_executable(&p) {
            return Ok(p);
        }
        looked.push(format!("BRAID_ZIG={}", p.display()));
    } else {
        if is_executable(&cached) {
            return Ok(cached);
        }
        looked.push(cached.display().to_string());
        if let Some(p) = which("zig") {
            return Ok(p);
        }
        looked.push("PATH".into());
    }
    Err(MissingTool {
        tool: "zig".into(),
        looked: format!("looked at {}", looked.join(", ")),
        role: "is the C compiler and linker for every target",
        package: format!(
            "the PyPI package ziglang into {}",
            ws.cache.join("zig").display()
        ),
    })
}

/// Finds the target's qemu-user emulator.
pub fn find_qemu(target: &Target) -> Result<PathBuf, MissingTool> {
    which(&target.qemu.binary).ok_or_else(|| MissingTool {
        tool: target.qemu.binary.clone(),
        looked: "looked on PATH".into(),
        role: "runs this target's binaries and tests on the build machine",
        package: format!("the Debian package {}", target.qemu.package),
    })
}

/// Finds the target's binutils objdump (`<kernel.cross_compile>objdump`).
pub fn find_objdump(target: &Target) -> Result<PathBuf, MissingTool> {
    let name = format!("{}objdump", target.kernel.cross_compile);
    which(&name).ok_or_else(|| MissingTool {
        tool: name,
        looked: "looked on PATH".into(),
        role: "disassembles this target's binaries to check their instructions",
        package: format!("the Debian package {}", target.kernel.package),
    })
}

/// The active toolchain's sysroot (`rustc --print sysroot`).
pub fn sysroot() -> anyhow::Result<PathBuf> {
    let out = Command::new(rustc())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| {
            anyhow::anyhow!("cannot run rustc: {e}; install Rust with rustup (ci/setup)")
        })?;
    anyhow::ensure!(
        out.status.success(),
        "rustc --print sysroot failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Checks that rust-src (needed to build std) is installed in `sysroot`.
pub fn check_rust_src(sysroot: &Path) -> Result<(), MissingTool> {
    let lib = sysroot.join("lib/rustlib/src/rust/library");
    if lib.join("std/Cargo.toml").is_file() {
        Ok(())
    } else {
        Err(MissingTool {
            tool: "rust-src".into(),
            looked: format!("looked at {}", lib.display()),
            role: "is the source of std, which tier-3 targets build with -Zbuild-std",
            package: "the rustup component rust-src".into(),
        })
    }
}

fn rustc() -> OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// The cargo to run: the one that launched us (`CARGO`), else `cargo` on PATH.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// How std is built from source. Naming the features replaces std's defaults, which
/// drops `backtrace` (symbolisation: gimli, addr2line, rustc-demangle, miniz, about
/// 50 KB on MIPS; panic messages are still printed); `optimize_for_size` picks
/// std's smaller algorithms; `panic-unwind` only makes unwinding available to the
/// test harness, the firmware itself is built with panic=abort and does not link it.
/// Together they cut braidd on mips from 816 KB to 502 KB (firmware/BENCHMARKS.md).
pub const BUILD_STD_ARGS: [&str; 2] = [
    "-Zbuild-std=std,panic_abort",
    "-Zbuild-std-features=panic-unwind,optimize_for_size",
];

/// How to run cargo for one target: environment and extra arguments.
#[derive(Debug, Clone)]
pub struct CrossBuild {
    /// Variables to set.
    pub env: Vec<(String, OsString)>,
    /// Variables to remove (they would override the target's flags).
    pub unset: Vec<&'static str>,
    /// Arguments to add after the cargo subcommand.
    pub args: Vec<String>,
    /// The cargo target directory.
    pub target_dir: PathBuf,
}

impl CrossBuild {
    /// Finds the tools for `target` and composes the cargo environment. With
    /// `runner`, the qemu-user emulator must exist too (to run tests).
    pub fn new(ws: &Workspace, target: &Target, runner: bool) -> anyhow::Result<Self> {
        let zig = find_zig(ws)?;
        let sysroot = sysroot()?;
        if target.build_std {
            check_rust_src(&sysroot)?;
        }
        let key = target.triple.to_uppercase().replace(['-', '.'], "_");
        let cc_key = target.triple.replace(['-', '.'], "_");
        let wrapper = ws.targets_dir().join("zig-cc");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| ws.cache.join("target"), PathBuf::from);
        let zig_cache = ws.cache.join("zig-cache");

        let mut rustflags = target.rustflags.clone();
        // Reproducible, machine-independent paths in panic messages and debug info.
        for (from, to) in [
            (ws.root.clone(), "/braid"),
            (cargo_home(), "/cargo"),
            (sysroot.clone(), "/rustc"),
        ] {
            rustflags.push(format!("--remap-path-prefix={}={to}", from.display()));
        }

        let mut env: Vec<(String, OsString)> = vec![
            (format!("CARGO_TARGET_{key}_LINKER"), wrapper.clone().into()),
            (
                format!("CARGO_TARGET_{key}_RUSTFLAGS"),
                rustflags.join(" ").into(),
            ),
            (format!("CC_{cc_key}"), wrapper.into()),
            ("BRAID_ZIG".into(), zig.into()),
            ("BRAID_ZIG_TARGET".into(), target.zig_target.clone().into()),
            (
                "BRAID_ZIG_CFLAGS".into(),
                target.zig_cflags.join(" ").into(),
            ),
            ("ZIG_GLOBAL_CACHE_DIR".into(), zig_cache.clone().into()),
            ("ZIG_LOCAL_CACHE_DIR".into(), zig_cache.into()),
            ("CARGO_TARGET_DIR".into(), target_dir.clone().into()),
        ];
        if runner {
            let qemu = find_qemu(target)?;
            env.push((
                format!("CARGO_TARGET_{key}_RUNNER"),
                format!("{} -cpu {}", qemu.display(), target.qemu.cpu).into(),
            ));
        }
        let mut args = vec!["--target".to_string(), target.triple.clone()];
        if target.build_std {
            env.push(("RUSTC_BOOTSTRAP".into(), "1".into()));
            args.extend(BUILD_STD_ARGS.iter().map(|a| a.to_string()));
        }
        Ok(Self {
            env,
            unset: vec!["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"],
            args,
            target_dir,
        })
    }

    /// A `cargo <subcommand> <args...>` command with this environment.
    pub fn command(&self, subcommand: &str, args: &[String]) -> Command {
        let mut cmd = Command::new(cargo());
        cmd.arg(subcommand).args(&self.args).args(args);
        for var in &self.unset {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// The environment as `export` lines for a POSIX shell.
    pub fn shell_exports(&self) -> String {
        let mut s = String::new();
        for var in &self.unset {
            s.push_str(&format!("unset {var}\n"));
        }
        for (k, v) in &self.env {
            let v = v.to_string_lossy().replace('\'', r"'\''");
            s.push_str(&format!("export {k}='{v}'\n"));
        }
        s
    }
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME").map_or_else(
        || {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
                .join(".cargo")
        },
        PathBuf::from,
    )
}
