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

use super::beneath::Stamp;
use super::manifest::{Entry, Manifest};
use super::rel_path::RelPath;
use super::timestamp::Timestamp;

const HEADER: &str = "sloth-index 1";

/// The user's cache directory; None without one (relative paths are ignored, as the XDG
/// specification says).
fn cache_dir() -> Option<PathBuf> {
    let absolute = |dir: PathBuf| dir.is_absolute().then_some(dir);
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from).and_then(absolute).map(|home| home.join(".cache")))
}

/// Where the index of the workspace at `root` is kept, in `cache`; None when that is inside
/// the workspace (a workspace that holds the user's home): an index there would be part of
/// what it indexes.
fn location(cache: &Path, root: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let physical = std::fs::canonicalize(root).ok()?;
    if crate::physical_path::resolved(cache).starts_with(&physical) || cache.starts_with(root) {
        return None;
    }
    let name = blake3::hash(physical.as_os_str().as_bytes()).to_hex();
    Some(cache.join("sloth-runner").join("index").join(name.as_str()))
}

/// The index of the workspace at `root`, if there is a readable one.
pub fn load(root: &Path) -> Option<Manifest> {
    load_in(&cache_dir()?, root)
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
        .open(location(cache, root)?)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_INDEX_BYTES {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_INDEX_BYTES).read_to_string(&mut text).ok()?;
    parse(&text)
}

fn parse(text: &str) -> Option<Manifest> {
    let (first, body) = text.split_once('\n')?;
    let mut header = first.strip_prefix(HEADER)?.split_whitespace();
    let scanned_at = Timestamp::new(header.next()?.parse().ok()?, header.next()?.parse().ok()?);
    // A damaged index is no index.
    if header.next()? != blake3::hash(body.as_bytes()).to_hex().as_str() {
        return None;
    }
    let mut manifest = Manifest { scanned_at: Some(scanned_at), ..Manifest::default() };
    let mut files = Vec::new();
    for line in body.lines() {
        let mut fields = line.split(' ');
        let mut next = || fields.next();
        let (path, size, hash) = (next()?, next()?, next()?);
        let (dev, ino) = (next()?, next()?);
        let (mtime_s, mtime_n, ctime_s, ctime_n) = (next()?, next()?, next()?, next()?);
        if next().is_some() {
            return None;
        }
        let path = RelPath::parse(&crate::hex::decode(path.as_bytes())?).ok()?;
        let size: u64 = size.parse().ok()?;
        let hash = blake3::Hash::from_hex(hash).ok()?;
        let mtime = Timestamp::new(mtime_s.parse().ok()?, mtime_n.parse().ok()?);
        let ctime = Timestamp::new(ctime_s.parse().ok()?, ctime_n.parse().ok()?);
        let stamp = Stamp { dev: dev.parse().ok()?, ino: ino.parse().ok()?, size, mtime, ctime };
        manifest.stamps.insert(path.clone(), stamp);
        files.push((path, Entry::File { mode: 0, size, hash, mtime, link: None }));
    }
    // Written in order: the map is built at once.
    manifest.entries = files.into_iter().collect();
    Some(manifest)
}

/// Keeps `manifest` as the index of the workspace at `root` unless the index it was scanned
/// with (`known`) already says all of it: the same files, each proven untouched by it (so a
/// newer scan time would prove nothing more). Rewriting an unchanged index costs a new file
/// per snapshot — slow on filesystems that are slow to allocate inodes after deletes.
pub fn save_if_changed(root: &Path, known: Option<&Manifest>, manifest: &Manifest) {
    if let Some(known) = known
        && says_all_of(known, manifest)
    {
        // Used just now: the trim of indexes, which goes by time, keeps it.
        if let Some(path) = cache_dir().and_then(|cache| location(&cache, root))
            && let Ok(file) = std::os::unix::fs::OpenOptionsExt::custom_flags(
                std::fs::OpenOptions::new().write(true),
                (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits(),
            )
            .open(&path)
        {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        return;
    }
    save(root, manifest);
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
    files == known.stamps.len()
}

/// Keeps `manifest`'s files and identities as the index of the workspace at `root`. Best
/// effort: a workspace where it cannot be written (read-only, `.sloth` not a directory) just
/// has none.
pub fn save(root: &Path, manifest: &Manifest) {
    let Some(cache) = cache_dir() else { return };
    save_in(&cache, root, manifest);
}

fn save_in(cache: &Path, root: &Path, manifest: &Manifest) {
    if let Err(error) = try_save(cache, root, manifest) {
        tracing::debug!(root = %root.display(), %error, "the workspace's index was not written");
    }
}

fn try_save(cache: &Path, root: &Path, manifest: &Manifest) -> Result<(), super::WorkspaceError> {
    let Some(scanned_at) = manifest.scanned_at else { return Ok(()) };
    let mut text = String::new();
    let mut number = itoa::Buffer::new();
    for (path, entry) in &manifest.entries {
        let (Entry::File { size, hash, .. }, Some(stamp)) = (entry, manifest.stamps.get(path)) else { continue };
        // One growing string, nothing formatted or allocated per line (a large workspace has
        // many, and they are written on every snapshot that saw a change).
        crate::hex::encode_into(path.as_bytes(), &mut text);
        text.push(' ');
        text.push_str(number.format(*size));
        text.push(' ');
        text.push_str(hash.to_hex().as_str());
        for field in [stamp.dev, stamp.ino] {
            text.push(' ');
            text.push_str(number.format(field));
        }
        for time in [stamp.mtime, stamp.ctime] {
            text.push(' ');
            text.push_str(number.format(time.secs));
            text.push(' ');
            text.push_str(number.format(time.nanos));
        }
        text.push('\n');
    }
    let text =
        format!("{HEADER} {} {} {}\n{text}", scanned_at.secs, scanned_at.nanos, blake3::hash(text.as_bytes()).to_hex());
    let Some(path) = location(cache, root) else { return Ok(()) };
    let dir = path.parent().expect("the index has a directory").to_path_buf();
    std::fs::create_dir_all(&dir).map_err(super::WorkspaceError::io(&dir))?;
    let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(super::WorkspaceError::io(&dir))?;
    std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(super::WorkspaceError::io(temp.path()))?;
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

    #[test]
    fn a_malformed_index_is_ignored_and_nothing_is_written_in_the_workspace() {
        let cache = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "alpha").expect("write");
        save_in(cache.path(), dir.path(), &Manifest::scan(dir.path(), &Filter::builtin()).expect("scan"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["a.txt"], "the workspace holds only its own files");
        let path = location(cache.path(), dir.path()).expect("a location");
        assert!(load_in(cache.path(), dir.path()).is_some());
        let good = std::fs::read_to_string(&path).expect("read");
        let (header, body) = good.split_once('\n').expect("a header");
        std::fs::write(&path, format!("{header}\n{}", body.replacen("612e", "622e", 1))).expect("damage it");
        assert!(load_in(cache.path(), dir.path()).is_none(), "a damaged index is ignored");
        std::fs::remove_file(&path).expect("rm");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        assert!(load_in(cache.path(), dir.path()).is_none(), "a pipe is not waited on");
        // A cache inside the workspace (a workspace that is the user's home) holds no index.
        assert!(location(&dir.path().join(".cache"), dir.path()).is_none());
    }
}
