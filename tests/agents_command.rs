//! `sloth-runner agents FILE`: every declared agent probed at once, as a table or JSON; exit 0
//! only when all answer.

use crate::support::Test;
use crate::support::agent::Agent;

fn pipeline(live: &str, dead_port: u16) -> String {
    format!(
        r#"TaskDefinitions = {{
  build = {{ agents = {{ alpha = {{ address = "{live}" }}, ghost = {{ address = "127.0.0.1:{dead_port}" }} }},
             tasks = {{ {{ name = "t", command = "touch ran" }} }} }},
  deploy = {{ agents = {{ alpha = {{ address = "{live}" }} }}, tasks = {{ {{ name = "d", command = "touch ran" }} }} }},
}}"#
    )
}

#[test]
fn agents_shows_who_answers_as_a_table_and_as_json() {
    let agent = Agent::start(&["--labels", "os=linux,tier=fast"]);
    let dead = crate::support::agent::dead_port();
    let dead_port = dead.port;
    let test = Test::new().write("tasks.lua", &pipeline(&agent.address, dead_port));

    let table = test.run(&["agents", "tasks.lua"]).expect_code(1);
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert!(rows[0].starts_with("GROUP") && rows[0].contains("RTT"), "{}", table.stdout);
    let alpha = rows.iter().find(|row| row.starts_with("build") && row.contains("alpha")).expect("alpha's row");
    assert!(
        alpha.contains(" up ") && alpha.contains("os=linux,tier=fast") && alpha.contains(env!("CARGO_PKG_VERSION")),
        "{alpha}"
    );
    let ghost = rows.iter().find(|row| row.contains("ghost")).expect("ghost's row");
    assert!(ghost.contains(" down "), "{ghost}");
    table.stderr_has(&format!("build/ghost (127.0.0.1:{dead_port}): cannot reach"));
    assert!(!test.exists("ran"), "nothing runs");

    let json = test.run(&["agents", "-f", "tasks.lua", "--output", "json"]).expect_code(1);
    let document: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("one JSON document");
    assert_eq!(document["v"], 1);
    let agents = document["agents"].as_array().expect("a list");
    assert_eq!(agents.len(), 3, "{document}");
    let up: Vec<&serde_json::Value> = agents.iter().filter(|row| row["up"] == true).collect();
    assert_eq!(up.len(), 2);
    assert_eq!(up[0]["labels"]["os"], "linux");
    assert!(up[0]["rtt_ms"].as_f64().is_some() && up[0]["max_tasks"].as_u64().is_some(), "{document}");
    let down = agents.iter().find(|row| row["up"] == false).expect("the dead one");
    assert!(down["error"].as_str().is_some_and(|error| error.contains("cannot reach")), "{document}");

    // Only the group whose agents all answer: exit 0.
    test.run(&["agents", "tasks.lua", "-g", "deploy"]).expect_code(0).stdout_has("alpha");
}
