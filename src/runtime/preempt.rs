//! Lua code that never yields still obeys deadlines and cancellation. The scheduler's timers
//! and signal handlers only run when a coroutine yields; a busy loop in a task function never
//! does. An instruction-count hook (every thousand instructions, see [`EVERY`]; nothing when
//! idle) checks the running coroutine's deadline and the VM's abort flag, and raises an
//! error right there.
//!
//! The hook is per coroutine, and only while the pipeline's code runs: the engine sets it
//! around every call into the pipeline — reading it (and what it imports), a REPL line, a task's
//! function, hooks and conditions, a dispatch policy, `clean_workdir_after_run` — through
//! `sloth.preempt` (`core.preempt`); coroutines the pipeline creates inherit it. The engine's own
//! code between those calls (reading the tasks, the scheduler, a task's bookkeeping, sync) runs
//! without it: with a count hook Lua calls into its debug machinery on every instruction,
//! whatever the count; the engine never loops without end.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mlua::{HookTriggers, Lua, Result as LuaResult, VmState};

/// How often the hook looks, in Lua instructions: a few microseconds of plain Lua apart (the
/// checks cost 2-3% of a loop of arithmetic and calls), but fewer than a second apart for a
/// loop of heavy instructions (each making or scanning a string of a megabyte: every million,
/// as before, let such a loop run a minute past its timeout and a Ctrl-C). One native call that
/// never returns (a pattern that backtracks without end on a long string) is still stopped only
/// by a second Ctrl-C, or on an agent by its own stop.
const EVERY: u32 = 1_000;

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

    /// The error to raise if the deadline of `thread` has passed (nothing copied otherwise: the
    /// hook asks every thousand instructions).
    pub fn passed(&self, thread: &mlua::Thread) -> Option<String> {
        let deadlines = self.0.borrow();
        let (at, message) = deadlines.get(&(thread.to_pointer() as usize))?;
        (Instant::now() >= *at).then(|| message.clone())
    }

    pub fn clear(&self, thread: &mlua::Thread) {
        self.0.borrow_mut().remove(&(thread.to_pointer() as usize));
    }
}

/// Set from another thread (the agent's call went away): every coroutine of the VM stops at
/// its next check.
#[derive(Debug, Clone)]
pub struct Abort(pub Arc<AtomicBool>);

/// The coroutines (by address) that have the hook, as far as [`set`] knows. An
/// address left behind by a coroutine that ended hooked can only make a later one at that
/// address keep its hook longer than needed, never go without it: [`set`] always hooks.
#[derive(Debug, Default, Clone)]
struct Hooked(Rc<RefCell<HashSet<usize>>>);

/// Prepares `lua` for preemption (the deadlines the hook checks).
pub fn install(lua: &Lua, deadlines: &Deadlines) -> LuaResult<()> {
    lua.set_app_data(deadlines.clone());
    lua.set_app_data(Hooked::default());
    Ok(())
}

/// Forgets `thread` (it ended).
pub fn forget(lua: &Lua, thread: &mlua::Thread) {
    if let Some(hooked) = lua.app_data_ref::<Hooked>() {
        hooked.0.borrow_mut().remove(&(thread.to_pointer() as usize));
    }
}

/// Turns the hook on or off for the running coroutine; whether it was on.
pub fn set(lua: &Lua, on: bool) -> LuaResult<bool> {
    let key = lua.current_thread().to_pointer() as usize;
    let was_on = lua.app_data_ref::<Hooked>().is_some_and(|hooked| hooked.0.borrow().contains(&key));
    if on {
        lua.set_hook(triggers(), check)?;
    } else {
        lua.remove_hook();
    }
    if let Some(hooked) = lua.app_data_ref::<Hooked>() {
        let mut hooked = hooked.0.borrow_mut();
        if on {
            hooked.insert(key);
        } else {
            hooked.remove(&key);
        }
    }
    Ok(was_on)
}

/// Gives `thread` — a coroutine the pipeline's code made, resumed by the running coroutine —
/// the hook if the running coroutine has it: a coroutine made in Lua does not inherit it (the
/// hook is the host's, kept per coroutine), so Lua code in one that never yields would run past
/// its task's deadline.
pub fn pass_on(lua: &Lua, thread: &mlua::Thread) -> LuaResult<()> {
    let key = lua.current_thread().to_pointer() as usize;
    let hooked = lua.app_data_ref::<Hooked>().is_some_and(|hooked| hooked.0.borrow().contains(&key));
    if hooked {
        thread.set_hook(triggers(), check)?;
    }
    Ok(())
}

fn triggers() -> HookTriggers {
    HookTriggers::new().every_nth_instruction(EVERY)
}

/// The hook: stops the running coroutine when [`stopped`] says so.
fn check(lua: &Lua, _: &mlua::debug::Debug) -> LuaResult<VmState> {
    match stopped(lua) {
        Some(message) => Err(mlua::Error::runtime(message)),
        None => Ok(VmState::Continue),
    }
}

/// [`stopped`], for the pipeline's code only: None while the running coroutine is without the
/// hook (the engine's own code).
pub fn stopped_while_hooked(lua: &Lua) -> Option<String> {
    let key = lua.current_thread().to_pointer() as usize;
    let hooked = lua.app_data_ref::<Hooked>().is_some_and(|hooked| hooked.0.borrow().contains(&key));
    if hooked { stopped(lua) } else { None }
}

/// An error saying why, if the pipeline's running code must stop now (see
/// [`stopped_while_hooked`]): what a call that would start something checks first — the hook
/// looks only every thousand instructions, and a call that returned late (a blocked read) may
/// be fewer than that from the next one.
pub fn refused_if_stopped(lua: &Lua) -> LuaResult<()> {
    match stopped_while_hooked(lua) {
        Some(why) => Err(mlua::Error::runtime(why)),
        None => Ok(()),
    }
}

/// Why the running coroutine must stop now, if it must: the VM's abort flag, a task on an
/// agent that called `os.exit`, then its deadline (also asked by what waits without yielding: a blocking command).
pub fn stopped(lua: &Lua) -> Option<String> {
    if lua.app_data_ref::<Abort>().is_some_and(|abort| abort.0.load(Ordering::Relaxed)) {
        return Some("cancelled".to_owned());
    }
    if let Some(exit) = lua.app_data_ref::<super::exit::ExitRequested>() {
        return Some(exit.0.clone());
    }
    lua.app_data_ref::<Deadlines>().and_then(|deadlines| deadlines.passed(&lua.current_thread()))
}

/// Whether the Lua code that called the running native function is the engine's: its caller,
/// or through native functions (`pcall`), the first that is neither native nor the prelude
/// (whose `pcall`, `xpcall` and `coroutine.resume` pass calls on) — none, a call from the host.
pub fn called_by_engine(lua: &Lua) -> bool {
    // (Level 0 is the native function itself.) Called through a native function — `pcall` —
    // the prelude's wrappers of it pass the call on: what called them decides.
    let mut passed_on = false;
    for level in 1..64 {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            (source.what, source.source.map(std::borrow::Cow::into_owned))
        });
        let Some((what, source)) = frame else { return true };
        let Some(source) = source.filter(|_| what != "C") else {
            passed_on = true;
            continue;
        };
        let engine = super::stdlib::is_engine_source(&source);
        if engine && passed_on && source.ends_with("/sloth/prelude.lua") {
            continue;
        }
        return engine;
    }
    false
}

/// Refuses the engine's own means of stopping the pipeline's code (`sloth.core.name`: its
/// hook, its deadlines, its cancellation) to a caller that is the pipeline's.
pub fn engine_only(lua: &Lua, name: &str) -> LuaResult<()> {
    if called_by_engine(lua) {
        return Ok(());
    }
    Err(mlua::Error::runtime(format!(
        "sloth.core.{name} is the runner's own (it keeps tasks' timeouts and cancellation), not a pipeline's"
    )))
}
