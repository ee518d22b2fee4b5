//! Directories and files a task left unreadable to their owner (`chmod 000 d`, `chmod 100 .`,
//! `chmod 200 secret`): a run here leaves them so and goes on; an agent that is not root must
//! still read what the task left in its tree to send it back. It opens each such directory and
//! file of its own for the reading ([`Opened::in_tree`]), and closes it again after, and what it
//! reports is the mode the task left ([`Opened::as_left`]).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::WorkspaceError;
use super::manifest::{Entry, Manifest};
use super::rel_path::RelPath;

/// The directories (read and search for their owner) and files (read) opened, with the modes
/// the task left.
#[derive(Debug, Default)]
pub struct Opened {
    /// (where, which entry of the manifest, mode as left), parents first.
    dirs: Vec<(PathBuf, Which, u32)>,
}

/// Which entry of the tree's manifest an opened directory is.
#[derive(Debug)]
enum Which {
    Root,
    Entry(RelPath),
    /// None the manifest can hold (a name no path of it can be).
    None,
}

/// Whether `error` is a permission refused (what a directory the task closed gives).
pub fn is_refused(error: &WorkspaceError) -> bool {
    matches!(error, WorkspaceError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
}

impl Opened {
    /// Opens every directory of the tree at `root` (the root included) that its owner — this
    /// process's user — may not read or search, and every file it may not read; links are
    /// never followed.
    pub fn in_tree(root: &Path) -> Self {
        let dirs = crate::files::open_for_owner_with_files(root, 0o500, 0o400)
            .into_iter()
            .map(|(dir, mode)| {
                let which = match dir.strip_prefix(root) {
                    Ok(beneath) if beneath.as_os_str().is_empty() => Which::Root,
                    Ok(beneath) => RelPath::parse(beneath.as_os_str().as_bytes()).map_or(Which::None, Which::Entry),
                    Err(_) => Which::None,
                };
                (dir, which, mode)
            })
            .collect();
        Self { dirs }
    }

    /// Whether any directory was opened.
    pub fn any(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// `manifest`, scanned while the directories were open, with the modes the task left them.
    pub fn as_left(&self, manifest: &mut Manifest) {
        for (_, which, mode) in &self.dirs {
            match which {
                Which::Root => {
                    if let Some(root) = manifest.root.as_mut() {
                        root.mode = *mode;
                    }
                }
                Which::Entry(path) => {
                    if let Some(Entry::Dir { mode: left, .. } | Entry::File { mode: left, .. }) =
                        manifest.entries.get_mut(path)
                    {
                        *left = *mode;
                    }
                }
                Which::None => {}
            }
        }
    }
}

impl Drop for Opened {
    /// Closes them again, deepest first.
    fn drop(&mut self) {
        for (dir, _, mode) in self.dirs.iter().rev() {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(*mode));
        }
    }
}
