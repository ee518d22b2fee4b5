//! Temporary directories and names, in the system's temporary directory (`TMPDIR`).

use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::FileError;

const PREFIX: &str = "sloth-";

/// A freshly created directory only its owner can enter (mode 0700); kept, not removed on drop.
pub fn temp_dir() -> Result<PathBuf, FileError> {
    let base = std::env::temp_dir();
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(FileError::io(&base))?;
    Ok(dir.keep())
}

/// A path in the temporary directory that nothing is at now; nothing is created, so another
/// process may take it before the caller does (as with the Go tool's `fs.tmpname`). To get a
/// place of one's own, [`temp_dir`] is the safe call.
pub fn temp_name() -> PathBuf {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        // Randomly keyed per call (std seeds each `RandomState` from the system's randomness),
        // mixed with the process and a counter so two calls never share a name.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
        let candidate = base.join(format!("{PREFIX}{:016x}", hasher.finish()));
        if std::fs::symlink_metadata(&candidate).is_err() {
            return candidate;
        }
    }
}
