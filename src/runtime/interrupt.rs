//! A VM thread blocked in a native call — Lua's `io.read` of a terminal or a pipe nobody
//! writes to, `io.open` of a named pipe — runs no instruction hook, so neither a cancelled
//! remote task (the agent's slot held for ever) nor a first Ctrl-C (a second one was needed)
//! could stop it. Once the VM is to stop, the thread is sent a signal whose handler does
//! nothing and does not restart the call: the call fails with EINTR, back in Lua, and the
//! prelude's check after a failed read or open (or the hook, or the check before a command
//! starts) stops the code there.
//!
//! The signal goes to that thread only, and only while it runs the VM's code: a thread that
//! has left it (marked when its guard from [`VmThread::enter`] drops, under the same lock the
//! signal is sent under)
//! is never sent one, so its next work (an agent's next task) is never interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Unused by anything else here; its default action is to do nothing.
const SIGNAL: Signal = Signal::SIGURG;

/// How often a thread still blocked is sent the signal again (the signal may come just before
/// the call is made).
const AGAIN_EVERY: Duration = Duration::from_millis(20);

/// How long a thread is sent it at most: one that does not leave the VM's code by then is in
/// something no signal ends (a pattern that backtracks without end, a call that retries), or
/// idle at a REPL's prompt, and is left alone.
const AT_MOST: Duration = Duration::from_secs(10);

extern "C" fn nothing(_: nix::libc::c_int) {}

/// The handler, once per process: no `SA_RESTART`, so a blocked call returns EINTR.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let action = SigAction::new(SigHandler::Handler(nothing), SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler does nothing (async-signal-safe), and SIGURG is not used otherwise
        // in this process (tokio and the tasks' processes do not listen for it; a process
        // started after this gets the default action back at exec).
        #[allow(unsafe_code)]
        let installed = unsafe { sigaction(SIGNAL, &action) };
        if let Err(error) = installed {
            tracing::warn!(%error, "cannot install the handler that interrupts a blocked Lua call");
        }
    });
}

/// The thread a VM runs on, for as long as it runs the VM's code, and the flag that says the VM
/// is to stop (the one its hook checks).
#[derive(Debug, Clone)]
pub struct VmThread {
    thread: Arc<Mutex<Option<Pthread>>>,
    stop: Arc<AtomicBool>,
}

impl VmThread {
    /// No thread yet (one [`VmThread::enter`]s); `stop` raised by [`VmThread::stop`].
    pub fn new(stop: Arc<AtomicBool>) -> Self {
        install();
        Self { thread: Arc::new(Mutex::new(None)), stop }
    }

    /// The calling thread runs the VM's code until the returned guard is dropped; if the VM is
    /// to stop already, it is interrupted from now on.
    pub fn enter(&self) -> LeavesVm {
        let stopped = {
            let mut thread = self.lock();
            *thread = Some(pthread_self());
            self.stop.load(Ordering::SeqCst)
        };
        if stopped {
            self.keep_interrupting();
        }
        LeavesVm(self.clone())
    }

    /// Raises the stop flag, and interrupts the thread's blocked calls until it has left the
    /// VM's code or the flag is lowered (from a thread of its own, started only if a thread
    /// runs the VM's code: one that enters later is interrupted from [`VmThread::enter`]).
    pub fn stop(&self) {
        let in_vm = {
            let thread = self.lock();
            self.stop.store(true, Ordering::SeqCst);
            thread.is_some()
        };
        if in_vm {
            self.keep_interrupting();
        }
    }

    /// Lowers the stop flag where no signal can be on its way in the meantime (a REPL goes on
    /// after an interrupted line).
    pub fn lower(&self) {
        let _thread = self.lock();
        self.stop.store(false, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pthread>> {
        self.thread.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread has left the VM's code: it is not interrupted after this returns.
    fn done(&self) {
        *self.lock() = None;
    }

    /// Interrupts the thread's blocked call if the VM is to stop and the thread still runs its
    /// code; whether it was.
    fn interrupt_once(&self) -> bool {
        let thread = self.lock();
        match *thread {
            Some(thread) if self.stop.load(Ordering::SeqCst) => {
                let _ = pthread_kill(thread, SIGNAL);
                true
            }
            _ => false,
        }
    }

    fn keep_interrupting(&self) {
        let thread = self.clone();
        let spawned = std::thread::Builder::new().name("interrupt".to_owned()).spawn(move || {
            let until = std::time::Instant::now() + AT_MOST;
            while thread.interrupt_once() && std::time::Instant::now() < until {
                std::thread::sleep(AGAIN_EVERY);
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the thread that interrupts a blocked Lua call");
        }
    }
}

/// Marks the thread as having left the VM's code when dropped (also when it unwinds).
#[derive(Debug)]
pub struct LeavesVm(VmThread);

impl Drop for LeavesVm {
    fn drop(&mut self) {
        self.0.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_blocked_reading_a_pipe_is_interrupted_once_stopped_and_never_after_it_left() {
        let (reader, _writer) = std::os::unix::net::UnixStream::pair().expect("pair");
        let vm = VmThread::new(Arc::new(AtomicBool::new(false)));
        let (tx, rx) = std::sync::mpsc::channel();
        let blocked = {
            let vm = vm.clone();
            std::thread::spawn(move || {
                let leaves = vm.enter();
                tx.send(()).expect("send");
                // A raw read: std's own retry of EINTR is what is asked for elsewhere.
                let mut byte = [0u8; 1];
                let read = nix::unistd::read(&reader, &mut byte);
                drop(leaves);
                drop(reader);
                read
            })
        };
        rx.recv().expect("entered");
        assert!(!vm.interrupt_once(), "not stopped: no signal");
        vm.stop();
        let read = blocked.join().expect("join");
        assert_eq!(read, Err(nix::errno::Errno::EINTR));
        assert!(!vm.interrupt_once(), "the thread left the VM's code: no signal");
    }
}
