//! `data`: JSON and YAML for pipelines (serde underneath). Each function returns
//! `value, err` instead of raising, as the pipelines written for the Go tool check it.
//!
//! Lua to JSON: a table whose keys are exactly 1..n is an array, any other table an object
//! with its keys sorted (the same value always gives the same text); an empty table is an
//! object. `data.null` stands for JSON's null, so that nulls survive a round trip (`[1,null,3]`
//! keeps its three elements). What cannot be JSON — a function, a cycle, a string that is not
//! UTF-8, NaN or an infinity, two keys that are the same text (`[1]` and `["1"]`) — is an
//! error naming where it is (`$.build.steps[2]`).

use mlua::{IntoLuaMulti, Lua, LuaSerdeExt, Result as LuaResult, Table, Value};
use serde_json::{Map, Number, Value as Json};

/// Deeper than this is taken for a cycle.
const MAX_DEPTH: usize = 200;

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    table.set("null", Value::NULL)?;
    table.set(
        "to_json",
        lua.create_function(|lua, (value, options): (Value, Option<Table>)| {
            let pretty = match &options {
                Some(options) => {
                    super::lua_args::known_keys(options, "data.to_json", "option", &["pretty"])?;
                    options.get::<Option<bool>>("pretty")?.unwrap_or(false)
                }
                None => false,
            };
            written(lua, &value, |json| {
                if pretty { serde_json::to_string_pretty(json) } else { serde_json::to_string(json) }
                    .map_err(|e| e.to_string())
            })
        })?,
    )?;
    table.set(
        "to_yaml",
        lua.create_function(|lua, value: Value| {
            written(lua, &value, |json| serde_yaml_ng::to_string(json).map_err(|e| e.to_string()))
        })?,
    )?;
    table.set(
        "parse_json",
        lua.create_function(|lua, text: mlua::LuaString| {
            parsed(lua, serde_json::from_slice(&text.as_bytes()).map_err(|e| format!("invalid JSON: {e}")))
        })?,
    )?;
    table.set(
        "parse_yaml",
        lua.create_function(|lua, text: mlua::LuaString| {
            parsed(lua, serde_yaml_ng::from_slice(&text.as_bytes()).map_err(|e| format!("invalid YAML: {e}")))
        })?,
    )?;
    Ok(table)
}

/// `value` written by `format`, or `nil, err`.
fn written(
    lua: &Lua,
    value: &Value,
    format: impl FnOnce(&Json) -> Result<String, String>,
) -> LuaResult<mlua::MultiValue> {
    match to_json(value).and_then(|json| format(&json)) {
        Ok(text) => lua.create_string(text)?.into_lua_multi(lua),
        Err(error) => (Value::Nil, error).into_lua_multi(lua),
    }
}

/// The Lua value of a parsed document (null as `data.null`, arrays plain tables), or
/// `nil, err`.
fn parsed(lua: &Lua, document: Result<Json, String>) -> LuaResult<mlua::MultiValue> {
    match document {
        Ok(json) => {
            let options = mlua::serde::SerializeOptions::new().set_array_metatable(false);
            lua.to_value_with(&json, options)?.into_lua_multi(lua)
        }
        Err(error) => (Value::Nil, error).into_lua_multi(lua),
    }
}

/// A JSON value for `value`, or what cannot be JSON and where.
pub fn to_json(value: &Value) -> Result<Json, String> {
    convert(value, &mut String::from("$"), 0)
}

fn convert(value: &Value, path: &mut String, depth: usize) -> Result<Json, String> {
    match value {
        Value::Nil => Ok(Json::Null),
        Value::LightUserData(data) if data.0.is_null() => Ok(Json::Null),
        Value::Boolean(flag) => Ok(Json::Bool(*flag)),
        Value::Integer(number) => Ok(Json::Number((*number).into())),
        Value::Number(number) => {
            Number::from_f64(*number).map(Json::Number).ok_or_else(|| format!("{number} at {path} has no JSON form"))
        }
        Value::String(text) => match text.to_str() {
            Ok(text) => Ok(Json::String(text.to_owned())),
            Err(_) => Err(format!("a string that is not UTF-8 at {path}")),
        },
        Value::Table(table) => {
            if depth >= MAX_DEPTH {
                return Err(format!("a table nested too deep (a cycle?) at {path}"));
            }
            table_to_json(table, path, depth)
        }
        other => Err(format!("a {} at {path} has no JSON form", other.type_name())),
    }
}

fn table_to_json(table: &Table, path: &mut String, depth: usize) -> Result<Json, String> {
    let mut entries = Vec::new();
    for pair in table.clone().pairs::<Value, Value>() {
        entries.push(pair.map_err(|e| format!("{path}: {e}"))?);
    }
    let length = entries.len();
    let is_array = length > 0
        && entries.iter().all(|(key, _)| matches!(key, Value::Integer(i) if *i >= 1 && (*i as usize) <= length));
    let mark = path.len();
    if is_array {
        let mut items = vec![Json::Null; length];
        for (key, value) in &entries {
            let Value::Integer(index) = key else { continue };
            path.push_str(&format!("[{index}]"));
            items[(*index as usize) - 1] = convert(value, path, depth + 1)?;
            path.truncate(mark);
        }
        return Ok(Json::Array(items));
    }
    let mut object = Map::new();
    for (key, value) in &entries {
        let name = match key {
            Value::String(text) => {
                text.to_str().map(|text| text.to_owned()).map_err(|_| format!("a key that is not UTF-8 in {path}"))?
            }
            Value::Integer(number) => number.to_string(),
            Value::Number(number) => number.to_string(),
            Value::Boolean(flag) => flag.to_string(),
            other => return Err(format!("a {} key in {path} has no JSON form", other.type_name())),
        };
        if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            path.push('.');
            path.push_str(&name);
        } else {
            path.push_str(&format!("[{name:?}]"));
        }
        let converted = convert(value, path, depth + 1)?;
        path.truncate(mark);
        if object.insert(name.clone(), converted).is_some() {
            return Err(format!("two keys of {path} are both \"{name}\" in JSON"));
        }
    }
    Ok(Json::Object(object))
}
