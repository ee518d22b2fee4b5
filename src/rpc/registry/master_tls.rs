//! How a client reaches a master serving TLS: the CA that signed the master, and the client
//! certificate for a master that requires one (`--tls-client-ca`). One set of settings for
//! every client of a master — `agent --master` and `agent list|run|stop` (flags, defaulting to
//! these variables) and `sloth://` pools (the variables alone, as their token is
//! `SLOTH_MASTER_TOKEN` alone: a pipeline names the master, the machine says how to trust it).

use std::path::PathBuf;

use crate::rpc::tls::ClientTls;

/// The CA (PEM) that signed the master's certificate; `--master-tls-ca`.
pub const CA_VARIABLE: &str = "SLOTH_MASTER_TLS_CA";
/// The client certificate (PEM) to present to the master; `--master-tls-cert`.
pub const CERT_VARIABLE: &str = "SLOTH_MASTER_TLS_CERT";
/// The key (PEM) of that certificate; `--master-tls-key`.
pub const KEY_VARIABLE: &str = "SLOTH_MASTER_TLS_KEY";

/// The TLS settings these say, None when they say nothing (plaintext, or an `https://`
/// address trusted through the system's roots). A certificate without its key, or a key
/// without its certificate, is an error naming what is missing.
pub fn settings(ca: Option<PathBuf>, cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<ClientTls>, String> {
    match (&cert, &key) {
        (Some(_), None) => {
            return Err(format!("--master-tls-cert ({CERT_VARIABLE}) needs --master-tls-key ({KEY_VARIABLE})"));
        }
        (None, Some(_)) => {
            return Err(format!("--master-tls-key ({KEY_VARIABLE}) needs --master-tls-cert ({CERT_VARIABLE})"));
        }
        _ => {}
    }
    if ca.is_none() && cert.is_none() {
        return Ok(None);
    }
    Ok(Some(ClientTls { ca, cert, key, domain: None }))
}

/// The settings of the `SLOTH_MASTER_TLS_*` variables (an empty one counts as unset).
pub fn from_env() -> Result<Option<ClientTls>, String> {
    let path = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    settings(path(CA_VARIABLE), path(CERT_VARIABLE), path(KEY_VARIABLE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_goes_with_its_key() {
        assert_eq!(settings(None, None, None), Ok(None));
        let ca_only = settings(Some("ca.pem".into()), None, None).expect("ca alone").expect("tls");
        assert_eq!(ca_only.ca, Some(PathBuf::from("ca.pem")));
        let error = settings(None, Some("c.pem".into()), None).expect_err("no key");
        assert!(error.contains("--master-tls-key") && error.contains(KEY_VARIABLE), "{error}");
        assert!(settings(None, None, Some("k.pem".into())).is_err());
        let mutual = settings(None, Some("c.pem".into()), Some("k.pem".into())).expect("pair").expect("tls");
        assert_eq!((mutual.ca, mutual.key), (None, Some(PathBuf::from("k.pem"))));
    }
}
