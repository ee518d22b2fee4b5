//! The last phase of a call: the task's result and its changes coming back — the outputs (in
//! parts when large), the result, the deleted paths and the changes archive, kept in memory
//! while small and past that in a temporary file in the call's scratch directory — checked
//! against what the agent announces at their end.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use prost::bytes::Bytes;

use super::sync_up::SyncUp;
use super::{AgentName, ClientError, TaskOutcome};
use crate::rpc::Transfer;
use crate::rpc::proto::{ChangesDeleted, ChangesEnd, TaskResult};
use crate::workspace::spill::{IN_MEMORY, Spill};
use crate::workspace::{Limits, RelPath};

/// What has come back so far of one call.
pub(super) struct Changes {
    /// The archive as it comes; taken only while a write runs off the async threads.
    archive: Option<Spill>,
    received: u64,
    deleted: Vec<RelPath>,
    outputs: Vec<u8>,
    result: Option<TaskResult>,
    scratch: PathBuf,
    transfer: Arc<Transfer>,
}

impl Changes {
    pub(super) fn new(scratch: PathBuf, transfer: Arc<Transfer>) -> Self {
        Changes {
            archive: Some(Spill::in_dir(scratch.clone())),
            received: 0,
            deleted: Vec::new(),
            outputs: Vec::new(),
            result: None,
            scratch,
            transfer,
        }
    }

    /// Part of the task's outputs (JSON), bounded like any large field.
    pub(super) fn outputs_part(&mut self, part: &[u8], agent: &AgentName) -> Result<(), ClientError> {
        self.outputs.extend_from_slice(part);
        if self.outputs.len() > crate::rpc::MAX_FIELD_BYTES {
            return Err(ClientError::failed(agent, "the task's outputs exceed the limit"));
        }
        Ok(())
    }

    /// How the task ended; its outputs are the parts that came before, unless it holds them.
    pub(super) fn result(&mut self, mut result: TaskResult) {
        if result.outputs_json.is_empty() {
            result.outputs_json = std::mem::take(&mut self.outputs);
        }
        self.result = Some(result);
    }

    /// Paths the task deleted, checked, no more than a workspace holds.
    pub(super) fn deleted(&mut self, more: ChangesDeleted, agent: &AgentName) -> Result<(), ClientError> {
        let paths = crate::rpc::manifest::paths_from_wire(more.paths).map_err(|e| ClientError::failed(agent, e))?;
        self.deleted.extend(paths);
        if self.deleted.len() as u64 > Limits::default().max_entries {
            return Err(ClientError::failed(agent, "the agent deleted more paths than a workspace holds"));
        }
        Ok(())
    }

    /// One chunk of the changes archive, bounded like any archive. Past what stays in memory
    /// the archive is a file: the write runs off the async threads.
    pub(super) async fn chunk(&mut self, chunk: Bytes, agent: &AgentName) -> Result<(), ClientError> {
        self.received += chunk.len() as u64;
        self.transfer.received_so_far(self.received);
        let max = Limits::default().max_bytes;
        if self.received > max {
            return Err(ClientError::failed(agent, format!("the changes exceed the limit of {max} bytes")));
        }
        if self.received <= IN_MEMORY as u64 {
            let archive = self.archive.as_mut().ok_or_else(|| lost_archive(&self.scratch))?;
            return archive.write_all(&chunk).map_err(ClientError::io(&self.scratch));
        }
        let mut archive = self.archive.take().ok_or_else(|| lost_archive(&self.scratch))?;
        let (archive, written) = blocking(&self.scratch, move || {
            let written = archive.write_all(&chunk);
            (archive, written)
        })
        .await?;
        self.archive = Some(archive);
        written.map_err(ClientError::io(&self.scratch))
    }

    /// The end of the changes: what the agent announces must be what came. The task's outcome,
    /// with what went up (`sync`).
    pub(super) async fn end(
        mut self,
        end: ChangesEnd,
        agent: &AgentName,
        sync: SyncUp,
    ) -> Result<TaskOutcome, ClientError> {
        if end.size != self.received || end.deleted != self.deleted.len() as u64 {
            return Err(ClientError::failed(
                agent,
                format!(
                    "changes truncated: announced {} bytes and {} deletions, received {} and {}",
                    end.size,
                    end.deleted,
                    self.received,
                    self.deleted.len()
                ),
            ));
        }
        let result =
            self.result.take().ok_or_else(|| ClientError::failed(agent, "the agent sent changes without a result"))?;
        let archive = self.archive.take().ok_or_else(|| lost_archive(&self.scratch))?;
        let (contents_sent, bytes_sent) = sync.sent_counts();
        // Finishing a file flushes it: off the async threads too.
        let archive =
            blocking(&self.scratch, move || archive.finish()).await?.map_err(ClientError::io(&self.scratch))?;
        Ok(TaskOutcome {
            ok: result.ok,
            message: result.message,
            outputs_json: result.outputs_json,
            exports_json: result.exports_json,
            changes: archive,
            changes_size: self.received,
            deleted: self.deleted,
            amended: sync.amended,
            contents_sent,
            bytes_sent,
            root: crate::workspace::root_meta::RootMeta::from_wire(
                end.root_mode,
                end.root_mtime_secs,
                end.root_mtime_nanos,
            ),
        })
    }
}

/// A write off the async threads that never came back (it panicked) took the archive with it.
fn lost_archive(scratch: &std::path::Path) -> ClientError {
    ClientError::Io { path: scratch.to_path_buf(), source: std::io::Error::other("the changes archive was lost") }
}

/// Runs file work on the blocking threads.
async fn blocking<T: Send + 'static>(
    scratch: &std::path::Path,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|stopped| ClientError::Io { path: scratch.to_path_buf(), source: std::io::Error::other(stopped) })
}
