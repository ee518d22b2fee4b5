//! The time a filesystem gives a change now, read from a file made there for the purpose:
//! unnamed (`O_TMPFILE`), so no directory gains or loses a name, and gone when the agent ends.
//!
//! An entry whose recorded identity was last changed strictly before this time cannot be
//! changed again without its ctime moving past it: every later change is stamped by the same
//! filesystem, with a time no earlier than this one. That holds whatever the filesystem's
//! clock is (nanoseconds, a kernel tick, whole seconds, a file server's) — unlike a margin
//! taken from this process's own clock (see [`super::manifest::Manifest::settled`]).
//!
//! One such file is kept open per filesystem and its times set to now at each reading (the
//! change is stamped as any other): making a new inode for every task cost ~0.3 ms on ext4,
//! whose inode allocator looks for recently deleted neighbours — a fifth of a trivial remote
//! task's own CPU on the agent.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;

use super::timestamp::Timestamp;

/// The unnamed file kept on each filesystem, by its device id.
static CLOCKS: Mutex<Option<HashMap<u64, OwnedFd>>> = Mutex::new(None);

/// The time a change made now in `dir`'s filesystem is given; None where that filesystem
/// cannot make an unnamed file (the caller then trusts its own clock, with a margin).
pub fn now_in(dir: &Path) -> Option<Timestamp> {
    let device = nix::sys::stat::stat(dir).ok()?.st_dev;
    let mut clocks = CLOCKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let clocks = clocks.get_or_insert_with(HashMap::new);
    if let Some(fd) = clocks.get(&device) {
        if let Some(now) = touched(fd, device) {
            return Some(now);
        }
        // Its filesystem is another now (a device id given again) or refuses: made anew.
        clocks.remove(&device);
    }
    let fd =
        nix::fcntl::open(dir, OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o600))
            .ok()?;
    let now = stamp(&fd)?;
    clocks.insert(device, fd);
    Some(now)
}

/// When a scan of `root` begins, as the times of its entries are compared with it: the earlier
/// of this process's clock and the clock of `root`'s filesystem (where [`now_in`] can read
/// it). A filesystem's clock may lag this host's — a file server's, whose clock is its own: an
/// edit made just now there is stamped seconds before this host's now, and on a filesystem with
/// whole-second times the margin of [`super::manifest::Manifest::settled`] would take it for an
/// entry last changed well before the scan, and a same-second edit after it for no change at
/// all (the task ran on the old bytes, and the apply wrote over the edit).
///
/// The filesystem's clock is read in the directory that holds `root` when it is on the same
/// filesystem: a file made in `root` itself, unnamed as it is, shows to a program watching the
/// workspace (a build's watch mode would start again at every snapshot). Only a workspace that
/// is a filesystem of its own, or whose parent this user may not write, has it made in itself.
pub fn scan_begins(root: &Path) -> Timestamp {
    let here = Timestamp::now();
    let device = |path: &Path| nix::sys::stat::stat(path).ok().map(|stat| stat.st_dev);
    let beside = root.parent().filter(|parent| device(parent).is_some_and(|dev| Some(dev) == device(root)));
    let there = beside.and_then(now_in).or_else(|| now_in(root));
    there.map_or(here, |there| there.min(here))
}

/// The file's times set to now, read back; None unless it is still on `device`.
fn touched(fd: &OwnedFd, device: u64) -> Option<Timestamp> {
    let now = TimeSpec::UTIME_NOW;
    nix::sys::stat::futimens(fd, &now, &now).ok()?;
    let stat = nix::sys::stat::fstat(fd).ok()?;
    (stat.st_dev == device).then(|| latest(&stat))
}

/// A new file's own times (stamped as it was made).
fn stamp(fd: &OwnedFd) -> Option<Timestamp> {
    nix::sys::stat::fstat(fd).ok().map(|stat| latest(&stat))
}

fn latest(stat: &nix::sys::stat::FileStat) -> Timestamp {
    let mtime = Timestamp::new(stat.st_mtime, stat.st_mtime_nsec);
    let ctime = Timestamp::new(stat.st_ctime, stat.st_ctime_nsec);
    mtime.max(ctime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_made_after_the_reading_is_never_stamped_before_it_and_no_name_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "before").expect("write");
        // Twice: the first reading makes the filesystem's file, the second reuses it.
        for _ in 0..2 {
            let Some(now) = now_in(dir.path()) else {
                eprintln!("skipped: this filesystem makes no unnamed files");
                return;
            };
            std::fs::write(&file, "after").expect("write");
            let meta = std::fs::metadata(&file).expect("stat");
            use std::os::unix::fs::MetadataExt;
            let changed = Timestamp::new(meta.ctime(), meta.ctime_nsec());
            assert!(changed >= now, "a change after the reading: {changed:?} before {now:?}");
            let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").flatten().map(|e| e.file_name()).collect();
            assert_eq!(names, ["f"], "no name left");
        }
    }

    #[test]
    fn a_later_reading_is_never_earlier() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(first) = now_in(dir.path()) else { return };
        let second = now_in(dir.path()).expect("a second reading where the first was made");
        assert!(second >= first, "{second:?} before {first:?}");
    }
}
