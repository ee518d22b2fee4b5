//! How a task on an agent sees the system: under the master's umask, and — with
//! `workspace.same_path` — with its copy of the workspace at the master's own absolute path.
//!
//! Both are set up on the task's own thread, which nothing else ever runs on: `unshare`
//! gives that thread (and the threads and processes it starts, which inherit it) a private
//! umask and, for `same_path`, a private mount namespace in which the copy is bind-mounted at
//! the master's path. Nothing outside the thread sees either. A mount point that does not
//! exist on the agent is created (empty directories) and removed when no task needs it.
//!
//! A private mount namespace needs CAP_SYS_ADMIN over the agent's mount namespace: an agent
//! running as root has it; one that is not gets it by starting in a user namespace of its own
//! (`--user-namespace`, [`enter_user_namespace`], which must happen before the agent starts
//! any thread). Otherwise a `same_path` task is refused before it runs, saying so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

/// A mount point in use: how many tasks use it, and the directories made for it.
struct MountPoint {
    users: usize,
    made: Vec<PathBuf>,
}

/// Mount points by path.
static MOUNT_POINTS: Mutex<Option<HashMap<PathBuf, MountPoint>>> = Mutex::new(None);

/// Gives this thread its own umask, `mask`. Returns a note when the thread keeps the
/// process's umask instead (the system refuses `unshare`): the task runs under that one.
pub fn private_umask(mask: u32) -> Option<String> {
    let mask = mask & 0o777;
    let current = crate::process::umask();
    if current == Some(mask) {
        return None;
    }
    if let Err(errno) = nix::sched::unshare(CloneFlags::CLONE_FS) {
        return Some(format!(
            "the task runs under this agent's umask {} instead of the master's {mask:04o}: {errno}",
            current.map_or("(unknown)".to_owned(), |mask| format!("{mask:04o}"))
        ));
    }
    nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    None
}

/// Makes this process — which must not have started a thread yet — the first member of a new
/// user namespace that maps its own user and group to themselves, with a mount namespace that
/// namespace owns: the agent keeps its identity and gains the right to make private mounts
/// (task threads then can). Root needs none of it: nothing is done.
pub fn enter_user_namespace() -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    if uid.is_root() {
        return Ok(());
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(|errno| {
        format!("cannot make a user namespace (are unprivileged user namespaces allowed?): {errno}")
    })?;
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("writing /proc/self/{file}: {e}"))
    };
    write("setgroups", "deny".to_owned())?;
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    write("gid_map", format!("{gid} {gid} 1\n"))?;
    Ok(())
}

/// While alive, the workspace is shown at the master's path (to this thread); dropping it
/// removes the mount point's directories this agent made, once no task uses them.
#[derive(Debug)]
pub struct SamePath {
    target: PathBuf,
}

impl Drop for SamePath {
    fn drop(&mut self) {
        // On the task's thread, in its namespace: a directory that is a mount point in the
        // caller's own namespace cannot be removed.
        let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
        let mut points = MOUNT_POINTS.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(map) = points.as_mut() else { return };
        let Some(point) = map.get_mut(&self.target) else { return };
        point.users -= 1;
        if point.users > 0 {
            return;
        }
        let dirs = std::mem::take(&mut point.made);
        map.remove(&self.target);
        // Deepest first; a directory someone else put something into stays.
        for dir in dirs.iter().rev() {
            if let Err(error) = std::fs::remove_dir(dir) {
                tracing::warn!(dir = %dir.display(), %error, "cannot remove a directory made as a mount point");
            }
        }
    }
}

/// Shows `source` (the task's private copy) at `target` (the workspace's absolute path on the
/// master) to this thread and everything it starts from now on. `work_dir` is the agent's
/// work directory, which must stay visible.
pub fn show_at(source: &Path, target: &Path, work_dir: &Path) -> Result<SamePath, String> {
    let why = |what: &str| format!("workspace.same_path: cannot show the workspace at {}: {what}", target.display());
    if !target.is_absolute() || target.components().count() < 2 {
        return Err(why("not an absolute path below /"));
    }
    if work_dir.starts_with(target) {
        return Err(why(&format!(
            "it holds this agent's work directory {} (start the agent with --work-dir elsewhere)",
            work_dir.display()
        )));
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).map_err(|errno| {
        why(&format!(
            "a private mount namespace needs an agent running as root or started with --user-namespace; this one runs as uid {}: {errno}",
            nix::unistd::getuid()
        ))
    })?;
    let guard = make_mount_point(target).map_err(|e| why(&e))?;
    // Nothing mounted here reaches the agent's own namespace, nor anyone else's.
    nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|errno| why(&format!("making mounts private: {errno}")))?;
    nix::mount::mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|errno| why(&format!("bind mount: {errno}")))?;
    Ok(guard)
}

/// Makes `target` a directory if it is not one (with its missing parents), counting this task
/// as one of its users.
fn make_mount_point(target: &Path) -> Result<SamePath, String> {
    let mut points = MOUNT_POINTS.lock().unwrap_or_else(PoisonError::into_inner);
    let map = points.get_or_insert_with(HashMap::new);
    if let Some(point) = map.get_mut(target) {
        point.users += 1;
        return Ok(SamePath { target: target.to_path_buf() });
    }
    let mut missing = Vec::new();
    let mut at = Some(target);
    while let Some(path) = at {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory on this agent", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => missing.push(path.to_path_buf()),
            Err(error) => return Err(format!("{}: {error}", path.display())),
        }
        at = path.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for dir in missing {
        if let Err(error) = std::fs::create_dir(&dir) {
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(format!("creating the mount point {}: {error}", dir.display()));
        }
        created.push(dir);
    }
    map.insert(target.to_path_buf(), MountPoint { users: 1, made: created });
    Ok(SamePath { target: target.to_path_buf() })
}
