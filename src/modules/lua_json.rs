//! Lua values to and from JSON documents, for what crosses a VM or process boundary.
//!
//! Lua strings are bytes and JSON strings are UTF-8; on the wire (`lua_to_bytes`,
//! `bytes_to_lua`) a string value that is not UTF-8 — a command's raw output — travels as
//! `{ "\u0000sloth:bytes": "<hex>" }`, and a table key that is not UTF-8 (a file name) as
//! `"\u0000sloth:key:<hex>"`; both arrive as the same bytes, so a remote task's outputs reach
//! its dependents exactly as a local task's would. A key that already starts with
//! `"\u0000sloth:"` travels encoded too, so nothing a task returns is mistaken for a tag.

use mlua::serde::{DeserializeOptions, SerializeOptions};
use mlua::{Lua, LuaSerdeExt, Result as LuaResult, Table, Value};

use crate::hex::{decode as unhex, encode as hex};

/// What every tag starts with.
const TAG_PREFIX: &[u8] = b"\0sloth:";
/// The key of the one-entry object that carries a string that is not UTF-8.
const BYTES_TAG: &str = "\u{0}sloth:bytes";
/// The prefix of an encoded table key.
const KEY_TAG: &str = "\u{0}sloth:key:";

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
    // The tags' JSON spelling: only a document that has one needs the walk.
    if bytes.windows(12).any(|window| window == b"\\u0000sloth:") {
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
const MAX_DEPTH: usize = 128;

fn not_utf8(text: &mlua::LuaString) -> bool {
    std::str::from_utf8(&text.as_bytes()).is_err()
}

/// A key that cannot travel as it is: not UTF-8, or looking like a tag.
fn key_needs_encoding(key: &Value) -> bool {
    matches!(key, Value::String(text) if not_utf8(text) || text.as_bytes().starts_with(TAG_PREFIX))
}

fn has_raw_bytes(value: &Value, depth: usize) -> bool {
    match value {
        Value::String(text) => not_utf8(text),
        Value::Table(table) if depth < MAX_DEPTH => table
            .pairs::<Value, Value>()
            .flatten()
            .any(|(key, value)| key_needs_encoding(&key) || has_raw_bytes(&value, depth + 1)),
        _ => false,
    }
}

/// A copy of `value` with every string that is not UTF-8 replaced by its tagged form.
fn tag(lua: &Lua, value: Value, depth: usize) -> LuaResult<Value> {
    match value {
        Value::String(text) if not_utf8(&text) => {
            let tagged = lua.create_table()?;
            tagged.raw_set(BYTES_TAG, hex(&text.as_bytes()))?;
            Ok(Value::Table(tagged))
        }
        Value::Table(table) if depth < MAX_DEPTH => {
            let copy = lua.create_table()?;
            for pair in table.pairs::<Value, Value>() {
                let (key, value) = pair?;
                let key = match key {
                    Value::String(text) if key_needs_encoding(&Value::String(text.clone())) => {
                        Value::String(lua.create_string(format!("{KEY_TAG}{}", hex(&text.as_bytes())))?)
                    }
                    other => other,
                };
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
            let decoded = match &key {
                Value::String(text) => text
                    .as_bytes()
                    .strip_prefix(KEY_TAG.as_bytes())
                    .and_then(unhex)
                    .map(|bytes| lua.create_string(bytes)),
                _ => None,
            };
            let value = if matches!(value, Value::Table(_)) { untag(lua, value, depth + 1)? } else { value };
            match decoded {
                Some(new_key) => {
                    table.raw_set(key, Value::Nil)?;
                    table.raw_set(new_key?, value)?;
                }
                None => table.raw_set(key, value)?,
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
    Ok(unhex(&hex.as_bytes()))
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

    #[test]
    fn keys_that_are_not_utf8_or_look_like_tags_arrive_as_they_were() {
        let lua = Lua::new();
        let value: Value = lua
            .load(r#"return { ["k\255"] = "v", ["\0sloth:bytes"] = "6869", ["\0sloth:key:6869"] = 1 }"#)
            .eval()
            .expect("a table");
        let bytes = lua_to_bytes(&lua, value, "outputs").expect("encodes");
        let Value::Table(back) = bytes_to_lua(&lua, &bytes, "outputs").expect("decodes") else { panic!("a table") };
        assert_eq!(back.raw_get::<String>(lua.create_string(b"k\xff").expect("key")).expect("k"), "v");
        assert_eq!(back.raw_get::<String>("\0sloth:bytes").expect("a plain key"), "6869");
        assert_eq!(back.raw_get::<i64>("\0sloth:key:6869").expect("a plain key"), 1);
        assert_eq!(back.pairs::<Value, Value>().count(), 3);
    }
}
