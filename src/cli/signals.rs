//! SIGINT, SIGTERM and SIGHUP for a run: the first cancels everything — running tasks and the
//! processes they started, remote calls, and Lua code that never yields (through the VM's abort
//! flag, which its instruction hook checks), during loading as well as during the run — and the
//! run exits 130, 143 or 129; a second one exits at once, killing the process groups of the
//! tasks still running on its way — unless a task's changes are being applied to a workspace
//! (or taken back, the first signal having cancelled them): that is waited for, so the
//! workspace is left as it was or as the task left it, never half of each; a third one exits
//! then too, naming the workspace left half-applied.
//!
//! The signals are awaited on a thread of their own: the run's single-threaded runtime cannot
//! notice anything while Lua code keeps its thread busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

/// The signal an exit code of [`Signals`] stands for.
pub fn name_of(code: u8) -> &'static str {
    match code {
        143 => "SIGTERM",
        129 => "SIGHUP",
        _ => "SIGINT",
    }
}

/// Exits with `code` at once, the process groups of the tasks still running killed first.
fn exit_now(code: u8) -> ! {
    crate::status_line::disable();
    eprintln!("interrupted again: exiting now");
    crate::reaper::kill_live();
    std::process::exit(i32::from(code));
}

/// Once no workspace is being applied to in this process.
async fn none_applying() {
    while !crate::workspace::applying().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Workspaces for a message.
fn shown(roots: &[std::path::PathBuf]) -> String {
    roots.iter().map(|root| root.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The signals of one run.
#[derive(Debug, Clone)]
pub struct Signals {
    /// Raised at the first signal (by `vm`); the Lua VM's hook stops whatever code runs.
    pub abort: Arc<AtomicBool>,
    /// The thread that runs the VM (it enters it), and `abort`: interrupted at the first signal
    /// if blocked in a native call, where the hook does not run.
    pub vm: crate::runtime::interrupt::VmThread,
    code: Arc<AtomicU8>,
    notify: Arc<Notify>,
}

impl Signals {
    /// Starts watching (the handlers are in place when this returns).
    pub fn watch() -> std::io::Result<Self> {
        let abort = Arc::<AtomicBool>::default();
        let vm = crate::runtime::interrupt::VmThread::new(Arc::clone(&abort));
        let signals = Self { abort, vm, code: Arc::default(), notify: Arc::default() };
        let watcher = signals.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("signals".to_owned()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            runtime.block_on(async move {
                let streams =
                    (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()));
                let (mut int, mut term, mut hup) = match streams {
                    (Ok(int), Ok(term), Ok(hup)) => (int, term, hup),
                    (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let code = tokio::select! {
                        _ = int.recv() => 130,
                        _ = term.recv() => 143,
                        _ = hup.recv() => 129,
                    };
                    if !watcher.received(code) {
                        continue;
                    }
                    // A second signal. A workspace being applied to is left whole first.
                    let applying = crate::workspace::applying();
                    if !applying.is_empty() {
                        crate::status_line::disable();
                        eprintln!(
                            "interrupted again: waiting for the changes being applied to {} to be finished or \
                             taken back (once more to exit at once, leaving it half-applied)",
                            shown(&applying)
                        );
                        let third = tokio::select! {
                            _ = int.recv() => true,
                            _ = term.recv() => true,
                            _ = hup.recv() => true,
                            () = none_applying() => false,
                        };
                        if third {
                            let left = crate::workspace::applying();
                            if !left.is_empty() {
                                eprintln!(
                                    "exiting now: {} is left half-applied; the next remote task on it (or \
                                     `sloth-runner run` of one) takes the steps back",
                                    shown(&left)
                                );
                            }
                        }
                    }
                    exit_now(code);
                }
            });
        })?;
        ready_rx.recv().map_err(|_| std::io::Error::other("the signal thread ended"))??;
        Ok(signals)
    }

    /// Records a signal; whether it is a second one (the run is to exit).
    fn received(&self, code: u8) -> bool {
        if self.code.swap(code, Ordering::SeqCst) != 0 {
            return true;
        }
        self.vm.stop();
        self.notify.notify_one();
        false
    }

    /// Forgets the signal received (a REPL goes on after an interrupted line).
    pub fn reset(&self) {
        self.code.store(0, Ordering::SeqCst);
        self.vm.lower();
    }

    /// The exit code of the signal received, if one was.
    pub fn code(&self) -> Option<u8> {
        Some(self.code.load(Ordering::SeqCst)).filter(|code| *code != 0)
    }

    /// Waits for the first signal; its exit code.
    pub async fn first(&self) -> u8 {
        loop {
            if let Some(code) = self.code() {
                return code;
            }
            self.notify.notified().await;
        }
    }
}
