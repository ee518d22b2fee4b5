//! Agent pools found through DNS (`agents = { fleet = { discover = … } }`): members from SRV or
//! A records served by a DNS server on 127.0.0.1, real agents on 127.0.0.1 port 0.

use std::net::Ipv4Addr;

use crate::support::Test;
use crate::support::agent::{Agent, dead_port};
use crate::support::dns::{DnsServer, Zone};
use crate::warm::info;

const SERVICE: &str = "_sloth._tcp.fleet.test";
const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Three agents, and a zone naming them `aN.fleet.test` in SRV records of SERVICE.
fn fleet() -> (Vec<Agent>, Zone) {
    let agents: Vec<Agent> = (0..3).map(|_| Agent::start(&[])).collect();
    let mut zone = Zone::new();
    for (i, agent) in agents.iter().enumerate() {
        let target = format!("a{}.fleet.test", i + 1);
        zone = zone.srv(SERVICE, &target, port(agent)).a(&target, LOOPBACK);
    }
    (agents, zone)
}

fn port(agent: &Agent) -> u16 {
    agent.port().parse().expect("a port")
}

/// The name of member `n` (1-based) of the SRV pool.
fn member(agents: &[Agent], n: usize) -> String {
    format!("fleet/a{n}.fleet.test:{}", agents[n - 1].port())
}

/// A pipeline whose group `g` has the pool `fleet` (`discover`, asking `dns`) and `tasks`.
fn pipeline(discover: &str, dns: &DnsServer, group_fields: &str, tasks: &str) -> String {
    format!(
        r#"local function on_pool(name, fields)
  local task = {{ name = name, agent = "*", command = function() log.info("ran"); return true end }}
  for k, v in pairs(fields or {{}}) do task[k] = v end
  return task
end
TaskDefinitions = {{ g = {{ {group_fields}
  agents = {{ fleet = {{ discover = "{discover}", nameserver = "{}", labels = {{ tier = "fleet" }} }} }},
  tasks = {{ {tasks} }} }} }}"#,
        dns.address
    )
}

#[test]
fn a_pool_from_srv_records_spreads_tasks_over_its_members() {
    let (agents, zone) = fleet();
    let dns = DnsServer::start(zone);
    let tasks = r#"on_pool("t1"), on_pool("t2", { agent = "fleet" }), on_pool("t3", { agent = { labels = { tier = "fleet" } } })"#;
    Test::new()
        .write("tasks.lua", &pipeline(&format!("dns+srv://{SERVICE}"), &dns, r#"dispatch = "round_robin","#, tasks))
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has(&format!("{}/t1  INFO  ran", member(&agents, 1)))
        .stderr_has(&format!("{}/t2  INFO  ran", member(&agents, 2)))
        .stderr_has(&format!("{}/t3  INFO  ran", member(&agents, 3)));
    for agent in &agents {
        assert!(info(agent).contents_requested > 0, "every member was sent a task");
    }
    // Resolved once for the run, for three tasks.
    assert_eq!(dns.queries(), 1);
}

#[test]
fn tasks_that_need_a_pool_at_once_share_one_lookup() {
    let (agents, zone) = fleet();
    let dns = DnsServer::start(zone);
    let tasks = r#"on_pool("t1"), on_pool("t2"), on_pool("t3")"#;
    Test::new()
        .write("tasks.lua", &pipeline(&format!("dns+srv://{SERVICE}"), &dns, r#"dispatch = "round_robin","#, tasks))
        .run(&["run", "tasks.lua", "--jobs", "3"])
        .expect_code(0);
    assert_eq!(dns.queries(), 1);
    for agent in &agents {
        assert!(info(agent).contents_requested > 0, "every member was sent a task");
    }
}

#[test]
fn the_tasks_of_a_stopped_member_fail_over_to_the_others() {
    let (mut agents, zone) = fleet();
    let dns = DnsServer::start(zone);
    let _ = agents[1].stop();
    let tasks = r#"on_pool("t1", { retries = 1, retry_delay = "10ms" }), on_pool("t2", { retries = 1, retry_delay = "10ms" }),
      on_pool("t3", { retries = 1, retry_delay = "10ms" }), on_pool("t4", { retries = 1, retry_delay = "10ms" })"#;
    let run = Test::new()
        .write("tasks.lua", &pipeline(&format!("dns+srv://{SERVICE}"), &dns, r#"dispatch = "round_robin","#, tasks))
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has(&format!("g/t2  attempt 1/2 failed: cannot reach agent '{}'", member(&agents, 2)));
    assert!(!run.stderr.contains(&format!("{}/t", member(&agents, 2))), "{}", run.stderr);
    for task in ["t1", "t2", "t3", "t4"] {
        let ran_on_a_live_one =
            [1, 3].iter().any(|n| run.stderr.contains(&format!("{}/{task}  INFO  ran", member(&agents, *n))));
        assert!(ran_on_a_live_one, "{task}: {}", run.stderr);
    }
    // The other members answered: no need to ask DNS again.
    assert_eq!(dns.queries(), 1);
}

#[test]
fn a_pool_whose_every_member_failed_is_resolved_again() {
    let dead = dead_port();
    let alive = Agent::start(&[]);
    let first = Zone::new().srv(SERVICE, "old.fleet.test", dead.port).a("old.fleet.test", LOOPBACK);
    let then = Zone::new().srv(SERVICE, "new.fleet.test", port(&alive)).a("new.fleet.test", LOOPBACK);
    let dns = DnsServer::start_changing(vec![first, then]);
    let tasks = r#"on_pool("t", { retries = 1, retry_delay = "10ms" }), on_pool("u", { depends_on = "t" })"#;
    Test::new()
        .write("tasks.lua", &pipeline(&format!("dns+srv://{SERVICE}"), &dns, "", tasks))
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has(&format!("g/t  attempt 1/2 failed: cannot reach agent 'fleet/old.fleet.test:{}'", dead.port))
        .stderr_has(&format!("fleet/new.fleet.test:{}/t  INFO  ran", alive.port()))
        .stderr_has(&format!("fleet/new.fleet.test:{}/u  INFO  ran", alive.port()));
    // Once for t's first attempt, once when its only member had failed; u found it known.
    assert_eq!(dns.queries(), 2);
}

#[test]
fn a_pool_from_a_records_connects_to_each_address_on_the_port() {
    let agent = Agent::start(&[]);
    let dns = DnsServer::start(Zone::new().a("fleet.test", LOOPBACK));
    let discover = format!("dns://fleet.test:{}", agent.port());
    Test::new()
        .write("tasks.lua", &pipeline(&discover, &dns, "", r#"on_pool("t")"#))
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has(&format!("fleet/127.0.0.1:{}/t  INFO  ran", agent.port()));
    assert!(info(&agent).contents_requested > 0);
}

#[test]
fn a_pool_nobody_sends_a_task_to_is_never_asked_for() {
    let dns = DnsServer::start(Zone::new().a("fleet.test", LOOPBACK));
    let pipeline = pipeline("dns://fleet.test:1", &dns, "", r#"{ name = "here", command = "touch ran" }"#);
    let test = Test::new().write("tasks.lua", &pipeline);
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(test.exists("ran"));
    assert_eq!(dns.queries(), 0);
}

#[test]
fn a_name_without_records_is_an_error_naming_the_pool() {
    let dns = DnsServer::start(Zone::new().a("fleet.test", LOOPBACK));
    let discover = "dns://nothing.fleet.test:5000";
    let expected =
        format!("agent pool 'fleet' ({discover}): resolves to no agents: no A or AAAA records for nothing.fleet.test");
    let test = Test::new().write("tasks.lua", &pipeline(discover, &dns, "", r#"on_pool("t")"#));
    test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has(&expected);
    test.run(&["run", "tasks.lua", "--dry-run"]).expect_code(0).stdout_has(&expected);
    test.run(&["agents", "tasks.lua"]).expect_code(1).stderr_has(&format!("g: {expected}"));
}

#[test]
fn agents_and_dry_run_list_the_members() {
    let (agents, zone) = fleet();
    let dns = DnsServer::start(zone);
    let test = Test::new().write(
        "tasks.lua",
        &pipeline(&format!("dns+srv://{SERVICE}"), &dns, r#"dispatch = "least_busy","#, r#"on_pool("t")"#),
    );
    let table = test.run(&["agents", "tasks.lua"]).expect_code(0);
    for n in 1..=3 {
        let row = table.stdout.lines().find(|row| row.contains(&member(&agents, n))).expect("a member's row");
        assert!(row.contains(" up ") && row.contains(&agents[n - 1].address), "{row}");
    }
    let json = test.run(&["agents", "tasks.lua", "--output", "json"]).expect_code(0);
    let document: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("one JSON document");
    let rows = document["agents"].as_array().expect("a list");
    assert_eq!(rows.len(), 3, "{document}");
    assert!(rows.iter().all(|row| row["pool"] == "fleet" && row["up"] == true), "{document}");

    test.run(&["run", "tasks.lua", "--dry-run"])
        .expect_code(0)
        .stdout_has(&format!(
            "agent pool 'fleet' (dns+srv://{SERVICE}): 3 agent(s): {} at {}",
            member(&agents, 1),
            agents[0].address
        ))
        .stdout_has(&format!("agent {} at {}", member(&agents, 3), agents[2].address));
    for agent in &agents {
        assert_eq!(info(agent).contents_requested, 0, "nothing runs");
    }
}

#[test]
fn exec_runs_on_every_member_of_a_pool_named_or_selected_by_its_labels() {
    let (agents, zone) = fleet();
    let dns = DnsServer::start(zone);
    let test = Test::new().write("tasks.lua", &pipeline(&format!("dns+srv://{SERVICE}"), &dns, "", r#"on_pool("t")"#));
    for target in ["fleet", "tier=fleet"] {
        let run = test.run(&["exec", "-f", "tasks.lua", target, "--", "echo", "from-the-pool"]).expect_code(0);
        for n in 1..=3 {
            let name = member(&agents, n);
            assert!(run.stderr.contains(&format!("{name} | from-the-pool")), "{target}: {name}\n{}", run.stderr);
            assert!(run.stdout.lines().any(|row| row.starts_with(&name) && row.contains("ok")), "{}", run.stdout);
        }
    }
}
