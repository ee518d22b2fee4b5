//! Ctrl-C: the run stops with exit 130 and the processes its tasks started are killed.

use std::process::{Command, Stdio};

use crate::support::{Test, binary, wait_exit, wait_for_line_file, wait_until_gone};

#[test]
fn sigint_cancels_running_tasks_and_exits_130() {
    let test = Test::new().write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  g = {
    tasks = {
      { name = "long", command = "sleep 30 & echo $! > sleeper.pid; wait" },
      { name = "after", depends_on = "long", command = "touch after-ran" },
    },
  },
}
"#,
    );
    let mut child = Command::new(binary())
        .args(["run", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sloth-runner");
    let sleeper = wait_for_line_file(&test.path().join("sleeper.pid"));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert_eq!(wait_exit(&mut child), Some(130));
    assert!(wait_until_gone(&sleeper), "the task's process {sleeper} outlived the interrupted run");
    assert!(!test.exists("after-ran"));
}

/// Starts `sloth-runner run tasks.lua` in `test`.
fn start(test: &Test) -> std::process::Child {
    Command::new(binary())
        .args(["run", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sloth-runner")
}

#[test]
fn sigterm_cancels_local_and_remote_tasks_and_exits_143() {
    let agent = crate::support::agent::Agent::start(&[]);
    let test = Test::new();
    // Each task writes the pid of its sleep to a file outside the workspaces (`env` travels).
    let dir = test.path().to_path_buf();
    let pidfile = |name: &str| dir.join(format!("{name}.pid")).to_string_lossy().into_owned();
    let command = "[[sleep 30 & echo $! > \"$PIDFILE\"; wait]]";
    let test = test.write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "here", async = true, env = {{ PIDFILE = "{}" }}, command = {command} }},
                {{ name = "there", agent = "box", env = {{ PIDFILE = "{}" }}, command = {command} }},
            }} }} }}"#,
            agent.address,
            pidfile("here"),
            pidfile("there")
        ),
    );
    let mut child = start(&test);
    let here = wait_for_line_file(&test.path().join("here.pid"));
    let there = wait_for_line_file(&test.path().join("there.pid"));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill -TERM");
    assert_eq!(wait_exit(&mut child), Some(143));
    assert!(wait_until_gone(&here), "the local task's process {here} outlived the run");
    assert!(wait_until_gone(&there), "the remote task's process {there} outlived the run");
}

#[test]
fn sigint_while_the_pipeline_is_still_loading_exits_130() {
    let test =
        Test::new().write("tasks.lua", "io.open('loading', 'w'):close()\nwhile true do end\nTaskDefinitions = {}\n");
    let mut child = start(&test);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !test.exists("loading") {
        assert!(std::time::Instant::now() < deadline, "the pipeline never started loading");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert_eq!(wait_exit(&mut child), Some(130));
}

/// Sends `signals` to `child` so that they are all pending when it next runs (stopped, then
/// signalled, then continued): the second one is a second signal however fast the first is
/// handled.
fn signals_at_once(child: &std::process::Child, signals: &[&str]) {
    let pid = child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().expect("kill -STOP");
    for signal in signals {
        Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill");
    }
    Command::new("kill").args(["-CONT", &pid]).status().expect("kill -CONT");
}

/// A second signal exits at once — and kills the processes of the tasks still running on its
/// way: none outlives the run.
#[test]
fn a_second_signal_exits_at_once_and_the_tasks_processes_die_with_the_run() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = { { name = "long", command = "sleep 30 & echo $! > sleeper.pid; wait" } } } }"#,
    );
    let mut child = start(&test);
    let sleeper = wait_for_line_file(&test.path().join("sleeper.pid"));
    signals_at_once(&child, &["INT", "TERM"]);
    assert!(wait_exit(&mut child).is_some_and(|code| code == 130 || code == 143));
    assert!(wait_until_gone(&sleeper), "the task's process {sleeper} outlived the run");
}

/// `os.exit` in a task, like a second signal, ends the run at once: the other tasks' processes
/// go with it — those in a group of their own (coreutils `timeout`) too, found from each task's
/// command down.
#[test]
fn os_exit_in_a_task_takes_the_other_tasks_processes_in_groups_of_their_own_with_it() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
            { name = "svc", command = [[timeout 600 sh -c 'echo $$ > inner.pid; exec sleep 30']] },
            { name = "ex", command = function()
                while not io.open("inner.pid") do exec.run("sleep 0.02") end
                os.exit(3)
            end },
        } } }"#,
    );
    let mut child = Command::new(binary())
        .args(["run", "--jobs", "2", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the run");
    let inner = wait_for_line_file(&test.path().join("inner.pid"));
    assert_eq!(wait_exit(&mut child), Some(3));
    let gone = wait_until_gone(&inner);
    if !gone && let Ok(pid) = inner.parse() {
        crate::support::signal(pid, nix::sys::signal::Signal::SIGKILL);
    }
    assert!(gone, "the process {inner}, in a group of its own, outlived the run os.exit ended");
}

/// Two signals while a remote task's changes are being applied: the second waits for the apply
/// to be taken back (the first cancelled it), so the workspace is as it was — or as the task
/// left it, had the apply ended first — never half of each, and nothing of the apply is left
/// in it.
#[test]
fn two_signals_during_an_apply_leave_the_workspace_as_it_was_or_as_the_task_left_it() {
    let agent = crate::support::agent::Agent::start(&[]);
    let mut test = Test::new();
    for i in 0..400 {
        test = test.write(&format!("ws/f{i:03}"), "old\n");
    }
    let test = test.write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ workdir = "ws", agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "for f in f*; do echo new > $f; done; head -c 40000000 /dev/urandom > big.bin" }},
            }} }} }}"#,
            agent.address
        ),
    );
    let ws = test.path().join("ws");
    let mut child = start(&test);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let applying = || {
        std::fs::read_dir(&ws)
            .map(|entries| entries.flatten().any(|entry| entry.file_name().to_string_lossy().starts_with(".sloth")))
            .unwrap_or(false)
    };
    while !applying() {
        assert!(std::time::Instant::now() < deadline, "the apply never started");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before its apply was seen");
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    signals_at_once(&child, &["TERM", "INT"]);
    assert!(wait_exit(&mut child).is_some_and(|code| code == 130 || code == 143));
    let contents: std::collections::BTreeSet<String> =
        (0..400).map(|i| std::fs::read_to_string(ws.join(format!("f{i:03}"))).expect("read")).collect();
    let big = ws.join("big.bin").exists();
    assert!(
        (contents.len() == 1 && contents.contains("old\n") && !big)
            || (contents.len() == 1 && contents.contains("new\n") && big),
        "half-applied: contents {contents:?}, big.bin {big}"
    );
    let left: Vec<String> = std::fs::read_dir(&ws)
        .expect("ws")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".sloth"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A process a task's command put in a process group of its own (coreutils `timeout`, a
/// shell's `set -m` job) is killed with the task at its timeout and by Ctrl-C, here and on an
/// agent: it outlived both.
#[test]
fn processes_in_groups_of_their_own_die_with_a_timed_out_or_interrupted_task() {
    let agent = crate::support::agent::Agent::start(&[]);
    let test = Test::new();
    let dir = test.path().to_path_buf();
    let pidfile = |name: &str| dir.join(format!("{name}.pid")).to_string_lossy().into_owned();
    // (`; true`: the shell waits, rather than becoming `timeout` itself.)
    let command = "[[timeout 600 sh -c 'echo $$ > \"$PIDFILE\"; exec sleep 30'; true]]";
    let task = |name: &str, fields: &str| {
        format!(r#"{{ name = "{name}", env = {{ PIDFILE = "{}" }}, {fields} command = {command} }},"#, pidfile(name))
    };
    let test = test.write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n{}\n{}\n{}\n{}\n}} }} }}",
            agent.address,
            task("here_timeout", "timeout = \"1s\","),
            task("there_timeout", "agent = \"box\", timeout = \"1s\","),
            task("here_cancelled", ""),
            task("there_cancelled", "agent = \"box\","),
        ),
    );
    let mut child = Command::new(binary())
        .args(["run", "-j", "4", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sloth-runner");
    let pids: Vec<String> = ["here_timeout", "there_timeout", "here_cancelled", "there_cancelled"]
        .iter()
        .map(|name| wait_for_line_file(&test.path().join(format!("{name}.pid"))))
        .collect();
    for pid in &pids[..2] {
        assert!(wait_until_gone(pid), "the timed-out task's process {pid} outlived its timeout");
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert_eq!(wait_exit(&mut child), Some(130));
    for pid in &pids[2..] {
        assert!(wait_until_gone(pid), "the interrupted task's process {pid} outlived the run");
    }
}

/// A service a task started in a session of its own (`setsid`) is meant to outlive it: the
/// task's timeout does not kill it, though it is still the command's child then.
#[test]
fn a_service_started_with_setsid_outlives_its_task_s_timeout() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
  { name = "svc", timeout = "1s", command = "setsid sleep 30 & echo $! > svc.pid; sleep 10" },
} } }"#,
    );
    let run = test.run(&["run", "tasks.lua"]).expect_code(1);
    assert!(run.stderr.contains("timed out after 1.00s"), "{}", run.stderr);
    let service = test.read("svc.pid").trim().to_owned();
    let alive = std::path::Path::new(&format!("/proc/{service}")).exists();
    Command::new("kill").args(["-KILL", &service]).status().expect("kill");
    assert!(alive, "the service {service} was killed with its task");
}

/// A task whose own Lua io call blocks — `io.open` of a named pipe nobody writes to — runs no
/// instruction hook: the first Ctrl-C interrupts the call and ends the run (a second one was
/// needed), here; on an agent, the cancelled task's thread is interrupted too, and gives its
/// `--max-tasks` slot back (it held it for ever: every later task waited for it, queued).
#[test]
fn a_first_signal_stops_a_task_blocked_in_lua_io_here_and_on_an_agent() {
    let agent = crate::support::agent::Agent::start(&["--max-tasks", "1"]);
    for (agents, field) in
        [("", ""), (&*format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address), "agent = \"box\",")]
    {
        let test = Test::new();
        let (fifo, started, after) = (test.path().join("pipe"), test.path().join("started"), test.path().join("after"));
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        std::fs::write(
            test.path().join("tasks.lua"),
            format!(
                r#"TaskDefinitions = {{ g = {{ {agents} tasks = {{
                    {{ name = "blocked", {field} command = function()
                        local marker = io.open([[{}]], "w") marker:write("1\n") marker:close()
                        local pipe = io.open([[{}]], "r")
                        local after = io.open([[{}]], "w") after:write("ran on\n") after:close()
                        return true
                    end }},
                    {{ name = "quick", {field} command = "echo quick" }},
                }} }} }}"#,
                started.display(),
                fifo.display(),
                after.display()
            ),
        )
        .expect("pipeline");
        let mut child = test.spawn(&["run", "-t", "blocked", "tasks.lua"]);
        wait_for_line_file(&started);
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
        assert_eq!(wait_exit(&mut child), Some(130), "{field}: one signal ends the run");
        assert!(!after.exists(), "{field}: the task went on after its interrupted call");
        // The agent's only slot is free again: the next task runs at once, never queued.
        let quick = test.run(&["run", "-t", "quick", "tasks.lua"]).expect_code(0);
        assert!(!quick.stderr.contains("queued"), "{field}: {}", quick.stderr);
    }
}
