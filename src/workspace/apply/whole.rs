//! The workspace as a whole during an apply: one apply at a time in it, an apply given up
//! when its run is interrupted, and the root's own time put back.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::workspace::WorkspaceError;
use crate::workspace::timestamp::Timestamp;

/// The changes archive, read until the run is interrupted.
pub(super) struct Interruptible<'a, R> {
    pub(super) inner: R,
    pub(super) interrupted: &'a AtomicBool,
}

impl<R: Read> Read for Interruptible<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.interrupted.load(Ordering::Relaxed) {
            // (Not `ErrorKind::Interrupted`: readers take that for a signal, and read again.)
            return Err(std::io::Error::other("the run was interrupted"));
        }
        self.inner.read(buf)
    }
}

/// The workspaces this process is applying changes to (or taking them back from) right now
/// (each held by a [`Whole`]).
static APPLYING: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The workspaces this process is applying changes to (or taking them back from) right now:
/// a process that exits meanwhile leaves them half-applied (until the next apply or snapshot
/// of each takes the steps back).
pub fn applying() -> Vec<std::path::PathBuf> {
    APPLYING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// A workspace locked for one apply: listed in [`applying`] while it is held.
pub(super) struct Whole {
    _lock: nix::fcntl::Flock<std::fs::File>,
    root: std::path::PathBuf,
}

impl Drop for Whole {
    fn drop(&mut self) {
        let mut applying = APPLYING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = applying.iter().position(|root| *root == self.root) {
            applying.remove(at);
        }
    }
}

/// The workspace locked for one apply (see `apply_steps`); unlocked when dropped. While
/// another holds it, waits — saying so past a second (a process that holds a lock on the
/// directory for long is named by nothing else) — unless the run is `interrupted`.
pub(super) fn lock_whole(root: &Path, interrupted: Option<&AtomicBool>) -> Result<Whole, WorkspaceError> {
    use nix::fcntl::{Flock, FlockArg};
    let mut dir = std::fs::File::open(root).map_err(WorkspaceError::io(root))?;
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                APPLYING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(root.to_path_buf());
                return Ok(Whole { _lock: lock, root: root.to_path_buf() });
            }
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => dir = file,
            Err((_, errno)) => return Err(WorkspaceError::Io { path: root.to_path_buf(), source: errno.into() }),
        }
        if interrupted.is_some_and(|flag| flag.load(Ordering::Relaxed)) {
            return Err(WorkspaceError::Refused {
                path: root.to_path_buf(),
                reason: "the run was interrupted while waiting for another apply of this workspace".to_owned(),
            });
        }
        if !said && started.elapsed() > std::time::Duration::from_secs(1) {
            tracing::warn!(root = %root.display(), "waiting for another apply of this workspace (a process holds a lock on its directory)");
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sets the time of the directory `root` back to `time` (as found), where it can.
fn put_time_back(root: &Path, time: Option<Timestamp>) {
    let Some(time) = time else { return };
    if let Err(error) = crate::workspace::root_meta::set_mtime(root, time) {
        tracing::debug!(root = %root.display(), %error, "cannot put the workspace's time back");
    }
}

/// The workspace directory as an apply found it — its time, and its mode when the apply had to
/// open it (a read-only directory of the user's that is not root: the apply's staging directory
/// and the task's names go in it) — put back when this goes (after the staging directory,
/// declared after it, has gone), however the apply ends; its time not when the apply added or
/// removed names there ([`RootAsFound::leave_time`]).
pub(super) struct RootAsFound<'a> {
    root: &'a Path,
    time: Option<Timestamp>,
    /// The mode found, when the apply opened the directory (it has that mode with u+wx then).
    opened: Option<u32>,
}

impl<'a> RootAsFound<'a> {
    /// The root as found, opened for the apply if it must be.
    pub(super) fn found(root: &'a Path, privileged: bool) -> Result<Self, WorkspaceError> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(root).ok();
        let time = meta.as_ref().map(|meta| Timestamp::new(meta.mtime(), meta.mtime_nsec()));
        let mut found = Self { root, time, opened: None };
        if let Some(meta) = meta {
            let mode = meta.mode() & 0o7777;
            if !privileged && mode & 0o300 != 0o300 && meta.uid() == nix::unistd::geteuid().as_raw() {
                std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode | 0o300))
                    .map_err(WorkspaceError::io(root))?;
                found.opened = Some(mode);
            }
        }
        Ok(found)
    }

    /// The time as found (None where it could not be read).
    pub(super) fn time(&self) -> Option<Timestamp> {
        self.time
    }

    /// The mode found, if the apply opened the directory.
    pub(super) fn opened(&self) -> Option<u32> {
        self.opened
    }

    /// The apply changed the names there: the time it gave the directory stays.
    pub(super) fn leave_time(&mut self) {
        self.time = None;
    }
}

impl Drop for RootAsFound<'_> {
    fn drop(&mut self) {
        give_back(self.root, self.time, self.opened);
    }
}

/// Gives the workspace directory `root` what an apply found (also a dead one's, from its
/// journal): its mode if the apply opened it from `opened`, then its `time`.
pub(crate) fn give_back(root: &Path, time: Option<Timestamp>, opened: Option<u32>) {
    if let Some(mode) = opened {
        close_again(root, mode);
    }
    put_time_back(root, time);
}

/// Gives the directory `root`, opened (u+wx) for an apply from `mode`, that mode back — unless
/// its mode changed since.
fn close_again(root: &Path, mode: u32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if std::fs::metadata(root).is_ok_and(|meta| meta.mode() & 0o7777 == mode | 0o300)
        && let Err(error) = std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode))
    {
        tracing::debug!(root = %root.display(), %error, "cannot close the workspace again");
    }
}
