//! The `braid` command's errors, as a user sees them: each names what is wrong and
//! what would be valid or how to fix it, and exits with status 2.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn braid(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_braid"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run braid")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A throwaway checkout holding only a targets/ directory with `files`.
fn fake_root(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\n").expect("write");
    std::fs::create_dir(dir.path().join("targets")).expect("mkdir");
    for (name, text) in files {
        std::fs::write(dir.path().join("targets").join(name), text).expect("write");
    }
    dir
}

const X86: &str = r#"
description = "test"
[rust]
triple = "x86_64-unknown-linux-musl"
build_std = false
[cc]
zig_target = "x86_64-linux-musl"
[elf]
class = 64
endian = "little"
machine = "x86-64"
[qemu]
user = "qemu-nonexistent-static"
cpu = "max"
package = "qemu-user-static"
[kernel]
arch = "x86"
cross_compile = "x86_64-linux-gnu-"
package = "gcc"
"#;

#[test]
fn targets_lists_every_file() {
    let o = braid(&["targets"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in [
        "aarch64",
        "armv7",
        "mips",
        "mipsel",
        "powerpc-e500",
        "x86_64",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(name)),
            "{name} missing in:\n{out}"
        );
    }
    assert!(out.contains("mips-unknown-linux-musl") && out.contains("ELF 32-bit MSB MIPS"));
}

#[test]
fn unknown_target_lists_the_known_ones() {
    let o = braid(&["daemon", "--target", "sparc"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "unknown target `sparc`; known targets: aarch64, armv7, mips, mipsel, powerpc-e500, x86_64"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_target_file_names_file_and_field() {
    let root = fake_root(&[(
        "bad.toml",
        &X86.replace("build_std = false", "build_std = 3"),
    )]);
    let o = braid(
        &["targets"],
        &[("BRAID_ROOT", root.path().to_str().unwrap_or_default())],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("targets/bad.toml"), "{e}");
    assert!(e.contains("build_std") && e.contains("line 5"), "{e}");

    let root = fake_root(&[("bad.toml", &X86.replace("class = 64", "class = 65"))]);
    let o = braid(
        &["targets"],
        &[("BRAID_ROOT", root.path().to_str().unwrap_or_default())],
    );
    assert!(
        stderr(&o).contains("bad.toml: field `elf.class`: 65; valid values are 32 and 64"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_zig_names_the_package() {
    let o = braid(
        &["daemon", "--target", "mips"],
        &[("BRAID_ZIG", "/nonexistent/zig")],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("zig not found (looked at BRAID_ZIG=/nonexistent/zig)"),
        "{e}"
    );
    assert!(
        e.contains("PyPI package ziglang") && e.contains("ci/setup installs it"),
        "{e}"
    );
}

#[test]
fn missing_qemu_names_the_debian_package() {
    let root = fake_root(&[("fake.toml", X86)]);
    let o = braid(
        &["cargo", "--target", "fake", "test"],
        &[
            ("BRAID_ROOT", root.path().to_str().unwrap_or_default()),
            ("BRAID_ZIG", "/bin/true"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("qemu-nonexistent-static not found")
            && e.contains("Install the Debian package qemu-user-static (ci/setup installs it)"),
        "{e}"
    );
}

#[test]
fn env_prints_the_cross_environment() {
    let o = braid(&["env", "--target", "mips"], &[("BRAID_ZIG", "/bin/true")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let wrapper = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../targets/zig-cc")
        .canonicalize()
        .expect("zig-cc exists");
    assert!(
        out.contains(&format!(
            "export CARGO_TARGET_MIPS_UNKNOWN_LINUX_MUSL_LINKER='{}'",
            wrapper.display()
        )),
        "{out}"
    );
    assert!(out.contains("export RUSTC_BOOTSTRAP='1'"), "{out}");
    assert!(
        out.contains("export BRAID_ZIG_TARGET='mips-linux-musleabi'"),
        "{out}"
    );
    assert!(out.contains("-cpu 24Kc'"), "{out}");
    assert!(out.contains("unset RUSTFLAGS"), "{out}");
}
