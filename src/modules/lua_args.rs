//! Reading native functions' arguments that several modules share.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use mlua::{FromLua, Lua, Result as LuaResult, Value};

/// A path argument: any Lua string, its bytes taken as they are (a name need not be UTF-8).
#[derive(Debug, Clone)]
pub struct LuaPath(pub PathBuf);

impl FromLua for LuaPath {
    fn from_lua(value: Value, _: &Lua) -> LuaResult<Self> {
        match value {
            Value::String(text) => Ok(LuaPath(PathBuf::from(OsStr::from_bytes(&text.as_bytes())))),
            other => Err(mlua::Error::FromLuaConversionError {
                from: other.type_name(),
                to: "path".to_owned(),
                message: Some("expected a string".to_owned()),
            }),
        }
    }
}

/// A duration option: seconds as a number, or a string such as "100ms", "10s", "1m". The
/// error names the function and the option.
pub fn duration(value: &Value, function: &str, option: &str) -> LuaResult<Duration> {
    let invalid =
        |reason: String| mlua::Error::runtime(format!("{function}: invalid value for option '{option}' - {reason}"));
    match value {
        Value::Integer(seconds) if *seconds >= 0 => Ok(Duration::from_secs(*seconds as u64)),
        Value::Integer(_) => Err(invalid("expected a non-negative number".to_owned())),
        Value::Number(seconds) => {
            Duration::try_from_secs_f64(*seconds).map_err(|_| invalid("expected a non-negative number".to_owned()))
        }
        Value::String(text) => crate::duration::parse(&text.to_str()?).map_err(|e| invalid(e.to_string())),
        other => Err(invalid(format!("expected seconds or a duration such as '10s', got {}", other.type_name()))),
    }
}

/// Refuses a key of `table` (an options table, a request) that `function` does not read:
/// a misspelt option is an error naming it, not an option silently left out
/// (`agent.connect(address, { tokn = ... })` would connect without a token). `what` says
/// which table ("option", "request field", "tls field").
pub fn known_keys(table: &mlua::Table, function: &str, what: &str, known: &[&str]) -> LuaResult<()> {
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let name = match &key {
            Value::String(text) => text.to_string_lossy(),
            other => format!("{other:?}"),
        };
        if !known.contains(&name.as_str()) {
            let closest = known
                .iter()
                .map(|candidate| (strsim::damerau_levenshtein(&name, candidate), *candidate))
                .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
                .min();
            let hint = closest.map(|(_, candidate)| format!(" (did you mean '{candidate}'?)")).unwrap_or_default();
            return Err(mlua::Error::runtime(format!(
                "{function}: unknown {what} '{name}'{hint}; known: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}
