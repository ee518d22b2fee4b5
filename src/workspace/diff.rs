//! What a task changed: entries added or modified (content, mode, kind, link target) and
//! entries deleted, between two manifests of the same workspace.

use super::manifest::{Entry, Manifest};

/// The difference between a workspace before and after a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Added or modified, parents before children.
    pub changed: Vec<String>,
    /// Gone, parents before children.
    pub deleted: Vec<String>,
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
        .filter(|(path, entry)| match (before.entries.get(*path), entry) {
            (None, _) => true,
            // A directory whose mode is unchanged carries nothing by itself.
            (Some(Entry::Dir { mode: old }), Entry::Dir { mode: new }) => old != new,
            (Some(old), new) => old != *new,
        })
        .map(|(path, _)| path.clone())
        .collect();
    let deleted = before.entries.keys().filter(|path| !after.entries.contains_key(*path)).cloned().collect();
    Changes { changed, deleted }
}
