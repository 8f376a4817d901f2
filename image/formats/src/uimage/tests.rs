//! Vectors, round trips, corruption, and U-Boot's own tools reading our images.

use super::*;

fn header() -> Header {
    Header {
        arch: Arch::Mips,
        kind: Kind::Kernel,
        comp: Comp::Gzip,
        load: 0x8010_0000,
        entry: 0x804c_bd78,
        time: 1_700_000_000,
        name: "braid qemu-malta-le".into(),
    }
}

#[test]
fn header_bytes() {
    let img = write(&header(), b"payload").unwrap();
    assert_eq!(img.len(), 64 + 7);
    assert_eq!(&img[0..4], &[0x27, 0x05, 0x19, 0x56]);
    assert_eq!(&img[8..12], &1_700_000_000u32.to_be_bytes());
    assert_eq!(&img[12..16], &[0, 0, 0, 7]);
    assert_eq!(&img[16..20], &[0x80, 0x10, 0x00, 0x00]);
    assert_eq!(&img[20..24], &[0x80, 0x4c, 0xbd, 0x78]);
    // zlib's CRC-32 of "payload".
    assert_eq!(&img[24..28], &0x422c_6a15u32.to_be_bytes());
    assert_eq!(&img[28..32], &[5, 5, 2, 1], "linux, mips, kernel, gzip");
    assert_eq!(&img[32..51], b"braid qemu-malta-le");
    assert!(img[51..64].iter().all(|&b| b == 0));
}

#[test]
fn roundtrip_and_corruption() {
    let img = write(&header(), &[7; 1000]).unwrap();
    let (h, data) = parse(&img).unwrap();
    assert_eq!(h, header());
    assert_eq!(data, &[7; 1000]);
    let mut bad = img.clone();
    bad[70] ^= 1;
    assert!(matches!(parse(&bad), Err(UImageError::DataCrc { .. })));
    let mut bad = img.clone();
    bad[18] ^= 1;
    assert!(matches!(parse(&bad), Err(UImageError::HeaderCrc { .. })));
    assert!(matches!(
        parse(&img[..500]),
        Err(UImageError::Truncated {
            len: 500,
            need: 1064
        })
    ));
    assert!(matches!(
        parse(&img[..10]),
        Err(UImageError::Truncated { .. })
    ));
    assert_eq!(parse(&[0; 64]).unwrap_err(), UImageError::BadMagic(0));
    let long = Header {
        name: "x".repeat(32),
        ..header()
    };
    assert!(matches!(
        write(&long, b""),
        Err(UImageError::NameTooLong(_))
    ));
}

fn tool(name: &str, args: &[&str], file: &std::path::Path) -> String {
    let out = std::process::Command::new(name)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("{name} runs (Debian package u-boot-tools; ci/setup installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// mkimage -l and dumpimage -l (U-Boot's tools, independent readers) accept the
/// image and report our arch, load address and entry point.
#[test]
fn u_boot_tools_accept_it() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, name) in [
        (Arch::Mips, "MIPS"),
        (Arch::Ppc, "PowerPC"),
        (Arch::Arm, "ARM"),
        (Arch::Arm64, "AArch64"),
    ] {
        let f = dir.path().join("k.uimage");
        std::fs::write(&f, write(&Header { arch, ..header() }, &[1; 4096]).unwrap()).unwrap();
        for text in [tool("mkimage", &["-l"], &f), tool("dumpimage", &["-l"], &f)] {
            assert!(text.contains("Image Name:   braid qemu-malta-le"), "{text}");
            assert!(
                text.contains(&format!(
                    "Image Type:   {name} Linux Kernel Image (gzip compressed)"
                )),
                "{text}"
            );
            assert!(text.contains("Load Address: 80100000"), "{text}");
            assert!(text.contains("Entry Point:  804cbd78"), "{text}");
            assert!(text.contains("Data Size:    4096 Bytes"), "{text}");
        }
    }
}
