//! `sloth.core`: the host's internal primitives for the stdlib engine — not a public module.
//!
//! - `spawn(fn, context, ...) -> id` starts `fn(...)` as a concurrent job whose coroutine carries
//!   `context` (`{ prefix, workdir, group, task }`, or nil);
//! - `wait(id) -> ok, ...` and `wait_any({ids}) -> id, ok, ...` wait for jobs;
//! - `cancel(id)` stops one; `now()` is a monotonic clock in seconds; `sleep(seconds)` yields;
//! - `random_id()`: twelve hex digits from the system's randomness (a run's id);
//! - `cwd()`, `is_dir(path)`, `parse_duration(text)`, `format_duration(seconds)`: small facts
//!   standard Lua cannot get;
//! - `contexts` is the weak `coroutine -> context` map; `context()` the running task's context;
//! - `close_on_exec(file)`: a file Lua opened is not inherited by the processes started later;
//! - `error_value(kind, message, fields?)`: an error value as native functions return them
//!   (`sloth.Error`), for stdlib wrappers whose failures must read the same.

use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Result as LuaResult, Table, Value, Variadic};

use super::jobs::{Jobs, Outcome};
use crate::modules::task_context;

/// Builds the `sloth.core` table; `jobs` is shared with the host so it can cancel everything.
/// The VM's memory limit, in bytes (`--lua-memory-limit`), for messages.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimit(pub usize);

pub fn module(lua: &Lua, jobs: &Rc<Jobs>) -> LuaResult<Table> {
    let core = lua.create_table()?;
    // `core.memory_limit()`: the VM's memory limit in bytes, nil when unlimited.
    core.set(
        "memory_limit",
        lua.create_function(|lua, ()| Ok(lua.app_data_ref::<MemoryLimit>().map(|limit| limit.0)))?,
    )?;
    let contexts = task_context::contexts(lua)?;
    core.set("contexts", &contexts)?;
    // `core.keep_stdout()`: stdout carries JSON only from now on (what remote tasks print goes
    // to stderr).
    core.set(
        "keep_stdout",
        lua.create_function(|lua, ()| {
            lua.set_app_data(crate::modules::agent::StdoutKept);
            Ok(())
        })?,
    )?;
    // `core.stdout_kept()`: whether stdout carries JSON only (see `keep_stdout`).
    core.set(
        "stdout_kept",
        lua.create_function(|lua, ()| Ok(lua.app_data_ref::<crate::modules::agent::StdoutKept>().is_some()))?,
    )?;
    // `core.preempt(on)`: the running coroutine gets (or loses) the hook that stops Lua code
    // which never yields at a deadline or on cancellation; whether it had it.
    core.set(
        "preempt",
        lua.create_function(|lua, on: bool| {
            if !on {
                super::preempt::engine_only(lua, "preempt")?;
            }
            super::preempt::set(lua, on)
        })?,
    )?;
    // `core.stopped()`: why the pipeline's code running now must stop (its task's deadline
    // passed, the run was cancelled), nil otherwise — and nil in the engine's own code (the
    // hook off): what makes a `pcall` in a pipeline pass a stop on instead of swallowing it.
    core.set("stopped", lua.create_function(|lua, ()| Ok(super::preempt::stopped_while_hooked(lua)))?)?;
    // `core.raise_if_stopped()`: raises that stop, if any (a call that would start something,
    // or whose failure may be a stop's interruption, checks it: see preempt::refused_if_stopped).
    core.set("raise_if_stopped", lua.create_function(|lua, ()| super::preempt::refused_if_stopped(lua))?)?;
    // `core.is_engine_source(source)`: whether a function with that chunk name is the engine's
    // (see `stdlib::is_engine_source`), not the pipeline's.
    core.set(
        "is_engine_source",
        lua.create_function(|_, source: mlua::LuaString| Ok(super::stdlib::is_engine_source(&source.to_str()?)))?,
    )?;
    // The live status line (`sloth.status`): `status_on()` turns it on when stderr is a
    // terminal that wants it (and says whether it is on), `status_off()` takes it away,
    // `status_task(name, running)` says a task started or ended; `console_begin()` and
    // `console_end(stream, ends_line)` bracket a write to the terminal that Lua makes itself
    // (`stream` "stdout", "stderr", or "unknown" for a command's own output; `ends_line` nil
    // when nothing was written).
    core.set("status_on", lua.create_function(|_, ()| Ok(crate::status_line::enable()))?)?;
    core.set(
        "status_off",
        lua.create_function(|_, ()| {
            crate::status_line::disable();
            Ok(())
        })?,
    )?;
    core.set(
        "status_task",
        lua.create_function(|_, (name, running): (String, bool)| {
            crate::status_line::task(&name, running);
            Ok(())
        })?,
    )?;
    core.set(
        "console_begin",
        lua.create_function(|_, ()| {
            crate::status_line::begin();
            Ok(())
        })?,
    )?;
    core.set(
        "console_end",
        lua.create_function(|_, (stream, ends_line): (String, Option<bool>)| {
            use crate::status_line::{Ends, Stream};
            crate::status_line::end(match stream.as_str() {
                "stdout" => Ends::Known(Stream::Stdout, ends_line),
                "stderr" => Ends::Known(Stream::Stderr, ends_line),
                _ => Ends::Unknown,
            });
            Ok(())
        })?,
    )?;
    // `core.begin_run()`: a run begins (agents read its pipeline afresh).
    core.set(
        "begin_run",
        lua.create_function(|lua, ()| {
            crate::modules::agent::begin_run(lua);
            Ok(())
        })?,
    )?;
    // `core.events_on()`: whether `run --output json` streams events; `core.event(type,
    // fields)` writes one (nothing when the stream is off).
    core.set("events_on", lua.create_function(|_, ()| Ok(crate::json_events::enabled()))?)?;
    // `core.json_array(t)`: `t`, written as a JSON array even when empty.
    core.set(
        "json_array",
        lua.create_function(|lua, table: Table| {
            use mlua::LuaSerdeExt;
            table.set_metatable(Some(lua.array_metatable()))?;
            Ok(table)
        })?,
    )?;
    core.set(
        "event",
        lua.create_function(|lua, (kind, fields): (String, Option<Table>)| {
            if !crate::json_events::enabled() {
                return Ok(());
            }
            // Text that is not UTF-8 (a task's message with a byte such as 0xFF) goes with that
            // byte replaced (U+FFFD): the event keeps its other fields — a consumer learns the
            // task ended.
            let fields = fields.map(|fields| lossy_text(lua, Value::Table(fields), 0)).transpose()?;
            let fields = match fields.map(|fields| crate::modules::lua_json::from_lua(lua, fields, "an event")) {
                Some(Ok(serde_json::Value::Object(map))) => map,
                Some(Ok(_)) | None => serde_json::Map::new(),
                // (A field that is not data, say a function: the event still goes.)
                Some(Err(error)) => serde_json::Map::from_iter([("unencodable".to_owned(), error.to_string().into())]),
            };
            crate::json_events::emit(&kind, fields);
            Ok(())
        })?,
    )?;
    // `core.print_to_master(text, written)`: on an agent, sends what a task printed to the
    // master (`written`: "stdout" or "stderr", what it wrote there as it is, no newline
    // added); false where there is no master to send it to.
    core.set(
        "print_to_master",
        lua.create_function(|lua, (text, written): (mlua::LuaString, Option<String>)| {
            let Some(sink) = lua.app_data_ref::<crate::events::EventSink>() else { return Ok(false) };
            let (raw, stderr) = match written.as_deref() {
                None => (false, false),
                Some("stdout") => (true, false),
                Some("stderr") => (true, true),
                Some(other) => {
                    return Err(mlua::Error::runtime(format!("print_to_master: no stream '{other}'")));
                }
            };
            // Bytes as they are (a `print` here writes them so); text is cut between characters.
            let text = text.as_bytes();
            let utf8 = std::str::from_utf8(&text).is_ok();
            let mut rest: &[u8] = &text;
            loop {
                let mut cut = rest.len().min(crate::events::PRINT_PIECE);
                while utf8 && cut < rest.len() && (rest[cut] & 0xC0) == 0x80 {
                    cut -= 1;
                }
                let (piece, after) = rest.split_at(cut);
                let more = raw || !after.is_empty();
                sink.send(crate::events::TaskEvent::Print { text: piece.to_vec(), more, stderr });
                if after.is_empty() {
                    break;
                }
                rest = after;
            }
            Ok(true)
        })?,
    )?;

    let spawn_jobs = Rc::clone(jobs);
    let spawn_contexts = contexts.clone();
    core.set(
        "spawn",
        lua.create_function(move |lua, (function, context, args): (Function, Option<Table>, MultiValue)| {
            let (id, thread) = spawn_jobs.spawn(lua, function, args)?;
            // A job started from inside a task inherits that task's context.
            let context = match context {
                Some(context) => Some(context),
                None => spawn_contexts.get::<Option<Table>>(lua.current_thread())?,
            };
            spawn_contexts.set(thread, context)?;
            Ok(id)
        })?,
    )?;

    let wait_jobs = Rc::clone(jobs);
    core.set(
        "wait",
        lua.create_async_function(move |lua, id: u64| {
            let jobs = Rc::clone(&wait_jobs);
            async move {
                match jobs.wait_any(&[id]).await {
                    Some((_, outcome)) => outcome_values(&lua, outcome),
                    None => Err(mlua::Error::runtime(format!("sloth.core.wait: no job {id}"))),
                }
            }
        })?,
    )?;

    let any_jobs = Rc::clone(jobs);
    core.set(
        "wait_any",
        lua.create_async_function(move |lua, ids: Variadic<u64>| {
            let jobs = Rc::clone(&any_jobs);
            async move {
                let ids: Vec<u64> = ids.into_iter().collect();
                match jobs.wait_any(&ids).await {
                    Some((id, outcome)) => {
                        let mut values = outcome_values(&lua, outcome)?;
                        values.push_front(Value::Integer(id as i64));
                        Ok(values)
                    }
                    None => Ok(MultiValue::new()),
                }
            }
        })?,
    )?;

    // `core.adopt_deadline(co, resumed)`: a coroutine the pipeline's code resumes runs under
    // the deadline of whoever resumes it (the preemption hook and a blocking command look at
    // the running coroutine's); `resumed = false` once it is done (dead), to forget it.
    let adopting = jobs.deadlines.clone();
    core.set(
        "adopt_deadline",
        lua.create_function(move |lua, (co, resumed): (mlua::Thread, bool)| {
            super::preempt::engine_only(lua, "adopt_deadline")?;
            match adopting.of(&lua.current_thread()).filter(|_| resumed) {
                Some((at, message)) => adopting.set(&co, at, message),
                None => adopting.clear(&co),
            }
            if resumed {
                super::preempt::pass_on(lua, &co)?;
            }
            Ok(())
        })?,
    )?;

    let deadline_jobs = Rc::clone(jobs);
    core.set(
        "set_deadline",
        lua.create_function(move |lua, (id, seconds, message): (u64, f64, String)| {
            super::preempt::engine_only(lua, "set_deadline")?;
            let after = Duration::try_from_secs_f64(seconds).map_err(|_| {
                mlua::Error::runtime("sloth.core.set_deadline: expected a non-negative number of seconds")
            })?;
            Ok(deadline_jobs.set_deadline(id, Instant::now() + after, message))
        })?,
    )?;

    let cancel_jobs = Rc::clone(jobs);
    core.set("cancel", lua.create_function(move |lua, id: u64| Ok(cancel_jobs.cancel(lua, id)))?)?;

    let started = Instant::now();
    // `core.close_on_exec(file)`: see `lua_files`.
    core.set("close_on_exec", super::lua_files::close_on_exec(lua)?)?;
    core.set("now", lua.create_function(move |_, ()| Ok(started.elapsed().as_secs_f64()))?)?;
    core.set("random_id", lua.create_function(|_, ()| Ok(random_id()))?)?;

    core.set(
        "sleep",
        lua.create_async_function(|_, seconds: f64| async move {
            let duration = Duration::try_from_secs_f64(seconds)
                .map_err(|_| mlua::Error::runtime("sloth.core.sleep: expected a non-negative number of seconds"))?;
            tokio::time::sleep(duration).await;
            Ok(())
        })?,
    )?;

    core.set("context", lua.create_function(move |lua, ()| contexts.get::<Option<Table>>(lua.current_thread()))?)?;

    core.set(
        "cwd",
        lua.create_function(|_, ()| {
            std::env::current_dir()
                .map(|dir| dir.to_string_lossy().into_owned())
                .map_err(|e| mlua::Error::runtime(format!("sloth.core.cwd: {e}")))
        })?,
    )?;
    core.set("is_dir", lua.create_function(|_, path: String| Ok(std::path::Path::new(&path).is_dir()))?)?;

    // Stdlib modules over `exec` (git, …) return their failures as the same values native
    // functions do, so scripts decide on `kind` whoever failed.
    core.set(
        "error_value",
        lua.create_function(|lua, (kind, message, fields): (String, String, Option<Table>)| {
            let kind = crate::error_kind::ErrorKind::ALL
                .into_iter()
                .find(|known| known.as_str() == kind)
                .ok_or_else(|| mlua::Error::runtime(format!("sloth.core.error_value: unknown kind '{kind}'")))?;
            let error = crate::modules::error_value::ErrorValue::new(kind, message).into_table(lua)?;
            if let Some(fields) = fields {
                for pair in fields.pairs::<Value, Value>() {
                    let (name, value) = pair?;
                    error.raw_set(name, value)?;
                }
            }
            Ok(error)
        })?,
    )?;

    core.set(
        "parse_duration",
        lua.create_function(|lua, text: String| match crate::duration::parse(&text) {
            Ok(duration) => (duration.as_secs_f64(), Value::Nil).into_lua_multi(lua),
            Err(error) => (Value::Nil, error.reason).into_lua_multi(lua),
        })?,
    )?;

    core.set(
        "format_duration",
        lua.create_function(|_, seconds: f64| {
            Ok(crate::duration::format(Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default()))
        })?,
    )?;

    Ok(core)
}

/// `true, ...values` or `false, message`.
fn outcome_values(lua: &Lua, outcome: Outcome) -> LuaResult<MultiValue> {
    match outcome {
        Ok(mut values) => {
            values.push_front(Value::Boolean(true));
            Ok(values)
        }
        Err(message) => (false, message).into_lua_multi(lua),
    }
}

/// `value` with every string (keys too) that is not UTF-8 made valid, each bad byte replaced
/// by U+FFFD; tables copied only as deep as events go.
fn lossy_text(lua: &Lua, value: Value, depth: usize) -> LuaResult<Value> {
    match value {
        Value::String(text) if std::str::from_utf8(&text.as_bytes()).is_err() => {
            Ok(Value::String(lua.create_string(text.to_string_lossy())?))
        }
        Value::Table(table) if depth < 16 => {
            let copy = lua.create_table()?;
            for pair in table.pairs::<Value, Value>() {
                let (key, value) = pair?;
                copy.raw_set(lossy_text(lua, key, depth + 1)?, lossy_text(lua, value, depth + 1)?)?;
            }
            copy.set_metatable(table.metatable())?;
            Ok(Value::Table(copy))
        }
        other => Ok(other),
    }
}

/// Twelve hex digits from the system's randomness (48 bits): names that two processes started
/// at the same moment must not share, whatever a pipeline seeded `math.random` with.
fn random_id() -> String {
    format!("{:012x}", random_bits() & 0xffff_ffff_ffff)
}

/// 64 bits from the system's randomness: each `RandomState` holds keys the standard library
/// took from it (once per thread, then moved on for each new one).
pub(super) fn random_bits() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8)
}
