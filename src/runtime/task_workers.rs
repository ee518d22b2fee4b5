//! Task threads made ready before tasks arrive: a thread with its async runtime and a Lua VM
//! that has already loaded the agent-side handler, waiting for one task. A task takes a ready
//! one — so its latency holds no thread, runtime or VM creation — and another is made behind
//! it. Each serves one task and ends with it: a VM never carries one task's state into
//! another's, exactly as when every task made its own.

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
/// it could not: the work then says why, or prepares itself).
pub type Work = Box<dyn FnOnce(Option<Prepared>) + Send>;

/// The ready threads of one agent.
pub struct ReadyThreads {
    waiting: Mutex<Vec<SyncSender<Work>>>,
    /// Threads being made ready (counted, so a burst of tasks does not make a burst of them).
    making: AtomicUsize,
    /// How many are kept ready.
    keep: usize,
    options: RuntimeOptions,
}

impl ReadyThreads {
    /// Keeps `keep` threads ready, their VMs built with `options` (no `values`: each task
    /// brings its own).
    pub fn new(options: RuntimeOptions, keep: usize) -> Arc<Self> {
        let threads = Arc::new(Self { waiting: Mutex::new(Vec::new()), making: AtomicUsize::new(0), keep, options });
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
            match thread.send(work) {
                Ok(()) => {
                    self.top_up();
                    return Ok(());
                }
                // That thread is gone (it failed to get ready): try the next one.
                Err(returned) => work = returned.0,
            }
        }
    }

    /// Starts making threads ready until `keep` are ready or on their way.
    fn top_up(self: &Arc<Self>) {
        loop {
            let ready = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).len();
            let making = self.making.load(Ordering::SeqCst);
            if ready + making >= self.keep {
                return;
            }
            if self.making.compare_exchange(making, making + 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            let threads = Arc::clone(self);
            let spawned =
                std::thread::Builder::new().name("task (ready)".to_owned()).spawn(move || threads.serve_one());
            if let Err(error) = spawned {
                self.making.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(%error, "cannot start a task thread ahead of its task");
                return;
            }
        }
    }

    /// The body of a ready thread: prepare, wait for one piece of work, run it.
    fn serve_one(self: Arc<Self>) {
        let prepared = match Prepared::make(&self.options) {
            Ok(prepared) => prepared,
            Err(error) => {
                // Tasks then make their own, and say why if it fails again.
                tracing::warn!(%error, "cannot prepare a task thread ahead of its task");
                self.making.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        };
        let (sender, receiver) = sync_channel::<Work>(1);
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).push(sender);
        self.making.fetch_sub(1, Ordering::SeqCst);
        // Only this thread's sender in `waiting` can wake it; the agent ending drops it.
        drop(self);
        if let Ok(work) = receiver.recv() {
            work(Some(prepared));
        }
    }
}
