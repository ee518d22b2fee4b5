//! Workspaces: scan, pack, unpack safely, diff and apply changes. Pure Rust, no Lua.
//!
//! A task's workspace travels to an agent as a manifest plus the contents the agent lacks (or,
//! through the lower-level API, as a tar + gzip archive); what the task changed comes back as
//! an archive plus a list of deleted paths, and is applied to the master's workspace by
//! staging everything aside first and renaming into place. Paths are bytes throughout
//! ([`RelPath`]); every filesystem write goes through [`beneath::Root`], which never follows
//! a link; building a tree from outside data goes through [`tree_writer::TreeWriter`].

use std::path::PathBuf;

pub mod apply;
pub mod beneath;
pub mod blob_pack;
pub mod blob_stream;
pub mod blobs;
mod buffer;
mod cache_home;
pub mod content_memo;
pub mod diff;
pub mod filter;
pub mod fs_clock;
mod in_order;
pub mod index;
pub mod journal;
pub mod manifest;
pub mod moved_out;
pub mod outline;
pub mod pack;
pub mod rel_path;
pub mod root_meta;
pub mod spill;
mod staging;
mod staging_proof;
pub mod tar_guard;
pub mod timestamp;
mod tree_processes;
mod tree_walk;
pub mod tree_watch;
pub mod tree_writer;
pub mod trees;
pub mod unpack;
pub mod unreadable;
pub mod warm;

pub use apply::{ApplyReport, Base, Step, apply, apply_interruptible, apply_observed, applying};
pub use blob_pack::{BlobPack, pack_blobs, pack_blobs_announcing};
pub use blobs::{Amendments, BlobCache, Build};
pub use diff::{Changes, diff};
pub use filter::Filter;
pub use journal::recover;
pub use manifest::{Entry, Manifest};
pub use pack::{pack, pack_marking};
pub use rel_path::RelPath;
pub use staging::is_apply_leftover;
pub use timestamp::Timestamp;
pub use unpack::{Limits, UnpackStats, unpack};

/// Why a workspace operation failed; every variant names the path or entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("no space left on device while {doing} {}", path.display())]
    NoSpace { doing: &'static str, path: PathBuf },
    #[error("refused archive entry '{entry}': {reason}")]
    UnsafeEntry { entry: String, reason: String },
    #[error("archive exceeds the {what} limit of {limit} at entry '{entry}'")]
    TooLarge { what: &'static str, limit: u64, entry: String },
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    #[error("invalid exclude pattern '{pattern}': {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("conflict: changed both here and by the task, nothing was applied: {}", details.join(", "))]
    Conflict { details: Vec<String> },
    #[error("{error}; every step was taken back except what changed here meanwhile: {kept}")]
    Undone { error: Box<WorkspaceError>, kept: String },
    /// A file the snapshot named was gone (removed, renamed away, its directory replaced) when
    /// its content was read to be sent: the workspace changed under the snapshot.
    #[error("{}: removed or replaced while the workspace was being sent", path.display())]
    Vanished { path: PathBuf },
}

impl WorkspaceError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| WorkspaceError::Io { path, source }
    }

    /// The disk (or a quota) running out, said plainly: "no space left on device while
    /// `doing` <path>"; any other error as it is.
    pub fn no_space_while(self, doing: &'static str) -> Self {
        if beneath::is_no_space(&self)
            && let WorkspaceError::Io { path, .. } = self
        {
            return WorkspaceError::NoSpace { doing, path };
        }
        self
    }
}
