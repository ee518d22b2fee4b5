//! A VM thread blocked in a native call — Lua's `io.read` of a terminal or a pipe nobody
//! writes to, `io.open` of a named pipe — runs no instruction hook, so neither a cancelled
//! remote task (the agent's slot held for ever) nor a first Ctrl-C (a second one was needed)
//! could stop it. Once the VM is to stop, the thread is sent a signal whose handler does
//! nothing and does not restart the call: the call fails with EINTR, back in Lua, and the
//! prelude's check after a failed read or open (or the hook, or the check before a command
//! starts) stops the code there.
//!
//! The signal goes to that thread only, and only while it runs the VM's code: a thread that
//! has left it (marked by [`VmThread::done`], under the same lock the signal is sent under)
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

/// The thread a VM runs on, for as long as it runs the VM's code.
#[derive(Debug, Clone)]
pub struct VmThread(Arc<Mutex<Option<Pthread>>>);

impl Default for VmThread {
    fn default() -> Self {
        Self::new()
    }
}

impl VmThread {
    /// No thread yet: one [`VmThread::enter`]s.
    pub fn new() -> Self {
        install();
        Self(Arc::new(Mutex::new(None)))
    }

    /// The calling thread runs the VM's code until the returned guard is dropped.
    pub fn enter(&self) -> LeavesVm {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(pthread_self());
        LeavesVm(self.clone())
    }

    /// Whether a thread runs the VM's code now.
    pub fn in_vm(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// The thread has left the VM's code: it is not interrupted after this returns.
    pub fn done(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Interrupts the thread's blocked call if `stop` is raised and the thread still runs the
    /// VM's code; whether it was.
    fn interrupt_if(&self, stop: &AtomicBool) -> bool {
        let thread = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match *thread {
            Some(thread) if stop.load(Ordering::SeqCst) => {
                let _ = pthread_kill(thread, SIGNAL);
                true
            }
            _ => false,
        }
    }

    /// Lowers `stop` where no signal can be on its way in the meantime (a REPL goes on after an
    /// interrupted line).
    pub fn lower(&self, stop: &AtomicBool) {
        let _thread = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        stop.store(false, Ordering::SeqCst);
    }

    /// From another thread, once `stop` is raised: interrupts the thread's blocked calls until
    /// it has left the VM's code or `stop` is lowered (a thread of its own, started only if a
    /// thread runs the VM's code).
    pub fn interrupt_while(&self, stop: Arc<AtomicBool>) {
        if !self.in_vm() {
            return;
        }
        let thread = self.clone();
        let spawned = std::thread::Builder::new().name("interrupt".to_owned()).spawn(move || {
            let until = std::time::Instant::now() + AT_MOST;
            while thread.interrupt_if(&stop) && std::time::Instant::now() < until {
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
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let blocked = std::thread::spawn(move || {
            let thread = VmThread::new();
            let leaves = thread.enter();
            tx.send(thread).expect("send");
            // A raw read: std's own retry of EINTR is what is asked for elsewhere.
            let mut byte = [0u8; 1];
            let read = nix::unistd::read(&reader, &mut byte);
            drop(leaves);
            drop(reader);
            read
        });
        let thread = rx.recv().expect("thread");
        assert!(!thread.interrupt_if(&stop), "not stopped: no signal");
        stop.store(true, Ordering::SeqCst);
        thread.interrupt_while(Arc::clone(&stop));
        let read = blocked.join().expect("join");
        assert_eq!(read, Err(nix::errno::Errno::EINTR));
        assert!(!thread.interrupt_if(&stop), "the thread left the VM's code: no signal");
    }
}
