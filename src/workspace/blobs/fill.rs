//! A new tree's contents written straight from the archive they came in (see
//! [`BlobCache::fill`]): each content read once and verified as it is written, instead of
//! stored into the cache first and then copied from there — on a cold task over many small
//! files, storing was a third of the agent's work before the task could start, and before the
//! master could hear its result. The cache gets them from the same archive beside the task and
//! after it ([`BlobCache::store`]); meanwhile a task deciding what it lacks waits for that
//! store ([`BlobCache::settled`]), so nothing is sent twice.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use flate2::read::GzDecoder;

use super::{BlobCache, Build, blob_name, read_through};
use crate::workspace::WorkspaceError;
use crate::workspace::manifest::Entry;
use crate::workspace::unpack::Limits;

/// A store of contents that came for a new tree, running: counted until dropped.
#[derive(Debug)]
pub struct Filling {
    fills: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Drop for Filling {
    fn drop(&mut self) {
        self.fills.send_modify(|running| *running = running.saturating_sub(1));
    }
}

impl BlobCache {
    /// Counts a store of what came for a new tree, running beside its task, until the guard
    /// is dropped.
    pub fn filling(&self) -> Filling {
        self.fills.send_modify(|running| *running += 1);
        Filling { fills: Arc::clone(&self.fills) }
    }

    /// Once no store of what came for a new tree is running: what a task lacks is decided
    /// then, and finds what those brought.
    pub async fn settled(&self) {
        let mut running = self.fills.subscribe();
        let _ = running.wait_for(|running| *running == 0).await;
    }

    /// Writes the files `build` still lacks whose contents `reader` (a blob archive, as
    /// [`BlobCache::store`] takes it) holds, each checked against its name as it is written
    /// (a file whose content does not match is removed, and the build fails naming the blob).
    /// A content several files share is read into memory once (a large one: stored into the
    /// cache and copied from there); hard links to files written now follow them. The same limits as `store` hold over the whole
    /// archive. Returns how many contents the archive held, and their bytes.
    pub fn fill(&self, build: &mut Build, reader: impl Read, limits: &Limits) -> Result<Filled, WorkspaceError> {
        let mut wanted: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
        for (at, (_, entry)) in build.pending.iter().enumerate() {
            if let Entry::File { hash, link: None, .. } = entry {
                wanted.entry(*hash.as_bytes()).or_default().push(at);
            }
        }
        let mut written = vec![false; build.pending.len()];
        let mut archive = tar::Archive::new(GzDecoder::new(reader));
        let (mut contents, mut bytes) = (0u64, 0u64);
        for entry in archive.entries().map_err(|e| WorkspaceError::Corrupt(e.to_string()))? {
            let mut entry = entry.map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
            let (name, expected) = blob_name(&entry)?;
            contents += 1;
            if contents > limits.max_entries {
                return Err(WorkspaceError::TooLarge { what: "entry count", limit: limits.max_entries, entry: name });
            }
            let remaining = limits.max_bytes.saturating_sub(bytes);
            match wanted.remove(expected.as_bytes()).unwrap_or_default().as_slice() {
                [] => bytes += read_through(&mut entry, &name, remaining, limits)?,
                &[at] => {
                    bytes += write_one(build, at, &mut entry, (&name, &expected), remaining, limits)?;
                    written[at] = true;
                }
                several if entry.header().size().is_ok_and(|size| size <= SHARED_IN_MEMORY) => {
                    bytes += write_shared(build, several, &mut entry, (&name, &expected), remaining, limits)?;
                    for &at in several {
                        written[at] = true;
                    }
                }
                several => {
                    bytes += self.store_one(&mut entry, (&name, &expected), remaining, limits)?;
                    for &at in several {
                        let (path, entry) = build.pending[at].clone();
                        if let Some(done) = self.write_verified(build, &path, &entry)? {
                            build.written.insert(path, done);
                            written[at] = true;
                        }
                    }
                }
            }
        }
        // What is still lacking stays pending (to be asked for again); a hard link whose first
        // name is written now is made (in manifest order: its first name comes before it).
        for (at, (path, entry)) in std::mem::take(&mut build.pending).into_iter().enumerate() {
            if written[at] {
                continue;
            }
            if matches!(entry, Entry::File { link: Some(_), .. }) {
                self.write_into(build, &path, &entry)?;
            } else {
                build.pending.push((path, entry));
            }
        }
        Ok(Filled { contents, bytes })
    }
}

/// What an archive of contents for a new tree held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub contents: u64,
    /// Their bytes, as the cache would keep them.
    pub bytes: u64,
}

/// A content several files share, up to this size, is held in memory while they are written
/// (a larger one goes through the cache): a full cache does not fail a tree that has room.
const SHARED_IN_MEMORY: u64 = 16 << 20;

/// Writes pending files `all` of `build`, which share one content, from an archive's blob read
/// into memory, each verified against `expected`; returns the blob's size.
fn write_shared(
    build: &mut Build,
    all: &[usize],
    blob: &mut impl Read,
    (name, expected): (&str, &blake3::Hash),
    remaining: u64,
    limits: &Limits,
) -> Result<u64, WorkspaceError> {
    let mut bytes = Vec::new();
    blob.take(remaining + 1).read_to_end(&mut bytes).map_err(|e| WorkspaceError::Corrupt(format!("{name}: {e}")))?;
    let size = bytes.len() as u64;
    if size > remaining {
        return Err(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name.to_owned() });
    }
    // Each copy is verified as it is written (the first one that lies fails the build).
    for &at in all {
        write_one(build, at, &mut &bytes[..], (name, expected), remaining, limits)?;
    }
    Ok(size)
}

/// Writes pending file `at` of `build` from an archive's blob, verified against `expected`;
/// returns the blob's size.
fn write_one(
    build: &mut Build,
    at: usize,
    blob: &mut impl Read,
    (name, expected): (&str, &blake3::Hash),
    remaining: u64,
    limits: &Limits,
) -> Result<u64, WorkspaceError> {
    let (path, Entry::File { mode, mtime, .. }) = build.pending[at].clone() else {
        unreachable!("only files are wanted from an archive")
    };
    build.writer.root().check_parent(&path)?;
    let read_error = |e: std::io::Error| WorkspaceError::Corrupt(format!("{name}: {e}"));
    let done = build.writer.file(&path, mode, mtime, blob.take(remaining + 1), read_error)?;
    let Entry::File { hash, size, .. } = &done else { unreachable!("a file was written") };
    let refused = if *size > remaining {
        Some(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name.to_owned() })
    } else if hash != expected {
        Some(WorkspaceError::UnsafeEntry {
            entry: name.to_owned(),
            reason: "its content does not match its hash".to_owned(),
        })
    } else {
        None
    };
    if let Some(refused) = refused {
        build.writer.discard_file(&path)?;
        return Err(refused);
    }
    let size = *size;
    build.written.insert(path, done);
    Ok(size)
}
