//! gRPC: the generated wire types (the one include site), the client and the agent server.
//! No mlua here: the server reaches Lua through the [`server::TaskHandler`] trait.

pub mod auth;
pub mod client;
pub mod manifest;
pub mod server;
pub mod tls;

/// Generated from `proto/sloth/agent/v1/agent.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("sloth.agent.v1");
}

/// Size of the chunks archives travel in: far below gRPC's 4 MiB message limit.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Approximate encoded size of one manifest message (entries are added until it is reached).
pub const MANIFEST_CHUNK_BYTES: usize = 1024 * 1024;

/// Hashes per NeedBlobs message (~34 bytes each encoded).
pub const NEED_CHUNK_HASHES: usize = 16 * 1024;
