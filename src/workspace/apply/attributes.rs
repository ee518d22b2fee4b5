//! A file the task rewrote keeps, here, the extended attributes and the access ACL the file it
//! replaces had — as a run here that writes into the file leaves them: a colleague an ACL lets
//! read the file keeps reading it, `user.*` attributes (a download's origin, a tool's tags)
//! stay. `security.*` attributes do not: file capabilities go on a write (the kernel drops them),
//! and a security label is the policy's to give a new file.

use std::ffi::OsString;
use std::path::Path;

use super::Apply;
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::{Kind, Stat};
use crate::workspace::rel_path::RelPath;

/// The access ACL's attribute.
const ACL_ACCESS: &str = "system.posix_acl_access";

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
