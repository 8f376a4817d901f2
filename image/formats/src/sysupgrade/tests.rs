//! The sysupgrade layout checked by GNU tar, and the fwtool trailer checked by a
//! second, independent CRC implementation (bitwise, straight from fwtool's
//! crc32.h) and by Python's zlib.

use super::*;

fn metadata() -> Metadata {
    Metadata {
        metadata_version: "1.1".into(),
        compat_version: "1.0".into(),
        supported_devices: vec!["tplink,archer-c7-v2".into(), "archer-c7".into()],
        version: Version {
            dist: "braid".into(),
            version: "0.1.0".into(),
            revision: "abc1234".into(),
            target: "mips".into(),
            board: "tplink-archer-c7-v2".into(),
        },
    }
}

fn image() -> Vec<u8> {
    let mut img = tar(
        "tplink,archer-c7-v2",
        &[0xaa; 3000],
        Some(&[0xbb; 1500]),
        1_700_000_000,
    )
    .unwrap();
    append_metadata(&mut img, &serde_json::to_vec(&metadata()).unwrap()).unwrap();
    img
}

/// fwtool's crc32_block with crc32_filltable, bit by bit: independent of crc32fast.
fn fwtool_crc_bitwise(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[test]
fn trailer_layout_and_crc_recomputed_independently() {
    let img = image();
    let t = &img[img.len() - 16..];
    assert_eq!(&t[0..4], b"FWx0");
    assert_eq!(t[8], 1, "FWIMAGE_INFO");
    assert_eq!(&t[9..12], &[0, 0, 0]);
    let json = serde_json::to_vec(&metadata()).unwrap();
    let size = u32::from_be_bytes(t[12..16].try_into().unwrap()) as usize;
    assert_eq!(size, 8 + json.len() + 16);
    let crc = u32::from_be_bytes(t[4..8].try_into().unwrap());
    assert_eq!(crc, fwtool_crc_bitwise(&img[..img.len() - 16]));
    assert_eq!(
        &img[img.len() - size..img.len() - size + 8],
        &[0; 8],
        "fwimage_header: version 0, flags 0"
    );
    let (meta, tar_len) = read_metadata(&img).unwrap();
    assert_eq!(meta, metadata());
    assert_eq!(tar_len, img.len() - size);
}

#[test]
fn python_zlib_agrees_on_the_crc() {
    let img = image();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sysupgrade.bin");
    std::fs::write(&f, &img).unwrap();
    // zlib's crc32 includes the final inversion; fwtool's register does not.
    let script = "import sys,zlib,struct\nd=open(sys.argv[1],'rb').read()\n\
                  m,c,t,s=struct.unpack('>IIB3xI',d[-16:])\n\
                  assert m==0x46577830 and t==1\n\
                  print(c==(zlib.crc32(d[:-16])^0xffffffff))";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn corrupt_or_missing_trailers_are_refused() {
    let img = image();
    let mut bad = img.clone();
    bad[100] ^= 1;
    assert!(matches!(
        read_metadata(&bad),
        Err(SysupgradeError::Crc { .. })
    ));
    assert_eq!(
        read_metadata(&img[..img.len() - 1]).unwrap_err(),
        SysupgradeError::NoTrailer
    );
    assert_eq!(
        read_metadata(b"short").unwrap_err(),
        SysupgradeError::NoTrailer
    );
    let mut big = Vec::new();
    assert_eq!(
        append_metadata(&mut big, &[b' '; METADATA_MAXLEN + 1]),
        Err(SysupgradeError::TooLarge(METADATA_MAXLEN + 1))
    );
}

/// GNU tar lists the OpenWrt layout: the directory, then CONTROL, kernel, root, owned
/// by 0/0, with the root padded to 1 KiB; the metadata after the tar is ignored.
#[test]
fn gnu_tar_shows_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sysupgrade.bin");
    std::fs::write(&f, image()).unwrap();
    let out = std::process::Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&f)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let got: Vec<(&str, &str, &str, &str)> =
        lines.iter().map(|l| (l[0], l[1], l[2], l[5])).collect();
    assert_eq!(
        got,
        [
            ("drwxr-xr-x", "0/0", "0", "sysupgrade-tplink_archer-c7-v2/"),
            (
                "-rw-r--r--",
                "0/0",
                "26",
                "sysupgrade-tplink_archer-c7-v2/CONTROL"
            ),
            (
                "-rw-r--r--",
                "0/0",
                "3000",
                "sysupgrade-tplink_archer-c7-v2/kernel"
            ),
            (
                "-rw-r--r--",
                "0/0",
                "2048",
                "sysupgrade-tplink_archer-c7-v2/root"
            ),
        ],
        "{text}"
    );
    let control = std::process::Command::new("tar")
        .args(["-xOf"])
        .arg(&f)
        .arg("sysupgrade-tplink_archer-c7-v2/CONTROL")
        .output()
        .unwrap();
    assert_eq!(control.stdout, b"BOARD=tplink,archer-c7-v2\n");
}

#[test]
fn reproducible() {
    assert_eq!(image(), image());
}
