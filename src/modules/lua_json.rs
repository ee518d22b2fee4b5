//! Lua values to and from JSON documents, for what crosses a VM or process boundary.

use mlua::serde::{DeserializeOptions, SerializeOptions};
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Value};

/// Plain Lua tables: `null` becomes nil and arrays carry no special metatable.
pub fn to_lua(lua: &Lua, value: &serde_json::Value) -> LuaResult<Value> {
    let options =
        SerializeOptions::new().serialize_none_to_null(false).serialize_unit_to_null(false).set_array_metatable(false);
    lua.to_value_with(value, options)
}

/// A JSON value for `value`; functions, threads and userdata are refused with `what` named.
pub fn from_lua(lua: &Lua, value: Value, what: &str) -> LuaResult<serde_json::Value> {
    lua.from_value_with(value, DeserializeOptions::new().deny_recursive_tables(true))
        .map_err(|e| mlua::Error::runtime(format!("{what} cannot be sent as JSON: {e}")))
}

/// `to_lua` of a JSON document given as bytes; empty bytes read as an empty table.
pub fn bytes_to_lua(lua: &Lua, bytes: &[u8], what: &str) -> LuaResult<Value> {
    if bytes.is_empty() {
        return Ok(Value::Table(lua.create_table()?));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| mlua::Error::runtime(format!("{what}: invalid JSON: {e}")))?;
    to_lua(lua, &value)
}

/// JSON bytes for a Lua value.
pub fn lua_to_bytes(lua: &Lua, value: Value, what: &str) -> LuaResult<Vec<u8>> {
    let json = from_lua(lua, value, what)?;
    serde_json::to_vec(&json).map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))
}
