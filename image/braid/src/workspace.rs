//! Locations the builder works with: the source tree, the cache shared by all
//! checkouts on a machine, and the output directory of one checkout.

use std::path::{Path, PathBuf};

/// Where braid's files are.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The checkout: holds Cargo.toml, targets/, board/...
    pub root: PathBuf,
    /// Cache for expensive, input-keyed stages (std builds, kernels, zig).
    pub cache: PathBuf,
    /// Where finished artifacts are written (never partially).
    pub out: PathBuf,
    /// The board files: `board/`, or `BRAID_BOARD_DIR` (tests point it at boards of
    /// their own while building from this checkout).
    pub boards: PathBuf,
}

impl Workspace {
    /// Finds the checkout (`BRAID_ROOT`, else the nearest ancestor of the current
    /// directory holding both Cargo.toml and targets/, else the tree this binary
    /// was built from) and the cache (`BRAID_CACHE`, else `$XDG_CACHE_HOME/braid`,
    /// else `~/.cache/braid`).
    pub fn discover() -> Self {
        let root = std::env::var_os("BRAID_ROOT")
            .map(PathBuf::from)
            .or_else(|| {
                let cwd = std::env::current_dir().ok()?;
                cwd.ancestors().find(|d| is_root(d)).map(Path::to_path_buf)
            })
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
        let out = std::env::var_os("BRAID_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("out"));
        let boards = std::env::var_os("BRAID_BOARD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("board"));
        Self {
            root,
            cache: cache_dir(),
            out,
            boards,
        }
    }

    /// The targets/ directory.
    pub fn targets_dir(&self) -> PathBuf {
        self.root.join("targets")
    }
}

fn is_root(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("targets").is_dir()
}

/// The machine-wide cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BRAID_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("braid");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/braid")
}
