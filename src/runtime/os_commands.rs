//! `core.execute(command[, input[, output_path[, errors_path]]]) -> true | nil, "exit" | "signal", code`: what
//! the stdlib's `os.execute` and `io.popen` run a command with. Lua's own call `system()` and
//! `popen()`: the command would share this process's group (out of reach of a timeout, of
//! Ctrl-C, of the agent's cleanup) and block the VM, every other task with it. Here it runs as
//! `exec.run` runs one — a process group of its own, killed with the task — and the calling
//! coroutine waits for it without blocking the others; its output goes where Lua's would.

use std::path::PathBuf;

use mlua::{Lua, LuaString, MultiValue, Result as LuaResult, Table, Value};

use crate::modules::task_context;
use crate::process::{self, Exit, Program, Spec};

pub fn register(lua: &Lua, core: &Table) -> LuaResult<()> {
    // `core.scratch_file([dir]) -> path`: a new empty file in the run's scratch directory
    // (removed with it when the run ends, whatever happens to the task that asked for it), or
    // in `dir`, made if it is not there yet (on an agent, the task's own directory: removed
    // with the task however it ends, and with a dead agent's work directory).
    core.set(
        "scratch_file",
        lua.create_function(|lua, dir: Option<LuaString>| {
            let dir = match dir {
                Some(dir) => {
                    use std::os::unix::ffi::OsStrExt;
                    let dir = PathBuf::from(std::ffi::OsStr::from_bytes(&dir.as_bytes()));
                    crate::rpc::task_dir::TaskDir::make_at(&dir)
                        .map_err(|error| mlua::Error::runtime(format!("{}: {error}", dir.display())))?;
                    dir
                }
                None => crate::modules::archive_data::scratch_dir(lua)?,
            };
            let (_, path) = tempfile::Builder::new()
                .prefix("command-")
                .tempfile_in(&dir)
                .and_then(|file| file.keep().map_err(|error| error.error))
                .map_err(|error| mlua::Error::runtime(format!("{}: {error}", dir.display())))?;
            lua.create_string(path.as_os_str().as_encoded_bytes())
        })?,
    )?;
    core.set(
        "execute",
        lua.create_async_function(
            |lua,
             (command, input, output, errors): (
                LuaString,
                Option<LuaString>,
                Option<LuaString>,
                Option<LuaString>,
            )| {
                // The calling task's workdir and environment, read while its coroutine runs.
                let context = task_context::current(&lua);
                async move {
                    let output = output.map(|path| create(&path)).transpose()?;
                    let errors = errors.map(|path| create(&path)).transpose()?;
                    let spec = Spec {
                        program: Program::Shell(command.to_str()?.to_string()),
                        cwd: context.base_dir(),
                        env: context.env.clone(),
                        stdin: input.map(|input| input.as_bytes().to_vec()),
                        timeout: None,
                    };
                    values(&lua, &process::run_plain(&spec, output, errors).await)
                }
            },
        )?,
    )?;
    // `core.execute_blocking(command, input, output_path, errors_path) -> as core.execute`: the
    // same where the caller cannot wait (see stdlib/sloth/os_commands.lua), the thread blocked;
    // stopped, the command killed and an error raised, when the run is interrupted or the
    // running coroutine's deadline passes.
    core.set(
        "execute_blocking",
        lua.create_function(
            |lua,
             (command, input, output, errors): (LuaString, Option<LuaString>, Option<LuaString>, Option<LuaString>)| {
                let context = task_context::current(lua);
                let spec = Spec {
                    program: Program::Shell(command.to_str()?.to_string()),
                    cwd: context.base_dir(),
                    env: context.env,
                    stdin: input.map(|input| input.as_bytes().to_vec()),
                    timeout: None,
                };
                let output = output.map(|path| create(&path)).transpose()?;
                let errors = errors.map(|path| create(&path)).transpose()?;
                let stop = || super::preempt::stopped(lua);
                let exit = match process::run_blocking(&spec, output, errors, &stop) {
                    Ok(Ok(exit)) => Ok(exit),
                    Ok(Err(reason)) => return Err(mlua::Error::runtime(reason)),
                    Err(error) => Err(error),
                };
                values(lua, &exit)
            },
        )?,
    )
}

/// What `os.execute` returns for how a command ended.
fn values(lua: &Lua, exit: &Result<Exit, process::ProcessError>) -> LuaResult<MultiValue> {
    let (ok, how, code) = match *exit {
        Ok(Exit::Code(0)) => (true, "exit", 0),
        Ok(Exit::Code(code)) => (false, "exit", code),
        Ok(Exit::Signal(signal)) => (false, "signal", signal),
        Ok(Exit::TimedOut(_)) => (false, "signal", nix::sys::signal::Signal::SIGKILL as i32),
        // As a shell says of a command it cannot start.
        Err(_) => (false, "exit", 127),
    };
    let ok = if ok { Value::Boolean(true) } else { Value::Nil };
    Ok(MultiValue::from_vec(vec![ok, Value::String(lua.create_string(how)?), Value::Integer(code.into())]))
}

/// The file at `path` (a name Lua chose), made empty.
fn create(path: &LuaString) -> LuaResult<std::fs::File> {
    use std::os::unix::ffi::OsStrExt;
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&path.as_bytes()));
    std::fs::File::create(&path).map_err(|error| mlua::Error::runtime(format!("{}: {error}", path.display())))
}
