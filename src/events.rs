//! What a running task reports while it runs: log lines and lines of command output.
//!
//! On an agent, these travel to the master instead of (only) the local console; the native
//! modules send them to the VM's [`EventSink`] when one is installed.

use tokio::sync::mpsc::UnboundedSender;

use crate::process::OutputStream;

/// One thing a task said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    Log {
        level: tracing::Level,
        message: String,
        fields: String,
    },
    Output {
        stream: OutputStream,
        line: String,
    },
    /// What the task's Lua code printed (`print`, one call, without its newline), in pieces
    /// of at most [`PRINT_PIECE`] bytes (`more`: another piece of the same call follows): the
    /// master prints it as it is, so a function task says the same wherever it runs.
    Print {
        text: String,
        more: bool,
    },
}

/// The most bytes of one printed text per event (a message stays far below gRPC's limit).
pub const PRINT_PIECE: usize = 1024 * 1024;

/// Where a VM's task events go (installed as VM app data on agents).
#[derive(Debug, Clone)]
pub struct EventSink(pub UnboundedSender<TaskEvent>);

impl EventSink {
    /// Sends an event; a receiver that is gone (the call was cancelled) is not an error.
    pub fn send(&self, event: TaskEvent) {
        let _ = self.0.send(event);
    }
}
