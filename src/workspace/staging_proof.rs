//! Which staging directories in a workspace an apply of this user made. Recovery replays the
//! journal it finds in one and removes it: that must never be done to a directory that only
//! looks like one — a name, a mark, a journal can all come in a checkout or an archive (and a
//! replayed journal could put any file anywhere in the workspace). The proof is a random token
//! written in the directory before it is published, and a record under that token in the
//! user's cache directory (outside the workspace, where no checkout reaches; readable by this
//! user only) of the directory's device, inode and birth time — a directory made later at the
//! same inode is not the one recorded. The directory must be this user's and marked too.
//! Records of directories never cleaned up go after a week (the directory, if still there,
//! is then left for the user).
//!
//! Without a cache directory outside the workspace there is no proof: an apply then still
//! runs, but one that dies halfway is left for the user to see (never replayed).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The token's file inside a staging directory.
pub const TOKEN_FILE: &str = ".sloth-apply-token";

/// A token's length: 16 random bytes, in hex.
const TOKEN_LEN: usize = 32;

/// How long a record is kept for a directory nobody cleaned up.
const RECORD_LIFE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What a record says of a directory: device, inode, birth time (where the filesystem keeps
/// one).
fn identity(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let born = meta
        .created()
        .ok()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(|| "-".to_owned(), |since| format!("{}.{:09}", since.as_secs(), since.subsec_nanos()));
    format!("{} {} {born}\n", meta.dev(), meta.ino())
}

/// Removes the records older than [`RECORD_LIFE`].
fn prune(records: &Path) {
    let Ok(entries) = std::fs::read_dir(records) else { return };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > RECORD_LIFE));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The record of one staging directory, removed once the directory is.
#[derive(Debug)]
pub struct Proof {
    record: PathBuf,
}

impl Proof {
    /// The directory is gone (or set aside for good): its record goes.
    pub fn withdraw(self) {
        let _ = std::fs::remove_file(&self.record);
    }
}

/// Where the records of the staging directories of the workspace at `root` are kept (made
/// when `make` says so); None when the cache directory is missing, not really this user's, or
/// inside the workspace (see [`super::cache_home::own_dir`]).
fn records(root: &Path, make: bool) -> Option<PathBuf> {
    super::cache_home::own_dir(&super::cache_home::cache_dir()?, "staging", root, make)
}

/// Writes a token into `dir` (a staging directory of the workspace `root`, not yet
/// published) and its record; None where no record can be kept.
pub fn issue(dir: &Path, root: &Path) -> std::io::Result<Option<Proof>> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let Some(records) = records(root, true) else { return Ok(None) };
    let mut bytes = [0u8; TOKEN_LEN / 2];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token = crate::hex::encode(&bytes);
    let meta = std::fs::symlink_metadata(dir)?;
    let record = records.join(&token);
    // The record is kept in the cache directory, on a disk of its own maybe: one that cannot
    // be written there (full, read-only) costs the apply its proof, as no cache directory
    // does — never the apply itself, nor an error that names the workspace.
    let recorded = std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o700))
        .and_then(|()| {
            prune(&records);
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&record)
        })
        .and_then(|mut file| file.write_all(identity(&meta).as_bytes()));
    if let Err(error) = recorded {
        let _ = std::fs::remove_file(&record);
        tracing::warn!(
            records = %records.display(), %error,
            "cannot keep the proof of this apply: an apply that dies halfway is not taken back"
        );
        return Ok(None);
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(TOKEN_FILE))
        .and_then(|mut file| file.write_all(token.as_bytes()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&record);
        return Err(error);
    }
    Ok(Some(Proof { record }))
}

/// The proof that `dir` (opened and locked as `opened`) is a staging directory an apply of
/// this user made in the workspace `root`, if it holds.
pub fn find(dir: &Path, opened: &File, root: &Path) -> Option<Proof> {
    if !crate::locked_dir::is_marked(dir) {
        return None;
    }
    let token_path = dir.join(TOKEN_FILE);
    let meta = std::fs::symlink_metadata(&token_path).ok()?;
    if !meta.is_file() || meta.len() != TOKEN_LEN as u64 {
        return None;
    }
    let token = std::fs::read_to_string(&token_path).ok()?;
    if !token.bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()) {
        return None;
    }
    let record = records(root, false)?.join(&token);
    let recorded = std::fs::read_to_string(&record).ok()?;
    let here = opened.metadata().ok()?;
    (recorded == identity(&here)).then_some(Proof { record })
}
