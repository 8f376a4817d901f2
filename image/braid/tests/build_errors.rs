//! `braid build` on bad input stops with a message that names the problem, and
//! leaves nothing in the output directory: no images, no staging directory.
//!
//! The tests that need a kernel tree (a Kconfig run, or the cached kernel of
//! qemu-malta-le) are ignored by a plain `cargo test`; ci/test runs them by name.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn braid(args: &[&str], env: &[(&str, &Path)]) -> Output {
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

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The output directory holds no image of `board`, no staging directory and no
/// temporary file: a failed build leaves nothing partial. (A braidd binary, built
/// and checked completely before the failure, may be there.)
fn assert_nothing_partial(out: &Path, board: &str) {
    let prefix = format!("{}/", out.display());
    let left: Vec<String> = walk(out)
        .into_iter()
        .map(|p| p.strip_prefix(&prefix).unwrap_or(&p).to_string())
        .filter(|p| !p.starts_with("braidd/") || p.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "left in the output directory: {left:?}");
    assert!(!out.join(board).exists());
}

fn walk(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p.display().to_string()]
            }
        })
        .collect()
}

/// A copy of the repository's board/ directory, to break one file at a time.
fn boards() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("board"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn unknown_board() {
    let out = tempfile::tempdir().unwrap();
    let o = braid(
        &["build", "--board", "qemu-sparc"],
        &[("BRAID_OUT", out.path())],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown board `qemu-sparc`; known boards: qemu-arm64virt, qemu-armvirt, qemu-malta-be, qemu-malta-le"),
        "{}",
        stderr(&o)
    );
    assert_nothing_partial(out.path(), "qemu-sparc");
}

#[test]
fn unknown_field_in_a_board_file() {
    let (out, b) = (tempfile::tempdir().unwrap(), boards());
    let f = b.path().join("qemu-malta-le.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        text.replace("[kernel]\n", "[kernel]\ncompresion = \"gzip\"\n"),
    )
    .unwrap();
    let o = braid(
        &["build", "--board", "qemu-malta-le"],
        &[("BRAID_OUT", out.path()), ("BRAID_BOARD_DIR", b.path())],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("qemu-malta-le.toml") && e.contains("unknown field `compresion`"),
        "{e}"
    );
    assert!(e.contains("line "), "the line is named: {e}");
    assert_nothing_partial(out.path(), "qemu-malta-le");
}

#[test]
fn overlapping_partitions() {
    let (out, b) = (tempfile::tempdir().unwrap(), boards());
    let f = b.path().join("tplink-archer-c7-v2.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        text.replace(
            "offset = 0x20000, size = 0xfd0000",
            "offset = 0x10000, size = 0xfd0000",
        ),
    )
    .unwrap();
    let o = braid(
        &["build", "--board", "tplink-archer-c7-v2"],
        &[("BRAID_OUT", out.path()), ("BRAID_BOARD_DIR", b.path())],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("tplink-archer-c7-v2.toml: field `flash.partitions`: `u-boot` (0x0..0x20000) and `firmware` (0x10000..0xfe0000) overlap by 65536 bytes"),
        "{e}"
    );
    assert_nothing_partial(out.path(), "tplink-archer-c7-v2");
}

#[test]
fn missing_kernel_source() {
    let out = tempfile::tempdir().unwrap();
    let o = braid(
        &[
            "build",
            "--board",
            "qemu-malta-le",
            "--kernel-source",
            "/nonexistent/linux-6.1",
        ],
        &[("BRAID_OUT", out.path())],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("kernel source /nonexistent/linux-6.1 not found"),
        "{e}"
    );
    assert!(e.contains("--kernel-source takes a kernel tree"), "{e}");
    assert_nothing_partial(out.path(), "qemu-malta-le");
}

/// A fragment asks for MPTCP over IPv6 while the board turns IPv6 off: Kconfig
/// drops MPTCP_IPV6, and the error names it with the unmet dependency.
#[test]
#[ignore = "runs Kconfig on the kernel tree; ci/test runs it"]
fn symbol_dropped_by_kconfig() {
    let (out, b) = (tempfile::tempdir().unwrap(), boards());
    let f = b.path().join("qemu-malta-le.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        text.replace(
            "config = [\"CONFIG_CPU_LITTLE_ENDIAN=y\"]",
            "config = [\"CONFIG_CPU_LITTLE_ENDIAN=y\", \"# CONFIG_IPV6 is not set\"]",
        ),
    )
    .unwrap();
    let o = braid(
        &["build", "--board", "qemu-malta-le"],
        &[("BRAID_OUT", out.path()), ("BRAID_BOARD_DIR", b.path())],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("Kconfig did not keep"), "{e}");
    assert!(
        e.contains("CONFIG_MPTCP_IPV6: requested y (") && e.contains("braid.config:"),
        "{e}"
    );
    assert!(
        e.contains("unmet: net/mptcp/Kconfig:") && e.contains("IPV6=n"),
        "{e}"
    );
    assert_nothing_partial(out.path(), "qemu-malta-le");
}

/// A board whose firmware partition is 1 MiB: the sysupgrade does not fit, and the
/// error says by how many bytes. It shares qemu-malta-le's kernel inputs, so it
/// reuses that cached kernel (ci/test runs it after qemu-malta-le's boot test).
#[test]
#[ignore = "needs qemu-malta-le's kernel in the cache; ci/test runs it"]
fn image_too_large() {
    let (out, b) = (tempfile::tempdir().unwrap(), boards());
    let f = b.path().join("qemu-malta-le.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        format!(
            "{text}\n[flash]\nkind = \"nor\"\nsize = \"4M\"\nerase_block = \"64k\"\nkernel_partition = \"firmware\"\n\
             rootfs_partition = \"firmware\"\npartitions = [\n  {{ name = \"yamon\", offset = 0x0, size = 0x100000, read_only = true }},\n\
             {{ name = \"firmware\", offset = 0x100000, size = 0x100000 }},\n]\n"
        ),
    )
    .unwrap();
    let o = braid(
        &["build", "--board", "qemu-malta-le"],
        &[("BRAID_OUT", out.path()), ("BRAID_BOARD_DIR", b.path())],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("in partition `firmware` (0x100000 (1 MiB))") && e.contains("too large by "),
        "{e}"
    );
    assert_nothing_partial(out.path(), "qemu-malta-le");
}
