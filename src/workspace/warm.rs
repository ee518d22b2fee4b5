//! Warm trees on the agent: a tree kept from an earlier task of the same workspace is brought
//! to the next task's manifest by writing or removing only the entries that differ, as CI
//! runners keep a checkout between jobs.
//!
//! Nothing about the tree is taken on trust. Every entry on disk is looked at (lstat); an entry
//! whose identity (device, inode, size, mtime, ctime) is exactly as recorded when the tree was
//! last scanned, and was old enough then (the racily-clean rule), is known without reading it;
//! any other file of the right size is hashed; everything else is replaced. So leftovers of a
//! task whose changes the master did not apply, and edits made behind the agent's back, are
//! undone; and a file whose mtime was put back (`touch -r`) still has a new ctime. Entries the
//! manifest does not name — whatever the last task left, excluded paths included — are
//! removed: a task sees exactly the manifest's files.
//!
//! Writes go through the same [`TreeWriter`] as a fresh build (limits, no links followed,
//! setuid rules), and the result is a [`Build`]: contents missing from the cache are fetched
//! and written the same way.

use std::collections::BTreeSet;
use std::path::Path;

use super::WorkspaceError;
use super::beneath::{Kind, Root, Stat};
use super::blobs::{BlobCache, Build};
use super::in_order::InOrder;
use super::manifest::{Entry, Manifest, hash_reader};
use super::rel_path::{PathMap, PathSet, RelPath};
use super::tree_watch::WatchedTree;
use super::tree_writer::TreeWriter;
use super::unpack::Limits;

mod moves;
mod plain;

pub use plain::plain_file;

/// What bringing a tree to a manifest takes: what is already right, what goes.
#[derive(Debug)]
pub struct Plan {
    /// Entries already as the manifest says in content (file bytes, link target, kind), with
    /// their identity now; their mode and time may still need setting.
    keep: PathMap<RelPath, (Entry, Stat)>,
    /// Entries to remove (deepest first when removed), and directories to make writable first.
    remove: Vec<RelPath>,
    locked_dirs: Vec<(RelPath, u32)>,
    /// Files that go whose content another path of the manifest names (a rename): moved there
    /// instead of written again.
    moves: moves::Moves,
}

/// Looks at every entry of the tree at `root` against `target`, knowing what the tree held
/// when it was last built (`state`: entries and identities as the build left them).
///
/// An entry is kept only if it is provably as the build left it: a file whose identity is
/// unchanged (its content is then known — read again only if the identity was recorded in the
/// same instant as a change could be), owned by the agent, under exactly the names the
/// manifest gives it. Anything a task did to an entry — contents, owner, extended attributes
/// or capabilities, links — changes its ctime, and the entry is written anew. A directory owned
/// by someone else goes with everything in it; one on another filesystem (a mount a task left)
/// fails the plan, and the tree is not used.
pub fn plan(root: &Path, state: &Manifest, target: &Manifest) -> Result<Plan, WorkspaceError> {
    let disk = stat_walk(root, state)?;
    plan_from(root, state, target, &disk)
}

/// [`plan`], from what the scan after the tree's last task saw (`watched`) instead of a look
/// at every entry: only the entries its watch names (changed or opened since) are looked at
/// again, and the watch is asked again once the plan is made, so that nothing changed before
/// it is missed ([`super::tree_watch`]). Every entry is looked at when the watch cannot say
/// (no watch, a name made or removed since, events lost, entries the scan's rules left out,
/// which it did not look into). Also says whether the watch served.
pub fn plan_watched(
    root: &Path,
    state: &Manifest,
    target: &Manifest,
    watched: Option<WatchedTree>,
) -> Result<(Plan, bool), WorkspaceError> {
    if let Some(WatchedTree { watch, seen, left_out: false }) = watched
        && let Some(touched) = watch.touched()
    {
        let started = std::time::Instant::now();
        if let Some((disk, read)) = seen_walk(root, state, seen, &touched)? {
            let seen_in = started.elapsed();
            let plan = plan_from(root, state, target, &disk)?;
            // Since: nothing but the openings of the files read here.
            let only_read = |since: std::collections::BTreeMap<RelPath, bool>| {
                since.iter().all(|(path, changed)| !changed && read.contains(path))
            };
            if watch.touched_how().is_some_and(only_read) {
                tracing::debug!(
                    entries = disk.len(),
                    looked_again = touched.len(),
                    seen_ms = seen_in.as_secs_f64() * 1e3,
                    plan_ms = (started.elapsed() - seen_in).as_secs_f64() * 1e3,
                    "planned from the last scan"
                );
                return Ok((plan, true));
            }
        }
        tracing::debug!(tree = %root.display(), "the tree changed while it was planned: every entry is looked at");
    }
    Ok((plan(root, state, target)?, false))
}

/// The plan for `target` of the tree at `root`, whose every entry is as `disk` says.
fn plan_from(
    root: &Path,
    state: &Manifest,
    target: &Manifest,
    disk: &[(RelPath, Looked)],
) -> Result<Plan, WorkspaceError> {
    let tree = Root::open(root)?;
    let root_dev = std::fs::symlink_metadata(root).map_err(WorkspaceError::io(root))?;
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    {
        use std::os::unix::fs::MetadataExt;
        if let Some((path, _)) = disk.iter().find(|(_, (stat, _))| stat.stamp.dev != root_dev.dev()) {
            return Err(WorkspaceError::Refused {
                path: tree.display(path),
                reason: "on another filesystem (a mount an earlier task left): the tree is not reused".to_owned(),
            });
        }
    }
    // Which names each file has in the tree: a kept file must have exactly its manifest's.
    let mut names_on_disk: PathMap<u64, Vec<&RelPath>> = PathMap::default();
    for (path, (stat, _)) in disk {
        if stat.kind == Kind::File && stat.nlink > 1 {
            names_on_disk.entry(stat.stamp.ino).or_default().push(path);
        }
    }
    let groups = target.hard_link_groups();
    let group_of = |path: &RelPath, entry: &Entry| -> Vec<RelPath> {
        let leader = match entry {
            Entry::File { link: Some(leader), .. } => leader,
            _ => path,
        };
        let mut names: Vec<RelPath> = vec![leader.clone()];
        names.extend(groups.get(leader).into_iter().flatten().map(|name| (*name).clone()));
        names.sort();
        names
    };
    let mut foreign_dirs: PathSet<RelPath> = PathSet::default();
    let mut plan = Plan {
        keep: PathMap::default(),
        remove: Vec::new(),
        locked_dirs: Vec::new(),
        moves: moves::Moves::new(target, &groups, disk.iter().map(|(path, _)| path)),
    };
    plan.keep.reserve(target.entries.len());
    // The tree is walked in about the order both manifests hold their entries.
    let (mut wanted_at, mut built_at) = (InOrder::new(&target.entries), InOrder::new(&state.entries));
    for (path, (stat, read)) in disk {
        if stat.kind == Kind::Dir && stat.mode & 0o300 != 0o300 {
            plan.locked_dirs.push((path.clone(), stat.mode));
        }
        let under_foreign =
            !foreign_dirs.is_empty() && path.ancestors().any(|ancestor| foreign_dirs.contains(&ancestor));
        let owned = stat.uid == uid && stat.gid == gid;
        if stat.kind == Kind::Dir && !owned {
            foreign_dirs.insert(path.clone());
        }
        let Some(wanted) = wanted_at.get(path).filter(|_| owned && !under_foreign) else {
            // A file of the agent's, one name, provably as built: its content is known (read on
            // the walk's threads when recorded in the same instant as a change could be).
            let content = match built_at.get(path) {
                Some(Entry::File { hash, .. })
                    if stat.kind == Kind::File
                        && owned
                        && !under_foreign
                        && stat.nlink == 1
                        && state.stamps.get(path) == Some(&stat.stamp) =>
                {
                    if state.settled(&stat.stamp) {
                        Some(*hash)
                    } else {
                        read.map(|(_, hash)| hash)
                    }
                }
                _ => None,
            };
            plan.moves.offer(path, content, stat);
            plan.remove.push(path.clone());
            continue;
        };
        let current = match (stat.kind, wanted) {
            (Kind::Dir, Entry::Dir { .. }) => Some(Entry::Dir { mode: stat.mode, mtime: stat.mtime }),
            (Kind::File, Entry::File { size, hash, .. }) => {
                let as_built = state.stamps.get(path) == Some(&stat.stamp);
                let known = match built_at.get(path) {
                    Some(Entry::File { size, hash, .. }) if as_built && state.settled(&stat.stamp) => {
                        Some((*size, *hash))
                    }
                    // Recorded in the same instant as a change could have been made: read
                    // on the walk's threads.
                    Some(Entry::File { .. }) if as_built => *read,
                    _ => None,
                };
                let names_right = if stat.nlink == 1 {
                    // One name on disk, and one in the manifest: neither a follower of a
                    // group nor a group's leader.
                    !matches!(wanted, Entry::File { link: Some(_), .. }) && !groups.contains_key(path)
                } else {
                    let mut now: Vec<RelPath> =
                        names_on_disk.get(&stat.stamp.ino).into_iter().flatten().map(|name| (*name).clone()).collect();
                    now.sort();
                    stat.nlink == now.len() as u64 && now == group_of(path, wanted)
                };
                match known {
                    Some((got_size, got_hash)) if got_size == *size && got_hash == *hash && names_right => {
                        Some(wanted.clone())
                    }
                    _ => None,
                }
            }
            // (A link whose time alone moved is made again: its time is part of it.)
            (Kind::Symlink, Entry::Symlink { target: wanted_target, mtime }) if stat.mtime == *mtime => {
                let now = tree.read_link(path)?;
                (now == *wanted_target).then(|| wanted.clone())
            }
            (Kind::Fifo, Entry::Fifo { .. }) if stat.nlink == 1 && state.stamps.get(path) == Some(&stat.stamp) => {
                Some(wanted.clone())
            }
            _ => None,
        };
        match current {
            Some(entry) => {
                plan.keep.insert(path.clone(), (entry, *stat));
            }
            None => plan.remove.push(path.clone()),
        }
    }
    plan.moves.finish(target, &plan.keep, &groups);
    Ok(plan)
}

impl Plan {
    /// Distinct contents the files to write need (not those files of the tree being moved
    /// provide for every path that names them).
    pub fn needed(&self, target: &Manifest) -> Vec<blake3::Hash> {
        let mut hashes: Vec<blake3::Hash> = target
            .entries
            .iter()
            .filter(|(path, _)| !self.keep.contains_key(*path))
            .filter_map(|(_, entry)| match entry {
                Entry::File { hash, link: None, .. } => Some(*hash),
                _ => None,
            })
            .collect();
        hashes.retain(|hash| !self.moves.covers(hash));
        hashes.sort_by_key(|hash| *hash.as_bytes());
        hashes.dedup();
        hashes
    }

    /// Files already right (no content written for them).
    pub fn kept_files(&self) -> usize {
        self.keep.values().filter(|(entry, _)| matches!(entry, Entry::File { .. })).count()
    }

    /// Removes what goes and writes what is missing or different, from `cache` (or moves a
    /// file of the tree that another path now names); the result is completed like a fresh
    /// build ([`Build::retry`], [`Build::finish`]). Also returns how many files were moved
    /// rather than written.
    pub fn execute(
        self,
        root: &Path,
        target: &Manifest,
        cache: &BlobCache,
        limits: &Limits,
    ) -> Result<(Build, usize), WorkspaceError> {
        let mut moved = 0;
        let writer = TreeWriter::new(root, *limits)?;
        // The root as a new directory is: the agent's mode, and (below) the time of the build.
        // (The agent's own umask: task threads that change theirs have a private one.)
        let root_mode = 0o777 & !crate::process::umask_at_start().unwrap_or(0o022);
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(root_mode | 0o700))
            .map_err(WorkspaceError::io(root))?;
        for (path, mode) in &self.locked_dirs {
            writer.root().chmod(path, mode | 0o700)?;
        }
        // Files another path takes: aside first (their directory may be one that goes).
        let mut held = self.moves.hold_aside(writer.root())?;
        let mut removals = self.remove;
        removals.sort_by(|a, b| b.cmp(a));
        for path in &removals {
            writer.root().forget();
            match writer.root().lstat(path)? {
                Some(stat) if stat.kind == Kind::Dir && !writer.root().rmdir(path)? => {
                    return Err(WorkspaceError::Refused {
                        path: writer.root().display(path),
                        reason: "a directory to remove still holds entries".to_owned(),
                    });
                }
                Some(stat) if stat.kind == Kind::Dir => {}
                Some(_) => writer.root().unlink(path)?,
                None => {}
            }
        }
        writer.root().forget();
        let mut build = Build::on(writer);
        build.reserve(target.entries.len());
        for (path, entry) in &target.entries {
            let kept = self.keep.get(path);
            // A file the master amended while sending it (its entry changed since the plan).
            let kept = match kept {
                Some((Entry::File { size, hash, .. }, _)) if !matches!(entry, Entry::File { size: s, hash: h, .. } if s == size && h == hash) =>
                {
                    build.writer_mut().root().unlink(path)?;
                    None
                }
                other => other,
            };
            match (kept, entry) {
                (_, Entry::Dir { mode, mtime }) => build.writer_mut().dir(path, *mode, *mtime)?,
                (Some((_, stat)), _) => {
                    let (held, stamp) = build.writer_mut().keep(path, entry, stat)?;
                    build.insert(path.clone(), held);
                    build.stamp(path.clone(), stamp);
                }
                (None, Entry::File { .. }) => match held.place(&mut build, path, entry, cache)? {
                    moves::Placed::Moved => moved += 1,
                    moves::Placed::Written => {}
                    moves::Placed::Nothing => cache.write_into(&mut build, path, entry)?,
                },
                (None, Entry::Symlink { target, mtime }) => {
                    build.writer_mut().symlink(path, target, *mtime)?;
                    build.insert(path.clone(), entry.clone());
                }
                (None, Entry::Fifo { mode, mtime }) => {
                    let held = build.writer_mut().fifo(path, *mode, *mtime)?;
                    build.insert(path.clone(), held);
                }
            }
        }
        held.clear(build.writer_mut().root())?;
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(root_mode))
            .map_err(WorkspaceError::io(root))?;
        Ok((build, moved))
    }
}

/// Every entry beneath `root`, not following links, with what lstat says: parents before
/// their children.
///
/// A file whose identity is as `state` recorded it but was recorded in the same instant as a
/// change could have been made (the racily-clean rule: every file of a tree built just before
/// its task) is read and hashed here, on the walk's threads, and its size and hash come with
/// it.
fn stat_walk(root: &Path, state: &Manifest) -> Result<Vec<(RelPath, Looked)>, WorkspaceError> {
    let listing = super::tree_walk::list(root, None)?;
    let looked = super::tree_walk::look_at_each(root, &listing.paths, |tree, path, stat| {
        let read = if unproven(state, path, &stat) { Some(read_now(tree, path)?) } else { None };
        Ok(Some((stat, read)))
    })?;
    Ok(listing.paths.into_iter().zip(looked).filter_map(|(path, looked)| Some((path, looked?))).collect())
}

/// [`stat_walk`] from what a scan saw of every entry (in walk order), no name having been made
/// or removed since: the entries in `touched` are looked at again, and files recorded in the
/// same instant as a change could have been made are read. Also returns the files read. None
/// when a touched entry is not one the scan saw as it is now (every entry is looked at then).
fn seen_walk(
    root: &Path,
    state: &Manifest,
    seen: Vec<(RelPath, Stat)>,
    touched: &BTreeSet<RelPath>,
) -> Result<Option<SeenWalk>, WorkspaceError> {
    let tree = Root::open(root)?;
    let (mut disk, mut read, mut looked_again) = (Vec::with_capacity(seen.len()), BTreeSet::new(), 0);
    for (path, stat) in seen {
        let stat = if touched.contains(&path) {
            looked_again += 1;
            match tree.lstat(&path)? {
                // (A file with other names changed through this one: the others were not named.)
                Some(now) if now.kind == stat.kind && now.nlink == 1 && stat.nlink == 1 => now,
                Some(now) if now.kind == stat.kind && now.kind != Kind::File => now,
                _ => return Ok(None),
            }
        } else {
            stat
        };
        let content = if unproven(state, &path, &stat) {
            read.insert(path.clone());
            Some(read_now(&tree, &path)?)
        } else {
            None
        };
        disk.push((path, (stat, content)));
    }
    // (A touched entry the scan did not see: every entry is looked at.)
    Ok((looked_again == touched.len()).then_some((disk, read)))
}

/// Whether the file at `path`, as `stat` saw it, is as `state` recorded it but was recorded
/// in the same instant as a change could have been made (the racily-clean rule): read to
/// know it.
fn unproven(state: &Manifest, path: &RelPath, stat: &Stat) -> bool {
    // (Most entries are settled: no look-up of their path for them.)
    stat.kind == Kind::File
        && !state.settled(&stat.stamp)
        && state.stamps.get(path) == Some(&stat.stamp)
        && matches!(state.entries.get(path), Some(Entry::File { .. }))
}

/// The size and hash of the file at `path` now.
fn read_now(tree: &Root, path: &RelPath) -> Result<(u64, blake3::Hash), WorkspaceError> {
    hash_reader(tree.open_file(path)?, &tree.display(path))
}

/// Every entry as a scan saw it (looked at again where it changed since), and the files read.
type SeenWalk = (Vec<(RelPath, Looked)>, BTreeSet<RelPath>);

/// An entry as the walk saw it, and what a file recorded in the same instant as a change could
/// have been made holds now (size and hash).
type Looked = (Stat, Option<(u64, blake3::Hash)>);

/// `manifest` with the identity of every entry as the tree at `root` holds it now (those it
/// carries already, kept entries, are as lstat saw them when they were kept), and now as the
/// time it was looked at: what the scan after the task compares against.
pub fn stamped(root: &Path, mut manifest: Manifest) -> Result<Manifest, WorkspaceError> {
    // When the look began: an identity proves nothing about changes in the same moment.
    let now = super::Timestamp::now();
    let tree = Root::open(root)?;
    manifest.scanned_at = Some(now);
    // Kept entries come with their identity already; the rest are looked at.
    let missing: Vec<RelPath> =
        manifest.entries.keys().filter(|path| !manifest.stamps.contains_key(*path)).cloned().collect();
    for path in missing {
        if let Some(stat) = tree.lstat(&path)? {
            manifest.stamps.insert(path, stat.stamp);
        }
    }
    Ok(manifest)
}

/// Files of at least this size that a task made are kept in its tree as the scan after it
/// found them (smaller ones come back from the cache, where they are adopted, at little cost).
const KEPT_AS_MADE_FROM: u64 = 1024 * 1024;

/// Unsettled entries of a tree as built past which the scan after its task is worth carrying
/// into what the tree is kept as (a few, the files a warm build wrote, are read again by the
/// next plan at little cost).
const UNSETTLED_WORTH_PROVING: usize = 64;

/// What a tree built as `built` is kept as, once the scan after its task (`after`) has looked
/// at it. An entry's identity proves it unchanged only if it was recorded well after the entry
/// last changed (the racily-clean rule): a new tree's files were all written just before they
/// were recorded, and the next task would read every one of them again. The scan after the
/// task read those (or trusted them where they were proven), so an entry it found with the
/// same identity and the same content is known as of that scan: the tree is kept with the
/// scan's time, and without the identity of every entry the scan found otherwise — changed by
/// the task, or by anything in the moment before it was recorded — which the next task then
/// writes anew.
pub fn proven_by(
    built: std::sync::Arc<Manifest>,
    after: &Manifest,
    plain: impl Fn(&RelPath) -> bool,
) -> std::sync::Arc<Manifest> {
    let later = matches!((built.scanned_at, after.scanned_at), (Some(was), Some(now)) if now > was);
    if !later {
        return built;
    }
    // Large files whose bytes the task made or changed, as the scan after it read them: kept
    // in the tree for a next task whose manifest names the same content (the master applied
    // them) — not removed and fetched again, from the cache or (past what it keeps) from the
    // master. Only `plain` ones (no extended attribute, no inode flag: the master's copy has
    // none of what a task set there), and never one whose bytes the task left as they were
    // (a change of its ctime alone is an attribute or a flag the task gave it).
    let made: Vec<(&RelPath, &Entry, &super::beneath::Stamp)> = after
        .entries
        .iter()
        .filter(|(path, entry)| match (entry, built.entries.get(*path)) {
            (Entry::File { size, .. }, _) if *size < KEPT_AS_MADE_FROM => false,
            (Entry::File { size, hash, .. }, Some(Entry::File { size: was_size, hash: was_hash, .. })) => {
                size != was_size || hash != was_hash
            }
            (Entry::File { .. }, _) => true,
            _ => false,
        })
        .filter_map(|(path, entry)| Some((path, entry, after.stamps.get(path)?)))
        .filter(|(path, _, _)| plain(path))
        .collect();
    let unsettled = built.stamps.values().filter(|stamp| !built.settled(stamp)).take(UNSETTLED_WORTH_PROVING + 1);
    if made.is_empty() && unsettled.count() <= UNSETTLED_WORTH_PROVING {
        return built;
    }
    let mut state = std::sync::Arc::unwrap_or_clone(built);
    for (path, entry, stamp) in made {
        state.entries.insert(path.clone(), entry.clone());
        state.stamps.insert(path.clone(), *stamp);
    }
    let Manifest { entries, stamps, .. } = &mut state;
    stamps.retain(|path, stamp| {
        after.stamps.get(path) == Some(stamp)
            && match (entries.get(path), after.entries.get(path)) {
                (Some(Entry::File { size, hash, .. }), Some(Entry::File { size: now_size, hash: now_hash, .. })) => {
                    size == now_size && hash == now_hash
                }
                (Some(Entry::File { .. }), _) => false,
                _ => true,
            }
    });
    state.scanned_at = after.scanned_at;
    std::sync::Arc::new(state)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::workspace::Timestamp;
    use crate::workspace::beneath::Stamp;

    fn file(content: &[u8]) -> Entry {
        Entry::File {
            mode: 0o644,
            size: content.len() as u64,
            hash: blake3::hash(content),
            mtime: Timestamp::new(0, 0),
            link: None,
        }
    }

    /// A new tree: every file recorded just after it was written, at `at`.
    fn built(files: usize, at: Timestamp) -> Manifest {
        let mut manifest = Manifest { scanned_at: Some(at), ..Manifest::default() };
        for i in 0..files {
            let path = RelPath::parse(format!("f{i:03}").as_bytes()).expect("path");
            let stamp = Stamp { dev: 1, ino: i as u64, size: 1, mtime: at, ctime: at };
            manifest.entries.insert(path.clone(), file(b"x"));
            manifest.stamps.insert(path, stamp);
        }
        manifest
    }

    #[test]
    fn the_scan_after_a_task_proves_what_it_found_unchanged_and_nothing_else() {
        // (Nanoseconds: a filesystem with fine times, whose margin is short.)
        let at = Timestamp::new(1_000, 500);
        let built = Arc::new(built(UNSETTLED_WORTH_PROVING + 10, at));
        assert!(!built.untouched(
            &RelPath::parse(b"f000").expect("path"),
            &built.stamps.values().next().copied().expect("a stamp")
        ));
        let mut after = (*built).clone();
        after.scanned_at = Some(Timestamp::new(1_001, 0));
        let (same_stamp_new_content, new_stamp, gone) = (
            RelPath::parse(b"f001").expect("path"),
            RelPath::parse(b"f002").expect("path"),
            RelPath::parse(b"f003").expect("path"),
        );
        // Changed in the instant it was recorded: the same identity, other bytes.
        after.entries.insert(same_stamp_new_content.clone(), file(b"y"));
        after.stamps.get_mut(&new_stamp).expect("stamp").ctime = Timestamp::new(1_000, 5);
        after.entries.remove(&gone);
        after.stamps.remove(&gone);
        let state = proven_by(Arc::clone(&built), &after, |_| true);
        assert_eq!(state.scanned_at, after.scanned_at);
        for changed in [&same_stamp_new_content, &new_stamp, &gone] {
            assert!(!state.stamps.contains_key(changed), "{changed} is not proven");
        }
        let kept = RelPath::parse(b"f004").expect("path");
        assert!(state.untouched(&kept, &built.stamps[&kept]), "a file found as built is proven by the later scan");
        assert_eq!(state.entries, built.entries, "what the tree was built to is unchanged");
        // A tree whose files were proven already is kept as it was built.
        let settled = Arc::new(Manifest { scanned_at: Some(Timestamp::new(2_000, 0)), ..(*built).clone() });
        assert!(Arc::ptr_eq(&proven_by(Arc::clone(&settled), &after, |_| true), &settled));
    }
}
