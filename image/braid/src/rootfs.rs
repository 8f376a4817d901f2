//! The root file system: braidd as PID 1, the rootfs/ skeleton, and what the
//! builder generates for the board. One [`Tree`] feeds both the initramfs and the
//! squashfs, so they cannot differ.

use anyhow::{Context, Result};
use std::path::Path;

use braid_formats::tree::{Node, Tree};

use crate::board::Board;

/// What the image's root holds besides the skeleton.
pub struct RootfsInput<'a> {
    /// The board.
    pub board: &'a Board,
    /// The static braidd for the board's CPU.
    pub daemon: &'a [u8],
    /// braid's version.
    pub version: &'a str,
    /// Source revision.
    pub revision: &'a str,
}

/// Assembles the tree from `skeleton` (rootfs/) and the generated files.
pub fn tree(skeleton: &Path, input: &RootfsInput<'_>) -> Result<Tree> {
    let mut t = Tree::new();
    add_skeleton(&mut t, skeleton, skeleton)?;
    let add = |t: &mut Tree, path: &str, node: Node, perm: u16| {
        t.add(path, node, perm)
            .with_context(|| format!("rootfs: cannot add /{path}"))
    };
    add(
        &mut t,
        "sbin/braidd",
        Node::File(input.daemon.to_vec()),
        0o755,
    )?;
    add(&mut t, "init", Node::Symlink("sbin/braidd".into()), 0o777)?;
    add(&mut t, "sbin/init", Node::Symlink("braidd".into()), 0o777)?;
    // Linux's device numbers (Documentation/admin-guide/devices.txt).
    add(
        &mut t,
        "dev/console",
        Node::CharDev { major: 5, minor: 1 },
        0o600,
    )?;
    add(
        &mut t,
        "dev/null",
        Node::CharDev { major: 1, minor: 3 },
        0o666,
    )?;
    for dir in ["proc", "sys", "run"] {
        add(&mut t, dir, Node::Dir, 0o755)?;
    }
    add(&mut t, "tmp", Node::Dir, 0o1777)?;
    let b = input.board;
    add(
        &mut t,
        "etc/braid/board",
        Node::File(format!("{}\n", b.name).into_bytes()),
        0o644,
    )?;
    add(
        &mut t,
        "etc/braid/compatible",
        Node::File(format!("{}\n", b.compatible.join("\n")).into_bytes()),
        0o644,
    )?;
    let os_release = format!(
        "NAME=\"braid\"\nID=braid\nVERSION=\"{}\"\nVERSION_ID={}\nBUILD_ID={}\nBOARD={}\nPRETTY_NAME=\"braid {} ({} {})\"\n",
        input.version, input.version, input.revision, b.name, input.version, b.vendor, b.model
    );
    add(
        &mut t,
        "etc/os-release",
        Node::File(os_release.into_bytes()),
        0o644,
    )?;
    Ok(t)
}

fn add_skeleton(t: &mut Tree, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
        if dir == root && rel == "README.md" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path)?;
        let err = || format!("rootfs skeleton: cannot add {}", path.display());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
            t.add(&rel, Node::Symlink(target), 0o777)
                .with_context(err)?;
        } else if meta.is_dir() {
            t.add(&rel, Node::Dir, 0o755).with_context(err)?;
            add_skeleton(t, root, &path)?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            let perm = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            t.add(&rel, Node::File(std::fs::read(&path)?), perm)
                .with_context(err)?;
        }
    }
    Ok(())
}
