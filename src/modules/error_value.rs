//! The errors native functions raise — and `exec.run` returns — as values scripts can decide
//! on: a table `{ kind, message, call?, agent?, address?, path?, cause?, … }` whose metatable
//! (`__name` "sloth.Error") prints it as `call: message`, the text the function's error always
//! had. The engine reads `kind` and `cause`, never the message's words.
//!
//! mlua raises a Rust error as its own userdata, which has no fields; so a function that fails
//! with one of these returns `false, err` to a small Lua wrapper ([`raising`]) that raises
//! `err` itself. Errors in how a function is called (an unknown option, a wrong type) stay
//! plain Lua errors.

use std::future::Future;

use mlua::{FromLuaMulti, Function, IntoLua, Lua, MultiValue, Result as LuaResult, Table, Value};

use crate::error_kind::ErrorKind;

const META_KEY: &str = "sloth.error.meta";
const RAISING_KEY: &str = "sloth.error.raising";

/// An error on its way to Lua.
#[derive(Debug)]
pub struct ErrorValue {
    kind: ErrorKind,
    message: String,
    call: Option<&'static str>,
    fields: Vec<(&'static str, Field)>,
}

/// A field an error may carry beside its kind and message.
#[derive(Debug)]
enum Field {
    Text(String),
    Integer(i64),
    Flag(bool),
}

impl ErrorValue {
    /// An error of `kind` that says `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorValue { kind, message: message.into(), call: None, fields: Vec::new() }
    }

    /// Raised by `call` (as scripts call it, `agent.connect`): it prints as `call: message`.
    pub fn raised_by(mut self, call: &'static str) -> Self {
        self.call = Some(call);
        self
    }

    /// With a text field (`address`, `path`, …); nothing when `value` is None.
    pub fn with(mut self, name: &'static str, value: Option<impl Into<String>>) -> Self {
        if let Some(value) = value {
            self.fields.push((name, Field::Text(value.into())));
        }
        self
    }

    /// With an integer field (an exit code, a signal); nothing when `value` is None.
    pub fn with_integer(mut self, name: &'static str, value: Option<i64>) -> Self {
        if let Some(value) = value {
            self.fields.push((name, Field::Integer(value)));
        }
        self
    }

    pub fn with_flag(mut self, name: &'static str, value: bool) -> Self {
        self.fields.push((name, Field::Flag(value)));
        self
    }

    /// The error as a workspace error says it, with the path or entry it names.
    pub fn of_workspace(call: &'static str, error: &crate::workspace::WorkspaceError) -> Self {
        ErrorValue::new(ErrorKind::of_workspace(error), error.to_string())
            .raised_by(call)
            .with("path", crate::error_kind::workspace_path(error))
    }

    /// The error of a call to `agent` (a file of this side's that failed it included, whose
    /// own text names no agent: it gets the agent's description in front).
    pub fn of_call(
        call: &'static str,
        error: &crate::rpc::client::ClientError,
        agent: &crate::rpc::client::AgentName,
    ) -> Self {
        if error.agent().is_some() {
            return Self::of_client(call, error);
        }
        let mut value =
            Self::of_client(call, error).with("address", Some(agent.address.clone())).with("agent", agent.name.clone());
        value.message = format!("{agent}: {}", value.message);
        value
    }

    /// The error as a call to an agent says it, naming the agent, with what it came down to.
    pub fn of_client(call: &'static str, error: &crate::rpc::client::ClientError) -> Self {
        let agent = error.agent();
        ErrorValue::new(error.kind(), error.to_string())
            .raised_by(call)
            .with("address", agent.map(|agent| agent.address.clone()))
            .with("agent", agent.and_then(|agent| agent.name.clone()))
            .with("cause", error.cause().map(crate::rpc::client::Cause::as_str))
            .with("path", error.path())
    }

    /// The Lua value: a table with the shared metatable.
    pub fn into_table(self, lua: &Lua) -> LuaResult<Table> {
        let table = lua.create_table()?;
        table.set("kind", self.kind.as_str())?;
        table.set("message", self.message)?;
        table.set("call", self.call)?;
        for (name, field) in self.fields {
            match field {
                Field::Text(text) => table.set(name, text)?,
                Field::Integer(number) => table.set(name, number)?,
                Field::Flag(flag) => table.set(name, flag)?,
            }
        }
        table.set_metatable(Some(meta(lua)?))?;
        Ok(table)
    }
}

impl IntoLua for ErrorValue {
    fn into_lua(self, lua: &Lua) -> LuaResult<Value> {
        self.into_table(lua).map(Value::Table)
    }
}

/// The metatable every error value shares (one per VM): named "sloth.Error", printing as
/// `call: message` (`message` alone without a call).
fn meta(lua: &Lua) -> LuaResult<Table> {
    if let Ok(meta) = lua.named_registry_value::<Table>(META_KEY) {
        return Ok(meta);
    }
    let meta = lua.create_table()?;
    meta.set("__name", "sloth.Error")?;
    meta.set(
        "__tostring",
        lua.create_function(|_, error: Table| {
            let message: String = error.raw_get("message")?;
            Ok(match error.raw_get::<Option<String>>("call")? {
                Some(call) => format!("{call}: {message}"),
                None => message,
            })
        })?,
    )?;
    // Scripts written when errors were strings (and for the Go tool, where they are) use them
    // as strings: `"failed: " .. err`, `err:match(…)`, `#err`. They keep working, on the text.
    let text_like: Table = lua.load(TEXT_LIKE).set_name("=[native]").eval()?;
    for name in ["__concat", "__len", "__index"] {
        meta.set(name, text_like.get::<Value>(name)?)?;
    }
    lua.set_named_registry_value(META_KEY, &meta)?;
    Ok(meta)
}

/// An error value used as its text: concatenated, measured, or with a string method called
/// on it (a field it lacks is nil, as for any table).
const TEXT_LIKE: &str = r#"
local text_methods = {}
for name, method in pairs(string) do
  text_methods[name] = function(self, ...)
    return method(tostring(self), ...)
  end
end
return {
  __concat = function(a, b)
    return tostring(a) .. tostring(b)
  end,
  __len = function(self)
    return #tostring(self)
  end,
  __index = text_methods,
}
"#;

/// An async native function whose failures of its own are error values: `func` answers
/// `Ok(Err(error))` to raise `error` (and `Err` for a plain Lua error, such as a bad option).
pub fn async_raising<A, R, F, FR>(lua: &Lua, func: F) -> LuaResult<Function>
where
    A: FromLuaMulti + 'static,
    R: IntoLua + 'static,
    F: Fn(Lua, A) -> FR + 'static,
    FR: Future<Output = LuaResult<Result<R, ErrorValue>>> + 'static,
{
    let native = lua.create_async_function(move |lua, args: A| {
        let done = func(lua.clone(), args);
        async move {
            let mut results = MultiValue::new();
            match done.await? {
                Ok(value) => {
                    results.push_back(Value::Boolean(true));
                    results.push_back(value.into_lua(&lua)?);
                }
                Err(error) => {
                    results.push_back(Value::Boolean(false));
                    results.push_back(Value::Table(error.into_table(&lua)?));
                }
            }
            Ok(results)
        }
    })?;
    raising(lua, native)
}

/// Wraps `native`, which answers `true, value` or `false, err`, in a Lua function that
/// returns `value` or raises `err`.
fn raising(lua: &Lua, native: Function) -> LuaResult<Function> {
    let make: Function = match lua.named_registry_value(RAISING_KEY) {
        Ok(make) => make,
        Err(_) => {
            let make: Function = lua.load(RAISING).set_name("=[native]").eval()?;
            lua.set_named_registry_value(RAISING_KEY, &make)?;
            make
        }
    };
    make.call(native)
}

/// The wrapper's source: `error` with a table ignores its level, so the value arrives as it is.
const RAISING: &str = r#"
return function(native)
  local function settle(ok, value)
    if ok then
      return value
    end
    error(value, 0)
  end
  return function(...)
    return settle(native(...))
  end
end
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_error_is_a_value_with_fields_that_prints_as_before() {
        let lua = Lua::new();
        let failing = async_raising(&lua, |_, (): ()| async {
            Ok::<_, mlua::Error>(Err::<bool, _>(
                ErrorValue::new(ErrorKind::Unreachable, "cannot reach the agent at 127.0.0.1:1: refused")
                    .raised_by("agent.connect")
                    .with("address", Some("127.0.0.1:1")),
            ))
        })
        .expect("function");
        let succeeding =
            async_raising(&lua, |_, (n,): (i64,)| async move { Ok(Ok::<_, ErrorValue>(n + 1)) }).expect("function");
        lua.globals().set("failing", failing).expect("set");
        lua.globals().set("succeeding", succeeding).expect("set");
        let checked = run_to_end(
            &lua,
            r#"
            assert(succeeding(41) == 42)
            local ok, err = pcall(failing)
            assert(not ok and type(err) == "table", type(err))
            assert(err.kind == "unreachable" and err.address == "127.0.0.1:1" and err.path == nil)
            assert(getmetatable(err).__name == "sloth.Error")
            -- Used as the text it prints as, the way scripts used string errors.
            assert("failed: " .. err == "failed: " .. tostring(err) and err .. "!" == tostring(err) .. "!")
            assert(err:match("127%.0%.0%.1:(%d+)") == "1" and err:find("refused", 1, true) and #err == #tostring(err))
            assert(err.cause == nil, "a field it lacks is nil")
            return tostring(err)
            "#,
        );
        assert_eq!(checked, "agent.connect: cannot reach the agent at 127.0.0.1:1: refused");
    }

    /// Runs `source` (which calls async functions) to its end on a current-thread runtime.
    fn run_to_end(lua: &Lua, source: &str) -> String {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        tokio.block_on(lua.load(source).eval_async::<String>()).expect("the chunk runs")
    }
}
