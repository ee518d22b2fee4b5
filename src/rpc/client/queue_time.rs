//! A call's time limit that does not count the time its task waits for one of the agent's
//! `--max-tasks` slots: a task's timeout is for running it, here or on an agent, and a task
//! waiting behind others has not begun.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// `work`'s output, or None when it took longer than `limit`, not counting the time
/// `waiting` said true.
pub(super) async fn within<T>(
    work: impl Future<Output = T>,
    limit: Duration,
    mut waiting: watch::Receiver<bool>,
) -> Option<T> {
    tokio::pin!(work);
    let mut left = limit;
    loop {
        let paused = *waiting.borrow_and_update();
        let since = Instant::now();
        tokio::select! {
            output = &mut work => return Some(output),
            () = tokio::time::sleep(left), if !paused => return None,
            changed = waiting.changed() => {
                if !paused {
                    left = left.saturating_sub(since.elapsed());
                }
                if changed.is_err() {
                    // Nobody can say otherwise any more: as things stand.
                    return if paused { Some(work.await) } else { tokio::time::timeout(left, work).await.ok() };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_wait_for_a_slot_is_not_counted() {
        let (tx, rx) = watch::channel(false);
        let work = async move {
            tokio::time::sleep(ms(50)).await;
            tx.send_replace(true);
            tokio::time::sleep(ms(600)).await;
            tx.send_replace(false);
            tokio::time::sleep(ms(50)).await;
            "done"
        };
        assert_eq!(within(work, ms(300), rx).await, Some("done"));
    }

    #[tokio::test]
    async fn time_before_and_after_a_wait_adds_up() {
        let (tx, rx) = watch::channel(false);
        let work = async move {
            tokio::time::sleep(ms(200)).await;
            tx.send_replace(true);
            tokio::time::sleep(ms(400)).await;
            tx.send_replace(false);
            tokio::time::sleep(ms(10_000)).await;
            "done"
        };
        let started = Instant::now();
        assert_eq!(within(work, ms(300), rx).await, None);
        let took = started.elapsed();
        assert!(took >= ms(700) && took < ms(5_000), "{took:?}");
    }
}
