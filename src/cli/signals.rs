//! SIGINT, SIGTERM and SIGHUP for a run: the first cancels everything — running tasks and the
//! processes they started, remote calls, and Lua code that never yields (through the VM's abort
//! flag, which its instruction hook checks), during loading as well as during the run — and the
//! run exits 130, 143 or 129; a second one exits at once.
//!
//! The signals are awaited on a thread of their own: the run's single-threaded runtime cannot
//! notice anything while Lua code keeps its thread busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

/// The signals of one run.
#[derive(Debug, Clone)]
pub struct Signals {
    /// Raised at the first signal; the Lua VM's hook stops whatever code runs.
    pub abort: Arc<AtomicBool>,
    code: Arc<AtomicU8>,
    notify: Arc<Notify>,
}

impl Signals {
    /// Starts watching (the handlers are in place when this returns).
    pub fn watch() -> std::io::Result<Self> {
        let signals = Self { abort: Arc::default(), code: Arc::default(), notify: Arc::default() };
        let watcher = signals.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("signals".to_owned()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
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
                    watcher.received(code);
                }
            });
        })?;
        ready_rx.recv().map_err(|_| std::io::Error::other("the signal thread ended"))??;
        Ok(signals)
    }

    fn received(&self, code: u8) {
        if self.code.swap(code, Ordering::SeqCst) != 0 {
            crate::status_line::disable();
            eprintln!("interrupted again: exiting now");
            std::process::exit(i32::from(code));
        }
        self.abort.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Forgets the signal received (a REPL goes on after an interrupted line).
    pub fn reset(&self) {
        self.code.store(0, Ordering::SeqCst);
        self.abort.store(false, Ordering::SeqCst);
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
