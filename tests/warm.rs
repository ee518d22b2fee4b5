//! Warm trees: the agent keeps the tree a task ran in and brings it to the next task's manifest
//! by writing only what differs — without the next task ever seeing anything but the
//! manifest's files (whatever an earlier task left, whatever was edited on the agent's host).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sloth_runner::rpc::client::AgentClient;
use sloth_runner::rpc::proto::InfoResponse;

use crate::support::Test;
use crate::support::agent::Agent;

/// The agent's counters.
pub(crate) fn info(agent: &Agent) -> InfoResponse {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    tokio.block_on(async {
        let mut client =
            AgentClient::connect(&agent.address, None, None, Duration::from_secs(5)).await.expect("connect");
        client.info().await.expect("info")
    })
}

/// A workspace of `files` files and a pipeline running `command` on `agent` (`fields` go in
/// the task's table).
pub(crate) fn workspace(agent: &Agent, files: usize, command: &str, fields: &str) -> Test {
    let mut test = Test::new();
    for i in 0..files {
        test = test.write(&format!("ws/f{i}.txt"), &format!("file {i}\n"));
    }
    set_task(&test, agent, command, fields);
    test
}

/// The trees the agent keeps, in its `--work-dir`.
pub(crate) fn trees(work: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for agent_dir in std::fs::read_dir(work).expect("work dir").flatten() {
        if let Ok(entries) = std::fs::read_dir(agent_dir.path().join("trees")) {
            found.extend(entries.flatten().map(|entry| entry.path()));
        }
    }
    found.sort();
    found
}

/// Whether the agent keeps no tree in `work` within `limit` (it gives trees back after the
/// master has the result).
fn no_trees_within(work: &Path, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !trees(work).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    trees(work).is_empty()
}

#[test]
fn a_second_task_on_an_unchanged_workspace_writes_no_file_on_the_agent() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 40, "ls | wc -l", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let first = info(&agent);
    assert_eq!((first.files_written, first.trees_reused), (40, 0));
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | 40"), "{}", run.stderr);
    let second = info(&agent);
    assert_eq!(second.trees_reused, 1, "the tree was reused");
    assert_eq!(second.files_written, 40, "and nothing was written into it");
    // One file changed here: one file written there.
    std::fs::write(test.path().join("ws/f3.txt"), "changed\n").expect("edit");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(info(&agent).files_written, 41);
}

/// A large file a task made, which the master then has, stays in the task's tree for the next
/// task of the workspace: neither sent back up nor written again (it is past what the cache
/// keeps, a quarter of `--cache-max`: it came up whole, every task).
#[test]
fn a_large_file_a_task_made_is_kept_in_its_tree_for_the_next_task() {
    let agent = Agent::start(&["--cache-max", "16M"]);
    let test = workspace(&agent, 1, "head -c 6000000 /dev/urandom > out.bin", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(std::fs::metadata(test.path().join("ws/out.bin")).expect("applied here").len(), 6_000_000);
    set_task(&test, &agent, "wc -c < out.bin", "");
    let before = info(&agent);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | 6000000"), "{}", run.stderr);
    let after = info(&agent);
    assert_eq!(after.trees_reused - before.trees_reused, 1, "the task's tree was reused");
    assert_eq!(after.contents_requested, before.contents_requested, "nothing asked for\n{}", run.stderr);
    assert_eq!(after.files_written, before.files_written, "nothing written again");
}

/// What a task did to a large file's inode beyond its bytes (an inode flag; an attribute is
/// alike) is not kept for the next task, whose file is as the master has it — whether the task
/// made the file or only flagged one the master sent.
#[test]
fn an_inode_flag_a_task_gave_a_large_file_is_not_kept_for_the_next_task() {
    let agent = Agent::start(&["--cache-max", "16M"]);
    let test = workspace(&agent, 1, "true", "");
    std::fs::write(test.path().join("ws/sent.bin"), vec![7u8; 2_000_000]).expect("write");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let flag = "head -c 2000000 /dev/zero | tr '\\0' x > made.bin && chattr +d made.bin sent.bin";
    set_task(&test, &agent, flag, "");
    let flagged = test.run(&["run", "tasks.lua"]);
    if flagged.code != Some(0) {
        eprintln!("skipped: this filesystem cannot flag a file\n{}", flagged.stderr);
        return;
    }
    set_task(&test, &agent, "lsattr made.bin sent.bin", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    let flags: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("box/t | "))
        .map(|line| line.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(flags.len(), 2, "{}", run.stderr);
    assert!(flags.iter().all(|flags| !flags.contains('d')), "no flag the task set\n{}", run.stderr);
}

/// A large file renamed here, or a directory of them, is moved to its new name in the kept
/// tree: nothing asked for, nothing written again (it was copied from the cache, and fetched
/// when past what the cache keeps).
#[test]
fn a_renamed_file_or_directory_is_moved_in_the_kept_tree_not_written_again() {
    let agent = Agent::start(&["--cache-max", "16M"]);
    let test = workspace(&agent, 1, "true", "");
    let big =
        |seed: u8| (0..6_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed).collect::<Vec<u8>>();
    std::fs::write(test.path().join("ws/big.bin"), big(1)).expect("write");
    std::fs::create_dir(test.path().join("ws/dir")).expect("mkdir");
    std::fs::write(test.path().join("ws/dir/inner.bin"), big(2)).expect("write");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    std::fs::rename(test.path().join("ws/big.bin"), test.path().join("ws/moved.bin")).expect("rename");
    std::fs::rename(test.path().join("ws/dir"), test.path().join("ws/renamed")).expect("rename");
    set_task(&test, &agent, "cksum moved.bin renamed/inner.bin; ls -a", "");
    let before = info(&agent);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    let after = info(&agent);
    assert_eq!(after.trees_reused - before.trees_reused, 1, "the kept tree\n{}", run.stderr);
    assert_eq!(after.contents_requested, before.contents_requested, "nothing asked for\n{}", run.stderr);
    assert_eq!(after.files_written, before.files_written, "nothing written again\n{}", run.stderr);
    let cksum = |path: &str| {
        let out = Command::new("cksum").arg(test.path().join(path)).output().expect("cksum");
        String::from_utf8_lossy(&out.stdout).split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    };
    for (here, there) in [("ws/moved.bin", "moved.bin"), ("ws/renamed/inner.bin", "renamed/inner.bin")] {
        let line = format!("box/t | {} {there}", cksum(here));
        assert!(run.stderr.contains(&line), "{line}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("sloth-staging"), "nothing of the move left for the task\n{}", run.stderr);
    // A task that leaves a directory where the moves wait: the next rename is written, right.
    set_task(&test, &agent, "mkdir .sloth-staging-reuse && echo x > .sloth-staging-reuse/0", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    std::fs::rename(test.path().join("ws/moved.bin"), test.path().join("ws/again.bin")).expect("rename");
    set_task(&test, &agent, "cksum again.bin; ls -a", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    let line = format!("box/t | {} again.bin", cksum("ws/again.bin"));
    assert!(run.stderr.contains(&line), "{line}\n{}", run.stderr);
    assert!(!run.stderr.contains("sloth-staging"), "what the task left is gone\n{}", run.stderr);
    // Renamed to a name with another: a hard-link group, whose file comes whole, in one call.
    std::fs::rename(test.path().join("ws/again.bin"), test.path().join("ws/linked.bin")).expect("rename");
    std::fs::hard_link(test.path().join("ws/linked.bin"), test.path().join("ws/other.bin")).expect("link");
    set_task(&test, &agent, "cksum linked.bin other.bin; stat -c %h linked.bin", "");
    let before = info(&agent);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    for name in ["linked.bin", "other.bin"] {
        let line = format!("box/t | {} {name}", cksum("ws/linked.bin"));
        assert!(run.stderr.contains(&line), "{line}\n{}", run.stderr);
    }
    assert!(run.stderr.contains("box/t | 2"), "one file, two names\n{}", run.stderr);
    assert!(info(&agent).contents_requested - before.contents_requested <= 1, "asked for once at most\n{}", run.stderr);
}

/// What a task writes above its workspace on an agent (beside its tree) does not come back,
/// and is gone once the task ends: no later task — of another workspace, another master —
/// reads it, and it does not pile up.
#[test]
fn what_a_task_writes_above_its_workspace_is_gone_once_it_ends() {
    let work = tempfile::tempdir().expect("work dir");
    let agent = Agent::start(&["--work-dir", work.path().to_str().expect("utf-8")]);
    let writer = workspace(&agent, 1, "echo secret > ../left.txt && mkdir ../left.d", "");
    writer.run(&["run", "tasks.lua"]).expect_code(0);
    let beside: Vec<PathBuf> = trees(work.path())
        .into_iter()
        .filter(|path| !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("tree-")))
        .collect();
    assert!(beside.is_empty(), "left beside the trees: {beside:?}");
    let reader = workspace(&agent, 1, "cat ../left.txt || echo nothing there", "");
    let run = reader.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | nothing there"), "{}", run.stderr);
}

#[test]
fn what_a_task_left_unapplied_is_gone_for_the_next_task() {
    let agent = Agent::start(&[]);
    // The changes never come back; a failing task's neither.
    let test = workspace(
        &agent,
        3,
        "cat f0.txt; ls; echo junk > junk.txt; echo more >> f1.txt; rm f2.txt; mkdir -p d/e",
        "workspace = { sync_back = \"never\" },",
    );
    let first = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(first.stderr.contains("box/t | f2.txt"), "{}", first.stderr);
    let second = test.run(&["run", "tasks.lua"]).expect_code(0);
    let listing: Vec<&str> = second
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("box/t | "))
        .filter(|line| line.ends_with(".txt") || *line == "d")
        .collect();
    assert_eq!(listing, ["f0.txt", "f1.txt", "f2.txt"], "exactly the manifest's files\n{}", second.stderr);
    assert_eq!(info(&agent).trees_reused, 1);

    set_task(&test, &agent, "cat f1.txt; ls; echo x > left.txt; exit 3", "");
    test.run(&["run", "tasks.lua"]).expect_code(1);
    let after_failure = test.run(&["run", "tasks.lua"]);
    assert!(!after_failure.stderr.contains("box/t | left.txt"), "{}", after_failure.stderr);
    assert!(after_failure.stderr.contains("box/t | file 1"), "f1.txt as the master has it\n{}", after_failure.stderr);
}

#[test]
fn an_edit_on_the_agents_host_between_tasks_is_undone_even_with_its_time_put_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = workspace(&agent, 3, "cat f0.txt f1.txt; ls", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let kept = trees(work.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    let tree = &kept[0];
    // Same size, time put back: only the ctime tells.
    let f0 = tree.join("f0.txt");
    let reference = tree.join("f1.txt");
    std::fs::write(&f0, "FILE 0\n").expect("edit on the agent's host");
    let status = std::process::Command::new("touch").arg("-r").arg(&reference).arg(&f0).status().expect("touch");
    assert!(status.success());
    std::fs::write(tree.join("intruder.txt"), "x").expect("add on the agent's host");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | file 0"), "the master's content again\n{}", run.stderr);
    assert!(!run.stderr.contains("intruder"), "{}", run.stderr);
    assert_eq!(info(&agent).trees_reused, 1);
}

/// A kept tree is planned from what the scan after its last task saw: only what changed or was
/// opened on the agent's host since is looked at again — a same-size rewrite with its time put
/// back, a mode, a write through a mapping whose descriptor was closed (no event of its own: the
/// opening names the file) — and any name made or removed sends the plan back to looking at
/// every entry. Either way what was done there is undone. (A small tree is not watched: it is
/// looked at whole.)
#[test]
fn a_kept_tree_is_planned_from_the_last_scan_and_what_changed_there_since_is_undone() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    // (Large enough to be watched: see `tree_watch::WATCHED_FROM`.)
    let command = "cat f0.txt sub/s.txt hl/a hl2/b; find . | LC_ALL=C sort | md5sum; find . | wc -l; \
                   stat -c '%n %a %h' f1.txt hl/a";
    let test = workspace(&agent, 600, command, "").write("ws/sub/s.txt", "sub\n").write("ws/hl/a", "linked\n");
    std::fs::create_dir(test.path().join("ws/hl2")).expect("mkdir");
    std::fs::hard_link(test.path().join("ws/hl/a"), test.path().join("ws/hl2/b")).expect("ln");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(info(&agent).plans_from_watch, 1, "nothing changed since the first task's scan\n{}", run.stderr);
    let tree = trees(work.path()).pop().expect("a kept tree");
    // A process that maps a file of the tree, closes its descriptor, writes through the mapping
    // and keeps it (the mapping's own close would be an event).
    let mapper = std::cell::RefCell::new(None::<std::process::Child>);
    let map_and_write = |tree: &Path| {
        let script = "import mmap, os, sys\n\
                      fd = os.open(sys.argv[1], os.O_RDWR)\n\
                      m = mmap.mmap(fd, 0)\n\
                      os.close(fd)\n\
                      m[0:4] = b'EVIL'\n\
                      print('written', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(tree.join("f0.txt"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
            .expect("read");
        assert_eq!(line.trim(), "written");
        *mapper.borrow_mut() = Some(child);
    };
    type Edit<'a> = (&'a str, &'a dyn Fn(&Path), bool);
    let edits: [Edit<'_>; 10] = [
        (
            "a write through one name of a file with two",
            &|tree| {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new().append(true).open(tree.join("hl/a")).expect("open");
                file.write_all(b"INJECTED\n").expect("write");
            },
            false,
        ),
        (
            "a rewrite with its time put back",
            &|tree| {
                let before = std::fs::metadata(tree.join("f0.txt")).expect("stat").modified().expect("mtime");
                std::fs::write(tree.join("f0.txt"), "FILE 0\n").expect("write");
                std::fs::File::options()
                    .write(true)
                    .open(tree.join("f0.txt"))
                    .expect("open")
                    .set_modified(before)
                    .expect("touch");
            },
            true,
        ),
        ("a deeper rewrite", &|tree| std::fs::write(tree.join("sub/s.txt"), "SUB\n").expect("write"), true),
        (
            "a mode",
            &|tree| {
                std::fs::set_permissions(tree.join("f1.txt"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
            },
            true,
        ),
        ("a write through a mapping kept open", &map_and_write, true),
        ("a new file", &|tree| std::fs::write(tree.join("sub/intruder.txt"), "x").expect("write"), false),
        ("a removal", &|tree| std::fs::remove_file(tree.join("f2.txt")).expect("rm"), false),
        ("a rename", &|tree| std::fs::rename(tree.join("f2.txt"), tree.join("sub/moved.txt")).expect("mv"), false),
        ("a new directory", &|tree| std::fs::create_dir(tree.join("sub/intruder")).expect("mkdir"), false),
        (
            "a file for a directory",
            &|tree| {
                std::fs::remove_file(tree.join("sub/s.txt")).expect("rm");
                std::fs::create_dir(tree.join("sub/s.txt")).expect("mkdir");
            },
            false,
        ),
    ];
    let expected = test.run(&["run", "tasks.lua"]).expect_code(0).stderr;
    let listing = |stderr: &str| {
        stderr.lines().filter(|line| line.starts_with("box/t | ")).map(str::to_owned).collect::<Vec<_>>()
    };
    for (what, edit, from_watch) in edits {
        let trusted = info(&agent).plans_from_watch;
        edit(&tree);
        let run = test.run(&["run", "tasks.lua"]).expect_code(0);
        if let Some(mut child) = mapper.borrow_mut().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert_eq!(listing(&run.stderr), listing(&expected), "{what}: the master's tree again");
        assert_eq!(test.read("ws/f0.txt"), "file 0\n", "{what}: the master's file as it was");
        assert_eq!(test.read("ws/hl2/b"), "linked\n", "{what}: the master's file as it was");
        assert_eq!(info(&agent).plans_from_watch, trusted + u64::from(from_watch), "{what}: from the watch or not");
        test.run(&["run", "tasks.lua"]).expect_code(0);
        assert_eq!(info(&agent).plans_from_watch, trusted + u64::from(from_watch) + 1, "{what}: then from it again");
        assert_eq!(trees(work.path()), std::slice::from_ref(&tree), "{what}: the one tree, reused");
    }
    let small = workspace(&agent, 3, "cat f0.txt", "");
    small.run(&["run", "tasks.lua"]).expect_code(0);
    let trusted = info(&agent).plans_from_watch;
    small.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(info(&agent).plans_from_watch, trusted, "a small tree is looked at whole");
}

/// Files the agent wrote for a task in the moment before it started, then rewritten by the task
/// at once in place — same size, same inode, the time put back — come back: the scan after the
/// task trusts a file's identity only if it was recorded before the filesystem's clock moved on.
#[test]
fn files_rewritten_in_place_the_moment_the_task_starts_with_their_times_put_back_come_back() {
    let agent = Agent::start(&[]);
    let files = 2000;
    let last: Vec<usize> = (files - 5..files).collect();
    let mut command = String::new();
    for i in &last {
        command.push_str(&format!(
            "touch -r f{i}.txt .ref{i}; printf 'FILE {i}\\n' 1<> f{i}.txt; touch -r .ref{i} f{i}.txt; rm .ref{i}; "
        ));
    }
    let test = workspace(&agent, files, &command, "");
    for round in 0..2 {
        test.run(&["run", "tasks.lua"]).expect_code(0);
        for i in &last {
            assert_eq!(test.read(&format!("ws/f{i}.txt")), format!("FILE {i}\n"), "round {round}");
        }
        // Again from the master's content: a cold tree, then a kept one written anew.
        for i in &last {
            std::fs::write(test.path().join(format!("ws/f{i}.txt")), format!("file {i}\n")).expect("write");
        }
    }
}

#[test]
fn two_concurrent_tasks_of_one_workspace_use_two_trees_and_both_land() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = Test::new().write("ws/base.txt", "base\n").write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{a}\" }} }}, tasks = {{\n  \
             {{ name = \"one\", agent = \"box\", command = \"sleep 0.3; echo one > one.txt\" }},\n  \
             {{ name = \"two\", agent = \"box\", command = \"sleep 0.3; echo two > two.txt\" }},\n}} }} }}\n",
            a = agent.address
        ),
    );
    test.run(&["run", "--jobs", "2", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/one.txt"), "one\n");
    assert_eq!(test.read("ws/two.txt"), "two\n");
    assert_eq!(trees(work.path()).len(), 2, "one tree each");
    test.run(&["run", "--jobs", "2", "tasks.lua"]).expect_code(0);
    assert_eq!(info(&agent).trees_reused, 2, "both reused the next time");
}

#[test]
fn a_cancelled_tasks_tree_is_not_reused() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = workspace(&agent, 2, "echo partial > partial.txt; sleep 30", "timeout = \"300ms\",");
    test.run(&["run", "tasks.lua"]).expect_code(1);
    // The agent removes it once the task's thread is gone.
    assert!(
        no_trees_within(work.path(), Duration::from_secs(10)),
        "the cancelled task's tree is gone: {:?}",
        trees(work.path())
    );
    set_task(&test, &agent, "ls", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(!run.stderr.contains("partial.txt"), "{}", run.stderr);
    assert_eq!(info(&agent).trees_reused, 0);
}

#[test]
fn eviction_under_a_tiny_limit_stays_correct() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string(), "--warm-trees", "1"]);
    let tests: Vec<Test> = (0..3).map(|_| workspace(&agent, 5, "cat f4.txt; echo ran >> log.txt", "")).collect();
    for round in 0..2 {
        for (i, test) in tests.iter().enumerate() {
            std::fs::write(test.path().join("ws/f4.txt"), format!("workspace {i} round {round}\n")).expect("edit");
            let run = test.run(&["run", "tasks.lua"]).expect_code(0);
            assert!(run.stderr.contains(&format!("box/t | workspace {i} round {round}")), "{}", run.stderr);
            // Past the limit once the task's tree is back (after the master has the result).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while trees(work.path()).len() > 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(trees(work.path()).len() <= 1, "at most one idle tree: {:?}", trees(work.path()));
        }
    }
    for test in &tests {
        assert_eq!(test.read("ws/log.txt"), "ran\nran\n");
    }
}

/// Rewrites the pipeline of `test` to run `command` on `agent` (`fields` in the task).
pub(crate) fn set_task(test: &Test, agent: &Agent, command: &str, fields: &str) {
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n  \
             {{ name = \"t\", agent = \"box\", {fields} command = [==[{command}]==] }},\n}} }} }}\n",
            agent.address
        ),
    )
    .expect("pipeline");
}

#[test]
fn what_an_unapplied_task_did_to_names_owners_and_attributes_is_undone() {
    let outside = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 2, "true", "");
    std::fs::hard_link(test.path().join("ws/f0.txt"), test.path().join("ws/hl.txt")).expect("ln");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    // A failed task moves a name of a linked file out of the tree, and gives a file away.
    set_task(
        &test,
        &agent,
        &format!("mv hl.txt '{}/x'; chown 65534:65534 f1.txt; exit 1", outside.path().display()),
        "",
    );
    test.run(&["run", "tasks.lua"]).expect_code(1);
    set_task(&test, &agent, "stat -c '%n %h %u' f0.txt hl.txt f1.txt; echo secret >> f0.txt", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    let me = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(test.path()).expect("stat").uid()
    };
    for expected in
        [format!("box/t | f0.txt 2 {me}"), format!("box/t | hl.txt 2 {me}"), format!("box/t | f1.txt 1 {me}")]
    {
        assert!(run.stderr.contains(&expected), "{expected}\n{}", run.stderr);
    }
    assert_eq!(std::fs::read_to_string(outside.path().join("x")).expect("x"), "file 0\n", "nothing written outside");
    assert_eq!(test.read("ws/hl.txt"), "file 0\nsecret\n", "the master's names are one file");
}

#[test]
fn a_process_left_running_by_a_task_never_writes_into_the_next_tasks_tree() {
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        1,
        "setsid sh -c 'sleep 0.4; echo JUNK >> f0.txt; echo x > leftover.txt' </dev/null >/dev/null 2>&1 &",
        "",
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    set_task(&test, &agent, "sleep 1; cat f0.txt; ls", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(!run.stderr.contains("JUNK") && !run.stderr.contains("leftover"), "{}", run.stderr);
    assert_eq!(test.read("ws/f0.txt"), "file 0\n");
    assert!(!test.exists("ws/leftover.txt"));
}

#[test]
fn a_tree_removed_behind_the_agents_back_gives_way_to_a_new_one() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = workspace(&agent, 3, "cat f2.txt", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    for tree in trees(work.path()) {
        std::fs::remove_dir_all(&tree).expect("rm -rf the tree");
    }
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | file 2"), "{}", run.stderr);
}

#[test]
fn excluded_output_counts_against_the_trees_limit() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string(), "--cache-max", "1M"]);
    let test = workspace(
        &agent,
        1,
        "mkdir -p target && head -c 3000000 /dev/zero > target/out.bin",
        "workspace = { exclude = { \"target\" } },",
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    // The tree goes back to the pool (and out of it) once the master has the result.
    assert!(
        no_trees_within(work.path(), Duration::from_secs(10)),
        "a 3 MB tree is not kept under a 1M limit: {:?}",
        trees(work.path())
    );
}

#[test]
fn a_chain_of_tasks_on_one_workspace_reuses_one_tree() {
    let agent = Agent::start(&[]);
    let mut test = Test::new();
    for i in 0..200 {
        test = test.write(&format!("ws/f{i}.txt"), &format!("file {i}\n"));
    }
    let tasks: String = (1..=8)
        .map(|i| {
            let after = if i > 1 { format!("depends_on = \"t{}\", ", i - 1) } else { String::new() };
            format!("  {{ name = \"t{i}\", agent = \"box\", {after}command = \"echo {i} >> log.txt\" }},\n")
        })
        .collect();
    let test = test.write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n{tasks}}} }} }}\n",
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/log.txt"), "1\n2\n3\n4\n5\n6\n7\n8\n");
    let counters = info(&agent);
    assert_eq!(counters.trees_reused, 7, "every task after the first got the tree back");
    assert_eq!(counters.files_written, 200 + 7, "the workspace once, then the log file each time it changed");
}

#[test]
fn what_a_task_made_does_not_travel_back_up_for_the_next_task() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 5, "date +%s%N > made.txt", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let first = info(&agent);
    assert!(first.contents_requested >= 5, "a cold task asks for every content: {first:?}");
    assert!(first.bytes_received > 0 && first.bytes_sent > 0, "{first:?}");
    for round in 0..2 {
        let before = info(&agent);
        let made = test.read("ws/made.txt");
        test.run(&["run", "tasks.lua"]).expect_code(0);
        assert_ne!(test.read("ws/made.txt"), made, "round {round}: the task made it anew");
        let after = info(&agent);
        assert_eq!(
            after.contents_requested, before.contents_requested,
            "round {round}: the file the last task made, applied here, is not asked for again"
        );
        assert_eq!(after.bytes_received, before.bytes_received, "round {round}: nothing went up");
    }
}

#[test]
fn lua_sees_the_agents_counters() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 3, "echo made > made.txt", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let test = test.write(
        "info.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ tasks = {{ {{ name = \"i\", command = function()\n\
             local info = agent.connect(\"{}\"):info()\n\
             print(string.format(\"asked=%d up=%s down=%s written=%d\", info.contents_requested,\n\
               tostring(info.bytes_received > 0), tostring(info.bytes_sent > 0), info.files_written))\n\
             return true end }} }} }} }}\n",
            agent.address
        ),
    );
    let run = test.run(&["run", "info.lua"]).expect_code(0);
    let expected = format!("asked={} up=true down=true written=", info(&agent).contents_requested);
    assert!(run.stdout.contains(&expected), "{}\n{}", run.stdout, run.stderr);
}

/// Task directories left in the agent's `--work-dir`.
fn task_dirs(work: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for agent_dir in std::fs::read_dir(work).expect("work dir").flatten() {
        if let Ok(entries) = std::fs::read_dir(agent_dir.path()) {
            found.extend(
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with("task-"))
                    .map(|e| e.path()),
            );
        }
    }
    found
}

#[test]
fn changes_too_large_for_memory_come_back_whole_and_no_task_directory_stays() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    // Random bytes do not compress: the archive is past what is kept in memory.
    let test = workspace(&agent, 2, "head -c 3000000 /dev/urandom > big.bin && cksum < big.bin > big.sum", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let sum = std::process::Command::new("sh")
        .args(["-c", "cksum < big.bin"])
        .current_dir(test.path().join("ws"))
        .output()
        .expect("cksum");
    assert_eq!(String::from_utf8_lossy(&sum.stdout), test.read("ws/big.sum"), "the file came back byte for byte");
    assert_eq!(std::fs::metadata(test.path().join("ws/big.bin")).expect("big.bin").len(), 3_000_000);
    // A small change, then none: neither needs a task directory; none is left either way.
    set_task(&test, &agent, "echo small > small.txt", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/small.txt"), "small\n");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !task_dirs(work.path()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(task_dirs(work.path()), Vec::<PathBuf>::new(), "every task's directory is gone");
}

#[test]
fn each_task_runs_under_its_own_masters_umask_on_a_reused_task_thread() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 1, "umask; touch made-$(umask)", "");
    // The agent's task threads serve task after task: a umask one task set must not be the
    // next one's.
    for mask in ["077", "022", "027", "022", "077"] {
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {mask} && exec \"$0\" run tasks.lua"))
            .arg(crate::support::binary())
            .current_dir(test.path())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(stderr.contains(&format!("box/t | 0{mask}")), "umask {mask}: {stderr}");
        assert!(test.exists(&format!("ws/made-0{mask}")), "umask {mask}: {stderr}");
    }
}

/// A kept tree the agent cannot bring up to date (a file a task made immutable, which it may
/// not remove) is replaced by a new one: the next task runs, on exactly the master's files.
#[test]
fn a_kept_tree_that_cannot_be_reconciled_is_replaced_and_the_task_runs() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = workspace(&agent, 2, "echo x > imm; chattr +i imm", "workspace = { sync_back = \"never\" },");
    let made = test.run(&["run", "tasks.lua"]);
    let unlock = || {
        for tree in trees(work.path()) {
            let _ = Command::new("chattr").arg("-i").arg(tree.join("imm")).status();
        }
    };
    if made.code != Some(0) {
        eprintln!("skipped: this filesystem or user cannot make a file immutable\n{}", made.stderr);
        return;
    }
    set_task(&test, &agent, "ls; cat f1.txt", "");
    let run = test.run(&["run", "tasks.lua"]);
    // The tree set aside went, its immutable file with it (an agent run as root takes the
    // flag back): it does not stay on the agent's disk, one more per fallback.
    let left = trees(work.path());
    unlock();
    let run = run.expect_code(0);
    if nix::unistd::geteuid().is_root() {
        assert_eq!(left.len(), 1, "only the new tree is kept: {left:?}");
        assert!(!left[0].join("imm").exists(), "{left:?}");
    }
    let lines: Vec<&str> = run.stderr.lines().filter_map(|line| line.strip_prefix("box/t | ")).collect();
    assert_eq!(lines, ["f0.txt", "f1.txt", "file 1"], "{}", run.stderr);
    assert!(!test.path().join("ws/imm").exists());
}
