//! The initramfs: a cpio archive in the "newc" format (the only one the kernel
//! unpacks, Documentation/driver-api/early-userspace/buffer-format.rst), written
//! reproducibly: entries in path order, inode numbers counted from 1, owner root,
//! one fixed mtime.

use std::io::{self, Write};

use crate::tree::{mode, Node, Tree};

/// Writes `tree` as a newc archive with every mtime set to `mtime`.
pub fn write(tree: &Tree, mtime: u32, out: impl Write) -> io::Result<()> {
    let mut out = out;
    for (ino, (path, entry)) in (1u32..).zip(tree.iter()) {
        let (data, rdev): (&[u8], (u32, u32)) = match &entry.node {
            Node::Dir => (&[], (0, 0)),
            Node::File(bytes) => (bytes, (0, 0)),
            Node::Symlink(target) => (target.as_bytes(), (0, 0)),
            Node::CharDev { major, minor } => (&[], (*major, *minor)),
        };
        let len = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path}: larger than 4 GiB"),
            )
        })?;
        let nlink = if entry.node == Node::Dir { 2 } else { 1 };
        let mut w = ::cpio::newc::Builder::new(path)
            .ino(ino)
            .mode(mode(entry))
            .uid(0)
            .gid(0)
            .nlink(nlink)
            .mtime(mtime)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1)
            .write(out, len);
        w.write_all(data)?;
        out = w.finish()?;
    }
    ::cpio::newc::trailer(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Tree;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.add("sbin/braidd", Node::File(b"\x7fELF...".to_vec()), 0o755)
            .unwrap();
        t.add("init", Node::Symlink("sbin/braidd".into()), 0o777)
            .unwrap();
        t.add("dev/console", Node::CharDev { major: 5, minor: 1 }, 0o600)
            .unwrap();
        t.add(
            "etc/braid/board",
            Node::File(b"qemu-malta-le\n".to_vec()),
            0o644,
        )
        .unwrap();
        t
    }

    #[test]
    fn layout_of_the_first_header() {
        let mut out = Vec::new();
        write(&sample(), 1_700_000_000, &mut out).unwrap();
        // newc header: magic, then ino=1, mode=040755 (dev), uid, gid, nlink=2,
        // mtime, filesize=0, ... namesize=4 ("dev\0").
        let h = std::str::from_utf8(&out[..110]).unwrap();
        assert_eq!(&h[..6], "070701");
        assert_eq!(&h[6..14], "00000001");
        assert_eq!(&h[14..22], "000041ed");
        assert_eq!(&h[38..46], "00000002");
        assert_eq!(&h[46..54], format!("{:08x}", 1_700_000_000));
        assert_eq!(&h[94..102], "00000004");
        assert_eq!(&out[110..114], b"dev\0");
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn reproducible() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&sample(), 1, &mut a).unwrap();
        write(&sample(), 1, &mut b).unwrap();
        assert_eq!(a, b);
    }

    /// GNU cpio, an independent reader, lists and extracts what we wrote.
    #[test]
    fn gnu_cpio_reads_it() {
        let mut out = Vec::new();
        write(&sample(), 1_700_000_000, &mut out).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.cpio");
        std::fs::write(&archive, &out).unwrap();
        let listing = std::process::Command::new("cpio")
            .args(["-t", "-v", "--quiet", "-F"])
            .arg(&archive)
            .output()
            .expect("cpio(1) runs (Debian package cpio; ci/setup installs it)");
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        let text = String::from_utf8_lossy(&listing.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(
            lines.iter().any(|l| l.starts_with("crw-------")
                && l.contains(" 5,")
                && l.ends_with("dev/console")),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with("init -> sbin/braidd")),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("-rwxr-xr-x")
                && l.contains("root")
                && l.ends_with("sbin/braidd")),
            "{text}"
        );
    }
}
