//! Removing a path, or a tree, without ever following a link out of it.

use std::collections::HashMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::FileError;

/// Removes a file, a link (not what it points at) or an empty directory.
pub fn remove(path: &Path) -> Result<(), FileError> {
    let meta = std::fs::symlink_metadata(path).map_err(FileError::io(path))?;
    if meta.is_dir() {
        std::fs::remove_dir(path).map_err(FileError::io(path))
    } else {
        std::fs::remove_file(path).map_err(FileError::io(path))
    }
}

/// Removes `path` and, for a directory, everything in it, as `rm -rf` does: nothing there is
/// not an error. A link inside the tree is removed as a link (std's `remove_dir_all` opens each
/// directory relative to its parent without following links, so a link swapped in meanwhile
/// cannot send it elsewhere). `.`, `..` and `/` are refused, as `rm` refuses them.
pub fn remove_tree(path: &Path) -> Result<(), FileError> {
    let path = &super::without_trailing_slashes(path);
    let name = path.as_os_str().as_bytes().rsplit(|byte| *byte == b'/').next().unwrap_or_default();
    if name == b"." || name == b".." || path.parent().is_none() {
        return Err(FileError::refused(path, "refusing to remove '.', '..' or '/'"));
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(FileError::Io { path: path.to_path_buf(), source: error }),
    };
    let removed = if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match removed {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(FileError::Io { path: path.to_path_buf(), source: error })
        }
        _ => Ok(()),
    }
}

/// Removes the directory `path` and everything in it, as sloth-runner removes what it made
/// (task trees, work and scratch directories, an apply's staging directory): a directory inside
/// that its owner may not write or search (`chmod 555 .` in a task, a Go module cache) is opened
/// for its owner first, which `remove_dir_all` never does — a user who is not root would keep
/// such trees forever. Links are never followed. Nothing there is not an error.
pub fn remove_dir_all_opening(path: &Path) -> io::Result<()> {
    let again = || match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    match std::fs::remove_dir_all(path) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            open_for_owner(path, 0o700);
            match again() {
                // A file a task made immutable or append-only (`chattr +i`, which needs root):
                // root may take the flag back, and then the tree goes.
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied && nix::unistd::geteuid().is_root() => {
                    if clear_immutable_below(path) > 0 {
                        again()
                    } else {
                        Err(error)
                    }
                }
                other => other,
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The inode flags that keep an entry from being removed or renamed, and a directory's
/// entries with it (`chattr +i`, `chattr +a`).
const FS_IMMUTABLE_FL: std::ffi::c_long = 0x10;
const FS_APPEND_FL: std::ffi::c_long = 0x20;

/// Takes the immutable and append-only flags off every directory and regular file of the tree
/// at `root` (`root` included) that has them; links are never followed, nothing else is opened
/// (a device or a pipe could do something when opened). Returns how many were cleared.
fn clear_immutable_below(root: &Path) -> usize {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(meta) = std::fs::symlink_metadata(root) else { return 0 };
    if !meta.is_dir() && !meta.is_file() {
        return 0;
    }
    let mut cleared = 0;
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY;
    if let Ok(opened) = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(root) {
        let fd = opened.as_raw_fd();
        if let Some(held) = super::inode_flags(std::os::fd::AsFd::as_fd(&opened))
            && held & (FS_IMMUTABLE_FL | FS_APPEND_FL) != 0
        {
            let set: std::ffi::c_long = held & !(FS_IMMUTABLE_FL | FS_APPEND_FL);
            #[allow(unsafe_code)]
            // SAFETY: an open descriptor of this process, and a flags word the ioctl reads.
            let done = unsafe { nix::libc::ioctl(fd, nix::libc::FS_IOC_SETFLAGS, &set) } == 0;
            cleared += usize::from(done);
        }
    }
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(root)
    {
        for entry in entries.flatten() {
            cleared += clear_immutable_below(&entry.path());
        }
    }
    cleared
}

/// Gives every directory of the tree at `root` (`root` included) that this process's user owns
/// and lacks one of the owner's permission `bits` those bits; links are never followed, and
/// what cannot be opened is passed over. Returns each directory opened with the mode it had,
/// parents first.
pub fn open_for_owner(root: &Path, bits: u32) -> Vec<(PathBuf, u32)> {
    open_for_owner_with_files(root, bits, 0)
}

/// [`open_for_owner`], also giving every regular file this process's user owns that lacks one
/// of the owner's `file_bits` those bits (each listed after the directory holding it).
pub fn open_for_owner_with_files(root: &Path, bits: u32, file_bits: u32) -> Vec<(PathBuf, u32)> {
    let mut opened = Vec::new();
    open_below(root, (bits, file_bits), nix::unistd::geteuid().as_raw(), &mut opened, &mut HashMap::new());
    opened
}

/// Files opened so far, by (device, inode), with the mode they had: another name of one is
/// listed with that mode, not the one it was opened to.
type OpenedFiles = HashMap<(u64, u64), u32>;

fn open_below(
    dir: &Path,
    (bits, file_bits): (u32, u32),
    owner: u32,
    opened: &mut Vec<(PathBuf, u32)>,
    files: &mut OpenedFiles,
) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() || meta.uid() != owner {
        return;
    }
    let mode = meta.mode() & 0o7777;
    if mode & bits != bits {
        if std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | bits)).is_err() {
            return;
        }
        opened.push((dir.to_path_buf(), mode));
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            open_below(&entry.path(), (bits, file_bits), owner, opened, files);
        } else if kind.is_file() && file_bits != 0 {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if let Some(&mode) = files.get(&(meta.dev(), meta.ino())) {
                // Another name of a file opened already: the mode it had.
                opened.push((path, mode));
                continue;
            }
            let mode = meta.mode() & 0o7777;
            if meta.is_file()
                && meta.uid() == owner
                && mode & file_bits != file_bits
                && std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | file_bits)).is_ok()
            {
                files.insert((meta.dev(), meta.ino()), mode);
                opened.push((path, mode));
            }
        }
    }
}
