//! Shared-secret authentication: every call carries `authorization: Bearer <token>`.
//!
//! The agent compares BLAKE3 digests of the presented and expected tokens; `blake3::Hash`
//! equality is constant-time, and digests have a fixed length, so timing reveals nothing about
//! the token. Tokens never appear in logs or errors.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Header carrying the token.
pub const HEADER: &str = "authorization";

/// A secret that never prints.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// None for an empty string (no token configured).
    pub fn new(secret: impl Into<String>) -> Option<Self> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(Self(secret))
    }

    fn digest(&self) -> blake3::Hash {
        blake3::hash(self.0.as_bytes())
    }

    /// A digest that tells tokens apart without revealing them (for caches).
    pub fn fingerprint(&self) -> blake3::Hash {
        self.digest()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Server side: refuses calls without the right token.
#[derive(Clone, Debug)]
pub struct RequireToken {
    expected: Option<blake3::Hash>,
    /// What a call without a token hears.
    missing: &'static str,
}

impl RequireToken {
    /// `None` lets every call through (an agent without a token, on loopback).
    pub fn new(token: Option<&Token>) -> Self {
        Self { expected: token.map(Token::digest), missing: "this agent requires a token" }
    }

    /// The same for a master's registry (`sloth-runner master`).
    pub fn for_master(token: Option<&Token>) -> Self {
        Self { expected: token.map(Token::digest), missing: "this master requires a token" }
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        // A connection that made a call let in stays open (see `incoming::LET_IN_WITHIN`).
        let Some(expected) = self.expected else {
            super::incoming::let_in(request.remote_addr());
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated(self.missing))?;
        if blake3::hash(presented.as_bytes()) == expected {
            super::incoming::let_in(request.remote_addr());
            Ok(request)
        } else {
            Err(Status::unauthenticated("wrong token"))
        }
    }
}

/// Client side: adds the token to every call.
#[derive(Clone, Debug)]
pub struct SendToken {
    header: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl SendToken {
    pub fn new(token: Option<&Token>) -> Result<Self, String> {
        let header = match token {
            None => None,
            Some(token) => {
                let mut value: MetadataValue<_> = format!("Bearer {}", token.0)
                    .parse()
                    .map_err(|_| "the token must be printable ASCII".to_owned())?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self { header })
    }
}

impl Interceptor for SendToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert(HEADER, header.clone());
        }
        Ok(request)
    }
}
