//! Directories that tell whether their owner is alive: each is made under an unpublished
//! name, locked (`flock`) for its owner's whole life, and only then renamed to its published
//! name. Whoever later finds a published one it can lock knows its owner died (killed, out of
//! memory) and may clean up after it; an unpublished one is only abandoned once it is old.
//! Used for the agent's work directory and for the staging directory of an apply.
//!
//! Only a directory that proves to be one of these is ever cleaned up after: a name alone
//! proves nothing (a user's `.sloth-apply-notes` in a workspace, a `sloth-agent-old` in the
//! temp dir). Each is marked before it is published ([`MARKER`]), and a published directory
//! is taken for an abandoned one only if this user owns it and it holds the mark.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

/// An unpublished directory older than this was left by an owner that died while starting.
pub const UNPUBLISHED_STALE: Duration = Duration::from_secs(600);

/// The file inside every such directory, written before it is published, and its text.
const MARKER: &str = ".sloth-owned";
const MARKER_TEXT: &[u8] = b"sloth-runner: removed once the process that made this directory is gone\n";

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
        let made = tempfile::Builder::new().prefix(unpublished).rand_bytes(RANDOM_CHARS).tempdir_in(parent)?.keep();
        let lock = match try_lock(&made) {
            Ok(Some(lock)) => lock,
            other => {
                let _ = std::fs::remove_dir(&made);
                return Err(other.err().unwrap_or_else(|| std::io::Error::other("locked by someone else")));
            }
        };
        if let Err(error) = mark(&made) {
            let _ = std::fs::remove_dir_all(&made);
            return Err(error);
        }
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

fn mark(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(dir.join(MARKER))?;
    file.write_all(MARKER_TEXT)
}

/// Whether `dir` is one of these directories: a directory (not a link) of this user's,
/// holding the mark. Anything else named alike is somebody's, never to be removed.
pub fn is_marked(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return false };
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return false;
    }
    let marker = dir.join(MARKER);
    match std::fs::symlink_metadata(&marker) {
        Ok(meta) if meta.is_file() && meta.len() == MARKER_TEXT.len() as u64 => {
            std::fs::read(&marker).is_ok_and(|text| text == MARKER_TEXT)
        }
        _ => false,
    }
}

/// Removes `dir`, an unpublished directory (named `<unpublished><random>`) whose owner died
/// while making it: old, unlocked, and either marked or — its owner died before marking it —
/// empty, of this user's, and named as [`LockedDir::create`] names them. Whether it was removed.
pub fn remove_abandoned_unpublished(dir: &Path, unpublished: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !is_older_than(dir, UNPUBLISHED_STALE) {
        return false;
    }
    let Ok(Some(_lock)) = try_lock(dir) else { return false };
    if is_marked(dir) {
        return std::fs::remove_dir_all(dir).is_ok();
    }
    let random = dir
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix(unpublished))
        .is_some_and(|rest| rest.len() == RANDOM_CHARS && rest.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    let mine =
        std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw());
    // `remove_dir` removes only an empty directory: nothing in it can be lost.
    random && mine && std::fs::remove_dir(dir).is_ok()
}

/// How many random characters `tempfile` puts after the prefix (its default).
const RANDOM_CHARS: usize = 6;

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
