//! Packing entries of a workspace into a tar + gzip stream: names as bytes, modification
//! times with nanoseconds (PAX `mtime`), links as links, hard links as hard links (`tar` and
//! `rsync -H` keep them), named pipes as pipes. Files are read beneath the root
//! without following links, so a tree that changed since its manifest was taken cannot make
//! the archive carry anything from outside it.

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::WorkspaceError;
use super::beneath::Root;
use super::manifest::{Entry, Manifest};
use super::rel_path::RelPath;
use super::timestamp::Timestamp;

/// gzip level: the fast end. At the default level compression is by far the slowest step of a
/// sync; level 1 keeps most of the size benefit.
pub const GZIP_LEVEL: u32 = 1;

/// Writes the entries of `manifest` named by `paths` (all when None), read from `root`, to
/// `out` as tar + gzip. Returns the number of entries written.
pub fn pack(
    root: &Path,
    manifest: &Manifest,
    paths: Option<&[RelPath]>,
    out: impl Write,
) -> Result<u64, WorkspaceError> {
    pack_marking(root, manifest, paths, out, None)
}

/// [`pack`] of a task's changes to the tree it started from as `base`: the files it made anew
/// where one was (see [`MADE_ANEW_KEY`]) are marked so.
pub fn pack_marking(
    root: &Path,
    manifest: &Manifest,
    paths: Option<&[RelPath]>,
    mut out: impl Write,
    base: Option<&Manifest>,
) -> Result<u64, WorkspaceError> {
    if paths.is_some_and(<[RelPath]>::is_empty) {
        // Most tasks change nothing: their archive is always the same bytes, and making a
        // compressor for it costs more than the rest of packing it.
        out.write_all(empty_archive()).map_err(WorkspaceError::io(root))?;
        return Ok(0);
    }
    let source = Root::open(root)?;
    let mut builder = tar::Builder::new(GzEncoder::new(out, Compression::new(GZIP_LEVEL)));
    builder.follow_symlinks(false);
    let mut count = 0;
    // Files already in the archive: a later name of one of them goes as a hard link to it.
    let mut packed = std::collections::HashSet::new();
    // The inodes the tree held when the task started, read once the first time a file is
    // found at another inode than its own then.
    let base_inodes = std::cell::OnceCell::new();
    let origin = |path: &RelPath| match base {
        Some(base) => origin(&source, (base, &base_inodes), manifest, path),
        None => Origin::InPlace,
    };
    let mut add = |path: &RelPath| -> Result<(), WorkspaceError> {
        let Some(entry) = manifest.entries.get(path) else { return Ok(()) };
        match entry {
            Entry::File { link: Some(leader), .. } if packed.contains(leader) => {
                append_hard_link(&mut builder, &source, path, leader, entry)?;
            }
            Entry::File { mode, .. } => {
                append_file(&mut builder, &source, path, entry, *mode, &origin(path))?;
                packed.insert(path.clone());
            }
            _ => append(&mut builder, &source, path, entry, &origin(path))?,
        }
        count += 1;
        Ok(())
    };
    match paths {
        Some(paths) => paths.iter().try_for_each(&mut add)?,
        None => manifest.entries.keys().try_for_each(&mut add)?,
    }
    let encoder = builder.into_inner().map_err(WorkspaceError::io(root))?;
    // The last bytes may still be in `out`'s buffer: a writer dropped unflushed (a BufWriter)
    // loses its error with them, and the archive would end short of its end, unannounced.
    encoder.finish().and_then(|mut out| out.flush()).map_err(WorkspaceError::io(root))?;
    Ok(count)
}

/// A tar + gzip archive without entries, made once.
fn empty_archive() -> &'static [u8] {
    static EMPTY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        let builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL)));
        let encoder = builder.into_inner().expect("writing to memory cannot fail");
        encoder.finish().expect("writing to memory cannot fail")
    })
}

/// PAX keys of a setuid or setgid file's owner and group, written where they are not this
/// process's own user and group (a task gave the file away: `chown alice prog; chmod u+s
/// prog`). The apply gives the file that owner or clears the bit: the runner's own setuid
/// program would be another, more powerful one.
pub(super) const OWNER_UID_KEY: &str = "SLOTH.uid";
pub(super) const OWNER_GID_KEY: &str = "SLOTH.gid";

/// A PAX record of a file the task made anew where one was — removed and created again, or
/// another moved over it (`sed -i`, `cp --remove-destination`) — rather than wrote into: a run
/// here needs no right to the file it replaces for that, only to its directory; and the new
/// file is the runner's. Of a directory removed and made again: the runner's too.
pub(super) const MADE_ANEW_KEY: &str = "SLOTH.anew";

/// A PAX record of a file or directory the task moved where another was (`mv c a`, `rm -rf d;
/// mv new d`): the path it had in the base, in hex. It is whose that one is here, as a run here
/// leaves it — not the replaced one's owner's.
pub(super) const MOVED_FROM_KEY: &str = "SLOTH.from";

/// Where an entry of the task's tree that was there before it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// Written into, or as it was.
    InPlace,
    /// Made anew: see [`MADE_ANEW_KEY`].
    Anew,
    /// Another entry of the base moved there: see [`MOVED_FROM_KEY`].
    MovedFrom(RelPath),
}

impl Origin {
    /// Its PAX record, if any.
    fn record(&self) -> Option<(&'static str, Vec<u8>)> {
        match self {
            Origin::InPlace => None,
            Origin::Anew => Some((MADE_ANEW_KEY, b"1".to_vec())),
            // (In hex: a PAX record cannot carry a newline, which a path may hold.)
            Origin::MovedFrom(from) => Some((MOVED_FROM_KEY, crate::hex::encode(from.as_bytes()).into_bytes())),
        }
    }
}

/// Where the task's file or directory at `path` comes from: another entry of the base whose
/// inode it is (moved or linked there: `mv c a`, `mv d e` and everything in it), or, where one
/// of that kind was in the base, an inode the tree did not hold when it started (`after` is the
/// tree as scanned after it) or one born since the tree was built (a freed inode number is
/// given again at once) — made anew. An inode is taken for another entry's only where births
/// can be told: a new file given a removed one's number looks the same. (`inodes`: the base's,
/// by inode, read once when first needed.)
fn origin<'a>(
    tree: &Root,
    (base, inodes): (&'a Manifest, &std::cell::OnceCell<std::collections::HashMap<u64, &'a RelPath>>),
    after: &Manifest,
    path: &RelPath,
) -> Origin {
    let carried = matches!(after.entries.get(path), Some(Entry::File { .. } | Entry::Dir { .. }));
    let Some(now) = after.stamps.get(path).filter(|_| carried) else { return Origin::InPlace };
    let same_kind = matches!(
        (base.entries.get(path), after.entries.get(path)),
        (Some(Entry::File { .. }), Some(Entry::File { .. })) | (Some(Entry::Dir { .. }), Some(Entry::Dir { .. }))
    );
    // Whether the entry was born since the tree was built; None where that cannot be told.
    let born_since = || -> Option<bool> {
        let built = base.settled_before?;
        let born = tree.with_named(path, |named| std::fs::symlink_metadata(named).and_then(|meta| meta.created()));
        let born = born.ok().flatten().and_then(Timestamp::from_system)?;
        Some(born > built)
    };
    if base.stamps.get(path).is_some_and(|before| before.ino == now.ino) {
        return if same_kind && born_since() == Some(true) { Origin::Anew } else { Origin::InPlace };
    }
    match (inodes.get_or_init(|| base.paths_by_inode()).get(&now.ino), born_since()) {
        (Some(from), Some(false)) => Origin::MovedFrom((*from).clone()),
        _ if same_kind => Origin::Anew,
        _ => Origin::InPlace,
    }
}

/// Paths this long or longer travel in a GNU long-name entry written here, the header holding
/// [`LONG_PATH_PLACEHOLDER`]: the tar crate's own keeps a UTF-8 copy of the path's start in the
/// header, which comes out empty for a path whose first bytes are not UTF-8 (the pack failed,
/// a task's changes lost on the agent); and a PAX `path` record cannot carry a newline (its
/// reader splits records at newlines).
const LONG_PATH: usize = 100;

/// What the header of an entry with a long path names (readers take the long-name entry).
const LONG_PATH_PLACEHOLDER: &str = "sloth-long-path";

/// The name `path`'s header holds.
fn header_path(path: &RelPath) -> &Path {
    if path.as_bytes().len() >= LONG_PATH { Path::new(LONG_PATH_PLACEHOLDER) } else { path.as_path() }
}

/// Writes the GNU long-name entry of `path` where it is long (as GNU tar does: `././@LongLink`,
/// type `L`, the path and a NUL).
fn append_long_name<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &RelPath,
    full: &Path,
) -> Result<(), WorkspaceError> {
    let bytes = path.as_bytes();
    if bytes.len() < LONG_PATH {
        return Ok(());
    }
    let mut header = tar::Header::new_gnu();
    let name = b"././@LongLink";
    if let Some(gnu) = header.as_gnu_mut() {
        gnu.name[..name.len()].copy_from_slice(name);
    }
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_size(bytes.len() as u64 + 1);
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_cksum();
    builder.append(&header, bytes.chain(&[0u8][..])).map_err(WorkspaceError::io(full))
}

/// A header with the entry's time (PAX `mtime` with nanoseconds, written before it), the PAX
/// records of `more`, and its path where it is long (a long-name entry).
fn timed_header<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &RelPath,
    entry: &Entry,
    full: &Path,
    more: &[(&str, Vec<u8>)],
) -> Result<tar::Header, WorkspaceError> {
    let mut header = tar::Header::new_gnu();
    let mtime = entry.mtime();
    header.set_mtime(u64::try_from(mtime.secs).unwrap_or(0));
    let mtime = mtime.to_pax();
    let records = std::iter::once(("mtime", mtime.as_bytes())).chain(more.iter().map(|(k, v)| (*k, v.as_slice())));
    builder.append_pax_extensions(records).map_err(WorkspaceError::io(full))?;
    append_long_name(builder, path, full)?;
    Ok(header)
}

/// The PAX records of a setuid or setgid file's owner and group that are not this process's.
fn given_owner(mode: u32, meta: &std::fs::Metadata) -> Vec<(&'static str, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut records = Vec::new();
    if mode & 0o4000 != 0 && meta.uid() != nix::unistd::geteuid().as_raw() {
        records.push((OWNER_UID_KEY, meta.uid().to_string().into_bytes()));
    }
    if mode & 0o2000 != 0 && meta.gid() != nix::unistd::getegid().as_raw() {
        records.push((OWNER_GID_KEY, meta.gid().to_string().into_bytes()));
    }
    records
}

/// `path` as another name of `leader`, packed before it.
fn append_hard_link<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Root,
    path: &RelPath,
    leader: &RelPath,
    entry: &Entry,
) -> Result<(), WorkspaceError> {
    let full = root.display(path);
    let mut header = timed_header(builder, path, entry, &full, &[])?;
    header.set_entry_type(tar::EntryType::Link);
    header.set_mode(entry.mode().unwrap_or(0o644));
    header.set_size(0);
    builder.append_link(&mut header, header_path(path), leader.as_path()).map_err(WorkspaceError::io(&full))
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Root,
    path: &RelPath,
    entry: &Entry,
    origin: &Origin,
) -> Result<(), WorkspaceError> {
    let full = root.display(path);
    let (kind, mode) = match entry {
        Entry::File { mode, .. } => return append_file(builder, root, path, entry, *mode, origin),
        Entry::Fifo { mode, .. } => (tar::EntryType::Fifo, *mode),
        Entry::Dir { mode, .. } => (tar::EntryType::Directory, *mode),
        Entry::Symlink { .. } => (tar::EntryType::Symlink, 0o777),
    };
    let records: Vec<_> = origin.record().filter(|_| kind == tar::EntryType::Directory).into_iter().collect();
    let mut header = timed_header(builder, path, entry, &full, &records)?;
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(0);
    match entry {
        Entry::Symlink { target, .. } => builder.append_link(&mut header, header_path(path), RelPath::raw_path(target)),
        _ => builder.append_data(&mut header, header_path(path), std::io::empty()),
    }
    .map_err(WorkspaceError::io(&full))
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Root,
    path: &RelPath,
    entry: &Entry,
    mode: u32,
    origin: &Origin,
) -> Result<(), WorkspaceError> {
    let full = root.display(path);
    let file = root.open_file(path)?;
    let meta = file.metadata().map_err(WorkspaceError::io(&full))?;
    // The size at open time: a file that grows meanwhile is cut there; one that shrinks
    // fails the pack rather than producing a corrupt archive.
    let size = meta.len();
    let mut records = given_owner(mode, &meta);
    records.extend(origin.record());
    let mut header = timed_header(builder, path, entry, &full, &records)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(size);
    let mut reader = ExactReader { inner: file.take(size), remaining: size };
    builder.append_data(&mut header, header_path(path), &mut reader).map_err(WorkspaceError::io(&full))
}

/// Fails instead of ending early when the file shrank while being read.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank while being packed"));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_pack_is_an_archive_without_entries_that_an_apply_sees_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut out = Vec::new();
        assert_eq!(pack(dir.path(), &Manifest::default(), Some(&[]), &mut out).expect("pack"), 0);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&out[..]));
        assert_eq!(archive.entries().expect("entries").count(), 0);
        let (empty, _) = super::super::unpack::peek_empty(&out[..]).expect("peek");
        assert!(empty, "the apply takes it for nothing to do");
    }

    /// Long paths of every kind — whose first byte is not UTF-8 too, which tar's long-name
    /// entry as the tar crate writes it cannot carry, and with a newline, which a PAX record
    /// cannot — come back whole from an unpack.
    #[test]
    fn long_paths_that_are_not_utf8_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let odd = std::ffi::OsStr::from_bytes(b"\xe9");
        let long = "M".repeat(99);
        let deep = dir.path().join(odd).join(odd);
        std::fs::create_dir_all(&deep).expect("mkdir");
        std::fs::write(deep.join(&long), "x").expect("write");
        std::fs::hard_link(deep.join(&long), dir.path().join(odd).join(format!("{long}-link"))).expect("link");
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&[0xe9; 120]), deep.join(format!("{long}-sym")))
            .expect("symlink");
        std::fs::write(dir.path().join(format!("{}.txt", "é".repeat(60))), "y").expect("write");
        // (A newline, which a PAX record cannot carry.)
        std::fs::write(dir.path().join(format!("new\nline{}", "L".repeat(120))), "z").expect("write");
        let manifest = Manifest::scan(dir.path(), &crate::workspace::Filter::builtin()).expect("scan");
        let mut out = Vec::new();
        pack(dir.path(), &manifest, None, &mut out).expect("pack");
        let dest = tempfile::tempdir().expect("tempdir");
        super::super::unpack::unpack(&out[..], dest.path(), &super::super::unpack::Limits::default()).expect("unpack");
        let again = Manifest::scan(dest.path(), &crate::workspace::Filter::builtin()).expect("scan");
        let paths = |manifest: &Manifest| manifest.entries.keys().cloned().collect::<Vec<_>>();
        assert_eq!(paths(&again), paths(&manifest));
        let contents = |manifest: &Manifest| {
            manifest
                .entries
                .values()
                .map(|entry| match entry {
                    Entry::Dir { .. } => None,
                    other => Some(other.clone()),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(contents(&again), contents(&manifest), "contents, links and times as they were");
    }

    /// A disk that is full: every write fails, as ENOSPC.
    struct FullDisk;

    impl Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_archive_whose_last_bytes_cannot_be_written_is_an_error_not_a_truncated_archive() {
        // Small: the whole archive stays in the BufWriter until it is flushed, and a BufWriter
        // dropped unflushed drops the error with the bytes.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "content").expect("write");
        let manifest = Manifest::scan(dir.path(), &crate::workspace::Filter::builtin()).expect("scan");
        let packed = pack(dir.path(), &manifest, None, std::io::BufWriter::new(FullDisk));
        assert!(packed.is_err(), "packing to a full disk succeeded: {packed:?}");
        let hashes: Vec<blake3::Hash> = manifest
            .entries
            .values()
            .filter_map(|entry| match entry {
                Entry::File { hash, .. } => Some(*hash),
                _ => None,
            })
            .collect();
        let packed = super::super::blob_pack::pack_blobs(
            dir.path(),
            &manifest,
            &hashes,
            std::io::BufWriter::new(FullDisk),
            dir.path(),
        );
        assert!(packed.is_err(), "packing the contents asked for to a full disk succeeded");
    }
}
