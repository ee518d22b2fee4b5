//! Incremental sync: a content-addressed cache of file contents on the agent, the archive of
//! blobs the master sends (only what the cache lacks), and materializing a workspace from a
//! manifest and the cache.
//!
//! A manifest comes from the network, so materializing applies the same rules as extraction:
//! normalized relative paths only, symlinks that stay inside, no writes through links, no
//! duplicates, and limits on entries and total size (one blob may be named many times).

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::WorkspaceError;
use super::manifest::{Entry, MODE_MASK, Manifest};
use super::safe_path::{link_stays_inside, normalize, real_parents};
use super::unpack::Limits;

/// The blob cache: `<dir>/<hex hash>`, each verified against its name when stored, kept under
/// a size limit by removing the oldest blobs no task in progress needs.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
    max_bytes: u64,
    state: Arc<Mutex<CacheState>>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Bytes of blobs in the directory.
    bytes: u64,
    /// Contents tasks in progress counted on when they said what they lacked.
    pinned: HashMap<[u8; 32], usize>,
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

fn file_hashes(manifest: &Manifest) -> BTreeSet<[u8; 32]> {
    manifest
        .entries
        .values()
        .filter_map(|entry| if let Entry::File { hash, .. } = entry { Some(*hash.as_bytes()) } else { None })
        .collect()
}

impl BlobCache {
    /// A cache in `dir` (created if missing; what is there already counts) holding at most
    /// `max_bytes` beyond what tasks in progress need.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, WorkspaceError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(WorkspaceError::io(&dir))?;
        let mut bytes = 0;
        for entry in std::fs::read_dir(&dir).map_err(WorkspaceError::io(&dir))?.flatten() {
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
        let state = Arc::new(Mutex::new(CacheState { bytes, pinned: HashMap::new() }));
        Ok(Self { dir, max_bytes, state })
    }

    fn path(&self, hash: &blake3::Hash) -> PathBuf {
        self.dir.join(hash.to_hex().as_str())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Distinct contents of `manifest` that are not in the cache.
    pub fn missing(&self, manifest: &Manifest) -> Vec<blake3::Hash> {
        file_hashes(manifest)
            .into_iter()
            .map(blake3::Hash::from_bytes)
            .filter(|hash| !self.path(hash).exists())
            .collect()
    }

    /// Like [`BlobCache::missing`], and keeps the contents that are present from being
    /// removed until the returned pin is dropped (after the workspace is built).
    pub fn missing_pinned(&self, manifest: &Manifest) -> (Vec<blake3::Hash>, Pin) {
        let hashes: Vec<[u8; 32]> = file_hashes(manifest).into_iter().collect();
        let mut state = self.lock();
        for hash in &hashes {
            *state.pinned.entry(*hash).or_default() += 1;
        }
        drop(state);
        (self.missing(manifest), Pin { state: Arc::clone(&self.state), hashes })
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
            let Ok(hash) = blake3::Hash::from_hex(&name) else { continue };
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
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Stores the blobs of a blob archive (tar + gzip, entries named by hex hash), checking
    /// each content against its name.
    pub fn store(&self, reader: impl Read, limits: &Limits) -> Result<u64, WorkspaceError> {
        let mut archive = tar::Archive::new(GzDecoder::new(reader));
        let mut stored = 0u64;
        let mut bytes = 0u64;
        for entry in archive.entries().map_err(|e| WorkspaceError::Corrupt(e.to_string()))? {
            let mut entry = entry.map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let refuse = |reason: &str| WorkspaceError::UnsafeEntry { entry: name.clone(), reason: reason.to_owned() };
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(refuse("a blob must be a regular file"));
            }
            let expected = blake3::Hash::from_hex(&name).map_err(|_| refuse("a blob must be named by its hash"))?;
            stored += 1;
            if stored > limits.max_entries {
                return Err(WorkspaceError::TooLarge { what: "entry count", limit: limits.max_entries, entry: name });
            }
            let temp = tempfile::NamedTempFile::new_in(&self.dir).map_err(WorkspaceError::io(&self.dir))?;
            let mut writer = HashingWriter { inner: temp.as_file(), hasher: blake3::Hasher::new() };
            let remaining = limits.max_bytes.saturating_sub(bytes);
            let copied = std::io::copy(&mut (&mut entry).take(remaining + 1), &mut writer)
                .map_err(|e| WorkspaceError::Corrupt(format!("{name}: {e}")))?;
            if copied > remaining {
                return Err(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name });
            }
            bytes += copied;
            if writer.hasher.finalize() != expected {
                return Err(refuse("its content does not match its hash"));
            }
            // Atomic: a concurrent task storing the same blob writes the same bytes.
            let target = self.path(&expected);
            let existed = target.exists();
            temp.persist(&target).map_err(|e| WorkspaceError::Io { path: target, source: e.error })?;
            if !existed {
                self.lock().bytes += copied;
            }
        }
        Ok(stored)
    }

    /// Builds the workspace `manifest` describes in `dest` (an empty directory) from the cache.
    pub fn materialize(&self, manifest: &Manifest, dest: &Path, limits: &Limits) -> Result<(), WorkspaceError> {
        if manifest.entries.len() as u64 > limits.max_entries {
            return Err(WorkspaceError::TooLarge {
                what: "entry count",
                limit: limits.max_entries,
                entry: manifest.entries.keys().next_back().cloned().unwrap_or_default(),
            });
        }
        let mut total = 0u64;
        let mut dir_modes = Vec::new();
        for (path, entry) in &manifest.entries {
            let refuse = |reason: String| WorkspaceError::UnsafeEntry { entry: path.clone(), reason };
            if normalize(path).as_deref() != Ok(path.as_str()) {
                return Err(refuse("is not a normalized relative path".to_owned()));
            }
            real_parents(dest, path)?;
            let target = dest.join(path);
            if std::fs::symlink_metadata(&target).is_ok() {
                return Err(refuse("duplicate entry".to_owned()));
            }
            match entry {
                Entry::Dir { mode } => {
                    std::fs::create_dir(&target).map_err(WorkspaceError::io(&target))?;
                    dir_modes.push((target, *mode));
                }
                Entry::File { mode, size, hash } => {
                    total += size;
                    if total > limits.max_bytes {
                        return Err(WorkspaceError::TooLarge {
                            what: "size",
                            limit: limits.max_bytes,
                            entry: path.clone(),
                        });
                    }
                    let blob = self.path(hash);
                    std::fs::copy(&blob, &target).map_err(|e| {
                        refuse(format!("its content {} is not in the cache: {e}", &hash.to_hex()[..16]))
                    })?;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & MODE_MASK))
                        .map_err(WorkspaceError::io(&target))?;
                }
                Entry::Symlink { target: link } => {
                    if !link_stays_inside(path, link) {
                        return Err(refuse(format!("symlink points outside the workspace ({link})")));
                    }
                    std::os::unix::fs::symlink(link, &target).map_err(WorkspaceError::io(&target))?;
                }
            }
        }
        for (dir, mode) in dir_modes.into_iter().rev() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode & MODE_MASK))
                .map_err(WorkspaceError::io(&dir))?;
        }
        Ok(())
    }
}

fn entry_size(entry: &Entry) -> &u64 {
    match entry {
        Entry::File { size, .. } => size,
        _ => &0,
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the contents `hashes` names, found in `root` through `manifest`, as a blob archive.
pub fn pack_blobs(
    root: &Path,
    manifest: &Manifest,
    hashes: &[blake3::Hash],
    out: impl Write,
) -> Result<u64, WorkspaceError> {
    let wanted: BTreeSet<[u8; 32]> = hashes.iter().map(|hash| *hash.as_bytes()).collect();
    let mut builder = tar::Builder::new(GzEncoder::new(out, Compression::new(1)));
    let mut sent = BTreeSet::new();
    for (path, entry) in &manifest.entries {
        let Entry::File { hash, .. } = entry else { continue };
        if !wanted.contains(hash.as_bytes()) || !sent.insert(*hash.as_bytes()) {
            continue;
        }
        let full = root.join(path);
        let changed = || WorkspaceError::ChangedWhileSending { path: path.clone() };
        let file = std::fs::File::open(&full).map_err(WorkspaceError::io(&full))?;
        let size = file.metadata().map_err(WorkspaceError::io(&full))?.len();
        if size != *entry_size(entry) {
            return Err(changed());
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o600);
        header.set_mtime(0);
        header.set_size(size);
        // Hash what is actually sent: a file written to since the manifest was taken would
        // otherwise reach the agent under a hash that is not its content's.
        let mut reader = HashingReader { inner: file.take(size), hasher: blake3::Hasher::new() };
        builder.append_data(&mut header, hash.to_hex().as_str(), &mut reader).map_err(|_| changed())?;
        if reader.hasher.finalize() != *hash {
            return Err(changed());
        }
    }
    let encoder = builder.into_inner().map_err(WorkspaceError::io(root))?;
    encoder.finish().map_err(WorkspaceError::io(root))?;
    Ok(sent.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Filter;

    #[test]
    fn a_workspace_round_trips_through_blobs_and_the_cache_dedups() {
        let source = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(source.path().join("d")).expect("mkdir");
        std::fs::write(source.path().join("d/a.txt"), "same").expect("write");
        std::fs::write(source.path().join("b.txt"), "same").expect("write");
        std::fs::write(source.path().join("c.sh"), "other").expect("write");
        std::fs::set_permissions(source.path().join("c.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink("d/a.txt", source.path().join("link")).expect("symlink");
        let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");

        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
        let missing = cache.missing(&manifest);
        assert_eq!(missing.len(), 2, "two distinct contents");
        let mut archive = Vec::new();
        assert_eq!(pack_blobs(source.path(), &manifest, &missing, &mut archive).expect("pack"), 2);
        cache.store(&archive[..], &Limits::default()).expect("store");
        assert!(cache.missing(&manifest).is_empty());

        let dest = tempfile::tempdir().expect("tempdir");
        cache.materialize(&manifest, dest.path(), &Limits::default()).expect("materialize");
        assert_eq!(Manifest::scan(dest.path(), &Filter::builtin()).expect("scan"), manifest);
    }

    #[test]
    fn the_cache_stays_under_its_limit_but_keeps_what_is_pinned() {
        let source = tempfile::tempdir().expect("tempdir");
        for (name, content) in [("a", "aaaa"), ("b", "bbbb"), ("c", "cccc")] {
            std::fs::write(source.path().join(name), content).expect("write");
        }
        let all = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = BlobCache::new(cache_dir.path(), 8).expect("cache");
        let mut archive = Vec::new();
        pack_blobs(source.path(), &all, &cache.missing(&all), &mut archive).expect("pack");
        cache.store(&archive[..], &Limits::default()).expect("store");

        let mut only_c = all.clone();
        only_c.entries.retain(|path, _| path == "c");
        let (missing, pin) = cache.missing_pinned(&only_c);
        assert!(missing.is_empty());
        assert_eq!(cache.trim().expect("trim"), 1, "12 bytes over a limit of 8: one blob goes");
        assert!(cache.missing(&only_c).is_empty(), "the pinned content stays");
        assert_eq!(cache.missing(&all).len(), 1);
        drop(pin);
    }

    #[test]
    fn a_file_changed_after_the_manifest_is_not_sent_under_the_old_hash() {
        let source = tempfile::tempdir().expect("tempdir");
        std::fs::write(source.path().join("log.txt"), "first").expect("write");
        let manifest = Manifest::scan(source.path(), &Filter::builtin()).expect("scan");
        std::fs::write(source.path().join("log.txt"), "other").expect("rewrite, same size");
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let hashes = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache").missing(&manifest);
        let error = pack_blobs(source.path(), &manifest, &hashes, Vec::new()).expect_err("changed content");
        assert!(error.to_string().contains("log.txt: changed while it was being sent"), "{error}");
    }

    #[test]
    fn a_blob_that_does_not_match_its_name_is_refused() {
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o600);
        let name = blake3::hash(b"real").to_hex();
        builder.append_data(&mut header, name.as_str(), &b"fake"[..]).expect("append");
        let archive = builder.into_inner().expect("tar").finish().expect("gzip");
        let error = cache.store(&archive[..], &Limits::default()).expect_err("poisoned blob");
        assert!(error.to_string().contains("does not match its hash"), "{error}");
        assert!(
            cache
                .missing(&Manifest {
                    entries: [("x".to_owned(), Entry::File { mode: 0o644, size: 4, hash: blake3::hash(b"real") })]
                        .into()
                })
                .len()
                == 1
        );
    }
}
