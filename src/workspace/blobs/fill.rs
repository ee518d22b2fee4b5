//! A new tree's contents written straight from the archive they came in (see
//! [`BlobCache::fill`]): each content read once and verified as it is written, instead of
//! stored into the cache first and then copied from there — on a cold task over many small
//! files, storing was a third of the agent's work before the task could start, and before the
//! master could hear its result. Small files are written by threads of their own while the
//! archive is read (making files is most of such a build: a third less time over 20,000 small
//! files on two cores). The cache gets the contents from the same archive once the task has
//! answered ([`BlobCache::store`]); meanwhile a task deciding what it lacks waits for that
//! store ([`BlobCache::settled`]), so nothing is sent twice.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use super::{Amendments, BlobCache, Build, read_through};
use crate::workspace::WorkspaceError;
use crate::workspace::beneath::{Root, Stamp};
use crate::workspace::blob_stream::{Blob, for_each_blob};
use crate::workspace::manifest::Entry;
use crate::workspace::rel_path::RelPath;
use crate::workspace::tree_writer::{Admitted, write_admitted};
use crate::workspace::unpack::Limits;

/// A store of contents that came for a new tree, running: counted until dropped.
#[derive(Debug)]
pub struct Filling {
    fills: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Drop for Filling {
    fn drop(&mut self) {
        self.fills.send_modify(|running| *running = running.saturating_sub(1));
    }
}

impl BlobCache {
    /// Counts a store of what came for a new tree, running beside its task, until the guard
    /// is dropped.
    pub fn filling(&self) -> Filling {
        self.fills.send_modify(|running| *running += 1);
        Filling { fills: Arc::clone(&self.fills) }
    }

    /// Once no store of what came for a new tree is running: what a task lacks is decided
    /// then, and finds what those brought.
    pub async fn settled(&self) {
        let mut running = self.fills.subscribe();
        let _ = running.wait_for(|running| *running == 0).await;
    }

    /// Writes the files `build` still lacks whose contents `reader` (a blob archive, as
    /// [`BlobCache::store`] takes it) holds, each checked against its name as it is written
    /// (a file whose content does not match is removed, and the build fails naming the blob).
    /// A content several files share is read into memory once (a large one: stored into the
    /// cache and copied from there); hard links to files written now follow them. The same
    /// limits as `store` hold over the whole archive. Returns how many contents the archive
    /// held, and their bytes.
    pub fn fill(&self, build: &mut Build, reader: impl Read, limits: &Limits) -> Result<Filled, WorkspaceError> {
        self.fill_amended(build, reader, limits, &Amendments::default())
    }

    /// [`BlobCache::fill`] from an archive that streams in while files in it are announced as
    /// amended (`amendments`, pushed by whoever reads the stream, each before the content it
    /// concerns): before each content, what was announced is taken — the file is then written
    /// with the content it has now. An announcement for a file that was not lacking, or whose
    /// content already came, fails the fill naming it.
    pub fn fill_amended(
        &self,
        build: &mut Build,
        reader: impl Read,
        limits: &Limits,
        amendments: &Amendments,
    ) -> Result<Filled, WorkspaceError> {
        let threads = crate::workspace::tree_walk::cores();
        if build.pending.len() < PARALLEL_FROM || threads < 2 {
            return self.fill_with(build, reader, (limits, amendments), None).map(|(filled, _)| filled);
        }
        // Small files are written by threads of their own while this one reads the archive:
        // on a tree of many small files, making files is most of the build.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Vec<Job>>(QUEUED_BATCHES);
        let queue = std::sync::Mutex::new(queue);
        let failed = AtomicBool::new(false);
        let mut roots = Vec::with_capacity(threads);
        for _ in 0..threads {
            roots.push(build.writer.root().try_clone()?);
        }
        let (filled, done) = std::thread::scope(|scope| {
            let (queue, failed) = (&queue, &failed);
            let workers: Vec<_> =
                roots.into_iter().map(|root| scope.spawn(move || write_jobs(&root, queue, failed))).collect();
            let filled = self.fill_with(build, reader, (limits, amendments), Some((&jobs, failed)));
            drop(jobs);
            let done: Vec<_> = workers
                .into_iter()
                .map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect();
            (filled, done)
        });
        let mut first_error = None;
        let mut results = Vec::new();
        for done in done {
            match done {
                Ok(written) => results.extend(written),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        let (filled, mut written) = filled?;
        for (at, entry, stamp) in results {
            let path = build.pending[at].0.clone();
            build.writer.admitted_written(&path, stamp);
            build.written.insert(path, entry);
            written[at] = true;
        }
        self.finish_fill(build, &written)?;
        Ok(filled)
    }

    /// The fill's reading of the archive, small single files handed to `parallel` (their
    /// pending places are then written by [`write_jobs`]); without it, every file here, and
    /// the fill finished.
    fn fill_with(
        &self,
        build: &mut Build,
        reader: impl Read,
        (limits, amendments): (&Limits, &Amendments),
        parallel: Option<(&SyncSender<Vec<Job>>, &AtomicBool)>,
    ) -> Result<(Filled, Vec<bool>), WorkspaceError> {
        let mut wanted: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
        for (at, (_, entry)) in build.pending.iter().enumerate() {
            if let Entry::File { hash, link: None, .. } = entry {
                wanted.entry(*hash.as_bytes()).or_default().push(at);
            }
        }
        let mut written = vec![false; build.pending.len()];
        // Pending places whose content came (written, or handed to a thread).
        let mut came = vec![false; build.pending.len()];
        // Files for the fill's threads, handed over a batch at a time.
        let mut batch = Vec::new();
        let (mut contents, mut bytes) = (0u64, 0u64);
        for_each_blob(reader, |blob| {
            if parallel.is_some_and(|(_, failed)| failed.load(Ordering::Relaxed)) {
                // A writer failed: its error is the fill's.
                return Ok(false);
            }
            let Blob { name, expected, size, content: mut entry } = blob;
            // Announced before this content came (its header was read): where it goes may be
            // one of them.
            for (path, now) in amendments.take() {
                amend(build, &mut wanted, &came, &path, now)?;
            }
            contents += 1;
            if contents > limits.max_entries {
                return Err(WorkspaceError::TooLarge { what: "entry count", limit: limits.max_entries, entry: name });
            }
            let remaining = limits.max_bytes.saturating_sub(bytes);
            let places = wanted.remove(expected.as_bytes()).unwrap_or_default();
            for &at in &places {
                came[at] = true;
            }
            match places.as_slice() {
                [] => bytes += read_through(&mut entry, &name, remaining, limits)?,
                &[at] => match parallel {
                    Some((jobs, _)) if size <= PARALLEL_MAX_BYTES => {
                        let content = read_blob(&mut entry, &name, remaining, limits)?;
                        let size = content.len() as u64;
                        let (path, Entry::File { mode, mtime, .. }) = &build.pending[at] else {
                            unreachable!("only files are wanted from an archive")
                        };
                        let admitted = build.writer.admit_file(path, *mode, *mtime, size)?;
                        bytes += size;
                        batch.push(Job { at, admitted, content, name, expected });
                        if batch.len() == BATCH_JOBS && jobs.send(std::mem::take(&mut batch)).is_err() {
                            return Ok(false);
                        }
                    }
                    _ => {
                        bytes += write_one(build, at, &mut entry, (&name, &expected), remaining, limits)?;
                        written[at] = true;
                    }
                },
                several if size <= SHARED_IN_MEMORY => {
                    bytes += write_shared(build, several, &mut entry, (&name, &expected), remaining, limits)?;
                    for &at in several {
                        written[at] = true;
                    }
                }
                several => {
                    bytes += self.store_one(&mut entry, (&name, &expected), remaining, limits)?;
                    for &at in several {
                        let (path, entry) = build.pending[at].clone();
                        if let Some(done) = self.write_verified(build, &path, &entry)? {
                            build.written.insert(path, done);
                            written[at] = true;
                        }
                    }
                }
            }
            Ok(true)
        })?;
        if let Some((jobs, _)) = parallel
            && !batch.is_empty()
        {
            // A thread that failed has closed nothing: its error is the fill's either way.
            let _ = jobs.send(batch);
        }
        let filled = Filled { contents, bytes };
        if parallel.is_none() {
            self.finish_fill(build, &written)?;
        }
        Ok((filled, written))
    }

    /// What is still lacking stays pending (to be asked for again); a hard link whose first
    /// name is written now is made (in manifest order: its first name comes before it).
    /// `written` says which pending places were written.
    fn finish_fill(&self, build: &mut Build, written: &[bool]) -> Result<(), WorkspaceError> {
        for (at, (path, entry)) in std::mem::take(&mut build.pending).into_iter().enumerate() {
            if written[at] {
                continue;
            }
            if matches!(entry, Entry::File { link: Some(_), .. }) {
                self.write_into(build, &path, &entry)?;
            } else {
                build.pending.push((path, entry));
            }
        }
        Ok(())
    }
}

/// Takes the announcement that the file at `path` is `now` (its content has changed): the
/// pending place waits for the new content instead of the old. Refused for a file that was not
/// lacking its content, whose content came already, or that is not the same kind of file.
fn amend(
    build: &mut Build,
    wanted: &mut HashMap<[u8; 32], Vec<usize>>,
    came: &[bool],
    path: &RelPath,
    now: Entry,
) -> Result<(), WorkspaceError> {
    let refused = |reason: &str| WorkspaceError::UnsafeEntry { entry: path.to_string(), reason: reason.to_owned() };
    let Ok(at) = build.pending.binary_search_by(|(pending, _)| pending.cmp(path)) else {
        return Err(refused("announced as amended, but its content was not asked for"));
    };
    if came[at] {
        return Err(refused("announced as amended after its content came"));
    }
    let (Entry::File { hash: before, link: leader, .. }, Entry::File { hash: after, link, .. }) =
        (&build.pending[at].1, &now)
    else {
        return Err(refused("announced as amended, but it is not a file"));
    };
    // A hard link may be announced as a file of its own (its link was broken since the
    // manifest was taken), never as a link to another file.
    if link.is_some() && link != leader {
        return Err(refused("announced as amended as another file's hard link"));
    }
    if leader.is_none()
        && let Some(places) = wanted.get_mut(before.as_bytes())
    {
        places.retain(|&place| place != at);
        if places.is_empty() {
            wanted.remove(before.as_bytes());
        }
    }
    if link.is_none() {
        wanted.entry(*after.as_bytes()).or_default().push(at);
    }
    build.pending[at].1 = now;
    Ok(())
}

/// Below this many files lacking their content, the fill writes them all on its own thread.
const PARALLEL_FROM: usize = 512;

/// Contents up to this size, each for one file, are written by the fill's threads (read into
/// memory first); larger ones by the fill itself, streamed.
const PARALLEL_MAX_BYTES: u64 = 64 * 1024;

/// Files are handed to the fill's threads this many at a time (one hand-off per file was a
/// wake-up or two per file: tens of thousands of futex calls for a tree of small files).
const BATCH_JOBS: usize = 32;

/// Batches read and waiting for a thread to write them, at most (their contents in memory).
const QUEUED_BATCHES: usize = 4;

/// A file for one of the fill's threads: its pending place, admitted, and the content that
/// must hash to `expected` (the blob `name`).
struct Job {
    at: usize,
    admitted: Admitted,
    content: Vec<u8>,
    name: String,
    expected: blake3::Hash,
}

/// One of the fill's threads: writes the files queued until the queue closes, each verified
/// (one whose content does not match its blob's name is removed, and fails the fill). Returns
/// each file written: its pending place, as written, and its identity.
fn write_jobs(
    root: &Root,
    queue: &std::sync::Mutex<Receiver<Vec<Job>>>,
    failed: &AtomicBool,
) -> Result<Vec<(usize, Entry, Stamp)>, WorkspaceError> {
    let mut written = Vec::new();
    loop {
        let batch = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
        let Ok(batch) = batch else { return Ok(written) };
        for job in batch {
            write_job(root, job, failed, &mut written)?;
        }
    }
}

/// Writes one job's file, verified, recording it in `written`; a failure is also flagged in
/// `failed`, for the reader to stop.
fn write_job(
    root: &Root,
    Job { at, admitted, content, name, expected }: Job,
    failed: &AtomicBool,
    written: &mut Vec<(usize, Entry, Stamp)>,
) -> Result<(), WorkspaceError> {
    let done = write_admitted(root, &admitted, &content).and_then(|(entry, stamp)| match &entry {
        Entry::File { hash, .. } if *hash == expected => Ok((entry, stamp)),
        _ => {
            root.unlink(&admitted.path)?;
            Err(WorkspaceError::UnsafeEntry { entry: name, reason: "its content does not match its hash".to_owned() })
        }
    });
    match done {
        Ok((entry, stamp)) => {
            written.push((at, entry, stamp));
            Ok(())
        }
        Err(error) => {
            failed.store(true, Ordering::Relaxed);
            Err(error)
        }
    }
}

/// What an archive of contents for a new tree held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    pub contents: u64,
    /// Their bytes, as the cache would keep them.
    pub bytes: u64,
}

/// A content several files share, up to this size, is held in memory while they are written
/// (a larger one goes through the cache): a full cache does not fail a tree that has room.
const SHARED_IN_MEMORY: u64 = 16 << 20;

/// Writes pending files `all` of `build`, which share one content, from an archive's blob read
/// into memory, each verified against `expected`; returns the blob's size.
fn write_shared(
    build: &mut Build,
    all: &[usize],
    blob: &mut impl Read,
    (name, expected): (&str, &blake3::Hash),
    remaining: u64,
    limits: &Limits,
) -> Result<u64, WorkspaceError> {
    let bytes = read_blob(blob, name, remaining, limits)?;
    let size = bytes.len() as u64;
    // Each copy is verified as it is written (the first one that lies fails the build).
    for &at in all {
        write_one(build, at, &mut &bytes[..], (name, expected), remaining, limits)?;
    }
    Ok(size)
}

/// An archive's blob `name` read into memory: at most `remaining` bytes of the limits' total.
fn read_blob(blob: &mut impl Read, name: &str, remaining: u64, limits: &Limits) -> Result<Vec<u8>, WorkspaceError> {
    let mut bytes = Vec::new();
    blob.take(remaining + 1).read_to_end(&mut bytes).map_err(|e| WorkspaceError::Corrupt(format!("{name}: {e}")))?;
    if bytes.len() as u64 > remaining {
        return Err(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name.to_owned() });
    }
    Ok(bytes)
}

/// Writes pending file `at` of `build` from an archive's blob, verified against `expected`;
/// returns the blob's size.
fn write_one(
    build: &mut Build,
    at: usize,
    blob: &mut impl Read,
    (name, expected): (&str, &blake3::Hash),
    remaining: u64,
    limits: &Limits,
) -> Result<u64, WorkspaceError> {
    let (path, Entry::File { mode, mtime, .. }) = build.pending[at].clone() else {
        unreachable!("only files are wanted from an archive")
    };
    build.writer.root().check_parent(&path)?;
    let read_error = |e: std::io::Error| WorkspaceError::Corrupt(format!("{name}: {e}"));
    let done = build.writer.file(&path, mode, mtime, blob.take(remaining + 1), read_error)?;
    let Entry::File { hash, size, .. } = &done else { unreachable!("a file was written") };
    let refused = if *size > remaining {
        Some(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: name.to_owned() })
    } else if hash != expected {
        Some(WorkspaceError::UnsafeEntry {
            entry: name.to_owned(),
            reason: "its content does not match its hash".to_owned(),
        })
    } else {
        None
    };
    if let Some(refused) = refused {
        build.writer.discard_file(&path)?;
        return Err(refused);
    }
    let size = *size;
    build.written.insert(path, done);
    Ok(size)
}
