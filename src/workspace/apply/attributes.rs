//! Extended attributes and ACLs, as a run here leaves them.
//!
//! A file the task rewrote keeps, here, the extended attributes and the access ACL the file it
//! replaces had — as a run here that writes into the file leaves them: a colleague an ACL lets
//! read the file keeps reading it, `user.*` attributes (a download's origin, a tool's tags)
//! stay. `security.*` attributes do not: file capabilities go on a write (the kernel drops them),
//! and a security label is the policy's to give a new file.
//!
//! What the task made gets what the directory it lands in hands down here: a default ACL
//! (`setfacl -d -m o::- dir`, the usual way to keep a directory's new files private) becomes
//! its access ACL, its permissions masked by it, as creating it here would — not the agent's
//! umask modes (new files world-readable in a private directory); a directory gets the
//! default ACL too. Made in the staging directory, an entry holds what that hands down: taken
//! away where its own directory hands down nothing.

use std::ffi::OsString;
use std::path::Path;

use super::Apply;
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::{Kind, Stat};
use crate::workspace::rel_path::RelPath;

/// The access ACL's attribute.
const ACL_ACCESS: &str = "system.posix_acl_access";
/// A directory's default ACL's attribute.
const ACL_DEFAULT: &str = "system.posix_acl_default";

impl Apply<'_> {
    /// Gives the staged file for `path` the attributes of `existing`, the regular file the path
    /// holds here now; its mode stays the task's (an ACL's mask then follows it, as `chmod`
    /// moves it).
    pub(super) fn keep_attributes(&self, path: &RelPath, existing: Option<&Stat>) -> Result<(), WorkspaceError> {
        if !existing.is_some_and(|here| here.kind == Kind::File) {
            return Ok(());
        }
        let Some(staged) = self.staged_root.lstat(path)? else { return Ok(()) };
        if staged.kind != Kind::File {
            return Ok(());
        }
        let kept = self.root.with_named(path, read_kept)?.unwrap_or_default();
        if kept.is_empty() {
            return Ok(());
        }
        let mut acl = false;
        self.staged_root.with_named(path, |named| {
            for (name, value) in &kept {
                acl |= name == ACL_ACCESS;
                match xattr::set(named, name, value) {
                    Ok(()) => {}
                    // A filesystem (or a staging directory's) that takes none, or not this
                    // one: the file still lands, as `cp` would leave it.
                    Err(error) if not_taken(&error) => {
                        tracing::debug!(path = %path, attribute = ?name, %error, "an attribute is not kept");
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        })?;
        if acl {
            // Setting the ACL set the group's bits to its mask: the task's mode again.
            self.staged_root.chmod(path, staged.mode)?;
        }
        Ok(())
    }
}

/// Whether the staging directory `new` hands down a default ACL (then every entry made in it
/// holds one, to be taken away where its own directory here hands down none).
pub(super) fn hands_down(new: &Path) -> bool {
    xattr::get(new, ACL_DEFAULT).is_ok_and(|default| default.is_some())
}

impl Apply<'_> {
    /// The default ACL of the directory `path` goes into here (the workspace's root for a
    /// name at the top).
    /// Read once per directory (an apply of many new files reads each directory's once).
    fn handed_down(&self, path: &RelPath) -> Result<Option<Vec<u8>>, WorkspaceError> {
        let parent = path.parent();
        if let Some(known) = self.handed_down.borrow().get(&parent) {
            return Ok(known.clone());
        }
        let read = |named: &Path| match xattr::get(named, ACL_DEFAULT) {
            Err(error) if not_taken(&error) => Ok(None),
            other => other,
        };
        let default = match &parent {
            Some(parent) => self.root.with_named(parent, read)?.flatten(),
            None => read(self.root.path())
                .map_err(|source| WorkspaceError::Io { path: self.root.path().to_path_buf(), source })?,
        };
        self.handed_down.borrow_mut().insert(parent, default.clone());
        Ok(default)
    }

    /// Gives the staged file (or pipe) for `path`, new here, what its directory here hands
    /// down: the access ACL and the mode a file made there would have.
    pub(super) fn hand_down_to_staged(&self, path: &RelPath) -> Result<(), WorkspaceError> {
        // Nothing to give, and nothing the staging directory gave to take away (most applies):
        // no look at the staged file.
        if !self.staging_hands_down && self.handed_down(path)?.is_none() {
            return Ok(());
        }
        let Some(staged) = self.staged_root.lstat(path)? else { return Ok(()) };
        if !matches!(staged.kind, Kind::File | Kind::Fifo) {
            return Ok(());
        }
        let default = self.handed_down(path)?;
        let mode = set_handed_down(&self.staged_root, path, default.as_deref(), staged.mode, false)?;
        if mode != staged.mode {
            self.staged_root.chmod(path, mode)?;
        }
        Ok(())
    }

    /// Gives the directory made at `path` what the directory it is in hands down (its access
    /// and default ACLs); returns the mode it is to have in the end (`mode`, the task's,
    /// masked as making it there would).
    pub(super) fn hand_down_to_dir(&self, path: &RelPath, mode: u32) -> Result<u32, WorkspaceError> {
        let default = self.handed_down(path)?;
        set_handed_down(&self.root, path, default.as_deref(), mode, true)
    }
}

/// Sets on the entry at `path` of `on` the access ACL (and, for a directory, the default ACL)
/// that the default ACL `default` of its directory hands down to an entry made with `mode`; with
/// none, takes away any it holds. Returns the mode it then has.
fn set_handed_down(
    on: &crate::workspace::beneath::Root,
    path: &RelPath,
    default: Option<&[u8]>,
    mode: u32,
    dir: bool,
) -> Result<u32, WorkspaceError> {
    let masked = default.and_then(|default| masked(default, as_created(mode, dir)));
    on.with_named(path, |named| {
        let set_or_remove = |name: &str, value: Option<&[u8]>| {
            let done = match value {
                Some(value) => xattr::set(named, name, value),
                None => xattr::remove(named, name),
            };
            match done {
                Err(error) if not_taken(&error) => Ok(()),
                other => other,
            }
        };
        set_or_remove(ACL_ACCESS, masked.as_ref().map(|(acl, _)| acl.as_slice()))?;
        if dir {
            set_or_remove(ACL_DEFAULT, masked.as_ref().and(default))?;
        }
        Ok(())
    })?;
    Ok(masked.map_or(mode, |(_, mode)| mode))
}

/// The mode an entry the task made with `mode` (on the agent, under the run's umask) was most
/// likely created with: where a default ACL is handed down the kernel applies no umask, so an
/// entry of the usual mode under it (0666 or 0777, less the umask) was made with that usual
/// mode; any other is the mode the task gave it.
fn as_created(mode: u32, dir: bool) -> u32 {
    let usual = if dir { 0o777 } else { 0o666 };
    match crate::process::umask_at_start() {
        Some(umask) if mode & 0o777 == usual & !umask => (mode & !0o777) | usual,
        _ => mode,
    }
}

/// ACL entry tags (`<linux/posix_acl.h>`).
const USER_OBJ: u16 = 0x01;
const GROUP_OBJ: u16 = 0x04;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// The access ACL an entry made with `mode` gets from its directory's default ACL `default`
/// (in its stored form: version 2, then entries of tag, permissions and id), and its mode:
/// the owner's, the mask's (the owning group's, without a mask) and others' permissions
/// masked by `mode`'s, as the kernel does. None for a default ACL it cannot read.
fn masked(default: &[u8], mode: u32) -> Option<(Vec<u8>, u32)> {
    let (header, entries) = default.split_at_checked(4)?;
    if u32::from_le_bytes(header.try_into().ok()?) != 2 || entries.len() % 8 != 0 {
        return None;
    }
    let tag_of = |entry: &[u8]| u16::from_le_bytes([entry[0], entry[1]]);
    let has_mask = entries.chunks(8).any(|entry| tag_of(entry) == MASK);
    let mut acl = default.to_vec();
    let (mut user, mut group, mut other) = (0, 0, 0);
    for entry in acl[4..].chunks_mut(8) {
        let perm = u32::from(u16::from_le_bytes([entry[2], entry[3]]));
        let (shift, slot) = match tag_of(entry) {
            USER_OBJ => (6, &mut user),
            MASK => (3, &mut group),
            GROUP_OBJ if !has_mask => (3, &mut group),
            OTHER => (0, &mut other),
            _ => continue,
        };
        let kept = perm & (mode >> shift) & 0o7;
        *slot = kept;
        entry[2..4].copy_from_slice(&(kept as u16).to_le_bytes());
    }
    Some((acl, (mode & !0o777) | (user << 6) | (group << 3) | other))
}

/// The attributes of the file at `named` that a rewrite keeps.
fn read_kept(named: &Path) -> std::io::Result<Vec<(OsString, Vec<u8>)>> {
    let mut kept = Vec::new();
    let names = match xattr::list(named) {
        Ok(names) => names,
        Err(error) if not_taken(&error) => return Ok(kept),
        Err(error) => return Err(error),
    };
    for name in names {
        let keep = name.to_str().is_some_and(|name| name.starts_with("user.") || name == ACL_ACCESS);
        if !keep {
            continue;
        }
        match xattr::get(named, &name) {
            Ok(Some(value)) => kept.push((name, value)),
            Ok(None) => {}
            Err(error) if not_taken(&error) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(kept)
}

/// The filesystem keeps no such attributes (or not for this kind of file), or this process may
/// not read or set them: nothing to keep, as `cp` would leave it.
fn not_taken(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(nix::libc::ENOTSUP | nix::libc::EPERM | nix::libc::EACCES | nix::libc::ENODATA | nix::libc::E2BIG)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut bytes = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in entries {
            bytes.extend_from_slice(&tag.to_le_bytes());
            bytes.extend_from_slice(&perm.to_le_bytes());
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn an_entry_made_under_a_default_acl_has_its_permissions_masked_by_the_mode_it_was_made_with() {
        const ANY: u32 = u32::MAX;
        // user::rwx group::r-x other::--- : a file made 0644 is 0640, a directory 0755 is 0750.
        let private = acl(&[(USER_OBJ, 7, ANY), (GROUP_OBJ, 5, ANY), (OTHER, 0, ANY)]);
        assert_eq!(masked(&private, 0o644).map(|(_, mode)| mode), Some(0o640));
        assert_eq!(masked(&private, 0o755).map(|(_, mode)| mode), Some(0o750));
        assert_eq!(masked(&private, 0o4700).map(|(_, mode)| mode), Some(0o4700), "special bits kept");
        // With a named user and a mask: the mask takes the group's bits, the owning group's entry stays.
        let shared = acl(&[(USER_OBJ, 7, ANY), (0x02, 6, 65534), (GROUP_OBJ, 7, ANY), (MASK, 7, ANY), (OTHER, 5, ANY)]);
        let (made, mode) = masked(&shared, 0o640).expect("readable");
        assert_eq!(mode, 0o640);
        assert_eq!(
            made,
            acl(&[(USER_OBJ, 6, ANY), (0x02, 6, 65534), (GROUP_OBJ, 7, ANY), (MASK, 4, ANY), (OTHER, 0, ANY)])
        );
        assert_eq!(masked(&[1, 0, 0, 0], 0o644), None, "another version");
        assert_eq!(masked(&private[..7], 0o644), None, "cut short");
    }
}
