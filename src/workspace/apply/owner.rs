//! Whose an entry the apply places is: owners do not travel (the agent's tree is the agent
//! user's), so the master gives each staged entry the owner and group a run here would have
//! left it. A regular file the task wrote into keeps its owner and group, as a write in place
//! leaves a file — every name of a hard-link group that of the file one of its names held
//! here (`ln prog shared/prog` changes no file's group); anything new — a new file, a link or
//! pipe made anew (`ln -sf`, `mkfifo`), a file made anew where one was (`rm f; echo > f`,
//! `mv tmp f`: the archive says so) — is the master user's; a file the task moved where another
//! was (`mv c a`) is whose it was here, in the group its directory
//! hands down (a setgid directory's). What the system does not allow (a group this user is
//! not in, another user's file for a user who is not root) stays this user's.
//!
//! A setuid or setgid file the task gave another owner or group (`chown alice prog; chmod u+s
//! prog`: the archive says so) gets that owner or group, or, where this process cannot give
//! it, loses that bit and is named: the runner's own setuid program would be another, more
//! powerful program than the one the task made.
//!
//! An owner changed takes a file's setuid and setgid bits away (the kernel does): they are
//! given back.

use super::Apply;
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::{Kind, Stat};
use crate::workspace::manifest::{Entry, SETID_BITS};
use crate::workspace::rel_path::RelPath;
use crate::workspace::unpack::GivenOwner;

impl Apply<'_> {
    /// Gives the staged entry for `path` its owner and group (see the module's comment);
    /// `existing` is what the path holds here now.
    pub(super) fn give_owner(&mut self, path: &RelPath, existing: Option<&Stat>) -> Result<(), WorkspaceError> {
        let Some(staged) = self.staged_root.lstat(path)? else { return Ok(()) };
        let here = if staged.kind != Kind::File || self.made_anew_file(path) {
            // (A file made anew where one was — `rm f; (umask 077; echo secret > f)`, `mv tmp
            // f` — is the runner's as a run here makes it: given the old file's owner, what
            // the task meant to keep from them would be theirs.)
            None
        } else if self.moved_here(path) {
            // (Moved where another was, `mv c a`: the file that was `c` here, whose it is — the
            // runner's if that is not there as it was.)
            self.moved_owner(path)
        } else if self.linked.contains(path) {
            self.group_owner(path)?
        } else {
            existing.filter(|here| here.kind == Kind::File).copied()
        };
        let (uid, gid) = match &here {
            Some(here) => (self.privileged.then_some(here.uid), Some(here.gid)),
            None => (None, self.root.group_from_parent(path)?),
        };
        // A setuid or setgid file the task gave another owner or group: that one, or the bit
        // goes (the runner's own setuid program would be another, more powerful program).
        let given = self.given_to(path).filter(|_| staged.kind == Kind::File).unwrap_or_default();
        let mut mode = staged.mode;
        let uid = match given.uid {
            Some(to) if self.privileged || to == nix::unistd::geteuid().as_raw() => Some(to),
            Some(_) => {
                mode &= !0o4000;
                uid
            }
            None => uid,
        };
        let mut changed = self.chown_staged(path, &staged, uid, given.gid.or(gid))?;
        if changed == Some(false) && given.gid.is_some() {
            mode &= !0o2000;
            changed = self.chown_staged(path, &staged, uid, gid)?;
        }
        if mode != staged.mode {
            self.not_given.push(path.clone());
        }
        if mode != staged.mode || (changed == Some(true) && staged.kind == Kind::File && mode & SETID_BITS != 0) {
            self.staged_root.chmod(path, mode)?;
        }
        Ok(())
    }

    /// Gives the staged `path` owner `uid` and group `gid` where they are not its own: None
    /// when they are, else whether the system let this process.
    fn chown_staged(
        &self,
        path: &RelPath,
        staged: &Stat,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<Option<bool>, WorkspaceError> {
        let (uid, gid) = (uid.filter(|uid| *uid != staged.uid), gid.filter(|gid| *gid != staged.gid));
        if uid.is_none() && gid.is_none() {
            return Ok(None);
        }
        self.staged_root.chown(path, uid, gid).map(Some)
    }

    /// Whether the task made `path`'s file anew where one was (its hard-link group's first
    /// name carries the archive's record) rather than wrote into it.
    pub(super) fn made_anew_file(&self, path: &RelPath) -> bool {
        self.made_anew.contains(self.leader(path))
    }

    /// `path`'s file's hard-link group's first name.
    fn leader<'p>(&'p self, path: &'p RelPath) -> &'p RelPath {
        match self.staged.get(path) {
            Some(Entry::File { link: Some(leader), .. }) => leader,
            _ => path,
        }
    }

    /// Whether the task moved `path`'s file there from another path of the base.
    pub(super) fn moved_here(&self, path: &RelPath) -> bool {
        self.moved_from.contains_key(self.leader(path))
    }

    /// Whose the file the task moved to `path` is here, where it was when the task started.
    fn moved_owner(&self, path: &RelPath) -> Option<Stat> {
        self.moved_owners.get(self.leader(path)).copied()
    }

    /// The owner the archive says `path`'s file was given (its hard-link group's first name
    /// carries it).
    pub(super) fn given_to(&self, path: &RelPath) -> Option<GivenOwner> {
        self.given.get(self.leader(path)).copied()
    }

    /// The file here that `path`'s hard-link group is (found once per group: its first name is
    /// placed first, before any of its names is replaced): of the files its names held when
    /// the task started, the one whose content it still holds, else the one most of its names
    /// were — not a file one of its names held before the task linked it elsewhere
    /// (`rm a; ln c a`: the group is `c`'s file, not `a`'s).
    fn group_owner(&mut self, path: &RelPath) -> Result<Option<Stat>, WorkspaceError> {
        let leader = self.leader(path).clone();
        if let Some(found) = self.group_owners.get(&leader) {
            return Ok(*found);
        }
        let mut names: Vec<&RelPath> = std::iter::once(&leader)
            .chain(self.staged.iter().filter_map(|(name, entry)| match entry {
                Entry::File { link: Some(of), .. } if *of == leader => Some(name),
                _ => None,
            }))
            .collect();
        // Each name's file when the task started (its group's first name in the base), and
        // whether that file's content is the group's now.
        let content = match self.staged.get(&leader) {
            Some(Entry::File { hash, .. }) => Some(*hash),
            _ => None,
        };
        let was = |name: &RelPath| -> Option<(RelPath, bool)> {
            match self.base_entry(name) {
                Some(Entry::File { link, hash, .. }) => {
                    Some((link.clone().unwrap_or_else(|| name.clone()), content == Some(*hash)))
                }
                _ => None,
            }
        };
        let mut files: Vec<(RelPath, bool, usize)> = Vec::new();
        for name in &names {
            if let Some((file, same)) = was(name) {
                match files.iter_mut().find(|(known, ..)| *known == file) {
                    Some((_, _, count)) => *count += 1,
                    None => files.push((file, same, 1)),
                }
            }
        }
        if let Some((file, ..)) = files.iter().rev().max_by_key(|(_, same, count)| (*same, *count)) {
            // That file's names first.
            let file = file.clone();
            names.sort_by_key(|name| was(name).map_or(1, |(of, _)| usize::from(of != file)));
        }
        let mut found = None;
        for name in names {
            self.root.forget();
            if let Some(here) = self.root.lstat(name)?.filter(|here| here.kind == Kind::File) {
                found = Some(here);
                break;
            }
        }
        self.root.forget();
        self.group_owners.insert(leader, found);
        Ok(found)
    }
}
