//! Why a call to an agent failed: the agent it was for, what kind of failure it was, and —
//! for a connection that failed or a call refused — what it came down to, found from the
//! errors' types (an I/O error's kind, a TLS error, the token sent or not), never from their
//! text.

use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error_kind::ErrorKind;
use crate::workspace::WorkspaceError;

/// How messages name an agent: by the name the caller gave it ("agent 'build' (host:port)"),
/// else by its address ("the agent at host:port").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentName {
    pub address: String,
    pub name: Option<String>,
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "agent '{name}' ({})", self.address),
            None => write!(f, "the agent at {}", self.address),
        }
    }
}

/// What a failed connection or a refused call came down to, where that is known: what the
/// user should check next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing listens at the address (the connection was refused).
    NothingListens,
    /// The agent's certificate is not signed by a CA trusted here (`tls.ca`, else the
    /// system's), or does not name the address.
    UntrustedCertificate,
    /// No CA certificate could be loaded from this system's store (an `https://` address, or
    /// `tls` settings without `ca`).
    NoTrustedRoots,
    /// TLS was asked for, and the agent answered in plaintext.
    NotTls,
    /// The connection was dropped before the agent answered a plaintext call — what an agent
    /// that serves TLS does.
    ConnectionDropped,
    /// The agent requires a token, and none was sent.
    TokenRequired,
    /// The token sent is not the agent's.
    WrongToken,
    /// The agent refused this master's certificate (mutual TLS), or that it had none.
    CertificateRefused,
    /// A file the workspace's snapshot named was gone (removed, renamed away, replaced) when
    /// its content was sent: the workspace changed under the snapshot; a new one may go.
    ChangedWhileSent,
}

impl Cause {
    /// Every cause, in the order the definitions for editors list them.
    pub const ALL: [Cause; 9] = [
        Cause::NothingListens,
        Cause::UntrustedCertificate,
        Cause::NoTrustedRoots,
        Cause::NotTls,
        Cause::ConnectionDropped,
        Cause::TokenRequired,
        Cause::WrongToken,
        Cause::CertificateRefused,
        Cause::ChangedWhileSent,
    ];

    /// The cause as scripts see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::NothingListens => "nothing_listens",
            Cause::UntrustedCertificate => "untrusted_certificate",
            Cause::NoTrustedRoots => "no_trusted_roots",
            Cause::NotTls => "not_tls",
            Cause::ConnectionDropped => "connection_dropped",
            Cause::TokenRequired => "token_required",
            Cause::WrongToken => "wrong_token",
            Cause::CertificateRefused => "certificate_refused",
            Cause::ChangedWhileSent => "changed_while_sent",
        }
    }
}

/// Why a call to an agent failed, naming the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {agent}: {reason}")]
    Unreachable { agent: AgentName, reason: String, cause: Option<Cause> },
    #[error("{agent} refused the call: {reason}")]
    Refused { agent: AgentName, reason: String, cause: Option<Cause> },
    /// The agent answered with a failure (`code`: its status), or broke the conversation
    /// (`code` None: a message out of place, past a limit).
    #[error("{agent} failed: {reason}")]
    Failed { agent: AgentName, reason: String, code: Option<tonic::Code>, cause: Option<Cause> },
    #[error("{agent} stopped answering during the task: {reason}")]
    Lost { agent: AgentName, reason: String },
    /// The call's time ran out; it was cancelled, which kills the task on the agent.
    #[error("{agent} did not finish the task within {}", crate::duration::format(*limit))]
    TimedOut { agent: AgentName, limit: Duration },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// Reading the contents the agent asked for from the workspace at `root` (named unless
    /// the error names the file).
    #[error("{}{source}", pack_context(root, source))]
    Pack { root: PathBuf, source: WorkspaceError },
}

impl ClientError {
    /// The agent broke the conversation (a message out of place, past a limit).
    pub(super) fn failed(agent: &AgentName, reason: impl Into<String>) -> Self {
        ClientError::Failed { agent: agent.clone(), reason: reason.into(), code: None, cause: None }
    }

    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ClientError::Io { path, source }
    }

    /// A connection to `agent` that could not be made: refused by the agent when it refused
    /// this master's certificate, else unreachable.
    pub(super) fn connecting(agent: &AgentName, reason: String, cause: Option<Cause>) -> Self {
        let agent = agent.clone();
        match cause {
            Some(Cause::CertificateRefused) => ClientError::Refused { agent, reason, cause },
            _ => ClientError::Unreachable { agent, reason, cause },
        }
    }

    /// The same error, naming the agent `name` (see [`AgentName`]).
    pub fn named(mut self, name: Option<String>) -> Self {
        if let ClientError::Unreachable { agent, .. }
        | ClientError::Refused { agent, .. }
        | ClientError::Failed { agent, .. }
        | ClientError::Lost { agent, .. }
        | ClientError::TimedOut { agent, .. } = &mut self
        {
            agent.name = name;
        }
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Unreachable { .. } => ErrorKind::Unreachable,
            ClientError::Refused { .. } => ErrorKind::Refused,
            ClientError::Lost { .. } => ErrorKind::Lost,
            ClientError::TimedOut { .. } => ErrorKind::Timeout,
            ClientError::Failed { code, .. } => match code {
                Some(tonic::Code::ResourceExhausted) => ErrorKind::NoSpace,
                Some(tonic::Code::InvalidArgument) => ErrorKind::Invalid,
                Some(tonic::Code::Aborted) => ErrorKind::Conflict,
                Some(tonic::Code::DeadlineExceeded) => ErrorKind::Timeout,
                _ => ErrorKind::Failed,
            },
            ClientError::Io { source, .. } => ErrorKind::of_io(source),
            ClientError::Pack { source, .. } => ErrorKind::of_workspace(source),
        }
    }

    /// What a failed connection or a refused call came down to, when known.
    pub fn cause(&self) -> Option<Cause> {
        match self {
            ClientError::Unreachable { cause, .. }
            | ClientError::Refused { cause, .. }
            | ClientError::Failed { cause, .. } => *cause,
            ClientError::Pack { source: WorkspaceError::Vanished { .. }, .. } => Some(Cause::ChangedWhileSent),
            _ => None,
        }
    }

    /// The agent the message names (the errors of this side's own files name none).
    pub fn agent(&self) -> Option<&AgentName> {
        match self {
            ClientError::Unreachable { agent, .. }
            | ClientError::Refused { agent, .. }
            | ClientError::Failed { agent, .. }
            | ClientError::Lost { agent, .. }
            | ClientError::TimedOut { agent, .. } => Some(agent),
            ClientError::Io { .. } | ClientError::Pack { .. } => None,
        }
    }

    /// The file concerned, when there is one.
    pub fn path(&self) -> Option<String> {
        match self {
            ClientError::Io { path, .. } => Some(path.display().to_string()),
            ClientError::Pack { source, .. } => crate::error_kind::workspace_path(source),
            _ => None,
        }
    }
}

/// The workspace a failure to read it names first — but not before an error that names the
/// whole path of its file already.
fn pack_context(root: &std::path::Path, source: &WorkspaceError) -> String {
    match source {
        WorkspaceError::Vanished { .. } => String::new(),
        _ => format!("{}: ", root.display()),
    }
}

/// What `error` (a connection's or a call's failure, with its sources) came down to, over TLS
/// or not: an I/O error's kind, a TLS error, an HTTP/2 connection dropped.
pub(in crate::rpc) fn cause_of(error: &(dyn Error + 'static), tls: bool) -> Option<Cause> {
    for cause in chain(error) {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            match io.kind() {
                Io::ConnectionRefused => return Some(Cause::NothingListens),
                Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof if !tls => {
                    return Some(Cause::ConnectionDropped);
                }
                _ => {}
            }
        }
        if let Some(tls_error) = cause.downcast_ref::<rustls::Error>() {
            return tls_cause(tls_error);
        }
        let dropped = cause.downcast_ref::<h2::Error>().is_some_and(|e| e.is_io() || e.is_go_away() || e.is_reset())
            || cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(|e| e.is_canceled() || e.is_closed() || e.is_incomplete_message());
        if dropped && !tls {
            return Some(Cause::ConnectionDropped);
        }
    }
    None
}

/// Whether `error` is the connection going away under the call — reset, closed, cancelled —
/// rather than an answer; over TLS (`tls`), also the TLS layer failing once the connection was
/// made (an I/O error of kind InvalidData: the alert a server sent, whose rustls type HTTP/2
/// keeps only as text). Over TLS 1.3 this is what a server refusing the client's certificate
/// looks like: the client's handshake was over before the server checked it.
pub(in crate::rpc) fn connection_dropped(error: &(dyn Error + 'static), tls: bool) -> bool {
    use std::io::ErrorKind as Io;
    chain(error).any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| match io.kind() {
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => true,
            Io::InvalidData => tls,
            _ => false,
        }) || cause.downcast_ref::<h2::Error>().is_some_and(|e| e.is_io() || e.is_go_away() || e.is_reset())
            || cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(|e| e.is_canceled() || e.is_closed() || e.is_incomplete_message())
    })
}

/// What a TLS failure says about the two sides.
fn tls_cause(error: &rustls::Error) -> Option<Cause> {
    use rustls::AlertDescription as Alert;
    match error {
        rustls::Error::InvalidCertificate(_) => Some(Cause::UntrustedCertificate),
        rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::AccessDenied
            | Alert::CertificateRequired,
        ) => Some(Cause::CertificateRefused),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => Some(Cause::NotTls),
        _ => None,
    }
}

/// Every error in `error`'s chain, including the error an `io::Error` wraps (whose own
/// `source()` skips it: a TLS error travels that way).
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => current.source(),
        };
        Some(current)
    })
}

/// Whether a status is the transport failing (the connection reset, closed or timed out)
/// rather than something the agent answered.
pub(super) fn transport_broke(status: &tonic::Status) -> bool {
    chain(status).skip(1).any(|cause| {
        cause.downcast_ref::<h2::Error>().is_some_and(|e| e.is_io() || e.is_go_away() || e.is_reset())
            || cause.downcast_ref::<std::io::Error>().is_some()
            || cause.downcast_ref::<hyper::Error>().is_some()
    })
}

/// The innermost cause of an error (for a broken connection: what the socket said).
pub(super) fn root_cause(error: &dyn Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An error with its sources, which is where transport errors keep the useful part; a cause
/// whose text is already there is not repeated.
pub(in crate::rpc) fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_found_by_type_wherever_it_is_in_the_chain() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(cause_of(&refused, false), Some(Cause::NothingListens));
        // A TLS error travels inside an I/O error, whose `source()` skips it.
        let untrusted = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(cause_of(&untrusted, true), Some(Cause::UntrustedCertificate));
        let alert = std::io::Error::other(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired));
        assert_eq!(cause_of(&alert, true), Some(Cause::CertificateRefused));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(cause_of(&reset, false), Some(Cause::ConnectionDropped));
        assert_eq!(cause_of(&reset, true), None, "over TLS, a reset says nothing about TLS");
        assert_eq!(cause_of(&std::io::Error::other("anything"), false), None);
    }

    #[test]
    fn an_agent_is_named_by_its_name_when_it_has_one() {
        let unnamed = AgentName { address: "127.0.0.1:1".into(), name: None };
        let error = ClientError::Unreachable { agent: unnamed, reason: "r".into(), cause: None };
        assert_eq!(error.to_string(), "cannot reach the agent at 127.0.0.1:1: r");
        let named = AgentName { address: "127.0.0.1:1".into(), name: Some("box".into()) };
        let error = ClientError::TimedOut { agent: named, limit: Duration::from_millis(300) };
        assert_eq!(error.to_string(), "agent 'box' (127.0.0.1:1) did not finish the task within 300ms");
        assert_eq!(error.kind(), ErrorKind::Timeout);
    }
}
