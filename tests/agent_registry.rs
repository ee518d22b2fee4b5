//! `sloth-runner master` and `agent --master`: real agents register with a real master and
//! send heartbeats; `agent list`, `agent run` and `agent stop` ask the master about them.

use std::time::{Duration, Instant};

use crate::support::Test;
use crate::support::agent::{Agent, free_port};

pub(crate) const TOKEN: &str = "registry-secret";

/// How long a test waits for the registry to reach a state (heartbeats are 100 ms).
pub(crate) const SETTLE: Duration = Duration::from_secs(20);

/// An agent named `name` registered with `master`, telling it WHO=name in its tasks' env.
fn registered(master: &Agent, name: &str, token: &str) -> Agent {
    Agent::start_named(
        name,
        &["--master", &master.address, "--heartbeat", "100ms"],
        &[("SLOTH_MASTER_TOKEN", token), ("WHO", name)],
    )
}

/// An operator's directory: SLOTH_MASTER and SLOTH_MASTER_TOKEN set for `master`.
fn operator(master_address: &str, token: &str) -> Test {
    Test::new().env("SLOTH_MASTER", master_address).env("SLOTH_MASTER_TOKEN", token)
}

/// (name, address) of every agent `agent list -o json` shows.
pub(crate) fn listed(operator: &Test) -> Vec<(String, String)> {
    let run = operator.run(&["agent", "list", "-o", "json"]).expect_code(0);
    let agents: serde_json::Value = serde_json::from_str(&run.stdout).expect("agent list -o json is JSON");
    agents
        .as_array()
        .expect("a list")
        .iter()
        .map(|agent| {
            (agent["name"].as_str().unwrap_or("").to_owned(), agent["address"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

pub(crate) fn names(operator: &Test) -> Vec<String> {
    listed(operator).into_iter().map(|(name, _)| name).collect()
}

/// Polls until `names(operator)` is `expected` (sorted), failing after [`SETTLE`].
pub(crate) fn wait_for_names(operator: &Test, expected: &[&str]) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = names(operator);
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "the registry never held {expected:?}: it holds {now:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agents_register_are_listed_run_commands_drop_out_and_stop() {
    let master = Agent::start_master(0, &["--token", TOKEN]);
    let mut alpha = registered(&master, "alpha", TOKEN);
    let beta = registered(&master, "beta", TOKEN);
    let mut gamma = registered(&master, "gamma", TOKEN);
    let ops = operator(&master.address, TOKEN);

    wait_for_names(&ops, &["alpha", "beta", "gamma"]);
    let expected: Vec<(String, String)> = [("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)]
        .into_iter()
        .map(|(name, agent)| (name.to_owned(), agent.address.clone()))
        .collect();
    assert_eq!(listed(&ops), expected, "each agent at the address it listens on");
    let table = ops.run(&["agent", "list"]).expect_code(0);
    let header: Vec<&str> = table.stdout.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESS", "LABELS", "VERSION", "LAST", "SEEN", "TASKS"]);
    assert!(
        table.stdout.lines().any(|line| line.starts_with("beta") && line.contains(&beta.address)),
        "{}",
        table.stdout
    );

    // `agent run`: on that agent, output as `exec` shows it, its exit code in the summary.
    ops.run(&["agent", "run", "beta", "--", "echo", "hi from $WHO"]).expect_code(0).stderr_has("beta | hi from beta");
    ops.run(&["agent", "run", "beta", "--", "echo token=${SLOTH_MASTER_TOKEN:-none}"])
        .expect_code(0)
        .stderr_has("beta | token=none");
    let failed = ops.run(&["agent", "run", "gamma", "--", "exit 3"]).expect_code(1);
    let row: Vec<&str> =
        failed.stdout.lines().find(|line| line.starts_with("gamma")).unwrap_or("").split_whitespace().collect();
    assert_eq!(row.get(1..3), Some(&["failed", "3"][..]), "{}", failed.stdout);
    ops.run(&["agent", "run", "delta", "--", "true"])
        .expect_code(2)
        .stderr_has("no agent named 'delta' is registered")
        .stderr_has("agents: alpha, beta, gamma");

    // An agent that dies leaves the list after three missed heartbeats.
    gamma.kill();
    wait_for_names(&ops, &["alpha", "beta"]);

    // `agent stop`: the agent hears it on its next heartbeat, stops as on SIGTERM (exit 0),
    // and is gone from the list.
    ops.run(&["agent", "stop", "alpha"]).expect_code(0).stdout_has("alpha: asked to stop");
    assert!(alpha.wait(Duration::from_secs(20)).success(), "{}", alpha.log());
    assert!(alpha.log().contains("the master asks this agent to stop"), "{}", alpha.log());
    assert_eq!(names(&ops), ["beta"]);
    ops.run(&["agent", "stop", "alpha"]).expect_code(2).stderr_has("no agent named 'alpha' is registered");
}

#[test]
fn a_wrong_or_missing_token_is_refused_for_agents_and_operators() {
    let master = Agent::start_master(0, &["--token", TOKEN]);
    let mut intruder = registered(&master, "intruder", "guess");
    let honest = registered(&master, "honest", TOKEN);
    let ops = operator(&master.address, TOKEN);
    wait_for_names(&ops, &["honest"]);

    // The agent with the wrong token is refused, says so, and keeps trying (it does not exit).
    wait_for_log(&intruder, "refused: wrong token");
    assert!(!intruder.log().contains("guess"), "the token is never printed");
    assert!(intruder.running());
    assert_eq!(names(&ops), ["honest"]);

    operator(&master.address, "guess")
        .run(&["agent", "list"])
        .expect_code(1)
        .stderr_has("refused: wrong token")
        .stderr_lacks("guess");
    Test::new()
        .env("SLOTH_MASTER", &master.address)
        .run(&["agent", "list"])
        .expect_code(1)
        .stderr_has("this master requires a token");
    operator(&master.address, "guess").run(&["agent", "stop", "honest"]).expect_code(1).stderr_has("wrong token");
    Test::new().run(&["agent", "list"]).expect_code(2).stderr_has("--master ADDR, or set SLOTH_MASTER");
    drop(honest);
}

#[test]
fn agents_register_again_with_a_restarted_master() {
    let port = free_port();
    let mut master = Agent::start_master(port, &["--token", TOKEN]);
    let mut one = registered(&master, "one", TOKEN);
    let mut two = registered(&master, "two", TOKEN);
    let ops = operator(&master.address, TOKEN);
    wait_for_names(&ops, &["one", "two"]);

    assert!(master.stop().success());
    ops.run(&["agent", "list"]).expect_code(1).stderr_has("cannot reach the master");
    // With the master gone, the agents notice, and go on.
    for agent in [&mut one, &mut two] {
        wait_for_log(agent, "cannot register with the master");
        assert!(agent.running(), "{}", agent.log());
    }

    let _again = Agent::start_master(port, &["--token", TOKEN]);
    wait_for_names(&ops, &["one", "two"]);
    for agent in [&one, &two] {
        assert!(agent.log().contains("registering again"), "{}", agent.log());
    }
}

/// Polls until the agent's log holds `needle`, failing after [`SETTLE`].
pub(crate) fn wait_for_log(agent: &Agent, needle: &str) {
    let deadline = Instant::now() + SETTLE;
    while !agent.log().contains(needle) {
        assert!(Instant::now() < deadline, "no '{needle}' in the agent's log:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_agent_daemon_flags_and_its_subcommands_do_not_mix_and_a_master_needs_auth_beyond_loopback() {
    Test::new()
        .run(&["agent", "--max-tasks", "2", "list", "--master", "127.0.0.1:1"])
        .expect_code(2)
        .stderr_has("cannot be used with");
    // A master beyond loopback without a token or client certificates: refused, as an agent.
    Test::new()
        .run(&["master", "-p", "0", "--bind", "0.0.0.0"])
        .expect_code(2)
        .stderr_has("refusing to listen on 0.0.0.0 without a token")
        .stderr_has("SLOTH_MASTER_TOKEN");
    let help = Test::new().run(&["agent", "--help"]).expect_code(0);
    for word in ["list", "run", "stop", "--master", "--heartbeat", "--advertise", "SLOTH_MASTER"] {
        assert!(help.stdout.contains(word), "no '{word}' in\n{}", help.stdout);
    }
}

#[test]
fn a_pipeline_discovers_the_agents_registered_with_a_master() {
    let master = Agent::start_master(free_port(), &["--token", TOKEN]);
    let _alpha = registered(&master, "alpha", TOKEN);
    let _beta = registered(&master, "beta", TOKEN);
    wait_for_names(&operator(&master.address, TOKEN), &["alpha", "beta"]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ dispatch = "round_robin",
  agents = {{ fleet = {{ discover = "sloth://{}" }} }},
  tasks = {{
    {{ name = "t1", agent = "*", command = "echo on $WHO" }},
    {{ name = "t2", agent = "*", command = "echo on $WHO" }},
  }} }} }}"#,
        master.address
    );
    let test = operator(&master.address, TOKEN).write("tasks.lua", &pipeline);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("on alpha") && run.stderr.contains("on beta"), "{}", run.stderr);
    assert!(run.stderr.contains("fleet/alpha:") && run.stderr.contains("fleet/beta:"), "{}", run.stderr);
    // A wrong token for the registry: the pool resolves to nothing, said with the URL.
    let refused = operator(&master.address, "wrong").write("tasks.lua", &pipeline).run(&["run", "tasks.lua"]);
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains(&format!("sloth://{}", master.address)), "{}", refused.stderr);
}

#[test]
fn a_second_agent_under_a_taken_name_is_refused_and_says_why() {
    let master = Agent::start_master(free_port(), &["--token", TOKEN]);
    let operator = operator(&master.address, TOKEN);
    let first = registered(&master, "twin", TOKEN);
    wait_for_names(&operator, &["twin"]);
    let second = registered(&master, "twin", TOKEN);
    let deadline = Instant::now() + SETTLE;
    while !second.log().contains("is the agent's at") {
        assert!(Instant::now() < deadline, "the second agent never heard why: {}", second.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = listed(&operator);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].1.ends_with(&format!(":{}", first.port())), "still the first agent: {listed:?}");
}

#[test]
fn an_agent_stopped_by_sigterm_leaves_the_list_at_once() {
    let master = Agent::start_master(free_port(), &["--token", TOKEN]);
    let operator = operator(&master.address, TOKEN);
    // Heartbeats a minute apart: only the agent's own word takes it off the list this soon.
    let mut leaving = Agent::start_named(
        "leaving",
        &["--master", &master.address, "--heartbeat", "60s"],
        &[("SLOTH_MASTER_TOKEN", TOKEN)],
    );
    let _staying = registered(&master, "staying", TOKEN);
    wait_for_names(&operator, &["leaving", "staying"]);
    assert!(leaving.stop().success());
    assert_eq!(names(&operator), ["staying"]);
}
