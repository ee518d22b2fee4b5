//! Whether a file of a kept tree is nothing but its bytes, mode and times — what the master's
//! copy of it is — so that a task's output may be kept for the next task as the task left it.

use std::path::Path;

use super::super::beneath::Root;
use super::super::rel_path::RelPath;

/// Inode flags `chattr` sets (append-only, immutable, no-dump, no-CoW, …): a file that has
/// any is not as the master's copy of it is.
const SET_FLAGS: std::ffi::c_long = 0x1
    | 0x2
    | 0x4
    | 0x8
    | 0x10
    | 0x20
    | 0x40
    | 0x80
    | 0x4000
    | 0x8000
    | 0x10000
    | 0x20000
    | 0x80_0000
    | 0x200_0000
    | 0x2000_0000
    | 0x4000_0000;

/// Whether the file at `path` in the tree at `root` holds nothing but its bytes, mode and
/// times: no extended attribute (an ACL is one) and no inode flag a task could have set.
pub fn plain_file(root: &Path, path: &RelPath) -> bool {
    use xattr::FileExt;
    let Ok(file) = Root::open(root).and_then(|tree| tree.open_file(path)) else { return false };
    // (A security label the system's policy gives every file is not the task's; a file
    // capability is.)
    let set_by_task = |name: &std::ffi::OsStr| {
        let name = name.as_encoded_bytes();
        !name.starts_with(b"security.") || name == b"security.capability"
    };
    if file.list_xattr().map_or(true, |mut names| names.any(|name| set_by_task(&name))) {
        return false;
    }
    // (A filesystem that keeps no flags — tmpfs — has none to hold.)
    crate::files::inode_flags(std::os::fd::AsFd::as_fd(&file)).is_none_or(|flags| flags & SET_FLAGS == 0)
}
