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
