//! A workspace's content at one moment: every entry with its kind, mode, modification time
//! and content hash, by its path as bytes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::WorkspaceError;
use super::beneath::{Kind, Root, Stamp, Stat};
use super::filter::Filter;
use super::rel_path::{PathMap, RelPath};
use super::timestamp::Timestamp;

/// Permission bits a workspace carries: all twelve.
pub const MODE_MASK: u32 = 0o7777;

/// setuid and setgid: on files they change who a program runs as, so they travel only where a
/// pipeline opts in (`workspace = { setuid = true }`); on directories they are carried always.
pub const SETID_BITS: u32 = 0o6000;

/// One workspace entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        mode: u32,
        mtime: Timestamp,
    },
    File {
        mode: u32,
        size: u64,
        hash: blake3::Hash,
        mtime: Timestamp,
        /// Another name of the same file: the first path (in manifest order) of the hard-link
        /// group this file belongs to, when that is not this path. Every member carries the
        /// group's content, mode and time too.
        link: Option<RelPath>,
    },
    /// A link is data: its target is kept as it is, whatever it points at.
    Symlink {
        target: Vec<u8>,
        mtime: Timestamp,
    },
    /// A named pipe: nothing but its name and mode.
    Fifo {
        mode: u32,
        mtime: Timestamp,
    },
}

impl Entry {
    /// Whether `other` differs from `self` in anything a task's change carries: a directory's
    /// mode and time; a pipe's mode and time; a file's content, mode, time and hard-link group;
    /// a link's target and time. (A directory's time is what the task left it at — moved by
    /// the entries it made or removed there, or set — as a run here would leave it.)
    pub fn same_as(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Dir { mode: a, mtime: t }, Entry::Dir { mode: b, mtime: u }) => a == b && t == u,
            (Entry::Fifo { mode: a, mtime: t }, Entry::Fifo { mode: b, mtime: u }) => a == b && t == u,
            (Entry::Symlink { target: a, mtime: t }, Entry::Symlink { target: b, mtime: u }) => a == b && t == u,
            (a @ Entry::File { .. }, b @ Entry::File { .. }) => a == b,
            _ => false,
        }
    }

    /// The same entry in content (kind, content, mode, link target), times and hard-link
    /// groups aside: what one path, looked at alone, shows.
    pub fn same_content(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::File { mode: m1, size: s1, hash: h1, .. }, Entry::File { mode: m2, size: s2, hash: h2, .. }) => {
                m1 == m2 && s1 == s2 && h1 == h2
            }
            (Entry::Dir { mode: a, .. }, Entry::Dir { mode: b, .. }) => a == b,
            (Entry::Symlink { target: a, .. }, Entry::Symlink { target: b, .. }) => a == b,
            _ => self.same_as(other),
        }
    }

    /// The same bytes (files) or target (links): a change of this entry into `other` is a
    /// change of its mode or time only, made in place (chmod, utimensat).
    pub fn same_data(&self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::File { size: s1, hash: h1, link: l1, .. }, Entry::File { size: s2, hash: h2, link: l2, .. }) => {
                s1 == s2 && h1 == h2 && l1 == l2
            }
            (Entry::Fifo { .. }, Entry::Fifo { .. }) => true,
            _ => false,
        }
    }

    pub fn mtime(&self) -> Timestamp {
        match self {
            Entry::Dir { mtime, .. }
            | Entry::File { mtime, .. }
            | Entry::Symlink { mtime, .. }
            | Entry::Fifo { mtime, .. } => *mtime,
        }
    }

    /// Permission bits (none for a symlink).
    pub fn mode(&self) -> Option<u32> {
        match self {
            Entry::Dir { mode, .. } | Entry::File { mode, .. } | Entry::Fifo { mode, .. } => Some(*mode),
            Entry::Symlink { .. } => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Entry::Dir { .. } => "a directory",
            Entry::File { .. } => "a file",
            Entry::Symlink { .. } => "a symlink",
            Entry::Fifo { .. } => "a named pipe",
        }
    }
}

/// Every entry of a workspace by relative path, parents before children, and — for the
/// side that scanned it — each entry's identity, to tell later whether it is still untouched.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub entries: BTreeMap<RelPath, Entry>,
    /// Local only, never sent: identities as scanned.
    pub stamps: PathMap<RelPath, Stamp>,
    /// Local only: when the scan began. An identity only proves an entry untouched if it was
    /// last modified well before then (git's "racily clean" rule): on a filesystem with coarse
    /// times, an edit in the same second keeps the same mtime.
    pub scanned_at: Option<Timestamp>,
    /// Local only: the time the tree's own filesystem gave a change at a moment after every
    /// identity here was recorded and before anything but this process could change the tree
    /// (see [`super::fs_clock`]): an entry last changed strictly before it is settled, with no
    /// margin. None where not read.
    pub settled_before: Option<Timestamp>,
    /// Local only: what the scan found but a workspace does not carry (sockets, devices).
    pub skipped: Vec<(RelPath, Kind)>,
    /// Local only: what the scan's rules left out (what a kept tree holds beyond its entries).
    pub excluded: Vec<RelPath>,
    /// The directory's own mode and time (no entry: sent beside the entries; see
    /// [`super::root_meta`]). None where unknown.
    pub root: Option<super::root_meta::RootMeta>,
    /// Local only: which directory was scanned (device, inode) — an apply against this
    /// manifest refuses another one found at the same path since (the workspace moved away
    /// and something else put in its place while the task ran).
    pub root_id: Option<(u64, u64)>,
}

impl PartialEq for Manifest {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for Manifest {}

impl Manifest {
    /// Walks `root`, leaving out what `filter` excludes, and sockets and devices, which a
    /// workspace does not carry (they are listed in `skipped`). Files that are hard links of
    /// each other are one group.
    pub fn scan(root: &Path, filter: &Filter) -> Result<Self, WorkspaceError> {
        Self::scan_known(root, filter, None)
    }

    /// [`Manifest::scan`], taking the content of a file from `known` (an earlier scan or build
    /// of the same tree, with identities) instead of reading it again when its identity proves
    /// it untouched since.
    pub fn scan_known(root: &Path, filter: &Filter, known: Option<&Manifest>) -> Result<Self, WorkspaceError> {
        Ok(Self::scan_seeing(root, filter, known, None)?.0)
    }

    /// [`Manifest::scan_known`] of an agent's tree, `watch` set on each directory before it is
    /// listed: also what the scan saw of every entry, which the next task of the tree plans
    /// from while the watch says nothing changed ([`super::tree_watch`]).
    pub fn scan_watched(
        root: &Path,
        filter: &Filter,
        known: Option<&Manifest>,
        mut watch: super::tree_watch::TreeWatch,
    ) -> Result<(Self, super::tree_watch::WatchedTree), WorkspaceError> {
        let (manifest, seen) = Self::scan_seeing(root, filter, known, Some(&mut watch))?;
        let left_out = !manifest.excluded.is_empty();
        Ok((manifest, super::tree_watch::WatchedTree { watch, seen: seen.unwrap_or_default(), left_out }))
    }

    fn scan_seeing(
        root: &Path,
        filter: &Filter,
        known: Option<&Manifest>,
        watch: Option<&mut super::tree_watch::TreeWatch>,
    ) -> Result<(Self, Option<Seen>), WorkspaceError> {
        let mut manifest = Self { scanned_at: Some(super::fs_clock::scan_begins(root)), ..Self::default() };
        let mut seen = watch.is_some().then(Vec::new);
        // Before the walk: what the root is as the task (or anyone) left it, not as reading
        // it made it (reading changes no time that matters here: only the access time).
        manifest.root = super::root_meta::RootMeta::of(root);
        manifest.root_id = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(root).ok().map(|meta| (meta.dev(), meta.ino()))
        };
        let listing = super::tree_walk::list_watched(root, Some(filter), watch)?;
        manifest.excluded = listing.excluded;
        // Each thread follows `known` in the walk's order.
        let looked = super::tree_walk::look_at_each_with(
            root,
            &listing.paths,
            || known.map(|known| (known, super::in_order::InOrder::new(&known.entries))),
            |known, tree, path, stat| Ok(look(tree, path, stat, known.as_mut())?.map(|looked| (stat, looked))),
        )?;
        if let Some(seen) = seen.as_mut() {
            seen.reserve(listing.paths.len());
        }
        manifest.stamps.reserve(listing.paths.len());
        let mut inodes = Inodes::default();
        // Entries in walk order, made a map at once: a bulk build from (nearly) sorted input
        // instead of a search per insert.
        let mut found = Vec::with_capacity(listing.paths.len());
        let tree = Root::open(root)?;
        for (path, looked) in listing.paths.into_iter().zip(looked) {
            let looked = looked.map(|(stat, looked)| {
                if let Some(seen) = seen.as_mut() {
                    seen.push((path.clone(), stat));
                }
                looked
            });
            let (entry, stamp) = match looked {
                None => continue,
                Some(Looked::Skipped(kind)) => {
                    tracing::debug!(%path, kind = kind.name(), "not carried");
                    manifest.skipped.push((path, kind));
                    continue;
                }
                Some(Looked::Entry(entry, stamp)) => (entry, stamp),
                // A file with other names: read once for all of them, here, in order.
                Some(Looked::Linked { stat, known }) => {
                    let inode = (stat.stamp.dev, stat.stamp.ino);
                    let entry = match inodes.hashed.get(&inode).cloned().or(known) {
                        Some(entry) => entry,
                        None => match hash_file(&tree, &path, &stat)? {
                            Some(entry) => {
                                inodes.hashed.insert(inode, entry.clone());
                                entry
                            }
                            // Gone since it was looked at: not a member of any group.
                            None if tree.lstat(&path)?.is_none() => continue,
                            // Replaced: never left out (it would read as deleted).
                            None => return Err(kept_changing(&tree, &path)),
                        },
                    };
                    // A member only once it is an entry: a group's first path is one.
                    inodes.groups.entry(inode).or_default().push(path.clone());
                    (entry, stat.stamp)
                }
            };
            manifest.stamps.insert(path.clone(), stamp);
            found.push((path, entry));
        }
        manifest.entries = found.into_iter().collect();
        manifest.link_groups(inodes);
        Ok((manifest, seen))
    }

    /// Marks every file of a hard-link group but the first (in manifest order) as a link to it.
    fn link_groups(&mut self, inodes: Inodes) {
        for (_, mut members) in inodes.groups {
            if members.len() < 2 {
                continue;
            }
            members.sort();
            let leader = members[0].clone();
            for member in &members[1..] {
                if let Some(Entry::File { link, .. }) = self.entries.get_mut(member) {
                    *link = Some(leader.clone());
                }
            }
        }
    }

    /// The path of each inode the manifest's identities name (a file with other names: its
    /// first in manifest order).
    pub fn paths_by_inode(&self) -> std::collections::HashMap<u64, &RelPath> {
        let mut paths = std::collections::HashMap::with_capacity(self.stamps.len());
        for path in self.entries.keys() {
            if let Some(stamp) = self.stamps.get(path) {
                paths.entry(stamp.ino).or_insert(path);
            }
        }
        paths
    }

    /// Every hard-link group: its first path and the others, in manifest order.
    pub fn hard_link_groups(&self) -> BTreeMap<&RelPath, Vec<&RelPath>> {
        let mut groups: BTreeMap<&RelPath, Vec<&RelPath>> = BTreeMap::new();
        for (path, entry) in &self.entries {
            if let Entry::File { link: Some(leader), .. } = entry {
                groups.entry(leader).or_default().push(path);
            }
        }
        groups
    }

    /// Total bytes of regular files.
    pub fn total_size(&self) -> u64 {
        self.entries.values().map(|entry| if let Entry::File { size, .. } = entry { *size } else { 0 }).sum()
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries.values().filter(|entry| matches!(entry, Entry::File { .. })).count()
    }

    /// Whether `stamp` proves that `path` is still as scanned: the same identity, last
    /// modified and last changed (ctime) well before the scan began — by more than the
    /// filesystem's clock can tell apart: a few ms where times have nanoseconds (any change
    /// moves the ctime past a clock tick), 3 s where they are whole seconds (FAT, some network
    /// filesystems), so that a change within the same tick is never taken for no change.
    pub fn untouched(&self, path: &RelPath, stamp: &Stamp) -> bool {
        self.stamps.get(path) == Some(stamp) && self.settled(stamp)
    }

    /// Whether an entry with identity `stamp` was last modified and changed well before this
    /// manifest's scan (the time half of [`Manifest::untouched`], for a caller that compared
    /// the identity already).
    pub fn settled(&self, stamp: &Stamp) -> bool {
        const FINE_MARGIN_NS: i128 = 100_000_000;
        const COARSE_MARGIN_NS: i128 = 3_000_000_000;
        let coarse = stamp.mtime.nanos == 0 && stamp.ctime.nanos == 0;
        let margin = if coarse { COARSE_MARGIN_NS } else { FINE_MARGIN_NS };
        let last = stamp.mtime.max(stamp.ctime);
        self.settled_before.is_some_and(|before| last < before)
            || self.scanned_at.is_some_and(|at| last.as_nanos() + margin <= at.as_nanos())
    }
}

/// Every entry a scan looked at, with what lstat said, in walk order.
type Seen = Vec<(RelPath, Stat)>;

/// Files with more than one name, by device and inode, as the scan meets them; and the entry
/// of the first name hashed, so the others are not read again.
#[derive(Default)]
struct Inodes {
    groups: PathMap<(u64, u64), Vec<RelPath>>,
    hashed: PathMap<(u64, u64), Entry>,
}

/// An earlier look at the same tree, and a place in its entries (looked up in walk order).
type Known<'a> = (&'a Manifest, super::in_order::InOrder<'a, Entry>);

/// What a look at one entry found.
enum Looked {
    Entry(Entry, Stamp),
    /// A file with more than one name, and its content if `known` proves it: hashed (once
    /// for all its names) after the look.
    Linked {
        stat: Stat,
        known: Option<Entry>,
    },
    /// What a workspace does not carry (sockets, devices).
    Skipped(Kind),
}

/// How many times an entry replaced by another kind while it is read (a file renamed over by
/// a link, a link by a file) is looked at again before the scan gives up on it.
const LOOKS: usize = 16;

/// The error for an entry that kept being replaced while the scan read it: never left out
/// (left out of the tree a task left, a path is a deletion carried back to the master).
fn kept_changing(tree: &Root, path: &RelPath) -> WorkspaceError {
    WorkspaceError::Refused { path: tree.display(path), reason: "kept changing while it was read".to_owned() }
}

/// Looks at one entry: its kind and identity, and a file's content — from `known` (an
/// earlier look at the same tree) when that proves the file untouched, else read and hashed.
/// An entry replaced since `stat` was taken is looked at again, as it is now; None only when
/// nothing is there any more.
fn look(
    tree: &Root,
    path: &RelPath,
    stat: Stat,
    mut known: Option<&mut Known<'_>>,
) -> Result<Option<Looked>, WorkspaceError> {
    let mut stat = stat;
    for _ in 0..LOOKS {
        if let Some(looked) = look_once(tree, path, stat, known.as_deref_mut())? {
            return Ok(Some(looked));
        }
        match tree.lstat(path)? {
            Some(now) => stat = now,
            None => return Ok(None),
        }
    }
    Err(kept_changing(tree, path))
}

/// [`look`] at the entry as `stat` saw it; None when it is no longer that (gone, or replaced).
fn look_once(
    tree: &Root,
    path: &RelPath,
    stat: Stat,
    known: Option<&mut Known<'_>>,
) -> Result<Option<Looked>, WorkspaceError> {
    let entry = match stat.kind {
        Kind::Dir => Entry::Dir { mode: stat.mode & MODE_MASK, mtime: stat.mtime },
        Kind::File => {
            let known = known.filter(|(known, _)| known.untouched(path, &stat.stamp)).and_then(|(_, entries)| {
                match entries.get(path) {
                    Some(Entry::File { size, hash, .. }) => Some(Entry::File {
                        mode: stat.mode & MODE_MASK,
                        size: *size,
                        hash: *hash,
                        mtime: stat.mtime,
                        link: None,
                    }),
                    _ => None,
                }
            });
            if stat.nlink > 1 {
                return Ok(Some(Looked::Linked { stat, known }));
            }
            match known {
                Some(entry) => entry,
                None => match hash_file(tree, path, &stat)? {
                    Some(entry) => entry,
                    None => return Ok(None),
                },
            }
        }
        Kind::Symlink => match tree.read_link(path) {
            Ok(target) => Entry::Symlink { target, mtime: stat.mtime },
            // EINVAL: no longer a link.
            Err(error) if gone(&error) || errno(&error) == Some(nix::errno::Errno::EINVAL) => return Ok(None),
            Err(error) => return Err(error),
        },
        Kind::Fifo => Entry::Fifo { mode: stat.mode & MODE_MASK, mtime: stat.mtime },
        kind @ (Kind::Socket | Kind::Device) => return Ok(Some(Looked::Skipped(kind))),
    };
    Ok(Some(Looked::Entry(entry, stat.stamp)))
}

/// Reads and hashes the file `path` seen as `stat`; None when it is no longer a regular file
/// there (gone, or replaced by a link or a fifo since it was seen).
fn hash_file(tree: &Root, path: &RelPath, stat: &Stat) -> Result<Option<Entry>, WorkspaceError> {
    let file = match tree.open_file(path) {
        Ok(file) => file,
        Err(error) if gone(&error) => return Ok(None),
        Err(error) => return Err(error),
    };
    let full = tree.display(path);
    if !file.metadata().map_err(WorkspaceError::io(&full))?.is_file() {
        return Ok(None);
    }
    // A small file a master is about to send: its bytes are kept as read (see content_memo).
    if super::content_memo::wants(stat.size) {
        let mut bytes = Vec::with_capacity(usize::try_from(stat.size).unwrap_or(0));
        (&file).take(stat.size.saturating_add(1)).read_to_end(&mut bytes).map_err(WorkspaceError::io(&full))?;
        if bytes.len() as u64 <= stat.size {
            let hash = blake3::hash(&bytes);
            super::content_memo::offer(&hash, &bytes);
            let size = bytes.len() as u64;
            return Ok(Some(Entry::File { mode: stat.mode & MODE_MASK, size, hash, mtime: stat.mtime, link: None }));
        }
        // Grown past what it was seen as: read on, as any other file.
        let (size, hash) = hash_reader(std::io::Cursor::new(bytes).chain(&file), &full)?;
        return Ok(Some(Entry::File { mode: stat.mode & MODE_MASK, size, hash, mtime: stat.mtime, link: None }));
    }
    let (size, hash) = hash_reader(file, &full)?;
    Ok(Some(Entry::File { mode: stat.mode & MODE_MASK, size, hash, mtime: stat.mtime, link: None }))
}

/// Whether `error` says the entry is no longer there as it was seen: gone, or now a link
/// (which `O_NOFOLLOW` refuses), or beneath something no longer a directory.
fn gone(error: &WorkspaceError) -> bool {
    match error {
        WorkspaceError::Io { .. } => matches!(
            errno(error),
            Some(nix::errno::Errno::ENOENT | nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR)
        ),
        WorkspaceError::UnsafeEntry { .. } => true,
        _ => false,
    }
}

fn errno(error: &WorkspaceError) -> Option<nix::errno::Errno> {
    match error {
        WorkspaceError::Io { source, .. } => source.raw_os_error().map(nix::errno::Errno::from_raw),
        _ => None,
    }
}

/// Size and BLAKE3 of everything `reader` yields: what was read, once.
pub fn hash_reader(mut reader: impl Read, path: &Path) -> Result<(u64, blake3::Hash), WorkspaceError> {
    super::buffer::with_buffer(|buf| {
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        loop {
            let read = reader.read(buf).map_err(WorkspaceError::io(path))?;
            if read == 0 {
                break;
            }
            size += read as u64;
            hasher.update(&buf[..read]);
        }
        Ok((size, hasher.finalize()))
    })
}

/// The entry at `path` beneath `root` now, with its identity; None when there is nothing
/// there (or only something a workspace does not carry). Looked at alone: a file's hard-link
/// group is not known.
pub fn entry_now(root: &Root, path: &RelPath) -> Result<Option<(Entry, Stamp)>, WorkspaceError> {
    let Some(stat) = root.lstat(path)? else { return Ok(None) };
    let entry = match stat.kind {
        Kind::Dir => Entry::Dir { mode: stat.mode & MODE_MASK, mtime: stat.mtime },
        Kind::File => {
            let file = root.open_file(path)?;
            let (size, hash) = hash_reader(file, &root.display(path))?;
            Entry::File { mode: stat.mode & MODE_MASK, size, hash, mtime: stat.mtime, link: None }
        }
        Kind::Symlink => Entry::Symlink { target: root.read_link(path)?, mtime: stat.mtime },
        Kind::Fifo => Entry::Fifo { mode: stat.mode & MODE_MASK, mtime: stat.mtime },
        Kind::Socket | Kind::Device => return Ok(None),
    };
    Ok(Some((entry, stat.stamp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// An entry swapped for another kind (rename over it, as editors and build tools do)
    /// between the look at it and the read of it is still there: the scan records what it
    /// finds, never leaves the path out (a path left out of the tree a task left is a
    /// deletion carried back to the master).
    #[test]
    fn an_entry_swapped_between_its_look_and_its_read_is_never_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, stage) = (dir.path().join("ws"), dir.path().join("stage"));
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::create_dir(&stage).expect("mkdir");
        std::fs::write(root.join("x"), "file").expect("write");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (root, stage, stop) = (root.clone(), stage, std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if swaps.is_multiple_of(2) {
                        std::os::unix::fs::symlink("file", stage.join("next")).expect("symlink");
                    } else {
                        std::fs::write(stage.join("next"), "file").expect("write");
                    }
                    std::fs::rename(stage.join("next"), root.join("x")).expect("swap");
                    swaps += 1;
                }
                swaps
            })
        };
        let mut left_out = 0;
        for _ in 0..3000 {
            match Manifest::scan(&root, &Filter::builtin()) {
                Ok(manifest) if manifest.entries.len() != 1 => left_out += 1,
                Ok(_) => {}
                Err(error) => panic!("a swap is not an error: {error}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let swaps = swapper.join().expect("swapper");
        assert!(swaps > 0);
        assert_eq!(left_out, 0, "scans that left 'x' out");
    }

    #[test]
    fn scans_files_dirs_links_of_every_kind_and_odd_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/a.txt"), "alpha").expect("write");
        std::os::unix::fs::symlink("sub/a.txt", root.join("inside")).expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", root.join("outside")).expect("symlink");
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"odd\xff")), "x").expect("write");
        std::fs::create_dir(root.join(".sloth")).expect("mkdir");
        let manifest = Manifest::scan(root, &Filter::builtin()).expect("scan");
        let paths: Vec<String> = manifest.entries.keys().map(ToString::to_string).collect();
        assert_eq!(paths, vec!["inside", "odd\\xff", "outside", "sub", "sub/a.txt"]);
        let outside = RelPath::parse(b"outside").expect("valid");
        assert!(matches!(&manifest.entries[&outside], Entry::Symlink { target, .. } if target == b"/etc/passwd"));
        assert_eq!(manifest.total_size(), 6);
    }
}
