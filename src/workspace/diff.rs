//! What a task changed: entries added or modified (content, mode, time, kind, link target) and
//! entries deleted, between the tree the task started from and the tree it left.

use super::manifest::Manifest;
use super::rel_path::RelPath;

/// The difference between a workspace before and after a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Added or modified, parents before children.
    pub changed: Vec<RelPath>,
    /// Gone, parents before children.
    pub deleted: Vec<RelPath>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

pub fn diff(before: &Manifest, after: &Manifest) -> Changes {
    let changed = after
        .entries
        .iter()
        .filter(|(path, entry)| before.entries.get(*path).is_none_or(|old| !old.same_as(entry)))
        .map(|(path, _)| path.clone())
        .collect();
    let deleted = before.entries.keys().filter(|path| !after.entries.contains_key(*path)).cloned().collect();
    Changes { changed, deleted }
}
