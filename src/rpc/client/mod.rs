//! The master's side of the wire: connect to an agent, ask its info, run a task on it.
//!
//! A task's call goes in four phases, one file each: the task and its scripts with the
//! workspace's manifest (or its outline) go first ([`opening`]); the agent asks for the parts
//! of an outline and the contents its cache lacks, which go up beside the call ([`sync_up`]); what the task says comes while it runs
//! ([`events`]); its result and its changes come last ([`changes`]).

mod background;
mod changes;
mod error;
mod events;
mod opening;
mod queue_time;
mod sync_up;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub use self::error::{AgentName, Cause, ClientError};
pub(in crate::rpc) use self::error::{cause_of, connection_dropped, error_chain};
use self::error::{root_cause, transport_broke};
use super::MAX_MESSAGE;
use super::Transfer;
use super::auth::{SendToken, Token};
use super::proto::agent_client::AgentClient as GrpcClient;
use super::proto::execute_response::Event;
use super::proto::{InfoRequest, InfoResponse};
use super::task_spec::TaskSpec;
use super::tls::ClientTls;
use crate::events::TaskEvent;
use crate::workspace::spill::Spilled;
use crate::workspace::{Entry, Manifest, RelPath};

/// How often an open connection to an agent is checked.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(3);
/// How long an agent has to answer that check.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The workspace as the master took it: where it is, what it held, and the rules (beyond the
/// built-in ones) it was taken with. The agent gets the manifest and asks for the contents it
/// lacks.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    pub manifest: Arc<Manifest>,
    pub ignore: Vec<String>,
}

/// How one call goes, beside what it carries.
#[derive(Debug, Clone)]
pub struct Call {
    /// Where the call's temporary files go: the archive of the contents the agent asks for,
    /// and the changes once they outgrow memory.
    pub scratch: PathBuf,
    /// Counts the bytes each way as they go, for whoever watches (the status line).
    pub transfer: Arc<Transfer>,
    /// How long the call may take, task included but not the time it waits for one of the
    /// agent's `--max-tasks` slots; past it the call is cancelled, which kills the task on the
    /// agent. None: as long as it takes.
    pub timeout: Option<Duration>,
}

impl Call {
    pub fn new(scratch: impl Into<PathBuf>) -> Self {
        Call { scratch: scratch.into(), transfer: Arc::default(), timeout: None }
    }
}

/// How a remote task ended, with its changes.
#[derive(Debug)]
pub struct TaskOutcome {
    pub ok: bool,
    pub message: Option<String>,
    pub outputs_json: Vec<u8>,
    /// What the task exported (`export`), as JSON; empty: nothing.
    pub exports_json: Vec<u8>,
    /// The changes archive (tar + gzip), in memory or in a temporary file in the call's
    /// scratch directory.
    pub changes: Spilled,
    /// The changes archive's size in bytes.
    pub changes_size: u64,
    pub deleted: Vec<RelPath>,
    /// Files that changed while they were read here: they went to the agent as read, so the
    /// task started from these entries, not from the snapshot's.
    pub amended: Vec<(RelPath, Entry)>,
    /// Contents sent to the agent for this task, and the bytes of their archives.
    pub contents_sent: u64,
    pub bytes_sent: u64,
    /// The workspace directory's own mode and time, when the task changed them.
    pub root: Option<crate::workspace::root_meta::RootMeta>,
}

/// A connection to one agent; cheap to clone (one HTTP/2 channel underneath).
#[derive(Clone, Debug)]
pub struct AgentClient {
    agent: AgentName,
    grpc: GrpcClient<InterceptedService<Channel, SendToken>>,
    /// Whether calls carry a token (a refusal then means a wrong one).
    token: bool,
    /// Whether the connection is TLS (what a failure can come down to depends on it).
    tls: bool,
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
        let agent = AgentName { address: address.to_owned(), name: None };
        let unreachable = |reason: String| ClientError::Unreachable { agent: agent.clone(), reason, cause: None };
        let (address, https) = host_and_port(&agent.address, tls.is_some()).map_err(unreachable)?;
        // An `https://` address without tls settings trusts the system's roots.
        let system_roots = ClientTls::default();
        let tls = tls.or(https.then_some(&system_roots));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| unreachable(format!("invalid address: {e}")))?;
        if let Some(tls) = tls {
            let host = address.rsplit_once(':').map_or(address, |(host, _)| host).trim_matches(['[', ']']);
            let config = tls.config(host).map_err(|e| unreachable(e.to_string()))?;
            endpoint = endpoint.tls_config(config).map_err(|e| {
                // Without a CA of its own and a certificate to present (whose PEM could be what
                // fails), what fails here is loading the system's roots.
                let cause = (tls.ca.is_none() && tls.cert.is_none()).then_some(Cause::NoTrustedRoots);
                ClientError::Unreachable { agent: agent.clone(), reason: format!("TLS: {}", error_chain(&e)), cause }
            })?;
        }
        let endpoint = endpoint
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            // An agent that stops answering (stopped, cut off) is noticed within ~8 s, even in
            // the middle of a task that prints nothing: a ping every 3 s, 5 s to answer it.
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            // Driven on a thread of its own, where a console write that blocks the pipeline's
            // thread does not stop it answering the agent (see `background`).
            .executor(background::Executor);
        let channel = background::run(async move { endpoint.connect().await })
            .await
            .map_err(|e| ClientError::connecting(&agent, error_chain(&e), cause_of(&e, tls.is_some())))?;
        let interceptor = SendToken::new(token).map_err(|reason| ClientError::Refused {
            agent: agent.clone(),
            reason,
            cause: None,
        })?;
        let grpc = GrpcClient::with_interceptor(channel, interceptor)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Self { agent, grpc, token: token.is_some(), tls: tls.is_some() })
    }

    /// The same connection, naming the agent `name` in its errors ("agent 'name' (address)")
    /// instead of by its address alone.
    pub fn named(mut self, name: Option<String>) -> Self {
        self.agent.name = name;
        self
    }

    pub fn address(&self) -> &str {
        &self.agent.address
    }

    /// How this client's errors name the agent.
    pub fn agent(&self) -> &AgentName {
        &self.agent
    }

    pub async fn info(&mut self) -> Result<InfoResponse, ClientError> {
        let response = self.grpc.info(InfoRequest {}).await.map_err(|s| self.status_error(&s))?;
        Ok(response.into_inner())
    }

    /// Runs `task` on the agent in a copy of `workspace`, reporting what the task says through
    /// `on_event` as it says it, and through `on_queue` when the task begins (true) and ends
    /// (false) a wait for one of the agent's slots; its result and changes come back in the
    /// outcome (the changes in memory while small, else in a temporary file in
    /// `call.scratch`). Dropping the future cancels the call, which kills the task on the
    /// agent; so does `call.timeout` passing.
    pub async fn execute(
        &mut self,
        task: TaskSpec,
        workspace: Snapshot,
        call: &Call,
        on_event: impl FnMut(TaskEvent),
        mut on_queue: impl FnMut(bool),
    ) -> Result<TaskOutcome, ClientError> {
        let agent = self.agent.clone();
        let (waiting, waits) = tokio::sync::watch::channel(false);
        let run = self.run(task, workspace, call, on_event, |queued| {
            waiting.send_replace(queued);
            on_queue(queued);
        });
        match call.timeout {
            None => run.await,
            Some(limit) => queue_time::within(run, limit, waits)
                .await
                .unwrap_or_else(|| Err(ClientError::TimedOut { agent, limit })),
        }
    }

    /// The call's phases, as [`AgentClient::execute`] says.
    async fn run(
        &mut self,
        task: TaskSpec,
        workspace: Snapshot,
        call: &Call,
        mut on_event: impl FnMut(TaskEvent),
        mut on_queue: impl FnMut(bool),
    ) -> Result<TaskOutcome, ClientError> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (messages, outline) = opening::messages(task, &workspace);
        opening::send_beside(messages, tx.clone());
        let response = self.grpc.execute(ReceiverStream::new(rx)).await;
        let mut inbound = response.map_err(|s| self.status_error(&s))?.into_inner();
        let mut sync = sync_up::SyncUp::new(workspace, tx, call.scratch.clone(), Arc::clone(&call.transfer));
        sync.offered(outline);
        let mut changes = changes::Changes::new(call.scratch.clone(), Arc::clone(&call.transfer));
        let agent = self.agent.clone();
        loop {
            // An upload that fails (a file that cannot be read) fails the task at once.
            let message = tokio::select! {
                message = inbound.message() => message.map_err(|s| self.stream_error(&s))?,
                failed = sync.failure() => return Err(failed),
            };
            let Some(message) = message else {
                return Err(ClientError::failed(&agent, "the agent ended the call before sending the changes"));
            };
            // Files found changed as they were sent are told of as the call goes on.
            sync.take_amended(&mut on_event);
            let Some(event) = message.event else { continue };
            let event = match events::task_event(event) {
                Ok(event) => {
                    on_event(event);
                    continue;
                }
                Err(other) => other,
            };
            match event {
                Event::Need(need) => sync.on_need(&need, &agent, &mut on_event).await?,
                Event::NeedParts(need) => sync.on_need_parts(&need, &agent)?,
                Event::OutputsPart(part) => changes.outputs_part(&part, &agent)?,
                Event::Result(result) => changes.result(result),
                Event::Deleted(more) => changes.deleted(more, &agent)?,
                Event::ChangesChunk(chunk) => changes.chunk(chunk, &agent).await?,
                Event::ChangesEnd(end) => return changes.end(end, &agent, sync).await,
                Event::Queue(queue) => on_queue(queue.waiting),
                Event::Log(_) | Event::Output(_) => {}
            }
        }
    }

    /// A failure of the call after it started: a broken transport is a lost connection; what
    /// the agent said is [`AgentClient::status_error`].
    fn stream_error(&self, status: &tonic::Status) -> ClientError {
        if transport_broke(status) {
            return ClientError::Lost { agent: self.agent.clone(), reason: root_cause(status) };
        }
        self.status_error(status)
    }

    /// What the agent answered (or the transport, before the call started), by the status's
    /// code: it could not be reached, it refused the call (a missing or wrong token, a task it
    /// will not run as asked), or it failed — with a kind the code tells.
    fn status_error(&self, status: &tonic::Status) -> ClientError {
        let agent = self.agent.clone();
        let reason =
            if status.message().is_empty() { format!("{:?}", status.code()) } else { status.message().to_owned() };
        let cause = cause_of(status, self.tls);
        match status.code() {
            Code::Unavailable => ClientError::connecting(&agent, reason, cause),
            Code::Unauthenticated => {
                let cause = Some(if self.token { Cause::WrongToken } else { Cause::TokenRequired });
                ClientError::Refused { agent, reason, cause }
            }
            Code::PermissionDenied | Code::FailedPrecondition => ClientError::Refused { agent, reason, cause },
            _ if cause == Some(Cause::CertificateRefused) => ClientError::Refused { agent, reason, cause },
            code => ClientError::Failed { agent, reason, code: Some(code), cause },
        }
    }
}

/// The `host:port` of an agent's address as written: `host:port`, `http://host:port` (plaintext)
/// or `https://host:port` (TLS: with the agent's `tls` settings, or else the system's roots),
/// and whether it asks for TLS. `http://` with tls settings is an error rather than a guess.
pub(in crate::rpc) fn host_and_port(written: &str, tls: bool) -> Result<(&str, bool), String> {
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
