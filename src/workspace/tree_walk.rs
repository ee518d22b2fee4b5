//! Walking a tree in two steps: the names first (directory listings, in walk order), then a
//! look at each entry — lstat, and whatever the caller does with it (hashing a file) — spread
//! over threads when the tree is large. The looks are independent of each other and are most
//! of a walk's time (a `statx` costs more than a listed name), so a tree of 20,000 files is
//! read in about the time of its share per core.
//!
//! Each thread looks through a [`Root`] of its own: every path is resolved beneath the root
//! one component at a time, never through a link, as everywhere else.

use std::os::fd::AsFd;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};

use super::WorkspaceError;
use super::beneath::{Root, Stat};
use super::filter::Filter;
use super::rel_path::RelPath;
use super::tree_watch::TreeWatch;

/// What a listing found: every path in walk order (parents before children, a directory's
/// names in byte order), and what the rules left out (not descended into).
#[derive(Debug, Default)]
pub(super) struct Listing {
    pub(super) paths: Vec<RelPath>,
    pub(super) excluded: Vec<RelPath>,
}

/// Lists the tree at `root`, leaving out what `filter` excludes. Which entries are
/// directories is what the listing says of them (no lstat); one replaced since is seen as it
/// is when looked at. Each directory is opened relative to the one holding it, never through a
/// link (one swapped in for a directory since its parent was listed is not listed: its own
/// look finds it a link), so no name from outside the tree is ever read.
pub(super) fn list(root: &Path, filter: Option<&Filter>) -> Result<Listing, WorkspaceError> {
    list_watched(root, filter, None)
}

/// [`list`], each directory watched by `watch` (when given) before it is listed.
pub(super) fn list_watched(
    root: &Path,
    filter: Option<&Filter>,
    watch: Option<&mut TreeWatch>,
) -> Result<Listing, WorkspaceError> {
    let mut listing = Listing::default();
    // The root itself is the caller's choice: a link to it is followed, once.
    let dir = Dir::open(root, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| WorkspaceError::Io { path: root.to_path_buf(), source: errno.into() })?;
    let mut watch = watch;
    // Depth first, a directory's names in byte order, without recursion: a tree as deep as its
    // paths may go (a task's `mkdir -p` of thousands of levels) takes no stack, only one open
    // directory per level.
    let mut open = vec![opened(root, dir, None, watch.as_deref_mut())?];
    while let Some(level) = open.last_mut() {
        let Some((name, is_dir)) = level.names.next() else {
            open.pop();
            continue;
        };
        let relative = match &level.prefix {
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
        listing.paths.push(relative.clone());
        if !is_dir {
            continue;
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match Dir::openat(level.dir.as_fd(), name.as_slice(), flags, Mode::empty()) {
            Ok(child) => {
                let child = opened(root, child, Some(relative), watch.as_deref_mut())?;
                open.push(child);
            }
            // Gone, or no longer a directory (a link, a file) since it was listed: its look
            // sees what it is now.
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {}
            Err(errno) => return Err(WorkspaceError::Io { path: root.join(relative.as_path()), source: errno.into() }),
        }
    }
    Ok(listing)
}

/// A directory being listed: open (its subdirectories are opened through it), and the names
/// in it not yet taken, in byte order, each with whether it is a directory.
struct Level {
    dir: Dir,
    prefix: Option<RelPath>,
    names: std::vec::IntoIter<(Vec<u8>, bool)>,
}

/// Watches (when asked) and reads the directory `dir` at `prefix`.
fn opened(
    root: &Path,
    mut dir: Dir,
    prefix: Option<RelPath>,
    watch: Option<&mut TreeWatch>,
) -> Result<Level, WorkspaceError> {
    let shown = || prefix.as_ref().map_or_else(|| root.to_path_buf(), |prefix| root.join(prefix.as_path()));
    let fail = |errno: Errno| WorkspaceError::Io { path: shown(), source: errno.into() };
    if let Some(watch) = watch {
        watch.add_dir(&dir, prefix.as_ref());
    }
    let mut listed: Vec<(Vec<u8>, Option<Type>)> = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(fail)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            listed.push((name.to_vec(), entry.file_type()));
        }
    }
    let mut names: Vec<(Vec<u8>, bool)> = Vec::with_capacity(listed.len());
    for (name, kind) in listed {
        let is_dir = match kind {
            Some(kind) => kind == Type::Directory,
            // The filesystem does not say (DT_UNKNOWN): lstat, through the directory.
            None => match fstatat(dir.as_fd(), name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
                // Gone since it was listed: it is not part of this moment.
                Err(Errno::ENOENT) => continue,
                // Anything else (no permission) is an error, never an entry silently left
                // out: left out of the tree a task left, it would read as deleted.
                Err(errno) => return Err(fail(errno)),
            },
        };
        names.push((name, is_dir));
    }
    names.sort_unstable();
    Ok(Level { dir, prefix, names: names.into_iter() })
}

/// Fewer entries than this are looked at on the calling thread: starting threads would cost
/// more than they save.
const PARALLEL_FROM: usize = 512;

/// The most threads a walk uses.
const MAX_THREADS: usize = 8;

/// Threads a large walk uses: the cores this process may run on (up to [`MAX_THREADS`]), found
/// once — finding them reads the cgroup's files, which every scan would otherwise do again.
pub(super) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from).min(MAX_THREADS))
}

/// `look(tree, path, stat)` for every path, in order, with what lstat says of it; None where
/// the path is gone since it was listed (or `look` says so). Large lists are cut in one
/// contiguous part per core, each looked at by a thread of its own.
pub(super) fn look_at_each<T: Send>(
    root: &Path,
    paths: &[RelPath],
    look: impl Fn(&Root, &RelPath, Stat) -> Result<Option<T>, WorkspaceError> + Sync,
) -> Result<Vec<Option<T>>, WorkspaceError> {
    look_at_each_with(root, paths, || (), |(), tree, path, stat| look(tree, path, stat))
}

/// [`look_at_each`], each thread's looks sharing a state of their own (`start()`): a place in
/// a map the paths are looked up in, in order.
pub(super) fn look_at_each_with<S, T: Send>(
    root: &Path,
    paths: &[RelPath],
    start: impl Fn() -> S + Sync,
    look: impl Fn(&mut S, &Root, &RelPath, Stat) -> Result<Option<T>, WorkspaceError> + Sync,
) -> Result<Vec<Option<T>>, WorkspaceError> {
    let part = |paths: &[RelPath]| -> Result<Vec<Option<T>>, WorkspaceError> {
        let tree = Root::open(root)?;
        let mut state = start();
        let mut looked = Vec::with_capacity(paths.len());
        for path in paths {
            looked.push(match tree.lstat(path)? {
                Some(stat) => look(&mut state, &tree, path, stat)?,
                None => None,
            });
        }
        Ok(looked)
    };
    let threads = if paths.len() < PARALLEL_FROM { 1 } else { cores() };
    if threads < 2 {
        return part(paths);
    }
    let parts: Vec<Result<Vec<Option<T>>, WorkspaceError>> = std::thread::scope(|scope| {
        // The first part on this thread, the others each on a new one.
        let mut chunks = paths.chunks(paths.len().div_ceil(threads));
        let first = chunks.next().unwrap_or_default();
        let part = &part;
        let handles: Vec<_> = chunks.map(|chunk| scope.spawn(move || part(chunk))).collect();
        let mut parts = vec![part(first)];
        parts.extend(
            handles.into_iter().map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
        );
        parts
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

    /// A chain of directories deeper than a path may name at once (a task's `mkdir -p` of
    /// a thousand levels) is listed and looked at on a thread with a small stack: the walk
    /// takes no stack per level (it overflowed and aborted the agent). (It takes a descriptor
    /// per level: 900 stays under the common limit of 1,024.)
    #[test]
    fn a_chain_of_directories_hundreds_deep_is_walked_on_a_small_stack() {
        const DEPTH: usize = 900;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut at = nix::fcntl::open(dir.path(), OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).expect("open");
        for _ in 0..DEPTH {
            nix::sys::stat::mkdirat(at.as_fd(), "d", Mode::from_bits_truncate(0o755)).expect("mkdirat");
            at = nix::fcntl::openat(at.as_fd(), "d", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .expect("openat");
        }
        let root = dir.path().to_path_buf();
        let walk = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let listing = list(&root, None).expect("list");
                let looked = look_at_each(&root, &listing.paths, |_, _, stat| Ok(Some(stat.kind))).expect("look");
                (listing.paths, looked)
            })
            .expect("thread")
            .join()
            .expect("the walk's thread ended without overflowing its stack");
        let (paths, looked) = walk;
        assert_eq!(paths.len(), DEPTH);
        assert_eq!(paths[DEPTH - 1].depth(), DEPTH, "in walk order, the deepest last");
        assert!(looked.iter().all(|kind| *kind == Some(super::super::beneath::Kind::Dir)), "each one seen");
    }

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

    /// A directory swapped for a link to somewhere else between the listing of its parent and
    /// its own is not listed through the link: no name from outside the tree is ever read.
    #[test]
    fn a_directory_swapped_for_a_link_is_never_listed_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, stage, outside) = (dir.path().join("ws"), dir.path().join("stage"), dir.path().join("outside"));
        for made in [&root, &stage, &outside] {
            std::fs::create_dir(made).expect("mkdir");
        }
        std::fs::write(outside.join("secret"), "not the workspace's").expect("write");
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/inside"), "the workspace's").expect("write");
        std::os::unix::fs::symlink(&outside, stage.join("other")).expect("symlink");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (root, stop) = (root.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    nix::fcntl::renameat2(
                        nix::fcntl::AT_FDCWD,
                        &stage.join("other"),
                        nix::fcntl::AT_FDCWD,
                        &root.join("d"),
                        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                    )
                    .expect("swap");
                    swaps += 1;
                }
                swaps
            })
        };
        let mut through = 0;
        for _ in 0..3000 {
            let listing = list(&root, None).expect("list");
            if listing.paths.iter().any(|path| path.as_bytes() == b"d/secret") {
                through += 1;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(swapper.join().expect("swapper") > 0);
        assert_eq!(through, 0, "listings that read the outside directory's names");
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
