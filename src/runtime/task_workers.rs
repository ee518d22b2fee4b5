//! Task threads made ready before tasks arrive: a thread with its async runtime and a Lua VM
//! that has already loaded the agent-side handler, waiting for one task. A task takes a ready
//! one — so its latency holds no thread, runtime or VM creation — and another is made behind
//! it. A thread serves task after task, each in a VM of its own, made after the previous one
//! was dropped: a VM never carries one task's state into another's. The thread and its
//! runtime (with the runtime's blocking threads) are what is reused: making them cost every
//! task three threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Runtime, RuntimeOptions};

/// What a ready thread has made: its runtime (for the task's async work) and its VM.
pub struct Prepared {
    pub tokio: tokio::runtime::Runtime,
    pub vm: Runtime,
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

    /// A VM with the agent-side handler loaded, on `tokio` (a runtime an earlier task used).
    pub fn on(tokio: tokio::runtime::Runtime, options: &RuntimeOptions) -> Result<Self, String> {
        let vm = Runtime::new(options).map_err(|e| super::error::describe(&e))?;
        vm.lua()
            .load("require('sloth.agent_side')")
            .set_name("=(sloth-runner agent)")
            .exec()
            .map_err(|e| super::error::describe(&e))?;
        Ok(Self { tokio, vm })
    }
}

/// The work a task thread is given: it runs on that thread, with what it prepared (None when
/// it could not: the work then says why, or prepares itself). It gives the runtime back when
/// the thread may serve another task (it ran to its end, and changed nothing about the thread
/// that a later task must not inherit).
pub type Work = Box<dyn FnOnce(Option<Prepared>) -> Option<tokio::runtime::Runtime> + Send>;

/// The ready threads of one agent.
pub struct ReadyThreads {
    waiting: Mutex<Vec<SyncSender<Work>>>,
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
        let threads = Arc::new(Self { waiting: Mutex::new(Vec::new()), coming: AtomicUsize::new(0), keep, options });
        threads.top_up();
        threads
    }

    /// Hands `work` to a ready thread; gives it back when none is ready.
    pub fn run(self: &Arc<Self>, work: Work) -> Result<(), Work> {
        let mut work = work;
        loop {
            let Some(thread) = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).pop() else {
                self.top_up();
                return Err(work);
            };
            // Counted as coming until it is ready again (or ends).
            self.coming.fetch_add(1, Ordering::SeqCst);
            match thread.send(work) {
                Ok(()) => {
                    self.top_up();
                    return Ok(());
                }
                // That thread is gone: try the next one.
                Err(returned) => {
                    self.coming.fetch_sub(1, Ordering::SeqCst);
                    work = returned.0;
                }
            }
        }
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
            let spawned = std::thread::Builder::new().name("task (ready)".to_owned()).spawn(move || threads.serve());
            if let Err(error) = spawned {
                self.coming.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(%error, "cannot start a task thread ahead of its task");
                return;
            }
        }
    }

    /// The body of a ready thread (counted in `coming` when it starts): prepare, wait for one
    /// piece of work, run it; again while the work gives the runtime back and fewer than
    /// `keep` threads are ready.
    fn serve(self: Arc<Self>) {
        let mut this = self;
        let mut runtime = None;
        loop {
            let prepared = match runtime.take() {
                Some(tokio) => Prepared::on(tokio, &this.options),
                None => Prepared::make(&this.options),
            };
            let prepared = match prepared {
                Ok(prepared) => prepared,
                Err(error) => {
                    // Tasks then make their own, and say why if it fails again.
                    tracing::warn!(%error, "cannot prepare a task thread ahead of its task");
                    this.coming.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            };
            let (sender, receiver) = sync_channel::<Work>(1);
            {
                let mut waiting = this.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                let coming = this.coming.fetch_sub(1, Ordering::SeqCst) - 1;
                if waiting.len() + coming >= this.keep {
                    // Enough are ready or on their way without this one.
                    return;
                }
                waiting.push(sender);
            }
            // Only this thread's sender in `waiting` can wake it; the agent ending drops it
            // (this thread holds no strong reference while it waits).
            let threads = Arc::downgrade(&this);
            drop(this);
            let Ok(work) = receiver.recv() else { return };
            runtime = work(Some(prepared));
            this = match threads.upgrade() {
                Some(threads) => threads,
                None => return,
            };
            if runtime.is_none() {
                this.coming.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            name_this_thread("task (ready)");
        }
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
