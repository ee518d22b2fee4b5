//! Task threads made ready before tasks arrive: a thread with its async runtime and a Lua VM
//! that has already loaded the agent-side handler, waiting for one task. A task takes a ready
//! one — so its latency holds no thread, runtime or VM creation — and another is made behind
//! it. A thread serves task after task; its runtime (with the runtime's blocking threads) is
//! reused, since making them cost every task three threads.
//!
//! A VM whose task ran nothing of the pipeline after reading it (a shell command without hooks:
//! the agent-side handler says so) is kept for the next task of the same run and pipeline from
//! the same master (a [`PipelineKey`]), which then finds the pipeline read — exactly as a fresh
//! read would leave it, since no Lua of the pipeline ran since — instead of reading it again (a
//! cost that grew with the pipeline). Any other task takes a fresh VM. A kept VM is dropped when
//! no such task comes for [`HOLD_FOR`], and the one kept longest goes when more than
//! [`MAX_HELD`] would be kept.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Runtime, RuntimeOptions};

/// Which pipeline a VM holds: a digest of the master's identity, the run, the pipeline's
/// sources and the run's values (`read`); and the same without the run (`family`): a VM held
/// for one run of a pipeline is of no use once a later run of it has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub read: [u8; 32],
    pub family: [u8; 32],
}

/// How long a VM waits for the next task of its pipeline.
pub(crate) const HOLD_FOR: Duration = Duration::from_secs(30);

/// The most VMs kept for their pipelines at once (each a few MiB).
const MAX_HELD: usize = 4;

/// How long a task waits for the VM of its pipeline that is on its way back.
const WAIT_FOR_RETURN: Duration = Duration::from_secs(1);

/// How long a thread waits for a task before it gives back the memory its heap holds freed
/// (what the last task's VM used: megabytes over a long-running agent's threads otherwise).
const COLLECT_AFTER: Duration = Duration::from_secs(2);

/// Waits for work (at most `limit`), giving back this thread's freed memory if none comes
/// within [`COLLECT_AFTER`] — not after every task: a chain's next task comes at once.
fn receive(receiver: &Receiver<Work>, limit: Option<Duration>) -> Result<Work, RecvTimeoutError> {
    let first = limit.map_or(COLLECT_AFTER, |limit| limit.min(COLLECT_AFTER));
    match receiver.recv_timeout(first) {
        Err(RecvTimeoutError::Timeout) => crate::memory::collect_this_thread(),
        received => return received,
    }
    match limit {
        None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
        Some(limit) => receiver.recv_timeout(limit.saturating_sub(first)),
    }
}

/// How often a ready thread looks whether the agent's idle pass asks it to make its VM again.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Waits as a ready thread for work; when the agent's idle pass has come since `prepared` was
/// made after work ([`crate::memory::idle_pass`]), makes it again in a heap given back first: a
/// VM made right after a task (or the pipeline's VM a task kept) was dropped, or while other
/// tasks ran, took its blocks here and there in pages those had used, and a few hundred KiB of
/// VM kept megabytes of pages resident; made again once the agent is idle, it takes fresh
/// pages, as at the agent's start. None when the agent is stopping or the VM cannot be made
/// again (the thread ends: a task then finds another ready thread, or makes its own).
fn wait_renewing(
    receiver: &Receiver<Work>,
    mut prepared: Prepared,
    mut settled: bool,
    threads: &std::sync::Weak<ReadyThreads>,
) -> Option<(Work, Prepared)> {
    let mut pass = crate::memory::idle_pass();
    loop {
        if settled {
            return receiver.recv().ok().map(|work| (work, prepared));
        }
        match receiver.recv_timeout(LOOK_EVERY) {
            Ok(work) => return Some((work, prepared)),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if crate::memory::idle_pass() == pass => {}
            Err(RecvTimeoutError::Timeout) => {
                let options = threads.upgrade()?.options.clone();
                drop(prepared);
                crate::memory::collect_this_thread();
                prepared = match Prepared::make(&options) {
                    Ok(prepared) => prepared,
                    Err(error) => {
                        tracing::warn!(%error, "cannot prepare a task thread again while idle");
                        return None;
                    }
                };
                crate::memory::collect_this_thread();
                pass = crate::memory::idle_pass();
                settled = true;
            }
        }
    }
}

/// What a ready thread has made: its runtime (for the task's async work) and its VM, and
/// which pipeline that VM already holds (None: fresh).
pub struct Prepared {
    pub tokio: tokio::runtime::Runtime,
    pub vm: Runtime,
    pub holds: Option<PipelineKey>,
}

impl Prepared {
    /// A current-thread runtime and a VM with the agent-side handler loaded.
    pub fn make(options: &RuntimeOptions) -> Result<Self, String> {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        Self::on(tokio, options)
    }

    /// A fresh VM with the agent-side handler loaded, on `tokio` (a runtime an earlier task
    /// used).
    pub fn on(tokio: tokio::runtime::Runtime, options: &RuntimeOptions) -> Result<Self, String> {
        let vm = Runtime::new(options).map_err(|e| super::error::describe(&e))?;
        vm.lua().set_app_data(super::exit::OnAgent);
        vm.lua()
            .load("require('sloth.agent_side')")
            .set_name("=(sloth-runner agent)")
            .exec()
            .map_err(|e| super::error::describe(&e))?;
        Ok(Self { tokio, vm, holds: None })
    }
}

/// What a task gives back to its thread: the runtime when the thread may serve another task
/// (the task ran to its end and changed nothing about the thread a later task must not
/// inherit), and the VM with the pipeline it holds when a later task of that pipeline may
/// have it.
pub struct Kept {
    pub tokio: tokio::runtime::Runtime,
    pub vm: Option<(PipelineKey, Runtime)>,
}

/// The work a task thread is given: it runs on that thread, with what it prepared (None when
/// it could not: the work then says why, or prepares itself).
pub type Work = Box<dyn FnOnce(Option<Prepared>) -> Option<Kept> + Send>;

/// What a waiting thread received: the pool (not kept alive by the waiting), the work and
/// what it runs with.
type Received = (std::sync::Weak<ReadyThreads>, Work, Prepared);

/// How waiting with a kept VM ended.
enum Waited {
    Work(Received),
    /// No task of its pipeline came: the VM is dropped; the thread (counted as coming again)
    /// may wait as a ready one, with its runtime.
    Unwanted(Arc<ReadyThreads>, tokio::runtime::Runtime),
    /// Let go, or the agent is stopping.
    Gone,
}

/// A thread waiting with a VM that holds a pipeline.
struct Held {
    id: u64,
    key: PipelineKey,
    sender: SyncSender<Work>,
}

/// The ready threads of one agent.
pub struct ReadyThreads {
    waiting: Mutex<Vec<SyncSender<Work>>>,
    /// Threads keeping a VM for the next task of its pipeline, most recent last.
    held: Mutex<Vec<Held>>,
    /// VMs on their way to `held`, by pipeline: the task after them (the next of a chain,
    /// sent as soon as the master has the result) waits for one rather than missing it.
    returning: Mutex<std::collections::HashMap<PipelineKey, usize>>,
    returned: tokio::sync::Notify,
    next_held: AtomicU64,
    /// Threads being made ready, and serving threads that will be ready again after their
    /// task (counted, so a burst of tasks does not make a burst of them).
    coming: AtomicUsize,
    /// How many are kept ready.
    keep: usize,
    options: RuntimeOptions,
}

impl ReadyThreads {
    /// Keeps `keep` threads ready, their VMs built with `options` (no `values`: each task
    /// brings its own).
    pub fn new(options: RuntimeOptions, keep: usize) -> Arc<Self> {
        let threads = Arc::new(Self {
            waiting: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            returning: Mutex::new(std::collections::HashMap::new()),
            returned: tokio::sync::Notify::new(),
            next_held: AtomicU64::new(0),
            coming: AtomicUsize::new(0),
            keep,
            options,
        });
        threads.top_up();
        threads
    }

    /// Hands `work` (a task of pipeline `key`) to the thread holding that pipeline's VM, else
    /// to a ready thread; gives it back when none is ready.
    pub fn run(self: &Arc<Self>, key: Option<PipelineKey>, work: Work) -> Result<(), Work> {
        let mut work = work;
        while let Some(holder) = key.and_then(|key| self.take_held(key)) {
            work = match self.hand(&holder, work) {
                Ok(()) => return Ok(()),
                Err(work) => work,
            };
        }
        loop {
            let Some(thread) = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).pop() else {
                self.top_up();
                return Err(work);
            };
            work = match self.hand(&thread, work) {
                Ok(()) => {
                    self.top_up();
                    return Ok(());
                }
                Err(work) => work,
            };
        }
    }

    /// Sends `work` to a waiting thread, counted as coming until it is ready again (or ends);
    /// gives the work back when that thread is gone.
    fn hand(&self, thread: &SyncSender<Work>, work: Work) -> Result<(), Work> {
        self.coming.fetch_add(1, Ordering::SeqCst);
        thread.send(work).map_err(|returned| {
            self.coming.fetch_sub(1, Ordering::SeqCst);
            returned.0
        })
    }

    /// Starts making threads ready until `keep` are ready or on their way.
    fn top_up(self: &Arc<Self>) {
        loop {
            let ready = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).len();
            let coming = self.coming.load(Ordering::SeqCst);
            if ready + coming >= self.keep {
                return;
            }
            if self.coming.compare_exchange(coming, coming + 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            let threads = Arc::clone(self);
            let spawned =
                std::thread::Builder::new().name("task (ready)".to_owned()).spawn(move || threads.serve(None));
            if let Err(error) = spawned {
                self.coming.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(%error, "cannot start a task thread ahead of its task");
                return;
            }
        }
    }

    /// The body of a ready thread (counted in `coming` while it is not waiting): prepare,
    /// wait for work, run it; again while the work gives the runtime back — waiting first for
    /// a task of the pipeline its VM holds, if the work left one.
    fn serve(self: Arc<Self>, kept: Option<Kept>) {
        let mut this = self;
        let mut kept = kept;
        loop {
            let waited = match kept.take() {
                // A VM kept for its pipeline waits for that pipeline's next task.
                Some(Kept { tokio, vm: Some((key, vm)) }) => match this.wait_with(tokio, key, vm) {
                    Waited::Work(received) => Some(received),
                    Waited::Gone => None,
                    Waited::Unwanted(threads, tokio) => {
                        name_this_thread("task (ready)");
                        this = threads;
                        kept = Some(Kept { tokio, vm: None });
                        continue;
                    }
                },
                kept => this.wait_ready(kept.map(|kept| kept.tokio)),
            };
            let Some((threads, work, prepared)) = waited else { return };
            kept = work(Some(prepared));
            this = match threads.upgrade() {
                Some(threads) => threads,
                None => return,
            };
            match &kept {
                None => {
                    this.coming.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                // (What `ps -L` shows: a thread keeping a VM for its pipeline's next task.)
                Some(Kept { vm: Some(_), .. }) => name_this_thread("task (held)"),
                Some(Kept { vm: None, .. }) => name_this_thread("task (ready)"),
            }
        }
    }

    /// Prepares a fresh VM (on `tokio`, a runtime an earlier task used, or a new one) and waits
    /// as a ready thread; None when the thread should end (enough are ready, the agent is
    /// stopping, nothing could be prepared).
    fn wait_ready(self: Arc<Self>, tokio: Option<tokio::runtime::Runtime>) -> Option<Received> {
        // A VM made on a new thread before the agent's first task is as dense as it gets.
        let settled = tokio.is_none() && crate::memory::idle_pass() == 0 && !crate::memory::worked();
        // Enough are ready or on their way without this one (a thread whose VM was kept for a
        // pipeline, for one): no VM made only to be dropped.
        if self.waiting.lock().unwrap_or_else(PoisonError::into_inner).len() + self.coming.load(Ordering::SeqCst)
            > self.keep
        {
            self.coming.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let prepared = match tokio {
            Some(tokio) => Prepared::on(tokio, &self.options),
            None => Prepared::make(&self.options),
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                // Tasks then make their own, and say why if it fails again.
                tracing::warn!(%error, "cannot prepare a task thread ahead of its task");
                self.coming.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
        };
        let (sender, receiver) = sync_channel::<Work>(1);
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let coming = self.coming.fetch_sub(1, Ordering::SeqCst) - 1;
            if waiting.len() + coming >= self.keep {
                // Enough are ready or on their way without this one.
                return None;
            }
            waiting.push(sender);
        }
        // Only this thread's sender in `waiting` can wake it; the agent ending drops it (this
        // thread holds no strong reference while it waits).
        let threads = Arc::downgrade(&self);
        drop(self);
        let (work, prepared) = wait_renewing(&receiver, prepared, settled, &threads)?;
        Some((threads, work, prepared))
    }

    /// Waits with a VM holding pipeline `key` for that pipeline's next task, at most
    /// [`HOLD_FOR`].
    fn wait_with(self: Arc<Self>, tokio: tokio::runtime::Runtime, key: PipelineKey, vm: Runtime) -> Waited {
        let (id, receiver) = self.hold(key);
        self.arrived(key);
        self.coming.fetch_sub(1, Ordering::SeqCst);
        let threads = Arc::downgrade(&self);
        drop(self);
        let work = match receive(&receiver, Some(HOLD_FOR)) {
            Ok(work) => work,
            // Let go for a more recent VM (or the agent is stopping).
            Err(RecvTimeoutError::Disconnected) => return Waited::Gone,
            Err(RecvTimeoutError::Timeout) => {
                let Some(this) = threads.upgrade() else { return Waited::Gone };
                // Still listed: nobody will send; else the work is on its way.
                let unlisted = {
                    let mut held = this.held.lock().unwrap_or_else(PoisonError::into_inner);
                    let at = held.iter().position(|thread| thread.id == id);
                    at.map(|at| held.remove(at)).is_some()
                };
                if unlisted {
                    this.coming.fetch_add(1, Ordering::SeqCst);
                    return Waited::Unwanted(this, tokio);
                }
                drop(this);
                match receiver.recv() {
                    Ok(work) => work,
                    Err(_) => return Waited::Gone,
                }
            }
        };
        Waited::Work((threads, work, Prepared { tokio, vm, holds: Some(key) }))
    }

    /// What a task's thread that was not a ready one (none was) does after the task: serve
    /// further, from what the task left.
    pub fn adopt(self: &Arc<Self>, kept: Kept) {
        self.coming.fetch_add(1, Ordering::SeqCst);
        Arc::clone(self).serve(Some(kept));
    }

    /// Announces a VM of `key` on its way to being held (its task has ended).
    pub fn expect_return(&self, key: PipelineKey) {
        *self.returning.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default() += 1;
    }

    /// A VM of `key` that was on its way is held now, or dropped.
    fn arrived(&self, key: PipelineKey) {
        {
            let mut returning = self.returning.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(count) = returning.get_mut(&key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    returning.remove(&key);
                }
            }
        }
        self.returned.notify_waiters();
    }

    /// Waits (a little, at most) while a VM of `key` is on its way to being held and none is
    /// held yet.
    pub async fn await_returning(&self, key: PipelineKey) {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_RETURN;
        loop {
            let notified = self.returned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.held.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|thread| thread.key == key)
                || !self.returning.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&key)
            {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Unlists the thread that most recently kept a VM of `key`; its sender.
    fn take_held(&self, key: PipelineKey) -> Option<SyncSender<Work>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let at = held.iter().rposition(|thread| thread.key == key)?;
        Some(held.remove(at).sender)
    }

    /// Lists the calling thread as holding a VM of `key`; the threads holding one of an
    /// earlier run of that pipeline, and past [`MAX_HELD`] the one that has held one longest,
    /// let theirs go (unlisted, they hear so and end).
    fn hold(&self, key: PipelineKey) -> (u64, std::sync::mpsc::Receiver<Work>) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|thread| thread.key.family != key.family || thread.key == key);
        while held.len() >= MAX_HELD.max(1) {
            drop(held.remove(0));
        }
        let id = self.next_held.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = sync_channel::<Work>(1);
        held.push(Held { id, key, sender });
        (id, receiver)
    }
}

/// Names the calling thread (what `ps -L` and `/proc/…/comm` show; at most 15 bytes).
pub fn name_this_thread(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|byte| *byte != 0).take(15).collect();
    while std::str::from_utf8(&bytes).is_err() {
        bytes.pop();
    }
    if let Ok(name) = std::ffi::CString::new(bytes) {
        let _ = nix::sys::prctl::set_name(&name);
    }
}
