//! A board's images, read back by third-party tools: U-Boot's mkimage and
//! dumpimage report the board's architecture, load address and entry point;
//! unsquashfs lists the root file system; GNU tar shows the sysupgrade layout; an
//! independent CRC (Python's zlib) checks the fwtool trailer; and two builds from
//! the same inputs are byte-identical.
//!
//! Each test builds a kernel (minutes on a cold cache), so they are ignored by a
//! plain `cargo test`; ci/test runs them by name with `--ignored`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn braid_build(board: &str, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["build", "--board", board])
        .env("BRAID_OUT", out)
        .output()
        .expect("run braid build");
    assert!(
        o.status.success(),
        "braid build --board {board} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn run(tool: &str, args: &[&str], file: &Path) -> String {
    let o = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs (ci/setup installs it): {e}"));
    assert!(
        o.status.success(),
        "{tool} {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Expect {
    board: &'static str,
    /// How mkimage names the architecture ("MIPS", "PowerPC", ...).
    arch: &'static str,
    fit: bool,
    compression: &'static str,
    load: u32,
    sysupgrade: bool,
    compatible: &'static str,
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn check(e: &Expect) {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    braid_build(e.board, &a);
    let dir: PathBuf = a.join(e.board);
    let m = manifest(&dir);
    let entry = m["kernel"]["entry"].as_u64().unwrap() as u32;

    let kernel = dir.join(format!("braid-{}-initramfs-kernel.bin", e.board));
    for tool in ["mkimage", "dumpimage"] {
        let text = run(tool, &["-l"], &kernel);
        if e.fit {
            assert!(text.contains("Type:         Kernel Image"), "{text}");
            assert!(
                text.contains(&format!("Architecture: {}", e.arch)),
                "{text}"
            );
            assert!(
                text.contains(&format!("Load Address: {:#010x}", e.load)),
                "{text}"
            );
            assert!(
                text.contains(&format!("Entry Point:  {entry:#010x}")),
                "{text}"
            );
            assert!(text.contains("Type:         Flat Device Tree"), "{text}");
        } else {
            assert!(
                text.contains(&format!(
                    "Image Type:   {} Linux Kernel Image ({})",
                    e.arch, e.compression
                )),
                "{text}"
            );
            assert!(
                text.contains(&format!("Load Address: {:08x}", e.load)),
                "{text}"
            );
            assert!(
                text.contains(&format!("Entry Point:  {entry:08x}")),
                "{text}"
            );
        }
    }

    if e.sysupgrade {
        let root = dir.join(format!("braid-{}-rootfs.squashfs", e.board));
        let listing = run("unsquashfs", &["-lln", "-no-progress"], &root);
        for want in [
            "squashfs-root/sbin/braidd",
            "squashfs-root/init -> sbin/braidd",
            "squashfs-root/sbin/init -> braidd",
            "squashfs-root/etc/braid/board",
            "squashfs-root/dev/console",
        ] {
            assert!(
                listing.lines().any(|l| l.ends_with(want)),
                "{want} missing:\n{listing}"
            );
        }
        let su = dir.join(format!("braid-{}-squashfs-sysupgrade.bin", e.board));
        let tar = run("tar", &["--numeric-owner", "-tvf"], &su);
        let names: Vec<&str> = tar
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        let d = format!("sysupgrade-{}", e.board);
        assert_eq!(
            names,
            [
                format!("{d}/"),
                format!("{d}/CONTROL"),
                format!("{d}/kernel"),
                format!("{d}/root")
            ],
            "{tar}"
        );
        // An independent check of the fwtool trailer and its metadata.
        let py = "import sys,zlib,struct,json\nd=open(sys.argv[1],'rb').read()\n\
                  m,c,t,s=struct.unpack('>IIB3xI',d[-16:])\n\
                  assert m==0x46577830 and t==1, 'trailer'\n\
                  assert c==zlib.crc32(d[:-16])^0xffffffff, 'crc'\n\
                  meta=json.loads(d[-s+8:-16])\n\
                  print(meta['supported_devices'][0], meta['version']['board'])";
        let o = Command::new("python3")
            .arg("-c")
            .arg(py)
            .arg(&su)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            format!("{} {}", e.compatible, e.board)
        );
        // The kernel inside the tar is the flash kernel, byte for byte.
        let inner = Command::new("tar")
            .arg("-xOf")
            .arg(&su)
            .arg(format!("{d}/kernel"))
            .output()
            .unwrap();
        assert_eq!(
            inner.stdout,
            std::fs::read(dir.join(format!("braid-{}-kernel.bin", e.board))).unwrap()
        );
    }

    // Reproducible: a second build into another directory gives the same bytes.
    braid_build(e.board, &b);
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = f.file_name();
        let other = b.join(e.board).join(&name);
        assert!(
            std::fs::read(f.path()).unwrap() == std::fs::read(&other).unwrap(),
            "{} differs between two builds",
            name.to_string_lossy()
        );
    }
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn images_qemu_malta_le() {
    check(&Expect {
        board: "qemu-malta-le",
        arch: "MIPS",
        fit: false,
        compression: "gzip compressed",
        load: 0x8010_0000,
        sysupgrade: true,
        compatible: "qemu,malta-le",
    });
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn images_tplink_archer_c7_v2() {
    check(&Expect {
        board: "tplink-archer-c7-v2",
        arch: "MIPS",
        fit: false,
        compression: "lzma compressed",
        load: 0x8006_0000,
        sysupgrade: true,
        compatible: "tplink,archer-c7-v2",
    });
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn images_tplink_tl_wdr4900_v1() {
    check(&Expect {
        board: "tplink-tl-wdr4900-v1",
        arch: "PowerPC",
        fit: true,
        compression: "gzip compressed",
        load: 0,
        sysupgrade: true,
        compatible: "tplink,tl-wdr4900-v1",
    });
}

#[test]
#[ignore = "builds a kernel; ci/test runs it"]
fn images_ubnt_edgerouter_x() {
    check(&Expect {
        board: "ubnt-edgerouter-x",
        arch: "MIPS",
        fit: false,
        compression: "lzma compressed",
        load: 0x8000_1000,
        sysupgrade: true,
        compatible: "ubnt,edgerouter-x",
    });
}
