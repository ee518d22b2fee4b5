//! `os.exit` ends the run, never more than the run.
//!
//! Lua's own `os.exit` ends the process where it stands. On an agent that process serves every
//! master's tasks: a task calling it killed them all, and the agent with them. There it now
//! ends only its task, failed with a message that names it — a stop that the task's own
//! `pcall` passes on, as a timeout's. Here (the master, the REPL) it still ends the process
//! with the code asked for, but not in the middle of applying a remote task's changes to a
//! workspace, and not leaving the processes of tasks still running behind.

use mlua::{Lua, Result as LuaResult, Table, Value};

/// Marks a VM that runs tasks on an agent.
#[derive(Debug, Clone, Copy)]
pub struct OnAgent;

/// A task on an agent called `os.exit`: why the task stops (see [`super::preempt::stopped`]).
#[derive(Debug, Clone)]
pub struct ExitRequested(pub String);

pub fn register(lua: &Lua, core: &Table) -> LuaResult<()> {
    core.set("exit", lua.create_function(|lua, (code, _close): (Value, Value)| exit(lua, &code))?)
}

/// The exit code `os.exit(code)` asks for: true or nothing is success, false failure.
fn code_of(code: &Value) -> LuaResult<i32> {
    match code {
        Value::Nil | Value::Boolean(true) => Ok(0),
        Value::Boolean(false) => Ok(1),
        // (As Lua's: the C exit status of what is given.)
        Value::Integer(code) => Ok(*code as i32),
        Value::Number(code) if code.fract() == 0.0 && code.abs() < 9.2e18 => Ok(*code as i64 as i32),
        Value::Number(_) => {
            Err(mlua::Error::runtime("bad argument #1 to 'exit' (number has no integer representation)"))
        }
        other => Err(mlua::Error::runtime(format!(
            "bad argument #1 to 'exit' (number or boolean expected, got {})",
            other.type_name()
        ))),
    }
}

fn exit(lua: &Lua, code: &Value) -> LuaResult<()> {
    let code = code_of(code)?;
    if lua.app_data_ref::<OnAgent>().is_some() {
        let message = format!("os.exit({code}): a task on an agent ends there, failed (the agent goes on)");
        lua.set_app_data(ExitRequested(message.clone()));
        return Err(mlua::Error::runtime(message));
    }
    crate::status_line::disable();
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // A remote task's changes being applied are let finish (or be taken back): the process
    // does not end with a workspace half-applied.
    let mut told = false;
    while !crate::workspace::applying().is_empty() {
        if !told {
            let roots: Vec<String> =
                crate::workspace::applying().iter().map(|root| root.display().to_string()).collect();
            eprintln!("os.exit({code}): waiting for the changes being applied to {} first", roots.join(", "));
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    crate::reaper::kill_live();
    std::process::exit(code)
}
