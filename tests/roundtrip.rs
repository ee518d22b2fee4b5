//! The round trip as properties, through the same functions the master and the agent use
//! (scan, blobs and the cache, the build, rules, diff, pack, apply): for random trees and
//! random task edits — creations, modifications, appends, deletions, renames, chmods (all
//! twelve bits), file↔directory, links inside and out, hard links, named pipes, odd names —
//! the master ends exactly equal to the tree the task left (contents, modes, links, hard-link
//! groups, the times of files, directories and links), or, when the change is refused, exactly as it was.
//! And a change racing the apply, at the moment of a rename, is a conflict that undoes every
//! step already taken.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use sloth_runner::workspace::beneath::{Kind, Root};
use sloth_runner::workspace::{
    Base, BlobCache, Filter, Limits, Manifest, RelPath, Step, Timestamp, WorkspaceError, apply, apply_interruptible,
    apply_observed, diff, pack, pack_blobs,
};

use crate::support::tree::Tree;

/// Names with everything a file system allows: spaces, newlines, dashes, globs, non-ASCII and
/// bytes that are not UTF-8.
const NAMES: &[&[u8]] = &[b"a", b"b", b"dir", b"x y", b"-n", b"*", "é".as_bytes(), b"\xff\xfe", b"new\nline"];
const TARGETS: &[&[u8]] = &[b"a", b"dir/a", b"../outside", b"/etc", b"nowhere", b"..", b".", b"b/../a"];
const MODES: &[u32] = &[0o644, 0o755, 0o600, 0o700, 0o4755, 0o2755, 0o1777, 0o2775];

/// setuid and setgid travel here: the property is the exact tree (a pipeline opts in).
fn limits() -> Limits {
    Limits::default().with_setid_files(true)
}

#[derive(Debug, Clone)]
enum Node {
    File { content: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Link { target: &'static [u8] },
    HardLink { to: Vec<&'static [u8]> },
    Fifo { mode: u32 },
}

/// An edit a task makes, on paths that may or may not exist (an edit that cannot apply is a
/// no-op, as a failing `mv` in a script would be).
#[derive(Debug, Clone)]
enum Edit {
    Write { path: Vec<&'static [u8]>, content: Vec<u8> },
    Remove { path: Vec<&'static [u8]> },
    Rename { from: Vec<&'static [u8]>, to: Vec<&'static [u8]> },
    Chmod { path: Vec<&'static [u8]>, mode: u32 },
    MakeDir { path: Vec<&'static [u8]> },
    Link { path: Vec<&'static [u8]>, target: &'static [u8] },
    Touch { path: Vec<&'static [u8]>, secs: i64, nanos: u32 },
    Append { path: Vec<&'static [u8]>, content: Vec<u8> },
    HardLink { path: Vec<&'static [u8]>, to: Vec<&'static [u8]> },
    Fifo { path: Vec<&'static [u8]> },
}

fn name() -> impl Strategy<Value = &'static [u8]> {
    proptest::sample::select(NAMES)
}

fn path() -> impl Strategy<Value = Vec<&'static [u8]>> {
    proptest::collection::vec(name(), 1..=3)
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        4 => (proptest::collection::vec(any::<u8>(), 0..64), proptest::sample::select(MODES))
            .prop_map(|(content, mode)| Node::File { content, mode }),
        2 => proptest::sample::select(&[0o755u32, 0o700, 0o2775, 0o1777][..]).prop_map(|mode| Node::Dir { mode }),
        1 => proptest::sample::select(TARGETS).prop_map(|target| Node::Link { target }),
        2 => path().prop_map(|to| Node::HardLink { to }),
        1 => proptest::sample::select(&[0o644u32, 0o600][..]).prop_map(|mode| Node::Fifo { mode }),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (path(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(path, content)| Edit::Write { path, content }),
        2 => path().prop_map(|path| Edit::Remove { path }),
        2 => (path(), path()).prop_map(|(from, to)| Edit::Rename { from, to }),
        1 => (path(), proptest::sample::select(MODES)).prop_map(|(path, mode)| Edit::Chmod { path, mode }),
        1 => path().prop_map(|path| Edit::MakeDir { path }),
        1 => (path(), proptest::sample::select(TARGETS)).prop_map(|(path, target)| Edit::Link { path, target }),
        1 => (path(), 0i64..2_000_000_000, 0u32..1_000_000_000)
            .prop_map(|(path, secs, nanos)| Edit::Touch { path, secs, nanos }),
        2 => (path(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(path, content)| Edit::Append { path, content }),
        2 => (path(), path()).prop_map(|(path, to)| Edit::HardLink { path, to }),
        1 => path().prop_map(|path| Edit::Fifo { path }),
    ]
}

fn rel(parts: &[&[u8]]) -> RelPath {
    RelPath::parse(&parts.join(&b'/')).expect("names from the list are valid")
}

/// Writes the generated tree beneath `root` (entries whose parent is not a directory are
/// skipped), with old, distinct modification times.
fn build(root: &Path, nodes: &[(Vec<&'static [u8]>, Node)]) {
    let root = Root::open(root).expect("open root");
    for (i, (parts, node)) in nodes.iter().enumerate() {
        let path = rel(parts);
        if root.lstat(&path).expect("lstat").is_some() || root.check_parent(&path).is_err() {
            continue;
        }
        let time = Timestamp { secs: 1_000_000_000 + i as i64, nanos: 7 };
        match node {
            Node::File { content, mode } => {
                let mut file = root.create_file(&path, *mode, true).expect("create");
                std::io::Write::write_all(&mut file, content).expect("write");
                drop(file);
                root.chmod(&path, *mode).expect("chmod");
            }
            Node::Dir { mode } => {
                root.mkdir(&path, *mode, true).expect("mkdir");
                root.chmod(&path, *mode).expect("chmod");
            }
            Node::Link { target } => root.symlink(&path, target, true).expect("symlink"),
            Node::HardLink { to } => {
                let to = rel(to);
                if root.lstat(&to).expect("lstat").is_none_or(|stat| stat.kind != Kind::File) {
                    continue;
                }
                root.hard_link_from(&root, &to, &path).expect("hard link");
                // Another name: the file keeps its time.
                continue;
            }
            Node::Fifo { mode } => {
                root.mkfifo(&path, *mode, true).expect("mkfifo");
                root.chmod(&path, *mode).expect("chmod");
            }
        }
        root.set_mtime(&path, time).expect("set the time");
    }
}

/// Makes `edit` beneath `root`, never following a link; an edit that cannot apply is skipped.
fn make(root: &Root, edit: &Edit) {
    root.forget();
    match edit {
        Edit::Write { path, content } => {
            let path = rel(path);
            match root.lstat(&path).ok().flatten().map(|stat| stat.kind) {
                Some(Kind::Dir) => return,
                Some(_) => {
                    let _ = root.unlink(&path);
                }
                None => {}
            }
            if let Ok(mut file) = root.create_file(&path, 0o644, true) {
                let _ = std::io::Write::write_all(&mut file, content);
            }
        }
        Edit::Remove { path } => {
            let path = rel(path);
            match root.lstat(&path).ok().flatten().map(|stat| stat.kind) {
                // lstat found it beneath the root, through real directories only; removing
                // the tree below never follows the links in it.
                Some(Kind::Dir) => {
                    let _ = std::fs::remove_dir_all(root.display(&path));
                }
                Some(_) => {
                    let _ = root.unlink(&path);
                }
                None => {}
            }
        }
        Edit::Rename { from, to } => {
            let (from, to) = (rel(from), rel(to));
            if to.starts_with(&from) || root.lstat(&from).ok().flatten().is_none() {
                return;
            }
            if root.lstat(&to).ok().flatten().is_some_and(|stat| stat.kind == Kind::Dir) {
                return;
            }
            let _ = root.check_parent(&to);
            let _ = root.rename_from(root, &from, &to, false);
        }
        Edit::Chmod { path, mode } => {
            let path = rel(path);
            if root.lstat(&path).ok().flatten().is_some_and(|stat| stat.kind != Kind::Symlink) {
                let _ = root.chmod(&path, *mode);
            }
        }
        Edit::MakeDir { path } => {
            let _ = root.mkdir(&rel(path), 0o755, true);
        }
        Edit::Link { path, target } => {
            let _ = root.symlink(&rel(path), target, true);
        }
        Edit::Touch { path, secs, nanos } => {
            let path = rel(path);
            if root.lstat(&path).ok().flatten().is_some() {
                let _ = root.set_mtime(&path, Timestamp { secs: *secs, nanos: *nanos });
            }
        }
        Edit::Append { path, content } => {
            // In place, through whichever name: every other name of the file sees it.
            let path = rel(path);
            if root.lstat(&path).ok().flatten().is_some_and(|stat| stat.kind == Kind::File) {
                use std::io::Write;
                let file = std::fs::OpenOptions::new().append(true).open(root.display(&path));
                let _ = file.and_then(|mut file| file.write_all(content));
            }
        }
        Edit::HardLink { path, to } => {
            let (path, to) = (rel(path), rel(to));
            if root.lstat(&to).ok().flatten().is_some_and(|stat| stat.kind == Kind::File) {
                let _ = root.check_parent(&path);
                let _ = root.hard_link_from(root, &to, &path);
            }
        }
        Edit::Fifo { path } => {
            let _ = root.mkfifo(&rel(path), 0o640, true);
        }
    }
    root.forget();
}

/// The master's tree and the agent's, after the task and the apply.
struct RoundTrip {
    _dirs: [tempfile::TempDir; 3],
    master: std::path::PathBuf,
    agent: std::path::PathBuf,
    /// The master's tree right before the apply.
    before_apply: Tree,
    result: Result<(), WorkspaceError>,
}

/// One remote task, end to end through the workspace functions: the master snapshots, the
/// agent builds from the cache, the task edits, its changes come back and are applied.
/// `meanwhile` edits the master's workspace while the task "runs", given the task's changes.
fn round_trip(
    nodes: &[(Vec<&'static [u8]>, Node)],
    edits: &[Edit],
    meanwhile: impl FnOnce(&Root, &sloth_runner::workspace::Changes, &Manifest),
) -> RoundTrip {
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let master = dirs[0].path().join("ws");
    let agent = dirs[1].path().join("ws");
    std::fs::create_dir(&master).expect("mkdir");
    std::fs::create_dir(&agent).expect("mkdir");
    build(&master, nodes);

    let master_rules = Filter::new(&master, &[]).expect("filter");
    let base = Manifest::scan(&master, &master_rules).expect("scan");
    let cache = BlobCache::new(dirs[2].path(), u64::MAX).expect("cache");
    let mut blobs = Vec::new();
    pack_blobs(&master, &base, &cache.missing(&base), &mut blobs, dirs[2].path()).expect("pack blobs");
    cache.store(&blobs[..], &limits()).expect("store");
    let built = cache.materialize(&base, &agent, &limits()).expect("build");
    assert_eq!(built, base, "the agent built exactly what was sent");
    Tree::read_all(&master).assert_same(&Tree::read_all(&agent), "the agent's copy");

    let rules = Filter::from_patterns(master_rules.patterns().to_vec()).expect("the master's rules");
    let agent_root = Root::open(&agent).expect("open");
    for edit in edits {
        make(&agent_root, edit);
    }
    let after = Manifest::scan(&agent, &rules).expect("scan after");
    let changes = diff(&built, &after);
    let mut archive = Vec::new();
    pack(&agent, &after, Some(&changes.changed), &mut archive).expect("pack changes");

    meanwhile(&Root::open(&master).expect("open"), &changes, &base);
    let before_apply = Tree::read_all(&master);
    let base = Base { manifest: &base, rules: Some(&master_rules) };
    let result = apply(&master, &archive[..], &changes.deleted, Some(base), &limits()).map(|_| ());
    RoundTrip { _dirs: dirs, master, agent, before_apply, result }
}

fn tree_strategy() -> impl Strategy<Value = Vec<(Vec<&'static [u8]>, Node)>> {
    proptest::collection::vec((path(), node()), 0..24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_master_ends_exactly_as_the_task_left_its_tree(
        nodes in tree_strategy(),
        edits in proptest::collection::vec(edit(), 1..12),
    ) {
        let trip = round_trip(&nodes, &edits, |_, _, _| {});
        prop_assert!(trip.result.is_ok(), "apply failed: {:?}", trip.result);
        let (master, agent) = (Tree::read_all(&trip.master), Tree::read_all(&trip.agent));
        master.assert_same(&agent, "after the apply");
        prop_assert_eq!(&master.mtimes, &agent.mtimes, "file times");
        prop_assert_eq!(&master.other_times, &agent.other_times, "directories' and links' times");
    }

    #[test]
    fn a_refused_change_leaves_the_master_exactly_as_it_was(
        nodes in tree_strategy(),
        edits in proptest::collection::vec(edit(), 1..12),
        pick in any::<proptest::sample::Index>(),
    ) {
        // Meanwhile, the master rewrites one file the task also changed or deleted.
        let mut touched = None;
        let trip = round_trip(&nodes, &edits, |root, changes, base| {
            let both: Vec<&RelPath> = changes
                .changed
                .iter()
                .chain(&changes.deleted)
                .filter(|path| matches!(base.entries.get(*path), Some(sloth_runner::workspace::Entry::File { .. })))
                .collect();
            if both.is_empty() {
                return;
            }
            let path = both[pick.index(both.len())].clone();
            root.unlink(&path).expect("unlink");
            let mut file = root.create_file(&path, 0o644, false).expect("rewrite");
            std::io::Write::write_all(&mut file, b"edited here meanwhile").expect("write");
            touched = Some(path);
        });
        if let Some(path) = touched {
            prop_assert!(
                matches!(&trip.result, Err(WorkspaceError::Conflict { details }) if details.iter().any(|d| d.contains(&path.to_string()))),
                "expected a conflict naming {path}: {:?}", trip.result
            );
            let now = Tree::read_all(&trip.master);
            now.assert_same(&trip.before_apply, "a refused apply");
            prop_assert_eq!(&now.mtimes, &trip.before_apply.mtimes);
            prop_assert_eq!(&now.other_times, &trip.before_apply.other_times);
        } else {
            prop_assert!(trip.result.is_ok(), "{:?}", trip.result);
        }
    }
}

/// Changes a task made to `a.txt` and `b.txt` (modified) and `c.txt` (deleted), as an archive.
fn three_changes(master: &Path) -> (Vec<u8>, Vec<RelPath>, Manifest) {
    for (name, content) in [("a.txt", "a0"), ("b.txt", "b0"), ("c.txt", "c0")] {
        std::fs::write(master.join(name), content).expect("write");
    }
    let base = Manifest::scan(master, &Filter::builtin()).expect("scan");
    let agent = tempfile::tempdir().expect("tempdir");
    for (name, content) in [("a.txt", "a1"), ("b.txt", "b1")] {
        std::fs::write(agent.path().join(name), content).expect("write");
    }
    let after = Manifest::scan(agent.path(), &Filter::builtin()).expect("scan");
    let changed: Vec<RelPath> = after.entries.keys().cloned().collect();
    let mut archive = Vec::new();
    pack(agent.path(), &after, Some(&changed), &mut archive).expect("pack");
    (archive, vec![RelPath::parse(b"c.txt").expect("valid")], base)
}

#[test]
fn an_edit_racing_the_apply_is_a_conflict_and_every_step_is_undone() {
    for racing in ["a.txt", "b.txt", "c.txt"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = dir.path();
        let (archive, deleted, base) = three_changes(master);
        // The local edit lands right before the step for `racing`: after the conflict check
        // and, for b.txt, after a.txt was already replaced and c.txt deleted.
        let mut observer = |step: Step<'_>| {
            let path = match step {
                Step::Delete(path) | Step::Place(path) | Step::Swap(path) => path,
            };
            if path.as_bytes() == racing.as_bytes() {
                std::fs::write(master.join(racing), "edited here at the last moment").expect("racing write");
            }
        };
        let base = Base { manifest: &base, rules: None };
        let error = apply_observed(master, &archive[..], &deleted, Some(base), &Limits::default(), &mut observer)
            .expect_err("a racing edit is a conflict");
        assert!(matches!(&error, WorkspaceError::Conflict { .. }), "{error}");
        assert!(error.to_string().contains(racing), "{error}");
        let expect = |name: &str, original: &str| {
            let want = if name == racing { "edited here at the last moment" } else { original };
            assert_eq!(std::fs::read_to_string(master.join(name)).expect("read"), want, "{name} (racing {racing})");
        };
        expect("a.txt", "a0");
        expect("b.txt", "b0");
        expect("c.txt", "c0");
        let left: BTreeSet<String> = std::fs::read_dir(master)
            .expect("read")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["a.txt", "b.txt", "c.txt"].map(str::to_owned).into(), "no staging left behind");
    }
}

/// An edit in the last moment — after the step's check, right before the task's entry is
/// swapped in or the original taken away — in place or as an editor saves (a new file renamed
/// over), is found where the original went: put back, the apply a conflict, every step undone,
/// nothing kept aside.
#[test]
fn an_edit_between_the_last_check_and_the_swap_is_put_back_and_a_conflict() {
    for racing in ["a.txt", "b.txt", "c.txt"] {
        for editor_save in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let master = dir.path();
            let (archive, deleted, base) = three_changes(master);
            let mut observer = |step: Step<'_>| {
                if matches!(step, Step::Swap(path) if path.as_bytes() == racing.as_bytes()) {
                    let target = master.join(racing);
                    if editor_save {
                        let temp = master.join(".saving");
                        std::fs::write(&temp, "saved at the last moment").expect("write");
                        std::fs::rename(&temp, &target).expect("rename over");
                    } else {
                        std::fs::write(&target, "saved at the last moment").expect("write in place");
                    }
                }
            };
            let base = Base { manifest: &base, rules: None };
            let error = apply_observed(master, &archive[..], &deleted, Some(base), &Limits::default(), &mut observer)
                .expect_err("a last-moment edit is a conflict");
            assert!(matches!(&error, WorkspaceError::Conflict { .. }), "{error}");
            assert!(error.to_string().contains(racing), "{error}");
            for (name, original) in [("a.txt", "a0"), ("b.txt", "b0"), ("c.txt", "c0")] {
                let want = if name == racing { "saved at the last moment" } else { original };
                let got = std::fs::read_to_string(master.join(name)).expect("read");
                assert_eq!(got, want, "{name} (racing {racing}, editor save {editor_save})");
            }
            let left: BTreeSet<String> = std::fs::read_dir(master)
                .expect("read")
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, ["a.txt", "b.txt", "c.txt"].map(str::to_owned).into(), "nothing kept aside, no staging");
        }
    }
}

/// A directory moved away here while the apply places the task's files in it (a new one made
/// in its place, or a link): a conflict naming it — never the rest of the files written into
/// whatever is at that path now.
#[test]
fn a_directory_moved_away_during_the_apply_is_a_conflict_and_nothing_goes_into_its_successor() {
    for successor in ["dir", "link"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let master = dir.path().join("master");
        std::fs::create_dir_all(master.join("d")).expect("mkdir");
        std::fs::write(master.join("d/keep"), "keep").expect("write");
        let base = Manifest::scan(&master, &Filter::builtin()).expect("scan");
        let agent = tempfile::tempdir().expect("agent");
        std::fs::create_dir(agent.path().join("d")).expect("mkdir");
        std::fs::write(agent.path().join("d/keep"), "keep").expect("write");
        for name in ["f1", "f2", "f3"] {
            std::fs::write(agent.path().join("d").join(name), name).expect("write");
        }
        let after = Manifest::scan(agent.path(), &Filter::builtin()).expect("scan");
        let changes = diff(&base, &after);
        let mut archive = Vec::new();
        pack(agent.path(), &after, Some(&changes.changed), &mut archive).expect("pack");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        let mut observer = |step: Step<'_>| {
            if matches!(step, Step::Place(path) if path.as_bytes() == b"d/f2") {
                std::fs::rename(master.join("d"), master.join("d.moved")).expect("move away");
                if successor == "dir" {
                    std::fs::create_dir(master.join("d")).expect("mkdir");
                } else {
                    std::os::unix::fs::symlink(&outside, master.join("d")).expect("link");
                }
            }
        };
        let base = Base { manifest: &base, rules: None };
        let error =
            apply_observed(&master, &archive[..], &changes.deleted, Some(base), &Limits::default(), &mut observer)
                .expect_err("a conflict");
        assert!(matches!(&error, WorkspaceError::Conflict { .. }), "{successor}: {error}");
        assert!(error.to_string().contains("'d' (moved or replaced here"), "{successor}: {error}");
        let in_successor: Vec<_> = std::fs::read_dir(master.join("d")).expect("d").flatten().collect();
        assert!(in_successor.is_empty(), "{successor}: nothing written into what is at d now: {in_successor:?}");
        assert_eq!(std::fs::read_to_string(master.join("d.moved/keep")).expect("keep"), "keep");
    }
}

/// Two applies into one workspace at once, both making `build/`: the one that made it is
/// still making it (its own mode not set yet) when the other merges into it, and that other
/// then fails on a file both wrote. Undoing it must not put back the mode the directory had
/// while it was being made: the first apply has set its own since.
#[test]
fn a_failed_apply_leaves_a_directory_another_apply_made_as_that_apply_left_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let master = dir.path().join("master");
    std::fs::create_dir(&master).expect("mkdir");
    std::fs::write(master.join("keep.txt"), "kept").expect("write");
    let base = Manifest::scan(&master, &Filter::builtin()).expect("scan");
    let agent = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(agent.path().join("build")).expect("mkdir");
    std::fs::set_permissions(agent.path().join("build"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(agent.path().join("build/only-a.txt"), "A").expect("write");
    std::fs::write(agent.path().join("build/same.txt"), "A").expect("write");
    let after = Manifest::scan(agent.path(), &Filter::builtin()).expect("scan");
    let changed: Vec<RelPath> = after.entries.keys().cloned().collect();
    let mut archive = Vec::new();
    pack(agent.path(), &after, Some(&changed), &mut archive).expect("pack");
    let build = master.join("build");
    let mut observer = |step: Step<'_>| {
        let Step::Place(path) = step else { return };
        match path.as_bytes() {
            // The other apply's directory, renamed into place, its mode not set yet.
            b"build" => {
                std::fs::create_dir(&build).expect("the other apply's directory");
                std::fs::set_permissions(&build, std::fs::Permissions::from_mode(0o700)).expect("chmod");
            }
            // The other apply places its file and finishes: its directory's mode is set.
            b"build/same.txt" => {
                std::fs::write(build.join("same.txt"), "B").expect("write");
                std::fs::set_permissions(&build, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            }
            _ => {}
        }
    };
    let base = Base { manifest: &base, rules: None };
    let error = apply_observed(&master, &archive[..], &[], Some(base), &Limits::default(), &mut observer)
        .expect_err("the file both wrote is a conflict");
    assert!(error.to_string().contains("build/same.txt"), "{error}");
    let mode = std::fs::symlink_metadata(&build).expect("build").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "the directory's mode as the other apply set it");
    assert_eq!(std::fs::read_to_string(build.join("same.txt")).expect("read"), "B");
    assert!(!build.join("only-a.txt").exists(), "the failed apply's own file is taken back");
}

/// A directory moved out of the workspace while the apply writes beneath it (a link to where it
/// went put in its place) gets no more of the task's files: each step looks the directory up
/// from the workspace again, not through the one it had open — which went along with the move.
#[test]
fn a_directory_moved_out_of_the_workspace_mid_apply_gets_no_more_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (master, agent, outside) = (dir.path().join("ws"), dir.path().join("agent"), dir.path().join("outside"));
    for root in [&master, &outside] {
        std::fs::create_dir_all(root).expect("mkdir");
    }
    std::fs::create_dir_all(master.join("D/sub")).expect("mkdir");
    for i in 1..=5 {
        std::fs::write(master.join(format!("D/sub/f{i}")), "orig\n").expect("write");
    }
    let base = Manifest::scan(&master, &Filter::builtin()).expect("scan");
    crate::support::tree::copy_tree(&master, &agent);
    for i in 1..=5 {
        std::fs::write(agent.join(format!("D/sub/f{i}")), "task\n").expect("write");
    }
    let after = Manifest::scan(&agent, &Filter::builtin()).expect("scan");
    let changes = diff(&base, &after);
    let mut archive = Vec::new();
    pack(&agent, &after, Some(&changes.changed), &mut archive).expect("pack");
    let moved = outside.join("D");
    let mut observer = |step: Step<'_>| {
        if matches!(step, Step::Place(path) if path.as_bytes() == b"D/sub/f2") {
            std::fs::rename(master.join("D"), &moved).expect("move D out");
            std::os::unix::fs::symlink(&moved, master.join("D")).expect("a link in its place");
        }
    };
    let base = Base { manifest: &base, rules: None };
    let error = apply_observed(&master, &archive[..], &changes.deleted, Some(base), &Limits::default(), &mut observer)
        .expect_err("the directory moved: a conflict");
    assert!(error.to_string().contains("'D"), "{error}");
    let written: Vec<String> = (2..=5)
        .filter(|i| std::fs::read_to_string(moved.join(format!("sub/f{i}"))).expect("read") != "orig\n")
        .map(|i| format!("f{i}"))
        .collect();
    assert!(written.is_empty(), "steps taken in the moved directory after the move: {written:?}\n{error}");
}

#[test]
fn without_a_race_the_same_changes_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (archive, deleted, base) = three_changes(dir.path());
    let base = Base { manifest: &base, rules: None };
    let report = apply(dir.path(), &archive[..], &deleted, Some(base), &Limits::default()).expect("apply");
    assert_eq!((report.written, report.deleted), (2, 1));
    assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).expect("read"), "a1");
    assert!(!dir.path().join("c.txt").exists());
}

/// With `SLOTH_TEST_DIE_APPLYING=<dir>`, applies the three changes in `<dir>` and exits the
/// process in the middle (as a kill would: no destructor runs). Otherwise does nothing.
#[test]
fn die_in_the_middle_of_an_apply() {
    let Some(dir) = std::env::var_os("SLOTH_TEST_DIE_APPLYING") else { return };
    let master = Path::new(&dir);
    let (archive, deleted, base) = three_changes(master);
    // The workspace directory's time as the apply finds it, for the recovery to give back.
    std::fs::File::open(master).expect("open").set_modified(long_ago()).expect("age");
    let base = Base { manifest: &base, rules: None };
    let mut observer = |step: Step<'_>| {
        if matches!(step, Step::Place(path) if path.as_bytes() == b"b.txt") {
            std::process::exit(0);
        }
    };
    let _ = apply_observed(master, &archive[..], &deleted, Some(base), &Limits::default(), &mut observer);
}

/// A time well before any test ran.
fn long_ago() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000)
}

/// Runs the test `child` of this binary with `variable=dir`: an apply in `dir` that exits
/// the process halfway (a kill, as far as the workspace can tell).
fn die_in(child: &str, variable: &str, dir: &Path) {
    let status = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", child, "--test-threads", "1"])
        .env(variable, dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running the dying apply");
    assert!(status.success());
}

/// The names in directory `dir`.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn an_apply_killed_halfway_is_taken_back_by_the_next_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    die_in("roundtrip::die_in_the_middle_of_an_apply", "SLOTH_TEST_DIE_APPLYING", dir.path());
    // Half applied: c.txt deleted and a.txt replaced, b.txt not yet; the staging is left.
    assert!(!dir.path().join("c.txt").exists(), "the apply got as far as deleting c.txt");
    assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).expect("read"), "a1");
    let recovered = sloth_runner::workspace::recover(dir.path()).expect("recover");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    for (name, content) in [("a.txt", "a0"), ("b.txt", "b0"), ("c.txt", "c0")] {
        assert_eq!(std::fs::read_to_string(dir.path().join(name)).expect("read"), content, "{name}");
    }
    assert_eq!(names_in(dir.path()), ["a.txt", "b.txt", "c.txt"].map(str::to_owned).into(), "the staging is gone");
    let root_time = std::fs::metadata(dir.path()).expect("root").modified().expect("mtime");
    assert_eq!(root_time, long_ago(), "the workspace directory's time as the apply found it");
}

/// A run whose tasks are all local takes back an apply killed halfway in its workspace before
/// its tasks start: they see the workspace as it was, not half of each (only the next remote
/// task's snapshot took it back).
#[test]
fn an_apply_killed_halfway_is_taken_back_before_a_local_run_s_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    die_in("roundtrip::die_in_the_middle_of_an_apply", "SLOTH_TEST_DIE_APPLYING", dir.path());
    assert!(!dir.path().join("c.txt").exists(), "the apply got as far as deleting c.txt");
    std::fs::write(
        dir.path().join("tasks.lua"),
        r#"TaskDefinitions = { g = { tasks = { { name = "look", command = "cat a.txt b.txt c.txt > seen.txt" } } } }"#,
    )
    .expect("pipeline");
    let run = std::process::Command::new(crate::support::binary())
        .args(["run", "tasks.lua"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("took back an interrupted apply"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.path().join("seen.txt")).expect("seen"), "a0b0c0");
}

/// With `SLOTH_TEST_DIE_REPLACING_RULES=<dir>`, applies a change that replaces the root's
/// `.slothignore` by a link (and a.txt, b.txt) in `<dir>`, and exits the process the moment
/// the rules and a.txt are placed: an apply killed halfway with the rules file half done.
#[test]
fn die_in_the_middle_of_an_apply_replacing_the_rules() {
    let Some(dir) = std::env::var_os("SLOTH_TEST_DIE_REPLACING_RULES") else { return };
    let master = Path::new(&dir);
    std::fs::write(master.join(".slothignore"), "*.log\n").expect("write the rules");
    for (name, content) in [("a.txt", "a0"), ("b.txt", "b0"), ("build.log", "log")] {
        std::fs::write(master.join(name), content).expect("write");
    }
    let base = Manifest::scan(master, &Filter::new(master, &[]).expect("rules")).expect("scan");
    let agent = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("elsewhere", agent.path().join(".slothignore")).expect("symlink");
    for (name, content) in [("a.txt", "a1"), ("b.txt", "b1")] {
        std::fs::write(agent.path().join(name), content).expect("write");
    }
    let after = Manifest::scan(agent.path(), &Filter::builtin()).expect("scan");
    let changed: Vec<RelPath> = after.entries.keys().cloned().collect();
    let mut archive = Vec::new();
    pack(agent.path(), &after, Some(&changed), &mut archive).expect("pack");
    let base = Base { manifest: &base, rules: None };
    let mut observer = |step: Step<'_>| {
        if matches!(step, Step::Place(path) if path.as_bytes() == b"b.txt") {
            std::process::exit(0);
        }
    };
    let _ = apply_observed(master, &archive[..], &[], Some(base), &Limits::default(), &mut observer);
}

/// The snapshot a remote task starts from takes back a dead apply before it is used — also
/// when what the apply left half done is the rules file the snapshot reads first.
#[test]
fn a_snapshot_takes_back_a_dead_apply_that_was_replacing_the_rules_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    die_in(
        "roundtrip::die_in_the_middle_of_an_apply_replacing_the_rules",
        "SLOTH_TEST_DIE_REPLACING_RULES",
        dir.path(),
    );
    let rules = dir.path().join(".slothignore");
    assert!(
        std::fs::symlink_metadata(&rules).expect("the rules").file_type().is_symlink(),
        "the apply got as far as placing the link"
    );
    let shown = dir.path().display().to_string();
    // The same user's cache as the dead apply's (where its proof is kept).
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .expect("a cache directory");
    let test = crate::support::Test::new().env("XDG_CACHE_HOME", &cache.display().to_string()).write(
        "pipeline.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ tasks = {{
                {{ name = "snap", command = function()
                    local manifest = workspace.snapshot({shown:?})
                    assert(manifest, "a manifest")
                    return true, "snapshot taken"
                end }},
            }} }} }}"#
        ),
    );
    test.run(&["run", "pipeline.lua"]).expect_code(0);
    assert!(std::fs::symlink_metadata(&rules).expect("the rules").is_file(), "the rules file is back");
    assert_eq!(std::fs::read_to_string(&rules).expect("read"), "*.log\n");
    for (name, content) in [("a.txt", "a0"), ("b.txt", "b0"), ("build.log", "log")] {
        assert_eq!(std::fs::read_to_string(dir.path().join(name)).expect("read"), content, "{name}");
    }
    assert_eq!(
        names_in(dir.path()),
        [".slothignore", "a.txt", "b.txt", "build.log"].map(str::to_owned).into(),
        "the staging is gone"
    );
}

#[test]
fn undoing_never_overwrites_what_was_saved_here_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = dir.path();
    let (archive, deleted, base) = three_changes(master);
    // Once a.txt is replaced by the task's version, the user saves over it; then b.txt
    // conflicts, and the apply is taken back — except a.txt, which is the user's now.
    let mut observer = |step: Step<'_>| {
        if matches!(step, Step::Place(path) if path.as_bytes() == b"b.txt") {
            std::fs::write(master.join("a.txt"), "saved here").expect("save a");
            std::fs::write(master.join("b.txt"), "edited here").expect("edit b");
        }
    };
    let base = Base { manifest: &base, rules: None };
    let error = apply_observed(master, &archive[..], &deleted, Some(base), &Limits::default(), &mut observer)
        .expect_err("a conflict");
    let message = error.to_string();
    assert!(message.contains("'b.txt'") && message.contains("'a.txt'"), "{message}");
    assert_eq!(std::fs::read_to_string(master.join("a.txt")).expect("read"), "saved here");
    assert_eq!(std::fs::read_to_string(master.join("b.txt")).expect("read"), "edited here");
    assert_eq!(std::fs::read_to_string(master.join("c.txt")).expect("read"), "c0", "the deletion was taken back");
    // The original a.txt stays where the message says, whatever looks for interrupted applies
    // next (and no snapshot ships it).
    let kept = |master: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(master)
            .expect("list")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(".sloth-kept-")))
            .collect()
    };
    let aside = kept(master);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(message.contains(&aside[0].display().to_string()), "{message}");
    sloth_runner::workspace::recover(master).expect("recover");
    let snapshot = Manifest::scan(master, &Filter::builtin()).expect("scan");
    assert!(
        snapshot.entries.keys().all(|path| !path.to_string().starts_with(".sloth")),
        "{:?}",
        snapshot.entries.keys()
    );
    let originals: Vec<String> = std::fs::read_dir(&aside[0])
        .expect("the kept directory is still there")
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect();
    assert!(originals.contains(&"a0".to_owned()), "the original a.txt is kept: {originals:?}");
}

#[test]
fn undoing_never_removes_a_directory_made_here_meanwhile_at_the_same_path() {
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let (master, agent) = (dirs[0].path(), dirs[1].path());
    let base = Manifest::scan(master, &Filter::builtin()).expect("scan");
    std::fs::create_dir(agent.join("d")).expect("the task's mkdir");
    std::fs::write(agent.join("e.txt"), "task").expect("the task's file");
    let after = Manifest::scan(agent, &Filter::builtin()).expect("scan");
    let changes = diff(&base, &after);
    let mut archive = Vec::new();
    pack(agent, &after, Some(&changes.changed), &mut archive).expect("pack");
    // Once the apply has made d, another apply (or a local command) takes it away and makes
    // its own d; then e.txt conflicts and the apply is taken back: the other d stays.
    let mut observer = |step: Step<'_>| {
        if matches!(step, Step::Place(path) if path.as_bytes() == b"e.txt") {
            std::fs::remove_dir(master.join("d")).expect("rmdir the apply's d");
            std::fs::create_dir(master.join("d")).expect("make another d");
            std::fs::write(master.join("e.txt"), "made here").expect("make e here");
        }
    };
    let base = Base { manifest: &base, rules: None };
    let error = apply_observed(master, &archive[..], &changes.deleted, Some(base), &Limits::default(), &mut observer)
        .expect_err("a conflict");
    assert!(error.to_string().contains("'e.txt'"), "{error}");
    assert!(master.join("d").is_dir(), "the directory made here meanwhile is not the apply's to remove");
    assert_eq!(std::fs::read_to_string(master.join("e.txt")).expect("read"), "made here");
}

#[test]
fn a_directory_mode_changed_on_both_sides_is_a_conflict() {
    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let (master, agent) = (dirs[0].path(), dirs[1].path());
    use std::os::unix::fs::PermissionsExt;
    for root in [master, agent] {
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::set_permissions(root.join("d"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let base = Manifest::scan(master, &Filter::builtin()).expect("scan");
    std::fs::set_permissions(agent.join("d"), std::fs::Permissions::from_mode(0o777)).expect("the task's chmod");
    let after = Manifest::scan(agent, &Filter::builtin()).expect("scan");
    let changes = diff(&base, &after);
    let mut archive = Vec::new();
    pack(agent, &after, Some(&changes.changed), &mut archive).expect("pack");
    std::fs::set_permissions(master.join("d"), std::fs::Permissions::from_mode(0o700)).expect("a chmod here");
    let base = Base { manifest: &base, rules: None };
    let error = apply(master, &archive[..], &changes.deleted, Some(base), &Limits::default()).expect_err("conflict");
    assert!(error.to_string().contains("'d' (its mode changed here"), "{error}");
    let mode = std::fs::metadata(master.join("d")).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the mode set here stays");
}

#[test]
fn concurrent_applies_never_take_each_other_for_dead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let root = root.clone();
            std::thread::spawn(move || {
                for round in 0..40 {
                    let agent = tempfile::tempdir().expect("tempdir");
                    let name = format!("w{worker}-{round}.txt");
                    std::fs::write(agent.path().join(&name), "x").expect("write");
                    let after = Manifest::scan(agent.path(), &Filter::builtin()).expect("scan");
                    let changed: Vec<RelPath> = after.entries.keys().cloned().collect();
                    let mut archive = Vec::new();
                    pack(agent.path(), &after, Some(&changed), &mut archive).expect("pack");
                    let base = Manifest::default();
                    let base = Base { manifest: &base, rules: None };
                    apply(&root, &archive[..], &[], Some(base), &Limits::default())
                        .unwrap_or_else(|e| panic!("worker {worker} round {round}: {e}"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker panicked");
    }
    let files = std::fs::read_dir(&root).expect("read").flatten().count();
    assert_eq!(files, 160, "every apply landed and no staging is left");
}

#[test]
fn concurrent_applies_creating_the_same_directory_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let rounds = 40;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (root, barrier) = (root.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for round in 0..rounds {
                    let agent = tempfile::tempdir().expect("tempdir");
                    let made = agent.path().join(format!("d{round}/sub"));
                    std::fs::create_dir_all(&made).expect("mkdir");
                    std::fs::write(made.join(format!("w{worker}.txt")), "x").expect("write");
                    let after = Manifest::scan(agent.path(), &Filter::builtin()).expect("scan");
                    let changed: Vec<RelPath> = after.entries.keys().cloned().collect();
                    let mut archive = Vec::new();
                    pack(agent.path(), &after, Some(&changed), &mut archive).expect("pack");
                    let base = Manifest::default();
                    let base = Base { manifest: &base, rules: None };
                    // All four make d{round}/sub at once (a failure is kept, not raised, so
                    // that the others are never left waiting here).
                    barrier.wait();
                    if let Err(error) = apply(&root, &archive[..], &[], Some(base), &Limits::default()) {
                        failures.push(format!("worker {worker} round {round}: {error}"));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> =
        workers.into_iter().flat_map(|worker| worker.join().expect("a worker panicked")).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    for round in 0..rounds {
        let files = std::fs::read_dir(root.join(format!("d{round}/sub"))).expect("read").flatten().count();
        assert_eq!(files, 4, "round {round}: every apply landed in the one directory");
    }
}

#[test]
fn a_failed_apply_puts_a_hard_link_group_back_exactly() {
    let p = |name: &'static [u8]| vec![name];
    let nodes = vec![
        (p(b"a"), Node::File { content: b"shared".to_vec(), mode: 0o644 }),
        (p(b"b"), Node::HardLink { to: p(b"a") }),
        (p(b"dir"), Node::Dir { mode: 0o755 }),
        (vec![&b"dir"[..], &b"x"[..]], Node::File { content: b"x".to_vec(), mode: 0o644 }),
    ];
    let edits = vec![
        Edit::Chmod { path: p(b"a"), mode: 0o600 },
        Edit::Remove { path: p(b"dir") },
        Edit::Write { path: p(b"dir"), content: b"now a file".to_vec() },
    ];
    // Meanwhile, something the task never saw lands in `dir`: replacing it is a conflict, found
    // only when its turn comes, after the group was placed.
    let trip = round_trip(&nodes, &edits, |root, _, _| {
        let junk = RelPath::parse(b"dir/junk").expect("valid");
        let mut file = root.create_file(&junk, 0o644, false).expect("junk");
        std::io::Write::write_all(&mut file, b"junk").expect("write");
    });
    assert!(matches!(&trip.result, Err(WorkspaceError::Conflict { .. })), "{:?}", trip.result);
    let now = Tree::read_all(&trip.master);
    now.assert_same(&trip.before_apply, "a refused apply");
    assert_eq!(now.mtimes, trip.before_apply.mtimes);
    assert_eq!(now.links.len(), 1, "a and b are one file again: {:?}", now.links);
    let leftovers: Vec<_> = std::fs::read_dir(&trip.master)
        .expect("list")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".sloth-"))
        .collect();
    assert!(leftovers.is_empty(), "nothing left behind: {leftovers:?}");
}

/// A task on a copy without setuid bits (they do not travel) touches `s`; meanwhile the master
/// runs `chmod` on it. Returns the master's mode of `s` after the apply.
fn touch_a_setuid_file(mode_here: u32, meanwhile_mode: Option<u32>, task_mode: Option<u32>) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let (master, agent, cache_dir) =
        (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let s = master.path().join("s");
    std::fs::write(&s, "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(mode_here)).expect("chmod");
    let rules = Filter::new(master.path(), &[]).expect("rules");
    let base = Manifest::scan(master.path(), &rules).expect("scan");
    let cache = BlobCache::new(cache_dir.path(), u64::MAX).expect("cache");
    let mut blobs = Vec::new();
    pack_blobs(master.path(), &base, &cache.missing(&base), &mut blobs, cache_dir.path()).expect("pack");
    cache.store(&blobs[..], &Limits::default()).expect("store");
    let built = cache.materialize(&base, agent.path(), &Limits::default()).expect("build");
    let copy = agent.path().join("s");
    assert_eq!(std::fs::metadata(&copy).expect("stat").permissions().mode() & 0o7777, mode_here & 0o777);
    let root = Root::open(agent.path()).expect("root");
    root.set_mtime(&RelPath::parse(b"s").expect("path"), Timestamp { secs: 1_600_000_000, nanos: 0 }).expect("touch");
    if let Some(mode) = task_mode {
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let after = Manifest::scan(agent.path(), &rules).expect("scan after");
    let changes = diff(&built, &after);
    let mut archive = Vec::new();
    pack(agent.path(), &after, Some(&changes.changed), &mut archive).expect("pack");
    if let Some(mode) = meanwhile_mode {
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(mode)).expect("chmod here");
    }
    let base = Base { manifest: &base, rules: Some(&rules) };
    apply(master.path(), &archive[..], &changes.deleted, Some(base), &Limits::default()).expect("apply");
    std::fs::metadata(&s).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn setuid_bits_the_agent_never_saw_stay_as_they_are_here() {
    assert_eq!(touch_a_setuid_file(0o4755, None, None), 0o4755, "a touch keeps them");
    assert_eq!(touch_a_setuid_file(0o4755, Some(0o755), None), 0o755, "removed here meanwhile: not put back");
    assert_eq!(touch_a_setuid_file(0o4755, None, Some(0o745)), 0o4745, "chmod g-x keeps them, as here");
}

#[test]
fn a_directory_replaced_here_meanwhile_is_a_conflict_named_with_every_other() {
    let p = |name: &'static [u8]| vec![name];
    let nodes = vec![
        (p(b"d"), Node::Dir { mode: 0o755 }),
        (vec![&b"d"[..], &b"x"[..]], Node::File { content: b"x".to_vec(), mode: 0o644 }),
        (vec![&b"d"[..], &b"y"[..]], Node::File { content: b"y".to_vec(), mode: 0o644 }),
        (p(b"f"), Node::File { content: b"f".to_vec(), mode: 0o644 }),
        (p(b"s"), Node::File { content: b"s".to_vec(), mode: 0o644 }),
    ];
    let append = |path: Vec<&'static [u8]>| Edit::Append { path, content: b"+".to_vec() };
    let edits =
        vec![append(vec![&b"d"[..], &b"x"[..]]), append(vec![&b"d"[..], &b"y"[..]]), append(p(b"f")), append(p(b"s"))];
    // Meanwhile here: `d` moved aside and a link put in its place; `f` and `s` rewritten.
    let trip = round_trip(&nodes, &edits, |root, _, _| {
        let top = root.path().to_path_buf();
        std::fs::rename(top.join("d"), top.join("d.old")).expect("mv");
        std::os::unix::fs::symlink("d.old", top.join("d")).expect("ln -s");
        for name in ["f", "s"] {
            std::fs::remove_file(top.join(name)).expect("rm");
            std::fs::write(top.join(name), "edited here").expect("write");
        }
    });
    let Err(WorkspaceError::Conflict { details }) = &trip.result else { panic!("a conflict: {:?}", trip.result) };
    assert_eq!(
        details,
        &vec![
            "'d/x' (its directory 'd' is a symlink here now; written by the task)".to_owned(),
            "'f' (changed here; changed by the task)".to_owned(),
            "'s' (changed here; changed by the task)".to_owned(),
        ]
    );
    Tree::read_all(&trip.master).assert_same(&trip.before_apply, "a refused apply");
}

/// Reads an archive, and says the run was interrupted once it has all been read.
struct InterruptAtTheEnd<'a> {
    bytes: &'a [u8],
    interrupted: &'a std::sync::atomic::AtomicBool,
}

impl std::io::Read for InterruptAtTheEnd<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::Read::read(&mut self.bytes, buf)?;
        if n == 0 {
            self.interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[test]
fn an_apply_interrupted_before_or_while_its_changes_are_staged_leaves_the_workspace_as_it_was() {
    for when in ["before", "at the end of staging"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (archive, deleted, base) = three_changes(dir.path());
        let before = Tree::read_all(dir.path());
        let interrupted = std::sync::atomic::AtomicBool::new(when == "before");
        let reader = InterruptAtTheEnd { bytes: &archive, interrupted: &interrupted };
        let base = Base { manifest: &base, rules: None };
        let result = apply_interruptible(dir.path(), reader, &deleted, Some(base), &Limits::default(), &interrupted);
        assert!(matches!(&result, Err(error) if error.to_string().contains("interrupted")), "{when}: {result:?}");
        let now = Tree::read_all(dir.path());
        now.assert_same(&before, when);
        assert_eq!(now.mtimes, before.mtimes, "{when}");
    }
}

#[test]
fn an_apply_waiting_for_another_of_its_workspace_stops_waiting_when_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (archive, deleted, base) = three_changes(dir.path());
    let before = Tree::read_all(dir.path());
    // Another apply (another process, as far as locks go) holds the workspace.
    let held =
        nix::fcntl::Flock::lock(std::fs::File::open(dir.path()).expect("open"), nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .expect("lock");
    let interrupted = std::sync::atomic::AtomicBool::new(false);
    let base = Base { manifest: &base, rules: None };
    let result = std::thread::scope(|scope| {
        // (Interrupted once the apply has read the start of its changes and waits: it reads
        // them from memory, in far less than this.)
        scope.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            interrupted.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        apply_interruptible(dir.path(), &archive[..], &deleted, Some(base), &Limits::default(), &interrupted)
    });
    assert!(matches!(&result, Err(error) if error.to_string().contains("waiting for another apply")), "{result:?}");
    drop(held);
    Tree::read_all(dir.path()).assert_same(&before, "nothing applied");
}
