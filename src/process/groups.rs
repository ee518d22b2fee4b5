//! A command's process groups: the one it leads, and those its descendants made of their own
//! (a timeout or a cancellation kills them with it).

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Kills the process group it names when dropped.
pub(super) struct GroupGuard {
    pub(super) leader: Pid,
    /// The leader was reaped: the processes it left in groups of their own cannot be found
    /// from it any more (nor need they be looked for: see [`GroupGuard::other_groups`]).
    pub(super) ended: std::cell::Cell<bool>,
}

impl GroupGuard {
    pub(super) fn new(leader: Pid) -> Self {
        Self { leader, ended: std::cell::Cell::new(false) }
    }

    pub(super) fn signal(&self, signal: Signal) {
        // ESRCH (the group is already gone) is the normal case after a clean exit.
        let _ = killpg(self.leader, signal);
    }

    /// The process groups the leader's descendants made of their own (coreutils `timeout`, a
    /// shell's `set -m` job), found while the leader lives (a stopped command's tree is whole
    /// then): a timeout or a cancellation kills them with the command's own group. (One that
    /// leaves for a session of its own, `setsid`, is a service meant to outlive the task.)
    pub(super) fn other_groups(&self) -> Vec<Pid> {
        if self.ended.get() {
            return Vec::new();
        }
        descendant_groups(self.leader)
    }

    /// `signal` to the [`GroupGuard::other_groups`], then to the group.
    pub(super) fn signal_tree(&self, signal: Signal) {
        signal_groups(&self.other_groups(), self.leader, signal);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // Dropped while the leader runs: the caller stopped waiting (a cancelled task).
        self.signal_tree(Signal::SIGKILL);
        crate::reaper::note(self.leader.as_raw(), false);
    }
}

/// `signal` to the process group `leader` leads and to the groups its descendants made of
/// their own (see [`descendant_groups`]).
pub(crate) fn signal_tree(leader: Pid, signal: Signal) {
    signal_groups(&descendant_groups(leader), leader, signal);
}

/// `signal` to each of `others`, then to the group `leader` leads (ESRCH, a group gone, is
/// the normal case after a clean exit).
pub(super) fn signal_groups(others: &[Pid], leader: Pid, signal: Signal) {
    for other in others {
        let _ = killpg(*other, signal);
    }
    let _ = killpg(leader, signal);
}

/// The process groups, other than `leader`'s own and this process's, of the processes in this
/// process's session descending from `leader` (`/proc`: every process's parent, group and
/// session, one read each).
fn descendant_groups(leader: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    // The task's processes are in this process's session (its leader only leads a group).
    let own_session = nix::unistd::getsid(None).map_or(0, Pid::as_raw);
    let mut children: std::collections::HashMap<i32, Vec<(i32, i32)>> = std::collections::HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid pgrp ...`: the name may hold anything but ends at the last ')'.
        let mut fields = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace();
        let (Some(ppid), Some(pgrp), Some(session)) = (fields.nth(1), fields.next(), fields.next()) else { continue };
        if let (Ok(ppid), Ok(pgrp), Ok(session)) = (ppid.parse::<i32>(), pgrp.parse::<i32>(), session.parse::<i32>()) {
            // A process in a session of its own (`setsid`) is a service meant to outlive the
            // task: its group is not the task's (nor are its own descendants').
            let group = if session == own_session { pgrp } else { 0 };
            children.entry(ppid).or_default().push((pid, group));
        }
    }
    let own = nix::unistd::getpgrp().as_raw();
    let mut groups = Vec::new();
    let mut pending = vec![leader.as_raw()];
    let mut seen = std::collections::HashSet::new();
    while let Some(parent) = pending.pop() {
        if !seen.insert(parent) {
            continue;
        }
        for &(pid, pgrp) in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            if pgrp > 1 && pgrp != leader.as_raw() && pgrp != own && !groups.contains(&Pid::from_raw(pgrp)) {
                groups.push(Pid::from_raw(pgrp));
            }
            pending.push(pid);
        }
    }
    groups
}
