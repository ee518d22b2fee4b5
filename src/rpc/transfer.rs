//! What one call to an agent has moved so far: counters the call updates as chunks go and
//! come, for whoever watches it (the status line's byte bar).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Transfer {
    /// Bytes of the workspace sent, and to send in all (both grow when the agent asks again).
    pub sent: AtomicU64,
    pub to_send: AtomicU64,
    /// Bytes of the task's changes received.
    pub received: AtomicU64,
}

impl Transfer {
    pub(crate) fn will_send(&self, bytes: u64) {
        self.to_send.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, bytes: u64) {
        self.sent.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn received_so_far(&self, bytes: u64) {
        self.received.store(bytes, Ordering::Relaxed);
    }
}
