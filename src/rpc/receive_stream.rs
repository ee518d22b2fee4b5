//! A new tree written while the contents it lacks come: the archive is not spooled first and
//! read after — its contents are written into the tree as they arrive, while the master still
//! packs the rest, the way `tar czf - | tar xzf -` overlaps its two ends. The archive is still
//! spooled beside (the cache is filled from it once the task has answered).
//!
//! Files the master found changed as it read them are announced in the stream ahead of their
//! new content (an agent says in its NeedBlobs that it takes them there); the fill takes each
//! before it looks at the next content ([`Amendments`]).

use std::io::Read;
use std::sync::Arc;

use prost::bytes::{Buf, Bytes};
use tokio::sync::mpsc::Receiver;
use tonic::{Status, Streaming};

use super::proto::ExecuteRequest;
use super::receive::{Built, NotReceived, Pins, Received, completed, receive_forwarding};
use super::task_dir::TaskDir;
use crate::workspace::manifest::{Entry, Manifest};
use crate::workspace::rel_path::RelPath;
use crate::workspace::root_meta::RootMeta;
use crate::workspace::{Amendments, BlobCache, Limits, WorkspaceError};

/// Chunks on their way from the call to the fill, at most (each up to
/// [`CHUNK_SIZE`](super::CHUNK_SIZE)): the master is held back by the call's flow control
/// beyond that.
const QUEUED_CHUNKS: usize = 16;

/// What comes of the archive, in the order it came.
pub(super) enum Incoming {
    Chunk(Bytes),
    Amended(Vec<(RelPath, Entry)>),
    /// The archive is complete (and spooled).
    End,
}

/// Where a new tree is built, and from what.
pub(super) struct NewTree {
    pub(super) cache: BlobCache,
    pub(super) target: Arc<Manifest>,
    pub(super) root: std::path::PathBuf,
    /// The tree's directory is there already (one from the pool of a workspace's trees).
    pub(super) leased: bool,
    pub(super) limits: Limits,
    pub(super) root_meta: Option<RootMeta>,
}

/// Builds a new tree from the cache and from the archive of contents `name` as it comes on
/// `inbound`. Returns what came, the tree (or what it still lacks), and the bytes of the contents
/// that came (the cache keeps them if it has room for as much).
pub(super) async fn build_while_receiving(
    inbound: &mut Streaming<ExecuteRequest>,
    dir: &TaskDir,
    name: &str,
    tree: NewTree,
    pins: Pins,
) -> Result<(Received, Built, u64), Status> {
    let (to_fill, from_call) = tokio::sync::mpsc::channel(QUEUED_CHUNKS);
    let building = tokio::task::spawn_blocking(move || build(tree, from_call, pins));
    let received = receive_forwarding(inbound, dir, name, Some(&to_fill)).await;
    // The fill sees the end of what comes (or its breaking off) once this is gone.
    drop(to_fill);
    let built = building.await.map_err(|e| Status::internal(e.to_string()))?;
    match received {
        // What the call brought, or how it failed, comes first: a fill cut short by it failed
        // because of it.
        Err(NotReceived::Failed(status)) => Err(status),
        Ok(received) => {
            let (built, bytes) = built.map_err(super::status::of_workspace)?;
            Ok((received, built, bytes))
        }
        // The fill stopped taking what came: its failure is the task's.
        Err(NotReceived::FillStopped) => match built {
            Err(error) => Err(super::status::of_workspace(error)),
            Ok(_) => Err(Status::internal("the tree was built before its contents had all come")),
        },
    }
}

/// The blocking half: the tree from the cache, then what it lacks from the archive as it
/// comes, the archive read to its end.
fn build(tree: NewTree, from_call: Receiver<Incoming>, pins: Pins) -> Result<(Built, u64), WorkspaceError> {
    let NewTree { cache, target, root, leased, limits, root_meta } = tree;
    // A new tree from the pool is there already, empty.
    if !leased {
        std::fs::create_dir(&root).map_err(WorkspaceError::io(&root))?;
    }
    let mut build = cache.build(&target, &root, &limits)?;
    let amendments = Arc::new(Amendments::default());
    let mut archive =
        StreamedArchive { from_call, current: Bytes::new(), amendments: Arc::clone(&amendments), ended: false };
    let filled = cache.fill_amended(&mut build, std::io::BufReader::new(&mut archive), &limits, &amendments)?;
    // What follows the last content (the archive's end, an announcement too late) is read too.
    std::io::copy(&mut archive, &mut std::io::sink()).map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
    if let Some(path) = amendments.left() {
        return Err(WorkspaceError::UnsafeEntry {
            entry: path.to_string(),
            reason: "announced as amended after the contents came".to_owned(),
        });
    }
    Ok((completed(build, &cache, pins, (leased, &root), root_meta)?, filled.bytes))
}

/// The archive as the fill reads it: the chunks as they came on the call, each announcement
/// pushed to `amendments` as it passes (before any byte that follows it is read).
struct StreamedArchive {
    from_call: Receiver<Incoming>,
    current: Bytes,
    amendments: Arc<Amendments>,
    ended: bool,
}

impl Read for StreamedArchive {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let length = buf.len().min(self.current.len());
                buf[..length].copy_from_slice(&self.current[..length]);
                self.current.advance(length);
                return Ok(length);
            }
            if self.ended {
                return Ok(0);
            }
            match self.from_call.blocking_recv() {
                Some(Incoming::Chunk(chunk)) => self.current = chunk,
                Some(Incoming::Amended(entries)) => {
                    for (path, entry) in entries {
                        self.amendments.push(path, entry);
                    }
                }
                Some(Incoming::End) => self.ended = true,
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the contents stopped coming before the archive's end",
                    ));
                }
            }
        }
    }
}
