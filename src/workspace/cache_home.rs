//! The user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`), where the master keeps
//! what outlives a run outside any workspace: workspaces' indexes and the proofs of its
//! staging directories. What is kept there is trimmed and pruned, and a proof found there lets
//! a recovery replay a journal: so a directory of it is used only when it is really this
//! user's — made by it or found as a directory it owns, never through a link (a link named
//! `index` to a directory of the user's files had the trim of old indexes delete them; on a
//! shared `$HOME` another user could plant one) — and never inside the workspace itself.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The user's cache directory as the environment names it (an absolute path only, as the XDG
/// specification says).
pub fn cache_dir() -> Option<PathBuf> {
    let absolute = |dir: PathBuf| dir.is_absolute().then_some(dir);
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .and_then(absolute)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from).and_then(absolute).map(|home| home.join(".cache")))
}

/// `cache/sloth-runner/<kind>` where the workspace at `root` keeps `kind`, as a physical path
/// (links in `cache` itself resolved: a cache on another disk is a user's choice), each
/// directory from `sloth-runner` down made (0700) when `make` says so and missing, and checked
/// to be a directory this user owns, not a link. None when one is not (a warning says which),
/// is missing and not to be made, or when it would be inside the workspace (an index there
/// would be part of what it indexes, and travel with it).
pub fn own_dir(cache: &Path, kind: &str, root: &Path, make: bool) -> Option<PathBuf> {
    let physical_root = std::fs::canonicalize(root).ok()?;
    // (Where it would be, before anything is made.)
    if crate::physical_path::resolved(cache).starts_with(&physical_root) {
        return None;
    }
    if make {
        let _ = std::fs::create_dir_all(cache);
    }
    let mut dir = std::fs::canonicalize(cache).ok()?;
    if dir.starts_with(&physical_root) {
        return None;
    }
    let user = nix::unistd::geteuid().as_raw();
    // The cache directory itself may be root's (a shared one, made by the system): what is
    // made in it is checked below. Anyone else's could have its entries swapped under us.
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() && (meta.uid() == user || meta.uid() == 0) => {}
        _ => return not_ours(&dir, "is not a directory of this user's"),
    }
    for part in ["sloth-runner", kind] {
        dir.push(part);
        if make {
            let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => return not_ours(&dir, "is a link"),
            Ok(meta) if !meta.is_dir() => return not_ours(&dir, "is not a directory"),
            Ok(meta) if meta.uid() != user => return not_ours(&dir, "belongs to another user"),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    Some(dir)
}

/// Says (once per directory and process: it is asked for every task) why `dir` is not used.
fn not_ours(dir: &Path, why: &str) -> Option<PathBuf> {
    static SAID: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !said.iter().any(|known| known == dir) {
        said.push(dir.to_path_buf());
        tracing::warn!(dir = %dir.display(), "{why}: sloth-runner keeps nothing there (no index of the workspace, no proof of its staging directories); remove it, or make it a directory of this user's");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_its_own_is_made_and_found_again() {
        let cache = tempfile::tempdir().expect("cache");
        let root = tempfile::tempdir().expect("workspace");
        let made = own_dir(cache.path(), "index", root.path(), true).expect("made");
        assert_eq!(made, std::fs::canonicalize(cache.path()).expect("real").join("sloth-runner/index"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&made).expect("stat").permissions().mode() & 0o077, 0);
        assert_eq!(own_dir(cache.path(), "index", root.path(), false), Some(made));
        assert_eq!(own_dir(cache.path(), "staging", root.path(), false), None, "missing, not made");
    }

    #[test]
    fn a_link_anywhere_below_the_cache_directory_is_not_followed() {
        let cache = tempfile::tempdir().expect("cache");
        let root = tempfile::tempdir().expect("workspace");
        let elsewhere = tempfile::tempdir().expect("the user's files");
        std::fs::create_dir(cache.path().join("sloth-runner")).expect("mkdir");
        std::os::unix::fs::symlink(elsewhere.path(), cache.path().join("sloth-runner/index")).expect("link");
        assert_eq!(own_dir(cache.path(), "index", root.path(), true), None);
        let other = tempfile::tempdir().expect("cache");
        std::os::unix::fs::symlink(elsewhere.path(), other.path().join("sloth-runner")).expect("link");
        assert_eq!(own_dir(other.path(), "staging", root.path(), true), None);
        assert!(std::fs::read_dir(elsewhere.path()).expect("list").next().is_none(), "nothing made through a link");
        std::fs::write(cache.path().join("sloth-runner/staging"), "a file").expect("write");
        assert_eq!(own_dir(cache.path(), "staging", root.path(), true), None);
    }

    #[test]
    fn a_linked_cache_directory_is_followed_but_never_into_the_workspace() {
        let disk = tempfile::tempdir().expect("another disk");
        let home = tempfile::tempdir().expect("home");
        let cache = home.path().join(".cache");
        std::os::unix::fs::symlink(disk.path(), &cache).expect("link");
        let root = tempfile::tempdir().expect("workspace");
        let made = own_dir(&cache, "index", root.path(), true).expect("made on the other disk");
        assert!(made.starts_with(std::fs::canonicalize(disk.path()).expect("real")));
        let inside = root.path().join(".tool-cache");
        std::fs::create_dir(&inside).expect("mkdir");
        let linked_in = home.path().join("linked-in");
        std::os::unix::fs::symlink(&inside, &linked_in).expect("link");
        assert_eq!(own_dir(&linked_in, "index", root.path(), true), None);
        assert_eq!(own_dir(&root.path().join("sub"), "index", root.path(), true), None);
        assert!(!inside.join("sloth-runner").exists(), "nothing made in the workspace");
    }
}
