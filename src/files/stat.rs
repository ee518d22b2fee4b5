//! What is at a path, the path itself (a link is described, not followed).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::FileError;

/// The kind of thing at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    /// A fifo, a socket or a device.
    Other,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Link => "link",
            Kind::Other => "other",
        }
    }
}

/// A path's kind, size, permission bits, modification time and, for a link, its target.
#[derive(Debug, Clone)]
pub struct Stat {
    pub kind: Kind,
    pub size: u64,
    /// Permission bits (setuid, setgid and sticky included), without the file type.
    pub mode: u32,
    /// Seconds since the Unix epoch, with the nanoseconds as the fraction.
    pub mtime: f64,
    pub target: Option<PathBuf>,
}

pub fn stat(path: &Path) -> Result<Stat, FileError> {
    let meta = std::fs::symlink_metadata(path).map_err(FileError::io(path))?;
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        Kind::Link
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    };
    let target = match kind {
        Kind::Link => Some(std::fs::read_link(path).map_err(FileError::io(path))?),
        _ => None,
    };
    Ok(Stat {
        kind,
        size: meta.size(),
        mode: meta.mode() & 0o7777,
        mtime: meta.mtime() as f64 + f64::from(meta.mtime_nsec() as u32) / 1e9,
        target,
    })
}

/// The inode flags of the open file `fd` (`chattr`'s: append-only, immutable, no-dump, …);
/// None where the filesystem keeps none (tmpfs of older kernels) or will not say.
pub fn inode_flags(fd: std::os::fd::BorrowedFd<'_>) -> Option<std::ffi::c_long> {
    use std::os::fd::AsRawFd;
    let mut flags: std::ffi::c_long = 0;
    #[allow(unsafe_code)]
    // SAFETY: an open descriptor of this process, and a flags word the ioctl writes into.
    let got = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FS_IOC_GETFLAGS, &mut flags) } == 0;
    got.then_some(flags)
}
