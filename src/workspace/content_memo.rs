//! Small files' contents as a scan read them, by their hash, for the archive that sends them:
//! a new workspace's files were read and hashed by the snapshot, then read again to be sent
//! (a quarter of the master's CPU for a cold task over 20,000 small files). Only a process that
//! sends workspaces turns it on (`run`, the REPL): an agent holds no contents beyond its cache.
//!
//! Content-addressed, so it can never send bytes other than the ones a manifest names: what a
//! scan read is what it hashed. Bounded in bytes; the oldest go first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Files larger than this are read again when sent (they are few, and would crowd the rest).
const MAX_FILE: u64 = 64 * 1024;

/// What a process that sends workspaces holds: the small files of a cold task over a large
/// workspace (20,000 files of 1 KiB take 20 MiB), within the master's memory target.
pub const MASTER_LIMIT: u64 = 32 * 1024 * 1024;

/// The most held at once (0: off).
static LIMIT: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct Memo {
    by_hash: HashMap<[u8; 32], Arc<[u8]>>,
    order: VecDeque<[u8; 32]>,
    bytes: u64,
}

fn memo() -> std::sync::MutexGuard<'static, Memo> {
    static MEMO: LazyLock<Mutex<Memo>> = LazyLock::new(Mutex::default);
    MEMO.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds up to `max_bytes` of small files' contents from now on.
pub fn enable(max_bytes: u64) {
    LIMIT.store(max_bytes, Ordering::Relaxed);
}

/// Whether a file of `size` bytes would be kept.
pub(super) fn wants(size: u64) -> bool {
    size <= MAX_FILE && size <= LIMIT.load(Ordering::Relaxed)
}

/// Keeps `bytes`, whose BLAKE3 is `hash`.
pub(super) fn offer(hash: &blake3::Hash, bytes: &[u8]) {
    if wants(bytes.len() as u64) {
        memo().keep(hash, bytes, LIMIT.load(Ordering::Relaxed));
    }
}

impl Memo {
    fn keep(&mut self, hash: &blake3::Hash, bytes: &[u8], limit: u64) {
        if self.by_hash.contains_key(hash.as_bytes()) {
            return;
        }
        self.bytes += bytes.len() as u64;
        self.by_hash.insert(*hash.as_bytes(), Arc::from(bytes));
        self.order.push_back(*hash.as_bytes());
        while self.bytes > limit {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(gone) = self.by_hash.remove(&oldest) {
                self.bytes -= gone.len() as u64;
            }
        }
    }

    fn get(&self, hash: &blake3::Hash) -> Option<Arc<[u8]>> {
        self.by_hash.get(hash.as_bytes()).cloned()
    }
}

/// The content whose BLAKE3 is `hash`, if it is held.
pub(super) fn get(hash: &blake3::Hash) -> Option<Arc<[u8]>> {
    if LIMIT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    memo().get(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_are_held_by_their_hash_within_the_limit_oldest_out_first() {
        let mut memo = Memo::default();
        let (a, b) = (b"aaaaaa".as_slice(), b"bbbbbb".as_slice());
        memo.keep(&blake3::hash(a), a, 10);
        assert_eq!(memo.get(&blake3::hash(a)).as_deref(), Some(a));
        memo.keep(&blake3::hash(b), b, 10);
        assert_eq!(memo.get(&blake3::hash(a)), None, "past the limit the oldest goes");
        assert_eq!(memo.get(&blake3::hash(b)).as_deref(), Some(b));
        assert_eq!(memo.bytes, 6);
    }
}
