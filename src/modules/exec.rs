//! `exec`: `exec.run(cmd[, opts]) -> stdout, stderr, err` and
//! `exec.command(cmd, ...args) -> stdout, stderr, err`.
//!
//! `cmd` is a string (run by `sh -c`) or an argv table (no shell). `err` is nil on exit 0, else an
//! error value (see [`super::error_value`]) `{ kind, message, code, signal, timed_out }` that
//! prints as its message; `kind` is "exit", "signal", "timeout", or "io" for a program that
//! could not start (then `not_found` says whether it does not exist). The functions are async:
//! while the child runs, other tasks' coroutines keep going. `exec.command` is the Go tool's
//! spelling of the argv form: the program and its arguments as separate values, no shell, no
//! options.

use std::path::PathBuf;
use std::time::Duration;

use mlua::{FromLua, Lua, Result as LuaResult, Table, Value, Variadic};

use super::error_value::ErrorValue;
use super::task_context::{self, TaskContext};
use super::{console_events, lua_args};
use crate::error_kind::ErrorKind;
use crate::events::{EventSink, TaskEvent};
use crate::process::{self, Exit, OutputStream, Program, Spec};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    table.set(
        "run",
        lua.create_async_function(|lua, (command, options): (Value, Option<ExecOptions>)| {
            // A task past its deadline (or cancelled) starts nothing more.
            let refused = crate::runtime::preempt::refused_if_stopped(&lua);
            // Read the calling task's context now, while its coroutine is the running one.
            let context = task_context::current(&lua);
            let sink = lua.app_data_ref::<EventSink>().map(|sink| sink.clone());
            async move {
                refused?;
                let program = read_program(command)?;
                run(lua, program, options.unwrap_or_default(), context, sink).await
            }
        })?,
    )?;
    table.set(
        "command",
        lua.create_async_function(|lua, (command, args): (Value, Variadic<Value>)| {
            let refused = crate::runtime::preempt::refused_if_stopped(&lua);
            let context = task_context::current(&lua);
            let sink = lua.app_data_ref::<EventSink>().map(|sink| sink.clone());
            async move {
                refused?;
                let program = read_command(&command, &args)?;
                run(lua, program, ExecOptions::default(), context, sink).await
            }
        })?,
    )?;
    Ok(table)
}

/// `exec.command`'s arguments as an argument vector: a program name, then strings or numbers.
fn read_command(command: &Value, args: &[Value]) -> LuaResult<Program> {
    let Value::String(program) = command else {
        return Err(mlua::Error::runtime(format!(
            "exec.command: expected a program name (string) for 'cmd', got {}",
            command.type_name()
        )));
    };
    let mut argv = vec![program.to_str()?.to_string()];
    for (i, arg) in args.iter().enumerate() {
        match arg {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => argv.push(arg.to_string()?),
            other => {
                return Err(mlua::Error::runtime(format!(
                    "exec.command: argument #{} must be a string or a number, got {}",
                    i + 2,
                    other.type_name()
                )));
            }
        }
    }
    if argv[0].is_empty() {
        return Err(mlua::Error::runtime("exec.command: the program name 'cmd' is empty"));
    }
    Ok(Program::Argv(argv))
}

/// Options of `exec.run`.
#[derive(Debug, Default)]
struct ExecOptions {
    cwd: Option<PathBuf>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    /// Emit each output line live as a log line of the running task.
    stream: bool,
}

fn option_error(option: &str, reason: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("exec.run: invalid value for option '{option}' - {reason}"))
}

impl FromLua for ExecOptions {
    fn from_lua(value: Value, _lua: &Lua) -> LuaResult<Self> {
        let table = match value {
            Value::Nil => return Ok(Self::default()),
            Value::Table(table) => table,
            other => {
                return Err(mlua::Error::runtime(format!(
                    "exec.run: expected table for 'opts', got {}",
                    other.type_name()
                )));
            }
        };
        let mut options = Self::default();
        for pair in table.pairs::<String, Value>() {
            let (key, value) = pair?;
            match key.as_str() {
                // Bytes as they are: a directory's name need not be UTF-8.
                "cwd" => match &value {
                    Value::String(text) => {
                        use std::os::unix::ffi::OsStrExt;
                        options.cwd = Some(PathBuf::from(std::ffi::OsStr::from_bytes(&text.as_bytes())));
                    }
                    _ => return Err(option_error("cwd", format!("expected a string, got {}", value.type_name()))),
                },
                "env" => options.env = read_env(&value)?,
                "stdin" => options.stdin = Some(expect_string(&value, "stdin")?.into_bytes()),
                "timeout" => options.timeout = Some(lua_args::duration(&value, "exec.run", "timeout")?),
                "stream" => {
                    options.stream = value.as_boolean().ok_or_else(|| option_error("stream", "expected a boolean"))?
                }
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "exec.run: unknown option '{other}' (expected cwd, env, stdin, timeout or stream)"
                    )));
                }
            }
        }
        Ok(options)
    }
}

fn expect_string(value: &Value, option: &str) -> LuaResult<String> {
    match value {
        Value::String(text) => Ok(text.to_str()?.to_string()),
        Value::Integer(_) | Value::Number(_) => value.to_string(),
        other => Err(option_error(option, format!("expected a string, got {}", other.type_name()))),
    }
}

fn read_env(value: &Value) -> LuaResult<Vec<(String, String)>> {
    let Value::Table(table) = value else {
        return Err(option_error("env", format!("expected a table, got {}", value.type_name())));
    };
    let mut env = Vec::new();
    for pair in table.pairs::<String, Value>() {
        let (name, value) = pair?;
        let text = match &value {
            Value::Boolean(flag) => flag.to_string(),
            other => expect_string(other, &format!("env.{name}"))?,
        };
        env.push((name, text));
    }
    env.sort();
    Ok(env)
}

fn read_program(command: Value) -> LuaResult<Program> {
    match command {
        Value::String(line) => Ok(Program::Shell(line.to_str()?.to_string())),
        Value::Table(argv) => {
            let argv = argv
                .sequence_values::<Value>()
                .map(|arg| arg.and_then(|arg| expect_string(&arg, "cmd")))
                .collect::<LuaResult<Vec<String>>>()?;
            if argv.is_empty() {
                return Err(mlua::Error::runtime("exec.run: the argv table for 'cmd' is empty"));
            }
            Ok(Program::Argv(argv))
        }
        other => Err(mlua::Error::runtime(format!(
            "exec.run: expected string or table for 'cmd', got {}",
            other.type_name()
        ))),
    }
}

async fn run(
    lua: Lua,
    program: Program,
    options: ExecOptions,
    context: TaskContext,
    sink: Option<EventSink>,
) -> LuaResult<(Value, Value, Value)> {
    let cwd = match &options.cwd {
        Some(dir) => context.resolve(dir),
        None => context.base_dir(),
    };
    if !cwd.is_dir() {
        return Err(option_error("cwd", format!("path does not exist: {}", cwd.display())));
    }
    // The task's `env` first, then the call's own, which wins on a clash.
    let mut env = context.env.clone();
    env.extend(options.env);
    let spec = Spec { program, cwd, env, stdin: options.stdin, timeout: options.timeout };
    let prefix = context.prefix.clone();
    let on_line = |stream: OutputStream, line: &str| {
        if !options.stream {
            return;
        }
        match &sink {
            // On an agent, output goes to the master.
            Some(sink) => sink.send(TaskEvent::Output { stream, line: line.to_owned() }),
            None => console_events::output(stream, prefix.as_deref(), line, None),
        }
    };
    tracing::debug!(program = %spec.program.display_name(), cwd = %spec.cwd.display(), "exec.run");
    let finished = match process::run(&spec, &on_line).await {
        Ok(finished) => finished,
        // The program could not start (not found, not executable): a failed command, like a
        // shell's 127, not a Lua error.
        Err(error) => {
            let err = ErrorValue::new(ErrorKind::Io, error.to_string())
                .with_integer("code", Some(127))
                .with_flag("timed_out", false)
                .with_flag("not_found", error.is_not_found())
                .into_table(&lua)
                .map(Value::Table)?;
            return Ok((Value::String(lua.create_string("")?), Value::String(lua.create_string("")?), err));
        }
    };
    let err = match finished.exit {
        Exit::Code(0) => Value::Nil,
        Exit::Code(code) => failure(&lua, ErrorKind::Exit, (Some(code), None), &format!("exited with code {code}"))?,
        Exit::Signal(signal) => {
            let name = nix::sys::signal::Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("unknown");
            failure(&lua, ErrorKind::Signal, (None, Some(signal)), &format!("killed by signal {signal} ({name})"))?
        }
        Exit::TimedOut(limit) => failure(
            &lua,
            ErrorKind::Timeout,
            (None, None),
            &format!("timed out after {}", crate::duration::format(limit)),
        )?,
    };
    Ok((Value::String(lua.create_string(&finished.stdout)?), Value::String(lua.create_string(&finished.stderr)?), err))
}

/// How the command failed, as the error value `exec.run` returns (not raises): its kind, its
/// exit code or signal, and whether it timed out.
fn failure(lua: &Lua, kind: ErrorKind, (code, signal): (Option<i32>, Option<i32>), message: &str) -> LuaResult<Value> {
    ErrorValue::new(kind, message)
        .with_integer("code", code.map(i64::from))
        .with_integer("signal", signal.map(i64::from))
        .with_flag("timed_out", kind == ErrorKind::Timeout)
        .into_table(lua)
        .map(Value::Table)
}
