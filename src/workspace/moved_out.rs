//! Files a task deleted whose bytes it kept under a name the rules leave out (`mv notes.txt
//! notes.bak` with `*.bak` excluded, `mv data.csv build/` with `build` excluded). The excluded
//! name never comes back to the master, so carrying the deletion back would lose the only copy
//! of those bytes there, where a run on the master would have kept them. Such a deletion is
//! not carried: the file stays on the master, and the caller says so, naming both paths.
//!
//! On an agent every excluded entry of the task's tree is the task's own (a tree is built from
//! the manifest alone, and a kept one loses what the manifest does not name), so only what the
//! task made is looked at: excluded files of the size of a deleted one are hashed.

use std::path::Path;

use super::WorkspaceError;
use super::beneath::{Kind, Root, Stamp};
use super::diff::Changes;
use super::manifest::{Entry, Manifest, hash_reader};
use super::rel_path::{PathMap, PathSet, RelPath};
use super::timestamp::Timestamp;

/// Takes out of `changes` (the task's, on the tree at `root` scanned as `after`, from `base`)
/// the deletions of files whose bytes the task kept under an excluded name, and of the
/// directories holding them; returns `(deleted, kept_as)` for each such file. Unless the task
/// put something else where such a file was (a link where its directory was): then its bytes
/// can neither stay nor come back, and nothing of the task is carried rather than those bytes
/// lost — refused, saying which and what to do.
pub fn keep_here(
    root: &Path,
    base: &Manifest,
    after: &Manifest,
    changes: &mut Changes,
) -> Result<Vec<(RelPath, RelPath)>, WorkspaceError> {
    let moved_out = find(root, base, after, &changes.deleted)?;
    for (kept, kept_as) in &moved_out {
        let replaced = |changed: &&RelPath| {
            kept.starts_with(changed) && !matches!(after.entries.get(*changed), Some(Entry::Dir { .. }))
        };
        if let Some(over) = changes.changed.iter().find(replaced) {
            return Err(WorkspaceError::Refused {
                path: kept.as_path().to_path_buf(),
                reason: format!(
                    "moved by the task to '{kept_as}', which the workspace's rules leave out, and '{over}' was made \
                     {}: nothing is carried back, as the master would lose its only copy (leave '{kept_as}' in the \
                     workspace, or '{over}' as it was)",
                    after.entries.get(over).map_or("something else", Entry::kind_name)
                ),
            });
        }
    }
    if !moved_out.is_empty() {
        changes.deleted.retain(|path| !moved_out.iter().any(|(kept, _)| kept == path || kept.starts_with(path)));
    }
    Ok(moved_out)
}

/// `(deleted, kept_as)` for each file of `deleted` (paths of `base`) whose content is held by
/// an excluded entry of the tree at `root` (`after` is its scan: its `excluded` names them).
fn find(
    root: &Path,
    base: &Manifest,
    after: &Manifest,
    deleted: &[RelPath],
) -> Result<Vec<(RelPath, RelPath)>, WorkspaceError> {
    let mut wanted: PathMap<(u64, blake3::Hash), Vec<&RelPath>> = PathMap::default();
    for path in deleted {
        // (An empty file holds no bytes to lose: any other empty file would pass for it.)
        if let Some(Entry::File { size, hash, .. }) = base.entries.get(path)
            && *size > 0
        {
            wanted.entry((*size, *hash)).or_default().push(path);
        }
    }
    if wanted.is_empty() || after.excluded.is_empty() {
        return Ok(Vec::new());
    }
    // (Sizes first: most excluded files are of none of them, and are not read.)
    let sizes: PathSet<u64> = wanted.keys().map(|(size, _)| *size).collect();
    let tree = Root::open(root)?;
    let mut found = Vec::new();
    for excluded in &after.excluded {
        match tree.lstat(excluded)? {
            Some(stat) if stat.kind == Kind::File => look(&tree, excluded, &sizes, &mut wanted, &mut found)?,
            Some(stat) if stat.kind == Kind::Dir => {
                let inside = super::tree_walk::list(&tree.display(excluded), None)?;
                for path in &inside.paths {
                    let mut full = excluded.clone();
                    for name in path.components() {
                        full = full.join_name(name);
                    }
                    look(&tree, &full, &sizes, &mut wanted, &mut found)?;
                }
            }
            _ => {}
        }
        if wanted.is_empty() {
            break;
        }
    }
    found.sort();
    Ok(found)
}

/// Adds `(deleted, path)` to `found` for one of the deleted files (`wanted`, by size and hash)
/// whose content the file at `path` holds: one copy keeps one file (two files of the same
/// bytes, one moved and one deleted, keep one).
fn look(
    tree: &Root,
    path: &RelPath,
    sizes: &PathSet<u64>,
    wanted: &mut PathMap<(u64, blake3::Hash), Vec<&RelPath>>,
    found: &mut Vec<(RelPath, RelPath)>,
) -> Result<(), WorkspaceError> {
    let Some(stat) = tree.lstat(path)? else { return Ok(()) };
    if stat.kind != Kind::File || !sizes.contains(&stat.size) {
        return Ok(());
    }
    let (size, hash) = hash_reader(tree.open_file(path)?, &tree.display(path))?;
    let key = (size, hash);
    if let Some(paths) = wanted.get_mut(&key) {
        if !paths.is_empty() {
            found.push((paths.remove(0).clone(), path.clone()));
        }
        if paths.is_empty() {
            wanted.remove(&key);
        }
    }
    Ok(())
}

/// Names an agent makes beside a task's tree (its pool's trees, a task directory's own
/// files): never a task's leftovers.
fn agents_own(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    let numbered = |prefix: &[u8]| {
        name.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && rest.iter().all(u8::is_ascii_digit))
    };
    numbered(super::trees::TREE_PREFIX.as_bytes())
        || name == b"workspace"
        || name.starts_with(b"blobs")
        || name.starts_with(b".")
}

/// The most entries beside a tree that are looked through for files moved out of it.
const OUTSIDE_BUDGET: usize = 100_000;

/// On an agent, a task that moved files out of its tree (`mv notes.txt ../`, `mv $PWD
/// $PWD.old; mkdir $PWD`) kept their bytes where they never come back: a run on the master
/// would have kept them beside the workspace, where the master never writes. Such a deletion
/// is not carried: the file stays on the master (and so do the directories holding it), and
/// the caller says so. Found by identity — the file moved out is the same inode — among what
/// lies beside the tree at `root` that the agent did not make. Returns `(deleted, where)`.
pub fn keep_outside(root: &Path, base: &Manifest, changes: &mut Changes) -> Vec<(RelPath, String)> {
    let mut wanted: PathMap<(u64, u64), (RelPath, Stamp)> = PathMap::default();
    for path in &changes.deleted {
        if let (Some(Entry::File { size, .. }), Some(stamp)) = (base.entries.get(path), base.stamps.get(path))
            && *size > 0
        {
            wanted.insert((stamp.dev, stamp.ino), (path.clone(), *stamp));
        }
    }
    let (Some(beside), Some(tree)) = (root.parent(), root.file_name()) else { return Vec::new() };
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut budget = OUTSIDE_BUDGET;
    let Ok(entries) = std::fs::read_dir(beside) else { return Vec::new() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == tree || agents_own(&name) {
            continue;
        }
        look_outside(&entry.path(), &format!("../{}", name.to_string_lossy()), &mut wanted, &mut found, &mut budget);
        if wanted.is_empty() || budget == 0 {
            break;
        }
    }
    if !found.is_empty() {
        changes
            .deleted
            .retain(|path| !found.iter().any(|(kept, _): &(RelPath, String)| kept == path || kept.starts_with(path)));
    }
    found.sort();
    found
}

/// Looks through `path` (shown as `shown`), not following links, for the files `wanted`.
fn look_outside(
    path: &Path,
    shown: &str,
    wanted: &mut PathMap<(u64, u64), (RelPath, Stamp)>,
    found: &mut Vec<(RelPath, String)>,
    budget: &mut usize,
) {
    use std::os::unix::fs::MetadataExt;
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    if meta.is_file() {
        let key = (meta.dev(), meta.ino());
        // The same file as moved, not another that got its freed inode number: of its size
        // and time still.
        let same = wanted.get(&key).is_some_and(|(_, stamp)| {
            stamp.size == meta.size() && stamp.mtime == Timestamp::new(meta.mtime(), meta.mtime_nsec())
        });
        if same && let Some((deleted, _)) = wanted.remove(&key) {
            found.push((deleted, shown.to_owned()));
        }
    } else if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            look_outside(&entry.path(), &format!("{shown}/{}", name.to_string_lossy()), wanted, found, budget);
            if wanted.is_empty() || *budget == 0 {
                return;
            }
        }
    }
}
