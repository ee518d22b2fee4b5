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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::WorkspaceError;
use super::beneath::{Kind, Root, Stat};
use super::blobs::{BlobCache, Build};
use super::manifest::{Entry, Manifest, hash_reader};
use super::rel_path::RelPath;
use super::tree_writer::TreeWriter;
use super::unpack::Limits;

/// What bringing a tree to a manifest takes: what is already right, what goes.
#[derive(Debug)]
pub struct Plan {
    /// Entries already as the manifest says in content (file bytes, link target, kind), with
    /// their identity now; their mode and time may still need setting.
    keep: HashMap<RelPath, (Entry, Stat)>,
    /// Entries to remove (deepest first when removed), and directories to make writable first.
    remove: Vec<RelPath>,
    locked_dirs: Vec<(RelPath, u32)>,
}

/// Looks at every entry of the tree at `root` against `target`, knowing what the tree held
/// when it was last scanned (`state`: entries and identities).
pub fn plan(root: &Path, state: &Manifest, target: &Manifest) -> Result<Plan, WorkspaceError> {
    let tree = Root::open(root)?;
    let mut disk = BTreeMap::new();
    stat_walk(root, None, &mut disk)?;
    let groups = target.hard_link_groups();
    let names = |path: &RelPath, entry: &Entry| -> u64 {
        let leader = match entry {
            Entry::File { link: Some(leader), .. } => leader,
            _ => path,
        };
        groups.get(leader).map_or(1, |others| others.len() as u64 + 1)
    };
    let mut plan = Plan { keep: HashMap::new(), remove: Vec::new(), locked_dirs: Vec::new() };
    for (path, stat) in &disk {
        if stat.kind == Kind::Dir && stat.mode & 0o300 != 0o300 {
            plan.locked_dirs.push((path.clone(), stat.mode));
        }
        let Some(wanted) = target.entries.get(path) else {
            plan.remove.push(path.clone());
            continue;
        };
        let current = match (stat.kind, wanted) {
            (Kind::Dir, Entry::Dir { .. }) => Some(Entry::Dir { mode: stat.mode, mtime: stat.mtime }),
            (Kind::File, Entry::File { size, hash, link, .. }) => {
                let recorded = state.entries.get(path).filter(|_| state.untouched(path, &stat.stamp));
                let known = match recorded {
                    Some(Entry::File { size, hash, .. }) => Some((*size, *hash)),
                    _ if stat.size == *size => {
                        let file = tree.open_file(path)?;
                        Some(hash_reader(file, &tree.display(path))?)
                    }
                    _ => None,
                };
                // One file under exactly the names the manifest gives it: a name linked to
                // anything else would carry a later write through to it.
                let linked_right = stat.nlink == names(path, wanted)
                    && match link {
                        None => true,
                        Some(leader) => {
                            plan.keep.get(leader).is_some_and(|(_, first)| first.stamp.ino == stat.stamp.ino)
                        }
                    };
                match known {
                    Some((got_size, got_hash)) if got_size == *size && got_hash == *hash && linked_right => {
                        Some(wanted.clone())
                    }
                    _ => None,
                }
            }
            (Kind::Symlink, Entry::Symlink { target: wanted_target, .. }) => {
                let now = tree.read_link(path)?;
                (now == *wanted_target).then(|| wanted.clone())
            }
            (Kind::Fifo, Entry::Fifo { .. }) if stat.nlink == 1 => Some(wanted.clone()),
            _ => None,
        };
        match current {
            Some(entry) => {
                plan.keep.insert(path.clone(), (entry, *stat));
            }
            None => plan.remove.push(path.clone()),
        }
    }
    Ok(plan)
}

impl Plan {
    /// Distinct contents the files to write need.
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
        hashes.sort_by_key(|hash| *hash.as_bytes());
        hashes.dedup();
        hashes
    }

    /// Files already right (no content written for them).
    pub fn kept_files(&self) -> usize {
        self.keep.values().filter(|(entry, _)| matches!(entry, Entry::File { .. })).count()
    }

    /// Takes `path` back out of what is kept (its entry changed since the plan: it is
    /// written).
    pub fn forget(&mut self, path: &RelPath) {
        self.keep.remove(path);
    }

    /// Removes what goes and writes what is missing or different, from `cache`; the result is
    /// completed like a fresh build ([`Build::retry`], [`Build::finish`]).
    pub fn execute(
        self,
        root: &Path,
        target: &Manifest,
        cache: &BlobCache,
        limits: &Limits,
    ) -> Result<Build, WorkspaceError> {
        let writer = TreeWriter::new(root, *limits)?;
        for (path, mode) in &self.locked_dirs {
            writer.root().chmod(path, mode | 0o700)?;
        }
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
        for (path, entry) in &target.entries {
            let kept = self.keep.get(path).map(|(kept, _)| kept);
            // A file the master amended while sending it (its entry changed since the plan).
            let kept = match kept {
                Some(Entry::File { size, hash, .. }) if !matches!(entry, Entry::File { size: s, hash: h, .. } if s == size && h == hash) =>
                {
                    build.writer_mut().root().unlink(path)?;
                    None
                }
                other => other,
            };
            match (kept, entry) {
                (_, Entry::Dir { mode, mtime }) => build.writer_mut().dir(path, *mode, *mtime)?,
                (Some(_), _) => {
                    let (_, stat) = self.keep[path];
                    let (held, stamp) = build.writer_mut().keep(path, entry, &stat)?;
                    build.insert(path.clone(), held);
                    build.stamp(path.clone(), stamp);
                }
                (None, Entry::File { .. }) => cache.write_into(&mut build, path, entry)?,
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
        Ok(build)
    }
}

/// Every entry beneath `root`, not following links, with what lstat says.
fn stat_walk(root: &Path, prefix: Option<&RelPath>, out: &mut BTreeMap<RelPath, Stat>) -> Result<(), WorkspaceError> {
    use std::os::unix::ffi::OsStrExt;
    let dir = prefix.map_or_else(|| root.to_path_buf(), |prefix| root.join(prefix.as_path()));
    for entry in std::fs::read_dir(&dir).map_err(WorkspaceError::io(&dir))? {
        let entry = entry.map_err(WorkspaceError::io(&dir))?;
        let name = entry.file_name();
        let relative = match prefix {
            None => RelPath::from_name(name.as_bytes()),
            Some(prefix) => Ok(prefix.join_name(name.as_bytes())),
        }
        .map_err(|reason| WorkspaceError::UnsafeEntry {
            entry: super::rel_path::display_bytes(name.as_bytes()),
            reason: reason.into(),
        })?;
        let meta = entry.metadata().map_err(WorkspaceError::io(root.join(relative.as_path())))?;
        let stat = Stat::from_metadata(&meta);
        out.insert(relative.clone(), stat);
        if stat.kind == Kind::Dir {
            stat_walk(root, Some(&relative), out)?;
        }
    }
    Ok(())
}

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
