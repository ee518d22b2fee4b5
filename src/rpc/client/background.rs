//! The master's connections to its agents live on a thread of their own. The master runs its
//! pipeline on one thread, which also writes the tasks' output to the console — and a write
//! to a console nobody reads right now (`| less` paused, Ctrl-S, a slow log shipper) blocks
//! that thread. Were the connections driven there too, the agents' keepalive pings would go
//! unanswered meanwhile and the agents would drop a master that is only waiting, failing its
//! remote tasks where a task here just waits for the reader. Here they keep answering; what a
//! task prints waits in the connection's flow-control window, and then on the agent, as it
//! would in a pipe.
//!
//! The socket must be made on the runtime that drives it (tokio registers it with that
//! runtime's reactor), so the connection is made there as well.

use std::future::Future;
use std::sync::OnceLock;

/// The runtime the connections run on: one thread, started on first use.
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sloth-connections")
                .enable_all()
                .build()
                .map_err(
                    |error| tracing::warn!(%error, "cannot start the connections' thread: they share the pipeline's"),
                )
                .ok()
        })
        .as_ref()
}

/// Runs `work` (making a connection) on the connections' thread, or here where there is none.
pub(super) async fn run<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    match runtime() {
        Some(runtime) => match runtime.spawn(work).await {
            Ok(done) => done,
            // The runtime is never shut down: only a panic ends the work early.
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(error) => panic!("the connections' thread dropped its work: {error}"),
            },
        },
        None => work.await,
    }
}

/// Spawns what a connection runs (its driver, its request buffer) on the connections' thread.
#[derive(Debug, Clone, Copy)]
pub(super) struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, work: F) {
        match runtime() {
            Some(runtime) => drop(runtime.spawn(work)),
            None => drop(tokio::spawn(work)),
        }
    }
}
