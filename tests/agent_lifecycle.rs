//! The agent as a process: who it listens to, how it stops, and what `--spawn-agents` and
//! Ctrl-C leave behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;

use crate::support::agent::{Agent, free_port, process_running};
use crate::support::{Test, wait_exit, wait_for_line_file, wait_until_gone};

const TOKEN: &str = "s3cret-token-4b1d";

fn pipeline(address: &str, token_field: &str) -> String {
    format!(
        r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}"{token_field} }} }}, tasks = {{
            {{ name = "t", agent = "box", command = "echo ran > ran.txt" }},
        }} }} }}"#
    )
}

#[test]
fn an_agent_with_a_token_only_runs_tasks_for_masters_that_present_it() {
    let agent = Agent::start(&["--token", TOKEN]);
    let without = Test::new().write("tasks.lua", &pipeline(&agent.address, ""));
    without.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("requires a token").stderr_lacks(TOKEN);
    assert!(!without.exists("ran.txt"));

    let wrong = Test::new().write("tasks.lua", &pipeline(&agent.address, r#", token = "guess""#));
    wrong.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("wrong token").stderr_lacks("guess");
    assert!(!wrong.exists("ran.txt"));

    let from_table = Test::new().write("tasks.lua", &pipeline(&agent.address, &format!(r#", token = "{TOKEN}""#)));
    from_table.run(&["run", "tasks.lua"]).expect_code(0).stderr_lacks(TOKEN);
    assert!(from_table.exists("ran.txt"));

    let from_env = Test::new().write("tasks.lua", &pipeline(&agent.address, "")).env("SLOTH_AGENT_TOKEN", TOKEN);
    from_env.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(from_env.exists("ran.txt"));

    assert!(!agent.log().contains(TOKEN), "the agent logged its token");
}

#[test]
fn the_agent_reads_its_token_from_the_environment() {
    let agent = Agent::start_with_env(&[], &[("SLOTH_AGENT_TOKEN", TOKEN)]);
    Test::new()
        .write("tasks.lua", &pipeline(&agent.address, r#", token = "other""#))
        .run(&["run", "tasks.lua"])
        .expect_code(1)
        .stderr_has("wrong token");
}

#[test]
fn listening_beyond_loopback_needs_a_token_or_insecure() {
    Test::new()
        .run(&["agent", "-p", "0", "--bind", "0.0.0.0"])
        .expect_code(2)
        .stderr_has("refusing to listen on 0.0.0.0 without a token");
    let mut agent = Agent::start(&["--bind", "0.0.0.0", "--insecure"]);
    assert!(agent.address.starts_with("0.0.0.0:"), "{}", agent.address);
    assert!(agent.stop().success());
    assert!(agent.log().contains("warning: listening on 0.0.0.0 without a token"), "{}", agent.log());
}

#[test]
fn info_reports_name_labels_capacity_and_load() {
    let agent = Agent::start(&["--labels", "os=linux,tier=gpu", "--max-tasks", "3"]);
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let info = tokio.block_on(async {
        let mut client =
            sloth_runner::rpc::client::AgentClient::connect(&agent.address, None, None, Duration::from_secs(5))
                .await
                .expect("connect");
        client.info().await.expect("info")
    });
    assert_eq!(info.name, "test-agent");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.labels.get("tier").map(String::as_str), Some("gpu"));
    assert_eq!(info.max_tasks, 3);
    assert_eq!(info.tasks_in_flight, 0);

    // The standard gRPC health service answers beside it.
    let serving = tokio.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", agent.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health check")
    });
    assert_eq!(serving.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
}

#[test]
fn spawn_agents_starts_and_stops_a_real_agent_leaving_no_process_behind() {
    let port = free_port().to_string();
    let test = Test::new().write("tasks.lua", &pipeline(&format!("127.0.0.1:{port}"), ""));
    test.run(&["run", "--spawn-agents", "tasks.lua"])
        .expect_code(0)
        .stderr_has(&format!("started agent 'box' on 127.0.0.1:{port}"));
    assert!(test.exists("ran.txt"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_running(&["agent", "--port", &port]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_running(&["agent", "--port", &port]), "the spawned agent outlived the run");
}

/// Starts `sloth-runner run tasks.lua` in `test` with a remote task that records the pid of a
/// long sleep in `pidfile`, and returns the master process once that pid is there.
fn start_long_remote_task(test: &Test, address: &str, pidfile: &std::path::Path) -> (std::process::Child, String) {
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}" }} }}, tasks = {{
                {{ name = "long", agent = "box", command = "sleep 30 & echo $! > {}; wait" }},
            }} }} }}"#,
            pidfile.display()
        ),
    )
    .expect("write pipeline");
    // (Its messages in master.err.)
    let errors = std::fs::File::create(test.path().join("master.err")).expect("master.err");
    let master = Command::new(crate::support::binary())
        .args(["run", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(errors)
        .spawn()
        .expect("start the master");
    let pid = wait_for_line_file(pidfile);
    (master, pid)
}

#[test]
fn ctrl_c_on_the_master_kills_the_remote_task_s_processes() {
    let agent = Agent::start(&[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let test = Test::new();
    let (mut master, sleeper) = start_long_remote_task(&test, &agent.address, &scratch.path().join("pid"));
    Command::new("kill").args(["-INT", &master.id().to_string()]).status().expect("kill -INT");
    assert_eq!(wait_exit(&mut master), Some(130));
    assert!(wait_until_gone(&sleeper), "the remote task's process {sleeper} survived the master's Ctrl-C");
}

#[test]
fn sigterm_stops_the_agent_cancelling_its_tasks_and_removing_its_directories() {
    let work_dir = tempfile::tempdir().expect("tempdir");
    let mut agent = Agent::start(&["--work-dir", &work_dir.path().to_string_lossy(), "--grace", "200ms"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let test = Test::new();
    let (mut master, sleeper) = start_long_remote_task(&test, &agent.address, &scratch.path().join("pid"));
    let status = agent.stop();
    assert!(status.success(), "the agent exited with {status:?}");
    assert!(wait_until_gone(&sleeper), "the task's process {sleeper} survived the agent's shutdown");
    assert_eq!(wait_exit(&mut master), Some(1), "the master reports the interrupted task as failed");
    // Why, as the agent said it (not as a connection that broke).
    let said = test.read("master.err");
    assert!(said.contains("is shutting down: the task was cancelled at the end of its grace period"), "{said}");
    let left: Vec<_> = std::fs::read_dir(work_dir.path()).expect("read work dir").flatten().collect();
    assert!(left.is_empty(), "the agent left {left:?} behind");
}

/// A master started with `--spawn-agents` whose one remote task (a `sleep` it prints the pid of)
/// runs on the agent it spawned: the agent's port, the test, the master, the sleep's pid.
fn spawn_agents_running_a_task() -> (String, Test, std::process::Child, String) {
    let port = free_port().to_string();
    let scratch = tempfile::tempdir().expect("tempdir");
    let pidfile = scratch.path().join("pid");
    let test = Test::new();
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "127.0.0.1:{port}" }} }}, tasks = {{
                {{ name = "long", agent = "box", command = "sleep 30 & echo $! > {}; wait" }},
            }} }} }}"#,
            pidfile.display()
        ),
    )
    .expect("write pipeline");
    let master = Command::new(crate::support::binary())
        .args(["run", "--spawn-agents", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the master");
    let sleeper = wait_for_line_file(&pidfile);
    (port, test, master, sleeper)
}

#[test]
fn ctrl_c_during_spawn_agents_stops_the_spawned_agent_and_its_task() {
    let (port, _test, mut master, sleeper) = spawn_agents_running_a_task();
    Command::new("kill").args(["-INT", &master.id().to_string()]).status().expect("kill -INT");
    assert_eq!(wait_exit(&mut master), Some(130));
    assert!(wait_until_gone(&sleeper), "the remote task's process survived");
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_running(&["agent", "--port", &port]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_running(&["agent", "--port", &port]), "the spawned agent outlived the interrupted run");
}

/// A master killed with `kill -9` (the OOM killer, a CI job cancelled) takes the agents it
/// spawned with it: they stop (standard input, a pipe only the master held, ends), and so does
/// the task one was running.
#[test]
fn agents_spawned_by_a_master_killed_with_kill_9_stop_with_it() {
    let (port, _test, mut master, sleeper) = spawn_agents_running_a_task();
    Command::new("kill").args(["-KILL", &master.id().to_string()]).status().expect("kill -KILL");
    let _ = wait_exit(&mut master);
    let deadline = Instant::now() + Duration::from_secs(15);
    while process_running(&["agent", "--port", &port]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent_left = process_running(&["agent", "--port", &port]);
    let sleeper_gone = wait_until_gone(&sleeper);
    if agent_left {
        let _ = Command::new("pkill").args(["-KILL", "-f", &format!("agent --port {port}")]).status();
    }
    assert!(!agent_left, "the spawned agent outlived its master");
    assert!(sleeper_gone, "the spawned agent's task outlived its master");
}

/// A master killed with `kill -9` while a task runs here: the task's processes die with it —
/// those in the task's process group and those in a group of their own (coreutils `timeout`) —
/// as they do with an agent (the same companion, `sloth-runner __reap`).
#[test]
fn a_local_task_dies_with_a_master_killed_with_kill_9() {
    let test = Test::new();
    let own_group = test.path().join("own-group.pid");
    let in_group = test.path().join("in-group.pid");
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ tasks = {{
                {{ name = "long", command = [[timeout 600 sh -c 'echo $$ > {}; exec sleep 30' & sh -c 'echo $$ > {}; exec sleep 30']] }},
            }} }} }}"#,
            own_group.display(),
            in_group.display()
        ),
    )
    .expect("write pipeline");
    let mut master = Command::new(crate::support::binary())
        .args(["run", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the master");
    let pids = [wait_for_line_file(&own_group), wait_for_line_file(&in_group)];
    Command::new("kill").args(["-KILL", &master.id().to_string()]).status().expect("kill -KILL");
    let _ = wait_exit(&mut master);
    let left: Vec<&String> = pids.iter().filter(|pid| !wait_until_gone(pid)).collect();
    for pid in &left {
        if let Ok(pid) = pid.parse() {
            crate::support::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    assert!(left.is_empty(), "the task's processes {left:?} outlived their master");
}

/// A connection that sends nothing, or half an HTTP/2 preface, is closed by the agent once it
/// has had its time to begin a call (10 s) — no token asked yet, it held a descriptor for ever —
/// while a master's run goes on beside it.
#[test]
fn connections_that_never_begin_a_call_are_closed() {
    use std::io::{Read, Write};
    let agent = Agent::start(&[]);
    let address = agent.address.trim_start_matches("http://").to_owned();
    let silent = std::net::TcpStream::connect(&address).expect("connect");
    let mut half = std::net::TcpStream::connect(&address).expect("connect");
    half.write_all(b"PRI * HTTP/2.0\r\n").expect("half a preface");
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "echo ran > out.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("out.txt"), "ran\n");
    let started = Instant::now();
    for (name, mut stream) in [("silent", silent), ("half a preface", half)] {
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte);
        assert!(
            matches!(read, Ok(0)) || read.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the {name} connection was not closed: {read:?} after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20), "closed after {:?}", started.elapsed());
}

/// A connection that speaks HTTP/2 (answering the agent's pings) but makes no call with the
/// agent's token is closed once it has had its time (20 s): such connections kept their place
/// for ever, and enough of them locked every master out.
#[test]
fn a_connection_that_makes_no_call_let_in_is_closed() {
    let agent = Agent::start(&["--token", "right"]);
    let sockets = || {
        std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
            .map(|fds| {
                fds.flatten()
                    .filter(|fd| {
                        std::fs::read_link(fd.path())
                            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let before = sockets();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let address = format!("http://{}", agent.address.trim_start_matches("http://"));
    let channel = runtime
        .block_on(tonic::transport::Endpoint::from_shared(address).expect("endpoint").connect())
        .expect("an HTTP/2 connection");
    let deadline = Instant::now() + Duration::from_secs(5);
    while sockets() <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sockets() > before, "the connection is open on the agent");
    // The channel answers pings on the runtime's thread while this one waits.
    let closed = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while sockets() > before && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sockets() <= before
    });
    drop(channel);
    assert!(closed, "the agent still holds the connection that made no call");
}

#[test]
fn a_work_dir_that_does_not_exist_yet_is_made() {
    let parent = tempfile::tempdir().expect("tempdir");
    let work_dir = parent.path().join("state/sloth/agent");
    let agent = Agent::start(&["--work-dir", &work_dir.to_string_lossy()]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "echo ran > out.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("out.txt"), "ran\n");
    assert!(work_dir.is_dir());
}

/// A process the task put in a group of its own (coreutils `timeout`) dies with an agent killed
/// with `kill -9` too.
#[test]
fn a_process_in_a_group_of_its_own_dies_with_an_agent_killed_mid_task() {
    let mut agent = Agent::start(&[]);
    let test = Test::new();
    let pidfile = test.path().join("inner.pid");
    std::fs::write(
        test.path().join("tasks.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "long", agent = "box", command = [[timeout 600 sh -c 'echo $$ > {}; exec sleep 30'; true]] }},
            }} }} }}"#,
            agent.address,
            pidfile.display()
        ),
    )
    .expect("write pipeline");
    let mut master = Command::new(crate::support::binary())
        .args(["run", "tasks.lua"])
        .current_dir(test.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the master");
    let inner = wait_for_line_file(&pidfile);
    let killed = Command::new("kill").args(["-KILL", &agent.pid().to_string()]).status().expect("kill");
    assert!(killed.success());
    agent.wait(Duration::from_secs(10));
    let _ = wait_exit(&mut master);
    let gone = wait_until_gone(&inner);
    if !gone && let Ok(pid) = inner.parse() {
        crate::support::signal(pid, nix::sys::signal::Signal::SIGKILL);
    }
    assert!(gone, "the task's process {inner}, in a group of its own, outlived its agent");
}

#[test]
fn an_agent_killed_mid_task_leaves_no_process_and_no_directory_once_an_agent_starts_again() {
    let work_dir = tempfile::tempdir().expect("tempdir");
    let work = work_dir.path().to_string_lossy().into_owned();
    let mut first = Agent::start(&["--work-dir", &work]);
    let test = Test::new();
    let pidfile = test.path().join("sleep.pid");
    let (mut master, sleep_pid) = start_long_remote_task(&test, &first.address, &pidfile);
    let left = || -> Vec<String> {
        std::fs::read_dir(work_dir.path())
            .expect("read the work dir")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(left().len(), 1, "one agent, one directory: {:?}", left());
    let killed = Command::new("kill").args(["-KILL", &first.pid().to_string()]).status().expect("kill");
    assert!(killed.success());
    first.wait(Duration::from_secs(10));
    let _ = wait_exit(&mut master);
    // The task's processes (a background `sleep` of its shell) die with their agent.
    let gone = wait_until_gone(&sleep_pid);
    if !gone && let Ok(pid) = sleep_pid.parse() {
        crate::support::signal(pid, nix::sys::signal::Signal::SIGKILL);
    }
    assert!(gone, "the task's process {sleep_pid} outlived its agent");
    assert_eq!(left().len(), 1, "kill -9 leaves its directory: {:?}", left());

    let second = Agent::start(&["--work-dir", &work]);
    let now = left();
    assert_eq!(now.len(), 1, "only the new agent's directory: {now:?}");
    assert!(second.log().contains("removed the work directory of an agent that died"), "{}", second.log());
}

/// A task function that allocates without end.
const HOG: &str = r#"function() local t = {} while true do t[#t + 1] = string.rep("x", 1000000) .. #t end end"#;

#[test]
fn a_task_past_the_lua_memory_limit_fails_here_and_on_an_agent_which_keeps_serving() {
    let test = Test::new().write(
        "local.lua",
        &format!("TaskDefinitions = {{ g = {{ tasks = {{ {{ name = \"hog\", command = {HOG} }} }} }} }}"),
    );
    test.run(&["run", "local.lua", "--lua-memory-limit", "64M"])
        .expect_code(1)
        .stderr_has("g/hog  FAILED")
        .stderr_has("Lua memory limit (64M) exceeded");

    let agent = Agent::start(&["--lua-memory-limit", "64M"]);
    let remote = |name: &str, command: &str| {
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "{name}", agent = "box", command = {command} }},
            }} }} }}"#,
            agent.address
        )
    };
    let test = test.write("hog.lua", &remote("hog", HOG)).write("next.lua", &remote("next", "'echo still here'"));
    test.run(&["run", "hog.lua"]).expect_code(1).stderr_has("Lua memory limit (64M) exceeded");
    test.run(&["run", "next.lua"]).expect_code(0).stderr_has("box/next | still here");
}

#[test]
fn a_busy_loop_anywhere_the_pipelines_code_runs_in_a_task_obeys_the_timeout() {
    // The engine's own code runs without the preemption hook; every call into the pipeline's
    // code from a task — hooks, a function inside `parallel`, a dispatch policy, a condition
    // in a nested job — has it.
    let spin = "function() while true do end end";
    let places = [
        ("pre_exec", format!("pre_exec = {spin}, command = 'true'")),
        ("post_exec", format!("command = 'true', post_exec = {spin}")),
        (
            "parallel",
            format!(
                "command = function() local _, err = parallel({{ {{ command = {spin} }} }}); return false, err end"
            ),
        ),
        ("nested_function", format!("command = function() local f = {spin}; return f() end")),
    ];
    for (name, fields) in places {
        let test = Test::new().write(
            "tasks.lua",
            &format!(
                "TaskDefinitions = {{ g = {{ tasks = {{ {{ name = \"{name}\", timeout = \"1s\", {fields} }} }} }} }}"
            ),
        );
        test.run(&["run", "tasks.lua"])
            .expect_code(1)
            .stderr_has(&format!("g/{name}  FAILED"))
            .stderr_has("timed out after");
    }
    let policy = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ dispatch = {spin},
                agents = {{ a = {{ address = "127.0.0.1:1" }}, b = {{ address = "127.0.0.1:2" }} }},
                tasks = {{ {{ name = "picked", agent = "*", timeout = "1s", command = "true" }} }} }} }}"#
        ),
    );
    policy.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("g/picked  FAILED").stderr_has("timed out after");
}

#[test]
fn a_lua_busy_loop_obeys_its_timeout_here_and_on_an_agent_which_frees_the_slot() {
    let spin = "function() while true do end end";
    let test = Test::new().write(
        "local.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ tasks = {{ {{ name = \"spin\", timeout = \"1s\", command = {spin} }} }} }} }}"
        ),
    );
    test.run(&["run", "local.lua"]).expect_code(1).stderr_has("g/spin  FAILED").stderr_has("timed out after");

    // One slot: the next task only runs if the spinning one really stopped on the agent.
    let agent = Agent::start(&["--max-tasks", "1"]);
    let remote = |name: &str, timeout: &str, command: &str| {
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "{name}", agent = "box", {timeout} command = {command} }},
            }} }} }}"#,
            agent.address
        )
    };
    let test = test
        .write("spin.lua", &remote("spin", "timeout = \"1s\",", spin))
        .write("next.lua", &remote("next", "timeout = \"20s\",", "'echo the slot is free'"));
    test.run(&["run", "spin.lua"]).expect_code(1).stderr_has("timed out after");
    // The task's thread (named after it) ends: the agent's CPU is its own again.
    let spinning = || {
        std::fs::read_dir(format!("/proc/{}/task", agent.pid())).is_ok_and(|threads| {
            threads.flatten().any(|thread| {
                std::fs::read_to_string(thread.path().join("comm")).is_ok_and(|name| name.trim() == "task spin")
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while spinning() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!spinning(), "the task's thread still runs on the agent");
    test.run(&["run", "next.lua"]).expect_code(0).stderr_has("box/next | the slot is free");
}

/// A loop of few but heavy instructions (each makes a string of a megabyte) obeys its timeout
/// too: the hook looks every thousand instructions, not every million (a minute of such a loop
/// before it looked at all).
#[test]
fn a_loop_of_heavy_instructions_obeys_its_timeout() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
            { name = "heavy", timeout = "1s", command = function() while true do local s = string.rep("x", 1000000) end end },
        } } }"#,
    );
    let started = Instant::now();
    test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("g/heavy  FAILED").stderr_has("timed out after");
    // (Generous: the point is seconds, not the minute it took.)
    assert!(started.elapsed() < Duration::from_secs(20), "stopped after {:?}", started.elapsed());
}

#[test]
fn an_agent_that_stops_answering_mid_task_is_noticed_and_the_retry_goes_to_another() {
    let stuck = Agent::start(&[]);
    let other = Agent::start(&[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let mark = scratch.path().join("first-attempt");
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{
                agents = {{ a = {{ address = "{}" }}, b = {{ address = "{}" }} }},
                tasks = {{
                    {{ name = "t", agent = {{ "a", "b" }}, retries = 1, retry_delay = "10ms",
                       env = {{ MARK = "{}" }},
                       command = [[if [ -e "$MARK" ]; then echo second attempt; else touch "$MARK"; sleep 30; fi]] }},
                }},
            }} }}"#,
            stuck.address,
            other.address,
            mark.display()
        ),
    );
    let mut master = test.spawn(&["run", "tasks.lua"]);
    assert!(crate::support::wait_for_path(&mark), "the first attempt never started");
    Command::new("kill").args(["-STOP", &stuck.pid().to_string()]).status().expect("kill -STOP");
    let code = wait_exit(&mut master);
    let stderr = crate::support::stderr_of(&mut master);
    Command::new("kill").args(["-CONT", &stuck.pid().to_string()]).status().expect("kill -CONT");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("agent 'a' (") && stderr.contains("stopped answering during the task"), "{stderr}");
    assert!(stderr.contains("b/t | second attempt"), "{stderr}");
}

#[test]
fn a_master_that_stops_answering_has_its_remote_task_cancelled_by_the_agent() {
    let agent = Agent::start(&[]);
    let test = Test::new();
    let pidfile = test.path().join("sleep.pid");
    let (mut master, sleep_pid) = start_long_remote_task(&test, &agent.address, &pidfile);
    Command::new("kill").args(["-STOP", &master.id().to_string()]).status().expect("kill -STOP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !crate::support::process_gone(&sleep_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone = crate::support::process_gone(&sleep_pid);
    let _ = master.kill();
    let _ = master.wait();
    assert!(gone, "the agent kept the task of a master that stopped answering");
}

/// The agent's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_thousand_stalled_streams_keep_the_agent_small_and_it_serves_again_when_they_go() {
    use sloth_runner::rpc::proto::agent_client::AgentClient as RawClient;
    use sloth_runner::rpc::proto::execute_request::Item;
    use sloth_runner::rpc::proto::{ExecuteRequest, TaskRequest};
    let agent = Agent::start(&[]);
    let before = rss_kib(agent.pid());
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let peak = tokio.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", agent.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut calls = Vec::new();
        for i in 0..1000 {
            let mut client = RawClient::new(channel.clone());
            // Half send nothing; half announce a task (with a script that never comes) and stall.
            let first = (i % 2 == 1).then(|| ExecuteRequest {
                item: Some(Item::Task(TaskRequest {
                    group: "g".into(),
                    task: "t".into(),
                    scripts: 1,
                    ..Default::default()
                })),
            });
            let stream = tokio_stream::iter(first).chain(tokio_stream::pending());
            calls.push(tokio::spawn(async move { client.execute(stream).await.map(|_| ()) }));
        }
        let mut peak = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            peak = peak.max(rss_kib(agent.pid()));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for call in calls {
            call.abort();
        }
        drop(channel);
        peak
    });
    drop(tokio);
    assert!(peak < 100 * 1024, "{peak} KiB with 1,000 stalled streams (idle: {before} KiB)");
    // They are gone: the slots are free again.
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "echo served" }},
            }} }} }}"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn the_health_service_answers_without_a_token_and_nothing_else_does() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let agent = Agent::start(&["--token", "health-test-token"]);
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    tokio.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", agent.address))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let health = HealthClient::new(channel.clone())
            .check(HealthCheckRequest { service: "sloth.agent.v1.Agent".into() })
            .await
            .expect("a health check needs no token")
            .into_inner();
        assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
        let info = sloth_runner::rpc::proto::agent_client::AgentClient::new(channel)
            .info(sloth_runner::rpc::proto::InfoRequest {})
            .await
            .expect_err("Info needs the token");
        assert_eq!(info.code(), tonic::Code::Unauthenticated, "{info:?}");
    });
}

#[test]
fn a_task_waiting_for_a_slot_is_shown_as_queued_and_then_runs() {
    use std::io::BufRead;
    let agent = Agent::start(&["--max-tasks", "1"]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let go = scratch.path().join("go");
    // The first task holds the only slot until the test has seen the second one queued.
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "first", agent = "box", command = "for i in $(seq 2000); do [ -e '{}' ] && break; sleep 0.01; done; echo first" }},
                {{ name = "second", agent = "box", command = "echo second" }},
            }} }} }}"#,
            agent.address,
            go.display()
        ),
    );
    let mut run = test.spawn_capturing(&["run", "--jobs", "2", "tasks.lua"]);
    let stderr = std::io::BufReader::new(run.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        seen.push(line.clone());
        if line.contains("queued on agent 'test-agent': its 1 task slot(s) are busy") {
            break;
        }
    }
    std::fs::write(&go, "").expect("go");
    seen.extend(lines.map_while(Result::ok));
    let seen = seen.join("\n");
    assert_eq!(crate::support::wait_exit(&mut run), Some(0), "{seen}");
    assert!(seen.contains("queued on agent 'test-agent'"), "{seen}");
    assert!(seen.contains("box/second | second"), "{seen}");
}

#[test]
fn a_process_left_in_a_session_of_its_own_holding_the_output_does_not_hold_the_task_here_or_there() {
    let agent = Agent::start(&[]);
    let test = Test::new();
    let pids = test.path().display().to_string();
    // (The command waits until the process is in its session: only then is it out of reach.)
    let command = |name: &str| {
        format!(
            "setsid sh -c 'echo $$ > {pids}/{name}.pid; exec sleep 30' & \
             while [ ! -s {pids}/{name}.pid ]; do sleep 0.01; done; echo hi"
        )
    };
    let test = test.write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "here", command = [[{}]] }},
                {{ name = "there", agent = "box", command = [[{}]] }},
            }} }} }}"#,
            agent.address,
            command("here"),
            command("there")
        ),
    );
    let run = test.run(&["run", "-j", "2", "tasks.lua"]);
    for name in ["here", "there"] {
        let pid = wait_for_line_file(&test.path().join(format!("{name}.pid")));
        let _ = Command::new("kill").args(["-9", &pid]).status();
    }
    let run = run.expect_code(0);
    for prefix in ["g/here", "box/there"] {
        assert!(run.stderr.contains(&format!("{prefix} | hi")), "{}", run.stderr);
    }
    assert!(run.stderr.contains("session of its own still holds its output"), "said\n{}", run.stderr);
}

/// `os.exit` in a task on an agent ends that task, failed, naming it — never the agent, nor
/// the task another master (here: another task of the run) has running there; the task's own
/// `pcall` does not swallow it. Here it ends the run with its code, as Lua's does.
#[test]
fn os_exit_in_a_remote_task_ends_the_task_not_the_agent() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "other", agent = "box", command = "sleep 1; echo done > other.txt" }},
                {{ name = "leaves", agent = "box", command = function()
                    print("before")
                    pcall(os.exit, 3)
                    print("after")
                    return true
                end }},
            }} }} }}"#,
            agent.address
        ),
    );
    let run = test.run(&["run", "tasks.lua"]);
    let context = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(1), "{context}");
    assert!(run.stdout.contains("before") && !run.stdout.contains("after"), "{context}");
    assert!(run.stderr.contains("os.exit(3)"), "{context}");
    assert_eq!(test.read("other.txt"), "done\n", "{context}");
    // The agent still serves.
    std::fs::write(
        test.path().join("again.lua"),
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }},
                tasks = {{ {{ name = "again", agent = "box", command = "echo again > again.txt" }} }} }} }}"#,
            agent.address
        ),
    )
    .expect("write");
    test.run(&["run", "again.lua"]).expect_code(0);
    assert_eq!(test.read("again.txt"), "again\n");
    // Here, os.exit ends the run with its code.
    std::fs::write(
        test.path().join("here.lua"),
        r#"TaskDefinitions = { g = { tasks = { { name = "here", command = function() print("here") os.exit(3) end } } } }"#,
    )
    .expect("write");
    test.run(&["run", "here.lua"]).expect_code(3).stdout_has("here");
}

/// `--work-dir` and `--cache-dir` given relative to where the agent starts, as a user typing
/// `sloth-runner agent --work-dir state` would: the task's directory is found all the same.
#[test]
fn a_work_dir_and_cache_dir_given_relative_serve_tasks() {
    let start_dir = tempfile::tempdir().expect("tempdir");
    let script = format!("cd '{}' && exec \"$0\" \"$@\"", start_dir.path().display());
    let agent = Agent::start_wrapped(&["sh", "-c", &script], &["--work-dir", "state", "--cache-dir", "blobs"]);
    let test = Test::new().write("in.txt", "sent\n").write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "cat in.txt > out.txt" }},
                {{ name = "again", agent = "box", depends_on = "t", command = "cat in.txt >> out.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("out.txt"), "sent\nsent\n");
    assert!(start_dir.path().join("state").is_dir() && start_dir.path().join("blobs").is_dir());
}
