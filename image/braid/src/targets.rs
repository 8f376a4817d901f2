//! CPU targets as data: `targets/<name>.toml`, one file per CPU class.
//!
//! A file is read into a raw struct that rejects unknown fields, then validated into
//! a [`Target`]. Every error names the file, the field and what would be valid. The
//! builder knows nothing about a CPU beyond what these files say.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A validated CPU target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Short name: the file's stem (`mips`, `powerpc-e500`...).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// One line for `braid targets`.
    pub description: String,
    /// Rust target triple.
    pub triple: String,
    /// Whether std must be built from source (`-Zbuild-std`).
    pub build_std: bool,
    /// Extra rustc flags for this CPU.
    pub rustflags: Vec<String>,
    /// Zig triple for the C compiler and linker.
    pub zig_target: String,
    /// Extra flags for zig cc (e.g. `-mcpu=`).
    pub zig_cflags: Vec<String>,
    /// What the binaries' ELF header must say.
    pub elf: ElfSpec,
    /// Instruction prefixes the CPU cannot execute (e.g. FPU ops on a core without
    /// one); a binary containing any is refused.
    pub forbidden_mnemonics: Vec<String>,
    /// How to run binaries under user-mode emulation.
    pub qemu: QemuUser,
    /// How the kernel is built for this CPU.
    pub kernel: KernelToolchain,
}

/// Expected ELF identification of binaries built for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfSpec {
    /// 32 or 64-bit.
    pub class: ElfClass,
    /// Byte order.
    pub endian: Endian,
    /// Machine.
    pub machine: Machine,
}

/// ELF class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// Byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Most significant byte first (MIPS ath79, PowerPC).
    Big,
    /// Least significant byte first.
    Little,
}

/// ELF machines braid targets, named as `file(1)` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// EM_MIPS (8).
    Mips,
    /// EM_PPC (20).
    PowerPc,
    /// EM_ARM (40).
    Arm,
    /// EM_X86_64 (62).
    X86_64,
    /// EM_AARCH64 (183).
    Aarch64,
}

impl Machine {
    /// Every machine with the name used in target files (and by `file`).
    pub const ALL: [(Machine, &'static str); 5] = [
        (Machine::Mips, "MIPS"),
        (Machine::PowerPc, "PowerPC"),
        (Machine::Arm, "ARM"),
        (Machine::X86_64, "x86-64"),
        (Machine::Aarch64, "ARM aarch64"),
    ];

    /// The name `file(1)` uses.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("?", |(_, n)| n)
    }
}

impl fmt::Display for ElfSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = match self.class {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 64,
        };
        let endian = match self.endian {
            Endian::Big => "MSB",
            Endian::Little => "LSB",
        };
        write!(f, "ELF {bits}-bit {endian} {}", self.machine.name())
    }
}

/// User-mode emulator for running a target's binaries and tests on the build machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuUser {
    /// The emulator binary, e.g. `qemu-mips-static`.
    pub binary: String,
    /// `-cpu` model, the oldest or most restrictive CPU of the class.
    pub cpu: String,
    /// The Debian package that provides it (installed by ci/setup).
    pub package: String,
}

/// The kernel's view of the CPU (used by the image builder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelToolchain {
    /// Kernel `ARCH=`.
    pub arch: String,
    /// Kernel `CROSS_COMPILE=` prefix.
    pub cross_compile: String,
    /// The Debian package that provides `<cross_compile>gcc` (installed by ci/setup).
    pub package: String,
}

/// Why targets could not be loaded or found.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The directory or a file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid TOML for a target (unknown or missing field, wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and field.
        message: String,
    },
    /// A field holds a value that is not allowed.
    #[error("{path}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted field name.
        field: &'static str,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// No target of that name.
    #[error("unknown target `{name}`; known targets: {}", known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// The directory holds no target file.
    #[error("{0}: no target files (*.toml)")]
    Empty(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    description: String,
    rust: RawRust,
    cc: RawCc,
    elf: RawElf,
    qemu: RawQemu,
    kernel: RawKernel,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRust {
    triple: String,
    build_std: bool,
    #[serde(default)]
    rustflags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCc {
    zig_target: String,
    #[serde(default)]
    zig_cflags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawElf {
    class: u8,
    endian: Endian,
    machine: String,
    #[serde(default)]
    forbidden_mnemonics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQemu {
    user: String,
    cpu: String,
    package: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    arch: String,
    cross_compile: String,
    package: String,
}

/// Loads every `*.toml` in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Target>, TargetError> {
    let read_err = |source| TargetError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    if files.is_empty() {
        return Err(TargetError::Empty(dir.to_path_buf()));
    }
    files.iter().map(|f| load_file(f)).collect()
}

/// Loads and validates one target file.
pub fn load_file(path: &Path) -> Result<Target, TargetError> {
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Finds a target by name, or lists the known ones.
pub fn find<'t>(targets: &'t [Target], name: &str) -> Result<&'t Target, TargetError> {
    targets
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| TargetError::Unknown {
            name: name.to_string(),
            known: targets.iter().map(|t| t.name.clone()).collect(),
        })
}

/// Parses and validates the text of a target file; `path` names it in errors and
/// gives the target its name.
pub fn parse(path: &Path, text: &str) -> Result<Target, TargetError> {
    let raw: RawTarget = toml::from_str(text).map_err(|e| TargetError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let invalid = |field: &'static str, message: String| TargetError::Invalid {
        path: path.to_path_buf(),
        field,
        message,
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| is_word(s))
        .ok_or_else(|| {
            invalid(
                "(file name)",
                "target file names must be lowercase letters, digits, '-' or '_'".into(),
            )
        })?
        .to_string();

    let parts = raw.rust.triple.split('-').count();
    if !(3..=4).contains(&parts) || !is_word(&raw.rust.triple) {
        return Err(invalid(
            "rust.triple",
            format!(
                "`{}` is not a target triple like `mips-unknown-linux-musl` (see `rustc --print target-list`)",
                raw.rust.triple
            ),
        ));
    }
    if !raw.rust.triple.contains("-linux-") {
        return Err(invalid(
            "rust.triple",
            format!(
                "`{}` is not a Linux target; braidd runs on Linux",
                raw.rust.triple
            ),
        ));
    }
    if !raw.cc.zig_target.contains("-linux-musl") || !is_word(&raw.cc.zig_target) {
        return Err(invalid(
            "cc.zig_target",
            format!(
                "`{}` is not a zig musl triple like `mips-linux-musleabi` (see `zig targets`)",
                raw.cc.zig_target
            ),
        ));
    }
    let class = match raw.elf.class {
        32 => ElfClass::Elf32,
        64 => ElfClass::Elf64,
        other => {
            return Err(invalid(
                "elf.class",
                format!("{other}; valid values are 32 and 64"),
            ))
        }
    };
    let machine = Machine::ALL
        .iter()
        .find(|(_, n)| *n == raw.elf.machine)
        .map(|(m, _)| *m)
        .ok_or_else(|| {
            let valid: Vec<String> = Machine::ALL
                .iter()
                .map(|(_, n)| format!("\"{n}\""))
                .collect();
            invalid(
                "elf.machine",
                format!(
                    "`{}`; valid values are {}",
                    raw.elf.machine,
                    valid.join(", ")
                ),
            )
        })?;
    for (field, value) in [
        ("description", &raw.description),
        ("qemu.user", &raw.qemu.user),
        ("qemu.cpu", &raw.qemu.cpu),
        ("qemu.package", &raw.qemu.package),
        ("kernel.arch", &raw.kernel.arch),
        ("kernel.package", &raw.kernel.package),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(field, "must not be empty".into()));
        }
    }
    Ok(Target {
        name,
        file: path.to_path_buf(),
        description: raw.description,
        triple: raw.rust.triple,
        build_std: raw.rust.build_std,
        rustflags: raw.rust.rustflags,
        zig_target: raw.cc.zig_target,
        zig_cflags: raw.cc.zig_cflags,
        elf: ElfSpec {
            class,
            endian: raw.elf.endian,
            machine,
        },
        forbidden_mnemonics: raw.elf.forbidden_mnemonics,
        qemu: QemuUser {
            binary: raw.qemu.user,
            cpu: raw.qemu.cpu,
            package: raw.qemu.package,
        },
        kernel: KernelToolchain {
            arch: raw.kernel.arch,
            cross_compile: raw.kernel.cross_compile,
            package: raw.kernel.package,
        },
    })
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests;
