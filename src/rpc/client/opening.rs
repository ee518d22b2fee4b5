//! The first phase of a call: the task with its scripts, then the workspace's manifest.

use tokio::sync::mpsc::Sender;

use super::Snapshot;
use crate::rpc::proto::execute_request::Item;
use crate::rpc::proto::{ExecuteRequest, ManifestChunk, ManifestEnd};
use crate::rpc::task_spec::TaskSpec;

/// The messages that open a call: the TaskRequest (carrying the rules the snapshot was taken
/// with), the parts and scripts it announces, the manifest in messages of about
/// [`MANIFEST_CHUNK_BYTES`](crate::rpc::MANIFEST_CHUNK_BYTES), and its end.
pub(super) fn messages(task: TaskSpec, workspace: &Snapshot) -> Vec<ExecuteRequest> {
    let (mut request, follow_ups) = task.into_messages();
    request.ignore = workspace.ignore.clone();
    let manifest = &workspace.manifest;
    let chunks = crate::rpc::manifest::to_wire_chunks(manifest, crate::rpc::MANIFEST_CHUNK_BYTES);
    let end = ManifestEnd { entries: manifest.entries.len() as u64 };
    std::iter::once(Item::Task(request))
        .map(|item| ExecuteRequest { item: Some(item) })
        .chain(follow_ups)
        .chain(
            chunks
                .into_iter()
                .map(|entries| ExecuteRequest { item: Some(Item::ManifestChunk(ManifestChunk { entries })) }),
        )
        .chain(std::iter::once(ExecuteRequest { item: Some(Item::ManifestEnd(end)) }))
        .collect()
}

/// Sends `messages` beside the call, so that the call starts while they go (the channel holds
/// only a few: memory stays bounded for any number of scripts or manifest entries); stops when
/// the call is over.
pub(super) fn send_beside(messages: Vec<ExecuteRequest>, tx: Sender<ExecuteRequest>) {
    tokio::spawn(async move {
        for message in messages {
            if tx.send(message).await.is_err() {
                return;
            }
        }
    });
}
