//! Files the master found changed as it read them, announced in the stream of contents ahead
//! of the content they now have (see [`crate::workspace::pack_blobs_announcing`]). A new tree
//! is written while that stream comes ([`BlobCache::fill_amended`](super::BlobCache)): whoever
//! reads the stream pushes each announcement here as it passes, and the fill takes them before
//! it looks at the next content — so a content is never written where its file no longer
//! wants it, and the one it has now finds its place.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::workspace::manifest::Entry;
use crate::workspace::rel_path::RelPath;

/// Announcements of amended files: pushed by the stream's reader, taken by the fill.
#[derive(Debug, Default)]
pub struct Amendments {
    waiting: Mutex<Vec<(RelPath, Entry)>>,
    /// Announcements pushed, and those the fill took.
    pushed: AtomicUsize,
    taken: AtomicUsize,
}

impl Amendments {
    /// Announces `entry` as what the file at `path` is now.
    pub fn push(&self, path: RelPath, entry: Entry) {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((path, entry));
        self.pushed.fetch_add(1, Ordering::Release);
    }

    /// What was announced since the last take (nothing, without a lock, when nothing was).
    pub(super) fn take(&self) -> Vec<(RelPath, Entry)> {
        if self.pushed.load(Ordering::Acquire) == self.taken.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let taken = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.taken.fetch_add(taken.len(), Ordering::Relaxed);
        taken
    }

    /// The first announcement the fill did not take: one that came after every content did,
    /// too late to say where a content goes.
    pub fn left(&self) -> Option<RelPath> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).first().map(|(path, _)| path.clone())
    }
}
