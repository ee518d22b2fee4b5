//! `fs`: files for pipelines; the work is in [`crate::files`]. As in the Go tool this API comes
//! from, readers return `value, err` and writers a single `err`, nil on success; an err names
//! the function and the path (`fs.read: /w/x.txt: No such file or directory`). A wrong
//! argument — a table for a path, an unknown option — raises instead: that is a bug in the
//! script, not a state of the disk. Relative paths resolve against the running task's workdir.
//!
//! The functions are synchronous: each is a few system calls (a large `copy` or `rm_r` holds
//! the VM's other tasks until it ends), where the Lua helpers they replace started a process.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use mlua::{IntoLuaMulti, Lua, MultiValue, Result as LuaResult, Table, Value};

use super::error_value::ErrorValue;
use super::task_context;
use crate::error_kind::ErrorKind;
use crate::files::{self, FileError};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    table.set(
        "read",
        lua.create_function(|lua, path: Value| {
            let path = path_arg(lua, &path, "fs.read", "'path'")?;
            answer(lua, "fs.read", files::read(&path), |bytes| Ok(Value::String(lua.create_string(bytes)?)))
        })?,
    )?;
    table.set(
        "write",
        lua.create_function(|lua, (path, content): (Value, Value)| {
            let path = path_arg(lua, &path, "fs.write", "'path'")?;
            Ok(done("fs.write", files::write(&path, &content_arg(lua, &content, "fs.write")?)))
        })?,
    )?;
    table.set(
        "append",
        lua.create_function(|lua, (path, content): (Value, Value)| {
            let path = path_arg(lua, &path, "fs.append", "'path'")?;
            Ok(done("fs.append", files::append(&path, &content_arg(lua, &content, "fs.append")?)))
        })?,
    )?;
    table.set(
        "exists",
        lua.create_function(|lua, path: Value| Ok(files::exists(&path_arg(lua, &path, "fs.exists", "'path'")?)))?,
    )?;
    table.set(
        "stat",
        lua.create_function(|lua, path: Value| {
            let path = path_arg(lua, &path, "fs.stat", "'path'")?;
            answer(lua, "fs.stat", files::stat(&path), |stat| stat_table(lua, &stat))
        })?,
    )?;
    table.set(
        "ls",
        lua.create_function(|lua, path: Value| {
            let path = match path {
                Value::Nil => task_context::current(lua).base_dir(),
                path => path_arg(lua, &path, "fs.ls", "'path'")?,
            };
            answer(lua, "fs.ls", files::list(&path), |names| sequence(lua, &names))
        })?,
    )?;
    table.set("glob", lua.create_function(glob)?)?;
    table.set(
        "mkdir",
        lua.create_function(|lua, path: Value| {
            Ok(done("fs.mkdir", files::make_dir(&path_arg(lua, &path, "fs.mkdir", "'path'")?)))
        })?,
    )?;
    table.set(
        "rm",
        lua.create_function(|lua, path: Value| {
            Ok(done("fs.rm", files::remove(&path_arg(lua, &path, "fs.rm", "'path'")?)))
        })?,
    )?;
    table.set(
        "rm_r",
        lua.create_function(|lua, path: Value| {
            Ok(done("fs.rm_r", files::remove_tree(&path_arg(lua, &path, "fs.rm_r", "'path'")?)))
        })?,
    )?;
    table.set(
        "copy",
        lua.create_function(|lua, (src, dst): (Value, Value)| {
            let src = path_arg(lua, &src, "fs.copy", "'src'")?;
            let dst = path_arg(lua, &dst, "fs.copy", "'dst'")?;
            Ok(done("fs.copy", files::copy(&src, &dst)))
        })?,
    )?;
    table.set(
        "tmpdir",
        lua.create_function(|lua, ()| answer(lua, "fs.tmpdir", files::temp_dir(), |dir| bytes(lua, &dir)))?,
    )?;
    table.set("tmpname", lua.create_function(|lua, ()| bytes(lua, files::temp_name()))?)?;
    Ok(table)
}

/// `fs.glob(pattern[, { root }])`: paths under `root` (default: the task's workdir) matching
/// `pattern`, relative to it.
fn glob(lua: &Lua, (pattern, options): (Value, Value)) -> LuaResult<MultiValue> {
    let Value::String(pattern) = pattern else {
        return Err(expected("fs.glob", "string", "'pattern'", &pattern));
    };
    let root = match options {
        Value::Nil => None,
        Value::Table(options) => {
            super::lua_args::known_keys(&options, "fs.glob", "option", &["root"])?;
            match options.get::<Value>("root")? {
                Value::Nil => None,
                root => Some(path_arg(lua, &root, "fs.glob", "option 'root'")?),
            }
        }
        other => return Err(expected("fs.glob", "table", "'opts'", &other)),
    };
    let root = root.unwrap_or_else(|| task_context::current(lua).base_dir());
    let found = match pattern.to_str() {
        Ok(pattern) => files::glob(&root, &pattern),
        Err(_) => Err(FileError::Pattern {
            pattern: pattern.to_string_lossy(),
            reason: "not UTF-8 (write the names' bytes as '?' or '*')".to_owned(),
        }),
    };
    answer(lua, "fs.glob", found, |paths| sequence(lua, &paths))
}

/// `value` or `nil, err`.
fn answer<T>(
    lua: &Lua,
    function: &'static str,
    result: Result<T, FileError>,
    convert: impl FnOnce(T) -> LuaResult<Value>,
) -> LuaResult<MultiValue> {
    match result {
        Ok(value) => convert(value)?.into_lua_multi(lua),
        Err(error) => (Value::Nil, failure(function, &error)).into_lua_multi(lua),
    }
}

/// A writer's answer: nil, or err.
fn done(function: &'static str, result: Result<(), FileError>) -> Option<ErrorValue> {
    result.err().map(|error| failure(function, &error))
}

/// The error as a value with a kind (`io`, `no_space`, `invalid`) and the path it names,
/// printing as `fs.<function>: <error>`.
fn failure(function: &'static str, error: &FileError) -> ErrorValue {
    let (kind, path) = match error {
        FileError::Io { path, source } if crate::error_kind::is_no_space_io(source) => (ErrorKind::NoSpace, Some(path)),
        FileError::Io { path, .. } | FileError::Refused { path, .. } => (ErrorKind::Io, Some(path)),
        FileError::Pattern { .. } => (ErrorKind::Invalid, None),
    };
    ErrorValue::new(kind, error.to_string())
        .raised_by(function)
        .with("path", path.map(|path| path.to_string_lossy().into_owned()))
}

/// "fs.<function>: expected string for 'path', got nil", with the type as Lua's `type` says it.
fn expected(function: &str, kind: &str, name: &str, got: &Value) -> mlua::Error {
    let got = match got {
        Value::Integer(_) | Value::Number(_) => "number",
        other => other.type_name(),
    };
    mlua::Error::runtime(format!("{function}: expected {kind} for {name}, got {got}"))
}

/// A path argument (any bytes) resolved against the running task's workdir, trailing slashes
/// dropped. Anything but a non-empty string raises: an empty path would resolve to the
/// workdir itself, which `fs.rm_r("")` must not remove.
fn path_arg(lua: &Lua, value: &Value, function: &str, name: &str) -> LuaResult<PathBuf> {
    let Value::String(text) = value else {
        return Err(expected(function, "string", name, value));
    };
    let raw = text.as_bytes();
    if raw.is_empty() {
        return Err(mlua::Error::runtime(format!("{function}: {name} is an empty path")));
    }
    let path = task_context::current(lua).resolve(Path::new(OsStr::from_bytes(&raw)));
    Ok(files::without_trailing_slashes(&path))
}

/// Content to write: a string as its bytes (binary safe), a number as Lua writes it.
fn content_arg(lua: &Lua, value: &Value, function: &str) -> LuaResult<Vec<u8>> {
    match value {
        Value::String(text) => Ok(text.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(value.clone())? {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => Err(expected(function, "string", "'content'", value)),
        },
        other => Err(expected(function, "string", "'content'", other)),
    }
}

/// A name or path as a Lua string of its bytes (a name need not be UTF-8).
fn bytes(lua: &Lua, path: impl AsRef<OsStr>) -> LuaResult<Value> {
    Ok(Value::String(lua.create_string(path.as_ref().as_bytes())?))
}

/// An array of names or paths, as [`bytes`].
fn sequence(lua: &Lua, items: &[impl AsRef<OsStr>]) -> LuaResult<Value> {
    let values = items.iter().map(|item| bytes(lua, item)).collect::<LuaResult<Vec<_>>>()?;
    Ok(Value::Table(lua.create_sequence_from(values)?))
}

fn stat_table(lua: &Lua, stat: &files::Stat) -> LuaResult<Value> {
    let table = lua.create_table()?;
    table.set("type", stat.kind.name())?;
    table.set("size", stat.size)?;
    table.set("mode", stat.mode)?;
    table.set("mtime", stat.mtime)?;
    if let Some(target) = &stat.target {
        table.set("target", bytes(lua, target)?)?;
    }
    Ok(Value::Table(table))
}
