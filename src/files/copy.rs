//! Copying a file, a link or a whole directory, as `cp -a` would, without a process per call.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::FileError;

/// Copies `src` to `dst` (the copy's own path, never "into" a directory there): a file with its
/// content, a link as a link (same target), a directory with everything in it, each with its
/// permission bits and times. `dst`'s missing parents are created. A file or link already at
/// `dst` is replaced; a directory there receives the copied entries. Refused: a directory
/// copied into itself, a file copied onto itself, a file over a directory and a directory over
/// a file, and anything but files, directories and links (a fifo, a device).
pub fn copy(src: &Path, dst: &Path) -> Result<(), FileError> {
    let meta = std::fs::symlink_metadata(src).map_err(FileError::io(src))?;
    let (Some(parent), Some(name)) = (dst.parent(), dst.file_name()) else {
        return Err(FileError::refused(dst, "is not a path a copy can have"));
    };
    std::fs::create_dir_all(parent).map_err(FileError::io(parent))?;
    if meta.is_dir() {
        let real_src = std::fs::canonicalize(src).map_err(FileError::io(src))?;
        let real_dst = crate::physical_path::resolved(parent).join(name);
        if real_dst.starts_with(&real_src) {
            return Err(FileError::refused(dst, format!("is inside {}, the directory being copied", src.display())));
        }
    } else if let Ok(there) = std::fs::symlink_metadata(dst)
        && (there.dev(), there.ino()) == (meta.dev(), meta.ino())
    {
        return Err(FileError::refused(dst, format!("is {} itself", src.display())));
    }
    copy_entry(src, dst, &meta)
}

fn copy_entry(src: &Path, dst: &Path, meta: &Metadata) -> Result<(), FileError> {
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        let target = std::fs::read_link(src).map_err(FileError::io(src))?;
        clear(dst)?;
        std::os::unix::fs::symlink(&target, dst).map_err(FileError::io(dst))?;
    } else if file_type.is_file() {
        clear(dst)?;
        let mut from = std::fs::File::open(src).map_err(FileError::io(src))?;
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dst)
            .map_err(FileError::io(dst))?;
        std::io::copy(&mut from, &mut to).map_err(FileError::io(dst))?;
        set_mode(dst, meta)?;
    } else if file_type.is_dir() {
        match std::fs::symlink_metadata(dst) {
            Ok(there) if there.is_dir() => {}
            Ok(_) => return Err(FileError::refused(dst, "exists and is not a directory")),
            Err(_) => std::fs::create_dir(dst).map_err(FileError::io(dst))?,
        }
        for entry in std::fs::read_dir(src).map_err(FileError::io(src))? {
            let entry = entry.map_err(FileError::io(src))?;
            let from = entry.path();
            let entry_meta = std::fs::symlink_metadata(&from).map_err(FileError::io(&from))?;
            copy_entry(&from, &dst.join(entry.file_name()), &entry_meta)?;
        }
        // Last, so that a read-only directory could still be filled.
        set_mode(dst, meta)?;
    } else {
        return Err(FileError::refused(src, "is not a file, a directory or a link"));
    }
    set_times(dst, meta)
}

/// Makes room for a file or link at `path`: one already there goes, a directory stays and
/// refuses the copy.
fn clear(path: &Path) -> Result<(), FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(there) if there.is_dir() => Err(FileError::refused(path, "is a directory")),
        Ok(_) => std::fs::remove_file(path).map_err(FileError::io(path)),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, meta: &Metadata) -> Result<(), FileError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(FileError::io(path))
}

/// The source's access and modification times on `path` itself (a link's own, not its target's).
fn set_times(path: &Path, meta: &Metadata) -> Result<(), FileError> {
    let accessed = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let modified = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(nix::fcntl::AT_FDCWD, path, &accessed, &modified, UtimensatFlags::NoFollowSymlink)
        .map_err(|errno| FileError::Io { path: path.to_path_buf(), source: errno.into() })
}
