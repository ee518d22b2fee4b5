//! The cache's directory, held open: blobs are created, published and opened by name relative
//! to it (`openat`, `renameat`), not by a path walked from `/` for every one of a cold task's
//! thousands of contents.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

/// What temporary files' names start with: no blob's name does (blobs are named by hex hash).
const TEMP_PREFIX: &str = ".tmp-";

/// Whether `name` is a temporary file's (one a writer left if it died before publishing it).
pub(super) fn is_temp(name: &std::ffi::OsStr) -> bool {
    std::os::unix::ffi::OsStrExt::as_bytes(name).starts_with(TEMP_PREFIX.as_bytes())
}

/// An open cache directory.
#[derive(Debug)]
pub(super) struct CacheDir {
    fd: OwnedFd,
}

/// Names temporary files apart within this process; a name left by a dead process that had
/// the same id is skipped (`O_EXCL`).
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl CacheDir {
    pub(super) fn open(path: &Path) -> std::io::Result<Self> {
        let fd =
            openat(nix::fcntl::AT_FDCWD, path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
        Ok(Self { fd })
    }

    /// Opens the blob `name` for reading: never through a link, never waiting on a fifo.
    pub(super) fn open_blob(&self, name: &str) -> std::io::Result<File> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        Ok(File::from(openat(self.fd.as_fd(), name, flags, Mode::empty())?))
    }

    /// Bytes an unprivileged writer may still write on the directory's filesystem; None when
    /// it cannot be told.
    pub(super) fn available(&self) -> Option<u64> {
        let stats = nix::sys::statvfs::fstatvfs(&self.fd).ok()?;
        Some((stats.blocks_available() as u64).saturating_mul(stats.fragment_size() as u64))
    }

    /// A new, empty temporary file in the directory (`.tmp-<pid>-<n>`: no blob's name), removed
    /// when dropped unless published.
    pub(super) fn temp(&self) -> std::io::Result<TempBlob<'_>> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
        loop {
            let name = format!("{TEMP_PREFIX}{}-{}", std::process::id(), NEXT_TEMP.fetch_add(1, Ordering::Relaxed));
            match openat(self.fd.as_fd(), name.as_str(), flags, Mode::from_bits_truncate(0o644)) {
                Ok(fd) => return Ok(TempBlob { dir: self, name: Some(name), file: File::from(fd) }),
                Err(nix::errno::Errno::EEXIST) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// A temporary file being written in the cache directory.
pub(super) struct TempBlob<'a> {
    dir: &'a CacheDir,
    /// None once published.
    name: Option<String>,
    pub(super) file: File,
}

impl TempBlob<'_> {
    /// Gives the file its final name, replacing any blob of that name (atomic: a reader sees
    /// the old file or the new one, whole).
    pub(super) fn publish(mut self, name: &str) -> std::io::Result<()> {
        let temp = self.name.take().expect("a temporary blob is published once");
        let fd = self.dir.fd.as_fd();
        if let Err(error) = renameat(fd, temp.as_str(), fd, name) {
            let _ = unlinkat(fd, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(error.into());
        }
        Ok(())
    }
}

impl Drop for TempBlob<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take()
            && let Ok(name) = CString::new(name)
        {
            let _ = unlinkat(self.dir.fd.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}
