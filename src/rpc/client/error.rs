//! Why a call to an agent failed, and how a transport failure is told apart from an answer.

use std::path::PathBuf;

use crate::workspace::WorkspaceError;

/// Why a call to an agent failed, naming the agent's address.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the agent at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the agent at {address} refused the call: {reason}")]
    Refused { address: String, reason: String },
    #[error("the agent at {address} failed: {reason}")]
    Failed { address: String, reason: String },
    #[error("the agent at {address} stopped answering during the task: {reason}")]
    Lost { address: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// Reading the contents the agent asked for from the workspace at `root`.
    #[error("{}: {source}", root.display())]
    Pack { root: PathBuf, source: WorkspaceError },
}

impl ClientError {
    /// The agent at `address` broke the conversation (a message out of place, past a limit).
    pub(super) fn failed(address: &str, reason: impl Into<String>) -> Self {
        ClientError::Failed { address: address.to_owned(), reason: reason.into() }
    }

    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ClientError::Io { path, source }
    }
}

/// Whether a status is the transport failing (the connection reset, closed or timed out)
/// rather than something the agent answered.
pub(super) fn transport_broke(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if cause.downcast_ref::<h2::Error>().is_some_and(|e| e.is_io() || e.is_go_away() || e.is_reset())
            || cause.downcast_ref::<std::io::Error>().is_some()
            || cause.downcast_ref::<hyper::Error>().is_some()
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The innermost cause of an error (for a broken connection: what the socket said).
pub(super) fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An error with its sources, which is where transport errors keep the useful part; a cause
/// whose text is already there is not repeated.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
