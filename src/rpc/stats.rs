//! What an agent has done since it started: counted on the task path with relaxed atomics (a
//! histogram observation per task), read when `Info` is asked or the metrics are scraped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::receive::Traffic;
use crate::workspace::BlobCache;
use crate::workspace::trees::TreePool;

/// How a task handed to the agent's task handler ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed (a non-zero exit, a function that returned false or raised).
    Failed,
    /// The master cancelled the call or went away (Ctrl-C, a timeout, a lost connection).
    Cancelled,
    /// The agent would not run it as asked (a `same_path` view it has no right to make).
    Refused,
    /// The agent could not run it or pack its changes (no thread or VM, a full disk).
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Succeeded, Outcome::Failed, Outcome::Cancelled, Outcome::Refused, Outcome::Error];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// Tasks that ended, by outcome, and how long they ran (from the handler's start, after the
/// workspace was built, to its outcome).
#[derive(Debug)]
pub struct TaskStats {
    finished: [AtomicU64; 5],
    duration: Histogram,
}

impl Default for TaskStats {
    fn default() -> Self {
        // 50 ms to about 50 minutes.
        Self { finished: Default::default(), duration: Histogram::new(exponential_buckets(0.05, 2.5, 13)) }
    }
}

impl TaskStats {
    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        self.finished[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn finished(&self, outcome: Outcome) -> u64 {
        self.finished[outcome as usize].load(Ordering::Relaxed)
    }

    /// The duration histogram (a handle on the same buckets).
    pub fn duration(&self) -> Histogram {
        self.duration.clone()
    }
}

/// Handles on everything an agent counts, for the metrics endpoint.
#[derive(Debug, Clone)]
pub struct AgentStats {
    pub max_tasks: u32,
    pub in_flight: Arc<AtomicU32>,
    pub traffic: Arc<Traffic>,
    pub tasks: Arc<TaskStats>,
    pub cache: BlobCache,
    pub trees: Option<Arc<TreePool>>,
}
