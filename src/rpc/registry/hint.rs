//! What a client of a master should check when the master cannot be reached over the
//! transport or refuses who it is: the two sides disagreeing on TLS, the master's CA not
//! trusted, a client certificate missing or not accepted. Found from the errors' types (as for
//! agents, `rpc::client::error`), never from their text.

use tonic::{Code, Status};

use super::master_tls::{CA_VARIABLE, CERT_VARIABLE, KEY_VARIABLE};
use crate::rpc::client::{Cause, cause_of, connection_dropped};

/// How this client talks to the master: over TLS or not, with a CA of its own (else the
/// system's roots) and with a client certificate.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Side {
    pub tls: bool,
    pub ca: bool,
    pub cert: bool,
}

/// A transport failure explained: whether the master refused this client (rather than could
/// not be reached), a better reason than the transport's when there is one, and what to do.
#[derive(Debug)]
pub(super) struct Explained {
    pub refused: bool,
    pub reason: Option<&'static str>,
    pub hint: String,
}

/// What `status` (a call that failed before the master answered) came down to, when known.
pub(super) fn explain(status: &Status, side: Side) -> Option<Explained> {
    let unreachable = |hint: String| Explained { refused: false, reason: None, hint };
    let certificate = |reason| Explained { refused: true, reason, hint: certificate_hint(side) };
    match cause_of(status, side.tls) {
        Some(Cause::NothingListens) => Some(unreachable(
            " — nothing listens there: is `sloth-runner master` running on that host and port?".into(),
        )),
        Some(Cause::UntrustedCertificate | Cause::NoTrustedRoots) if side.ca => Some(unreachable(format!(
            " — the master's certificate is not signed by --master-tls-ca ({CA_VARIABLE}), or does not name this host"
        ))),
        Some(Cause::UntrustedCertificate | Cause::NoTrustedRoots) => Some(unreachable(format!(
            " — the master's certificate is not signed by a CA this system trusts, or does not name this host: give \
             the CA that signed it with --master-tls-ca ({CA_VARIABLE})"
        ))),
        Some(Cause::NotTls) => Some(unreachable(format!(
            " — the master does not serve TLS: leave out --master-tls-* ({CA_VARIABLE}…) and https://, or start it \
             with --tls-cert and --tls-key"
        ))),
        // A TLS server drops a plaintext client's first frames.
        Some(Cause::ConnectionDropped) => Some(unreachable(format!(
            " — the master seems to serve TLS: give the CA that signed it with --master-tls-ca ({CA_VARIABLE}), or \
             an https:// address"
        ))),
        Some(Cause::CertificateRefused) => Some(certificate(None)),
        // Over TLS 1.3 the client's handshake is over before the master checks its certificate:
        // a master refusing it sends an alert and closes the connection, and the call hears
        // one or the other.
        // (A call cancelled under it says only "operation was canceled": said better.)
        _ if side.tls && status.code() == Code::Cancelled => {
            Some(certificate(Some("it closed the connection after the TLS handshake")))
        }
        _ if side.tls && connection_dropped(status, true) => Some(certificate(None)),
        _ => None,
    }
}

/// The master wants a certificate its `--tls-client-ca` signed: none was given, or another.
fn certificate_hint(side: Side) -> String {
    if side.cert {
        format!(" — the master did not accept --master-tls-cert ({CERT_VARIABLE}): give one its --tls-client-ca signed")
    } else {
        format!(
            " — the master requires a client certificate (its --tls-client-ca): give --master-tls-cert and \
             --master-tls-key ({CERT_VARIABLE}, {KEY_VARIABLE})"
        )
    }
}
