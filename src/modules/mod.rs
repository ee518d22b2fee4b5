//! The native Lua modules: thin façades over the pure core. They never import each other.

use mlua::{Lua, Result as LuaResult, Table};

pub mod agent;
pub mod archive_data;
pub mod console_events;
pub mod data;
pub mod error_value;
pub mod exec;
pub mod fs;
pub mod log;
pub mod lua_args;
pub mod lua_json;
pub mod net;
pub mod signatures;
pub mod task_context;
pub mod workspace;

/// Builds a module's table in a VM.
pub type Constructor = fn(&Lua) -> LuaResult<Table>;

/// Every native module, by the name scripts use (global and `require`).
pub const MODULES: &[(&str, Constructor)] = &[
    ("log", log::module),
    ("exec", exec::module),
    ("agent", agent::module),
    ("workspace", workspace::module),
    ("data", data::module),
    ("fs", fs::module),
    ("net", net::module),
];
