//! sloth-runner: a minimal Rust host for a task engine written in Lua.
//!
//! Layering, low to high: `duration`, `process` → `modules` → `runtime` → `cli`.

pub mod cli;
pub mod duration;
pub mod events;
pub mod modules;
pub mod process;
pub mod rpc;
pub mod runtime;
pub mod workspace;
