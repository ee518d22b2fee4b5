//! Directories a task left unreadable to their owner (`chmod 000 d`, `chmod 100 .`): a run here
//! leaves them so and goes on; an agent that is not root must still read what the task left in
//! its tree to send it back. It opens each such directory of its own for the reading
//! ([`Opened::in_tree`]), and closes it again after, and what it reports is the mode the task
//! left ([`Opened::as_left`]).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::WorkspaceError;
use super::manifest::{Entry, Manifest};
use super::rel_path::RelPath;

/// The directories opened (read and search for their owner), with the modes the task left.
#[derive(Debug, Default)]
pub struct Opened {
    root: PathBuf,
    /// (path beneath the root, None for the root itself; mode as left), parents first.
    dirs: Vec<(Option<RelPath>, u32)>,
}

/// Whether `error` is a permission refused (what a directory the task closed gives).
pub fn is_refused(error: &WorkspaceError) -> bool {
    matches!(error, WorkspaceError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
}

impl Opened {
    /// Opens every directory of the tree at `root` (the root included) that its owner — this
    /// process's user — may not read or search; links are never followed.
    pub fn in_tree(root: &Path) -> Self {
        let mut opened = Self { root: root.to_path_buf(), dirs: Vec::new() };
        opened.open(None);
        opened
    }

    fn open(&mut self, path: Option<&RelPath>) {
        let full = path.map_or_else(|| self.root.clone(), |path| self.root.join(path.as_path()));
        let Ok(meta) = std::fs::symlink_metadata(&full) else { return };
        if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
            return;
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o500 != 0o500 {
            if std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode | 0o500)).is_err() {
                return;
            }
            self.dirs.push((path.cloned(), mode));
        }
        let Ok(entries) = std::fs::read_dir(&full) else { return };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                let name = entry.file_name();
                let name = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str());
                let child = match path {
                    None => RelPath::from_name(name).ok(),
                    Some(path) => Some(path.join_name(name)),
                };
                if let Some(child) = child {
                    self.open(Some(&child));
                }
            }
        }
    }

    /// Whether any directory was opened.
    pub fn any(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// `manifest`, scanned while the directories were open, with the modes the task left them.
    pub fn as_left(&self, manifest: &mut Manifest) {
        for (path, mode) in &self.dirs {
            match path {
                None => {
                    if let Some(root) = manifest.root.as_mut() {
                        root.mode = *mode;
                    }
                }
                Some(path) => {
                    if let Some(Entry::Dir { mode: left, .. }) = manifest.entries.get_mut(path) {
                        *left = *mode;
                    }
                }
            }
        }
    }
}

impl Drop for Opened {
    /// Closes them again, deepest first.
    fn drop(&mut self) {
        for (path, mode) in self.dirs.iter().rev() {
            let full = path.as_ref().map_or_else(|| self.root.clone(), |path| self.root.join(path.as_path()));
            let _ = std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode));
        }
    }
}
