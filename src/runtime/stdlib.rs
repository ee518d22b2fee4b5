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

/// Whether a chunk name (`debug.getinfo(...).source`) is the engine's own code: C functions
/// (`=[C]`), the host's chunks (`=(sloth-runner...)`), a bundled stdlib module
/// (`@stdlib/sloth/....lua`), or a file of the stdlib directory in use (`SLOTH_STDLIB_DIR`) —
/// not a REPL line (`=repl`, `=stdin`) nor a pipeline's file.
pub fn is_engine_source(source: &str) -> bool {
    if source == "=[C]" || source.starts_with("=(sloth-runner") {
        return true;
    }
    let Some(path) = source.strip_prefix('@') else { return false };
    if index::STDLIB.iter().any(|(_, bundled, _, _)| *bundled == path) {
        return true;
    }
    std::env::var_os(super::STDLIB_DIR_ENV)
        .filter(|dir| !dir.is_empty())
        .is_some_and(|dir| Path::new(path).starts_with(Path::new(&dir)))
}

/// Names of the bundled stdlib modules.
pub fn bundled_modules() -> impl Iterator<Item = &'static str> {
    index::STDLIB.iter().map(|(module, _, _, _)| *module)
}

/// Registers every stdlib module in `package.preload`.
pub fn preload(lua: &Lua, source: &StdlibSource) -> LuaResult<()> {
    match source {
        StdlibSource::Bundled => {
            for (i, (module, path, code, built)) in index::STDLIB.iter().enumerate() {
                let loader = lua.create_function(move |lua, _: mlua::MultiValue| {
                    let name = format!("@{path}");
                    let binary = |bytecode: &[u8]| {
                        lua.load(bytecode)
                            .set_name(name.clone())
                            .set_mode(mlua::chunk::ChunkMode::Binary)
                            .into_function()
                    };
                    // Compiled at build time; a Lua that cannot load that bytecode (another
                    // version or word size) parses the source instead, once per process.
                    let slot = compiled(i);
                    let function = match binary(built) {
                        Ok(function) => function,
                        Err(_) => match slot.get() {
                            Some(bytecode) => binary(bytecode)?,
                            None => {
                                let function = lua.load(*code).set_name(name).into_function()?;
                                let _ = slot.set(function.dump(false));
                                function
                            }
                        },
                    };
                    function.call::<Value>(())
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

/// Where module `i` of the bundled stdlib is kept compiled, once per process: the first VM
/// that requires it parses it and leaves its bytecode here (with its chunk name and line
/// information, so tracebacks still read `stdlib/sloth/graph.lua:42`); every later VM — an
/// agent makes one per task — loads that instead of parsing again.
fn compiled(i: usize) -> &'static std::sync::OnceLock<Vec<u8>> {
    use std::sync::OnceLock;
    static COMPILED: OnceLock<Vec<OnceLock<Vec<u8>>>> = OnceLock::new();
    &COMPILED.get_or_init(|| index::STDLIB.iter().map(|_| OnceLock::new()).collect())[i]
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
