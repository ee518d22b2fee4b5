//! gRPC: the generated wire types (the one include site), the client, the agent server and
//! the master's registry.
//! No mlua here: the server reaches Lua through the [`server::TaskHandler`] trait.

pub mod auth;
mod chunks;
pub mod client;
pub mod health;
pub mod incoming;
pub mod manifest;
pub mod metrics;
pub mod parts;
mod receive;
mod receive_manifest;
mod receive_stream;
pub mod registry;
pub mod server;
mod spool;
pub mod stats;
mod status;
pub mod task_dir;
pub mod task_spec;
mod text_limit;
pub mod tls;
mod transfer;
pub mod work_dir;

pub use transfer::Transfer;

/// Generated from `proto/sloth/agent/v1/agent.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("sloth.agent.v1");
}

/// Generated from `proto/sloth/registry/v1/registry.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod registry_proto {
    tonic::include_proto!("sloth.registry.v1");
}

/// Size of the chunks archives travel in: far below gRPC's 4 MiB message limit.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// The largest single message either side accepts. Every field that can grow travels in
/// parts of [`PART_SIZE`] (params, dependencies' outputs, values, scripts, outputs), workspaces
/// and changes in chunks: no size a user can reach hits this.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The size of the parts a large field travels in.
pub const PART_SIZE: usize = 1024 * 1024;

/// The most one task's params, dependencies' outputs, values and scripts may hold together,
/// and its outputs.
pub const MAX_FIELD_BYTES: usize = 1024 * 1024 * 1024;

/// Approximate encoded size of one manifest message (entries are added until it is reached).
pub const MANIFEST_CHUNK_BYTES: usize = 1024 * 1024;

/// Hashes per NeedBlobs message (~34 bytes each encoded).
pub const NEED_CHUNK_HASHES: usize = 16 * 1024;

/// Splits `items` into batches of about `limit` bytes each (by `size_of`), so that no message
/// built from one grows near gRPC's limit; an item larger than `limit` gets a batch alone.
pub fn batches<T>(items: impl IntoIterator<Item = T>, size_of: impl Fn(&T) -> usize, limit: usize) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for item in items {
        let item_size = size_of(&item);
        if size + item_size > limit && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            size = 0;
        }
        size += item_size;
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_stay_under_the_limit() {
        let batches = super::batches(["aaaa", "bb", "cccccc", "d"], |s| s.len(), 6);
        assert_eq!(batches, vec![vec!["aaaa", "bb"], vec!["cccccc"], vec!["d"]]);
        assert!(super::batches(Vec::<&str>::new(), |s| s.len(), 6).is_empty());
    }
}
