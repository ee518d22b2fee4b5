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
    let base_inodes = std::cell::OnceCell::new();
    let mut unchanged_files: Vec<&RelPath> = Vec::new();
    let mut old = before.entries.iter().peekable();
    for (path, entry) in &after.entries {
        loop {
            match old.peek().map(|(old_path, old_entry)| (old_path.cmp(&path), *old_entry)) {
                Some((Ordering::Less, _)) => deleted.extend(old.next().map(|(gone, _)| gone.clone())),
                Some((Ordering::Equal, old_entry)) => {
                    let dir_replaced =
                        || matches!(entry, Entry::Dir { .. }) && replaced(before, after, path, &base_inodes);
                    if !old_entry.same_as(entry) || dir_replaced() {
                        changed.push(path);
                    } else if matches!(entry, Entry::File { .. }) {
                        unchanged_files.push(path);
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
    // A file moved over one with the same bytes, mode and time left its own path: looked for
    // only when the task deleted something (most warm tasks do not).
    if !deleted.is_empty() {
        let before_count = changed.len();
        changed.extend(unchanged_files.into_iter().filter(|path| replaced(before, after, path, &base_inodes)));
        if changed.len() > before_count {
            changed.sort();
        }
    }
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

/// Whether the entry at `path`, the same in kind, bytes, mode and time as when the task
/// started, is another one than the task started from that changes hands as one moved there
/// (see `pack::MOVED_FROM_KEY`): a directory (`rm -rf d; mv new d`), or a file another of the
/// base was (`mv c a`, and what a directory moved over another holds) — made in one tick of a
/// coarse clock. Known only where both manifests hold identities (an agent's tree). (A file
/// made anew with the same bytes, mode and time is no change to carry: `sed -i` that replaced
/// nothing.) `inodes`: the base's, read once when first needed.
fn replaced<'a>(
    before: &'a Manifest,
    after: &Manifest,
    path: &RelPath,
    inodes: &std::cell::OnceCell<std::collections::HashMap<u64, &'a RelPath>>,
) -> bool {
    let dir = matches!(after.entries.get(path), Some(Entry::Dir { .. }));
    let (Some(was), Some(now)) = (before.stamps.get(path), after.stamps.get(path)) else { return false };
    was.ino != now.ino && (dir || inodes.get_or_init(|| before.paths_by_inode()).contains_key(&now.ino))
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
