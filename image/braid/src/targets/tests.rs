//! Loading the real targets/ directory, and the errors for bad files.

use super::*;

const GOOD: &str = r#"
description = "test CPU"
[rust]
triple = "mips-unknown-linux-musl"
build_std = true
[cc]
zig_target = "mips-linux-musleabi"
[elf]
class = 32
endian = "big"
machine = "MIPS"
[qemu]
user = "qemu-mips-static"
cpu = "24Kc"
package = "qemu-user-static"
[kernel]
arch = "mips"
cross_compile = "mips-linux-gnu-"
package = "gcc-mips-linux-gnu"
"#;

fn err(text: &str) -> String {
    parse(Path::new("targets/bad.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn the_repository_targets_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../targets");
    let targets = load_dir(&dir).unwrap();
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "aarch64",
            "armv7",
            "mips",
            "mipsel",
            "powerpc-e500",
            "x86_64"
        ]
    );
    let mips = find(&targets, "mips").unwrap();
    assert_eq!(mips.triple, "mips-unknown-linux-musl");
    assert!(mips.build_std);
    assert_eq!(mips.elf.endian, Endian::Big);
    assert_eq!(mips.elf.to_string(), "ELF 32-bit MSB MIPS");
    let ppc = find(&targets, "powerpc-e500").unwrap();
    assert!(ppc.rustflags.iter().any(|f| f == "target-cpu=e500"));
    assert_eq!(ppc.qemu.cpu, "e500v2");
}

#[test]
fn good_file_parses() {
    let t = parse(Path::new("targets/test-cpu.toml"), GOOD).unwrap();
    assert_eq!(t.name, "test-cpu");
    assert!(t.rustflags.is_empty());
    assert_eq!(t.kernel.cross_compile, "mips-linux-gnu-");
}

#[test]
fn unknown_target_lists_known_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../targets");
    let targets = load_dir(&dir).unwrap();
    let e = find(&targets, "sparc").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown target `sparc`; known targets: aarch64, armv7, mips, mipsel, powerpc-e500, x86_64"
    );
}

#[test]
fn unknown_field_is_named_with_file_and_line() {
    let e = err(&GOOD.replace("build_std = true", "build_std = true\nbuild_sdt = false"));
    assert!(e.starts_with("targets/bad.toml: "), "{e}");
    assert!(e.contains("unknown field `build_sdt`"), "{e}");
    assert!(e.contains("line 6"), "{e}");
}

#[test]
fn missing_field_is_named() {
    let e = err(&GOOD.replace("triple = \"mips-unknown-linux-musl\"\n", ""));
    assert!(
        e.contains("targets/bad.toml") && e.contains("missing field `triple`"),
        "{e}"
    );
}

#[test]
fn wrong_type_is_named() {
    let e = err(&GOOD.replace("build_std = true", "build_std = \"yes\""));
    assert!(
        e.contains("targets/bad.toml") && e.contains("build_std"),
        "{e}"
    );
}

#[test]
fn invalid_values_name_field_and_valid_values() {
    let e = err(&GOOD.replace("class = 32", "class = 16"));
    assert_eq!(
        e,
        "targets/bad.toml: field `elf.class`: 16; valid values are 32 and 64"
    );
    let e = err(&GOOD.replace("machine = \"MIPS\"", "machine = \"Sparc\""));
    assert!(
        e.contains("field `elf.machine`: `Sparc`; valid values are \"MIPS\""),
        "{e}"
    );
    let e = err(&GOOD.replace("endian = \"big\"", "endian = \"middle\""));
    assert!(
        e.contains("unknown variant `middle`, expected `big` or `little`"),
        "{e}"
    );
    let e = err(&GOOD.replace("mips-unknown-linux-musl", "mips"));
    assert!(
        e.contains("field `rust.triple`: `mips` is not a target triple"),
        "{e}"
    );
    let e = err(&GOOD.replace("mips-unknown-linux-musl", "mips-unknown-none-elf"));
    assert!(e.contains("is not a Linux target"), "{e}");
    let e = err(&GOOD.replace("mips-linux-musleabi", "mips-linux-gnu"));
    assert!(e.contains("field `cc.zig_target`"), "{e}");
    let e = err(&GOOD.replace("cpu = \"24Kc\"", "cpu = \" \""));
    assert!(e.contains("field `qemu.cpu`: must not be empty"), "{e}");
}

#[test]
fn empty_and_missing_directories() {
    let dir = std::env::temp_dir().join(format!("braid-empty-targets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = load_dir(&dir).unwrap_err().to_string();
    assert!(e.ends_with("no target files (*.toml)"), "{e}");
    std::fs::remove_dir(&dir).unwrap();
    let e = load_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("No such file"), "{e}");
}

/// Cross.toml (for `cross` users, untestable here) must not drift from targets/.
#[test]
fn cross_toml_mirrors_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cross: toml::Table = std::fs::read_to_string(root.join("Cross.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let sections = cross["target"].as_table().unwrap();
    for t in load_dir(&root.join("targets")).unwrap() {
        let section = sections
            .get(&t.triple)
            .unwrap_or_else(|| panic!("Cross.toml has no [target.{}]", t.triple));
        assert_eq!(
            section["build-std"].as_bool(),
            Some(t.build_std),
            "Cross.toml build-std for {}",
            t.triple
        );
    }
}
