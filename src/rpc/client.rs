//! The master's side of the wire: connect to an agent, ask its info, run a task on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use super::MAX_MESSAGE;
use super::Transfer;
use super::auth::{SendToken, Token};
use super::proto::agent_client::AgentClient as GrpcClient;
use super::proto::execute_request::Item;
use super::proto::execute_response::Event;
use super::proto::{
    ExecuteRequest, InfoRequest, InfoResponse, ManifestChunk, ManifestEnd, ScriptFile, TaskRequest, WorkspaceEnd,
    output_line,
};
use super::tls::ClientTls;
use crate::workspace::spill::{Spill, Spilled};
use std::os::unix::ffi::OsStringExt;

use crate::events::TaskEvent;
use crate::process::OutputStream;
use crate::workspace::{BlobPack, Entry, Manifest, RelPath, pack_blobs};

/// How often an open connection to an agent is checked.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(3);
/// How long an agent has to answer that check.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

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
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What the master sends with a task (the workspace goes separately, as a file).
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    pub group: String,
    pub task: String,
    pub pipeline: String,
    pub scripts: Vec<(String, Vec<u8>)>,
    pub params_json: Vec<u8>,
    pub deps_json: Vec<u8>,
    pub values_json: Vec<u8>,
    /// Files keep their setuid and setgid bits (`workspace.setuid`).
    pub setuid: bool,
    /// The umask the task runs under (the master's).
    pub umask: Option<u32>,
    /// `workspace.same_path`: the workspace's absolute path on the master, where the agent
    /// shows its copy to the task.
    pub same_path: Option<PathBuf>,
    /// Who the workspace is (a digest of this machine and the workspace's path): tasks of the
    /// same workspace may reuse the agent's tree. Empty: a fresh tree.
    pub workspace: String,
    /// Which run of the master it belongs to (random per master VM): a later task of the same
    /// run and pipeline may find the pipeline read already on the agent. Empty: a fresh VM.
    pub run: String,
}

impl TaskSpec {
    /// The request message (announcing the scripts and parts) and the messages that follow
    /// it: parts of its large fields, and the scripts.
    pub fn into_messages(self) -> (TaskRequest, Vec<ExecuteRequest>) {
        let scripts: Vec<ScriptFile> =
            self.scripts.into_iter().map(|(path, content)| ScriptFile { path, content }).collect();
        let request = TaskRequest {
            group: self.group,
            task: self.task,
            pipeline: self.pipeline,
            scripts: scripts.len() as u32,
            params_json: self.params_json,
            deps_json: self.deps_json,
            values_json: self.values_json,
            incremental: false,
            ignore: Vec::new(),
            setuid: self.setuid,
            umask: self.umask,
            same_path: self.same_path.map(|path| path.into_os_string().into_vec()).unwrap_or_default(),
            workspace: self.workspace,
            parts: 0,
            run: self.run,
        };
        let mut request = request;
        let follow_ups = super::parts::follow_ups(&mut request, scripts);
        (request, follow_ups)
    }

    /// The spec a request and its scripts describe.
    pub fn from_messages(request: TaskRequest, scripts: Vec<ScriptFile>) -> Self {
        TaskSpec {
            group: request.group,
            task: request.task,
            pipeline: request.pipeline,
            scripts: scripts.into_iter().map(|file| (file.path, file.content)).collect(),
            params_json: request.params_json,
            deps_json: request.deps_json,
            values_json: request.values_json,
            setuid: request.setuid,
            umask: request.umask,
            same_path: (!request.same_path.is_empty())
                .then(|| PathBuf::from(std::ffi::OsString::from_vec(request.same_path))),
            workspace: request.workspace,
            run: request.run,
        }
    }
}

/// How the workspace travels.
#[derive(Debug, Clone)]
pub enum WorkspaceSource {
    /// A whole-workspace archive (tar + gzip).
    Archive(PathBuf),
    /// Incremental: the manifest goes first and only the contents the agent lacks follow,
    /// read from `root`; `ignore` is the rules the manifest was taken with.
    Incremental { root: PathBuf, manifest: Arc<Manifest>, ignore: Vec<String> },
}

/// How a remote task ended, with its changes.
#[derive(Debug)]
pub struct TaskOutcome {
    pub ok: bool,
    pub message: Option<String>,
    pub outputs_json: Vec<u8>,
    /// The changes archive (tar + gzip), in memory or in a temporary file.
    pub changes: Spilled,
    pub deleted: Vec<RelPath>,
    /// Files that changed while they were read here: they went to the agent as read, so the
    /// task started from these entries, not from the snapshot's.
    pub amended: Vec<(RelPath, Entry)>,
    /// Contents sent to the agent for this task, and the bytes of their archives.
    pub contents_sent: u64,
    pub bytes_sent: u64,
}

/// A connection to one agent; cheap to clone (one HTTP/2 channel underneath).
#[derive(Clone, Debug)]
pub struct AgentClient {
    address: String,
    grpc: GrpcClient<InterceptedService<Channel, SendToken>>,
}

impl AgentClient {
    /// Connects to `address` (`host:port`), failing after `connect_timeout`; over TLS when
    /// `tls` is given.
    pub async fn connect(
        address: &str,
        token: Option<&Token>,
        tls: Option<&ClientTls>,
        connect_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let written = address;
        let unreachable = |reason: String| ClientError::Unreachable { address: written.to_owned(), reason };
        let (address, https) = host_and_port(written, tls.is_some()).map_err(unreachable)?;
        // An `https://` address without tls settings trusts the system's roots.
        let system_roots = ClientTls::default();
        let tls = tls.or(https.then_some(&system_roots));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| unreachable(format!("invalid address: {e}")))?;
        if let Some(tls) = tls {
            let host = address.rsplit_once(':').map_or(address, |(host, _)| host).trim_matches(['[', ']']);
            let config = tls.config(host).map_err(|e| unreachable(e.to_string()))?;
            endpoint = endpoint.tls_config(config).map_err(|e| unreachable(format!("TLS: {}", error_chain(&e))))?;
        }
        let endpoint = endpoint
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            // An agent that stops answering (stopped, cut off) is noticed within ~8 s, even in
            // the middle of a task that prints nothing: a ping every 3 s, 5 s to answer it.
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = endpoint.connect().await.map_err(|e| unreachable(error_chain(&e)))?;
        let interceptor =
            SendToken::new(token).map_err(|reason| ClientError::Refused { address: written.to_owned(), reason })?;
        let grpc = GrpcClient::with_interceptor(channel, interceptor)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Self { address: written.to_owned(), grpc })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub async fn info(&mut self) -> Result<InfoResponse, ClientError> {
        let response = self.grpc.info(InfoRequest {}).await.map_err(|s| self.status_error(&s))?;
        Ok(response.into_inner())
    }

    /// Sends `task` with its workspace, reports events as they arrive, and receives the
    /// result and the changes (in memory, or a temporary file in `scratch` past a size).
    pub async fn execute(
        &mut self,
        task: TaskSpec,
        workspace: WorkspaceSource,
        scratch: &std::path::Path,
        on_event: impl FnMut(TaskEvent),
    ) -> Result<TaskOutcome, ClientError> {
        self.execute_watched(task, workspace, scratch, &Arc::default(), on_event).await
    }

    /// [`execute`](Self::execute), counting the bytes each way in `transfer` as they go.
    pub async fn execute_watched(
        &mut self,
        task: TaskSpec,
        workspace: WorkspaceSource,
        scratch: &std::path::Path,
        transfer: &Arc<Transfer>,
        mut on_event: impl FnMut(TaskEvent),
    ) -> Result<TaskOutcome, ClientError> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (mut request, scripts) = task.into_messages();
        let mut pending_upload = None;
        let mut manifest_chunks = Vec::new();
        match &workspace {
            WorkspaceSource::Archive(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|source| ClientError::Io { path: path.clone(), source })?;
                transfer.will_send(file.metadata().await.map_or(0, |meta| meta.len()));
                pending_upload = Some(file);
            }
            WorkspaceSource::Incremental { manifest, ignore, .. } => {
                request.incremental = true;
                request.ignore = ignore.clone();
                manifest_chunks = super::manifest::to_wire_chunks(manifest, super::MANIFEST_CHUNK_BYTES);
            }
        }
        let first = ExecuteRequest { item: Some(Item::Task(request)) };
        let incremental = match &workspace {
            WorkspaceSource::Incremental { manifest, .. } => Some(manifest.entries.len() as u64),
            WorkspaceSource::Archive(_) => None,
        };
        // The request, the scripts and the manifest stream in messages well under gRPC's
        // limit, beside the call; an archive upload follows them on the same channel.
        let sender = tx.clone();
        let (preamble_done, preamble_finished) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _done = preamble_done;
            if sender.send(first).await.is_err() {
                return;
            }
            for message in scripts {
                if sender.send(message).await.is_err() {
                    return;
                }
            }
            if let Some(entries) = incremental {
                for chunk in manifest_chunks {
                    let item = Item::ManifestChunk(ManifestChunk { entries: chunk });
                    if sender.send(ExecuteRequest { item: Some(item) }).await.is_err() {
                        return;
                    }
                }
                let _ = sender.send(ExecuteRequest { item: Some(Item::ManifestEnd(ManifestEnd { entries })) }).await;
            }
        });
        // Uploads run beside the call so that a large workspace streams with bounded memory.
        // The call's request stream stays open until the call ends (the agent may ask for
        // contents again); whole-archive uploads take the only sender.
        let mut tx = Some(tx);
        let upload = pending_upload.map(|file| {
            let sender = tx.take();
            let transfer = Arc::clone(transfer);
            tokio::spawn(async move {
                // After the preamble, so the archive never overtakes it.
                let _ = preamble_finished.await;
                upload(file, sender, &transfer).await;
            })
        });
        let response = self.grpc.execute(ReceiverStream::new(rx)).await;
        let mut inbound = match response {
            Ok(response) => response.into_inner(),
            Err(status) => {
                if let Some(upload) = upload {
                    upload.abort();
                }
                return Err(self.status_error(&status));
            }
        };

        let mut changes = Spill::default();
        let changes_error = |source| ClientError::Io { path: std::env::temp_dir(), source };
        let mut result = None;
        let mut received: u64 = 0;
        let mut needed = Vec::new();
        let mut deleted = Vec::new();
        let mut amended = Vec::new();
        let mut outputs_parts = Vec::new();
        // What the agent's copy is built from: the snapshot, with the files sent as read.
        let mut sent_manifest = match &workspace {
            WorkspaceSource::Incremental { manifest, .. } => Some(Arc::clone(manifest)),
            WorkspaceSource::Archive(_) => None,
        };
        // The contents once, and once more for any the agent's cache held but failed to verify.
        let mut rounds = 0;
        let (mut contents_sent, mut bytes_sent) = (0u64, 0u64);
        // The changes a task sends back are bounded like any archive.
        let max_changes = crate::workspace::Limits::default().max_bytes;
        loop {
            let message = inbound.message().await.map_err(|s| self.stream_error(&s))?;
            let Some(message) = message else {
                return Err(self.failed("the agent ended the call before sending the changes"));
            };
            match message.event {
                Some(Event::Log(log)) => on_event(TaskEvent::Log {
                    level: log.level.parse().unwrap_or(tracing::Level::INFO),
                    message: log.message,
                    fields: log.fields,
                }),
                Some(Event::Output(line)) if line.stream == output_line::Stream::Print as i32 => {
                    on_event(TaskEvent::Print { text: line.line, more: line.more });
                }
                Some(Event::Output(line)) => on_event(TaskEvent::Output {
                    stream: if line.stream == output_line::Stream::Stderr as i32 {
                        OutputStream::Stderr
                    } else {
                        OutputStream::Stdout
                    },
                    line: line.line,
                }),
                Some(Event::Need(need)) => {
                    let (WorkspaceSource::Incremental { root, .. }, Some(manifest)) = (&workspace, &sent_manifest)
                    else {
                        return Err(self.failed("the agent asked for contents of a whole-archive workspace"));
                    };
                    needed.extend(super::manifest::hashes_from_wire(&need.hashes).map_err(|e| self.failed(&e))?);
                    if needed.len() as u64 > crate::workspace::Limits::default().max_entries {
                        return Err(self.failed("the agent asked for more contents than a workspace holds"));
                    }
                    if !need.last {
                        continue;
                    }
                    rounds += 1;
                    if rounds > 2 {
                        return Err(self.failed("the agent asked for the workspace's contents more than twice"));
                    }
                    let hashes = std::mem::take(&mut needed);
                    if hashes.is_empty() {
                        // The agent has every content: no archive, just its end.
                        if let Some(sender) = &tx {
                            let end = Item::WorkspaceEnd(WorkspaceEnd { size: 0 });
                            let _ = sender.send(ExecuteRequest { item: Some(end) }).await;
                        }
                        continue;
                    }
                    let (blobs, report) =
                        pack_needed(root.clone(), Arc::clone(manifest), hashes, scratch.to_path_buf()).await?;
                    if !report.amended.is_empty() {
                        let mut updated = (**manifest).clone();
                        updated.entries.extend(report.amended.iter().cloned());
                        sent_manifest = Some(Arc::new(updated));
                    }
                    let file = tokio::fs::File::from_std(
                        blobs
                            .reopen()
                            .map_err(|source| ClientError::Io { path: blobs.path().to_path_buf(), source })?,
                    );
                    for (path, _) in &report.amended {
                        on_event(TaskEvent::Log {
                            level: tracing::Level::WARN,
                            message: format!("{path} changed while it was being sent; the task gets it as it was read"),
                            fields: String::new(),
                        });
                    }
                    let amendments: Vec<_> =
                        report.amended.iter().map(|(path, entry)| super::manifest::to_wire(path, entry)).collect();
                    amended.extend(report.amended);
                    contents_sent += report.sent;
                    let size = blobs.as_file().metadata().map_or(0, |meta| meta.len());
                    bytes_sent += size;
                    transfer.will_send(size);
                    tokio::spawn(upload_then_drop(file, amendments, tx.clone(), blobs, Arc::clone(transfer)));
                }
                Some(Event::OutputsPart(part)) => {
                    outputs_parts.extend_from_slice(&part);
                    if outputs_parts.len() > super::MAX_FIELD_BYTES {
                        return Err(self.failed("the task's outputs exceed the limit"));
                    }
                }
                Some(Event::Result(mut task_result)) => {
                    if task_result.outputs_json.is_empty() {
                        task_result.outputs_json = std::mem::take(&mut outputs_parts);
                    }
                    result = Some(task_result);
                }
                Some(Event::Deleted(more)) => {
                    deleted.extend(super::manifest::paths_from_wire(more.paths).map_err(|e| self.failed(&e))?);
                    if deleted.len() as u64 > crate::workspace::Limits::default().max_entries {
                        return Err(self.failed("the agent deleted more paths than a workspace holds"));
                    }
                }
                Some(Event::ChangesChunk(chunk)) => {
                    received += chunk.len() as u64;
                    transfer.received_so_far(received);
                    if received > max_changes {
                        return Err(self.failed(&format!("the changes exceed the limit of {max_changes} bytes")));
                    }
                    std::io::Write::write_all(&mut changes, &chunk).map_err(changes_error)?;
                }
                Some(Event::ChangesEnd(end)) => {
                    if end.size != received || end.deleted != deleted.len() as u64 {
                        return Err(self.failed(&format!(
                            "changes truncated: announced {} bytes and {} deletions, received {received} and {}",
                            end.size,
                            end.deleted,
                            deleted.len()
                        )));
                    }
                    let result = result.ok_or_else(|| self.failed("the agent sent changes without a result"))?;
                    return Ok(TaskOutcome {
                        ok: result.ok,
                        message: result.message,
                        outputs_json: result.outputs_json,
                        changes: changes.finish().map_err(changes_error)?,
                        deleted: std::mem::take(&mut deleted),
                        amended: std::mem::take(&mut amended),
                        contents_sent,
                        bytes_sent,
                    });
                }
                None => {}
            }
        }
    }

    fn failed(&self, reason: &str) -> ClientError {
        ClientError::Failed { address: self.address.clone(), reason: reason.to_owned() }
    }

    /// A failure of the call after it started: a broken transport is a lost connection; what
    /// the agent said is [`AgentClient::status_error`].
    fn stream_error(&self, status: &tonic::Status) -> ClientError {
        if transport_broke(status) {
            return ClientError::Lost { address: self.address.clone(), reason: root_cause(status) };
        }
        self.status_error(status)
    }

    fn status_error(&self, status: &tonic::Status) -> ClientError {
        let address = self.address.clone();
        let reason =
            if status.message().is_empty() { format!("{:?}", status.code()) } else { status.message().to_owned() };
        match status.code() {
            Code::Unavailable => ClientError::Unreachable { address, reason },
            Code::Unauthenticated | Code::PermissionDenied => ClientError::Refused { address, reason },
            _ => ClientError::Failed { address, reason },
        }
    }
}

/// Whether a status is the transport failing (the connection reset, closed or timed out)
/// rather than something the agent answered.
fn transport_broke(status: &tonic::Status) -> bool {
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

/// The `host:port` of an agent's address as written: `host:port`, `http://host:port` (plaintext)
/// or `https://host:port` (TLS: with the agent's `tls` settings, or else the system's roots),
/// and whether it asks for TLS. `http://` with tls settings is an error rather than a guess.
fn host_and_port(written: &str, tls: bool) -> Result<(&str, bool), String> {
    let (scheme, rest) = match written.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, written),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(format!("invalid address '{written}': an agent's address is host:port, without a path"));
    }
    match (scheme.as_deref(), tls) {
        (Some("https"), _) => Ok((rest, true)),
        (None, _) | (Some("http"), false) => Ok((rest, false)),
        (Some("http"), true) => Err(format!(
            "'{written}' asks for plaintext, but the agent has tls settings: write https://{rest} or {rest}"
        )),
        (Some(other), _) => Err(format!("invalid address '{written}': unknown scheme '{other}' (http or https)")),
    }
}

/// Packs the contents the agent asked for into a temporary blob archive, off the async threads.
async fn pack_needed(
    root: PathBuf,
    manifest: Arc<Manifest>,
    hashes: Vec<blake3::Hash>,
    scratch: PathBuf,
) -> Result<(tempfile::NamedTempFile, BlobPack), ClientError> {
    tokio::task::spawn_blocking(move || {
        let temp = tempfile::NamedTempFile::new_in(&scratch)
            .map_err(|source| ClientError::Io { path: scratch.clone(), source })?;
        let file = temp.reopen().map_err(|source| ClientError::Io { path: temp.path().to_path_buf(), source })?;
        let report = pack_blobs(&root, &manifest, &hashes, std::io::BufWriter::new(file), &scratch)
            .map_err(|e| ClientError::Io { path: root.clone(), source: std::io::Error::other(e.to_string()) })?;
        Ok((temp, report))
    })
    .await
    .map_err(|e| ClientError::Io { path: PathBuf::new(), source: std::io::Error::other(e.to_string()) })?
}

/// The amendments, then [`upload`], keeping the temporary file alive until it is sent.
async fn upload_then_drop(
    file: tokio::fs::File,
    amended: Vec<super::proto::FileEntry>,
    tx: Option<tokio::sync::mpsc::Sender<ExecuteRequest>>,
    _keep: tempfile::NamedTempFile,
    transfer: Arc<Transfer>,
) {
    let Some(sender) = tx else { return };
    for entries in super::batches(amended, |entry| entry.path.len() + 80, super::MANIFEST_CHUNK_BYTES) {
        let item = Item::Amended(ManifestChunk { entries });
        if sender.send(ExecuteRequest { item: Some(item) }).await.is_err() {
            return;
        }
    }
    upload(file, Some(sender), &transfer).await;
}

/// Streams an archive in chunks, then the end marker.
async fn upload(mut file: tokio::fs::File, tx: Option<tokio::sync::mpsc::Sender<ExecuteRequest>>, transfer: &Transfer) {
    let Some(tx) = tx else { return };
    let mut size: u64 = 0;
    loop {
        let chunk = match super::next_chunk(&mut file).await {
            Ok(chunk) if chunk.is_empty() => break,
            Ok(chunk) => chunk,
            // The agent sees a stream without WorkspaceEnd and refuses the task.
            Err(_) => return,
        };
        size += chunk.len() as u64;
        let length = chunk.len() as u64;
        if tx.send(ExecuteRequest { item: Some(Item::WorkspaceChunk(chunk)) }).await.is_err() {
            return;
        }
        transfer.sent(length);
    }
    let _ = tx.send(ExecuteRequest { item: Some(Item::WorkspaceEnd(WorkspaceEnd { size })) }).await;
}

/// The innermost cause of an error (for a broken connection: what the socket said).
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An error with its sources, which is where transport errors keep the useful part; a cause
/// whose text is already there is not repeated.
fn error_chain(error: &dyn std::error::Error) -> String {
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
