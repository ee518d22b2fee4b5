//! The checks of an apply: before anything is touched, every path the task changed must be
//! as the task started from (else a conflict, naming it) and reachable without a link; and
//! again right before each step, for what changed here meanwhile.

use super::Apply;
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::{Kind, Stat};
use crate::workspace::manifest::{Entry, MODE_MASK, entry_now};
use crate::workspace::rel_path::RelPath;

/// What the master's path is now, against what the task started from.
enum Now {
    /// As the task saw it (or both sides made the same change).
    Unchanged,
    /// Different: what happened here, for the conflict message.
    Changed(&'static str),
}

impl Apply<'_> {
    /// Every check that can be made before touching anything: links in the way, and paths
    /// changed here since the task started.
    pub(super) fn check(&self, deletions: &[&RelPath]) -> Result<(), WorkspaceError> {
        for path in deletions.iter().copied().chain(self.staged.keys()) {
            self.check_included(path)?;
        }
        let mut conflicts = Vec::new();
        for path in deletions {
            if let Now::Changed(here) = self.now(path, None)? {
                conflicts.push(format!("'{path}' ({here}; deleted by the task)"));
            }
        }
        // Directories found gone or replaced here: named once, for the first path below.
        let mut lost: Vec<RelPath> = Vec::new();
        for (path, entry) in self.staged {
            if lost.iter().any(|dir| path.starts_with(dir)) {
                continue;
            }
            if let Some((dir, conflict)) = self.check_parents(path)? {
                conflicts.push(conflict);
                lost.push(dir);
                continue;
            }
            if let Now::Changed(here) = self.now(path, Some(entry))? {
                let task = if self.base_entry(path).is_some() { "changed by the task" } else { "created by the task" };
                conflicts.push(format!("'{path}' ({here}; {task})"));
            }
        }
        if !conflicts.is_empty() {
            return Err(WorkspaceError::Conflict { details: conflicts });
        }
        self.check_writable()
    }

    /// A file here that the task changed must be one this process may change: its own (which
    /// it could make writable), or another user's it may write, whose mode the task left. A run
    /// here could not have changed it (`echo >> root-owned-file`, `chmod` of it fail), and
    /// replacing it would take that user's file — its content, and its owner, which a master
    /// that is not root cannot keep. Refused before anything is touched, naming every such file.
    fn check_writable(&self) -> Result<(), WorkspaceError> {
        if self.privileged {
            return Ok(());
        }
        let mut refused = Vec::new();
        for (path, entry) in self.staged {
            let (Entry::File { mode, .. }, Some(Entry::File { mode: old_mode, .. })) = (entry, self.base_entry(path))
            else {
                continue;
            };
            // A file of the runner's own it may not write (read-only) it could have made
            // writable here (`chmod u+w`, or `cp -f` over it): not refused.
            let theirs = self.root.lstat(path)?.is_some_and(|here| here.uid != nix::unistd::geteuid().as_raw());
            // Made anew where it was (`rm f; echo > f`, `sed -i`): a run here needs only its
            // directory for that, as the apply does.
            if !theirs || self.made_anew.contains(path) || self.moved_from.contains_key(path) {
                continue;
            }
            // Another user's file: its mode only its owner changes here (and a file with other
            // names is replaced, not changed in place: it would become the runner's); its
            // content or time only one who may write it.
            if (mode & MODE_MASK) != (old_mode & MODE_MASK) || self.root.may_write(path)? == Some(false) {
                refused.push(path);
            }
        }
        let Some(first) = refused.first() else { return Ok(()) };
        let more = match refused.len() {
            1 => String::new(),
            n => format!(
                " (and {} more: {})",
                n - 1,
                refused[1..].iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        Err(WorkspaceError::Refused {
            path: self.root.display(first),
            reason: format!(
                "the task changed it{more}, but this user may not change it here (another user's file), as a run \
                 here could not: nothing was applied"
            ),
        })
    }

    /// A path the workspace's rules leave out (or below one) is not the task's to change.
    fn check_included(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        let Some(rules) = self.rules else { return Ok(()) };
        if let Some(excluded) = path.ancestors().chain(std::iter::once(path.clone())).find(|p| rules.excludes(p)) {
            return Err(WorkspaceError::UnsafeEntry {
                entry: path.to_string(),
                reason: format!("'{excluded}' is left out of the workspace here, so the task cannot have changed it"),
            });
        }
        Ok(())
    }

    /// Every ancestor of a staged path must be a real directory here or one the changes make.
    /// One the task started from that is gone or replaced here is a conflict (returned, to be
    /// named with the others); a write through a link the task was sent as a link is refused.
    fn check_parents(&self, path: &RelPath) -> Result<Option<(RelPath, String)>, WorkspaceError> {
        for ancestor in path.ancestors() {
            if matches!(self.staged.get(&ancestor), Some(Entry::Dir { .. })) {
                continue;
            }
            let was_dir = matches!(self.base_entry(&ancestor), Some(Entry::Dir { .. }));
            let reason = match self.root.lstat(&ancestor)?.map(|stat| stat.kind) {
                Some(Kind::Dir) => continue,
                Some(kind) if was_dir => {
                    let now = if kind == Kind::Symlink { "a symlink" } else { "not a directory" };
                    let conflict =
                        format!("'{path}' (its directory '{ancestor}' is {now} here now; written by the task)");
                    return Ok(Some((ancestor, conflict)));
                }
                Some(Kind::Symlink) => format!("writes through the symlink '{ancestor}'"),
                Some(_) => format!("its parent '{ancestor}' is not a directory here"),
                None if self.base.is_some() => {
                    let conflict = format!("'{path}' (its directory '{ancestor}' is gone here; written by the task)");
                    return Ok(Some((ancestor, conflict)));
                }
                None => continue,
            };
            return Err(WorkspaceError::UnsafeEntry { entry: path.to_string(), reason });
        }
        Ok(None)
    }

    /// Whether `path` here is still as the task started from (`new`: what the task makes of
    /// it, None for a deletion). Cheap when the identity is unchanged; hashes otherwise.
    fn now(&self, path: &RelPath, new: Option<&Entry>) -> Result<Now, WorkspaceError> {
        let stat = self.root.lstat(path)?;
        self.now_seen(path, new, &stat)
    }

    /// [`Apply::now`], of the entry `stat` saw at `path`.
    fn now_seen(&self, path: &RelPath, new: Option<&Entry>, stat: &Option<Stat>) -> Result<Now, WorkspaceError> {
        let Some(base) = self.base else { return Ok(Now::Unchanged) };
        let before = base.entries.get(path);
        match (stat, before) {
            (None, None) => return Ok(Now::Unchanged),
            // Gone here and deleted by the task: the same end.
            (None, Some(_)) if new.is_none() => return Ok(Now::Unchanged),
            (None, Some(_)) => return Ok(Now::Changed("deleted here")),
            // Something a workspace does not carry is never the task's to replace.
            (Some(stat), _) if stat.kind == Kind::Socket => return Ok(Now::Changed("a socket here")),
            (Some(stat), _) if stat.kind == Kind::Device => return Ok(Now::Changed("a device file here")),
            // Directories merge: both sides may add to one, or both create it; only their modes
            // can conflict.
            (Some(stat), _)
                if stat.kind == Kind::Dir
                    && matches!(new, Some(Entry::Dir { .. }) | None)
                    && matches!(before, Some(Entry::Dir { .. }) | None) =>
            {
                let here = self.mode_as_found(path, stat.mode) & MODE_MASK;
                return Ok(match (before, new) {
                    (None, None) => Now::Changed("created here"),
                    // (A task that left the mode as it was changed the directory's time alone.)
                    (Some(Entry::Dir { mode: old, .. }), Some(Entry::Dir { mode: new, .. }))
                        if new != old && here != *old && here != *new =>
                    {
                        Now::Changed("its mode changed here")
                    }
                    _ => Now::Unchanged,
                });
            }
            (Some(stat), Some(_)) if base.untouched(path, &stat.stamp) => return Ok(Now::Unchanged),
            // A directory this apply opened for its steps (so its ctime moved) and that the task
            // replaced: as the task saw it if its mode, as found, is.
            (Some(stat), Some(Entry::Dir { mode: old, .. }))
                if stat.kind == Kind::Dir
                    && self.parents.get(path).is_some_and(|parent| parent.opened)
                    && self.mode_as_found(path, stat.mode) & MODE_MASK == *old & MODE_MASK =>
            {
                return Ok(Now::Unchanged);
            }
            _ => {}
        }
        let current = entry_now(&self.root, path)?.map(|(entry, _)| entry);
        let unchanged = match (&current, before) {
            (None, None) => true,
            (Some(current), Some(before)) => current.same_content(before) && same_time(current, before),
            _ => false,
        };
        if unchanged || matches!((&current, new), (Some(current), Some(new)) if current.same_content(new)) {
            return Ok(Now::Unchanged);
        }
        Ok(Now::Changed(match (&current, before) {
            (None, _) => "deleted here",
            (Some(_), None) => "created here",
            (Some(current), Some(before)) if std::mem::discriminant(current) != std::mem::discriminant(before) => {
                "replaced here"
            }
            _ => "changed here",
        }))
    }

    /// The check of [`Apply::check`] once more, right before the step: a path changed since
    /// then is a conflict.
    /// Returns what it found there: the entry a step that replaces or removes it must find
    /// still (see [`Apply::displaced_as_checked`]).
    pub(super) fn recheck(&self, path: &RelPath, new: Option<&Entry>) -> Result<Option<Stat>, WorkspaceError> {
        let stat = self.root.lstat(path)?;
        match self.now_seen(path, new, &stat)? {
            Now::Unchanged => Ok(stat),
            Now::Changed(here) => Err(WorkspaceError::Conflict {
                details: vec![format!("'{path}' ({here} while the changes were being applied)")],
            }),
        }
    }
}

fn same_time(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (Entry::File { .. }, Entry::File { .. }) => a.mtime() == b.mtime(),
        _ => true,
    }
}
