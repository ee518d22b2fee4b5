//! What a task changed: entries added or modified (content, mode, time, kind, link target) and
//! entries deleted, between the tree the task started from and the tree it left.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::manifest::{Entry, Manifest};
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
///
/// Both manifests are walked side by side in their order: one comparison per entry, where a
/// lookup of each entry in the other would search (a warm task over 20,000 files diffs its
/// whole tree).
pub fn diff(before: &Manifest, after: &Manifest) -> Changes {
    let mut changed: Vec<&RelPath> = Vec::new();
    let mut deleted: Vec<RelPath> = Vec::new();
    let mut old = before.entries.iter().peekable();
    for (path, entry) in &after.entries {
        loop {
            match old.peek().map(|(old_path, old_entry)| (old_path.cmp(&path), *old_entry)) {
                Some((Ordering::Less, _)) => deleted.extend(old.next().map(|(gone, _)| gone.clone())),
                Some((Ordering::Equal, old_entry)) => {
                    if !old_entry.same_as(entry) || dir_replaced(before, after, path, old_entry, entry) {
                        changed.push(path);
                    }
                    old.next();
                    break;
                }
                _ => {
                    changed.push(path);
                    break;
                }
            }
        }
    }
    deleted.extend(old.map(|(gone, _)| gone.clone()));
    let groups = after.hard_link_groups();
    if groups.is_empty() {
        return Changes { changed: changed.into_iter().cloned().collect(), deleted };
    }
    let mut changed: BTreeSet<&RelPath> = changed.into_iter().collect();
    for (leader, followers) in groups {
        if changed.contains(leader) || followers.iter().any(|path| changed.contains(path)) {
            changed.insert(leader);
            changed.extend(followers);
        }
    }
    Changes { changed: changed.into_iter().cloned().collect(), deleted }
}

/// Whether the directory at `path` is another one than the task started from, with the same
/// mode and time (`rm -rf d; mv new d`, both made in one tick of a coarse clock): it changes
/// hands as one the task moved there (see `pack::MOVED_FROM_KEY`). Known only where both
/// manifests hold identities (an agent's tree). (A file's bytes are what matter: one that
/// holds the same bytes, mode and time is no change to carry — `sed -i` that replaced nothing.)
fn dir_replaced(before: &Manifest, after: &Manifest, path: &RelPath, old: &Entry, new: &Entry) -> bool {
    matches!((old, new), (Entry::Dir { .. }, Entry::Dir { .. }))
        && matches!((before.stamps.get(path), after.stamps.get(path)), (Some(was), Some(now)) if was.ino != now.ino)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::workspace::timestamp::Timestamp;

    /// A manifest of `entries`: a path and a byte of content each.
    fn manifest(entries: &[(String, u8)]) -> Manifest {
        let mut manifest = Manifest::default();
        for (path, byte) in entries {
            if let Ok(path) = RelPath::parse(path.as_bytes()) {
                let entry = Entry::File {
                    mode: 0o644,
                    size: 1,
                    hash: blake3::hash(&[*byte]),
                    mtime: Timestamp::new(0, 0),
                    link: None,
                };
                manifest.entries.insert(path, entry);
            }
        }
        manifest
    }

    proptest! {
        /// Side by side, the answer of a lookup of every entry in the other manifest.
        #[test]
        fn the_walk_side_by_side_finds_what_lookups_would(
            before in proptest::collection::vec(("[a-c/-]{1,4}", 0u8..3), 0..40),
            after in proptest::collection::vec(("[a-c/-]{1,4}", 0u8..3), 0..40),
        ) {
            let (before, after) = (manifest(&before), manifest(&after));
            let changes = diff(&before, &after);
            let changed: Vec<RelPath> = after
                .entries
                .iter()
                .filter(|(path, entry)| before.entries.get(*path).is_none_or(|old| !old.same_as(entry)))
                .map(|(path, _)| path.clone())
                .collect();
            let deleted: Vec<RelPath> =
                before.entries.keys().filter(|path| !after.entries.contains_key(*path)).cloned().collect();
            prop_assert_eq!(changes, Changes { changed, deleted });
        }
    }
}
