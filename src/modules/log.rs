//! `log`: `log.info/warn/error/debug(msg[, fields])` as tracing events with target `lua`.
//!
//! The console shows them as `<group>/<task>  INFO  msg key=value` while a task runs.

use mlua::{Lua, Result as LuaResult, Table, Value};
use tracing::Level;

use super::task_context;

/// Tracing target of every event the `log` module emits.
pub const TARGET: &str = "lua";

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    for (name, level) in
        [("debug", Level::DEBUG), ("info", Level::INFO), ("warn", Level::WARN), ("error", Level::ERROR)]
    {
        let function = lua.create_function(move |lua, (message, fields): (Value, Option<Table>)| {
            let message = message.to_string()?;
            let fields = fields.map(|fields| format_fields(&fields)).transpose()?;
            let context = task_context::current(lua);
            emit(level, context.prefix.as_deref(), &message, fields.as_deref());
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

fn emit(level: Level, task: Option<&str>, message: &str, fields: Option<&str>) {
    match level {
        Level::DEBUG => tracing::debug!(target: TARGET, task, fields, "{message}"),
        Level::INFO => tracing::info!(target: TARGET, task, fields, "{message}"),
        Level::WARN => tracing::warn!(target: TARGET, task, fields, "{message}"),
        Level::ERROR => tracing::error!(target: TARGET, task, fields, "{message}"),
        Level::TRACE => tracing::trace!(target: TARGET, task, fields, "{message}"),
    }
}
