//! What kind of failure an error is, as scripts tell failures apart (`err.kind` in Lua): what
//! happened, never how it was worded. The kinds follow the real failures — an agent nothing
//! listens for, a token or certificate refused, a call past its time, a connection lost, a
//! change that conflicts, a full disk, a crafted entry — so that the engine's decisions (is
//! this agent healthy? what should the user check?) rest on them and not on message text.

use crate::workspace::WorkspaceError;
use crate::workspace::beneath::is_no_space;

/// A failure's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The agent could not be reached: nothing listens there, the network, a TLS mismatch.
    Unreachable,
    /// The agent refused the call: a missing or wrong token, a certificate it does not accept,
    /// a task it will not run as asked.
    Refused,
    /// A call or command took longer than it was given.
    Timeout,
    /// The connection to the agent broke during the task.
    Lost,
    /// The agent failed the call for a reason of its own.
    Failed,
    /// A path changed both here and by the task: nothing was applied.
    Conflict,
    /// A disk (here or the agent's) or a quota ran out.
    NoSpace,
    /// Refused as unsafe or malformed: a crafted archive entry, a bad manifest, past a size or
    /// entry limit, a corrupt archive, an invalid pattern.
    Invalid,
    /// A file could not be read or written.
    Io,
    /// A command exited with a code other than 0.
    Exit,
    /// A command was killed by a signal.
    Signal,
}

impl ErrorKind {
    /// Every kind, in the order the definitions for editors list them.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::Unreachable,
        ErrorKind::Refused,
        ErrorKind::Timeout,
        ErrorKind::Lost,
        ErrorKind::Failed,
        ErrorKind::Conflict,
        ErrorKind::NoSpace,
        ErrorKind::Invalid,
        ErrorKind::Io,
        ErrorKind::Exit,
        ErrorKind::Signal,
    ];

    /// The kind as scripts see it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Refused => "refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Lost => "lost",
            ErrorKind::Failed => "failed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NoSpace => "no_space",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Io => "io",
            ErrorKind::Exit => "exit",
            ErrorKind::Signal => "signal",
        }
    }

    /// The kind of a workspace error.
    pub fn of_workspace(error: &WorkspaceError) -> Self {
        match error {
            WorkspaceError::NoSpace { .. } => ErrorKind::NoSpace,
            error @ WorkspaceError::Io { .. } if is_no_space(error) => ErrorKind::NoSpace,
            WorkspaceError::Io { source, .. } => Self::of_io(source),
            WorkspaceError::Conflict { .. } | WorkspaceError::Vanished { .. } => ErrorKind::Conflict,
            WorkspaceError::Undone { error, .. } => Self::of_workspace(error),
            WorkspaceError::Refused { .. }
            | WorkspaceError::UnsafeEntry { .. }
            | WorkspaceError::TooLarge { .. }
            | WorkspaceError::Corrupt(_)
            | WorkspaceError::Pattern { .. } => ErrorKind::Invalid,
        }
    }

    /// The kind of an I/O error: a full disk or quota (ENOSPC, EDQUOT), or any other.
    pub fn of_io(error: &std::io::Error) -> Self {
        if is_no_space_io(error) { ErrorKind::NoSpace } else { ErrorKind::Io }
    }
}

/// Whether an I/O error is the disk or a quota running out (ENOSPC, EDQUOT) — by its kind,
/// which wrappers keep (tempfile's errors name the path and have no OS code of their own).
pub fn is_no_space_io(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

/// The file or archive entry a workspace error is about, when it names one.
pub fn workspace_path(error: &WorkspaceError) -> Option<String> {
    match error {
        WorkspaceError::Io { path, .. }
        | WorkspaceError::NoSpace { path, .. }
        | WorkspaceError::Refused { path, .. }
        | WorkspaceError::Vanished { path } => Some(path.display().to_string()),
        WorkspaceError::UnsafeEntry { entry, .. } | WorkspaceError::TooLarge { entry, .. } => Some(entry.clone()),
        WorkspaceError::Undone { error, .. } => workspace_path(error),
        WorkspaceError::Corrupt(_) | WorkspaceError::Pattern { .. } | WorkspaceError::Conflict { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_errors_have_the_kind_of_what_happened() {
        let full = WorkspaceError::Io {
            path: "/w/a".into(),
            source: std::io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32),
        };
        assert_eq!(ErrorKind::of_workspace(&full), ErrorKind::NoSpace);
        assert_eq!(workspace_path(&full).as_deref(), Some("/w/a"));
        let crafted = WorkspaceError::UnsafeEntry { entry: "../x".into(), reason: "escapes".into() };
        assert_eq!(ErrorKind::of_workspace(&crafted), ErrorKind::Invalid);
        assert_eq!(workspace_path(&crafted).as_deref(), Some("../x"));
        let conflict = WorkspaceError::Conflict { details: vec!["'a' (changed here)".into()] };
        assert_eq!(ErrorKind::of_workspace(&conflict), ErrorKind::Conflict);
        let undone = WorkspaceError::Undone { error: Box::new(conflict), kept: String::new() };
        assert_eq!(ErrorKind::of_workspace(&undone), ErrorKind::Conflict);
        let denied = std::io::Error::from_raw_os_error(nix::errno::Errno::EACCES as i32);
        assert_eq!(ErrorKind::of_io(&denied), ErrorKind::Io);
        let quota = std::io::Error::from_raw_os_error(nix::errno::Errno::EDQUOT as i32);
        assert_eq!(ErrorKind::of_io(&quota), ErrorKind::NoSpace);
    }

    #[test]
    fn a_full_disk_is_no_space_also_when_a_wrapper_names_the_path() {
        // What tempfile returns when making a file on a full disk: the OS error inside, its
        // kind outside, no OS code of its own.
        let full = std::io::Error::from_raw_os_error(nix::errno::Errno::ENOSPC as i32);
        let wrapped = std::io::Error::new(full.kind(), format!("{full} at path \"/scratch/.tmpX\""));
        assert_eq!(wrapped.raw_os_error(), None);
        assert_eq!(ErrorKind::of_io(&wrapped), ErrorKind::NoSpace);
        let workspace = WorkspaceError::Io { path: "/w/a".into(), source: wrapped };
        assert_eq!(ErrorKind::of_workspace(&workspace), ErrorKind::NoSpace);
        assert!(crate::workspace::beneath::is_no_space(&workspace));
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> = ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
