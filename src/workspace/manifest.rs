//! A workspace's content at one moment: every entry with its kind, mode and content hash.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::WorkspaceError;
use super::filter::Filter;
use super::safe_path::link_stays_inside;

/// Permission bits kept for files and directories (no setuid, setgid or sticky).
pub const MODE_MASK: u32 = 0o777;

/// One workspace entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { mode: u32 },
    File { mode: u32, size: u64, hash: blake3::Hash },
    Symlink { target: String },
}

/// Every entry of a workspace by relative path (`a/b/c`), parents before children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub entries: BTreeMap<String, Entry>,
}

impl Manifest {
    /// Walks `root`, leaving out what `filter` excludes, special files (sockets, fifos, devices)
    /// and symlinks that point outside the root (extraction would refuse them).
    pub fn scan(root: &Path, filter: &Filter) -> Result<Self, WorkspaceError> {
        let mut manifest = Self::default();
        walk(root, "", filter, &mut manifest)?;
        Ok(manifest)
    }

    /// Total bytes of regular files.
    pub fn total_size(&self) -> u64 {
        self.entries.values().map(|entry| if let Entry::File { size, .. } = entry { *size } else { 0 }).sum()
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.entries.values().filter(|entry| matches!(entry, Entry::File { .. })).count()
    }
}

fn walk(root: &Path, prefix: &str, filter: &Filter, manifest: &mut Manifest) -> Result<(), WorkspaceError> {
    let dir = if prefix.is_empty() { root.to_path_buf() } else { root.join(prefix) };
    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(WorkspaceError::io(&dir))? {
        let entry = entry.map_err(WorkspaceError::io(&dir))?;
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(name) => tracing::warn!(dir = %dir.display(), name = ?name, "skipping a file name that is not UTF-8"),
        }
    }
    names.sort();
    for name in names {
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if filter.excludes(&relative) {
            continue;
        }
        let path = root.join(&relative);
        match entry_at(&path, &relative)? {
            Some(entry @ Entry::Dir { .. }) => {
                manifest.entries.insert(relative.clone(), entry);
                walk(root, &relative, filter, manifest)?;
            }
            Some(entry) => {
                manifest.entries.insert(relative, entry);
            }
            None => {}
        }
    }
    Ok(())
}

/// The entry at `path` now (`relative` is its workspace path), or None when there is nothing
/// there or nothing a workspace carries.
pub fn entry_at(path: &Path, relative: &str) -> Result<Option<Entry>, WorkspaceError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(WorkspaceError::Io { path: path.to_path_buf(), source: error }),
    };
    let kind = meta.file_type();
    let mode = meta.permissions().mode() & MODE_MASK;
    if kind.is_dir() {
        Ok(Some(Entry::Dir { mode }))
    } else if kind.is_file() {
        Ok(Some(Entry::File { mode, size: meta.len(), hash: hash_file(path)? }))
    } else if kind.is_symlink() {
        let target = std::fs::read_link(path).map_err(WorkspaceError::io(path))?;
        let target = target.to_string_lossy().into_owned();
        if link_stays_inside(relative, &target) {
            Ok(Some(Entry::Symlink { target }))
        } else {
            tracing::warn!(path = relative, target = %target, "skipping a symlink that points outside the workspace");
            Ok(None)
        }
    } else {
        tracing::debug!(path = relative, "skipping a special file");
        Ok(None)
    }
}

fn hash_file(path: &Path) -> Result<blake3::Hash, WorkspaceError> {
    let mut file = std::fs::File::open(path).map_err(WorkspaceError::io(path))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buf).map_err(WorkspaceError::io(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buf[..read]);
    }
    Ok(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_files_dirs_and_inside_links_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/a.txt"), "alpha").expect("write");
        std::os::unix::fs::symlink("sub/a.txt", root.join("inside")).expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", root.join("outside")).expect("symlink");
        std::fs::create_dir(root.join(".sloth")).expect("mkdir");
        let manifest = Manifest::scan(root, &Filter::builtin()).expect("scan");
        let paths: Vec<&str> = manifest.entries.keys().map(String::as_str).collect();
        assert_eq!(paths, vec!["inside", "sub", "sub/a.txt"]);
        assert_eq!(manifest.entries["inside"], Entry::Symlink { target: "sub/a.txt".to_owned() });
        assert_eq!(manifest.total_size(), 5);
    }
}
