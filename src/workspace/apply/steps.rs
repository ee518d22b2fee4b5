//! The steps of an apply that put an entry in place or take one away: each recorded in the
//! journal first (so that undo, or a dead apply's recovery, can take it back), each checked
//! against what the check before it saw (a swap that takes out anything else is undone and a
//! conflict).

use super::{Apply, SETID_BITS, Step, Undo};
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::{Kind, Stat};
use crate::workspace::manifest::Entry;
use crate::workspace::rel_path::RelPath;

impl Apply<'_> {
    /// How many names the task knew `path`'s file by (its hard-link group in the base).
    pub(super) fn known_names(&self, path: &RelPath) -> u64 {
        match self.base_entry(path) {
            Some(Entry::File { link, .. }) => self.base_names.get(link.as_ref().unwrap_or(path)).copied().unwrap_or(1),
            _ => 1,
        }
    }

    /// Names of the file `stat` saw that this apply made (see [`Apply::names_held`]).
    pub(super) fn names_held(&self, stat: &Stat) -> u64 {
        self.names_held.get(&(stat.stamp.dev, stat.stamp.ino)).copied().unwrap_or(0)
    }

    /// Moves the entry at `path` into the trash, to be restored on undo (over `placed`, the
    /// inode the apply then puts there, if any). Returns its name in the trash.
    pub(super) fn move_to_trash(&mut self, path: &RelPath, placed: Option<u64>) -> Result<RelPath, WorkspaceError> {
        let trash = self.next_trash();
        self.journal.record(Undo::Restore { trash: trash.clone(), path: path.clone(), placed })?;
        // Refused to move the user's entry (an immutable or append-only file, one in a
        // directory this runner may not change): the error names it, not the trash.
        self.trash.rename_from(&self.root, path, &trash, true).map_err(|error| match error {
            WorkspaceError::Io { source, .. }
                if matches!(source.kind(), std::io::ErrorKind::PermissionDenied)
                    || source.raw_os_error() == Some(1) =>
            {
                WorkspaceError::Io { path: self.root.display(path), source }
            }
            other => other,
        })?;
        Ok(trash)
    }

    /// Records what the apply just put at `path`, in full (see [`Undo::Placed`]).
    pub(super) fn record_placed(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
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
    pub(super) fn make_dir(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
        let made = self.next_trash();
        self.trash.mkdir(&made, 0o700, false)?;
        // Made aside: it gets the group a directory made here would (a setgid directory's), and
        // hands it down as such a directory does (its mode is the task's once it is filled).
        if let Some(gid) = self.root.group_from_parent(path)? {
            self.trash.chown(&made, None, Some(gid))?;
            self.trash.chmod(&made, 0o2700)?;
        }
        // One the task moved here (`mv d e`, and the directories in it) is whose it was here.
        if let Some(moved) = self.moved_owners.get(path).filter(|_| self.privileged) {
            self.trash.chown(&made, Some(moved.uid), Some(moved.gid))?;
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
    pub(super) fn found_dir(&mut self, path: &RelPath, stat: &Stat) -> Result<(), WorkspaceError> {
        let (mode, mtime) = (self.mode_as_found(path, stat.mode), stat.mtime);
        self.found_dirs.insert(path.clone(), (mode, mtime));
        self.journal.record(Undo::Meta { path: path.clone(), mode, mtime, set: mode })?;
        if self.made_anew.contains(path) {
            self.give_dir(path, stat, None)?;
        } else if self.moved_from.contains_key(path) {
            // (The runner's when the one it was here is no longer there as it was.)
            let owner = self.moved_owners.get(path).map(|moved| (moved.uid, moved.gid));
            self.give_dir(path, stat, owner)?;
        }
        Ok(())
    }

    /// A directory the task removed and made again (`rm -rf d; mkdir -m 700 d`) is the
    /// runner's, in the group its parent hands down, as a run here makes it (`owner` None); one
    /// it moved there (`rm -rf d; mv new d`) is whose that one was here (`owner`) — not, with
    /// what the task put in it, the user's whose directory was there. (What the system does not
    /// allow, another user's directory for a runner that is not root, stays theirs.)
    fn give_dir(&mut self, path: &RelPath, stat: &Stat, owner: Option<(u32, u32)>) -> Result<(), WorkspaceError> {
        let runner = nix::unistd::geteuid().as_raw();
        let (uid, gid) = match owner {
            Some(owner) => owner,
            None => (runner, self.root.group_from_parent(path)?.unwrap_or_else(|| nix::unistd::getegid().as_raw())),
        };
        if (stat.uid == uid && stat.gid == gid) || !(self.privileged || (stat.uid == runner && uid == runner)) {
            return Ok(());
        }
        self.journal.record(Undo::Owner { path: path.clone(), uid: stat.uid, gid: stat.gid })?;
        self.root.chown(path, Some(uid), Some(gid))?;
        Ok(())
    }

    pub(super) fn next_trash(&mut self) -> RelPath {
        self.trashed += 1;
        RelPath::from_name(format!("t{}", self.trashed).as_bytes()).expect("t and a number is a valid name")
    }

    /// Places the staged `entry` at `path`, where the check just saw `existing`.
    pub(super) fn place(
        &mut self,
        path: &RelPath,
        entry: &Entry,
        existing: Option<Stat>,
        observer: &mut dyn FnMut(Step<'_>) -> Result<(), WorkspaceError>,
    ) -> Result<(), WorkspaceError> {
        self.entering(path)?;
        self.root_names_changed |= existing.is_none() && path.parent().is_none();
        match entry {
            Entry::Dir { mode, .. } => match existing {
                Some(stat) if stat.kind == Kind::Dir => self.found_dir(path, &stat)?,
                Some(_) => {
                    self.move_to_trash(path, None)?;
                    self.make_dir(path)?;
                    let handed = self.hand_down_to_dir(path, *mode)?;
                    self.dir_modes.insert(path.clone(), handed);
                }
                None => {
                    self.make_dir(path)?;
                    let handed = self.hand_down_to_dir(path, *mode)?;
                    self.dir_modes.insert(path.clone(), handed);
                }
            },
            Entry::File { .. } | Entry::Fifo { .. }
                if existing.is_some_and(|stat| {
                    stat.nlink == 1
                        && matches!(
                            (stat.kind, entry),
                            (Kind::File, Entry::File { .. }) | (Kind::Fifo, Entry::Fifo { .. })
                        )
                }) && !self.linked.contains(path)
                    && self.given_to(path).is_none()
                    && !self.moved_here(path)
                    && !self.made_anew_file(path)
                    && self.base_entry(path).is_some_and(|before| before.same_data(entry)) =>
            {
                // Only the mode or time changed, and the path still holds the data the task
                // started from (checked) under this one name: changed in place, as chmod and
                // touch do. (A file with other names is replaced instead: changing it in place
                // would change names the task never saw, outside the workspace too. So is one
                // the task gave another owner: the swap gives it, undone with the rest.)
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
                if existing.is_some_and(|here| here.kind == Kind::File) && !self.made_anew_file(path) {
                    self.keep_attributes(path, existing.as_ref())?;
                } else {
                    self.hand_down_to_staged(path)?;
                }
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
                // The staged entry keeps its inode (and its data's size and time) when renamed
                // into place: undo removes or replaces only that, as written down now.
                let staged = self.staged_root.lstat(path)?;
                let placed = staged.as_ref().map_or(0, |stat| stat.stamp.ino);
                if let Some(staged) = staged {
                    self.journal.record(Undo::Staged { path: path.clone(), stamp: staged.stamp })?;
                }
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
    pub(super) fn mode_to_set(&self, entry: &Entry, here: u32) -> Option<u32> {
        let new = entry.mode()?;
        if self.setid_files {
            return Some(new);
        }
        Some((new & !SETID_BITS) | (here & SETID_BITS))
    }

    /// Renames the staged entry into `path`, where nothing is now; something created there
    /// since the last check (another apply, a local edit) is a conflict, never replaced.
    pub(super) fn put_new(&self, path: &RelPath) -> Result<(), WorkspaceError> {
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
    pub(super) fn empty_dir_away(&mut self, path: &RelPath, stat: &Stat) -> Result<(), WorkspaceError> {
        self.journal.record(Undo::Mkdir {
            path: path.clone(),
            mode: stat.mode,
            mtime: stat.mtime,
            owner: Some((stat.uid, stat.gid)),
        })?;
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
pub(super) fn displaced_as_checked(taken: Option<&Stat>, checked: &Stat) -> bool {
    taken.is_some_and(|taken| {
        let (a, b) = (&taken.stamp, &checked.stamp);
        a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime == b.mtime && taken.kind == checked.kind
    })
}

/// Whether a swap failed only because the filesystem cannot make one.
pub(super) fn cannot_exchange(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(nix::libc::EINVAL | nix::libc::ENOSYS | nix::libc::EOPNOTSUPP))
}

/// A conflict: `path` changed here in the moment between its check and the step.
pub(super) fn changed_meanwhile(path: &RelPath) -> WorkspaceError {
    WorkspaceError::Conflict { details: vec![format!("'{path}' (changed here while the changes were being applied)")] }
}

/// Whether two files hold the same bytes.
pub(super) fn same_bytes(a: &Entry, b: &Entry) -> bool {
    matches!((a, b), (Entry::File { size: s1, hash: h1, .. }, Entry::File { size: s2, hash: h2, .. }) if s1 == s2 && h1 == h2)
}
