//! Talking to a master's registry: an agent announcing itself (register, then heartbeats, for
//! as long as it runs), an operator listing agents or asking one to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::super::auth::{SendToken, Token};
use super::super::client::{error_chain, host_and_port};
use super::super::registry_proto::registry_client::RegistryClient;
use super::super::registry_proto::{
    AgentRecord, HeartbeatRequest, LeaveRequest, ListRequest, RegisterRequest, RegisteredAgent, StopRequest,
};
use super::super::tls::ClientTls;
use super::hint::{self, Side};

/// The longest an agent waits between two attempts to reach a master that does not answer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a call to the master failed.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("invalid master address: {0}")]
    Address(String),
    /// TLS settings that do not go together (a certificate without its key).
    #[error("{0}")]
    Settings(String),
    /// `hint`: what to check, said after the reason (" — …"), or empty.
    #[error("cannot reach the master at {address}: {reason}{hint}")]
    Unreachable { address: String, reason: String, hint: String },
    #[error("the master at {address} refused: {reason}{hint}")]
    Refused { address: String, reason: String, hint: String },
    #[error("{reason}")]
    NotFound { reason: String },
    #[error("the master at {address} failed: {reason}")]
    Failed { address: String, reason: String },
}

impl MasterError {
    fn of(address: &str, status: &Status) -> Self {
        let address = address.to_owned();
        let reason = status.message().to_owned();
        match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => {
                MasterError::Refused { address, reason, hint: " (check --master-token or SLOTH_MASTER_TOKEN)".into() }
            }
            Code::NotFound => MasterError::NotFound { reason },
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => {
                let reason = if reason.is_empty() { format!("{:?}", status.code()) } else { reason };
                MasterError::Unreachable { address, reason, hint: String::new() }
            }
            _ => MasterError::Failed { address, reason },
        }
    }
}

/// A connection to a master's registry; it reconnects by itself after the master went away.
#[derive(Debug, Clone)]
pub struct MasterClient {
    address: String,
    /// How this client talks TLS, for what to say when the master refuses it.
    side: Side,
    grpc: RegistryClient<InterceptedService<Channel, SendToken>>,
}

impl MasterClient {
    /// A client of the master at `address` (`host:port`, `https://host:port`); it connects on
    /// its first call. Each call gives up after `timeout`.
    pub fn new(
        address: &str,
        token: Option<&Token>,
        tls: Option<&ClientTls>,
        timeout: Duration,
    ) -> Result<Self, MasterError> {
        let (host_port, https) = host_and_port(address, tls.is_some()).map_err(MasterError::Address)?;
        let system_roots = ClientTls::default();
        let tls = tls.or(https.then_some(&system_roots));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host_port}"))
            .map_err(|e| MasterError::Address(format!("'{address}': {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout);
        if let Some(tls) = tls {
            let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host).trim_matches(['[', ']']);
            let unreachable =
                |reason: String| MasterError::Unreachable { address: address.to_owned(), reason, hint: String::new() };
            let config = tls.config(host).map_err(|e| unreachable(e.to_string()))?;
            endpoint = endpoint.tls_config(config).map_err(|e| unreachable(format!("TLS: {}", error_chain(&e))))?;
        }
        let interceptor = SendToken::new(token).map_err(MasterError::Address)?;
        let grpc = RegistryClient::with_interceptor(endpoint.connect_lazy(), interceptor);
        let side = Side {
            tls: tls.is_some(),
            ca: tls.is_some_and(|tls| tls.ca.is_some()),
            cert: tls.is_some_and(|tls| tls.cert.is_some()),
        };
        Ok(Self { address: address.to_owned(), side, grpc })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn error(&self, status: &Status) -> MasterError {
        // A connection that failed shows as UNAVAILABLE (or CANCELLED, when it went away under
        // the call) with the transport's error inside.
        let source = std::error::Error::source(status);
        let transport = || source.map_or_else(|| status.message().to_owned(), error_chain);
        let address = self.address.clone();
        match hint::explain(status, self.side) {
            Some(explained) => {
                let reason = explained.reason.map_or_else(transport, str::to_owned);
                if explained.refused {
                    MasterError::Refused { address, reason, hint: explained.hint }
                } else {
                    MasterError::Unreachable { address, reason, hint: explained.hint }
                }
            }
            None if source.is_some() && matches!(status.code(), Code::Unavailable | Code::Unknown) => {
                MasterError::Unreachable { address, reason: transport(), hint: String::new() }
            }
            None => MasterError::of(&self.address, status),
        }
    }

    pub async fn register(&mut self, agent: AgentRecord) -> Result<(), MasterError> {
        self.grpc.register(RegisterRequest { agent: Some(agent) }).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    /// Whether the master asks the agent to stop.
    pub async fn heartbeat(&mut self, name: &str, tasks_in_flight: u32) -> Result<bool, MasterError> {
        let request = HeartbeatRequest { name: name.to_owned(), tasks_in_flight };
        let response = self.grpc.heartbeat(request).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().stop)
    }

    /// The registered agents, by name.
    pub async fn list(&mut self) -> Result<Vec<RegisteredAgent>, MasterError> {
        let response = self.grpc.list(ListRequest {}).await.map_err(|s| self.error(&s))?;
        Ok(response.into_inner().agents)
    }

    /// Leaves the registry (an agent that stops), as the agent registered at `address`.
    pub async fn leave(&mut self, name: &str, address: &str) -> Result<(), MasterError> {
        let request = LeaveRequest { name: name.to_owned(), address: address.to_owned() };
        self.grpc.leave(request).await.map_err(|s| self.error(&s))?;
        Ok(())
    }

    pub async fn stop(&mut self, name: &str) -> Result<(), MasterError> {
        self.grpc.stop(StopRequest { name: name.to_owned() }).await.map_err(|s| self.error(&s))?;
        Ok(())
    }
}

/// Keeps the agent `record` describes registered with the master for as long as it runs:
/// registers, then sends a heartbeat every `record.heartbeat_ms` with the tasks in flight.
/// A master that cannot be reached or refuses is tried again with backoff (doubling, up to
/// [`MAX_BACKOFF`]); one that no longer knows the agent (restarted) gets it registered again.
/// Returns only when the master asks the agent to stop.
pub async fn announce(mut master: MasterClient, record: AgentRecord, in_flight: Arc<AtomicU32>) {
    let interval = Duration::from_millis(record.heartbeat_ms.max(1));
    let mut registered = false;
    let mut backoff = interval;
    // The last failure said, so that a master down for an hour is one warning, not hundreds.
    let mut last_problem: Option<String> = None;
    loop {
        let result = if registered {
            master.heartbeat(&record.name, in_flight.load(Ordering::Relaxed)).await
        } else {
            master.register(record.clone()).await.map(|()| false)
        };
        match result {
            Ok(stop) => {
                if !registered {
                    tracing::info!(agent = %record.name, master = %master.address(), address = %record.address, "registered with the master");
                    registered = true;
                } else if last_problem.is_some() {
                    tracing::info!(agent = %record.name, master = %master.address(), "the master answers again");
                }
                last_problem = None;
                if stop {
                    tracing::info!(agent = %record.name, master = %master.address(), "the master asks this agent to stop");
                    return;
                }
                backoff = interval;
                tokio::time::sleep(interval).await;
            }
            Err(MasterError::NotFound { .. }) if registered => {
                // The master restarted, or dropped the agent: register again, now.
                tracing::info!(agent = %record.name, master = %master.address(), "the master does not know this agent: registering again");
                registered = false;
            }
            Err(error) => {
                let problem = error.to_string();
                if last_problem.as_deref() != Some(problem.as_str()) {
                    tracing::warn!(agent = %record.name, %error, retry_in = ?backoff, "cannot register with the master: trying again");
                    last_problem = Some(problem);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF.max(interval));
            }
        }
    }
}
