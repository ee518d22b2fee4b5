//! A directory tree as data, to compare two trees exactly: every path (as bytes), its kind,
//! contents, permission bits, link target, and the modification times of files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        contents: Vec<u8>,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A fifo, socket or device: its `st_mode` file-type bits and permission bits.
    Special {
        kind: u32,
        mode: u32,
    },
}

/// Every entry below a root, by relative path bytes (`a/b/c`), with file mtimes in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<Vec<u8>, Node>,
    pub mtimes: BTreeMap<Vec<u8>, i128>,
    /// Directories' and symlinks' mtimes in nanoseconds.
    pub other_times: BTreeMap<Vec<u8>, i128>,
    /// Files that are hard links of each other: each group's paths, sorted.
    pub links: BTreeSet<Vec<Vec<u8>>>,
}

impl Tree {
    /// Reads the tree under `root`, never following links, leaving out top-level names for
    /// which `skip` says so (a pipeline file, sloth-runner's own `.sloth`).
    pub fn read(root: &Path, skip: &dyn Fn(&[u8]) -> bool) -> Self {
        let mut tree = Tree::default();
        let mut inodes = HashMap::new();
        walk(root, root, skip, &mut tree, &mut inodes);
        tree.links = inodes
            .into_values()
            .filter(|paths: &Vec<Vec<u8>>| paths.len() > 1)
            .map(|mut paths| {
                paths.sort();
                paths
            })
            .collect();
        tree
    }

    /// Everything, except `.sloth` run state at the top.
    pub fn read_all(root: &Path) -> Self {
        Self::read(root, &|name| name == b".sloth")
    }

    /// Paths of regular files, oldest first (ties broken by path): the picture make sees.
    pub fn mtime_order(&self) -> Vec<String> {
        let mut files: Vec<(&i128, &Vec<u8>)> = self.mtimes.iter().map(|(path, time)| (time, path)).collect();
        files.sort();
        files.into_iter().map(|(_, path)| String::from_utf8_lossy(path).into_owned()).collect()
    }

    /// A readable list of every difference of paths, kinds, contents, modes and links
    /// (not times); empty when the trees are equal in those.
    pub fn differences(&self, other: &Tree) -> Vec<String> {
        let mut out = Vec::new();
        for (path, node) in &self.nodes {
            let name = String::from_utf8_lossy(path);
            match other.nodes.get(path) {
                None => out.push(format!("only in the first: {name} ({})", describe(node))),
                Some(theirs) if theirs != node => {
                    out.push(format!("differs: {name}: {} vs {}", describe(node), describe(theirs)));
                }
                Some(_) => {}
            }
        }
        for (path, node) in &other.nodes {
            if !self.nodes.contains_key(path) {
                out.push(format!("only in the second: {} ({})", String::from_utf8_lossy(path), describe(node)));
            }
        }
        out.extend(link_differences(&self.links, &other.links, "the first", "the second"));
        out
    }

    /// Panics with every difference when the trees differ (contents, modes, links, kinds).
    pub fn assert_same(&self, other: &Tree, what: &str) {
        let differences = self.differences(other);
        assert!(differences.is_empty(), "{what}: the trees differ:\n  {}", differences.join("\n  "));
    }
}

/// Hard-link groups on one side and not the other, named.
pub fn link_differences(
    ours: &BTreeSet<Vec<Vec<u8>>>,
    theirs: &BTreeSet<Vec<Vec<u8>>>,
    our_name: &str,
    their_name: &str,
) -> Vec<String> {
    let show = |group: &Vec<Vec<u8>>| {
        group.iter().map(|path| String::from_utf8_lossy(path).into_owned()).collect::<Vec<_>>().join(" = ")
    };
    let mut out = Vec::new();
    for group in ours.difference(theirs) {
        out.push(format!("hard links only in {our_name}: {}", show(group)));
    }
    for group in theirs.difference(ours) {
        out.push(format!("hard links only in {their_name}: {}", show(group)));
    }
    out
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir { mode } => format!("dir {mode:o}"),
        Node::File { mode, contents } => {
            let preview = String::from_utf8_lossy(&contents[..contents.len().min(40)]).into_owned();
            format!("file {mode:o}, {} bytes {preview:?}", contents.len())
        }
        Node::Symlink { target } => format!("symlink -> {}", String::from_utf8_lossy(target)),
        Node::Special { kind, mode } => format!("special {kind:o} mode {mode:o}"),
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    skip: &dyn Fn(&[u8]) -> bool,
    tree: &mut Tree,
    inodes: &mut HashMap<(u64, u64), Vec<Vec<u8>>>,
) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("below the root").as_os_str().as_bytes().to_vec();
        if dir == root && skip(entry.file_name().as_bytes()) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        let nanos = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        if kind.is_dir() || kind.is_symlink() {
            tree.other_times.insert(relative.clone(), nanos);
        }
        let node = if kind.is_dir() {
            walk(root, &path, skip, tree, inodes);
            Node::Dir { mode }
        } else if kind.is_file() {
            let contents = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            tree.mtimes.insert(relative.clone(), nanos);
            if meta.nlink() > 1 {
                inodes.entry((meta.dev(), meta.ino())).or_default().push(relative.clone());
            }
            Node::File { mode, contents }
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            Node::Symlink { target: target.as_os_str().as_bytes().to_vec() }
        } else {
            Node::Special { kind: meta.mode() & 0o170000, mode }
        };
        tree.nodes.insert(relative, node);
    }
}

/// A path from raw bytes (names that are not UTF-8).
pub fn byte_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Copies the tree at `from` into `to` (which must not exist) exactly as `cp -a` would:
/// contents, modes, links and times.
pub fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("running cp -a");
    assert!(status.success(), "cp -a {} {} failed", from.display(), to.display());
}
