//! Lua values to and from JSON documents, for what crosses a VM or process boundary.
//!
//! Lua strings are bytes and JSON strings are UTF-8; on the wire (`lua_to_bytes`,
//! `bytes_to_lua`) a string that is not UTF-8 — a command's raw output, a file name — travels
//! as `{ "\u0000sloth:bytes": "<hex>" }` and arrives as the same bytes, so a remote task's
//! outputs reach its dependents exactly as a local task's would.

use mlua::serde::{DeserializeOptions, SerializeOptions};
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};

/// The key of the one-entry object that carries a string that is not UTF-8.
const BYTES_TAG: &str = "\u{0}sloth:bytes";

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
    let value = to_lua(lua, &value)?;
    // The tag's JSON spelling: only a document that has it needs the walk.
    if bytes.windows(18).any(|window| window == b"\\u0000sloth:bytes\"") {
        return untag(lua, value, 0);
    }
    Ok(value)
}

/// JSON bytes for a Lua value.
pub fn lua_to_bytes(lua: &Lua, value: Value, what: &str) -> LuaResult<Vec<u8>> {
    let value = if has_raw_bytes(&value, 0) { tag(lua, value, 0)? } else { value };
    let json = from_lua(lua, value, what)?;
    serde_json::to_vec(&json).map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))
}

/// Deeper than this, tables are left to the JSON conversion (which refuses cycles).
const MAX_DEPTH: usize = 64;

fn has_raw_bytes(value: &Value, depth: usize) -> bool {
    match value {
        Value::String(text) => std::str::from_utf8(&text.as_bytes()).is_err(),
        Value::Table(table) if depth < MAX_DEPTH => table
            .pairs::<Value, Value>()
            .flatten()
            .any(|(key, value)| has_raw_bytes(&key, depth + 1) || has_raw_bytes(&value, depth + 1)),
        _ => false,
    }
}

/// A copy of `value` with every string that is not UTF-8 replaced by its tagged form.
fn tag(lua: &Lua, value: Value, depth: usize) -> LuaResult<Value> {
    match value {
        Value::String(text) if std::str::from_utf8(&text.as_bytes()).is_err() => {
            let tagged = lua.create_table()?;
            let hex: String = text.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
            tagged.raw_set(BYTES_TAG, hex)?;
            Ok(Value::Table(tagged))
        }
        Value::Table(table) if depth < MAX_DEPTH => {
            let copy = lua.create_table()?;
            for pair in table.pairs::<Value, Value>() {
                let (key, value) = pair?;
                copy.raw_set(key, tag(lua, value, depth + 1)?)?;
            }
            copy.set_metatable(table.metatable())?;
            Ok(Value::Table(copy))
        }
        other => Ok(other),
    }
}

/// `value` with every tagged form turned back into its bytes.
fn untag(lua: &Lua, value: Value, depth: usize) -> LuaResult<Value> {
    let Value::Table(table) = value else { return Ok(value) };
    if let Some(bytes) = tagged_bytes(&table)? {
        return Ok(Value::String(lua.create_string(bytes)?));
    }
    if depth < MAX_DEPTH {
        let pairs: Vec<(Value, Value)> = table.pairs::<Value, Value>().collect::<LuaResult<_>>()?;
        for (key, value) in pairs {
            if matches!(value, Value::Table(_)) {
                table.raw_set(key, untag(lua, value, depth + 1)?)?;
            }
        }
    }
    Ok(Value::Table(table))
}

/// The bytes a one-entry tagged table carries.
fn tagged_bytes(table: &Table) -> LuaResult<Option<Vec<u8>>> {
    let Value::String(hex) = table.raw_get::<Value>(BYTES_TAG)? else { return Ok(None) };
    if table.pairs::<Value, Value>().count() != 1 {
        return Ok(None);
    }
    let hex = hex.as_bytes();
    let bytes: Option<Vec<u8>> = hex
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect();
    Ok(bytes.filter(|_| hex.len() % 2 == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_are_not_utf8_cross_the_wire_as_the_same_bytes() {
        let lua = Lua::new();
        let value: Value = lua
            .load(r#"return { stdout = "a\255b\n", nested = { "ok", "\254" }, plain = "text", n = 3 }"#)
            .eval()
            .expect("a table");
        let bytes = lua_to_bytes(&lua, value, "outputs").expect("encodes");
        let back = bytes_to_lua(&lua, &bytes, "outputs").expect("decodes");
        let Value::Table(back) = back else { panic!("a table") };
        assert_eq!(back.get::<mlua::LuaString>("stdout").expect("stdout").as_bytes().to_vec(), b"a\xffb\n");
        let nested: Table = back.get("nested").expect("nested");
        assert_eq!(nested.get::<mlua::LuaString>(2).expect("second").as_bytes().to_vec(), b"\xfe");
        assert_eq!(back.get::<String>("plain").expect("plain"), "text");
        assert_eq!(back.get::<i64>("n").expect("n"), 3);
    }
}
