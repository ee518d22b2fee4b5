//! `sloth-runner exec [-f FILE] TARGET -- COMMAND`: a shell command on the agents TARGET
//! selects, output prefixed by agent, a summary, exit 1 when it failed anywhere.

use crate::support::Test;
use crate::support::agent::{Agent, dead_port};

/// alpha (declared with a label), beta, and gamma (whose environment makes the command fail),
/// plus ghost, where nothing listens.
fn pipeline(alpha: &Agent, beta: &Agent, gamma: &Agent, ghost_port: u16) -> String {
    format!(
        r#"TaskDefinitions = {{
  fleet = {{
    agents = {{
      alpha = {{ address = "{}", labels = {{ role = "web" }} }},
      beta = {{ address = "{}" }},
      gamma = {{ address = "{}" }},
    }},
    tasks = {{ {{ name = "t", command = "touch ran" }} }},
  }},
  spare = {{ agents = {{ ghost = {{ address = "127.0.0.1:{ghost_port}" }} }}, tasks = {{ {{ name = "u", command = "true" }} }} }},
}}"#,
        alpha.address, beta.address, gamma.address
    )
}

/// The summary's row of `agent`, as words.
fn row(stdout: &str, agent: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(agent))
        .unwrap_or_else(|| panic!("no row for {agent} in\n{stdout}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn exec_runs_a_command_on_the_selected_agents_and_sums_up() {
    let alpha = Agent::start(&[]);
    let beta = Agent::start(&[]);
    let gamma = Agent::start_with_env(&[], &[("EXEC_TEST_FAIL", "1")]);
    let ghost = dead_port();
    let test = Test::new().write("tasks.lua", &pipeline(&alpha, &beta, &gamma, ghost.port));
    let command = r#"echo "said $((40 + 2))"; echo grumble >&2; test -z "$EXEC_TEST_FAIL""#;

    // Every agent the file declares, ghost included: output prefixed by agent, one row each.
    let all = test.run(&["exec", "-f", "tasks.lua", "*", "--", command]).expect_code(1);
    for agent in ["alpha", "beta", "gamma"] {
        for line in [format!("{agent} | said 42"), format!("{agent} ! grumble")] {
            assert!(all.stderr.contains(&line), "no '{line}' in\n{}", all.stderr);
        }
    }
    assert!(all.stdout.lines().next().is_some_and(|header| header.starts_with("AGENT")), "{}", all.stdout);
    assert_eq!(row(&all.stdout, "alpha")[1..3], ["ok", "0"]);
    assert_eq!(row(&all.stdout, "beta")[1..3], ["ok", "0"]);
    assert_eq!(row(&all.stdout, "gamma")[1..3], ["failed", "1"]);
    let ghost_row = row(&all.stdout, "ghost");
    assert_eq!(ghost_row[1..3], ["unreachable", "-"]);
    assert!(ghost_row.join(" ").contains("cannot reach"), "{}", all.stdout);
    assert!(!test.exists("ran"), "no task of the pipeline runs");

    // By label, by name, a list of names.
    let web = test.run(&["exec", "-f", "tasks.lua", "role=web", "--", "echo web"]).expect_code(0);
    web.stderr_has("alpha | web").stderr_lacks("beta |").stderr_lacks("gamma |");
    test.run(&["exec", "-f", "tasks.lua", "beta", "--", "echo", "one", "agent"])
        .expect_code(0)
        .stderr_has("beta | one agent");
    let two = test.run(&["exec", "-f", "tasks.lua", "alpha,gamma", "--", command]).expect_code(1);
    assert!(!two.stdout.contains("beta"), "{}", two.stdout);

    // Without -f, ./tasks.lua; an address alone needs no file.
    test.run(&["exec", "beta", "--", "true"]).expect_code(0);
    let bare = Test::new();
    bare.run(&["exec", &beta.address, "--", "echo bare"])
        .expect_code(0)
        .stderr_has(&format!("{} | bare", beta.address));

    // The command runs in an empty directory, and nothing it writes comes back.
    test.run(&["exec", "-f", "tasks.lua", "alpha", "--", "test ! -e tasks.lua && touch stray"]).expect_code(0);
    assert!(!test.exists("stray"));

    // With --sync, this directory goes, and what the command wrote comes back.
    test.run(&["exec", "-f", "tasks.lua", "alpha", "--sync", "--", "grep -q fleet tasks.lua && echo made > made.txt"])
        .expect_code(0);
    assert_eq!(test.read("made.txt"), "made\n");

    // A command past --timeout is killed there; the agent counts as failed.
    let slow = test.run(&["exec", "-f", "tasks.lua", "beta", "--timeout", "300ms", "--", "sleep 30"]).expect_code(1);
    assert_eq!(row(&slow.stdout, "beta")[1..3], ["timed", "out"]);
}

#[test]
fn exec_refuses_targets_that_select_nothing_and_shared_syncs() {
    let alpha = Agent::start(&[]);
    let beta = Agent::start(&[]);
    let gamma = Agent::start(&[]);
    let ghost = dead_port();
    let test = Test::new().write("tasks.lua", &pipeline(&alpha, &beta, &gamma, ghost.port));

    test.run(&["exec", "-f", "tasks.lua", "betta", "--", "touch ran"])
        .expect_code(2)
        .stderr_has("unknown target 'betta'")
        .stderr_has("agents: alpha, beta, gamma, ghost")
        .stderr_has("did you mean 'beta'?");
    test.run(&["exec", "-f", "tasks.lua", "role=db", "--", "touch ran"])
        .expect_code(2)
        .stderr_has("no agent has the labels role=db");
    test.run(&["exec", "-f", "tasks.lua", "alpha,beta", "--sync", "--", "touch ran"])
        .expect_code(2)
        .stderr_has("--sync with 2 agents (alpha, beta)")
        .stderr_has("--sync-many");
    Test::new().run(&["exec", "web-1", "--", "touch ran"]).expect_code(2).stderr_has("-f FILE");
    assert!(!test.exists("ran"), "nothing ran");

    // --sync-many: each agent's own file comes back.
    test.run(&[
        "exec",
        "-f",
        "tasks.lua",
        "alpha,beta",
        "--sync",
        "--sync-many",
        "--",
        "echo x > \"$(mktemp out.XXXXXX)\"",
    ])
    .expect_code(0);
    let outs = std::fs::read_dir(test.path()).expect("the test dir").flatten();
    let count = outs.filter(|entry| entry.file_name().to_string_lossy().starts_with("out.")).count();
    assert_eq!(count, 2);
}
