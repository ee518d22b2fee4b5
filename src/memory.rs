//! What a long-running agent gives back. An agent serves tasks on pools of threads that come
//! and go (task threads, blocking threads) and reads each run's pipeline in a fresh VM; with
//! glibc's allocator, which keeps what a thread freed in that thread's arena and makes up to
//! eight arenas per core, a 400-task chain per run measured 10 MiB idle, then +2.5 MiB per run,
//! still growing after 2,400 tasks. The allocator is mimalloc now (`src/main.rs`), which gives
//! freed pages back by itself after a moment; glibc's still serves what C code allocates with
//! `malloc`. So the agent keeps glibc to two arenas, and once it has been idle a moment after
//! work (again after the VMs it held for a pipeline's next task have gone) has both allocators
//! give back what they can. Elsewhere these do nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bumped when a task ends: there may be memory to give back.
static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// How long the agent must have been idle before memory is given back, and when again: once
/// the VMs kept for a pipeline's next task have gone too.
const AFTER: [Duration; 2] =
    [Duration::from_secs(3), Duration::from_secs(3 + crate::runtime::task_workers::HOLD_FOR.as_secs())];
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A task ended.
pub fn touched() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// Whether a task has ended since the agent started.
pub fn worked() -> bool {
    ACTIVITY.load(Ordering::Relaxed) > 0
}

/// How many idle passes have given memory back: a ready task thread makes its VM again when
/// this changes (`crate::runtime::task_workers`).
pub fn idle_pass() -> u64 {
    COLLECT_EPOCH.load(Ordering::Relaxed)
}

/// At an agent's start, before its threads: at most two arenas.
pub fn limit_arenas() {
    glibc::limit_arenas(2);
}

/// Bumped by each idle pass: the async runtime's workers give their freed memory back when
/// they next park ([`collect_if_asked`]).
static COLLECT_EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The idle pass this thread last gave its memory back for.
    static COLLECTED_FOR: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// For the agent's async workers as they park: gives back this thread's freed memory once per
/// idle pass (a worker's heap is its own, and the idle pass runs on a thread of its own). The
/// rest of the time it costs a load.
pub fn collect_if_asked() {
    let asked = COLLECT_EPOCH.load(Ordering::Relaxed);
    COLLECTED_FOR.with(|done| {
        if done.get() != asked {
            done.set(asked);
            collect();
        }
    });
}

/// Starts the thread that gives memory back while nothing is `in_flight`; it ends with them.
/// Called inside the agent's async runtime, whose workers it wakes to give back theirs.
pub fn give_back_when_idle(in_flight: &Arc<AtomicU32>) {
    let runtime = tokio::runtime::Handle::try_current().ok();
    let in_flight = Arc::downgrade(in_flight);
    let _ = std::thread::Builder::new().name("give-back".to_owned()).spawn(move || {
        let mut seen = ACTIVITY.load(Ordering::Relaxed);
        let mut since = Instant::now();
        let mut given = AFTER.len();
        loop {
            std::thread::sleep(LOOK_EVERY);
            let Some(in_flight) = in_flight.upgrade() else { return };
            let now = ACTIVITY.load(Ordering::Relaxed);
            if now != seen || in_flight.load(Ordering::Relaxed) > 0 {
                (seen, since, given) = (now, Instant::now(), 0);
                continue;
            }
            if given < AFTER.len() && since.elapsed() >= AFTER[given] {
                glibc::trim();
                collect();
                COLLECT_EPOCH.fetch_add(1, Ordering::Relaxed);
                // Idle workers are parked: a few empty tasks wake them, and they park again.
                if let Some(runtime) = &runtime {
                    for _ in 0..4 {
                        runtime.spawn(tokio::task::yield_now());
                    }
                }
                given += 1;
                tracing::debug!(pass = given, "gave freed memory back to the system");
            }
        }
    });
}

/// Has mimalloc give back what this thread's heap holds freed: a thread's heap is its own, and
/// the idle pass above reaches only the thread it runs on. For threads that wait between tasks
/// (a task thread frees its task's VM into its own heap).
pub fn collect_this_thread() {
    collect();
}

/// Has mimalloc (the allocator, see `src/main.rs`) free what it can and give it back.
#[allow(unsafe_code)]
fn collect() {
    // SAFETY: mi_collect only frees and purges the allocator's own free memory; it may be
    // called from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use nix::libc;

    #[allow(unsafe_code)]
    pub fn limit_arenas(arenas: i32) {
        // SAFETY: mallopt only sets an allocator parameter; called before the agent's threads.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }

    #[allow(unsafe_code)]
    pub fn trim() {
        // SAFETY: malloc_trim releases free memory at the top and inside the heaps; it takes the
        // allocator's own locks and may be called from any thread.
        unsafe { libc::malloc_trim(0) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub fn limit_arenas(_arenas: i32) {}
    pub fn trim() {}
}
