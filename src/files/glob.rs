//! Paths under a directory that a glob matches, in the workspace exclusions' dialect
//! ([`crate::workspace::filter::dialect`]): `*` and `?` stay within a name, `**` crosses
//! directories, `{a,b}` and `[ab]` as globset reads them. A pattern is anchored at the root and
//! matched against whole relative paths (`*.txt` is the root's, `**/*.txt` any depth's), as a
//! shell reads it; unlike a shell, `*` matches names starting with a dot too.
//!
//! The walk never enters a linked directory (a link matches as itself), so a pattern cannot
//! lead outside the root, and it enters only directories the pattern can match beneath.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;

use super::FileError;

/// Every path under `root` that `pattern` matches, relative to `root`, in path order (a
/// directory's entries right after it); none is not an error. A pattern that is absolute or
/// goes up (`..`) can match nothing under the root and is refused, as is a malformed one.
pub fn glob(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, FileError> {
    let refused = |reason: &str| FileError::Pattern { pattern: pattern.to_owned(), reason: reason.to_owned() };
    let mut trimmed = pattern.trim_end_matches('/');
    while let Some(rest) = trimmed.strip_prefix("./") {
        trimmed = rest.trim_start_matches('/');
    }
    if trimmed.starts_with('/') {
        return Err(refused("absolute: a pattern is relative to the root"));
    }
    if trimmed.is_empty() || trimmed == "." {
        return Err(refused("empty"));
    }
    if trimmed.split('/').any(|part| part == "..") {
        return Err(refused("'..' leaves the root"));
    }
    let matcher = crate::workspace::filter::dialect(trimmed)
        .map_err(|e| FileError::Pattern { pattern: pattern.to_owned(), reason: e.kind().to_string() })?
        .compile_matcher();
    let parts: Vec<&str> = trimmed.split('/').collect();
    let walk = Walk {
        matcher,
        literal: parts
            .iter()
            .take_while(|part| !part.contains(['*', '?', '[', ']', '{', '}', '\\']))
            .copied()
            .collect(),
        // Each alternative of a `{…}` has at most as many separators as the whole pattern.
        max_depth: if trimmed.contains("**") { usize::MAX } else { parts.len() },
    };
    let mut found = Vec::new();
    walk.visit(root, Path::new(""), 0, &mut found)?;
    found.sort();
    Ok(found)
}

struct Walk<'a> {
    matcher: GlobMatcher,
    /// The pattern's leading names without wildcards: at those depths only that name can match.
    literal: Vec<&'a str>,
    /// How deep a match can be (names below the root).
    max_depth: usize,
}

impl Walk<'_> {
    fn visit(&self, dir: &Path, relative: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), FileError> {
        let entries = std::fs::read_dir(dir).map_err(FileError::io(dir))?;
        for entry in entries {
            let entry = entry.map_err(FileError::io(dir))?;
            let name = entry.file_name();
            if let Some(literal) = self.literal.get(depth)
                && name.as_os_str() != OsStr::new(literal)
            {
                continue;
            }
            let path = relative.join(&name);
            if self.matcher.is_match(&path) {
                found.push(path.clone());
            }
            // The entry's own type: a link to a directory is not a directory here.
            let is_dir = entry.file_type().map_err(FileError::io(&entry.path()))?.is_dir();
            if is_dir && depth + 1 < self.max_depth {
                self.visit(&entry.path(), &path, depth + 1, found)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: &[PathBuf]) -> Vec<String> {
        found.iter().map(|path| path.display().to_string()).collect()
    }

    #[test]
    fn a_pattern_is_anchored_and_double_star_crosses_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in ["a.txt", "sub/b.txt", "sub/deep/c.txt", "sub/d.log", ".hidden.txt"] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "x").expect("write");
        }
        assert_eq!(names(&glob(dir.path(), "*.txt").expect("glob")), [".hidden.txt", "a.txt"]);
        assert_eq!(
            names(&glob(dir.path(), "**/*.txt").expect("glob")),
            [".hidden.txt", "a.txt", "sub/b.txt", "sub/deep/c.txt"]
        );
        assert_eq!(names(&glob(dir.path(), "./sub/*").expect("glob")), ["sub/b.txt", "sub/d.log", "sub/deep"]);
        assert!(glob(dir.path(), "nothing-*").expect("glob").is_empty());
        for bad in ["/etc/*", "../*", "a[", ""] {
            let error = glob(dir.path(), bad).expect_err(bad);
            assert!(error.to_string().contains(&format!("'{bad}'")), "{error}");
        }
    }

    #[test]
    fn a_linked_directory_matches_as_itself_and_is_not_entered() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), "x").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        assert_eq!(names(&glob(dir.path(), "**").expect("glob")), ["link"]);
        assert!(glob(dir.path(), "link/*").expect("glob").is_empty());
    }
}
