//! The agent's work directory: one `sloth-agent-*` directory per running agent inside the
//! parent (`--work-dir`, else the system temp dir), locked for the agent's whole life. An agent
//! that dies (`kill -9`, out of memory, a power cut) cannot remove its own; the next agent
//! started on the same parent finds it unlocked and removes it, with every task directory and
//! cached content in it.
//!
//! The directory is made under an unpublished name, locked, and only then renamed to its
//! `sloth-agent-` name, so an agent starting at the same moment never takes a live one for
//! dead.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

const PREFIX: &str = "sloth-agent-";
const UNPUBLISHED_PREFIX: &str = "sloth-agent-starting-";
/// An unpublished directory older than this was left by an agent that died while starting.
const UNPUBLISHED_STALE: Duration = Duration::from_secs(600);

/// This agent's work directory; removed when dropped.
#[derive(Debug)]
pub struct WorkRoot {
    path: PathBuf,
    _lock: Flock<File>,
}

/// The lock on `dir`, if nobody holds it (None too if it is gone).
fn try_lock(dir: &Path) -> std::io::Result<Option<Flock<File>>> {
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

impl WorkRoot {
    /// Makes (and locks) a work directory in `parent`, creating `parent` if needed, and
    /// removes those of agents that died there. Returns the directory and what was removed.
    pub fn create(parent: &Path) -> std::io::Result<(Self, Vec<PathBuf>)> {
        std::fs::create_dir_all(parent)?;
        let unpublished = tempfile::Builder::new().prefix(UNPUBLISHED_PREFIX).tempdir_in(parent)?.keep();
        let lock = match try_lock(&unpublished) {
            Ok(Some(lock)) => lock,
            other => {
                let _ = std::fs::remove_dir(&unpublished);
                return Err(other.err().unwrap_or_else(|| std::io::Error::other("locked by another agent")));
            }
        };
        let suffix = unpublished
            .file_name()
            .map(|name| name.to_string_lossy().trim_start_matches(UNPUBLISHED_PREFIX).to_owned())
            .unwrap_or_default();
        let path = parent.join(format!("{PREFIX}{suffix}"));
        if let Err(error) = std::fs::rename(&unpublished, &path) {
            let _ = std::fs::remove_dir(&unpublished);
            return Err(error);
        }
        let root = Self { path, _lock: lock };
        let removed = root.remove_dead(parent);
        Ok((root, removed))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the work directories of agents that died in `parent`.
    fn remove_dead(&self, parent: &Path) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(parent) else { return removed };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path == self.path || !name.starts_with(PREFIX) || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            if name.starts_with(UNPUBLISHED_PREFIX) && !is_old(&path) {
                continue;
            }
            if let Ok(Some(_lock)) = try_lock(&path)
                && std::fs::remove_dir_all(&path).is_ok()
            {
                removed.push(path);
            }
        }
        removed
    }
}

fn is_old(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > UNPUBLISHED_STALE))
}

impl Drop for WorkRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
