//! Walking a tree in two steps: the names first (directory listings, in walk order), then a
//! look at each entry — lstat, and whatever the caller does with it (hashing a file) — spread
//! over threads when the tree is large. The looks are independent of each other and are most
//! of a walk's time (a `statx` costs more than a listed name), so a tree of 20,000 files is
//! read in about the time of its share per core.
//!
//! Each thread looks through a [`Root`] of its own: every path is resolved beneath the root
//! one component at a time, never through a link, as everywhere else.

use std::path::Path;

use super::WorkspaceError;
use super::beneath::{Root, Stat};
use super::filter::Filter;
use super::rel_path::RelPath;

/// What a listing found: every path in walk order (parents before children, a directory's
/// names in byte order), and what the rules left out (not descended into).
#[derive(Debug, Default)]
pub(super) struct Listing {
    pub(super) paths: Vec<RelPath>,
    pub(super) excluded: Vec<RelPath>,
}

/// Lists the tree at `root`, leaving out what `filter` excludes. Which entries are
/// directories is what the listing says of them (no lstat); one replaced since is seen as it
/// is when looked at.
pub(super) fn list(root: &Path, filter: Option<&Filter>) -> Result<Listing, WorkspaceError> {
    let mut listing = Listing::default();
    list_dir(root, None, filter, &mut listing)?;
    Ok(listing)
}

fn list_dir(
    root: &Path,
    prefix: Option<&RelPath>,
    filter: Option<&Filter>,
    listing: &mut Listing,
) -> Result<(), WorkspaceError> {
    use std::os::unix::ffi::OsStrExt;
    let dir = prefix.map_or_else(|| root.to_path_buf(), |prefix| root.join(prefix.as_path()));
    let mut names: Vec<(Vec<u8>, bool)> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(WorkspaceError::io(&dir))? {
        let entry = entry.map_err(WorkspaceError::io(&dir))?;
        // Gone since it was listed: it is not part of this moment.
        let Ok(kind) = entry.file_type() else { continue };
        names.push((entry.file_name().as_bytes().to_vec(), kind.is_dir()));
    }
    names.sort_unstable();
    for (name, is_dir) in names {
        let relative = match prefix {
            None => RelPath::from_name(&name),
            Some(prefix) => Ok(prefix.join_name(&name)),
        }
        .map_err(|reason| WorkspaceError::UnsafeEntry {
            entry: super::rel_path::display_bytes(&name),
            reason: reason.into(),
        })?;
        if filter.is_some_and(|filter| filter.excludes(&relative)) {
            listing.excluded.push(relative);
            continue;
        }
        if is_dir {
            listing.paths.push(relative.clone());
            list_dir(root, Some(&relative), filter, listing)?;
        } else {
            listing.paths.push(relative);
        }
    }
    Ok(())
}

/// Fewer entries than this are looked at on the calling thread: starting threads would cost
/// more than they save.
const PARALLEL_FROM: usize = 512;

/// The most threads a walk uses.
const MAX_THREADS: usize = 8;

/// `look(tree, path, stat)` for every path, in order, with what lstat says of it; None where
/// the path is gone since it was listed (or `look` says so). Large lists are cut in one
/// contiguous part per core, each looked at by a thread of its own.
pub(super) fn look_at_each<T: Send>(
    root: &Path,
    paths: &[RelPath],
    look: impl Fn(&Root, &RelPath, Stat) -> Result<Option<T>, WorkspaceError> + Sync,
) -> Result<Vec<Option<T>>, WorkspaceError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS);
    let part = |paths: &[RelPath]| -> Result<Vec<Option<T>>, WorkspaceError> {
        let tree = Root::open(root)?;
        let mut looked = Vec::with_capacity(paths.len());
        for path in paths {
            looked.push(match tree.lstat(path)? {
                Some(stat) => look(&tree, path, stat)?,
                None => None,
            });
        }
        Ok(looked)
    };
    if threads < 2 || paths.len() < PARALLEL_FROM {
        return part(paths);
    }
    let parts: Vec<Result<Vec<Option<T>>, WorkspaceError>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            paths.chunks(paths.len().div_ceil(threads)).map(|chunk| scope.spawn(move || part(chunk))).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut looked = Vec::with_capacity(paths.len());
    for part in parts {
        looked.extend(part?);
    }
    Ok(looked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_tree_is_looked_at_in_order_whatever_the_threads() {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in 0..4 {
            let sub = dir.path().join(format!("d{d}"));
            std::fs::create_dir(&sub).expect("mkdir");
            for f in 0..1200 {
                std::fs::write(sub.join(format!("f{f:04}")), format!("{d}/{f}")).expect("write");
            }
        }
        std::os::unix::fs::symlink("d0", dir.path().join("link")).expect("symlink");
        let listing = list(dir.path(), None).expect("list");
        assert_eq!(listing.paths.len(), 4 + 4 * 1200 + 1);
        assert!(listing.paths.len() >= 2 * PARALLEL_FROM, "large enough to be cut in parts");
        let looked = look_at_each(dir.path(), &listing.paths, |_, path, stat| Ok(Some((path.clone(), stat.kind))))
            .expect("look");
        let seen: Vec<RelPath> = looked.iter().flatten().map(|(path, _)| path.clone()).collect();
        assert_eq!(seen, listing.paths, "in the listing's order");
        let link = RelPath::parse(b"link").expect("path");
        assert!(
            looked.iter().flatten().any(|(path, kind)| *path == link && *kind == super::super::beneath::Kind::Symlink)
        );
        assert!(!listing.paths.iter().any(|path| path.starts_with(&link) && *path != link), "a link is not entered");
        // Walk order: a directory's entries right after it.
        let d0 = listing.paths.iter().position(|path| path.as_bytes() == b"d0").expect("d0");
        assert_eq!(listing.paths[d0 + 1].as_bytes(), b"d0/f0000");
    }

    #[test]
    fn an_entry_gone_since_the_listing_is_none_and_an_error_is_returned() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), "a").expect("write");
        std::fs::write(dir.path().join("b"), "b").expect("write");
        let listing = list(dir.path(), None).expect("list");
        std::fs::remove_file(dir.path().join("a")).expect("rm");
        let looked = look_at_each(dir.path(), &listing.paths, |_, _, stat| Ok(Some(stat.size))).expect("look");
        assert_eq!(looked, [None, Some(1)]);
        let failed = look_at_each(dir.path(), &listing.paths, |_, path, _| -> Result<Option<()>, WorkspaceError> {
            Err(WorkspaceError::Corrupt(path.to_string()))
        });
        assert!(failed.is_err());
    }
}
