//! Manifests on the wire: `workspace::Manifest` to and from `FileEntry` lists.

use super::proto::FileEntry;
use super::proto::file_entry::Kind;
use crate::workspace::{Entry, Manifest};

/// The manifest as wire entries, in messages of about `chunk_bytes` each.
pub fn to_wire_chunks(manifest: &Manifest, chunk_bytes: usize) -> Vec<Vec<FileEntry>> {
    super::batches(
        to_wire(manifest),
        |entry| entry.path.len() + entry.target.len() + entry.hash.len() + 24,
        chunk_bytes,
    )
}

pub fn to_wire(manifest: &Manifest) -> Vec<FileEntry> {
    manifest
        .entries
        .iter()
        .map(|(path, entry)| {
            let mut wire = FileEntry { path: path.clone(), ..Default::default() };
            match entry {
                Entry::Dir { mode } => {
                    wire.kind = Kind::Dir as i32;
                    wire.mode = *mode;
                }
                Entry::File { mode, size, hash } => {
                    wire.kind = Kind::File as i32;
                    wire.mode = *mode;
                    wire.size = *size;
                    wire.hash = hash.as_bytes().to_vec();
                }
                Entry::Symlink { target } => {
                    wire.kind = Kind::Symlink as i32;
                    wire.target = target.clone();
                }
            }
            wire
        })
        .collect()
}

/// Adds the entries of one manifest message to `manifest`; names the first entry that is
/// malformed. (Paths are checked where they are used: `BlobCache::materialize` refuses
/// anything unsafe.)
pub fn extend_from_wire(manifest: &mut Manifest, entries: Vec<FileEntry>) -> Result<(), String> {
    for wire in entries {
        let entry = match Kind::try_from(wire.kind) {
            Ok(Kind::Dir) => Entry::Dir { mode: wire.mode },
            Ok(Kind::File) => {
                let hash: [u8; 32] =
                    wire.hash.as_slice().try_into().map_err(|_| format!("manifest entry '{}': bad hash", wire.path))?;
                Entry::File { mode: wire.mode, size: wire.size, hash: blake3::Hash::from_bytes(hash) }
            }
            Ok(Kind::Symlink) => Entry::Symlink { target: wire.target },
            _ => return Err(format!("manifest entry '{}': unknown kind {}", wire.path, wire.kind)),
        };
        if manifest.entries.insert(wire.path.clone(), entry).is_some() {
            return Err(format!("manifest entry '{}': duplicate", wire.path));
        }
    }
    Ok(())
}

/// Hashes from a NeedBlobs message.
pub fn hashes_from_wire(hashes: &[Vec<u8>]) -> Result<Vec<blake3::Hash>, String> {
    hashes
        .iter()
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(blake3::Hash::from_bytes)
                .map_err(|_| "bad hash in NeedBlobs".to_owned())
        })
        .collect()
}
