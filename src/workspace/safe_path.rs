//! Archive paths: relative, no `..`, nothing that could land outside the root.

use std::path::{Component, Path};

use super::WorkspaceError;

/// The normalized form of an archive path (`a/b/c`), or why it is refused.
pub fn normalize(raw: &str) -> Result<String, &'static str> {
    if raw.contains('\0') {
        return Err("contains a NUL byte");
    }
    let path = Path::new(raw);
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or("is not valid UTF-8")?),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    if parts.is_empty() {
        return Err("is empty");
    }
    Ok(parts.join("/"))
}

/// Whether a symlink at `link_path` (normalized, relative) pointing at `target` stays inside
/// the root once resolved lexically.
pub fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.is_empty() || Path::new(target).is_absolute() {
        return false;
    }
    // Depth of the directory holding the link, then walk the target's components.
    let mut depth: i64 = link_path.matches('/').count() as i64;
    for component in Path::new(target).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Makes sure every parent of `path` (normalized, relative) under `root` is a real directory,
/// creating missing ones; a parent that is a symlink or a file is refused, naming `path`, so
/// nothing is ever written through a link.
pub fn real_parents(root: &Path, path: &str) -> Result<(), WorkspaceError> {
    let mut current = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        current.push(part);
        let reason = match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_dir() => continue,
            Ok(meta) if meta.file_type().is_symlink() => format!("writes through the symlink '{}'", current.display()),
            Ok(_) => format!("its parent '{}' is not a directory", current.display()),
            Err(_) => {
                std::fs::create_dir(&current).map_err(WorkspaceError::io(&current))?;
                continue;
            }
        };
        return Err(WorkspaceError::UnsafeEntry { entry: path.to_owned(), reason });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(normalize("./a//b/"), Ok("a/b".to_owned()));
        assert_eq!(normalize("/etc/passwd"), Err("is an absolute path"));
        assert_eq!(normalize("a/../../x"), Err("contains '..'"));
        assert_eq!(normalize("."), Err("is empty"));
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside("a/link", "b"));
        assert!(link_stays_inside("a/link", "../b"));
        assert!(!link_stays_inside("a/link", "../../b"));
        assert!(!link_stays_inside("link", "/etc"));
        assert!(!link_stays_inside("link", ".."));
        assert!(link_stays_inside("link", "."));
    }
}
