//! The agent's gRPC service. Receives a task and its workspace, hands them to a
//! [`TaskHandler`] (which runs Lua), streams events back, then the result and the changes.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use prost::bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::proto::agent_server::Agent;
use super::proto::execute_request::Item;
use super::proto::execute_response::Event;
use super::proto::{
    ChangesDeleted, ChangesEnd, ExecuteRequest, ExecuteResponse, InfoRequest, InfoResponse, LogEvent, OutputLine,
    TaskResult, output_line,
};
use super::receive::{Traffic, Warm, receive_incremental};
use super::stats::{AgentStats, Outcome, TaskStats};
use super::task_dir::TaskDir;
use super::task_spec::TaskSpec;
use super::{chunks, status};
use crate::events::{Backlog, EventSink, TaskEvent};
use crate::process::OutputStream;
use crate::workspace::root_meta::RootMeta;
use crate::workspace::trees::TreePool;
use crate::workspace::{BlobCache, Limits, Manifest};

/// A received task's workspace, built from the manifest and the blob cache: where, what was
/// built (exactly what is there), and the rules the master took the manifest with.
#[derive(Debug, Clone)]
pub struct RemoteWorkspace {
    pub root: PathBuf,
    pub built: Arc<Manifest>,
    pub ignore: Vec<String>,
}

/// A task as the handler receives it: plain data, the workspace on disk.
#[derive(Debug)]
pub struct RemoteTask {
    /// What the master sent.
    pub spec: TaskSpec,
    pub workspace: RemoteWorkspace,
    /// A private directory for this task, removed after the call; not made yet unless
    /// something needed it (see [`TaskDir`]).
    pub dir: PathBuf,
    /// Who sent it: the master's client certificate, else the agent's token (a digest).
    pub principal: String,
    /// The task's `--max-tasks` slot, held by whatever runs the task as well as by the call:
    /// Lua code that does not stop when told (a native call that does not return) keeps its
    /// slot after its call has ended, so that such tasks never run more than the slots allow.
    pub slot: Arc<tokio::sync::OwnedSemaphorePermit>,
    /// Counts the task in flight (`Info`, the metrics) for as long as it runs: held with the
    /// task itself, so a task whose call has ended while its code is still being stopped is
    /// still counted, as its slot is still taken.
    pub in_flight: InFlight,
}

/// One task counted in the agent's tasks in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicU32>);

impl InFlight {
    fn count(in_flight: &Arc<AtomicU32>) -> Self {
        in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(in_flight))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How the handler says a task ended.
#[derive(Debug)]
pub struct RemoteOutcome {
    pub ok: bool,
    pub message: Option<String>,
    pub outputs_json: Vec<u8>,
    /// What the task exported (`export`), as JSON; empty: nothing.
    pub exports_json: Vec<u8>,
    /// The changes archive (tar + gzip).
    pub changes: ChangesArchive,
    pub deleted: Vec<crate::workspace::RelPath>,
    /// The workspace as scanned after the task, with identities (what a kept tree holds).
    pub after: Option<Arc<Manifest>>,
    /// What that scan saw of the tree, under a watch (the next task's plan starts from it).
    pub watched: Option<crate::workspace::tree_watch::WatchedTree>,
    /// The workspace directory's own mode and time, when the task changed them.
    pub root: Option<RootMeta>,
}

/// Where a task's changes archive is: in memory (small changes), or in a file (inside the
/// task's directory, or a temporary file that goes with this value).
#[derive(Debug)]
pub enum ChangesArchive {
    Memory(Arc<[u8]>),
    File { path: PathBuf, _temp: Option<tempfile::NamedTempFile> },
}

/// Why a handler did not run a task to its end.
#[derive(Debug)]
pub enum TaskFailure {
    /// This agent will not run it as asked (a `same_path` view it has no right to make): the
    /// master hears FAILED_PRECONDITION.
    Refused(String),
    /// The task could not run (its thread or VM could not be made, the handler failed): the
    /// master hears INTERNAL.
    Failed(String),
    /// The task ran, but the agent's disk or quota ran out before its changes were packed:
    /// the master hears RESOURCE_EXHAUSTED, as for any full disk of the agent's.
    NoSpace(String),
    /// The master cancelled the call.
    Cancelled,
}

impl TaskFailure {
    fn status(self) -> Status {
        match self {
            TaskFailure::Refused(message) => Status::failed_precondition(message),
            TaskFailure::Failed(message) => Status::internal(message),
            TaskFailure::NoSpace(message) => Status::resource_exhausted(message),
            TaskFailure::Cancelled => Status::cancelled("the task was cancelled"),
        }
    }
}

impl std::fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskFailure::Refused(message) | TaskFailure::Failed(message) | TaskFailure::NoSpace(message) => {
                f.write_str(message)
            }
            TaskFailure::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Runs a received task. Dropping the returned future must stop the task and kill its
/// processes (the master cancelled the call).
pub trait TaskHandler: Send + Sync + 'static {
    fn execute(
        &self,
        task: RemoteTask,
        events: EventSink,
    ) -> Pin<Box<dyn Future<Output = Result<RemoteOutcome, TaskFailure>> + Send>>;
}

/// Who the agent is and what it accepts.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub max_tasks: u32,
    /// Parent of the per-task temporary directories.
    pub work_dir: PathBuf,
    /// Contents already received, for incremental sync.
    pub cache: BlobCache,
    /// What one task's workspace may hold.
    pub limits: Limits,
    /// Trees kept between tasks (None: a fresh tree for every task).
    pub trees: Option<Arc<TreePool>>,
    /// Who the masters that hold the agent's token are (a digest of it), for keying trees;
    /// None without a token. A master with a client certificate is told apart by it.
    pub principal: Option<String>,
}

/// The `sloth.agent.v1.Agent` service.
pub struct AgentService {
    identity: AgentIdentity,
    handler: Arc<dyn TaskHandler>,
    slots: Arc<Semaphore>,
    in_flight: Arc<AtomicU32>,
    traffic: Arc<Traffic>,
    tasks: Arc<TaskStats>,
    /// Set when the agent's grace period is over: the tasks still running are cancelled, each
    /// master told why.
    shutting_down: tokio::sync::watch::Sender<bool>,
}

impl AgentService {
    pub fn new(identity: AgentIdentity, handler: Arc<dyn TaskHandler>) -> Self {
        let slots = Arc::new(Semaphore::new(identity.max_tasks.max(1) as usize));
        let in_flight = Arc::new(AtomicU32::new(0));
        // (The thread ends when the service is gone: it holds `in_flight` weakly.)
        crate::memory::give_back_when_idle(&in_flight);
        let (traffic, tasks) = (Arc::default(), Arc::default());
        let shutting_down = tokio::sync::watch::Sender::new(false);
        Self { identity, handler, slots, in_flight, traffic, tasks, shutting_down }
    }

    /// Cancels the tasks still running, telling each one's master that the agent is shutting
    /// down (for the end of a stopping agent's grace period).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutting_down.clone())
    }

    /// Handles on the agent's counters, read when its metrics are scraped.
    pub fn stats(&self) -> AgentStats {
        AgentStats {
            max_tasks: self.identity.max_tasks,
            in_flight: Arc::clone(&self.in_flight),
            traffic: Arc::clone(&self.traffic),
            tasks: Arc::clone(&self.tasks),
            cache: self.identity.cache.clone(),
            trees: self.identity.trees.clone(),
        }
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(InfoResponse {
            name: self.identity.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            labels: self.identity.labels.clone().into_iter().collect(),
            max_tasks: self.identity.max_tasks,
            tasks_in_flight: self.in_flight.load(Ordering::Relaxed),
            files_written: self.traffic.files_written.load(Ordering::Relaxed),
            contents_requested: self.traffic.contents_requested.load(Ordering::Relaxed),
            bytes_received: self.traffic.bytes_received.load(Ordering::Relaxed),
            bytes_sent: self.traffic.bytes_sent.load(Ordering::Relaxed),
            manifest_entries_received: self.traffic.manifest_entries_received.load(Ordering::Relaxed),
            trees_reused: self.identity.trees.as_ref().map_or(0, |trees| trees.reused.load(Ordering::Relaxed)),
            plans_from_watch: self.traffic.plans_from_watch.load(Ordering::Relaxed),
        }))
    }

    type ExecuteStream = ReceiverStream<Result<ExecuteResponse, Status>>;

    async fn execute(
        &self,
        request: Request<Streaming<ExecuteRequest>>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        // Trees are lent only to the master that left them: the holder of this client
        // certificate, else of the agent's token.
        let principal = match request.peer_certs().as_deref().and_then(|certs| certs.first()) {
            Some(cert) => format!("cert:{}", blake3::hash(cert.as_ref()).to_hex()),
            None => format!("token:{}", self.identity.principal.as_deref().unwrap_or("none")),
        };
        let mut inbound = request.into_inner();
        let task = match inbound.message().await? {
            Some(ExecuteRequest { item: Some(Item::Task(task)) }) => task,
            _ => return Err(Status::invalid_argument("the first message must be a TaskRequest")),
        };
        if !task.incremental {
            return Err(Status::invalid_argument(
                "this agent takes a workspace only as its manifest and the contents it lacks (incremental \
                 sync), not as a whole archive: the master is of an earlier version",
            ));
        }
        if task.scripts > MAX_SCRIPTS || task.parts > MAX_PARTS {
            return Err(Status::invalid_argument(format!(
                "the TaskRequest announces {} scripts and {} parts; at most {MAX_SCRIPTS} and {MAX_PARTS} are taken",
                task.scripts, task.parts
            )));
        }
        let (tx, rx) = mpsc::channel(64);
        let handler = Arc::clone(&self.handler);
        let in_flight = Arc::clone(&self.in_flight);
        let mut identity = self.identity.clone();
        // Contents this master's tasks made are its own (see `BlobCache::for_principal`).
        identity.cache = identity.cache.for_principal(&principal);
        let traffic = Arc::clone(&self.traffic);
        let stats = Arc::clone(&self.tasks);
        let slots = Arc::clone(&self.slots);
        let key = (!task.workspace.is_empty()).then(|| format!("{principal}/{}", task.workspace));
        let mut shutting_down = self.shutting_down.subscribe();
        let agent_name = self.identity.name.clone();
        tokio::spawn(async move {
            let mut task = task;
            let (permit, scripts, dir) = match admit(&slots, &mut inbound, &mut task, &identity, &tx).await {
                Ok(admitted) => admitted,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            // The slot is the task's until everything of it is gone (the call's part here, and
            // what runs the task: see `RemoteTask::slot`).
            let permit = Arc::new(permit);
            let mut lease = None;
            let limits = identity.limits.with_setid_files(task.setuid);
            let warm = Warm { key: key.as_deref(), lease: &mut lease, traffic: &traffic };
            let root_meta = RootMeta::from_wire(task.root_mode, task.root_mtime_secs, task.root_mtime_nanos);
            let workspace = receive_incremental(
                &mut inbound,
                &dir,
                (&identity, limits),
                &tx,
                (task.ignore.clone(), root_meta),
                warm,
            )
            .await;
            let mut after: Option<ScannedTree> = None;
            let mut built = None;
            let mut tree = None;
            let mut fill = None;
            match workspace {
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                }
                Ok((workspace, cache_fill)) => {
                    fill = cache_fill;
                    built = Some(Arc::clone(&workspace.built));
                    tree = Some(workspace.root.clone());
                    let spec = TaskSpec::from_messages(task, scripts);
                    let remote = RemoteTask {
                        spec,
                        workspace,
                        dir: dir.path().to_path_buf(),
                        principal: principal.clone(),
                        slot: Arc::clone(&permit),
                        in_flight: InFlight::count(&in_flight),
                    };
                    let started = std::time::Instant::now();
                    // Once the task has ended, its tree is on its way back: the next task of the
                    // workspace (the master hears the result first) waits for it.
                    let trees = identity.trees.clone();
                    let mut announce = || {
                        if let (Some(trees), Some(lease)) = (&trees, lease.as_mut()) {
                            trees.expect_return(lease);
                        }
                    };
                    let outcome;
                    (outcome, after) = tokio::select! {
                        ran = run_task(handler.as_ref(), remote, (&tx, &traffic), &mut announce) => ran,
                        () = async { drop(shutting_down.wait_for(|on| *on).await) } => {
                            let stopped = format!(
                                "the agent {agent_name} is shutting down: the task was cancelled at the end of its \
                                 grace period"
                            );
                            let _ = tx.send(Err(Status::cancelled(stopped))).await;
                            (Outcome::Cancelled, None)
                        }
                    };
                    stats.record(outcome, started.elapsed());
                    crate::memory::touched();
                }
            }
            // The tree goes back to the pool only after a task that ran to its end; the task's
            // directory goes last; both off the async threads.
            // What it records is the tree as built, not as the task left it: whatever the task
            // touched is written anew for the next one.
            let trees = identity.trees.clone();
            let cache = identity.cache.clone();
            // The task's directory holds what came for a new tree, on its way into the cache:
            // it goes once that is over.
            let dir_waits = fill.is_some();
            let dir = tokio::task::spawn_blocking(move || {
                // What the task made comes back up with the next task's manifest once the
                // master has applied it: kept now, it need not travel (before the tree goes
                // back, which lets that next task in).
                if let (Some(tree), Some(built), Some((after, _))) = (&tree, &built, &after) {
                    let kept = cache.adopt(tree, built, after);
                    if kept > 0 {
                        tracing::debug!(contents = kept, "contents the task made kept in the cache");
                        // Within --cache-max now, not when the next task comes.
                        if let Err(error) = cache.trim() {
                            tracing::warn!(%error, "cannot trim the cache");
                        }
                    }
                }
                if let (Some(trees), Some(lease)) = (trees, lease) {
                    match (after, built) {
                        (Some((after, watched)), Some(built)) => {
                            let root = lease.root.clone();
                            let plain =
                                |path: &crate::workspace::RelPath| crate::workspace::warm::plain_file(&root, path);
                            let state = crate::workspace::warm::proven_by(built, &after, plain);
                            trees.give_back(lease, (state, watched), &after)
                        }
                        _ => trees.discard(&lease),
                    }
                }
                if dir_waits { Some(dir) } else { None }
            })
            .await;
            if let Some(fill) = fill {
                fill.done().await;
            }
            if let Ok(Some(dir)) = dir {
                let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// See [`AgentService::shutdown_handle`].
#[derive(Debug, Clone)]
pub struct ShutdownHandle(tokio::sync::watch::Sender<bool>);

impl ShutdownHandle {
    pub fn cancel_running(&self) {
        self.0.send_replace(true);
    }
}

pub(super) type Outbound = mpsc::Sender<Result<ExecuteResponse, Status>>;

/// Admission before anything is buffered or made for a task: a `--max-tasks` slot (when all
/// are busy, the master is told the task is queued, and it waits), then the scripts and the
/// parts of large fields (their number checked already), bounded in bytes; the task's
/// directory is named, not made.
async fn admit(
    slots: &Arc<Semaphore>,
    inbound: &mut Streaming<ExecuteRequest>,
    task: &mut super::proto::TaskRequest,
    identity: &AgentIdentity,
    tx: &Outbound,
) -> Result<(tokio::sync::OwnedSemaphorePermit, Vec<super::proto::ScriptFile>, TaskDir), Status> {
    let permit = match Arc::clone(slots).try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            let message =
                format!("queued on agent '{}': its {} task slot(s) are busy", identity.name, identity.max_tasks.max(1));
            let _ = tx
                .send(Ok(event_message(TaskEvent::Log { level: tracing::Level::INFO, message, fields: String::new() })))
                .await;
            let _ = tx.send(Ok(queue_message(true))).await;
            let permit =
                Arc::clone(slots).acquire_owned().await.map_err(|_| Status::unavailable("the agent is stopping"))?;
            let _ = tx.send(Ok(queue_message(false))).await;
            permit
        }
    };
    let mut assembler = super::parts::Assembler::default();
    while !assembler.complete(task) {
        match inbound.message().await? {
            Some(ExecuteRequest { item: Some(item) }) => assembler.take(task, item)?,
            _ => return Err(Status::invalid_argument("expected the scripts and parts the TaskRequest announced")),
        }
    }
    let scripts = assembler.scripts;
    let dir = TaskDir::new(&identity.work_dir);
    tracing::info!(group = %task.group, task = %task.task, dir = %dir.path().display(), "task received");
    Ok((permit, scripts, dir))
}

/// Scripts one task may ship (the pipeline and every file it loaded); their bytes, with the
/// other large fields, are bounded by `MAX_FIELD_BYTES`.
const MAX_SCRIPTS: u32 = 10_000;

/// Parts one task's fields may come in (what `MAX_FIELD_BYTES` holds in whole parts, and a
/// partial one per field and script).
const MAX_PARTS: u64 = (super::MAX_FIELD_BYTES / super::PART_SIZE) as u64 + 3 + MAX_SCRIPTS as u64;

/// A task's tree as the scan after it found it, and what that scan saw under a watch.
type ScannedTree = (Arc<Manifest>, Option<crate::workspace::tree_watch::WatchedTree>);

/// Runs the handler, forwarding its events; stops it if the master goes away. Returns how the
/// task ended and the tree's state after a task that ran to its end (None: cancelled, or it
/// could not run), with what the scan after it saw under a watch.
async fn run_task(
    handler: &dyn TaskHandler,
    task: RemoteTask,
    (tx, traffic): (&Outbound, &Traffic),
    ended: &mut (dyn FnMut() + Send),
) -> (Outcome, Option<ScannedTree>) {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    // What the task says and the master has not taken yet is bounded: past it, the task waits.
    let backlog = Arc::new(Backlog::default());
    let (group, name) = (task.spec.group.clone(), task.spec.task.clone());
    let work = handler.execute(task, EventSink::new(events_tx, Arc::clone(&backlog)));
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            Some(event) = events_rx.recv() => {
                let size = event.size();
                if tx.send(Ok(event_message(event))).await.is_err() {
                    tracing::warn!(group = %group, task = %name, "the master went away: cancelling the task");
                    return (Outcome::Cancelled, None);
                }
                backlog.forwarded(size);
            }
            () = tx.closed() => {
                tracing::warn!(group = %group, task = %name, "the master cancelled the call: cancelling the task");
                return (Outcome::Cancelled, None);
            }
        }
    };
    while let Ok(event) = events_rx.try_recv() {
        let _ = tx.send(Ok(event_message(event))).await;
    }
    match outcome {
        Ok(mut outcome) => {
            tracing::info!(group = %group, task = %name, ok = outcome.ok, "task finished");
            let ran = if outcome.ok { Outcome::Succeeded } else { Outcome::Failed };
            ended();
            let after = outcome.after.take().map(|after| (after, outcome.watched.take()));
            let sent = send_outcome(&mut outcome, tx, traffic).await;
            // A temporary file of changes is removed off the async threads.
            if let ChangesArchive::File { _temp: Some(_), .. } = &outcome.changes {
                let changes = std::mem::replace(&mut outcome.changes, ChangesArchive::Memory(Arc::from([])));
                tokio::task::spawn_blocking(move || drop(changes));
            }
            if let Err(status) = sent {
                let _ = tx.send(Err(status)).await;
                return (ran, None);
            }
            (ran, after)
        }
        Err(failure) => {
            tracing::warn!(group = %group, task = %name, error = %failure, "task could not run");
            let outcome = match failure {
                TaskFailure::Refused(_) => Outcome::Refused,
                TaskFailure::Cancelled => Outcome::Cancelled,
                TaskFailure::Failed(_) | TaskFailure::NoSpace(_) => Outcome::Error,
            };
            let _ = tx.send(Err(failure.status())).await;
            (outcome, None)
        }
    }
}

/// Sends the task's outputs, its result, the changes archive in chunks, the deleted paths and
/// the end that announces how many of each went.
async fn send_outcome(outcome: &mut RemoteOutcome, tx: &Outbound, traffic: &Traffic) -> Result<(), Status> {
    let (parts, outputs_json) = super::parts::outputs_parts(std::mem::take(&mut outcome.outputs_json));
    for part in parts {
        if tx.send(Ok(ExecuteResponse { event: Some(Event::OutputsPart(part)) })).await.is_err() {
            return Ok(());
        }
    }
    let exports_json = std::mem::take(&mut outcome.exports_json);
    let message = outcome.message.take().map(super::text_limit::fitted);
    let result = TaskResult { ok: outcome.ok, message, outputs_json, exports_json };
    let _ = tx.send(Ok(ExecuteResponse { event: Some(Event::Result(result)) })).await;
    // Where the bytes come from, named in a read error (memory cannot fail).
    let (chunks, place): (chunks::Chunks, &std::path::Path) = match &outcome.changes {
        ChangesArchive::Memory(bytes) => {
            (Box::pin(chunks::of_memory(Bytes::from_owner(Arc::clone(bytes)))), std::path::Path::new("memory"))
        }
        ChangesArchive::File { path, .. } => {
            let file =
                tokio::fs::File::open(path).await.map_err(|e| status::of_io("cannot read the changes at", path, &e))?;
            (Box::pin(chunks::of_file(file)), path)
        }
    };
    let sent = chunks::send_all(chunks, |chunk| async move {
        traffic.bytes_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        tx.send(Ok(ExecuteResponse { event: Some(Event::ChangesChunk(chunk)) })).await.is_ok()
    })
    .await
    .map_err(|e| status::of_io("cannot read the changes at", place, &e))?;
    // None: the master went away.
    let Some(size) = sent else { return Ok(()) };
    let deleted = outcome.deleted.len() as u64;
    let paths = std::mem::take(&mut outcome.deleted).into_iter().map(crate::workspace::RelPath::into_bytes);
    for paths in super::batches(paths, |path| path.len() + 4, super::MANIFEST_CHUNK_BYTES) {
        if tx.send(Ok(ExecuteResponse { event: Some(Event::Deleted(ChangesDeleted { paths })) })).await.is_err() {
            return Ok(());
        }
    }
    let (root_mode, root_mtime_secs, root_mtime_nanos) = RootMeta::to_wire(outcome.root);
    let end = ChangesEnd { deleted, size, root_mode, root_mtime_secs, root_mtime_nanos };
    let _ = tx.send(Ok(ExecuteResponse { event: Some(Event::ChangesEnd(end)) })).await;
    Ok(())
}

/// Tells the master its task waits for a slot (`waiting`) or has one now: the wait is not
/// counted against the task's timeout.
fn queue_message(waiting: bool) -> ExecuteResponse {
    ExecuteResponse { event: Some(Event::Queue(super::proto::Queue { waiting })) }
}

fn event_message(event: TaskEvent) -> ExecuteResponse {
    let event = match event {
        TaskEvent::Log { level, message, fields } => {
            let (message, fields) = (super::text_limit::fitted(message), super::text_limit::fitted(fields));
            Event::Log(LogEvent { level: level.as_str().to_ascii_lowercase(), message, fields })
        }
        TaskEvent::Print { text, more, stderr } => {
            let (line, raw) = match String::from_utf8(text) {
                Ok(line) => (line, Vec::new()),
                Err(not_text) => (String::new(), not_text.into_bytes()),
            };
            let stream = if stderr { output_line::Stream::WriteStderr } else { output_line::Stream::Print };
            Event::Output(OutputLine { stream: stream as i32, line, more, raw })
        }
        TaskEvent::Output { stream, line } => Event::Output(OutputLine {
            stream: match stream {
                OutputStream::Stdout => output_line::Stream::Stdout as i32,
                OutputStream::Stderr => output_line::Stream::Stderr as i32,
            },
            line,
            more: false,
            raw: Vec::new(),
        }),
    };
    ExecuteResponse { event: Some(event) }
}
