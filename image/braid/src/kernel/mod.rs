//! Building the kernel for a board: configure (base config, the shared and board
//! fragments, Kconfig's merge and olddefconfig), verify that every requested
//! symbol survived, then build and collect the artifacts.
//!
//! Everything happens in a build directory in the cache named after a hash of the
//! inputs (kernel source, base, fragment contents, inline settings, toolchain), so
//! two boards or two configurations never share one, and a rerun with the same
//! inputs only runs an incremental `make`. The root file system is built in as an
//! initramfs (`CONFIG_INITRAMFS_SOURCE`), so a new braidd costs one relink, and
//! the artifacts of each initramfs are kept by its hash: a rebuild with nothing
//! changed runs no `make` at all.

pub mod make;
pub mod source;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

use crate::board::{Artifact, Board, Entry};
use crate::kconfig::{self, Origin, Setting};
use crate::progress::Step;
use crate::targets::Target;
use crate::toolchain::{which, MissingTool};
use make::Make;
use source::{hash, KernelSource};

/// Bump when the way braid configures or builds kernels changes, so caches rebuild.
const PIPELINE_VERSION: &str = "braid-kernel-1";

/// Name of the initramfs file inside the build directory; `CONFIG_INITRAMFS_SOURCE`
/// points at it (relative to the build directory, where make runs).
pub const INITRAMFS_FILE: &str = "braid-initramfs.cpio";

/// A kernel build for one board.
pub struct Kernel<'a> {
    /// The board.
    pub board: &'a Board,
    /// Its CPU target.
    pub target: &'a Target,
    /// The kernel tree.
    pub source: &'a KernelSource,
    /// The build directory (O=).
    pub dir: PathBuf,
    /// Hash of every input of the configuration.
    pub key: String,
    requested: Vec<(Setting, Origin)>,
}

/// What a kernel build produced, copied out of the build directory.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// Directory holding them.
    pub dir: PathBuf,
    /// The ELF vmlinux (what QEMU's Malta loads).
    pub vmlinux: PathBuf,
    /// The raw kernel to package (vmlinux.bin, zImage or Image).
    pub raw: PathBuf,
    /// Entry point resolved from the board and System.map.
    pub entry: u64,
    /// Compiled device tree, if the board has one.
    pub dtb: Option<PathBuf>,
    /// Whether this call ran make (false: taken from the cache).
    pub built: bool,
}

/// Kconfig dropped requested symbols; the message lists each with its unmet
/// dependency.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KconfigDropped(pub String);

impl<'a> Kernel<'a> {
    /// Prepares the build for `board`: reads its fragments and computes the key.
    pub fn new(
        board: &'a Board,
        target: &'a Target,
        source: &'a KernelSource,
        cache: &Path,
    ) -> Result<Self> {
        let gcc = format!("{}gcc", target.kernel.cross_compile);
        let gcc_path = which(&gcc).ok_or_else(|| MissingTool {
            tool: gcc.clone(),
            looked: "looked on PATH".into(),
            role: "compiles this board's kernel",
            package: format!("the Debian package {}", target.kernel.package),
        })?;
        for (tool, package) in [
            ("make", "make"),
            ("flex", "flex"),
            ("bison", "bison"),
            ("bc", "bc"),
            ("cpp", "cpp"),
        ] {
            if which(tool).is_none() {
                return Err(MissingTool {
                    tool: tool.into(),
                    looked: "looked on PATH".into(),
                    role: "is needed to build kernels",
                    package: format!("the Debian package {package}"),
                }
                .into());
            }
        }
        let gcc_version = std::process::Command::new(&gcc_path)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();

        let mut requested = Vec::new();
        let mut parts: Vec<Vec<u8>> = vec![
            PIPELINE_VERSION.into(),
            source.id.clone().into(),
            board.kernel.base.clone().into(),
            target.kernel.arch.clone().into(),
            target.kernel.cross_compile.clone().into(),
            gcc_version.into(),
        ];
        for f in &board.kernel.fragments {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            requested.extend(kconfig::parse_fragment(f, &text).map_err(anyhow::Error::msg)?);
            parts.push(
                f.file_name()
                    .map(|n| n.as_encoded_bytes().to_vec())
                    .unwrap_or_default(),
            );
            parts.push(text.into_bytes());
        }
        for line in &board.kernel.config {
            if let Some(s) = kconfig::parse_line(line) {
                requested.push((
                    s,
                    Origin {
                        file: board.file().to_path_buf(),
                        line: None,
                    },
                ));
            }
            parts.push(line.clone().into_bytes());
        }
        requested.push((
            Setting {
                name: "INITRAMFS_SOURCE".into(),
                value: format!("\"{INITRAMFS_FILE}\""),
            },
            Origin {
                file: PathBuf::from("(braid)"),
                line: None,
            },
        ));
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let key = hash(&refs);
        Ok(Self {
            board,
            target,
            source,
            // Named by target and input hash only: boards with the same kernel inputs
            // share one build.
            dir: cache.join("kernel").join(format!("{}-{key}", target.name)),
            key,
            requested,
        })
    }

    /// Holds the build directory for this process: two braid runs building the
    /// same kernel wait for each other instead of corrupting the tree.
    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>> {
        source::lock(&self.dir.with_extension("lock"))
    }

    fn make(&self) -> Make<'_> {
        Make::new(
            &self.source.tree,
            &self.dir,
            &self.target.kernel.arch,
            &self.target.kernel.cross_compile,
        )
    }

    /// Whether the build directory already holds this configuration.
    pub fn is_configured(&self) -> bool {
        std::fs::read_to_string(self.dir.join(".braid-configured"))
            .is_ok_and(|k| k.trim() == self.key)
    }

    /// Configures the build directory, unless it already holds this configuration,
    /// and verifies that Kconfig kept every requested symbol.
    pub fn configure(&self) -> Result<()> {
        if self.is_configured() {
            return Ok(());
        }
        let _lock = self.lock()?;
        if self.is_configured() {
            return Ok(());
        }
        let step = Step::spinner(format!("kernel config for {}", self.board.name));
        let _ = std::fs::remove_file(self.dir.join(".braid-configured"));
        std::fs::create_dir_all(&self.dir)?;
        let make = self.make();
        make.run(&[&self.board.kernel.base], &step)?;
        // The board's inline settings and braid's own go into one last fragment.
        let own = self.dir.join("braid.config");
        let mut text =
            String::from("# Written by braid: the board's inline settings and the initramfs.\n");
        for line in &self.board.kernel.config {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("CONFIG_INITRAMFS_SOURCE=\"{INITRAMFS_FILE}\"\n"));
        std::fs::write(&own, text)?;
        let mut merge = vec![
            "-m".to_string(),
            "-O".into(),
            self.dir.display().to_string(),
            self.dir.join(".config").display().to_string(),
        ];
        merge.extend(
            self.board
                .kernel
                .fragments
                .iter()
                .map(|f| f.display().to_string()),
        );
        merge.push(own.display().to_string());
        make.script("scripts/kconfig/merge_config.sh", &merge, &step)?;
        make.run(&["olddefconfig"], &step)?;
        self.verify()?;
        std::fs::write(self.dir.join(".braid-configured"), &self.key)?;
        self.claim();
        step.done();
        Ok(())
    }

    /// Records that this board now builds in this directory, and removes the
    /// board's previous build directories that no other board uses: the cache
    /// holds at most one kernel build per board.
    fn claim(&self) {
        let users = |dir: &Path| -> Vec<String> {
            std::fs::read_to_string(dir.join(".braid-boards"))
                .map(|s| s.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut mine = users(&self.dir);
        if !mine.contains(&self.board.name) {
            mine.push(self.board.name.clone());
            let _ = std::fs::write(self.dir.join(".braid-boards"), mine.join("\n"));
        }
        let Some(parent) = self.dir.parent() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        for e in entries.flatten() {
            let other = e.path();
            if other == self.dir || !other.is_dir() {
                continue;
            }
            let mut theirs = users(&other);
            if !theirs.contains(&self.board.name) {
                continue;
            }
            theirs.retain(|b| b != &self.board.name);
            if theirs.is_empty() {
                let _ = std::fs::remove_dir_all(&other);
                let _ = std::fs::remove_file(other.with_extension("lock"));
            } else {
                let _ = std::fs::write(other.join(".braid-boards"), theirs.join("\n"));
            }
        }
    }

    /// Compares the resolved .config with every requested setting.
    fn verify(&self) -> Result<()> {
        let config = kconfig::parse_config(&std::fs::read_to_string(self.dir.join(".config"))?);
        let misses = kconfig::verify(&self.requested, &config);
        if misses.is_empty() {
            return Ok(());
        }
        let index =
            kconfig::deps::Index::load(&self.source.tree, &srcarch(&self.target.kernel.arch))?;
        let mut msg = format!(
            "Kconfig did not keep {} requested symbol(s) for board {} (kernel {}):",
            misses.len(),
            self.board.name,
            self.source.origin.display()
        );
        for m in &misses {
            msg.push_str(&format!(
                "\n  CONFIG_{}: requested {} ({}), got {}",
                m.wanted.name, m.wanted.value, m.origin, m.got
            ));
            for why in index.explain(&m.wanted.name, &config) {
                msg.push_str(&format!("\n      unmet: {why}"));
            }
        }
        msg.push_str(&format!(
            "\n  (resolved config: {})",
            self.dir.join(".config").display()
        ));
        Err(KconfigDropped(msg).into())
    }

    /// The make goals that build this board's kernel artifacts.
    fn goals(&self) -> Vec<&'static str> {
        let mut goals = vec!["vmlinux"];
        match self.board.kernel.artifact {
            Artifact::ZImage => goals.push("zImage"),
            Artifact::Image => goals.push("Image"),
            Artifact::VmlinuxBin => {}
        }
        if self.board.kernel.dts.is_some() {
            goals.push("scripts_dtc");
        }
        goals
    }

    /// Configures the kernel and compiles all of it, with whatever initramfs the
    /// build directory holds (`placeholder` if none), unless this configuration
    /// was compiled before. A later [`Kernel::build`] then only rebuilds the
    /// initramfs and links: CI warms the cache this way, at low priority, beside
    /// its other stages.
    pub fn precompile(&self, placeholder: &[u8]) -> Result<()> {
        self.configure()?;
        let _lock = self.lock()?;
        if self.dir.join("vmlinux").is_file() {
            return Ok(());
        }
        let step = Step::spinner(format!("kernel objects for {}", self.board.name));
        let cpio_path = self.dir.join(INITRAMFS_FILE);
        if !cpio_path.is_file() {
            std::fs::write(&cpio_path, placeholder)?;
        }
        self.make().run(&self.goals(), &step)?;
        step.done();
        Ok(())
    }

    /// Builds the kernel with `cpio` as its initramfs; `variant` names the result
    /// ("initramfs", "flash"). Returns cached artifacts when this exact initramfs
    /// was built before.
    pub fn build(&self, cpio: &[u8], variant: &str) -> Result<Artifacts> {
        let _lock = self.lock()?;
        if !self.is_configured() {
            bail!("kernel for {} is not configured", self.board.name);
        }
        let out = self
            .dir
            .join("braid-artifacts")
            .join(format!("{variant}-{}", hash(&[cpio])));
        let artifact_name = self.board.kernel.artifact.name();
        let mut artifacts = Artifacts {
            vmlinux: out.join("vmlinux"),
            raw: out.join(artifact_name),
            entry: 0,
            dtb: self
                .board
                .kernel
                .dts
                .as_ref()
                .map(|_| out.join("board.dtb")),
            dir: out.clone(),
            built: false,
        };
        if out.join(".complete").is_file() {
            artifacts.entry = self.entry(&out.join("System.map"))?;
            return Ok(artifacts);
        }
        let step = Step::spinner(format!("kernel for {} ({variant})", self.board.name));
        let cpio_path = self.dir.join(INITRAMFS_FILE);
        if std::fs::read(&cpio_path).ok().as_deref() != Some(cpio) {
            std::fs::write(&cpio_path, cpio)?;
        }
        let make = self.make();
        make.run(&self.goals(), &step)?;

        let tmp = self
            .dir
            .join("braid-artifacts")
            .join(format!(".tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        std::fs::copy(self.dir.join("vmlinux"), tmp.join("vmlinux"))?;
        std::fs::copy(self.dir.join("System.map"), tmp.join("System.map"))?;
        match self.board.kernel.artifact {
            Artifact::VmlinuxBin => {
                make.objcopy_binary(&self.dir.join("vmlinux"), &tmp.join(artifact_name))?
            }
            Artifact::ZImage => {
                std::fs::copy(
                    self.dir.join("arch/arm/boot/zImage"),
                    tmp.join(artifact_name),
                )?;
            }
            Artifact::Image => {
                std::fs::copy(
                    self.dir.join("arch/arm64/boot/Image"),
                    tmp.join(artifact_name),
                )?;
            }
        }
        if let Some(dts) = &self.board.kernel.dts {
            make.dtb(
                dts,
                &tmp.join("board.dtb"),
                &srcarch(&self.target.kernel.arch),
            )?;
        }
        std::fs::write(tmp.join(".complete"), "")?;
        let _ = std::fs::remove_dir_all(&out);
        std::fs::rename(&tmp, &out)?;
        // Keep only this board's latest artifacts of each variant.
        if let Ok(entries) = std::fs::read_dir(self.dir.join("braid-artifacts")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("{variant}-")) && e.path() != out {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        artifacts.entry = self.entry(&out.join("System.map"))?;
        artifacts.built = true;
        step.done();
        Ok(artifacts)
    }

    /// The entry point: the board's address, or its symbol from System.map (32-bit
    /// kernels print sign-extended 64-bit addresses; the low half is the address).
    fn entry(&self, system_map: &Path) -> Result<u64> {
        match &self.board.kernel.entry {
            Entry::Addr(a) => Ok(*a),
            Entry::Symbol(sym) => {
                let map = std::fs::read_to_string(system_map)?;
                let addr = map
                    .lines()
                    .find_map(|l| {
                        let mut f = l.split_whitespace();
                        let (addr, _, name) = (f.next()?, f.next()?, f.next()?);
                        (name == sym)
                            .then(|| u64::from_str_radix(addr, 16).ok())
                            .flatten()
                    })
                    .with_context(|| {
                        format!(
                            "{}: field `kernel.entry`: symbol `{sym}` is not in {}",
                            self.board.file().display(),
                            system_map.display()
                        )
                    })?;
                Ok(
                    if self.target.elf.class == crate::targets::ElfClass::Elf32 {
                        addr & 0xffff_ffff
                    } else {
                        addr
                    },
                )
            }
        }
    }
}

/// The kernel's SRCARCH for an ARCH (x86_64 and i386 live in arch/x86).
pub fn srcarch(arch: &str) -> String {
    match arch {
        "x86_64" | "i386" => "x86".into(),
        a => a.into(),
    }
}
