//! The tree reproduced exactly, judged by the differential: hard links, all twelve mode bits,
//! named pipes, chmod as chmod, the master's umask, and the workspace at the master's own path
//! (`same_path`). Where something is deliberately not carried (setuid without opting in,
//! sockets), the run's output must name it.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{Differential, Node, Order, Side, age, available, chmod, node, put, tree_differences};

fn hard_link(root: &Path, from: &str, to: &str) {
    fs::hard_link(root.join(from), root.join(to)).unwrap_or_else(|e| panic!("ln {from} {to}: {e}"));
}

fn mkfifo(root: &Path, path: &str, mode: u32) {
    let status = Command::new("mkfifo").arg("-m").arg(format!("{mode:o}")).arg(root.join(path)).status();
    assert!(status.is_ok_and(|s| s.success()), "mkfifo {path}");
}

fn mode_of(root: &Path, path: &str) -> u32 {
    fs::symlink_metadata(root.join(path)).unwrap_or_else(|e| panic!("lstat {path}: {e}")).mode() & 0o7777
}

#[test]
fn a_hard_link_appended_through_either_name_stays_one_file() {
    let harness = Differential::new(|ws| {
        put(ws, b"a.txt", "one\n");
        put(ws, b"d/c.txt", "");
        fs::remove_file(ws.join("d/c.txt")).expect("rm");
        hard_link(ws, "a.txt", "b.txt");
        hard_link(ws, "a.txt", "d/c.txt");
        put(ws, b"alone.txt", "alone\n");
        age(ws);
    });
    harness
        .step("echo two >> b.txt\ncat a.txt d/c.txt\nstat -c %h a.txt")
        .order(Order::NoInversions)
        .expect_local(|local| {
            assert_eq!(local.stdout, ["one", "two", "one", "two", "3"]);
            assert_eq!(local.tree.links.len(), 1, "{:?}", local.tree.links);
        })
        .check();
    harness
        .step("echo three >> a.txt\ncat b.txt\nln alone.txt alone-too.txt\necho more >> alone-too.txt\ncat alone.txt")
        .order(Order::NoInversions)
        .expect_local(|local| assert_eq!(local.tree.links.len(), 2, "{:?}", local.tree.links))
        .check();
    // A name taken out of a group (a copy renamed over it), and a group that loses its first name.
    harness
        .step("cp b.txt tmp && mv tmp b.txt\necho four >> b.txt\nrm a.txt\necho five >> d/c.txt\nstat -c %h d/c.txt")
        .order(Order::NoInversions)
        .check();
}

#[test]
fn setgid_and_sticky_directories_keep_their_bits_and_pass_them_on() {
    let harness = Differential::new(|ws| {
        put(ws, b"shared/readme", "shared\n");
        put(ws, b"scratch/readme", "scratch\n");
        age(ws);
        chmod(ws, "shared", 0o2775);
        chmod(ws, "scratch", 0o1777);
    });
    harness
        .step(
            "mkdir shared/sub && echo x > shared/sub/f\nmkdir -m 1777 tmpdir\nmkdir -m 2750 made-setgid\n\
             stat -c '%a %n' shared shared/sub scratch tmpdir made-setgid",
        )
        .expect_local(|local| {
            assert_eq!(
                local.stdout,
                ["2775 shared", "2755 shared/sub", "1777 scratch", "1777 tmpdir", "2750 made-setgid"]
            );
        })
        .check();
}

#[test]
fn setuid_files_travel_both_ways_when_the_pipeline_opts_in() {
    let harness = Differential::new(|ws| {
        put(ws, b"tool", "#!/bin/sh\necho tool\n");
        put(ws, b"group-tool", "#!/bin/sh\n");
        age(ws);
        chmod(ws, "tool", 0o4755);
        chmod(ws, "group-tool", 0o2755);
    });
    harness
        .step("stat -c '%a %n' tool group-tool\necho new > new-tool && chmod 4750 new-tool\nstat -c '%a' new-tool")
        .workspace("setuid = true")
        .expect_local(|local| assert_eq!(local.stdout, ["4755 tool", "2755 group-tool", "4750"]))
        .check();
}

#[test]
fn setuid_files_without_opting_in_lose_the_bits_and_the_output_says_so() {
    let harness = Differential::new(|ws| {
        put(ws, b"tool", "#!/bin/sh\necho tool\n");
        put(ws, b"plain", "plain\n");
        age(ws);
        chmod(ws, "tool", 0o4755);
    });
    let command = "stat -c '%a %n' tool\necho new > new-tool && chmod 6755 new-tool";
    let remote = harness.run_side(Side::Remote, command, "", None);
    let context = format!("{}\n--- agent log\n{}", remote.log, harness.agent.log());
    assert_eq!(remote.code, Some(0), "{context}");
    assert_eq!(remote.stdout, ["755 tool"], "the agent's copy has no setuid bit\n{context}");
    assert!(
        remote.log.contains("'tool': setuid and setgid bits are not carried to the agent (workspace.setuid = true"),
        "{context}"
    );
    assert!(
        remote.log.contains("'new-tool': setuid and setgid bits from the agent were cleared (workspace.setuid = true"),
        "{context}"
    );
    assert_eq!(mode_of(&remote.workspace, "tool"), 0o4755, "the master's own file keeps its bits");
    assert_eq!(mode_of(&remote.workspace, "new-tool"), 0o755, "what came back has no setuid bit");
}

#[test]
fn named_pipes_round_trip_with_their_modes() {
    let harness = Differential::new(|ws| {
        put(ws, b"readme", "pipes\n");
        mkfifo(ws, "pipe", 0o640);
        mkfifo(ws, "old-pipe", 0o600);
        age(ws);
    });
    harness
        .step("mkfifo -m 620 new-pipe\nchmod 660 pipe\nrm old-pipe\nstat -c '%F %a %n' pipe new-pipe")
        .expect_local(|local| {
            assert_eq!(local.stdout, ["fifo 660 pipe", "fifo 620 new-pipe"]);
            assert!(matches!(node(local, "new-pipe"), Some(Node::Special { .. })));
        })
        .check();
}

#[test]
fn a_socket_the_task_leaves_is_named_not_dropped_silently() {
    let test = "a_socket_the_task_leaves_is_named_not_dropped_silently";
    if !available("python3 -c 'import socket'", test) {
        return;
    }
    let harness = Differential::new(|ws| put(ws, b"readme", "sockets\n"));
    let command = "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('sock')\"\necho made > made.txt";
    let remote = harness.run_side(Side::Remote, command, "", None);
    let context = format!("{}\n--- agent log\n{}", remote.log, harness.agent.log());
    assert_eq!(remote.code, Some(0), "{context}");
    assert!(remote.log.contains("'sock' is a socket: not carried back to the master"), "{context}");
    assert!(remote.workspace.join("made.txt").exists(), "the rest came back\n{context}");
}

#[test]
fn a_chmod_only_change_is_a_chmod_the_file_and_its_time_stay() {
    let harness = Differential::new(|ws| {
        put(ws, b"script.sh", "#!/bin/sh\necho hi\n");
        put(ws, b"data.txt", "data\n");
        age(ws);
    });
    let inode = |path: &str| fs::symlink_metadata(harness.remote().join(path)).expect("lstat").ino();
    let before = (inode("script.sh"), inode("data.txt"));
    harness
        .step("chmod 755 script.sh\nchmod 600 data.txt")
        .expect_local(|local| {
            assert_eq!(local.mtime("script.sh"), local.before.mtimes.get(b"script.sh".as_slice()).copied());
        })
        .check();
    assert_eq!((inode("script.sh"), inode("data.txt")), before, "changed in place, not rewritten");
}

#[test]
fn the_task_runs_under_the_masters_umask() {
    let harness = Differential::new(|ws| {
        put(ws, b"readme", "umask\n");
        age(ws);
    });
    harness
        .step("umask\necho x > made.txt\nmkdir made-dir\nmkfifo made-pipe\nstat -c '%a %n' made.txt made-dir made-pipe")
        .umask(0o027)
        .expect_local(|local| {
            assert_eq!(local.stdout, ["0027", "640 made.txt", "750 made-dir", "640 made-pipe"]);
        })
        .check();
}

/// Runs `command` here in a workspace, then — on an identical copy at the same path — on the
/// agent with `same_path = true`, and compares both trees and outputs exactly.
#[test]
fn a_virtualenv_made_with_same_path_is_byte_identical_to_a_local_one() {
    let test = "a_virtualenv_made_with_same_path_is_byte_identical_to_a_local_one";
    if !available("python3 -c 'import venv'", test) || !available("unshare --mount --propagation private true", test) {
        return;
    }
    let harness = Differential::new(|ws| {
        put(ws, b"app.py", "import sys\nprint(sys.prefix)\n");
        age(ws);
    });
    let command = "python3 -m venv --without-pip .venv\n.venv/bin/python app.py\npwd";
    let fields = "same_path = true";
    let workspace = harness.local();
    let local = harness.run_in(&workspace, false, "here", (command, fields, None));
    assert_eq!(local.code, Some(0), "the local run failed — a bug in the test\n{}", local.log);
    // The same starting tree at the same path: the untouched copy goes where the first was.
    let ran_here = harness.root.path().join("ran-here");
    fs::rename(&workspace, &ran_here).expect("moving the local result aside");
    crate::support::tree::copy_tree(&harness.remote(), &workspace);
    let remote = harness.run_in(&workspace, true, "there", (command, fields, None));
    let context = format!("{}\n--- agent log (tail)\n{}", remote.log, super::tail(&harness.agent.log(), 20));
    assert_eq!(remote.code, Some(0), "{context}");
    assert_eq!(local.stdout, remote.stdout, "{context}");
    let mut problems = tree_differences(&local.tree, &remote.tree, &[]);
    problems.extend(super::order_inversions(&local.tree, &remote.tree, &[]));
    assert!(problems.is_empty(), "same_path: the trees differ:\n- {}\n{context}", problems.join("\n- "));
    for file in [".venv/pyvenv.cfg", ".venv/bin/activate"] {
        let ours = fs::read(ran_here.join(file)).expect("reading the local file");
        assert!(
            ours.windows(workspace.as_os_str().len()).any(|w| w == workspace.as_os_str().as_encoded_bytes()),
            "{file} names the workspace's path (the test's premise)"
        );
        assert_eq!(ours, fs::read(workspace.join(file)).expect("reading the remote file"), "{file}");
    }
    let run = super::on_master(&workspace, &workspace.join(".venv/bin/python").display().to_string(), &["app.py"]);
    assert_eq!(run.stdout.trim(), workspace.join(".venv").display().to_string(), "{}", run.stderr);
}

#[test]
fn same_path_refused_by_an_agent_that_cannot_is_a_clear_failure_before_running() {
    // The agent's work directory inside the master's path: the mount would hide it.
    let harness = Differential::new(|ws| put(ws, b"readme", "x\n"));
    let inside = harness.remote().join("agent-work");
    let mut agent = crate::support::agent::Agent::start(&["--work-dir", &inside.display().to_string()]);
    let run = run_same_path(&harness, "refused", &harness.remote(), &agent.address, "echo ran > ran.txt");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("workspace.same_path: cannot show the workspace at"), "{}", run.stderr);
    assert!(run.stderr.contains("--work-dir elsewhere"), "{}", run.stderr);
    assert!(!harness.remote().join("ran.txt").exists(), "nothing ran");
    agent.stop();
}

#[test]
fn same_path_makes_a_mount_point_the_agent_lacks_and_removes_it_after() {
    let test = "same_path_makes_a_mount_point_the_agent_lacks_and_removes_it_after";
    if !available("unshare --mount --propagation private true", test) {
        return;
    }
    let harness = Differential::new(|ws| put(ws, b"readme", "x\n"));
    // The master runs in a mount namespace of its own, where the workspace lives on a tmpfs:
    // the agent (outside) has `hidden/` but nothing below it.
    let hidden = harness.root.path().join("hidden");
    fs::create_dir(&hidden).expect("mkdir hidden");
    let workspace = hidden.join("deep/ws");
    let pipeline = harness.root.path().join("pipelines/hidden.lua");
    same_path_pipeline(&pipeline, &workspace, &harness.agent.address, "pwd; cat readme; echo made > made.txt");
    let script = format!(
        "mount -t tmpfs none '{hidden}' && mkdir -p '{ws}' && echo here > '{ws}/readme' && \"$0\" run '{pipeline}' && \
         echo \"came back: $(cat '{ws}/made.txt')\"",
        hidden = hidden.display(),
        ws = workspace.display(),
        pipeline = pipeline.display()
    );
    let run = crate::support::Run::of(in_own_mount_namespace(&script));
    let context = format!("{}\n{}\n--- agent log\n{}", run.stdout, run.stderr, harness.agent.log());
    assert_eq!(run.code, Some(0), "{context}");
    assert!(run.stderr.contains(&format!("box/t | {}", workspace.display())), "the task ran at the path\n{context}");
    assert!(run.stderr.contains("box/t | here"), "it saw the master's file\n{context}");
    assert!(run.stdout.contains("came back: made"), "{context}");
    assert!(!hidden.join("deep").exists(), "the directories made as a mount point are gone\n{context}");
}

/// `setpriv` as nobody: an agent that is not root.
const AS_NOBODY: &[&str] = &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

#[test]
fn an_agent_that_is_not_root_honours_same_path_in_a_user_namespace_of_its_own() {
    let test = "an_agent_that_is_not_root_honours_same_path_in_a_user_namespace_of_its_own";
    // nobody must be able to make a user namespace, and to run this build of the binary.
    let probe = format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups unshare --user --map-current-user true && \
         setpriv --reuid=65534 --regid=65534 --clear-groups '{}' --version",
        crate::support::binary().display()
    );
    if !available(&probe, test) {
        return;
    }
    let harness = Differential::new(|ws| put(ws, b"readme", "from the master\n"));
    // nobody must reach the workspace's path (to mount over it) and write its work dir.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(harness.root.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let work = harness.root.path().join("nobody-work");
    fs::create_dir(&work).expect("mkdir");
    fs::set_permissions(&work, fs::Permissions::from_mode(0o777)).expect("chmod");
    let workspace = harness.remote();
    let pipeline = |address: &str| {
        run_same_path(&harness, "nobody", &workspace, address, "pwd; id -u; cat readme; echo made > made.txt")
    };
    let work_arg = work.display().to_string();

    let mut plain = crate::support::agent::Agent::start_wrapped(AS_NOBODY, &["--work-dir", &work_arg]);
    let refused = pipeline(&plain.address);
    plain.stop();
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains("started with --user-namespace; this one runs as uid 65534"), "{}", refused.stderr);
    assert!(!workspace.join("made.txt").exists(), "nothing ran");

    let mut agent =
        crate::support::agent::Agent::start_wrapped(AS_NOBODY, &["--work-dir", &work_arg, "--user-namespace"]);
    let run = pipeline(&agent.address);
    let context = format!("{}\n--- agent log\n{}", run.stderr, agent.log());
    agent.stop();
    assert_eq!(run.code, Some(0), "{context}");
    assert!(run.stderr.contains(&format!("box/t | {}", workspace.display())), "{context}");
    assert!(run.stderr.contains("box/t | 65534"), "the task keeps the agent's user\n{context}");
    assert!(run.stderr.contains("box/t | from the master"), "{context}");
    assert_eq!(fs::read_to_string(workspace.join("made.txt")).expect("came back"), "made\n");
}

#[test]
fn a_file_split_from_its_group_and_a_chmod_through_another_name_match_a_local_run() {
    let harness = Differential::new(|ws| {
        put(ws, b"a", "hello\n");
        fs::create_dir(ws.join("d")).expect("mkdir");
        hard_link(ws, "a", "b");
        hard_link(ws, "a", "d/c");
        put(ws, b"solo", "x\n");
        age(ws);
    });
    harness.step("cp a tmp && mv tmp a\nchmod 700 b\nstat -c '%h %a' a b d/c").order(Order::NoInversions).check();
    harness
        .step("touch -d '2001-01-01 00:00:00' b\nchmod 640 d/c\nstat -c '%h %a' a b d/c")
        .order(Order::NoInversions)
        .check();
}

#[test]
fn a_file_with_a_name_outside_the_workspace_is_replaced_never_changed_in_place_and_the_output_says_so() {
    let harness = Differential::new(|ws| {
        put(ws, b"a", "shared\n");
        age(ws);
    });
    let outside = harness.root.path().join("outside-x");
    fs::hard_link(harness.remote().join("a"), &outside).expect("ln outside");
    let remote = harness.run_side(Side::Remote, "chmod 600 a", "", None);
    assert_eq!(remote.code, Some(0), "{}", remote.log);
    assert_eq!(mode_of(&remote.workspace, "a"), 0o600, "the task's chmod arrived");
    let outside_meta = fs::metadata(&outside).expect("stat outside");
    assert_eq!(outside_meta.mode() & 0o7777, 0o644, "nothing outside the workspace changed");
    assert!(
        remote.log.contains("'a': replaced; other names of the file here (hard links outside the workspace"),
        "{}",
        remote.log
    );
}

#[test]
fn touching_a_setuid_file_the_agent_saw_without_its_bits_keeps_them_here() {
    let harness = Differential::new(|ws| {
        put(ws, b"tool", "#!/bin/sh\n");
        put(ws, b"group-tool", "#!/bin/sh\n");
        age(ws);
        chmod(ws, "tool", 0o4755);
        chmod(ws, "group-tool", 0o2750);
    });
    let remote = harness.run_side(Side::Remote, "touch tool group-tool", "", None);
    assert_eq!(remote.code, Some(0), "{}", remote.log);
    assert_eq!(mode_of(&remote.workspace, "tool"), 0o4755, "{}", remote.log);
    assert_eq!(mode_of(&remote.workspace, "group-tool"), 0o2750, "{}", remote.log);
    assert_ne!(remote.mtime("tool"), remote.before.mtimes.get(b"tool".as_slice()).copied(), "the touch arrived");
}

#[test]
fn same_path_refuses_a_work_dir_reached_through_a_link_into_the_workspace() {
    let harness = Differential::new(|ws| put(ws, b"readme", "x\n"));
    let link = harness.root.path().join("link-to-remote");
    std::os::unix::fs::symlink(harness.remote(), &link).expect("symlink");
    let work = link.join("agent-work");
    let mut agent = crate::support::agent::Agent::start(&["--work-dir", &work.display().to_string()]);
    let run = run_same_path(&harness, "linked", &harness.remote(), &agent.address, "echo ran > ran.txt");
    agent.stop();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("--work-dir elsewhere"), "{}", run.stderr);
    assert!(!harness.remote().join("ran.txt").exists(), "nothing ran");
}

#[test]
fn same_path_works_where_the_workspace_path_is_not_utf8() {
    if !available("unshare --mount --propagation private true", "same_path_works_where_the_workspace_path_is_not_utf8")
    {
        return;
    }
    let harness = Differential::new(|ws| put(ws, b"readme", "odd\n"));
    let odd = harness.root.path().join(std::ffi::OsStr::from_bytes(b"we ird\xff [x]"));
    fs::rename(harness.remote(), &odd).expect("rename to an odd name");
    let link = harness.root.path().join("plain");
    std::os::unix::fs::symlink(&odd, &link).expect("symlink");
    let run = harness.run_in(
        &link,
        true,
        "odd",
        (
            "case \"$(pwd)\" in *\"$(printf '\\377')\"*) echo at the odd path;; esac\necho made > made.txt",
            "same_path = true",
            None,
        ),
    );
    assert_eq!(run.code, Some(0), "{}\n{}", run.log, harness.agent.log());
    assert_eq!(fs::read_to_string(odd.join("made.txt")).expect("came back"), "made\n");
    assert_eq!(run.stdout, ["at the odd path"], "the task ran at the odd path");
}

/// A pipeline at `workspace` on `address`, `same_path`, running `command`.
fn same_path_pipeline(path: &Path, workspace: &Path, address: &str, command: &str) {
    fs::write(
        path,
        format!(
            "TaskDefinitions = {{ g = {{ workdir = [==[{}]==], agents = {{ box = {{ address = \"{address}\" }} }},\n\
             tasks = {{ {{ name = \"t\", agent = \"box\", workspace = {{ same_path = true }}, command = [==[{command}]==] }} }} }} }}\n",
            workspace.display()
        ),
    )
    .expect("writing the pipeline");
}

/// Runs `command` with `same_path` on the agent at `address`, in `workspace`, through a
/// pipeline named `name`.
fn run_same_path(
    harness: &Differential,
    name: &str,
    workspace: &Path,
    address: &str,
    command: &str,
) -> crate::support::Run {
    let pipeline = harness.root.path().join(format!("pipelines/{name}.lua"));
    same_path_pipeline(&pipeline, workspace, address, command);
    let mut run = Command::new(crate::support::binary());
    run.arg("run").arg(&pipeline);
    crate::support::Run::of(run)
}

/// `sh -c script` in a mount namespace of its own (where the test mounts a tmpfs the agent
/// does not see), with the binary as `$0`.
fn in_own_mount_namespace(script: &str) -> Command {
    let mut command = Command::new("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", script]).arg(crate::support::binary());
    command
}

#[test]
fn mount_points_shared_by_concurrent_tasks_and_left_by_a_dead_agent_are_removed() {
    let test = "mount_points_shared_by_concurrent_tasks_and_left_by_a_dead_agent_are_removed";
    if !available("unshare --mount --propagation private true", test) {
        return;
    }
    let harness = Differential::new(|ws| put(ws, b"readme", "x\n"));
    let hidden = harness.root.path().join("hidden");
    fs::create_dir(&hidden).expect("mkdir hidden");
    let pipelines = harness.root.path().join("pipelines");

    // Two tasks at a/x/ws and a/y/ws at once: `a` is made for the first and needed by both.
    let (x, y) = (hidden.join("a/x/ws"), hidden.join("a/y/ws"));
    same_path_pipeline(&pipelines.join("x.lua"), &x, &harness.agent.address, "sleep 0.3; echo x > x.txt");
    same_path_pipeline(&pipelines.join("y.lua"), &y, &harness.agent.address, "sleep 0.6; echo y > y.txt");
    let script = format!(
        "mount -t tmpfs none '{hidden}' && mkdir -p '{x}' '{y}' && \
         {{ \"$0\" run '{px}' & \"$0\" run '{py}'; wait $! ; }} && cat '{x}/x.txt' '{y}/y.txt'",
        hidden = hidden.display(),
        x = x.display(),
        y = y.display(),
        px = pipelines.join("x.lua").display(),
        py = pipelines.join("y.lua").display(),
    );
    let run = crate::support::Run::of(in_own_mount_namespace(&script));
    assert_eq!(run.code, Some(0), "{}\n{}\n{}", run.stdout, run.stderr, harness.agent.log());
    assert_eq!(run.stdout, "x\ny\n", "{}", run.stderr);
    assert!(!hidden.join("a").exists(), "every directory made for the two mount points is gone");

    // An agent killed mid-task: the next one on the same --work-dir removes what it made.
    let work = harness.root.path().join("work");
    let work_arg = work.display().to_string();
    let agent = crate::support::agent::Agent::start(&["--work-dir", &work_arg]);
    let deep = hidden.join("deep/ws");
    same_path_pipeline(&pipelines.join("deep.lua"), &deep, &agent.address, "sleep 31.4159");
    let script = format!(
        "mount -t tmpfs none '{hidden}' && mkdir -p '{deep}' && exec \"$0\" run '{p}'",
        hidden = hidden.display(),
        deep = deep.display(),
        p = pipelines.join("deep.lua").display(),
    );
    let mut master =
        in_own_mount_namespace(&script).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("master");
    assert!(crate::support::wait_for_path(&deep), "the mount point was made");
    let _ = Command::new("kill").args(["-9", &agent.pid().to_string()]).status();
    let _ = Command::new("pkill").args(["-f", "sleep 31.4159"]).status();
    let code = crate::support::wait_exit(&mut master);
    assert_eq!(code, Some(1), "the master says the agent was lost: {}", crate::support::stderr_of(&mut master));
    assert!(hidden.join("deep").exists(), "left behind by the dead agent (the premise)");
    drop(agent);
    let mut next = crate::support::agent::Agent::start(&["--work-dir", &work_arg]);
    next.stop();
    assert!(!hidden.join("deep").exists(), "the next agent removed what the dead one made");
}

#[test]
fn same_path_reads_the_changes_from_the_agents_copy_even_if_the_mount_point_is_swapped_under_it() {
    let test = "same_path_reads_the_changes_from_the_agents_copy_even_if_the_mount_point_is_swapped_under_it";
    if !available("unshare --mount --propagation private true", test) {
        return;
    }
    let harness = Differential::new(|ws| put(ws, b"readme", "x\n"));
    let hidden = harness.root.path().join("hidden");
    fs::create_dir(&hidden).expect("mkdir hidden");
    let (started, go) = (harness.root.path().join("started"), harness.root.path().join("go"));
    let workspace = hidden.join("z/ws");
    let pipelines = harness.root.path().join("pipelines");
    same_path_pipeline(
        &pipelines.join("swap.lua"),
        &workspace,
        &harness.agent.address,
        &format!(
            "touch '{started}'; i=0; while [ ! -e '{go}' ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; echo new > new",
            started = started.display(),
            go = go.display()
        ),
    );
    let script = format!(
        "mount -t tmpfs none '{hidden}' && mkdir -p '{ws}/src' && echo 1 > '{ws}/f1' && echo 2 > '{ws}/src/f2' && \
         \"$0\" run '{p}' && ls '{ws}' '{ws}/src'",
        hidden = hidden.display(),
        ws = workspace.display(),
        p = pipelines.join("swap.lua").display(),
    );
    let mut master =
        in_own_mount_namespace(&script).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("master");
    assert!(crate::support::wait_for_path(&started), "the task started");
    // On the agent's side, the mount point is removed and made again: an empty directory.
    fs::remove_dir(&workspace).expect("rmdir the mount point");
    fs::create_dir(&workspace).expect("mkdir it again");
    fs::write(&go, "").expect("go");
    let code = crate::support::wait_exit(&mut master);
    let mut listing = String::new();
    std::io::Read::read_to_string(master.stdout.as_mut().expect("stdout"), &mut listing).expect("read");
    let log = crate::support::stderr_of(&mut master);
    assert_eq!(code, Some(0), "{log}\n{}", harness.agent.log());
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>().join(" "),
        format!("{ws}: f1 new src {ws}/src: f2", ws = workspace.display()),
        "{log}"
    );
}
