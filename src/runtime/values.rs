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

/// Reads a YAML values file; its top level must be a mapping. `{{ .Env.NAME }}` in it is the
/// environment variable NAME (empty when unset), as the Go sloth-runner's values files write it.
pub fn read(path: &Path) -> Result<serde_json::Value, ValuesError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ValuesError::Read { path: path.to_path_buf(), source })?;
    let text = with_environment(&text, |name| std::env::var(name).ok());
    let value: serde_json::Value =
        serde_yaml_ng::from_str(&text).map_err(|source| ValuesError::Parse { path: path.to_path_buf(), source })?;
    match value {
        serde_json::Value::Object(_) => Ok(value),
        serde_json::Value::Null => Ok(serde_json::Value::Object(Default::default())),
        _ => Err(ValuesError::NotAMapping { path: path.to_path_buf() }),
    }
}

/// `text` with every `{{ .Env.NAME }}` (spaces inside the braces optional) replaced by
/// `lookup(NAME)`, or nothing when that is None. The text goes in as it is (as the Go tool's
/// template did); any other `{{ … }}` is left alone: YAML values may hold braces of their own.
fn with_environment(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            rest = &rest[open..];
            break;
        };
        let name = after[..close].trim().strip_prefix(".Env.").filter(|name| {
            let mut chars = name.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match name {
            Some(name) => out.push_str(&lookup(name).unwrap_or_default()),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// Plain Lua tables: `null` is nil and arrays carry no special metatable.
pub fn to_lua(lua: &Lua, value: &serde_json::Value) -> LuaResult<Value> {
    crate::modules::lua_json::to_lua(lua, value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_environment_is_put_in_and_other_braces_are_left_alone() {
        let lookup = |name: &str| (name == "REGION").then(|| "eu-west-1".to_owned());
        let text = "region: {{ .Env.REGION }}\nzone: \"{{.Env.REGION}}a\"\nmissing: '{{ .Env.NOPE }}'\n\
                    helm: '{{ .Values.x }}'\nodd: '{{ .Env.1X }}'\nopen: '{{ .Env.REGION'\n";
        assert_eq!(
            super::with_environment(text, lookup),
            "region: eu-west-1\nzone: \"eu-west-1a\"\nmissing: ''\nhelm: '{{ .Values.x }}'\n\
             odd: '{{ .Env.1X }}'\nopen: '{{ .Env.REGION'\n"
        );
    }
}
