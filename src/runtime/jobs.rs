//! Concurrent Lua jobs: a Lua function started as its own coroutine, driven by tokio.
//!
//! The stdlib scheduler starts each task as a job and waits for one or any of them. Jobs run on
//! the current `LocalSet`; a job that awaits an async native function (a child process, a
//! timer) yields, and the others go on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Result as LuaResult, Thread};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How a job ended: its return values, or the error message that ended it.
pub type Outcome = Result<MultiValue, String>;

/// Every job of one VM.
#[derive(Default)]
pub struct Jobs {
    next_id: Cell<u64>,
    running: RefCell<HashMap<u64, (JoinHandle<()>, Thread)>>,
    finished: RefCell<HashMap<u64, Outcome>>,
    changed: Notify,
    /// Deadlines of jobs (`set_deadline`), checked even while a job never yields.
    pub deadlines: super::preempt::Deadlines,
    /// The deadline each job had from the job that started it: one it is given later never
    /// goes past it (a `parallel` entry's own timeout inside a task's).
    inherited: RefCell<HashMap<u64, (std::time::Instant, String)>>,
}

impl Jobs {
    /// Starts `function(args...)` as a job on its own coroutine; returns the coroutine too, so
    /// the caller can attach a task context to it before it first runs.
    pub fn spawn(self: &Rc<Self>, lua: &Lua, function: Function, args: MultiValue) -> LuaResult<(u64, mlua::Thread)> {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let thread = lua.create_thread(function)?;
        // A job started by a job with a deadline has that deadline too — and no other: a
        // deadline left under this address by a coroutine that never ended (a generator a task
        // stopped reading) is not this job's.
        match self.deadlines.of(&lua.current_thread()) {
            Some((at, message)) => {
                self.deadlines.set(&thread, at, message.clone());
                self.inherited.borrow_mut().insert(id, (at, message));
            }
            None => self.deadlines.clear(&thread),
        }
        let future = thread.clone().into_async::<MultiValue>(args)?;
        let jobs = Rc::clone(self);
        let done = thread.clone();
        let done_lua = lua.weak();
        let handle = tokio::task::spawn_local(async move {
            let outcome = future.await.map_err(|error| super::error::describe(&error));
            jobs.deadlines.clear(&done);
            if let Some(lua) = done_lua.try_upgrade() {
                super::preempt::forget(&lua, &done);
            }
            jobs.running.borrow_mut().remove(&id);
            jobs.inherited.borrow_mut().remove(&id);
            jobs.finished.borrow_mut().insert(id, outcome);
            jobs.changed.notify_waiters();
        });
        self.running.borrow_mut().insert(id, (handle, thread.clone()));
        Ok((id, thread))
    }

    /// Waits until one of `ids` has finished and takes its outcome. `None` if none of them is
    /// known (never started, or already taken).
    pub async fn wait_any(&self, ids: &[u64]) -> Option<(u64, Outcome)> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut finished = self.finished.borrow_mut();
                if let Some(id) = ids.iter().find(|id| finished.contains_key(id)) {
                    return finished.remove(id).map(|outcome| (*id, outcome));
                }
            }
            if !ids.iter().any(|id| self.running.borrow().contains_key(id)) {
                return None;
            }
            changed.await;
        }
    }

    /// Gives job `id` (and the jobs it starts) a deadline: past it, the job's Lua code fails
    /// with `message` at its next check, even if it never yields. Never later than the one it
    /// had from the job that started it, which then stays.
    pub fn set_deadline(&self, id: u64, at: std::time::Instant, message: String) -> bool {
        let running = self.running.borrow();
        let Some((_, thread)) = running.get(&id) else { return false };
        match self.inherited.borrow().get(&id) {
            Some((first, inherited)) if *first <= at => self.deadlines.set(thread, *first, inherited.clone()),
            _ => self.deadlines.set(thread, at, message),
        }
        true
    }

    /// Stops a running job now: whatever it awaits (a child process, a remote call) is dropped,
    /// which kills the processes it started.
    pub fn cancel(&self, lua: &Lua, id: u64) -> bool {
        self.finished.borrow_mut().remove(&id);
        self.inherited.borrow_mut().remove(&id);
        let Some(job) = self.running.borrow_mut().remove(&id) else { return false };
        self.deadlines.clear(&job.1);
        stop(lua, [job]);
        true
    }

    /// Whether no job is running.
    pub fn is_idle(&self) -> bool {
        self.running.borrow().is_empty()
    }

    /// Stops every running job (the run is over or was interrupted).
    pub fn cancel_all(&self, lua: &Lua) {
        let jobs: Vec<_> = self.running.borrow_mut().drain().map(|(_, job)| job).collect();
        self.inherited.borrow_mut().clear();
        stop(lua, jobs);
    }
}

/// Aborts the jobs' tokio tasks and closes their coroutines.
///
/// A suspended coroutine keeps the future it awaits on its own stack, so aborting the task is not
/// enough: the coroutine is closed (its stack cleared) and a full collection finalizes those
/// futures, whose drop kills their process groups, before this returns.
fn stop(lua: &Lua, jobs: impl IntoIterator<Item = (JoinHandle<()>, Thread)>) {
    let mut stopped = false;
    for (handle, thread) in jobs {
        handle.abort();
        super::preempt::forget(lua, &thread);
        if let Ok(noop) = lua.create_function(|_, ()| Ok(())) {
            // A coroutine that is running right now (cancelling itself) cannot be reset; it ends
            // when its task is dropped.
            let _ = thread.reset(noop);
        }
        stopped = true;
    }
    if stopped {
        let _ = lua.gc_collect();
        let _ = lua.gc_collect();
    }
}
