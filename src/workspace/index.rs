//! The master's stat cache, as git keeps its index: the files of a workspace's last snapshot
//! with their identity, so that the next snapshot reads and hashes only files whose identity
//! changed since — between the tasks of a run and between runs. It lives in the user's cache
//! directory (`$XDG_CACHE_HOME/sloth-runner/index/`, else `~/.cache/…`), one file per workspace
//! by a digest of its physical path — never in the workspace, which must end as a local run
//! leaves it.
//!
//! It is a cache: a missing, unreadable or malformed index is ignored, and an identity proves a
//! file unchanged only under the racily-clean rule ([`Manifest::untouched`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::beneath::Stamp;
use super::manifest::{Entry, Manifest};
use super::rel_path::RelPath;
use super::timestamp::Timestamp;

/// The first line's start; the format's version is its number. Version 2 holds the files as
/// fixed fields in binary (version 1 was text: hex to decode and numbers to parse made reading
/// the index of a 20,000-file workspace a tenth of a warm run).
const HEADER: &str = "sloth-index 2";

/// Bytes of one file's record beyond its path: the path's length (u32), size (u64), hash (32),
/// device and inode (u64 each), mtime and ctime (i64 seconds, u32 nanoseconds each), all
/// little-endian.
const RECORD_FIXED: usize = 4 + 8 + 32 + 8 + 8 + 2 * (8 + 4);

use super::cache_home::{cache_dir, own_dir};

/// Where the index of the workspace at `root` is kept, in `cache` (its directory made there
/// when `make` says so); None when that directory is not really this user's or would be
/// inside the workspace (see [`own_dir`]).
fn location(cache: &Path, root: &Path, make: bool) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let physical = std::fs::canonicalize(root).ok()?;
    let name = blake3::hash(physical.as_os_str().as_bytes()).to_hex();
    Some(own_dir(cache, "index", root, make)?.join(name.as_str()))
}

/// The index of the workspace at `root`: the last one this process kept for it, else a
/// readable one on disk.
pub fn load(root: &Path) -> Option<Arc<Manifest>> {
    let physical = std::fs::canonicalize(root).ok();
    if let Some(kept) = physical.as_deref().and_then(remembered) {
        return Some(kept);
    }
    let loaded = Arc::new(load_in(&cache_dir()?, root)?);
    if let Some(physical) = physical {
        remember(physical, Arc::clone(&loaded));
    }
    Some(loaded)
}

/// Workspaces whose last index this process holds: the snapshots of one run (a snapshot before
/// every remote task) read their workspace's index once, not once each.
const REMEMBERED: usize = 4;

/// The last index kept for each of the latest workspaces, by physical path, newest last.
type Remembered = Vec<(PathBuf, Arc<Manifest>)>;

fn memo() -> std::sync::MutexGuard<'static, Remembered> {
    static MEMO: Mutex<Remembered> = Mutex::new(Vec::new());
    MEMO.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn remembered(physical: &Path) -> Option<Arc<Manifest>> {
    memo().iter().find(|(path, _)| path == physical).map(|(_, manifest)| Arc::clone(manifest))
}

fn remember(physical: PathBuf, manifest: Arc<Manifest>) {
    let mut memo = memo();
    memo.retain(|(path, _)| *path != physical);
    if memo.len() >= REMEMBERED {
        memo.remove(0);
    }
    memo.push((physical, manifest));
}

/// The most an index is read (a large workspace's is a few MiB).
const MAX_INDEX_BYTES: u64 = 256 * 1024 * 1024;

fn load_in(cache: &Path, root: &Path) -> Option<Manifest> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Only a regular file of ours: never a link, never a pipe to wait on.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(location(cache, root, false)?)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_INDEX_BYTES {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_INDEX_BYTES).read_to_end(&mut data).ok()?;
    parse(&data)
}

fn parse(data: &[u8]) -> Option<Manifest> {
    let split = data.iter().position(|&byte| byte == b'\n')?;
    let (first, body) = (std::str::from_utf8(&data[..split]).ok()?, &data[split + 1..]);
    let mut header = first.strip_prefix(HEADER)?.split_whitespace();
    let scanned_at = Timestamp::new(header.next()?.parse().ok()?, header.next()?.parse().ok()?);
    let count: usize = header.next()?.parse().ok()?;
    // A damaged index is no index.
    if header.next()? != blake3::hash(body).to_hex().as_str() || header.next().is_some() {
        return None;
    }
    // Each record takes its fixed bytes at least: a count the body cannot hold is damage, and
    // never reserves more than the body's size says.
    if count > body.len() / RECORD_FIXED {
        return None;
    }
    let mut manifest = Manifest { scanned_at: Some(scanned_at), ..Manifest::default() };
    manifest.stamps.reserve(count);
    let mut files = Vec::with_capacity(count);
    let mut rest = body;
    while !rest.is_empty() {
        let mut take = |n: usize| -> Option<&[u8]> {
            let (taken, left) = rest.split_at_checked(n)?;
            rest = left;
            Some(taken)
        };
        let u32_at = |bytes: &[u8]| u32::from_le_bytes(bytes.try_into().expect("four bytes"));
        let u64_at = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
        let path_len = u32_at(take(4)?) as usize;
        let path = RelPath::parse(take(path_len)?).ok()?;
        let fixed = take(RECORD_FIXED - 4)?;
        let size = u64_at(&fixed[0..8]);
        let hash = blake3::Hash::from_bytes(fixed[8..40].try_into().expect("32 bytes"));
        let (dev, ino) = (u64_at(&fixed[40..48]), u64_at(&fixed[48..56]));
        let time =
            |at: usize| Timestamp::new(u64_at(&fixed[at..at + 8]) as i64, i64::from(u32_at(&fixed[at + 8..at + 12])));
        let (mtime, ctime) = (time(56), time(68));
        manifest.stamps.insert(path.clone(), Stamp { dev, ino, size, mtime, ctime });
        files.push((path, Entry::File { mode: 0, size, hash, mtime, link: None }));
    }
    if files.len() != count {
        return None;
    }
    // Written in order: the map is built at once.
    manifest.entries = files.into_iter().collect();
    Some(manifest)
}

/// Keeps `manifest` as the index of the workspace at `root` unless the index it was scanned
/// with (`known`) already says all of it: the same files, each proven untouched by it (so a
/// newer scan time would prove nothing more). Rewriting an unchanged index costs a new file
/// per snapshot — slow on filesystems that are slow to allocate inodes after deletes.
///
/// Within one process the index is kept in memory (what the next snapshot of the run reads);
/// on disk it is written at most every [`WRITE_EVERY`], the last one held back written when
/// the run ends ([`flush`]): a chain of tasks that each change a file rewrote the whole index
/// (and made a file in the cache directory) for every task. An index not written (the process
/// killed) only costs the next run a reading of what changed since the last one written.
pub fn save_if_changed(root: &Path, known: Option<&Manifest>, manifest: &Arc<Manifest>) {
    let Ok(physical) = std::fs::canonicalize(root) else { return };
    let mut writes = disk_writes();
    let state = writes.entry(physical.clone()).or_default();
    if let Some(known) = known
        && says_all_of(known, manifest)
    {
        // Used: the trim of indexes, which goes by time, keeps it (once per process is enough
        // for that).
        if !state.touched {
            state.touched = true;
            if let Some(path) = cache_dir().and_then(|cache| location(&cache, root, false))
                && let Ok(file) = std::os::unix::fs::OpenOptionsExt::custom_flags(
                    std::fs::OpenOptions::new().write(true),
                    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits(),
                )
                .open(&path)
            {
                let _ = file.set_modified(std::time::SystemTime::now());
            }
        }
        return;
    }
    // Kept in memory whether or not the disk takes it: what it proves holds in this process.
    remember(physical.clone(), Arc::clone(manifest));
    if state.written.is_some_and(|at| at.elapsed() < WRITE_EVERY) {
        // (Written for where the workspace is now: the path given could lead elsewhere by the
        // time the run ends.)
        state.held = Some((physical, Arc::clone(manifest)));
        return;
    }
    state.written = Some(std::time::Instant::now());
    state.held = None;
    state.touched = true;
    drop(writes);
    save(root, manifest);
}

/// How often a workspace's index is written to disk at most, within one process.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// What this process did with each workspace's index on disk, by physical path.
#[derive(Default)]
struct DiskWrites {
    /// When it was last written.
    written: Option<std::time::Instant>,
    /// An index newer than the one written, held back (the workspace's physical path, and the
    /// index).
    held: Option<(PathBuf, Arc<Manifest>)>,
    /// Written or touched already: the trim keeps it.
    touched: bool,
}

fn disk_writes() -> std::sync::MutexGuard<'static, std::collections::HashMap<PathBuf, DiskWrites>> {
    static WRITES: std::sync::LazyLock<Mutex<std::collections::HashMap<PathBuf, DiskWrites>>> =
        std::sync::LazyLock::new(Mutex::default);
    WRITES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes the indexes held back (see [`save_if_changed`]): when a run ends.
pub fn flush() {
    let held: Vec<(PathBuf, Arc<Manifest>)> =
        disk_writes().values_mut().filter_map(|state| state.held.take()).collect();
    for (root, manifest) in held {
        save(&root, &manifest);
    }
}

/// Whether the index `known` holds exactly `manifest`'s files, each proven untouched.
fn says_all_of(known: &Manifest, manifest: &Manifest) -> bool {
    let mut files = 0;
    for (path, entry) in &manifest.entries {
        let Entry::File { .. } = entry else { continue };
        let Some(stamp) = manifest.stamps.get(path) else { return false };
        if !known.untouched(path, stamp) {
            return false;
        }
        files += 1;
    }
    // (An index read from disk holds files only; one kept in memory is a whole manifest.)
    files == known.entries.values().filter(|entry| matches!(entry, Entry::File { .. })).count()
}

/// Keeps `manifest`'s files and identities as the index of the workspace at `root`. Best
/// effort: a workspace where it cannot be written (read-only, `.sloth` not a directory) just
/// has none.
pub fn save(root: &Path, manifest: &Manifest) {
    let Some(cache) = cache_dir() else { return };
    save_in(&cache, root, manifest);
}

fn save_in(cache: &Path, root: &Path, manifest: &Manifest) {
    match try_save(cache, root, manifest) {
        Ok(()) => {
            tracing::debug!(root = %root.display(), files = manifest.stamps.len(), "the workspace's index written")
        }
        Err(error) => tracing::debug!(root = %root.display(), %error, "the workspace's index was not written"),
    }
}

fn try_save(cache: &Path, root: &Path, manifest: &Manifest) -> Result<(), super::WorkspaceError> {
    let Some(scanned_at) = manifest.scanned_at else { return Ok(()) };
    let mut body: Vec<u8> = Vec::with_capacity(manifest.stamps.len() * (RECORD_FIXED + 24));
    let mut count = 0usize;
    for (path, entry) in &manifest.entries {
        let (Entry::File { size, hash, .. }, Some(stamp)) = (entry, manifest.stamps.get(path)) else { continue };
        let Ok(path_len) = u32::try_from(path.as_bytes().len()) else { continue };
        body.extend_from_slice(&path_len.to_le_bytes());
        body.extend_from_slice(path.as_bytes());
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(hash.as_bytes());
        body.extend_from_slice(&stamp.dev.to_le_bytes());
        body.extend_from_slice(&stamp.ino.to_le_bytes());
        for time in [stamp.mtime, stamp.ctime] {
            body.extend_from_slice(&time.secs.to_le_bytes());
            body.extend_from_slice(&time.nanos.to_le_bytes());
        }
        count += 1;
    }
    let header =
        format!("{HEADER} {} {} {count} {}\n", scanned_at.secs, scanned_at.nanos, blake3::hash(&body).to_hex());
    let Some(path) = location(cache, root, true) else { return Ok(()) };
    let dir = path.parent().expect("the index has a directory").to_path_buf();
    let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(super::WorkspaceError::io(&dir))?;
    std::io::Write::write_all(&mut temp, header.as_bytes()).map_err(super::WorkspaceError::io(temp.path()))?;
    std::io::Write::write_all(&mut temp, &body).map_err(super::WorkspaceError::io(temp.path()))?;
    // Only a new index adds to the count: rewriting one (every snapshot) need not list them.
    let new = std::fs::symlink_metadata(&path).is_err();
    temp.persist(&path).map_err(|e| super::WorkspaceError::Io { path, source: e.error })?;
    if new {
        trim(&dir);
    }
    Ok(())
}

/// Indexes kept at most: the least recently written go (a cache must not grow without end).
const MAX_INDEXES: usize = 256;

fn trim(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut indexes: Vec<(std::time::SystemTime, PathBuf)> =
        entries.flatten().filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path()))).collect();
    if indexes.len() <= MAX_INDEXES {
        return;
    }
    indexes.sort();
    for (_, path) in &indexes[..indexes.len() - MAX_INDEXES] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Filter;

    #[test]
    fn a_file_changed_since_the_index_is_read_again_even_with_its_time_put_back() {
        let cache = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "alpha").expect("write");
        std::fs::write(dir.path().join("b.txt"), "beta").expect("write");
        let first = Manifest::scan(dir.path(), &Filter::builtin()).expect("scan");
        save_in(cache.path(), dir.path(), &first);
        let index = load_in(cache.path(), dir.path()).expect("an index");
        assert_eq!(index.stamps, first.stamps);
        // Same size, time put back: only the ctime tells.
        let file = std::fs::File::options().write(true).open(dir.path().join("a.txt")).expect("open");
        let time = std::fs::metadata(dir.path().join("a.txt")).expect("stat").modified().expect("mtime");
        std::io::Write::write_all(&mut &file, b"ALPHA").expect("rewrite");
        file.set_modified(time).expect("put the time back");
        let again = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&index)).expect("scan");
        let a = RelPath::parse(b"a.txt").expect("path");
        assert!(matches!(&again.entries[&a], Entry::File { hash, .. } if *hash == blake3::hash(b"ALPHA")));
    }

    #[test]
    fn the_indexes_kept_are_bounded_and_a_rewrite_keeps_the_newest() {
        let cache = tempfile::tempdir().expect("tempdir");
        let workspaces = tempfile::tempdir().expect("tempdir");
        let mut roots = Vec::new();
        for i in 0..MAX_INDEXES + 3 {
            let root = workspaces.path().join(format!("w{i}"));
            std::fs::create_dir(&root).expect("mkdir");
            std::fs::write(root.join("a.txt"), "alpha").expect("write");
            save_in(cache.path(), &root, &Manifest::scan(&root, &Filter::builtin()).expect("scan"));
            roots.push(root);
        }
        let dir = cache.path().join("sloth-runner").join("index");
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), MAX_INDEXES, "the oldest went");
        let last = roots.last().expect("a root");
        save_in(cache.path(), last, &Manifest::scan(last, &Filter::builtin()).expect("scan"));
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), MAX_INDEXES);
        assert!(load_in(cache.path(), last).is_some(), "the newest is kept");
    }

    #[test]
    fn an_index_that_says_all_of_a_scan_is_not_written_again_and_any_change_is() {
        let cache = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "alpha").expect("write");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("a.txt"))
            .expect("open")
            .set_modified(old)
            .expect("mtime");
        // The ctime is now: the first index cannot prove the file untouched yet.
        let first = Manifest::scan(dir.path(), &Filter::builtin()).expect("scan");
        save_in(cache.path(), dir.path(), &first);
        let known = load_in(cache.path(), dir.path()).expect("an index");
        assert!(!says_all_of(&known, &first), "a file changed within the margin of the scan");
        std::thread::sleep(std::time::Duration::from_millis(150));
        let second = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&known)).expect("scan");
        save_in(cache.path(), dir.path(), &second);
        let known = load_in(cache.path(), dir.path()).expect("an index");
        let third = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&known)).expect("scan");
        assert!(says_all_of(&known, &third), "nothing changed: nothing to write");
        std::fs::write(dir.path().join("b.txt"), "beta").expect("write");
        let fourth = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&known)).expect("scan");
        assert!(!says_all_of(&known, &fourth), "a new file");
        std::fs::remove_file(dir.path().join("b.txt")).expect("rm");
        std::fs::remove_file(dir.path().join("a.txt")).expect("rm");
        let fifth = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&known)).expect("scan");
        assert!(!says_all_of(&known, &fifth), "a file gone");
    }

    /// The snapshot a process kept is the next one's index (no file read), and it says all of
    /// an unchanged scan though it holds directories too.
    #[test]
    fn a_snapshot_kept_in_memory_is_the_next_ones_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/a.txt"), "alpha").expect("write");
        // Older than the racily-clean margin when scanned.
        std::thread::sleep(std::time::Duration::from_millis(150));
        let first = Arc::new(Manifest::scan(dir.path(), &Filter::builtin()).expect("scan"));
        remember(std::fs::canonicalize(dir.path()).expect("canonical"), Arc::clone(&first));
        let known = load(dir.path()).expect("an index");
        assert!(Arc::ptr_eq(&known, &first), "the one kept, not one read from disk");
        let second = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&known)).expect("scan");
        assert!(says_all_of(&known, &second));
        std::fs::write(dir.path().join("sub/a.txt"), "ALPHA").expect("rewrite");
        let third = Manifest::scan_known(dir.path(), &Filter::builtin(), Some(&known)).expect("scan");
        let a = RelPath::parse(b"sub/a.txt").expect("path");
        assert!(matches!(&third.entries[&a], Entry::File { hash, .. } if *hash == blake3::hash(b"ALPHA")));
        assert!(!says_all_of(&known, &third));
    }

    #[test]
    fn a_malformed_index_is_ignored_and_nothing_is_written_in_the_workspace() {
        let cache = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "alpha").expect("write");
        save_in(cache.path(), dir.path(), &Manifest::scan(dir.path(), &Filter::builtin()).expect("scan"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["a.txt"], "the workspace holds only its own files");
        let path = location(cache.path(), dir.path(), false).expect("a location");
        assert!(load_in(cache.path(), dir.path()).is_some());
        let good = std::fs::read(&path).expect("read");
        let mut damaged = good.clone();
        *damaged.last_mut().expect("a body") ^= 1;
        std::fs::write(&path, &damaged).expect("damage it");
        assert!(load_in(cache.path(), dir.path()).is_none(), "a damaged index is ignored");
        // Cut short, or with a count its body does not hold: no index either.
        std::fs::write(&path, &good[..good.len() - 3]).expect("cut it");
        assert!(load_in(cache.path(), dir.path()).is_none(), "a truncated index is ignored");
        let text = String::from_utf8_lossy(&good);
        let (header, _) = text.split_once('\n').expect("a header");
        let fields: Vec<&str> = header.split(' ').collect();
        let lying = format!("{} {} {} {} 99999999 {}\n", fields[0], fields[1], fields[2], fields[3], fields[5]);
        let mut lying = lying.into_bytes();
        lying.extend_from_slice(&good[header.len() + 1..]);
        std::fs::write(&path, &lying).expect("lie about the count");
        assert!(load_in(cache.path(), dir.path()).is_none(), "an index whose count lies is ignored");
        std::fs::write(&path, &good).expect("restore");
        assert!(load_in(cache.path(), dir.path()).is_some());
        std::fs::remove_file(&path).expect("rm");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        assert!(load_in(cache.path(), dir.path()).is_none(), "a pipe is not waited on");
        // A cache inside the workspace (a workspace that is the user's home) holds no index.
        assert!(location(&dir.path().join(".cache"), dir.path(), true).is_none());
        assert!(!dir.path().join(".cache").exists(), "nothing made in the workspace");
    }
}
