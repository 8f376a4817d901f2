//! Where the kernel comes from: Debian's linux-source-6.1 tarball by default, or a
//! tree or tarball the user names (OpenWrt's patched trees, say). A tarball is
//! unpacked once into the cache, keyed by its identity, through a temporary
//! directory, so an interrupted unpack never leaves a half tree behind.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::progress::Step;

/// The default kernel: Debian's `linux-source-6.1` package.
pub const DEFAULT_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The Debian package that provides [`DEFAULT_TARBALL`].
pub const DEFAULT_PACKAGE: &str = "linux-source-6.1";

/// An unpacked kernel tree ready for out-of-tree builds.
#[derive(Debug, Clone)]
pub struct KernelSource {
    /// The tree (holds Makefile, Kconfig, arch/...).
    pub tree: PathBuf,
    /// Identity for cache keys: a hash of the tarball's path, size and mtime, or of
    /// the tree's path and Makefile.
    pub id: String,
    /// What the user gave (for messages).
    pub origin: PathBuf,
}

/// Finds the kernel source: `spec` (a tree or a tarball) or the default tarball,
/// unpacking a tarball into `cache` if needed.
pub fn resolve(spec: Option<&Path>, cache: &Path) -> Result<KernelSource> {
    let origin = spec.map_or_else(|| PathBuf::from(DEFAULT_TARBALL), Path::to_path_buf);
    if !origin.exists() {
        if spec.is_none() {
            bail!(
                "kernel source {} not found: install the Debian package {DEFAULT_PACKAGE} \
                 (ci/setup installs it), or pass --kernel-source <tree or tarball>",
                origin.display()
            );
        }
        bail!(
            "kernel source {} not found: --kernel-source takes a kernel tree (a directory with \
             Makefile and Kconfig) or a .tar.xz/.tar.gz/.tar tarball",
            origin.display()
        );
    }
    if origin.is_dir() {
        let tree = origin.canonicalize()?;
        if !tree.join("Makefile").is_file() || !tree.join("Kconfig").is_file() {
            bail!(
                "{}: not a kernel tree (no Makefile and Kconfig at its top)",
                tree.display()
            );
        }
        if tree.join(".config").exists() {
            bail!(
                "{}: the tree has been configured in place (.config exists); braid builds out of \
                 tree, which needs a clean tree: run `make mrproper` in it",
                tree.display()
            );
        }
        let makefile = std::fs::read(tree.join("Makefile"))?;
        let id = hash(&[tree.as_os_str().as_encoded_bytes(), &makefile]);
        return Ok(KernelSource { tree, id, origin });
    }
    let meta = std::fs::metadata(&origin)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let canonical = origin.canonicalize()?;
    let id = hash(&[
        canonical.as_os_str().as_encoded_bytes(),
        &meta.len().to_le_bytes(),
        &mtime.to_le_bytes(),
    ]);
    let dir = cache.join("kernel-src").join(&id);
    if !dir.join(".braid-unpacked").is_file() {
        // Two braid runs (CI compiles kernels in the background) unpack one at a
        // time: the second finds the tree there, instead of replacing it under
        // the first one's build.
        let _lock = lock(&dir.with_extension("lock"))?;
        if !dir.join(".braid-unpacked").is_file() {
            unpack(&origin, &dir)?;
        }
    }
    let tree = top_dir(&dir)?;
    Ok(KernelSource { tree, id, origin })
}

/// The kernel tree inside an unpacked tarball: the directory itself or its single
/// subdirectory holding the top-level Makefile.
fn top_dir(dir: &Path) -> Result<PathBuf> {
    if dir.join("Makefile").is_file() && dir.join("Kconfig").is_file() {
        return Ok(dir.to_path_buf());
    }
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.join("Makefile").is_file() && p.join("Kconfig").is_file() {
            return Ok(p);
        }
    }
    bail!(
        "{}: the tarball holds no kernel tree (no Makefile and Kconfig)",
        dir.display()
    )
}

/// An exclusive lock on `path` (created if needed), held until dropped.
pub(crate) fn lock(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    std::fs::create_dir_all(path.parent().context("lock path has no parent")?)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", path.display()))
}

fn unpack(tarball: &Path, dir: &Path) -> Result<()> {
    let step = Step::spinner(format!("unpacking {}", tarball.display()));
    let parent = dir.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".unpack-{}-{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("src"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let file = std::fs::File::open(tarball)
        .with_context(|| format!("cannot open {}", tarball.display()))?;
    let reader: Box<dyn std::io::Read> = match tarball.extension().and_then(|e| e.to_str()) {
        Some("xz") => Box::new(xz2::read::XzDecoder::new_multi_decoder(
            std::io::BufReader::new(file),
        )),
        Some("gz" | "tgz") => Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file))),
        Some("tar") => Box::new(std::io::BufReader::new(file)),
        _ => bail!(
            "{}: unknown tarball type; use .tar.xz, .tar.gz or .tar (or a directory)",
            tarball.display()
        ),
    };
    let result = tar::Archive::new(reader).unpack(&tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("cannot unpack {}", tarball.display()));
    }
    std::fs::write(tmp.join(".braid-unpacked"), tarball.display().to_string())?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir)?;
    step.done();
    Ok(())
}

/// Hex SHA-256 of the concatenated parts (each length-prefixed), first 16 digits.
pub fn hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sources_say_what_to_install_or_pass() {
        let cache = tempfile::tempdir().unwrap();
        let e = resolve(Some(Path::new("/nonexistent/linux")), cache.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kernel source /nonexistent/linux not found")
                && e.contains("--kernel-source takes"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(Some(dir.path()), cache.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a kernel tree"), "{e}");
    }

    #[test]
    fn tarballs_unpack_once_into_the_cache() {
        let work = tempfile::tempdir().unwrap();
        let tree = work.path().join("linux-9.9");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("Makefile"), "VERSION = 9\n").unwrap();
        std::fs::write(tree.join("Kconfig"), "mainmenu \"x\"\n").unwrap();
        let tarball = work.path().join("linux.tar.gz");
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&tarball).unwrap(),
            flate2::Compression::fast(),
        ));
        b.append_dir_all("linux-9.9", &tree).unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let cache = work.path().join("cache");
        let a = resolve(Some(&tarball), &cache).unwrap();
        assert!(a.tree.ends_with("linux-9.9") && a.tree.join("Makefile").is_file());
        let b = resolve(Some(&tarball), &cache).unwrap();
        assert_eq!((a.id, a.tree), (b.id, b.tree));
        let leftovers: Vec<_> = std::fs::read_dir(cache.join("kernel-src"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
