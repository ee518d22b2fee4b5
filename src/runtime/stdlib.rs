//! The bundled stdlib: preloaded under module names, with chunk names equal to repository paths.

use std::path::{Path, PathBuf};

use mlua::{Lua, Result as LuaResult, Value};

mod index {
    include!(concat!(env!("OUT_DIR"), "/stdlib_index.rs"));
}

/// Where stdlib sources come from.
#[derive(Debug, Clone, Default)]
pub enum StdlibSource {
    /// Compiled into the binary.
    #[default]
    Bundled,
    /// Read from this directory at `require` time (`SLOTH_STDLIB_DIR`), for development.
    Directory(PathBuf),
}

/// Names of the bundled stdlib modules.
pub fn bundled_modules() -> impl Iterator<Item = &'static str> {
    index::STDLIB.iter().map(|(module, _, _)| *module)
}

/// Registers every stdlib module in `package.preload`.
pub fn preload(lua: &Lua, source: &StdlibSource) -> LuaResult<()> {
    match source {
        StdlibSource::Bundled => {
            let compiled = compiled();
            for (i, (module, path, code)) in index::STDLIB.iter().enumerate() {
                let bytecode = compiled.get(i).and_then(Option::as_deref);
                let loader = lua.create_function(move |lua, _: mlua::MultiValue| match bytecode {
                    Some(bytecode) => lua
                        .load(bytecode)
                        .set_name(format!("@{path}"))
                        .set_mode(mlua::chunk::ChunkMode::Binary)
                        .call::<Value>(()),
                    None => lua.load(*code).set_name(format!("@{path}")).call::<Value>(()),
                })?;
                lua.preload_module(module, loader)?;
            }
        }
        StdlibSource::Directory(dir) => {
            let mut files = Vec::new();
            collect(dir, dir, &mut files);
            for (module, path) in files {
                let loader = lua.create_function(move |lua, _: mlua::MultiValue| {
                    let code = std::fs::read_to_string(&path)
                        .map_err(|e| mlua::Error::runtime(format!("reading stdlib file {}: {e}", path.display())))?;
                    lua.load(code).set_name(format!("@{}", path.display())).call::<Value>(())
                })?;
                lua.preload_module(&module, loader)?;
            }
        }
    }
    Ok(())
}

/// The bundled stdlib compiled once per process (every VM an agent makes for a task would
/// otherwise parse it all again): each module's bytecode, with its chunk name and line
/// information, so tracebacks still read `stdlib/sloth/graph.lua:42`. A module that does not
/// compile is left to its source (its error then shows where it is required).
fn compiled() -> &'static [Option<Vec<u8>>] {
    static COMPILED: std::sync::OnceLock<Vec<Option<Vec<u8>>>> = std::sync::OnceLock::new();
    COMPILED.get_or_init(|| {
        let lua = Lua::new();
        index::STDLIB
            .iter()
            .map(|(_, path, code)| {
                lua.load(*code).set_name(format!("@{path}")).into_function().ok().map(|function| function.dump(false))
            })
            .collect()
    })
}

/// `(module name, path)` of every `.lua` file under `root`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|ext| ext == "lua") {
            let Ok(relative) = path.strip_prefix(root) else { continue };
            let module =
                relative.to_string_lossy().trim_end_matches(".lua").trim_end_matches("/init").replace('/', ".");
            files.push((module, path));
        }
    }
}
