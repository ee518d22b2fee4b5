//! The Lua host: builds a VM with the native modules, the stdlib and the engine's primitives.

use std::path::PathBuf;
use std::rc::Rc;

use mlua::{FromLuaMulti, IntoLuaMulti, Lua, LuaOptions, Result as LuaResult, StdLib, Table};

pub mod agent_host;
pub mod core;
pub mod error;
pub mod exit;
pub mod interrupt;
pub mod jobs;
mod lua_files;
mod os_commands;
pub mod preempt;
pub mod stdlib;
pub mod task_workers;
pub mod values;

pub use stdlib::StdlibSource;

/// Environment variable naming a stdlib directory to load instead of the bundled one.
pub const STDLIB_DIR_ENV: &str = "SLOTH_STDLIB_DIR";

/// How to build a VM.
#[derive(Debug, Default, Clone)]
pub struct RuntimeOptions {
    pub stdlib: StdlibSource,
    /// The `values` global (from `-v values.yaml`); an empty table when none.
    pub values: Option<serde_json::Value>,
    /// Most bytes the VM may hold (`--lua-memory-limit`); unlimited when None.
    pub memory_limit: Option<usize>,
}

impl RuntimeOptions {
    /// Options from the process environment (`SLOTH_STDLIB_DIR`).
    pub fn from_env() -> Self {
        let stdlib = match std::env::var_os(STDLIB_DIR_ENV) {
            Some(dir) if !dir.is_empty() => StdlibSource::Directory(PathBuf::from(dir)),
            _ => StdlibSource::Bundled,
        };
        Self { stdlib, values: None, memory_limit: None }
    }
}

/// One Lua VM with everything registered. Jobs it started stop when it is dropped.
pub struct Runtime {
    lua: Lua,
    jobs: Rc<jobs::Jobs>,
}

impl Runtime {
    pub fn new(options: &RuntimeOptions) -> LuaResult<Self> {
        let lua = new_lua();
        if let Some(limit) = options.memory_limit {
            lua.set_memory_limit(limit)?;
            lua.set_app_data(core::MemoryLimit(limit));
        }
        let globals = lua.globals();
        for (name, constructor) in crate::modules::MODULES {
            let module = constructor(&lua)?;
            lua.register_module(name, &module)?;
            globals.set(*name, module)?;
        }

        let jobs = Rc::new(jobs::Jobs::default());
        preempt::install(&lua, &jobs.deadlines)?;
        let core = core::module(&lua, &jobs)?;
        os_commands::register(&lua, &core)?;
        exit::register(&lua, &core)?;
        lua.register_module("sloth.core", &core)?;
        stdlib::preload(&lua, &options.stdlib)?;

        let values = match &options.values {
            Some(values) => values::to_lua(&lua, values)?,
            None => mlua::Value::Table(lua.create_table()?),
        };
        globals.set("values", values)?;
        seed_random(&lua)?;
        lua.load("require('sloth.prelude')").set_name("=(sloth-runner)").exec()?;
        Ok(Self { lua, jobs })
    }

    /// Stops every running job now (an interrupted REPL line): their processes are killed.
    pub fn cancel_jobs(&self) {
        self.jobs.cancel_all(&self.lua);
    }

    /// Whether no job of this VM is running (whatever a task started has ended).
    pub fn is_idle(&self) -> bool {
        self.jobs.is_idle()
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Calls `require(module)[function](args...)`, driving its async natives. Must run inside
    /// a tokio `LocalSet` (jobs are local tasks).
    pub async fn call<R: FromLuaMulti>(&self, module: &str, function: &str, args: impl IntoLuaMulti) -> LuaResult<R> {
        let require: mlua::Function = self.lua.globals().get("require")?;
        let table: Table = require.call(module)?;
        let function: mlua::Function = table.get(function)?;
        function.call_async(args).await
    }
}

/// A VM with the complete standard library, `debug` included.
///
/// mlua calls `debug` unsafe because Lua code can use it to break the host's invariants. A
/// pipeline is the user's own program — it runs arbitrary shell commands by design — so that is
/// no boundary worth defending, while `debug.traceback` and `debug.getinfo` (tracebacks, `import`
/// relative to the importing file) are standard Lua that pipelines and the stdlib rely on.
#[allow(unsafe_code)]
fn new_lua() -> Lua {
    // SAFETY: only standard Lua libraries are loaded; the VM is used from this thread only.
    unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::default()) }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.jobs.cancel_all(&self.lua);
        // Agents started for this run (`--spawn-agents`) stop with it, and its temporary
        // archives go, whatever Lua still references.
        drop(self.lua.remove_app_data::<crate::modules::agent::SpawnedAgents>());
        drop(self.lua.remove_app_data::<crate::modules::archive_data::Scratch>());
    }
}

/// Seeds the VM's `math.random` from the system's randomness. Lua seeds it from the time in
/// whole seconds and addresses that are the same in every process here (the allocator's arenas
/// sit at fixed addresses): two runs started in the same second drew the same numbers — one
/// run id for both (their artifacts in one directory), the same `dispatch = "random"` picks.
/// A pipeline's own `math.randomseed(n)` still makes its draws repeatable.
fn seed_random(lua: &Lua) -> LuaResult<()> {
    let math: mlua::Table = lua.globals().get("math")?;
    // Lua integers are i64: the bits as they are.
    let seeds = (core::random_bits() as i64, core::random_bits() as i64);
    math.get::<mlua::Function>("randomseed")?.call::<()>(seeds)
}
