//! The root file system for flash: squashfs 4.0, xz-compressed, written with the
//! backhand crate (no shelling out to mksquashfs). The kernel side needs
//! `CONFIG_SQUASHFS_XZ`. Owners are root and every time is the caller's, so the
//! image is reproducible.

use std::io::{Cursor, Seek, Write};

use backhand::compression::Compressor;
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};

use crate::tree::{Node, Tree};

/// Block size: 256 KiB, as OpenWrt uses for NOR flash (better ratio than 128 KiB;
/// the page cache cost is irrelevant at these sizes).
pub const BLOCK_SIZE: u32 = 256 * 1024;

/// Why the image could not be written.
#[derive(Debug, thiserror::Error)]
#[error("squashfs: {0}")]
pub struct SquashfsError(String);

/// Writes `tree` as a squashfs image; returns its length.
pub fn write<W: Write + Seek>(tree: &Tree, mtime: u32, out: W) -> Result<u64, SquashfsError> {
    let err = |e: backhand::BackhandError| SquashfsError(e.to_string());
    let mut fs = FilesystemWriter::default();
    fs.set_block_size(BLOCK_SIZE);
    fs.set_time(mtime);
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    fs.set_compressor(FilesystemCompressor::new(Compressor::Xz, None).map_err(err)?);
    // Pad to a 4 KiB multiple, as mksquashfs does, so the image can be written to
    // flash or used as a loop device as is.
    fs.set_kib_padding(4);
    for (path, entry) in tree.iter() {
        let header = NodeHeader::new(entry.perm, 0, 0, mtime);
        let path = format!("/{path}");
        match &entry.node {
            Node::Dir => fs.push_dir(&path, header),
            Node::File(bytes) => fs.push_file(Cursor::new(bytes.clone()), &path, header),
            Node::Symlink(target) => fs.push_symlink(target, &path, header),
            Node::CharDev { major, minor } => {
                // The on-disk device number: new_encode_dev() in the kernel.
                let dev = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
                fs.push_char_device(dev, &path, header)
            }
        }
        .map_err(err)?;
    }
    let (_, len) = fs.write(out).map_err(err)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.add("sbin/braidd", Node::File(vec![0x5a; 300_000]), 0o755)
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
        t.add("tmp", Node::Dir, 0o1777).unwrap();
        t
    }

    fn image(mtime: u32) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let len = write(&sample(), mtime, &mut out).unwrap();
        let bytes = out.into_inner();
        assert_eq!(len as usize, bytes.len());
        bytes
    }

    #[test]
    fn reproducible_and_padded() {
        let a = image(1_700_000_000);
        assert_eq!(a, image(1_700_000_000));
        assert_ne!(a, image(1_700_000_001));
        assert_eq!(&a[..4], b"hsqs", "little-endian squashfs 4 magic");
        assert_eq!(a.len() % 4096, 0);
    }

    /// unsquashfs (squashfs-tools), an independent reader, lists every entry with
    /// its type, mode and owner.
    #[test]
    fn unsquashfs_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("root.squashfs");
        std::fs::write(&file, image(1_700_000_000)).unwrap();
        let out = std::process::Command::new("unsquashfs")
            .args(["-lln", "-no-progress"])
            .arg(&file)
            .output()
            .expect("unsquashfs runs (Debian package squashfs-tools; ci/setup installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let want = [
            ("drwxr-xr-x 0/0", "squashfs-root"),
            ("crw------- 0/0", "squashfs-root/dev/console"),
            ("-rw-r--r-- 0/0", "squashfs-root/etc/braid/board"),
            ("lrwxrwxrwx 0/0", "squashfs-root/init -> sbin/braidd"),
            ("-rwxr-xr-x 0/0", "squashfs-root/sbin/braidd"),
            ("drwxrwxrwt 0/0", "squashfs-root/tmp"),
        ];
        for (mode, path) in want {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(mode) && l.ends_with(path)),
                "missing `{mode} ... {path}` in:\n{text}"
            );
        }
        assert!(text.contains("300000"), "file size listed:\n{text}");
        assert!(
            text.contains("5,  1") || text.contains("5, 1"),
            "device numbers:\n{text}"
        );
    }
}
