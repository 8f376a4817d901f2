//! The repository's boards, and every kind of bad board file.

use super::*;
use crate::targets;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn all_targets() -> Vec<Target> {
    targets::load_dir(&repo().join("targets")).unwrap()
}

#[test]
fn every_repository_board_loads() {
    let dir = repo().join("board");
    let names = list(&dir).unwrap();
    assert_eq!(
        names,
        [
            "qemu-arm64virt",
            "qemu-armvirt",
            "qemu-malta-be",
            "qemu-malta-le",
            "qemu-ppce500",
            "tplink-archer-c7-v2",
            "tplink-tl-wdr4900-v1",
            "ubnt-edgerouter-x"
        ]
    );
    let targets = all_targets();
    for name in &names {
        let b = load(&dir, name, &targets).unwrap_or_else(|e| panic!("{e}"));
        assert!(!b.compatible.is_empty());
        assert!(b.kernel.fragments.iter().all(|f| f.is_file()));
    }
    let malta = load(&dir, "qemu-malta-le", &targets).unwrap();
    assert_eq!(malta.target, "mipsel");
    assert_eq!(malta.kernel.entry, Entry::Symbol("kernel_entry".into()));
    assert_eq!(malta.kernel.load_addr, 0x8010_0000);
    assert_eq!(malta.kernel.config, ["CONFIG_CPU_LITTLE_ENDIAN=y"]);
    assert_eq!(malta.chain.len(), 2, "inherits family/qemu-malta");
    let flash = malta.flash.as_ref().unwrap();
    assert_eq!(flash.partition("firmware").unwrap().size, 0x2e_0000);
    assert_eq!(malta.qemu().unwrap().system, "qemu-system-mipsel");
    let erx = load(&dir, "ubnt-edgerouter-x", &targets).unwrap();
    assert_eq!(erx.console.baud, 57600, "the child overrides the family");
    assert!(matches!(erx.hardware, Hardware::Real { verified: false }));
}

/// A scratch board/ directory.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Self {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("family")).unwrap();
        std::fs::create_dir_all(d.path().join("kernel")).unwrap();
        std::fs::write(d.path().join("kernel/x.config"), "CONFIG_NET=y\n").unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        Dir(d)
    }
    fn load(&self, name: &str) -> Result<Board, BoardError> {
        load(self.0.path(), name, &all_targets())
    }
    fn err(&self, name: &str) -> String {
        self.load(name).unwrap_err().to_string()
    }
}

const FAMILY: &str = r#"
abstract = true
vendor = "Test"
ram = "64M"
images = ["initramfs", "sysupgrade"]
[kernel]
base = "tinyconfig"
fragments = ["kernel/x.config"]
artifact = "vmlinux.bin"
format = "uimage"
compression = "gzip"
load_addr = 0x80060000
entry = "kernel_entry"
[console]
device = "ttyS0"
baud = 115200
[flash]
kind = "nor"
size = "8M"
erase_block = "64k"
kernel_partition = "firmware"
rootfs_partition = "firmware"
partitions = [
    { name = "u-boot", offset = 0x0, size = 0x20000, read_only = true },
    { name = "firmware", offset = 0x20000, size = 0x7d0000 },
    { name = "art", offset = 0x7f0000, size = 0x10000, read_only = true },
]
"#;

const BOARD: &str = r#"
inherit = "family/f"
model = "One"
target = "mips"
compatible = ["test,one"]
verified_on_hardware = false
"#;

fn with_family(family: &str, board: &str) -> Dir {
    Dir::new(&[("family/f.toml", family), ("one.toml", board)])
}

#[test]
fn a_good_scratch_board_loads() {
    let d = with_family(FAMILY, BOARD);
    let b = d.load("one").unwrap();
    assert_eq!(b.ram, 64 << 20);
    assert_eq!(
        list(d.0.path()).unwrap(),
        ["one"],
        "abstract families are not boards"
    );
}

#[test]
fn unknown_board_lists_the_known_ones() {
    let d = with_family(FAMILY, BOARD);
    assert_eq!(d.err("two"), "unknown board `two`; known boards: one");
}

#[test]
fn unknown_field_names_file_and_line() {
    let d = with_family(FAMILY, &format!("{BOARD}colour = \"blue\"\n"));
    let e = d.err("one");
    assert!(
        e.contains("one.toml") && e.contains("unknown field `colour`") && e.contains("line 7"),
        "{e}"
    );
    // ... also in an inherited file, named as that file.
    let d = with_family(
        &FAMILY.replace("[console]", "[console]\nparity = \"none\""),
        BOARD,
    );
    let e = d.err("one");
    assert!(
        e.contains("family/f.toml") && e.contains("unknown field `parity`"),
        "{e}"
    );
}

#[test]
fn overlapping_partitions_are_named_with_the_overlap() {
    let d = with_family(&FAMILY.replace("size = 0x7d0000", "size = 0x7e0000"), BOARD);
    assert_eq!(
        d.err("one"),
        format!(
            "{}: field `flash.partitions`: `firmware` (0x20000..0x800000) and `art` (0x7f0000..0x800000) overlap by 65536 bytes",
            d.0.path().join("one.toml").display()
        )
    );
}

#[test]
fn partition_past_the_end_and_misaligned() {
    let d = with_family(&FAMILY.replace("size = \"8M\"", "size = \"4M\""), BOARD);
    let e = d.err("one");
    assert!(
        e.contains("flash.partitions.firmware") && e.contains("bytes past its end"),
        "{e}"
    );
    let d = with_family(&FAMILY.replace("size = 0x7d0000", "size = 0x7cf000"), BOARD);
    assert!(d
        .err("one")
        .contains("must be multiples of the erase block"));
}

#[test]
fn missing_and_invalid_fields() {
    let d = with_family(&FAMILY.replace("load_addr = 0x80060000\n", ""), BOARD);
    let e = d.err("one");
    assert!(e.contains("field `kernel.load_addr`: missing"), "{e}");
    let d = with_family(FAMILY, &BOARD.replace("\"mips\"", "\"sparc\""));
    assert!(d
        .err("one")
        .contains("`sparc` is not in targets/; known targets: aarch64"));
    let d = with_family(&FAMILY.replace("\"gzip\"", "\"zstd\""), BOARD);
    assert!(d.err("one").contains(
        "field `kernel.compression`: `zstd`; valid values are \"none\", \"gzip\", \"lzma\""
    ));
    let d = with_family(&FAMILY.replace("baud = 115200", "baud = 115201"), BOARD);
    assert!(d
        .err("one")
        .contains("field `console.baud`: 115201; valid rates"));
    let d = with_family(
        &FAMILY.replace("\"kernel/x.config\"", "\"kernel/y.config\""),
        BOARD,
    );
    assert!(d
        .err("one")
        .contains("field `kernel.fragments`: `kernel/y.config`: no file"));
    let d = with_family(FAMILY, &BOARD.replace("verified_on_hardware = false\n", ""));
    assert!(d
        .err("one")
        .contains("field `verified_on_hardware`: missing"));
    let d = with_family(
        &FAMILY.replace(
            "kernel_partition = \"firmware\"",
            "kernel_partition = \"art\"",
        ),
        BOARD,
    );
    assert!(d.err("one").contains("`art` is read-only"));
}

#[test]
fn inheritance_cycles_and_missing_parents() {
    let d = Dir::new(&[
        ("family/a.toml", "inherit = \"family/b\"\nabstract = true\n"),
        ("family/b.toml", "inherit = \"family/a\"\nabstract = true\n"),
        ("one.toml", "inherit = \"family/a\"\n"),
    ]);
    assert!(
        d.err("one").contains("inheritance cycle"),
        "{}",
        d.err("one")
    );
    let d = Dir::new(&[("one.toml", "inherit = \"family/nope\"\n")]);
    assert!(d
        .err("one")
        .contains("field `inherit`: `family/nope`: no file"));
}
