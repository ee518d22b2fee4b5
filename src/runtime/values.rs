//! `-v values.yaml`: the pipeline's `values` global.

use std::path::{Path, PathBuf};

use mlua::{Lua, Result as LuaResult, Value};

#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    #[error("{path}: cannot read values file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid YAML: {source}")]
    Parse { path: PathBuf, source: serde_yaml_ng::Error },
    #[error("{path}: the values file must hold a mapping at the top level")]
    NotAMapping { path: PathBuf },
}

/// Reads a YAML values file; its top level must be a mapping.
pub fn read(path: &Path) -> Result<serde_json::Value, ValuesError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ValuesError::Read { path: path.to_path_buf(), source })?;
    let value: serde_json::Value =
        serde_yaml_ng::from_str(&text).map_err(|source| ValuesError::Parse { path: path.to_path_buf(), source })?;
    match value {
        serde_json::Value::Object(_) => Ok(value),
        serde_json::Value::Null => Ok(serde_json::Value::Object(Default::default())),
        _ => Err(ValuesError::NotAMapping { path: path.to_path_buf() }),
    }
}

/// Plain Lua tables: `null` is nil and arrays carry no special metatable.
pub fn to_lua(lua: &Lua, value: &serde_json::Value) -> LuaResult<Value> {
    crate::modules::lua_json::to_lua(lua, value)
}
