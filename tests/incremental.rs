//! Incremental sync: the agent asks only for contents its cache lacks, verifies what it gets,
//! and builds workspaces from manifests with the same safety rules as archive extraction.

use std::sync::Arc;
use std::time::Duration;

use sloth_runner::rpc::client::{AgentClient, Call, Snapshot};
use sloth_runner::rpc::proto::FileEntry;
use sloth_runner::rpc::proto::file_entry::Kind;
use sloth_runner::workspace::{Entry, Manifest, RelPath};

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

/// A chain of remote tasks that each change a file: the master's index (its stat cache, for
/// the next run) is not written to disk for every task — at most every two seconds, and what
/// was held back when the run ends — and what is on disk then is the workspace as the last
/// task's snapshot saw it (before that task's change came back).
#[test]
fn the_index_is_written_when_the_run_ends_not_for_every_task() {
    let agent = Agent::start(&[]);
    let tasks: String = (1..=12)
        .map(|i| {
            let after = if i > 1 { format!(", depends_on = \"t{}\"", i - 1) } else { String::new() };
            format!("{{ name = \"t{i}\", agent = \"box\", command = \"echo {i} >> log.txt\"{after} }},\n")
        })
        .collect();
    let test = Test::new().write("log.txt", "0\n").write(
        "tasks.lua",
        &format!(
            "TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n{tasks}}} }} }}",
            agent.address
        ),
    );
    let run = test.run(&["--verbose", "run", "tasks.lua"]).expect_code(0);
    let final_log: String = (0..=12).map(|i| format!("{i}\n")).collect();
    assert_eq!(test.read("log.txt"), final_log);
    let written = run.stderr.lines().filter(|line| line.contains("the workspace's index written")).count();
    assert!(
        (1..=3).contains(&written),
        "12 tasks that each changed a file wrote the index {written} times\n{}",
        run.stderr
    );
    // What is on disk: log.txt as the last snapshot saw it, not as the first did.
    let physical = std::fs::canonicalize(test.path()).expect("physical");
    use std::os::unix::ffi::OsStrExt;
    let name = blake3::hash(physical.as_os_str().as_bytes()).to_hex();
    let index = std::fs::read(test.cache_path().join("sloth-runner/index").join(name.as_str())).expect("the index");
    let body = &index[index.iter().position(|&byte| byte == b'\n').expect("a header") + 1..];
    let mut rest = body;
    let mut hash_of_log = None;
    while rest.len() >= 4 {
        let length = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let path = &rest[4..4 + length];
        let hash = &rest[4 + length + 8..4 + length + 8 + 32];
        if path == b"log.txt" {
            hash_of_log = Some(hash.to_vec());
        }
        rest = &rest[4 + length + 8 + 32 + 8 + 8 + 2 * (8 + 4)..];
    }
    let last_seen: String = (0..=11).map(|i| format!("{i}\n")).collect();
    assert_eq!(hash_of_log.as_deref(), Some(blake3::hash(last_seen.as_bytes()).as_bytes().as_slice()));
}

/// Sends a task whose workspace is `entries` (crafted wire entries, as a hostile master
/// would) to the agent, answering its requests for contents with an empty archive; the error.
fn send_raw(agent: &Agent, entries: Vec<FileEntry>) -> tonic::Status {
    crate::support::agent::send_raw(agent, entries, crate::support::crafted::archive(&[]))
}

fn wire_file(path: &[u8]) -> FileEntry {
    FileEntry {
        path: path.to_vec(),
        kind: Kind::File as i32,
        mode: 0o644,
        size: 5,
        hash: blake3::hash(b"owned").as_bytes().to_vec(),
        ..Default::default()
    }
}

fn wire_link(path: &[u8], target: &[u8]) -> FileEntry {
    FileEntry { path: path.to_vec(), kind: Kind::Symlink as i32, target: target.to_vec(), ..Default::default() }
}

/// (label, manifest entries, the entry the error must name)
type HostileCase = (&'static str, Vec<FileEntry>, String);

#[test]
fn a_real_agent_refuses_hostile_manifests_naming_the_entry() {
    let work_dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work_dir.path().to_string_lossy()]);
    let absolute = outside.path().join("absolute.txt").to_string_lossy().into_owned();
    let outside_bytes = outside.path().to_string_lossy().into_owned();
    let dir = FileEntry { path: b"real".to_vec(), kind: Kind::Dir as i32, mode: 0o755, ..Default::default() };
    let cases: Vec<HostileCase> = vec![
        ("absolute path", vec![wire_file(absolute.as_bytes())], absolute.clone()),
        ("parent directory", vec![wire_file(b"../escaped.txt")], "../escaped.txt".to_owned()),
        ("not normalized", vec![wire_file(b"a//b")], "a//b".to_owned()),
        (
            "a file under a symlink out",
            vec![wire_link(b"link", outside_bytes.as_bytes()), wire_file(b"link/x.txt")],
            "link/x.txt".to_owned(),
        ),
        (
            "a chain of links",
            vec![
                FileEntry { path: b"sub".to_vec(), kind: Kind::Dir as i32, mode: 0o755, ..Default::default() },
                wire_link(b"sub/l1", b".."),
                wire_link(b"sub/l1x", b"l1/.."),
                wire_file(b"sub/l1x/x.txt"),
            ],
            "sub/l1x/x.txt".to_owned(),
        ),
        (
            "write through an inside symlink",
            vec![dir, wire_link(b"alias", b"real"), wire_file(b"alias/x.txt")],
            "alias/x.txt".to_owned(),
        ),
    ];
    for (label, entries, named) in cases {
        let status = send_raw(&agent, entries);
        // What the master sent is at fault, and the agent says so by the status's code.
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{label}: {status:?}");
        let error = status.message();
        assert!(error.contains(&named), "{label}: the error does not name '{named}': {error}");
        assert!(!std::path::Path::new(&absolute).exists(), "{label}: wrote outside");
        assert!(!outside.path().join("x.txt").exists(), "{label}: wrote through a link");
        assert!(!work_dir.path().join("escaped.txt").exists(), "{label}: escaped the task directory");
    }
}

/// A file written to between the snapshot and the upload goes as it was read, under the hash
/// of what was read, and the master learns that the task started from that.
#[test]
fn a_file_changed_since_the_manifest_is_sent_as_read() {
    let agent = Agent::start(&[]);
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::write(root.path().join("a.txt"), "real content").expect("write");
    let mut manifest = Manifest::default();
    let claimed = Entry::File {
        mode: 0o644,
        size: 15,
        hash: blake3::hash(b"claimed content"),
        mtime: Default::default(),
        link: None,
    };
    manifest.entries.insert(RelPath::parse(b"a.txt").expect("valid"), claimed);
    let (outcome, lines) = execute_claimed(&agent, root.path(), manifest, "cat a.txt");
    assert!(outcome.ok, "{:?}", outcome.message);
    assert!(lines.iter().any(|line| line.contains("real content")), "the task read what was sent: {lines:?}");
    assert!(lines.iter().any(|line| line.contains("a.txt changed while it was being sent")), "{lines:?}");
    assert_eq!(outcome.amended.len(), 1);
    assert!(
        matches!(&outcome.amended[0].1, Entry::File { hash, .. } if *hash == blake3::hash(b"real content")),
        "{:?}",
        outcome.amended
    );
}

/// Files written to between the snapshot and the upload of a large workspace — whose archive
/// goes up in many chunks while it is packed, and is written on the agent as it comes — each
/// arrive as they were read, a hard link to one of them with it; the task sees exactly what is
/// on disk here, and the master learns which files it got that way.
#[test]
fn files_changed_since_the_manifest_arrive_as_read_while_the_archive_streams() {
    let agent = Agent::start(&[]);
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("f")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("g")).expect("mkdir");
    // Contents that do not compress: the archive is megabytes, many chunks.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = |length: usize| -> Vec<u8> {
        (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let mut manifest = Manifest::default();
    let dir = Entry::Dir { mode: 0o755, mtime: Default::default() };
    manifest.entries.insert(RelPath::parse(b"f").expect("valid"), dir.clone());
    manifest.entries.insert(RelPath::parse(b"g").expect("valid"), dir);
    let file = |content: &[u8], link: Option<&str>| Entry::File {
        mode: 0o644,
        size: content.len() as u64,
        hash: blake3::hash(content),
        mtime: Default::default(),
        link: link.map(|first| RelPath::parse(first.as_bytes()).expect("valid")),
    };
    let mut changed = std::collections::BTreeSet::new();
    for i in 0..1500 {
        let name = format!("f/{i:04}");
        let content = noise(2000 + i % 300);
        std::fs::write(root.path().join(&name), &content).expect("write");
        // Every hundredth file was something else when the manifest was taken.
        let claimed = if i % 100 == 7 { noise(100) } else { content };
        if i % 100 == 7 {
            changed.insert(name.clone());
        }
        manifest.entries.insert(RelPath::parse(name.as_bytes()).expect("valid"), file(&claimed, None));
    }
    // Another name of a changed file: it holds what that file holds now.
    std::fs::hard_link(root.path().join("f/0107"), root.path().join("g/link")).expect("hard link");
    let claimed_with = manifest.entries[&RelPath::parse(b"f/0107").expect("valid")].clone();
    let Entry::File { hash, size, .. } = claimed_with else { unreachable!("a file") };
    manifest.entries.insert(
        RelPath::parse(b"g/link").expect("valid"),
        Entry::File {
            mode: 0o644,
            size,
            hash,
            mtime: Default::default(),
            link: Some(RelPath::parse(b"f/0107").expect("valid")),
        },
    );
    changed.insert("g/link".to_owned());
    let here = std::process::Command::new("sh")
        .args(["-c", "cat f/* g/link | cksum"])
        .current_dir(root.path())
        .output()
        .expect("cksum here");
    let here = String::from_utf8_lossy(&here.stdout).trim().to_owned();
    let (outcome, lines) = execute_claimed(&agent, root.path(), manifest, "cat f/* g/link | cksum");
    assert!(outcome.ok, "{:?}", outcome.message);
    assert!(lines.iter().any(|line| line.contains(&here)), "the task read what is here ({here}): {lines:?}");
    let amended: std::collections::BTreeSet<String> =
        outcome.amended.iter().map(|(path, _)| path.to_string()).collect();
    assert_eq!(amended, changed);
    for name in &changed {
        assert!(lines.iter().any(|line| line.contains(&format!("{name} changed while it was being sent"))), "{name}");
    }
    assert!(outcome.bytes_sent > 3_000_000, "{} bytes: many chunks", outcome.bytes_sent);
}

/// Runs `command` on `agent` over the workspace at `root` as `manifest` claims it is (what it
/// claims of a file may not be what the file holds now: it is then sent as read). The outcome,
/// and each event of the call.
fn execute_claimed(
    agent: &Agent,
    root: &std::path::Path,
    manifest: Manifest,
    command: &str,
) -> (sloth_runner::rpc::client::TaskOutcome, Vec<String>) {
    let pipeline =
        format!("TaskDefinitions = {{ g = {{ tasks = {{ {{ name = 't', command = [==[{command}]==] }} }} }} }}");
    let spec = sloth_runner::rpc::task_spec::TaskSpec {
        group: "g".into(),
        task: "t".into(),
        pipeline: "tasks.lua".into(),
        scripts: vec![("tasks.lua".into(), pipeline.into_bytes())],
        ..Default::default()
    };
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    tokio.block_on(async {
        let mut client =
            AgentClient::connect(&agent.address, None, None, Duration::from_secs(5)).await.expect("connect");
        let source = Snapshot { root: root.to_path_buf(), manifest: Arc::new(manifest), ignore: vec![] };
        let mut lines = Vec::new();
        let outcome = tokio::time::timeout(
            Duration::from_secs(60),
            client.execute(
                spec,
                source,
                &Call::new(std::env::temp_dir()),
                |event| lines.push(format!("{event:?}")),
                |_| {},
            ),
        )
        .await
        .expect("the agent answered in time")
        .expect("the task ran");
        (outcome, lines)
    })
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
