//! A workspace being built from a manifest and the cache (see [`BlobCache::build`]): what is
//! written so far, and the files whose contents must be fetched again.

use std::collections::{BTreeMap, BTreeSet};

use super::BlobCache;
use crate::workspace::WorkspaceError;
use crate::workspace::manifest::{Entry, Manifest};
use crate::workspace::rel_path::RelPath;
use crate::workspace::tree_writer::TreeWriter;

/// A workspace being built from a manifest: what is written, and the files whose contents
/// must be fetched again.
#[derive(Debug)]
pub struct Build {
    pub(super) writer: TreeWriter,
    pub(super) pending: Vec<(RelPath, Entry)>,
    /// What is built (its entries in `written`, its identities here).
    pub(super) built: Manifest,
    pub(super) written: Written,
}

/// The entries built so far. A tree is written in its manifest's order: entries that come in
/// order are kept in a list and made a map at once at the end (a search per entry was most
/// of the cost of keeping a tree of 20,000 files); any other goes into the map.
#[derive(Debug, Default)]
pub(super) struct Written {
    in_order: Vec<(RelPath, Entry)>,
    others: BTreeMap<RelPath, Entry>,
}

impl Written {
    /// Records `entry` at `path` (replacing what was recorded there).
    pub(super) fn insert(&mut self, path: RelPath, entry: Entry) {
        let after_last = self.in_order.last().is_none_or(|(last, _)| *last < path);
        if after_last && (self.others.is_empty() || !self.others.contains_key(&path)) {
            self.in_order.push((path, entry));
            return;
        }
        match self.in_order.binary_search_by(|(listed, _)| listed.cmp(&path)) {
            Ok(at) => self.in_order[at].1 = entry,
            Err(_) => {
                self.others.insert(path, entry);
            }
        }
    }

    pub(super) fn get(&self, path: &RelPath) -> Option<&Entry> {
        match self.in_order.binary_search_by(|(listed, _)| listed.cmp(path)) {
            Ok(at) => Some(&self.in_order[at].1),
            Err(_) => self.others.get(path),
        }
    }

    /// Everything recorded, as a map (the list and the map hold no path in common).
    fn into_map(self) -> BTreeMap<RelPath, Entry> {
        let Self { in_order, mut others } = self;
        if others.is_empty() {
            return in_order.into_iter().collect();
        }
        let mut all: Vec<(RelPath, Entry)> = in_order;
        all.extend(std::mem::take(&mut others));
        all.into_iter().collect()
    }
}

impl Build {
    /// A build writing with `writer`, nothing written yet.
    pub(in crate::workspace) fn on(writer: TreeWriter) -> Self {
        Self { writer, pending: Vec::new(), built: Manifest::default(), written: Written::default() }
    }

    /// Room for a tree of `entries` entries.
    pub(in crate::workspace) fn reserve(&mut self, entries: usize) {
        self.writer.reserve(entries);
        self.built.stamps.reserve(entries);
        self.written.in_order.reserve(entries);
    }

    pub(in crate::workspace) fn writer_mut(&mut self) -> &mut TreeWriter {
        &mut self.writer
    }

    /// Records `entry` as built at `path`.
    pub(in crate::workspace) fn insert(&mut self, path: RelPath, entry: Entry) {
        self.written.insert(path, entry);
    }

    /// Records the identity of the entry at `path`, as it was left.
    pub(in crate::workspace) fn stamp(&mut self, path: RelPath, stamp: crate::workspace::beneath::Stamp) {
        self.built.stamps.insert(path, stamp);
    }

    /// Distinct contents still needed.
    pub fn missing(&self) -> Vec<blake3::Hash> {
        let hashes: BTreeSet<[u8; 32]> = self
            .pending
            .iter()
            .filter_map(|(_, entry)| match entry {
                Entry::File { hash, link: None, .. } => Some(*hash.as_bytes()),
                _ => None,
            })
            .collect();
        hashes.into_iter().map(blake3::Hash::from_bytes).collect()
    }

    /// Writes the pending files again from `cache` (after their contents were fetched again);
    /// a content still missing or wrong now fails, naming the file.
    pub fn retry(&mut self, cache: &BlobCache) -> Result<(), WorkspaceError> {
        for (path, entry) in std::mem::take(&mut self.pending) {
            let Some(written) = cache.write_verified(self, &path, &entry)? else {
                let Entry::File { hash, .. } = &entry else { continue };
                return Err(WorkspaceError::UnsafeEntry {
                    entry: path.to_string(),
                    reason: format!("its content {} did not arrive intact", &hash.to_hex()[..16]),
                });
            };
            self.written.insert(path, written);
        }
        Ok(())
    }

    /// Completes the tree (directory modes and times) and returns what was built: the
    /// manifest's entries with every content verified, and modes and times as the filesystem
    /// holds them — the base the task's changes are judged against, so that a filesystem that
    /// keeps less (coarser times) never makes untouched files look changed.
    pub fn finish(mut self) -> Result<Manifest, WorkspaceError> {
        if let Some((path, _)) = self.pending.first() {
            return Err(WorkspaceError::UnsafeEntry {
                entry: path.to_string(),
                reason: "its content is not in the cache".to_owned(),
            });
        }
        let (dirs, stamps) = self.writer.finish_with_stamps()?;
        for (path, held) in dirs {
            self.written.insert(path, held);
        }
        // The files' identities as they were written: the tree is not looked at again for them.
        self.built.stamps.extend(stamps);
        self.built.entries = self.written.into_map();
        Ok(self.built)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::workspace::Timestamp;

    proptest! {
        /// Entries recorded in any order, some more than once, end as a map's inserts would
        /// leave them, and each lookup on the way answers what that map would.
        #[test]
        fn what_is_recorded_is_what_a_map_would_hold(inserts in proptest::collection::vec(("[a-d/]{1,3}", 0u32..4), 0..60)) {
            let mut written = Written::default();
            let mut map = BTreeMap::new();
            for (raw, mode) in inserts {
                let Ok(path) = RelPath::parse(raw.as_bytes()) else { continue };
                let entry = Entry::Dir { mode, mtime: Timestamp::new(0, 0) };
                written.insert(path.clone(), entry.clone());
                map.insert(path.clone(), entry);
                prop_assert_eq!(written.get(&path), map.get(&path));
            }
            for path in map.keys() {
                prop_assert_eq!(written.get(path), map.get(path));
            }
            prop_assert_eq!(written.into_map(), map);
        }
    }
}
