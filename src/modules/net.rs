//! `net`: HTTP for pipelines, as the Go tool had it; the work is in [`crate::http_client`].
//!
//! - `net.http_get(url[, opts]) -> body, status, headers, err`
//! - `net.http_post(url, body[, headers_or_opts]) -> body, status, headers, err`
//! - `net.download(url, dest[, opts]) -> err`
//!
//! As in the Go tool, any answer is an answer: a 404 comes back as its body and status with
//! `err` nil; `err` is for calls that got no answer (then `nil, 0, nil, err`). A download is
//! only worth its file: a status other than 2xx is an error (`kind` "failed", with `status`).
//! `headers` maps each lowercase name to the list of its values. Errors are values with a
//! `kind` ("invalid", "unreachable", "timeout", "lost", "failed", "io", "no_space") and the
//! `url`, printing as `net.<function>: <url>: <what happened>`; a wrong argument (a table for
//! the URL, an unknown option) raises instead: that is a bug in the script.
//!
//! The request runs on a thread of its own while the task's coroutine waits, so other tasks go
//! on; a task stopped meanwhile (its timeout, a failure elsewhere) stops waiting at once, and
//! the request stops at its next chunk. The client (connection pool, system roots) is built
//! by a VM's first call, not before.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mlua::{Lua, MultiValue, Result as LuaResult, Table, Value};

use super::error_value::ErrorValue;
use super::{lua_args, task_context};
use crate::http_client::{Client, HttpError, Method, Request, Response};

/// The VM's client, built by the first call that needs it (on the request's thread).
#[derive(Debug, Clone, Default)]
struct LazyClient(Arc<OnceLock<Client>>);

const OPTIONS: &[&str] = &["headers", "timeout"];

pub fn module(lua: &Lua) -> LuaResult<Table> {
    lua.set_app_data(LazyClient::default());
    let table = lua.create_table()?;
    table.set(
        "http_get",
        lua.create_async_function(|lua, (url, options): (Value, Value)| {
            let request = (|| {
                let url = url_arg(&url, "net.http_get")?;
                let options = read_options(&options, "net.http_get")?;
                Ok::<_, mlua::Error>(options.request(Method::Get, url, Vec::new()))
            })();
            let client = lazy_client(&lua);
            async move { answer(&lua, "net.http_get", fetch(client, request?).await?) }
        })?,
    )?;
    table.set(
        "http_post",
        lua.create_async_function(|lua, (url, body, extra): (Value, Value, Value)| {
            let request = (|| {
                let url = url_arg(&url, "net.http_post")?;
                let body = body_arg(&lua, &body)?;
                let options = post_options(&extra)?;
                Ok::<_, mlua::Error>(options.request(Method::Post, url, body))
            })();
            let client = lazy_client(&lua);
            async move { answer(&lua, "net.http_post", fetch(client, request?).await?) }
        })?,
    )?;
    table.set(
        "download",
        lua.create_async_function(|lua, (url, dest, options): (Value, Value, Value)| {
            // The task's workdir is read now, while its coroutine is the running one.
            let prepared = (|| {
                let url = url_arg(&url, "net.download")?;
                let dest = dest_arg(&lua, &dest)?;
                let options = read_options(&options, "net.download")?;
                Ok::<_, mlua::Error>((options.request(Method::Get, url, Vec::new()), dest))
            })();
            let client = lazy_client(&lua);
            async move {
                let (request, dest) = prepared?;
                let done = off_thread(move |cancel| client.get().download(&request, &dest, cancel)).await?;
                Ok(done.err().map(|error| failure("net.download", &error)))
            }
        })?,
    )?;
    Ok(table)
}

fn lazy_client(lua: &Lua) -> LazyClient {
    lua.app_data_ref::<LazyClient>().map(|client| client.clone()).unwrap_or_default()
}

impl LazyClient {
    fn get(&self) -> &Client {
        self.0.get_or_init(Client::new)
    }
}

async fn fetch(client: LazyClient, request: Request) -> LuaResult<Result<Response, HttpError>> {
    off_thread(move |cancel| client.get().fetch(&request, cancel)).await
}

/// Runs `work` on a thread of its own and waits for it without holding the VM. If the waiting
/// is dropped (the task was stopped), `work`'s cancel flag is set.
///
/// A plain thread rather than tokio's blocking pool: a runtime waits for its blocking tasks
/// when it shuts down, and a stopped request may still be connecting for a while.
async fn off_thread<T: Send + 'static>(work: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> LuaResult<T> {
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("net".to_owned())
        .spawn(move || {
            let _ = sender.send(work(&flag));
        })
        .map_err(|error| mlua::Error::runtime(format!("net: cannot start the request's thread: {error}")))?;
    let _cancel = CancelOnDrop(cancel);
    receiver.await.map_err(|_| mlua::Error::runtime("net: the request's thread ended without an answer"))
}

/// `body, status, headers, nil`, or `nil, 0, nil, err`.
fn answer(lua: &Lua, function: &'static str, done: Result<Response, HttpError>) -> LuaResult<MultiValue> {
    let values = match done {
        Ok(response) => {
            let headers = lua.create_table_with_capacity(0, response.headers.len())?;
            for (name, values) in &response.headers {
                let list = values.iter().map(|value| lua.create_string(value)).collect::<LuaResult<Vec<_>>>()?;
                headers.raw_set(name.as_str(), lua.create_sequence_from(list)?)?;
            }
            vec![
                Value::String(lua.create_string(&response.body)?),
                Value::Integer(i64::from(response.status)),
                Value::Table(headers),
                Value::Nil,
            ]
        }
        Err(error) => {
            vec![Value::Nil, Value::Integer(0), Value::Nil, Value::Table(failure(function, &error).into_table(lua)?)]
        }
    };
    Ok(MultiValue::from_vec(values))
}

/// The error as a value: its kind, the URL, and the status or file it names.
fn failure(function: &'static str, error: &HttpError) -> ErrorValue {
    ErrorValue::new(error.kind(), error.to_string())
        .raised_by(function)
        .with("url", Some(error.url()))
        .with_integer("status", error.status().map(i64::from))
        .with("path", error.path().map(|path| path.to_string_lossy().into_owned()))
}

/// A call's options: `headers` and `timeout`.
#[derive(Debug, Default)]
struct Options {
    headers: Vec<(String, Vec<u8>)>,
    timeout: Option<Duration>,
}

impl Options {
    fn request(self, method: Method, url: String, body: Vec<u8>) -> Request {
        Request { method, url, headers: self.headers, body, timeout: self.timeout }
    }
}

fn read_options(value: &Value, function: &str) -> LuaResult<Options> {
    let table = match value {
        Value::Nil => return Ok(Options::default()),
        Value::Table(table) => table,
        other => return Err(expected(function, "table", "'opts'", other)),
    };
    lua_args::known_keys(table, function, "option", OPTIONS)?;
    let headers = match table.get::<Value>("headers")? {
        Value::Nil => Vec::new(),
        Value::Table(headers) => read_headers(&headers, function, "option 'headers'")?,
        other => return Err(expected(function, "table", "option 'headers'", &other)),
    };
    let timeout = match table.get::<Value>("timeout")? {
        Value::Nil => None,
        timeout => Some(lua_args::duration(&timeout, function, "timeout")?),
    };
    Ok(Options { headers, timeout })
}

/// `http_post`'s third argument: a table of headers, as the Go tool took it, or options
/// (`headers`, `timeout`) — a non-empty table whose keys are all option names is options.
fn post_options(value: &Value) -> LuaResult<Options> {
    let Value::Table(table) = value else {
        return read_options(value, "net.http_post");
    };
    let mut keys = 0;
    let mut all_options = true;
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        keys += 1;
        all_options &=
            matches!(&key, Value::String(name) if OPTIONS.iter().any(|option| name.as_bytes() == option.as_bytes()));
    }
    if keys > 0 && all_options {
        read_options(value, "net.http_post")
    } else {
        Ok(Options { headers: read_headers(table, "net.http_post", "'headers'")?, timeout: None })
    }
}

/// `{ name = value }`, a value a string, a number, or a list of them (the header repeated).
fn read_headers(table: &Table, function: &str, what: &str) -> LuaResult<Vec<(String, Vec<u8>)>> {
    let mut headers = Vec::new();
    for pair in table.pairs::<Value, Value>() {
        let (name, value) = pair?;
        let Value::String(name) = name else {
            return Err(mlua::Error::runtime(format!(
                "{function}: {what}: header names are strings, got {}",
                name.type_name()
            )));
        };
        let name = name.to_str()?.to_owned();
        let one = |value: &Value| match value {
            Value::String(text) => Ok(text.as_bytes().to_vec()),
            Value::Integer(_) | Value::Number(_) => Ok(value.to_string()?.into_bytes()),
            other => Err(mlua::Error::runtime(format!(
                "{function}: {what}: expected a string for header '{name}', got {}",
                other.type_name()
            ))),
        };
        match &value {
            Value::Table(values) => {
                for value in values.sequence_values::<Value>() {
                    headers.push((name.clone(), one(&value?)?));
                }
            }
            value => headers.push((name.clone(), one(value)?)),
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(headers)
}

fn url_arg(value: &Value, function: &str) -> LuaResult<String> {
    match value {
        Value::String(text) => Ok(text.to_str()?.to_owned()),
        other => Err(expected(function, "string", "'url'", other)),
    }
}

fn body_arg(lua: &Lua, value: &Value) -> LuaResult<Vec<u8>> {
    match value {
        Value::String(text) => Ok(text.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(value.clone())? {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => Err(expected("net.http_post", "string", "'body'", value)),
        },
        other => Err(expected("net.http_post", "string", "'body'", other)),
    }
}

/// The destination, resolved against the running task's workdir.
fn dest_arg(lua: &Lua, value: &Value) -> LuaResult<PathBuf> {
    let Value::String(text) = value else {
        return Err(expected("net.download", "string", "'dest'", value));
    };
    let raw = text.as_bytes();
    if raw.is_empty() {
        return Err(mlua::Error::runtime("net.download: 'dest' is an empty path"));
    }
    use std::os::unix::ffi::OsStrExt;
    Ok(task_context::current(lua).resolve(Path::new(std::ffi::OsStr::from_bytes(&raw))))
}

/// "net.<function>: expected string for 'url', got nil".
fn expected(function: &str, kind: &str, name: &str, got: &Value) -> mlua::Error {
    let got = match got {
        Value::Integer(_) | Value::Number(_) => "number",
        other => other.type_name(),
    };
    mlua::Error::runtime(format!("{function}: expected {kind} for {name}, got {got}"))
}
