//! Files a kept tree moves instead of writing again: a large file whose path the manifest no
//! longer names but whose content it names elsewhere (a file or a directory renamed on the
//! master) is held aside before anything is removed, then renamed into the path that wants it.

use std::collections::{HashMap, HashSet};

use super::super::WorkspaceError;
use super::super::beneath::{Kind, Root, Stat};
use super::super::blobs::{BlobCache, Build};
use super::super::manifest::{Entry, Manifest};
use super::super::rel_path::{PathMap, PathSet, RelPath};

/// A manifest's hard-link groups, by leader.
type Groups<'a> = std::collections::BTreeMap<&'a RelPath, Vec<&'a RelPath>>;

/// Files smaller than this are written from the cache rather than moved from where the tree
/// has them (a copy costs less than keeping track).
const MOVED_FROM: u64 = 64 * 1024;

/// The name, at the tree's root, of the directory files to move wait in: one no manifest holds
/// (the names of an apply's directories are left out of every workspace).
const HOLD: &[u8] = b".sloth-staging-reuse";

/// The moves a plan makes.
#[derive(Debug, Default)]
pub(super) struct Moves {
    /// Files to move, with their content and what the plan saw of them.
    planned: Vec<(RelPath, blake3::Hash, Stat)>,
    /// Large contents the manifest names, with how many of its paths (not a hard-link group's
    /// leader) name each and are not yet given a file to move.
    open: HashMap<[u8; 32], usize>,
    /// The hold directory is taken by something a task left: nothing is moved (its files are
    /// written, and asked for with the rest).
    blocked: bool,
    /// The manifest's hard-link leaders (written by their followers' links: never moved in).
    leaders: PathSet<RelPath>,
    /// Contents the moves give every path that needs them: not asked for.
    covered: HashSet<[u8; 32]>,
}

impl Moves {
    /// No move planned yet for `target`, `groups` its hard-link groups by leader, `listed` every
    /// path of the tree.
    pub(super) fn new<'a>(
        target: &Manifest,
        groups: &Groups<'_>,
        mut listed: impl Iterator<Item = &'a RelPath>,
    ) -> Self {
        let mut open = HashMap::new();
        for (path, entry) in &target.entries {
            if let Entry::File { hash, size, link: None, .. } = entry
                && *size >= MOVED_FROM
                && !groups.contains_key(path)
            {
                *open.entry(*hash.as_bytes()).or_default() += 1;
            }
        }
        let blocked = listed.any(|path| path.as_bytes() == HOLD);
        Self { open, blocked, ..Self::default() }
    }

    /// The file at `path`, which goes, as the plan saw it (`stat`, one name), holding `content`
    /// when known: planned to move if a path of the manifest still wants that content.
    pub(super) fn offer(&mut self, path: &RelPath, content: Option<blake3::Hash>, stat: &Stat) {
        let Some(hash) = content.filter(|_| !self.blocked && stat.size >= MOVED_FROM) else { return };
        if let Some(count) = self.open.get_mut(hash.as_bytes()).filter(|count| **count > 0) {
            *count -= 1;
            self.planned.push((path.clone(), hash, *stat));
        }
    }

    /// Once every entry is planned (`keep`: what stays): which contents the moves give every
    /// path that needs them.
    pub(super) fn finish<K>(&mut self, target: &Manifest, keep: &PathMap<RelPath, K>, groups: &Groups<'_>) {
        if self.planned.is_empty() {
            return;
        }
        self.leaders = groups.keys().map(|leader| (*leader).clone()).collect();
        let mut moving: HashMap<[u8; 32], usize> = HashMap::new();
        for (_, hash, _) in &self.planned {
            *moving.entry(*hash.as_bytes()).or_default() += 1;
        }
        // Paths that need each content; one a moved file cannot take (a leader) needs the cache.
        let mut wanted: HashMap<[u8; 32], usize> = HashMap::new();
        let mut from_cache: HashSet<[u8; 32]> = HashSet::new();
        for (path, entry) in &target.entries {
            if let Entry::File { hash, link: None, .. } = entry
                && !keep.contains_key(path)
            {
                *wanted.entry(*hash.as_bytes()).or_default() += 1;
                if self.leaders.contains(path) {
                    from_cache.insert(*hash.as_bytes());
                }
            }
        }
        self.covered = moving
            .into_iter()
            .filter(|(hash, moving)| {
                !from_cache.contains(hash) && wanted.get(hash).is_some_and(|wanted| moving >= wanted)
            })
            .map(|(hash, _)| hash)
            .collect();
    }

    /// Whether the moves give every path that needs `hash` its content.
    pub(super) fn covers(&self, hash: &blake3::Hash) -> bool {
        self.covered.contains(hash.as_bytes())
    }

    /// Before anything is removed: each planned file still as the plan saw it goes aside.
    pub(super) fn hold_aside(self, root: &Root) -> Result<Held, WorkspaceError> {
        let hold = RelPath::from_name(HOLD).expect("a valid name");
        let mut held = Held { by_content: HashMap::new(), leaders: self.leaders, hold: None };
        // (One made there since the plan: its files are written, asked for again.)
        if self.planned.is_empty() || root.lstat(&hold)?.is_some() {
            return Ok(held);
        }
        root.mkdir(&hold, 0o700, false)?;
        for (i, (path, hash, planned)) in self.planned.into_iter().enumerate() {
            // (A write since, on the agent's host, is not moved.)
            root.forget();
            if root.lstat(&path)?.is_none_or(|now| now.stamp != planned.stamp) {
                continue;
            }
            let aside = hold.join_name(i.to_string().as_bytes());
            root.rename_from(root, &path, &aside, true)?;
            held.by_content.entry(*hash.as_bytes()).or_default().push((aside, planned));
        }
        held.hold = Some(hold);
        Ok(held)
    }
}

/// What [`Held::place`] did with a path.
pub(super) enum Placed {
    /// A held file is there now.
    Moved,
    /// The held file for it was not as planned: its content was written from the cache.
    Written,
    /// No held file is for it.
    Nothing,
}

/// Files held aside for the paths that want their contents.
pub(super) struct Held {
    by_content: HashMap<[u8; 32], Vec<(RelPath, Stat)>>,
    leaders: PathSet<RelPath>,
    /// The directory they wait in, once made.
    hold: Option<RelPath>,
}

impl Held {
    /// Gives `path` (the manifest's `entry`, a file) a held file of its content, if one is
    /// there for it. A file that is not the same one with the same bytes after the move (a
    /// rename moves only its ctime) goes, and its content is written from `cache` as any other.
    pub(super) fn place(
        &mut self,
        build: &mut Build,
        path: &RelPath,
        entry: &Entry,
        cache: &BlobCache,
    ) -> Result<Placed, WorkspaceError> {
        let Entry::File { hash, link: None, .. } = entry else { return Ok(Placed::Nothing) };
        if self.leaders.contains(path) {
            return Ok(Placed::Nothing);
        }
        let Some((aside, planned)) = self.by_content.get_mut(hash.as_bytes()).and_then(Vec::pop) else {
            return Ok(Placed::Nothing);
        };
        let root = build.writer_mut().root();
        root.forget();
        root.rename_from(root, &aside, path, true)?;
        let same = |now: &Stat| {
            now.kind == Kind::File
                && (now.stamp.dev, now.stamp.ino, now.stamp.size, now.stamp.mtime)
                    == (planned.stamp.dev, planned.stamp.ino, planned.stamp.size, planned.stamp.mtime)
        };
        match root.lstat(path)? {
            Some(stat) if same(&stat) => {
                let (held, stamp) = build.writer_mut().keep(path, entry, &stat)?;
                build.insert(path.clone(), held);
                build.stamp(path.clone(), stamp);
                Ok(Placed::Moved)
            }
            _ => {
                root.unlink(path)?;
                cache.write_into(build, path, entry)?;
                Ok(Placed::Written)
            }
        }
    }

    /// Removes what no path took, and the directory they waited in.
    pub(super) fn clear(self, root: &Root) -> Result<(), WorkspaceError> {
        let Some(hold) = self.hold else { return Ok(()) };
        root.forget();
        for (aside, _) in self.by_content.into_values().flatten() {
            root.unlink(&aside)?;
        }
        root.rmdir(&hold).map(|_| ())
    }
}
