//! Two hosts on one machine: an agent inside a network namespace this test creates, reached
//! from the host over a veth pair — a real non-loopback network, where the agent needs a
//! token. Where namespaces cannot be made (no root, no `ip`), the test says so and skips.

use std::process::{Command, Stdio};

use crate::support::Test;
use crate::support::agent::Agent;

/// A namespace with one end of a veth pair; both are removed on drop.
struct Namespace {
    name: String,
    host_veth: String,
}

impl Namespace {
    /// `10.<a>.<b>.1` on the host, `.2` inside (returned); the reason when it cannot be made.
    fn create(tag: u32) -> Result<(Self, String), String> {
        let name = format!("sloth-t{tag}");
        let host_veth = format!("sl{tag}h");
        let ns_veth = format!("sl{tag}n");
        let (a, b) = (200 + (tag % 50), tag % 250);
        let (host_ip, ns_ip) = (format!("10.{a}.{b}.1"), format!("10.{a}.{b}.2"));
        let namespace = Self { name: name.clone(), host_veth: host_veth.clone() };
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), name.clone()],
            vec![
                "link".into(),
                "add".into(),
                host_veth.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns_veth.clone(),
            ],
            vec!["link".into(), "set".into(), ns_veth.clone(), "netns".into(), name.clone()],
            vec!["addr".into(), "add".into(), format!("{host_ip}/24"), "dev".into(), host_veth.clone()],
            vec!["link".into(), "set".into(), host_veth, "up".into()],
            vec![
                "-n".into(),
                name.clone(),
                "addr".into(),
                "add".into(),
                format!("{ns_ip}/24"),
                "dev".into(),
                ns_veth.clone(),
            ],
            vec!["-n".into(), name.clone(), "link".into(), "set".into(), ns_veth, "up".into()],
            vec!["-n".into(), name, "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        for step in steps {
            let output =
                Command::new("ip").args(&step).stdin(Stdio::null()).output().map_err(|e| format!("ip: {e}"))?;
            if !output.status.success() {
                return Err(format!("ip {}: {}", step.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
            }
        }
        Ok((namespace, ns_ip))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_veth]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[test]
fn a_master_runs_a_task_on_an_agent_in_another_network_namespace() {
    let (_namespace, ns_ip) = match Namespace::create(std::process::id() % 10_000) {
        Ok(created) => created,
        Err(why) => {
            eprintln!("SKIPPED netns test: cannot create a network namespace here: {why}");
            return;
        }
    };
    let token = "netns-token-7f3a";
    let namespace = format!("sloth-t{}", std::process::id() % 10_000);
    // Beyond loopback, the agent refuses to start without a token...
    let refused = Command::new("ip")
        .args(["netns", "exec", &namespace])
        .arg(crate::support::binary())
        .args(["agent", "-p", "0", "--bind", &ns_ip])
        .env_remove("SLOTH_AGENT_TOKEN")
        .output()
        .expect("run the agent in the namespace");
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));

    // ...and serves with one.
    let agent = Agent::start_in_namespace(&namespace, &["--bind", &ns_ip, "--token", token]);
    assert!(agent.address.starts_with(&ns_ip), "{}", agent.address);
    let test = Test::new().write("input.txt", "from the host\n").write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ far = {{ address = "{}", token = "{token}" }} }}, tasks = {{
                {{ name = "t", agent = "far", command = "ip -brief addr | grep -c {ns_ip} > seen.txt; cat input.txt >> seen.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("seen.txt"), "1\nfrom the host\n", "the task ran inside the namespace");

    // Without the token, the far agent refuses.
    let without = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ far = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "far", command = "true" }},
            }} }} }}"#,
            agent.address
        ),
    );
    without.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("requires a token");
}

#[test]
fn an_agent_cut_off_by_a_downed_link_is_noticed_within_seconds() {
    // Another subnet than the other test of this file, which may run at the same time.
    let tag = (std::process::id() % 10_000 + 1) % 10_000;
    let (namespace, ns_ip) = match Namespace::create(tag) {
        Ok(created) => created,
        Err(why) => {
            eprintln!("SKIPPED netns partition test: cannot create a network namespace here: {why}");
            return;
        }
    };
    let token = "netns-token-partition";
    let agent = Agent::start_in_namespace(&namespace.name, &["--bind", &ns_ip, "--token", token]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let mark = scratch.path().join("running");
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ far = {{ address = "{}", token = "{token}" }} }}, tasks = {{
                {{ name = "t", agent = "far", env = {{ MARK = "{}" }}, command = [[touch "$MARK"; sleep 30]] }},
            }} }} }}"#,
            agent.address,
            mark.display()
        ),
    );
    let mut master = test.spawn(&["run", "tasks.lua"]);
    if !crate::support::wait_for_path(&mark) {
        let _ = master.kill();
        let _ = master.wait();
        panic!("the task never started:\n{}\n--- agent\n{}", crate::support::stderr_of(&mut master), agent.log());
    }
    let down = Command::new("ip").args(["link", "set", &namespace.host_veth, "down"]).status().expect("ip link");
    assert!(down.success());
    let started = std::time::Instant::now();
    let code = crate::support::wait_exit(&mut master);
    let stderr = crate::support::stderr_of(&mut master);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("agent 'far'") && stderr.contains("stopped answering during the task"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(29), "noticed only when the task ended: {stderr}");
}
