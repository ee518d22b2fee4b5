//! `os.execute` and `io.popen` in a pipeline's Lua: they answer as Lua's do, and the commands
//! they start belong to the task — stopped by its timeout, by Ctrl-C, with the agent's task —
//! while the other tasks go on.

use std::process::Command;

use crate::support::agent::Agent;
use crate::support::{Run, Test, signal, wait_exit, wait_for_line_file, wait_until_gone};

const ANSWERS: &str = r#"
TaskDefinitions = { g = {AGENTS tasks = {
  { name = "t", AGENT command = function()
      print(os.execute("echo from-execute; exit 3"))
      print(os.execute())
      local f = io.popen("printf 'l1\\nl2\\n'; exit 2")
      print(f:read("l"), f:read("a"))
      print(f:close())
      local w = io.popen("cat > got.txt", "w")
      w:write("in", 1, "\n"):write("more\n")
      print(w:close())
      print(io.open("got.txt"):read("a"))
      for line in io.popen("seq 3"):lines() do io.write(line, ",") end
      print()
      print(os.execute("kill -9 $$"))
      local f = io.popen("true")
      print(io.type(f), f:close())
      print(io.type(f), pcall(f.close, f))
      return true
  end },
} } }
"#;

#[test]
fn os_execute_and_io_popen_answer_as_lua_does_here_and_on_an_agent() {
    let expected = "from-execute\nnil\texit\t3\ntrue\nl1\tl2\n\nnil\texit\t2\ntrue\texit\t0\nin1\nmore\n\n1,2,3,\nnil\tsignal\t9\n\
                    file\ttrue\texit\t0\nclosed file\tfalse\tattempt to use a closed file\n";
    let here = Test::new().write("tasks.lua", &ANSWERS.replace("AGENTS", "").replace("AGENT", ""));
    let run = here.run(&["--quiet", "run", "tasks.lua"]).expect_code(0);
    assert_eq!(run.stdout, expected);
    let agent = Agent::start(&[]);
    let there = Test::new().write(
        "tasks.lua",
        &ANSWERS
            .replace("AGENTS", &format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address))
            .replace("AGENT", "agent = \"box\","),
    );
    let run = there.run(&["--quiet", "run", "tasks.lua"]).expect_code(0);
    assert_eq!(run.stdout, expected);
    assert_eq!(there.read("got.txt"), "in1\nmore\n", "what the task wrote came back");
}

/// A pipeline whose task `t` starts `sleep 30` through `how` (writing its pid to `sleeper.pid`
/// first), with `fields` in the task's table.
fn sleeper(test: Test, how: &str, fields: &str, agents: &str) -> Test {
    let pidfile = test.path().join("sleeper.pid").display().to_string();
    let command = format!("echo $$ > '{pidfile}'; exec sleep 30");
    let call = match how {
        "os.execute" => format!("os.execute([[{command}]])"),
        _ => format!("io.popen([[{command}]]):close()"),
    };
    test.write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ {agents} tasks = {{
                {{ name = "t", {fields} command = function() {call} return true end }},
                {{ name = "after", depends_on = "t", command = "touch after-ran" }},
            }} }} }}"#
        ),
    )
}

#[test]
fn a_timeout_stops_what_os_execute_and_io_popen_started_here_and_on_an_agent() {
    let agent = Agent::start(&[]);
    for how in ["os.execute", "io.popen"] {
        for (agents, field) in
            [("", ""), (&*format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address), "agent = \"box\",")]
        {
            let test = sleeper(Test::new(), how, &format!("timeout = \"1s\", {field}"), agents);
            let run = test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("timed out after 1.00s");
            let pid = test.read("sleeper.pid");
            assert!(wait_until_gone(pid.trim()), "{how} {field}: its command outlived the timeout\n{}", run.stderr);
            assert!(!test.exists("after-ran"));
        }
    }
}

#[test]
fn ctrl_c_stops_what_os_execute_and_io_popen_started() {
    for how in ["os.execute", "io.popen"] {
        let test = sleeper(Test::new(), how, "", "");
        let mut child = test.spawn(&["run", "tasks.lua"]);
        let pid = wait_for_line_file(&test.path().join("sleeper.pid"));
        signal(child.id(), nix::sys::signal::Signal::SIGINT);
        assert_eq!(wait_exit(&mut child), Some(130), "{how}");
        assert!(wait_until_gone(&pid), "{how}: its command outlived the interrupted run");
        assert!(!test.exists("after-ran"), "{how}");
    }
}

#[test]
fn other_tasks_go_on_while_one_waits_for_os_execute() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
            { name = "waits", command = function()
                os.execute("while [ ! -e other-ran ]; do sleep 0.05; done")
                return true
            end },
            { name = "other", command = "touch other-ran" },
        } } }"#,
    );
    test.run(&["run", "-j", "2", "tasks.lua"]).expect_code(0);
}

const CANNOT_WAIT: &str = r#"
TaskDefinitions = { g = {AGENTS tasks = {
  { name = "t", AGENT command = function()
      print(coroutine.resume(coroutine.create(function() return os.execute("touch co_ran; exit 5") end)))
      print(("x"):gsub("x", function() return io.popen("echo in-gsub"):read("l") end))
      local t = { 3, 1, 2 }
      table.sort(t, function(a, b) os.execute("true") return a < b end)
      print(t[1], t[2], t[3])
      for line in coroutine.wrap(function()
        for l in io.popen("printf 'a\\nb\\n'"):lines() do coroutine.yield(l) end
      end) do io.write(line, ";") end
      print()
      local r = io.popen("echo r-out; echo r-err >&2")
      print(r:read("a"), r:close())
      local w = io.popen("cat; echo w-err >&2", "w")
      w:write("from-w\n")
      print(w:close())
      return true
  end },
} } }
"#;

#[test]
fn where_lua_cannot_wait_commands_run_as_luas_own_and_every_stream_arrives_here_and_there() {
    let expected = "true\tnil\texit\t5\nin-gsub\t1\n1\t2\t3\na;b;\nr-out\n\ttrue\texit\t0\nfrom-w\ntrue\texit\t0\n";
    let agent = Agent::start(&[]);
    for (agents, field) in [
        (String::new(), ""),
        (format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address), "agent = \"box\","),
    ] {
        let test = Test::new().write("tasks.lua", &CANNOT_WAIT.replace("AGENTS", &agents).replace("AGENT", field));
        let run = test.run(&["--quiet", "run", "tasks.lua"]).expect_code(0);
        assert_eq!(run.stdout, expected, "{field}");
        assert!(test.exists("co_ran"), "{field}: the command in the pipeline's own coroutine ran");
        for line in ["r-err", "w-err"] {
            assert!(run.stderr.contains(line), "{field}: {line} reached the master\n{}", run.stderr);
        }
    }
}

#[test]
fn where_lua_cannot_wait_a_command_still_has_the_tasks_env_stdin_timeout_and_streams() {
    let test = Test::new();
    let pidfile = test.path().join("sleeper.pid").display().to_string();
    let test = test.write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ tasks = {{
                {{ name = "t", timeout = "1s", env = {{ FOO = "foo-env" }}, command = function()
                    coroutine.wrap(function() os.execute("echo co FOO=$FOO") end)()
                    local read = coroutine.wrap(function() return io.popen("cat"):read("a") end)()
                    print("stdin gave " .. #read .. " bytes")
                    io.output("log.txt")
                    os.execute("echo exec-out")
                    io.output():close()
                    io.output(io.stdout)
                    coroutine.wrap(function() os.execute("echo $$ > '{pidfile}'; exec sleep 30") end)()
                    return true
                end }},
            }} }} }}"#
        ),
    );
    let run =
        Run::with_input(test.command(&["run", "--output", "json", "tasks.lua"]), "stdin the task must not read\n")
            .expect_code(1);
    assert!(run.stdout.lines().all(|line| line.starts_with('{')), "stdout stays JSON:\n{}", run.stdout);
    for said in ["co FOO=foo-env", "exec-out", "stdin gave 0 bytes", "timed out after 1.00s"] {
        assert!(run.stderr.contains(said) || run.stdout.contains(said), "{said}\n{}\n{}", run.stdout, run.stderr);
    }
    assert_eq!(test.read("log.txt"), "", "a command's output goes where it would, not to io.output");
    assert!(wait_until_gone(test.read("sleeper.pid").trim()), "the command outlived the task's timeout");
}

#[test]
fn a_run_reclaims_the_scratch_directory_a_run_killed_outright_left_and_nothing_else() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // What a run killed with SIGKILL leaves: its scratch directory, marked, no longer locked.
    let dead = sloth_runner::locked_dir::LockedDir::create(tmp.path(), "sloth-run-starting-", "sloth-run-")
        .expect("a scratch directory");
    let dead_path = dead.path().to_path_buf();
    std::fs::write(dead_path.join("command-x"), "left").expect("write");
    drop(dead);
    let mine = tmp.path().join("sloth-run-notes");
    std::fs::create_dir(&mine).expect("mkdir");
    std::fs::write(mine.join("todo.txt"), "precious").expect("write");
    let test = Test::new()
        .env("TMPDIR", &tmp.path().display().to_string())
        .write("tasks.lua", r#"TaskDefinitions = { g = { tasks = { { name = "t", command = function() os.execute("true") return true end } } } }"#);
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(!dead_path.exists(), "the dead run's scratch directory is gone");
    assert_eq!(std::fs::read_to_string(mine.join("todo.txt")).expect("kept"), "precious");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("list").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("sloth-run-notes")], "this run's own is gone too");
}

#[test]
fn a_coroutine_the_pipeline_made_runs_under_the_deadline_of_the_task_that_resumes_it() {
    let test = Test::new();
    let pidfile = test.path().join("sleeper.pid").display().to_string();
    let test = test.write(
        "tasks.lua",
        &format!(
            r#"-- Made while the pipeline is read, outside any task.
            local step = coroutine.wrap(function()
              while true do os.execute("echo $$ > '{pidfile}'; exec sleep 30"); coroutine.yield() end
            end)
            TaskDefinitions = {{ g = {{ tasks = {{
                {{ name = "command", timeout = "1s", command = function() step() return true end }},
                {{ name = "busy", timeout = "1s", command = function()
                    coroutine.wrap(function() local t = os.clock() while os.clock() - t < 30 do end end)()
                    return true
                end }},
            }} }} }}"#
        ),
    );
    let run = test.run(&["run", "-j", "2", "tasks.lua"]).expect_code(1);
    for task in ["command", "busy"] {
        assert!(run.stderr.contains(&format!("g/{task}  FAILED")), "{task}\n{}", run.stderr);
    }
    assert_eq!(run.stderr.matches("timed out after 1.00s").count(), 4, "two lines each\n{}", run.stderr);
    assert!(wait_until_gone(test.read("sleeper.pid").trim()), "the command outlived the timeout");
}

/// A remote function task's `os.execute` output is kept in the task's own directory on the
/// agent, not in the system's temporary directory: a task cancelled while its command runs
/// (Ctrl-C of the master) leaves none of it behind.
#[test]
fn an_os_execute_cancelled_on_an_agent_leaves_no_file_behind() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = Test::new();
    // (Made by the command: the pipeline, which travels too, does not hold it.)
    let name = test.path().file_name().expect("name").to_string_lossy().to_lowercase();
    let marker = format!("LEFT-BEHIND-{}", name.to_uppercase());
    let pidfile = test.path().join("sleeper.pid");
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = function()
                    os.execute([[echo 'left-behind-{name}' | tr a-z A-Z; echo 'left-behind-{name}' | tr a-z A-Z >&2; echo $$ > '{}'; exec sleep 30]]) return true end }},
            }} }} }}"#,
            agent.address,
            pidfile.display()
        ),
    )
    .expect("pipeline");
    let started = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let mut child = test.spawn(&["run", "tasks.lua"]);
    let pid = wait_for_line_file(&pidfile);
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    assert_eq!(wait_exit(&mut child), Some(130));
    assert!(wait_until_gone(&pid), "the command outlived the cancelled task");
    // Wherever the agent may have put the command's output: the system's temporary
    // directory (where Lua's `os.tmpname` makes `lua_*` files), its own work directory.
    let holds_marker = |path: &std::path::Path| {
        std::fs::read(path).is_ok_and(|bytes| bytes.windows(marker.len()).any(|w| w == marker.as_bytes()))
    };
    let recent =
        |entry: &std::fs::DirEntry| entry.metadata().and_then(|meta| meta.modified()).is_ok_and(|at| at >= started);
    let holding = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut candidates = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let in_work = dir.starts_with(work.path());
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() && in_work => dirs.push(entry.path()),
                    Ok(kind) if kind.is_file() && in_work => candidates.push(entry.path()),
                    Ok(kind)
                        if kind.is_file()
                            && entry.file_name().to_string_lossy().starts_with("lua_")
                            && recent(&entry) =>
                    {
                        candidates.push(entry.path());
                    }
                    _ => {}
                }
            }
        }
        candidates.into_iter().filter(|path| holds_marker(path)).collect()
    };
    let left = || [holding(std::path::Path::new("/tmp")), holding(work.path())].concat();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !left().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left = left();
    for path in &left {
        let _ = std::fs::remove_file(path);
    }
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "what the cancelled task's command wrote stayed");
}

/// What `os.execute` writes is passed on a piece at a time, here and from an agent: a command
/// writing far more than the Lua memory limit is no trouble for the task, and every byte
/// arrives.
#[test]
fn os_execute_output_larger_than_the_lua_memory_limit_passes_here_and_from_an_agent() {
    let agent = Agent::start(&["--lua-memory-limit", "24M"]);
    let command = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 60000000 | cat; echo end";
    for (agents, field) in
        [("", ""), (&*format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address), "agent = \"box\",")]
    {
        let test = Test::new().write(
            "tasks.lua",
            &format!(
                r#"TaskDefinitions = {{ g = {{ {agents} tasks = {{
                    {{ name = "t", {field} command = function() os.execute([[{command}]]) return true end }},
                }} }} }}"#
            ),
        );
        let run = test.run(&["--quiet", "run", "--lua-memory-limit", "24M", "tasks.lua"]).expect_code(0);
        let lines: Vec<&str> = run.stdout.lines().chain(run.stderr.lines()).collect();
        let full = lines.iter().filter(|line| line.ends_with("0123456789abcdefghijklmnopqrstuvwxyz")).count();
        assert_eq!(full, 60_000_000 / 37, "{field}: every line arrives whole");
        assert!(lines.iter().any(|line| line.ends_with("end")), "{field}");
    }
}

/// A task whose deadline passed while a native call held it (here `io.open` of a named pipe,
/// opened for writing 2 s later) starts no command after that call: the hook, which looks
/// every thousand instructions, had not looked yet, and `os.execute` / `exec.run` ran anyway.
#[test]
fn a_task_past_its_deadline_starts_no_more_commands() {
    for call in ["os.execute", "exec.run"] {
        let test = Test::new();
        let fifo = test.path().join("pipe");
        assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
        std::fs::write(
            test.path().join("tasks.lua"),
            format!(
                r#"TaskDefinitions = {{ g = {{ tasks = {{
                    {{ name = "late", timeout = "1s", command = function()
                        local pipe = io.open([[{}]], "r")
                        for _ = 1, 3 do {call}("echo ran >> ran.txt") end
                        return true
                    end }},
                }} }} }}"#,
                fifo.display()
            ),
        )
        .expect("pipeline");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            let _ = std::fs::write(&fifo, "x\n");
        });
        let run = test.run(&["run", "tasks.lua"]).expect_code(1);
        writer.join().expect("writer");
        assert!(run.stderr.contains("timed out after 1.00s"), "{call}: {}", run.stderr);
        assert!(!test.exists("ran.txt"), "{call}: a command ran after the deadline");
    }
}
