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
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

/// Directories this agent made as mount points (or their parents), with how many running
/// tasks need each.
static MADE: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// The file beside a task's directory that lists the directories its mount point needs,
/// while it needs them: what a later agent removes if this one dies (`kill -9`) first.
const RECORD_SUFFIX: &str = ".mount-points";

/// Gives this thread its own umask, `mask`. Returns a note when the thread keeps the
/// process's umask instead (the system refuses `unshare`): the task runs under that one.
///
/// A thread serves several tasks one after another: once it has a umask of its own, each task
/// sets it again (the agent's own umask, read once, never changes).
pub fn private_umask(mask: u32) -> Option<String> {
    thread_local! {
        static OWN_UMASK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let mask = mask & 0o777;
    if OWN_UMASK.get() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
        return None;
    }
    let current = crate::process::umask_at_start();
    if current == Some(mask) {
        return None;
    }
    if let Err(errno) = nix::sched::unshare(CloneFlags::CLONE_FS) {
        return Some(format!(
            "the task runs under this agent's umask {} instead of the master's {mask:04o}: {errno}",
            current.map_or("(unknown)".to_owned(), |mask| format!("{mask:04o}"))
        ));
    }
    OWN_UMASK.set(true);
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
/// removes the mount point's directories this agent made, once no task needs them.
#[derive(Debug)]
pub struct SamePath {
    target: PathBuf,
    /// Directories made by this agent that this task needs, parents first.
    needs: Vec<PathBuf>,
    record: Option<PathBuf>,
}

impl Drop for SamePath {
    fn drop(&mut self) {
        // On the task's thread, in its namespace: a directory that is a mount point in the
        // caller's own namespace cannot be removed.
        let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
        let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
        let map = made.get_or_insert_with(HashMap::new);
        // Deepest first; a directory someone else put something into stays.
        for dir in self.needs.iter().rev() {
            let Some(users) = map.get_mut(dir) else { continue };
            *users -= 1;
            if *users == 0 {
                map.remove(dir);
                if let Err(error) = std::fs::remove_dir(dir) {
                    tracing::warn!(dir = %dir.display(), %error, "cannot remove a directory made as a mount point");
                }
            }
        }
        if let Some(record) = &self.record {
            let _ = std::fs::remove_file(record);
        }
    }
}

/// Shows `source` (the task's private copy) at `target` (the workspace's absolute path on the
/// master) to this thread and everything it starts from now on. `task_dir` is the task's
/// directory in the agent's work directory, which must stay visible.
pub fn show_at(source: &Path, target: &Path, task_dir: &Path) -> Result<SamePath, String> {
    let why = |what: &str| format!("workspace.same_path: cannot show the workspace at {}: {what}", target.display());
    if !target.is_absolute() || target.components().count() < 2 {
        return Err(why("not an absolute path below /"));
    }
    // Compared as the filesystem resolves them: a link on either path must not hide the clash.
    let physical_task_dir = crate::physical_path::resolved(task_dir);
    let physical_source = crate::physical_path::resolved(source);
    let target_resolved = crate::physical_path::resolved(target);
    if physical_task_dir.starts_with(&target_resolved)
        || task_dir.starts_with(target)
        || physical_source.starts_with(&target_resolved)
    {
        return Err(why(&format!(
            "it holds this agent's work directory {} (start the agent with --work-dir elsewhere)",
            task_dir.parent().unwrap_or(task_dir).display()
        )));
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).map_err(|errno| {
        why(&format!(
            "a private mount namespace needs an agent running as root or started with --user-namespace; this one runs as uid {}: {errno}",
            nix::unistd::getuid()
        ))
    })?;
    let record = PathBuf::from(format!("{}{RECORD_SUFFIX}", task_dir.display()));
    let guard = make_mount_point(target, record).map_err(|e| why(&e))?;
    // Nothing mounted here reaches the agent's own namespace, nor anyone else's.
    nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|errno| why(&format!("making mounts private: {errno}")))?;
    nix::mount::mount(Some(source), target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|errno| why(&format!("bind mount: {errno}")))?;
    Ok(guard)
}

/// Makes `target` a directory if it is not one (with its missing parents), counting this task
/// as a user of every directory this agent made for it; lists them in `record` meanwhile.
fn make_mount_point(target: &Path, record: PathBuf) -> Result<SamePath, String> {
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    let map = made.get_or_insert_with(HashMap::new);
    // From the target up to the first directory this agent did not make.
    let mut chain = Vec::new();
    let mut at = Some(target);
    while let Some(path) = at {
        if !map.contains_key(path) {
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => break,
                Ok(_) => return Err(format!("{} is not a directory on this agent", path.display())),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(format!("{}: {error}", path.display())),
            }
        }
        chain.push(path.to_path_buf());
        at = path.parent();
    }
    chain.reverse();
    let mut guard = SamePath { target: target.to_path_buf(), needs: Vec::new(), record: None };
    if chain.is_empty() {
        return Ok(guard);
    }
    let listed: String = chain.iter().map(|dir| crate::hex::encode(dir.as_os_str().as_bytes()) + "\n").collect();
    std::fs::write(&record, listed).map_err(|e| format!("{}: {e}", record.display()))?;
    guard.record = Some(record);
    let mut failed = None;
    for dir in chain {
        if let Some(users) = map.get_mut(&dir) {
            *users += 1;
        } else if let Err(error) = std::fs::create_dir(&dir) {
            failed = Some(format!("creating the mount point {}: {error}", dir.display()));
            break;
        } else {
            map.insert(dir.clone(), 1);
        }
        guard.needs.push(dir);
    }
    // Unlocked before the guard can be dropped (on failure, it takes back what it counted).
    drop(made);
    match failed {
        Some(error) => Err(error),
        None => Ok(guard),
    }
}

/// Removes the directories a dead agent made as mount points, as the records in its work
/// directory `dead` list them (deepest first, only where they are still empty).
pub fn remove_leftover_mount_points(dead: &Path) {
    let Ok(entries) = std::fs::read_dir(dead) else { return };
    let mut dirs = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        if !entry.file_name().as_bytes().ends_with(RECORD_SUFFIX.as_bytes()) {
            continue;
        }
        let Ok(text) = std::fs::read(entry.path()) else { continue };
        for line in text.split(|byte| *byte == b'\n') {
            if let Some(path) = crate::hex::decode(line).filter(|path| path.first() == Some(&b'/')) {
                dirs.insert(PathBuf::from(std::ffi::OsString::from_vec(path)));
            }
        }
    }
    for dir in dirs.iter().rev() {
        if std::fs::remove_dir(dir).is_ok() {
            tracing::info!(dir = %dir.display(), "removed a mount point a dead agent made");
        }
    }
}
