//! Building a tree in a fresh directory from entries that came from elsewhere — an archive
//! (`unpack`, the changes a master stages) or a manifest and the content cache (an agent's
//! `materialize`). One set of rules for all of them: normalized relative paths only (the
//! caller parses them into [`RelPath`]), nothing written through a link (every write goes
//! through [`Root`]), no entry twice, limits on the entry count and on the bytes actually
//! written (not the sizes declared), and directory modes and times set last, deepest first, so
//! a read-only directory was writable while it was filled and its time is not disturbed.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::WorkspaceError;
use super::beneath::{Root, Stamp, Stat};
use super::manifest::{Entry, MODE_MASK, SETID_BITS};
use super::rel_path::{PathMap, RelPath};
use super::timestamp::Timestamp;
use super::unpack::Limits;

/// Writes a tree into one directory, entry by entry.
#[derive(Debug)]
pub struct TreeWriter {
    root: Root,
    limits: Limits,
    entries: u64,
    bytes: u64,
    /// Every entry written, and a file's identity as it was left (none once another name is
    /// linked to it, which changes it).
    seen: PathMap<RelPath, Option<Stamp>>,
    dirs: Vec<(RelPath, u32, Timestamp)>,
    stripped: Vec<RelPath>,
}

/// Files written, each with its identity as it was left.
pub type Stamps = Vec<(RelPath, Stamp)>;

/// A time as `SystemTime` (before the epoch too).
pub fn system_time(time: Timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(time.nanos));
    if time.secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(time.secs.unsigned_abs()) + nanos
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(time.secs.unsigned_abs()) + nanos
    }
}

impl TreeWriter {
    /// A writer into `dest`, an existing directory.
    pub fn new(dest: &Path, limits: Limits) -> Result<Self, WorkspaceError> {
        Ok(Self {
            root: Root::open(dest)?,
            limits,
            entries: 0,
            bytes: 0,
            seen: PathMap::default(),
            dirs: Vec::new(),
            stripped: Vec::new(),
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Files whose setuid or setgid bits were cleared (the limits do not carry them).
    pub fn stripped(&self) -> &[RelPath] {
        &self.stripped
    }

    /// A file's mode as it may be written: setuid and setgid only where the limits carry them.
    fn file_mode(&mut self, path: &RelPath, mode: u32) -> u32 {
        let mode = mode & MODE_MASK;
        if mode & SETID_BITS != 0 && !self.limits.setid_files {
            self.stripped.push(path.clone());
            return mode & !SETID_BITS;
        }
        mode
    }

    /// Room for `entries` more entries (a tree about to be written from a manifest of that
    /// size), so that the set of names written does not grow by steps.
    pub fn reserve(&mut self, entries: usize) {
        self.seen.reserve(entries);
    }

    fn admit(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(WorkspaceError::TooLarge {
                what: "entry count",
                limit: self.limits.max_entries,
                entry: path.to_string(),
            });
        }
        if self.seen.insert(path.clone(), None).is_some() {
            return Err(WorkspaceError::UnsafeEntry { entry: path.to_string(), reason: "duplicate entry".to_owned() });
        }
        Ok(())
    }

    /// A directory (an implied parent created earlier is taken over, not a duplicate).
    pub fn dir(&mut self, path: &RelPath, mode: u32, mtime: Timestamp) -> Result<(), WorkspaceError> {
        self.admit(path)?;
        match self.root.lstat(path)? {
            Some(stat) if stat.kind == super::beneath::Kind::Dir => {}
            Some(_) => {
                return Err(WorkspaceError::UnsafeEntry {
                    entry: path.to_string(),
                    reason: "duplicate entry".to_owned(),
                });
            }
            None => self.root.mkdir(path, 0o700, true)?,
        }
        self.dirs.push((path.clone(), mode & MODE_MASK, mtime));
        Ok(())
    }

    /// A regular file with what `reader` yields; returns it as written: the size and BLAKE3
    /// of the bytes written, and the mode and time the filesystem actually holds (one with
    /// coarser times or fewer mode bits keeps less than asked). `read_error` describes a
    /// failure to read the source.
    pub fn file(
        &mut self,
        path: &RelPath,
        mode: u32,
        mtime: Timestamp,
        reader: impl Read,
        read_error: impl Fn(std::io::Error) -> WorkspaceError,
    ) -> Result<Entry, WorkspaceError> {
        self.admit(path)?;
        let remaining = self.limits.max_bytes.saturating_sub(self.bytes);
        let shape = (made_as(mode), self.file_mode(path, mode), mtime);
        let (entry, stamp) =
            write_file(&self.root, path, shape, reader, remaining, &read_error).map_err(|error| match error {
                CopyError::TooLarge => {
                    WorkspaceError::TooLarge { what: "size", limit: self.limits.max_bytes, entry: path.to_string() }
                }
                CopyError::Failed(error) => error,
            })?;
        if let Entry::File { size, .. } = &entry {
            self.bytes += size;
        }
        // Its identity as left: what a look at it after the build would see (no second look).
        if let Some(seen) = self.seen.get_mut(path) {
            *seen = Some(stamp);
        }
        Ok(entry)
    }

    /// A regular file of `size` bytes counted and its name taken, to be written elsewhere — on
    /// another thread, through a clone of [`TreeWriter::root`] — by [`write_admitted`]; what
    /// that returns is recorded with [`TreeWriter::admitted_written`].
    pub fn admit_file(
        &mut self,
        path: &RelPath,
        mode: u32,
        mtime: Timestamp,
        size: u64,
    ) -> Result<Admitted, WorkspaceError> {
        if size > self.limits.max_bytes.saturating_sub(self.bytes) {
            return Err(WorkspaceError::TooLarge {
                what: "size",
                limit: self.limits.max_bytes,
                entry: path.to_string(),
            });
        }
        self.admit(path)?;
        self.bytes += size;
        Ok(Admitted { path: path.clone(), made_as: made_as(mode), mode: self.file_mode(path, mode), mtime })
    }

    /// Records the identity a file admitted with [`TreeWriter::admit_file`] was left with.
    pub fn admitted_written(&mut self, path: &RelPath, stamp: Stamp) {
        if let Some(seen) = self.seen.get_mut(path) {
            *seen = Some(stamp);
        }
    }

    /// `path` as another name of `to`, a file this writer wrote earlier (a hard link). Returns
    /// the file as the filesystem holds it under the new name (given `written`, `to`'s entry).
    pub fn hard_link(&mut self, path: &RelPath, to: &RelPath, written: &Entry) -> Result<Entry, WorkspaceError> {
        self.admit(path)?;
        let refuse = |reason: String| WorkspaceError::UnsafeEntry { entry: path.to_string(), reason };
        let Entry::File { mode, size, hash, mtime, .. } = written else {
            return Err(refuse(format!("a hard link to '{to}', which is not a file")));
        };
        if to >= path || !self.seen.contains_key(to) {
            return Err(refuse(format!("a hard link to '{to}', which does not come before it")));
        }
        match self.root.lstat(to)? {
            Some(stat) if stat.kind == super::beneath::Kind::File => {}
            _ => return Err(refuse(format!("a hard link to '{to}', which is not a file here"))),
        }
        self.root.check_parent(path)?;
        self.root.hard_link_from(&self.root, to, path)?;
        // Another name changes the file's identity (its link count, its ctime).
        if let Some(stamp) = self.seen.get_mut(to) {
            *stamp = None;
        }
        Ok(Entry::File { mode: *mode, size: *size, hash: *hash, mtime: *mtime, link: Some(to.clone()) })
    }

    /// A named pipe.
    pub fn fifo(&mut self, path: &RelPath, mode: u32, mtime: Timestamp) -> Result<Entry, WorkspaceError> {
        self.admit(path)?;
        self.root.mkfifo(path, 0o600, true)?;
        self.root.chmod(path, mode & MODE_MASK)?;
        self.root.set_mtime(path, mtime)?;
        let held = self.root.lstat(path)?.map_or(mode & MODE_MASK, |stat| stat.mode);
        Ok(Entry::Fifo { mode: held, mtime })
    }

    /// An entry already in place with the right content (a warm tree), `now` as lstat saw it:
    /// its mode and time are set where they differ (nothing is touched otherwise, so its
    /// identity stays and the scan after the task need not read it). Returns it as the
    /// filesystem holds it.
    pub fn keep(
        &mut self,
        path: &RelPath,
        entry: &Entry,
        now: &super::beneath::Stat,
    ) -> Result<(Entry, super::beneath::Stamp), WorkspaceError> {
        self.admit(path)?;
        let mut stat = *now;
        let mode = entry.mode().map(|mode| match entry {
            Entry::File { .. } => self.file_mode(path, mode),
            _ => mode & MODE_MASK,
        });
        let mut touched = false;
        if let Some(mode) = mode
            && mode != stat.mode
        {
            self.root.chmod(path, mode)?;
            touched = true;
        }
        if entry.mtime() != stat.mtime {
            self.root.set_mtime(path, entry.mtime())?;
            touched = true;
        }
        if touched {
            let Some(held) = self.root.lstat(path)? else {
                return Err(WorkspaceError::Refused { path: self.root.display(path), reason: "vanished".to_owned() });
            };
            stat = held;
        }
        let held = match entry {
            Entry::File { size, hash, link, .. } => {
                Entry::File { mode: stat.mode, size: *size, hash: *hash, mtime: stat.mtime, link: link.clone() }
            }
            Entry::Fifo { .. } => Entry::Fifo { mode: stat.mode, mtime: stat.mtime },
            Entry::Symlink { target, .. } => Entry::Symlink { target: target.clone(), mtime: stat.mtime },
            Entry::Dir { .. } => Entry::Dir { mode: stat.mode, mtime: stat.mtime },
        };
        Ok((held, stat.stamp))
    }

    /// A symlink pointing at `target`, whatever it is.
    pub fn symlink(&mut self, path: &RelPath, target: &[u8], mtime: Timestamp) -> Result<(), WorkspaceError> {
        self.admit(path)?;
        if target.is_empty() || target.contains(&0) {
            return Err(WorkspaceError::UnsafeEntry {
                entry: path.to_string(),
                reason: "a symlink needs a target without NUL bytes".to_owned(),
            });
        }
        self.root.symlink(path, target, true)?;
        self.root.set_mtime(path, mtime)
    }

    /// Takes back a file written earlier (its content turned out wrong).
    pub fn discard_file(&mut self, path: &RelPath) -> Result<(), WorkspaceError> {
        self.seen.remove(path);
        self.entries = self.entries.saturating_sub(1);
        self.root.unlink(path)
    }

    /// Sets the directories' modes and times, deepest first; the tree is complete. Returns
    /// each directory as the filesystem holds it.
    pub fn finish(self) -> Result<Vec<(RelPath, Entry)>, WorkspaceError> {
        self.finish_with_stamps().map(|(dirs, _)| dirs)
    }

    /// [`TreeWriter::finish`], and the identity of each file written as it was left (a file
    /// another name was linked to has none: it is looked at again).
    pub fn finish_with_stamps(mut self) -> Result<(Vec<(RelPath, Entry)>, Stamps), WorkspaceError> {
        let stamps: Vec<(RelPath, Stamp)> =
            std::mem::take(&mut self.seen).into_iter().filter_map(|(path, stamp)| Some((path, stamp?))).collect();
        Ok((self.finish_dirs()?, stamps))
    }

    fn finish_dirs(self) -> Result<Vec<(RelPath, Entry)>, WorkspaceError> {
        let mut dirs = self.dirs;
        dirs.sort_by(|a, b| b.0.depth().cmp(&a.0.depth()).then_with(|| b.0.cmp(&a.0)));
        let mut held = Vec::with_capacity(dirs.len());
        for (path, mode, mtime) in dirs {
            self.root.chmod(&path, mode)?;
            self.root.set_mtime(&path, mtime)?;
            let stat = self.root.lstat(&path)?.unwrap_or(super::beneath::Stat {
                kind: super::beneath::Kind::Dir,
                mode,
                size: 0,
                mtime,
                stamp: Default::default(),
                nlink: 1,
                uid: 0,
                gid: 0,
            });
            held.push((path, Entry::Dir { mode: stat.mode & MODE_MASK, mtime: stat.mtime }));
        }
        Ok(held)
    }
}

/// A regular file admitted by [`TreeWriter::admit_file`], to be written by [`write_admitted`].
#[derive(Debug)]
pub struct Admitted {
    pub path: RelPath,
    made_as: u32,
    mode: u32,
    mtime: Timestamp,
}

/// Writes the file `admitted` with `bytes` beneath `root` (the writer's root, cloned for this
/// thread); returns it as written, with its identity as left.
pub fn write_admitted(root: &Root, admitted: &Admitted, bytes: &[u8]) -> Result<(Entry, Stamp), WorkspaceError> {
    let Admitted { path, made_as, mode, mtime } = admitted;
    root.check_parent(path)?;
    let full = root.display(path);
    let no_read_error = |error| WorkspaceError::Io { path: full.clone(), source: error };
    // (Its size was counted when it was admitted: no limit here.)
    write_file(root, path, (*made_as, *mode, *mtime), bytes, u64::MAX, &no_read_error).map_err(|error| match error {
        CopyError::TooLarge => WorkspaceError::TooLarge { what: "size", limit: u64::MAX, entry: path.to_string() },
        CopyError::Failed(error) => error,
    })
}

/// Makes the regular file `path` beneath `root` — made as `made_as`, then given `mode` and
/// `mtime` — with what `reader` yields, at most `limit` bytes; one that cannot be written
/// whole is removed. Returns it as written, and its identity as left.
fn write_file(
    root: &Root,
    path: &RelPath,
    (made_as, mode, mtime): (u32, u32, Timestamp),
    reader: impl Read,
    limit: u64,
    read_error: &dyn Fn(std::io::Error) -> WorkspaceError,
) -> Result<(Entry, Stamp), CopyError> {
    let mut file = root.create_file(path, made_as, true).map_err(CopyError::Failed)?;
    let full = root.display(path);
    let (size, hash) = match copy_hashing(reader, &mut file, limit, read_error, &full) {
        Ok(done) => done,
        Err(error) => {
            drop(file);
            let _ = root.unlink(path);
            return Err(error);
        }
    };
    settle_file(&file, &full, (made_as, mode, mtime), size, hash).map_err(CopyError::Failed)
}

/// The mode a file is made with: its own where the umask leaves it whole (no chmod after); a
/// setuid or setgid file is made private and given its bits once written (writing clears
/// them).
fn made_as(mode: u32) -> u32 {
    let plain = mode & MODE_MASK & !SETID_BITS == mode & MODE_MASK;
    match crate::process::umask_at_start() {
        Some(umask) if plain && mode & MODE_MASK & umask == 0 => mode & MODE_MASK,
        _ => 0o600,
    }
}

/// Gives a file just written (`size` bytes hashing to `hash`) its mode — after the content:
/// writing clears setuid and setgid — and time; returns it as the filesystem holds it, and
/// its identity as left.
fn settle_file(
    file: &std::fs::File,
    full: &Path,
    (made_as, mode, mtime): (u32, u32, Timestamp),
    size: u64,
    hash: blake3::Hash,
) -> Result<(Entry, Stamp), WorkspaceError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let set_mode = |file: &std::fs::File| {
        file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(WorkspaceError::io(full))
    };
    let time = system_time(mtime);
    let set_time = |file: &std::fs::File| {
        file.set_times(std::fs::FileTimes::new().set_accessed(time).set_modified(time))
            .map_err(WorkspaceError::io(full))
    };
    if made_as != mode {
        set_mode(file)?;
    }
    set_time(file)?;
    let mut held = file.metadata().map_err(WorkspaceError::io(full))?;
    // Made otherwise than the umask says (a default ACL on the directory): set after all.
    if held.mode() & MODE_MASK != mode && made_as == mode {
        set_mode(file)?;
        set_time(file)?;
        held = file.metadata().map_err(WorkspaceError::io(full))?;
    }
    let entry = Entry::File {
        mode: held.mode() & MODE_MASK,
        size,
        hash,
        mtime: Timestamp::new(held.mtime(), held.mtime_nsec()),
        link: None,
    };
    Ok((entry, Stat::from_metadata(&held).stamp))
}

enum CopyError {
    TooLarge,
    Failed(WorkspaceError),
}

/// Blocks of zeros this long, at offsets that are multiples of it, are left as holes.
const HOLE: usize = 4096;

/// Copies at most `limit` bytes (one more is an error) from `reader` to `out` (a new, empty
/// file), hashing them. Whole aligned blocks of zeros are skipped, not written: a sparse file
/// stays sparse, as `cp` and `tar -S` keep it, instead of taking its full size on disk.
fn copy_hashing(
    mut reader: impl Read,
    out: &mut std::fs::File,
    limit: u64,
    read_error: &dyn Fn(std::io::Error) -> WorkspaceError,
    path: &Path,
) -> Result<(u64, blake3::Hash), CopyError> {
    let failed = |source| CopyError::Failed(WorkspaceError::Io { path: path.to_path_buf(), source });
    super::buffer::with_buffer(|buf| {
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut ends_in_hole = false;
        loop {
            // The buffer filled (but at the end): every chunk begins at a multiple of its
            // length, so a block of zeros is never split between two chunks.
            let mut read = 0;
            while read < buf.len() {
                match reader.read(&mut buf[read..]) {
                    Ok(0) => break,
                    Ok(more) => read += more,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(CopyError::Failed(read_error(error))),
                }
            }
            if read == 0 {
                break;
            }
            let offset = size;
            size += read as u64;
            if size > limit {
                return Err(CopyError::TooLarge);
            }
            hasher.update(&buf[..read]);
            ends_in_hole = write_sparse(out, &buf[..read], offset).map_err(failed)?;
        }
        // A hole at the end: the size is the file's all the same.
        if ends_in_hole {
            out.set_len(size).map_err(failed)?;
        }
        Ok((size, hasher.finalize()))
    })
}

/// Writes `bytes`, which belong at `offset` of `out` (where `out`'s position is), leaving
/// whole aligned blocks of zeros as holes; what lies between them goes in one write. Says
/// whether they ended in a hole (the file's length is then still short of them).
fn write_sparse(out: &mut std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut at = 0;
    // Written up to here; zeros skipped from there to `at`.
    let mut written = 0;
    while at < bytes.len() {
        let to_boundary = HOLE - ((offset + at as u64) % HOLE as u64) as usize;
        let end = (at + to_boundary).min(bytes.len());
        let hole = end - at == HOLE && bytes[at..end].iter().all(|&byte| byte == 0);
        if hole {
            out.write_all(&bytes[written..at])?;
            out.seek(SeekFrom::Current(HOLE as i64))?;
            written = end;
        }
        at = end;
    }
    out.write_all(&bytes[written..])?;
    Ok(written == bytes.len() && !bytes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every mode a file can be asked for is the one it has, whether the umask would have left
    /// it whole when the file was made or not, and with its identity as a later look sees it.
    #[test]
    fn a_file_has_the_mode_it_was_asked_for_whatever_the_umask() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = Limits { setid_files: true, ..Limits::default() };
        let mut writer = TreeWriter::new(dir.path(), limits).expect("writer");
        let modes = [0o644, 0o600, 0o755, 0o666, 0o777, 0o444, 0o000, 0o4755, 0o2750];
        for mode in modes {
            let path = RelPath::parse(format!("m{mode:o}").as_bytes()).expect("path");
            let written = writer
                .file(&path, mode, Timestamp::new(1_000, 0), &b"content"[..], |e| WorkspaceError::Io {
                    path: dir.path().to_path_buf(),
                    source: e,
                })
                .expect("file");
            let on_disk = std::fs::symlink_metadata(dir.path().join(path.as_path())).expect("stat");
            use std::os::unix::fs::MetadataExt;
            assert_eq!(on_disk.mode() & MODE_MASK, mode, "{mode:o} on disk");
            assert!(matches!(written, Entry::File { mode: held, .. } if held == mode), "{mode:o} as written");
        }
        let (_, stamps) = writer.finish_with_stamps().expect("finish");
        assert_eq!(stamps.len(), modes.len());
        for (path, stamp) in stamps {
            let now = Root::open(dir.path()).expect("root").lstat(&path).expect("lstat").expect("there");
            assert_eq!(stamp, now.stamp, "{path}: the identity a look sees");
        }
    }

    /// Runs of bytes: zeros (holes to be) or data, of any length, at any offset.
    fn content() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec((any::<bool>(), 1usize..3 * HOLE, any::<u8>()), 0..6).prop_map(|runs| {
            let mut bytes = Vec::new();
            for (zeros, len, byte) in runs {
                bytes.extend(std::iter::repeat_n(if zeros { 0 } else { byte | 1 }, len));
            }
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// What is written reads back as the bytes given, whatever holes were left, and the
        /// hash and size are theirs.
        #[test]
        fn a_file_written_with_holes_reads_back_as_its_bytes(bytes in content()) {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("f");
            let mut file = std::fs::File::create_new(&path).expect("create");
            let read_error = |e: std::io::Error| WorkspaceError::Corrupt(e.to_string());
            let Ok((size, hash)) = copy_hashing(&bytes[..], &mut file, u64::MAX, &read_error, &path) else {
                panic!("the copy failed");
            };
            drop(file);
            prop_assert_eq!(size, bytes.len() as u64);
            prop_assert_eq!(hash, blake3::hash(&bytes));
            prop_assert_eq!(std::fs::read(&path).expect("read"), bytes);
        }
    }
}
