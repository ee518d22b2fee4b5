//! A task's processes do not outlive the process that started them — an agent, or a master
//! running tasks here — even one killed with `kill -9` — every process of the task's process
//! group, and of the groups its processes made of their own (`timeout`, `set -m`) while its
//! leader lives: one that leaves for a session of its own (`setsid`, daemons) is out of reach,
//! as it is of a timeout.
//!
//! An agent at its start, any other process when it starts its first command, spawns one small
//! companion process (`sloth-runner __reap`, in a process group of its own, so a Ctrl-C meant
//! for the agent does not reach it) and keeps the write end of a pipe to it. Every process
//! group a task starts is announced on that pipe (`+PGID`) and withdrawn when it is over
//! (`-PGID`). However the process ends, the kernel closes the pipe; the companion then kills
//! every group still announced and exits. (`PR_SET_PDEATHSIG` would only
//! reach the group leader, and fires when the forking thread ends rather than the agent.)

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The first argument that makes `sloth-runner` the companion.
pub const COMPANION: &str = "__reap";

static PIPE: Mutex<Option<std::process::ChildStdin>> = Mutex::new(None);

/// The process groups of this process's tasks still running: what a run that must exit at
/// once (a second Ctrl-C) kills on its way out.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Whether this process has tried to start its companion (once is enough: one that could not
/// start is not tried again for every command).
static TRIED: std::sync::Once = std::sync::Once::new();

/// Starts the companion for this process (an agent, at its start); task process groups are
/// announced to it from then on.
pub fn start() -> std::io::Result<()> {
    let mut started = Ok(());
    TRIED.call_once(|| started = spawn_companion());
    started
}

fn spawn_companion() -> std::io::Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(COMPANION)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    *PIPE.lock().unwrap_or_else(PoisonError::into_inner) = child.stdin.take();
    // Not waited for: it outlives this process by design, and is reaped by init then.
    std::mem::forget(child);
    Ok(())
}

/// Announces (`started`) or withdraws a task's process group: to the companion (started with
/// the first group, in a process that has none yet: a master running a command here, killed
/// with `kill -9`, left it running), and to [`kill_live`].
pub fn note(group: i32, started: bool) {
    if started
        && !TRIED.is_completed()
        && let Err(error) = start()
    {
        tracing::debug!(%error, "no companion: a command of this process outlives it if it is killed");
    }
    {
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        if started {
            live.push(group);
        } else {
            live.retain(|known| *known != group);
        }
    }
    let mut pipe = PIPE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pipe) = pipe.as_mut() {
        // One write (the pipe is unbuffered): a line never arrives in pieces.
        let line = format!("{}{group}\n", if started { '+' } else { '-' });
        let _ = pipe.write_all(line.as_bytes());
    }
}

/// Kills every process group of this process's tasks still running (SIGKILL), with the groups
/// their processes made of their own (`timeout`, `set -m`): for a process about to exit
/// without waiting for its tasks to be cancelled (`os.exit`, a second Ctrl-C).
pub fn kill_live() {
    let live: Vec<i32> = LIVE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for group in live.into_iter().filter(|group| *group > 1) {
        crate::process::signal_tree(Pid::from_raw(group), Signal::SIGKILL);
    }
}

/// The companion: reads announcements until the pipe closes, then kills every group still
/// announced.
pub fn companion() -> ExitCode {
    // Terminal signals are for the agent; the companion ends when the agent does.
    for signal in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGTERM, Signal::SIGPIPE] {
        // SAFETY: setting the disposition to "ignore" runs no handler code.
        #[allow(unsafe_code)]
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigIgn) };
    }
    let mut groups = std::collections::HashSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(group) = number.parse::<i32>() else { continue };
        if group <= 1 {
            continue;
        }
        match sign {
            "+" => {
                groups.insert(group);
            }
            "-" => {
                groups.remove(&group);
            }
            _ => {}
        }
    }
    for group in groups {
        // With the groups its processes made of their own (`timeout`, `set -m`), found from
        // the group's leader down while it lives.
        crate::process::signal_tree(Pid::from_raw(group), Signal::SIGKILL);
    }
    ExitCode::SUCCESS
}
