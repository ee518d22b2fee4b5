//! The agent's warm trees: a tree a task of a workspace ran in is kept and leased to the next
//! task of the same workspace (same master, same workspace identity), which brings it to its
//! own manifest ([`super::warm`]) instead of building a tree from nothing. Concurrent tasks of
//! one workspace each lease their own tree; idle trees are bounded in number and bytes and the
//! least recently used go first; a tree whose task did not end cleanly is removed, never lent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::WorkspaceError;
use super::manifest::Manifest;
use super::tree_processes::{PidMark, process_inside};
use super::tree_watch::WatchedTree;

/// A tree's name in the pool's directory: this, then a number.
pub(super) const TREE_PREFIX: &str = "tree-";

/// Idle trees, by key, least recently used first.
#[derive(Debug)]
pub struct TreePool {
    dir: PathBuf,
    max_trees: usize,
    max_bytes: u64,
    next: AtomicU64,
    idle: Mutex<Vec<Idle>>,
    /// Trees whose task has ended and that are on their way back, by key: a task of the same
    /// workspace arriving meanwhile (the next task of a chain) waits for one a little.
    returning: Mutex<std::collections::HashMap<String, usize>>,
    returned: std::sync::Condvar,
    /// Tasks that found a tree of theirs (for `Info`).
    pub reused: AtomicU64,
    /// Every tree of the pool that exists (idle or lent), by path: anything else in `dir` is
    /// what a task left beside its tree (`echo x > ../notes`), which no later task — of
    /// another workspace, another master — may read, and which would pile up.
    live: Mutex<std::collections::HashSet<PathBuf>>,
}

/// How long a task waits for a tree of its workspace that is on its way back.
const WAIT_FOR_RETURN: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
struct Idle {
    key: String,
    root: PathBuf,
    identity: Identity,
    state: Arc<Manifest>,
    /// What the scan after its last task saw, under a watch.
    watched: Option<WatchedTree>,
    bytes: u64,
}

/// The directory a tree was made as (device, inode): a tree whose root is no longer that
/// directory — swapped for a link or another directory while idle — is not lent, so nothing is
/// ever brought to a manifest, or run, through a path that leads elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity(u64, u64);

impl Identity {
    /// What is at `root` now, if it is a directory (not a link).
    fn of(root: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(root).ok()?;
        meta.is_dir().then(|| Self(meta.dev(), meta.ino()))
    }
}

/// A tree lent to one task: where it is, and what it held when last looked at (None: new and
/// empty).
#[derive(Debug)]
pub struct Lease {
    pub root: PathBuf,
    identity: Identity,
    pub state: Option<Arc<Manifest>>,
    /// What the scan after its last task saw, under a watch that says whether anything
    /// changed since (the plan looks at every entry otherwise).
    pub watched: Option<WatchedTree>,
    key: String,
    /// Announced as on its way back ([`TreePool::expect_return`]).
    expected: bool,
    /// What it was counted for while idle.
    bytes: u64,
    /// The process ids handed out before it was lent (a process the task leaves has a later one).
    mark: Option<PidMark>,
}

impl TreePool {
    /// A pool keeping its trees in `dir` (created), at most `max_trees` idle ones holding at
    /// most `max_bytes` of files together.
    pub fn new(dir: impl Into<PathBuf>, max_trees: usize, max_bytes: u64) -> Result<Self, WorkspaceError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(WorkspaceError::io(&dir))?;
        // Idle trees keep a workspace's files: nobody else on the host reads them.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(WorkspaceError::io(&dir))?;
        Ok(Self {
            dir,
            max_trees,
            max_bytes,
            next: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
            returning: Mutex::new(std::collections::HashMap::new()),
            returned: std::sync::Condvar::new(),
            reused: AtomicU64::new(0),
            live: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// The most recently used idle tree of `key`, if one is idle now: no waiting, no file
    /// work (what the next task of a chain finds, without a trip to a blocking thread).
    pub fn lease_idle(&self, key: &str) -> Option<Lease> {
        loop {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let at = idle.iter().rposition(|tree| tree.key == key)?;
            let tree = idle.remove(at);
            drop(idle);
            // (One `lstat`: the only look at the disk here.)
            if Identity::of(&tree.root) != Some(tree.identity) {
                tracing::warn!(tree = %tree.root.display(), "a kept tree was replaced while idle: removed, not used");
                self.remove(&tree.root);
                continue;
            }
            self.reused.fetch_add(1, Ordering::Relaxed);
            return Some(Lease {
                root: tree.root,
                identity: tree.identity,
                state: Some(tree.state),
                watched: tree.watched,
                key: tree.key,
                expected: false,
                bytes: tree.bytes,
                mark: PidMark::now(),
            });
        }
    }

    /// The most recently used idle tree of `key` (waiting a little for one on its way back),
    /// or a new empty one.
    pub fn lease(&self, key: &str) -> Result<Lease, WorkspaceError> {
        let deadline = std::time::Instant::now() + WAIT_FOR_RETURN;
        loop {
            if let Some(lease) = self.lease_idle(key) {
                return Ok(lease);
            }
            let returning = self.returning.lock().unwrap_or_else(PoisonError::into_inner);
            let now = std::time::Instant::now();
            if returning.get(key).copied().unwrap_or(0) == 0 || now >= deadline {
                break;
            }
            drop(self.returned.wait_timeout(returning, deadline - now).unwrap_or_else(PoisonError::into_inner));
        }
        self.lease_new(key)
    }

    /// Announces that `lease`'s task has ended and its tree is on its way back.
    pub fn expect_return(&self, lease: &mut Lease) {
        if !lease.expected {
            lease.expected = true;
            *self.returning.lock().unwrap_or_else(PoisonError::into_inner).entry(lease.key.clone()).or_default() += 1;
        }
    }

    /// A tree of `key` is back (kept or removed): whoever waits for it looks again.
    fn arrived(&self, key: &str, expected: bool) {
        if expected {
            let mut returning = self.returning.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = returning.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    returning.remove(key);
                }
            }
        }
        self.returned.notify_all();
    }

    /// New trees made since the agent started (a task that found no tree of its workspace).
    pub fn created(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// A new empty tree for `key`.
    pub fn lease_new(&self, key: &str) -> Result<Lease, WorkspaceError> {
        let root = self.dir.join(format!("{TREE_PREFIX}{}", self.next.fetch_add(1, Ordering::Relaxed)));
        // Live before it exists: a sweep meanwhile leaves it alone.
        self.live.lock().unwrap_or_else(PoisonError::into_inner).insert(root.clone());
        if let Err(error) = std::fs::create_dir(&root) {
            self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&root);
            return Err(WorkspaceError::io(&root)(error));
        }
        let identity = Identity::of(&root).ok_or_else(|| WorkspaceError::Io {
            path: root.clone(),
            source: std::io::Error::other("not the directory just made"),
        })?;
        Ok(Lease {
            root,
            identity,
            state: None,
            watched: None,
            key: key.to_owned(),
            expected: false,
            bytes: 0,
            mark: PidMark::now(),
        })
    }

    /// Takes back a tree nothing was done to (its task was refused before its tree was
    /// touched): idle again as it was, for the next task of its workspace; a new one is removed.
    pub fn put_back(&self, lease: Lease) {
        let Lease { root, identity, state, watched, key, expected, bytes, .. } = lease;
        match state {
            Some(state) => {
                let idle = Idle { key: key.clone(), root, identity, state, watched, bytes };
                self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(idle);
            }
            None => self.remove(&root),
        }
        self.arrived(&key, expected);
    }

    /// Takes `lease` back, its tree now holding `state` (`after`: what the scan after the task
    /// found in it; `watched`: what it saw, under a watch), and removes the least recently used
    /// trees past the limits.
    pub fn give_back(&self, lease: Lease, (state, watched): (Arc<Manifest>, Option<WatchedTree>), after: &Manifest) {
        // A process the task left running in it (detached: its group was killed) could write
        // into the next task's tree: such a tree is not kept.
        if let Some(pid) = process_inside(&lease.root, lease.mark) {
            tracing::info!(tree = %lease.root.display(), pid, "a process still runs in the tree: not kept");
            self.discard(&lease);
            return;
        }
        // Back in the pool first (the next task of a chain may be waiting for it), counted
        // for the files the scan after the task saw; then what its rules left out (build
        // output, caches) is measured on disk: all of it counts against the limit.
        let Lease { root, identity, key, expected, .. } = lease;
        let estimate = on_disk(after);
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(Idle {
            key: key.clone(),
            root: root.clone(),
            identity,
            state,
            watched,
            bytes: estimate,
        });
        self.arrived(&key, expected);
        let bytes =
            estimate.saturating_add(after.excluded.iter().map(|path| disk_bytes(&root.join(path.as_path()))).sum());
        let evicted: Vec<PathBuf> = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            // (Unless a task has leased it meanwhile: it is measured when it comes back.)
            if let Some(tree) = idle.iter_mut().find(|tree| tree.root == root) {
                tree.bytes = bytes;
            }
            let mut evicted = Vec::new();
            while !idle.is_empty()
                && (idle.len() > self.max_trees || idle.iter().map(|tree| tree.bytes).sum::<u64>() > self.max_bytes)
            {
                evicted.push(idle.remove(0).root);
            }
            evicted
        };
        for root in evicted {
            tracing::debug!(tree = %root.display(), "warm tree evicted");
            self.remove(&root);
        }
        self.sweep();
    }

    /// Removes the tree of a task that did not end cleanly.
    pub fn discard(&self, lease: &Lease) {
        self.remove(&lease.root);
        self.arrived(&lease.key, lease.expected);
        self.sweep();
    }

    /// Removes one of the pool's trees.
    fn remove(&self, root: &Path) {
        remove_tree(root);
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(root);
    }

    /// Removes what lies beside the trees that is none of them: what a task wrote above its
    /// workspace (a run here would leave it beside the workspace; on an agent it does not come
    /// back — it must not stay for the next task, or for ever).
    fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let left: Vec<PathBuf> = {
            let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            entries.flatten().map(|entry| entry.path()).filter(|path| !live.contains(path)).collect()
        };
        for path in left {
            tracing::info!(path = %path.display(), "left beside its tree by a task: removed");
            remove_tree(&path);
        }
    }
}

/// Removes a tree, read-only directories included, never descending into a filesystem
/// mounted in it (a task may have left a bind mount): those are detached first.
pub fn remove_tree(root: &Path) {
    // A tree swapped for a link (or a file): the link goes, never what it leads to.
    match std::fs::symlink_metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            let _ = std::fs::remove_file(root);
            return;
        }
        Err(_) => return,
    }
    unmount_below(root);
    if let Err(error) = crate::files::remove_dir_all_opening(root) {
        tracing::warn!(tree = %root.display(), %error, "cannot remove a tree");
    }
}

/// Detaches every mount at or below `root` (deepest first), as `/proc/self/mountinfo` lists
/// them.
fn unmount_below(root: &Path) {
    let Ok(physical) = std::fs::canonicalize(root) else { return };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(field.replace("\\040", " ")))
        .filter(|point| point.starts_with(&physical))
        .collect();
    points.sort_by(|a, b| b.cmp(a));
    for point in points {
        if let Err(errno) = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %point.display(), %errno, "cannot detach a mount left in a tree");
        }
    }
}

/// What the files of `manifest` take on disk, each rounded up to whole 4 KiB blocks (a small
/// file takes a block).
fn on_disk(manifest: &Manifest) -> u64 {
    const BLOCK: u64 = 4096;
    let files = manifest.entries.values().filter_map(|entry| match entry {
        super::manifest::Entry::File { size, .. } => Some(size.div_ceil(BLOCK) * BLOCK),
        _ => None,
    });
    files.fold(0u64, u64::saturating_add)
}

/// Bytes of regular files at `path` (a file, or a directory and everything below it) on
/// disk; links are not followed.
fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_file() {
        return meta.blocks() * 512;
    }
    if !meta.is_dir() {
        return 0;
    }
    let mut total = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.blocks() * 512);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_are_lent_by_key_and_the_least_recently_used_go_past_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = TreePool::new(dir.path(), 2, u64::MAX).expect("pool");
        let a = pool.lease("a").expect("lease");
        assert!(a.state.is_none(), "a new tree");
        let a_root = a.root.clone();
        pool.give_back(a, (Arc::new(Manifest::default()), None), &Manifest::default());
        let again = pool.lease("a").expect("lease");
        assert_eq!(again.root, a_root, "the same tree again");
        let other = pool.lease("a").expect("lease");
        assert_ne!(other.root, a_root, "a second task of the same workspace gets its own tree");
        let b = pool.lease("b").expect("lease");
        let b_root = b.root.clone();
        pool.give_back(again, (Arc::new(Manifest::default()), None), &Manifest::default());
        pool.give_back(other, (Arc::new(Manifest::default()), None), &Manifest::default());
        pool.give_back(b, (Arc::new(Manifest::default()), None), &Manifest::default());
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 2, "two trees kept");
        assert!(!a_root.exists(), "the least recently used tree went");
        assert!(b_root.exists());
    }
}
