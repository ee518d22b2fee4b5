//! Directories that tell whether their owner is alive: each is made under an unpublished
//! name, locked (`flock`) for its owner's whole life, and only then renamed to its published
//! name. Whoever later finds a published one it can lock knows its owner died (killed, out of
//! memory) and may clean up after it; an unpublished one is only abandoned once it is old.
//! Used for the agent's work directory and for the staging directory of an apply.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

/// An unpublished directory older than this was left by an owner that died while starting.
pub const UNPUBLISHED_STALE: Duration = Duration::from_secs(600);

/// A directory this process owns, locked while the value lives (removing it is the owner's
/// call).
#[derive(Debug)]
pub struct LockedDir {
    path: PathBuf,
    _lock: Flock<File>,
}

impl LockedDir {
    /// Makes `<parent>/<prefix><random>`, going through `<parent>/<unpublished><random>` so that
    /// nobody sees it published before it is locked.
    pub fn create(parent: &Path, unpublished: &str, prefix: &str) -> std::io::Result<Self> {
        let made = tempfile::Builder::new().prefix(unpublished).tempdir_in(parent)?.keep();
        let lock = match try_lock(&made) {
            Ok(Some(lock)) => lock,
            other => {
                let _ = std::fs::remove_dir(&made);
                return Err(other.err().unwrap_or_else(|| std::io::Error::other("locked by someone else")));
            }
        };
        let suffix = made
            .file_name()
            .map(|name| name.to_string_lossy().trim_start_matches(unpublished).to_owned())
            .unwrap_or_default();
        let path = parent.join(format!("{prefix}{suffix}"));
        if let Err(error) = std::fs::rename(&made, &path) {
            let _ = std::fs::remove_dir(&made);
            return Err(error);
        }
        Ok(Self { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock on `dir` if nobody holds it (its owner is gone); None when someone does, or when
/// `dir` itself is gone (its owner just removed it).
pub fn try_lock(dir: &Path) -> std::io::Result<Option<Flock<File>>> {
    let file = match File::open(dir) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno.into()),
    }
}

/// Whether `path` was last modified more than `age` ago.
pub fn is_older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| modified.elapsed().is_ok_and(|elapsed| elapsed > age))
}
