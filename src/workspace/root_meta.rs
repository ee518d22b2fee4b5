//! The workspace directory's own mode and modification time. The root is no entry of a
//! manifest (entries are paths inside it), yet a task sees it (`stat .`) and may change it
//! (`chmod 750 .`, `touch -d … .`, or a name it adds or removes there): the master sends them
//! beside the manifest, the agent gives its copy's root those, and a change comes back with the
//! task's changes, to be made here as the last step of an apply — the same tree here as a run
//! of the task here would leave.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::UtimensatFlags;
use nix::sys::time::TimeSpec;

use super::{Timestamp, WorkspaceError};

/// A directory's permission bits (with setgid and sticky) and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootMeta {
    pub mode: u32,
    pub mtime: Timestamp,
}

impl RootMeta {
    /// The directory at `path` (a link to one followed, as a task's `cd` would); None when it
    /// cannot be read.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self { mode: meta.mode() & 0o7777, mtime: Timestamp::new(meta.mtime(), meta.mtime_nsec()) })
    }

    /// Gives the directory at `path` this mode and time (its access time left alone).
    pub fn set(&self, path: &Path) -> Result<(), WorkspaceError> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.mode)).map_err(WorkspaceError::io(path))?;
        self.set_time(path)
    }

    /// Gives the directory at `path` this modification time only.
    pub fn set_time(&self, path: &Path) -> Result<(), WorkspaceError> {
        set_mtime(path, self.mtime)
    }

    /// As the wire carries it: a mode (None: unknown), seconds, nanoseconds.
    pub fn to_wire(meta: Option<Self>) -> (Option<u32>, i64, u32) {
        meta.map_or((None, 0, 0), |meta| (Some(meta.mode), meta.mtime.secs, meta.mtime.nanos))
    }

    /// From the wire (see [`RootMeta::to_wire`]); a mode with bits beyond the permission bits
    /// is none a directory has.
    pub fn from_wire(mode: Option<u32>, secs: i64, nanos: u32) -> Option<Self> {
        let mode = mode.filter(|mode| mode & !0o7777 == 0)?;
        Some(Self { mode, mtime: Timestamp::new(secs, i64::from(nanos)) })
    }
}

/// Gives the directory at `path` (a link to one followed) modification time `at`, its access
/// time left alone.
pub fn set_mtime(path: &Path, at: Timestamp) -> Result<(), WorkspaceError> {
    let mtime = TimeSpec::new(at.secs, i64::from(at.nanos));
    nix::sys::stat::utimensat(nix::fcntl::AT_FDCWD, path, &TimeSpec::UTIME_OMIT, &mtime, UtimensatFlags::FollowSymlink)
        .map_err(|errno| WorkspaceError::io(path)(errno.into()))
}

/// What a task did to its workspace's root: given `base` (the root as the task began, from the
/// master) and `after` (as the task left it), the root as it must be made here; None when the
/// task left it as it began.
pub fn changed(base: Option<RootMeta>, after: Option<RootMeta>) -> Option<RootMeta> {
    match (base, after) {
        (Some(base), Some(after)) if base != after => Some(after),
        _ => None,
    }
}

/// Before an apply: a task's change to the root's mode conflicts with a change made here since
/// the snapshot (the mode here neither the base's nor the task's).
pub fn check(root: &Path, base: Option<RootMeta>, change: Option<RootMeta>) -> Result<(), WorkspaceError> {
    let (Some(base), Some(change)) = (base, change) else { return Ok(()) };
    let Some(here) = RootMeta::of(root) else { return Ok(()) };
    if change.mode != base.mode && here.mode != base.mode && here.mode != change.mode {
        return Err(WorkspaceError::Conflict {
            details: vec![format!(
                "the workspace directory's mode (changed here to {:04o}, by the task to {:04o})",
                here.mode, change.mode
            )],
        });
    }
    Ok(())
}

/// The time a directory the task changed is left with: the task's (`task`), or, when its time
/// here (`found`, before the apply) changed since the snapshot (`seen`) too, the later of the
/// two — as the last change to it left it.
pub(crate) fn time_to_leave(seen: Timestamp, found: Timestamp, task: Timestamp) -> Timestamp {
    if found == seen { task } else { found.max(task) }
}

/// After an apply (the root as found before it in `found`): the task's mode, and its time
/// ([`time_to_leave`]) — not the moment of this apply, which adding a name at the root gave it.
pub fn make(
    root: &Path,
    base: Option<RootMeta>,
    change: Option<RootMeta>,
    found: Option<RootMeta>,
) -> Result<(), WorkspaceError> {
    let (Some(base), Some(change)) = (base, change) else { return Ok(()) };
    if change.mode != base.mode {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(change.mode))
            .map_err(WorkspaceError::io(root))?;
    }
    if change.mtime != base.mtime
        && let Some(found) = found
    {
        set_mtime(root, time_to_leave(base.mtime, found.mtime, change.mtime))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32, secs: i64) -> RootMeta {
        RootMeta { mode, mtime: Timestamp::new(secs, 5) }
    }

    #[test]
    fn a_root_is_read_set_and_carried_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let wanted = meta(0o750, 1_000_000_000);
        wanted.set(dir.path()).expect("set");
        assert_eq!(RootMeta::of(dir.path()), Some(wanted));
        let (mode, secs, nanos) = RootMeta::to_wire(Some(wanted));
        assert_eq!(RootMeta::from_wire(mode, secs, nanos), Some(wanted));
        assert_eq!(RootMeta::from_wire(Some(0o40755), 1, 0), None, "not permission bits");
        assert_eq!(RootMeta::from_wire(None, 1, 0), None);
    }

    #[test]
    fn only_what_the_task_changed_is_made_and_a_mode_changed_on_both_sides_conflicts() {
        let dir = tempfile::tempdir().expect("dir");
        let base = meta(0o755, 1_000_000_000);
        base.set(dir.path()).expect("set");
        assert_eq!(changed(Some(base), Some(base)), None);
        let task = meta(0o700, 1_100_000_000);
        assert_eq!(changed(Some(base), Some(task)), Some(task));
        check(dir.path(), Some(base), Some(task)).expect("nothing changed here");
        make(dir.path(), Some(base), Some(task), RootMeta::of(dir.path())).expect("make");
        assert_eq!(RootMeta::of(dir.path()), Some(task));

        // Changed here meanwhile: the mode conflicts; the time here stays.
        let here = meta(0o775, 1_200_000_000);
        here.set(dir.path()).expect("set");
        let error = check(dir.path(), Some(base), Some(task)).expect_err("both changed the mode");
        assert!(error.to_string().contains("changed here to 0775, by the task to 0700"), "{error}");
        let only_time = RootMeta { mode: base.mode, ..task };
        check(dir.path(), Some(base), Some(only_time)).expect("the task left the mode");
        make(dir.path(), Some(base), Some(only_time), RootMeta::of(dir.path())).expect("make");
        assert_eq!(RootMeta::of(dir.path()), Some(here), "the time changed here stays");
    }
}
