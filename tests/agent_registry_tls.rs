//! `sloth-runner master` serving TLS: agents register over TLS (`--master-tls-ca`, and a client
//! certificate for a master that requires one), operators list, run and stop over TLS, and a
//! pipeline's `sloth://` pool asks the master over TLS. Whoever cannot prove who they are, or
//! talks plaintext, is refused and told what to give. Certificates are made fresh for each test.

use std::time::Duration;

use crate::agent_registry::{TOKEN, names, wait_for_log, wait_for_names};
use crate::support::Test;
use crate::support::agent::Agent;
use crate::support::pki::Pki;

/// A master serving TLS with the test CA's server certificate, plus `args`.
fn tls_master(pki: &Pki, args: &[&str]) -> Agent {
    let mut all = vec!["--tls-cert".to_owned(), pki.path("server.pem"), "--tls-key".to_owned(), pki.path("server.key")];
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    Agent::start_master(0, &all)
}

/// A master that requires client certificates the test CA signed (no token: the certificates
/// are the authentication).
fn mutual_tls_master(pki: &Pki) -> Agent {
    let client_ca = pki.path("ca.pem");
    tls_master(pki, &["--tls-client-ca", &client_ca])
}

/// `--master ADDR` with the CA and the client certificate `client` (`client.pem`/`.key`, or
/// `intruder`) as flags.
fn master_flags(master: &Agent, pki: &Pki, ca: &str, client: Option<&str>) -> Vec<String> {
    let mut flags = vec!["--master".to_owned(), master.address.clone(), "--master-tls-ca".to_owned(), pki.path(ca)];
    if let Some(client) = client {
        flags.extend([
            "--master-tls-cert".to_owned(),
            pki.path(&format!("{client}.pem")),
            "--master-tls-key".to_owned(),
            pki.path(&format!("{client}.key")),
        ]);
    }
    flags
}

/// An agent named `name` registering with `master` with `flags` (see [`master_flags`]),
/// heartbeats every 100 ms, serving `serving` (its own TLS flags), WHO=name in its tasks' env.
fn agent(name: &str, flags: &[String], serving: &[String]) -> Agent {
    let mut args: Vec<&str> = flags.iter().chain(serving).map(String::as_str).collect();
    args.extend(["--heartbeat", "100ms"]);
    Agent::start_named(name, &args, &[("WHO", name)])
}

/// An operator's directory that reaches `master` through the environment: SLOTH_MASTER and
/// SLOTH_MASTER_TLS_CA/_CERT/_KEY with the test CA and client certificate.
fn operator(master: &Agent, pki: &Pki) -> Test {
    Test::new()
        .env("SLOTH_MASTER", &master.address)
        .env("SLOTH_MASTER_TLS_CA", &pki.path("ca.pem"))
        .env("SLOTH_MASTER_TLS_CERT", &pki.path("client.pem"))
        .env("SLOTH_MASTER_TLS_KEY", &pki.path("client.key"))
}

#[test]
fn over_mutual_tls_agents_register_and_are_listed_run_discovered_and_stopped() {
    let pki = Pki::new();
    let master = mutual_tls_master(&pki);
    // The agent serves TLS too (the same CA): the master hands out its https:// address.
    let serving = ["--tls-cert".to_owned(), pki.path("server.pem"), "--tls-key".to_owned(), pki.path("server.key")];
    let mut alpha = agent("alpha", &master_flags(&master, &pki, "ca.pem", Some("client")), &serving);
    let ops = operator(&master, &pki);
    wait_for_names(&ops, &["alpha"]);

    let table = ops.run(&["agent", "list"]).expect_code(0);
    assert!(
        table
            .stdout
            .lines()
            .any(|line| line.starts_with("alpha") && line.contains(&format!("https://{}", alpha.address))),
        "{}",
        table.stdout
    );
    // The same with flags rather than the environment.
    let mut flags = master_flags(&master, &pki, "ca.pem", Some("client"));
    flags.splice(0..0, ["agent".to_owned(), "list".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Test::new().run(&flags).expect_code(0).stdout_has("alpha");

    // `agent run`: found through the master, then run on the agent at its https:// address
    // (trusted through the system's roots: here SSL_CERT_FILE).
    operator(&master, &pki)
        .env("SSL_CERT_FILE", &pki.path("ca.pem"))
        .run(&["agent", "run", "alpha", "--", "echo", "hi from $WHO"])
        .expect_code(0)
        .stderr_has("alpha | hi from alpha");

    // A pipeline's pool asks the master over TLS (the SLOTH_MASTER_TLS_* variables), and
    // reaches its members with the pool's own `tls`.
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{
  agents = {{ fleet = {{ discover = "sloth://{}", tls = {{ ca = "{}" }} }} }},
  tasks = {{ {{ name = "t", agent = "fleet", command = "echo on $WHO > where.txt" }} }},
}} }}"#,
        master.address,
        pki.path("ca.pem")
    );
    let run = operator(&master, &pki).write("tasks.lua", &pipeline);
    run.run(&["run", "tasks.lua"]).expect_code(0).stderr_has("fleet/alpha:");
    assert_eq!(run.read("where.txt"), "on alpha\n");

    // `agent stop` over TLS: the agent hears it on its next heartbeat and stops.
    operator(&master, &pki).run(&["agent", "stop", "alpha"]).expect_code(0).stdout_has("alpha: asked to stop");
    assert!(alpha.wait(Duration::from_secs(20)).success(), "{}", alpha.log());
    assert!(names(&ops).is_empty());
}

#[test]
fn a_mutual_tls_master_refuses_plaintext_untrusted_and_unknown_clients_and_says_what_to_give() {
    let pki = Pki::new();
    let master = mutual_tls_master(&pki);
    let _good = agent("good", &master_flags(&master, &pki, "ca.pem", Some("client")), &[]);
    let ops = operator(&master, &pki);
    wait_for_names(&ops, &["good"]);

    let list = |args: &[&str], env: &[(&str, &str)]| {
        let mut test = Test::new();
        for (name, value) in env {
            test = test.env(name, value);
        }
        let mut all = vec!["agent", "list"];
        all.extend(args);
        test.run(&all).expect_code(1)
    };
    let address = master.address.as_str();
    let (ca, client) = (pki.path("ca.pem"), pki.path("client.pem"));
    let (intruder, intruder_key) = (pki.path("intruder.pem"), pki.path("intruder.key"));
    // Plaintext against a TLS master.
    list(&["--master", address], &[]).stderr_has("cannot reach the master").stderr_has("seems to serve TLS");
    // TLS, but the master's CA is not trusted: by this system, or by the CA given.
    list(&["--master", &format!("https://{address}")], &[("SSL_CERT_FILE", &Pki::new().path("ca.pem"))])
        .stderr_has("not signed by a CA this system trusts")
        .stderr_has("--master-tls-ca");
    list(&["--master", address, "--master-tls-ca", &intruder], &[]).stderr_has("not signed by --master-tls-ca");
    // The master's CA, but no client certificate, or one its client CA did not sign.
    list(&["--master", address, "--master-tls-ca", &ca], &[])
        .stderr_has("the master at")
        .stderr_has("requires a client certificate")
        .stderr_has("--master-tls-cert");
    list(
        &[
            "--master",
            address,
            "--master-tls-ca",
            &ca,
            "--master-tls-cert",
            &intruder,
            "--master-tls-key",
            &intruder_key,
        ],
        &[],
    )
    .stderr_has("did not accept --master-tls-cert");
    // A certificate without its key is a usage error, from flags and variables alike.
    Test::new()
        .run(&["agent", "list", "--master", address, "--master-tls-cert", &client])
        .expect_code(2)
        .stderr_has("--master-tls-key");
    Test::new()
        .env("SLOTH_MASTER", address)
        .env("SLOTH_MASTER_TLS_CA", &ca)
        .env("SLOTH_MASTER_TLS_CERT", &client)
        .run(&["agent", "list"])
        .expect_code(2)
        .stderr_has("--master-tls-key");

    // Agents that cannot prove who they are keep trying, say why, and are never listed.
    let plaintext = agent("plaintext", &["--master".to_owned(), master.address.clone()], &[]);
    let no_cert = agent("no-cert", &master_flags(&master, &pki, "ca.pem", None), &[]);
    let impostor = agent("impostor", &master_flags(&master, &pki, "ca.pem", Some("intruder")), &[]);
    wait_for_log(&plaintext, "seems to serve TLS");
    wait_for_log(&no_cert, "requires a client certificate");
    wait_for_log(&impostor, "did not accept --master-tls-cert");
    assert_eq!(names(&ops), ["good"]);

    // A pipeline whose pool asks the master without its CA: the pool resolves to nothing,
    // said with the URL and what to give.
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ agents = {{ fleet = {{ discover = "sloth://{address}" }} }},
  tasks = {{ {{ name = "t", agent = "fleet", command = "true" }} }} }} }}"#
    );
    let refused = Test::new().write("tasks.lua", &pipeline).run(&["run", "tasks.lua"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("sloth://{address}")), "{}", refused.stderr);
    assert!(refused.stderr.contains("SLOTH_MASTER_TLS_CA"), "{}", refused.stderr);
}

#[test]
fn a_tls_master_with_a_token_refuses_a_wrong_one_and_client_certificates_count_beyond_loopback() {
    let pki = Pki::new();
    let master = tls_master(&pki, &["--token", TOKEN]);
    let ca = pki.path("ca.pem");
    let registered = Agent::start_named(
        "tokened",
        &["--master", &format!("https://{}", master.address), "--master-tls-ca", &ca, "--heartbeat", "100ms"],
        &[("SLOTH_MASTER_TOKEN", TOKEN)],
    );
    let ops = Test::new()
        .env("SLOTH_MASTER", &master.address)
        .env("SLOTH_MASTER_TLS_CA", &ca)
        .env("SLOTH_MASTER_TOKEN", TOKEN);
    wait_for_names(&ops, &["tokened"]);
    Test::new()
        .env("SLOTH_MASTER_TOKEN", "guess")
        .run(&["agent", "list", "--master", &master.address, "--master-tls-ca", &ca])
        .expect_code(1)
        .stderr_has("refused: wrong token")
        .stderr_lacks("guess");
    drop(registered);

    // Server TLS alone does not say who calls; client certificates do.
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    Test::new()
        .run(&["master", "-p", "0", "--bind", "0.0.0.0", "--tls-cert", &cert, "--tls-key", &key])
        .expect_code(2)
        .stderr_has("refusing to listen");
    let mut open = tls_master(&pki, &["--bind", "0.0.0.0", "--tls-client-ca", &ca]);
    assert!(open.stop().success());
    assert!(!open.log().contains("warning"), "{}", open.log());
}
