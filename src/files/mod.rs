//! File operations behind the Lua `fs` module. Pure Rust, no Lua: each call is one or a few
//! system calls, where the Lua helpers it replaces started a process (`mkdir -p`, `rm -rf`,
//! `ls -A1`, which also split names on newlines). Paths are bytes; nothing here follows a link
//! it meets inside a tree (removal, copy, glob), so a link cannot lead an operation outside the
//! tree it was given.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod copy;
mod glob;
mod remove;
mod stat;
mod temp;

pub use copy::copy;
pub use glob::glob;
pub use remove::{open_for_owner, open_for_owner_with_files, remove, remove_dir_all_opening, remove_tree};
pub use stat::{Kind, Stat, inode_flags, stat};
pub use temp::{temp_dir, temp_name};

/// Why a file operation failed; every variant names the path or pattern concerned.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {}", path.display(), describe(source))]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("invalid pattern '{pattern}': {reason}")]
    Pattern { pattern: String, reason: String },
}

impl FileError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| FileError::Io { path: path.to_path_buf(), source }
    }

    fn refused(path: &Path, reason: impl Into<String>) -> Self {
        FileError::Refused { path: path.to_path_buf(), reason: reason.into() }
    }
}

/// The system's words for an error ("No such file or directory"), without Rust's
/// "(os error 2)" suffix: the message is for people reading a pipeline's output.
pub(crate) fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_owned(),
        None => error.to_string(),
    }
}

/// The whole content of the file at `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(FileError::io(path))
}

/// Replaces the content of `path` (created if missing) with `content`.
pub fn write(path: &Path, content: &[u8]) -> Result<(), FileError> {
    std::fs::write(path, content).map_err(FileError::io(path))
}

/// Adds `content` at the end of `path` (created if missing).
pub fn append(path: &Path, content: &[u8]) -> Result<(), FileError> {
    let mut file = std::fs::OpenOptions::new().append(true).create(true).open(path).map_err(FileError::io(path))?;
    file.write_all(content).map_err(FileError::io(path))
}

/// Creates the directory `path` and its missing parents; one already there is fine, anything
/// else there is not.
pub fn make_dir(path: &Path) -> Result<(), FileError> {
    match std::fs::create_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Err(FileError::refused(path, "exists and is not a directory"))
        }
        Err(error) => Err(FileError::Io { path: path.to_path_buf(), source: error }),
    }
}

/// Every name in the directory `path` (dotfiles too), sorted by their bytes.
pub fn list(path: &Path) -> Result<Vec<OsString>, FileError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(FileError::io(path))? {
        names.push(entry.map_err(FileError::io(path))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Whether something is at `path`, a link counting as itself: a dangling link exists.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// `path` without trailing slashes (`/` stays): "link/" would make the system follow a link
/// that every operation here means to see as itself.
pub fn without_trailing_slashes(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    let mut end = bytes.len();
    while end > 1 && bytes[end - 1] == b'/' {
        end -= 1;
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[..end]))
}
