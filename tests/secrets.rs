//! Secrets stay with their agent: a task on one agent cannot read the token the master uses for
//! another, and a sentinel token appears nowhere — not in output, events, `--return` JSON,
//! errors or agent logs.

use crate::support::Test;
use crate::support::agent::Agent;

const SENTINEL: &str = "sentinel-7f3a9c1e-secret";

#[test]
fn a_task_on_one_agent_cannot_read_another_agents_token_and_the_sentinel_appears_nowhere() {
    let agent_a = Agent::start(&["--token", "token-of-a"]);
    let agent_b = Agent::start(&["--token", SENTINEL]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{
  agents = {{
    a = {{ address = "{a}", token = os.getenv("TOKEN_A") }},
    b = {{ address = "{b}", token = os.getenv("TOKEN_B") }},
  }},
  tasks = {{
    -- After `shell`: in the VM that task leaves (kept for the run's next task), which read
    -- the pipeline and had its secrets removed then.
    {{ name = "peek", agent = "a", depends_on = "shell", command = function()
        local b = TaskDefinitions.g.agents.b
        log.info("b token: " .. tostring(b.token) .. ", tls: " .. tostring(b.tls))
        log.info("env: " .. tostring(os.getenv("TOKEN_B")))
        return true, "peeked", {{ seen = tostring(b.token) }}
      end }},
    {{ name = "shell", agent = "a", command = "env | grep -c sentinel || true" }},
    {{ name = "on_b", agent = "b", command = "echo fine" }},
  }},
}} }}
"#,
        a = agent_a.address,
        b = agent_b.address
    );
    let test = Test::new().write("tasks.lua", &pipeline).env("TOKEN_A", "token-of-a").env("TOKEN_B", SENTINEL);
    let run = test.run(&["run", "--return", "tasks.lua"]);
    let everything = format!("{}\n{}\n{}\n{}", run.stdout, run.stderr, agent_a.log(), agent_b.log());
    assert_eq!(run.code, Some(0), "{everything}");
    assert!(run.stderr.contains("b token: nil, tls: nil"), "{}", run.stderr);
    assert!(run.stderr.contains("env: nil"), "{}", run.stderr);
    assert!(run.stderr.contains("a/shell | 0"), "{}", run.stderr);
    assert!(run.stderr.contains("b/on_b | fine"), "the master reached b with its token\n{}", run.stderr);
    assert!(!everything.contains(SENTINEL), "the sentinel leaked:\n{everything}");

    // A wrong token: refused, and still not echoed.
    let test = test.env("TOKEN_B", "wrong-but-also-sentinel-7f3a9c1e-secret");
    let refused = test.run(&["run", "tasks.lua"]);
    assert_eq!(refused.code, Some(1));
    assert!(!refused.stderr.contains("wrong-but-also"), "{}", refused.stderr);
    assert!(!agent_b.log().contains("wrong-but-also"), "{}", agent_b.log());
}

#[test]
fn validate_warns_about_a_token_written_in_the_pipeline() {
    let test = Test::new().write(
        "tasks.lua",
        "TaskDefinitions = { g = {\n  agents = { a = { address = \"127.0.0.1:1\", token = \"literal\" } },\n  \
         tasks = { { name = \"t\", command = \"true\" } },\n} }\n",
    );
    let run = test.run(&["validate", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("warning: tasks.lua:2: a token written in the pipeline travels to every agent"),
        "{}",
        run.stderr
    );
    let clean = Test::new().write(
        "tasks.lua",
        "TaskDefinitions = { g = {\n  agents = { a = { address = \"127.0.0.1:1\", token = os.getenv(\"T\") } },\n  \
         tasks = { { name = \"t\", command = \"true\" } },\n} }\n",
    );
    let run = clean.run(&["validate", "tasks.lua"]);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn a_task_does_not_find_the_agents_own_token_in_its_environment() {
    let agent = Agent::start_with_env(&[], &[("SLOTH_AGENT_TOKEN", SENTINEL)]);
    let test = Test::new()
        .write(
            "tasks.lua",
            &format!(
                r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "shell", agent = "box", command = "env | grep -c SLOTH_AGENT_TOKEN || true" }},
  {{ name = "lua", agent = "box", command = function() log.info("lua sees: " .. tostring(os.getenv("SLOTH_AGENT_TOKEN"))); return true end }},
}} }} }}"#,
                agent.address
            ),
        )
        .env("SLOTH_AGENT_TOKEN", SENTINEL);
    let run = test.run(&["run", "tasks.lua"]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, agent.log());
    assert!(run.stderr.contains("box/shell | 0"), "{}", run.stderr);
    assert!(run.stderr.contains("lua sees: nil"), "{}", run.stderr);
    assert!(!run.stderr.contains(SENTINEL), "{}", run.stderr);
}
