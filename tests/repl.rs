//! The interactive REPL on a real terminal: expressions print their values, statements span
//! lines (typed or pasted), lines typed ahead are all evaluated, errors do not end the session,
//! pipelines run from it, history survives the session. Piped input is one chunk, as `lua -`
//! reads it.

use crate::support::Test;
use crate::support::terminal::Terminal;

const PROMPT: &str = "sloth> ";

/// A REPL (`args`) in `test`'s directory on a new terminal, its first prompt shown.
fn repl(test: &Test, args: &[&str]) -> Terminal {
    let terminal = Terminal::spawn(test.command(args), None);
    terminal.wait_for(0, PROMPT);
    terminal
}

/// Types `line` and Enter at human speed; waits for `expect` and then the next prompt after
/// it (`sloth> `, or `  ...> ` when the chunk goes on); the offset past that prompt.
fn enter(terminal: &mut Terminal, line: &str, expect: &str) -> usize {
    let from = terminal.len();
    terminal.type_slowly(line);
    terminal.send(b"\r");
    // (The line as typed is echoed first: what it shows comes after its end.)
    let echoed = terminal.wait_for(from, "\r\n");
    let at = terminal.wait_for(echoed, expect);
    terminal.wait_for(at, "> ")
}

fn quit(mut terminal: Terminal) -> String {
    terminal.send(b"\x04");
    let (code, bytes) = terminal.finish();
    let output = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(code, Some(0), "{output}");
    output
}

#[test]
fn the_repl_evaluates_lines_keeps_state_and_survives_errors() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = { { name = "t", command = "echo pipeline-ran > ran.txt" } } } }"#,
    );
    for args in [&["repl"][..], &[][..]] {
        let mut terminal = repl(&test, args);
        enter(&mut terminal, "1 + 1", "2\r\n");
        enter(&mut terminal, r#"t = { name = "sloth", list = { 1, 2 } }"#, "");
        enter(&mut terminal, "t", r#"name = "sloth""#);
        // A function typed line by line: the prompt says the chunk goes on.
        let at = enter(&mut terminal, "function double(n)", "");
        assert!(terminal.output()[..at].ends_with("...> "), "{}", terminal.output());
        enter(&mut terminal, "  return n * 2", "");
        enter(&mut terminal, "end", "");
        enter(&mut terminal, "double(21)", "42\r\n");
        enter(&mut terminal, r#"error("oops")"#, "repl:1: oops");
        // A string result as it is (the shell's newline included), then the other results.
        enter(&mut terminal, r#"exec.run("echo from-shell")"#, "from-shell\r\n\t\tnil");
        enter(&mut terminal, r#"fs.write("made-by-repl.txt", "yes")"#, "");
        enter(&mut terminal, r#"run("tasks.lua")"#, "g/t  succeeded");
        enter(&mut terminal, r#"print("still " .. "here")"#, "still here");
        quit(terminal);
        assert_eq!(test.read("made-by-repl.txt"), "yes");
        assert_eq!(test.read("ran.txt"), "pipeline-ran\n");
    }
}

#[test]
fn lines_typed_ahead_and_a_pasted_function_are_all_evaluated() {
    let test = Test::new();
    let mut terminal = repl(&test, &["repl"]);
    // Four lines at once, before the first is evaluated: none is lost.
    terminal.send(b"x = 1\rx = x + 1\rx = x + 1\rprint('x is ' .. x)\r");
    terminal.wait_for(0, "x is 3");
    // A bracketed paste of several lines is one chunk.
    let from = terminal.len();
    terminal.send(b"\x1b[200~function triple(n)\n  return n * 3\nend\x1b[201~\r");
    terminal.wait_for(from, PROMPT);
    enter(&mut terminal, "triple(14)", "42\r\n");
    quit(terminal);
}

#[test]
fn history_survives_the_session() {
    let test = Test::new();
    let mut first = repl(&test, &["repl"]);
    enter(&mut first, "answer = 6 * 7", "");
    quit(first);
    let mut second = repl(&test, &["repl"]);
    // Up brings back the last session's line.
    let from = second.len();
    second.send(b"\x1b[A");
    second.wait_for(from, "answer = 6 * 7");
    let before_enter = second.len();
    second.send(b"\r");
    let echoed = second.wait_for(before_enter, "\r\n");
    second.wait_for(echoed, PROMPT);
    enter(&mut second, "answer", "42\r\n");
    quit(second);
}

#[test]
fn ctrl_c_cancels_the_running_line_and_its_processes_and_the_repl_goes_on() {
    let test = Test::new();
    let mark = test.path().join("started");
    let mut terminal = repl(&test, &["repl"]);
    terminal.type_slowly(&format!("exec.run(\"touch '{}'; sleep 31.37\")\r", mark.display()));
    assert!(crate::support::wait_for_path(&mark), "the line started");
    let from = terminal.len();
    crate::support::signal(terminal.pid(), nix::sys::signal::Signal::SIGINT);
    terminal.wait_for(from, "interrupted: the line's tasks were cancelled");
    enter(&mut terminal, "print(40 + 2)", "42\r\n");
    quit(terminal);
    assert!(!crate::support::agent::process_running(&["sleep 31.37"]), "the line's process was killed");
}

#[test]
fn piped_input_is_one_chunk_and_its_error_names_the_line() {
    let test = Test::new();
    let run = test.run_with_input(&["repl"], "local x = 40\nprint(x + 2)\n").expect_code(0);
    assert_eq!(run.stdout, "42\n");
    let run = test.run_with_input(&[], "local x = 1\n\nerror('on line three')\n").expect_code(1);
    assert!(run.stderr.contains("stdin:3: on line three"), "{}", run.stderr);
}

#[test]
fn repl_file_evaluates_the_file_first_and_a_failing_one_ends_it() {
    let test = Test::new()
        .write("defs.lua", "local lib = import('lib/more.lua')\nx = 41\nfunction twice(n) return lib.times(n, 2) end\n")
        .write("lib/more.lua", "return { times = function(a, b) return a * b end }\n")
        .write("bad.lua", "local a = nil\na.b = 1\n");
    for args in [&["repl", "defs.lua"][..], &["repl", "-f", "defs.lua"][..]] {
        let run = test.run_with_input(args, "print(x + 1)\nprint(twice(x))\n").expect_code(0);
        assert_eq!(run.stdout, "42\n82\n", "{args:?}: {}", run.stderr);
    }
    let run = test.run_with_input(&["repl", "bad.lua"], "print(x)\n").expect_code(1);
    assert!(run.stderr.contains("bad.lua:2: attempt to index a nil value"), "{}", run.stderr);
    assert!(!run.stderr.contains("stdlib/sloth/"), "{}", run.stderr);
    test.run_with_input(&["repl", "missing.lua"], "").expect_code(1).stderr_has("missing.lua");
}

#[test]
fn tab_completes_module_members_table_fields_and_commands() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { build = { description = "builds-it", tasks = { { name = "t", command = "true" } } } }"#,
    );
    let mut terminal = repl(&test, &["repl"]);
    // `exec.ru` + Tab is `exec.run`.
    let from = terminal.len();
    terminal.type_slowly("exec.ru\t");
    terminal.wait_for(from, "exec.run");
    enter(&mut terminal, r#"("echo completed-" .. "member")"#, "completed-member");
    // `:he` + Tab is `:help`.
    let from = terminal.len();
    terminal.type_slowly(":he\t");
    terminal.wait_for(from, ":help");
    terminal.send(b"\r");
    terminal.wait_for(from, "Commands:");
    terminal.wait_for(from, PROMPT);
    // A field of a table the loaded pipeline made.
    enter(&mut terminal, ":load tasks.lua", "ok (1 group(s), 1 task(s))");
    let from = terminal.len();
    terminal.type_slowly("TaskDefinitions.bu\t");
    terminal.wait_for(from, "TaskDefinitions.build");
    enter(&mut terminal, ".descr\t", "builds-it");
    quit(terminal);
}

#[test]
fn load_list_and_run_a_pipeline_with_a_remote_task_from_the_prompt() {
    let agent = crate::support::agent::Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ ship = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "build", command = "echo built > built.txt" }},
                {{ name = "deliver", agent = "box", depends_on = "build", command = "cat built.txt > delivered.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    let mut terminal = repl(&test, &["repl"]);
    enter(&mut terminal, ":help", ":run [GROUP [TASK...]]");
    enter(&mut terminal, ":list", "no pipeline loaded");
    enter(&mut terminal, ":load tasks.lua", "tasks.lua: ok");
    enter(&mut terminal, ":list", "deliver  (depends on: build)");
    enter(&mut terminal, ":run", "2 task(s): 2 succeeded");
    assert_eq!(test.read("delivered.txt"), "built\n");
    enter(&mut terminal, ":agents", "box");
    enter(&mut terminal, ":rnu", "did you mean 'run'?");
    terminal.type_slowly(":quit\r");
    let (code, _) = terminal.finish();
    assert_eq!(code, Some(0));
}

#[test]
fn ctrl_c_during_run_cancels_it_and_leaves_no_process() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = { { name = "wait", command = "touch started; sleep 31.41" } } } }"#,
    );
    let mut terminal = repl(&test, &["repl"]);
    enter(&mut terminal, ":load tasks.lua", "tasks.lua: ok");
    terminal.type_slowly(":run\r");
    assert!(crate::support::wait_for_path(&test.path().join("started")), "the task started");
    let from = terminal.len();
    crate::support::signal(terminal.pid(), nix::sys::signal::Signal::SIGINT);
    terminal.wait_for(from, "interrupted: the line's tasks were cancelled");
    terminal.wait_for(from, PROMPT);
    // (The cancelled job's process group is killed as the line ends.)
    assert!(!crate::support::agent::process_running(&["sleep 31.41"]), "the task's process was killed");
    enter(&mut terminal, "print(6 * 7)", "42\r\n");
    // No status line of the cancelled run is drawn over the prompt afterwards.
    let after = terminal.len();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!terminal.output()[after..].contains("running:"), "{}", terminal.output());
    quit(terminal);
}

#[test]
fn ctrl_c_stops_printing_that_never_ends_and_a_label_is_no_command() {
    let test = Test::new();
    let mut terminal = repl(&test, &["repl"]);
    let from = terminal.len();
    terminal.type_slowly("setmetatable({}, { __tostring = function() while true do end end })\r");
    terminal.wait_for(from, "\r\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    crate::support::signal(terminal.pid(), nix::sys::signal::Signal::SIGINT);
    terminal.wait_for(from, "interrupted: the line's tasks were cancelled");
    terminal.wait_for(from, PROMPT);
    // `::name::` is Lua (a label), not a command.
    enter(&mut terminal, r#"::top:: print("label " .. "ok")"#, "label ok");
    quit(terminal);
}

#[test]
fn an_interrupted_run_stops_the_agents_it_spawned() {
    // The pipeline names a fixed port: in a network namespace of its own where one can be
    // made, so no other test's agent can hold it.
    let isolation = crate::support::private_loopback();
    let port = if isolation.is_some() { 50_071 } else { crate::support::agent::free_port() };
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "127.0.0.1:{port}" }} }}, tasks = {{
                {{ name = "wait", agent = "box", command = "touch started; sleep 31.43" }},
            }} }} }}"#
        ),
    );
    let mut terminal = Terminal::spawn(test.command_in(isolation.as_deref().unwrap_or_default(), &["repl"]), None);
    terminal.wait_for(0, PROMPT);
    enter(&mut terminal, ":load tasks.lua", "tasks.lua: ok");
    terminal.type_slowly(":run --spawn-agents\r");
    terminal.wait_for(0, "started agent 'box'");
    let agent = ["agent", "--port", &port.to_string()];
    assert!(crate::support::agent::process_running(&agent), "the agent runs");
    // The task's copy of the workspace is on the agent: wait for the sleep itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !crate::support::agent::process_running(&["sleep 31.43"]) {
        assert!(std::time::Instant::now() < deadline, "the remote task never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let from = terminal.len();
    crate::support::signal(terminal.pid(), nix::sys::signal::Signal::SIGINT);
    terminal.wait_for(from, "interrupted: the line's tasks were cancelled");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crate::support::agent::process_running(&agent) || crate::support::agent::process_running(&["sleep 31.43"]) {
        assert!(std::time::Instant::now() < deadline, "the spawned agent or its task outlived the interrupted run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    quit(terminal);
}

#[test]
fn piped_input_skips_a_byte_order_mark_and_a_shebang_line_as_lua_does() {
    let test = Test::new();
    let run =
        test.run_with_input(&["repl"], "\u{feff}#!/usr/bin/env sloth-runner repl\nprint('ran')\nerror('line three')\n");
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "ran\n");
    assert!(run.stderr.contains("stdin:3: line three"), "{}", run.stderr);
    let run = test.run_with_input(&["repl"], "error({})\n").expect_code(1);
    assert!(run.stderr.contains("(error object is a table value)"), "{}", run.stderr);
}
