//! `sloth-runner health ADDR`: the standard gRPC health check (`grpc.health.v1.Health`) of an
//! agent, as a container's HEALTHCHECK or a supervisor asks it. The health service needs no
//! token: it says whether the agent serves, nothing else.

use std::time::Duration;

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::client::{error_chain, host_and_port};
use super::tls::ClientTls;

/// The service whose health is asked: the agent's own (`sloth.agent.v1.Agent`).
pub const AGENT_SERVICE: &str = "sloth.agent.v1.Agent";

/// Why an agent is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("cannot reach the agent at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the agent at {address} did not answer the health check: {reason}")]
    NoAnswer { address: String, reason: String },
    #[error("the agent at {address} is not serving ({status})")]
    NotServing { address: String, status: String },
}

/// Asks the agent at `address` (`host:port`, `https://host:port`) whether it serves, within
/// `timeout` overall; over TLS when `tls` is given or the address says https.
pub async fn probe(address: &str, tls: Option<&ClientTls>, timeout: Duration) -> Result<(), HealthError> {
    let (host_port, https) = host_and_port(address, tls.is_some()).map_err(HealthError::Address)?;
    let system_roots = ClientTls::default();
    let tls = tls.or(https.then_some(&system_roots));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let unreachable = |reason: String| HealthError::Unreachable { address: address.to_owned(), reason };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host_port}"))
        .map_err(|e| HealthError::Address(format!("'{address}': {e}")))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if let Some(tls) = tls {
        let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host).trim_matches(['[', ']']);
        let config = tls.config(host).map_err(|e| unreachable(e.to_string()))?;
        endpoint = endpoint.tls_config(config).map_err(|e| unreachable(format!("TLS: {}", error_chain(&e))))?;
    }
    let ask = async {
        let channel = endpoint.connect().await.map_err(|e| unreachable(error_chain(&e)))?;
        let request = HealthCheckRequest { service: AGENT_SERVICE.to_owned() };
        let response = HealthClient::new(channel).check(request).await.map_err(|status| HealthError::NoAnswer {
            address: address.to_owned(),
            reason: status.message().to_owned(),
        })?;
        match response.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => {
                Err(HealthError::NotServing { address: address.to_owned(), status: other.as_str_name().to_owned() })
            }
        }
    };
    tokio::time::timeout(timeout, ask)
        .await
        .unwrap_or_else(|_| Err(unreachable(format!("no answer within {timeout:?}"))))
}
