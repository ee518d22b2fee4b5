//! An agent keeps the Lua VM a task of a run ran in for the run's next task of the same
//! pipeline — what the task functions left in Lua is there for the next one, exactly as when the
//! run's tasks all run on the master, which has one VM per run — and never gives it to another
//! run, another pipeline or another master.

use crate::support::Test;
use crate::support::agent::Agent;

/// A pipeline of three chained function tasks, each counting in a global how many tasks of
/// this Lua state ran before it, and saying how many times the file itself was read; on
/// `agent` when given. `edit` changes the file's text without changing what it does.
fn pipeline(agent: Option<&Agent>, edit: &str) -> String {
    let (agents, on) = match agent {
        Some(agent) => (format!("agents = {{ box = {{ address = \"{}\" }} }},", agent.address), "agent = \"box\","),
        None => (String::new(), ""),
    };
    let task = |name: &str, after: &str| {
        format!(
            "{{ name = \"{name}\", {on} {after} command = function() SEEN = (SEEN or 0) + 1; \
             print(\"{name} seen \" .. SEEN .. \" loads \" .. LOADS) return true end }},"
        )
    };
    format!(
        "-- {edit}\nLOADS = (LOADS or 0) + 1\nTaskDefinitions = {{ g = {{ {agents} tasks = {{\n{}\n{}\n{}\n}} }} }}\n",
        task("a", ""),
        task("b", "depends_on = \"a\","),
        task("c", "depends_on = \"b\","),
    )
}

/// The `seen` lines a run printed, in order (`a seen 1 loads 1`, …), without the prefix an
/// agent's output lines carry.
fn seen(output: &str) -> Vec<String> {
    output
        .lines()
        .map(|line| line.split_once(" | ").map_or(line, |(_, text)| text).trim().to_owned())
        .filter(|text| text.contains(" seen ") && text.contains(" loads "))
        .collect()
}

#[test]
fn the_tasks_of_a_run_on_one_agent_see_the_lua_state_earlier_ones_left_as_on_the_master() {
    let local = Test::new().write("tasks.lua", &pipeline(None, "v1"));
    let here = seen(&local.run(&["run", "tasks.lua"]).expect_code(0).stdout);
    assert_eq!(here, ["a seen 1 loads 1", "b seen 2 loads 1", "c seen 3 loads 1"]);

    let agent = Agent::start(&[]);
    let remote = Test::new().write("tasks.lua", &pipeline(Some(&agent), "v1"));
    let run = remote.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(seen(&run.stdout), here, "the same output on the agent\n{}", run.stderr);

    // With `--return`, stdout is the JSON document: what the tasks printed goes to stderr, here
    // as on the master.
    let json = remote.run(&["run", "--return", "tasks.lua"]).expect_code(0);
    assert!(json.stdout.trim_start().starts_with('{') && seen(&json.stdout).is_empty(), "{}", json.stdout);
    assert_eq!(seen(&json.stderr), here, "{}", json.stderr);

    // A new run is a new Lua state, on the master as on the agent, even with the same file.
    let again = remote.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(seen(&again.stdout), here, "a second run starts afresh\n{}", again.stderr);

    // Another pipeline text (same run shape) is another state too.
    std::fs::write(remote.path().join("tasks.lua"), pipeline(Some(&agent), "v2")).expect("edit");
    let edited = remote.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(seen(&edited.stdout), here, "an edited pipeline starts afresh\n{}", edited.stderr);
}

#[test]
fn two_runs_at_once_on_one_agent_never_share_lua_state() {
    let agent = Agent::start(&[]);
    let test = Test::new().write("tasks.lua", &pipeline(Some(&agent), "v1"));
    let runs: Vec<_> = (0..3).map(|_| test.spawn_capturing(&["run", "tasks.lua"])).collect();
    for child in runs {
        let output = child.wait_with_output().expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            seen(&String::from_utf8_lossy(&output.stdout)),
            ["a seen 1 loads 1", "b seen 2 loads 1", "c seen 3 loads 1"],
            "{stderr}"
        );
    }
}
