//! HTTP for pipelines, behind the Lua `net` module: a GET or POST whose answer is held in
//! memory, and a download streamed to a file. Pure Rust, no Lua.
//!
//! Blocking, over ureq (HTTP/1.1) with the rustls + ring stack the agents' TLS already uses and
//! the same system roots (rustls-native-certs: the system's store, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`). Only `http` and `https` URLs. Redirects are followed (up to 10), proxies
//! come from the usual environment variables, as with the Go tool's `net/http`.
//!
//! A call's time: without a limit of its own, a call fails when nothing arrives for
//! [`IDLE`] (connecting, waiting for the answer, between two reads); with one, the whole call
//! (connection, redirects, body) must end within it. A call also stops at its next chunk once
//! its `cancel` flag is set (the task that made it was stopped).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::http;

use crate::error_kind::ErrorKind;

mod download;

/// The largest body `fetch` holds in memory: past it, the call fails (a download streams).
pub const MAX_BODY: u64 = 256 * 1024 * 1024;

/// How long a call without a limit of its own waits for anything to arrive.
pub const IDLE: Duration = Duration::from_secs(30);

/// Bytes read at a time (between two looks at the cancel flag).
const CHUNK: usize = 64 * 1024;

/// The HTTP client of one VM: its connection pool and TLS configuration.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
}

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request: where, what, and how long it may take.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    /// Header names and values, in the order given.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body of a POST (empty for a GET).
    pub body: Vec<u8>,
    /// A limit on the whole call; none: [`IDLE`] without progress.
    pub timeout: Option<Duration>,
}

impl Request {
    /// The URL as errors show it: without a user and password in it.
    pub fn shown_url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else { return self.url.clone() };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        match rest[..authority_end].rfind('@') {
            Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
            None => self.url.clone(),
        }
    }
}

/// An answer held in memory.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Each header name (lowercase, as HTTP/2 and the `http` crate write them) with its values
    /// in the order they came.
    pub headers: Vec<(String, Vec<Vec<u8>>)>,
    pub body: Vec<u8>,
}

/// Why a call failed; every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {reason}")]
    Invalid { url: String, reason: String },
    #[error("{url}: cannot connect: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: {}", timed_out(*limit, *whole))]
    Timeout { url: String, limit: Duration, whole: bool },
    #[error("{url}: the connection broke during the transfer: {reason}")]
    Lost { url: String, reason: String },
    #[error("{url}: the server failed the request: {reason}")]
    Failed { url: String, reason: String },
    #[error("{url}: the response body is larger than {} MiB (net.download writes one to a file)", limit / (1024 * 1024))]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {}: {}", path.display(), crate::files::describe(source))]
    Io { url: String, path: PathBuf, source: std::io::Error },
    #[error("{url}: stopped")]
    Cancelled { url: String },
}

fn timed_out(limit: Duration, whole: bool) -> String {
    let limit = crate::duration::format(limit);
    if whole { format!("timed out after {limit}") } else { format!("timed out: nothing arrived for {limit}") }
}

impl HttpError {
    /// The kind scripts tell failures apart by.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Invalid { .. } | HttpError::TooLarge { .. } => ErrorKind::Invalid,
            HttpError::Unreachable { .. } => ErrorKind::Unreachable,
            HttpError::Timeout { .. } => ErrorKind::Timeout,
            HttpError::Lost { .. } | HttpError::Cancelled { .. } => ErrorKind::Lost,
            HttpError::Failed { .. } | HttpError::Status { .. } => ErrorKind::Failed,
            HttpError::Io { source, .. } => ErrorKind::of_io(source),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            HttpError::Invalid { url, .. }
            | HttpError::Unreachable { url, .. }
            | HttpError::Timeout { url, .. }
            | HttpError::Lost { url, .. }
            | HttpError::Failed { url, .. }
            | HttpError::TooLarge { url, .. }
            | HttpError::Status { url, .. }
            | HttpError::Io { url, .. }
            | HttpError::Cancelled { url } => url,
        }
    }

    /// The status of an answer refused for it.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The file an I/O failure was about.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            HttpError::Io { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Where a call was when it failed: a transport error before the answer began means the
/// server could not be reached; after, that the connection broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Receiving,
}

impl Client {
    /// A client trusting the system's roots. Reading them is the costly part: build one when a
    /// pipeline first makes a call, not before.
    pub fn new() -> Self {
        let roots = rustls_native_certs::load_native_certs();
        if !roots.errors.is_empty() {
            tracing::debug!(errors = ?roots.errors, "some system certificates could not be read");
        }
        let roots: Vec<_> =
            roots.certs.iter().map(|cert| ureq::tls::Certificate::from_der(cert.as_ref()).to_owned()).collect();
        // The ring provider the agents' TLS uses (this API follows rustls' minor versions, which
        // Cargo.lock pins for both).
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // A 404 is an answer the caller reads, not a failure of the call.
            .http_status_as_error(false)
            .user_agent(concat!("sloth-runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client { agent }
    }

    /// Makes `request` and reads the whole answer, up to [`MAX_BODY`].
    pub fn fetch(&self, request: &Request, cancel: &AtomicBool) -> Result<Response, HttpError> {
        let mut response = self.send(request)?;
        let status = response.status().as_u16();
        let headers = header_lists(response.headers());
        let mut body = Vec::new();
        let url = request.shown_url();
        read_chunks(response.body_mut().as_reader(), request, cancel, |chunk| {
            if (body.len() + chunk.len()) as u64 > MAX_BODY {
                return Err(HttpError::TooLarge { url: url.clone(), limit: MAX_BODY });
            }
            body.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(Response { status, headers, body })
    }

    /// Sends `request`; the answer's body is still to be read.
    fn send(&self, request: &Request) -> Result<http::Response<ureq::Body>, HttpError> {
        let uri = check_url(request)?;
        let mut builder = http::Request::builder()
            .method(match request.method {
                Method::Get => http::Method::GET,
                Method::Post => http::Method::POST,
            })
            .uri(uri);
        for (name, value) in &request.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(request, format!("invalid header name '{name}'")))?;
            let value = http::HeaderValue::from_bytes(value)
                .map_err(|_| invalid(request, format!("invalid value for header '{name}'")))?;
            builder = builder.header(name, value);
        }
        let sent = match request.method {
            Method::Get => self.run(request, builder.body(()).map_err(|e| invalid(request, e.to_string()))?),
            Method::Post => {
                self.run(request, builder.body(request.body.as_slice()).map_err(|e| invalid(request, e.to_string()))?)
            }
        };
        sent.map_err(|error| classify(request, error, Phase::Connecting))
    }

    fn run(
        &self,
        request: &Request,
        http_request: http::Request<impl ureq::AsSendBody>,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let config = self.agent.configure_request(http_request);
        let http_request = match request.timeout {
            Some(limit) => config.timeout_global(Some(limit)),
            None => config
                .timeout_resolve(Some(IDLE))
                .timeout_connect(Some(IDLE))
                .timeout_per_read(Some(IDLE))
                .timeout_per_write(Some(IDLE)),
        }
        .build();
        self.agent.run(http_request)
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// The URL, if it is an absolute `http` or `https` one with a host.
fn check_url(request: &Request) -> Result<http::Uri, HttpError> {
    let fail = |reason: &str| HttpError::Invalid { url: request.shown_url(), reason: reason.to_owned() };
    // The scheme first: `file:///x` is refused for its scheme, not as a URL `http` cannot read.
    let scheme = request.url.split_once(':').map(|(scheme, _)| scheme).filter(|scheme| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if scheme.is_some_and(|scheme| !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https")) {
        return Err(fail("only http and https URLs are supported"));
    }
    const NOT_ABSOLUTE: &str = "not an absolute URL (expected http://… or https://…)";
    if scheme.is_none() {
        return Err(fail(NOT_ABSOLUTE));
    }
    let uri: http::Uri = request.url.parse().map_err(|_| fail("not a valid URL"))?;
    if uri.scheme_str().is_none() {
        return Err(fail(NOT_ABSOLUTE));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(fail("the URL has no host"));
    }
    Ok(uri)
}

fn invalid(request: &Request, reason: String) -> HttpError {
    HttpError::Invalid { url: request.shown_url(), reason }
}

/// The headers as lists of values by lowercase name, in the order they came.
fn header_lists(headers: &http::HeaderMap) -> Vec<(String, Vec<Vec<u8>>)> {
    headers
        .keys()
        .map(|name| (name.as_str().to_owned(), headers.get_all(name).iter().map(|v| v.as_bytes().to_vec()).collect()))
        .collect()
}

/// Reads `reader` to its end, handing each chunk to `take`; stops when `cancel` is set.
fn read_chunks(
    mut reader: impl Read,
    request: &Request,
    cancel: &AtomicBool,
    mut take: impl FnMut(&[u8]) -> Result<(), HttpError>,
) -> Result<(), HttpError> {
    let mut buffer = vec![0; CHUNK];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(HttpError::Cancelled { url: request.shown_url() });
        }
        let read = match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(classify(request, ureq::Error::from(error), Phase::Receiving)),
        };
        take(&buffer[..read])?;
    }
}

/// What a ureq error comes down to, for the caller.
fn classify(request: &Request, error: ureq::Error, phase: Phase) -> HttpError {
    let url = request.shown_url();
    let reason = error.to_string();
    match error {
        ureq::Error::Timeout(which) => {
            let whole = request.timeout.is_some() && matches!(which, ureq::Timeout::Global);
            HttpError::Timeout { url, limit: request.timeout.unwrap_or(IDLE), whole }
        }
        ureq::Error::Io(error) if matches!(error.kind(), std::io::ErrorKind::TimedOut) => {
            HttpError::Timeout { url, limit: request.timeout.unwrap_or(IDLE), whole: request.timeout.is_some() }
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            HttpError::Invalid { url, reason }
        }
        ureq::Error::Rustls(tls) => HttpError::Unreachable { url, reason: tls_failed(&tls) },
        ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::ConnectProxyFailed(_) => HttpError::Unreachable { url, reason },
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed | ureq::Error::LargeResponseHeader(..) => {
            HttpError::Failed { url, reason }
        }
        ureq::Error::BodyExceedsLimit(limit) => HttpError::TooLarge { url, limit },
        ureq::Error::Io(io) if phase == Phase::Connecting => HttpError::Unreachable { url, reason: io_said(&io) },
        ureq::Error::Io(io) => HttpError::Lost { url, reason: io_said(&io) },
        _ if phase == Phase::Connecting => HttpError::Unreachable { url, reason },
        _ => HttpError::Lost { url, reason },
    }
}

/// An I/O error's words: the system's for an OS error, what TLS said for a TLS failure (which
/// rustls hands up inside an I/O error), else its own.
fn io_said(error: &std::io::Error) -> String {
    if let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return tls_failed(tls);
    }
    crate::files::describe(error)
}

/// A TLS failure says so: "received corrupt message" alone does not tell a user that the
/// server does not speak TLS.
fn tls_failed(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidMessage(_) => format!("TLS failed: {error} (does the server speak https?)"),
        _ => format!("TLS failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Request {
        Request { method: Method::Get, url: url.to_owned(), headers: Vec::new(), body: Vec::new(), timeout: None }
    }

    #[test]
    fn errors_show_a_url_without_its_user_and_password() {
        assert_eq!(get("https://me:secret@host:8443/a?b=c@d").shown_url(), "https://host:8443/a?b=c@d");
        assert_eq!(get("http://host/a@b").shown_url(), "http://host/a@b");
        assert_eq!(get("not a url").shown_url(), "not a url");
    }

    #[test]
    fn only_absolute_http_and_https_urls_are_accepted() {
        for url in ["http://127.0.0.1:8080/x", "https://example.com", "HTTP://host/"] {
            assert!(check_url(&get(url)).is_ok(), "{url}");
        }
        for (url, reason) in [
            ("ftp://host/x", "only http and https"),
            ("file:///etc/passwd", "only http and https"),
            ("/a/path", "not an absolute URL"),
            ("host/path", "not an absolute URL"),
            ("http://", "not a valid URL"),
            ("http://a b/", "not a valid URL"),
        ] {
            let error = check_url(&get(url)).expect_err(url);
            assert_eq!(error.kind(), ErrorKind::Invalid, "{url}");
            assert!(error.to_string().contains(reason), "{url}: {error}");
        }
    }
}
