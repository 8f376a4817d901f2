//! U-Boot's legacy image: a 64-byte big-endian header in front of the payload
//! (U-Boot include/image.h, `struct legacy_img_hdr`):
//!
//! ```text
//!  0 magic 0x27051956   4 header CRC   8 time    12 data size  16 load address
//! 20 entry point       24 data CRC    28 os     29 arch       30 type  31 comp
//! 32 name (32 bytes, NUL-padded)
//! ```
//!
//! Both CRCs are zlib's CRC-32; the header CRC is computed with its own field zero.
//! [`parse`] checks everything a boot loader checks, so tests (and later the
//! router's sysupgrade) can verify an image the way U-Boot will.

use crate::crc32;

/// `IH_MAGIC`.
pub const MAGIC: u32 = 0x2705_1956;
/// Header length.
pub const HEADER_LEN: usize = 64;
/// `IH_NMLEN`: the name field, including its terminating NUL.
pub const NAME_LEN: usize = 32;
/// `IH_OS_LINUX`.
pub const OS_LINUX: u8 = 5;

/// `IH_ARCH_*` values for the architectures braid builds (include/image.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Arch {
    /// `IH_ARCH_ARM`.
    Arm = 2,
    /// `IH_ARCH_MIPS`.
    Mips = 5,
    /// `IH_ARCH_PPC`.
    Ppc = 7,
    /// `IH_ARCH_ARM64`.
    Arm64 = 22,
    /// `IH_ARCH_X86_64`.
    X86_64 = 24,
}

impl Arch {
    /// From the kernel's `ARCH=` name.
    pub fn from_kernel_arch(arch: &str) -> Option<Self> {
        Some(match arch {
            "arm" => Self::Arm,
            "mips" => Self::Mips,
            "powerpc" => Self::Ppc,
            "arm64" => Self::Arm64,
            "x86" => Self::X86_64,
            _ => return None,
        })
    }

    fn from_u8(v: u8) -> Option<Self> {
        [Self::Arm, Self::Mips, Self::Ppc, Self::Arm64, Self::X86_64]
            .into_iter()
            .find(|a| *a as u8 == v)
    }
}

/// `IH_TYPE_*` values braid writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `IH_TYPE_KERNEL`: an OS kernel.
    Kernel = 2,
    /// `IH_TYPE_RAMDISK`: an initrd.
    Ramdisk = 3,
    /// `IH_TYPE_SCRIPT`: a U-Boot script (`source`).
    Script = 6,
}

/// `IH_COMP_*` values braid writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Comp {
    /// `IH_COMP_NONE`.
    None = 0,
    /// `IH_COMP_GZIP`.
    Gzip = 1,
    /// `IH_COMP_LZMA`.
    Lzma = 3,
}

/// The header fields a writer chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// CPU architecture.
    pub arch: Arch,
    /// Image type.
    pub kind: Kind,
    /// Payload compression.
    pub comp: Comp,
    /// Load address.
    pub load: u32,
    /// Entry point.
    pub entry: u32,
    /// Creation time (seconds since the epoch): SOURCE_DATE_EPOCH, for reproducibility.
    pub time: u32,
    /// Name, at most 31 bytes.
    pub name: String,
}

/// Why an image could not be written or is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UImageError {
    /// The name does not fit `IH_NMLEN - 1` bytes.
    #[error("image name `{0}` is longer than {max} bytes", max = NAME_LEN - 1)]
    NameTooLong(String),
    /// The payload is larger than the 32-bit size field.
    #[error("payload of {0} bytes does not fit the 32-bit size field")]
    TooLarge(usize),
    /// Shorter than the header, or than the size it declares.
    #[error("truncated: {len} bytes, the header says {need}")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Not a legacy image.
    #[error("bad magic {0:#010x}, expected 0x27051956")]
    BadMagic(u32),
    /// Header CRC mismatch.
    #[error("header CRC {found:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        /// In the header.
        found: u32,
        /// Computed.
        computed: u32,
    },
    /// Data CRC mismatch.
    #[error("data CRC {found:#010x}, computed {computed:#010x}")]
    DataCrc {
        /// In the header.
        found: u32,
        /// Computed.
        computed: u32,
    },
    /// A field holds a value braid does not write.
    #[error("unsupported {field} {value}")]
    Unsupported {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u8,
    },
}

/// Writes a complete image: header, then `data`.
pub fn write(h: &Header, data: &[u8]) -> Result<Vec<u8>, UImageError> {
    if h.name.len() >= NAME_LEN {
        return Err(UImageError::NameTooLong(h.name.clone()));
    }
    let size = u32::try_from(data.len()).map_err(|_| UImageError::TooLarge(data.len()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // header CRC, filled below
    out.extend_from_slice(&h.time.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&h.load.to_be_bytes());
    out.extend_from_slice(&h.entry.to_be_bytes());
    out.extend_from_slice(&crc32(data).to_be_bytes());
    out.extend_from_slice(&[OS_LINUX, h.arch as u8, h.kind as u8, h.comp as u8]);
    let mut name = [0u8; NAME_LEN];
    name[..h.name.len()].copy_from_slice(h.name.as_bytes());
    out.extend_from_slice(&name);
    let hcrc = crc32(&out[..HEADER_LEN]);
    out[4..8].copy_from_slice(&hcrc.to_be_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// Reads and verifies an image (magic, both CRCs, size); returns the header and
/// the payload. Bytes after the declared size are ignored, as U-Boot does.
pub fn parse(image: &[u8]) -> Result<(Header, &[u8]), UImageError> {
    let be =
        |at: usize| u32::from_be_bytes([image[at], image[at + 1], image[at + 2], image[at + 3]]);
    if image.len() < HEADER_LEN {
        return Err(UImageError::Truncated {
            len: image.len(),
            need: HEADER_LEN,
        });
    }
    if be(0) != MAGIC {
        return Err(UImageError::BadMagic(be(0)));
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&image[..HEADER_LEN]);
    header[4..8].fill(0);
    let computed = crc32(&header);
    if computed != be(4) {
        return Err(UImageError::HeaderCrc {
            found: be(4),
            computed,
        });
    }
    let size = be(12) as usize;
    let data = image
        .get(HEADER_LEN..HEADER_LEN.saturating_add(size))
        .ok_or(UImageError::Truncated {
            len: image.len(),
            need: HEADER_LEN.saturating_add(size),
        })?;
    let computed = crc32(data);
    if computed != be(24) {
        return Err(UImageError::DataCrc {
            found: be(24),
            computed,
        });
    }
    let unsupported = |field, value| UImageError::Unsupported { field, value };
    if image[28] != OS_LINUX {
        return Err(unsupported("os", image[28]));
    }
    let arch = Arch::from_u8(image[29]).ok_or(unsupported("arch", image[29]))?;
    let kind = match image[30] {
        2 => Kind::Kernel,
        3 => Kind::Ramdisk,
        6 => Kind::Script,
        v => return Err(unsupported("type", v)),
    };
    let comp = match image[31] {
        0 => Comp::None,
        1 => Comp::Gzip,
        3 => Comp::Lzma,
        v => return Err(unsupported("compression", v)),
    };
    let name_bytes = &image[32..HEADER_LEN];
    let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    Ok((
        Header {
            arch,
            kind,
            comp,
            load: be(16),
            entry: be(20),
            time: be(8),
            name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
        },
        data,
    ))
}

#[cfg(test)]
mod tests;
