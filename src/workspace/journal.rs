//! The apply's journal: how to take back every step that touched the workspace.
//!
//! Each step is written down *before* it is taken, as one line in `journal` inside the apply's
//! staging directory, on which the apply holds an exclusive lock while it runs. An apply that fails takes its steps back itself; one that
//! dies halfway (killed, out of memory) leaves the journal unlocked, and the next apply or
//! snapshot of the workspace ([`recover`]) takes its steps back. Every undo checks first that
//! the path still holds what the apply put there: a file someone saved meanwhile is never
//! removed or overwritten (the original then stays in the staging directory, named in the log).
//!
//! A step written down but never taken undoes to nothing: the entry to restore is not in the
//! trash, or the path does not hold the inode the step would have put there.

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use super::WorkspaceError;
use super::beneath::{Root, Stamp};
use super::rel_path::RelPath;
use super::staging::{STAGING_PREFIX, Staging, UNPUBLISHED_PREFIX, set_aside};
use super::staging_proof::{self, Proof, TOKEN_FILE};
use super::timestamp::Timestamp;
use crate::hex::{decode as unhex, encode as hex};
use crate::locked_dir::{remove_abandoned_unpublished, remove_marked, try_lock};

/// The journal's name inside a staging directory.
mod undo;

use undo::undo_steps;

const JOURNAL: &str = "journal";
/// How to take back one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Put the original kept in the trash back at `path` — over what the apply placed there
    /// (inode `placed`), never over anything else.
    Restore { trash: RelPath, path: RelPath, placed: Option<u64> },
    /// Remove what the apply created at `path` (inode `ino`).
    Remove { path: RelPath, ino: u64, dir: bool },
    /// Re-create the directory the apply removed at `path`, with its owner and group (None in
    /// journals of earlier versions).
    Mkdir { path: RelPath, mode: u32, mtime: Timestamp, owner: Option<(u32, u32)> },
    /// Put back an entry's mode and time. A directory's — unless its mode is neither that nor
    /// `set`, the one the apply gives it (someone changed it meanwhile); a file's or pipe's
    /// (changed in place: chmod, utimensat) only if it is still exactly as the apply left it.
    Meta { path: RelPath, mode: u32, mtime: Timestamp, set: u32 },
    /// Give the directory at `path` back its owner and group (the apply gave one the task made
    /// anew the runner's) — if it is still the runner's.
    Owner { path: RelPath, uid: u32, gid: u32 },
    /// Not a step: what the apply left at `path`, written right after placing it, so that
    /// undo can tell it from a file saved there since (even in place, same inode).
    Placed { path: RelPath, stamp: Stamp },
    /// Not a step: the staged entry about to be renamed to `path`, written before the rename
    /// (which moves only its ctime): what undo tells the apply's own entry by when the apply
    /// died before `Placed` was written, and what shows that a `Placed` written after a save
    /// here recorded that save, not the apply's entry.
    Staged { path: RelPath, stamp: Stamp },
    /// Not a step: when the directory the apply made at `path` was made, so that undo can
    /// tell it from one made there since that was given the same inode number.
    Born { path: RelPath, at: Timestamp },
    /// Not a step: the workspace directory's time when the apply began, given back to it once
    /// a recovery has taken every step back and removed the staging directory — and its mode,
    /// when the apply opened it (`opened`: the mode found).
    RootTime { at: Timestamp, opened: Option<u32> },
}

impl Undo {
    fn to_line(&self) -> String {
        match self {
            Undo::Restore { trash, path, placed } => format!(
                "restore {} {} {}",
                hex(trash.as_bytes()),
                hex(path.as_bytes()),
                placed.map_or("-".to_owned(), |ino| ino.to_string())
            ),
            Undo::Remove { path, ino, dir } => {
                format!("remove {} {ino} {}", hex(path.as_bytes()), if *dir { "dir" } else { "file" })
            }
            Undo::Mkdir { path, mode, mtime, owner } => {
                let owner = owner.map_or_else(String::new, |(uid, gid)| format!(" {uid} {gid}"));
                format!("mkdir {} {mode} {} {}{owner}", hex(path.as_bytes()), mtime.secs, mtime.nanos)
            }
            Undo::Meta { path, mode, mtime, set } => {
                format!("meta {} {mode} {} {} {set}", hex(path.as_bytes()), mtime.secs, mtime.nanos)
            }
            Undo::Born { path, at } => format!("born {} {} {}", hex(path.as_bytes()), at.secs, at.nanos),
            Undo::Owner { path, uid, gid } => format!("owner {} {uid} {gid}", hex(path.as_bytes())),
            Undo::RootTime { at, opened } => {
                format!("roottime {} {} {}", at.secs, at.nanos, opened.map_or("-".to_owned(), |mode| mode.to_string()))
            }
            Undo::Placed { path, stamp } | Undo::Staged { path, stamp } => format!(
                "{} {} {} {} {} {} {} {} {}",
                if matches!(self, Undo::Placed { .. }) { "placed" } else { "staged" },
                hex(path.as_bytes()),
                stamp.dev,
                stamp.ino,
                stamp.size,
                stamp.mtime.secs,
                stamp.mtime.nanos,
                stamp.ctime.secs,
                stamp.ctime.nanos
            ),
        }
    }

    fn from_line(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split(' ').collect();
        let path = |at: usize| RelPath::parse(&unhex(fields.get(at)?.as_bytes())?).ok();
        let time = |at: usize| -> Option<Timestamp> {
            Some(Timestamp { secs: fields.get(at)?.parse().ok()?, nanos: fields.get(at + 1)?.parse().ok()? })
        };
        match *fields.first()? {
            "restore" => Some(Undo::Restore {
                trash: path(1)?,
                path: path(2)?,
                placed: fields.get(3).and_then(|ino| ino.parse().ok()),
            }),
            "remove" => {
                Some(Undo::Remove { path: path(1)?, ino: fields.get(2)?.parse().ok()?, dir: *fields.get(3)? == "dir" })
            }
            "born" => Some(Undo::Born { path: path(1)?, at: time(2)? }),
            "owner" => Some(Undo::Owner {
                path: path(1)?,
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            }),
            "roottime" => {
                Some(Undo::RootTime { at: time(1)?, opened: fields.get(3).and_then(|mode| mode.parse().ok()) })
            }
            "mkdir" => Some(Undo::Mkdir {
                path: path(1)?,
                mode: fields.get(2)?.parse().ok()?,
                mtime: time(3)?,
                owner: match (fields.get(5), fields.get(6)) {
                    (Some(uid), Some(gid)) => Some((uid.parse().ok()?, gid.parse().ok()?)),
                    _ => None,
                },
            }),
            "meta" => Some(Undo::Meta {
                path: path(1)?,
                mode: fields.get(2)?.parse().ok()?,
                mtime: time(3)?,
                set: fields.get(5)?.parse().ok()?,
            }),
            kind @ ("placed" | "staged") => {
                let (path, stamp) = (
                    path(1)?,
                    Stamp {
                        dev: fields.get(2)?.parse().ok()?,
                        ino: fields.get(3)?.parse().ok()?,
                        size: fields.get(4)?.parse().ok()?,
                        mtime: time(5)?,
                        ctime: time(7)?,
                    },
                );
                Some(if kind == "placed" { Undo::Placed { path, stamp } } else { Undo::Staged { path, stamp } })
            }
            _ => None,
        }
    }
}

/// The journal of one apply, in its (locked) staging directory.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    steps: Vec<Undo>,
}

impl Journal {
    /// A new journal in `staging`.
    pub fn create(staging: &Staging) -> Result<Self, WorkspaceError> {
        let path = staging.path().join(JOURNAL);
        let file =
            std::fs::OpenOptions::new().create_new(true).append(true).open(&path).map_err(WorkspaceError::io(&path))?;
        Ok(Self { file, path, steps: Vec::new() })
    }

    /// Writes `step` down (it reaches the file before the step is taken).
    pub fn record(&mut self, step: Undo) -> Result<(), WorkspaceError> {
        let line = step.to_line() + "\n";
        (&self.file).write_all(line.as_bytes()).map_err(WorkspaceError::io(&self.path))?;
        self.steps.push(step);
        Ok(())
    }

    /// The apply is complete: the journal goes first, so that what is left of the staging
    /// directory (the trash) is never taken for an apply to undo — a staging directory without
    /// a journal is only removed.
    pub fn commit(self) -> Result<(), WorkspaceError> {
        std::fs::remove_file(&self.path).map_err(WorkspaceError::io(&self.path))
    }

    /// Takes back every step, last first; the journal is then done with. Returns what could
    /// not be put back (kept in the staging directory, which the caller then keeps).
    pub fn undo(self, root: &Root, trash: &Root) -> Vec<String> {
        let kept = undo_steps(root, trash, self.steps);
        let _ = std::fs::remove_file(&self.path);
        kept
    }
}

/// Takes back what applies that died halfway left in `root`: every staging directory whose
/// journal nobody holds. Returns what was recovered, one line each.
pub fn recover(root: &Path) -> Result<Vec<String>, WorkspaceError> {
    let mut recovered = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(recovered),
        Err(error) => return Err(WorkspaceError::Io { path: root.to_path_buf(), source: error }),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        if name.to_string_lossy().starts_with(UNPUBLISHED_PREFIX) {
            // Never held anything of the workspace.
            let path = entry.path();
            remove_abandoned_unpublished(&path, UNPUBLISHED_PREFIX, &[TOKEN_FILE], |opened| {
                staging_proof::find(&path, opened, root).map(Proof::withdraw).is_some()
            });
            continue;
        }
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let staging = entry.path();
        // A live apply holds its staging directory; only a dead one's can be taken.
        let lock = match try_lock(&staging) {
            Ok(Some(lock)) => lock,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(staging = %staging.display(), error = %error, "cannot look at a staging directory");
                continue;
            }
        };
        // The lock may be on a directory its owner has just removed after completing (it was
        // opened before, locked after): only the one still at that path is a dead apply's.
        if !still_at(&lock, &staging) {
            continue;
        }
        // Named like one, but not one an apply of this user made (however it looks inside):
        // somebody's, left alone (and, as the name is reserved, out of what is synced).
        let Some(proof) = staging_proof::find(&staging, &lock, root) else {
            tracing::debug!(dir = %staging.display(), "named like a staging directory but not proven one: left alone");
            // One with a journal may be a dead apply whose proof could not be kept (no cache
            // directory outside the workspace) or is gone: said, for the user to look at.
            if staging.join(JOURNAL).is_file() {
                recovered.push(format!(
                    "left as it is: {} holds an apply's journal but is not proven one of this user's (no record of it in the \
                     cache directory outside the workspace); if an apply died there, the workspace may be half-applied: \
                     look at it, then remove the directory",
                    staging.display()
                ));
            }
            continue;
        };
        let journal = staging.join(JOURNAL);
        let steps: Vec<Undo> = match File::open(&journal) {
            Ok(file) => std::io::BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| Undo::from_line(&line))
                .collect(),
            // Completed (the journal goes first) or never started: nothing to take back.
            Err(_) => Vec::new(),
        };
        let had_steps = steps.iter().any(|step| !matches!(step, Undo::RootTime { .. }));
        let root_as_found = steps.iter().find_map(|step| match step {
            Undo::RootTime { at, opened } => Some((*at, *opened)),
            _ => None,
        });
        let kept = match (Root::open(root), Root::open(&staging)) {
            (Ok(root), Ok(trash)) => undo_steps(&root, &trash, steps),
            _ => vec!["the staging directory is incomplete".to_owned()],
        };
        let shown = name.to_string_lossy();
        if kept.is_empty() {
            if let Err(error) = remove_marked(&staging, &[TOKEN_FILE]) {
                tracing::warn!(staging = %staging.display(), error = %error, "cannot remove a staging directory");
            }
            proof.withdraw();
            drop(lock);
            // Its staging directory gone, the workspace directory as the apply found it.
            if let Some((at, opened)) = root_as_found {
                super::apply::give_back(root, Some(at), opened);
            }
            if had_steps {
                recovered.push(format!("took back an interrupted apply ({shown})"));
            }
        } else {
            let _ = std::fs::remove_file(&journal);
            proof.withdraw();
            let aside = set_aside(&staging);
            recovered.push(format!(
                "took back an interrupted apply ({shown}), except: {} (kept in {})",
                kept.join(", "),
                aside.display()
            ));
        }
    }
    Ok(recovered)
}

/// Whether `opened` is the directory at `path` now (not one removed since it was opened).
fn still_at(opened: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (opened.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(opened), Ok(now)) => opened.dev() == now.dev() && opened.ino() == now.ino() && opened.nlink() > 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staging directory made as an apply makes one, named `name`, its maker gone.
    fn abandoned_staging(root: &Path, name: &str) -> PathBuf {
        let made = Staging::create(root).expect("staging").abandon();
        let staging = root.join(name);
        std::fs::rename(&made, &staging).expect("rename");
        staging
    }

    /// A staging directory as an apply killed at some point leaves it, with `lines`.
    fn dead_apply(root: &Path, lines: &[Undo]) -> PathBuf {
        let staging = abandoned_staging(root, ".sloth-apply-dead");
        std::fs::create_dir_all(staging.join("new")).expect("mkdir");
        let text: String = lines.iter().map(|step| step.to_line() + "\n").collect();
        std::fs::write(staging.join(JOURNAL), text).expect("journal");
        staging
    }

    fn rel(raw: &str) -> RelPath {
        RelPath::parse(raw.as_bytes()).expect("valid")
    }

    #[test]
    fn a_staging_directory_removed_after_it_was_opened_is_not_taken_for_a_dead_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staging = dir.path().join(".sloth-apply-done");
        std::fs::create_dir(&staging).expect("mkdir");
        let opened = File::open(&staging).expect("open");
        assert!(still_at(&opened, &staging));
        std::fs::remove_dir(&staging).expect("its owner removes it");
        assert!(!still_at(&opened, &staging), "gone");
        std::fs::create_dir(&staging).expect("another at the same path");
        assert!(!still_at(&opened, &staging), "not the one opened");
    }

    #[test]
    fn killed_between_linking_aside_and_replacing_the_original_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "original").expect("write");
        let staging =
            dead_apply(dir.path(), &[Undo::Restore { trash: rel("t1"), path: rel("a.txt"), placed: Some(u64::MAX) }]);
        std::fs::hard_link(dir.path().join("a.txt"), staging.join("t1")).expect("link aside");
        let recovered = recover(dir.path()).expect("recover");
        assert_eq!(recovered, vec!["took back an interrupted apply (.sloth-apply-dead)".to_owned()]);
        assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).expect("read"), "original");
        assert!(!staging.exists(), "nothing is left behind");
    }

    #[test]
    fn killed_right_after_making_a_directory_removes_it_and_puts_the_file_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The task turned file `thing` into a directory: the file went aside, the directory
        // was made, and the apply died before anything else.
        let staging = dead_apply(
            dir.path(),
            &[
                Undo::Restore { trash: rel("t1"), path: rel("thing"), placed: None },
                Undo::Remove { path: rel("thing"), ino: 0, dir: true },
            ],
        );
        std::fs::write(staging.join("t1"), "the file").expect("the original aside");
        std::fs::create_dir(dir.path().join("thing")).expect("the new directory");
        recover(dir.path()).expect("recover");
        assert_eq!(std::fs::read_to_string(dir.path().join("thing")).expect("read"), "the file");
        assert!(!staging.exists());
    }

    #[test]
    fn a_completed_apply_killed_while_cleaning_up_is_only_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "applied").expect("write");
        let staging = abandoned_staging(dir.path(), ".sloth-apply-done");
        std::fs::create_dir_all(staging.join("new")).expect("mkdir");
        std::fs::write(staging.join("t1"), "replaced").expect("trash");
        assert!(recover(dir.path()).expect("recover").is_empty(), "nothing to report");
        assert!(!staging.exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).expect("read"), "applied");
    }

    #[test]
    fn directories_only_named_like_an_applys_are_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for name in [".sloth-apply-notes", ".sloth-staging-abcdef", ".sloth-staging-notes"] {
            let user = dir.path().join(name);
            std::fs::create_dir(&user).expect("mkdir");
            std::fs::write(user.join("todo.txt"), "precious").expect("write");
            // Even with a file named like a journal, and old.
            std::fs::write(user.join(JOURNAL), "restore 7431 612e747874 -\n").expect("write");
            File::open(&user).expect("open").set_modified(long_ago).expect("age");
        }
        let empty = dir.path().join(".sloth-staging-my-notes");
        std::fs::create_dir(&empty).expect("mkdir");
        File::open(&empty).expect("open").set_modified(long_ago).expect("age");
        // (What holds a journal is named, for the user to look at.)
        let notes = recover(dir.path()).expect("recover");
        assert!(
            notes.len() == 1 && notes[0].starts_with("left as it is: ") && notes[0].contains(".sloth-apply-notes"),
            "{notes:?}"
        );
        for name in [".sloth-apply-notes", ".sloth-staging-abcdef", ".sloth-staging-notes"] {
            assert_eq!(std::fs::read_to_string(dir.path().join(name).join("todo.txt")).expect(name), "precious");
        }
        assert!(empty.is_dir(), "an empty one not named as an apply names them stays too");
    }

    #[test]
    fn a_directory_made_to_look_like_a_dead_apply_is_never_replayed_or_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Everything a real one holds, copied from one: the mark, a token, a journal that would
        // put a file in place.
        let real = abandoned_staging(dir.path(), ".sloth-apply-real");
        let forged = dir.path().join(".sloth-apply-forged");
        std::fs::create_dir(&forged).expect("mkdir");
        for name in [".sloth-owned", TOKEN_FILE] {
            std::fs::copy(real.join(name), forged.join(name)).expect("copy");
        }
        std::fs::write(forged.join("t1"), "#!/bin/sh\necho planted\n").expect("write");
        let planted = Undo::Restore { trash: rel("t1"), path: rel("hook"), placed: None };
        std::fs::write(forged.join(JOURNAL), planted.to_line() + "\n").expect("journal");
        std::fs::write(forged.join("notes.txt"), "precious").expect("write");
        recover(dir.path()).expect("recover");
        assert!(!dir.path().join("hook").exists(), "the forged journal was replayed");
        assert_eq!(std::fs::read_to_string(forged.join("notes.txt")).expect("kept"), "precious");
        assert!(!real.exists(), "the real one (an apply that had begun nothing) is cleaned up");
    }

    #[test]
    fn an_applys_own_unpublished_directory_left_long_ago_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        // Died before publishing it (marked), and before marking it (empty, named as made).
        let marked = Staging::create(dir.path()).expect("staging").abandon();
        let unpublished = dir.path().join(".sloth-staging-Ab12Cd");
        std::fs::rename(&marked, &unpublished).expect("rename");
        let unmarked = dir.path().join(".sloth-staging-Zz9Yy8");
        std::fs::create_dir(&unmarked).expect("mkdir");
        // Named as made, and holding a file named like the mark — but not the mark: somebody's.
        let lookalike = dir.path().join(".sloth-staging-Kp0Kp0");
        std::fs::create_dir(&lookalike).expect("mkdir");
        std::fs::write(lookalike.join(".sloth-owned"), "precious").expect("write");
        File::open(&lookalike).expect("open").set_modified(long_ago).expect("age");
        let recent = dir.path().join(".sloth-staging-Qq1Ww2");
        std::fs::create_dir(&recent).expect("mkdir");
        for old in [&unpublished, &unmarked] {
            File::open(old).expect("open").set_modified(long_ago).expect("age");
        }
        recover(dir.path()).expect("recover");
        assert!(!unpublished.exists() && !unmarked.exists(), "abandoned long ago");
        assert!(recent.exists(), "one being made now stays");
        assert_eq!(std::fs::read_to_string(lookalike.join(".sloth-owned")).expect("kept"), "precious");
    }

    /// A directory the apply gave the runner (made anew by the task) is given back to its
    /// owner by undo — unless it is no longer the runner's.
    #[test]
    fn undo_gives_a_directory_back_its_owner_if_it_is_still_the_runners() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: giving directories to other users needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (given, changed_since) = (RelPath::parse(b"d").expect("valid"), RelPath::parse(b"e").expect("valid"));
        for name in ["d", "e"] {
            std::fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        std::os::unix::fs::chown(dir.path().join("e"), Some(4321), Some(4321)).expect("chown");
        let root = Root::open(dir.path()).expect("root");
        let steps = vec![
            Undo::Owner { path: given, uid: 1234, gid: 100 },
            Undo::Owner { path: changed_since, uid: 1234, gid: 100 },
        ];
        assert!(undo_steps(&root, &root, steps).is_empty());
        use std::os::unix::fs::MetadataExt;
        let owner = |name: &str| {
            let meta = std::fs::metadata(dir.path().join(name)).expect("stat");
            (meta.uid(), meta.gid())
        };
        assert_eq!(owner("d"), (1234, 100));
        assert_eq!(owner("e"), (4321, 4321), "another's since: left as it is");
    }

    /// A directory the apply removed comes back its owner's (a recovery runs as root: made by
    /// it, it would be root's, its owner locked out of what is in it).
    #[test]
    fn undo_makes_a_removed_directory_again_its_owners() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: giving directories to other users needs root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::open(dir.path()).expect("root");
        let time = Timestamp { secs: 1_000, nanos: 5 };
        let steps = vec![Undo::Mkdir {
            path: RelPath::parse(b"n").expect("valid"),
            mode: 0o2700,
            mtime: time,
            owner: Some((1234, 100)),
        }];
        assert!(undo_steps(&root, &root, steps).is_empty());
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(dir.path().join("n")).expect("stat");
        assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777), (1234, 100, 0o2700));
    }

    /// An apply that died right after renaming a file into place, before writing down what it
    /// placed (`Placed`): a save made here since, in place (same inode), is the user's — undo
    /// keeps it, and says so — while the apply's own file, untouched, is taken back.
    #[test]
    fn undo_keeps_a_save_made_in_place_after_a_rename_the_apply_did_not_write_down() {
        use std::io::Write;
        for (edited, created) in [(true, false), (true, true), (false, false), (false, true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (work, trash_dir) = (dir.path().join("ws"), dir.path().join("trash"));
            std::fs::create_dir_all(&work).expect("mkdir");
            std::fs::create_dir_all(&trash_dir).expect("mkdir");
            let (root, trash) = (Root::open(&work).expect("root"), Root::open(&trash_dir).expect("trash"));
            let path = RelPath::parse(b"a.txt").expect("valid");
            let saved = RelPath::parse(b"t1").expect("valid");
            // The staged file, as the apply wrote it down before renaming it into place.
            std::fs::write(work.join("a.txt"), "the task's\n").expect("write");
            let staged = root.lstat(&path).expect("lstat").expect("there").stamp;
            if !created {
                std::fs::write(trash_dir.join("t1"), "the original\n").expect("write");
            }
            // (A rename moves the ctime; a save lands a moment later.)
            std::thread::sleep(std::time::Duration::from_millis(20));
            if edited {
                let mut file = std::fs::OpenOptions::new().append(true).open(work.join("a.txt")).expect("open");
                file.write_all(b"the user's line\n").expect("append");
            }
            let undo = if created {
                Undo::Remove { path: path.clone(), ino: staged.ino, dir: false }
            } else {
                Undo::Restore { trash: saved.clone(), path: path.clone(), placed: Some(staged.ino) }
            };
            let kept = undo_steps(&root, &trash, vec![undo, Undo::Staged { path: path.clone(), stamp: staged }]);
            let now = std::fs::read_to_string(work.join("a.txt")).ok();
            let case = format!("edited {edited}, created {created}: {kept:?}");
            match (edited, created) {
                (true, _) => {
                    assert_eq!(now.as_deref(), Some("the task's\nthe user's line\n"), "{case}");
                    assert_eq!(kept.len(), 1, "{case}");
                }
                (false, false) => assert_eq!(now.as_deref(), Some("the original\n"), "{case}"),
                (false, true) => assert_eq!(now, None, "{case}"),
            }
            if edited && !created {
                assert_eq!(std::fs::read_to_string(trash_dir.join("t1")).expect("kept"), "the original\n", "{case}");
            }
        }
    }

    #[test]
    fn steps_read_back_as_written() {
        let path = RelPath::parse(b"dir/odd \xff\nname").expect("valid");
        let time = Timestamp { secs: -5, nanos: 7 };
        for step in [
            Undo::Restore { trash: RelPath::parse(b"t3").expect("valid"), path: path.clone(), placed: Some(42) },
            Undo::Restore { trash: RelPath::parse(b"4").expect("valid"), path: path.clone(), placed: None },
            Undo::Remove { path: path.clone(), ino: 9, dir: true },
            Undo::Mkdir { path: path.clone(), mode: 0o755, mtime: time, owner: None },
            Undo::Mkdir { path: path.clone(), mode: 0o700, mtime: time, owner: Some((1000, 100)) },
            Undo::Meta { path: path.clone(), mode: 0o700, mtime: time, set: 0o755 },
            Undo::Owner { path: path.clone(), uid: 1234, gid: 100 },
            Undo::Placed {
                path: path.clone(),
                stamp: Stamp { dev: 1, ino: 2, size: 3, mtime: time, ctime: Timestamp { secs: 4, nanos: 5 } },
            },
            Undo::Staged {
                path,
                stamp: Stamp { dev: 6, ino: 7, size: 8, mtime: time, ctime: Timestamp { secs: 9, nanos: 10 } },
            },
        ] {
            assert_eq!(Undo::from_line(&step.to_line()), Some(step.clone()), "{}", step.to_line());
        }
    }
}
