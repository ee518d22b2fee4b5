//! Files Lua opens (`io.open`, `io.output`) are C `FILE`s whose descriptors every process
//! started later inherits: Lua's `fopen` does not ask for close-on-exec, where everything Rust
//! opens does. A script a task writes while another task starts a command is then held open
//! for writing by that command for its whole life, and running the script fails with "Text
//! file busy" (and a pipe a task holds open never sees its end). The stdlib marks each file Lua
//! opens close-on-exec as soon as it is open.

use mlua::{Lua, Result as LuaResult, Value};

/// The layout of Lua's file handle (`luaL_Stream` in `lauxlib.h`): the `FILE`, and the
/// function that closes it (NULL once it is closed).
#[repr(C)]
struct LuaStream {
    file: *mut nix::libc::FILE,
    close: Option<unsafe extern "C-unwind" fn()>,
}

/// `core.close_on_exec(file)`: a function that marks an open Lua file's descriptor
/// close-on-exec; anything else (a closed file, another value) is left alone. It returns
/// whether it marked one.
///
/// Made as the VM starts: it keeps Lua's own `getmetatable`, which no pipeline has replaced
/// yet — what a replaced one said could make any userdata pass for a file.
pub fn close_on_exec(lua: &Lua) -> LuaResult<mlua::Function> {
    let getmetatable: mlua::Function = lua.globals().raw_get("getmetatable")?;
    lua.create_function(move |lua, value: Value| mark(lua, &getmetatable, value))
}

fn mark(lua: &Lua, getmetatable: &mlua::Function, value: Value) -> LuaResult<bool> {
    let Value::UserData(file) = value else { return Ok(false) };
    // Only a handle of Lua's io library: its metatable is the registry's "FILE*".
    let handles: mlua::Table = lua.named_registry_value("FILE*")?;
    let Value::Table(metatable) = getmetatable.call::<Value>(&file)? else { return Ok(false) };
    if metatable.to_pointer() != handles.to_pointer() {
        return Ok(false);
    }
    #[allow(unsafe_code)]
    // SAFETY: a userdata whose metatable is the io library's "FILE*" is a `luaL_Stream` the
    // library made; its FILE is valid while `close` is set (an open file), and this runs on
    // the VM's thread, where nothing closes it meanwhile.
    let fd = unsafe {
        let stream = &*(file.to_pointer() as *const LuaStream);
        if stream.close.is_none() || stream.file.is_null() {
            return Ok(false);
        }
        nix::libc::fileno(stream.file)
    };
    if fd < 0 {
        return Ok(false);
    }
    #[allow(unsafe_code)]
    // SAFETY: a descriptor of this process, flags only.
    let marked = unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, nix::libc::FD_CLOEXEC) } == 0;
    Ok(marked)
}
