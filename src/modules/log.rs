//! `log`: `log.info/warn/error/debug(msg[, fields])` as tracing events with target `lua`.
//!
//! The console shows them as `<group>/<task>  INFO  msg key=value` while a task runs.

use mlua::{Lua, Result as LuaResult, Table, Value};
use tracing::Level;

use super::{console_events, task_context};
use crate::events::{EventSink, TaskEvent};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    for (name, level) in
        [("debug", Level::DEBUG), ("info", Level::INFO), ("warn", Level::WARN), ("error", Level::ERROR)]
    {
        let function = lua.create_function(move |lua, (message, fields): (Value, Option<Table>)| {
            let message = message.to_string()?;
            let fields = fields.map(|fields| format_fields(&fields)).transpose()?;
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

/// `k=v` pairs sorted by key, so the same fields always print the same way.
fn format_fields(fields: &Table) -> LuaResult<String> {
    let mut pairs = Vec::new();
    for pair in fields.pairs::<Value, Value>() {
        let (key, value) = pair?;
        pairs.push(format!("{}={}", key.to_string()?, value.to_string()?));
    }
    pairs.sort();
    Ok(pairs.join(" "))
}
