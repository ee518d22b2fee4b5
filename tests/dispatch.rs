//! Several candidate agents per task: policies, labels, plugins, and failover to a healthy
//! agent when one cannot be reached — with real agents on 127.0.0.1.

use crate::support::Test;
use crate::support::agent::{Agent, dead_port};

fn two_agents() -> (Agent, Agent) {
    (Agent::start(&["--labels", "tier=cpu"]), Agent::start(&["--labels", "tier=gpu"]))
}

fn agents_table(a: &Agent, b: &Agent) -> String {
    format!(
        r#"agents = {{ a = {{ address = "{}", labels = {{ tier = "cpu" }} }}, b = {{ address = "{}", labels = {{ tier = "gpu" }} }} }}"#,
        a.address, b.address
    )
}

#[test]
fn round_robin_spreads_tasks_over_the_candidates() {
    let (a, b) = two_agents();
    let pipeline = format!(
        r#"local function t(i) return {{ name = "t" .. i, agent = "*", command = function() log.info("ran"); return true end }} end
        TaskDefinitions = {{ g = {{ dispatch = "round_robin", {}, tasks = {{ t(1), t(2), t(3), t(4) }} }} }}"#,
        agents_table(&a, &b)
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("a/t1  INFO  ran")
        .stderr_has("b/t2  INFO  ran")
        .stderr_has("a/t3  INFO  ran")
        .stderr_has("b/t4  INFO  ran");
}

#[test]
fn labels_select_the_candidates() {
    let (a, b) = two_agents();
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ {}, tasks = {{
            {{ name = "train", agent = {{ labels = {{ tier = "gpu" }} }}, command = function() log.info("on gpu"); return true end }},
        }} }} }}"#,
        agents_table(&a, &b)
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("b/train  INFO  on gpu");
}

#[test]
fn an_unreachable_agent_is_marked_unhealthy_and_the_retry_goes_to_another() {
    let alive = Agent::start(&[]);
    let dead_socket = dead_port();
    let dead = dead_socket.port;
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{
            agents = {{ dead = {{ address = "127.0.0.1:{dead}" }}, alive = {{ address = "{}" }} }},
            tasks = {{
              {{ name = "t", agent = {{ "dead", "alive" }}, retries = 1, retry_delay = "10ms",
                command = function() log.info("made it"); return true end }},
              {{ name = "u", agent = {{ "dead", "alive" }}, depends_on = "t",
                command = function() log.info("went straight to the healthy one"); return true end }},
            }} }} }}"#,
        alive.address
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has(&format!("g/t  attempt 1/2 failed: cannot reach agent 'dead' (127.0.0.1:{dead})"))
        .stderr_has("alive/t  INFO  made it")
        .stderr_has("alive/u  INFO  went straight to the healthy one");
}

#[test]
fn a_plugin_from_the_plugins_directory_picks_the_agent() {
    let (a, b) = two_agents();
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ dispatch = "prefer_gpu", {}, tasks = {{
            {{ name = "t", agent = {{ "a", "b" }}, command = function() log.info("picked"); return true end }},
        }} }} }}"#,
        agents_table(&a, &b)
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .write(
            "plugins/prefer_gpu.lua",
            r#"return {
  name = "prefer_gpu",
  select = function(ctx)
    assert(ctx.task.name == "t" and ctx.attempt == 1 and #ctx.candidates == 2)
    for _, candidate in ipairs(ctx.candidates) do
      if candidate.labels.tier == "gpu" and candidate.healthy then return candidate.name end
    end
    return ctx.candidates[1].name
  end,
}
"#,
        )
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("b/t  INFO  picked");
}

#[test]
fn least_busy_sends_concurrent_tasks_to_different_agents() {
    let (a, b) = two_agents();
    let pipeline = format!(
        r#"local function t(i) return {{ name = "t" .. i, agent = "*", command = function()
              exec.run("sleep 0.3"); log.info("done"); return true end }} end
        TaskDefinitions = {{ g = {{ dispatch = "least_busy", {}, tasks = {{ t(1), t(2) }} }} }}"#,
        agents_table(&a, &b)
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua", "--jobs", "2"])
        .expect_code(0)
        .stderr_has("a/t1  INFO  done")
        .stderr_has("b/t2  INFO  done");
}

#[test]
fn a_remote_task_stopped_by_its_timeout_no_longer_counts_as_busy() {
    let (a, b) = two_agents();
    // t1 times out on a (the first of two idle agents); t3 starts only after that, once the
    // local t2 is done. With a free again, least_busy picks it (the first of two idle).
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ dispatch = "least_busy", {}, tasks = {{
              {{ name = "t1", agent = "*", timeout = "1s", command = "sleep 30" }},
              {{ name = "t2", command = "sleep 2" }},
              {{ name = "t3", agent = "*", depends_on = "t2", command = function()
                  log.info("ran"); return true end }},
            }} }} }}"#,
        agents_table(&a, &b)
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua", "--jobs", "2"])
        .expect_code(1)
        .stderr_has("a/t3  INFO  ran");
}

#[test]
fn an_agent_that_refuses_this_master_is_not_where_the_retry_goes() {
    let strict = Agent::start(&["--token", "the-right-one"]);
    let open = Agent::start(&[]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{
            agents = {{ strict = {{ address = "{}", token = "a-wrong-one" }}, open = {{ address = "{}" }} }},
            tasks = {{
              {{ name = "t", agent = {{ "strict", "open" }}, retries = 1, retry_delay = "10ms",
                command = function() log.info("made it"); return true end }},
              {{ name = "u", agent = {{ "strict", "open" }}, depends_on = "t",
                command = function() log.info("went straight to the one that accepts"); return true end }},
            }} }} }}"#,
        strict.address, open.address
    );
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("g/t  attempt 1/2 failed")
        .stderr_has("open/t  INFO  made it")
        .stderr_has("open/u  INFO  went straight to the one that accepts");
}
