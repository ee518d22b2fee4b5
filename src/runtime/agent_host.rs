//! The agent's [`TaskHandler`]: every received task runs on a task thread (made ready before it
//! arrives: [`super::task_workers`]), in a fresh Lua VM — or in one that read the same pipeline
//! for an earlier task of the run and has run nothing of it since — through the stdlib's
//! agent-side handler (`sloth.agent_side`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mlua::{AnyUserData, Table, Value};
use tokio::sync::oneshot;

use super::task_workers::{Kept, PipelineKey, Prepared, ReadyThreads, Work, name_this_thread};
use super::{Runtime, RuntimeOptions, StdlibSource, error};
use crate::events::{EventSink, TaskEvent};
use crate::modules::archive_data::{ArchiveData, ManifestData, RulesData, Storage};
use crate::modules::lua_json;
use crate::rpc::server::{ChangesArchive, RemoteOutcome, RemoteTask, TaskFailure, TaskHandler};
use crate::workspace::Filter;

/// Runs tasks as `<agent name>/<task>` with the given stdlib.
#[derive(Clone)]
pub struct LuaTaskHandler {
    agent_name: String,
    options: RuntimeOptions,
    live_threads: Arc<AtomicUsize>,
    ready: Arc<ReadyThreads>,
}

impl std::fmt::Debug for LuaTaskHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaTaskHandler").field("agent_name", &self.agent_name).finish_non_exhaustive()
    }
}

/// Task threads kept ready (each holds a VM, a few MiB; two cover a task and the one that
/// follows it while the first one's thread is being replaced).
const READY_THREADS: usize = 2;

impl LuaTaskHandler {
    pub fn new(agent_name: String, stdlib: StdlibSource, memory_limit: Option<usize>) -> Self {
        let options = RuntimeOptions { stdlib, values: None, memory_limit };
        let ready = ReadyThreads::new(options.clone(), READY_THREADS);
        Self { agent_name, options, live_threads: Arc::new(AtomicUsize::new(0)), ready }
    }

    /// Task threads still running (a cancelled one is still cleaning up).
    pub fn live_threads(&self) -> usize {
        self.live_threads.load(Ordering::SeqCst)
    }
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TaskHandler for LuaTaskHandler {
    fn execute(
        &self,
        task: RemoteTask,
        events: EventSink,
    ) -> Pin<Box<dyn Future<Output = Result<RemoteOutcome, TaskFailure>> + Send>> {
        let (done_tx, done_rx) = oneshot::channel();
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let agent_name = self.agent_name.clone();
        let options = self.options.clone();
        self.live_threads.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(Arc::clone(&self.live_threads));
        // Lua code that never yields never sees `cancel_rx`; it sees this flag (preempt).
        let vm_abort = Arc::new(AtomicBool::new(false));
        // A call blocked in native code sees neither: it is interrupted (see `interrupt`).
        let vm_thread = super::interrupt::VmThread::new(Arc::clone(&vm_abort));
        let task_thread = vm_thread.clone();
        let name = task.spec.task.clone();
        // `same_path` changes the thread's mount namespace before anything is made on it: such
        // a task gets a thread of its own.
        let fresh = task.spec.same_path.is_some();
        let key = pipeline_key(&task);
        let ready = Arc::clone(&self.ready);
        let work: Work = Box::new(move |prepared| {
            let _guard = guard;
            name_this_thread(&format!("task {name}"));
            let (outcome, prepared) = {
                let _in_vm = task_thread.enter();
                run_on_this_thread(agent_name, (options, prepared, vm_abort), (task, key), events, cancel_rx)
            };
            let ran_to_its_end = !matches!(outcome, Err(TaskFailure::Cancelled));
            // The runtime serves the thread's next task, unless this one was cancelled midway
            // or changed the thread's view of the filesystem; the VM serves the run's next task
            // of this pipeline if the handler ended normally with nothing of it still running,
            // else it goes — announced before the master hears the result, which may send that
            // next task at once.
            let Some(Prepared { tokio, vm, .. }) = prepared else {
                let _ = done_tx.send(outcome);
                return None;
            };
            if !ran_to_its_end || fresh {
                let _ = done_tx.send(outcome);
                return None;
            }
            let reusable = vm.lua().app_data_ref::<VmReusable>().is_some_and(|reusable| reusable.0);
            let keep = key.filter(|_| outcome.is_ok() && reusable && vm.is_idle());
            if let Some(key) = keep {
                ready.expect_return(key);
            }
            let _ = done_tx.send(outcome);
            Some(Kept { tokio, vm: keep.map(|key| (key, vm)) })
        });
        let ready = Arc::clone(&self.ready);
        Box::pin(async move {
            if let (false, Some(key)) = (fresh, key) {
                ready.await_returning(key).await;
            }
            let spawned = match if fresh { Err(work) } else { ready.run(key, work) } {
                Ok(()) => Ok(()),
                Err(work) => std::thread::Builder::new()
                    .name("task".to_owned())
                    .spawn(move || {
                        if let Some(kept) = work(None) {
                            ready.adopt(kept);
                        }
                    })
                    .map(|_| ()),
            };
            spawned.map_err(|e| TaskFailure::Failed(format!("cannot start a task thread: {e}")))?;
            // Dropping this future (the master went away) drops `cancel_tx`, which stops the VM
            // and kills its processes, and raises the abort flag for Lua code that never yields.
            let _cancel_on_drop = cancel_tx;
            let _abort_on_drop = AbortOnDrop(vm_thread);
            done_rx
                .await
                .unwrap_or_else(|_| Err(TaskFailure::Failed("the task thread ended without a result".to_owned())))
        })
    }
}

/// Which run and pipeline `task` belongs to, as far as a VM that read the pipeline can tell:
/// who sent it, the master's run, the pipeline's sources and the run's values. None: the
/// master names no run, and the task gets a fresh VM that nothing else will get.
fn pipeline_key(task: &RemoteTask) -> Option<PipelineKey> {
    let spec = &task.spec;
    if spec.run.is_empty() {
        return None;
    }
    let field = |hasher: &mut blake3::Hasher, bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    let mut family = blake3::Hasher::new();
    field(&mut family, task.principal.as_bytes());
    field(&mut family, spec.pipeline.as_bytes());
    field(&mut family, &spec.values_json);
    let mut scripts: Vec<_> = spec.scripts.iter().collect();
    scripts.sort();
    for (path, content) in scripts {
        field(&mut family, path.as_bytes());
        field(&mut family, content.as_ref());
    }
    let family = *family.finalize().as_bytes();
    let mut read = blake3::Hasher::new();
    field(&mut read, &family);
    field(&mut read, spec.run.as_bytes());
    Some(PipelineKey { read: *read.finalize().as_bytes(), family })
}

/// Whether the VM ran nothing of the pipeline since it read it (the handler says, per task).
struct VmReusable(bool);

/// Raises the abort flag when dropped, and interrupts the task's thread if it is still blocked
/// in a native call (it would hold its slot for ever).
struct AbortOnDrop(super::interrupt::VmThread);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Runs the task on this thread; returns its outcome and the VM, to be dropped once the
/// outcome is on its way.
fn run_on_this_thread(
    agent_name: String,
    (options, prepared, abort): (RuntimeOptions, Option<Prepared>, Arc<AtomicBool>),
    (task, key): (RemoteTask, Option<PipelineKey>),
    events: EventSink,
    cancel: oneshot::Receiver<()>,
) -> (Result<RemoteOutcome, TaskFailure>, Option<Prepared>) {
    // Before anything starts on this thread: what it starts inherits the view.
    let (_same_path, task) = match same_path(task) {
        Ok(shown) => shown,
        Err(refused) => return (Err(TaskFailure::Refused(refused)), prepared),
    };
    if let Some(note) = task.spec.umask.and_then(crate::task_view::private_umask) {
        events.send(TaskEvent::Log { level: tracing::Level::WARN, message: note, fields: String::new() });
    }
    let prepared = match prepared {
        Some(prepared) => prepared,
        None => match Prepared::make(&options) {
            Ok(prepared) => prepared,
            Err(error) => return (Err(TaskFailure::Failed(error)), None),
        },
    };
    let local = tokio::task::LocalSet::new();
    let outcome = local.block_on(&prepared.tokio, async {
        tokio::select! {
            outcome = run_in_vm(agent_name, (&prepared.vm, abort), (task, key, key.is_some() && prepared.holds == key), events) => outcome,
            _ = cancel => Err(TaskFailure::Cancelled),
        }
    });
    drop(local);
    (outcome, Some(prepared))
}

/// With `same_path`, shows the task's workspace at the master's path to this thread (where
/// the task then runs; what it changed is still read from the agent's own copy, which no
/// unmount can swap for an empty directory). An agent that cannot (no right to make a mount
/// namespace) refuses the task, saying why.
fn same_path(task: RemoteTask) -> Result<(Option<crate::task_view::SamePath>, RemoteTask), String> {
    let Some(target) = task.spec.same_path.clone() else { return Ok((None, task)) };
    let shown = crate::task_view::show_at(&task.workspace.root, &target, &task.dir)?;
    Ok((Some(shown), task))
}

/// Runs the task through `sloth.agent_side`. `loaded`: the VM holds the task's pipeline
/// already (an earlier task of it ran here), so its scripts need not be handed over again.
async fn run_in_vm(
    agent_name: String,
    (runtime, abort): (&Runtime, Arc<AtomicBool>),
    (task, key, loaded): (RemoteTask, Option<PipelineKey>, bool),
    events: EventSink,
) -> Result<RemoteOutcome, TaskFailure> {
    let failed = |e: mlua::Error| TaskFailure::Failed(error::describe(&e));
    let spec = &task.spec;
    let lua = runtime.lua();
    if !spec.values_json.is_empty() {
        // (As the master's `values` were when it sent them, whatever the pipeline put there.)
        let values = lua_json::bytes_to_lua(lua, &spec.values_json, "values").map_err(failed)?;
        lua.globals().set("values", values).map_err(failed)?;
    }
    lua.set_app_data(super::preempt::Abort(abort));
    // An earlier task of the VM that called os.exit stopped only itself.
    lua.remove_app_data::<super::exit::ExitRequested>();
    lua.set_app_data(VmReusable(false));
    lua.set_app_data(events);

    let build = || -> mlua::Result<Table> {
        let request = lua.create_table()?;
        request.set("agent", agent_name.as_str())?;
        request.set("group", spec.group.as_str())?;
        request.set("task", spec.task.as_str())?;
        request.set("pipeline", spec.pipeline.as_str())?;
        if let Some(key) = key {
            request.set("key", lua.create_string(key.read)?)?;
        }
        if !loaded {
            let scripts = lua.create_table()?;
            for (path, content) in &spec.scripts {
                scripts.set(path.as_str(), lua.create_string(content)?)?;
            }
            request.set("scripts", scripts)?;
        }
        request.set("params", lua_json::bytes_to_lua(lua, &spec.params_json, "params")?)?;
        request.set("deps", lua_json::bytes_to_lua(lua, &spec.deps_json, "deps")?)?;
        request.set("fields", lua_json::bytes_to_lua(lua, &spec.task_json, "the task's command and env")?)?;
        // Paths as bytes: a name need not be UTF-8.
        let bytes = |path: &std::path::Path| lua.create_string(path.as_os_str().as_encoded_bytes());
        request.set("dir", bytes(&task.dir)?)?;
        let workspace = &task.workspace;
        request.set("root", bytes(&workspace.root)?)?;
        if let Some(target) = &spec.same_path {
            request.set("workdir", bytes(target)?)?;
        }
        if let Some(timeout) = spec.timeout {
            request.set("timeout", timeout.as_secs_f64())?;
        }
        if !spec.sync_back.is_empty() {
            request.set("sync_back", spec.sync_back.as_str())?;
        }
        if spec.master_workspace.is_absolute() && spec.master_cwd.is_absolute() {
            request.set("master_cwd", bytes(&spec.master_cwd)?)?;
            request.set("master_workspace", bytes(&spec.master_workspace)?)?;
        }
        // What was just built, so the handler need not scan it again, and the rules the master
        // took its snapshot with.
        let rules = Arc::new(Filter::from_patterns(workspace.ignore.clone()).map_err(mlua::Error::external)?);
        let base = ManifestData {
            manifest: workspace.built.clone(),
            root: workspace.root.clone(),
            rules: Some(rules.clone()),
        };
        request.set("base", lua.create_userdata(base)?)?;
        request.set("rules", lua.create_userdata(RulesData(rules))?)?;
        Ok(request)
    };
    let request = build().map_err(failed)?;
    let result: Table = runtime.call("sloth.agent_side", "handle", request).await.map_err(failed)?;
    // The task ran, and its changes could not be packed: the agent's own trouble, of the kind
    // the error value says (a full disk is the master's to hear as one).
    if let Some(failure) = result.get::<Option<Table>>("failure").map_err(failed)? {
        let kind: Option<String> = failure.get("kind").map_err(failed)?;
        let message = failure.get::<mlua::LuaString>("message").map_err(failed)?.to_string_lossy();
        return Err(match kind.as_deref() {
            Some("no_space") => TaskFailure::NoSpace(message),
            _ => TaskFailure::Failed(message),
        });
    }

    let outcome = || -> mlua::Result<RemoteOutcome> {
        let changes: AnyUserData = result.get("changes")?;
        let mut changes = changes.borrow_mut::<ArchiveData>()?;
        let outputs: Value = result.get("outputs")?;
        lua.set_app_data(VmReusable(result.get::<Option<bool>>("reusable")?.unwrap_or(false)));
        // The archive leaves the VM with the outcome (the VM goes before it is sent).
        let archive = match std::mem::replace(&mut changes.storage, Storage::Memory(Arc::from([]))) {
            Storage::Memory(bytes) => ChangesArchive::Memory(bytes),
            Storage::Temp(file) => ChangesArchive::File { path: file.path().to_path_buf(), _temp: Some(file) },
            Storage::Path(path) => ChangesArchive::File { path, _temp: None },
        };
        Ok(RemoteOutcome {
            ok: result.get("ok")?,
            // (A message need not be UTF-8: `error("bad \255")`; the wire's is.)
            message: result.get::<Option<mlua::LuaString>>("message")?.map(|message| message.to_string_lossy()),
            outputs_json: lua_json::lua_to_bytes(lua, outputs, "the task's outputs")?,
            exports_json: exports_json(lua, result.get("exports")?)?,
            changes: archive,
            deleted: changes.deleted.clone(),
            // A tree whose task was stopped (its timeout) is not kept: only its changes go.
            after: if result.get::<Option<bool>>("stopped")?.unwrap_or(false) { None } else { changes.after.clone() },
            watched: changes.watched.take(),
            root: changes.root,
        })
    };
    outcome().map_err(failed)
}

/// What the task exported, as JSON (empty: nothing), for its master to make so too (the
/// agent-side handler sends only what converts, within its bound).
fn exports_json(lua: &mlua::Lua, exports: Value) -> mlua::Result<Vec<u8>> {
    if matches!(&exports, Value::Table(table) if table.is_empty()) || exports.is_nil() {
        return Ok(Vec::new());
    }
    lua_json::lua_to_bytes(lua, exports, "the task's exports")
}
