//! The seed's promise as a property, through the real binary and a real agent: for random
//! trees and random shell edits — writes, appends, deletions, renames, chmods (setuid, setgid
//! and sticky too), file↔directory, links, hard links, named pipes, odd and non-UTF-8 names —
//! running the edit script here and on an agent, on identical copies, leaves the same tree
//! (contents, modes, links, hard-link groups, kinds), and every file neither run touched keeps
//! its exact modification time.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;

use crate::support::agent::Agent;
use crate::support::tree::{Node, Tree, copy_tree};
use crate::support::{Run, binary};

/// Names a shell script must spell with escapes: a space, a newline, a dash, a glob, UTF-8
/// and bytes that are not.
const NAMES: &[&[u8]] = &[b"a", b"d", b"x y", b"-n*", b"\xc3\xa9\xff", b"n\nl"];
/// Link targets that stay inside (a local run of the script must not write outside either).
const TARGETS: &[&[u8]] = &[b"a", b"d/a", b"nowhere", b"d"];

#[derive(Debug, Clone)]
enum Edit {
    Write(Vec<&'static [u8]>, u8),
    Remove(Vec<&'static [u8]>),
    Rename(Vec<&'static [u8]>, Vec<&'static [u8]>),
    Chmod(Vec<&'static [u8]>, u32),
    Mkdir(Vec<&'static [u8]>),
    Link(Vec<&'static [u8]>, &'static [u8]),
    Touch(Vec<&'static [u8]>, u32),
    Append(Vec<&'static [u8]>, u8),
    HardLink(Vec<&'static [u8]>, Vec<&'static [u8]>),
    Fifo(Vec<&'static [u8]>),
    /// The workspace directory itself: its mode, its time.
    RootChmod(u32),
    RootTouch(u32),
}

fn path() -> impl Strategy<Value = Vec<&'static [u8]>> {
    proptest::collection::vec(proptest::sample::select(NAMES), 1..=2)
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (path(), any::<u8>()).prop_map(|(path, byte)| Edit::Write(path, byte)),
        2 => path().prop_map(Edit::Remove),
        2 => (path(), path()).prop_map(|(from, to)| Edit::Rename(from, to)),
        1 => (path(), proptest::sample::select(&[0o600u32, 0o644, 0o755, 0o700, 0o4755, 0o2775, 0o1777][..]))
            .prop_map(|(p, m)| Edit::Chmod(p, m)),
        2 => (path(), any::<u8>()).prop_map(|(path, byte)| Edit::Append(path, byte)),
        2 => (path(), path()).prop_map(|(p, q)| Edit::HardLink(p, q)),
        1 => path().prop_map(Edit::Fifo),
        1 => path().prop_map(Edit::Mkdir),
        1 => (path(), proptest::sample::select(TARGETS)).prop_map(|(p, t)| Edit::Link(p, t)),
        1 => (path(), 1_000_000u32..1_500_000_000).prop_map(|(p, secs)| Edit::Touch(p, secs)),
        1 => proptest::sample::select(&[0o700u32, 0o750, 0o555, 0o2775, 0o1777][..]).prop_map(Edit::RootChmod),
        1 => (1_000_000u32..1_500_000_000).prop_map(Edit::RootTouch),
    ]
}

/// What a starting tree is made of: mostly files, some directories and links.
fn start_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        5 => (path(), any::<u8>()).prop_map(|(path, byte)| Edit::Write(path, byte)),
        2 => path().prop_map(Edit::Mkdir),
        1 => (path(), proptest::sample::select(TARGETS)).prop_map(|(p, t)| Edit::Link(p, t)),
        2 => (path(), path()).prop_map(|(p, q)| Edit::HardLink(p, q)),
        1 => path().prop_map(Edit::Fifo),
    ]
}

/// `bytes` as a POSIX sh word: printf with octal escapes, a sentinel so that command
/// substitution keeps a trailing newline, then the sentinel stripped.
fn word(bytes: &[u8]) -> String {
    let escaped: String = bytes.iter().map(|byte| format!("\\{byte:03o}")).collect();
    format!("\"$(printf '{escaped}_')\"")
}

fn script_path(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

/// The edits as a script: each line sets `p`/`q` and runs one command; failures are ignored,
/// as a failing step of a real script might be.
fn script(edits: &[Edit]) -> String {
    let mut out = String::from("set +e\n");
    let set = |var: &str, bytes: &[u8]| format!("{var}={}; {var}=\"${{{var}%_}}\"; ", word(bytes));
    for edit in edits {
        let line = match edit {
            Edit::Write(p, byte) => {
                format!(
                    "{}case \"$p\" in */*) mkdir -p -- \"${{p%/*}}\";; esac; \
                     [ -d \"$p\" ] || {{ rm -f -- \"$p\"; printf 'v{byte}\\n' > \"$p\"; }}",
                    set("p", &script_path(p))
                )
            }
            Edit::Remove(p) => format!("{}rm -rf -- \"$p\"", set("p", &script_path(p))),
            Edit::Rename(from, to) => format!(
                "{}{}case \"$q/\" in \"$p\"/*) ;; *) [ -d \"$q\" ] || mv -f -- \"$p\" \"$q\";; esac",
                set("p", &script_path(from)),
                set("q", &script_path(to))
            ),
            Edit::Chmod(p, mode) => format!("{}[ -L \"$p\" ] || chmod {mode:o} -- \"$p\"", set("p", &script_path(p))),
            Edit::Mkdir(p) => format!("{}mkdir -p -- \"$p\"", set("p", &script_path(p))),
            Edit::Link(p, target) => {
                format!(
                    "{}{}[ -e \"$p\" ] || [ -L \"$p\" ] || ln -s -- \"$q\" \"$p\"",
                    set("p", &script_path(p)),
                    set("q", target)
                )
            }
            Edit::Touch(p, secs) => format!(
                "{}[ ! -L \"$p\" ] && {{ [ -f \"$p\" ] || [ -d \"$p\" ]; }} && touch -d @{secs} -- \"$p\"",
                set("p", &script_path(p))
            ),
            // In place: every other name of the file sees it.
            Edit::Append(p, byte) => {
                format!(
                    "{}[ ! -L \"$p\" ] && [ -f \"$p\" ] && printf 'a{byte}\\n' >> \"$p\"",
                    set("p", &script_path(p))
                )
            }
            Edit::HardLink(p, q) => format!(
                "{}{}[ ! -L \"$q\" ] && [ -f \"$q\" ] && [ ! -e \"$p\" ] && [ ! -L \"$p\" ] && ln -- \"$q\" \"$p\"",
                set("p", &script_path(p)),
                set("q", &script_path(q))
            ),
            Edit::Fifo(p) => format!("{}[ -e \"$p\" ] || [ -L \"$p\" ] || mkfifo -- \"$p\"", set("p", &script_path(p))),
            Edit::RootChmod(mode) => format!("chmod {mode:o} ."),
            Edit::RootTouch(secs) => format!("touch -d @{secs} ."),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("true\n");
    out
}

/// Runs `pipeline` (in `dir`) with the real binary.
fn run(dir: &Path, pipeline: &str) -> Run {
    std::fs::write(dir.join("tasks.lua"), pipeline).expect("write the pipeline");
    let mut command = std::process::Command::new(binary());
    command.args(["run", "tasks.lua"]).current_dir(dir).env_remove("RUST_LOG");
    Run::of(command)
}

/// A pipeline whose one task runs `script` in `workdir`, here or on the agent at `agent`
/// (carrying setuid bits: the property is the exact tree).
fn pipeline(workdir: &Path, agent: Option<&str>, script: &str) -> String {
    let agents =
        agent.map(|address| format!("agents = {{ box = {{ address = \"{address}\" }} }},")).unwrap_or_default();
    let on = if agent.is_some() { "agent = \"box\", workspace = { setuid = true }," } else { "" };
    format!(
        "TaskDefinitions = {{ g = {{ workdir = \"{}\", {agents} tasks = {{\n  {{ name = \"t\", {on} command = [==[{script}]==] }},\n}} }} }}\n",
        workdir.display()
    )
}

fn setup(root: &Path, edits: &[Edit]) {
    // The starting tree is what a first script makes of an empty directory, with old times.
    std::fs::create_dir(root).expect("mkdir");
    // Steps that fail (a parent that is a file) are part of the game: their complaints are noise.
    let outcome = std::process::Command::new("sh")
        .arg("-c")
        .arg(script(edits))
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .status();
    assert!(outcome.is_ok(), "the setup script ran");
    let tree = Tree::read_all(root);
    for (i, (path, node)) in tree.nodes.iter().enumerate() {
        if matches!(node, Node::File { .. }) {
            let full = root.join(crate::support::tree::byte_path(path));
            let status = std::process::Command::new("touch")
                .arg("-d")
                .arg(format!("@{}", 1_000_000_000 + i))
                .arg(&full)
                .status()
                .expect("touch");
            assert!(status.success());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_edit_script_leaves_the_same_tree_here_and_on_an_agent(
        start in proptest::collection::vec(start_edit(), 4..24),
        edits in proptest::collection::vec(edit(), 1..12),
    ) {
        let agent = Agent::start(&[]);
        let scratch = tempfile::tempdir().expect("tempdir");
        let local = scratch.path().join("local");
        let remote = scratch.path().join("remote");
        setup(&local, &start);
        copy_tree(&local, &remote);
        let edit_script = script(&edits);
        let initial = Tree::read_all(&local);

        let here = run(scratch.path(), &pipeline(&local, None, &edit_script));
        prop_assert_eq!(here.code, Some(0), "local run:\n{}", here.stderr);
        let there = run(scratch.path(), &pipeline(&remote, Some(&agent.address), &edit_script));
        prop_assert_eq!(there.code, Some(0), "remote run:\n{}\n{}", there.stderr, agent.log());

        let (local_tree, remote_tree) = (Tree::read_all(&local), Tree::read_all(&remote));
        let differences = local_tree.differences(&remote_tree);
        prop_assert!(differences.is_empty(), "the trees differ:\n  {}\nscript:\n{}", differences.join("\n  "), script(&edits));
        // The workspace directory itself: its mode always; its time when nothing changed it
        // after the script set it (a name added there later gives it the time of that change,
        // which differs between two runs).
        let root_meta = |dir: &Path| {
            let meta = std::fs::metadata(dir).expect("the workspace");
            (meta.permissions().mode() & 0o7777, meta.modified().expect("mtime"))
        };
        let (here_root, there_root) = (root_meta(&local), root_meta(&remote));
        prop_assert_eq!(here_root.0, there_root.0, "the workspace directory's mode");
        if matches!(edits.last(), Some(Edit::RootTouch(_))) {
            prop_assert_eq!(here_root.1, there_root.1, "the workspace directory's time");
        }
        for (path, time) in &initial.mtimes {
            if local_tree.mtimes.get(path) == Some(time) {
                prop_assert_eq!(
                    remote_tree.mtimes.get(path), Some(time),
                    "{} was left alone but its time changed", String::from_utf8_lossy(path)
                );
            }
        }
    }
}
