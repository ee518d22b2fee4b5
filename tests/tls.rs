//! Agents over TLS (rustls), and mutual TLS: the agent only serves masters whose certificate
//! its client CA signed. Certificates are made fresh for each test.

use crate::support::Test;
use crate::support::agent::Agent;
use crate::support::pki::Pki;

fn pipeline(address: &str, tls: &str) -> String {
    format!(
        r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}"{tls} }} }}, tasks = {{
            {{ name = "t", agent = "box", command = "echo secure > ran.txt" }},
        }} }} }}"#
    )
}

#[test]
fn a_tls_agent_serves_a_master_that_trusts_its_ca_and_refuses_plaintext() {
    let pki = Pki::new();
    let agent = Agent::start(&["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]);
    let trusted = Test::new()
        .write("tasks.lua", &pipeline(&agent.address, &format!(r#", tls = {{ ca = "{}" }}"#, pki.path("ca.pem"))));
    trusted.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(trusted.read("ran.txt"), "secure\n");

    let plaintext = Test::new().write("tasks.lua", &pipeline(&agent.address, ""));
    plaintext.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("agent 'box'");
    assert!(!plaintext.exists("ran.txt"));

    let wrong_ca = Test::new().write(
        "tasks.lua",
        &pipeline(&agent.address, &format!(r#", tls = {{ ca = "{}" }}"#, pki.path("intruder.pem"))),
    );
    wrong_ca.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("cannot reach");
    assert!(!wrong_ca.exists("ran.txt"));
}

#[test]
fn mutual_tls_only_serves_masters_with_a_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let agent = Agent::start(&[
        "--tls-cert",
        &pki.path("server.pem"),
        "--tls-key",
        &pki.path("server.key"),
        "--tls-client-ca",
        &pki.path("ca.pem"),
    ]);
    let with_cert = format!(
        r#", tls = {{ ca = "{}", cert = "{}", key = "{}" }}"#,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let good = Test::new().write("tasks.lua", &pipeline(&agent.address, &with_cert));
    good.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(good.exists("ran.txt"));

    let no_cert = Test::new()
        .write("tasks.lua", &pipeline(&agent.address, &format!(r#", tls = {{ ca = "{}" }}"#, pki.path("ca.pem"))));
    no_cert.run(&["run", "tasks.lua"]).expect_code(1);
    assert!(!no_cert.exists("ran.txt"));

    let intruder = format!(
        r#", tls = {{ ca = "{}", cert = "{}", key = "{}" }}"#,
        pki.path("ca.pem"),
        pki.path("intruder.pem"),
        pki.path("intruder.key")
    );
    let bad = Test::new().write("tasks.lua", &pipeline(&agent.address, &intruder));
    bad.run(&["run", "tasks.lua"]).expect_code(1);
    assert!(!bad.exists("ran.txt"));
}

#[test]
fn client_certificates_count_as_authentication_beyond_loopback() {
    let pki = Pki::new();
    // Server TLS alone does not say who the master is.
    Test::new()
        .run(&[
            "agent",
            "-p",
            "0",
            "--bind",
            "0.0.0.0",
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
        ])
        .expect_code(2)
        .stderr_has("refusing to listen");
    let mut agent = Agent::start(&[
        "--bind",
        "0.0.0.0",
        "--tls-cert",
        &pki.path("server.pem"),
        "--tls-key",
        &pki.path("server.key"),
        "--tls-client-ca",
        &pki.path("ca.pem"),
    ]);
    assert!(agent.stop().success());
    assert!(!agent.log().contains("warning"), "{}", agent.log());
}

#[test]
fn an_address_may_be_written_as_an_http_or_https_url() {
    let pki = Pki::new();
    let secure = Agent::start(&["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]);
    let ca = format!(r#", tls = {{ ca = "{}" }}"#, pki.path("ca.pem"));
    let https = Test::new().write("tasks.lua", &pipeline(&format!("https://{}/", secure.address), &ca));
    https.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(https.read("ran.txt"), "secure\n");
    // `https://` without tls settings trusts the system's roots: here the test CA through
    // SSL_CERT_FILE, as a machine whose store holds the CA would.
    let system_roots = Test::new()
        .write("tasks.lua", &pipeline(&format!("https://{}", secure.address), ""))
        .env("SSL_CERT_FILE", &pki.path("ca.pem"));
    system_roots.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(system_roots.read("ran.txt"), "secure\n");
    // A store without the agent's CA: refused, with what to do; nothing ran.
    let other = Pki::new();
    let untrusted = Test::new()
        .write("tasks.lua", &pipeline(&format!("https://{}", secure.address), ""))
        .env("SSL_CERT_FILE", &other.path("ca.pem"));
    untrusted
        .run(&["run", "tasks.lua"])
        .expect_code(1)
        .stderr_has("invalid peer certificate")
        .stderr_has("not signed by a CA this system trusts");
    assert!(!untrusted.exists("ran.txt"));
    let missing = Test::new()
        .write("tasks.lua", &pipeline(&format!("https://{}", secure.address), ""))
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem");
    missing
        .run(&["run", "tasks.lua"])
        .expect_code(1)
        .stderr_has("SSL_CERT_FILE names /nonexistent/ca.pem, which cannot be read");
    // A scheme that contradicts the settings is said, not guessed around.
    let http_with_tls = Test::new().write("tasks.lua", &pipeline(&format!("http://{}", secure.address), &ca));
    http_with_tls.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("asks for plaintext");

    let plain = Agent::start(&[]);
    let http = Test::new().write("tasks.lua", &pipeline(&format!("HTTP://{}", plain.address), ""));
    http.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(http.exists("ran.txt"));
    let path = Test::new().write("tasks.lua", &pipeline(&format!("http://{}/agent", plain.address), ""));
    path.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("without a path");
}

#[test]
fn a_tls_or_token_mismatch_says_what_to_check() {
    let pki = Pki::new();
    let secure = Agent::start(&["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]);
    let plain = Agent::start(&[]);
    let cases = [
        (secure.address.clone(), String::new(), "give it tls = { ca = \"ca.pem\" } here"),
        (
            secure.address.clone(),
            format!(r#", tls = {{ ca = "{}" }}"#, pki.path("intruder.pem")),
            "check tls.ca and tls.domain",
        ),
        (
            plain.address.clone(),
            format!(r#", tls = {{ ca = "{}" }}"#, pki.path("ca.pem")),
            "the agent does not serve TLS",
        ),
    ];
    for (address, tls, hint) in cases {
        let test = Test::new().write("tasks.lua", &pipeline(&address, &tls));
        test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has(hint);
        assert!(!test.exists("ran.txt"));
    }
    let guarded = Agent::start(&["--token", "right"]);
    for (token, hint) in
        [(r#", token = "wrong""#, "differs from the agent's --token"), ("", "give the agent a `token` here")]
    {
        let test = Test::new().write("tasks.lua", &pipeline(&guarded.address, token));
        test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has(hint);
    }
}
