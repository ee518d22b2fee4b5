//! Paths as the filesystem resolves them, for comparing where two paths really lead (a work
//! directory inside a workspace, a cache inside a workspace) when links may stand in the way.

use std::path::{Path, PathBuf};

/// `path` with its longest existing ancestor resolved (links followed), the rest as it is: a
/// path that does not exist yet still compares by where it would be.
pub fn resolved(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |path: PathBuf, name| path.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}
