//! A workspace being built from a manifest and the cache (see [`BlobCache::build`]): what is
//! written so far, and the files whose contents must be fetched again.

use std::collections::BTreeSet;

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
    pub(super) built: Manifest,
}

impl Build {
    /// A build writing with `writer`, nothing written yet.
    pub(in crate::workspace) fn on(writer: TreeWriter) -> Self {
        Self { writer, pending: Vec::new(), built: Manifest::default() }
    }

    /// Room for a tree of `entries` entries.
    pub(in crate::workspace) fn reserve(&mut self, entries: usize) {
        self.writer.reserve(entries);
        self.built.stamps.reserve(entries);
    }

    pub(in crate::workspace) fn writer_mut(&mut self) -> &mut TreeWriter {
        &mut self.writer
    }

    /// Records `entry` as built at `path`.
    pub(in crate::workspace) fn insert(&mut self, path: RelPath, entry: Entry) {
        self.built.entries.insert(path, entry);
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
            self.built.entries.insert(path, written);
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
        for (path, held) in self.writer.finish()? {
            self.built.entries.insert(path, held);
        }
        Ok(self.built)
    }
}
