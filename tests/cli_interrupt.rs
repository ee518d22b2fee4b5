//! Ctrl-C: the run stops with exit 130 and the processes its tasks started are killed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, binary};

const WAIT: Duration = Duration::from_secs(20);

fn wait_for_file(path: &std::path::Path) -> String {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(started.elapsed() < WAIT, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')),
    }
}

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
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sloth-runner");
    let sleeper = wait_for_file(&test.path().join("sleeper.pid"));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            panic!("sloth-runner did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(&sleeper) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(is_gone(&sleeper), "the task's process {sleeper} outlived the interrupted run");
    assert!(!test.exists("after-ran"));
}
