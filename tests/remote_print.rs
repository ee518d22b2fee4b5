//! What a remote Lua function task prints is printed by the master as it was printed: the same
//! bytes as when the task runs on the master, wherever the pipeline's own `print` is.

use crate::support::Test;
use crate::support::agent::Agent;

/// A pipeline whose function task `t` runs `body`, on `agent` when given; `top` goes before
/// `TaskDefinitions`.
fn pipeline(agent: Option<&Agent>, top: &str, body: &str) -> String {
    let (agents, on) = match agent {
        Some(agent) => (format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address), "agent = \"box\","),
        None => (String::new(), ""),
    };
    format!(
        "{top}\nTaskDefinitions = {{ g = {{ {agents} tasks = {{\n  {{ name = \"t\", {on} command = function() {body} return true end }},\n}} }} }}\n"
    )
}

/// Runs the same task here and on an agent; both runs' stdout.
fn here_and_there(top: &str, body: &str, args: &[&str]) -> (crate::support::Run, crate::support::Run) {
    let local = Test::new().write("tasks.lua", &pipeline(None, top, body));
    let here = local.run(&[&["run"], args, &["tasks.lua"]].concat()).expect_code(0);
    let agent = Agent::start(&[]);
    let remote = Test::new().write("tasks.lua", &pipeline(Some(&agent), top, body));
    let there = remote.run(&[&["run"], args, &["tasks.lua"]].concat()).expect_code(0);
    (here, there)
}

#[test]
fn a_remote_task_prints_what_it_would_print_here() {
    let body = r#"print("a", 1, nil, true); print(); print("x\ny")"#;
    let (here, there) = here_and_there("", body, &[]);
    assert_eq!(here.stdout, "a\t1\tnil\ttrue\n\nx\ny\n");
    assert_eq!(there.stdout, here.stdout, "{}", there.stderr);
}

#[test]
fn a_pipelines_own_print_applies_once_and_what_it_prints_while_read_is_not_repeated() {
    let top = r#"local old = print
print = function(...) old("[pfx]", ...) end
print("reading the pipeline")"#;
    // (Lua's `print` does not call the global `tostring`: redefining it changes nothing.)
    let body = r#"print("hello"); tostring = function() return "hijacked" end; print(2)"#;
    let (here, there) = here_and_there(top, body, &[]);
    assert_eq!(here.stdout, "[pfx]\treading the pipeline\n[pfx]\thello\n[pfx]\t2\n");
    assert_eq!(there.stdout, here.stdout, "{}", there.stderr);
}

/// On a terminal, what a function task writes without ending the line waits for the line's end
/// here (Lua's stdio, line-buffered) — and from an agent too: a log line in between shows
/// before the line, not inside it.
#[test]
fn a_line_written_in_pieces_shows_whole_on_a_terminal_here_and_from_an_agent() {
    let body = r#"io.write("Progress: "); log.info("working"); io.write("done\n"); io.write("left open")"#;
    let agent = Agent::start(&[]);
    for on in [None, Some(&agent)] {
        let test = Test::new().write("tasks.lua", &pipeline(on, "", body));
        let terminal = crate::support::terminal::Terminal::spawn(test.command(&["run", "tasks.lua"]), None);
        let (code, bytes) = terminal.finish();
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        let place = if on.is_some() { "from an agent" } else { "here" };
        assert_eq!(code, Some(0), "{place}: {shown}");
        assert!(shown.contains("Progress: done"), "{place}: the line whole\n{shown}");
        assert!(shown.contains("left open"), "{place}: what was left of a line shows at the end\n{shown}");
    }
}

#[test]
fn a_print_larger_than_a_message_arrives_whole() {
    let body = r#"print(string.rep("0123456789", 1800000))"#;
    let (here, there) = here_and_there("", body, &[]);
    assert_eq!(here.stdout.len(), 18_000_001);
    assert!(
        there.stdout == here.stdout,
        "18 MB printed on the agent: {} bytes arrived\n{}",
        there.stdout.len(),
        there.stderr
    );
}

#[test]
fn with_stdout_kept_for_json_what_a_remote_task_prints_goes_to_stderr() {
    let (here, there) = here_and_there("", r#"print("printed")"#, &["--return"]);
    for run in [&here, &there] {
        assert!(run.stdout.trim_start().starts_with('{') && !run.stdout.contains("printed"), "{}", run.stdout);
        assert!(run.stderr.contains("printed\n"), "{}", run.stderr);
    }
}

/// A console nobody reads for a while (`| less` paused, Ctrl-S, a slow log shipper) makes a
/// remote task wait, as it makes a task here wait: the master's connection keeps answering the
/// agent meanwhile (the agent gives up on a master silent for ~8 s), and every line arrives.
#[test]
fn a_remote_task_waits_for_a_console_that_stops_reading_and_loses_no_line() {
    use std::io::Read;
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n\
               {{ name = \"t\", agent = \"box\", command = \"seq 1 100000; echo FIN\" }},\n\
             }} }} }}\n",
            agent.address
        ),
    );
    let mut master = test.spawn(&["run", "tasks.lua"]);
    // Nothing read for longer than the agent waits for an answer to its ping.
    std::thread::sleep(std::time::Duration::from_secs(11));
    let mut stderr = String::new();
    master.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
    let code = crate::support::wait_exit(&mut master);
    assert_eq!(code, Some(0), "{}", stderr.lines().rev().take(5).collect::<Vec<_>>().join("\n"));
    let lines = stderr.lines().filter(|line| line.starts_with("box/t | ")).count();
    assert_eq!(lines, 100_001, "every line of the task's output");
    assert!(stderr.contains("box/t | FIN"));
}

/// With `--return` or `-o json` stdout carries JSON only, here as there: what a function task
/// writes with `io.write`, `io.stdout:write` or to the default output goes to stderr (it
/// landed on stdout here, after the JSON); a remote task's printed lines say where they came
/// from (`from`), as its log lines do.
#[test]
fn with_return_or_json_events_what_lua_code_writes_keeps_off_stdout_here_and_there() {
    let body =
        r#"print("printed") io.write("written\n") io.stdout:write("to-stdout\n") io.output():write("default\n")"#;
    for args in [&["--return"][..], &["-o", "json"][..]] {
        let (here, there) = here_and_there("", body, args);
        for (which, run) in [("here", &here), ("there", &there)] {
            for line in run.stdout.lines() {
                let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
                assert!(parsed.is_ok(), "{which} {args:?}: not JSON on stdout: {line}\n{}", run.stdout);
            }
            for text in ["printed", "written", "to-stdout", "default"] {
                assert!(run.stderr.contains(text), "{which} {args:?}: {text} on stderr:\n{}", run.stderr);
            }
        }
        if args == ["-o", "json"] {
            let printed =
                there.stdout.lines().find(|line| line.contains("\"line\":\"printed\"")).expect("a print event");
            assert!(printed.contains("\"from\":\"box/t\""), "{printed}");
        }
    }
}

/// A log line, its fields or a task's message past what one message of the protocol holds
/// (16 MiB) is cut, said so, and the task's outcome is its own: a task that succeeded
/// failed with the transport's "encoded message length too large".
#[test]
fn a_log_line_or_message_too_long_for_one_message_is_cut_and_the_task_succeeds() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "logs", agent = "box", command = function()
                    log.info(string.rep("l", 17000000), {{ big = string.rep("f", 17000000) }}) return true, "logged" end }},
                {{ name = "says", agent = "box", command = function() return true, string.rep("m", 17000000) end }},
                {{ name = "fails", agent = "box", command = function() error(string.rep("e", 17000000), 0) end }},
            }} }} }}"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "-j", "3", "tasks.lua"]).expect_code(1);
    assert!(!run.stderr.contains("message length too large"), "{}", &run.stderr[..run.stderr.len().min(2000)]);
    let summary: Vec<&str> = run.stderr.lines().filter(|line| line.starts_with("g/") && line.len() < 300).collect();
    assert!(summary.iter().any(|line| line.starts_with("g/logs") && line.contains("succeeded")), "{summary:?}");
    assert!(run.stderr.contains("l … [12805696 more bytes not sent by the agent]"), "the log line is cut, said so");
    assert!(run.stderr.contains("f … [12805"), "its fields too");
    let said = run.stderr.lines().find(|line| line.starts_with("g/says  succeeded")).unwrap_or_default();
    assert!(said.ends_with("m … [12805696 more bytes not sent by the agent]"), "{}", &said[..said.len().min(200)]);
    let failed = run.stderr.lines().find(|line| line.starts_with("g/fails  FAILED")).unwrap_or_default();
    assert!(
        failed.contains(" more bytes not sent by the agent]"),
        "{} {}",
        failed.len(),
        &failed[failed.len().saturating_sub(300)..]
    );
}
