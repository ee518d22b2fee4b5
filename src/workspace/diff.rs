//! What a task changed: entries added or modified (content, mode, time, kind, link target) and
//! entries deleted, between the tree the task started from and the tree it left.

use std::collections::BTreeSet;

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

/// What changed from `before` to `after`. A hard-link group travels whole: when one of its
/// names changed, all of them are in the changes, so that the group can be made again with
/// the new content under every name.
pub fn diff(before: &Manifest, after: &Manifest) -> Changes {
    let mut changed: BTreeSet<&RelPath> = after
        .entries
        .iter()
        .filter(|(path, entry)| before.entries.get(*path).is_none_or(|old| !old.same_as(entry)))
        .map(|(path, _)| path)
        .collect();
    for (leader, followers) in after.hard_link_groups() {
        if changed.contains(leader) || followers.iter().any(|path| changed.contains(path)) {
            changed.insert(leader);
            changed.extend(followers);
        }
    }
    let changed = changed.into_iter().cloned().collect();
    let deleted = before.entries.keys().filter(|path| !after.entries.contains_key(*path)).cloned().collect();
    Changes { changed, deleted }
}
