//! Attacks on the round trip of a remote task (warm trees, leftovers, output, odd files): what
//! a task on an agent leaves and prints must be what it would leave and print here, and
//! nothing a task did not change is written here.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::support::Test;
use crate::support::agent::Agent;
use crate::warm::{info, set_task, workspace};

/// The lines `box/t | …` of a run's stderr, prefix removed.
fn task_lines(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(|line| line.strip_prefix("box/t | ")).map(str::to_owned).collect()
}

/// What a listing command prints when run here in `dir` (the master's view of the workspace).
fn here(dir: &Path, command: &str) -> Vec<String> {
    let out = Command::new("sh").arg("-c").arg(command).current_dir(dir).output().expect("sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// `set_up` in the test's workspace `ws` and in a directory `local` beside it; `command` run
/// here in `local`, then the pipeline (`tasks.lua`, running it on an agent) over `ws`: what
/// `listing` prints in `ws`, checked to be what it prints in `local`.
fn there_as_here(test: &Test, set_up: &dyn Fn(&Path), command: &str, listing: &str) -> Vec<String> {
    let (ws, local) = (test.path().join("ws"), test.path().join("local"));
    set_up(&ws);
    std::fs::create_dir(&local).expect("mkdir");
    set_up(&local);
    here(&local, command);
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let (there, here_too) = (here(&ws, listing), here(&local, listing));
    assert_eq!(there, here_too, "after the remote run, then after the same commands here");
    there
}

/// Every entry below `.` but the root: path, kind, mode, size (files), target (links), mtime
/// (not of directories: the master's own change of a directory's entries moves its time), then
/// the contents' sums and the hard-link counts.
const LISTING: &str = "find . -mindepth 1 \\( -type d -printf '%p %y %m\\n' \\) -o \\( -printf '%p %y %m %s %l %T@ %n\\n' \\) | LC_ALL=C sort; \
                       find . -type f -exec md5sum {} + | LC_ALL=C sort";

#[test]
fn a_daemon_left_by_an_unapplied_task_holding_a_file_open_never_reaches_the_next_task_or_the_master() {
    let agent = Agent::start(&[]);
    // A daemon as daemons start: its log opened, then a session of its own, then `cd /`.
    let test = workspace(
        &agent,
        1,
        "setsid sh -c 'exec 3>>f0.txt; cd /; sleep 1.5; echo JUNK >&3' </dev/null >/dev/null 2>&1 &",
        "workspace = { sync_back = \"never\" },",
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    // The next task only reads, for longer than the daemon waits.
    set_task(&test, &agent, "sleep 3; cat f0.txt", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(task_lines(&run.stderr), ["file 0"], "the next task sees the manifest's file only\n{}", run.stderr);
    assert_eq!(test.read("ws/f0.txt"), "file 0\n", "a task that only read wrote nothing here");
}

#[test]
fn a_daemon_left_by_an_unapplied_task_holding_a_file_mapped_never_reaches_the_next_task() {
    let agent = Agent::start(&[]);
    // The file mapped shared and its descriptor closed: only the mapping holds it.
    let daemon = "import mmap, os, time\n\
                  fd = os.open('f0.txt', os.O_RDWR)\n\
                  m = mmap.mmap(fd, 0)\n\
                  os.close(fd)\n\
                  os.chdir('/')\n\
                  time.sleep(1.5)\n\
                  m[0:4] = b'JUNK'\n\
                  m.flush()\n";
    let test = workspace(&agent, 1, "", "workspace = { sync_back = \"never\" },");
    std::fs::write(test.path().join("daemon.py"), daemon).expect("daemon.py");
    let script = test.path().join("daemon.py").display().to_string();
    set_task(
        &test,
        &agent,
        &format!("setsid python3 '{script}' </dev/null >/dev/null 2>&1 & sleep 0.5"),
        "workspace = { sync_back = \"never\" },",
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    set_task(&test, &agent, "sleep 3; cat f0.txt", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(task_lines(&run.stderr), ["file 0"], "the next task sees the manifest's file only\n{}", run.stderr);
    assert_eq!(test.read("ws/f0.txt"), "file 0\n", "a task that only read wrote nothing here");
}

/// Runs `pipeline` in `test` and returns its raw stdout and stderr.
fn raw_run(test: &Test, pipeline: &str) -> (Vec<u8>, String) {
    let out = test.command(&["run", pipeline]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `body` as a function task, once here (`local.lua`) and once on `agent` (`remote.lua`).
pub(crate) fn local_and_remote(agent: &Agent, body: &str) -> Test {
    let pipeline = |on_agent: bool| {
        format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n  \
             {{ name = \"t\", {}command = function() {body} return true end }},\n}} }} }}\n",
            agent.address,
            if on_agent { "agent = \"box\", " } else { "" }
        )
    };
    Test::new().write("ws/a.txt", "a\n").write("local.lua", &pipeline(false)).write("remote.lua", &pipeline(true))
}

#[test]
fn what_a_remote_function_task_writes_to_stdout_and_stderr_is_printed_as_it_is_here() {
    let agent = Agent::start(&[]);
    let test = local_and_remote(
        &agent,
        "io.write('IOWRITE\\n'); io.stdout:write('STDOUT\\n'); io.stderr:write('STDERR\\n'); \
         os.execute('echo OSEXEC; echo OSERR >&2'); print('PRINT'); io.stdout:flush()",
    );
    let (local_out, local_err) = raw_run(&test, "local.lua");
    let (remote_out, remote_err) = raw_run(&test, "remote.lua");
    let local_out = String::from_utf8_lossy(&local_out);
    let remote_out = String::from_utf8_lossy(&remote_out);
    for marker in ["IOWRITE", "STDOUT", "OSEXEC", "PRINT"] {
        assert!(local_out.contains(marker), "the test itself: {marker} here\n{local_out}");
        assert!(remote_out.contains(marker), "{marker} printed on the master's stdout\n{remote_out}\n{remote_err}");
    }
    for marker in ["STDERR", "OSERR"] {
        assert!(local_err.contains(marker), "the test itself: {marker} here\n{local_err}");
        assert!(remote_err.contains(marker), "{marker} printed on the master's stderr\n{remote_err}");
    }
    assert!(!agent.log().contains("STDERR"), "the task's output stays out of the agent's log\n{}", agent.log());
}

#[test]
fn bytes_a_remote_function_task_prints_that_are_not_utf8_arrive_unchanged() {
    let agent = Agent::start(&[]);
    let test = local_and_remote(&agent, "print('bin:\\255\\254:end');");
    let (local_out, _) = raw_run(&test, "local.lua");
    let (remote_out, remote_err) = raw_run(&test, "remote.lua");
    assert_eq!(local_out, b"bin:\xff\xfe:end\n", "the test itself");
    assert_eq!(remote_out, local_out, "the same bytes on the master's stdout\n{remote_err}");
}

#[test]
fn a_sparse_file_a_task_makes_takes_no_more_room_here_than_a_local_run_would() {
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        1,
        "truncate -s 256M sparse.bin; printf x | dd of=sparse.bin bs=1 seek=100000000 conv=notrunc 2>/dev/null",
        "",
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let meta = std::fs::metadata(test.path().join("ws/sparse.bin")).expect("sparse.bin");
    assert_eq!(meta.len(), 256 << 20);
    let allocated = meta.blocks() * 512;
    assert!(allocated < 16 << 20, "a file of one byte and holes takes {allocated} bytes here (a few KiB locally)");
}

/// A task's command, its `workspace` fields, and the edit made here after it.
type Step<'a> = (&'a str, &'a str, &'a dyn Fn(&Path));

#[test]
fn a_warm_tree_follows_kinds_modes_links_and_master_edits_flipping_between_tasks() {
    let agent = Agent::start(&[]);
    let test = Test::new()
        .write("ws/f", "f\n")
        .write("ws/d/x", "x\n")
        .write("ws/e", "#!/bin/sh\n")
        .write("ws/h1", "linked\n")
        .write("ws/flip", "flip\n");
    let ws = test.path().join("ws");
    std::os::unix::fs::symlink("f", ws.join("l")).expect("ln -s");
    std::fs::hard_link(ws.join("h1"), ws.join("h2")).expect("ln");
    std::fs::set_permissions(ws.join("e"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let steps: [Step<'_>; 4] = [
        // Unapplied: every kind flipped, all of it to be undone for the next task.
        (
            "chmod 600 f; rm -rf d; echo d > d; rm l; mkdir l; rm e; ln -s f e; echo more >> h1; \
             rm flip; mkdir -p flip/sub; touch -d @-1000 f",
            "workspace = { sync_back = \"never\" },",
            &|ws: &Path| {
                std::fs::write(ws.join("d/y"), "y\n").expect("edit");
                std::fs::remove_file(ws.join("l")).expect("rm");
                std::os::unix::fs::symlink("e", ws.join("l")).expect("ln -s");
                std::fs::set_permissions(ws.join("f"), std::os::unix::fs::PermissionsExt::from_mode(0o640))
                    .expect("chmod");
            },
        ),
        // Applied: the same flips, come back here.
        (
            "rm -rf d; echo d > d; rm l; mkdir l; rm e; ln -s f e; echo more >> h1; rm flip; mkdir -p flip/sub; \
             chmod 2775 flip",
            "",
            &|ws: &Path| {
                // And back, here: a file becomes a directory again, a link a file.
                std::fs::remove_file(ws.join("d")).expect("rm");
                std::fs::create_dir(ws.join("d")).expect("mkdir");
                std::fs::write(ws.join("d/z"), "z\n").expect("write");
                std::fs::remove_file(ws.join("e")).expect("rm");
                std::fs::write(ws.join("e"), "#!/bin/sh\necho e\n").expect("write");
                std::fs::remove_dir_all(ws.join("flip")).expect("rm -r");
                std::os::unix::fs::symlink("d", ws.join("flip")).expect("ln -s");
            },
        ),
        ("rm -rf l; ln -s d l; chmod 700 d; rm flip; echo flip > flip; rm h2; cp h1 h2", "", &|ws: &Path| {
            std::fs::remove_file(ws.join("h2")).expect("rm");
            std::fs::hard_link(ws.join("h1"), ws.join("h2")).expect("ln");
            std::fs::write(ws.join("f"), "F\n").expect("write");
        }),
        ("true", "", &|_: &Path| {}),
    ];
    for (i, (command, fields, edit)) in steps.iter().enumerate() {
        let expected = here(&ws, LISTING);
        set_task(&test, &agent, &format!("{LISTING}; {command}"), fields);
        let run = test.run(&["run", "tasks.lua"]).expect_code(0);
        let seen = task_lines(&run.stderr);
        assert_eq!(seen, expected, "step {i}: the task sees exactly the master's tree\n{}", run.stderr);
        edit(&ws);
    }
    assert!(info(&agent).trees_reused >= 3, "the tree was reused");
}

#[test]
fn files_newly_ignored_and_unignored_between_warm_tasks_are_seen_exactly_as_the_rules_say() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 1, "ls; cat keep.tmp 2>/dev/null || true", "").write("ws/keep.tmp", "v1\n");
    let listing = |run: &crate::support::Run| task_lines(&run.stderr);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(listing(&run), ["f0.txt", "keep.tmp", "v1"]);
    // Newly ignored: gone for the task, kept here whatever the task does at its name.
    std::fs::write(test.path().join("ws/.slothignore"), "*.tmp\n").expect(".slothignore");
    set_task(&test, &agent, "ls; echo task > keep.tmp; echo new > new.tmp", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(listing(&run), ["f0.txt"]);
    assert_eq!(test.read("ws/keep.tmp"), "v1\n");
    assert!(!test.exists("ws/new.tmp"));
    // Edited here while ignored, then un-ignored: the task sees this version, not its own.
    std::fs::write(test.path().join("ws/keep.tmp"), "v2\n").expect("edit");
    std::fs::remove_file(test.path().join("ws/.slothignore")).expect("rm");
    set_task(&test, &agent, "ls -A; cat keep.tmp", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(listing(&run), ["f0.txt", "keep.tmp", "v2"]);
    assert_eq!(info(&agent).trees_reused, 2);
}

#[test]
fn modification_times_before_1970_travel_both_ways_with_their_nanoseconds() {
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        1,
        "stat -c '%n %.9Y' f0.txt; touch -d @-1.5 half.txt; mkdir old; touch -d @-86400.25 old; \
         touch -d @-1234567890.75 f0.txt",
        "",
    );
    let status = Command::new("touch").args(["-d", "@-1234567890.25"]).arg(test.path().join("ws/f0.txt")).status();
    assert!(status.expect("touch").success());
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(task_lines(&run.stderr), ["f0.txt -1234567890.250000000"]);
    let ws = test.path().join("ws");
    assert_eq!(
        here(&ws, "stat -c '%n %.9Y' f0.txt half.txt old"),
        ["f0.txt -1234567890.750000000", "half.txt -1.500000000", "old -86400.250000000"]
    );
}

#[test]
fn a_file_deleted_by_one_concurrent_task_and_changed_by_another_is_a_conflict_by_name() {
    let agent = Agent::start(&["--max-tasks", "4"]);
    let test = Test::new().write("ws/shared.txt", "base\n");
    let master = test.path().join("ws").display().to_string();
    let test = test.write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{a}\" }} }}, tasks = {{\n  \
             {{ name = \"first\", agent = \"box\", command = \"rm shared.txt; echo a > only-first.txt\" }},\n  \
             {{ name = \"second\", agent = \"box\", command = [[for i in $(seq 2000); do test -e '{master}/shared.txt' || break; sleep 0.01; done; \
             echo second >> shared.txt; echo b > only-second.txt]] }},\n}} }} }}\n",
            a = agent.address
        ),
    );
    let run = test.run(&["run", "tasks.lua", "--jobs", "2"]).expect_code(1);
    assert!(run.stderr.contains("conflict") && run.stderr.contains("shared.txt"), "{}", run.stderr);
    assert!(!test.exists("ws/shared.txt"), "the deletion applied, the change on top of it did not");
    assert!(test.exists("ws/only-first.txt") && !test.exists("ws/only-second.txt"));
}

#[test]
fn a_run_here_and_a_run_there_of_one_pipeline_print_the_same_lines() {
    // Both runs through the same binary, so a difference is the round trip's.
    let agent = Agent::start(&[]);
    let test = local_and_remote(&agent, "print('one'); print('two', 3, nil, true); print(''); print('tab\\tend');");
    let (local_out, _) = raw_run(&test, "local.lua");
    let (remote_out, _) = raw_run(&test, "remote.lua");
    assert_eq!(String::from_utf8_lossy(&remote_out), String::from_utf8_lossy(&local_out));
}

#[test]
fn a_users_directories_named_like_an_applys_are_never_removed_by_a_remote_task() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 1, "echo made > out.txt", "");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for name in [".sloth-apply-notes", ".sloth-staging-abcdef", ".sloth-kept-mine"] {
        let dir = test.path().join("ws").join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("todo.txt"), "precious\n").expect("write");
        std::fs::File::open(&dir).expect("open").set_modified(long_ago).expect("age");
    }
    for _ in 0..2 {
        test.run(&["run", "tasks.lua"]).expect_code(0);
    }
    assert_eq!(test.read("ws/out.txt"), "made\n");
    for name in [".sloth-apply-notes", ".sloth-staging-abcdef", ".sloth-kept-mine"] {
        assert_eq!(test.read(&format!("ws/{name}/todo.txt")), "precious\n", "{name}");
    }
}

#[test]
fn a_kept_tree_swapped_for_a_link_while_idle_is_not_used_and_what_it_leads_to_is_untouched() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = workspace(&agent, 2, "ls > listing.txt", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let trees = crate::warm::trees(work.path());
    assert_eq!(trees.len(), 1, "one tree kept");
    let victim = tempfile::tempdir().expect("tempdir");
    std::fs::write(victim.path().join("precious.txt"), "alive\n").expect("write");
    std::fs::remove_dir_all(&trees[0]).expect("rm tree");
    std::os::unix::fs::symlink(victim.path(), &trees[0]).expect("swap for a link");
    std::fs::write(test.path().join("ws/f9.txt"), "new\n").expect("write");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/listing.txt"), "f0.txt\nf1.txt\nf9.txt\nlisting.txt\n", "the task saw its workspace");
    let left: Vec<_> = std::fs::read_dir(victim.path()).expect("list").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("precious.txt")], "nothing written where the link leads");
    assert_eq!(std::fs::read_to_string(victim.path().join("precious.txt")).expect("read"), "alive\n");
}

/// A user who is not root (uid 65534 when the tests run as root): what a task did in a
/// read-only directory of the user's — opening it, writing, closing it again — lands here as a
/// run here would leave it (the apply opens the directory for its steps and closes it again).
#[test]
fn what_a_task_did_in_a_read_only_directory_lands_for_a_user_who_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        1,
        "chmod u+w r && echo more >> r/f && echo new > r/n && rm r/gone && rm -r r/sub && chmod 555 r",
        "",
    )
    .write("ws/r/f", "r\n")
    .write("ws/r/gone", "x\n")
    .write("ws/r/sub/inner", "x\n");
    let ws = test.path().join("ws");
    for dir in ["r/sub", "r"] {
        std::fs::set_permissions(ws.join(dir), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }
    let mut run = test.command(&["run", "tasks.lua"]);
    if nix::unistd::geteuid().is_root() {
        test.hand_to(65534, 65534);
        run.uid(65534).gid(65534);
    }
    let mtime = |path: &str| std::fs::symlink_metadata(ws.join(path)).expect("lstat").modified().expect("mtime");
    let before = mtime("r");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::open(&ws).expect("open").set_modified(long_ago).expect("age");
    crate::support::Run::of(run).expect_code(0);
    assert_eq!(mtime(""), long_ago, "the workspace's own time: the task added or removed no name there");
    assert_eq!(test.read("ws/r/f"), "r\nmore\n");
    assert_eq!(test.read("ws/r/n"), "new\n");
    assert!(!ws.join("r/gone").exists() && !ws.join("r/sub").exists(), "deleted");
    let meta = std::fs::symlink_metadata(ws.join("r")).expect("lstat");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o555, "closed again");
    assert_ne!(mtime("r"), before, "the task's entries moved its time, as here");
}

/// A user who is not root, whose workspace directory itself is read-only (0555): a task that
/// writes in a file or a subdirectory, or opens the directory, adds a name and closes it again,
/// lands as a run here would leave it — the apply opens the directory for its staging and its
/// steps, and closes it again (it could not make its staging directory there).
#[test]
fn what_a_task_did_in_a_read_only_workspace_directory_lands_for_a_user_who_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 1, "echo more >> f && echo y > d/new && chmod u+w . && echo x > n && chmod u-w .", "")
        .write("ws/f", "f\n")
        .write("ws/d/old", "o\n");
    let ws = test.path().join("ws");
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if nix::unistd::geteuid().is_root() {
        test.hand_to(65534, 65534);
    }
    run_as_a_user(&test, &["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/f"), "f\nmore\n");
    assert_eq!(test.read("ws/d/new"), "y\n");
    assert_eq!(test.read("ws/n"), "x\n");
    let mode = std::fs::metadata(&ws).expect("ws").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o555, "closed again");
    let names: Vec<_> = std::fs::read_dir(&ws).expect("ws").flatten().map(|e| e.file_name()).collect();
    assert!(!names.iter().any(|name| name.to_string_lossy().starts_with(".sloth")), "{names:?}");
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
}

/// An agent that is not root reads back a directory the task left unreadable (`chmod 000 d`),
/// as a run here leaves it: opened for the reading, closed again, its mode as the task left it.
#[test]
fn a_directory_a_task_left_unreadable_comes_back_from_an_agent_that_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    if skipped_unless_root("to start an agent as another user") {
        return;
    }
    let (_work, agent) = agent_as_a_user(&[]);
    let test = workspace(&agent, 1, "echo x > d/n && chmod 000 d", "").write("ws/d/f", "f\n");
    test.hand_to(65534, 65534);
    run_as_a_user(&test, &["run", "tasks.lua"]).expect_code(0);
    let d = test.path().join("ws/d");
    assert_eq!(std::fs::metadata(&d).expect("d").permissions().mode() & 0o7777, 0, "as the task left it");
    // (Read as root.)
    assert_eq!(test.read("ws/d/n"), "x\n");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod back");
}

/// An agent that is not root reads back files the task left unreadable to their owner — one it
/// made (`chmod 000`), one it rewrote and left write-only, one whose mode alone it changed —
/// as a run here leaves them: opened for the reading, closed again, modes as the task left them.
#[test]
fn files_a_task_left_unreadable_come_back_from_an_agent_that_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    if skipped_unless_root("to start an agent as another user") {
        return;
    }
    let (_work, agent) = agent_as_a_user(&[]);
    let command = "echo made > made && chmod 000 made && echo more >> kept && chmod 200 kept && chmod 100 tool && \
                   echo h > h1 && ln h1 h2 && chmod 000 h1";
    let test = workspace(&agent, 1, command, "").write("ws/kept", "kept\n").write("ws/tool", "#!/bin/sh\n");
    test.hand_to(65534, 65534);
    let run = run_as_a_user(&test, &["run", "tasks.lua"]);
    let context = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "{context}");
    let mode =
        |name: &str| std::fs::metadata(test.path().join("ws").join(name)).expect(name).permissions().mode() & 0o7777;
    assert_eq!((mode("made"), mode("kept"), mode("tool")), (0, 0o200, 0o100), "as the task left them\n{context}");
    // Both names of a file, as the task left it (not as it was opened for the reading).
    assert_eq!((mode("h1"), mode("h2")), (0, 0), "{context}");
    // (Read as root.)
    assert_eq!(test.read("ws/made"), "made\n");
    assert_eq!(test.read("ws/kept"), "kept\nmore\n");
    assert_eq!(test.read("ws/tool"), "#!/bin/sh\n");
}

/// A cached content made unreadable behind the back of an agent that is not root (`chmod 000`)
/// is removed and fetched again, as a damaged one is: the task runs, and so does the next.
#[test]
fn a_cached_content_made_unreadable_is_fetched_again_by_an_agent_that_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    if skipped_unless_root("to start an agent as another user") {
        return;
    }
    let cache = tempfile::tempdir().expect("cache");
    std::os::unix::fs::chown(cache.path(), Some(65534), Some(65534)).expect("chown");
    let cache_dir = cache.path().display().to_string();
    let (_work, agent) = agent_as_a_user(&["--cache-dir", cache_dir.as_str(), "--warm-trees", "0"]);
    let hash = blake3::hash(b"the content\n").to_hex().to_string();
    // The content reaches the cache once the first task has answered.
    let first = workspace(&agent, 1, "cat data > out", "").write("ws/data", "the content\n");
    first.hand_to(65534, 65534);
    run_as_a_user(&first, &["run", "tasks.lua"]).expect_code(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let blob = loop {
        let found = walk_files(cache.path())
            .into_iter()
            .find(|path| path.file_name().is_some_and(|name| name == hash.as_str()));
        match found {
            Some(blob) => break blob,
            None if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
            None => panic!("the content never reached the cache {}", cache.path().display()),
        }
    };
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    for _ in 0..2 {
        let next = workspace(&agent, 1, "cat data > out", "").write("ws/data", "the content\n");
        next.hand_to(65534, 65534);
        let run = run_as_a_user(&next, &["run", "tasks.lua"]);
        assert_eq!(run.code, Some(0), "--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
        assert_eq!(next.read("ws/out"), "the content\n");
    }
}

/// Every file under `dir`, at any depth.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => files.extend(walk_files(&path)),
            Ok(kind) if kind.is_file() => files.push(path),
            _ => {}
        }
    }
    files
}

/// A master that is not root does not apply a rewrite of a file it may not write (root's file
/// in its own directory): a run here fails to write it, and replacing it would take root's
/// file — its content and its owner. The task's other changes are not applied either.
#[test]
fn a_rewrite_of_a_file_the_master_may_not_write_is_refused_and_nothing_is_applied() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if skipped_unless_root("to make another user's file") {
        return;
    }
    let agent = Agent::start(&[]);
    let test =
        workspace(&agent, 1, "echo other > other.txt && echo changed >> rootfile", "").write("ws/rootfile", "root's\n");
    test.hand_to(65534, 65534);
    let rootfile = test.path().join("ws/rootfile");
    std::os::unix::fs::chown(&rootfile, Some(0), Some(0)).expect("chown");
    std::fs::set_permissions(&rootfile, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = run_as_a_user(&test, &["run", "tasks.lua"]);
    let context = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(1), "{context}");
    assert!(run.stderr.contains("rootfile") && run.stderr.contains("may not change"), "{context}");
    assert_eq!(test.read("ws/rootfile"), "root's\n", "{context}");
    let meta = std::fs::metadata(&rootfile).expect("rootfile");
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644), "still root's\n{context}");
    assert!(!test.path().join("ws/other.txt").exists(), "nothing of the task applied\n{context}");
    // Nor its mode, even through another name of it (a file with other names is replaced).
    std::fs::hard_link(&rootfile, test.path().join("ws/other-name")).expect("link");
    set_task(&test, &agent, "chmod 600 rootfile", "");
    let run = run_as_a_user(&test, &["run", "tasks.lua"]);
    assert_eq!(run.code, Some(1), "--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    let meta = std::fs::metadata(&rootfile).expect("rootfile");
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644), "still root's, as it was");
    std::fs::remove_file(test.path().join("ws/other-name")).expect("rm");
    // Made anew in its place (removed, then written again): a run here needs only the
    // directory for that, and the file is the runner's then.
    // (A moment after the tree was built: a birth time in the same tick would not tell.)
    set_task(&test, &agent, "sleep 0.05; rm -f rootfile && echo anew > rootfile", "");
    let run = run_as_a_user(&test, &["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(test.read("ws/rootfile"), "anew\n");
    assert_eq!(std::fs::metadata(&rootfile).expect("rootfile").uid(), 65534);
    std::fs::write(&rootfile, "root's\n").expect("write");
    // A read-only file of the runner's own is not another user's: it could make it writable
    // here, and the task's rewrite lands.
    std::os::unix::fs::chown(&rootfile, Some(65534), Some(65534)).expect("chown");
    std::fs::set_permissions(&rootfile, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    set_task(&test, &agent, "chmod u+w rootfile && echo changed >> rootfile && chmod u-w rootfile", "");
    let run = run_as_a_user(&test, &["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(test.read("ws/rootfile"), "root's\nchanged\n");
    assert_eq!(std::fs::metadata(&rootfile).expect("rootfile").mode() & 0o7777, 0o444);
}

/// A file the task rewrote keeps its extended attributes and its access ACL here, as a write
/// into it here leaves them: the colleague the ACL names keeps their access, the group its own
/// bits, `user.*` attributes stay.
#[test]
fn a_file_the_task_rewrote_keeps_its_acl_and_extended_attributes() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 1, "echo more >> shared.txt", "").write("ws/shared.txt", "data\n");
    let shared = test.path().join("ws/shared.txt");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // user::rw- user:65534:rw- group::r-- mask::rw- other::---
    let entry =
        |tag: u16, perm: u16, id: u32| [tag.to_le_bytes().as_slice(), &perm.to_le_bytes(), &id.to_le_bytes()].concat();
    let acl: Vec<u8> = [
        2u32.to_le_bytes().to_vec(),
        entry(1, 6, u32::MAX),
        entry(2, 6, 65534),
        entry(4, 4, u32::MAX),
        entry(0x10, 6, u32::MAX),
        entry(0x20, 0, u32::MAX),
    ]
    .concat();
    if xattr::set(&shared, "system.posix_acl_access", &acl).is_err()
        || xattr::set(&shared, "user.origin", b"here").is_err()
    {
        eprintln!("skipped: the filesystem of {} keeps no ACLs or user attributes", shared.display());
        return;
    }
    let mode_before = std::fs::metadata(&shared).expect("stat").permissions().mode() & 0o7777;
    let run = test.run(&["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "--- stderr\n{}", run.stderr);
    assert_eq!(test.read("ws/shared.txt"), "data\nmore\n");
    assert_eq!(xattr::get(&shared, "user.origin").expect("get"), Some(b"here".to_vec()));
    assert_eq!(xattr::get(&shared, "system.posix_acl_access").expect("get"), Some(acl), "the ACL as it was");
    assert_eq!(std::fs::metadata(&shared).expect("stat").permissions().mode() & 0o7777, mode_before);
}

/// What the task makes in a directory with a default ACL (`other::---`: the usual way to keep
/// a directory's new files private) lands as made there here: the ACL handed down, modes masked
/// by it (0640, 0750), the default handed on to a directory in it — not world-readable with the
/// agent's umask modes; what lands elsewhere holds no ACL the staging directory handed down.
#[test]
fn what_a_task_makes_in_a_directory_with_a_default_acl_lands_as_made_there() {
    let agent = Agent::start(&[]);
    let command = "echo secret > private/new.txt && mkdir private/sub && echo s > private/sub/deep.txt && \
                   mkfifo private/pipe && echo top > top.txt && echo s > shared/s.txt && mkdir shared/d";
    let test = workspace(&agent, 0, command, "");
    let default = acl(&[(1, 7), (4, 5), (0x20, 0)]);
    // Everyone may write: the umask does not apply where a default ACL is handed down.
    let open = acl(&[(1, 7), (4, 7), (0x20, 7)]);
    let set_up = |dir: &Path| {
        for (name, acl) in [("private", &default), ("shared", &open)] {
            std::fs::create_dir_all(dir.join(name)).expect("mkdir");
            if let Err(error) = xattr::set(dir.join(name), "system.posix_acl_default", acl) {
                panic!("setting a default ACL on {}: {error}", dir.display());
            }
        }
    };
    if skipped_without_attributes(test.path()) {
        return;
    }
    let there = there_as_here(&test, &set_up, command, "find . -mindepth 1 -printf '%p %y %m\\n' | LC_ALL=C sort");
    let joined = there.join("\n");
    for line in [
        "./private/new.txt f 640",
        "./private/sub d 750",
        "./private/sub/deep.txt f 640",
        "./top.txt f 644",
        "./shared/s.txt f 666",
        "./shared/d d 777",
    ] {
        assert!(there.iter().any(|listed| listed == line), "{line} missing:\n{joined}");
    }
    // The ACLs themselves, as made here.
    for name in ["private/new.txt", "private/sub", "private/sub/deep.txt", "private/pipe", "top.txt"] {
        for attribute in ["system.posix_acl_access", "system.posix_acl_default"] {
            let (ws, local) = (test.path().join("ws").join(name), test.path().join("local").join(name));
            let read = |path: &Path| xattr::get(path, attribute).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(read(&ws), read(&local), "{name} {attribute}");
        }
    }
    assert!(xattr::get(test.path().join("ws/private/sub"), "system.posix_acl_default").expect("get").is_some());
}

/// A workspace whose own directory hands down a default ACL (so does the staging directory
/// of an apply in it): what lands in a subdirectory that hands down none holds none, as made
/// there; what lands at the top holds the root's.
#[test]
fn what_lands_where_no_default_acl_is_handed_down_holds_none_even_below_a_root_that_has_one() {
    let agent = Agent::start(&[]);
    let command = "echo o > open/file.txt && echo r > top.txt";
    let test = workspace(&agent, 0, command, "");
    let default = acl(&[(1, 7), (4, 5), (0x20, 0)]);
    let set_up = |dir: &Path| {
        std::fs::create_dir_all(dir.join("open")).expect("mkdir");
        if let Err(error) = xattr::set(dir, "system.posix_acl_default", &default) {
            panic!("setting a default ACL on {}: {error}", dir.display());
        }
    };
    if skipped_without_attributes(test.path()) {
        return;
    }
    let there = there_as_here(&test, &set_up, command, "find . -mindepth 1 -printf '%p %y %m\\n' | LC_ALL=C sort");
    let joined = there.join("\n");
    for line in ["./open/file.txt f 644", "./top.txt f 640"] {
        assert!(there.iter().any(|listed| listed == line), "{line} missing:\n{joined}");
    }
    for name in ["open/file.txt", "top.txt"] {
        let (ws, local) = (test.path().join("ws").join(name), test.path().join("local").join(name));
        let read = |path: &Path| {
            xattr::get(path, "system.posix_acl_access").unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        assert_eq!(read(&ws), read(&local), "{name}");
    }
}

/// A task that moves files out of its workspace (`mv notes.txt ../`, or the whole workspace
/// aside) keeps their bytes where they never come back: a run here would have kept them beside
/// the workspace. The master keeps those files rather than lose them, and says so; what the
/// task made still lands.
#[test]
fn files_a_task_moved_out_of_its_workspace_are_kept_on_the_master() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 2, "mv f0.txt ../f0-backup.txt && rm f1.txt && echo new > new.txt", "")
        .write("ws/notes/keep.txt", "kept\n");
    let run = test.run(&["run", "tasks.lua"]);
    let context = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "{context}");
    assert_eq!(test.read("ws/f0.txt"), "file 0\n", "moved out: kept\n{context}");
    assert!(run.stderr.contains("'f0.txt' was moved by the task out of its workspace"), "{context}");
    assert!(!test.path().join("ws/f1.txt").exists(), "deleted: deleted\n{context}");
    assert_eq!(test.read("ws/new.txt"), "new\n");
    // The whole workspace moved aside and a new one made in its place.
    set_task(&test, &agent, "mv \"$PWD\" \"$PWD.old\" && mkdir \"$PWD\" && cd \"$PWD\" && echo fresh > fresh.txt", "");
    let run = test.run(&["run", "tasks.lua"]);
    let context = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "{context}");
    assert_eq!(test.read("ws/f0.txt"), "file 0\n", "{context}");
    assert_eq!(test.read("ws/notes/keep.txt"), "kept\n", "{context}");
    assert_eq!(test.read("ws/fresh.txt"), "fresh\n", "{context}");
}

/// The workspace directory's time that changed here while a remote task ran (here a local task
/// beside it touched it), later than the task's, stays as it was changed here — not the moment
/// of the apply, which adding a name at the root gave it, nor the task's earlier one.
#[test]
fn the_workspace_directory_s_time_changed_here_meanwhile_stays() {
    use std::os::unix::fs::MetadataExt;
    let agent = Agent::start(&[]);
    // The task here touches the directory once the remote one has started (its workspace sent),
    // and the remote one goes on once that is done: the two meet through files beside them (the
    // agent runs on this machine).
    let test = Test::new().write("ws/a.txt", "a\n");
    let (started, touched) = (test.path().join("started"), test.path().join("touched"));
    let wait =
        |marker: &Path| format!("for i in $(seq 2000); do [ -e '{}' ] && break; sleep 0.01; done", marker.display());
    let there = format!(
        "touch '{}'; {}; echo x > x.txt; touch -d '1999-01-01 00:00:00 UTC' .",
        started.display(),
        wait(&touched)
    );
    let here = format!("{}; touch -d '2001-01-01 00:00:00 UTC' . && touch '{}'", wait(&started), touched.display());
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ workdir = "ws", agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "there", agent = "box", command = [==[{there}]==] }},
                {{ name = "here", command = [==[{here}]==] }},
            }} }} }}"#,
            agent.address
        ),
    )
    .expect("pipeline");
    let run = test.run(&["run", "-j", "2", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "--- stderr\n{}", run.stderr);
    assert_eq!(test.read("ws/x.txt"), "x\n");
    let mtime = std::fs::metadata(test.path().join("ws")).expect("ws").mtime();
    assert_eq!(mtime, 978_307_200, "2001-01-01 as touched here (UTC)");
}

/// An agent run as a user who is not root (65534; the tests run as root), `args` added, in a work
/// directory of that user's (returned: it goes when dropped).
fn agent_as_a_user(args: &[&str]) -> (tempfile::TempDir, Agent) {
    let work = tempfile::tempdir().expect("work");
    std::os::unix::fs::chown(work.path(), Some(65534), Some(65534)).expect("chown");
    let work_dir = work.path().display().to_string();
    let agent = Agent::start_wrapped(
        &["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"],
        &[&["--work-dir", work_dir.as_str()], args].concat(),
    );
    (work, agent)
}

/// A run in `test` as a user who is not root: 65534 when the tests run as root (give it the
/// test's files first: [`Test::hand_to`]).
fn run_as_a_user(test: &Test, args: &[&str]) -> crate::support::Run {
    run_as_a_user_id(test, 65534, args)
}

/// `sloth-runner args...` run as user and group `id` when the tests run as root.
fn run_as_a_user_id(test: &Test, id: u32, args: &[&str]) -> crate::support::Run {
    use std::os::unix::process::CommandExt;
    let mut run = test.command(args);
    if nix::unistd::geteuid().is_root() {
        run.uid(id).gid(id);
    }
    crate::support::Run::of(run)
}

#[test]
fn read_only_directories_a_task_replaced_or_two_tasks_wrote_in_land_for_a_user_who_is_not_root() {
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 0, "", "").write("ws/d/f", "f\n").write("ws/shared/x", "x\n");
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n\
               {{ name = \"replace\", agent = \"box\", command = [[chmod u+w d && rm -r d && echo now a file > d]] }},\n\
               {{ name = \"one\", agent = \"box\", command = [[chmod u+w shared && for i in 1 2 3 4 5; do echo 1 > shared/one$i; done && chmod u-w shared]] }},\n\
               {{ name = \"two\", agent = \"box\", command = [[chmod u+w shared && for i in 1 2 3 4 5; do echo 2 > shared/two$i; done && chmod u-w shared]] }},\n\
             }} }} }}\n",
            agent.address
        ),
    )
    .expect("pipeline");
    let ws = test.path().join("ws");
    for dir in ["d", "shared"] {
        std::fs::set_permissions(ws.join(dir), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }
    if nix::unistd::geteuid().is_root() {
        test.hand_to(65534, 65534);
    }
    run_as_a_user(&test, &["run", "-j", "3", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/d"), "now a file\n");
    for i in 1..=5 {
        assert_eq!(test.read(&format!("ws/shared/one{i}")), "1\n");
        assert_eq!(test.read(&format!("ws/shared/two{i}")), "2\n");
    }
    let mode = std::fs::symlink_metadata(ws.join("shared")).expect("lstat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o555, "closed again");
}

/// An agent run by a user who is not root removes what a task left read-only (a Go module
/// cache does that; so does `chmod 555 .`): the task's tree as the task ends, and its work
/// directory as it stops. `remove_dir_all` alone left them for good (and, having removed the
/// mark first, where no later agent would take them back).
#[test]
fn an_agent_that_is_not_root_removes_what_a_task_left_read_only() {
    if skipped_unless_root("to start an agent as another user") {
        return;
    }
    let (work, mut agent) = agent_as_a_user(&["--warm-trees", "0"]);
    let test =
        workspace(&agent, 1, "mkdir -p sub/deep && echo y > sub/deep/f && chmod 500 sub/deep sub && chmod 555 .", "");
    test.hand_to(65534, 65534);
    run_as_a_user(&test, &["run", "tasks.lua"]).expect_code(0);
    let task_dirs = || -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for agent_dir in std::fs::read_dir(work.path()).expect("work").flatten() {
            if let Ok(entries) = std::fs::read_dir(agent_dir.path()) {
                found.extend(entries.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains("/task-")));
            }
        }
        found
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !task_dirs().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(task_dirs(), Vec::<std::path::PathBuf>::new(), "the task's directory is gone once it ended");
    assert!(agent.stop().success());
    let left: Vec<_> = std::fs::read_dir(work.path()).expect("work").flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the agent's work directory is gone: {left:?}");
    let _ = std::process::Command::new("chmod").arg("-R").arg("u+rwx").arg(test.path()).status();
}

#[test]
fn a_read_only_directory_that_is_not_the_users_fails_the_apply_plainly_and_keeps_nothing() {
    use std::os::unix::fs::PermissionsExt;
    if skipped_unless_root("to give a directory to another user") {
        return;
    }
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 1, "chmod u+w d && echo g > d/g && chmod u-w d", "").write("ws/d/f", "f\n");
    let ws = test.path().join("ws");
    test.hand_to(65534, 65534);
    std::os::unix::fs::lchown(ws.join("d"), Some(0), Some(0)).expect("chown");
    std::fs::set_permissions(ws.join("d"), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let everything = || crate::support::tree::Tree::read(&ws, &|_| false);
    let before = everything();
    let run =
        run_as_a_user(&test, &["run", "tasks.lua"]).expect_code(1).stderr_has("d/g").stderr_has("Permission denied");
    assert!(!run.stderr.contains("kept"), "nothing was changed here meanwhile, nothing kept:\n{}", run.stderr);
    everything().assert_same(&before, "a refused apply");
    let leftovers: Vec<_> = std::fs::read_dir(&ws)
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sloth"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_summary_counts_the_files_a_task_changed_not_the_directories_that_came_with_them() {
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        1,
        "echo x > sub/new.txt && rm sub/old.txt && mkdir -p made/deep && echo y > made/deep/f",
        "",
    )
    .write("ws/sub/old.txt", "old\n");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    // sub/new.txt and made/deep/f written, sub/old.txt deleted: sub's time, made and made/deep
    // come with them.
    assert!(run.stderr.contains("↓ 3 files "), "{}", run.stderr);
    assert_eq!(test.read("ws/made/deep/f"), "y\n");
}

/// Owners and groups as the same commands leave them here: a file the task rewrote stays its
/// owner's (a checkout of the user's, a run as root), new entries in a shared setgid directory
/// get its group, and a setuid file given back to its owner keeps its bit. (As root: the
/// files belong to others.)
#[test]
fn a_file_the_task_rewrote_keeps_its_owner_and_new_ones_take_a_shared_directory_s_group() {
    use std::os::unix::fs::{PermissionsExt, chown};
    if skipped_unless_root("to give files to other users") {
        return;
    }
    let agent = Agent::start(&[]);
    // (`ln` into the shared directory changes no file's group; a link made anew is the
    // runner's.)
    let command = "echo x >> f0.txt; echo y >> shared/g; echo n > shared/new; mkdir shared/sub; \
                   echo s > shared/sub/s; ln -s g shared/link; echo t >> tool; ln tool shared/tool2; \
                   ln -sfn f0.txt lnk";
    let test = workspace(&agent, 1, command, "workspace = { setuid = true },");
    let set_up = |ws: &Path| {
        std::fs::create_dir_all(ws.join("shared")).expect("mkdir");
        std::fs::write(ws.join("f0.txt"), "file 0\n").expect("write");
        std::fs::write(ws.join("shared/g"), "g\n").expect("write");
        std::fs::write(ws.join("tool"), "#!/bin/sh\n").expect("write");
        chown(ws.join("f0.txt"), Some(1000), Some(1000)).expect("chown");
        chown(ws.join("shared"), Some(65534), Some(100)).expect("chown");
        chown(ws.join("shared/g"), Some(65534), Some(100)).expect("chown");
        chown(ws.join("tool"), Some(1000), Some(1000)).expect("chown");
        std::fs::set_permissions(ws.join("shared"), std::fs::Permissions::from_mode(0o2775)).expect("chmod");
        std::fs::set_permissions(ws.join("tool"), std::fs::Permissions::from_mode(0o4755)).expect("chmod");
        std::os::unix::fs::symlink("shared/g", ws.join("lnk")).expect("symlink");
        std::os::unix::fs::lchown(ws.join("lnk"), Some(1000), Some(1000)).expect("lchown");
    };
    let owners = "stat -c '%n %u:%g %a' f0.txt tool lnk shared shared/g shared/new shared/sub shared/sub/s shared/link shared/tool2";
    let there = there_as_here(&test, &set_up, command, owners);
    assert!(there.contains(&"f0.txt 1000:1000 644".to_owned()), "{there:?}");
    assert!(there.contains(&"tool 1000:1000 4755".to_owned()), "{there:?}");
    assert!(there.contains(&"shared/tool2 1000:1000 4755".to_owned()), "{there:?}");
    assert!(
        there
            .iter()
            .filter(|line| line.starts_with("shared/") && !line.starts_with("shared/tool2"))
            .all(|line| line.contains(":100 ")),
        "{there:?}"
    );
}

/// A file the task made anew where another user's was — removed and written again, another
/// moved over it — is the runner's, as a run here makes it: given the old owner, a secret the
/// task wrote with `umask 077` would be theirs to read. Nor does it keep the old file's
/// extended attributes. So is a directory removed and made again; one moved over another
/// (`mv c a`, `rm -rf d; mv new d`) is whose it was here. (As root: the files belong to
/// others.)
#[test]
fn a_file_the_task_made_anew_where_another_user_s_was_is_the_runner_s_as_here() {
    use std::os::unix::fs::chown;
    if skipped_unless_root("to give files to other users") {
        return;
    }
    let agent = Agent::start(&[]);
    let command = "rm key; (umask 077; echo TOPSECRET > key); cat notes > tmp; echo more >> tmp; mv tmp notes; \
                   echo kept >> log; rm -rf d; mkdir -m 700 d; (umask 077; echo SECRET2 > d/x); \
                   chmod 750 kept; echo y >> kept/y; mv c a; mv p t; mv q p; mv t q; rm -rf e; mv sg e";
    let test = workspace(&agent, 1, command, "");
    let set_up = |ws: &Path| {
        for (name, text) in [("key", "public\n"), ("notes", "notes\n"), ("log", "log\n")] {
            std::fs::write(ws.join(name), text).expect("write");
            chown(ws.join(name), Some(1234), Some(1234)).expect("chown");
        }
        for dir in ["d", "kept"] {
            std::fs::create_dir(ws.join(dir)).expect("mkdir");
            std::fs::write(ws.join(dir).join(&dir[..1]), "old\n").expect("write");
            chown(ws.join(dir), Some(1234), Some(1234)).expect("chown");
        }
        std::fs::write(ws.join("d/x"), "old\n").expect("write");
        chown(ws.join("d/x"), Some(1234), Some(1234)).expect("chown");
        // Moved over one another: each is whose it was (`c`, a secret of 1000's, over 1234's `a`).
        for (name, owner) in [("a", 1234), ("c", 1000), ("p", 1234), ("q", 1000)] {
            std::fs::write(ws.join(name), format!("{name}\n")).expect("write");
            chown(ws.join(name), Some(owner), Some(owner)).expect("chown");
        }
        std::fs::set_permissions(ws.join("c"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        for (dir, owner) in [("e", 1234), ("sg", 1000)] {
            std::fs::create_dir_all(ws.join(dir).join("sub")).expect("mkdir");
            std::fs::write(ws.join(dir).join("in"), "in\n").expect("write");
            std::fs::write(ws.join(dir).join("sub/s"), "s\n").expect("write");
            for path in ["", "in", "sub", "sub/s"] {
                chown(ws.join(dir).join(path), Some(owner), Some(owner)).expect("chown");
            }
        }
        // (Where the filesystem keeps user attributes: the old file's is not the new one's.)
        let _ = xattr::set(ws.join("notes"), "user.origin", b"old file");
    };
    let listing = "stat -c '%n %u:%g %a' key notes log d d/x kept a p q e e/in e/sub e/sub/s";
    let there = there_as_here(&test, &set_up, command, listing);
    assert!(there.contains(&"key 0:0 600".to_owned()), "{there:?}");
    assert!(there.contains(&"notes 0:0 644".to_owned()), "{there:?}");
    assert!(there.contains(&"log 1234:1234 644".to_owned()), "written into: its owner's {there:?}");
    assert!(there.contains(&"d 0:0 700".to_owned()), "made again: the runner's {there:?}");
    assert!(there.contains(&"d/x 0:0 600".to_owned()), "{there:?}");
    assert!(there.contains(&"kept 1234:1234 750".to_owned()), "changed, not made again: its owner's {there:?}");
    assert!(there.contains(&"a 1000:1000 600".to_owned()), "moved over: whose it was {there:?}");
    assert!(
        there.contains(&"p 1000:1000 644".to_owned()) && there.contains(&"q 1234:1234 644".to_owned()),
        "{there:?}"
    );
    assert!(there.contains(&"e 1000:1000 755".to_owned()), "a directory moved over: whose it was {there:?}");
    assert!(there.contains(&"e/sub/s 1000:1000 644".to_owned()), "and what is in it {there:?}");
    assert_eq!(test.read("ws/key"), "TOPSECRET\n");
    let attribute = xattr::get(test.path().join("ws/notes"), "user.origin").expect("getxattr");
    assert_eq!(attribute, None, "the old file's attribute is not the new one's");
}

/// A file or directory the task moved over another whose source the master no longer holds as
/// it was (its owner moved it aside while the task ran) is the runner's — never the replaced
/// one's owner's: that user would read what was moved there.
#[test]
fn what_the_task_moved_from_a_path_changed_here_meanwhile_is_the_runner_s() {
    use std::os::unix::fs::{PermissionsExt, chown};
    if skipped_unless_root("to give files to other users") {
        return;
    }
    let agent = Agent::start(&[]);
    let signals = tempfile::tempdir().expect("tempdir");
    let (ready, go) = (signals.path().join("ready"), signals.path().join("go"));
    let command = format!(
        "mv c a; rm -rf d; mv priv d; touch {}; while [ ! -e {} ]; do sleep 0.02; done",
        ready.display(),
        go.display()
    );
    let test = workspace(&agent, 0, &command, "timeout = \"60s\",");
    let ws = test.path().join("ws");
    std::fs::create_dir_all(ws.join("d")).expect("mkdir");
    std::fs::create_dir_all(ws.join("priv")).expect("mkdir");
    std::fs::write(ws.join("a"), "public\n").expect("write");
    std::fs::write(ws.join("c"), "SECRET\n").expect("write");
    std::fs::write(ws.join("priv/s"), "SECRET2\n").expect("write");
    for (path, owner) in [("a", 1234), ("d", 1234), ("c", 1000), ("priv", 1000), ("priv/s", 1000)] {
        chown(ws.join(path), Some(owner), Some(owner)).expect("chown");
    }
    std::fs::set_permissions(ws.join("c"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(ws.join("priv"), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut run = test.spawn(&["run", "tasks.lua"]);
    assert!(crate::support::wait_for_path(&ready), "the task did not start");
    std::fs::rename(ws.join("c"), ws.join("c.bak")).expect("mv aside");
    std::fs::rename(ws.join("priv"), ws.join("priv.bak")).expect("mv aside");
    std::fs::write(&go, "").expect("go");
    let code = crate::support::wait_exit(&mut run);
    assert_eq!(code, Some(0), "{}", crate::support::stderr_of(&mut run));
    assert_eq!(test.read("ws/a"), "SECRET\n");
    for path in ["a", "d"] {
        let meta = std::fs::metadata(ws.join(path)).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path}: the runner's, not 1234's");
    }
}

/// A file moved over another from a path with a newline, and a long path with one: they
/// travel (a PAX record cannot carry a newline) and land as a run here leaves them.
#[test]
fn moves_from_and_long_paths_with_a_newline_land_as_here() {
    let agent = Agent::start(&[]);
    let long = format!("long\nname{}", "L".repeat(120));
    let command = format!("mv \"$(printf 'n\\nl')\" a; echo more >> \"$(printf '{}')\"", long.replace('\n', "\\n"));
    let test = workspace(&agent, 0, &command, "");
    let set_up = |ws: &Path| {
        std::fs::create_dir_all(ws).expect("mkdir");
        std::fs::write(ws.join("n\nl"), "moved\n").expect("write");
        std::fs::write(ws.join("a"), "replaced\n").expect("write");
        std::fs::write(ws.join(&long), "long\n").expect("write");
    };
    let there = there_as_here(&test, &set_up, &command, "find . -type f -exec md5sum {} + | LC_ALL=C sort");
    assert_eq!(there.len(), 2, "{there:?}");
    assert_eq!(test.read("ws/a"), "moved\n");
}

/// A warning that names a path that is not UTF-8 (a setuid bit not carried, before the task and
/// after it) is shown, its byte replaced, and the task stays a success with its changes here.
#[test]
fn a_warning_naming_a_path_that_is_not_utf8_does_not_fail_the_task() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let agent = Agent::start(&[]);
    let test =
        workspace(&agent, 1, "echo line >> log.txt; f=$(printf '\\376'); echo x > \"$f\"; chmod 4755 \"$f\"", "")
            .write("ws/log.txt", "base\n");
    let already = test.path().join("ws").join(std::ffi::OsStr::from_bytes(b"\xff"));
    std::fs::write(&already, "s\n").expect("write");
    std::fs::set_permissions(&already, std::fs::Permissions::from_mode(0o2755)).expect("chmod");
    let run = test.run(&["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "--- stderr\n{}", run.stderr);
    assert_eq!(test.read("ws/log.txt"), "base\nline\n");
    let made = test.path().join("ws").join(std::ffi::OsStr::from_bytes(b"\xfe"));
    assert_eq!(std::fs::read(&made).expect("the file the task made"), b"x\n");
    assert!(run.stderr.contains('\u{fffd}'), "the warnings, their byte replaced: {}", run.stderr);
}

/// `retries` on an agent: a failed attempt's changes are not applied by default, so each
/// attempt starts from the workspace here; with `sync_back = "always"` they land before the
/// next attempt, and the attempts count on as they do here.
#[test]
fn retries_on_an_agent_start_from_the_workspace_here_unless_every_attempt_is_brought_back() {
    let agent = Agent::start(&[]);
    let command = "n=$(( $(cat cnt) + 1 )); echo $n > cnt; echo attempt $n; [ $n -ge 3 ]";
    for (fields, code, count) in [("", 1, "0\n"), ("workspace = { sync_back = \"always\" },", 0, "3\n")] {
        let fields = format!("retries = 3, retry_delay = \"10ms\", {fields}");
        let test = workspace(&agent, 1, command, &fields).write("ws/cnt", "0\n");
        let run = test.run(&["run", "tasks.lua"]);
        assert_eq!(run.code, Some(code), "{fields}: --- stderr\n{}", run.stderr);
        assert_eq!(test.read("ws/cnt"), count, "{fields}");
    }
}

/// With `workspace.setuid = true`, a setuid or setgid program the task gave another owner or
/// group (`chown 65534 prog; chmod u+s prog`) is that owner's here, as a run here leaves it —
/// not the runner's own (root's) setuid program — whether made anew, rewritten, or the same
/// bytes with only its owner and mode changed. A master that cannot give that owner (not
/// root) clears the bit and says so.
#[test]
fn a_setuid_file_the_task_gave_another_owner_is_that_owner_s_here_never_the_runner_s() {
    use std::os::unix::fs::PermissionsExt;
    if skipped_unless_root("to give files to other users") {
        return;
    }
    let agent = Agent::start(&[]);
    let command = "cp /bin/true prog; chown 65534 prog; chmod 4755 prog; \
                   cp /bin/true grp; chgrp 100 grp; chmod 2755 grp; \
                   echo '#' >> old; chown 65534:100 old; chmod 6755 old; \
                   chown 65534 same; chmod 4755 same; cp /bin/true mine; chmod 4755 mine";
    let test = workspace(&agent, 1, command, "workspace = { setuid = true },");
    let set_up = |ws: &Path| {
        std::fs::write(ws.join("old"), "#!/bin/sh\n").expect("write");
        std::fs::write(ws.join("same"), "#!/bin/sh\n").expect("write");
    };
    let owners = "stat -c '%n %u:%g %a' prog grp old same mine";
    let there = there_as_here(&test, &set_up, command, owners);
    assert_eq!(
        there,
        ["prog 65534:0 4755", "grp 0:100 2755", "old 65534:100 6755", "same 65534:0 4755", "mine 0:0 4755"]
    );

    // A master that is not root: the owners it cannot give, it does not; nor the bits.
    let test = workspace(&agent, 1, command, "workspace = { setuid = true },");
    set_up(&test.path().join("ws"));
    test.hand_to(1000, 1000);
    let run = run_as_a_user_id(&test, 1000, &["run", "tasks.lua"]).expect_code(0);
    let ws = test.path().join("ws");
    let there = here(&ws, owners);
    assert_eq!(
        there,
        ["prog 1000:1000 755", "grp 1000:1000 755", "old 1000:1000 755", "same 1000:1000 755", "mine 1000:1000 4755"]
    );
    assert!(run.stderr.contains("cannot give here"), "{}", run.stderr);
    let mode = std::fs::metadata(ws.join("prog")).expect("prog").permissions().mode();
    assert_eq!(mode & 0o6000, 0, "not the runner's setuid program");
}

/// A remote function task whose own `pcall` catches its timeout in a loop is stopped as one
/// without: it fails "timed out", and nothing of it keeps running on the agent (its thread
/// spun there for ever, its slot reported free).
#[test]
fn a_remote_task_that_catches_its_timeout_in_a_pcall_loop_stops_on_the_agent_too() {
    let agent = Agent::start(&[]);
    let test = Test::new().write("ws/f", "f\n").write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n  \
             {{ name = \"spin\", agent = \"box\", timeout = \"1s\", command = function()\n    \
               while true do pcall(function() while true do end end) end\n  end }},\n}} }} }}\n",
            agent.address
        ),
    );
    let started = std::time::Instant::now();
    let run = test.run(&["run", "tasks.lua"]).expect_code(1);
    assert!(run.stderr.contains("timed out after 1.00s"), "{}", run.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "stopped at its timeout, not the master's backstop"
    );
    // The agent's CPU time stands still once the task is over.
    let cpu = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", agent.pid())).expect("stat");
        let fields: Vec<&str> = stat.rsplit(')').next().expect("fields").split_whitespace().collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = cpu();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let ticks = cpu() - before;
    assert!(ticks < 50, "the agent burned {ticks} ticks in a second after the task ended");
}

/// A task stopped by its `timeout` leaves what it did before: with `sync_back = "always"` the
/// agent's run comes back as a run here leaves it — a shell command killed mid-sleep, and a
/// function task that never yields — and fails with the same message.
#[test]
fn a_task_stopped_by_its_timeout_brings_back_what_it_did_with_sync_back_always() {
    let agent = Agent::start(&[]);
    let tasks = |on_agent: bool| {
        let at = if on_agent { "agent = \"box\", " } else { "" };
        format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n  \
             {{ name = \"sh\", {at}timeout = \"1s\", workspace = {{ sync_back = \"always\" }},\n    \
               command = \"echo progress > log.txt; echo changed > f0.txt; sleep 60\" }},\n  \
             {{ name = \"lua\", {at}timeout = \"1s\", workspace = {{ sync_back = \"always\" }},\n    \
               command = function() local f = io.open('spun.txt', 'w'); f:write('spun'); f:close(); while true do end end }},\n\
             }} }} }}\n",
            agent.address
        )
    };
    let test = Test::new()
        .write("local/f0.txt", "file 0\n")
        .write("ws/f0.txt", "file 0\n")
        .write("local.lua", &tasks(false).replace("workdir = \"ws\"", "workdir = \"local\""))
        .write("remote.lua", &tasks(true));
    let started = std::time::Instant::now();
    let here = test.run(&["run", "-j", "2", "local.lua"]).expect_code(1);
    let there = test.run(&["run", "-j", "2", "remote.lua"]).expect_code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the tasks were stopped at their timeout");
    for run in [&here, &there] {
        for task in ["g/sh", "g/lua"] {
            assert!(
                run.stderr.lines().any(|line| line.starts_with(task) && line.contains("timed out after 1.00s")),
                "{task}:\n{}",
                run.stderr
            );
        }
    }
    let tree = |dir: &str| crate::support::tree::Tree::read(&test.path().join(dir), &|_| false);
    tree("ws").assert_same(&tree("local"), "the tree the timed-out tasks left on the agent, brought back");
    assert_eq!(test.read("ws/log.txt"), "progress\n");
    assert_eq!(test.read("ws/spun.txt"), "spun");
}

/// A file the task moved to a name the rules leave out (`*.bak`, into an excluded `build/`)
/// never comes back under that name: its deletion is not carried either, or the only copy of
/// its bytes here would be lost; a warning names both paths. A plain deletion still lands.
#[test]
fn a_file_moved_to_an_excluded_name_is_kept_here_not_deleted() {
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        0,
        "mv notes.txt notes.bak; mkdir build; mv sub/data.csv build/; rm gone.txt twin.txt empty.txt; touch build/stamp",
        "",
    )
    .write("ws/.slothignore", "*.bak\nbuild\n")
    .write("ws/notes.txt", "my notes\n")
    .write("ws/twin.txt", "my notes\n")
    .write("ws/empty.txt", "")
        .write("ws/sub/data.csv", "a,b\n")
        .write("ws/gone.txt", "bye\n");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("ws/notes.txt"), "my notes\n", "{}", run.stderr);
    assert_eq!(test.read("ws/sub/data.csv"), "a,b\n", "{}", run.stderr);
    // Deleted, not moved: a file of the same bytes as one moved (one copy keeps one file), an
    // empty file beside an empty excluded one (no bytes to lose).
    for gone in ["gone.txt", "twin.txt", "empty.txt"] {
        assert!(!test.path().join("ws").join(gone).exists(), "{gone}: a plain deletion lands\n{}", run.stderr);
    }
    assert!(!test.path().join("ws/notes.bak").exists() && !test.path().join("ws/build").exists());
    for (path, kept_as) in [("notes.txt", "notes.bak"), ("sub/data.csv", "build/data.csv")] {
        assert!(
            run.stderr
                .lines()
                .any(|line| line.contains(&format!("'{path}' was deleted by the task, its bytes kept as '{kept_as}'"))),
            "{path}:\n{}",
            run.stderr
        );
    }
}

/// The workspace directory moved away and another put at its path while a remote task ran:
/// the task's changes are a conflict, never written into the other directory.
#[test]
fn a_workspace_directory_replaced_while_its_remote_task_ran_is_a_conflict_not_written_into() {
    let agent = Agent::start(&[]);
    let marks = tempfile::tempdir().expect("tempdir");
    let started = marks.path().join("started").display().to_string();
    let test = Test::new().write("ws/f", "a\n").write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ workdir = \"ws\", agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n  \
             {{ name = \"remote\", agent = \"box\", command = \"touch '{started}'; sleep 1; echo result > new\" }},\n  \
             {{ name = \"swap\", timeout = \"20s\", command = \"while [ ! -e '{started}' ]; do sleep 0.02; done; \
                cd .. && mv ws ws.old && mkdir ws && echo other > ws/keep\" }},\n}} }} }}\n",
            agent.address
        ),
    );
    let run = test.run(&["run", "-j", "2", "tasks.lua"]).expect_code(1);
    assert!(
        run.stderr.contains("conflict") && run.stderr.contains("another directory than the one the task started from"),
        "{}",
        run.stderr
    );
    assert!(!test.path().join("ws/new").exists() && !test.path().join("ws.old/new").exists(), "{}", run.stderr);
    assert_eq!(test.read("ws/keep"), "other\n");
    assert_eq!(test.read("ws.old/f"), "a\n");
}

/// Two names of one file, both in the workspace, the task appending through one: both show
/// the new content here, as one file, and no warning says another name keeps the old one.
#[test]
fn a_file_with_both_its_names_in_the_workspace_is_replaced_without_a_warning_about_other_names() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 0, "echo more >> b", "").write("ws/a", "hi\n");
    std::fs::hard_link(test.path().join("ws/a"), test.path().join("ws/b")).expect("ln");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(!run.stderr.contains("keep the old one"), "{}", run.stderr);
    let (a, b) = (
        std::fs::metadata(test.path().join("ws/a")).expect("a"),
        std::fs::metadata(test.path().join("ws/b")).expect("b"),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one file, two names");
    assert_eq!(test.read("ws/a"), "hi\nmore\n");
}

/// A directory whose files the task moved to an excluded name, made a link in their place:
/// those bytes can neither stay here nor come back, so nothing of the task is carried, and
/// the message says which and what to do.
#[test]
fn a_directory_moved_to_an_excluded_name_and_replaced_carries_nothing_back_and_says_why() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, 0, "mkdir -p releases && mv current releases/v1 && ln -s releases/v1 current", "")
        .write("ws/.slothignore", "releases\n")
        .write("ws/current/app", "app v1\n");
    let before = crate::support::tree::Tree::read(&test.path().join("ws"), &|_| false);
    let run = test.run(&["run", "tasks.lua"]).expect_code(1);
    assert!(
        run.stderr.contains("current/app: moved by the task to 'releases/v1/app'")
            && run.stderr.contains("'current' was made a symlink"),
        "{}",
        run.stderr
    );
    crate::support::tree::Tree::read(&test.path().join("ws"), &|_| false).assert_same(&before, "nothing carried back");
}

/// A name the task made a hard link to another file (`rm a; ln c a`): the group is that other
/// file, whose owner it keeps — not the owner of the file the name held before.
#[test]
fn a_name_relinked_to_another_file_gives_the_group_that_file_s_owner() {
    use std::os::unix::fs::chown;
    if skipped_unless_root("to give files to other users") {
        return;
    }
    let agent = Agent::start(&[]);
    let command = "rm a; ln c a; echo more >> c";
    let test = workspace(&agent, 0, command, "");
    let set_up = |ws: &Path| {
        std::fs::create_dir_all(ws).expect("mkdir");
        std::fs::write(ws.join("a"), "A\n").expect("write");
        std::fs::write(ws.join("c"), "C\n").expect("write");
        chown(ws.join("a"), Some(1000), Some(1000)).expect("chown");
        chown(ws.join("c"), Some(1002), Some(1002)).expect("chown");
        std::fs::hard_link(ws.join("c"), ws.join("c2")).expect("ln");
    };
    let (ws, local) = (test.path().join("ws"), test.path().join("local"));
    set_up(&ws);
    set_up(&local);
    here(&local, command);
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let owners = "stat -c '%n %u:%g %a %h' a c c2";
    let there = here(&ws, owners);
    assert_eq!(there, here(&local, owners), "after the remote run, then after the same commands here");
    assert!(there.iter().all(|line| line.contains(" 1002:1002 ")), "{there:?}");
}

/// Whether a test that needs root (`why`) is skipped, saying so: the tests run as root.
fn skipped_unless_root(why: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root {why}");
    }
    !root
}

/// An ACL in its stored form: version 2, then each entry's tag and permissions, for entries
/// that name no user or group.
fn acl(entries: &[(u16, u16)]) -> Vec<u8> {
    let mut bytes = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in entries {
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&perm.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    bytes
}

/// Whether a test of extended attributes is skipped, saying so: the filesystem at `dir` keeps
/// none.
fn skipped_without_attributes(dir: &Path) -> bool {
    let kept = xattr::set(dir, "user.probe", b"1").is_ok();
    if !kept {
        eprintln!("skipped: the filesystem of {} keeps no extended attributes", dir.display());
    }
    !kept
}
