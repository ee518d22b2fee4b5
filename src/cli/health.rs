//! `sloth-runner health ADDR`: exit 0 when the agent at ADDR serves, 1 (with the reason on
//! stderr) when it does not or cannot be reached — for a container's HEALTHCHECK, a
//! supervisor, a script waiting for an agent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::rpc::tls::ClientTls;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The agent's address: host:port, or https://host:port for an agent serving TLS.
    address: String,
    /// Give up after this long.
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// Trust this CA (PEM) for an agent serving TLS (default: the system's roots).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name to verify in the agent's certificate (default: the address's host).
    #[arg(long, requires = "tls_ca")]
    tls_domain: Option<String>,
}

pub fn execute(args: &HealthArgs) -> ExitCode {
    let tls = args.tls_ca.as_ref().map(|ca| ClientTls {
        ca: Some(ca.clone()),
        domain: args.tls_domain.clone(),
        ..ClientTls::default()
    });
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match tokio.block_on(crate::rpc::health::probe(&args.address, tls.as_ref(), args.timeout)) {
        Ok(()) => {
            println!("{}: serving", args.address);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
