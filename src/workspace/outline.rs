//! A manifest's outline: its entries, in order, cut into parts where the entries themselves
//! say (content-defined boundaries), each part named by a hash of exactly its entries.
//!
//! A master sends the outline of a large manifest instead of the manifest; the agent names
//! the parts it cannot take from a manifest it already holds for that workspace (the tree an
//! earlier task left), and only those travel. Boundaries depend on each entry's path alone, so
//! one changed, added or removed entry changes one part (two at most): a warm task's manifest
//! costs what its changes cost, not what the workspace holds. A part is used only when its
//! entries hash to the name the master gave it, whichever side they came from.

use std::collections::BTreeMap;

use super::manifest::Entry;
use super::rel_path::RelPath;

/// A part ends after an entry whose path hashes to 0 modulo this: parts of 64 entries on
/// average (a 20,000-entry manifest: ~310 parts, an outline of ~11 KB).
const BOUNDARY_EVERY: u64 = 64;

/// No part holds more entries than this, whatever the paths.
pub const MAX_PART_ENTRIES: usize = 1024;

/// One part of an outline: the hash of its entries and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub hash: blake3::Hash,
    pub entries: u32,
}

/// The outline of `entries` (in manifest order).
pub fn outline<'a>(entries: impl IntoIterator<Item = (&'a RelPath, &'a Entry)>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut part = PartHasher::new();
    for (path, entry) in entries {
        part.add(path, entry);
        if part.entries as usize >= MAX_PART_ENTRIES || ends_part(path) {
            parts.push(part.finish());
            part = PartHasher::new();
        }
    }
    if part.entries > 0 {
        parts.push(part.finish());
    }
    parts
}

/// The parts of `entries` by hash, each with the index of its first entry (in `entries`'
/// order): what a side that holds `entries` can take from them.
pub fn index_of(entries: &BTreeMap<RelPath, Entry>) -> std::collections::HashMap<blake3::Hash, (usize, u32)> {
    let mut start = 0;
    let mut by_hash = std::collections::HashMap::new();
    for part in outline(entries) {
        by_hash.entry(part.hash).or_insert((start, part.entries));
        start += part.entries as usize;
    }
    by_hash
}

/// The hash of one part's entries (as [`outline`] computes it): to check a part that came over
/// the wire against the name it was announced by.
pub fn hash_of<'a>(entries: impl IntoIterator<Item = (&'a RelPath, &'a Entry)>) -> Part {
    let mut part = PartHasher::new();
    for (path, entry) in entries {
        part.add(path, entry);
    }
    part.finish()
}

/// Whether a part ends after the entry at `path`: FNV-1a of the path's bytes (a fixed
/// function: both sides, of any version, cut the same manifest at the same places).
fn ends_part(path: &RelPath) -> bool {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.is_multiple_of(BOUNDARY_EVERY)
}

/// Entries encoded one after another, unambiguously (every variable field with its length),
/// then hashed.
struct PartHasher {
    buffer: Vec<u8>,
    entries: u32,
}

impl PartHasher {
    fn new() -> Self {
        let mut buffer = Vec::with_capacity(8 * 1024);
        buffer.extend_from_slice(b"sloth-runner manifest part v1\0");
        Self { buffer, entries: 0 }
    }

    fn add(&mut self, path: &RelPath, entry: &Entry) {
        let bytes = |buffer: &mut Vec<u8>, data: &[u8]| {
            buffer.extend_from_slice(&(data.len() as u64).to_le_bytes());
            buffer.extend_from_slice(data);
        };
        let buffer = &mut self.buffer;
        bytes(buffer, path.as_bytes());
        let mtime = entry.mtime();
        let (kind, mode) = match entry {
            Entry::Dir { mode, .. } => (1u8, *mode),
            Entry::File { mode, .. } => (2, *mode),
            Entry::Symlink { .. } => (3, 0),
            Entry::Fifo { mode, .. } => (4, *mode),
        };
        buffer.push(kind);
        buffer.extend_from_slice(&mode.to_le_bytes());
        buffer.extend_from_slice(&mtime.secs.to_le_bytes());
        buffer.extend_from_slice(&mtime.nanos.to_le_bytes());
        match entry {
            Entry::File { size, hash, link, .. } => {
                buffer.extend_from_slice(&size.to_le_bytes());
                buffer.extend_from_slice(hash.as_bytes());
                bytes(buffer, link.as_ref().map_or(&[][..], RelPath::as_bytes));
            }
            Entry::Symlink { target, .. } => bytes(buffer, target),
            Entry::Dir { .. } | Entry::Fifo { .. } => {}
        }
        self.entries += 1;
    }

    fn finish(self) -> Part {
        Part { hash: blake3::hash(&self.buffer), entries: self.entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Timestamp;

    fn file(n: u8) -> Entry {
        Entry::File {
            mode: 0o644,
            size: 1,
            hash: blake3::hash(&[n]),
            mtime: Timestamp { secs: 1, nanos: 0 },
            link: None,
        }
    }

    fn manifest(count: usize) -> BTreeMap<RelPath, Entry> {
        (0..count).map(|i| (RelPath::parse(format!("f{i:05}").as_bytes()).expect("path"), file(0))).collect()
    }

    #[test]
    fn parts_cover_every_entry_and_one_change_changes_one_part() {
        let before = manifest(5000);
        let parts = outline(&before);
        assert_eq!(parts.iter().map(|part| part.entries as usize).sum::<usize>(), 5000);
        assert!(parts.len() > 20 && parts.len() < 500, "{} parts", parts.len());
        let mut after = before.clone();
        *after.get_mut(&RelPath::parse(b"f02500").expect("path")).expect("entry") = file(1);
        after.insert(RelPath::parse(b"f00100x").expect("path"), file(2));
        after.remove(&RelPath::parse(b"f04000").expect("path"));
        let known = index_of(&before);
        let differing = outline(&after).iter().filter(|part| !known.contains_key(&part.hash)).count();
        assert!((1..=6).contains(&differing), "{differing} parts differ");
    }

    #[test]
    fn a_part_names_its_entries_exactly() {
        let entries = manifest(3);
        let whole = hash_of(&entries);
        let mut moved = entries;
        let first = RelPath::parse(b"f00000").expect("path");
        let Some(Entry::File { mtime, .. }) = moved.get_mut(&first) else { panic!("a file") };
        mtime.nanos = 1;
        assert_ne!(hash_of(&moved).hash, whole.hash, "a time is part of an entry");
        // Fields do not run into each other: a path's bytes cannot pass for a link's.
        let a = [(
            RelPath::parse(b"ab").expect("p"),
            Entry::Symlink { target: b"c".to_vec(), mtime: Timestamp::default() },
        )];
        let b = [(
            RelPath::parse(b"a").expect("p"),
            Entry::Symlink { target: b"bc".to_vec(), mtime: Timestamp::default() },
        )];
        assert_ne!(hash_of(a.iter().map(|(p, e)| (p, e))).hash, hash_of(b.iter().map(|(p, e)| (p, e))).hash);
    }
}
