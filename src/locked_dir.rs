//! Directories that tell whether their owner is alive: each is made under an unpublished
//! name, locked (`flock`) for its owner's whole life, and only then renamed to its published
//! name. Whoever later finds a published one it can lock knows its owner died (killed, out of
//! memory) and may clean up after it; an unpublished one is only abandoned once it is old.
//! Used for the agent's work directory and for the staging directory of an apply.
//!
//! Only a directory that proves to be one of these is ever cleaned up after: a name alone
//! proves nothing (a user's `.sloth-apply-notes` in a workspace, a `sloth-agent-old` in the
//! temp dir). Each is marked before it is published ([`MARKER`]), and a published directory
//! is taken for an abandoned one only if this user owns it and it holds the mark — and, where
//! the directory lives among files others supply (a workspace: a checkout, an archive, which
//! can carry a mark too), only with a proof kept outside it (see `workspace::staging_proof`).

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
        Self::create_with(parent, unpublished, prefix, |_| Ok(()))
    }

    /// [`LockedDir::create`], calling `prepare` with the directory (marked, locked, not yet
    /// published) to put in it what must be there before anyone can see it.
    pub fn create_with(
        parent: &Path,
        unpublished: &str,
        prefix: &str,
        prepare: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> std::io::Result<Self> {
        let made = tempfile::Builder::new().prefix(unpublished).rand_bytes(RANDOM_CHARS).tempdir_in(parent)?.keep();
        let lock = match try_lock(&made) {
            Ok(Some(lock)) => lock,
            other => {
                let _ = std::fs::remove_dir(&made);
                return Err(other.err().unwrap_or_else(|| std::io::Error::other("locked by someone else")));
            }
        };
        if let Err(error) = mark(&made).and_then(|()| prepare(&made)) {
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
/// while making it: old, unlocked, and either `proven` (given the locked directory) — or, its
/// owner having died before it was complete, of this user's, named as [`LockedDir::create`]
/// names them, and holding nothing but files of its own making (`own`: the mark and what
/// `prepare` writes), which are all that is removed then. Whether it was removed.
pub fn remove_abandoned_unpublished(
    dir: &Path,
    unpublished: &str,
    own: &[&str],
    proven: impl FnOnce(&File) -> bool,
) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !is_older_than(dir, UNPUBLISHED_STALE) {
        return false;
    }
    let Ok(Some(lock)) = try_lock(dir) else { return false };
    if proven(&lock) {
        return remove_marked(dir, own).is_ok();
    }
    let random = dir
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix(unpublished))
        .is_some_and(|rest| rest.len() == RANDOM_CHARS && rest.bytes().all(|byte| byte.is_ascii_alphanumeric()));
    let mine =
        std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.is_dir() && meta.uid() == nix::unistd::geteuid().as_raw());
    if !(random && mine) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    let mut found = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { return false };
        let name = entry.file_name();
        let regular = entry.file_type().is_ok_and(|kind| kind.is_file());
        // The mark as written (not any file so named), or a file of its making — small as they
        // are (a token), nothing a user would keep there.
        let ours = if name == MARKER {
            std::fs::read(entry.path()).is_ok_and(|text| text == MARKER_TEXT)
        } else {
            own.iter().any(|own| name == *own) && entry.metadata().is_ok_and(|meta| meta.len() <= 64)
        };
        if !regular || !ours {
            return false;
        }
        found.push(entry.path());
    }
    for path in found {
        let _ = std::fs::remove_file(path);
    }
    // `remove_dir` removes only an empty directory: nothing put there since can be lost.
    std::fs::remove_dir(dir).is_ok()
}

/// Removes a marked directory, the mark and `last` (what proves it is one of these) last:
/// one that is only partly removed (its remover killed) still proves to be one, and is still
/// cleaned up after.
pub fn remove_marked(dir: &Path, last: &[&str]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        if name == MARKER || last.iter().any(|last| name == *last) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            crate::files::remove_dir_all_opening(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    for name in last.iter().chain(std::iter::once(&MARKER)) {
        match std::fs::remove_file(dir.join(name)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    std::fs::remove_dir(dir)
}

/// Removes the directories of `parent` named `<prefix>*` whose owners died (see the module's
/// comment), but `except` (the caller's own); `before` is called on each about to go (what its
/// owner made elsewhere, to be undone first). Returns what was removed.
pub fn remove_dead(
    parent: &Path,
    (unpublished, prefix): (&str, &str),
    except: &Path,
    before: impl Fn(&Path),
) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(parent) else { return removed };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path == except || !name.starts_with(prefix) || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        if name.starts_with(unpublished) {
            if remove_abandoned_unpublished(&path, unpublished, &[], |_| is_marked(&path)) {
                removed.push(path);
            }
            continue;
        }
        // Only a marked directory is one of these: one named alike is somebody's.
        if let Ok(Some(_lock)) = try_lock(&path)
            && is_marked(&path)
        {
            before(&path);
            if remove_marked(&path, &[]).or_else(|_| crate::files::remove_dir_all_opening(&path)).is_ok() {
                removed.push(path);
            }
        }
    }
    removed
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
