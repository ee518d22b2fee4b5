//! Extracting an archive into a fresh directory, refusing anything that could write outside it.
//!
//! Refused, naming the entry: absolute paths, `..`, symlinks pointing outside the root, writes
//! through a symlink, hard links, devices and fifos, duplicate entries, and archives past the
//! size or entry limit (counted on decompressed bytes, so a gzip bomb stops early).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flate2::read::GzDecoder;

use super::WorkspaceError;
use super::manifest::MODE_MASK;
use super::safe_path::{link_stays_inside, normalize, real_parents};

/// How much an archive may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 16 * 1024 * 1024 * 1024, max_entries: 2_000_000 }
    }
}

/// What was extracted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub bytes: u64,
    /// The entries the archive named, normalized, in archive order (parents it only implied
    /// are not listed).
    pub paths: Vec<String>,
}

fn refuse(entry: &str, reason: impl Into<String>) -> WorkspaceError {
    WorkspaceError::UnsafeEntry { entry: entry.to_owned(), reason: reason.into() }
}

/// Extracts the tar + gzip stream `reader` into `dest`, an existing empty directory.
pub fn unpack(reader: impl Read, dest: &Path, limits: &Limits) -> Result<UnpackStats, WorkspaceError> {
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let mut stats = UnpackStats::default();
    let mut dir_modes = Vec::new();
    let entries = archive.entries().map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| WorkspaceError::Corrupt(e.to_string()))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        stats.entries += 1;
        if stats.entries > limits.max_entries {
            return Err(WorkspaceError::TooLarge { what: "entry count", limit: limits.max_entries, entry: raw });
        }
        let path = normalize(&raw).map_err(|reason| refuse(&raw, reason))?;
        let target = dest.join(&path);
        real_parents(dest, &path)?;
        if std::fs::symlink_metadata(&target).is_ok() && !(kind.is_dir() && target.is_dir()) {
            return Err(refuse(&raw, "duplicate entry"));
        }
        let mode = entry.header().mode().map_err(|e| WorkspaceError::Corrupt(format!("{raw}: {e}")))? & MODE_MASK;
        match kind {
            tar::EntryType::Directory => {
                if !target.is_dir() {
                    std::fs::create_dir(&target).map_err(WorkspaceError::io(&target))?;
                }
                dir_modes.push((target, mode));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let remaining = limits.max_bytes - stats.bytes;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(WorkspaceError::io(&target))?;
                let copied = std::io::copy(&mut (&mut entry).take(remaining + 1), &mut file)
                    .map_err(|e| WorkspaceError::Corrupt(format!("{raw}: {e}")))?;
                if copied > remaining {
                    drop(file);
                    let _ = std::fs::remove_file(&target);
                    return Err(WorkspaceError::TooLarge { what: "size", limit: limits.max_bytes, entry: raw });
                }
                stats.bytes += copied;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(WorkspaceError::io(&target))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| WorkspaceError::Corrupt(format!("{raw}: {e}")))?
                    .ok_or_else(|| refuse(&raw, "symlink without a target"))?;
                let link = link.to_string_lossy().into_owned();
                if !link_stays_inside(&path, &link) {
                    return Err(refuse(&raw, format!("symlink points outside the workspace ({link})")));
                }
                std::os::unix::fs::symlink(&link, &target).map_err(WorkspaceError::io(&target))?;
            }
            tar::EntryType::Link => return Err(refuse(&raw, "hard links are not allowed")),
            tar::EntryType::Char | tar::EntryType::Block => return Err(refuse(&raw, "device files are not allowed")),
            tar::EntryType::Fifo => return Err(refuse(&raw, "fifos are not allowed")),
            other => return Err(refuse(&raw, format!("unsupported entry type {other:?}"))),
        }
        stats.paths.push(path);
    }
    // Directory modes last, deepest first, so a read-only directory was still writable while
    // its contents were extracted.
    for (dir, mode) in dir_modes.into_iter().rev() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).map_err(WorkspaceError::io(&dir))?;
    }
    Ok(stats)
}
