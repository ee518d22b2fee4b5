//! `log`: `log.info/warn/error/debug(msg[, fields])` as tracing events with target `lua`, and
//! `log.success(msg[, fields])`, which the Go tool's pipelines call.
//!
//! The console shows them as `<group>/<task>  INFO  msg key=value` while a task runs.
//! `log.success` is an info line marked by a `status=success` field: a field rather than a level
//! of its own, so the mark reaches the console, the JSON event stream and the master (from an
//! agent) through the paths every log line already takes.

use mlua::{Lua, Result as LuaResult, Table, Value};
use tracing::Level;

use super::{console_events, task_context};
use crate::events::{EventSink, TaskEvent};

/// The field `log.success` adds to its line.
const SUCCESS_MARK: (&str, &str) = ("status", "success");

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    for (name, level, mark) in [
        ("debug", Level::DEBUG, None),
        ("info", Level::INFO, None),
        ("warn", Level::WARN, None),
        ("error", Level::ERROR, None),
        ("success", Level::INFO, Some(SUCCESS_MARK)),
    ] {
        let function = lua.create_function(move |lua, (message, fields): (Value, Option<Table>)| {
            let message = text_of(&message)?;
            let fields = format_fields(fields.as_ref(), mark)?;
            // On an agent the line goes to the master; it shows locally only with --verbose.
            if let Some(sink) = lua.app_data_ref::<EventSink>() {
                sink.send(TaskEvent::Log {
                    level,
                    message: message.clone(),
                    fields: fields.clone().unwrap_or_default(),
                });
                tracing::debug!(target: console_events::LOG_TARGET, level = %level, fields, "{message}");
                return Ok(());
            }
            let context = task_context::current(lua);
            console_events::log(level, context.prefix.as_deref(), &message, fields.as_deref(), None);
            Ok(())
        })?;
        table.set(name, function)?;
    }
    Ok(table)
}

/// A value as a log line shows it: a string whatever its bytes (a path that is not UTF-8 in a
/// warning must not turn the warning into the task's failure: its bytes are shown as U+FFFD),
/// anything else as `tostring` would.
fn text_of(value: &Value) -> LuaResult<String> {
    match value {
        Value::String(text) => Ok(text.to_string_lossy()),
        other => other.to_string(),
    }
}

/// `k=v` pairs sorted by key, so the same fields always print the same way; `mark` replaces a
/// field of the same name. None when there are none.
fn format_fields(fields: Option<&Table>, mark: Option<(&str, &str)>) -> LuaResult<Option<String>> {
    let mut pairs = Vec::new();
    if let Some(fields) = fields {
        for pair in fields.pairs::<Value, Value>() {
            let (key, value) = pair?;
            let key = text_of(&key)?;
            if mark.is_some_and(|(name, _)| name == key) {
                continue;
            }
            pairs.push(format!("{key}={}", text_of(&value)?));
        }
    }
    if let Some((name, value)) = mark {
        pairs.push(format!("{name}={value}"));
    }
    if pairs.is_empty() && fields.is_none() {
        return Ok(None);
    }
    pairs.sort();
    Ok(Some(pairs.join(" ")))
}
