//! Applying a task's changes to a workspace: all or nothing up to the last step.
//!
//! The changes archive is first extracted (safely) into a staging directory inside the
//! workspace, so a broken or hostile archive or an interrupted transfer leaves the workspace
//! as it was. Then, if a base manifest is given, every path the task changed or deleted must
//! still be as it was when the workspace was shipped — otherwise it changed on both sides and
//! the whole apply is refused, naming those paths. Finally each staged entry is renamed into
//! place (atomic per file) and deletions are made.

use std::io::Read;
use std::path::Path;

use super::WorkspaceError;
use super::manifest::{Entry, Manifest, entry_at};
use super::safe_path::{normalize, real_parents};
use super::unpack::{Limits, unpack};

/// What an apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub written: u64,
    pub deleted: u64,
}

/// Applies `changes` (tar + gzip) and `deleted` to `root`. `base` is the manifest the task
/// started from; when given, concurrent edits are detected as conflicts.
pub fn apply(
    root: &Path,
    changes: impl Read,
    deleted: &[String],
    base: Option<&Manifest>,
    limits: &Limits,
) -> Result<ApplyReport, WorkspaceError> {
    let deleted: Vec<String> = deleted
        .iter()
        .map(|raw| {
            normalize(raw).map_err(|reason| WorkspaceError::UnsafeEntry { entry: raw.clone(), reason: reason.into() })
        })
        .collect::<Result<_, _>>()?;

    let staging =
        tempfile::Builder::new().prefix(".sloth-apply-").tempdir_in(root).map_err(WorkspaceError::io(root))?;
    let unpacked = unpack(changes, staging.path(), limits)?;
    let mut staged = Vec::with_capacity(unpacked.paths.len());
    for path in unpacked.paths {
        if let Some(entry) = entry_at(&staging.path().join(&path), &path)? {
            staged.push((path, entry));
        }
    }

    if let Some(base) = base {
        let conflicts = conflicts(root, base, staged.iter().map(|(path, _)| path).chain(deleted.iter()))?;
        if !conflicts.is_empty() {
            return Err(WorkspaceError::Conflict { paths: conflicts });
        }
    }

    let mut report = ApplyReport::default();
    for (path, entry) in &staged {
        place(root, staging.path(), path, entry)?;
        report.written += 1;
    }
    // Deepest first, so directories are empty by the time they are removed.
    for path in deleted.iter().rev() {
        if remove(root, path)? {
            report.deleted += 1;
        }
    }
    Ok(report)
}

/// Paths whose current state in `root` differs from `base` (changed here since shipping).
fn conflicts<'a>(
    root: &Path,
    base: &Manifest,
    paths: impl Iterator<Item = &'a String>,
) -> Result<Vec<String>, WorkspaceError> {
    let mut conflicts = Vec::new();
    for path in paths {
        let now = entry_at(&root.join(path), path)?;
        let same = match (base.entries.get(path), &now) {
            (Some(Entry::Dir { .. }), Some(Entry::Dir { .. })) => true,
            (before, now) => before == now.as_ref(),
        };
        if !same {
            conflicts.push(path.clone());
        }
    }
    Ok(conflicts)
}

/// Moves one staged entry into place; directories are created (their contents follow).
fn place(root: &Path, staging: &Path, path: &str, entry: &Entry) -> Result<(), WorkspaceError> {
    real_parents(root, path)?;
    let target = root.join(path);
    let existing = std::fs::symlink_metadata(&target).ok();
    match entry {
        Entry::Dir { mode } => {
            match existing {
                Some(meta) if meta.is_dir() => {}
                Some(_) => {
                    std::fs::remove_file(&target).map_err(WorkspaceError::io(&target))?;
                    std::fs::create_dir(&target).map_err(WorkspaceError::io(&target))?;
                }
                None => std::fs::create_dir(&target).map_err(WorkspaceError::io(&target))?,
            }
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))
                .map_err(WorkspaceError::io(&target))
        }
        Entry::File { .. } | Entry::Symlink { .. } => {
            if existing.is_some_and(|meta| meta.is_dir()) {
                std::fs::remove_dir_all(&target).map_err(WorkspaceError::io(&target))?;
            }
            std::fs::rename(staging.join(path), &target).map_err(WorkspaceError::io(&target))
        }
    }
}

/// Removes one deleted entry; a directory only once it is empty (files added here meanwhile
/// stay). Returns whether something was removed.
fn remove(root: &Path, path: &str) -> Result<bool, WorkspaceError> {
    let target = root.join(path);
    let Ok(meta) = std::fs::symlink_metadata(&target) else { return Ok(false) };
    let result = if meta.is_dir() { std::fs::remove_dir(&target) } else { std::fs::remove_file(&target) };
    match result {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(false),
        Err(error) => Err(WorkspaceError::Io { path: target, source: error }),
    }
}
