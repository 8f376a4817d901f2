//! Compressed kernel payloads for U-Boot: gzip (RFC 1952) and LZMA "alone"
//! (the `.lzma` format of LZMA SDK, which U-Boot's `lzmaBuffToBuffDecompress` and
//! OpenWrt's kernels use). Both are deterministic: no file name or time in the
//! gzip header, and the LZMA header carries the real uncompressed size.

use std::io::{self, Write};

/// gzip at level 9, with no name and mtime 0 in the header.
pub fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    enc.finish()
}

/// LZMA alone, preset 9 with OpenWrt's MIPS parameters (`lzma e -lc1 -lp2 -pb2`:
/// literal context 1, literal position 2, position bits 2, which suit 32-bit
/// instruction streams), dictionary 8 MiB.
pub fn lzma(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut opts = xz2::stream::LzmaOptions::new_preset(9).map_err(io::Error::other)?;
    opts.literal_context_bits(1)
        .literal_position_bits(2)
        .position_bits(2)
        .dict_size(8 << 20);
    let stream = xz2::stream::Stream::new_lzma_encoder(&opts).map_err(io::Error::other)?;
    let mut enc = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
    enc.write_all(data)?;
    let mut out = enc.finish()?;
    // Bytes 5..13 hold the uncompressed size; the streaming encoder writes "unknown"
    // (all ones). Decoders accept either, but a known size lets U-Boot check it.
    out.get_mut(5..13)
        .ok_or_else(|| io::Error::other("LZMA output shorter than its header"))?
        .copy_from_slice(&(data.len() as u64).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn gzip_roundtrip_and_deterministic() {
        let data = sample();
        let z = gzip(&data).unwrap();
        assert_eq!(z, gzip(&data).unwrap());
        assert_eq!(&z[..4], &[0x1f, 0x8b, 8, 0], "gzip, deflate, no flags");
        assert_eq!(&z[4..8], &[0, 0, 0, 0], "mtime 0");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn lzma_header_and_roundtrip() {
        let data = sample();
        let z = lzma(&data).unwrap();
        assert_eq!(z, lzma(&data).unwrap());
        assert_eq!(
            z[0],
            (2 * 5 + 2) * 9 + 1,
            "props byte: (pb * 5 + lp) * 9 + lc"
        );
        assert_eq!(u32::from_le_bytes(z[1..5].try_into().unwrap()), 8 << 20);
        assert_eq!(
            u64::from_le_bytes(z[5..13].try_into().unwrap()),
            data.len() as u64
        );
        let mut back = Vec::new();
        let stream = xz2::stream::Stream::new_lzma_decoder(u64::MAX).unwrap();
        xz2::read::XzDecoder::new_stream(&z[..], stream)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    /// xz-utils, an independent decoder, accepts the `.lzma` file.
    #[test]
    fn xz_utils_decodes_it() {
        let data = sample();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.lzma");
        std::fs::write(&f, lzma(&data).unwrap()).unwrap();
        let out = std::process::Command::new("xz")
            .args(["--format=lzma", "-d", "-c"])
            .arg(&f)
            .output()
            .expect("xz runs (Debian package xz-utils)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, data);
    }
}
