//! Lua code that never yields still obeys deadlines and cancellation. The scheduler's timers
//! and signal handlers only run when a coroutine yields; a busy loop in a task function never
//! does. An instruction-count hook (every million instructions: milliseconds apart, nothing
//! when idle) checks the running coroutine's deadline and the VM's abort flag, and raises an
//! error right there.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mlua::{HookTriggers, Lua, Result as LuaResult, VmState};

/// How often the hook looks, in Lua instructions.
const EVERY: u32 = 1_000_000;

/// Deadlines of coroutines (by the thread's address): when, and the error to raise then.
#[derive(Debug, Default, Clone)]
pub struct Deadlines(Rc<RefCell<HashMap<usize, (Instant, String)>>>);

impl Deadlines {
    pub fn set(&self, thread: &mlua::Thread, at: Instant, message: String) {
        self.0.borrow_mut().insert(thread.to_pointer() as usize, (at, message));
    }

    /// The deadline of `thread`, if it has one.
    pub fn of(&self, thread: &mlua::Thread) -> Option<(Instant, String)> {
        self.0.borrow().get(&(thread.to_pointer() as usize)).cloned()
    }

    pub fn clear(&self, thread: &mlua::Thread) {
        self.0.borrow_mut().remove(&(thread.to_pointer() as usize));
    }
}

/// Set from another thread (the agent's call went away): every coroutine of the VM stops at
/// its next check.
#[derive(Debug, Clone)]
pub struct Abort(pub Arc<AtomicBool>);

/// Installs the hook on `lua`; coroutines created afterwards carry it.
pub fn install(lua: &Lua, deadlines: &Deadlines) -> LuaResult<()> {
    lua.set_app_data(deadlines.clone());
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(EVERY), |lua, _| {
        if lua.app_data_ref::<Abort>().is_some_and(|abort| abort.0.load(Ordering::Relaxed)) {
            return Err(mlua::Error::runtime("cancelled"));
        }
        let expired = lua
            .app_data_ref::<Deadlines>()
            .and_then(|deadlines| deadlines.of(&lua.current_thread()))
            .filter(|(at, _)| Instant::now() >= *at);
        match expired {
            Some((_, message)) => Err(mlua::Error::runtime(message)),
            None => Ok(VmState::Continue),
        }
    })
}
