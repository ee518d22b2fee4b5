//! The second phase of a call: the workspace's contents on their way up. The agent asks for
//! the contents its cache lacks (NeedBlobs); they are read from the master's files into a
//! temporary archive off the async threads, then uploaded beside the call, so that the task's
//! events keep coming while a large workspace streams with bounded memory.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prost::bytes::Bytes;

use tokio::sync::mpsc::Sender;
use tokio::task::JoinSet;

use super::{AgentName, ClientError, Snapshot};
use crate::events::TaskEvent;
use crate::rpc::proto::execute_request::Item;
use crate::rpc::proto::{ExecuteRequest, ManifestChunk, NeedBlobs, NeedParts, WorkspaceEnd};
use crate::rpc::{CHUNK_SIZE, Transfer};
use crate::workspace::blob_stream::BlobFormat;
use crate::workspace::outline::Part;
use crate::workspace::{Entry, Limits, Manifest, RelPath, WorkspaceError, pack_blobs_announcing};

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
    /// What the uploads sent, as they send it.
    sending: Arc<Sending>,
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
            sending: Arc::default(),
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
        let format = BlobFormat::from_wire(need.blob_format).ok_or_else(|| {
            ClientError::failed(
                agent,
                format!(
                    "the agent asks for its contents in a form this master does not know ({}): update the master",
                    need.blob_format
                ),
            )
        })?;
        // A round asked for again finds the files sent as read under their new contents.
        self.take_amended(on_event);
        let to_send = sizes_of(&self.sent, &hashes);
        self.transfer.will_send(to_send);
        let packing = Packing {
            root: self.root.clone(),
            manifest: Arc::clone(&self.sent),
            hashes,
            scratch: self.scratch.clone(),
            tx: self.tx.clone(),
            transfer: Arc::clone(&self.transfer),
            sending: Arc::clone(&self.sending),
            amended_in_archive: need.amended_in_archive,
            format,
            agent: agent.clone(),
            to_send,
        };
        self.uploads.spawn(async move {
            let place = packing.scratch.clone();
            tokio::task::spawn_blocking(move || packing.run())
                .await
                .map_err(|stopped| ClientError::Io { path: place, source: std::io::Error::other(stopped) })?
        });
        Ok(())
    }

    /// Files found changed as they were sent since this was last asked: the task gets them as
    /// they were read (each told through `on_event`), and they are the master's base for them.
    pub(super) fn take_amended(&mut self, on_event: &mut impl FnMut(TaskEvent)) {
        let taken = self.sending.amended_since(self.amended.len());
        if taken.is_empty() {
            return;
        }
        for (path, _) in &taken {
            on_event(TaskEvent::Log {
                level: tracing::Level::WARN,
                message: format!("{path} changed while it was being sent; the task gets it as it was read"),
                fields: String::new(),
            });
        }
        let mut updated = (*self.sent).clone();
        updated.entries.extend(taken.iter().cloned());
        self.sent = Arc::new(updated);
        self.amended.extend(taken);
    }

    /// Contents sent, and the bytes of their archives.
    pub(super) fn sent_counts(&self) -> (u64, u64) {
        (self.sending.contents.load(Ordering::Relaxed), self.sending.bytes.load(Ordering::Relaxed))
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

/// What the uploads of a call have sent so far, as they send it.
#[derive(Debug, Default)]
struct Sending {
    /// Files that changed while they were read, as they went.
    amended: Mutex<Vec<(RelPath, Entry)>>,
    /// Contents sent, and the bytes of their archives.
    contents: AtomicU64,
    bytes: AtomicU64,
}

impl Sending {
    /// The amended files after the first `seen`.
    fn amended_since(&self, seen: usize) -> Vec<(RelPath, Entry)> {
        let amended = self.amended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        amended.get(seen..).map(<[_]>::to_vec).unwrap_or_default()
    }
}

/// The bytes of the contents `hashes` as `manifest`'s files hold them (one file each): what
/// the archive of them will be about, before it is compressed.
fn sizes_of(manifest: &Manifest, hashes: &[blake3::Hash]) -> u64 {
    let wanted: HashSet<&blake3::Hash> = hashes.iter().collect();
    let mut counted = HashSet::new();
    manifest
        .entries
        .values()
        .filter_map(|entry| match entry {
            Entry::File { hash, size, .. } if wanted.contains(hash) && counted.insert(*hash) => Some(*size),
            _ => None,
        })
        .sum()
}

/// One archive of contents asked for, packed off the async threads as it is sent: it goes up
/// in chunks while later files are still being read and compressed (the agent writes them as
/// they come), instead of being packed whole first. A file found changed as it was read is
/// announced (Amended) ahead of its new content.
struct Packing {
    root: PathBuf,
    manifest: Arc<Manifest>,
    hashes: Vec<blake3::Hash>,
    scratch: PathBuf,
    tx: Sender<ExecuteRequest>,
    transfer: Arc<Transfer>,
    sending: Arc<Sending>,
    /// The agent takes announcements in the archive's stream (earlier versions do not).
    amended_in_archive: bool,
    /// The form of archive the agent takes.
    format: BlobFormat,
    agent: AgentName,
    /// What [`Transfer::will_send`] was told, corrected to what went once it is known.
    to_send: u64,
}

impl Packing {
    /// Packs and sends the archive and its end. A file that cannot be read fails the call,
    /// naming it; a call that ended first (the other side dropped) leaves nothing to report.
    fn run(self) -> Result<(), ClientError> {
        let Packing {
            root,
            manifest,
            hashes,
            scratch,
            tx,
            transfer,
            sending,
            amended_in_archive,
            format,
            agent,
            to_send,
        } = self;
        let mut out = ChunkWriter::new(tx.clone(), Arc::clone(&transfer));
        let announce = |path: &RelPath, entry: &Entry| {
            if !amended_in_archive {
                return Err(WorkspaceError::Refused {
                    path: root.join(path.as_path()),
                    reason: format!(
                        "changed while it was being sent, and {agent} (an earlier version) takes such a file only \
                         before the archive: run the task again, or update the agent"
                    ),
                });
            }
            let item = Item::Amended(ManifestChunk { entries: vec![crate::rpc::manifest::to_wire(path, entry)] });
            // Ahead of any byte of the new content: what is still buffered came before it.
            if tx.blocking_send(ExecuteRequest { item: Some(item) }).is_err() {
                return Err(WorkspaceError::Io { path: scratch.clone(), source: call_ended() });
            }
            sending
                .amended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((path.clone(), entry.clone()));
            Ok(())
        };
        let packed = pack_blobs_announcing(&root, &manifest, &hashes, (&mut out, format), &scratch, announce);
        let report = match packed {
            Ok(report) => report,
            Err(_) if out.closed => return Ok(()),
            Err(source) => return Err(ClientError::Pack { root, source }),
        };
        let size = out.size;
        sending.contents.fetch_add(report.sent, Ordering::Relaxed);
        sending.bytes.fetch_add(size, Ordering::Relaxed);
        // The bar's total becomes what went (compressed), now that it is known.
        transfer.to_send.fetch_add(size, Ordering::Relaxed);
        transfer.to_send.fetch_sub(to_send, Ordering::Relaxed);
        let _ = tx.blocking_send(ExecuteRequest { item: Some(Item::WorkspaceEnd(WorkspaceEnd { size })) });
        Ok(())
    }
}

/// The call's request stream ended (the call is over).
fn call_ended() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the call ended")
}

/// An archive written into the call's request stream in chunks of [`CHUNK_SIZE`], from a
/// blocking thread: a full stream holds the writer back.
struct ChunkWriter {
    tx: Sender<ExecuteRequest>,
    transfer: Arc<Transfer>,
    buffer: Vec<u8>,
    /// Bytes sent.
    size: u64,
    /// The call ended: nothing more goes.
    closed: bool,
}

impl ChunkWriter {
    fn new(tx: Sender<ExecuteRequest>, transfer: Arc<Transfer>) -> Self {
        ChunkWriter { tx, transfer, buffer: Vec::with_capacity(CHUNK_SIZE), size: 0, closed: false }
    }

    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_SIZE)));
        let length = chunk.len() as u64;
        if self.tx.blocking_send(ExecuteRequest { item: Some(Item::WorkspaceChunk(chunk)) }).is_err() {
            self.closed = true;
            return Err(call_ended());
        }
        self.transfer.sent(length);
        self.size += length;
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK_SIZE - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK_SIZE {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
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
    async fn a_file_that_cannot_be_read_fails_the_call_naming_it() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let hash = blake3::hash(b"gone");
        let path = RelPath::parse(b"gone.txt").expect("path");
        let entry =
            Entry::File { mode: 0o644, size: 4, hash, mtime: crate::workspace::Timestamp::default(), link: None };
        let manifest = Manifest { entries: [(path, entry)].into_iter().collect(), ..Default::default() };
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let workspace =
            Snapshot { root: scratch.path().to_path_buf(), manifest: Arc::new(manifest), ignore: Vec::new() };
        let mut sync = SyncUp::new(workspace, tx, scratch.path().to_path_buf(), Arc::default());
        let need =
            NeedBlobs { hashes: vec![hash.as_bytes().to_vec()], last: true, amended_in_archive: true, blob_format: 1 };
        sync.on_need(&need, &agent(), &mut |_| {}).await.expect("asked");
        let error = tokio::time::timeout(std::time::Duration::from_secs(10), sync.failure()).await.expect("reported");
        assert!(matches!(&error, ClientError::Pack { .. }), "{error}");
        assert!(error.to_string().contains("gone.txt"), "{error}");
        // Nothing announced the archive's end.
        while let Ok(message) = rx.try_recv() {
            assert!(!matches!(message.item, Some(Item::WorkspaceEnd(_))), "{message:?}");
        }
    }

    #[tokio::test]
    async fn a_file_changed_as_it_was_sent_to_an_agent_that_takes_no_announcement_in_the_archive_fails_the_call() {
        let scratch = tempfile::tempdir().expect("tempdir");
        std::fs::write(scratch.path().join("moved.txt"), "now").expect("write");
        let hash = blake3::hash(b"then");
        let path = RelPath::parse(b"moved.txt").expect("path");
        let entry =
            Entry::File { mode: 0o644, size: 4, hash, mtime: crate::workspace::Timestamp::default(), link: None };
        let manifest = Manifest { entries: [(path, entry)].into_iter().collect(), ..Default::default() };
        for takes_them in [false, true] {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let workspace = Snapshot {
                root: scratch.path().to_path_buf(),
                manifest: Arc::new(manifest.clone()),
                ignore: Vec::new(),
            };
            let mut sync = SyncUp::new(workspace, tx, scratch.path().to_path_buf(), Arc::default());
            let need = NeedBlobs {
                hashes: vec![hash.as_bytes().to_vec()],
                last: true,
                amended_in_archive: takes_them,
                blob_format: u32::from(takes_them),
            };
            sync.on_need(&need, &agent(), &mut |_| {}).await.expect("asked");
            let mut items = Vec::new();
            let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                loop {
                    tokio::select! {
                        failed = sync.failure() => return Err(failed),
                        message = rx.recv() => {
                            let item = message.and_then(|message| message.item).expect("a message");
                            let end = matches!(item, Item::WorkspaceEnd(_));
                            items.push(item);
                            if end {
                                return Ok(());
                            }
                        }
                    }
                }
            })
            .await
            .expect("in time");
            if takes_them {
                ended.expect("sent");
                // The announcement first, then the archive with the content as read.
                assert!(matches!(items.first(), Some(Item::Amended(chunk)) if chunk.entries.len() == 1), "{items:?}");
                assert!(items[1..].iter().all(|item| !matches!(item, Item::Amended(_))), "{items:?}");
                let mut taken = Vec::new();
                sync.take_amended(&mut |event| taken.push(format!("{event:?}")));
                assert!(
                    taken.iter().any(|line| line.contains("moved.txt changed while it was being sent")),
                    "{taken:?}"
                );
            } else {
                let error = ended.expect_err("refused").to_string();
                assert!(error.contains("moved.txt") && error.contains("earlier version"), "{error}");
                assert!(items.iter().all(|item| !matches!(item, Item::WorkspaceEnd(_))), "{items:?}");
            }
        }
    }

    #[tokio::test]
    async fn contents_asked_for_in_a_form_this_master_does_not_know_fail_the_call_saying_so() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let workspace = Snapshot { root: scratch.path().to_path_buf(), manifest: Arc::default(), ignore: Vec::new() };
        let mut sync = SyncUp::new(workspace, tx, scratch.path().to_path_buf(), Arc::default());
        let need = NeedBlobs {
            hashes: vec![blake3::hash(b"x").as_bytes().to_vec()],
            last: true,
            amended_in_archive: true,
            blob_format: 7,
        };
        let error = sync.on_need(&need, &agent(), &mut |_| {}).await.expect_err("an unknown form").to_string();
        assert!(error.contains("(7)") && error.contains("update the master"), "{error}");
    }
}
