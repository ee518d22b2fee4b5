//! Taking an apply's steps back, last first: each only if the path still holds what the apply
//! put there (a save made here since is kept, and said).

use super::Undo;
use crate::workspace::beneath::{Kind, Root, Stamp};
use crate::workspace::rel_path::{PathMap, RelPath};
use crate::workspace::timestamp::Timestamp;

/// Takes back `steps`, last first, each only if the path still holds what the apply put
/// there. Returns a note for each original that could not go back.
pub(super) fn undo_steps(root: &Root, trash: &Root, steps: Vec<Undo>) -> Vec<String> {
    let mut kept = Vec::new();
    let mut placed_stamps: PathMap<RelPath, Stamp> = PathMap::default();
    let mut staged_stamps: PathMap<RelPath, Stamp> = PathMap::default();
    let mut births: PathMap<RelPath, Timestamp> = PathMap::default();
    for step in &steps {
        match step {
            Undo::Placed { path, stamp } => {
                placed_stamps.insert(path.clone(), *stamp);
            }
            Undo::Staged { path, stamp } => {
                staged_stamps.insert(path.clone(), *stamp);
            }
            Undo::Born { path, at } => {
                births.insert(path.clone(), *at);
            }
            _ => {}
        }
    }
    // Files whose link count this undo changed (a name of theirs taken back): their ctime moved
    // because of it, nothing else.
    let mut relinked: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    // What the apply put at `path` is still there: the same identity, in full when known. A
    // file is the apply's only as it was staged (its data's size and time: the rename into
    // place moved only its ctime) — a save here between the rename and the `Placed` record,
    // or after a rename the apply died before recording, is the user's, never taken back.
    // (Without either record — a journal of an earlier version — only its inode was known:
    // such an entry is kept, and said.)
    let as_staged = |staged: &Stamp, here: &Stamp| Stamp { ctime: here.ctime, ..*staged } == *here;
    let ours = |path: &RelPath, here: &Stamp, relinked: &std::collections::HashSet<(u64, u64)>| {
        let staged = staged_stamps.get(path);
        match placed_stamps.get(path) {
            Some(stamp) if staged.is_some_and(|staged| !as_staged(staged, stamp)) => false,
            Some(stamp) if relinked.contains(&(here.dev, here.ino)) => Stamp { ctime: here.ctime, ..*stamp } == *here,
            Some(stamp) => stamp == here,
            None => staged.is_some_and(|staged| as_staged(staged, here)),
        }
    };
    for step in steps.into_iter().rev() {
        // (Records, not steps: the time given back by recovery once the staging is gone.)
        let Some(step_at) =
            step_path(&step).filter(|_| !matches!(step, Undo::Placed { .. } | Undo::Staged { .. } | Undo::Born { .. }))
        else {
            continue;
        };
        root.forget();
        // What cannot be looked at cannot be put back safely: said, and kept.
        let here = match root.lstat(step_at) {
            Ok(here) => here,
            Err(error) => {
                kept.push(format!("'{step_at}' (could not be looked at: {error})"));
                continue;
            }
        };
        if let Some(stat) = &here
            && stat.kind == Kind::File
            && stat.nlink > 1
            && matches!(step, Undo::Restore { .. } | Undo::Remove { .. })
        {
            relinked.insert((stat.stamp.dev, stat.stamp.ino));
        }
        let result = match &step {
            Undo::Placed { .. } | Undo::Staged { .. } | Undo::Born { .. } | Undo::RootTime { .. } => continue,
            Undo::Restore { trash: saved, path, placed } => {
                let Some(kept_entry) = trash.lstat(saved).ok().flatten() else { continue };
                match here {
                    // Linked aside but never replaced: the original is still in place.
                    Some(stat) if stat.stamp.dev == kept_entry.stamp.dev && stat.stamp.ino == kept_entry.stamp.ino => {
                        continue;
                    }
                    Some(stat) if placed.is_none() || !ours(path, &stat.stamp, &relinked) => {
                        kept.push(format!("'{path}' (changed here meanwhile; its original is kept as {saved})"));
                        continue;
                    }
                    _ => root.rename_from(trash, saved, path, false),
                }
            }
            // A directory the apply made: removed only if it is that one (its inode; 0 in
            // journals of earlier versions, which wrote it down before making it) and empty.
            Undo::Remove { path, ino, dir } => match here {
                Some(stat)
                    if (*dir
                        && stat.kind == Kind::Dir
                        && (*ino == 0 || stat.stamp.ino == *ino)
                        && births.get(path).is_none_or(|at| root.born(path) == Some(*at)))
                        || (!*dir && ours(path, &stat.stamp, &relinked)) =>
                {
                    if *dir {
                        root.rmdir(path).map(|_| ())
                    } else {
                        root.unlink(path)
                    }
                }
                Some(_) if !*dir => {
                    kept.push(format!("'{path}' (saved here meanwhile; kept as it is)"));
                    continue;
                }
                _ => continue,
            },
            Undo::Mkdir { path, mode, mtime, owner } => match here {
                None => root
                    .mkdir(path, *mode, false)
                    // (Its owner's again, where the system lets this process: before its mode,
                    // which giving it away would clear the setgid bit of.)
                    .and_then(|()| owner.map_or(Ok(true), |(uid, gid)| root.chown(path, Some(uid), Some(gid))))
                    .and_then(|_| root.chmod(path, *mode))
                    .and_then(|()| root.set_mtime(path, *mtime)),
                Some(_) => continue,
            },
            Undo::Owner { path, uid, gid } => match here {
                Some(stat) if stat.kind == Kind::Dir && stat.uid == nix::unistd::geteuid().as_raw() => {
                    root.chown(path, Some(*uid), Some(*gid)).map(|_| ())
                }
                _ => continue,
            },
            Undo::Meta { path, mode, mtime, set } => match here {
                // As it was: nothing to put back (and nothing to be refused, on a directory
                // this user may not change).
                Some(stat) if stat.mode == *mode && stat.mtime == *mtime => continue,
                Some(stat) if stat.kind == Kind::Dir && (stat.mode == *mode || stat.mode == *set) => {
                    root.chmod(path, *mode).and_then(|()| root.set_mtime(path, *mtime))
                }
                Some(stat) if stat.kind == Kind::Dir || stat.kind == Kind::Symlink => continue,
                Some(stat) if placed_stamps.get(path) == Some(&stat.stamp) => {
                    root.chmod(path, *mode).and_then(|()| root.set_mtime(path, *mtime))
                }
                Some(stat) if stat.mode != *mode => {
                    kept.push(format!("'{path}' (changed here meanwhile; its mode is left as it is)"));
                    continue;
                }
                _ => continue,
            },
        };
        if let Err(error) = result {
            tracing::error!(step = ?step, error = %error, "could not undo a step of a failed apply");
            kept.push(format!("'{}' ({error})", step_path(&step).map_or_else(|| ".".to_owned(), ToString::to_string)));
        }
    }
    root.forget();
    kept
}

/// The path a step is about (None: the workspace directory itself).
fn step_path(step: &Undo) -> Option<&RelPath> {
    match step {
        Undo::Restore { path, .. }
        | Undo::Remove { path, .. }
        | Undo::Mkdir { path, .. }
        | Undo::Meta { path, .. }
        | Undo::Owner { path, .. }
        | Undo::Placed { path, .. }
        | Undo::Staged { path, .. }
        | Undo::Born { path, .. } => Some(path),
        Undo::RootTime { .. } => None,
    }
}
