//! What the scan after a task saw of its tree, kept with a watch that proves nothing changed
//! since: the next task of the workspace plans from it instead of looking at every entry
//! again (on a 20,000-file tree, a listing and 20,000 `lstat`s — a fifth of a warm task).
//!
//! The watch is inotify's, on every directory the scan listed, set before the directory was
//! listed: any change made through the filesystem to an entry of the tree afterwards — a
//! write, a truncation, a mode, owner or time changed, a name made, removed or renamed, a
//! directory made or removed — queues an event, and an event (or a queue that overflowed, or
//! a directory that could not be watched) sends the next task back to the full look. What no
//! event reports: a write through a shared mapping of a process that mapped a file before the
//! scan (a process the task left is looked for before the tree is kept: [`super::trees`]), and
//! a write through a name of the file outside the tree that another process of the agent's
//! user made after the scan (the trees' directory is private: that user can write into any
//! tree at any time, a task's tree included).

use std::os::fd::{AsFd, AsRawFd};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::beneath::Stat;
use super::rel_path::RelPath;

/// What is watched on each directory: every change to it or to an entry in it.
fn changes() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
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

/// A watch on a tree's directories.
#[derive(Debug)]
pub struct TreeWatch {
    /// (Always there but while it is dropped: see [`Drop`].)
    inotify: Option<Inotify>,
    /// Every directory given was watched.
    whole: bool,
}

/// Closing an inotify instance that holds watches waits for the kernel's grace period
/// (`synchronize_srcu`: milliseconds, 10 ms and more on a busy virtual machine) — on the path
/// of the task that planned from it, that was a warm task's whole plan again. Instances are
/// closed on a thread of their own.
impl Drop for TreeWatch {
    fn drop(&mut self) {
        if let Some(inotify) = self.inotify.take() {
            close_aside(inotify);
        }
    }
}

fn close_aside(inotify: Inotify) {
    static CLOSER: std::sync::Mutex<Option<std::sync::mpsc::Sender<Inotify>>> = std::sync::Mutex::new(None);
    let mut closer = CLOSER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let sender = closer.get_or_insert_with(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<Inotify>();
        let spawned = std::thread::Builder::new().name("watch-closer".to_owned()).spawn(move || {
            for inotify in receiver {
                drop(inotify);
            }
        });
        if let Err(error) = spawned {
            tracing::debug!(%error, "no thread to close watches on: closed where they are dropped");
        }
        sender
    });
    // (Without the thread the instance comes back and is closed here.)
    if let Err(std::sync::mpsc::SendError(inotify)) = sender.send(inotify) {
        *closer = None;
        drop(inotify);
    }
}

impl TreeWatch {
    /// A watch on nothing yet; None where the system gives none (no inotify, or this user's
    /// instances all taken): the next task then looks at every entry.
    pub fn new() -> Option<Self> {
        match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(inotify) => Some(Self { inotify: Some(inotify), whole: true }),
            Err(errno) => {
                tracing::debug!(%errno, "no watch on the tree: the next task looks at every entry");
                None
            }
        }
    }

    /// Watches the directory open as `dir` (before it is listed). One that cannot be watched
    /// (this user's watches all taken) leaves the watch partial: never trusted.
    pub fn add_dir(&mut self, dir: &impl AsFd) {
        if !self.whole {
            return;
        }
        let Some(inotify) = &self.inotify else { return };
        let path = format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd());
        if let Err(errno) = inotify.add_watch(path.as_str(), changes()) {
            tracing::debug!(%errno, "a directory of the tree cannot be watched: the next task looks at every entry");
            self.whole = false;
        }
    }

    /// Whether nothing in the watched directories changed since each was watched: every
    /// directory was, and no event is queued (an overflowed queue is one).
    pub fn untouched(&self) -> bool {
        self.whole
            && self
                .inotify
                .as_ref()
                .is_some_and(|inotify| matches!(inotify.read_events(), Err(nix::errno::Errno::EAGAIN)))
    }
}

/// The tree as the scan after its task saw it: every entry it looked at, with what lstat said,
/// in walk order; what its rules left out (not looked into); and the watch set before.
#[derive(Debug)]
pub struct WatchedTree {
    pub watch: TreeWatch,
    pub seen: Vec<(RelPath, Stat)>,
    pub excluded: Vec<RelPath>,
}

impl WatchedTree {
    /// What the scan saw, if nothing changed since; None otherwise (the watch is spent either
    /// way: a tree is planned once from what one scan saw).
    pub fn still(self) -> Option<Seen> {
        self.watch.untouched().then_some(Seen { seen: self.seen, excluded: self.excluded })
    }
}

/// What the scan saw of a tree that has not changed since.
#[derive(Debug)]
pub struct Seen {
    pub seen: Vec<(RelPath, Stat)>,
    pub excluded: Vec<RelPath>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(dir: &std::path::Path) -> TreeWatch {
        let mut watch = TreeWatch::new().expect("inotify");
        for sub in ["", "sub"] {
            let fd = std::fs::File::open(dir.join(sub)).expect("open");
            watch.add_dir(&fd);
        }
        watch
    }

    #[test]
    fn every_kind_of_change_in_a_watched_directory_is_seen_and_reading_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/f"), "data").expect("write");
        std::fs::write(dir.path().join("g"), "data").expect("write");
        type Change<'a> = (&'a str, &'a dyn Fn(&std::path::Path));
        let changes: [Change<'_>; 9] = [
            ("append", &|d| {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new().append(true).open(d.join("sub/f")).expect("open");
                file.write_all(b"x").expect("write");
            }),
            ("truncate", &|d| {
                std::fs::File::options().write(true).open(d.join("g")).expect("open").set_len(1).expect("truncate")
            }),
            ("chmod", &|d| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
            }),
            ("touch", &|d| {
                let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
                std::fs::File::options()
                    .write(true)
                    .open(d.join("g"))
                    .expect("open")
                    .set_modified(time)
                    .expect("touch");
            }),
            ("create", &|d| std::fs::write(d.join("sub/new"), "").expect("write")),
            ("remove", &|d| std::fs::remove_file(d.join("sub/new")).expect("rm")),
            ("rename", &|d| std::fs::rename(d.join("g"), d.join("sub/g")).expect("mv")),
            ("mkdir", &|d| std::fs::create_dir(d.join("sub/d")).expect("mkdir")),
            ("rmdir", &|d| std::fs::remove_dir(d.join("sub/d")).expect("rmdir")),
        ];
        for (name, change) in changes {
            let watch = watched(dir.path());
            // Reading, listing and looking change nothing.
            std::fs::read(dir.path().join("sub/f")).expect("read");
            std::fs::read_dir(dir.path().join("sub")).expect("list").for_each(drop);
            std::fs::symlink_metadata(dir.path().join("sub/f")).expect("stat");
            assert!(watch.untouched(), "{name}: untouched before the change");
            change(dir.path());
            assert!(!watch.untouched(), "{name}: seen");
        }
    }

    #[test]
    fn a_directory_that_could_not_be_watched_leaves_the_watch_never_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), "").expect("write");
        let mut watch = TreeWatch::new().expect("inotify");
        // A file, not a directory: refused (IN_ONLYDIR).
        watch.add_dir(&std::fs::File::open(dir.path().join("f")).expect("open"));
        assert!(!watch.untouched());
    }
}
