//! The native Lua modules: thin façades over the pure core. They never import each other.

use mlua::{Lua, Result as LuaResult, Table};

pub mod exec;
pub mod log;
pub mod task_context;

/// Every native module, by the name scripts use (global and `require`).
pub const MODULES: &[(&str, fn(&Lua) -> LuaResult<Table>)] = &[("log", log::module), ("exec", exec::module)];
