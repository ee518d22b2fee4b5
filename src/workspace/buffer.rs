//! One reusable I/O buffer per thread: copying and hashing thousands of small files must not
//! allocate and zero 64 KiB for each of them.

use std::cell::RefCell;

const SIZE: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SIZE]);
}

/// Runs `f` with this thread's buffer (a fresh one if `f` reenters).
pub fn with_buffer<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => f(&mut buffer),
        Err(_) => f(&mut vec![0u8; SIZE]),
    })
}
