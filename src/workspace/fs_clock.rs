//! The time a filesystem gives a change now, read from a file made there for the purpose:
//! unnamed (`O_TMPFILE`), so no directory gains or loses a name, and gone when closed.
//!
//! An entry whose recorded identity was last changed strictly before this time cannot be
//! changed again without its ctime moving past it: every later change is stamped by the same
//! filesystem, with a time no earlier than this one. That holds whatever the filesystem's
//! clock is (nanoseconds, a kernel tick, whole seconds, a file server's) — unlike a margin
//! taken from this process's own clock (see [`super::manifest::Manifest::settled`]).

use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::timestamp::Timestamp;

/// The time a change made now in `dir`'s filesystem is given; None where that filesystem
/// cannot make an unnamed file (the caller then trusts its own clock, with a margin).
pub fn now_in(dir: &Path) -> Option<Timestamp> {
    let fd =
        nix::fcntl::open(dir, OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o600))
            .ok()?;
    let stat = nix::sys::stat::fstat(&fd).ok()?;
    let mtime = Timestamp::new(stat.st_mtime, stat.st_mtime_nsec);
    let ctime = Timestamp::new(stat.st_ctime, stat.st_ctime_nsec);
    Some(mtime.max(ctime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_made_after_the_reading_is_never_stamped_before_it_and_no_name_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "before").expect("write");
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
