//! What the system lets this process do with an entry beneath a root, and calls that name an
//! entry by a path only (extended attributes): both through the descriptor of its directory,
//! never through a link on the way.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;

use super::{Blocked, Kind, Root, Stat, os};
use crate::workspace::WorkspaceError;
use crate::workspace::rel_path::RelPath;

impl Root {
    /// Whether this process may write the regular file at `path` (its permissions, ACLs and
    /// groups, as the system judges them for the effective user); None when there is none.
    pub fn may_write(&self, path: &RelPath) -> Result<Option<bool>, WorkspaceError> {
        let found = self.with_parent(path, false, |parent| {
            let stat = match nix::sys::stat::fstatat(parent, os(path.name()), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => Stat::from_file_stat(&stat),
                Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
                Err(errno) => return Err(self.err(path)(errno)),
            };
            if stat.kind != Kind::File {
                return Ok(None);
            }
            let access = nix::unistd::faccessat(
                parent,
                os(path.name()),
                nix::unistd::AccessFlags::W_OK,
                AtFlags::AT_EACCESS | AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            match access {
                Ok(()) => Ok(Some(true)),
                Err(Errno::EACCES | Errno::EPERM | Errno::EROFS) => Ok(Some(false)),
                Err(Errno::ENOENT) => Ok(None),
                Err(errno) => Err(self.err(path)(errno)),
            }
        });
        match found {
            Ok(result) => result,
            Err(blocked @ Blocked::Failed { .. }) => Err(Self::refused(path, blocked)),
            Err(_) => Ok(None),
        }
    }

    /// Runs `f` with a path that names the entry at `path` through the descriptor of its
    /// directory (`/proc/self/fd/N/name`: no link on the way is followed; the entry itself is
    /// followed only if `f` does) — for calls that take a path only (extended attributes).
    pub fn with_named<T>(
        &self,
        path: &RelPath,
        f: impl FnOnce(&Path) -> std::io::Result<T>,
    ) -> Result<Option<T>, WorkspaceError> {
        let found = self.with_parent(path, false, |parent| {
            let named = Path::new("/proc/self/fd").join(parent.as_raw_fd().to_string()).join(os(path.name()));
            match f(&named) {
                Ok(value) => Ok(Some(value)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(WorkspaceError::Io { path: self.display(path), source: error }),
            }
        });
        match found {
            Ok(result) => result,
            Err(blocked @ Blocked::Failed { .. }) => Err(Self::refused(path, blocked)),
            Err(_) => Ok(None),
        }
    }
}
