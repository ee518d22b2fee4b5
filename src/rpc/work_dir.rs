//! The agent's work directory: one `sloth-agent-*` directory per running agent inside the
//! parent (`--work-dir`, else the system temp dir), locked for the agent's whole life. An agent
//! that dies (`kill -9`, out of memory, a power cut) cannot remove its own; the next agent
//! started on the same parent finds it unlocked and removes it, with every task directory and
//! cached content in it, and the mount-point directories its `same_path` tasks made.
//!
//! The directory is a [`LockedDir`]: an agent starting at the same moment never takes a live
//! one for dead.

use std::path::{Path, PathBuf};

use crate::locked_dir::{LockedDir, remove_dead};

const PREFIX: &str = "sloth-agent-";
const UNPUBLISHED_PREFIX: &str = "sloth-agent-starting-";

/// This agent's work directory; removed when dropped.
#[derive(Debug)]
pub struct WorkRoot {
    dir: LockedDir,
}

impl WorkRoot {
    /// Makes (and locks) a work directory in `parent`, creating `parent` if needed, and
    /// removes those of agents that died there. Returns the directory and what was removed.
    /// A relative `parent` is taken from the current directory once, here: the paths made
    /// inside it are handed to tasks' processes as their working directory, and a relative one
    /// would be read again from inside itself.
    pub fn create(parent: &Path) -> std::io::Result<(Self, Vec<PathBuf>)> {
        let parent = std::path::absolute(parent)?;
        std::fs::create_dir_all(&parent)?;
        let root = Self { dir: LockedDir::create(&parent, UNPUBLISHED_PREFIX, PREFIX)? };
        let removed = root.remove_dead(&parent);
        Ok((root, removed))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Removes the work directories of agents that died in `parent` (what their same_path
    /// tasks made outside them first).
    fn remove_dead(&self, parent: &Path) -> Vec<PathBuf> {
        remove_dead(parent, (UNPUBLISHED_PREFIX, PREFIX), self.path(), crate::task_view::remove_leftover_mount_points)
    }
}

impl Drop for WorkRoot {
    fn drop(&mut self) {
        let _ = crate::files::remove_dir_all_opening(self.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_agents_directory_goes_and_one_only_named_like_it_stays() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dead = LockedDir::create(parent.path(), UNPUBLISHED_PREFIX, PREFIX).expect("made");
        let dead_path = dead.path().to_path_buf();
        std::fs::write(dead_path.join("cached"), "x").expect("write");
        drop(dead);
        let user = parent.path().join("sloth-agent-notes");
        std::fs::create_dir(&user).expect("mkdir");
        std::fs::write(user.join("todo.txt"), "precious").expect("write");
        let (root, removed) = WorkRoot::create(parent.path()).expect("work root");
        assert_eq!(removed, vec![dead_path.clone()]);
        assert!(!dead_path.exists());
        assert_eq!(std::fs::read_to_string(user.join("todo.txt")).expect("kept"), "precious");
        drop(root);
    }
}
