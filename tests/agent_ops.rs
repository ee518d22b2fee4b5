//! What operators of agents rely on: the Prometheus metrics endpoint, JSON logs, and the health
//! command a container's HEALTHCHECK runs.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use crate::support::Test;
use crate::support::agent::{Agent, dead_port};

/// One task that succeeds (and writes a file, so changes come back) and one that fails.
fn pipeline(address: &str) -> String {
    r#"
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "ok", agent = "box", command = function()
          log.info("hello from the agent", { n = 1 })
          local f = assert(io.open("made.txt", "w")); f:write("made\n"); f:close()
          return true, "done"
        end },
      { name = "bad", agent = "box", command = "echo about to fail; exit 3" },
    },
  },
}
"#
    .replace("ADDR", address)
}

/// `GET /metrics`, the body.
fn scrape(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the metrics endpoint");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// Samples of the text format, loosely: `name{labels} value` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_count_remote_tasks_by_outcome_with_bytes_and_durations() {
    let agent = Agent::start(&["--metrics-addr", "127.0.0.1:0"]);
    let metrics = agent.next_line().strip_prefix("metrics on ").expect("a `metrics on ADDR` line").to_owned();
    let before = scrape(&metrics);
    for name in ["tasks_in_flight", "tasks_finished_total", "sync_received_bytes_total", "cache_hits_total"] {
        assert!(before.contains(&format!("# HELP sloth_agent_{name} ")), "HELP of {name} in:\n{before}");
    }
    Test::new()
        .write("input.txt", "some input\n")
        .write("tasks.lua", &pipeline(&agent.address))
        .run(&["run", "tasks.lua"])
        .expect_code(1);
    // The counts are settled just after the master hears the last result.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (text, values) = loop {
        let text = scrape(&metrics);
        let values = samples(&text);
        if values.get("sloth_agent_task_duration_seconds_count") == Some(&2.0) || Instant::now() > deadline {
            break (text, values);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let value = |name: &str| *values.get(name).unwrap_or_else(|| panic!("{name} in:\n{text}"));
    assert_eq!(value("sloth_agent_task_duration_seconds_count"), 2.0, "{text}");
    assert_eq!(value("sloth_agent_tasks_in_flight"), 0.0);
    assert_eq!(value(r#"sloth_agent_tasks_finished_total{outcome="succeeded"}"#), 1.0);
    assert_eq!(value(r#"sloth_agent_tasks_finished_total{outcome="failed"}"#), 1.0);
    assert_eq!(value(r#"sloth_agent_tasks_finished_total{outcome="cancelled"}"#), 0.0);
    assert!(value("sloth_agent_task_duration_seconds_sum") > 0.0);
    assert_eq!(value(r#"sloth_agent_task_duration_seconds_bucket{le="+Inf"}"#), 2.0);
    assert!(value("sloth_agent_sync_received_bytes_total") > 0.0);
    assert!(value("sloth_agent_sync_sent_bytes_total") > 0.0);
    assert!(value("sloth_agent_contents_requested_total") > 0.0);
    assert!(value("sloth_agent_files_written_total") > 0.0);
    assert!(value("sloth_agent_cache_bytes") > 0.0);
    // The first task found nothing cached; the second (same workspace) found its tree.
    assert!(value("sloth_agent_cache_misses_total") > 0.0);
    assert_eq!(value("sloth_agent_trees_created_total"), 1.0);
    assert_eq!(value("sloth_agent_trees_reused_total"), 1.0);
}

#[test]
fn the_metrics_endpoint_serves_only_metrics() {
    let agent = Agent::start(&["--metrics-addr", "127.0.0.1:0"]);
    let metrics = agent.next_line().strip_prefix("metrics on ").expect("a `metrics on ADDR` line").to_owned();
    let mut stream = std::net::TcpStream::connect(&metrics).expect("connect");
    write!(stream, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

#[test]
fn a_metrics_address_in_use_is_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let run = Test::new().run(&["agent", "-p", "0", "--metrics-addr", &address]).expect_code(1);
    run.stderr_has(&format!("cannot listen on {address} for --metrics-addr"));
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}")))
        .collect()
}

#[test]
fn json_logs_are_one_object_a_line_on_the_agent_and_the_master() {
    let mut agent = Agent::start(&["--log-format", "json"]);
    let run = Test::new()
        .write("tasks.lua", &pipeline(&agent.address))
        .run(&["--log-format", "json", "run", "tasks.lua"])
        .expect_code(1);
    agent.stop();
    // Every line the agent wrote is a JSON object with the expected keys.
    let lines = json_lines(&agent.log());
    assert!(!lines.is_empty());
    for line in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(line.get(key).is_some(), "{key} in {line}");
        }
        assert!(line["fields"]["message"].is_string(), "a message in {line}");
    }
    let received: Vec<_> = lines.iter().filter(|line| line["fields"]["message"] == "task received").collect();
    assert_eq!(received.len(), 2, "{lines:?}");
    assert_eq!(received[0]["fields"]["task"], "ok");
    assert_eq!(received[0]["level"], "INFO");
    // On the master, the task's own log line, with its fields and where it ran (the progress
    // lines and the summary are a report, not logs: they stay text).
    let master = json_lines(&run.stderr.lines().filter(|line| line.starts_with('{')).collect::<Vec<_>>().join("\n"));
    let hello = master
        .iter()
        .find(|line| line["fields"]["message"] == "hello from the agent")
        .unwrap_or_else(|| panic!("the task's log line in:\n{}", run.stderr));
    assert_eq!(hello["target"], "lua");
    assert_eq!(hello["fields"]["task"], "box/ok");
    assert_eq!(hello["fields"]["fields"], "n=1");
    assert!(master.iter().any(|line| line["fields"]["message"] == "about to fail" && line["target"] == "output"));
}

#[test]
fn health_says_whether_an_agent_serves() {
    let agent = Agent::start(&[]);
    Test::new().run(&["health", &agent.address]).expect_code(0).stdout_has("serving");
    let dead = dead_port();
    let address = format!("127.0.0.1:{}", dead.port);
    Test::new()
        .run(&["health", &address, "--timeout", "3s"])
        .expect_code(1)
        .stderr_has(&format!("error: cannot reach the agent at {address}"));
}
