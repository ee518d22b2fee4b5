//! Incremental sync on the agent: a content-addressed cache of file contents, and building a
//! workspace from a manifest and the cache. (What the master sends: [`super::blob_pack`].)
//!
//! A manifest comes from the network, so building from it goes through the same
//! [`TreeWriter`] as extraction: no writes through links, no duplicates, limits on entries
//! and on the bytes written (one blob may be named many times). Contents are verified against
//! their hash when they are stored and again when they are used.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::WorkspaceError;
use super::blob_pack::HashingWriter;
use super::blob_stream::Blob;
use super::manifest::{Entry, Manifest};
use super::rel_path::{PathSet, RelPath};
use super::tree_writer::TreeWriter;
use super::unpack::Limits;

mod adopt;
mod amendments;
mod build;
mod dir;
mod fill;

pub use amendments::Amendments;
pub use build::Build;
pub use fill::{Filled, Filling};

/// The blob cache: `<dir>/<hex hash>`, each verified against its name when stored, kept under
/// a size limit by removing the oldest blobs no task in progress needs.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
    /// The same directory, held open.
    files: Arc<dir::CacheDir>,
    max_bytes: u64,
    state: Arc<Mutex<CacheState>>,
    /// Whose view this is ([`BlobCache::for_principal`]): contents that principal's tasks made
    /// (`<hex hash>.<tag>`) count as present for it alone.
    own: Option<String>,
    /// Stores running beside their tasks ([`BlobCache::filling`]).
    fills: Arc<tokio::sync::watch::Sender<usize>>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Bytes of blobs in the directory.
    bytes: u64,
    /// Contents tasks in progress counted on when they said what they lacked.
    pinned: HashMap<[u8; 32], usize>,
    /// Names of the blobs in the directory (`<hex hash>`, `<hex hash>.<tag>`) as this process
    /// found or made them: what a task lacks is decided here, not by a lookup on disk per
    /// content (two for a content not there: most of a cold task's time on 20,000 small
    /// files). A hint only: a blob removed behind the agent's back is found missing when it
    /// is opened, and fetched again; one added behind its back is not used.
    names: PathSet<String>,
}

/// Keeps a manifest's contents in the cache until it is dropped.
#[derive(Debug)]
pub struct Pin {
    state: Arc<Mutex<CacheState>>,
    hashes: Vec<[u8; 32]>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for hash in &self.hashes {
            if let Some(count) = state.pinned.get_mut(hash) {
                *count -= 1;
                if *count == 0 {
                    state.pinned.remove(hash);
                }
            }
        }
    }
}

/// The distinct contents of `manifest`'s files, sorted (a sorted list, not a set: built once
/// per task over every file of the workspace).
fn file_hashes(manifest: &Manifest) -> Vec<[u8; 32]> {
    let mut hashes: Vec<[u8; 32]> = manifest
        .entries
        .values()
        .filter_map(|entry| if let Entry::File { hash, .. } = entry { Some(*hash.as_bytes()) } else { None })
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

impl BlobCache {
    /// A cache in `dir` (created if missing; what is there already counts) holding at most
    /// `max_bytes` beyond what tasks in progress need.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, WorkspaceError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(WorkspaceError::io(&dir))?;
        let mut bytes = 0;
        let mut names = PathSet::default();
        for entry in std::fs::read_dir(&dir).map_err(WorkspaceError::io(&dir))?.flatten() {
            let name = entry.file_name();
            // A blob being written when its writer died: never published, never to be (the
            // directory is this cache's alone from now on), and not to count against its size.
            if dir::is_temp(&name) {
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if let Some(name) = name.to_str() {
                names.insert(name.to_owned());
            }
        }
        let state = Arc::new(Mutex::new(CacheState { bytes, pinned: HashMap::new(), names }));
        let files = Arc::new(dir::CacheDir::open(&dir).map_err(WorkspaceError::io(&dir))?);
        let fills = Arc::new(tokio::sync::watch::Sender::new(0));
        Ok(Self { dir, files, max_bytes, state, own: None, fills })
    }

    /// The cache as the masters holding `principal` see it: what anyone sent, and what their
    /// own tasks made. Another master's task outputs never count as present for them — they
    /// could otherwise learn, by naming a content in a manifest, whether a task made it.
    pub fn for_principal(&self, principal: &str) -> Self {
        let tag = blake3::hash(principal.as_bytes()).to_hex()[..16].to_owned();
        Self { own: Some(tag), ..self.clone() }
    }

    /// Where a content anyone sent is kept.
    fn path(&self, hash: &blake3::Hash) -> PathBuf {
        self.dir.join(hash.to_hex().as_str())
    }

    /// The name of this view's own tasks' output `hash` (None without a principal).
    fn own_name(&self, hash: &blake3::Hash) -> Option<String> {
        let tag = self.own.as_deref()?;
        Some(format!("{}.{tag}", hash.to_hex()))
    }

    /// Where this view's own tasks' outputs are kept (None without a principal).
    fn own_path(&self, hash: &blake3::Hash) -> Option<PathBuf> {
        self.own_name(hash).map(|name| self.dir.join(name))
    }

    /// The name of the blob of content `hash`, for this view.
    fn find(&self, hash: &blake3::Hash) -> Option<String> {
        self.find_in(&self.lock(), hash)
    }

    fn find_in(&self, state: &CacheState, hash: &blake3::Hash) -> Option<String> {
        let shared = hash.to_hex();
        if state.names.contains(shared.as_str()) {
            return Some(shared.to_string());
        }
        self.own_name(hash).filter(|own| state.names.contains(own))
    }

    /// Records the blob `name` as in the directory (`size` bytes); says whether it was new.
    fn record(&self, name: String, size: u64) -> bool {
        let mut state = self.lock();
        let new = state.names.insert(name);
        if new {
            state.bytes += size;
        }
        new
    }

    /// Records the blob `name` as gone.
    fn unrecord(&self, name: &str) {
        self.lock().names.remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Distinct contents of `manifest` that are not in the cache.
    pub fn missing(&self, manifest: &Manifest) -> Vec<blake3::Hash> {
        self.missing_of(&Self::contents_of(manifest))
    }

    /// The distinct contents of `manifest`'s files, sorted.
    pub fn contents_of(manifest: &Manifest) -> Vec<blake3::Hash> {
        file_hashes(manifest).into_iter().map(blake3::Hash::from_bytes).collect()
    }

    /// Bytes of contents the cache holds now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Whether keeping `bytes` more of contents leaves their filesystem at least as much room
    /// again: a cache sharing a small disk with the trees must not take the room a task writes
    /// in (a content not kept is only asked for again).
    pub fn has_room_for(&self, bytes: u64) -> bool {
        self.files.available().is_none_or(|available| available / 2 >= bytes)
    }

    /// Keeps the contents of `manifest` from being removed until the returned pin is dropped.
    pub fn pin(&self, manifest: &Manifest) -> Pin {
        self.pin_bytes(file_hashes(manifest))
    }

    /// Keeps the contents `hashes` from being removed until the returned pin is dropped.
    pub fn pin_hashes(&self, hashes: &[blake3::Hash]) -> Pin {
        self.pin_bytes(hashes.iter().map(|hash| *hash.as_bytes()).collect())
    }

    fn pin_bytes(&self, hashes: Vec<[u8; 32]>) -> Pin {
        let mut state = self.lock();
        for hash in &hashes {
            *state.pinned.entry(*hash).or_default() += 1;
        }
        drop(state);
        Pin { state: Arc::clone(&self.state), hashes }
    }

    /// Removes the oldest blobs nobody has pinned until the cache is under its limit.
    pub fn trim(&self) -> Result<u64, WorkspaceError> {
        let mut state = self.lock();
        if state.bytes <= self.max_bytes {
            return Ok(0);
        }
        let mut blobs = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(WorkspaceError::io(&self.dir))?.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            // `<hex hash>`, or `<hex hash>.<tag>` for a task's output.
            let Ok(hash) = blake3::Hash::from_hex(name.split('.').next().unwrap_or_default()) else { continue };
            if state.pinned.contains_key(hash.as_bytes()) {
                continue;
            }
            let modified = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
            blobs.push((modified, entry.path(), meta.len()));
        }
        blobs.sort();
        let mut removed = 0;
        for (_, path, size) in blobs {
            if state.bytes <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                state.bytes = state.bytes.saturating_sub(size);
                if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
                    state.names.remove(name);
                }
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Stores the blobs of a blob archive (tar + gzip, entries named by hex hash), checking
    /// each content against its name; one the cache holds already is read through. Returns how
    /// many the archive held.
    pub fn store(&self, reader: impl Read, limits: &Limits) -> Result<u64, WorkspaceError> {
        let mut stored = 0u64;
        let mut bytes = 0u64;
        super::blob_stream::for_each_blob(reader, |blob| {
            let Blob { name, expected, content, .. } = blob;
            stored += 1;
            if stored > limits.max_entries {
                return Err(WorkspaceError::TooLarge { what: "entry count", limit: limits.max_entries, entry: name });
            }
            let remaining = limits.max_bytes.saturating_sub(bytes);
            bytes += if self.lock().names.contains(expected.to_hex().as_str()) {
                read_through(&mut { content }, &name, remaining, limits)?
            } else {
                self.store_one(&mut { content }, (&name, &expected), remaining, limits)?
            };
            Ok(true)
        })?;
        Ok(stored)
    }

    /// Stores one blob of an archive (`expected`: its name as a hash), at most `remaining`
    /// bytes; returns its size.
    fn store_one(
        &self,
        entry: &mut impl Read,
        (name, expected): (&str, &blake3::Hash),
        remaining: u64,
        limits: &Limits,
    ) -> Result<u64, WorkspaceError> {
        let temp = self.files.temp().map_err(WorkspaceError::io(&self.dir))?;
        let mut writer = HashingWriter { inner: &temp.file, hasher: blake3::Hasher::new() };
        // What failed tells whose trouble it is: reading, the archive's; writing, the cache's
        // (its disk full, say).
        let copied = super::buffer::with_buffer(|buf| -> Result<u64, WorkspaceError> {
            let mut source = entry.take(remaining + 1);
            let mut copied = 0u64;
            loop {
                let read = match source.read(buf) {
                    Ok(0) => return Ok(copied),
                    Ok(read) => read,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => return Err(WorkspaceError::Corrupt(format!("{name}: {error}"))),
                };
                std::io::Write::write_all(&mut writer, &buf[..read])
                    .map_err(|source| WorkspaceError::Io { path: self.dir.clone(), source })?;
                copied += read as u64;
            }
        })?;
        if copied > remaining {
            return Err(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name.to_owned() });
        }
        if writer.hasher.finalize() != *expected {
            return Err(WorkspaceError::UnsafeEntry {
                entry: name.to_owned(),
                reason: "its content does not match its hash".to_owned(),
            });
        }
        // Atomic: a concurrent task storing the same blob writes the same bytes.
        let target = expected.to_hex().to_string();
        temp.publish(&target).map_err(WorkspaceError::io(self.dir.join(&target)))?;
        self.record(target, copied);
        Ok(copied)
    }

    /// Starts building the workspace `manifest` describes in `dest` (an empty directory) from
    /// the cache, verifying every content against its hash as it is copied: a content that is
    /// missing or wrong (bit rot, a full disk while it was stored) is dropped from the cache
    /// and its files are left pending, to be fetched again ([`Build::missing`]).
    pub fn build(&self, manifest: &Manifest, dest: &Path, limits: &Limits) -> Result<Build, WorkspaceError> {
        if manifest.entries.len() as u64 > limits.max_entries {
            return Err(WorkspaceError::TooLarge {
                what: "entry count",
                limit: limits.max_entries,
                entry: manifest.entries.keys().next_back().map(ToString::to_string).unwrap_or_default(),
            });
        }
        let mut build = Build::on(TreeWriter::new(dest, *limits)?);
        build.writer.reserve(manifest.entries.len());
        for (path, entry) in &manifest.entries {
            match entry {
                Entry::Dir { mode, mtime } => build.writer.dir(path, *mode, *mtime)?,
                Entry::File { .. } => {
                    self.write_into(&mut build, path, entry)?;
                    continue;
                }
                Entry::Symlink { target, mtime } => build.writer.symlink(path, target, *mtime)?,
                Entry::Fifo { mode, mtime } => {
                    let written = build.writer.fifo(path, *mode, *mtime)?;
                    build.written.insert(path.clone(), written);
                    continue;
                }
            }
            build.written.insert(path.clone(), entry.clone());
        }
        Ok(build)
    }

    /// Writes the file `entry` at `path` into `build` from its cached content, or leaves it
    /// pending (to be fetched again) when the content is missing or wrong.
    pub(super) fn write_into(&self, build: &mut Build, path: &RelPath, entry: &Entry) -> Result<(), WorkspaceError> {
        match self.write_verified(build, path, entry)? {
            Some(written) => {
                build.written.insert(path.clone(), written);
            }
            None => build.pending.push((path.clone(), entry.clone())),
        }
        Ok(())
    }

    /// Distinct contents of `hashes` that are not in the cache.
    pub fn missing_of(&self, hashes: &[blake3::Hash]) -> Vec<blake3::Hash> {
        let state = self.lock();
        hashes.iter().filter(|hash| self.find_in(&state, hash).is_none()).copied().collect()
    }

    /// Writes one file from its cached content and returns the entry as written (its size is
    /// what was written, whatever the manifest declared); None (nothing left behind, the bad
    /// blob removed) when the content is missing or does not match its hash.
    fn write_verified(
        &self,
        build: &mut Build,
        path: &RelPath,
        entry: &Entry,
    ) -> Result<Option<Entry>, WorkspaceError> {
        let Entry::File { mode, hash, mtime, link, .. } = entry else { return Ok(Some(entry.clone())) };
        if let Some(leader) = link {
            // Another name of a file written before it, once that one is written.
            let Some(written) = build.written.get(leader).cloned() else {
                if build.pending.iter().any(|(pending, _)| pending == leader) {
                    return Ok(None);
                }
                return Err(WorkspaceError::UnsafeEntry {
                    entry: path.to_string(),
                    reason: format!("a hard link to '{leader}', which is not a file before it"),
                });
            };
            return build.writer.hard_link(path, leader, &written).map(Some);
        }
        // Where it goes is judged before whether its content is at hand.
        build.writer.root().check_parent(path)?;
        let Some(name) = self.find(hash) else { return Ok(None) };
        let blob = self.dir.join(&name);
        let source = match self.files.open_blob(&name) {
            Ok(file) if file.metadata().is_ok_and(|meta| meta.is_file()) => file,
            // Something else put there behind the agent's back — a link (which O_NOFOLLOW
            // refuses), a pipe, a directory — is no blob: removed, and fetched again as a
            // missing one would be.
            Ok(_) => return Ok(self.not_a_blob(&blob, hash)),
            Err(error) if error.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
                return Ok(self.not_a_blob(&blob, hash));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.unrecord(&name);
                return Ok(None);
            }
            // Made unreadable behind the agent's back (`chmod 000` on an agent that is not
            // root): no blob this agent can use — removed, and fetched again, or every task
            // that needs it would fail until someone mended the cache by hand.
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::warn!(blob = %blob.display(), "a cached content cannot be read: fetching it again");
                self.forget(hash);
                return Ok(None);
            }
            Err(error) => return Err(WorkspaceError::Io { path: blob, source: error }),
        };
        let read_error = |error: std::io::Error| WorkspaceError::Io { path: blob.clone(), source: error };
        let written = build.writer.file(path, *mode, *mtime, source, read_error)?;
        if matches!(&written, Entry::File { hash: got, .. } if got == hash) {
            return Ok(Some(written));
        }
        tracing::warn!(path = %path, content = %&hash.to_hex()[..16], "a cached content does not match its hash: fetching it again");
        build.writer.discard_file(path)?;
        self.forget(hash);
        Ok(None)
    }

    /// Builds the whole workspace `manifest` describes, failing if a content is not in the
    /// cache intact.
    pub fn materialize(&self, manifest: &Manifest, dest: &Path, limits: &Limits) -> Result<Manifest, WorkspaceError> {
        self.build(manifest, dest, limits)?.finish()
    }

    /// Forgets the blob at `blob`, which is not a regular file: nothing to write from.
    fn not_a_blob(&self, blob: &Path, hash: &blake3::Hash) -> Option<Entry> {
        tracing::warn!(blob = %blob.display(), "a cached content is not a regular file: fetching it again");
        self.forget(hash);
        None
    }

    /// Removes a blob whose content turned out wrong (or that is not a file at all).
    fn forget(&self, hash: &blake3::Hash) {
        for path in std::iter::once(self.path(hash)).chain(self.own_path(hash)) {
            // (A directory made in a blob's place goes too: the content that comes again is
            // stored under that name.)
            if let Ok(meta) = std::fs::symlink_metadata(&path)
                && if meta.is_dir() {
                    crate::files::remove_dir_all_opening(&path).is_ok()
                } else {
                    std::fs::remove_file(&path).is_ok()
                }
            {
                let mut state = self.lock();
                state.bytes = state.bytes.saturating_sub(meta.len());
            }
            if let Some(name) = path.file_name().and_then(|name| name.to_str()) {
                self.unrecord(name);
            }
        }
    }
}

/// Reads a blob nothing needs through to its end (at most `remaining` bytes: a decompression
/// bomb is refused all the same); returns its size.
fn read_through(entry: &mut impl Read, name: &str, remaining: u64, limits: &Limits) -> Result<u64, WorkspaceError> {
    let copied = std::io::copy(&mut entry.take(remaining + 1), &mut std::io::sink())
        .map_err(|e| WorkspaceError::Corrupt(format!("{name}: {e}")))?;
    if copied > remaining {
        return Err(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name.to_owned() });
    }
    Ok(copied)
}

#[cfg(test)]
mod streamed_tests;
#[cfg(test)]
mod tests;
