//! `sloth-runner master`: a registry of the agents that announce themselves (`agent --master`),
//! for `agent list`, `agent run` and `agent stop`. In memory only: after a restart, the
//! agents' next heartbeats fill it again.
//!
//! The first line on stdout is `listening on ADDR`, as for an agent. The same rules as an
//! agent's: a token (`--token`, `SLOTH_MASTER_TOKEN`) and/or TLS with client certificates;
//! with neither, loopback only unless `--insecure`. SIGTERM or Ctrl-C: exit 0.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Args;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;

use super::agent::shutdown_signal;
use super::serving::{ServingArgs, refuse_unauthenticated};
use crate::rpc::auth::{RequireToken, Token};
use crate::rpc::registry::RegistryService;
use crate::rpc::registry_proto::registry_server::RegistryServer;

#[derive(Debug, Args)]
pub struct MasterArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(short, long, default_value_t = 50053)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Shared secret every agent and operator must present (their --master-token).
    #[arg(long, env = "SLOTH_MASTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    serving: ServingArgs,
}

pub fn execute(args: &MasterArgs) -> ExitCode {
    let token = args.token.clone().and_then(Token::new);
    let authenticated = args.serving.authenticated(token.is_some());
    if let Err(code) = refuse_unauthenticated(
        args.bind,
        authenticated,
        args.serving.insecure,
        ("SLOTH_MASTER_TOKEN", "register agents and stop any of them"),
    ) {
        return code;
    }
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    tokio.block_on(serve(args, token))
}

async fn serve(args: &MasterArgs, token: Option<Token>) -> ExitCode {
    crate::rpc::incoming::raise_descriptor_limit();
    let listener = match tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {}:{}: {error}", args.bind, args.port);
            return ExitCode::FAILURE;
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Pings find a connection whose peer is gone (as the agent's do).
    let registry_server = Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(3)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)));
    let mut builder = match args.serving.with_tls(registry_server) {
        Ok(builder) => builder,
        Err(code) => return code,
    };
    let stop_signal = match shutdown_signal(false) {
        Ok(signal) => signal,
        Err(error) => {
            eprintln!("error: cannot handle signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<RegistryServer<RegistryService>>().await;

    println!("listening on {address}");
    let _ = std::io::stdout().flush();
    tracing::info!(%address, token = token.is_some(), tls = args.serving.tls_cert.is_some(), "master ready");

    let incoming = crate::rpc::incoming::incoming(listener, args.serving.tls_cert.is_some());
    let served = builder
        .add_service(health_service)
        .add_service(InterceptedService::new(
            RegistryServer::new(RegistryService::default()),
            RequireToken::for_master(token.as_ref()),
        ))
        .serve_with_incoming_shutdown(incoming, stop_signal)
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: the master stopped: {error}");
            ExitCode::FAILURE
        }
    }
}
