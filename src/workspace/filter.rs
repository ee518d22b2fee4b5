//! Which workspace paths are left out: `workspace.exclude` globs, a `.slothignore` file at the
//! root (one glob per line, `#` comments), and sloth-runner's own scratch entries.

use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::WorkspaceError;
use super::beneath::{Kind, Root};
use super::rel_path::RelPath;

/// Name of the ignore file read at the workspace root.
pub const IGNORE_FILE: &str = ".slothignore";

/// Always excluded: run state beside the pipeline (`.sloth`, at the root only: one deeper down
/// is an ordinary directory and travels), and at any depth the names that begin staging
/// directories of changes being applied and originals an apply could not put back — a
/// workspace nested in another (one group's workdir inside another's) has its applies inside
/// the outer one, whose tasks must not take them for the user's files. Matched without
/// compiling globs: most workspaces have no pattern of their own, and a task's first glob set,
/// compiled with its regex engine, cost an agent 0.8 MiB of code paged in.
const BUILTIN_NAME: &[u8] = b".sloth";
const BUILTIN_PREFIXES: [&[u8]; 3] = [b".sloth-apply-", b".sloth-staging-", b".sloth-kept-"];

/// Whether `path` (relative, `/`-separated) is a built-in exclusion (as the globs `/.sloth`
/// and `.sloth-apply-*` and the like would match it: the walk does not go below one).
fn builtin_excludes(path: &[u8]) -> bool {
    let name = path.rsplit(|byte| *byte == b'/').next().unwrap_or(path);
    path == BUILTIN_NAME || BUILTIN_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Which paths a workspace leaves out. It remembers the patterns it was made from, so the
/// same rules can be sent to an agent rather than read again from a file that may have
/// changed since.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The patterns compiled; None when there are none.
    globs: Option<GlobSet>,
    patterns: Vec<String>,
}

impl Filter {
    /// The built-in exclusions, `patterns`, and the root's `.slothignore` if there is one.
    pub fn new(root: &Path, patterns: &[String]) -> Result<Self, WorkspaceError> {
        let mut all: Vec<String> = patterns.to_vec();
        if let Some(text) = read_ignore_file(root)? {
            all.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
        }
        Self::from_patterns(all)
    }

    /// The built-in exclusions and exactly `patterns` (as [`Filter::patterns`] gave them).
    pub fn from_patterns(patterns: Vec<String>) -> Result<Self, WorkspaceError> {
        if patterns.is_empty() {
            return Ok(Self { globs: None, patterns });
        }
        if let Some(globs) = compiled::find(&patterns) {
            return Ok(Self { globs: Some(globs), patterns });
        }
        let globs = Self::compile(&patterns)?;
        compiled::keep(&patterns, &globs);
        Ok(Self { globs: Some(globs), patterns })
    }

    fn compile(patterns: &[String]) -> Result<GlobSet, WorkspaceError> {
        let mut builder = GlobSetBuilder::new();
        if let Some(negated) = patterns.iter().find(|pattern| pattern.starts_with('!')) {
            return Err(WorkspaceError::Pattern {
                pattern: negated.clone(),
                reason: "negation ('!') is not supported: list what to leave out".to_owned(),
            });
        }
        for pattern in patterns {
            for glob in expand(pattern) {
                let compiled = dialect(&glob).map_err(|e| WorkspaceError::Pattern {
                    pattern: pattern.to_owned(),
                    reason: e.kind().to_string(),
                })?;
                builder.add(compiled);
            }
        }
        builder.build().map_err(|e| WorkspaceError::Pattern { pattern: patterns.join(" "), reason: e.to_string() })
    }

    /// Only the built-in exclusions.
    pub fn builtin() -> Self {
        Self { globs: None, patterns: Vec::new() }
    }

    /// The patterns beyond the built-in ones: `exclude` and the ignore file's, as read.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether the relative path `path` (`a/b/c`) is excluded; an excluded directory excludes
    /// everything below it.
    pub fn excludes(&self, path: &RelPath) -> bool {
        builtin_excludes(path.as_bytes()) || self.globs.as_ref().is_some_and(|globs| globs.is_match(path.as_path()))
    }
}

/// The most an ignore file may hold.
const MAX_IGNORE_FILE: u64 = 1024 * 1024;

/// The root's ignore file, read beneath the root as a regular file only: a link (which a task
/// could point anywhere, and whose lines would then travel to an agent as rules), a fifo or a
/// huge file is refused, naming it.
fn read_ignore_file(root: &Path) -> Result<Option<String>, WorkspaceError> {
    let path = root.join(IGNORE_FILE);
    let refuse = |reason: &str| WorkspaceError::Refused { path: path.clone(), reason: reason.to_owned() };
    let root = Root::open(root)?;
    let name = RelPath::from_name(IGNORE_FILE.as_bytes()).map_err(&refuse)?;
    let Some(stat) = root.lstat(&name)? else { return Ok(None) };
    match stat.kind {
        Kind::File if stat.size <= MAX_IGNORE_FILE => {}
        Kind::File => return Err(refuse("is larger than 1 MiB")),
        Kind::Symlink => return Err(refuse("is a symlink: write the patterns in the file itself")),
        _ => return Err(refuse("is not a regular file")),
    }
    let file = root.open_file(&name)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_IGNORE_FILE), &mut text)
        .map_err(WorkspaceError::io(&path))?;
    Ok(Some(text))
}

/// The one glob dialect of sloth-runner (exclusions here, `fs.glob` and artifacts): globset
/// with `*` and `?` stopping at `/` and `**` crossing directories, so that a pattern means the
/// same wherever a pipeline writes one.
pub fn dialect(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
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

/// Rule sets compiled lately: every task of a pipeline (on the master, and on an agent for
/// every task it receives) takes the same few, and compiling one costs far more than matching.
mod compiled {
    use std::sync::{Mutex, PoisonError};

    use globset::GlobSet;

    /// How many distinct rule sets are kept, the least recently used going first.
    const KEPT: usize = 16;

    static RECENT: Mutex<Vec<(Vec<String>, GlobSet)>> = Mutex::new(Vec::new());

    pub fn find(patterns: &[String]) -> Option<GlobSet> {
        let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
        let at = recent.iter().position(|(kept, _)| kept.as_slice() == patterns)?;
        let found = recent.remove(at);
        let globs = found.1.clone();
        recent.push(found);
        Some(globs)
    }

    pub fn keep(patterns: &[String], globs: &GlobSet) {
        let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() >= KEPT {
            recent.remove(0);
        }
        recent.push((patterns.to_vec(), globs.clone()));
    }
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
        assert!(!excludes(&filter, "sub/.sloth"), "only at the root");
        // A nested workspace's applies, at any depth.
        assert!(excludes(&filter, "sub/.sloth-apply-1234") && excludes(&filter, "sub/.sloth-staging-ab"));
        assert!(excludes(&filter, "a/b/.sloth-kept-1"));
        let again = Filter::from_patterns(filter.patterns().to_vec()).expect("same rules");
        assert!(excludes(&again, "a/b/c.log") && excludes(&again, "build") && !excludes(&again, "src/build"));
        assert!(!excludes(&filter, "src/main.rs"));
    }

    #[test]
    fn the_builtin_exclusions_hold_without_patterns() {
        for filter in [Filter::builtin(), Filter::from_patterns(Vec::new()).expect("no patterns")] {
            let excluded = [".sloth", ".sloth-apply-", ".sloth-apply-1234", ".sloth-staging-x", ".sloth-kept-7"];
            // (A nested workspace's applies, at any depth.)
            for excluded in excluded.into_iter().chain(["sub/.sloth-apply-1", "a/b/.sloth-kept-2"]) {
                assert!(excludes(&filter, excluded), "{excluded}");
            }
            for kept in [".sloth2", ".sloth-other", "sub/.sloth", ".sloth/x", "a.sloth", ".slot", "sub/a.sloth-apply-1"]
            {
                assert!(!excludes(&filter, kept), "{kept}");
            }
        }
        let filter = Filter::from_patterns(vec!["*.log".to_owned()]).expect("patterns");
        assert!(excludes(&filter, ".sloth-kept-1") && excludes(&filter, "a/b.log") && !excludes(&filter, "sub/.sloth"));
    }

    #[test]
    fn an_ignore_file_is_read_only_as_a_regular_file_of_the_workspace() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "SECRET\n").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join(IGNORE_FILE)).expect("symlink");
        let error = Filter::new(dir.path(), &[]).expect_err("a link is refused");
        assert!(error.to_string().contains(".slothignore") && error.to_string().contains("symlink"), "{error}");
        assert!(!error.to_string().contains("SECRET"));
        std::fs::remove_file(dir.path().join(IGNORE_FILE)).expect("rm");
        let error = Filter::new(dir.path(), &["!keep.log".to_owned()]).expect_err("negation");
        assert!(error.to_string().contains("'!keep.log'"), "{error}");
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = Filter::new(dir.path(), &["a[".to_owned()]).expect_err("unclosed class");
        assert!(error.to_string().contains("'a['"), "{error}");
    }
}
