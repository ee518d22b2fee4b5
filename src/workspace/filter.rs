//! Which workspace paths are left out: `workspace.exclude` globs, a `.slothignore` file at the
//! root (one glob per line, `#` comments), and sloth-runner's own scratch entries.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::WorkspaceError;
use super::rel_path::RelPath;

/// Name of the ignore file read at the workspace root.
pub const IGNORE_FILE: &str = ".slothignore";

/// Always excluded: run state beside the pipeline and staging dirs of changes being applied.
const BUILTIN: &[&str] = &[".sloth", ".sloth-apply-*"];

#[derive(Debug, Clone)]
pub struct Filter {
    globs: GlobSet,
}

impl Filter {
    /// The built-in exclusions, `patterns`, and the root's `.slothignore` if there is one.
    pub fn new(root: &Path, patterns: &[String]) -> Result<Self, WorkspaceError> {
        let mut all: Vec<String> = BUILTIN.iter().map(|p| (*p).to_owned()).collect();
        all.extend(patterns.iter().cloned());
        let ignore_file = root.join(IGNORE_FILE);
        match std::fs::read_to_string(&ignore_file) {
            Ok(text) => all.extend(
                text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned),
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(WorkspaceError::Io { path: ignore_file, source: error }),
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in &all {
            for glob in expand(pattern) {
                let compiled = GlobBuilder::new(&glob)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| WorkspaceError::Pattern { pattern: pattern.clone(), reason: e.kind().to_string() })?;
                builder.add(compiled);
            }
        }
        let globs =
            builder.build().map_err(|e| WorkspaceError::Pattern { pattern: all.join(" "), reason: e.to_string() })?;
        Ok(Self { globs })
    }

    /// Only the built-in exclusions.
    pub fn builtin() -> Self {
        let mut builder = GlobSetBuilder::new();
        for pattern in BUILTIN {
            for glob in expand(pattern) {
                if let Ok(compiled) = GlobBuilder::new(&glob).literal_separator(true).build() {
                    builder.add(compiled);
                }
            }
        }
        Self { globs: builder.build().unwrap_or_else(|_| GlobSet::empty()) }
    }

    /// Whether the relative path `path` (`a/b/c`) is excluded; an excluded directory excludes
    /// everything below it.
    pub fn excludes(&self, path: &RelPath) -> bool {
        self.globs.is_match(path.as_path())
    }
}

/// gitignore-like reading: a pattern without `/` matches a name at any depth; a leading `/`
/// anchors it at the root; a trailing `/` is accepted and ignored.
fn expand(pattern: &str) -> Vec<String> {
    let trimmed = pattern.trim_end_matches('/');
    if let Some(anchored) = trimmed.strip_prefix('/') {
        return vec![anchored.to_owned()];
    }
    if trimmed.contains('/') { vec![trimmed.to_owned()] } else { vec![format!("**/{trimmed}")] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excludes(filter: &Filter, path: &str) -> bool {
        filter.excludes(&RelPath::parse(path.as_bytes()).expect("valid path"))
    }

    #[test]
    fn names_match_at_any_depth_and_paths_from_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(IGNORE_FILE), "# comment\n*.log\n/build/\n").expect("write");
        let filter = Filter::new(dir.path(), &["node_modules".to_owned(), "docs/*.tmp".to_owned()]).expect("filter");
        assert!(excludes(&filter, "node_modules"));
        assert!(excludes(&filter, "web/node_modules"));
        assert!(excludes(&filter, "a/b/c.log"));
        assert!(excludes(&filter, "build"));
        assert!(!excludes(&filter, "src/build"));
        assert!(excludes(&filter, "docs/x.tmp"));
        assert!(!excludes(&filter, "docs/sub/x.tmp"));
        assert!(excludes(&filter, ".sloth"));
        assert!(excludes(&filter, ".sloth-apply-1234"));
        assert!(!excludes(&filter, "src/main.rs"));
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = Filter::new(dir.path(), &["a[".to_owned()]).expect_err("unclosed class");
        assert!(error.to_string().contains("'a['"), "{error}");
    }
}
