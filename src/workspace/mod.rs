//! Workspaces: scan, pack, unpack safely, diff and apply changes. Pure Rust, no Lua.
//!
//! A task's workspace travels to an agent as a tar + gzip archive; what the task changed comes
//! back as another archive plus a list of deleted paths, and is applied to the master's
//! workspace by staging everything aside first and renaming into place.

use std::path::PathBuf;

pub mod apply;
pub mod blobs;
pub mod diff;
pub mod filter;
pub mod manifest;
pub mod pack;
mod safe_path;
pub mod unpack;

pub use apply::{ApplyReport, apply};
pub use blobs::{BlobCache, pack_blobs};
pub use diff::{Changes, diff};
pub use filter::Filter;
pub use manifest::{Entry, Manifest};
pub use pack::pack;
pub use unpack::{Limits, UnpackStats, unpack};

/// Why a workspace operation failed; every variant names the path or entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("refused archive entry '{entry}': {reason}")]
    UnsafeEntry { entry: String, reason: String },
    #[error("archive exceeds the {what} limit of {limit} at entry '{entry}'")]
    TooLarge { what: &'static str, limit: u64, entry: String },
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    #[error("invalid exclude pattern '{pattern}': {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("conflict: changed both here and by the task: {}", paths.join(", "))]
    Conflict { paths: Vec<String> },
    #[error("{path}: changed while it was being sent; nothing was sent, run again")]
    ChangedWhileSending { path: String },
}

impl WorkspaceError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| WorkspaceError::Io { path, source }
    }
}
