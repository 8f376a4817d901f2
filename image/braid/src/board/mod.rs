//! Boards as data: `board/<name>.toml`, each inheriting from a family file.
//!
//! As in Hubris's `app.toml`, a board file names its parent with `inherit`; the
//! chain is merged table by table (the child wins, arrays are replaced), unknown
//! fields are rejected in every file, and the result is validated into a typed
//! [`Board`]. Every error names the file and the field, and says what is valid.
//! Files under `board/family/` (or with `abstract = true`) are not boards.

mod raw;

use std::path::{Path, PathBuf};

use raw::RawBoard;

use crate::size::Size;
use crate::targets::Target;

/// A validated board.
#[derive(Debug, Clone)]
pub struct Board {
    /// Name: the file's stem, e.g. `qemu-malta-le`.
    pub name: String,
    /// The board file, then each file it inherits from.
    pub chain: Vec<PathBuf>,
    /// Maker.
    pub vendor: String,
    /// Model and revision.
    pub model: String,
    /// CPU target name (`targets/<target>.toml`).
    pub target: String,
    /// Names sysupgrade accepts (OpenWrt `supported_devices`); the first is the
    /// board name the running firmware reports.
    pub compatible: Vec<String>,
    /// RAM size in bytes.
    pub ram: u64,
    /// Images to produce.
    pub images: Vec<ImageKind>,
    /// Kernel configuration and packaging.
    pub kernel: KernelSpec,
    /// Flash layout; `None` for boards without flash (some QEMU machines).
    pub flash: Option<Flash>,
    /// Serial console.
    pub console: Console,
    /// Real hardware, or a QEMU machine.
    pub hardware: Hardware,
}

/// What kind of machine a board is.
#[derive(Debug, Clone)]
pub enum Hardware {
    /// A QEMU machine: `braid run` can boot it.
    Emulated(QemuSpec),
    /// A real router.
    Real {
        /// Whether an image of ours has been booted on one. None is, yet.
        verified: bool,
    },
}

/// An image the builder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Kernel with the root file system built in as initramfs, in the board's
    /// kernel format: loaded over TFTP into RAM and booted (nothing is flashed).
    Initramfs,
    /// OpenWrt sysupgrade: tar of kernel and squashfs root, plus fwtool metadata.
    Sysupgrade,
}

impl ImageKind {
    const ALL: [(ImageKind, &'static str); 2] = [
        (ImageKind::Initramfs, "initramfs"),
        (ImageKind::Sysupgrade, "sysupgrade"),
    ];

    /// The name used in board files.
    pub fn name(self) -> &'static str {
        lookup_name(&Self::ALL, self)
    }
}

/// How the kernel is built and packaged.
#[derive(Debug, Clone)]
pub struct KernelSpec {
    /// Kconfig base target: `tinyconfig` or a `*_defconfig`.
    pub base: String,
    /// Config fragments, in merge order (absolute paths).
    pub fragments: Vec<PathBuf>,
    /// Inline config lines (`CONFIG_X=y`, `# CONFIG_Y is not set`), merged last.
    pub config: Vec<String>,
    /// Which build output is packaged.
    pub artifact: Artifact,
    /// Container U-Boot loads.
    pub format: KernelFormat,
    /// Compression of the kernel inside the container.
    pub compression: Compression,
    /// Physical/virtual load address written in the image header.
    pub load_addr: u64,
    /// Entry point.
    pub entry: Entry,
    /// Kernel command line.
    pub cmdline: String,
    /// Device tree source (absolute path), for boards whose firmware passes none.
    pub dts: Option<PathBuf>,
    /// Where the compiled device tree goes.
    pub dtb: DtbPlacement,
}

/// The kernel build output that is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// `vmlinux` converted to a raw binary with objcopy (MIPS, PowerPC).
    VmlinuxBin,
    /// `arch/arm/boot/zImage`, self-decompressing (32-bit ARM).
    ZImage,
    /// `arch/arm64/boot/Image`.
    Image,
}

impl Artifact {
    const ALL: [(Artifact, &'static str); 3] = [
        (Artifact::VmlinuxBin, "vmlinux.bin"),
        (Artifact::ZImage, "zImage"),
        (Artifact::Image, "Image"),
    ];
    /// Name in board files.
    pub fn name(self) -> &'static str {
        lookup_name(&Self::ALL, self)
    }
}

/// Kernel container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// U-Boot legacy image (64-byte header).
    UImage,
    /// U-Boot Flattened Image Tree: kernel and device tree in one image.
    Fit,
}

impl KernelFormat {
    const ALL: [(KernelFormat, &'static str); 2] =
        [(KernelFormat::UImage, "uimage"), (KernelFormat::Fit, "fit")];
    /// Name in board files.
    pub fn name(self) -> &'static str {
        lookup_name(&Self::ALL, self)
    }
}

/// Compression of the kernel payload (U-Boot decompresses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is (zImage decompresses itself).
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// LZMA "alone" format, as OpenWrt uses for MIPS kernels.
    Lzma,
}

impl Compression {
    const ALL: [(Compression, &'static str); 3] = [
        (Compression::None, "none"),
        (Compression::Gzip, "gzip"),
        (Compression::Lzma, "lzma"),
    ];
    /// Name in board files.
    pub fn name(self) -> &'static str {
        lookup_name(&Self::ALL, self)
    }
}

/// Kernel entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A fixed address.
    Addr(u64),
    /// A symbol looked up in the build's System.map (e.g. `kernel_entry` on MIPS).
    Symbol(String),
}

/// Where the compiled device tree goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbPlacement {
    /// No device tree (QEMU generates one, or the platform needs none).
    None,
    /// Appended to the raw kernel (`CONFIG_MIPS_RAW_APPENDED_DTB`).
    Append,
    /// A separate image in the FIT.
    Fit,
}

impl DtbPlacement {
    const ALL: [(DtbPlacement, &'static str); 3] = [
        (DtbPlacement::None, "none"),
        (DtbPlacement::Append, "append"),
        (DtbPlacement::Fit, "fit"),
    ];
    /// Name in board files.
    pub fn name(self) -> &'static str {
        lookup_name(&Self::ALL, self)
    }
}

/// Flash layout.
#[derive(Debug, Clone)]
pub struct Flash {
    /// NOR or NAND.
    pub kind: FlashKind,
    /// Total size.
    pub size: u64,
    /// Erase block size; partitions start and end on erase blocks.
    pub erase_block: u64,
    /// Partitions, sorted by offset, not overlapping.
    pub partitions: Vec<Partition>,
    /// The partition the kernel is written to.
    pub kernel_partition: String,
    /// The partition the root file system is written to (the same as the kernel's
    /// when both share one "firmware" partition).
    pub rootfs_partition: String,
}

impl Flash {
    /// The partition named `name`.
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }
}

/// NOR or NAND flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    /// Memory-mapped or SPI NOR.
    Nor,
    /// Raw NAND (UBI).
    Nand,
}

/// One flash partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Name (as the kernel's mtd partition).
    pub name: String,
    /// Offset from the start of flash.
    pub offset: u64,
    /// Size.
    pub size: u64,
    /// Never written by sysupgrade (boot loader, calibration data).
    pub read_only: bool,
}

/// Serial console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    /// Linux device name, e.g. `ttyS0`.
    pub device: String,
    /// Baud rate.
    pub baud: u32,
}

/// How QEMU emulates the board.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    /// The qemu-system binary.
    pub system: String,
    /// The Debian package providing it.
    pub package: String,
    /// `-M` machine.
    pub machine: String,
    /// `-cpu`, if not the machine's default.
    pub cpu: Option<String>,
    /// `-m` in bytes.
    pub memory: u64,
    /// NIC model for `-device`.
    pub nic: String,
    /// What `-kernel` is given.
    pub kernel: QemuKernel,
    /// How the guest ends a test boot: power off, or restart (which `-no-reboot`
    /// turns into QEMU exiting) on machines without a power-off device.
    pub poweroff: PowerOff,
    /// Extra arguments.
    pub args: Vec<String>,
}

/// How a QEMU machine is switched off from inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerOff {
    /// The machine has a power-off device (PIIX4 on Malta, PSCI on virt).
    PowerOff,
    /// It has none (ppce500): restart instead.
    Reboot,
}

impl PowerOff {
    const ALL: [(PowerOff, &'static str); 2] = [
        (PowerOff::PowerOff, "poweroff"),
        (PowerOff::Reboot, "reboot"),
    ];
}

/// What QEMU's `-kernel` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuKernel {
    /// The ELF `vmlinux` (MIPS Malta loads nothing else).
    Vmlinux,
    /// The board's own kernel image (uImage), as U-Boot would.
    Image,
    /// The raw build artifact (zImage, Image).
    Artifact,
}

impl QemuKernel {
    const ALL: [(QemuKernel, &'static str); 3] = [
        (QemuKernel::Vmlinux, "vmlinux"),
        (QemuKernel::Image, "image"),
        (QemuKernel::Artifact, "artifact"),
    ];
}

/// Why boards could not be loaded or found.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML for a board (unknown field, wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field is missing or holds a value that is not allowed.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        /// The board file (fields may come from a file it inherits).
        path: PathBuf,
        /// Dotted field name.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// `inherit` goes in a circle.
    #[error("{path}: inheritance cycle: {}", chain.join(" -> "))]
    Cycle {
        /// The board file.
        path: PathBuf,
        /// The files in the cycle.
        chain: Vec<String>,
    },
    /// No board of that name.
    #[error("unknown board `{name}`; known boards: {}", known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The boards that exist.
        known: Vec<String>,
    },
}

/// Names of every board in `dir` (files directly in it, except abstract ones), sorted.
pub fn list(dir: &Path) -> Result<Vec<String>, BoardError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BoardError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| BoardError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "toml") {
            let raw = read_raw(&path)?.1;
            if raw.is_abstract != Some(true) {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.push(stem.to_string());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Loads and validates board `name` from `dir` (board/), checking its target
/// against `targets`.
pub fn load(dir: &Path, name: &str, targets: &[Target]) -> Result<Board, BoardError> {
    let known = list(dir)?;
    if !known.iter().any(|k| k == name) {
        return Err(BoardError::Unknown {
            name: name.to_string(),
            known,
        });
    }
    let path = dir.join(format!("{name}.toml"));
    let (table, chain) = merged(dir, &path)?;
    let raw: RawBoard = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| BoardError::Parse {
            path: path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
    validate::board(dir, name, chain, raw, targets)
}

/// Checks the text of one board file against the schema on its own (unknown
/// fields, types), as every file of a chain is checked; for fuzzing and editors.
pub fn parse_file(path: &Path, text: &str) -> Result<(), BoardError> {
    parse_raw(path, text).map(drop)
}

/// Reads one file as TOML, checking it against the schema on its own (so unknown
/// fields are reported with this file's line).
fn read_raw(path: &Path) -> Result<(toml::Table, RawBoard), BoardError> {
    let text = std::fs::read_to_string(path).map_err(|source| BoardError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_raw(path, &text)
}

fn parse_raw(path: &Path, text: &str) -> Result<(toml::Table, RawBoard), BoardError> {
    let parse_err = |e: toml::de::Error| BoardError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    };
    let raw: RawBoard = toml::from_str(text).map_err(parse_err)?;
    let table: toml::Table = toml::from_str(text).map_err(parse_err)?;
    Ok((table, raw))
}

/// Merges a board file over its ancestors; returns the table and the chain
/// (board first).
fn merged(dir: &Path, path: &Path) -> Result<(toml::Table, Vec<PathBuf>), BoardError> {
    let mut chain = vec![path.to_path_buf()];
    let mut tables = Vec::new();
    let mut current = path.to_path_buf();
    loop {
        let (mut table, raw) = read_raw(&current)?;
        table.remove("inherit");
        table.remove("abstract");
        tables.push(table);
        let Some(parent) = raw.inherit else { break };
        let parent_path = dir.join(format!("{parent}.toml"));
        if chain.contains(&parent_path) {
            chain.push(parent_path);
            return Err(BoardError::Cycle {
                path: path.to_path_buf(),
                chain: chain.iter().map(|p| p.display().to_string()).collect(),
            });
        }
        if !parent_path.is_file() {
            return Err(BoardError::Invalid {
                path: current,
                field: "inherit".into(),
                message: format!("`{parent}`: no file {}", parent_path.display()),
            });
        }
        chain.push(parent_path.clone());
        current = parent_path;
    }
    let mut result = toml::Table::new();
    for table in tables.into_iter().rev() {
        merge(&mut result, table);
    }
    Ok((result, chain))
}

/// Merges `over` into `base`: tables recursively, everything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn lookup_name<T: PartialEq + Copy>(all: &[(T, &'static str)], v: T) -> &'static str {
    all.iter().find(|(k, _)| *k == v).map_or("?", |(_, n)| n)
}

fn parse_name<T: Copy>(all: &[(T, &'static str)], s: &str) -> Result<T, String> {
    all.iter()
        .find(|(_, n)| *n == s)
        .map(|(v, _)| *v)
        .ok_or_else(|| {
            let valid: Vec<String> = all.iter().map(|(_, n)| format!("\"{n}\"")).collect();
            format!("`{s}`; valid values are {}", valid.join(", "))
        })
}

mod validate;

#[cfg(test)]
mod tests;

impl Board {
    /// The board file.
    pub fn file(&self) -> &Path {
        &self.chain[0]
    }

    /// QEMU description, for emulated boards.
    pub fn qemu(&self) -> Option<&QemuSpec> {
        match &self.hardware {
            Hardware::Emulated(q) => Some(q),
            Hardware::Real { .. } => None,
        }
    }

    /// Entry point as written in the board file (resolved against System.map later).
    pub fn entry_symbol(&self) -> Option<&str> {
        match &self.kernel.entry {
            Entry::Symbol(s) => Some(s),
            Entry::Addr(_) => None,
        }
    }

    /// Load address as a [`Size`] for display.
    pub fn load_addr(&self) -> Size {
        Size(self.kernel.load_addr)
    }
}
