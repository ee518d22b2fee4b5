//! `run --output json`: stdout is a stream of JSON events, one per line, and nothing else.

use serde_json::Value;

use crate::support::Test;
use crate::support::agent::Agent;

/// Every stdout line as JSON, each checked for `v`, `type` and `ts`.
fn events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert_eq!(event["v"], 1, "{line}");
            assert!(event["type"].is_string() && event["ts"].as_f64().is_some_and(|ts| ts > 1.6e9), "{line}");
            event
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|event| event["type"].as_str().unwrap_or_default()).collect()
}

fn find<'a>(events: &'a [Value], kind: &str, task: &str) -> &'a Value {
    events
        .iter()
        .find(|event| {
            event["type"] == kind
                && (event["task"] == task || event["task"].as_str().is_some_and(|t| t.ends_with(&format!("/{task}"))))
        })
        .unwrap_or_else(|| panic!("no {kind} event for {task}: {events:#?}"))
}

#[test]
fn a_local_run_streams_its_plan_its_tasks_their_lines_and_its_end() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
  { name = "a", command = "echo hello; echo oops >&2" },
  { name = "b", depends_on = "a", command = function() log.info("from b", { n = 1 }); print("printed") return true, "fine" end },
  { name = "c", depends_on = "b", retries = 1, retry_delay = 0.01, command = "exit 3" },
  { name = "d", depends_on = "c", command = "true" },
} } }
"#,
    );
    let run = test.run(&["run", "--output", "json", "tasks.lua"]).expect_code(1);
    let events = events(&run.stdout);
    assert_eq!(
        types(&events),
        [
            "run_started",
            "task_started",
            "output",
            "output",
            "task_finished",
            "task_started",
            "log",
            "output",
            "task_finished",
            "task_started",
            "task_retrying",
            "task_finished",
            "task_skipped",
            "run_finished",
        ],
        "{}",
        run.stdout
    );
    let plan = &events[0]["groups"][0];
    assert_eq!(plan["name"], "g");
    assert_eq!(plan["tasks"][0]["depends_on"], serde_json::json!([]), "an empty list is a list");
    assert_eq!(plan["tasks"][2]["depends_on"], serde_json::json!(["b"]));
    assert_eq!(events[2]["line"], "hello");
    assert_eq!((events[3]["stream"].as_str(), events[3]["line"].as_str()), (Some("stderr"), Some("oops")));
    let a = find(&events, "task_finished", "a");
    assert_eq!(
        (a["status"].as_str(), a["exit_code"].as_i64(), a["where"].as_str()),
        (Some("succeeded"), Some(0), Some("local"))
    );
    assert_eq!((events[6]["level"].as_str(), events[6]["message"].as_str()), (Some("info"), Some("from b")));
    assert_eq!(
        (events[7]["stream"].as_str(), events[7]["line"].as_str(), events[7]["task"].as_str()),
        (Some("print"), Some("printed"), Some("g/b"))
    );
    assert_eq!(find(&events, "task_finished", "b")["message"], "fine");
    let retry = find(&events, "task_retrying", "c");
    assert_eq!((retry["attempt"].as_i64(), retry["attempts"].as_i64()), (Some(1), Some(2)));
    let c = find(&events, "task_finished", "c");
    assert_eq!(
        (c["status"].as_str(), c["exit_code"].as_i64(), c["attempts"].as_i64()),
        (Some("failed"), Some(3), Some(2))
    );
    assert_eq!(find(&events, "task_skipped", "d")["message"], "dependency 'c' failed");
    let end = events.last().expect("events");
    assert_eq!((end["exit_code"].as_i64(), end["ok"].as_bool()), (Some(1), Some(false)));
    assert_eq!(end["counts"], serde_json::json!({ "succeeded": 2, "failed": 1, "skipped": 1, "aborted": 0 }));
    // People's output is where it always is.
    assert!(
        run.stderr.contains("g/a | hello") && run.stderr.contains("printed") && run.stderr.contains("TASK"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_remote_task_says_where_it_ran_and_what_its_workspace_moved() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "a", agent = "box", command = "echo made > made.txt; echo said" }},
  {{ name = "b", agent = "box", depends_on = "a", command = function() print("from the agent") return true end }},
}} }} }}
"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "-o", "json", "tasks.lua"]).expect_code(0);
    let events = events(&run.stdout);
    assert_eq!(events[0]["groups"][0]["tasks"][0]["agents"], serde_json::json!(["box"]));
    let a = find(&events, "task_finished", "a");
    assert_eq!(a["where"], "box");
    assert_eq!((a["sync"]["down"].as_i64(), a["sync"]["up"].as_i64()), (Some(1), Some(1)), "{a}");
    let said = find(&events, "output", "a");
    assert_eq!(
        (said["line"].as_str(), said["task"].as_str(), said["from"].as_str()),
        (Some("said"), Some("g/a"), Some("box/a"))
    );
    let printed = events.iter().find(|event| event["stream"] == "print").expect("the agent's print");
    assert_eq!(printed["line"], "from the agent");
    assert_eq!(test.read("made.txt"), "made\n");
    assert_eq!(events.last().expect("events")["exit_code"], 0);
}

#[test]
fn a_run_that_cannot_start_still_ends_its_stream() {
    let test =
        Test::new().write("tasks.lua", "TaskDefinitions = { g = { tasks = { { name = 'a', comand = 'true' } } } }\n");
    let run = test.run(&["run", "-o", "json", "tasks.lua"]).expect_code(2);
    let events = events(&run.stdout);
    assert_eq!(types(&events), ["run_finished"], "{}", run.stdout);
    assert_eq!(events[0]["exit_code"], 2);
    assert!(events[0]["error"].as_str().is_some_and(|error| error.contains("comand")), "{}", run.stdout);
}

#[test]
fn a_dry_run_streams_the_plan_and_prints_it_for_people_on_stderr() {
    let test =
        Test::new().write("tasks.lua", "TaskDefinitions = { g = { tasks = { { name = 'a', command = 'true' } } } }\n");
    let run = test.run(&["run", "-d", "-o", "json", "tasks.lua"]).expect_code(0);
    let events = events(&run.stdout);
    assert_eq!(types(&events), ["run_started", "run_finished"]);
    assert_eq!((events[0]["dry_run"].as_bool(), events[1]["dry_run"].as_bool()), (Some(true), Some(true)));
    assert!(run.stderr.contains("plan for tasks.lua"), "{}", run.stderr);
}

#[test]
fn the_stream_and_return_both_want_stdout() {
    let test =
        Test::new().write("tasks.lua", "TaskDefinitions = { g = { tasks = { { name = 'a', command = 'true' } } } }\n");
    test.run(&["run", "--return", "-o", "json", "tasks.lua"]).expect_code(2).stderr_has("cannot be used with");
}

/// A run interrupted by a signal still ends its stream: the task it cancelled `aborted`, then
/// `run_finished` with the signal's exit code and the counts (the run's Lua code, which says
/// the end otherwise, is dropped then).
#[test]
fn an_interrupted_run_still_ends_its_stream() {
    use std::io::BufRead;
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
  { name = "a", command = "echo a" },
  { name = "b", depends_on = "a", command = "sleep 30" },
  { name = "c", depends_on = "b", command = "echo c" },
} } }"#,
    );
    let mut child = test.spawn_capturing(&["run", "-o", "json", "tasks.lua"]);
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).expect("read") > 0, "the stream ended early: {lines:?}");
        let started_b = line.contains("\"task_started\"") && line.contains("\"b\"");
        lines.push(line);
        if started_b {
            break;
        }
    }
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read");
    assert_eq!(crate::support::wait_exit(&mut child), Some(130));
    let events = events(&(lines.concat() + &rest));
    let b = find(&events, "task_finished", "b");
    assert_eq!(b["status"], "aborted", "{b}");
    let end = events.last().expect("events");
    assert_eq!(end["type"], "run_finished", "{events:#?}");
    assert_eq!(end["exit_code"], 130);
    assert_eq!(end["ok"], false);
    assert_eq!(end["counts"]["succeeded"], 1, "{end}");
    assert_eq!(end["counts"]["aborted"], 1, "{end}");
    assert_eq!(types(&events).iter().filter(|kind| **kind == "run_finished").count(), 1);
}

/// A task whose message is not UTF-8 (`error("bad \255")`) still has its whole `task_finished`
/// event — group, task, status — the byte replaced, here and on an agent alike.
#[test]
fn a_message_that_is_not_utf8_keeps_its_task_finished_event_whole() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "here", command = function() return false, "bad \255 byte" end }},
  {{ name = "there", agent = "box", command = function() return false, "bad \255 byte" end }},
}} }} }}
"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "--output", "json", "tasks.lua"]).expect_code(1);
    let events = events(&run.stdout);
    for task in ["here", "there"] {
        let finished = find(&events, "task_finished", task);
        assert_eq!(finished["status"], "failed", "{finished}");
        assert_eq!(finished["message"], "bad \u{fffd} byte", "{finished}");
        assert!(finished.get("unencodable").is_none(), "{finished}");
    }
}
