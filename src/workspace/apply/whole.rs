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

/// The workspace locked for one apply (see `apply_steps`); unlocked when dropped. While
/// another holds it, waits — saying so past a second (a process that holds a lock on the
/// directory for long is named by nothing else) — unless the run is `interrupted`.
pub(super) fn lock_whole(
    root: &Path,
    interrupted: Option<&AtomicBool>,
) -> Result<nix::fcntl::Flock<std::fs::File>, WorkspaceError> {
    use nix::fcntl::{Flock, FlockArg};
    let mut dir = std::fs::File::open(root).map_err(WorkspaceError::io(root))?;
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
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
pub(super) fn put_time_back(root: &Path, time: Option<Timestamp>) {
    let Some(time) = time else { return };
    let spec = nix::sys::time::TimeSpec::new(time.secs, i64::from(time.nanos));
    if let Err(errno) = nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        root,
        &spec,
        &spec,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    ) {
        tracing::debug!(root = %root.display(), %errno, "cannot put the workspace's time back");
    }
}

/// The workspace directory's time as an apply found it, put back when this goes (after the
/// staging directory, declared after it, has gone) — however the apply ends, a failure while
/// staging (a full disk) included — unless the apply added or removed names there
/// ([`RootTime::leave`]).
pub(super) struct RootTime<'a> {
    root: &'a Path,
    time: Option<Timestamp>,
}

impl<'a> RootTime<'a> {
    pub(super) fn found(root: &'a Path) -> Self {
        let time = std::fs::metadata(root).ok().map(|meta| {
            use std::os::unix::fs::MetadataExt;
            Timestamp::new(meta.mtime(), meta.mtime_nsec())
        });
        Self { root, time }
    }

    /// The time as found (None where it could not be read).
    pub(super) fn time(&self) -> Option<Timestamp> {
        self.time
    }

    /// The apply changed the names there: the time it gave the directory stays.
    pub(super) fn leave(mut self) {
        self.time = None;
    }
}

impl Drop for RootTime<'_> {
    fn drop(&mut self) {
        put_time_back(self.root, self.time);
    }
}
