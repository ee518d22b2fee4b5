//! The agent's side of a task's workspace on its way in: the manifest, the contents the
//! agent's cache lacks (asked for, stored, verified), and the tree built from them — a kept
//! tree of the same workspace brought up to date, or a new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::{Status, Streaming};

use super::proto::execute_request::Item;
use super::proto::execute_response::Event;
use super::proto::{ExecuteRequest, ExecuteResponse, NeedBlobs};
use super::receive_manifest::receive_manifest;
use super::receive_stream::{Incoming, NewTree, build_while_receiving};
use super::server::{AgentIdentity, Outbound, RemoteWorkspace};
use super::spool::{Spool, Spooling};
use super::task_dir::{TaskDir, make_dir};
use crate::workspace::root_meta::RootMeta;
use crate::workspace::trees::Lease;
use crate::workspace::{BlobCache, Limits, WorkspaceError};

/// What a task's tree may be: one an earlier task of its workspace left (`key`), lent through
/// `lease`; and the agent's count of files written into trees.
pub(super) struct Warm<'a> {
    pub(super) key: Option<&'a str>,
    pub(super) lease: &'a mut Option<Lease>,
    pub(super) traffic: &'a Traffic,
}

/// What the agent has done since it started, as `Info` reports it.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Files written into task trees.
    pub files_written: AtomicU64,
    pub contents_requested: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Manifest entries that came over the wire (by outline: those of parts it lacked).
    pub manifest_entries_received: AtomicU64,
    /// Contents a task's tree needed that the cache held (hits) or lacked (misses, asked for).
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Kept trees planned from what the scan after their last task saw, nothing having
    /// changed since (no look at every entry).
    pub plans_from_watch: AtomicU64,
}

/// Incremental sync: asks for the contents the cache lacks and builds the workspace from the
/// manifest — in a tree an earlier task of the same workspace left, writing only what differs,
/// or a new one; from the cache and, for what it lacked, straight from what came (the cache
/// filled from that after the task: the [`CacheFill`] returned) — verifying
/// every content as it is used; a cached content that fails verification is asked for again,
/// once. The task's base is what was built.
pub(super) async fn receive_incremental(
    inbound: &mut Streaming<ExecuteRequest>,
    dir: &TaskDir,
    (identity, limits): (&AgentIdentity, Limits),
    tx: &Outbound,
    (ignore, root_meta): (Vec<String>, Option<RootMeta>),
    warm: Warm<'_>,
) -> Result<(RemoteWorkspace, Option<CacheFill>), Status> {
    // The tree first: a manifest sent by outline takes what it can from what that tree held.
    if let (Some(key), Some(trees)) = (warm.key, &identity.trees) {
        *warm.lease = match trees.lease_idle(key) {
            Some(lease) => Some(lease),
            None => {
                let (trees, key) = (Arc::clone(trees), key.to_owned());
                Some(blocking(move || trees.lease(&key)).await?)
            }
        };
    }
    let (root, state) = match warm.lease.as_ref() {
        Some(lease) => (lease.root.clone(), lease.state.clone()),
        None => (dir.path().join("workspace"), None),
    };
    // Shared, not copied, between the steps below (a large workspace's manifest is big).
    let mut manifest = match receive_manifest(inbound, limits.max_entries, state.clone(), tx, warm.traffic).await {
        Ok(manifest) => Arc::new(manifest),
        Err(status) => {
            // Nothing was written into the tree yet: the next task of the workspace has it.
            if let (Some(trees), Some(lease)) = (&identity.trees, warm.lease.take()) {
                let trees = Arc::clone(trees);
                blocking(move || {
                    trees.put_back(lease);
                    Ok(())
                })
                .await?;
            }
            return Err(status);
        }
    };
    // A kept tree is looked at first: only what it lacks is asked for.
    let plan = match state {
        Some(state) => {
            let (planned_root, target) = (root.clone(), Arc::clone(&manifest));
            let watched = warm.lease.as_mut().and_then(|lease| lease.watched.take());
            let planned =
                blocking(move || crate::workspace::warm::plan_watched(&planned_root, &state, &target, watched));
            match planned.await {
                Ok((plan, from_watch)) => {
                    if from_watch {
                        warm.traffic.plans_from_watch.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(plan)
                }
                Err(status) => {
                    // Not usable (removed behind the agent's back, a mount left in it): a new
                    // tree instead.
                    tracing::warn!(tree = %root.display(), reason = %status.message(), "a kept tree is not reused");
                    if let (Some(trees), Some(lease)) = (&identity.trees, warm.lease.take()) {
                        let (trees, key) = (Arc::clone(trees), warm.key.unwrap_or_default().to_owned());
                        *warm.lease = Some(
                            blocking(move || {
                                trees.discard(&lease);
                                trees.lease_new(&key)
                            })
                            .await?,
                        );
                    }
                    None
                }
            }
        }
        None => None,
    };
    let root = warm.lease.as_ref().map_or(root, |lease| lease.root.clone());
    // Kept from trimming until the tree is built: what a kept tree still needs, or every
    // content of a new one (those already cached are copied from the cache). The cache knows
    // what it holds in memory: no file work, no trip to a blocking thread.
    let needed = match &plan {
        Some(plan) => plan.needed(&manifest),
        None => BlobCache::contents_of(&manifest),
    };
    // What came for a new tree may still be on its way into the cache: waited for, not sent
    // again — when the cache lacks any of it: a kept tree's task that needs nothing new does
    // not wait for the cache to be filled with the contents of another tree (20,000 small
    // files are seconds of file creation on some disks).
    if !identity.cache.missing_of(&needed).is_empty() {
        identity.cache.settled().await;
    }
    let pin = identity.cache.pin_hashes(&needed);
    let missing = identity.cache.missing_of(&needed);
    warm.traffic.cache_misses.fetch_add(missing.len() as u64, Ordering::Relaxed);
    warm.traffic.cache_hits.fetch_add(needed.len().saturating_sub(missing.len()) as u64, Ordering::Relaxed);
    tracing::info!(
        entries = manifest.entries.len(),
        missing = missing.len(),
        warm = plan.is_some(),
        "incremental sync"
    );
    ask_for(&missing, tx).await?;
    let cache = identity.cache.clone();
    let mut ready = root.clone();
    let leased = warm.lease.is_some();
    let new_tree = plan.is_none();
    if !leased {
        make_dir(dir).await?;
    }
    let mut tree = ready.clone();
    // Built, and completed at once unless a cached content failed verification (then it is
    // asked for again, and the build completed after). A new tree is written as its contents
    // come; a kept tree's plan removes what goes first, then writes them. Either way what came
    // goes straight into the tree, and into the cache after the task (below).
    let (sent, built) = if new_tree && !missing.is_empty() {
        let new = NewTree { cache: cache.clone(), target: Arc::clone(&manifest), root, leased, limits, root_meta };
        let (Received { amended, bytes, spool }, built, filled) =
            build_while_receiving(inbound, dir, BLOBS, new, (pin, None)).await?;
        if !amended.is_empty() {
            super::manifest::amend_from_wire(Arc::make_mut(&mut manifest), amended)
                .map_err(Status::invalid_argument)?;
        }
        (bytes, (built, 0, Some(Came { spool, bytes: filled })))
    } else {
        let Received { amended, bytes: sent, spool } = receive_workspace(inbound, dir, BLOBS).await?;
        let amended_any = !amended.is_empty();
        if amended_any {
            super::manifest::amend_from_wire(Arc::make_mut(&mut manifest), amended)
                .map_err(Status::invalid_argument)?;
        }
        // Contents sent as read (amended) are kept from trimming like the rest (a pin only
        // counts: nothing is read).
        let pin_amended = amended_any.then(|| identity.cache.pin(&manifest));
        let store_cache = cache.clone();
        let target = Arc::clone(&manifest);
        let pins = (pin, pin_amended);
        let (built, kept, came) =
            build_from_spool(plan, (spool, sent), store_cache, target, (root, leased, limits, root_meta), pins).await?;
        (sent, (built, kept, came))
    };
    warm.traffic.contents_requested.fetch_add(missing.len() as u64, Ordering::Relaxed);
    warm.traffic.bytes_received.fetch_add(sent, Ordering::Relaxed);
    let (mut built, mut kept, mut came) = built;
    if let Built::Unreconciled(reason, pins) = built {
        let (Some(trees), Some(lease)) = (&identity.trees, warm.lease.take()) else {
            return Err(Status::internal("a kept tree failed to reconcile without being leased"));
        };
        tracing::warn!(tree = %lease.root.display(), %reason, "a kept tree cannot be brought up to date: a new one instead");
        let (trees, key) = (Arc::clone(trees), warm.key.unwrap_or_default().to_owned());
        let lease = blocking(move || {
            trees.discard(&lease);
            trees.lease_new(&key)
        })
        .await?;
        (ready, tree) = (lease.root.clone(), lease.root.clone());
        *warm.lease = Some(lease);
        let (cache, target, root) = (identity.cache.clone(), Arc::clone(&manifest), ready.clone());
        // Every content of the manifest kept from trimming now (the plan's pins held only what
        // the kept tree lacked): what comes again must still be there when the build takes it.
        let pins = (pins.0, Some(identity.cache.pin(&manifest)));
        // From the cache and what came, as a new tree; what it still lacks is asked for below,
        // as for a cached content that failed verification.
        let spool = came.take().map(|came| came.spool);
        (built, came) = blocking(move || {
            let mut build = cache.build(&target, &root, &limits)?;
            let came = fill_from(&cache, &mut build, spool, &limits)?;
            Ok((completed(build, &cache, pins, (true, &root), root_meta)?, came))
        })
        .await?;
        kept = 0;
    }
    // On a disk the trees share with the cache, the room is the task's: what came is not kept
    // unless as much stays free (its archive goes now).
    let for_the_cache = match came {
        Some(Came { spool, bytes }) if !identity.cache.has_room_for(bytes) => {
            tracing::warn!(bytes, "the agent's disk is short: the contents that came are not kept in the cache");
            spool.release().await;
            None
        }
        came => came.map(|came| came.spool),
    };
    // What came for a new tree went straight into it: the cache gets it once the task has
    // answered. A task deciding what it lacks while that store runs waits for it if it needs any
    // of it; one that comes while this task still runs does not (it asks for what it lacks: a
    // task waited for the whole of another one — two tasks of a workspace that wait for each
    // other waited in vain).
    let fill = for_the_cache.filter(|_| sent > 0).map(|spool| {
        let cache = identity.cache.clone();
        CacheFill(Box::new(move || {
            let _filling = cache.filling();
            match store(&cache, &spool, &limits).and_then(|_| cache.trim()) {
                Ok(removed) if removed > 0 => tracing::debug!(removed, "cache trimmed"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "the contents that came are not kept in the cache"),
            }
        }))
    });
    let built = match built {
        Built::Done(built) => built,
        Built::Unreconciled(..) => unreachable!("a tree that failed to reconcile is replaced above"),
        Built::Lacking(lacking) => {
            let (mut build, pins) = *lacking;
            let again = build.missing();
            tracing::warn!(
                contents = again.len(),
                "contents missing from the cache or damaged there: asking for them again"
            );
            ask_for(&again, tx).await?;
            let again_received = receive_workspace(inbound, dir, BLOBS_AGAIN).await?;
            if !again_received.amended.is_empty() {
                return Err(Status::invalid_argument("amendments are only sent with the first contents"));
            }
            warm.traffic.contents_requested.fetch_add(again.len() as u64, Ordering::Relaxed);
            warm.traffic.bytes_received.fetch_add(again_received.bytes, Ordering::Relaxed);
            if again_received.bytes == 0 {
                return Err(Status::invalid_argument("the contents asked for again were not sent"));
            }
            let spool = again_received.spool;
            blocking(move || {
                // Straight into the tree, as the first contents: what is still wrong fails.
                fill_from(&cache, &mut build, Some(spool), &limits)?;
                build.retry(&cache)?;
                complete(build, &cache, pins, (leased, &tree), root_meta)
            })
            .await?
        }
    };
    let written = (built.file_count() as u64).saturating_sub(kept as u64);
    warm.traffic.files_written.fetch_add(written, Ordering::Relaxed);
    Ok((RemoteWorkspace { root: ready, built: Arc::new(built), ignore }, fill))
}

/// Builds the task's tree from the cache and the archive `spool` (`sent` bytes,
/// none when nothing was asked for): a kept tree brought to `target` by its plan — what goes
/// removed first, then what is missing or different written from the cache, or from the
/// archive straight into the tree — or a new one whose every content the cache holds (what a
/// new tree lacks comes streamed: [`build_while_receiving`]). Also returns the files a plan
/// kept, and what came (the archive and its contents' bytes) for the cache to take after the
/// task if it has room: a cache short of room (its own small disk, or the one it shares with
/// the trees) costs the task nothing, on a kept tree as on a new one.
async fn build_from_spool(
    plan: Option<crate::workspace::warm::Plan>,
    (spool, sent): (Spool, u64),
    store_cache: BlobCache,
    target: Arc<crate::workspace::manifest::Manifest>,
    (root, leased, limits, root_meta): (std::path::PathBuf, bool, Limits, Option<RootMeta>),
    pins: Pins,
) -> Result<(Built, usize, Option<Came>), Status> {
    blocking(move || {
        let came = (sent > 0).then_some(spool);
        let (mut build, kept) = match plan {
            Some(plan) => {
                let kept = plan.kept_files();
                match plan.execute(&root, &target, &store_cache, &limits) {
                    // (A file moved to its new name is not written either.)
                    Ok((build, moved)) => (build, kept + moved),
                    // Something the last task left that this agent cannot undo (an immutable
                    // file, an entry it may not remove): the task gets a new tree instead.
                    Err(error) if !crate::workspace::beneath::is_no_space(&error) => {
                        // (Its bytes are counted when the new tree takes it.)
                        let came = came.map(|spool| Came { spool, bytes: 0 });
                        return Ok((Built::Unreconciled(error.to_string(), pins), 0, came));
                    }
                    Err(error) => return Err(error),
                }
            }
            None => {
                // A new tree from the pool is there already, empty.
                if !leased {
                    std::fs::create_dir(&root).map_err(WorkspaceError::io(&root))?;
                }
                (store_cache.build(&target, &root, &limits)?, 0)
            }
        };
        let came = fill_from(&store_cache, &mut build, came, &limits)?;
        Ok((completed(build, &store_cache, pins, (leased, &root), root_meta)?, kept, came))
    })
    .await
}

/// The archive of contents that came on a call, and their bytes as the cache would keep them.
struct Came {
    spool: Spool,
    bytes: u64,
}

/// Writes the files `build` lacks from the archive `spool` of what came (if anything did),
/// straight into the tree.
fn fill_from(
    cache: &BlobCache,
    build: &mut crate::workspace::Build,
    spool: Option<Spool>,
    limits: &Limits,
) -> Result<Option<Came>, WorkspaceError> {
    let Some(spool) = spool else { return Ok(None) };
    let reader = spool.reader().map_err(WorkspaceError::io(spool.place()))?;
    let bytes = cache.fill(build, reader, limits)?.bytes;
    Ok(Some(Came { spool, bytes }))
}

/// A tree built: complete, or lacking contents a cached copy of which failed verification
/// (the pins keep the rest from trimming until it is complete).
pub(super) enum Built {
    Done(crate::workspace::manifest::Manifest),
    /// (Boxed: the rare case.)
    Lacking(Box<(crate::workspace::Build, Pins)>),
    /// A kept tree that could not be brought to the manifest (why): a new one is made.
    Unreconciled(String, Pins),
}

pub(super) type Pins = (crate::workspace::blobs::Pin, Option<crate::workspace::blobs::Pin>);

/// The tree `build` made: completed (see [`complete`]) if every content is written, else
/// lacking what a cached copy failed to give (asked for again).
pub(super) fn completed(
    build: crate::workspace::Build,
    cache: &BlobCache,
    pins: Pins,
    tree: (bool, &std::path::Path),
    root_meta: Option<RootMeta>,
) -> Result<Built, WorkspaceError> {
    if build.missing().is_empty() {
        return Ok(Built::Done(complete(build, cache, pins, tree, root_meta)?));
    }
    Ok(Built::Lacking(Box::new((build, pins))))
}

/// Completes a tree whose every content is written: what was built (for a kept tree, with its
/// entries' identities, so that the scan after the task reads only what changed), its root
/// given the master's root's mode and time last (nothing is written in it after); the cache
/// trimmed once nothing of it is needed any more.
pub(super) fn complete(
    build: crate::workspace::Build,
    cache: &BlobCache,
    pins: Pins,
    (warm_tree, tree): (bool, &std::path::Path),
    root_meta: Option<RootMeta>,
) -> Result<crate::workspace::manifest::Manifest, WorkspaceError> {
    let built = build.finish()?;
    drop(pins);
    let removed = cache.trim()?;
    if removed > 0 {
        tracing::debug!(removed, "cache trimmed");
    }
    let mut built = if warm_tree { crate::workspace::warm::stamped(tree, built)? } else { built };
    if let Some(meta) = root_meta {
        meta.set(tree)?;
    }
    built.root = root_meta;
    // Every identity is recorded, and the task has not started: what it changes is stamped
    // from now on, so files written before now need not be read again after it (the tree's
    // parent, the agent's own, holds the unnamed file the time is read from).
    built.settled_before = tree.parent().and_then(crate::workspace::fs_clock::now_in);
    Ok(built)
}

/// The cache to be filled with what came for a new tree, once its task has answered: the
/// task's own build, run, scan and answer get the machine's cores, not a second copy of every
/// content being written beside them (a task deciding what it lacks meanwhile waits for it:
/// [`BlobCache::settled`]). Done before the task's directory, which holds what came, goes.
pub(super) struct CacheFill(Box<dyn FnOnce() + Send>);

impl CacheFill {
    pub(super) async fn done(self) {
        let _ = tokio::task::spawn_blocking(self.0).await;
    }
}

/// Runs filesystem work off the async threads; a workspace error fails the task with the
/// status its kind calls for (see [`super::status`]).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, Status> {
    let done = tokio::task::spawn_blocking(work).await.map_err(|e| Status::internal(e.to_string()))?;
    done.map_err(super::status::of_workspace)
}

/// Stores the contents of a received archive into the cache.
pub(super) fn store(cache: &BlobCache, spool: &Spool, limits: &Limits) -> Result<u64, WorkspaceError> {
    let reader = spool.reader().map_err(WorkspaceError::io(spool.place()))?;
    cache.store(reader, limits)
}

/// Sends NeedBlobs messages for `hashes` (at least one, the last one marked).
pub(super) async fn ask_for(hashes: &[blake3::Hash], tx: &Outbound) -> Result<(), Status> {
    let mut chunks: Vec<&[blake3::Hash]> = hashes.chunks(super::NEED_CHUNK_HASHES).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let need = NeedBlobs {
            hashes: chunk.iter().map(|hash| hash.as_bytes().to_vec()).collect(),
            last: i == last,
            amended_in_archive: true,
            blob_format: crate::workspace::blob_stream::BlobFormat::Framed.to_wire(),
        };
        if tx.send(Ok(ExecuteResponse { event: Some(Event::Need(need)) })).await.is_err() {
            return Err(Status::cancelled("the master went away"));
        }
    }
    Ok(())
}

/// Where the contents an incremental sync asked for are spooled, in the task's directory.
const BLOBS: &str = "blobs.tar.gz";
/// Where contents asked for again (a cached one failed verification) are spooled.
const BLOBS_AGAIN: &str = "blobs-again.tar.gz";

/// Spools the workspace chunks until `WorkspaceEnd` (in memory while small, else to `name` in
/// the task's directory, both made then: [`Spooling`]), checking the announced size; returns
/// the archive and the amendments that came with it.
pub(super) async fn receive_workspace(
    inbound: &mut Streaming<ExecuteRequest>,
    dir: &TaskDir,
    name: &str,
) -> Result<Received, Status> {
    receive_forwarding(inbound, dir, name, None).await.map_err(|failed| match failed {
        NotReceived::Failed(status) => status,
        NotReceived::FillStopped => Status::internal("nothing was taking the workspace as it came"),
    })
}

/// [`receive_workspace`], each chunk and announcement also handed on to `fill` as it comes,
/// and the end once the archive is spooled whole.
pub(super) async fn receive_forwarding(
    inbound: &mut Streaming<ExecuteRequest>,
    dir: &TaskDir,
    name: &str,
    fill: Option<&tokio::sync::mpsc::Sender<Incoming>>,
) -> Result<Received, NotReceived> {
    let mut amended = Vec::new();
    // In memory while small; a file (and the task's directory) made when it outgrows that.
    let mut spooling = Spooling::new(dir, name);
    let mut received: u64 = 0;
    let handed = |taken: bool| if taken { Ok(()) } else { Err(NotReceived::FillStopped) };
    loop {
        match inbound.message().await? {
            Some(ExecuteRequest { item: Some(Item::Amended(chunk)) }) => {
                if amended.len() + chunk.entries.len() > super::NEED_CHUNK_HASHES * 64 {
                    return Err(Status::invalid_argument("too many amended entries").into());
                }
                if let Some(fill) = fill {
                    let entries = chunk
                        .entries
                        .iter()
                        .map(|entry| super::manifest::from_wire(entry.clone()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|reason| Status::invalid_argument(format!("amended entry: {reason}")))?;
                    handed(fill.send(Incoming::Amended(entries)).await.is_ok())?;
                }
                amended.extend(chunk.entries);
            }
            Some(ExecuteRequest { item: Some(Item::WorkspaceChunk(chunk)) }) => {
                received += chunk.len() as u64;
                spooling.write(&chunk).await?;
                if let Some(fill) = fill {
                    handed(fill.send(Incoming::Chunk(chunk)).await.is_ok())?;
                }
            }
            Some(ExecuteRequest { item: Some(Item::WorkspaceEnd(end)) }) => {
                if end.size != received {
                    return Err(Status::invalid_argument(format!(
                        "workspace truncated: announced {} bytes, received {received}",
                        end.size
                    ))
                    .into());
                }
                let spool = spooling.finish().await?;
                if let Some(fill) = fill {
                    handed(fill.send(Incoming::End).await.is_ok())?;
                }
                return Ok(Received { amended, bytes: received, spool });
            }
            Some(_) => return Err(Status::invalid_argument("unexpected message while receiving the workspace").into()),
            None => {
                return Err(Status::cancelled("the master ended the call before the workspace was complete").into());
            }
        }
    }
}

/// Why [`receive_forwarding`] stopped before the archive's end.
pub(super) enum NotReceived {
    /// The call failed, or brought something wrong.
    Failed(Status),
    /// What the archive was handed to stopped taking it (its failure says why).
    FillStopped,
}

impl From<Status> for NotReceived {
    fn from(status: Status) -> Self {
        NotReceived::Failed(status)
    }
}

/// What [`receive_workspace`] took: entries sent as read, the archive's size (0: none was
/// sent) and the archive.
pub(super) struct Received {
    pub amended: Vec<super::proto::FileEntry>,
    pub bytes: u64,
    pub spool: Spool,
}
