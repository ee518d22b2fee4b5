//! Extracting an archive into a fresh directory, refusing anything that could write outside it.
//!
//! Refused, naming the entry: absolute paths, `..`, writes through a symlink (however the
//! links chain), hard links to anything but a file written earlier from the same archive,
//! devices, duplicate entries, and archives past the size or entry limit (counted on the bytes
//! written, so a gzip bomb stops early). Symlinks are data: they are created as they are,
//! whatever they point at, and never followed. Named pipes are created, never opened.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use super::WorkspaceError;
use super::manifest::{Entry, MODE_MASK, Manifest, SETID_BITS};
use super::pack::{MADE_ANEW_KEY, MOVED_FROM_KEY, OWNER_GID_KEY, OWNER_UID_KEY};
use super::rel_path::{RelPath, display_bytes};
use super::timestamp::Timestamp;
use super::tree_writer::TreeWriter;

/// How much an archive may hold, and whether its files may be setuid or setgid.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
    /// Files keep their setuid and setgid bits (a pipeline's `workspace.setuid`); otherwise
    /// the bits are cleared and the files named.
    pub setid_files: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 16 * 1024 * 1024 * 1024, max_entries: 2_000_000, setid_files: false }
    }
}

impl Limits {
    /// These limits, carrying setuid and setgid bits of files or not.
    pub fn with_setid_files(self, setid_files: bool) -> Self {
        Self { setid_files, ..self }
    }
}

/// What was extracted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    /// The entries the archive named, as written (file hashes of the bytes written).
    pub manifest: Manifest,
    /// Files whose setuid or setgid bits were cleared (the limits do not carry them).
    pub stripped: Vec<RelPath>,
    /// Setuid and setgid files the archive says belong to another owner or group than its
    /// maker's (a task gave them away): see [`GivenOwner`].
    pub given: BTreeMap<RelPath, GivenOwner>,
    /// Files the archive says the task made anew where one was (removed and created again,
    /// or another moved over it), rather than wrote into: see `pack::MADE_ANEW_KEY`.
    pub made_anew: std::collections::BTreeSet<RelPath>,
    /// Files and directories the archive says the task moved where another was, and the path
    /// each had when it started: see `pack::MOVED_FROM_KEY`.
    pub moved_from: BTreeMap<RelPath, RelPath>,
}

/// The owner (for a setuid file) and group (for a setgid file) an archive says a file was
/// given where they are not its maker's own. Where they cannot be given, the bit goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GivenOwner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

fn refuse(entry: &[u8], reason: impl Into<String>) -> WorkspaceError {
    WorkspaceError::UnsafeEntry { entry: display_bytes(entry), reason: reason.into() }
}

fn corrupt(entry: &[u8]) -> impl Fn(std::io::Error) -> WorkspaceError + '_ {
    move |error| WorkspaceError::Corrupt(format!("{}: {error}", display_bytes(entry)))
}

/// Extracts the tar + gzip stream `reader` into `dest`, an existing empty directory.
pub fn unpack(reader: impl Read, dest: &Path, limits: &Limits) -> Result<UnpackStats, WorkspaceError> {
    let (stats, writer) = extract(reader, dest, limits)?;
    writer.finish()?;
    Ok(stats)
}

/// Like [`unpack`], leaving directories as they are while being filled (0o700): for staging,
/// whose entries are renamed out (a read-only directory would keep them in). The manifest says
/// what the modes should be.
pub fn unpack_staged(reader: impl Read, dest: &Path, limits: &Limits) -> Result<UnpackStats, WorkspaceError> {
    Ok(extract(reader, dest, limits)?.0)
}

fn extract(reader: impl Read, dest: &Path, limits: &Limits) -> Result<(UnpackStats, TreeWriter), WorkspaceError> {
    // (Metadata entries bounded before the tar reader takes one whole: see `tar_guard`.)
    let mut archive = tar::Archive::new(super::tar_guard::MetadataBounded::new(GzDecoder::new(reader)));
    let mut writer = TreeWriter::new(dest, *limits)?;
    let mut stats = UnpackStats::default();
    let entries = archive.entries().map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        stats.entries += 1;
        let path = RelPath::parse(&raw).map_err(|reason| refuse(&raw, reason))?;
        let mode = entry.header().mode().map_err(corrupt(&raw))? & MODE_MASK;
        let Records { mtime, given, made_anew, moved_from } = entry_records(&mut entry).map_err(corrupt(&raw))?;
        if let Some(from) = moved_from {
            stats.moved_from.insert(path.clone(), from);
        }
        let written = match kind {
            tar::EntryType::Directory => {
                writer.dir(&path, mode, mtime)?;
                if made_anew {
                    stats.made_anew.insert(path.clone());
                }
                Entry::Dir { mode, mtime }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let Entry::File { mode: held, size, hash, .. } =
                    writer.file(&path, mode, mtime, &mut entry, corrupt(&raw))?
                else {
                    return Err(refuse(&raw, "not written as a file"));
                };
                // What the archive asked for (where the entry goes, it is set again), but for
                // bits the limits do not carry.
                let mode = if limits.setid_files { mode } else { mode & (held | !SETID_BITS) };
                let given = GivenOwner {
                    uid: given.uid.filter(|_| mode & 0o4000 != 0),
                    gid: given.gid.filter(|_| mode & 0o2000 != 0),
                };
                if given != GivenOwner::default() {
                    stats.given.insert(path.clone(), given);
                }
                if made_anew {
                    stats.made_anew.insert(path.clone());
                }
                Entry::File { mode, size, hash, mtime, link: None }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|target| target.into_owned())
                    .ok_or_else(|| refuse(&raw, "hard link without a target"))?;
                let to =
                    RelPath::parse(&target).map_err(|reason| refuse(&raw, format!("hard link target: {reason}")))?;
                let Some(written) = stats.manifest.entries.get(&to).cloned() else {
                    return Err(refuse(
                        &raw,
                        format!("a hard link to '{to}', which the archive does not hold before it"),
                    ));
                };
                let leader = match &written {
                    Entry::File { link: Some(leader), .. } => leader.clone(),
                    _ => to,
                };
                writer.hard_link(&path, &leader, &written)?
            }
            tar::EntryType::Fifo => writer.fifo(&path, mode, mtime)?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|target| target.into_owned())
                    .ok_or_else(|| refuse(&raw, "symlink without a target"))?;
                writer.symlink(&path, &target, mtime)?;
                Entry::Symlink { target, mtime }
            }
            tar::EntryType::Char | tar::EntryType::Block => return Err(refuse(&raw, "device files are not allowed")),
            other => return Err(refuse(&raw, format!("unsupported entry type {other:?}"))),
        };
        stats.manifest.entries.insert(path, written);
    }
    stats.bytes = writer.bytes();
    stats.stripped = writer.stripped().to_vec();
    Ok((stats, writer))
}

/// The entry's modification time — the PAX `mtime` (with nanoseconds) when there is one, else
/// the header's seconds — the owner it says a setuid or setgid file was given, and whether it
/// says the file was made anew.
fn entry_records<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::io::Result<Records> {
    let mut records = Records::default();
    let mut mtime = None;
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            if extension.key_bytes() == MOVED_FROM_KEY.as_bytes() {
                let invalid = |reason: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, reason.to_owned());
                let from = crate::hex::decode(extension.value_bytes()).ok_or_else(|| invalid("a path not in hex"))?;
                let from = RelPath::parse(&from).map_err(invalid)?;
                records.moved_from = Some(from);
                continue;
            }
            let Ok(value) = std::str::from_utf8(extension.value_bytes()) else { continue };
            match extension.key_bytes() {
                b"mtime" => mtime = Timestamp::from_pax(value).or(mtime),
                key if key == OWNER_UID_KEY.as_bytes() => records.given.uid = value.parse().ok(),
                key if key == OWNER_GID_KEY.as_bytes() => records.given.gid = value.parse().ok(),
                key if key == MADE_ANEW_KEY.as_bytes() => records.made_anew = value == "1",
                _ => {}
            }
        }
    }
    records.mtime = match mtime {
        Some(mtime) => mtime,
        None => Timestamp { secs: i64::try_from(entry.header().mtime()?).unwrap_or(i64::MAX), nanos: 0 },
    };
    Ok(records)
}

/// What an entry's PAX records say beyond its header.
#[derive(Default)]
struct Records {
    mtime: Timestamp,
    given: GivenOwner,
    made_anew: bool,
    moved_from: Option<RelPath>,
}

/// The compressed archives read ahead to tell an empty one (a task that changed nothing):
/// gzip of an empty tar is a few dozen bytes.
const PEEK_BYTES: usize = 4096;

/// Whether `changes` is an archive without entries, and a reader of all of it. Undecidable
/// (longer than [`PEEK_BYTES`], or not a well-formed archive) counts as not empty: the apply
/// then reads it, and says what is wrong with it.
pub(super) fn peek_empty(mut changes: impl Read) -> std::io::Result<(bool, impl Read)> {
    let mut head = Vec::with_capacity(PEEK_BYTES);
    (&mut changes).take(PEEK_BYTES as u64 + 1).read_to_end(&mut head)?;
    let empty = head.len() <= PEEK_BYTES && {
        let mut tar = Vec::new();
        let decoded = flate2::read::GzDecoder::new(&head[..]).take(PEEK_BYTES as u64 * 4).read_to_end(&mut tar);
        decoded.is_ok() && tar.len() >= 1024 && tar.iter().all(|byte| *byte == 0)
    };
    Ok((empty, std::io::Cursor::new(head).chain(changes)))
}
