//! Packaging a board's images from kernel artifacts and the root file system, and
//! checking that each fits where it goes: sysupgrade images into the flash
//! partitions, RAM-boot images into RAM. A failed check says by how many bytes.

use anyhow::{bail, Context, Result};

use braid_formats::{compress, fit, sysupgrade, uimage};

use crate::board::{Board, Compression, DtbPlacement, KernelFormat};
use crate::kernel::Artifacts;
use crate::size::{human, Size};
use crate::targets::Target;

/// Build facts stamped into images.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// SOURCE_DATE_EPOCH.
    pub epoch: u64,
    /// braid's version.
    pub version: String,
    /// Source revision.
    pub revision: String,
}

/// Wraps a kernel build's raw image for U-Boot: appended device tree, compression,
/// then a legacy uImage or a FIT, as the board says.
pub fn package_kernel(
    board: &Board,
    target: &Target,
    a: &Artifacts,
    stamp: &Stamp,
) -> Result<Vec<u8>> {
    let mut raw =
        std::fs::read(&a.raw).with_context(|| format!("cannot read {}", a.raw.display()))?;
    let dtb = a.dtb.as_ref().map(std::fs::read).transpose()?;
    if board.kernel.dtb == DtbPlacement::Append {
        raw.extend_from_slice(
            dtb.as_deref()
                .context("board appends a device tree but none was built")?,
        );
    }
    let payload = match board.kernel.compression {
        Compression::None => raw,
        Compression::Gzip => compress::gzip(&raw)?,
        Compression::Lzma => compress::lzma(&raw)?,
    };
    let addr = |v: u64, what: &str| {
        u32::try_from(v).with_context(|| {
            format!(
                "{}: {what} {v:#x} does not fit 32 bits",
                board.file().display()
            )
        })
    };
    let (load, entry) = (
        addr(board.kernel.load_addr, "load address")?,
        addr(a.entry, "entry point")?,
    );
    let name = format!("braid {} {}", stamp.version, board.name);
    let name: String = name.chars().take(uimage::NAME_LEN - 1).collect();
    let time = u32::try_from(stamp.epoch).unwrap_or(u32::MAX);
    match board.kernel.format {
        KernelFormat::UImage => {
            let arch = uimage::Arch::from_kernel_arch(&target.kernel.arch).with_context(|| {
                format!(
                    "no U-Boot architecture for kernel ARCH {}",
                    target.kernel.arch
                )
            })?;
            let comp = match board.kernel.compression {
                Compression::None => uimage::Comp::None,
                Compression::Gzip => uimage::Comp::Gzip,
                Compression::Lzma => uimage::Comp::Lzma,
            };
            Ok(uimage::write(
                &uimage::Header {
                    arch,
                    kind: uimage::Kind::Kernel,
                    comp,
                    load,
                    entry,
                    time,
                    name,
                },
                &payload,
            )?)
        }
        KernelFormat::Fit => Ok(fit::write(&fit::Fit {
            description: name,
            timestamp: time,
            arch: target.kernel.arch.clone(),
            kernel: &payload,
            compression: board.kernel.compression.name().to_string(),
            load,
            entry,
            fdt: if board.kernel.dtb == DtbPlacement::Fit {
                dtb.as_deref()
            } else {
                None
            },
            ramdisk: None,
        })?),
    }
}

/// The sysupgrade image: OpenWrt tar of kernel and root, then fwtool metadata.
pub fn sysupgrade(
    board: &Board,
    target: &Target,
    kernel: &[u8],
    root: &[u8],
    stamp: &Stamp,
) -> Result<Vec<u8>> {
    let mut image = sysupgrade::tar(&board.name, kernel, Some(root), stamp.epoch)?;
    let meta = sysupgrade::Metadata {
        metadata_version: "1.1".into(),
        compat_version: "1.0".into(),
        supported_devices: board.compatible.clone(),
        version: sysupgrade::Version {
            dist: "braid".into(),
            version: stamp.version.clone(),
            revision: stamp.revision.clone(),
            target: target.name.clone(),
            board: board.name.clone(),
        },
    };
    sysupgrade::append_metadata(&mut image, &serde_json::to_vec(&meta)?)?;
    Ok(image)
}

/// How a check came out: the room used and available, for the summary.
#[derive(Debug, Clone)]
pub struct Fit {
    /// What was checked.
    pub what: String,
    /// Bytes needed.
    pub needed: u64,
    /// Bytes available.
    pub available: u64,
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} of {} ({} free)",
            self.what,
            human(self.needed),
            human(self.available),
            human(self.available - self.needed)
        )
    }
}

fn check(what: String, needed: u64, available: u64, board: &Board) -> Result<Fit> {
    if needed > available {
        bail!(
            "{}: {what} needs {needed} bytes but only {available} are available: too large by {} bytes ({})",
            board.name,
            needed - available,
            human(needed - available)
        );
    }
    Ok(Fit {
        what,
        needed,
        available,
    })
}

/// Checks a sysupgrade's kernel and root against the flash partitions they are
/// written to. When both share one partition, the root starts on the erase block
/// after the kernel.
pub fn check_flash(board: &Board, kernel_len: u64, root_len: u64) -> Result<Vec<Fit>> {
    let flash = board.flash.as_ref().context("board has no flash layout")?;
    let kp = flash
        .partition(&flash.kernel_partition)
        .context("kernel partition")?;
    let rp = flash
        .partition(&flash.rootfs_partition)
        .context("rootfs partition")?;
    let mut fits = Vec::new();
    if kp.name == rp.name {
        let kernel_blocks = kernel_len.div_ceil(flash.erase_block) * flash.erase_block;
        fits.push(check(
            format!(
                "sysupgrade kernel ({}) + root ({}) in partition `{}` ({})",
                human(kernel_len),
                human(root_len),
                kp.name,
                Size(kp.size)
            ),
            kernel_blocks + root_len,
            kp.size,
            board,
        )?);
    } else {
        fits.push(check(
            format!("sysupgrade kernel in partition `{}`", kp.name),
            kernel_len,
            kp.size,
            board,
        )?);
        fits.push(check(
            format!("sysupgrade root in partition `{}`", rp.name),
            root_len,
            rp.size,
            board,
        )?);
    }
    Ok(fits)
}

/// Checks that a RAM-boot image can be loaded and unpacked in half the board's
/// RAM (the other half is left to the system): the image as U-Boot loads it, the
/// kernel it decompresses to, and the root file system unpacked from it.
pub fn check_ram(board: &Board, image_len: u64, kernel_memsz: u64, rootfs_len: u64) -> Result<Fit> {
    check(
        format!(
            "initramfs image loaded and unpacked in half of {} RAM",
            human(board.ram)
        ),
        image_len + kernel_memsz + rootfs_len,
        board.ram / 2,
        board,
    )
}
