//! Child processes: spawning in their own process group, live output, timeouts, and cleanup.
//!
//! A process started here owns its whole tree: it leads a new process group, and that group is
//! killed when the leader exits, when the timeout fires, or when the caller stops waiting (the
//! future is dropped, e.g. on Ctrl-C). Nothing a task started outlives it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

mod groups;
mod output;

pub(crate) use groups::signal_tree;
use groups::{GroupGuard, signal_groups};
pub use output::CAPTURE_LIMIT;
use output::{Capture, emit_line, pump};

/// How long a timed-out process group gets between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_millis(500);

/// How long the output of a command whose leader has exited (its group killed) is still read:
/// only a process in a session of its own can hold it then, and it is not waited for.
const STRAGGLER_GRACE: Duration = Duration::from_secs(1);

/// [`umask`] as it was first read: for a process that never changes its own (the master,
/// whose tasks change only theirs), read once rather than for every task.
pub fn umask_at_start() -> Option<u32> {
    static AT_START: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *AT_START.get_or_init(umask)
}

/// This process's umask, read without changing it (`/proc/self/status`, Linux 4.7 and later);
/// None where it cannot be read.
pub fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8).ok()
}

/// What to run: a shell command line (`sh -c`) or an argument vector (no shell).
#[derive(Debug, Clone)]
pub enum Program {
    Shell(String),
    Argv(Vec<String>),
}

impl Program {
    /// A short name for messages: the command line or the program name.
    pub fn display_name(&self) -> String {
        match self {
            Program::Shell(line) => line.clone(),
            Program::Argv(argv) => argv.first().cloned().unwrap_or_default(),
        }
    }
}

/// A process to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: Program,
    pub cwd: PathBuf,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut(Duration),
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

/// A finished process and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("empty argument vector")]
    EmptyArgv,
    #[error("cannot start '{program}' in '{cwd}': {source}")]
    Spawn { program: String, cwd: PathBuf, source: std::io::Error },
    #[error("waiting for '{program}': {source}")]
    Wait { program: String, source: std::io::Error },
}

impl ProcessError {
    /// The program does not exist (not on PATH, or no such file): a tool that is not
    /// installed, which callers say in those words rather than as a spawn error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcessError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The shell a command line runs in: `sh` as this process's `PATH` finds it, looked up once —
/// an exec per `PATH` entry that lacks it cost every command — unless the command's own
/// environment sets `PATH`, which then decides.
fn shell(env: &[(String, String)]) -> std::ffi::OsString {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    if env.iter().any(|(name, _)| name == "PATH") {
        return "sh".into();
    }
    let found = FOUND.get_or_init(|| {
        let path = std::env::var_os("PATH")?;
        let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        // A relative entry means a different directory for every command's working directory.
        if dirs.iter().any(|dir| !dir.is_absolute()) {
            return None;
        }
        find_executable(&dirs, "sh")
    });
    found.as_ref().map_or_else(|| "sh".into(), |path| path.as_os_str().to_owned())
}

/// The first executable file `name` in `dirs` (the directories of a `PATH`, in order).
pub fn find_executable(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// The command for `spec`, leading a process group of its own, its input piped or empty.
fn command_for(spec: &Spec) -> Result<std::process::Command, ProcessError> {
    use std::os::unix::process::CommandExt;
    let mut command = match &spec.program {
        Program::Shell(line) => {
            let mut command = std::process::Command::new(shell(&spec.env));
            // Named as `sh -c` names it (`$0`, its messages), wherever it was found.
            command.arg0("sh").arg("-c").arg(line);
            command
        }
        Program::Argv(argv) => {
            let (program, args) = argv.split_first().ok_or(ProcessError::EmptyArgv)?;
            let mut command = std::process::Command::new(program);
            command.args(args);
            command
        }
    };
    command
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .process_group(0);
    Ok(command)
}

/// Starts `command` (made by [`command_for`]), the leader of its own process group, which the
/// reaper learns of (and which is killed when the returned guard is dropped).
fn spawn_leading(command: Command, spec: &Spec, program: &str) -> Result<(Child, Option<GroupGuard>), ProcessError> {
    let mut command = command;
    let child = command.spawn().map_err(|source| ProcessError::Spawn {
        program: program.to_owned(),
        cwd: spec.cwd.clone(),
        source,
    })?;
    let group = child.id().map(|id| GroupGuard::new(Pid::from_raw(id as i32)));
    if let Some(group) = &group {
        crate::reaper::note(group.leader.as_raw(), true);
    }
    Ok((child, group))
}

/// `work` to its end, or None when `limit` passes first (`work` is dropped then, and with it
/// its hold on the child).
async fn unless_late<T>(limit: Option<Duration>, work: impl std::future::Future<Output = T>) -> Option<T> {
    match limit {
        None => Some(work.await),
        Some(limit) => tokio::time::timeout(limit, work).await.ok(),
    }
}

/// A command past its `limit`: its group terminated, its leader reaped.
async fn timed_out(limit: Option<Duration>, child: &mut Child, group: Option<&GroupGuard>) -> Exit {
    terminate(child, group).await;
    Exit::TimedOut(limit.unwrap_or_default())
}

/// Runs `spec` as Lua's `os.execute` and `io.popen` run a command, but owning its tree as
/// [`run`] does: its output goes to `stdout` and its errors to `stderr` (this process's own
/// when None), unread; its group is killed when it exits, times out, or the caller stops
/// waiting.
pub async fn run_plain(
    spec: &Spec,
    stdout: Option<std::fs::File>,
    stderr: Option<std::fs::File>,
) -> Result<Exit, ProcessError> {
    let mut command = Command::from(command_for(spec)?);
    command
        .stdout(stdout.map_or_else(Stdio::inherit, Stdio::from))
        .stderr(stderr.map_or_else(Stdio::inherit, Stdio::from));
    let program = spec.program.display_name();
    let (mut child, group) = spawn_leading(command, spec, &program)?;
    let stdin = child.stdin.take();
    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(input)) = (stdin, spec.stdin.as_deref()) {
                let _ = pipe.write_all(input).await;
            }
        };
        let (status, ()) = tokio::join!(child.wait(), feed);
        status
    };
    let exit = match unless_late(spec.timeout, work).await {
        Some(status) => {
            if let Some(group) = &group {
                group.ended.set(true);
            }
            exit_of(status, &program)?
        }
        None => timed_out(spec.timeout, &mut child, group.as_ref()).await,
    };
    // What it left in its group goes with it.
    drop(group);
    Ok(exit)
}

/// [`run_plain`] for a caller that cannot wait asynchronously (Lua code that cannot yield):
/// the thread blocks, looking every few milliseconds whether `stop` says to stop (a deadline,
/// an interrupted run: then the group is killed and its word is the error). The input, if any,
/// is given through a file, not a pipe this thread would have to feed.
pub fn run_blocking(
    spec: &Spec,
    stdout: Option<std::fs::File>,
    stderr: Option<std::fs::File>,
    stop: &dyn Fn() -> Option<String>,
) -> Result<Result<Exit, String>, ProcessError> {
    use std::io::{Seek, Write};
    let mut command = command_for(spec)?;
    let program = spec.program.display_name();
    let spawn_error = |source| ProcessError::Spawn { program: program.clone(), cwd: spec.cwd.clone(), source };
    let stdin = match &spec.stdin {
        Some(input) => {
            let mut file = tempfile::tempfile().map_err(spawn_error)?;
            file.write_all(input).and_then(|()| file.rewind()).map_err(spawn_error)?;
            Stdio::from(file)
        }
        None => Stdio::null(),
    };
    command
        .stdin(stdin)
        .stdout(stdout.map_or_else(Stdio::inherit, Stdio::from))
        .stderr(stderr.map_or_else(Stdio::inherit, Stdio::from));
    let mut child = command.spawn().map_err(spawn_error)?;
    let group = GroupGuard::new(Pid::from_raw(child.id() as i32));
    crate::reaper::note(group.leader.as_raw(), true);
    loop {
        if let Some(status) =
            child.try_wait().map_err(|source| ProcessError::Wait { program: program.clone(), source })?
        {
            group.ended.set(true);
            return Ok(Ok(exit_of(Ok(status), &program)?));
        }
        if let Some(reason) = stop() {
            group.signal_tree(Signal::SIGKILL);
            let _ = child.wait();
            group.ended.set(true);
            return Ok(Err(reason));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `spec` to completion, calling `on_line` for every line of output as it arrives.
pub async fn run(spec: &Spec, on_line: &dyn Fn(OutputStream, &str)) -> Result<Finished, ProcessError> {
    let mut command = Command::from(command_for(spec)?);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());

    let program = spec.program.display_name();
    let (mut child, group) = spawn_leading(command, spec, &program)?;

    let stdout_buf = RefCell::new(Capture::default());
    let stderr_buf = RefCell::new(Capture::default());
    let (stdout_line, stderr_line) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
    let held = std::cell::Cell::new(None);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdin = child.stdin.take();

    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(input)) = (stdin, spec.stdin.as_deref()) {
                // A child that exits without reading its input is not an error.
                let _ = pipe.write_all(input).await;
            }
        };
        let wait = async {
            let status = child.wait().await;
            // The leader is gone: whatever it left behind in its group goes too, which also
            // closes the pipes those stragglers held so the readers below reach EOF.
            if let Some(group) = &group {
                group.ended.set(true);
                group.signal(Signal::SIGKILL);
            }
            status
        };
        let reading = async {
            tokio::join!(
                // (Stdout first when both have something: as a terminal would show `echo a;
                // echo b >&2`, whatever the order of the polls before.)
                biased;
                pump(stdout, OutputStream::Stdout, (&stdout_buf, &stdout_line), on_line),
                pump(stderr, OutputStream::Stderr, (&stderr_buf, &stderr_line), on_line),
            );
        };
        let exited = async {
            let (status, ()) = tokio::join!(wait, feed);
            status
        };
        tokio::pin!(reading, exited);
        let mut read_all = false;
        let status = loop {
            tokio::select! {
                // (Output first: what the command wrote is read before its end is seen.)
                biased;
                () = &mut reading, if !read_all => read_all = true,
                status = &mut exited => break status,
            }
        };
        // The leader is gone and its group killed: whatever still holds the output is a
        // process in a session of its own (`setsid`). What it wrote so far is read; it is
        // not waited for.
        if !read_all && tokio::time::timeout(STRAGGLER_GRACE, &mut reading).await.is_err() {
            let note = "sloth-runner: a process the command started in a session of its own still holds its output; not waited for";
            on_line(OutputStream::Stderr, note);
            held.set(Some(note));
        }
        status
    };

    let exit = match unless_late(spec.timeout, work).await {
        Some(status) => exit_of(status, &program)?,
        None => {
            // What it printed after its last newline — often the prompt it hung on — is shown
            // as a command that ends shows it.
            for (stream, line) in [(OutputStream::Stdout, &stdout_line), (OutputStream::Stderr, &stderr_line)] {
                let line = std::mem::take(&mut *line.borrow_mut());
                if !line.is_empty() {
                    emit_line(stream, &line, on_line);
                }
            }
            timed_out(spec.timeout, &mut child, group.as_ref()).await
        }
    };
    drop(group);
    let mut stderr = stderr_buf.into_inner().into_bytes();
    if let Some(note) = held.get() {
        stderr.extend_from_slice(note.as_bytes());
        stderr.push(b'\n');
    }
    Ok(Finished { exit, stdout: stdout_buf.into_inner().into_bytes(), stderr })
}

fn exit_of(status: std::io::Result<std::process::ExitStatus>, program: &str) -> Result<Exit, ProcessError> {
    use std::os::unix::process::ExitStatusExt;
    let status = status.map_err(|source| ProcessError::Wait { program: program.to_owned(), source })?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    })
}

/// SIGTERM to the whole group — and to the groups its processes made of their own — a short
/// grace, then SIGKILL; reaps the leader.
async fn terminate(child: &mut Child, group: Option<&GroupGuard>) {
    // Found once: the leader's end breaks the chain to them.
    let others = group.map(GroupGuard::other_groups).unwrap_or_default();
    let signal_all = |signal: Signal| {
        if let Some(group) = group {
            signal_groups(&others, group.leader, signal);
        }
    };
    signal_all(Signal::SIGTERM);
    if tokio::time::timeout(TERMINATE_GRACE, child.wait()).await.is_err() {
        signal_all(Signal::SIGKILL);
        let _ = child.wait().await;
    }
    signal_all(Signal::SIGKILL);
    if let Some(group) = group {
        group.ended.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::output::LINE_LIMIT;
    use super::*;

    fn shell(line: &str) -> Spec {
        Spec {
            program: Program::Shell(line.to_owned()),
            cwd: std::env::temp_dir(),
            env: vec![],
            stdin: None,
            timeout: None,
        }
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let lines = RefCell::new(Vec::new());
        let finished = run(&shell("echo out; echo err >&2; exit 3"), &|stream, line| {
            lines.borrow_mut().push((stream, line.to_owned()))
        })
        .await
        .expect("sh runs");
        assert_eq!(finished.exit, Exit::Code(3));
        assert_eq!(finished.stdout, b"out\n");
        assert_eq!(finished.stderr, b"err\n");
        assert!(lines.borrow().contains(&(OutputStream::Stdout, "out".to_owned())));
        assert!(lines.borrow().contains(&(OutputStream::Stderr, "err".to_owned())));
    }

    #[tokio::test]
    async fn feeds_stdin_and_reports_partial_last_line() {
        let mut spec = shell("cat");
        spec.stdin = Some(b"no newline".to_vec());
        let lines = RefCell::new(Vec::new());
        let finished = run(&spec, &|_, line| lines.borrow_mut().push(line.to_owned())).await.expect("cat runs");
        assert_eq!(finished.stdout, b"no newline");
        assert_eq!(*lines.borrow(), vec!["no newline".to_owned()]);
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_still_shows_what_it_printed_after_its_last_newline() {
        let mut spec = shell("echo first; printf 'waiting for input...'; printf 'and on stderr' >&2; sleep 30");
        spec.timeout = Some(Duration::from_millis(300));
        let lines = RefCell::new(Vec::new());
        let finished =
            run(&spec, &|stream, line| lines.borrow_mut().push((stream, line.to_owned()))).await.expect("sh runs");
        assert_eq!(finished.exit, Exit::TimedOut(Duration::from_millis(300)));
        let lines = lines.into_inner();
        assert!(lines.contains(&(OutputStream::Stdout, "first".to_owned())), "{lines:?}");
        assert!(lines.contains(&(OutputStream::Stdout, "waiting for input...".to_owned())), "{lines:?}");
        assert!(lines.contains(&(OutputStream::Stderr, "and on stderr".to_owned())), "{lines:?}");
    }

    #[tokio::test]
    async fn a_line_too_long_to_show_whole_is_cut_between_characters() {
        // One ASCII byte, then two-byte characters: a cut at the limit falls inside one.
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("x{}\n", "\u{e9}".repeat(64 * (LINE_LIMIT / 128 + 2)));
        std::fs::write(dir.path().join("long"), &text).expect("write");
        let spec = Spec { cwd: dir.path().to_path_buf(), ..shell("cat long") };
        let lines = RefCell::new(Vec::new());
        run(&spec, &|_, line| lines.borrow_mut().push(line.to_owned())).await.expect("sh runs");
        let lines = lines.into_inner();
        assert!(lines.len() >= 2, "cut in pieces: {}", lines.len());
        assert!(lines.iter().all(|line| !line.contains('\u{fffd}')), "no character cut in two");
        assert_eq!(lines.concat().chars().filter(|c| *c == '\u{e9}').count(), 64 * (LINE_LIMIT / 128 + 2));
    }

    #[tokio::test]
    async fn a_background_straggler_does_not_hold_the_run_open() {
        let started = std::time::Instant::now();
        let finished = run(&shell("sleep 30 & echo done"), &|_, _| {}).await.expect("sh runs");
        assert_eq!(finished.exit, Exit::Code(0));
        assert!(started.elapsed() < Duration::from_secs(20), "the straggler was not killed");
    }

    #[tokio::test]
    async fn a_process_in_a_session_of_its_own_holding_the_output_is_not_waited_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        // (It waits until the process is in its session: only then is it out of reach.)
        let line = format!(
            "setsid sh -c 'echo $$ > {0}; exec sleep 30' & while [ ! -s {0} ]; do sleep 0.01; done; echo hi",
            pidfile.display()
        );
        let finished = tokio::time::timeout(Duration::from_secs(20), run(&shell(&line), &|_, _| {}))
            .await
            .expect("not waited for")
            .expect("sh runs");
        let pid = std::fs::read_to_string(&pidfile).expect("pid");
        let _ = nix::sys::signal::kill(Pid::from_raw(pid.trim().parse().expect("a pid")), Signal::SIGKILL);
        assert_eq!(finished.exit, Exit::Code(0));
        assert_eq!(finished.stdout, b"hi\n");
        assert!(String::from_utf8_lossy(&finished.stderr).contains("session of its own"), "said");
    }

    #[tokio::test]
    async fn spawn_errors_name_the_directory() {
        let mut spec = shell("true");
        spec.cwd = PathBuf::from("/definitely/not/here");
        let error = run(&spec, &|_, _| {}).await.expect_err("cwd does not exist");
        assert!(error.to_string().contains("/definitely/not/here"), "{error}");
    }
}
