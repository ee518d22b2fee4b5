//! What a task made, kept in the agent's cache for the master that sent it (see
//! [`BlobCache::adopt`]).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use super::{BlobCache, file_hashes};
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::Root;
use crate::workspace::blob_pack::HashingWriter;
use crate::workspace::manifest::{Entry, Manifest};
use crate::workspace::rel_path::RelPath;

impl BlobCache {
    /// Keeps the contents a task made (files of `after` whose content `before` did not have)
    /// from the tree at `root`, for this view's principal only: once the master applies them,
    /// its next task's manifest names them, and they need not travel back up. Each is
    /// verified against its hash as it is copied (a file changed since the scan is not kept);
    /// best effort, as a cache is. Returns how many were kept.
    pub fn adopt(&self, root: &Path, before: &Manifest, after: &Manifest) -> u64 {
        if self.own.is_none() {
            return 0;
        }
        // Both in path order: a file whose path held the same content before is passed over
        // as the two are walked side by side; every content before is listed only when some
        // file's is new at its path (most tasks change a few files of many).
        let mut known: Option<Vec<[u8; 32]>> = None;
        let mut tree: Option<Root> = None;
        let mut kept = 0;
        let mut seen = BTreeSet::new();
        let mut earlier = before.entries.iter().peekable();
        for (path, entry) in &after.entries {
            let Entry::File { hash, size, .. } = entry else { continue };
            while earlier.next_if(|(old, _)| *old < path).is_some() {}
            if matches!(earlier.peek(), Some((old, Entry::File { hash: was, .. })) if *old == path && was == hash) {
                continue;
            }
            let known = known.get_or_insert_with(|| file_hashes(before));
            if known.binary_search(hash.as_bytes()).is_ok()
                || !seen.insert(*hash.as_bytes())
                || self.find(hash).is_some()
            {
                continue;
            }
            let tree = match &tree {
                Some(tree) => tree,
                None => match Root::open(root) {
                    Ok(opened) => tree.insert(opened),
                    Err(_) => return kept,
                },
            };
            // Within what the cache may hold at all.
            if *size > self.max_bytes / 4 {
                continue;
            }
            match self.adopt_one(tree, path, hash, *size) {
                Ok(true) => kept += 1,
                Ok(false) => {}
                Err(error) => tracing::debug!(%path, %error, "a content the task made is not kept"),
            }
        }
        kept
    }

    fn adopt_one(&self, tree: &Root, path: &RelPath, hash: &blake3::Hash, size: u64) -> Result<bool, WorkspaceError> {
        let file = tree.open_file(path)?;
        let shown = tree.display(path);
        // A regular file of the size scanned, read no further than that: a file something
        // still writes to (or made sparse and huge since) is not copied past it.
        let meta = file.metadata().map_err(WorkspaceError::io(&shown))?;
        if !meta.is_file() || meta.len() != size {
            return Ok(false);
        }
        let temp = self.files.temp().map_err(WorkspaceError::io(&self.dir))?;
        let mut writer = HashingWriter { inner: &temp.file, hasher: blake3::Hasher::new() };
        let copied = std::io::copy(&mut file.take(size + 1), &mut writer).map_err(WorkspaceError::io(&shown))?;
        if copied != size || writer.hasher.finalize() != *hash {
            return Ok(false);
        }
        let Some(name) = self.own_name(hash) else { return Ok(false) };
        temp.publish(&name).map_err(WorkspaceError::io(self.dir.join(&name)))?;
        self.record(name, copied);
        Ok(true)
    }
}
