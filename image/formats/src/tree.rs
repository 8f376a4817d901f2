//! A root file system as data: what goes in, with which mode, owned by root.
//!
//! Both the initramfs (cpio) and the flash root (squashfs) are written from one
//! [`Tree`], so the two can never disagree about their contents.

use std::collections::BTreeMap;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(String),
    /// A character device node.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// One entry: a node and its permission bits (owner and group are always root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub node: Node,
    /// Permission bits, e.g. 0o755.
    pub perm: u16,
}

/// A file tree, keyed by path relative to the root (`sbin/braidd`), sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

/// Why a path cannot be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// Empty, absolute, or with `.`/`..` components.
    #[error("`{0}` is not a relative path without . or .. components")]
    BadPath(String),
    /// The path is already a different entry.
    #[error("`{0}` is added twice")]
    Duplicate(String),
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry, creating missing parent directories (mode 0755).
    pub fn add(&mut self, path: &str, node: Node, perm: u16) -> Result<(), TreeError> {
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(TreeError::BadPath(path.to_string()));
        }
        let mut parent = String::new();
        for component in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match self.entries.get(&parent) {
                Some(Entry {
                    node: Node::Dir, ..
                }) => {}
                Some(_) => return Err(TreeError::Duplicate(parent)),
                None => {
                    self.entries.insert(
                        parent.clone(),
                        Entry {
                            node: Node::Dir,
                            perm: 0o755,
                        },
                    );
                }
            }
        }
        let entry = Entry { node, perm };
        match self.entries.get(path) {
            Some(existing) if *existing == entry => Ok(()),
            Some(Entry {
                node: Node::Dir, ..
            }) if entry.node == Node::Dir => {
                self.entries.insert(path.to_string(), entry);
                Ok(())
            }
            Some(_) => Err(TreeError::Duplicate(path.to_string())),
            None => {
                self.entries.insert(path.to_string(), entry);
                Ok(())
            }
        }
    }

    /// Entries in path order (parents before children).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }
}

/// `st_mode` of an entry: type bits and permissions.
pub fn mode(e: &Entry) -> u32 {
    let kind = match e.node {
        Node::Dir => 0o040000,
        Node::File(_) => 0o100000,
        Node::Symlink(_) => 0o120000,
        Node::CharDev { .. } => 0o020000,
    };
    kind | u32::from(e.perm & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_sorted() {
        let mut t = Tree::new();
        t.add("sbin/braidd", Node::File(b"x".to_vec()), 0o755)
            .unwrap();
        t.add("dev/console", Node::CharDev { major: 5, minor: 1 }, 0o600)
            .unwrap();
        t.add("init", Node::Symlink("sbin/braidd".into()), 0o777)
            .unwrap();
        let paths: Vec<&str> = t.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["dev", "dev/console", "init", "sbin", "sbin/braidd"]);
        assert_eq!(mode(t.get("sbin").unwrap()), 0o040755);
        assert_eq!(mode(t.get("dev/console").unwrap()), 0o020600);
    }

    #[test]
    fn bad_paths_and_duplicates() {
        let mut t = Tree::new();
        for p in ["", "/etc", "a//b", "a/../b", "./a"] {
            assert_eq!(
                t.add(p, Node::Dir, 0o755),
                Err(TreeError::BadPath(p.into()))
            );
        }
        t.add("etc/a", Node::File(vec![1]), 0o644).unwrap();
        assert_eq!(
            t.add("etc/a", Node::File(vec![1]), 0o644),
            Ok(()),
            "identical is fine"
        );
        assert_eq!(
            t.add("etc/a", Node::File(vec![2]), 0o644),
            Err(TreeError::Duplicate("etc/a".into()))
        );
        assert_eq!(
            t.add("etc/a/b", Node::Dir, 0o755),
            Err(TreeError::Duplicate("etc/a".into()))
        );
    }
}
