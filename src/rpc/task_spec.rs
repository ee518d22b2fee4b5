//! What a task is on the wire, apart from its workspace: the same value on both sides — the
//! master builds it from the pipeline, the agent gets it back from the messages that opened the
//! call.

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::proto::{ExecuteRequest, ScriptFile, TaskRequest};

/// What the master sends with a task (the workspace goes separately: its manifest, then the
/// contents the agent lacks).
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    pub group: String,
    pub task: String,
    pub pipeline: String,
    pub scripts: Vec<(String, Vec<u8>)>,
    pub params_json: Vec<u8>,
    pub deps_json: Vec<u8>,
    pub values_json: Vec<u8>,
    /// The task's fields that are data (`command` when a string, `env`) as the master read
    /// them: the agent's own read of the pipeline gives it the task's functions only.
    pub task_json: Vec<u8>,
    /// Files keep their setuid and setgid bits (`workspace.setuid`).
    pub setuid: bool,
    /// The umask the task runs under (the master's).
    pub umask: Option<u32>,
    /// `workspace.same_path`: the workspace's absolute path on the master, where the agent
    /// shows its copy to the task.
    pub same_path: Option<PathBuf>,
    /// Who the workspace is (a digest of this machine and the workspace's path): tasks of the
    /// same workspace may reuse the agent's tree. Empty: a fresh tree.
    pub workspace: String,
    /// Which run of the master it belongs to (random per master VM): a later task of the same
    /// run and pipeline may find the pipeline read already on the agent. Empty: a fresh VM.
    pub run: String,
    /// The master's working directory and the workspace's absolute path there: a script not
    /// shipped (required only as a task runs) is read from the task's copy when it lies in
    /// the workspace. Empty: none is.
    pub master_cwd: PathBuf,
    pub master_workspace: PathBuf,
    /// The task's `timeout`: the agent stops the task past it.
    pub timeout: Option<std::time::Duration>,
    /// Which of its changes the master applies (`workspace.sync_back`): "on_success", "never";
    /// empty or "always": all.
    pub sync_back: String,
}

impl TaskSpec {
    /// The request message (announcing the scripts and parts) and the messages that follow
    /// it: parts of its large fields, and the scripts. The workspace's rules (`ignore`) are
    /// the snapshot's to set.
    pub fn into_messages(self) -> (TaskRequest, Vec<ExecuteRequest>) {
        let scripts: Vec<ScriptFile> =
            self.scripts.into_iter().map(|(path, content)| ScriptFile { path, content }).collect();
        let mut request = TaskRequest {
            group: self.group,
            task: self.task,
            pipeline: self.pipeline,
            scripts: scripts.len() as u32,
            params_json: self.params_json,
            deps_json: self.deps_json,
            values_json: self.values_json,
            task_json: self.task_json,
            incremental: true,
            ignore: Vec::new(),
            setuid: self.setuid,
            umask: self.umask,
            same_path: self.same_path.map(|path| path.into_os_string().into_vec()).unwrap_or_default(),
            workspace: self.workspace,
            parts: 0,
            run: self.run,
            master_cwd: self.master_cwd.into_os_string().into_vec(),
            master_workspace: self.master_workspace.into_os_string().into_vec(),
            // The snapshot's to set, as the rules are.
            root_mode: None,
            root_mtime_secs: 0,
            root_mtime_nanos: 0,
            timeout_ms: self.timeout.map_or(0, |timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1)),
            sync_back: self.sync_back,
        };
        let follow_ups = super::parts::follow_ups(&mut request, scripts);
        (request, follow_ups)
    }

    /// The spec a request and its scripts describe.
    pub fn from_messages(request: TaskRequest, scripts: Vec<ScriptFile>) -> Self {
        TaskSpec {
            group: request.group,
            task: request.task,
            pipeline: request.pipeline,
            scripts: scripts.into_iter().map(|file| (file.path, file.content)).collect(),
            params_json: request.params_json,
            deps_json: request.deps_json,
            values_json: request.values_json,
            task_json: request.task_json,
            setuid: request.setuid,
            umask: request.umask,
            same_path: (!request.same_path.is_empty())
                .then(|| PathBuf::from(std::ffi::OsString::from_vec(request.same_path))),
            workspace: request.workspace,
            run: request.run,
            master_cwd: PathBuf::from(std::ffi::OsString::from_vec(request.master_cwd)),
            master_workspace: PathBuf::from(std::ffi::OsString::from_vec(request.master_workspace)),
            timeout: (request.timeout_ms > 0).then(|| std::time::Duration::from_millis(request.timeout_ms)),
            sync_back: request.sync_back,
        }
    }
}
