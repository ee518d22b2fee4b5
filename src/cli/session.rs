//! Runs one stdlib entry point in a fresh VM on a single-threaded tokio runtime, with a
//! signal (SIGINT, SIGTERM, SIGHUP) cancelling everything.

use std::process::ExitCode;

use std::sync::Arc;

use super::signals::Signals;
use crate::runtime::preempt::Abort;
use crate::runtime::{Runtime, RuntimeOptions, error, values};

/// Calls `sloth.cli.<entry>(options)` and turns its returned number into the process exit code.
pub fn run_entry(entry: &str, options: &serde_json::Value, runtime_options: &RuntimeOptions) -> ExitCode {
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let signals = match Signals::watch() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("error: cannot watch for signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    // This thread runs the VM: a first signal interrupts what it is blocked in.
    let _in_vm = signals.vm.enter();
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&tokio, async {
        let runtime = match Runtime::new(runtime_options) {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the Lua runtime: {}", error::describe(&error));
                return 1;
            }
        };
        runtime.lua().set_app_data(Abort(Arc::clone(&signals.abort)));
        let options = match values::to_lua(runtime.lua(), options) {
            Ok(options) => options,
            Err(error) => {
                eprintln!("error: {error}");
                return 1;
            }
        };
        tokio::select! {
            result = runtime.call::<i64>("sloth.cli", entry, options) => match (signals.code(), result) {
                // Lua code stopped by the signal (its hook) ends with an error: the signal says why.
                (Some(code), _) => {
                    say("interrupted: cancelling running tasks");
                    crate::json_events::interrupted(code, super::signals::name_of(code));
                    code
                }
                (None, Ok(code)) => u8::try_from(code).unwrap_or(1),
                (None, Err(error)) => {
                    say(&format!("error: {}", error::describe(&error)));
                    1
                }
            },
            code = signals.first() => {
                say("interrupted: cancelling running tasks");
                crate::json_events::interrupted(code, super::signals::name_of(code));
                code
            }
        }
        // Dropping the runtime here cancels every job; their process groups are killed.
    });
    // Dropping the LocalSet drops the cancelled jobs before the process exits.
    drop(local);
    // What the run held back of its workspaces' indexes goes to disk for the next run.
    crate::workspace::index::flush();
    ExitCode::from(code)
}

/// A line of the session's own, after the status line (if any) is gone for good.
fn say(line: &str) {
    crate::status_line::disable();
    eprintln!("{line}");
}
