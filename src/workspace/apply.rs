//! Applying a task's changes to a workspace: all or nothing.
//!
//! The invariants, enforced here:
//! - A path the task did not change is never written: only the entries of the changes archive
//!   and the listed deletions are touched.
//! - A change applies only if the master's path is still what it was when the task started
//!   (`base`). This is checked for every path before anything is touched — so a conflict
//!   leaves the workspace as it was — and again right before each rename, by identity
//!   (device, inode, size, mtime, ctime); a path that changed in between is a conflict too,
//!   and every step already taken is undone.
//! - Nothing resolves outside the root, through any chain of links: every removal, rename and
//!   write goes through [`Root`], which resolves each parent as it is *now*, never following a
//!   link; a directory that became a link earlier in the same apply is a link, not a place.
//! - Deletions go first, deepest first, then entries are placed parents first, then directory
//!   modes and times: a tree swapped for a link (`mv current releases/v1 && ln -s releases/v1
//!   current`) keeps its contents at their new path.
//!
//! - An identity proves a path untouched only if it was last modified well before the
//!   snapshot (git's "racily clean" rule); otherwise the content is compared.
//! - A file whose mode or time alone changed is changed in place (chmod, utimensat): it stays
//!   the same file, as it would after a chmod here. Hard-link groups are placed by rename,
//!   every name of them, so that they end as one file here too.
//!
//! The changes are first extracted (safely) into a staging directory inside the workspace
//! (same filesystem, so every placement is a rename); replaced and deleted entries are moved
//! into that staging directory rather than removed, so that undoing is renaming back. Every
//! step is written in the staging directory's journal before it is taken ([`super::journal`]):
//! an apply that fails takes its steps back, and one that dies halfway is taken back by the
//! next apply or snapshot of the workspace.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::WorkspaceError;
use super::beneath::{Kind, Root, Stat};
use super::filter::Filter;
use super::journal::{Journal, Undo, recover};
use super::manifest::{Entry, Manifest, SETID_BITS};
use super::rel_path::{PathMap, PathSet, RelPath};
use super::staging::Staging;
use super::timestamp::Timestamp;
use super::unpack::{Limits, peek_empty, unpack_staged};

mod checks;
mod owner;
mod parents;
mod whole;

use parents::Parent;
pub(crate) use whole::give_back;
use whole::{Interruptible, RootAsFound, lock_whole};

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Files, links and pipes placed (directories come with them).
    pub written: u64,
    /// Files, links and pipes removed.
    pub deleted: u64,
    /// Directories the task deleted that still hold entries it never saw (excluded ones, or
    /// added here meanwhile): kept, with those entries.
    pub kept: Vec<RelPath>,
    /// Files whose setuid or setgid bits were cleared (the limits do not carry them).
    pub stripped: Vec<RelPath>,
    /// Files replaced here that had other names the task never saw (hard links outside the
    /// workspace, left out of it, or made here meanwhile): those names keep the old file.
    pub unlinked: Vec<RelPath>,
}

/// One step about to touch the workspace (for observers: progress, tests that race it).
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Delete(&'a RelPath),
    Place(&'a RelPath),
    /// The entry at the path, checked a moment ago, is about to be replaced or removed: the
    /// last moment an edit here can come between (it is then found, put back and a conflict).
    Swap(&'a RelPath),
}

/// What the task started from, as the master sent it.
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    /// The manifest: a path changed here since is a conflict.
    pub manifest: &'a Manifest,
    /// The rules it was taken with: a change to a path they leave out is refused (an honest
    /// agent never sends one).
    pub rules: Option<&'a Filter>,
}

/// Applies `changes` (tar + gzip) and `deleted` to `root`. With `base`, concurrent edits are
/// conflicts and nothing is applied.
pub fn apply(
    root: &Path,
    changes: impl Read,
    deleted: &[RelPath],
    base: Option<Base<'_>>,
    limits: &Limits,
) -> Result<ApplyReport, WorkspaceError> {
    apply_observed(root, changes, deleted, base, limits, &mut |_| {})
}

/// [`apply`], calling `observer` right before each step touches the workspace.
pub fn apply_observed(
    root: &Path,
    changes: impl Read,
    deleted: &[RelPath],
    base: Option<Base<'_>>,
    limits: &Limits,
    observer: &mut dyn FnMut(Step<'_>),
) -> Result<ApplyReport, WorkspaceError> {
    apply_steps(root, changes, deleted, base, limits, None, &mut |step| {
        observer(step);
        Ok(())
    })
}

/// [`apply`], given up — every step already taken undone — as soon as `interrupted` is set
/// (the run was interrupted while the changes were being staged or applied): an interrupted
/// run leaves its workspace as it was, not with a change it said it cancelled.
pub fn apply_interruptible(
    root: &Path,
    changes: impl Read,
    deleted: &[RelPath],
    base: Option<Base<'_>>,
    limits: &Limits,
    interrupted: &AtomicBool,
) -> Result<ApplyReport, WorkspaceError> {
    let changes = Interruptible { inner: changes, interrupted };
    apply_steps(root, changes, deleted, base, limits, Some(interrupted), &mut |_| {
        if interrupted.load(Ordering::Relaxed) {
            return Err(WorkspaceError::Refused {
                path: root.to_path_buf(),
                reason: "the run was interrupted: nothing of the changes was applied".to_owned(),
            });
        }
        Ok(())
    })
}

fn apply_steps(
    root: &Path,
    changes: impl Read,
    deleted: &[RelPath],
    base: Option<Base<'_>>,
    limits: &Limits,
    interrupted: Option<&AtomicBool>,
    observer: &mut dyn FnMut(Step<'_>) -> Result<(), WorkspaceError>,
) -> Result<ApplyReport, WorkspaceError> {
    // A task that changed nothing (most of them) touches nothing here, reads nothing here:
    // no staging directory, no journal, no look for an interrupted apply.
    let (empty, changes) =
        peek_empty(changes).map_err(|source| WorkspaceError::Io { path: root.to_path_buf(), source })?;
    if empty && deleted.is_empty() {
        return Ok(ApplyReport::default());
    }
    // One apply at a time in a workspace, across processes: concurrent tasks' applies of one
    // workspace would otherwise see each other's steps half taken (a directory one of them
    // opened, made, or is setting) and take them for changes made here.
    // The directory the task started from, not another one put at its path since.
    if let Some(was) = base.and_then(|base| base.manifest.root_id)
        && Root::open(root)?.identity()? != was
    {
        return Err(WorkspaceError::Conflict {
            details: vec![format!(
                "the workspace directory {} (it is another directory than the one the task started from: moved or \
                 replaced here while the task ran)",
                root.display()
            )],
        });
    }
    let _one_at_a_time = lock_whole(root, interrupted)?;
    // The root's time as found: put back if the apply adds or removes no name there (what
    // its staging directory did to it is none of the task's doing), and whenever it fails;
    // a read-only root of the user's opened for the apply and closed again.
    let mut root_as_found = RootAsFound::found(root, nix::unistd::geteuid().is_root())?;
    for note in recover(root)? {
        tracing::warn!(root = %root.display(), "{note}");
    }
    let staging = Staging::create(root)?;
    let mut journal = Journal::create(&staging)?;
    // For a recovery, should this apply die: the root's time (and mode) to give back.
    if let Some(at) = root_as_found.time() {
        journal.record(Undo::RootTime { at, opened: root_as_found.opened() })?;
    }
    let new_dir = staging.path().join("new");
    std::fs::create_dir(&new_dir).map_err(WorkspaceError::io(&new_dir))?;
    let unpacked = unpack_staged(changes, &new_dir, limits).map_err(|e| e.no_space_while("applying changes to"))?;
    let (staged, stripped) = (unpacked.manifest, unpacked.stripped);
    let mut apply = Apply {
        root: Root::open(root)?,
        staged_root: Root::open(&new_dir)?,
        // What is replaced or deleted is kept beside `new/` and the journal (as `t1`, `t2`, …).
        trash: Root::open(staging.path())?,
        base: base.map(|base| base.manifest),
        rules: base.and_then(|base| base.rules),
        staged: &staged.entries,
        linked: staged
            .hard_link_groups()
            .into_iter()
            .flat_map(|(leader, others)| std::iter::once(leader.clone()).chain(others.into_iter().cloned()))
            .collect(),
        base_names: base.map(|base| names_by_group(base.manifest)).unwrap_or_default(),
        setid_files: limits.setid_files,
        unlinked: Vec::new(),
        names_held: PathMap::default(),
        group_owners: PathMap::default(),
        journal,
        trashed: 0,
        found_dirs: PathMap::default(),
        parents: BTreeMap::new(),
        root_names_changed: false,
        privileged: nix::unistd::geteuid().is_root(),
    };
    let mut deletions: Vec<&RelPath> = deleted.iter().collect();
    deletions.sort();
    deletions.dedup();
    let result = apply
        .check(&deletions)
        .and_then(|()| apply.run(&deletions, observer))
        .map(|report| ApplyReport { stripped, ..report });
    let Apply { root: root_dir, trash, journal, root_names_changed, .. } = apply;
    let error = match result {
        Ok(report) => {
            journal.commit()?;
            // The staging directory goes with what was replaced or deleted.
            drop(staging);
            if root_names_changed {
                root_as_found.leave_time();
            }
            return Ok(report);
        }
        Err(error) => error.no_space_while("applying changes to"),
    };
    let kept = journal.undo(&root_dir, &trash);
    if kept.is_empty() {
        drop(staging);
        return Err(error);
    }
    // Something saved here meanwhile stays; the originals it would have replaced stay too.
    let staging = staging.keep();
    Err(WorkspaceError::Undone {
        error: Box::new(error),
        kept: format!("{} in {}", kept.join(", "), staging.display()),
    })
}

struct Apply<'a> {
    root: Root,
    staged_root: Root,
    trash: Root,
    base: Option<&'a Manifest>,
    rules: Option<&'a Filter>,
    staged: &'a BTreeMap<RelPath, Entry>,
    /// Staged files that are hard links of each other: placed by rename, all of them, so
    /// that they are one file here too.
    linked: PathSet<RelPath>,
    /// How many names each hard-link group of the base has (by its first path).
    base_names: PathMap<RelPath, u64>,
    /// Whether files' setuid and setgid bits travel.
    setid_files: bool,
    unlinked: Vec<RelPath>,
    /// Names this apply gave files here in its staging directory (a replaced file's second
    /// name, kept for undo), by device and inode: not names the task never saw.
    names_held: PathMap<(u64, u64), u64>,
    /// Whose each hard-link group's file is here (by its first path), once found.
    group_owners: PathMap<RelPath, Option<Stat>>,
    journal: Journal,
    trashed: u64,
    /// Directories found in place (made by nobody, or by another apply meanwhile), with the mode
    /// and time they had: what undo puts back once this apply has set theirs.
    found_dirs: PathMap<RelPath, (u32, Timestamp)>,
    /// Directories whose entries this apply changes, as found (see [`Apply::entering`]).
    parents: BTreeMap<RelPath, Parent>,
    /// Whether permissions do not stop this process (root): no directory needs opening.
    privileged: bool,
    /// Whether a name was added at the root or removed from it (its time then moved as the
    /// task's did).
    root_names_changed: bool,
}

/// The number of names of every hard-link group of `base`, by its first path.
fn names_by_group(base: &Manifest) -> PathMap<RelPath, u64> {
    base.hard_link_groups().into_iter().map(|(leader, others)| (leader.clone(), others.len() as u64 + 1)).collect()
}

impl Apply<'_> {
    fn base_entry(&self, path: &RelPath) -> Option<&Entry> {
        self.base.and_then(|base| base.entries.get(path))
    }

    fn run(
        &mut self,
        deletions: &[&RelPath],
        observer: &mut dyn FnMut(Step<'_>) -> Result<(), WorkspaceError>,
    ) -> Result<ApplyReport, WorkspaceError> {
        let mut report = ApplyReport::default();
        for path in deletions.iter().rev() {
            observer(Step::Delete(path))?;
            // Each step resolves its path as the tree is now, not as an earlier step saw it.
            self.root.forget();
            let Some(stat) = self.recheck(path, None)? else { continue };
            self.entering(path)?;
            self.root_names_changed |= path.parent().is_none();
            if stat.kind == Kind::Dir {
                self.journal.record(Undo::Mkdir { path: (*path).clone(), mode: stat.mode, mtime: stat.mtime })?;
                if !self.root.rmdir(path)? {
                    report.kept.push((*path).clone());
                }
            } else {
                observer(Step::Swap(path))?;
                let trash = self.move_to_trash(path, None)?;
                if !displaced_as_checked(self.trash.lstat(&trash)?.as_ref(), &stat) {
                    // Saved here in the moment since the check: back where it was, untouched.
                    self.root.rename_from(&self.trash, &trash, path, true)?;
                    return Err(changed_meanwhile(path));
                }
                report.deleted += 1;
            }
            self.root.forget();
        }
        let mut dirs = Vec::new();
        let mut groups: std::collections::HashMap<&RelPath, Vec<&RelPath>> = std::collections::HashMap::new();
        for (path, entry) in self.staged {
            observer(Step::Place(path))?;
            self.root.forget();
            let seen = self.recheck(path, Some(entry))?;
            self.place(path, entry, seen, observer)?;
            self.root.forget();
            if let Entry::Dir { mode, mtime } = entry {
                dirs.push((path, *mode, *mtime));
            }
            if self.linked.contains(path) {
                // Placing another name of a file changes its ctime: what undo recognises as
                // the apply's own is each name as the group is now.
                let leader = match entry {
                    Entry::File { link: Some(leader), .. } => leader,
                    _ => path,
                };
                let placed = groups.entry(leader).or_default();
                for earlier in placed.iter() {
                    self.record_placed(earlier)?;
                }
                placed.push(path);
            }
            // (Files, links and pipes: a directory comes with them.)
            if !matches!(entry, Entry::Dir { .. }) {
                report.written += 1;
            }
        }
        for (path, mode, mtime) in dirs.into_iter().rev() {
            self.root.forget();
            let task_set_mode = !matches!(self.base_entry(path), Some(Entry::Dir { mode: old, .. }) if *old == mode);
            if task_set_mode {
                // Now this apply changes the mode of a directory it found: undo may put it back.
                if let Some(&(found_mode, found_mtime)) = self.found_dirs.get(path) {
                    self.journal.record(Undo::Meta {
                        path: path.clone(),
                        mode: found_mode,
                        mtime: found_mtime,
                        set: mode,
                    })?;
                }
                self.root.chmod(path, mode)?;
            } else if let Some(parent) = self.parents.get(path).copied()
                && parent.opened
                && self.root.lstat(path)?.is_some_and(|stat| stat.mode == parent.mode | 0o300)
            {
                // Its time alone changed (a mode changed here meanwhile stays); opened for
                // this apply's steps: closed again.
                self.root.chmod(path, parent.mode)?;
            }
            self.root.set_mtime(path, mtime)?;
        }
        self.leave_parents()?;
        report.unlinked = std::mem::take(&mut self.unlinked);
        Ok(report)
    }

    /// How many names the task knew `path`'s file by (its hard-link group in the base).
    fn known_names(&self, path: &RelPath) -> u64 {
        match self.base_entry(path) {
            Some(Entry::File { link, .. }) => self.base_names.get(link.as_ref().unwrap_or(path)).copied().unwrap_or(1),
            _ => 1,
        }
    }

    /// Names of the file `stat` saw that this apply made (see [`Apply::names_held`]).
    fn names_held(&self, stat: &Stat) -> u64 {
        self.names_held.get(&(stat.stamp.dev, stat.stamp.ino)).copied().unwrap_or(0)
    }

    /// Moves the entry at `path` into the trash, to be restored on undo (over `placed`, the
    /// inode the apply then puts there, if any). Returns its name in the trash.
    fn move_to_trash(&mut self, path: &RelPath, placed: Option<u64>) -> Result<RelPath, WorkspaceError> {
        let trash = self.next_trash();
        self.journal.record(Undo::Restore { trash: trash.clone(), path: path.clone(), placed })?;
        self.trash.rename_from(&self.root, path, &trash, true)?;
        Ok(trash)
    }

    /// Records what the apply just put at `path`, in full (see [`Undo::Placed`]).
    fn record_placed(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
        self.root.forget();
        match self.root.lstat(path)? {
            Some(stat) => self.journal.record(Undo::Placed { path: path.clone(), stamp: stat.stamp }),
            None => Ok(()),
        }
    }

    /// Makes the directory `path`: made in the trash first, its inode written down, then
    /// renamed into place without replacing — so that undo removes only this directory (if
    /// empty), never one that another apply or a local command made at the same path
    /// meanwhile. A directory made here meanwhile is merged into, as one found by the check.
    fn make_dir(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
        let made = self.next_trash();
        self.trash.mkdir(&made, 0o700, false)?;
        // Made aside: it gets the group a directory made here would (a setgid directory's), and
        // hands it down as such a directory does (its mode is the task's once it is filled).
        if let Some(gid) = self.root.group_from_parent(path)? {
            self.trash.chown(&made, None, Some(gid))?;
            self.trash.chmod(&made, 0o2700)?;
        }
        let ino = self.trash.lstat(&made)?.map_or(0, |stat| stat.stamp.ino);
        self.journal.record(Undo::Remove { path: path.clone(), ino, dir: true })?;
        // Its inode number may be given to a directory made here after this one is gone: its
        // birth time tells them apart, where the filesystem keeps one.
        if let Some(at) = self.trash.born(&made) {
            self.journal.record(Undo::Born { path: path.clone(), at })?;
        }
        match self.root.rename_from(&self.trash, &made, path, true) {
            Err(WorkspaceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                self.trash.rmdir(&made)?;
                self.root.forget();
                match self.root.lstat(path)? {
                    Some(stat) if stat.kind == Kind::Dir => self.found_dir(path, &stat),
                    _ => Err(WorkspaceError::Conflict {
                        details: vec![format!("'{path}' (created here while the changes were being applied)")],
                    }),
                }
            }
            other => other,
        }
    }

    /// A directory found at `path` (`stat`), into which the task's entries go: undo puts its
    /// time back (placing entries changes it) — and its mode only if it is still the one found.
    /// Its mode is not this apply's to put back until this apply has set it (see `run`): one
    /// another apply made at the same moment, still being made, holds a mode that apply is
    /// about to change, and undoing this one must not put it back.
    fn found_dir(&mut self, path: &RelPath, stat: &Stat) -> Result<(), WorkspaceError> {
        let (mode, mtime) = (self.mode_as_found(path, stat.mode), stat.mtime);
        self.found_dirs.insert(path.clone(), (mode, mtime));
        self.journal.record(Undo::Meta { path: path.clone(), mode, mtime, set: mode })
    }

    fn next_trash(&mut self) -> RelPath {
        self.trashed += 1;
        RelPath::from_name(format!("t{}", self.trashed).as_bytes()).expect("t and a number is a valid name")
    }

    /// Places the staged `entry` at `path`, where the check just saw `existing`.
    fn place(
        &mut self,
        path: &RelPath,
        entry: &Entry,
        existing: Option<Stat>,
        observer: &mut dyn FnMut(Step<'_>) -> Result<(), WorkspaceError>,
    ) -> Result<(), WorkspaceError> {
        self.entering(path)?;
        self.root_names_changed |= existing.is_none() && path.parent().is_none();
        match entry {
            Entry::Dir { .. } => match existing {
                Some(stat) if stat.kind == Kind::Dir => self.found_dir(path, &stat)?,
                Some(_) => {
                    self.move_to_trash(path, None)?;
                    self.make_dir(path)?;
                }
                None => self.make_dir(path)?,
            },
            Entry::File { .. } | Entry::Fifo { .. }
                if existing.is_some_and(|stat| {
                    stat.nlink == 1
                        && matches!(
                            (stat.kind, entry),
                            (Kind::File, Entry::File { .. }) | (Kind::Fifo, Entry::Fifo { .. })
                        )
                }) && !self.linked.contains(path)
                    && self.base_entry(path).is_some_and(|before| before.same_data(entry)) =>
            {
                // Only the mode or time changed, and the path still holds the data the task
                // started from (checked) under this one name: changed in place, as chmod and
                // touch do. (A file with other names is replaced instead: changing it in place
                // would change names the task never saw, outside the workspace too.)
                let stat = existing.expect("checked above");
                let set = self.mode_to_set(entry, stat.mode).unwrap_or(stat.mode);
                self.journal.record(Undo::Meta { path: path.clone(), mode: stat.mode, mtime: stat.mtime, set })?;
                self.root.chmod(path, set)?;
                self.root.set_mtime(path, entry.mtime())?;
                self.record_placed(path)?;
            }
            Entry::File { .. } | Entry::Symlink { .. } | Entry::Fifo { .. } => {
                if let Some(stat) = existing
                    && stat.kind == Kind::File
                    && stat.nlink.saturating_sub(self.names_held(&stat)) > self.known_names(path)
                {
                    self.unlinked.push(path.clone());
                }
                self.give_owner(path, existing.as_ref())?;
                // Same content as here, other names or not: bits the agent never saw stay.
                if let Some(stat) = existing
                    && stat.kind == Kind::File
                    && stat.mode & SETID_BITS != 0
                    && !self.setid_files
                    && self.base_entry(path).is_some_and(|before| same_bytes(before, entry))
                    && let Some(set) = self.mode_to_set(entry, stat.mode)
                {
                    self.staged_root.chmod(path, set)?;
                }
                // The staged entry keeps its inode when renamed into place: undo removes or
                // replaces only that.
                let placed = self.staged_root.lstat(path)?.map_or(0, |stat| stat.stamp.ino);
                match existing {
                    Some(ref stat) if stat.kind == Kind::Dir => {
                        self.empty_dir_away(path, stat)?;
                        self.journal.record(Undo::Remove { path: path.clone(), ino: placed, dir: false })?;
                        self.put_new(path)?;
                        self.record_placed(path)?;
                    }
                    Some(ref stat) => {
                        // Keep the old entry under a second name, then swap the new one in
                        // atomically: the path is never missing, and undo is one rename. What
                        // the swap took out must be what the check saw: a save made here in
                        // the moment between is swapped back, untouched, and a conflict.
                        let trash = self.next_trash();
                        let restore = Undo::Restore { trash: trash.clone(), path: path.clone(), placed: Some(placed) };
                        self.journal.record(restore)?;
                        if self.trash.hard_link_from(&self.root, path, &trash).is_ok() {
                            *self.names_held.entry((stat.stamp.dev, stat.stamp.ino)).or_default() += 1;
                            observer(Step::Swap(path))?;
                            let swapped = match self.root.exchange_with(&self.staged_root, path, path) {
                                // A filesystem that cannot swap: replaced in one rename, as
                                // checked a moment before.
                                Err(WorkspaceError::Io { source, .. }) if cannot_exchange(&source) => {
                                    self.root.rename_from(&self.staged_root, path, path, false)?;
                                    false
                                }
                                other => other.map(|()| true)?,
                            };
                            if swapped && !displaced_as_checked(self.staged_root.lstat(path)?.as_ref(), stat) {
                                self.root.exchange_with(&self.staged_root, path, path)?;
                                // The second name of what was here is not an original to put
                                // back: what was saved here since is.
                                self.trash.unlink(&trash)?;
                                return Err(changed_meanwhile(path));
                            }
                        } else {
                            observer(Step::Swap(path))?;
                            let trash = self.move_to_trash(path, Some(placed))?;
                            if !displaced_as_checked(self.trash.lstat(&trash)?.as_ref(), stat) {
                                self.root.rename_from(&self.trash, &trash, path, true)?;
                                return Err(changed_meanwhile(path));
                            }
                            self.put_new(path)?;
                        }
                        self.record_placed(path)?;
                    }
                    None => {
                        self.journal.record(Undo::Remove { path: path.clone(), ino: placed, dir: false })?;
                        self.put_new(path)?;
                        self.record_placed(path)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The mode a change that keeps a file's content gives it, `here` being its mode now:
    /// the task's, except that setuid and setgid — which the agent never saw when they do not
    /// travel, so the task cannot have changed them — stay as they are here.
    fn mode_to_set(&self, entry: &Entry, here: u32) -> Option<u32> {
        let new = entry.mode()?;
        if self.setid_files {
            return Some(new);
        }
        Some((new & !SETID_BITS) | (here & SETID_BITS))
    }

    /// Renames the staged entry into `path`, where nothing is now; something created there
    /// since the last check (another apply, a local edit) is a conflict, never replaced.
    fn put_new(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        match self.root.rename_from(&self.staged_root, path, path, true) {
            Err(WorkspaceError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(WorkspaceError::Conflict {
                    details: vec![format!("'{path}' (created here while the changes were being applied)")],
                })
            }
            other => other,
        }
    }

    /// Removes the directory at `path` that the task turned into a file or link: only when
    /// nothing is left in it (its entries the task deleted are gone by now).
    fn empty_dir_away(&mut self, path: &RelPath, stat: &Stat) -> Result<(), WorkspaceError> {
        self.journal.record(Undo::Mkdir { path: path.clone(), mode: stat.mode, mtime: stat.mtime })?;
        if self.root.rmdir(path)? {
            return Ok(());
        }
        let left: Vec<String> = std::fs::read_dir(self.root.display(path))
            .map(|entries| {
                entries.flatten().take(3).map(|e| format!("'{path}/{}'", e.file_name().to_string_lossy())).collect()
            })
            .unwrap_or_default();
        Err(WorkspaceError::Conflict {
            details: vec![format!(
                "'{path}' (a directory here that still holds {} that the task did not know; the task made it {})",
                left.join(", "),
                self.staged.get(path).map_or("something else", Entry::kind_name)
            )],
        })
    }
}

/// Whether the entry a step took out of the workspace (`taken`, seen where it went) is the
/// one the check before the step saw there (`checked`): the same inode, neither written nor
/// touched since (the step itself changes its ctime, not its size or mtime).
fn displaced_as_checked(taken: Option<&Stat>, checked: &Stat) -> bool {
    taken.is_some_and(|taken| {
        let (a, b) = (&taken.stamp, &checked.stamp);
        a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime == b.mtime && taken.kind == checked.kind
    })
}

/// Whether a swap failed only because the filesystem cannot make one.
fn cannot_exchange(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(nix::libc::EINVAL | nix::libc::ENOSYS | nix::libc::EOPNOTSUPP))
}

/// A conflict: `path` changed here in the moment between its check and the step.
fn changed_meanwhile(path: &RelPath) -> WorkspaceError {
    WorkspaceError::Conflict { details: vec![format!("'{path}' (changed here while the changes were being applied)")] }
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Entry, b: &Entry) -> bool {
    matches!((a, b), (Entry::File { size: s1, hash: h1, .. }, Entry::File { size: s2, hash: h2, .. }) if s1 == s2 && h1 == h2)
}
