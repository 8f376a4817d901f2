//! OpenWrt's sysupgrade image, as OpenWrt's own tools write and check it:
//!
//! 1. a tar archive `sysupgrade-<board>/{CONTROL,kernel,root}` (scripts/
//!    sysupgrade-tar.sh: `tar --sort=name --owner=0 --group=0 --numeric-owner`;
//!    CONTROL holds `BOARD=<board>`; a squashfs root is padded to 1 KiB);
//! 2. then fwtool's metadata block (package/system/fwtool): an 8-byte header
//!    (version 0, flags 0), the JSON metadata, and a 16-byte big-endian trailer
//!    `"FWx0"`, CRC, type 1 (info), size of header + JSON + trailer. The CRC is
//!    fwtool's running CRC-32 register (reflected polynomial 0xedb88320, initial
//!    0xffffffff, *no* final inversion) over everything before the trailer.
//!
//! A device's `sysupgrade` reads the JSON (`supported_devices`, `compat_version`)
//! to refuse an image built for another board; [`read_metadata`] does the same
//! check of structure and CRC.

use serde::{Deserialize, Serialize};
use std::io;

/// `FWIMAGE_MAGIC`: "FWx0".
pub const FWIMAGE_MAGIC: u32 = 0x4657_7830;
/// `FWIMAGE_INFO`: the trailer of a metadata block.
pub const FWIMAGE_INFO: u8 = 1;
/// `FWIMAGE_SIGNATURE`.
pub const FWIMAGE_SIGNATURE: u8 = 0;
/// fwtool's `METADATA_MAXLEN`.
pub const METADATA_MAXLEN: usize = 30 * 1024;
/// Size of `struct fwimage_trailer`.
pub const TRAILER_LEN: usize = 16;
/// Size of `struct fwimage_header`.
pub const HEADER_LEN: usize = 8;

/// The JSON metadata (include/image-commands.mk `metadata_json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Always "1.1".
    pub metadata_version: String,
    /// Compatibility version of the image's configuration format.
    pub compat_version: String,
    /// Board names this image may be flashed on.
    pub supported_devices: Vec<String>,
    /// Build identification.
    pub version: Version,
}

/// The `version` object of the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Distribution name ("braid").
    pub dist: String,
    /// Release version.
    pub version: String,
    /// Source revision.
    pub revision: String,
    /// Target (CPU) name.
    pub target: String,
    /// Board name.
    pub board: String,
}

/// Why metadata could not be appended or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SysupgradeError {
    /// The metadata exceeds fwtool's limit.
    #[error("metadata is {0} bytes, fwtool accepts at most {METADATA_MAXLEN}")]
    TooLarge(usize),
    /// No trailer.
    #[error("no fwtool trailer (magic FWx0) at the end")]
    NoTrailer,
    /// Trailer CRC mismatch.
    #[error("fwtool trailer CRC {found:#010x}, computed {computed:#010x}")]
    Crc {
        /// In the trailer.
        found: u32,
        /// Computed.
        computed: u32,
    },
    /// The trailer's size field does not fit the image.
    #[error("fwtool trailer size {0} does not fit the image")]
    BadSize(u32),
    /// The metadata block is not version 0 JSON of the expected shape.
    #[error("metadata: {0}")]
    BadMetadata(String),
}

/// fwtool's CRC: the CRC-32 register without the final inversion.
pub fn fwtool_crc(data: &[u8]) -> u32 {
    !crate::crc32(data)
}

/// Writes the sysupgrade tar for `board` (OpenWrt's board name with `,` → `_`).
pub fn tar(board: &str, kernel: &[u8], root: Option<&[u8]>, mtime: u64) -> io::Result<Vec<u8>> {
    let dir = format!("sysupgrade-{}", board.replace(',', "_"));
    let mut b = tar::Builder::new(Vec::new());
    let header =
        |path: &str, size: u64, mode: u32, kind: tar::EntryType| -> io::Result<tar::Header> {
            let mut h = tar::Header::new_gnu();
            h.set_path(path)?;
            h.set_size(size);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(mtime);
            h.set_entry_type(kind);
            h.set_cksum();
            Ok(h)
        };
    b.append(
        &header(&format!("{dir}/"), 0, 0o755, tar::EntryType::Directory)?,
        io::empty(),
    )?;
    let control = format!("BOARD={board}\n");
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("CONTROL", control.into_bytes()),
        ("kernel", kernel.to_vec()),
    ];
    if let Some(root) = root {
        let mut padded = root.to_vec();
        padded.resize(root.len().div_ceil(1024) * 1024, 0);
        files.push(("root", padded));
    }
    for (name, data) in files {
        let h = header(
            &format!("{dir}/{name}"),
            data.len() as u64,
            0o644,
            tar::EntryType::Regular,
        )?;
        b.append(&h, &data[..])?;
    }
    b.into_inner()
}

/// Appends fwtool's metadata block (as `fwtool -I metadata.json image` does).
pub fn append_metadata(image: &mut Vec<u8>, json: &[u8]) -> Result<(), SysupgradeError> {
    if json.len() > METADATA_MAXLEN {
        return Err(SysupgradeError::TooLarge(json.len()));
    }
    image.extend_from_slice(&[0u8; HEADER_LEN]); // version 0, flags 0
    image.extend_from_slice(json);
    let crc = fwtool_crc(image);
    let size = (HEADER_LEN + json.len() + TRAILER_LEN) as u32;
    image.extend_from_slice(&FWIMAGE_MAGIC.to_be_bytes());
    image.extend_from_slice(&crc.to_be_bytes());
    image.extend_from_slice(&[FWIMAGE_INFO, 0, 0, 0]);
    image.extend_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Finds and checks the metadata block: returns the parsed metadata and the length
/// of the firmware in front of it (the tar). Signature blocks after it are skipped,
/// as fwtool does.
pub fn read_metadata(image: &[u8]) -> Result<(Metadata, usize), SysupgradeError> {
    let mut end = image.len();
    loop {
        let t = image
            .get(
                end.checked_sub(TRAILER_LEN)
                    .ok_or(SysupgradeError::NoTrailer)?..end,
            )
            .ok_or(SysupgradeError::NoTrailer)?;
        let be = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
        if be(0) != FWIMAGE_MAGIC {
            return Err(SysupgradeError::NoTrailer);
        }
        let size = be(12);
        let computed = fwtool_crc(&image[..end - TRAILER_LEN]);
        if computed != be(4) {
            return Err(SysupgradeError::Crc {
                found: be(4),
                computed,
            });
        }
        let start = end
            .checked_sub(size as usize)
            .filter(|_| size as usize >= TRAILER_LEN)
            .ok_or(SysupgradeError::BadSize(size))?;
        match t[8] {
            FWIMAGE_INFO => {
                let block = &image[start..end - TRAILER_LEN];
                let (hdr, json) = block
                    .split_at_checked(HEADER_LEN)
                    .ok_or(SysupgradeError::BadSize(size))?;
                if hdr[..4] != [0, 0, 0, 0] {
                    return Err(SysupgradeError::BadMetadata(
                        "header version is not 0".into(),
                    ));
                }
                let meta: Metadata = serde_json::from_slice(json)
                    .map_err(|e| SysupgradeError::BadMetadata(e.to_string()))?;
                return Ok((meta, start));
            }
            _ => end = start,
        }
    }
}

#[cfg(test)]
mod tests;
