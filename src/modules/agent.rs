//! `agent`: talk to remote agents — `agent.connect(address[, opts]) -> client`,
//! `client:info()`, `client:execute(request[, opts])` — and start local ones
//! (`agent.spawn{ name, port }`, for `run --spawn-agents`: [`spawn`]), and find the members
//! of an agent pool (`agent.discover(url[, opts])`: [`discover`]). The one place outside `rpc/` that
//! sees the wire types' conversions. A failed call raises an error value whose `kind` says
//! what happened (see [`super::error_value`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use mlua::{AnyUserData, Function, Lua, Result as LuaResult, Table, UserData, UserDataFields, Value};

use super::archive_data::{ArchiveData, ManifestData, Storage};
use super::error_value::{ErrorValue, async_raising};
use super::{console_events, lua_args, lua_json};
use crate::error_kind::ErrorKind;
use crate::events::TaskEvent;
use crate::rpc::auth::Token;
use crate::rpc::client::{AgentClient, Call, Snapshot};
use crate::rpc::task_spec::TaskSpec;
use crate::rpc::tls::ClientTls;
use crate::workspace::spill::Spilled;

/// How long connecting to an agent may take before it counts as unreachable.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

mod discover;
mod spawn;

pub use spawn::{SpawnedAgents, stop_spawned};

pub fn module(lua: &Lua) -> LuaResult<Table> {
    let table = lua.create_table()?;
    table.set("connect", async_raising(lua, connect)?)?;
    table.set("spawn", lua.create_async_function(spawn::spawn)?)?;
    table.set("discover", async_raising(lua, discover::discover)?)?;
    Ok(table)
}

fn lua_error(function: &str, error: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(format!("agent.{function}: {error}"))
}

/// What tells two connections apart: address, token (by fingerprint) and TLS setting.
type ChannelKey = (String, Option<blake3::Hash>, Option<ClientTls>);

/// The fields of `client:execute`'s request.
const REQUEST_FIELDS: &[&str] = &[
    "group",
    "task",
    "pipeline",
    "scripts",
    "params",
    "deps",
    "values",
    "workspace",
    "setuid",
    "same_path",
    "timeout",
    "sync_back",
    "fields",
];

/// One channel per address, token and TLS setting for the whole run (VM).
#[derive(Default)]
struct Channels(RefCell<HashMap<ChannelKey, AgentClient>>);

/// The `tls` option: `{ ca, cert?, key?, domain? }` (paths to PEM files).
fn tls_option(options: Option<&Table>) -> LuaResult<Option<ClientTls>> {
    let Some(tls) = options.map(|o| o.get::<Option<Table>>("tls")).transpose()?.flatten() else { return Ok(None) };
    lua_args::known_keys(&tls, "agent.connect", "tls field", &["ca", "cert", "key", "domain"])?;
    let path = |key: &str| -> LuaResult<Option<std::path::PathBuf>> {
        Ok(tls.get::<Option<String>>(key)?.map(std::path::PathBuf::from))
    };
    let ca = path("ca")?;
    let (cert, key) = (path("cert")?, path("key")?);
    if cert.is_some() != key.is_some() {
        return Err(lua_error("connect", "invalid value for option 'tls' - 'cert' and 'key' go together"));
    }
    Ok(Some(ClientTls { ca, cert, key, domain: tls.get("domain")? }))
}

/// `agent.connect(address[, { token, tls, connect_timeout, name }]) -> client`; `name` is how
/// the client's errors name the agent ("agent 'name' (address)"; else "the agent at address").
async fn connect(lua: Lua, (address, options): (String, Option<Table>)) -> LuaResult<Result<AnyUserData, ErrorValue>> {
    if let Some(options) = &options {
        lua_args::known_keys(options, "agent.connect", "option", &["token", "tls", "connect_timeout", "name"])?;
    }
    let tls = tls_option(options.as_ref())?;
    let (token, timeout, name) = match &options {
        Some(options) => {
            let token = options.get::<Option<String>>("token")?.and_then(Token::new);
            let timeout = match options.get::<Value>("connect_timeout")? {
                Value::Nil => DEFAULT_CONNECT_TIMEOUT,
                value => lua_args::duration(&value, "agent.connect", "connect_timeout")?,
            };
            (token, timeout, options.get::<Option<String>>("name")?)
        }
        None => (None, DEFAULT_CONNECT_TIMEOUT, None),
    };
    let key = (address.clone(), token.as_ref().map(Token::fingerprint), tls.clone());
    let cached = lua.app_data_ref::<Channels>().and_then(|channels| channels.0.borrow().get(&key).cloned());
    let client = match cached {
        Some(client) => client,
        None => {
            let connected = AgentClient::connect(&address, token.as_ref(), tls.as_ref(), timeout).await;
            let client = match connected {
                Ok(client) => client,
                Err(error) => return Ok(Err(ErrorValue::of_client("agent.connect", &error.named(name)))),
            };
            if lua.app_data_ref::<Channels>().is_none() {
                lua.set_app_data(Channels::default());
            }
            if let Some(channels) = lua.app_data_ref::<Channels>() {
                channels.0.borrow_mut().insert(key, client.clone());
            }
            client
        }
    };
    Ok(Ok(lua.create_userdata(ClientData(client.named(name)))?))
}

/// A connected agent.
struct ClientData(AgentClient);

impl UserData for ClientData {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        // Methods that fail with error values are Lua functions (see `error_value`): the
        // client's methods are a table of them.
        fields.add_meta_field_with("__index", client_methods);
    }
}

/// `client:info()`, `client:execute(request[, opts])`, `client:address()`.
fn client_methods(lua: &Lua) -> LuaResult<Table> {
    let methods = lua.create_table()?;
    methods.set("info", async_raising(lua, info)?)?;
    methods.set(
        "execute",
        async_raising(lua, |lua, (this, request, options): (AnyUserData, Table, Option<Table>)| async move {
            let client = this.borrow::<ClientData>()?.0.clone();
            execute(lua, client, request, options).await
        })?,
    )?;
    methods.set(
        "address",
        lua.create_function(|_, this: AnyUserData| Ok(this.borrow::<ClientData>()?.0.address().to_owned()))?,
    )?;
    Ok(methods)
}

/// `client:info() -> { name, version, labels, max_tasks, tasks_in_flight, … }`
async fn info(lua: Lua, this: AnyUserData) -> LuaResult<Result<Table, ErrorValue>> {
    let mut client = this.borrow::<ClientData>()?.0.clone();
    let info = match client.info().await {
        Ok(info) => info,
        Err(error) => return Ok(Err(ErrorValue::of_client("agent.info", &error))),
    };
    let table = lua.create_table()?;
    table.set("name", info.name)?;
    table.set("version", info.version)?;
    table.set("labels", lua.create_table_from(info.labels)?)?;
    table.set("max_tasks", info.max_tasks)?;
    table.set("tasks_in_flight", info.tasks_in_flight)?;
    table.set("files_written", info.files_written)?;
    table.set("trees_reused", info.trees_reused)?;
    table.set("plans_from_watch", info.plans_from_watch)?;
    table.set("contents_requested", info.contents_requested)?;
    table.set("bytes_received", info.bytes_received)?;
    table.set("bytes_sent", info.bytes_sent)?;
    table.set("manifest_entries_received", info.manifest_entries_received)?;
    Ok(Ok(table))
}

/// `client:execute({ group, task, pipeline, scripts, params, deps, values, workspace, setuid,
/// same_path, timeout }[, { prefix, on_event, timeout }])` where `workspace` is a snapshot (the
/// agent asks for the contents it lacks); `setuid` carries files' setuid and setgid bits,
/// `same_path` shows the workspace to the task at its path here; the request's `timeout` is the
/// task's, which the agent enforces (the task fails with its changes). The task runs under this process's umask.
/// `-> { ok, message, outputs, changes }`. Remote log and output lines show live with `prefix`;
/// `on_queue(waiting)` is called when the task begins (true) and ends (false) a wait for one of
/// the agent's slots; past `timeout` (not counting such a wait) the call is cancelled (killing
/// the task) and fails with kind "timeout".
async fn execute(
    lua: Lua,
    mut client: AgentClient,
    request: Table,
    options: Option<Table>,
) -> LuaResult<Result<Table, ErrorValue>> {
    lua_args::known_keys(&request, "client:execute", "request field", REQUEST_FIELDS)?;
    if let Some(options) = &options {
        lua_args::known_keys(options, "client:execute", "option", &["prefix", "on_event", "on_queue", "timeout"])?;
    }
    let field = |name: &str| -> LuaResult<String> {
        request
            .get::<Option<String>>(name)?
            .ok_or_else(|| lua_error("execute", format!("request field '{name}' is missing")))
    };
    let mut scripts = Vec::new();
    if let Some(table) = request.get::<Option<Table>>("scripts")? {
        for pair in table.pairs::<String, mlua::LuaString>() {
            let (path, content) = pair?;
            scripts.push((path, content.as_bytes().to_vec()));
        }
    }
    let spec = TaskSpec {
        group: field("group")?,
        task: field("task")?,
        pipeline: field("pipeline")?,
        scripts,
        params_json: lua_json::lua_to_bytes(&lua, request.get("params")?, "the task's params")?,
        deps_json: lua_json::lua_to_bytes(&lua, request.get("deps")?, "the dependencies' outputs")?,
        values_json: lua_json::lua_to_bytes(&lua, request.get("values")?, "values")?,
        task_json: match request.get::<Value>("fields")? {
            Value::Nil => Vec::new(),
            fields => lua_json::lua_to_bytes(&lua, fields, "the task's command and env")?,
        },
        setuid: request.get::<Option<bool>>("setuid")?.unwrap_or(false),
        umask: crate::process::umask_at_start(),
        same_path: None,
        workspace: String::new(),
        run: run_identity(&lua),
        master_cwd: PathBuf::new(),
        master_workspace: PathBuf::new(),
        timeout: match request.get::<Value>("timeout")? {
            Value::Nil => None,
            value => Some(lua_args::duration(&value, "client:execute", "timeout")?),
        },
        sync_back: match request.get::<Option<String>>("sync_back")?.as_deref() {
            None => String::new(),
            Some(which @ ("always" | "on_success" | "never")) => which.to_owned(),
            Some(other) => {
                return Err(lua_error(
                    "execute",
                    format!("request field 'sync_back' must be \"always\", \"on_success\" or \"never\", got '{other}'"),
                ));
            }
        },
    };
    let workspace: AnyUserData = request.get("workspace").map_err(|_| not_a_snapshot())?;
    let source = {
        let snapshot = workspace.borrow::<ManifestData>().map_err(|_| not_a_snapshot())?;
        Snapshot {
            root: snapshot.root.clone(),
            manifest: snapshot.manifest.clone(),
            ignore: snapshot.rules.as_ref().map(|rules| rules.patterns().to_vec()).unwrap_or_default(),
        }
    };
    // The workspace's physical path: who it is for the agent's kept trees, and where a
    // `same_path` task is shown it (as a process started there sees it).
    let physical = tokio::fs::canonicalize(&source.root).await;
    let mut spec = spec;
    spec.workspace = workspace_identity(physical.as_deref().unwrap_or(&source.root));
    // Where the scripts' paths (as the pipeline named them, not resolved) meet the workspace.
    if let Ok(cwd) = std::env::current_dir() {
        spec.master_workspace = cwd.join(&source.root);
        spec.master_cwd = cwd;
    }
    if request.get::<Option<bool>>("same_path")?.unwrap_or(false) {
        match physical {
            Ok(physical) => spec.same_path = Some(physical),
            Err(error) => {
                let message = format!("{}: {error}", source.root.display());
                let path = Some(source.root.display().to_string());
                return Ok(Err(ErrorValue::new(ErrorKind::of_io(&error), message)
                    .raised_by("agent.execute")
                    .with("path", path)));
            }
        }
    }
    let (prefix, on_event, on_queue, timeout) = match &options {
        Some(options) => (
            options.get::<Option<String>>("prefix")?,
            options.get::<Option<Function>>("on_event")?,
            options.get::<Option<Function>>("on_queue")?,
            match options.get::<Value>("timeout")? {
                Value::Nil => None,
                value => Some(lua_args::duration(&value, "client:execute", "timeout")?),
            },
        ),
        None => (None, None, None, None),
    };

    let scratch = super::archive_data::scratch_dir(&lua)?;
    // The task these events are of, as this run calls it (`group/task`).
    let of = super::task_context::current(&lua).prefix;
    // The first error an `on_event` callback raises fails the call once it is over (the
    // remote task itself goes on: its events are still shown).
    let mut callback_error: Option<mlua::Error> = None;
    let mut queue_error: Option<mlua::Error> = None;
    let call = Call { timeout, ..Call::new(scratch) };
    let _shown =
        crate::status_line::watch(of.as_deref().or(prefix.as_deref()).unwrap_or("remote task"), &call.transfer);
    // What the task writes to its standard output without ending the line waits for the line's
    // end, as Lua's own stdio holds it here (a terminal's line buffering): a log line between
    // `io.write("Progress: ")` and `io.write("done\n")` shows before the line, not inside it.
    let mut partial_line: Vec<u8> = Vec::new();
    let outcome = client
        .execute(
            spec,
            source,
            &call,
            |event| {
                match &event {
                    TaskEvent::Log { level, message, fields } => {
                        let fields = (!fields.is_empty()).then_some(fields.as_str());
                        console_events::log(*level, prefix.as_deref(), message, fields, of.as_deref());
                    }
                    TaskEvent::Output { stream, line } => {
                        console_events::output(*stream, prefix.as_deref(), line, of.as_deref());
                    }
                    // As the master's own `print` (which `--return` sends to stderr).
                    TaskEvent::Print { text, more, stderr: false } if lua.app_data_ref::<StdoutKept>().is_none() => {
                        partial_line.extend_from_slice(text);
                        let upto = if *more {
                            partial_line.iter().rposition(|byte| *byte == b'\n').map(|at| at + 1)
                        } else {
                            Some(partial_line.len())
                        };
                        if let Some(upto) = upto {
                            let rest = partial_line.split_off(upto);
                            let line = std::mem::replace(&mut partial_line, rest);
                            print_here(&lua, &line, (*more, false), prefix.as_deref());
                        }
                    }
                    TaskEvent::Print { text, more, stderr } => {
                        print_here(&lua, text, (*more, *stderr), prefix.as_deref())
                    }
                }
                if let Some(callback) = &on_event
                    && callback_error.is_none()
                    && let Err(error) = event_table(&lua, &event).and_then(|table| callback.call::<()>(table))
                {
                    callback_error = Some(error);
                }
            },
            |waiting| {
                if let Some(callback) = &on_queue
                    && queue_error.is_none()
                    && let Err(error) = callback.call::<()>(waiting)
                {
                    queue_error = Some(error);
                }
            },
        )
        .await;
    // The task is over: what it left of a line shows now, as Lua's stdio writes it out at last.
    if !partial_line.is_empty() {
        print_here(&lua, &partial_line, (true, false), prefix.as_deref());
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return Ok(Err(ErrorValue::of_call("agent.execute", &error, client.agent()))),
    };
    if let Some(error) = callback_error {
        return Err(lua_error("execute", format!("the on_event callback failed: {error}")));
    }
    if let Some(error) = queue_error {
        return Err(lua_error("execute", format!("the on_queue callback failed: {error}")));
    }

    let result = lua.create_table()?;
    result.set("ok", outcome.ok)?;
    result.set("message", outcome.message)?;
    result.set("outputs", lua_json::bytes_to_lua(&lua, &outcome.outputs_json, "the task's outputs")?)?;
    if !outcome.exports_json.is_empty() {
        result.set("exports", lua_json::bytes_to_lua(&lua, &outcome.exports_json, "the task's exports")?)?;
    }
    result.set("contents_sent", outcome.contents_sent)?;
    result.set("bytes_sent", outcome.bytes_sent)?;
    let size = outcome.changes_size;
    let storage = match outcome.changes {
        Spilled::Memory(bytes) => Storage::Memory(bytes.into()),
        Spilled::File(file) => Storage::Temp(file),
    };
    let changes = ArchiveData {
        deleted: outcome.deleted,
        amended: outcome.amended,
        root: outcome.root,
        size,
        ..ArchiveData::new(storage)
    };
    result.set("changes", lua.create_userdata(changes)?)?;
    Ok(Ok(result))
}

fn not_a_snapshot() -> mlua::Error {
    lua_error("execute", "request field 'workspace' must be a snapshot (workspace.snapshot)")
}

/// The VM's current run, as agents know it: random, made when a run begins
/// ([`begin_run`]) or on first use.
struct RunIdentity(String);

fn run_identity(lua: &Lua) -> String {
    if let Some(run) = lua.app_data_ref::<RunIdentity>() {
        return run.0.clone();
    }
    begin_run(lua)
}

/// A new run begins in this VM (each `run()` of a REPL is one): what agents read of the
/// pipeline for an earlier run is not this run's.
pub fn begin_run(lua: &Lua) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.update(&now.as_nanos().to_le_bytes());
    // Keys the system's randomness seeded: no other master guesses this run.
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..2 {
        hasher.update(&std::collections::hash_map::RandomState::new().build_hasher().finish().to_le_bytes());
    }
    let run = hasher.finalize().to_hex().to_string();
    lua.set_app_data(RunIdentity(run.clone()));
    run
}

/// Who a workspace is, the same from run to run: a digest of this machine (its machine id,
/// else its host name) and the workspace's physical path.
fn workspace_identity(physical: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    // Read once: which machine this is does not change while the master runs.
    static MACHINE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let machine = MACHINE.get_or_init(|| {
        std::fs::read("/etc/machine-id")
            .ok()
            .filter(|id| !id.is_empty())
            .or_else(|| std::fs::read("/proc/sys/kernel/hostname").ok())
            .unwrap_or_default()
    });
    let mut hasher = blake3::Hasher::new();
    hasher.update(machine);
    hasher.update(b"\0");
    hasher.update(physical.as_os_str().as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// What a remote task's Lua code printed, printed here as it was (whatever this VM's `print`
/// has become: the agent's already went through the pipeline's): on stdout, or — when stdout
/// is kept for JSON (`--return`, `--output json`) — on stderr and as an `output` event.
/// `from`: the prefix the console shows the remote task's lines with (`agent/task`).
fn print_here(lua: &Lua, text: &[u8], (more, stderr): (bool, bool), from: Option<&str>) {
    use crate::status_line::{Stream, write};
    let mut line = text.to_vec();
    if !more {
        line.push(b'\n');
    }
    // What the task wrote to its standard error goes to this one, as it is.
    if stderr {
        write(Stream::Stderr, &line);
        return;
    }
    if lua.app_data_ref::<StdoutKept>().is_some() {
        write(Stream::Stderr, &line);
        let text = String::from_utf8_lossy(text);
        let task = super::task_context::current(lua).prefix;
        let mut fields = serde_json::Map::new();
        if let Some(task) = task {
            fields.insert("task".to_owned(), task.into());
        }
        if let Some(from) = from {
            fields.insert("from".to_owned(), from.into());
        }
        fields.insert("stream".to_owned(), "print".into());
        fields.insert("line".to_owned(), text.as_ref().into());
        if more {
            fields.insert("more".to_owned(), true.into());
        }
        crate::json_events::emit("output", fields);
    } else {
        write(Stream::Stdout, &line);
    }
}

/// Set on a VM whose stdout carries JSON only (`run --return`, `run --output json`).
pub struct StdoutKept;

fn event_table(lua: &Lua, event: &TaskEvent) -> LuaResult<Table> {
    let table = lua.create_table()?;
    match event {
        TaskEvent::Log { level, message, fields } => {
            table.set("kind", "log")?;
            table.set("level", level.as_str().to_ascii_lowercase())?;
            table.set("message", message.as_str())?;
            table.set("fields", fields.as_str())?;
        }
        TaskEvent::Print { text, stderr, .. } => {
            table.set("kind", "print")?;
            table.set("text", lua.create_string(text)?)?;
            if *stderr {
                table.set("stderr", true)?;
            }
        }
        TaskEvent::Output { stream, line } => {
            table.set("kind", "output")?;
            table.set("stream", if *stream == crate::process::OutputStream::Stderr { "stderr" } else { "stdout" })?;
            table.set("line", line.as_str())?;
        }
    }
    Ok(table)
}
