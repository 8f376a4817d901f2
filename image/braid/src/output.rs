//! Writing outputs so that a reader never sees a partial one: files go through a
//! temporary file and a rename; a board's whole set of images is assembled in a
//! staging directory that replaces the old set only once everything succeeded,
//! and is removed if anything fails.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Copies `from` to `to` through a temporary file in the same directory, so `to`
/// is either the old file or the complete new one.
pub fn install_file(from: &Path, to: &Path) -> Result<()> {
    let data = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    write_file(to, &data)
}

/// Writes `data` to `to` through a temporary file and a rename.
pub fn write_file(to: &Path, data: &[u8]) -> Result<()> {
    let dir = to.parent().context("output path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        to.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(to) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, to).with_context(|| format!("cannot rename to {}", to.display()))?;
    Ok(())
}

/// A directory being assembled next to its final place; dropped without
/// [`commit`](Staging::commit), it disappears.
pub struct Staging {
    dir: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staging {
    /// Starts assembling what will become `dest`.
    pub fn new(dest: &Path) -> Result<Self> {
        let parent = dest.parent().context("output path has no directory")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let dir = parent.join(format!(".staging-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self {
            dir,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write the outputs.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Replaces `dest` with the staged directory.
    pub fn commit(mut self) -> Result<PathBuf> {
        let old = self.dir.with_file_name(format!(
            ".old-{}-{}",
            self.dest
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("out"),
            std::process::id()
        ));
        if self.dest.exists() {
            std::fs::rename(&self.dest, &old)
                .with_context(|| format!("cannot move {} aside", self.dest.display()))?;
        }
        std::fs::rename(&self.dir, &self.dest)
            .with_context(|| format!("cannot rename to {}", self.dest.display()))?;
        let _ = std::fs::remove_dir_all(&old);
        self.committed = true;
        Ok(self.dest.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_replaces_only_on_commit() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("board");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old.bin"), "old").unwrap();
        {
            let s = Staging::new(&dest).unwrap();
            std::fs::write(s.path().join("half.bin"), "x").unwrap();
            // dropped: a failed build
        }
        assert!(dest.join("old.bin").is_file());
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["board"], "no staging leftovers");
        let s = Staging::new(&dest).unwrap();
        std::fs::write(s.path().join("new.bin"), "new").unwrap();
        s.commit().unwrap();
        assert!(dest.join("new.bin").is_file() && !dest.join("old.bin").exists());
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["board"]);
    }
}
