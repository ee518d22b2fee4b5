//! What a running task reports while it runs: log lines and lines of command output.
//!
//! On an agent, these travel to the master instead of (only) the local console; the native
//! modules send them to the VM's [`EventSink`] when one is installed.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

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
    /// master prints it as it is, so a function task says the same wherever it runs (its
    /// bytes: what Lua prints need not be UTF-8).
    Print {
        text: Vec<u8>,
        more: bool,
        /// Written to the standard error, as it is (`more` then always: no newline is added).
        stderr: bool,
    },
}

/// The most bytes of one printed text per event (a message stays far below gRPC's limit).
pub const PRINT_PIECE: usize = 1024 * 1024;

/// Where a VM's task events go (installed as VM app data on agents), bounded: past
/// [`MAX_BACKLOG`] bytes not yet taken by whoever forwards them (the master reads slowly), the
/// task's thread waits — its processes then wait on their full pipes — instead of the agent
/// holding all of it in memory.
#[derive(Debug, Clone)]
pub struct EventSink {
    events: UnboundedSender<TaskEvent>,
    backlog: Arc<Backlog>,
}

/// The most bytes of events sent and not yet forwarded.
pub const MAX_BACKLOG: usize = 16 * 1024 * 1024;

/// Bytes of events sent and not yet forwarded; shared by an [`EventSink`] and its forwarder.
#[derive(Debug, Default)]
pub struct Backlog {
    bytes: Mutex<usize>,
    drained: Condvar,
}

impl Backlog {
    /// An event of `size` bytes ([`TaskEvent::size`]) has been forwarded: it no longer counts.
    pub fn forwarded(&self, size: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        *bytes = bytes.saturating_sub(size);
        self.drained.notify_all();
    }
}

impl TaskEvent {
    /// About what the event holds, in bytes.
    pub fn size(&self) -> usize {
        match self {
            TaskEvent::Log { message, fields, .. } => message.len() + fields.len() + 16,
            TaskEvent::Output { line, .. } => line.len() + 16,
            TaskEvent::Print { text, .. } => text.len() + 16,
        }
    }
}

impl EventSink {
    pub fn new(events: UnboundedSender<TaskEvent>, backlog: Arc<Backlog>) -> Self {
        Self { events, backlog }
    }

    /// Sends an event, first waiting while the backlog is full; a receiver that is gone (the
    /// call was cancelled) is not an error, and nothing waits for it.
    pub fn send(&self, event: TaskEvent) {
        let size = event.size();
        {
            let mut bytes = self.backlog.bytes.lock().unwrap_or_else(PoisonError::into_inner);
            while *bytes > 0 && *bytes + size > MAX_BACKLOG && !self.events.is_closed() {
                bytes = self
                    .backlog
                    .drained
                    .wait_timeout(bytes, std::time::Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            *bytes += size;
        }
        let _ = self.events.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backlog_holds_the_sender_until_events_are_forwarded_or_nobody_takes_them() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        let sink = EventSink::new(tx, Arc::clone(&backlog));
        // Three of them fit, not four.
        let big = || TaskEvent::Output { stream: OutputStream::Stdout, line: "x".repeat(MAX_BACKLOG / 3 - 64) };
        sink.send(big());
        sink.send(big());
        sink.send(big());
        let sender = std::thread::spawn(move || {
            sink.send(big());
            sink
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!sender.is_finished(), "the fourth event waits for room");
        let first = rx.try_recv().expect("the first event");
        backlog.forwarded(first.size());
        let sink = sender.join().expect("sender");
        assert_eq!([rx.try_recv().is_ok(), rx.try_recv().is_ok(), rx.try_recv().is_ok()], [true, true, true]);
        // Nobody forwards any more: nothing waits.
        drop(rx);
        sink.send(big());
        sink.send(big());
    }
}
