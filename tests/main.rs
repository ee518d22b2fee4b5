//! The integration suite: one test binary (one link) for CLI tests, the Lua spec harness,
//! the `lua/` definitions check, the examples and the README.

mod support;

mod adhoc_exec;
mod agent_lifecycle;
mod agent_ops;
mod agent_pools;
mod agent_registry;
mod agent_registry_tls;
mod agent_vms;
mod agents_command;
mod check_command;
mod cli_errors;
mod cli_interrupt;
mod cli_run;
mod completions;
mod data_props;
mod deploy;
mod differential;
mod differential_props;
mod dispatch;
mod examples;
mod go_compat;
mod incremental;
mod integrity;
mod json_events;
mod lua_meta;
mod lua_specs;
mod net;
mod netns;
mod new_command;
mod outline;
mod outline_attacks;
mod readme;
mod remote;
mod remote_errors;
mod remote_print;
mod repl;
mod roundtrip;
mod secrets;
mod sizes;
mod status_line;
mod test_command;
mod tls;
mod warm;
mod workspace_safety;
