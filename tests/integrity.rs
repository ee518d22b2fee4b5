//! Issue 7, end to end: each numbered case as a real run of the binary against a real agent on
//! loopback, checking the master's workspace byte for byte afterwards (contents, modes, links),
//! and the run's exit status and message.
//!
//! Every pipeline runs its task in `ws/` below the test directory (`workdir = "ws"`), so the
//! pipeline file and sloth-runner's run state stay out of the workspace, and the test directory
//! itself is "outside the workspace" for the cases that check nothing is written there.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::agent::Agent;
use crate::support::tree::{Node, Tree, byte_path};
use crate::support::{Run, Test, wait_exit, wait_for_line_file};

/// A pipeline whose group `g` runs in `ws/` with agent `box`; each task is `(name, shell)`
/// and runs on `box`.
fn pipeline(agent: &Agent, tasks: &[(&str, &str)]) -> String {
    let tasks: String = tasks
        .iter()
        .map(|(name, command)| {
            format!("      {{ name = \"{name}\", agent = \"box\", command = [==[{command}]==] }},\n")
        })
        .collect();
    format!(
        "TaskDefinitions = {{\n  g = {{\n    workdir = \"ws\",\n    agents = {{ box = {{ address = \"{}\" }} }},\n    \
         tasks = {{\n{tasks}    }},\n  }},\n}}\n",
        agent.address
    )
}

/// A fresh test directory with an empty `ws/` and `tasks.lua` running `tasks` on `agent`.
fn workspace(agent: &Agent, tasks: &[(&str, &str)]) -> Test {
    let test = Test::new().write("tasks.lua", &pipeline(agent, tasks));
    std::fs::create_dir(ws(&test)).expect("creating ws/");
    test
}

fn ws(test: &Test) -> PathBuf {
    test.path().join("ws")
}

/// The workspace as data.
fn ws_tree(test: &Test) -> Tree {
    Tree::read_all(&ws(test))
}

/// Asserts the workspace is `expected` (contents, modes, links, kinds).
fn assert_ws(test: &Test, expected: &Tree, what: &str) {
    ws_tree(test).assert_same(expected, &format!("the workspace (first) vs what is expected (second), {what}"));
}

/// Everything in the test directory except the workspace and the run state: what a run must
/// never touch.
fn outside_tree(test: &Test) -> Tree {
    Tree::read(test.path(), &|name| name == b"ws" || name == b".sloth")
}

fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let value = status.lines().find_map(|line| line.strip_prefix("Umask:")).expect("a Umask line");
    u32::from_str_radix(value.trim(), 8).expect("an octal umask")
}

/// A file as a shell redirection (here or on the agent, same umask) creates it.
fn new_file(contents: &[u8]) -> Node {
    Node::File { mode: 0o666 & !umask(), contents: contents.to_vec() }
}

/// A directory as `mkdir` creates it.
fn new_dir() -> Node {
    Node::Dir { mode: 0o777 & !umask() }
}

fn link(target: &str) -> Node {
    Node::Symlink { target: target.as_bytes().to_vec() }
}

fn with(mut tree: Tree, changes: &[(&[u8], Option<Node>)]) -> Tree {
    for (path, node) in changes {
        match node {
            Some(node) => tree.nodes.insert(path.to_vec(), node.clone()),
            None => tree.nodes.remove(*path),
        };
    }
    tree
}

fn readlink(path: &Path) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is not a symlink: {e}", path.display()))
        .to_string_lossy()
        .into_owned()
}

/// Asserts the run succeeded and says task `g/<task>` did.
fn assert_succeeded(run: &Run, task: &str) {
    assert_eq!(run.code, Some(0), "{}", show(run));
    assert!(run.stderr.contains(&format!("g/{task}  succeeded")), "{}", show(run));
}

fn show(run: &Run) -> String {
    format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", run.code, run.stdout, run.stderr)
}

/// Whether `program --version` runs.
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

// ---------------------------------------------------------------------------------------------
// 1. A task that adds a glob to `.slothignore` does not delete what the glob now matches.

#[test]
fn a_task_adding_a_glob_to_slothignore_keeps_the_files_it_matches_on_the_master() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "echo '*.c' >> .slothignore")])
        .write("ws/a.c", "int a;\n")
        .write("ws/b.c", "int b;\n")
        .write("ws/x.txt", "text\n");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&run, "t");
    let expected = with(before, &[(b".slothignore", Some(new_file(b"*.c\n")))]);
    assert_ws(&test, &expected, &format!("after the run\n{}", show(&run)));
}

#[test]
fn an_ignore_file_that_ignores_itself_still_rules_what_comes_back() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "mkdir -p build && echo agent > build/keep.o && echo new > build/new.o")])
        .write("ws/.slothignore", ".slothignore\nbuild/\n")
        .write("ws/build/keep.o", "master\n");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_succeeded(&run, "t");
    assert_ws(&test, &before, &format!("nothing ignored comes back\n{context}"));
}

#[test]
fn a_socket_here_is_never_replaced_by_what_the_task_wrote_at_its_name() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "echo agent > sock")]).write("ws/keep.txt", "kept\n");
    let _listener = std::os::unix::net::UnixListener::bind(ws(&test).join("sock")).expect("binding a socket");
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_eq!(run.code, Some(1), "{context}");
    assert!(run.stderr.contains("'sock' is a socket: not carried to the agent"), "{context}");
    assert!(run.stderr.contains("'sock' (a socket here"), "{context}");
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::symlink_metadata(ws(&test).join("sock")).expect("lstat").file_type();
    assert!(kind.is_socket(), "the socket is still there\n{context}");
}

// ---------------------------------------------------------------------------------------------
// 2. A corrupted blob in the agent's cache is never used (nor sent back as a change).

const REAL_DATA: &str = "the real data, line one\n";

/// Runs a task reading data.txt once (so its content is cached in `--cache-dir`), replaces
/// every cached copy of that content with `corrupt(content)`, then runs a task that only reads
/// data.txt and writes other.txt.
fn corrupted_cache_case(corrupt: fn(&[u8]) -> Vec<u8>) {
    replaced_cache_case(|path, real| {
        std::fs::write(path, corrupt(real)).unwrap_or_else(|e| panic!("corrupting {}: {e}", path.display()));
    });
}

/// [`corrupted_cache_case`], with every cached copy of the content replaced by `replace(path,
/// content)` (a link, a pipe...).
fn replaced_cache_case(replace: impl Fn(&Path, &[u8])) {
    replaced_cache_case_on(&[], replace);
}

/// [`replaced_cache_case`] on an agent started with `args` besides its cache directory.
fn replaced_cache_case_on(args: &[&str], replace: impl Fn(&Path, &[u8])) {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_string_lossy().into_owned();
    let agent = Agent::start(&[&["--cache-dir", cache_dir.as_str()], args].concat());
    let test = workspace(&agent, &[("t", "cat data.txt > out.txt")]).write("ws/data.txt", REAL_DATA);
    assert_succeeded(&test.run(&["run", "tasks.lua"]), "t");
    assert_eq!(test.read("ws/out.txt"), REAL_DATA);

    let hash = blake3::hash(REAL_DATA.as_bytes()).to_hex().to_string();
    // What came for a new tree goes into the cache once the task has answered: it may still
    // be on its way when the run ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let cached = loop {
        let mut cached = Vec::new();
        find_cached(cache.path(), &hash, REAL_DATA.as_bytes(), &mut cached);
        // Published under its name (not a temporary file still being written).
        let published =
            cached.iter().any(|path| path.file_name().is_some_and(|name| name.as_bytes() == hash.as_bytes()));
        if published || std::time::Instant::now() > deadline {
            break cached;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!cached.is_empty(), "data.txt's content is not in the cache dir {}", cache.path().display());
    for path in &cached {
        replace(path, REAL_DATA.as_bytes());
    }

    std::fs::write(test.path().join("tasks.lua"), pipeline(&agent, &[("t", "cat data.txt; echo hi > other.txt")]))
        .expect("rewriting tasks.lua");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_succeeded(&run, "t");
    let expected = with(before, &[(b"other.txt", Some(new_file(b"hi\n")))]);
    assert_ws(&test, &expected, &format!("after the second run\n{context}"));
    assert!(
        run.stderr.contains(&format!("box/t | {}", REAL_DATA.trim_end())),
        "the task did not see the real data.txt\n{context}"
    );
}

/// Regular files below `dir` named `hash` or holding exactly `content`.
fn find_cached(dir: &Path, hash: &str, content: &[u8], found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading the cache dir").flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            find_cached(&path, hash, content, found);
        } else if meta.is_file()
            && (entry.file_name().as_bytes() == hash.as_bytes() || std::fs::read(&path).is_ok_and(|c| c == content))
        {
            found.push(path);
        }
    }
}

#[test]
fn a_cached_blob_overwritten_with_other_bytes_of_the_same_length_is_not_used() {
    corrupted_cache_case(|real| vec![b'X'; real.len()]);
}

#[test]
fn a_cached_blob_overwritten_is_not_used_for_a_new_tree_either() {
    // No tree kept: the second task's tree is built anew from the cache, the bad content is
    // found as it is copied, and asked for again.
    replaced_cache_case_on(&["--warm-trees", "0"], |path, real| {
        std::fs::write(path, vec![b'X'; real.len()]).expect("corrupting");
    });
}

#[test]
fn a_cached_blob_truncated_to_fewer_bytes_is_not_used() {
    corrupted_cache_case(|real| real[..real.len() / 2].to_vec());
}

#[test]
fn a_cached_blob_emptied_is_not_used() {
    corrupted_cache_case(|_| Vec::new());
}

/// Replaces the blob at `path` by a link to a new file in `outside` holding `content`.
fn link_to(outside: &Path, path: &Path, content: &[u8]) {
    let target = outside.join(path.file_name().expect("a blob's name"));
    std::fs::write(&target, content).expect("writing the link's target");
    std::fs::remove_file(path).expect("removing the blob");
    std::os::unix::fs::symlink(&target, path).expect("linking the blob");
}

#[test]
fn a_cached_blob_replaced_by_a_link_is_fetched_again() {
    // Even to the right bytes: a blob is a regular file of the cache's own, or it is not there.
    let outside = tempfile::tempdir().expect("tempdir");
    replaced_cache_case(|path, real| link_to(outside.path(), path, real));
    replaced_cache_case(|path, real| link_to(outside.path(), path, &real[1..]));
    replaced_cache_case(|path, _| {
        std::fs::remove_file(path).expect("removing the blob");
        std::os::unix::fs::symlink("nowhere", path).expect("linking the blob");
    });
    for target in std::fs::read_dir(outside.path()).expect("list").flatten() {
        assert!(std::fs::read(target.path()).is_ok(), "a link's target is left alone: {}", target.path().display());
    }
}

#[test]
fn a_cached_blob_replaced_by_a_named_pipe_is_fetched_again() {
    replaced_cache_case(|path, _| {
        std::fs::remove_file(path).expect("removing the blob");
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    });
}

#[test]
fn a_cached_blob_replaced_by_a_directory_is_fetched_again() {
    // (With something in it; and for a tree built anew too: what comes again is stored under
    // the blob's name, where the directory was.)
    let replace = |path: &Path, _: &[u8]| {
        std::fs::remove_file(path).expect("removing the blob");
        std::fs::create_dir(path).expect("mkdir");
        std::fs::write(path.join("inside"), "x").expect("write");
    };
    replaced_cache_case(replace);
    replaced_cache_case_on(&["--warm-trees", "0"], replace);
}

// ---------------------------------------------------------------------------------------------
// 3. File names that are not UTF-8.

#[test]
fn a_rename_to_a_name_that_is_not_utf8_arrives_and_removes_the_old_name() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", r#"mv old.txt "$(printf 'new\377.txt')""#)])
        .write("ws/old.txt", "old contents\n")
        .write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let moved = before.nodes.get(b"old.txt".as_slice()).expect("old.txt is in the tree").clone();
    let run = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&run, "t");
    let expected = with(before, &[(b"old.txt", None), (b"new\xff.txt", Some(moved))]);
    assert_ws(&test, &expected, &format!("after the run\n{}", show(&run)));
    let renamed = std::fs::read(ws(&test).join(byte_path(b"new\xff.txt"))).expect("reading new\\xff.txt");
    assert_eq!(renamed, b"old contents\n");
}

#[test]
fn a_workspace_name_that_is_not_utf8_reaches_the_task_and_stays() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "ls > listing.txt")]);
    std::fs::write(ws(&test).join(byte_path(b"pre\xff.txt")), "bytes\n").expect("writing pre\\xff.txt");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&run, "t");
    let listing = std::fs::read(ws(&test).join("listing.txt")).expect("listing.txt came back");
    assert!(
        listing.split(|&b| b == b'\n').any(|line| line == b"pre\xff.txt"),
        "the task did not see pre\\xff.txt: listing {:?}\n{}",
        String::from_utf8_lossy(&listing),
        show(&run)
    );
    let expected = with(before, &[(b"listing.txt", Some(new_file(&listing)))]);
    assert_ws(&test, &expected, "after the run");
}

// ---------------------------------------------------------------------------------------------
// 5. Symlinks come back exactly as the task made them.

#[test]
fn a_remote_python_venv_arrives_with_its_interpreter_links_and_runs_on_the_master() {
    let probe = tempfile::tempdir().expect("tempdir");
    let venv_works = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(probe.path().join("v"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !venv_works {
        eprintln!("skipped: python3 -m venv --without-pip does not work here");
        return;
    }
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        &[("t", "python3 -m venv --without-pip .venv && readlink .venv/bin/python3 > python3-target.txt")],
    );
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_succeeded(&run, "t");
    let made = test.read("ws/python3-target.txt").trim_end().to_owned();
    let python3 = ws(&test).join(".venv/bin/python3");
    assert!(
        std::fs::symlink_metadata(&python3).is_ok_and(|meta| meta.file_type().is_symlink()),
        ".venv/bin/python3 did not arrive as a symlink (the agent made it -> {made})\n{context}"
    );
    assert_eq!(readlink(&python3), made, ".venv/bin/python3 is not the link the agent made");
    assert_eq!(readlink(&ws(&test).join(".venv/bin/python")), "python3");
    let output = Command::new(ws(&test).join(".venv/bin/python"))
        .args(["-c", "print(1)"])
        .output()
        .expect("running .venv/bin/python on the master");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "1\n");
}

#[test]
fn absolute_dangling_and_climbing_symlinks_arrive_as_the_exact_links() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "ln -s /etc/hostname abs && ln -s nowhere dangling && ln -s ../outside up")])
        .write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let outside = outside_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&run, "t");
    let expected = with(
        before,
        &[
            (b"abs", Some(link("/etc/hostname"))),
            (b"dangling", Some(link("nowhere"))),
            (b"up", Some(link("../outside"))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{}", show(&run)));
    outside_tree(&test).assert_same(&outside, "outside the workspace");
}

/// `sub/l1 -> ..` is the root; `escape -> sub/l1/..` looks like `sub` but is the root's
/// parent. Replacing a real directory `escape/` (holding victim.txt) by that link must not
/// make the deletion of `escape/victim.txt` land outside.
#[test]
fn a_symlink_chain_climbing_out_arrives_as_links_and_nothing_outside_is_touched() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "rm -r escape && mkdir -p sub && ln -s .. sub/l1 && ln -s sub/l1/.. escape")])
        .write("ws/escape/victim.txt", "inside victim\n")
        .write("victim.txt", "outside victim\n")
        .write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let outside = outside_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    outside_tree(&test).assert_same(&outside, &format!("outside the workspace\n{context}"));
    assert_succeeded(&run, "t");
    let expected = with(
        before,
        &[
            (b"escape/victim.txt", None),
            (b"escape", Some(link("sub/l1/.."))),
            (b"sub", Some(new_dir())),
            (b"sub/l1", Some(link(".."))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

// ---------------------------------------------------------------------------------------------
// 6. A master symlink pointing outside the workspace.
//
// The link is relative (`ext -> ../outside`): outside the workspace on the master, and on the
// agent (same host here) it can only point into the agent's own task directory, so anything
// found in the master's outside directory was written by the master.

#[test]
fn writing_into_a_symlink_that_points_outside_writes_nothing_there_and_keeps_the_link() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "mkdir -p ext/new && echo x > ext/new/f")])
        .write("outside/victim.txt", "outside victim\n")
        .write("ws/keep.txt", "kept\n");
    std::os::unix::fs::symlink("../outside", ws(&test).join("ext")).expect("symlink ext");
    let before = ws_tree(&test);
    let outside = outside_tree(&test);
    // The task may fail or succeed on the agent; either way the master stays as it was.
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    outside_tree(&test).assert_same(&outside, &format!("outside the workspace\n{context}"));
    assert_ws(&test, &before, &format!("the workspace (ext must still be -> ../outside)\n{context}"));
}

#[test]
fn a_task_replacing_an_outside_symlink_by_a_directory_gets_a_real_directory_on_the_master() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "rm ext && mkdir ext && echo x > ext/f")])
        .write("outside/victim.txt", "outside victim\n")
        .write("ws/keep.txt", "kept\n");
    std::os::unix::fs::symlink("../outside", ws(&test).join("ext")).expect("symlink ext");
    let before = ws_tree(&test);
    let outside = outside_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    outside_tree(&test).assert_same(&outside, &format!("outside the workspace\n{context}"));
    assert_succeeded(&run, "t");
    let expected = with(before, &[(b"ext", Some(new_dir())), (b"ext/f", Some(new_file(b"x\n")))]);
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

// ---------------------------------------------------------------------------------------------
// 7. Kind changes, and concurrent tasks.

#[test]
fn a_file_replaced_by_a_directory_is_applied() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "rm thing && mkdir thing && echo inner > thing/inner.txt")])
        .write("ws/thing", "a file\n")
        .write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_succeeded(&run, "t");
    let expected = with(before, &[(b"thing", Some(new_dir())), (b"thing/inner.txt", Some(new_file(b"inner\n")))]);
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

#[test]
fn a_directory_replaced_by_a_file_is_applied() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "rm -r thing && echo file > thing")])
        .write("ws/thing/inner.txt", "inner\n")
        .write("ws/thing/deeper/more.txt", "more\n")
        .write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_succeeded(&run, "t");
    let expected = with(
        before,
        &[
            (b"thing/inner.txt", None),
            (b"thing/deeper/more.txt", None),
            (b"thing/deeper", None),
            (b"thing", Some(new_file(b"file\n"))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

/// A shell command that announces itself as `me` in `scratch` and waits (up to 20s) until
/// `other` has too, so both tasks are surely running (their workspaces taken) at once; then
/// runs `then`.
fn after_rendezvous(scratch: &Path, me: &str, other: &str, then: &str) -> String {
    let dir = scratch.display();
    format!(
        "touch '{dir}/{me}'; i=0; while [ ! -e '{dir}/{other}' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); \
         done; [ -e '{dir}/{other}' ] || {{ echo '{other} never started' >&2; exit 9; }}; {then}"
    )
}

/// A task that comes while another task of its workspace runs on a new tree does not wait for
/// that task's contents to reach the agent's cache (stored once that task has answered): it
/// asks for what it lacks. It waited for the whole of the other task — two tasks that wait for
/// each other (here, across two runs) waited in vain, the first failing at its own limit.
#[test]
fn a_task_does_not_wait_for_the_contents_another_running_task_brought_to_reach_the_cache() {
    let agent = Agent::start(&["--max-tasks", "2"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let first = after_rendezvous(scratch.path(), "first", "second", "echo first > first.txt");
    let second = format!("touch '{}/second'", scratch.path().display());
    let test = workspace(&agent, &[("first", &first)])
        .write("ws/keep.txt", "kept\n")
        .write("second.lua", &pipeline(&agent, &[("second", &second)]));
    let mut running = test.spawn(&["run", "tasks.lua"]);
    assert!(crate::support::wait_for_path(&scratch.path().join("first")), "the first task runs");
    let run = test.run(&["run", "second.lua"]);
    assert_eq!(run.code, Some(0), "{}", show(&run));
    let code = wait_exit(&mut running);
    let stderr = crate::support::stderr_of(&mut running);
    assert_eq!(code, Some(0), "the first task waited in vain for the second\n{stderr}");
    assert_eq!(test.read("ws/first.txt"), "first\n");
}

#[test]
fn two_concurrent_tasks_creating_the_same_directory_both_apply() {
    let agent = Agent::start(&["--max-tasks", "2"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let a = after_rendezvous(scratch.path(), "a", "b", "mkdir -p build && echo A > build/a.txt");
    let b = after_rendezvous(scratch.path(), "b", "a", "mkdir -p build && echo B > build/b.txt");
    let test = workspace(&agent, &[("a", &a), ("b", &b)]).write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua", "--jobs", "2"]);
    let context = show(&run);
    assert_succeeded(&run, "a");
    assert_succeeded(&run, "b");
    let expected = with(
        before,
        &[
            (b"build", Some(new_dir())),
            (b"build/a.txt", Some(new_file(b"A\n"))),
            (b"build/b.txt", Some(new_file(b"B\n"))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

#[test]
fn many_new_directories_apply_under_a_small_descriptor_limit() {
    let agent = Agent::start(&["--max-tasks", "3"]);
    let make = |name: &str| format!("for i in $(seq 300); do mkdir -p {name}/$i && echo $i > {name}/$i/f; done");
    let (a, b, c) = (make("a"), make("b"), make("c"));
    let test = workspace(&agent, &[("a", &a), ("b", &b), ("c", &c)]);
    // The master under a descriptor limit as small as some systems' default: applying
    // hundreds of new directories at once must not need a descriptor each.
    let mut master = Command::new("sh");
    master
        .current_dir(test.path())
        .args(["-c", "ulimit -n 128 && exec \"$0\" run tasks.lua --jobs 3"])
        .arg(crate::support::binary());
    let run = Run::of(master);
    for task in ["a", "b", "c"] {
        assert_succeeded(&run, task);
    }
    for name in ["a", "b", "c"] {
        for i in [1, 150, 300] {
            assert_eq!(test.read(&format!("ws/{name}/{i}/f")), format!("{i}\n"), "{}", show(&run));
        }
    }
    let stray: Vec<_> = std::fs::read_dir(ws(&test))
        .expect("list")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".sloth"))
        .map(|entry| entry.file_name())
        .collect();
    assert!(stray.is_empty(), "no staging left: {stray:?}");
}

#[test]
fn two_concurrent_tasks_writing_one_file_differently_conflict_and_only_one_applies_whole() {
    let agent = Agent::start(&["--max-tasks", "2"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let a = after_rendezvous(
        scratch.path(),
        "a",
        "b",
        "mkdir -p build && echo A > build/same.txt && echo A > build/only-a.txt",
    );
    let b = after_rendezvous(
        scratch.path(),
        "b",
        "a",
        "mkdir -p build && echo B > build/same.txt && echo B > build/only-b.txt",
    );
    let test = workspace(&agent, &[("a", &a), ("b", &b)]).write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua", "--jobs", "2"]);
    let context = show(&run);
    assert_eq!(run.code, Some(1), "{context}");
    let conflict_line = run.stderr.lines().find(|line| line.contains("conflict"));
    assert!(
        conflict_line.is_some_and(|line| line.contains("build/same.txt")),
        "no conflict naming build/same.txt\n{context}"
    );
    let state = |who: &[u8], only: &[u8]| {
        with(
            before.clone(),
            &[
                (b"build", Some(new_dir())),
                (b"build/same.txt", Some(new_file(&[who, b"\n"].concat()))),
                (only, Some(new_file(&[who, b"\n"].concat()))),
            ],
        )
    };
    let after = ws_tree(&test);
    let first = state(b"A", b"build/only-a.txt");
    let second = state(b"B", b"build/only-b.txt");
    assert!(
        after.differences(&first).is_empty() || after.differences(&second).is_empty(),
        "the workspace is neither task a's nor task b's whole result:\n  vs a: {:?}\n  vs b: {:?}\n{context}",
        after.differences(&first),
        after.differences(&second)
    );
}

// ---------------------------------------------------------------------------------------------
// 8. A file written to continuously while the workspace is taken.

/// Kills (and reaps) the child it holds when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_file_written_to_during_the_sync_does_not_fail_a_task_that_does_not_touch_it() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "echo hi > other.txt")]).write("ws/keep.txt", "kept\n");
    let log = ws(&test).join("live.log");
    let prefill: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| b"0123456789abcdef\n"[(i % 17) as usize]).collect();
    std::fs::write(&log, &prefill).expect("prefilling live.log");
    let writer = Command::new("sh")
        .args(["-c", "while :; do echo line >> live.log; done"])
        .current_dir(ws(&test))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the writer");
    let writer = KillOnDrop(writer);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) <= prefill.len() as u64 {
        assert!(Instant::now() < deadline, "the writer never appended to live.log");
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = test.run(&["run", "tasks.lua"]);
    drop(writer);
    let context = show(&run);
    assert!(!run.stderr.contains("run again"), "{context}");
    assert_succeeded(&run, "t");
    let warnings = run.stderr.lines().filter(|line| line.contains("WARN") && line.contains("live.log")).count();
    assert!(warnings <= 1, "one warning at most, naming the file:\n{context}");
    assert_eq!(test.read("ws/other.txt"), "hi\n");
    assert_eq!(test.read("ws/keep.txt"), "kept\n");
    let now = std::fs::read(&log).expect("reading live.log");
    assert!(now.starts_with(&prefill), "live.log lost its first 20 MB");
    let tail = &now[prefill.len()..];
    assert!(
        !tail.is_empty() && tail.len().is_multiple_of(5),
        "live.log's appended part is not whole lines: {} bytes",
        tail.len()
    );
    assert!(tail.chunks(5).all(|line| line == b"line\n"), "live.log's appended part is not the writer's lines");
}

// ---------------------------------------------------------------------------------------------
// 9. Failures while applying or while the task runs leave the workspace as it was.

/// Unmounts its mount point when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|status| status.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// A library that puts this process's wall clock `SKEW_SECS` ahead, built with the system's C
/// compiler (the one Rust links with) into `dir`; None where there is none.
fn clock_ahead_library(dir: &Path) -> Option<PathBuf> {
    let source = dir.join("ahead.c");
    std::fs::write(
        &source,
        r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <sys/time.h>
static long ahead(void) { const char *s = getenv("SKEW_SECS"); return s ? atol(s) : 0; }
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += ahead();
    return r;
}
int gettimeofday(struct timeval *tv, void *tz) {
    static int (*real)(struct timeval *, void *);
    if (!real) real = dlsym(RTLD_NEXT, "gettimeofday");
    int r = real(tv, tz);
    if (r == 0 && tv) tv->tv_sec += ahead();
    return r;
}
"#,
    )
    .ok()?;
    let library = dir.join("ahead.so");
    let built = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&library).arg(&source).arg("-ldl").output();
    built.is_ok_and(|output| output.status.success()).then_some(library)
}

/// A master whose clock is ahead of its workspace's filesystem (a file server's times come
/// from the server's clock), on a filesystem with whole-second times: an edit the user makes in
/// the same second as the file was last written, same size, is seen — the task reads the
/// edit, and the apply writes the task's change on top of it, not over it with a result
/// computed from the old bytes (the scan's reference time was the master's own clock, so the
/// file looked settled, its identity unchanged: the index and the agent's tree served the old
/// bytes).
#[test]
fn a_same_second_edit_on_a_filesystem_whose_clock_lags_the_masters_is_seen() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to mount a filesystem");
        return;
    }
    let scratch = tempfile::tempdir().expect("scratch");
    let Some(ahead) = clock_ahead_library(scratch.path()) else {
        eprintln!("skipped: no C compiler to build a clock that runs ahead");
        return;
    };
    // ext4 with 128-byte inodes keeps whole-second times.
    let image = scratch.path().join("image");
    std::fs::File::create(&image).expect("image").set_len(32 << 20).expect("size");
    let made = Command::new("mkfs.ext4").args(["-q", "-I", "128", "-F"]).arg(&image).output();
    if !made.as_ref().is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: cannot make an ext4 filesystem: {made:?}");
        return;
    }
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "cat x.txt; echo task >> x.txt")])
        .write("read.lua", &pipeline(&agent, &[("read", "cat x.txt")]));
    let mounted = Command::new("mount").args(["-o", "loop"]).arg(&image).arg(ws(&test)).output();
    if !mounted.as_ref().is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: cannot mount a loop device: {mounted:?}");
        return;
    }
    let _unmount = Unmount(ws(&test));
    let test = test.env("LD_PRELOAD", &ahead.display().to_string()).env("SKEW_SECS", "5");
    let x = ws(&test).join("x.txt");
    let ctime = |path: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).expect("stat").ctime()
    };
    // Everything below within one second of the filesystem's clock (again if it was not).
    for attempt in 1..=5 {
        let _ = std::fs::remove_file(&x);
        let _ = std::fs::remove_dir_all(test.cache_path().join("sloth-runner/index"));
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("now");
        std::thread::sleep(Duration::from_millis(1_020) - Duration::from_nanos(u64::from(wall.subsec_nanos())));
        std::fs::write(&x, "AAAA-original\n").expect("write");
        let written = ctime(&x);
        let run = test.run(&["run", "read.lua"]);
        assert_eq!(run.code, Some(0), "{}", show(&run));
        // The user's edit: in place, the same size.
        use std::os::unix::fs::FileExt;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&x)
            .expect("open")
            .write_all_at(b"BBBB-userEDIT\n", 0)
            .expect("edit");
        if ctime(&x) != written {
            eprintln!("attempt {attempt} crossed a second of the filesystem's clock: again");
            continue;
        }
        let run = test.run(&["run", "tasks.lua"]);
        let context = show(&run);
        assert_eq!(run.code, Some(0), "{context}");
        assert!(context.contains("box/t | BBBB-userEDIT"), "the task read the user's edit\n{context}");
        assert_eq!(std::fs::read_to_string(&x).expect("read"), "BBBB-userEDIT\ntask\n", "{context}");
        return;
    }
    eprintln!("skipped: every attempt crossed a second of the filesystem's clock");
}

#[test]
fn a_full_disk_while_applying_fails_the_run_and_leaves_the_workspace_as_it_was() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "head -c 4000000 /dev/urandom > big.bin")]);
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"]).arg(ws(&test)).output();
    match &mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            eprintln!("skipped: cannot mount a tmpfs: {}", String::from_utf8_lossy(&output.stderr).trim());
            return;
        }
        Err(error) => {
            eprintln!("skipped: cannot run mount: {error}");
            return;
        }
    }
    let _unmount = Unmount(ws(&test));
    let test = test.write("ws/keep.txt", "kept\n").write("ws/dir/inner.txt", "inner\n");
    let before = ws_tree(&test);
    let root_time = || std::fs::metadata(ws(&test)).expect("ws").modified().expect("mtime");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::open(ws(&test)).expect("open").set_modified(long_ago).expect("age");
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_eq!(run.code, Some(1), "{context}");
    let stderr = run.stderr.to_lowercase();
    assert!(stderr.contains("no space left on device"), "{context}");
    assert!(stderr.contains("applying"), "{context}");
    assert_ws(&test, &before, &format!("after the run\n{context}"));
    assert_eq!(root_time(), long_ago, "the workspace directory's own time too");
}

/// The cache directory (where an apply keeps the proof of its staging directory) on a full
/// disk of its own: the apply runs without a proof, as with no cache directory, and says so —
/// it neither fails nor blames the workspace's disk.
#[test]
fn a_full_cache_directory_costs_an_apply_its_proof_not_the_apply() {
    let agent = Agent::start(&[]);
    let cache = tempfile::tempdir().expect("cache");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(cache.path()).output();
    if !mounted.as_ref().is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs");
        return;
    }
    let _unmount = Unmount(cache.path().to_path_buf());
    // Full: a file as large as the disk takes, and no inode left for another.
    let _ = std::fs::write(cache.path().join("filler"), vec![b'x'; 128 * 1024]);
    let mut made = 0;
    while std::fs::write(cache.path().join(format!("f{made}")), "").is_ok() && made < 100_000 {
        made += 1;
    }
    let test = workspace(&agent, &[("t", "echo changed > a.txt")])
        .write("ws/a.txt", "before\n")
        .env("XDG_CACHE_HOME", &cache.path().display().to_string());
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_eq!(run.code, Some(0), "{context}");
    assert!(run.stderr.contains("cannot keep the proof of this apply"), "{context}");
    assert_eq!(test.read("ws/a.txt"), "changed\n");
}

/// The master's own directories in the user's cache (`sloth-runner/index`, its workspaces'
/// indexes, trimmed to the newest; `sloth-runner/staging`, the proofs of its staging
/// directories, pruned) are used only as directories of the user's own: one that is a link —
/// to a directory of the user's files, or one another user planted in a shared cache — is left
/// alone (the trim deleted the oldest files there, the prune chmodded it and deleted files a
/// week old), and so is a cache directory that leads into the workspace (its index would have
/// travelled with the workspace to the next task).
#[test]
fn links_in_the_cache_directory_lead_nothing_to_be_written_or_removed_outside_it() {
    let agent = Agent::start(&[]);
    let cache = tempfile::tempdir().expect("cache");
    let photos = tempfile::tempdir().expect("the user's photos");
    let notes = tempfile::tempdir().expect("the user's notes");
    for i in 0..300 {
        let photo = photos.path().join(format!("img{i}.jpg"));
        std::fs::write(&photo, format!("photo {i}")).expect("write");
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000 + i);
        std::fs::File::options().write(true).open(&photo).expect("open").set_modified(old).expect("old");
    }
    let note = notes.path().join("old-notes.txt");
    std::fs::write(&note, "notes").expect("write");
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 24 * 3600);
    std::fs::File::options().write(true).open(&note).expect("open").set_modified(month_ago).expect("old");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(notes.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir(cache.path().join("sloth-runner")).expect("mkdir");
    std::os::unix::fs::symlink(photos.path(), cache.path().join("sloth-runner/index")).expect("link");
    std::os::unix::fs::symlink(notes.path(), cache.path().join("sloth-runner/staging")).expect("link");
    let test = workspace(&agent, &[("t", "echo more >> a.txt")])
        .write("ws/a.txt", "before\n")
        .env("XDG_CACHE_HOME", &cache.path().display().to_string());
    for round in 1..=2 {
        let run = test.run(&["run", "tasks.lua"]);
        let context = show(&run);
        assert_eq!(run.code, Some(0), "round {round}: {context}");
        assert!(run.stderr.contains("is a link: sloth-runner keeps nothing there"), "{context}");
    }
    assert_eq!(test.read("ws/a.txt"), "before\nmore\nmore\n");
    assert_eq!(std::fs::read_dir(photos.path()).expect("list").count(), 300, "no photo removed");
    assert!(note.exists(), "the old notes are kept");
    let mode = std::fs::metadata(notes.path()).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the notes' directory keeps its mode");

    // A cache directory that leads into the workspace: nothing of sloth-runner's is made there.
    let inside = test.path().join("ws/.tool-cache");
    std::fs::create_dir(&inside).expect("mkdir");
    let linked_in = cache.path().join("linked-in");
    std::os::unix::fs::symlink(&inside, &linked_in).expect("link");
    let test = test.env("XDG_CACHE_HOME", &linked_in.display().to_string());
    for round in 1..=2 {
        let run = test.run(&["run", "tasks.lua"]);
        assert_eq!(run.code, Some(0), "round {round}: {}", show(&run));
    }
    assert_eq!(std::fs::read_dir(&inside).expect("list").count(), 0, "nothing made in the workspace's own directory");
}

/// Kills the task's `sleep` (which outlives its SIGKILLed agent) when dropped, if it is still
/// that process.
struct KillSleep(String);

impl Drop for KillSleep {
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if cmdline.starts_with(b"sleep")
            && let Ok(pid) = self.0.parse()
        {
            crate::support::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[test]
fn an_agent_killed_mid_task_fails_the_run_naming_agent_address_and_task() {
    let agent = Agent::start(&[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let pidfile = scratch.path().join("task.pid");
    let command = format!("echo $$ > '{}'; echo started; exec sleep 30", pidfile.display());
    let test = workspace(&agent, &[("sleeper", &command)]).write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let stderr_file = tempfile::NamedTempFile::new().expect("stderr file");
    let master = Command::new(crate::support::binary())
        .args(["run", "tasks.lua"])
        .current_dir(test.path())
        .env_remove("RUST_LOG")
        .env("HOME", test.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file.reopen().expect("stderr file"))
        .spawn()
        .expect("starting the master");
    let mut master = KillOnDrop(master);
    // The task is running once it wrote its pid (bounded wait).
    let _sleep = KillSleep(wait_for_line_file(&pidfile));
    let killed = Command::new("kill").args(["-KILL", &agent.pid().to_string()]).status();
    assert!(killed.is_ok_and(|status| status.success()), "kill -KILL the agent");
    let code = wait_exit(&mut master.0);
    let stderr = std::fs::read_to_string(stderr_file.path()).expect("reading the master's stderr");
    let context = format!("exit {code:?}\n--- stderr\n{stderr}");
    assert_eq!(code, Some(1), "{context}");
    let says = |line: &&str| {
        line.contains("agent 'box'")
            && line.contains("stopped answering during the task")
            && line.contains(&agent.address)
            && line.contains("sleeper")
    };
    assert!(
        stderr.lines().any(|line| says(&line)),
        "no line says agent 'box' ({}) stopped answering during the task 'sleeper'\n{context}",
        agent.address
    );
    assert_ws(&test, &before, &format!("after the run\n{context}"));
}

// ---------------------------------------------------------------------------------------------
// 10. Modification times.

const MAKEFILE: &str = "hello: hello.o\n\tcc -o hello hello.o\n\nhello.o: hello.c\n\tcc -c hello.c\n";

fn hello_c(greeting: &str) -> String {
    format!("#include <stdio.h>\nint main(void) {{ puts(\"{greeting}\"); return 0; }}\n")
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|meta| meta.modified()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn make_on_the_agent_rebuilds_after_a_master_edit_and_nothing_when_nothing_changed() {
    if !have("make") || !have("cc") {
        eprintln!("skipped: make or cc is missing");
        return;
    }
    let agent = Agent::start(&[]);
    let test =
        workspace(&agent, &[("t", "make")]).write("ws/Makefile", MAKEFILE).write("ws/hello.c", &hello_c("hello, old"));
    let first = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&first, "t");
    assert!(test.exists("ws/hello.o") && test.exists("ws/hello"), "the build outputs came back\n{}", show(&first));

    // Edit on the master: newer than both outputs.
    let source = ws(&test).join("hello.c");
    std::fs::write(&source, hello_c("hello, new")).expect("editing hello.c");
    let outputs = mtime(&ws(&test).join("hello.o")).max(mtime(&ws(&test).join("hello")));
    if mtime(&source) <= outputs {
        let file = std::fs::File::options().write(true).open(&source).expect("opening hello.c");
        file.set_modified(outputs + Duration::from_secs(1)).expect("setting hello.c's mtime");
    }
    std::fs::write(test.path().join("tasks.lua"), pipeline(&agent, &[("t", "make && ./hello")])).expect("rewrite");
    let second = test.run(&["run", "tasks.lua"]);
    let context = show(&second);
    assert_succeeded(&second, "t");
    assert!(second.stderr.contains("box/t | hello, new"), "make did not rebuild after the edit\n{context}");

    std::fs::write(test.path().join("tasks.lua"), pipeline(&agent, &[("t", "make")])).expect("rewrite");
    let before = ws_tree(&test);
    let third = test.run(&["run", "tasks.lua"]);
    let context = show(&third);
    assert_succeeded(&third, "t");
    assert!(
        third.stderr.contains("Nothing to be done") || third.stderr.contains("is up to date"),
        "make rebuilt with nothing changed\n{context}"
    );
    assert!(!third.stderr.contains("box/t | cc "), "make ran the compiler with nothing changed\n{context}");
    assert_ws(&test, &before, &format!("nothing changed\n{context}"));
}

#[test]
fn a_file_the_task_did_not_touch_keeps_its_exact_mtime() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "cat old.txt > copy.txt")]).write("ws/old.txt", "old\n");
    let old = ws(&test).join("old.txt");
    let when = SystemTime::UNIX_EPOCH + Duration::new(1_000_000_000, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|file| file.set_modified(when))
        .expect("setting old.txt's mtime");
    let before = ws_tree(&test);
    let run = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&run, "t");
    let after = ws_tree(&test);
    after.assert_same(
        &with(before.clone(), &[(b"copy.txt", Some(new_file(b"old\n")))]),
        &format!("after the run\n{}", show(&run)),
    );
    assert_eq!(
        after.mtimes.get(b"old.txt".as_slice()),
        before.mtimes.get(b"old.txt".as_slice()),
        "old.txt's mtime changed"
    );
    assert_eq!(mtime(&old), when);
}

// ---------------------------------------------------------------------------------------------
// 11. A directory replaced by a symlink (a release swap).

#[test]
fn a_release_swap_moves_the_files_and_leaves_current_as_a_link() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "mv current releases/v1 && ln -s releases/v1 current")])
        .write("ws/current/a.txt", "alpha\n")
        .write("ws/current/b.txt", "beta\n");
    std::fs::create_dir(ws(&test).join("releases")).expect("mkdir releases");
    let before = ws_tree(&test);
    let node = |path: &[u8]| before.nodes.get(path).expect("in the tree").clone();
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_succeeded(&run, "t");
    let expected = with(
        before.clone(),
        &[
            (b"current/a.txt", None),
            (b"current/b.txt", None),
            (b"current", Some(link("releases/v1"))),
            (b"releases/v1", Some(node(b"current"))),
            (b"releases/v1/a.txt", Some(node(b"current/a.txt"))),
            (b"releases/v1/b.txt", Some(node(b"current/b.txt"))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
    assert_eq!(test.read("ws/current/a.txt"), "alpha\n");
}

/// `d/victim.txt` is deleted by the task (the directory moved away); `d` then becomes a link
/// to the outside directory holding its own `victim.txt`.
#[test]
fn a_directory_replaced_by_a_link_to_outside_never_touches_the_outside_victim() {
    let agent = Agent::start(&[]);
    let test = Test::new().write("outside/victim.txt", "outside victim\n");
    let outside_dir = test.path().join("outside").to_string_lossy().into_owned();
    let test = test
        .write("tasks.lua", &pipeline(&agent, &[("t", &format!("mv d d2 && ln -s '{outside_dir}' d"))]))
        .write("ws/d/victim.txt", "inside victim\n")
        .write("ws/keep.txt", "kept\n");
    let before = ws_tree(&test);
    let outside = outside_tree(&test);
    let node = |path: &[u8]| before.nodes.get(path).expect("in the tree").clone();
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    outside_tree(&test).assert_same(&outside, &format!("outside the workspace\n{context}"));
    assert_succeeded(&run, "t");
    let expected = with(
        before.clone(),
        &[
            (b"d/victim.txt", None),
            (b"d", Some(link(&outside_dir))),
            (b"d2", Some(node(b"d"))),
            (b"d2/victim.txt", Some(node(b"d/victim.txt"))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

/// As above, through a chain: the master already has `hop -> ../outside`; the task makes
/// `d -> hop`, which looks inside, while the deletion of `d/victim.txt` would resolve to
/// `outside/victim.txt`.
#[test]
fn a_directory_replaced_by_a_link_chain_to_outside_never_touches_the_outside_victim() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("t", "mv d d2 && ln -s hop d")])
        .write("outside/victim.txt", "outside victim\n")
        .write("ws/d/victim.txt", "inside victim\n")
        .write("ws/keep.txt", "kept\n");
    std::os::unix::fs::symlink("../outside", ws(&test).join("hop")).expect("symlink hop");
    let before = ws_tree(&test);
    let outside = outside_tree(&test);
    let node = |path: &[u8]| before.nodes.get(path).expect("in the tree").clone();
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    outside_tree(&test).assert_same(&outside, &format!("outside the workspace\n{context}"));
    assert_succeeded(&run, "t");
    let expected = with(
        before.clone(),
        &[
            (b"d/victim.txt", None),
            (b"d", Some(link("hop"))),
            (b"d2", Some(node(b"d"))),
            (b"d2/victim.txt", Some(node(b"d/victim.txt"))),
        ],
    );
    assert_ws(&test, &expected, &format!("after the run\n{context}"));
}

// ---------------------------------------------------------------------------------------------
// Output that is not UTF-8 reaches dependents as the same bytes, as it would locally.

#[test]
fn a_remote_commands_raw_output_reaches_its_dependents_byte_for_byte() {
    let agent = Agent::start(&[]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ workdir = "ws", agents = {{ box = {{ address = "{}" }} }}, tasks = {{
            {{ name = "raw", agent = "box", command = [[printf 'a\377b\n']] }},
            {{ name = "keep", depends_on = "raw", command = function(params, deps)
                local file = assert(io.open("got.bin", "wb"))
                file:write(deps.raw.stdout)
                file:close()
                return true
            end }},
        }} }} }}"#,
        agent.address
    );
    let test = Test::new().write("tasks.lua", &pipeline);
    std::fs::create_dir(ws(&test)).expect("creating ws/");
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_eq!(run.code, Some(0), "{context}");
    assert_eq!(std::fs::read(ws(&test).join("got.bin")).expect("read"), b"a\xffb\n", "{context}");
}

#[test]
fn an_ignore_file_planted_as_a_link_out_is_refused_not_read() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, &[("plant", "ln -s ../secret.txt .slothignore")]).write("secret.txt", "SECRET-LINE\n");
    let run = test.run(&["run", "tasks.lua"]);
    assert_succeeded(&run, "plant");
    // The link arrived as data; the next remote task refuses to read through it.
    let run = test.run(&["run", "tasks.lua"]);
    let context = show(&run);
    assert_eq!(run.code, Some(1), "{context}");
    assert!(run.stderr.contains(".slothignore: is a symlink"), "{context}");
    assert!(!run.stderr.contains("SECRET-LINE"), "{context}");
}

/// `out/`'s time (seconds, nanoseconds) right after a name was added to it here while a remote
/// task ran, and after the run, where the task adds `out/r` before (`task_first`) or after
/// that; both names are there after the run.
fn directory_times(task_first: bool) -> ((i64, i64), (i64, i64)) {
    use std::os::unix::fs::MetadataExt;
    let agent = Agent::start(&[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().display().to_string();
    let rendezvous = format!(
        "touch '{dir}/started'; i=0; while [ ! -e '{dir}/go' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
    );
    let task = if task_first {
        format!("echo r > out/r; {rendezvous}")
    } else {
        format!("{rendezvous}; sleep 0.05; echo r > out/r")
    };
    let test = workspace(&agent, &[("remote", &task)]).write("ws/out/keep.txt", "kept\n");
    let mut running = test.spawn(&["run", "tasks.lua"]);
    assert!(crate::support::wait_for_path(&scratch.path().join("started")), "the task runs");
    std::fs::write(ws(&test).join("out/l"), "l\n").expect("a name added here");
    let here = std::fs::metadata(ws(&test).join("out")).expect("out/");
    std::fs::write(scratch.path().join("go"), "").expect("go");
    let code = wait_exit(&mut running);
    let stderr = crate::support::stderr_of(&mut running);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!((test.read("ws/out/r"), test.read("ws/out/l")), ("r\n".to_owned(), "l\n".to_owned()));
    let after = std::fs::metadata(ws(&test).join("out")).expect("out/");
    ((here.mtime(), here.mtime_nsec()), (after.mtime(), after.mtime_nsec()))
}

/// A directory the task changed that also changed here meanwhile (a name added here while the
/// task ran), later, keeps its time here, as the workspace's root does: the task's time is
/// older than what was done here. The apply gave it the task's, moving it backwards.
#[test]
fn a_directory_changed_here_meanwhile_keeps_its_later_time() {
    let (here, after) = directory_times(true);
    assert_eq!(after, here, "out/'s time is not the one it had here after the local change");
}

/// The same, the other way round: a name added here first, the task's change to the directory
/// after it — the task's time, the later, is the one a run here would have left.
#[test]
fn a_directory_the_task_changed_last_gets_the_task_s_time() {
    let (here, after) = directory_times(false);
    assert!(after > here, "out/ kept the earlier time of the change here, not the task's later one");
}

/// A file the snapshot named, gone by the time its content is sent (here: removed while the
/// task waited for the agent's one slot), does not fail the task: it is sent again from a new
/// snapshot, and runs on the workspace as it is then.
#[test]
fn a_file_gone_before_its_content_went_up_sends_the_task_again_from_a_new_snapshot() {
    use std::io::BufRead;
    let agent = Agent::start(&["--max-tasks", "1"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().display().to_string();
    let hold = format!(
        "touch '{dir}/held'; i=0; while [ ! -e '{dir}/go' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
    );
    let test = workspace(&agent, &[("hold", &hold)]);
    // More than the scan keeps in memory, so that it is read again to be sent.
    let big = vec![7u8; 300 * 1024];
    std::fs::create_dir(test.path().join("other")).expect("other/");
    std::fs::write(test.path().join("other/big.bin"), &big).expect("big.bin");
    std::fs::write(test.path().join("other/kept.txt"), "kept\n").expect("kept.txt");
    let second = pipeline(&agent, &[("look", "ls > seen.txt")]).replace("workdir = \"ws\"", "workdir = \"other\"");
    std::fs::write(test.path().join("second.lua"), second).expect("second.lua");
    let mut holding = test.spawn(&["run", "tasks.lua"]);
    assert!(crate::support::wait_for_path(&scratch.path().join("held")), "the first task holds the slot");
    let mut looking = test.spawn_capturing(&["run", "second.lua"]);
    let mut lines = std::io::BufReader::new(looking.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        let queued = line.contains("queued on agent");
        seen.push(line);
        if queued {
            break;
        }
    }
    std::fs::remove_file(test.path().join("other/big.bin")).expect("removing big.bin");
    std::fs::write(scratch.path().join("go"), "").expect("go");
    seen.extend(lines.map_while(Result::ok));
    let seen = seen.join("\n");
    assert_eq!(wait_exit(&mut looking), Some(0), "{seen}");
    assert_eq!(wait_exit(&mut holding), Some(0));
    assert!(
        seen.contains("big.bin: removed or replaced while the workspace was being sent; taking the workspace again"),
        "{seen}"
    );
    assert_eq!(test.read("other/seen.txt"), "kept.txt\nseen.txt\n", "the task ran on the workspace as it is now");
}

/// A file here the task may change on the agent but this runner may not replace (immutable,
/// or append-only: the flag does not travel): the apply fails naming the file — not the
/// apply's own trash entry — and the workspace is as it was.
#[test]
fn a_file_here_that_cannot_be_replaced_fails_the_apply_naming_it() {
    let agent = Agent::start(&[]);
    for (flag, command) in [("+i", "rm -f d/held; echo new > d/new"), ("+a", "echo more >> d/held")] {
        let test = workspace(&agent, &[("t", command)]);
        std::fs::create_dir(ws(&test).join("d")).expect("d");
        std::fs::write(ws(&test).join("d/held"), "held\n").expect("held");
        let held = ws(&test).join("d/held");
        let flagged = Command::new("chattr").arg(flag).arg(&held).stderr(Stdio::null()).status();
        if !flagged.is_ok_and(|status| status.success()) {
            eprintln!("skipped: this filesystem or user cannot set {flag}");
            return;
        }
        let before = ws_tree(&test);
        let run = test.run(&["run", "tasks.lua"]);
        let _ = Command::new("chattr").arg(flag.replace('+', "-")).arg(&held).status();
        let run = run.expect_code(1);
        let failed = run.stderr.lines().find(|line| line.contains("FAILED")).unwrap_or_default().to_owned();
        assert!(failed.contains(&held.display().to_string()), "{flag}: the error names the file: {failed}");
        assert!(!failed.contains(".sloth-apply"), "{flag}: {failed}");
        assert_ws(&test, &before, flag);
    }
}
