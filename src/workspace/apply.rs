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
use super::unpack::{GivenOwner, Limits, peek_empty, unpack_staged};

mod attributes;
mod checks;
mod owner;
mod parents;
mod steps;
mod whole;

use parents::Parent;
use steps::{changed_meanwhile, displaced_as_checked};
pub use whole::applying;
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
    /// Setuid or setgid files the task gave another owner or group, which this process cannot
    /// give (it is not root, or not in that group): that bit was cleared.
    pub not_given: Vec<RelPath>,
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
    // (Until its steps are committed or taken back, the workspace is half-applied: see
    // `applying`.)
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
    let (staged, stripped, given, made_anew, moved_from) =
        (unpacked.manifest, unpacked.stripped, unpacked.given, unpacked.made_anew, unpacked.moved_from);
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
        given: &given,
        made_anew: &made_anew,
        moved_from: &moved_from,
        moved_owners: PathMap::default(),
        not_given: Vec::new(),
        unlinked: Vec::new(),
        names_held: PathMap::default(),
        group_owners: PathMap::default(),
        journal,
        trashed: 0,
        found_dirs: PathMap::default(),
        parents: BTreeMap::new(),
        root_names_changed: false,
        privileged: nix::unistd::geteuid().is_root(),
        dir_modes: PathMap::default(),
        handed_down: std::cell::RefCell::default(),
        staging_hands_down: attributes::hands_down(&new_dir),
    };
    // Whose the entries the task moved over others are: their own here, found before any step
    // — if what is there is still the entry the task started from (its identity in the base);
    // anything else there now (gone, replaced, a link) gives none: the runner's then.
    for (to, from) in &moved_from {
        let was = apply.base.and_then(|base| base.stamps.get(from));
        if let (Some(stat), Some(was)) = (apply.root.lstat(from)?, was)
            && (stat.stamp.dev, stat.stamp.ino) == (was.dev, was.ino)
        {
            apply.moved_owners.insert(to.clone(), stat);
        }
    }
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
    /// The owners the archive says setuid and setgid files were given (see `owner.rs`).
    given: &'a BTreeMap<RelPath, GivenOwner>,
    /// Files the task made anew where one was, rather than wrote into (see `unpack.rs`).
    made_anew: &'a std::collections::BTreeSet<RelPath>,
    /// Files and directories the task moved where others were, and their paths before (see
    /// `unpack.rs`); and whose those are here.
    moved_from: &'a BTreeMap<RelPath, RelPath>,
    moved_owners: PathMap<RelPath, Stat>,
    /// Setuid or setgid files whose owner could not be given here: that bit was cleared.
    not_given: Vec<RelPath>,
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
    /// Directories this apply made, with the modes their directories here hand down (the
    /// task's, masked by a default ACL).
    dir_modes: PathMap<RelPath, u32>,
    /// The default ACL each directory here hands down (by path; None: the root), once read.
    handed_down: std::cell::RefCell<PathMap<Option<RelPath>, Option<Vec<u8>>>>,
    /// The staging directory hands down a default ACL (the workspace's root has one).
    staging_hands_down: bool,
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
                self.journal.record(Undo::Mkdir {
                    path: (*path).clone(),
                    mode: stat.mode,
                    mtime: stat.mtime,
                    owner: Some((stat.uid, stat.gid)),
                })?;
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
                // A directory made here has the mode its directory here hands down.
                dirs.push((path, self.dir_modes.get(path).copied().unwrap_or(*mode), *mtime));
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
            // Not the moment of this apply, which placing entries gave it: the task's time, or
            // the later of it and the one here if that changed meanwhile too (an entry added
            // here). Its time as found is the one before this apply's first step in it
            // (deletions go first).
            let found = self.parents.get(path).map(|parent| parent.mtime);
            let found = found.or_else(|| self.found_dirs.get(path).map(|&(_, mtime)| mtime));
            let left = match (self.base_entry(path), found) {
                (Some(Entry::Dir { mtime: seen, .. }), Some(found)) => {
                    super::root_meta::time_to_leave(*seen, found, mtime)
                }
                _ => mtime,
            };
            self.root.set_mtime(path, left)?;
        }
        self.leave_parents()?;
        report.unlinked = std::mem::take(&mut self.unlinked);
        report.not_given = std::mem::take(&mut self.not_given);
        Ok(report)
    }
}
