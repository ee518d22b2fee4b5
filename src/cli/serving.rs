//! What the two servers (`agent` and `master`) share about who may call them: the TLS flags,
//! the rule that nothing listens beyond loopback without a token or client certificates, and
//! putting TLS on a server being built.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tonic::transport::Server;

use super::USAGE_ERROR;
use crate::rpc::tls::ServerTls;

/// `--tls-cert`, `--tls-key`, `--tls-client-ca`, `--insecure`.
#[derive(Debug, Args)]
pub struct ServingArgs {
    /// Serve over TLS with this certificate (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require callers to present a certificate signed by this CA (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Allow listening beyond loopback without a token or client certificates.
    #[arg(long)]
    pub insecure: bool,
}

impl ServingArgs {
    /// Whether callers are known by something beyond `token`: client certificates. (Server
    /// TLS alone proves who the server is, not who calls.)
    pub fn authenticated(&self, token: bool) -> bool {
        token || self.tls_client_ca.is_some()
    }

    /// `builder` serving TLS when `--tls-cert` is given; exit 2 (said) when it cannot.
    pub fn with_tls(&self, builder: Server) -> Result<Server, ExitCode> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(builder) };
        let tls = ServerTls { cert: cert.clone(), key: key.clone(), client_ca: self.tls_client_ca.clone() };
        tls.config()
            .map_err(|e| e.to_string())
            // A handshake that does not end in time gives the connection up.
            .and_then(|config| {
                let config = config.timeout(crate::rpc::incoming::FIRST_FLIGHT_WITHIN);
                builder.tls_config(config).map_err(|e| format!("TLS: {e}"))
            })
            .map_err(|error| {
                eprintln!("error: {error}");
                ExitCode::from(USAGE_ERROR)
            })
    }
}

/// Refuses (exit 2) to listen beyond loopback without authentication unless `insecure`, and
/// warns when it does; `token_variable` is the environment variable of the token, `exposure`
/// what a stranger could do ("run commands here").
pub(super) fn refuse_unauthenticated(
    bind: IpAddr,
    authenticated: bool,
    insecure: bool,
    (token_variable, exposure): (&str, &str),
) -> Result<(), ExitCode> {
    if bind.is_loopback() || authenticated {
        return Ok(());
    }
    if !insecure {
        eprintln!(
            "error: refusing to listen on {bind} without a token: anyone who can reach it could {exposure}. \
             Pass --token (or {token_variable}) or --tls-client-ca, or --insecure if that is really what you want"
        );
        return Err(ExitCode::from(USAGE_ERROR));
    }
    eprintln!("warning: listening on {bind} without a token: anyone who can reach this port can {exposure}");
    Ok(())
}
