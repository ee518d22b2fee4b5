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
