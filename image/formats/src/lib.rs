//! The formats braid's firmware images are made of, each as a small writer (and,
//! where the router or a test must read it back, a checked reader):
//!
//! * [`tree`]: a file tree (files, directories, symlinks, device nodes) with fixed
//!   owners and times, the input of both root file system writers;
//! * [`cpio`]: the initramfs, as a reproducible cpio "newc" archive;
//! * [`squashfs`]: the root file system for flash, xz-compressed (via backhand);
//! * [`compress`]: gzip and LZMA payloads for U-Boot;
//! * [`uimage`]: U-Boot's legacy image (include/image.h), written and verified;
//! * [`fit`]: U-Boot's Flattened Image Tree with kernel and device tree;
//! * [`sysupgrade`]: OpenWrt's sysupgrade tar and the fwtool metadata trailer.
//!
//! Every writer is deterministic: the same input gives the same bytes, with times
//! taken from the caller (SOURCE_DATE_EPOCH), never from the clock.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod compress;
pub mod cpio;
pub mod fit;
pub mod squashfs;
pub mod sysupgrade;
pub mod tree;
pub mod uimage;

/// CRC-32 as zlib and U-Boot compute it (IEEE 802.3, reflected, final inversion).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}
