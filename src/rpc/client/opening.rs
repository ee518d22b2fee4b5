//! The first phase of a call: the task with its scripts, then the workspace's manifest or its
//! outline.

use tokio::sync::mpsc::Sender;

use super::Snapshot;
use crate::rpc::proto::execute_request::Item;
use crate::rpc::proto::{ExecuteRequest, ManifestChunk, ManifestEnd, ManifestOutline};
use crate::rpc::task_spec::TaskSpec;
use crate::workspace::outline::{self, Part};
use crate::workspace::{Entry, RelPath};

/// Manifests of at least this many entries go by outline when the workspace has an identity
/// (an agent may hold a tree of it): smaller ones cost less whole than a round trip.
pub(super) const OUTLINE_MIN_ENTRIES: usize = 512;

/// The messages that open a call: the TaskRequest (carrying the rules the snapshot was taken
/// with), the parts and scripts it announces, then the manifest — whole, in messages of about
/// [`MANIFEST_CHUNK_BYTES`](crate::rpc::MANIFEST_CHUNK_BYTES), and its end; or its outline,
/// returned too (the agent asks for the parts it lacks).
pub(super) fn messages(task: TaskSpec, workspace: &Snapshot) -> (Vec<ExecuteRequest>, Option<Vec<Part>>) {
    let (mut request, follow_ups) = task.into_messages();
    request.ignore = workspace.ignore.clone();
    let manifest = &workspace.manifest;
    (request.root_mode, request.root_mtime_secs, request.root_mtime_nanos) =
        crate::workspace::root_meta::RootMeta::to_wire(manifest.root);
    let by_outline = !request.workspace.is_empty() && manifest.entries.len() >= OUTLINE_MIN_ENTRIES;
    let opening =
        std::iter::once(Item::Task(request)).map(|item| ExecuteRequest { item: Some(item) }).chain(follow_ups);
    if by_outline {
        let parts = outline::outline(&manifest.entries);
        let messages = opening.chain(outline_messages(&parts)).collect();
        return (messages, Some(parts));
    }
    let messages = opening.chain(entries_messages(manifest.entries.iter())).collect();
    (messages, None)
}

/// `entries` as ManifestChunk messages and their ManifestEnd.
pub(super) fn entries_messages<'a>(
    entries: impl Iterator<Item = (&'a RelPath, &'a Entry)>,
) -> impl Iterator<Item = ExecuteRequest> {
    let chunks = crate::rpc::batches(
        entries.map(|(path, entry)| crate::rpc::manifest::to_wire(path, entry)),
        crate::rpc::manifest::wire_size,
        crate::rpc::MANIFEST_CHUNK_BYTES,
    );
    let end = ManifestEnd { entries: chunks.iter().map(Vec::len).sum::<usize>() as u64 };
    chunks
        .into_iter()
        .map(|entries| Item::ManifestChunk(ManifestChunk { entries }))
        .chain(std::iter::once(Item::ManifestEnd(end)))
        .map(|item| ExecuteRequest { item: Some(item) })
}

/// The outline in messages of [`OUTLINE_PARTS_PER_MESSAGE`] parts, the last one marked.
fn outline_messages(parts: &[Part]) -> Vec<ExecuteRequest> {
    let chunks: Vec<&[Part]> = parts.chunks(OUTLINE_PARTS_PER_MESSAGE).collect();
    let last = chunks.len().saturating_sub(1);
    let mut messages: Vec<ExecuteRequest> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| ManifestOutline {
            hashes: chunk.iter().map(|part| part.hash.as_bytes().to_vec()).collect(),
            entries: chunk.iter().map(|part| part.entries).collect(),
            last: i == last,
        })
        .map(|outline| ExecuteRequest { item: Some(Item::Outline(outline)) })
        .collect();
    if messages.is_empty() {
        messages
            .push(ExecuteRequest { item: Some(Item::Outline(ManifestOutline { last: true, ..Default::default() })) });
    }
    messages
}

/// Parts per outline message (~36 bytes each encoded).
const OUTLINE_PARTS_PER_MESSAGE: usize = 16 * 1024;

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
