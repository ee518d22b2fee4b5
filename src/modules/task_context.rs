//! The context of the task whose coroutine is running: its display prefix, workdir and env.
//!
//! The engine (stdlib) records a context table per task coroutine in a weak-keyed registry
//! table; native functions read it here so that `log` lines carry `<group>/<task>` and `exec.run`
//! resolves relative paths against the task's workdir, without the user passing anything.
//! This is shared plumbing for the native modules, not a module of its own.

use std::path::{Path, PathBuf};

use mlua::{Lua, Result as LuaResult, Table};

/// Registry key of the weak-keyed `thread -> context table` map.
pub const CONTEXTS_KEY: &str = "sloth.contexts";

/// What a native function needs to know about the task it runs for.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    /// `<group>/<task>` (or `<agent>/<task>` on an agent); none outside a task.
    pub prefix: Option<String>,
    /// The task's workdir; none outside a task.
    pub workdir: Option<PathBuf>,
    /// The task's extra environment variables (`env` field), sorted by name.
    pub env: Vec<(String, String)>,
    /// On an agent, while it reads the pipeline for a task: where the master's paths are here.
    pub reading: Option<Reading>,
}

/// An agent reading a pipeline again for a task: the master's working directory (`cwd`), its
/// workspace there (`workspace`), and the task's copy of that workspace here (`root`). A path
/// the pipeline names as it is read is the master's (relative ones against its `cwd`), found
/// in the copy when it lies in the workspace: what the master read, the agent reads.
#[derive(Debug, Clone)]
pub struct Reading {
    pub cwd: PathBuf,
    pub workspace: PathBuf,
    pub root: PathBuf,
}

impl Reading {
    /// Where the master's `path` is here.
    pub fn here(&self, path: &Path) -> PathBuf {
        let absolute = lexically_normal(&self.cwd.join(path));
        match absolute.strip_prefix(lexically_normal(&self.workspace)) {
            Ok(inside) if inside.as_os_str().is_empty() => self.root.clone(),
            Ok(inside) => self.root.join(inside),
            Err(_) => absolute,
        }
    }
}

/// `path` with `.` and `..` taken out as written (a `..` of the root is the root).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl TaskContext {
    /// Resolves `path` against the task's workdir (or the process's cwd outside a task).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if let Some(reading) = &self.reading {
            return reading.here(path);
        }
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match &self.workdir {
            Some(dir) => dir.join(path),
            None => std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_path_buf()),
        }
    }

    /// The directory relative paths start from.
    pub fn base_dir(&self) -> PathBuf {
        match &self.workdir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }
}

/// The weak-keyed map, created on first use.
pub fn contexts(lua: &Lua) -> LuaResult<Table> {
    if let Ok(table) = lua.named_registry_value::<Table>(CONTEXTS_KEY) {
        return Ok(table);
    }
    let table = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set("__mode", "k")?;
    table.set_metatable(Some(meta))?;
    lua.set_named_registry_value(CONTEXTS_KEY, &table)?;
    Ok(table)
}

/// The context of the running coroutine; empty outside a task.
pub fn current(lua: &Lua) -> TaskContext {
    let lookup = || -> LuaResult<TaskContext> {
        let Some(context) = contexts(lua)?.get::<Option<Table>>(lua.current_thread())? else {
            return Ok(TaskContext::default());
        };
        let mut env = Vec::new();
        if let Some(vars) = context.get::<Option<Table>>("env")? {
            for pair in vars.pairs::<String, String>() {
                env.push(pair?);
            }
        }
        env.sort();
        let reading = match context.get::<Option<Table>>("reading")? {
            Some(reading) => {
                let path = |name: &str| -> LuaResult<PathBuf> { Ok(reading.get::<super::lua_args::LuaPath>(name)?.0) };
                Some(Reading { cwd: path("cwd")?, workspace: path("workspace")?, root: path("root")? })
            }
            None => None,
        };
        Ok(TaskContext {
            prefix: context.get("prefix")?,
            workdir: context.get::<Option<super::lua_args::LuaPath>>("workdir")?.map(|path| path.0),
            env,
            reading,
        })
    };
    lookup().unwrap_or_default()
}
