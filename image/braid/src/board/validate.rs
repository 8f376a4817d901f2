//! Turns a merged raw board into a [`Board`], checking every field.

use std::path::{Path, PathBuf};

use super::raw::{RawBoard, RawEntry, RawFlash, RawKernel, RawQemu};
use super::*;

/// Collects the first error with the board file's name.
struct Check<'a> {
    path: &'a Path,
}

impl Check<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> BoardError {
        BoardError::Invalid {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn need<T>(&self, field: &str, v: Option<T>) -> Result<T, BoardError> {
        v.ok_or_else(|| self.err(field, "missing (in the board file or a file it inherits)"))
    }

    fn text(&self, field: &str, v: Option<String>) -> Result<String, BoardError> {
        let s = self.need(field, v)?;
        if s.trim().is_empty() {
            return Err(self.err(field, "must not be empty"));
        }
        Ok(s)
    }

    fn named<T: Copy>(
        &self,
        field: &str,
        all: &[(T, &'static str)],
        v: Option<String>,
    ) -> Result<T, BoardError> {
        let s = self.need(field, v)?;
        parse_name(all, &s).map_err(|m| self.err(field, m))
    }

    /// A path relative to board/, which must exist.
    fn file(&self, field: &str, dir: &Path, rel: &str) -> Result<PathBuf, BoardError> {
        let p = dir.join(rel);
        if p.is_file() {
            Ok(p)
        } else {
            Err(self.err(field, format!("`{rel}`: no file {}", p.display())))
        }
    }
}

pub(super) fn board(
    dir: &Path,
    name: &str,
    chain: Vec<PathBuf>,
    raw: RawBoard,
    targets: &[Target],
) -> Result<Board, BoardError> {
    let file = chain[0].clone();
    let c = Check { path: &file };
    let target = c.text("target", raw.target)?;
    if !targets.iter().any(|t| t.name == target) {
        let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        return Err(c.err(
            "target",
            format!(
                "`{target}` is not in targets/; known targets: {}",
                known.join(", ")
            ),
        ));
    }
    let compatible = c.need("compatible", raw.compatible)?;
    if compatible.is_empty()
        || compatible
            .iter()
            .any(|s| s.trim().is_empty() || s.contains('"'))
    {
        return Err(c.err(
            "compatible",
            "must list at least one name, without quotes, e.g. [\"tplink,archer-c7-v2\"]",
        ));
    }
    let ram = c.need("ram", raw.ram)?.0;
    if ram < 16 << 20 {
        return Err(c.err(
            "ram",
            format!("{} is less than the 16 MiB braid needs", Size(ram)),
        ));
    }
    let images = c
        .need("images", raw.images)?
        .into_iter()
        .map(|i| parse_name(&ImageKind::ALL, &i).map_err(|m| c.err("images", m)))
        .collect::<Result<Vec<_>, _>>()?;
    let kernel = kernel(&c, dir, c.need("kernel", raw.kernel)?)?;
    let flash = raw.flash.map(|f| flash(&c, f)).transpose()?;
    if images.contains(&ImageKind::Sysupgrade) && flash.is_none() {
        return Err(c.err(
            "images",
            "\"sysupgrade\" needs a [flash] layout to check the image against",
        ));
    }
    let console = c.need("console", raw.console)?;
    let console = Console {
        device: c.text("console.device", console.device)?,
        baud: c.need("console.baud", console.baud)?,
    };
    const BAUDS: [u32; 8] = [9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600];
    if !BAUDS.contains(&console.baud) {
        return Err(c.err(
            "console.baud",
            format!("{}; valid rates are {BAUDS:?}", console.baud),
        ));
    }
    let hardware = match (raw.qemu, raw.verified_on_hardware) {
        (Some(q), None) => Hardware::Emulated(qemu(&c, q)?),
        (None, Some(verified)) => Hardware::Real { verified },
        (Some(_), Some(_)) => {
            return Err(c.err("verified_on_hardware", "a board with [qemu] is emulated; remove one of the two"))
        }
        (None, None) => {
            return Err(c.err(
                "verified_on_hardware",
                "missing: a real board says whether it was verified on hardware (or give a [qemu] section)",
            ))
        }
    };
    Ok(Board {
        name: name.to_string(),
        chain,
        vendor: c.text("vendor", raw.vendor)?,
        model: c.text("model", raw.model)?,
        target,
        compatible,
        ram,
        images,
        kernel,
        flash,
        console,
        hardware,
    })
}

fn kernel(c: &Check<'_>, dir: &Path, k: RawKernel) -> Result<KernelSpec, BoardError> {
    let base = c.text("kernel.base", k.base)?;
    if base != "tinyconfig" && !base.ends_with("defconfig") {
        return Err(c.err(
            "kernel.base",
            format!("`{base}`; use \"tinyconfig\" or a kernel *_defconfig target"),
        ));
    }
    let fragments = k
        .fragments
        .unwrap_or_default()
        .iter()
        .map(|f| c.file("kernel.fragments", dir, f))
        .collect::<Result<Vec<_>, _>>()?;
    let config = k.config.unwrap_or_default();
    for line in &config {
        if crate::kconfig::parse_line(line).is_none() {
            return Err(c.err(
                "kernel.config",
                format!("`{line}` is not `CONFIG_NAME=value` or `# CONFIG_NAME is not set`"),
            ));
        }
    }
    let entry = match c.need("kernel.entry", k.entry)? {
        RawEntry::Addr(a) => Entry::Addr(a),
        RawEntry::Symbol(s) => match crate::size::parse(&s) {
            Ok(a) => Entry::Addr(a),
            Err(_)
                if s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') && !s.is_empty() =>
            {
                Entry::Symbol(s)
            }
            Err(_) => {
                return Err(c.err(
                    "kernel.entry",
                    format!("`{s}` is neither an address nor a System.map symbol name"),
                ))
            }
        },
    };
    let dts = k.dts.map(|d| c.file("kernel.dts", dir, &d)).transpose()?;
    let dtb = match k.dtb {
        Some(d) => c.named("kernel.dtb", &DtbPlacement::ALL, Some(d))?,
        None => DtbPlacement::None,
    };
    if (dtb == DtbPlacement::None) != dts.is_none() {
        return Err(c.err(
            "kernel.dtb",
            "give both `dts` and where its blob goes (`dtb`), or neither",
        ));
    }
    let format = c.named("kernel.format", &KernelFormat::ALL, k.format)?;
    if dtb == DtbPlacement::Fit && format != KernelFormat::Fit {
        return Err(c.err("kernel.dtb", "\"fit\" needs kernel.format = \"fit\""));
    }
    Ok(KernelSpec {
        base,
        fragments,
        config,
        artifact: c.named("kernel.artifact", &Artifact::ALL, k.artifact)?,
        format,
        compression: c.named("kernel.compression", &Compression::ALL, k.compression)?,
        load_addr: c.need("kernel.load_addr", k.load_addr)?.0,
        entry,
        cmdline: k.cmdline.unwrap_or_default(),
        dts,
        dtb,
    })
}

fn flash(c: &Check<'_>, f: RawFlash) -> Result<Flash, BoardError> {
    let kind = c.named(
        "flash.kind",
        &[(FlashKind::Nor, "nor"), (FlashKind::Nand, "nand")],
        f.kind,
    )?;
    let size = c.need("flash.size", f.size)?.0;
    let erase_block = c.need("flash.erase_block", f.erase_block)?.0;
    if !erase_block.is_power_of_two() || erase_block < 4096 {
        return Err(c.err(
            "flash.erase_block",
            format!(
                "{} is not a power of two of at least 4 KiB",
                Size(erase_block)
            ),
        ));
    }
    let mut partitions: Vec<Partition> = c
        .need("flash.partitions", f.partitions)?
        .into_iter()
        .map(|p| Partition {
            name: p.name,
            offset: p.offset.0,
            size: p.size.0,
            read_only: p.read_only,
        })
        .collect();
    partitions.sort_by_key(|p| p.offset);
    for p in &partitions {
        let field = format!("flash.partitions.{}", p.name);
        if p.size == 0 {
            return Err(c.err(&field, "size is zero"));
        }
        if !p.offset.is_multiple_of(erase_block) || !p.size.is_multiple_of(erase_block) {
            return Err(c.err(
                &field,
                format!(
                    "offset {} and size {} must be multiples of the erase block {}",
                    Size(p.offset),
                    Size(p.size),
                    Size(erase_block)
                ),
            ));
        }
        let end = p.offset.saturating_add(p.size);
        if end > size {
            return Err(c.err(
                &field,
                format!(
                    "ends at {} but the flash is only {}: {} bytes past its end",
                    Size(end),
                    Size(size),
                    end - size
                ),
            ));
        }
        if partitions.iter().filter(|q| q.name == p.name).count() > 1 {
            return Err(c.err(&field, "appears twice"));
        }
    }
    for w in partitions.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.offset + a.size > b.offset {
            return Err(c.err(
                "flash.partitions",
                format!(
                    "`{}` ({:#x}..{:#x}) and `{}` ({:#x}..{:#x}) overlap by {} bytes",
                    a.name,
                    a.offset,
                    a.offset + a.size,
                    b.name,
                    b.offset,
                    b.offset + b.size,
                    a.offset + a.size - b.offset
                ),
            ));
        }
    }
    let flash = Flash {
        kind,
        size,
        erase_block,
        kernel_partition: c.text("flash.kernel_partition", f.kernel_partition)?,
        rootfs_partition: c.text("flash.rootfs_partition", f.rootfs_partition)?,
        partitions,
    };
    for (field, name) in [
        ("flash.kernel_partition", &flash.kernel_partition),
        ("flash.rootfs_partition", &flash.rootfs_partition),
    ] {
        match flash.partition(name) {
            None => {
                let names: Vec<&str> = flash.partitions.iter().map(|p| p.name.as_str()).collect();
                return Err(c.err(
                    field,
                    format!(
                        "`{name}` is not a partition; partitions are {}",
                        names.join(", ")
                    ),
                ));
            }
            Some(p) if p.read_only => return Err(c.err(field, format!("`{name}` is read-only"))),
            Some(_) => {}
        }
    }
    Ok(flash)
}

fn qemu(c: &Check<'_>, q: RawQemu) -> Result<QemuSpec, BoardError> {
    let args = q.args.unwrap_or_default();
    Ok(QemuSpec {
        system: c.text("qemu.system", q.system)?,
        package: c.text("qemu.package", q.package)?,
        machine: c.text("qemu.machine", q.machine)?,
        cpu: q.cpu,
        memory: c.need("qemu.memory", q.memory)?.0,
        nic: c.text("qemu.nic", q.nic)?,
        kernel: c.named("qemu.kernel", &QemuKernel::ALL, q.kernel)?,
        poweroff: match q.poweroff {
            Some(p) => c.named("qemu.poweroff", &PowerOff::ALL, Some(p))?,
            None => PowerOff::PowerOff,
        },
        args,
    })
}
