//! The directories whose entries an apply changes: each remembered as found, opened for the
//! apply's steps when it is a read-only one of the user's, and put back as found at the end.

use super::Apply;
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::Kind;
use crate::workspace::journal::Undo;
use crate::workspace::manifest::Entry;
use crate::workspace::rel_path::RelPath;
use crate::workspace::timestamp::Timestamp;

/// A directory whose entries the apply changes, as it was before: put back as it was at the
/// end — its time (placing an entry moves it, where the task, writing in place, did not), and
/// its mode if the apply had to open it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parent {
    pub(super) mode: u32,
    pub(super) mtime: Timestamp,
    /// Made writable for the apply: a read-only directory of the user's, into which the task
    /// wrote (`chmod u+w d; echo x > d/f; chmod u-w d` here changes it in place).
    pub(super) opened: bool,
    /// Which directory it is (device, inode): one moved away or replaced here while the apply
    /// places entries in it is a conflict, not a place to go on writing into.
    pub(super) identity: (u64, u64),
}

impl Apply<'_> {
    /// Before a step that changes the entries of `path`'s directory: that directory as found
    /// is remembered and journalled (the first time), and opened if it is read-only and the
    /// user's (as the task opened it on the agent, or the step would fail here where it did not
    /// there): undo and recovery close it again and put its time back.
    pub(super) fn entering(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
        let Some(parent) = path.parent() else { return Ok(()) };
        // Looked up from the root, not through the directory the last step resolved: one moved
        // out of the workspace since (a link put in its place) is still open there, and the
        // steps would go on writing into it where it went.
        self.root.forget();
        if let Some(known) = self.parents.get(&parent) {
            let still = matches!(self.root.lstat(&parent), Ok(Some(stat))
                if stat.kind == Kind::Dir && (stat.stamp.dev, stat.stamp.ino) == known.identity);
            if !still {
                return Err(WorkspaceError::Conflict {
                    details: vec![format!(
                        "'{parent}' (moved or replaced here while the changes were being applied; what the task \
                         had placed in it by then went with it)"
                    )],
                });
            }
            return Ok(());
        }
        let Some(stat) = self.root.lstat(&parent)? else { return Ok(()) };
        if stat.kind != Kind::Dir {
            return Ok(());
        }
        let opened = !self.privileged && stat.mode & 0o300 != 0o300 && stat.uid == nix::unistd::geteuid().as_raw();
        let set = if opened { stat.mode | 0o300 } else { stat.mode };
        // (Undo puts its time back too, after the steps in it are taken back.)
        self.journal.record(Undo::Meta { path: parent.clone(), mode: stat.mode, mtime: stat.mtime, set })?;
        if opened {
            self.root.chmod(&parent, set)?;
        }
        let identity = (stat.stamp.dev, stat.stamp.ino);
        self.parents.insert(parent, Parent { mode: stat.mode, mtime: stat.mtime, opened, identity });
        Ok(())
    }

    /// Puts back the directories whose entries were changed (deepest first) as they were:
    /// those the changes set (their mode and time) are left to the pass that sets them.
    pub(super) fn leave_parents(&mut self) -> Result<(), WorkspaceError> {
        for (path, parent) in std::mem::take(&mut self.parents).iter().rev() {
            if matches!(self.staged.get(path), Some(Entry::Dir { .. })) {
                continue;
            }
            self.root.forget();
            let Some(stat) = self.root.lstat(path)? else { continue };
            if stat.kind != Kind::Dir {
                continue;
            }
            if parent.opened && stat.mode == parent.mode | 0o300 {
                self.root.chmod(path, parent.mode)?;
            }
            self.root.set_mtime(path, parent.mtime)?;
        }
        Ok(())
    }

    /// A directory's mode as it was before this apply opened it for its steps (if it did).
    pub(super) fn mode_as_found(&self, path: &RelPath, mode: u32) -> u32 {
        match self.parents.get(path) {
            Some(parent) if parent.opened && mode == parent.mode | 0o300 => parent.mode,
            _ => mode,
        }
    }
}
