//! The native Lua modules: thin façades over the pure core. They never import each other.

use mlua::{Lua, Result as LuaResult, Table};

pub mod exec;
pub mod log;
pub mod task_context;

/// Builds a module's table in a VM.
pub type Constructor = fn(&Lua) -> LuaResult<Table>;

/// Every native module, by the name scripts use (global and `require`).
pub const MODULES: &[(&str, Constructor)] = &[("log", log::module), ("exec", exec::module)];
