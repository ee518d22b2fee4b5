//! The second phase of a call: the workspace's contents on their way up. The agent asks for
//! the contents its cache lacks (NeedBlobs); they are read from the master's files into a
//! temporary archive off the async threads, then uploaded beside the call, so that the task's
//! events keep coming while a large workspace streams with bounded memory.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc::Sender;
use tokio::task::JoinSet;

use super::{AgentName, ClientError, Snapshot};
use crate::events::TaskEvent;
use crate::rpc::Transfer;
use crate::rpc::chunks;
use crate::rpc::proto::execute_request::Item;
use crate::rpc::proto::{ExecuteRequest, FileEntry, ManifestChunk, NeedBlobs, NeedParts, WorkspaceEnd};
use crate::workspace::outline::Part;
use crate::workspace::{BlobPack, Entry, Limits, Manifest, RelPath, pack_blobs};

/// The contents sent once, and once more for any the agent's cache held but failed to verify.
const MAX_ROUNDS: u32 = 2;

/// The workspace on its way up, for one call.
pub(super) struct SyncUp {
    root: PathBuf,
    /// What the agent's copy is built from: the snapshot, with the files sent as read.
    sent: Arc<Manifest>,
    /// Contents asked for in the round still being announced.
    needed: Vec<blake3::Hash>,
    rounds: u32,
    /// The call's request stream: open until the call ends, since the agent may ask again.
    tx: Sender<ExecuteRequest>,
    scratch: PathBuf,
    transfer: Arc<Transfer>,
    uploads: JoinSet<Result<(), ClientError>>,
    /// The outline the manifest was offered by, while its parts are still to be asked for.
    outline: Option<Vec<Part>>,
    parts_asked: Vec<u32>,
    /// The parts asked for were sent.
    parts_sent: bool,
    /// Files that changed while they were read here: they went to the agent as read.
    pub(super) amended: Vec<(RelPath, Entry)>,
    /// Contents sent, and the bytes of their archives.
    pub(super) contents_sent: u64,
    pub(super) bytes_sent: u64,
}

impl SyncUp {
    pub(super) fn new(
        workspace: Snapshot,
        tx: Sender<ExecuteRequest>,
        scratch: PathBuf,
        transfer: Arc<Transfer>,
    ) -> Self {
        SyncUp {
            root: workspace.root,
            sent: workspace.manifest,
            needed: Vec::new(),
            rounds: 0,
            tx,
            scratch,
            transfer,
            uploads: JoinSet::new(),
            outline: None,
            parts_asked: Vec::new(),
            parts_sent: false,
            amended: Vec::new(),
            contents_sent: 0,
            bytes_sent: 0,
        }
    }

    /// The manifest went by `outline` (None: whole).
    pub(super) fn offered(&mut self, outline: Option<Vec<Part>>) {
        self.outline = outline;
    }

    /// Takes one NeedParts message; once the last is in, sends the entries of exactly the
    /// parts asked for, in order, and their end. Parts are asked for once, by index, ascending.
    pub(super) fn on_need_parts(&mut self, need: &NeedParts, agent: &AgentName) -> Result<(), ClientError> {
        let Some(parts) = &self.outline else {
            let reason = if self.parts_sent {
                "the agent asked for manifest parts again, after the last of them"
            } else {
                "the agent asked for parts of a manifest that was not outlined"
            };
            return Err(ClientError::failed(agent, reason));
        };
        for &index in &need.parts {
            let after_last = self.parts_asked.last().is_none_or(|&last| index > last);
            if index as usize >= parts.len() || !after_last {
                return Err(ClientError::failed(
                    agent,
                    format!("the agent asked for manifest part {index}, not one of the outline's in order"),
                ));
            }
            self.parts_asked.push(index);
        }
        if !need.last {
            return Ok(());
        }
        let parts = self.outline.take().unwrap_or_default();
        self.parts_sent = true;
        let asked = std::mem::take(&mut self.parts_asked);
        let mut asked = asked.iter().peekable();
        let mut entries = self.sent.entries.iter();
        let mut chosen = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            let wanted = asked.next_if_eq(&&(index as u32)).is_some();
            for entry in entries.by_ref().take(part.entries as usize) {
                if wanted {
                    chosen.push(entry);
                }
            }
        }
        let messages = super::opening::entries_messages(chosen.into_iter()).collect();
        super::opening::send_beside(messages, self.tx.clone());
        Ok(())
    }

    /// Takes one NeedBlobs message; once the last of a round is in, packs what was asked for
    /// and starts its upload (or says at once that nothing follows). Amended files are
    /// reported through `on_event`.
    pub(super) async fn on_need(
        &mut self,
        need: &NeedBlobs,
        agent: &AgentName,
        on_event: &mut impl FnMut(TaskEvent),
    ) -> Result<(), ClientError> {
        let hashes = crate::rpc::manifest::hashes_from_wire(&need.hashes).map_err(|e| ClientError::failed(agent, e))?;
        self.needed.extend(hashes);
        if self.needed.len() as u64 > Limits::default().max_entries {
            return Err(ClientError::failed(agent, "the agent asked for more contents than a workspace holds"));
        }
        if !need.last {
            return Ok(());
        }
        self.rounds += 1;
        if self.rounds > MAX_ROUNDS {
            return Err(ClientError::failed(agent, "the agent asked for the workspace's contents more than twice"));
        }
        let hashes = std::mem::take(&mut self.needed);
        if hashes.is_empty() {
            // The agent has every content: no archive, just its end.
            let end = Item::WorkspaceEnd(WorkspaceEnd { size: 0 });
            let _ = self.tx.send(ExecuteRequest { item: Some(end) }).await;
            return Ok(());
        }
        let packed = pack(self.root.clone(), Arc::clone(&self.sent), hashes, self.scratch.clone()).await?;
        let report = packed.report;
        if !report.amended.is_empty() {
            let mut updated = (*self.sent).clone();
            updated.entries.extend(report.amended.iter().cloned());
            self.sent = Arc::new(updated);
        }
        for (path, _) in &report.amended {
            on_event(TaskEvent::Log {
                level: tracing::Level::WARN,
                message: format!("{path} changed while it was being sent; the task gets it as it was read"),
                fields: String::new(),
            });
        }
        let amendments: Vec<FileEntry> =
            report.amended.iter().map(|(path, entry)| crate::rpc::manifest::to_wire(path, entry)).collect();
        self.amended.extend(report.amended);
        self.contents_sent += report.sent;
        self.bytes_sent += packed.size;
        self.transfer.will_send(packed.size);
        self.uploads.spawn(upload(packed.archive, amendments, self.tx.clone(), Arc::clone(&self.transfer)));
        Ok(())
    }

    /// The first upload that fails; pending while none has.
    pub(super) async fn failure(&mut self) -> ClientError {
        loop {
            match self.uploads.join_next().await {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => return error,
                Some(Err(stopped)) => {
                    return ClientError::Io { path: self.scratch.clone(), source: std::io::Error::other(stopped) };
                }
                None => std::future::pending().await,
            }
        }
    }
}

/// The contents asked for, packed: the archive, what went into it, and its size.
struct Packed {
    archive: tempfile::NamedTempFile,
    report: BlobPack,
    size: u64,
}

/// Packs the contents `hashes` of the files of `manifest` under `root` into a temporary
/// archive in `scratch`, off the async threads.
async fn pack(
    root: PathBuf,
    manifest: Arc<Manifest>,
    hashes: Vec<blake3::Hash>,
    scratch: PathBuf,
) -> Result<Packed, ClientError> {
    let place = scratch.clone();
    tokio::task::spawn_blocking(move || {
        let archive = tempfile::NamedTempFile::new_in(&scratch).map_err(ClientError::io(&scratch))?;
        let file = archive.reopen().map_err(ClientError::io(archive.path()))?;
        let report = pack_blobs(&root, &manifest, &hashes, std::io::BufWriter::new(file), &scratch)
            .map_err(|source| ClientError::Pack { root: root.clone(), source })?;
        let size = archive.as_file().metadata().map_err(ClientError::io(archive.path()))?.len();
        Ok(Packed { archive, report, size })
    })
    .await
    .map_err(|stopped| ClientError::Io { path: place, source: std::io::Error::other(stopped) })?
}

/// Sends the amendments, then the archive in chunks and its end, keeping the temporary file
/// until it is sent. A read error fails the task, naming the archive; a call that ended first
/// (the other side dropped) leaves nothing to report.
async fn upload(
    archive: tempfile::NamedTempFile,
    amended: Vec<FileEntry>,
    tx: Sender<ExecuteRequest>,
    transfer: Arc<Transfer>,
) -> Result<(), ClientError> {
    for entries in crate::rpc::batches(amended, |entry| entry.path.len() + 80, crate::rpc::MANIFEST_CHUNK_BYTES) {
        let item = Item::Amended(ManifestChunk { entries });
        if tx.send(ExecuteRequest { item: Some(item) }).await.is_err() {
            return Ok(());
        }
    }
    let path = archive.path().to_path_buf();
    let file = tokio::fs::File::open(&path).await.map_err(ClientError::io(&path))?;
    let (tx, transfer) = (&tx, &transfer);
    let sent = chunks::send_all(chunks::of_file(file), |chunk| async move {
        let length = chunk.len() as u64;
        let taken = tx.send(ExecuteRequest { item: Some(Item::WorkspaceChunk(chunk)) }).await.is_ok();
        if taken {
            transfer.sent(length);
        }
        taken
    })
    .await
    .map_err(ClientError::io(&path))?;
    if let Some(size) = sent {
        let _ = tx.send(ExecuteRequest { item: Some(Item::WorkspaceEnd(WorkspaceEnd { size })) }).await;
    }
    // Removing the file is file work too: off the async threads.
    tokio::task::spawn_blocking(move || drop(archive));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of `count` directories, offered by its outline; the messages it sends.
    fn outlined(count: usize) -> (SyncUp, Vec<Part>, tokio::sync::mpsc::Receiver<ExecuteRequest>) {
        let manifest = Manifest {
            entries: (0..count)
                .map(|i| {
                    let path = RelPath::parse(format!("d{i:05}").as_bytes()).expect("path");
                    (path, Entry::Dir { mode: 0o755, mtime: crate::workspace::Timestamp::default() })
                })
                .collect(),
            ..Default::default()
        };
        let parts = crate::workspace::outline::outline(&manifest.entries);
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let workspace =
            Snapshot { root: PathBuf::from("/nonexistent"), manifest: Arc::new(manifest), ignore: Vec::new() };
        let mut sync = SyncUp::new(workspace, tx, std::env::temp_dir(), Arc::default());
        sync.offered(Some(parts.clone()));
        (sync, parts, rx)
    }

    fn agent() -> AgentName {
        AgentName { address: "127.0.0.1:1".into(), name: None }
    }

    #[tokio::test]
    async fn the_master_sends_exactly_the_parts_asked_for_in_order() {
        let (mut sync, parts, mut rx) = outlined(1500);
        assert!(parts.len() > 4, "{} parts", parts.len());
        sync.on_need_parts(&NeedParts { parts: vec![0], last: false }, &agent()).expect("first");
        sync.on_need_parts(&NeedParts { parts: vec![2, 4], last: true }, &agent()).expect("last");
        let mut received = Vec::new();
        let end = loop {
            let message = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await.expect("sent");
            match message.and_then(|message| message.item) {
                Some(Item::ManifestChunk(chunk)) => received.extend(chunk.entries),
                Some(Item::ManifestEnd(end)) => break end.entries,
                other => panic!("unexpected {other:?}"),
            }
        };
        let starts: Vec<usize> =
            parts.iter().scan(0, |at, part| Some(std::mem::replace(at, *at + part.entries as usize))).collect();
        let expected: Vec<Vec<u8>> = [0, 2, 4]
            .iter()
            .flat_map(|&i| (starts[i]..starts[i] + parts[i].entries as usize).map(|n| format!("d{n:05}").into_bytes()))
            .collect();
        assert_eq!(received.iter().map(|entry| entry.path.clone()).collect::<Vec<_>>(), expected);
        assert_eq!(end, expected.len() as u64);
    }

    #[test]
    fn parts_asked_for_out_of_order_twice_beyond_the_outline_or_again_are_refused() {
        let cases: [(&str, Vec<NeedParts>, &str); 6] = [
            ("descending", vec![NeedParts { parts: vec![2, 1], last: true }], "manifest part 1"),
            ("twice", vec![NeedParts { parts: vec![1, 1], last: true }], "manifest part 1"),
            (
                "twice, in two messages",
                vec![NeedParts { parts: vec![1], last: false }, NeedParts { parts: vec![1], last: true }],
                "manifest part 1",
            ),
            ("beyond the outline", vec![NeedParts { parts: vec![999], last: true }], "manifest part 999"),
            (
                "again after the last",
                vec![NeedParts { parts: vec![0], last: true }, NeedParts { parts: vec![1], last: true }],
                "again",
            ),
            (
                "again, nothing the first time",
                vec![NeedParts { parts: vec![], last: true }, NeedParts { parts: vec![], last: true }],
                "again",
            ),
        ];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        let _entered = runtime.enter();
        for (label, needs, expected) in cases {
            let (mut sync, _, _rx) = outlined(1500);
            let (last, first) = needs.split_last().expect("a message");
            for need in first {
                sync.on_need_parts(need, &agent()).expect(label);
            }
            let error = sync.on_need_parts(last, &agent()).expect_err(label).to_string();
            assert!(error.contains(expected), "{label}: {error}");
        }
        // A manifest sent whole has no parts.
        let (mut sync, _, _rx) = outlined(10);
        sync.offered(None);
        let error = sync.on_need_parts(&NeedParts { parts: vec![0], last: true }, &agent()).expect_err("whole");
        assert!(error.to_string().contains("not outlined"), "{error}");
    }

    #[tokio::test]
    async fn an_archive_that_cannot_be_read_fails_the_call_naming_it() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let archive = tempfile::NamedTempFile::new_in(scratch.path()).expect("temp file");
        let path = archive.path().to_path_buf();
        std::fs::remove_file(&path).expect("remove");
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let workspace = Snapshot { root: scratch.path().to_path_buf(), manifest: Arc::default(), ignore: Vec::new() };
        let mut sync = SyncUp::new(workspace, tx.clone(), scratch.path().to_path_buf(), Arc::default());
        sync.uploads.spawn(upload(archive, Vec::new(), tx, Arc::default()));
        let error = tokio::time::timeout(std::time::Duration::from_secs(10), sync.failure()).await.expect("reported");
        assert!(matches!(&error, ClientError::Io { path: named, .. } if *named == path), "{error}");
        assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    }
}
