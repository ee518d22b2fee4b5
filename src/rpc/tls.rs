//! TLS (rustls) for agents and masters: PEM files in, tonic configurations out. With a client
//! CA the agent requires masters to present a certificate it signed (mutual TLS).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct TlsFileError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError { what, path: path.to_path_buf(), source })
}

/// The agent's side: its certificate and key, and optionally the CA that signs masters.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    pub fn config(&self) -> Result<ServerTlsConfig, TlsFileError> {
        let identity = Identity::from_pem(read("certificate", &self.cert)?, read("key", &self.key)?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read("client CA", ca)?));
        }
        Ok(config)
    }
}

/// The master's side: the CA that signed the agent (without one, the system's roots, as for an
/// `https://` address with no `tls` settings), optionally its own certificate and key (for
/// agents that require them), and the name to expect in the agent's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub domain: Option<String>,
}

impl ClientTls {
    /// `host` is the host part of the agent's address, the default name to verify.
    pub fn config(&self, host: &str) -> Result<ClientTlsConfig, TlsFileError> {
        let mut config = ClientTlsConfig::new().domain_name(self.domain.clone().unwrap_or_else(|| host.to_owned()));
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read("CA certificate", ca)?)),
            // rustls-native-certs: the system's store, or SSL_CERT_FILE / SSL_CERT_DIR.
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(read("certificate", cert)?, read("key", key)?));
        }
        Ok(config)
    }
}
