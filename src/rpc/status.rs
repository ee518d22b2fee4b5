//! The agent's failures as gRPC statuses whose code says whose they are, so that the master
//! (and a script, through the error's kind) can tell a crafted workspace from a full disk from
//! the agent's own trouble. Messages keep naming the path or entry concerned.

use std::path::Path;

use tonic::Status;

use crate::error_kind::ErrorKind;
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::is_no_space;

/// A workspace error met while the agent builds, stores or reads a task's tree:
/// - the disk or a quota running out: RESOURCE_EXHAUSTED;
/// - what the master sent being unsafe or malformed (a crafted entry, a corrupt archive, past a
///   limit, a bad ignore pattern): INVALID_ARGUMENT;
/// - a conflict: ABORTED (the agent applies nothing, so this would be its own doing);
/// - anything else — an unexpected I/O error, the agent's own tree changing under it: INTERNAL.
pub(super) fn of_workspace(error: WorkspaceError) -> Status {
    let error = error.no_space_while("building the workspace at");
    let code = code_of(&error);
    Status::new(code, error.to_string())
}

fn code_of(error: &WorkspaceError) -> tonic::Code {
    use tonic::Code;
    match error {
        WorkspaceError::NoSpace { .. } => Code::ResourceExhausted,
        error @ WorkspaceError::Io { .. } if is_no_space(error) => Code::ResourceExhausted,
        WorkspaceError::UnsafeEntry { .. }
        | WorkspaceError::TooLarge { .. }
        | WorkspaceError::Corrupt(_)
        | WorkspaceError::Pattern { .. } => Code::InvalidArgument,
        WorkspaceError::Conflict { .. } | WorkspaceError::Vanished { .. } => Code::Aborted,
        WorkspaceError::Undone { error, .. } => code_of(error),
        WorkspaceError::Io { .. } | WorkspaceError::Refused { .. } => Code::Internal,
    }
}

/// An I/O error on a file of the agent's own (a task's directory, a spooled archive): the
/// disk running out is RESOURCE_EXHAUSTED, anything else INTERNAL; the message says what was
/// being done, and where.
pub(super) fn of_io(doing: &str, path: &Path, error: &std::io::Error) -> Status {
    let message = format!("{doing} {}: {error}", path.display());
    match ErrorKind::of_io(error) {
        ErrorKind::NoSpace => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use tonic::Code;

    #[test]
    fn a_full_disk_a_crafted_entry_and_the_agent_s_own_trouble_have_their_codes() {
        let full =
            WorkspaceError::Io { path: "/w/a".into(), source: std::io::Error::from_raw_os_error(Errno::ENOSPC as i32) };
        let status = of_workspace(full);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("/w/a"), "{}", status.message());
        let quota = std::io::Error::from_raw_os_error(Errno::EDQUOT as i32);
        assert_eq!(of_io("storing the workspace at", Path::new("/w/b"), &quota).code(), Code::ResourceExhausted);

        let crafted = WorkspaceError::UnsafeEntry { entry: "../x".into(), reason: "escapes".into() };
        let status = of_workspace(crafted);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("../x"), "{}", status.message());

        let denied =
            WorkspaceError::Io { path: "/w/c".into(), source: std::io::Error::from_raw_os_error(Errno::EACCES as i32) };
        assert_eq!(of_workspace(denied).code(), Code::Internal);
        let undone = WorkspaceError::Undone {
            error: Box::new(WorkspaceError::Corrupt("truncated".into())),
            kept: String::new(),
        };
        assert_eq!(of_workspace(undone).code(), Code::InvalidArgument);
    }
}
