//! A task's private directory in the agent's work directory, made only when something needs
//! it (the contents the agent asked for, a `same_path` view, changes too large for memory): most tasks
//! need none, and making and removing a directory per task cost an agent as much as the rest
//! of a trivial task on filesystems slow to make inodes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The directory's path from the start; the directory itself once [`TaskDir::make`] (or
/// anything told its path, such as a spill) has made it. Removed, with what is in it, when
/// dropped.
#[derive(Debug)]
pub struct TaskDir {
    path: PathBuf,
}

impl TaskDir {
    /// A name of its own in `work_dir` (this process's id and a counter: the work directory
    /// is this agent's alone), nothing made yet.
    pub fn new(work_dir: &Path) -> Self {
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        TaskDir { path: work_dir.join(format!("task-{}-{number}", std::process::id())) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the directory if it is not there yet.
    pub fn make(&self) -> std::io::Result<&Path> {
        Self::make_at(&self.path)?;
        Ok(&self.path)
    }

    /// Makes the directory at `path` (a [`TaskDir`]'s) if it is not there yet: what
    /// [`TaskDir::make`] does, for a caller that runs it on another thread.
    pub fn make_at(path: &Path) -> std::io::Result<()> {
        match std::fs::create_dir(path) {
            Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => Err(error),
            _ => Ok(()),
        }
    }
}

/// Makes the task's directory (if it is not there yet), off the async threads.
pub(super) async fn make_dir(dir: &TaskDir) -> Result<std::path::PathBuf, tonic::Status> {
    let path = dir.path().to_path_buf();
    let made = path.clone();
    tokio::task::spawn_blocking(move || TaskDir::make_at(&made))
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .map_err(|e| super::status::of_io("cannot make the task's directory", &path, &e))?;
    Ok(path)
}

impl Drop for TaskDir {
    fn drop(&mut self) {
        match crate::files::remove_dir_all_opening(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %self.path.display(), %error, "cannot remove a task directory");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_directory_is_made_on_demand_and_gone_when_dropped() {
        let work = tempfile::tempdir().expect("tempdir");
        let unused = TaskDir::new(work.path());
        let used = TaskDir::new(work.path());
        assert_ne!(unused.path(), used.path());
        assert!(!unused.path().exists(), "nothing made before it is needed");
        std::fs::write(used.make().expect("make").join("file"), b"x").expect("write");
        used.make().expect("made twice is made");
        let used_path = used.path().to_path_buf();
        drop((unused, used));
        assert!(!used_path.exists(), "removed with what it held");
        assert_eq!(std::fs::read_dir(work.path()).expect("list").count(), 0);
    }
}
