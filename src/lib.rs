//! sloth-runner: a minimal Rust host for a task engine written in Lua.
//!
//! Layering, low to high: `duration`, `error_kind`, `physical_path`, `process`, `locked_dir`, `task_view`,
//! `files`, `http_client`, `pipeline_template`, `discovery` → `modules` → `runtime` → `cli`.

pub mod cli;
pub mod discovery;
pub mod duration;
pub mod error_kind;
pub mod events;
pub mod files;
pub mod hex;
pub mod http_client;
pub mod json_events;
pub mod locked_dir;
pub mod memory;
pub mod modules;
pub mod physical_path;
pub mod pipeline_template;
pub mod process;
pub mod reaper;
pub mod rpc;
pub mod runtime;
pub mod status_line;
pub mod task_view;
pub mod workspace;
