//! An apply's staging directory inside the workspace (`.sloth-apply-*`): where the changes
//! are extracted, what is replaced or deleted is kept, and the journal is written; locked for
//! the apply's life and proven an apply's ([`staging_proof`]) before anyone can see it.

use std::path::{Path, PathBuf};

use super::WorkspaceError;
use super::rel_path::RelPath;
use super::staging_proof::{self, Proof, TOKEN_FILE};
use crate::locked_dir::{LockedDir, remove_marked};

/// Staging directories are `<root>/.sloth-apply-*`.
pub const STAGING_PREFIX: &str = ".sloth-apply-";
/// A staging directory is made under this name first ([`LockedDir`]): recovery never sees one
/// that is live but not yet locked.
pub(super) const UNPUBLISHED_PREFIX: &str = ".sloth-staging-";
/// A staging directory that holds originals an undo could not put back is renamed to
/// `<root>/.sloth-kept-*`: recovery never looks there (they stay until the user has seen them).
pub const KEPT_PREFIX: &str = ".sloth-kept-";

/// An apply's staging directory inside the workspace, locked for the apply's whole life and
/// removed when dropped, unless kept.
#[derive(Debug)]
pub struct Staging {
    dir: LockedDir,
    keep: bool,
    /// What proves it an apply's to recovery (see [`staging_proof`]); None where no proof can
    /// be kept.
    proof: Option<Proof>,
}

impl Staging {
    /// A new, locked staging directory in `root`, proven an apply's before anyone sees it.
    pub fn create(root: &Path) -> Result<Self, WorkspaceError> {
        let mut proof = None;
        let dir = LockedDir::create_with(root, UNPUBLISHED_PREFIX, STAGING_PREFIX, |made| {
            proof = staging_proof::issue(made, root)?;
            Ok(())
        })
        .map_err(WorkspaceError::io(root))?;
        if proof.is_none() {
            tracing::debug!(root = %root.display(), "no cache directory outside the workspace: an apply that dies halfway is not taken back");
        }
        Ok(Self { dir, keep: false, proof })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Leaves the directory (it holds originals someone must see) under a name recovery
    /// never takes; returns where.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        if let Some(proof) = self.proof.take() {
            proof.withdraw();
        }
        set_aside(self.path())
    }
}

#[cfg(test)]
impl Staging {
    /// Left as an apply that died leaves it: unlocked, in place, still proven.
    pub(super) fn abandon(mut self) -> PathBuf {
        self.keep = true;
        std::mem::forget(self.proof.take());
        self.path().to_path_buf()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // What proves it an apply's goes last: killed halfway, it is still taken for one.
        if remove_marked(self.dir.path(), &[TOKEN_FILE]).is_err() {
            let _ = crate::files::remove_dir_all_opening(self.dir.path());
        }
        if let Some(proof) = self.proof.take() {
            proof.withdraw();
        }
    }
}

/// Whether `path` (as a scan of a workspace lists what it leaves out) is what an apply leaves
/// at the root while it runs: where [`recover`] may have something to take back.
pub fn is_apply_leftover(path: &RelPath) -> bool {
    let name = path.as_bytes();
    !name.contains(&b'/')
        && (name.starts_with(STAGING_PREFIX.as_bytes()) || name.starts_with(UNPUBLISHED_PREFIX.as_bytes()))
}

/// Renames the staging directory `staging` to its kept name (see [`KEPT_PREFIX`]); returns
/// where it is now (where it was, if it cannot be renamed: then said in the log).
pub(super) fn set_aside(staging: &Path) -> PathBuf {
    let name = staging.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix = name.strip_prefix(STAGING_PREFIX).unwrap_or(&name);
    let aside = staging.with_file_name(format!("{KEPT_PREFIX}{suffix}"));
    match std::fs::rename(staging, &aside) {
        Ok(()) => aside,
        Err(error) => {
            tracing::warn!(staging = %staging.display(), %error, "cannot set a kept staging directory aside");
            staging.to_path_buf()
        }
    }
}
