//! What the master sends for incremental sync: the archive of the contents an agent lacks
//! (entries named by hash), each file read once and sent as read.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use super::WorkspaceError;
use super::beneath::Root;
use super::blob_stream::{BlobFormat, BlobWriter};
use super::manifest::{Entry, Manifest};
use super::rel_path::RelPath;
use super::timestamp::Timestamp;

/// Hashes what passes through it.
pub(super) struct HashingWriter<W> {
    pub(super) inner: W,
    pub(super) hasher: blake3::Hasher,
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

/// What [`pack_blobs`] sent.
#[derive(Debug, Default)]
pub struct BlobPack {
    /// Contents in the archive.
    pub sent: u64,
    /// Files that changed since the manifest was taken, as they were read and sent instead:
    /// the task gets them this way, and the master's base for them is this.
    pub amended: Vec<(RelPath, Entry)>,
}

/// Files up to this size are read into memory once; larger ones into a spool file.
const READ_IN_MEMORY: u64 = 16 * 1024 * 1024;

/// Writes the contents `hashes` names, found in `root` through `manifest`, as a blob archive
/// (entries named by hash). Each file is read once and what was read is hashed and sent: a
/// file written to since the manifest was taken goes as it was read, under its new hash, and
/// is listed in [`BlobPack::amended`] — never under a hash that is not its content's.
/// Finishing `out` failing names `spool`, the scratch directory the caller writes it in.
pub fn pack_blobs(
    root: &Path,
    manifest: &Manifest,
    hashes: &[blake3::Hash],
    out: impl Write,
    spool: &Path,
) -> Result<BlobPack, WorkspaceError> {
    pack_blobs_announcing(root, manifest, hashes, (out, BlobFormat::Tar), spool, |_, _| Ok(()))
}

/// [`pack_blobs`], telling `announce` of each file found changed as it was read — with the
/// entry it goes as — before a byte of its content is written to `out`: an archive streamed
/// as it is packed carries the news ahead of the content it concerns, so that its reader
/// knows where that content goes when it comes. The content of an amended file is always in
/// the archive after its announcement, even when an earlier entry held the same content.
/// An error `announce` returns stops the pack. The archive takes the form `format`.
pub fn pack_blobs_announcing(
    root: &Path,
    manifest: &Manifest,
    hashes: &[blake3::Hash],
    (out, format): (impl Write, BlobFormat),
    spool: &Path,
    mut announce: impl FnMut(&RelPath, &Entry) -> Result<(), WorkspaceError>,
) -> Result<BlobPack, WorkspaceError> {
    let source = Root::open(root)?;
    let mut by_hash: HashMap<[u8; 32], Vec<(&RelPath, &Entry)>> = HashMap::new();
    // The other names (hard links) of each file that has some.
    let mut other_names: HashMap<&RelPath, Vec<(&RelPath, &Entry)>> = HashMap::new();
    for (path, entry) in &manifest.entries {
        if let Entry::File { hash, link, .. } = entry {
            by_hash.entry(*hash.as_bytes()).or_default().push((path, entry));
            if let Some(first) = link {
                other_names.entry(first).or_default().push((path, entry));
            }
        }
    }
    let mut announced: HashSet<&RelPath> = HashSet::new();
    let mut builder = BlobWriter::new(out, format).map_err(WorkspaceError::io(spool))?;
    let mut sent = BTreeSet::new();
    let mut report = BlobPack::default();
    for wanted in hashes.iter().map(|hash| *hash.as_bytes()).collect::<BTreeSet<_>>() {
        // Read by the scan that named it, and kept as read: not read again.
        if let Some(bytes) =
            by_hash.contains_key(&wanted).then(|| super::content_memo::get(&blake3::Hash::from_bytes(wanted))).flatten()
        {
            builder
                .append(&blake3::Hash::from_bytes(wanted), bytes.len() as u64, &bytes[..])
                .map_err(WorkspaceError::io(spool))?;
            sent.insert(wanted);
            continue;
        }
        // A name of this content found gone: another name may still hold it.
        let mut vanished = None;
        for (path, entry) in by_hash.get(&wanted).map(Vec::as_slice).unwrap_or_default() {
            let Entry::File { mode, link, .. } = entry else { continue };
            if announced.contains(path) {
                // Another name of a file found changed: announced with it.
                continue;
            }
            let content = match read_present(&source, path, spool) {
                Ok(content) => content,
                Err(WorkspaceError::Vanished { path }) => {
                    vanished.get_or_insert(path);
                    continue;
                }
                Err(error) => return Err(error),
            };
            let hash = *content.hash.as_bytes();
            let amended = hash != wanted;
            if amended {
                let new = Entry::File {
                    mode: *mode,
                    size: content.size,
                    hash: content.hash,
                    mtime: content.mtime,
                    link: link.clone(),
                };
                announce(path, &new)?;
                report.amended.push(((*path).clone(), new));
                // Its other names hold what it holds now: the agent links them to it — those
                // still names of the file read (one the link was broken for since keeps what it
                // holds, and is read in its own right).
                for (other, entry) in other_names.get(path).map(Vec::as_slice).unwrap_or_default() {
                    let Entry::File { mode, link, .. } = entry else { continue };
                    let same_file =
                        source.lstat(other)?.is_some_and(|stat| (stat.stamp.dev, stat.stamp.ino) == content.identity);
                    if !same_file {
                        // No longer a name of it (the link was broken since): sent as it is
                        // now, a file of its own, its content after its announcement.
                        let own = read_present(&source, other, spool)?;
                        let alone =
                            Entry::File { mode: *mode, size: own.size, hash: own.hash, mtime: own.mtime, link: None };
                        announce(other, &alone)?;
                        announced.insert(other);
                        report.amended.push(((*other).clone(), alone));
                        sent.insert(*own.hash.as_bytes());
                        builder
                            .append(&own.hash, own.size, own.reader().map_err(WorkspaceError::io(spool))?)
                            .map_err(WorkspaceError::io(root.join(other.as_path())))?;
                        continue;
                    }
                    let theirs = Entry::File {
                        mode: *mode,
                        size: content.size,
                        hash: content.hash,
                        mtime: content.mtime,
                        link: link.clone(),
                    };
                    announce(other, &theirs)?;
                    announced.insert(other);
                    report.amended.push(((*other).clone(), theirs));
                }
            }
            // An amended file's content follows its announcement, even if it went before.
            if sent.insert(hash) || amended {
                builder
                    .append(&content.hash, content.size, content.reader().map_err(WorkspaceError::io(spool))?)
                    .map_err(WorkspaceError::io(root.join(path.as_path())))?;
            }
            if !amended {
                break;
            }
        }
        // Gone, and no other name held it as the snapshot saw it: the task cannot be given the
        // workspace the snapshot named.
        if let Some(path) = vanished
            && !sent.contains(&wanted)
        {
            return Err(WorkspaceError::Vanished { path });
        }
    }
    builder.finish().map_err(WorkspaceError::io(spool))?;
    report.sent = sent.len() as u64;
    Ok(report)
}

/// A file's content as read once.
struct ReadOnce {
    size: u64,
    hash: blake3::Hash,
    mtime: Timestamp,
    /// The file read (device, inode): its other names are the same file only while they
    /// still name this one.
    identity: (u64, u64),
    data: ReadData,
}

enum ReadData {
    Memory(Vec<u8>),
    Spool(std::fs::File),
}

impl ReadOnce {
    fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match &self.data {
            ReadData::Memory(bytes) => Box::new(&bytes[..]),
            ReadData::Spool(file) => {
                let mut file = file.try_clone()?;
                std::io::Seek::rewind(&mut file)?;
                Box::new(file)
            }
        })
    }
}

/// [`read_once`], a file found gone — removed, renamed away, replaced by a link or a
/// directory, or a directory on its way gone or replaced — said as [`WorkspaceError::Vanished`].
fn read_present(root: &Root, path: &RelPath, spool: &Path) -> Result<ReadOnce, WorkspaceError> {
    use nix::libc::{EISDIR, ELOOP, ENOENT, ENOTDIR};
    read_once(root, path, spool).map_err(|error| match &error {
        WorkspaceError::UnsafeEntry { .. } => WorkspaceError::Vanished { path: root.display(path) },
        WorkspaceError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(ENOENT | ENOTDIR | ELOOP | EISDIR)) =>
        {
            WorkspaceError::Vanished { path: root.display(path) }
        }
        _ => error,
    })
}

fn read_once(root: &Root, path: &RelPath, spool: &Path) -> Result<ReadOnce, WorkspaceError> {
    let full = root.display(path);
    let mut file = root.open_file(path)?;
    let size_hint = file.metadata().map_err(WorkspaceError::io(&full))?.len();
    let mut hasher = blake3::Hasher::new();
    let data = if size_hint <= READ_IN_MEMORY {
        let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(WorkspaceError::io(&full))?;
        hasher.update(&bytes);
        ReadData::Memory(bytes)
    } else {
        let mut spooled = tempfile::tempfile_in(spool).map_err(WorkspaceError::io(spool))?;
        let mut writer = HashingWriter { inner: &mut spooled, hasher: blake3::Hasher::new() };
        std::io::copy(&mut file, &mut writer).map_err(WorkspaceError::io(&full))?;
        hasher = writer.hasher;
        ReadData::Spool(spooled)
    };
    let size = match &data {
        ReadData::Memory(bytes) => bytes.len() as u64,
        ReadData::Spool(file) => file.metadata().map_err(WorkspaceError::io(spool))?.len(),
    };
    let meta = file.metadata().map_err(WorkspaceError::io(&full))?;
    use std::os::unix::fs::MetadataExt;
    let mtime = Timestamp::new(meta.mtime(), meta.mtime_nsec());
    Ok(ReadOnce { size, hash: hasher.finalize(), mtime, identity: (meta.dev(), meta.ino()), data })
}
