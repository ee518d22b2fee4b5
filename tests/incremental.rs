//! Incremental sync: the agent asks only for contents its cache lacks, verifies what it gets,
//! and builds workspaces from manifests with the same safety rules as archive extraction.

use std::sync::Arc;
use std::time::Duration;

use sloth_runner::rpc::client::{AgentClient, WorkspaceSource};
use sloth_runner::workspace::{Entry, Manifest};

use crate::support::Test;
use crate::support::agent::Agent;

#[test]
fn a_second_run_sends_no_content_the_agent_already_has() {
    let agent = Agent::start(&[]);
    let test = Test::new().write("data/a.txt", "alpha\n").write("data/b.txt", "beta\n").write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "cat data/a.txt data/b.txt > joined.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("joined.txt"), "alpha\nbeta\n");
    std::fs::remove_file(test.path().join("joined.txt")).expect("rm");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("joined.txt"), "alpha\nbeta\n");
    let log = agent.log();
    let syncs: Vec<&str> = log.lines().filter(|line| line.contains("incremental sync")).collect();
    assert_eq!(syncs.len(), 2, "{log}");
    assert!(syncs[0].contains("missing=3"), "the first run sends every content: {}", syncs[0]);
    assert!(syncs[1].contains("missing=0"), "the second run sends nothing: {}", syncs[1]);
}

/// Sends `manifest` (contents read from `root`) to the agent for a trivial task; the error.
fn send(agent: &Agent, root: &std::path::Path, manifest: Manifest) -> String {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    tokio.block_on(async {
        let mut client =
            AgentClient::connect(&agent.address, None, None, Duration::from_secs(5)).await.expect("connect");
        let spec = crate::support::agent::trivial_task_spec();
        let source = WorkspaceSource::Incremental { root: root.to_path_buf(), manifest: Arc::new(manifest) };
        let result =
            tokio::time::timeout(Duration::from_secs(30), client.execute(spec, source, &std::env::temp_dir(), |_| {}))
                .await
                .expect("the agent answered in time");
        result.expect_err("a hostile manifest is refused").to_string()
    })
}

/// (label, manifest entries, the entry the error must name)
type HostileCase = (&'static str, Vec<(String, Entry)>, String);

#[test]
fn a_real_agent_refuses_hostile_manifests_naming_the_entry() {
    let work_dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work_dir.path().to_string_lossy()]);
    let root = tempfile::tempdir().expect("tempdir");
    // '!' sorts first, so the master reads this content from a harmless path.
    std::fs::write(root.path().join("!content.txt"), "owned").expect("write");
    let file = Entry::File { mode: 0o644, size: 5, hash: blake3::hash(b"owned") };
    let absolute = outside.path().join("absolute.txt").to_string_lossy().into_owned();
    let cases: Vec<HostileCase> = vec![
        ("absolute path", vec![(absolute.clone(), file.clone())], absolute.clone()),
        ("parent directory", vec![("../escaped.txt".to_owned(), file.clone())], "../escaped.txt".to_owned()),
        (
            "symlink out",
            vec![
                ("link".to_owned(), Entry::Symlink { target: outside.path().to_string_lossy().into_owned() }),
                ("link/x.txt".to_owned(), file.clone()),
            ],
            "link".to_owned(),
        ),
        (
            "write through an inside symlink",
            vec![
                ("real".to_owned(), Entry::Dir { mode: 0o755 }),
                ("alias".to_owned(), Entry::Symlink { target: "real".to_owned() }),
                ("alias/x.txt".to_owned(), file.clone()),
            ],
            "alias/x.txt".to_owned(),
        ),
    ];
    for (label, entries, named) in cases {
        let mut manifest = Manifest::default();
        manifest.entries.insert("!content.txt".to_owned(), file.clone());
        manifest.entries.extend(entries);
        let error = send(&agent, root.path(), manifest);
        assert!(error.contains(&named), "{label}: the error does not name '{named}': {error}");
        assert!(!std::path::Path::new(&absolute).exists(), "{label}: wrote outside");
        assert!(!outside.path().join("x.txt").exists(), "{label}: wrote through a link");
        assert!(!work_dir.path().join("escaped.txt").exists(), "{label}: escaped the task directory");
    }
}

/// The agent checks every content against its hash (`BlobCache::store`, unit-tested); the
/// master already refuses to send a file whose content no longer matches its manifest.
#[test]
fn a_file_whose_content_no_longer_matches_the_manifest_is_not_sent() {
    let agent = Agent::start(&[]);
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("a.txt"), "real content").expect("write");
    // The manifest claims other content than the file holds (as when a file is written to
    // between the snapshot and the upload).
    let mut manifest = Manifest::default();
    manifest
        .entries
        .insert("a.txt".to_owned(), Entry::File { mode: 0o644, size: 12, hash: blake3::hash(b"claimed content") });
    let error = send(&agent, root.path(), manifest);
    assert!(error.contains("a.txt: changed while it was being sent"), "{error}");
}

#[test]
fn a_manifest_larger_than_a_grpc_message_streams_in_chunks() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "count", agent = "box", command = "find files -type f | wc -l > count.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    // Paths of over 1,000 bytes: a manifest above gRPC's 4 MiB message limit.
    let bytes = crate::support::long_path_tree(test.path(), "files", 4500);
    assert!(bytes > 4_500_000, "{bytes}");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("count.txt").trim(), "4500");
}

#[test]
fn a_small_cache_limit_only_costs_resending() {
    let agent = Agent::start(&["--cache-max", "1K"]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
            {{ name = "t", agent = "box", command = "cat big-*.txt | wc -c > size.txt" }},
        }} }} }}"#,
            agent.address
        ),
    );
    for i in 0..4 {
        std::fs::write(test.path().join(format!("big-{i}.txt")), format!("{i}").repeat(4096)).expect("write");
    }
    test.run(&["run", "tasks.lua"]).expect_code(0);
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("size.txt").trim(), "16384");
    let log = agent.log();
    let second = log.lines().filter(|line| line.contains("incremental sync")).nth(1).expect("two syncs").to_owned();
    assert!(!second.contains("missing=0"), "the trimmed cache had to ask again: {second}");
    Test::new().run(&["agent", "-p", "0", "--cache-max", "lots"]).expect_code(2).stderr_has("invalid size 'lots'");
}

#[test]
fn a_cache_dir_keeps_contents_across_agent_restarts() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_string_lossy().into_owned();
    let test = Test::new().write("data.txt", "kept across restarts\n");
    let pipeline = |address: &str| {
        format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}" }} }}, tasks = {{
                {{ name = "t", agent = "box", command = "cp data.txt copy.txt" }},
            }} }} }}"#
        )
    };
    let mut first = Agent::start(&["--cache-dir", &cache_dir]);
    let test = test.write("tasks.lua", &pipeline(&first.address));
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(first.stop().success());
    std::fs::remove_file(test.path().join("copy.txt")).expect("rm");

    let second = Agent::start(&["--cache-dir", &cache_dir]);
    std::fs::write(test.path().join("tasks.lua"), pipeline(&second.address)).expect("rewrite");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("copy.txt"), "kept across restarts\n");
    let sync = second.log().lines().find(|line| line.contains("incremental sync")).map(str::to_owned).expect("a sync");
    // Only the rewritten pipeline is new to the restarted agent.
    assert!(sync.contains("missing=1"), "{sync}");
}
