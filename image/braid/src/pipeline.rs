//! `braid build --board X`: the image pipeline, as a plan of named steps (shown by
//! `--dry-run`) and its execution:
//!
//! 1. braidd for the board's CPU (cargo, incremental);
//! 2. the root file system tree, as cpio (initramfs) and squashfs;
//! 3. the kernel source (unpacked once into the cache);
//! 4. the kernel configuration, verified symbol by symbol (cached by its inputs);
//! 5. the kernel, once with the initramfs and, for flash images, once without;
//! 6. the images, each checked against where it goes;
//! 7. the output directory `out/<board>/`, replaced only when everything succeeded.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use braid_formats::{cpio, squashfs, tree::Tree};

use crate::board::{self, Board, ImageKind};
use crate::images::{self, Fit, Stamp};
use crate::kernel::{source, Kernel};
use crate::output::{write_file, Staging};
use crate::progress::Step;
use crate::rootfs;
use crate::size::human;
use crate::targets::{self, Target};
use crate::workspace::Workspace;

/// Kernel command-line word that makes braidd power off after its banner (the
/// same word braidd looks for).
pub const POWEROFF_ARG: &str = "braid.poweroff";

/// What `braid build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Board name.
    pub board: String,
    /// A kernel tree or tarball instead of Debian's linux-source-6.1.
    pub kernel_source: Option<PathBuf>,
}

/// One file written to the output directory.
#[derive(Debug, Clone)]
pub struct Output {
    /// File name.
    pub name: String,
    /// Full path after the build.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// What it is.
    pub what: String,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The board.
    pub board: String,
    /// `out/<board>/`.
    pub dir: PathBuf,
    /// Files written.
    pub outputs: Vec<Output>,
    /// Size checks that passed.
    pub fits: Vec<Fit>,
    /// Each step and its duration; `true` when it was served from the cache.
    pub steps: Vec<(String, Duration, bool)>,
    /// Total time.
    pub total: Duration,
}

/// A board and everything it refers to, loaded and validated.
pub struct Loaded {
    /// The board.
    pub board: Board,
    /// Its CPU target.
    pub target: Target,
}

/// Loads the board and its target.
pub fn load(ws: &Workspace, name: &str) -> Result<Loaded> {
    let targets = targets::load_dir(&ws.targets_dir())?;
    let board = board::load(&ws.boards.clone(), name, &targets)?;
    let target = targets::find(&targets, &board.target)?.clone();
    Ok(Loaded { board, target })
}

/// File names of a board's outputs.
pub mod names {
    /// Kernel with the root file system as initramfs.
    pub fn initramfs(board: &str) -> String {
        format!("braid-{board}-initramfs-kernel.bin")
    }
    /// The same kernel as an ELF (QEMU's Malta boots only ELF).
    pub fn initramfs_elf(board: &str) -> String {
        format!("braid-{board}-initramfs-vmlinux.elf")
    }
    /// Kernel for flash (root from squashfs).
    pub fn kernel(board: &str) -> String {
        format!("braid-{board}-kernel.bin")
    }
    /// Root file system for flash.
    pub fn rootfs(board: &str) -> String {
        format!("braid-{board}-rootfs.squashfs")
    }
    /// The sysupgrade image.
    pub fn sysupgrade(board: &str) -> String {
        format!("braid-{board}-squashfs-sysupgrade.bin")
    }
    /// The manifest.
    pub const MANIFEST: &str = "manifest.json";
}

/// The plan, as lines for `--dry-run`.
pub fn plan(ws: &Workspace, l: &Loaded, opts: &Options) -> Vec<String> {
    let (b, t) = (&l.board, &l.target);
    let src = opts
        .kernel_source
        .clone()
        .unwrap_or_else(|| PathBuf::from(source::DEFAULT_TARBALL));
    let mut fragments: Vec<String> = b
        .kernel
        .fragments
        .iter()
        .map(|f| f.strip_prefix(&ws.root).unwrap_or(f).display().to_string())
        .collect();
    if !b.kernel.config.is_empty() {
        fragments.push(format!("{} inline setting(s)", b.kernel.config.len()));
    }
    let mut variants = vec!["with the initramfs"];
    if b.images.contains(&ImageKind::Sysupgrade) {
        variants.push("for flash (root on squashfs)");
    }
    let mut lines = vec![
        format!("braid build --board {} (dry run: nothing is built or written)", b.name),
        format!("  board     {} {} ({}), target {} ({})", b.vendor, b.model, b.file().display(), t.name, t.triple),
        format!("  1 braidd  cargo build -p braidd --release --target {} -> out/braidd/{}/release/braidd", t.triple, t.name),
        "  2 rootfs  rootfs/ + /sbin/braidd (= /init, /sbin/init) + /etc/braid/{board,compatible} -> cpio newc (initramfs)".to_string(),
        format!("  3 source  {} (unpacked once into {})", src.display(), ws.cache.join("kernel-src").display()),
        format!(
            "  4 config  {} + {}; merge_config.sh, olddefconfig, then every requested symbol verified",
            b.kernel.base,
            fragments.join(" + ")
        ),
        format!(
            "  5 kernel  make vmlinux ARCH={} CROSS_COMPILE={} in {}, {}",
            t.kernel.arch,
            t.kernel.cross_compile,
            ws.cache.join("kernel").join(format!("{}-<input hash>", t.name)).display(),
            variants.join(", then ")
        ),
    ];
    let entry = match &b.kernel.entry {
        board::Entry::Addr(a) => format!("{a:#x}"),
        board::Entry::Symbol(s) => format!("{s} (from System.map)"),
    };
    lines.push(format!(
        "  6 images  {}: {} of {} ({}), load {:#x}, entry {}{}",
        names::initramfs(&b.name),
        b.kernel.format.name(),
        b.kernel.artifact.name(),
        b.kernel.compression.name(),
        b.kernel.load_addr,
        entry,
        match b.kernel.dtb {
            board::DtbPlacement::None => String::new(),
            d => format!(
                ", device tree {} ({})",
                b.kernel
                    .dts
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
                d.name()
            ),
        }
    ));
    if let Some(flash) = &b.flash {
        if b.images.contains(&ImageKind::Sysupgrade) {
            lines.push(format!(
                "            {} + {} -> {} (OpenWrt tar + fwtool metadata, supported_devices {:?})",
                names::kernel(&b.name),
                names::rootfs(&b.name),
                names::sysupgrade(&b.name),
                b.compatible
            ));
            lines.push(format!(
                "  7 checks  kernel -> partition `{}`, root -> partition `{}` ({} {} flash, erase block {}); initramfs image in half of {} RAM",
                flash.kernel_partition,
                flash.rootfs_partition,
                human(flash.size),
                if flash.kind == board::FlashKind::Nor { "NOR" } else { "NAND" },
                human(flash.erase_block),
                human(b.ram)
            ));
        }
    } else {
        lines.push(format!(
            "  7 checks  initramfs image in half of {} RAM (the board has no flash)",
            human(b.ram)
        ));
    }
    lines.push(format!(
        "  8 output  {} (replaced only when every step succeeded)",
        ws.out.join(&b.name).display()
    ));
    lines
}

/// The flash kernel's initramfs: an empty archive (the root file system is the
/// squashfs on flash), stamped like every other file of a build.
pub fn empty_initramfs() -> Result<Vec<u8>> {
    let mtime = u32::try_from(crate::epoch::source_date_epoch()).unwrap_or(u32::MAX);
    let mut empty = Vec::new();
    cpio::write(&Tree::new(), mtime, &mut empty)?;
    Ok(empty)
}

/// Runs the pipeline.
pub fn build(ws: &Workspace, l: &Loaded, opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let (b, t) = (&l.board, &l.target);
    let mut steps = Vec::new();
    let stamp = Stamp {
        epoch: crate::epoch::source_date_epoch(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: crate::epoch::revision(&ws.root),
    };
    let mtime = u32::try_from(stamp.epoch).unwrap_or(u32::MAX);

    // Fail early, before long steps, on what the user can fix: the kernel source and
    // its configuration (a dropped symbol) come before the daemon and the kernel.
    let src = source::resolve(opts.kernel_source.as_deref(), &ws.cache)?;
    let kernel = Kernel::new(b, t, &src, &ws.cache)?;

    let t0 = Instant::now();
    let cached = kernel.is_configured();
    kernel.configure()?;
    steps.push(("kernel config".to_string(), t0.elapsed(), cached));

    let t0 = Instant::now();
    let daemon = crate::daemon::build(ws, t, true)?;
    steps.push(("braidd".to_string(), t0.elapsed(), false));

    let t0 = Instant::now();
    let daemon_bytes = std::fs::read(&daemon.path)?;
    let tree = rootfs::tree(
        &ws.root.join("rootfs"),
        &rootfs::RootfsInput {
            board: b,
            daemon: &daemon_bytes,
            version: &stamp.version,
            revision: &stamp.revision,
        },
    )?;
    let mut initramfs = Vec::new();
    cpio::write(&tree, mtime, &mut initramfs)?;
    let want_sysupgrade = b.images.contains(&ImageKind::Sysupgrade);
    let squash = if want_sysupgrade {
        let mut out = std::io::Cursor::new(Vec::new());
        squashfs::write(&tree, mtime, &mut out)?;
        Some(out.into_inner())
    } else {
        None
    };
    steps.push(("rootfs".to_string(), t0.elapsed(), false));

    let t0 = Instant::now();
    let ram_kernel = kernel.build(&initramfs, "initramfs")?;
    steps.push((
        "kernel (initramfs)".to_string(),
        t0.elapsed(),
        !ram_kernel.built,
    ));
    let flash_kernel = if want_sysupgrade {
        let t0 = Instant::now();
        let a = kernel.build(&empty_initramfs()?, "flash")?;
        steps.push(("kernel (flash)".to_string(), t0.elapsed(), !a.built));
        Some(a)
    } else {
        None
    };

    let t0 = Instant::now();
    let step = Step::spinner(format!("images for {}", b.name));
    let dest = ws.out.join(&b.name);
    let staging = Staging::new(&dest)?;
    let mut outputs = Vec::new();
    let mut fits = Vec::new();
    let mut emit = |name: String, data: &[u8], what: String| -> Result<()> {
        write_file(&staging.path().join(&name), data)?;
        outputs.push(Output {
            path: dest.join(&name),
            size: data.len() as u64,
            name,
            what,
        });
        Ok(())
    };
    let image = images::package_kernel(b, t, &ram_kernel, &stamp)?;
    let vmlinux = std::fs::read(&ram_kernel.vmlinux)?;
    fits.push(images::check_ram(
        b,
        image.len() as u64,
        crate::elf::memory_size(&vmlinux)?,
        tree_size(&tree),
    )?);
    emit(
        names::initramfs(&b.name),
        &image,
        format!(
            "{} with initramfs, {}",
            b.kernel.format.name(),
            b.kernel.compression.name()
        ),
    )?;
    emit(
        names::initramfs_elf(&b.name),
        &vmlinux,
        "ELF vmlinux with initramfs (QEMU)".into(),
    )?;
    if let (Some(fk), Some(root)) = (&flash_kernel, &squash) {
        let k = images::package_kernel(b, t, fk, &stamp)?;
        fits.extend(images::check_flash(b, k.len() as u64, root.len() as u64)?);
        let su = images::sysupgrade(b, t, &k, root, &stamp)?;
        emit(
            names::kernel(&b.name),
            &k,
            format!("{} for flash", b.kernel.format.name()),
        )?;
        emit(names::rootfs(&b.name), root, "squashfs, xz".into())?;
        emit(
            names::sysupgrade(&b.name),
            &su,
            "OpenWrt sysupgrade (tar + fwtool metadata)".into(),
        )?;
    }
    let manifest = serde_json::json!({
        "board": b.name,
        "target": t.name,
        "version": stamp.version,
        "revision": stamp.revision,
        "source_date_epoch": stamp.epoch,
        "kernel": { "load": b.kernel.load_addr, "entry": ram_kernel.entry, "build_dir": kernel.dir },
        "files": outputs.iter().map(|o| serde_json::json!({"name": o.name, "size": o.size, "what": o.what})).collect::<Vec<_>>(),
        "checks": fits.iter().map(|f| serde_json::json!({"what": f.what, "needed": f.needed, "available": f.available})).collect::<Vec<_>>(),
    });
    write_file(
        &staging.path().join(names::MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    let dir = staging.commit()?;
    step.done();
    steps.push(("images".to_string(), t0.elapsed(), false));
    Ok(Report {
        board: b.name.clone(),
        dir,
        outputs,
        fits,
        steps,
        total: started.elapsed(),
    })
}

fn tree_size(tree: &Tree) -> u64 {
    use braid_formats::tree::Node;
    tree.iter()
        .map(|(_, e)| match &e.node {
            Node::File(d) => d.len() as u64,
            _ => 0,
        })
        .sum()
}

/// The summary printed after a build.
pub fn summary(r: &Report) -> String {
    let mut s = format!(
        "braid: built {} in {:.1} s -> {}\n",
        r.board,
        r.total.as_secs_f64(),
        r.dir.display()
    );
    for o in &r.outputs {
        s.push_str(&format!(
            "  {:<50} {:>10}  {}\n",
            o.name,
            human(o.size),
            o.what
        ));
    }
    for f in &r.fits {
        s.push_str(&format!("  fits  {f}\n"));
    }
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|(n, d, cached)| {
            format!(
                "{n} {:.1} s{}",
                d.as_secs_f64(),
                if *cached { " (cached)" } else { "" }
            )
        })
        .collect();
    s.push_str(&format!("  steps {}\n", steps.join(", ")));
    s
}

/// Reads a built board's manifest, if it exists.
pub fn manifest(dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join(names::MANIFEST)).ok()?).ok()
}
