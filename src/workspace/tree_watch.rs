//! What the scan after a task saw of its tree, kept with a watch that says what changed
//! since: the next task of the workspace plans from it, looking again only at what the watch
//! names, instead of looking at every entry (on a 20,000-file tree, a listing and 20,000
//! `lstat`s — a fifth of a warm task).
//!
//! The watch is inotify's, on every directory the scan listed, set before the directory was
//! listed. Any change made through the filesystem to an entry of the tree afterwards — a
//! write, a truncation, a mode, owner or time changed — and any opening of one (a process that
//! maps a file to write through the mapping opens it first: such writes raise no event of
//! their own) names the entry, and only the entries named are looked at again. A name made,
//! removed or renamed, a file with other names changed (the event names one of them), a queue
//! that overflowed or a directory that could not be watched sends the next task back to looking
//! at every entry. What no event reports: a write through a mapping opened before the scan —
//! by a process the task left (looked for before the tree is kept, [`super::trees`], unless it
//! kept its descriptor out of sight, in a socket's queue: as it would write into a workspace
//! here) — and a write through a name of the file outside the tree that a process of the
//! agent's user made after the scan: as it could write into the tree while a task runs (the
//! trees' directory is private to that user).

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};

use super::beneath::Stat;
use super::rel_path::RelPath;

/// Past this many events read at once, every entry is looked at (as when the queue overflows).
const MOST_EVENTS: usize = 16_384;

/// Trees of fewer entries than this are not watched: looking at all of them costs less than
/// making a watch, and closing it (a trivial task's tree has a file or two).
pub const WATCHED_FROM: usize = 512;

/// What is watched on each directory: every change to it or to an entry in it, and every
/// opening of an entry.
fn watched_events() -> AddWatchFlags {
    AddWatchFlags::IN_OPEN
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
}

/// Events after which every entry is looked at: names made, removed or renamed, a watched
/// directory gone, events lost.
fn structural() -> AddWatchFlags {
    AddWatchFlags::IN_Q_OVERFLOW
        | AddWatchFlags::IN_IGNORED
        | AddWatchFlags::IN_UNMOUNT
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
}

/// A watch on a tree's directories.
#[derive(Debug)]
pub struct TreeWatch {
    /// (Always there but while it is dropped: see [`Drop`].)
    inotify: Option<Inotify>,
    /// Every directory given was watched.
    whole: bool,
    /// Each watched directory's path in the tree (None: the tree's root).
    dirs: HashMap<WatchDescriptor, Option<RelPath>>,
}

/// Closing an inotify instance that holds watches waits for the kernel's grace period
/// (`synchronize_srcu`: milliseconds, 10 ms and more on a busy virtual machine) — on the path
/// of the task that planned from it, that was a warm task's whole plan again. Instances are
/// closed on a thread of their own.
impl Drop for TreeWatch {
    fn drop(&mut self) {
        self.release();
    }
}

/// Directory watches this process holds, over all its trees.
static WATCHES_HELD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The most directory watches this process holds at once: a quarter of what the system gives
/// each user (`fs.inotify.max_user_watches`), the rest left to the user's other programs — an
/// editor, a file manager, a build's watcher — which the kept trees of an agent with many
/// directories (thousands each, several workspaces) once left none. A tree past it is not
/// watched: its next task looks at every entry.
fn watch_budget() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let system = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .unwrap_or(8_192);
        system / 4
    })
}

/// Watches closed on the closing thread, or waiting for it.
static CLOSING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Past this many watches waiting to be closed, one is closed where it is dropped: the closing
/// thread never holds more descriptors than this, however fast watches come.
const CLOSING_AT_MOST: usize = 32;

fn close_aside(inotify: Inotify) {
    use std::sync::atomic::Ordering;
    static CLOSER: std::sync::Mutex<Option<std::sync::mpsc::Sender<Inotify>>> = std::sync::Mutex::new(None);
    if CLOSING.load(Ordering::Relaxed) >= CLOSING_AT_MOST {
        drop(inotify);
        return;
    }
    let mut closer = CLOSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let sender = closer.get_or_insert_with(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Inotify>();
        let spawned = std::thread::Builder::new().name("watch-closer".to_owned()).spawn(move || {
            for inotify in receiver {
                drop(inotify);
                CLOSING.fetch_sub(1, Ordering::Relaxed);
            }
        });
        if let Err(error) = spawned {
            tracing::debug!(%error, "no thread to close watches on: closed where they are dropped");
        }
        sender
    });
    // (Without the thread the instance comes back and is closed here.)
    CLOSING.fetch_add(1, Ordering::Relaxed);
    if let Err(std::sync::mpsc::SendError(inotify)) = sender.send(inotify) {
        CLOSING.fetch_sub(1, Ordering::Relaxed);
        *closer = None;
        drop(inotify);
    }
}

impl TreeWatch {
    /// A watch on nothing yet; None where the system gives none (no inotify, or this user's
    /// instances all taken): the next task then looks at every entry.
    pub fn new() -> Option<Self> {
        match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(inotify) => Some(Self { inotify: Some(inotify), whole: true, dirs: HashMap::new() }),
            Err(errno) => {
                tracing::debug!(%errno, "no watch on the tree: the next task looks at every entry");
                None
            }
        }
    }

    /// Watches the directory open as `dir`, at `path` in the tree (None: its root), before it
    /// is listed. One that cannot be watched (this user's watches all taken) leaves the watch
    /// partial: never trusted.
    pub fn add_dir(&mut self, dir: &impl AsFd, path: Option<&RelPath>) {
        self.add_dir_within(dir, path, watch_budget());
    }

    /// [`TreeWatch::add_dir`], this process holding at most `budget` directory watches.
    fn add_dir_within(&mut self, dir: &impl AsFd, path: Option<&RelPath>, budget: usize) {
        use std::sync::atomic::Ordering;
        if !self.whole {
            return;
        }
        let Some(inotify) = &self.inotify else { return };
        if WATCHES_HELD.load(Ordering::Relaxed) >= budget {
            tracing::debug!(budget, "the trees' watches are all taken: the next task looks at every entry");
            self.give_up();
            return;
        }
        let named = format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd());
        match inotify.add_watch(named.as_str(), watched_events()) {
            Ok(wd) => {
                if self.dirs.insert(wd, path.cloned()).is_none() {
                    WATCHES_HELD.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(errno) => {
                tracing::debug!(%errno, "a directory of the tree cannot be watched: the next task looks at every entry");
                self.give_up();
            }
        }
    }

    /// Never trusted from now on: what it watches is given back at once (a partial watch says
    /// nothing).
    fn give_up(&mut self) {
        self.whole = false;
        self.release();
    }

    /// Closes the watch, its directories' watches given back to the budget.
    fn release(&mut self) {
        WATCHES_HELD.fetch_sub(self.dirs.len(), std::sync::atomic::Ordering::Relaxed);
        self.dirs.clear();
        if let Some(inotify) = self.inotify.take() {
            close_aside(inotify);
        }
    }

    /// The entries changed or opened since each directory was watched, each named once, if
    /// that is all that happened; None when every entry must be looked at (see
    /// [`structural`], and a directory that was not watched).
    pub fn touched(&self) -> Option<BTreeSet<RelPath>> {
        self.touched_how().map(|named| named.into_keys().collect())
    }

    /// [`TreeWatch::touched`], with whether each entry was changed (true) or only opened.
    pub fn touched_how(&self) -> Option<std::collections::BTreeMap<RelPath, bool>> {
        let inotify = self.inotify.as_ref().filter(|_| self.whole)?;
        let mut named = std::collections::BTreeMap::new();
        // (Bounded: events that keep coming as fast as they are read ask for every entry.)
        let mut events_read = 0usize;
        loop {
            let events = match inotify.read_events() {
                Ok(events) => events,
                Err(nix::errno::Errno::EAGAIN) => return Some(named),
                Err(errno) => {
                    tracing::debug!(%errno, "the tree's watch cannot be read: every entry is looked at");
                    return None;
                }
            };
            events_read += events.len();
            if events_read > MOST_EVENTS {
                return None;
            }
            for event in events {
                if let Some(path) = self.named_by(&event)? {
                    let changed = event.mask != AddWatchFlags::IN_OPEN;
                    *named.entry(path).or_insert(false) |= changed;
                }
            }
        }
    }

    /// What `event` asks: None, every entry looked at; Some(None), nothing; Some(path), that
    /// entry looked at again.
    fn named_by(&self, event: &InotifyEvent) -> Option<Option<RelPath>> {
        if event.mask.intersects(structural()) {
            return None;
        }
        // A directory opened (listed): nothing changed.
        if event.mask.contains(AddWatchFlags::IN_ISDIR)
            && event.mask - AddWatchFlags::IN_ISDIR == AddWatchFlags::IN_OPEN
        {
            return Some(None);
        }
        let dir = self.dirs.get(&event.wd)?;
        Some(match (&event.name, dir) {
            // An entry of a watched directory, a directory among them.
            (Some(name), None) => Some(RelPath::from_name(name.as_encoded_bytes()).ok()?),
            (Some(name), Some(dir)) => Some(dir.join_name(name.as_encoded_bytes())),
            // A watched directory itself: its mode or time.
            (None, Some(dir)) => Some(dir.clone()),
            // The tree's root: no entry a plan looks at (the task's root is made as the
            // master's each time).
            (None, None) => None,
        })
    }
}

/// The tree as the scan after its task saw it: every entry it looked at, with what lstat said,
/// in walk order; whether its rules left anything out (not looked into); and the watch set
/// before.
#[derive(Debug)]
pub struct WatchedTree {
    pub watch: TreeWatch,
    pub seen: Vec<(RelPath, Stat)>,
    pub left_out: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(dir: &std::path::Path) -> TreeWatch {
        let mut watch = TreeWatch::new().expect("inotify");
        for sub in [None, Some("sub")] {
            let fd = std::fs::File::open(dir.join(sub.unwrap_or(""))).expect("open");
            let path = sub.map(|sub| RelPath::parse(sub.as_bytes()).expect("path"));
            watch.add_dir(&fd, path.as_ref());
        }
        watch
    }

    fn paths(names: &[&str]) -> BTreeSet<RelPath> {
        names.iter().map(|name| RelPath::parse(name.as_bytes()).expect("path")).collect()
    }

    /// Past the process's budget of watches a tree is not watched (its next task looks at every
    /// entry), and what it watched already is given back at once.
    #[test]
    fn a_tree_past_the_budget_of_watches_is_not_watched_and_holds_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let (root, sub) = (
            std::fs::File::open(dir.path()).expect("open"),
            std::fs::File::open(dir.path().join("sub")).expect("open"),
        );
        let sub_path = RelPath::parse(b"sub").expect("path");
        let mut within = TreeWatch::new().expect("inotify");
        within.add_dir_within(&root, None, usize::MAX);
        within.add_dir_within(&sub, Some(&sub_path), usize::MAX);
        assert_eq!(within.dirs.len(), 2);
        assert_eq!(within.touched(), Some(BTreeSet::new()), "watched whole");
        let mut past = TreeWatch::new().expect("inotify");
        past.add_dir_within(&root, None, usize::MAX);
        past.add_dir_within(&sub, Some(&sub_path), 0);
        assert!(past.dirs.is_empty() && past.inotify.is_none(), "what it watched is given back");
        assert_eq!(past.touched(), None, "its next task looks at every entry");
    }

    #[test]
    fn a_change_to_an_entry_names_it_a_change_of_names_asks_for_every_entry_and_a_look_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/f"), "data").expect("write");
        std::fs::write(dir.path().join("g"), "data").expect("write");
        type Change<'a> = (&'a str, &'a dyn Fn(&std::path::Path), Option<&'a [&'a str]>);
        let changes: [Change<'_>; 11] = [
            (
                "append",
                &|d| {
                    use std::io::Write;
                    let mut file = std::fs::OpenOptions::new().append(true).open(d.join("sub/f")).expect("open");
                    file.write_all(b"x").expect("write");
                },
                Some(&["sub/f"]),
            ),
            (
                "truncate",
                &|d| {
                    std::fs::File::options().write(true).open(d.join("g")).expect("open").set_len(1).expect("truncate")
                },
                Some(&["g"]),
            ),
            (
                "chmod",
                &|d| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
                },
                Some(&["sub/f"]),
            ),
            (
                "a directory's mode",
                &|d| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
                },
                Some(&["sub"]),
            ),
            // (Opened to be mapped and written through the mapping: the opening names it.)
            (
                "opened",
                &|d| drop(std::fs::File::options().read(true).write(true).open(d.join("g")).expect("open")),
                Some(&["g"]),
            ),
            ("create", &|d| std::fs::write(d.join("sub/new"), "").expect("write"), None),
            ("remove", &|d| std::fs::remove_file(d.join("sub/new")).expect("rm"), None),
            ("rename", &|d| std::fs::rename(d.join("g"), d.join("sub/g")).expect("mv"), None),
            ("mkdir", &|d| std::fs::create_dir(d.join("sub/d")).expect("mkdir"), None),
            ("rmdir", &|d| std::fs::remove_dir(d.join("sub/d")).expect("rmdir"), None),
            ("a link", &|d| std::fs::hard_link(d.join("sub/f"), d.join("sub/f2")).expect("ln"), None),
        ];
        for (name, change, named) in changes {
            let watch = watched(dir.path());
            // Listing and looking change nothing.
            std::fs::read_dir(dir.path().join("sub")).expect("list").for_each(drop);
            std::fs::symlink_metadata(dir.path().join("sub/f")).expect("stat");
            assert_eq!(watch.touched(), Some(BTreeSet::new()), "{name}: nothing before the change");
            change(dir.path());
            assert_eq!(watch.touched(), named.map(paths), "{name}");
        }
    }

    #[test]
    fn a_directory_that_could_not_be_watched_leaves_the_watch_never_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), "").expect("write");
        let mut watch = TreeWatch::new().expect("inotify");
        // A file, not a directory: refused (IN_ONLYDIR).
        watch.add_dir(&std::fs::File::open(dir.path().join("f")).expect("open"), None);
        assert_eq!(watch.touched(), None);
    }
}
