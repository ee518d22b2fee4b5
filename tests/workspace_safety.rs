//! Crafted archives are refused — by the extraction code itself, by a real agent receiving one
//! as the contents it asked for, and by the master receiving one as a task's changes — with an
//! error naming the entry and nothing written outside the root.

use std::path::Path;

use sloth_runner::workspace::{ApplyReport, Limits, Manifest, RelPath, WorkspaceError, unpack};

use crate::support::Test;
use crate::support::agent::Agent;
use crate::support::crafted::{Kind, archive};

/// Each hostile archive, the entry its error must name, and a path (under `outside`) that must
/// not exist afterwards.
fn hostile(outside: &Path) -> Vec<(&'static str, Vec<u8>, String, std::path::PathBuf)> {
    let absolute = outside.join("absolute.txt");
    let absolute_name = absolute.to_string_lossy().into_owned();
    let through_root = format!("root{}", outside.join("via-root.txt").display());
    vec![
        ("absolute path", archive(&[(&absolute_name, Kind::File(b"owned"))]), absolute_name.clone(), absolute),
        (
            "parent directory",
            archive(&[("../escaped.txt", Kind::File(b"owned"))]),
            "../escaped.txt".to_owned(),
            outside.join("escaped.txt"),
        ),
        (
            "symlink out, then a write through it",
            archive(&[("link", Kind::Symlink(&outside.to_string_lossy())), ("link/through.txt", Kind::File(b"owned"))]),
            "link/through.txt".to_owned(),
            outside.join("through.txt"),
        ),
        (
            "relative symlink climbing out",
            archive(&[("sub/up", Kind::Symlink("../../..")), ("sub/up/x.txt", Kind::File(b"owned"))]),
            "sub/up/x.txt".to_owned(),
            outside.join("x.txt"),
        ),
        (
            "write through an inside symlink",
            archive(&[("real", Kind::Dir), ("alias", Kind::Symlink("real")), ("alias/x.txt", Kind::File(b"x"))]),
            "alias/x.txt".to_owned(),
            outside.join("never"),
        ),
        (
            "a link to the root, then a file under it",
            archive(&[("root", Kind::Symlink("/")), (&through_root, Kind::File(b"owned"))]),
            through_root.clone(),
            outside.join("via-root.txt"),
        ),
        (
            "a chain of links that passes the lexical check",
            archive(&[
                ("sub", Kind::Dir),
                ("sub/l1", Kind::Symlink("..")),
                ("escape", Kind::Symlink("sub/l1/..")),
                ("escape/chained.txt", Kind::File(b"owned")),
            ]),
            "escape/chained.txt".to_owned(),
            outside.join("chained.txt"),
        ),
        ("device file", archive(&[("dev", Kind::CharDevice)]), "dev".to_owned(), outside.join("never")),
        ("hard link", archive(&[("hard", Kind::HardLink(&absolute_name))]), "hard".to_owned(), outside.join("never")),
        (
            "a hard link up and out",
            archive(&[("hard", Kind::HardLink("../escaped.txt"))]),
            "hard".to_owned(),
            outside.join("never"),
        ),
        (
            "a hard link to a later entry",
            archive(&[("a", Kind::HardLink("b")), ("b", Kind::File(b"b"))]),
            "'a'".to_owned(),
            outside.join("never"),
        ),
        (
            "a hard link to itself",
            archive(&[("self", Kind::HardLink("self"))]),
            "self".to_owned(),
            outside.join("never"),
        ),
        (
            "a hard link to a directory",
            archive(&[("d", Kind::Dir), ("h", Kind::HardLink("d"))]),
            "'h'".to_owned(),
            outside.join("never"),
        ),
        (
            "a hard link to a symlink pointing out",
            archive(&[("s", Kind::Symlink("/etc/passwd")), ("h", Kind::HardLink("s"))]),
            "'h'".to_owned(),
            outside.join("never"),
        ),
        (
            "a hard link through a symlinked directory",
            archive(&[
                ("real", Kind::Dir),
                ("real/f", Kind::File(b"f")),
                ("alias", Kind::Symlink("real")),
                ("h", Kind::HardLink("alias/f")),
            ]),
            "'h'".to_owned(),
            outside.join("never"),
        ),
    ]
}

#[test]
fn extraction_refuses_each_hostile_archive_naming_the_entry() {
    let outside = tempfile::tempdir().expect("tempdir");
    for (label, bytes, entry, must_not_exist) in hostile(outside.path()) {
        let root = tempfile::tempdir().expect("tempdir");
        let dest = root.path().join("dest");
        std::fs::create_dir(&dest).expect("mkdir");
        let error = unpack(&bytes[..], &dest, &Limits::default()).expect_err(label);
        assert!(
            matches!(error, WorkspaceError::UnsafeEntry { .. }),
            "{label}: expected an unsafe-entry error, got {error}"
        );
        assert!(error.to_string().contains(&entry), "{label}: the error does not name '{entry}': {error}");
        assert!(!must_not_exist.exists(), "{label}: {} was written", must_not_exist.display());
        assert!(!root.path().join("escaped.txt").exists(), "{label}: wrote beside the root");
    }
}

#[test]
fn extraction_enforces_size_and_entry_limits() {
    let dest = tempfile::tempdir().expect("tempdir");
    let big = archive(&[("small", Kind::File(b"ok")), ("big", Kind::File(&[7u8; 4096]))]);
    let error = unpack(&big[..], dest.path(), &Limits { max_bytes: 1024, max_entries: 100, ..Limits::default() })
        .expect_err("too big");
    assert!(error.to_string().contains("size limit") && error.to_string().contains("'big'"), "{error}");
    assert!(!dest.path().join("big").exists(), "a partial oversize file was left behind");

    let dest = tempfile::tempdir().expect("tempdir");
    let many = archive(&[("a", Kind::File(b"")), ("b", Kind::File(b"")), ("c", Kind::File(b""))]);
    let error = unpack(&many[..], dest.path(), &Limits { max_bytes: 1024, max_entries: 2, ..Limits::default() })
        .expect_err("too many");
    assert!(error.to_string().contains("entry count") && error.to_string().contains("'c'"), "{error}");
}

#[test]
fn applying_hostile_changes_leaves_the_workspace_as_it_was() {
    let outside = tempfile::tempdir().expect("tempdir");
    for (label, bytes, _, must_not_exist) in hostile(outside.path()) {
        let workspace = tempfile::tempdir().expect("tempdir");
        std::fs::write(workspace.path().join("keep.txt"), "kept").expect("write");
        let error = apply_changes(workspace.path(), &bytes, &[], None).expect_err(label);
        assert!(matches!(error, WorkspaceError::UnsafeEntry { .. }), "{label}: {error}");
        let names: Vec<String> = std::fs::read_dir(workspace.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["keep.txt".to_owned()], "{label}: the workspace changed");
        assert!(!must_not_exist.exists(), "{label}: {} was written", must_not_exist.display());
    }
    // A deletion outside cannot even be named: workspace paths are relative and normalized.
    assert!(RelPath::parse(b"../outside.txt").is_err());
}

fn apply_changes(
    root: &Path,
    changes: &[u8],
    deleted: &[RelPath],
    base: Option<&Manifest>,
) -> Result<ApplyReport, WorkspaceError> {
    let base = base.map(|manifest| sloth_runner::workspace::Base { manifest, rules: None });
    sloth_runner::workspace::apply(root, changes, deleted, base, &Limits::default())
}

/// The one archive a real agent extracts is the contents it asked for: each entry must be a
/// regular file named by the hash of what it holds. A crafted one is refused — by the status
/// code that says the master sent it — naming the entry, and nothing is written outside.
#[test]
fn a_real_agent_refuses_crafted_contents_and_writes_nothing_outside() {
    let outside = tempfile::tempdir().expect("tempdir");
    let work_dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work_dir.path().to_string_lossy()]);
    let content = b"owned";
    let hash = blake3::hash(content).to_hex().to_string();
    let manifest = vec![sloth_runner::rpc::proto::FileEntry {
        path: b"a.txt".to_vec(),
        kind: sloth_runner::rpc::proto::file_entry::Kind::File as i32,
        mode: 0o644,
        size: content.len() as u64,
        hash: blake3::hash(content).as_bytes().to_vec(),
        ..Default::default()
    }];
    let absolute = outside.path().join("absolute.txt");
    let absolute_name = absolute.to_string_lossy().into_owned();
    let outside_name = outside.path().to_string_lossy().into_owned();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("an entry climbing out", archive(&[("../escaped.txt", Kind::File(content))]), "../escaped.txt"),
        ("an absolute entry", archive(&[(&absolute_name, Kind::File(content))]), &absolute_name),
        ("a symlink named by the hash", archive(&[(&hash, Kind::Symlink(&outside_name))]), &hash),
        ("a device named by the hash", archive(&[(&hash, Kind::CharDevice)]), &hash),
        ("content other than its name says", archive(&[(&hash, Kind::File(b"forged"))]), &hash),
    ];
    for (label, blobs, entry) in cases {
        let status = crate::support::agent::send_raw(&agent, manifest.clone(), blobs);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{label}: {status:?}");
        let error = status.message();
        assert!(error.contains("refused archive entry") && error.contains(entry), "{label}: {error}");
        assert!(!absolute.exists(), "{label}: {} was written", absolute.display());
        assert!(std::fs::read_dir(outside.path()).expect("list").next().is_none(), "{label}: wrote outside");
        assert!(!work_dir.path().join("escaped.txt").exists(), "{label}: escaped the agent's directory");
    }
}

/// The same for contents in the framed form (`SLBLOB1`): a content other than its hash says, a
/// frame of an unknown kind, and one whose size runs past the archive are refused, naming
/// what is wrong, and nothing is written outside.
#[test]
fn a_real_agent_refuses_crafted_framed_contents() {
    use std::io::Write;
    let outside = tempfile::tempdir().expect("tempdir");
    let work_dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work_dir.path().to_string_lossy()]);
    let content = b"owned";
    let hash = blake3::hash(content);
    let manifest = vec![sloth_runner::rpc::proto::FileEntry {
        path: b"a.txt".to_vec(),
        kind: sloth_runner::rpc::proto::file_entry::Kind::File as i32,
        mode: 0o644,
        size: content.len() as u64,
        hash: hash.as_bytes().to_vec(),
        ..Default::default()
    }];
    let framed = |frames: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(sloth_runner::workspace::blob_stream::MAGIC).expect("write");
        encoder.write_all(frames).expect("write");
        encoder.finish().expect("finish")
    };
    let frame = |size: u64, bytes: &[u8]| [&[1u8][..], hash.as_bytes(), &size.to_le_bytes(), bytes].concat();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "content other than its name says",
            framed(&[frame(6, b"forged"), vec![0]].concat()),
            hash.to_hex().to_string(),
        ),
        ("a frame of an unknown kind", framed(&[7]), "unknown frame 7".to_owned()),
        // (What follows is read as its content, which then is not what its name says.)
        ("a size past the archive", framed(&[frame(1 << 40, b"owned"), vec![0]].concat()), hash.to_hex().to_string()),
    ];
    for (label, blobs, named) in cases {
        let status = crate::support::agent::send_raw(&agent, manifest.clone(), blobs);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{label}: {status:?}");
        assert!(status.message().contains(&named), "{label}: {}", status.message());
        assert!(std::fs::read_dir(outside.path()).expect("list").next().is_none(), "{label}: wrote outside");
    }
}

/// An agent that answers every task with the same (hostile) changes.
struct HostileAgent {
    changes: Vec<u8>,
    deleted: Vec<String>,
}

#[tonic::async_trait]
impl sloth_runner::rpc::proto::agent_server::Agent for HostileAgent {
    async fn info(
        &self,
        _: tonic::Request<sloth_runner::rpc::proto::InfoRequest>,
    ) -> Result<tonic::Response<sloth_runner::rpc::proto::InfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(Default::default()))
    }

    type ExecuteStream =
        tokio_stream::wrappers::ReceiverStream<Result<sloth_runner::rpc::proto::ExecuteResponse, tonic::Status>>;

    async fn execute(
        &self,
        request: tonic::Request<tonic::Streaming<sloth_runner::rpc::proto::ExecuteRequest>>,
    ) -> Result<tonic::Response<Self::ExecuteStream>, tonic::Status> {
        use sloth_runner::rpc::proto::execute_response::Event;
        use sloth_runner::rpc::proto::{ChangesDeleted, ChangesEnd, ExecuteResponse, TaskResult};
        // Answers as soon as the task arrives, without asking for any content.
        let mut inbound = request.into_inner();
        inbound.message().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let events = vec![
            Event::Result(TaskResult {
                ok: true,
                message: Some("done".into()),
                outputs_json: b"{}".to_vec(),
                exports_json: Vec::new(),
            }),
            Event::ChangesChunk(self.changes.clone().into()),
            Event::Deleted(ChangesDeleted { paths: self.deleted.iter().map(|p| p.as_bytes().to_vec()).collect() }),
            Event::ChangesEnd(ChangesEnd {
                deleted: self.deleted.len() as u64,
                size: self.changes.len() as u64,
                ..Default::default()
            }),
        ];
        tokio::spawn(async move {
            for event in events {
                let _ = tx.send(Ok(ExecuteResponse { event: Some(event) })).await;
            }
        });
        Ok(tonic::Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// Serves a [`HostileAgent`] on 127.0.0.1 (port 0) on a background thread; returns its address.
fn serve_hostile(changes: Vec<u8>, deleted: Vec<String>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
        tokio.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr").to_string()).expect("send address");
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let service = sloth_runner::rpc::proto::agent_server::AgentServer::new(HostileAgent { changes, deleted });
            let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
        });
    });
    rx.recv_timeout(std::time::Duration::from_secs(10)).expect("hostile agent address")
}

#[test]
fn the_master_refuses_hostile_changes_from_an_agent_and_keeps_its_workspace() {
    let outside = tempfile::tempdir().expect("tempdir");
    for (label, bytes, entry, must_not_exist) in hostile(outside.path()) {
        let address = serve_hostile(bytes, vec![]);
        let test = Test::new().write("keep.txt", "kept\n").write(
            "tasks.lua",
            &format!(
                r#"TaskDefinitions = {{ g = {{ agents = {{ evil = {{ address = "{address}" }} }}, tasks = {{
                    {{ name = "t", agent = "evil", command = "true" }},
                }} }} }}"#
            ),
        );
        let run = test.run(&["run", "tasks.lua"]).expect_code(1);
        assert!(
            run.stderr.contains("refused archive entry") && run.stderr.contains(&entry),
            "{label}:\n{}",
            run.stderr
        );
        assert!(!must_not_exist.exists(), "{label}: {} was written", must_not_exist.display());
        let mut names: Vec<String> = std::fs::read_dir(test.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["keep.txt".to_owned(), "tasks.lua".to_owned()], "{label}: the workspace changed");
    }
}

#[test]
fn the_master_refuses_a_deletion_outside_its_workspace() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("victim.txt"), "alive").expect("write");
    let address = serve_hostile(archive(&[]), vec!["../victim.txt".to_owned()]);
    let test = Test::new().write("ws/keep.txt", "kept\n").write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ workdir = "ws", agents = {{ evil = {{ address = "{address}" }} }}, tasks = {{
                {{ name = "t", agent = "evil", command = "true" }},
            }} }} }}"#
        ),
    );
    std::fs::write(test.path().join("victim.txt"), "alive").expect("write");
    test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("../victim.txt");
    assert_eq!(test.read("victim.txt"), "alive");
    assert_eq!(test.read("ws/keep.txt"), "kept\n");
}

/// A pipeline in `test` whose only task runs on the hostile agent at `address`, in `ws/`.
fn hostile_pipeline(address: &str) -> String {
    format!(
        r#"TaskDefinitions = {{ g = {{ workdir = "ws", agents = {{ evil = {{ address = "{address}" }} }}, tasks = {{
            {{ name = "t", agent = "evil", command = "true" }},
        }} }} }}"#
    )
}

#[test]
fn links_from_an_agent_arrive_as_links_whatever_they_point_at() {
    let changes = archive(&[
        ("root", Kind::Symlink("/")),
        ("up", Kind::Symlink("..")),
        ("passwd", Kind::Symlink("/etc/passwd")),
        ("sub", Kind::Dir),
        ("sub/l1", Kind::Symlink("..")),
        ("escape", Kind::Symlink("sub/l1/..")),
    ]);
    let address = serve_hostile(changes, vec![]);
    let test = Test::new().write("ws/keep.txt", "kept\n").write("tasks.lua", &hostile_pipeline(&address));
    test.run(&["run", "tasks.lua"]).expect_code(0);
    for (link, target) in
        [("root", "/"), ("up", ".."), ("passwd", "/etc/passwd"), ("sub/l1", ".."), ("escape", "sub/l1/..")]
    {
        let found = std::fs::read_link(test.path().join("ws").join(link)).expect("a link");
        assert_eq!(found, Path::new(target), "{link}");
    }
    assert_eq!(test.read("ws/keep.txt"), "kept\n");
}

#[test]
fn a_file_under_a_link_the_master_already_has_is_refused_and_nothing_outside_is_touched() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("victim.txt"), "alive").expect("write");
    let test = Test::new().write("ws/keep.txt", "kept\n");
    std::os::unix::fs::symlink(outside.path(), test.path().join("ws/ext")).expect("symlink");

    // A write beneath the link.
    let address = serve_hostile(archive(&[("ext/owned.txt", Kind::File(b"owned"))]), vec![]);
    std::fs::write(test.path().join("tasks.lua"), hostile_pipeline(&address)).expect("write");
    test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("ext/owned.txt").stderr_has("symlink 'ext'");
    assert!(!outside.path().join("owned.txt").exists(), "wrote through the master's link");

    // A deletion beneath the link: it names nothing in the workspace, so nothing is removed.
    let address = serve_hostile(archive(&[]), vec!["ext/victim.txt".to_owned()]);
    std::fs::write(test.path().join("tasks.lua"), hostile_pipeline(&address)).expect("write");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(std::fs::read_to_string(outside.path().join("victim.txt")).expect("read"), "alive");
    assert_eq!(std::fs::read_link(test.path().join("ws/ext")).expect("still a link"), outside.path());
    assert_eq!(test.read("ws/keep.txt"), "kept\n");
}

#[test]
fn an_agent_cannot_change_what_the_workspace_leaves_out() {
    for (label, changes, deleted, named) in [
        (
            "a file in an ignored directory",
            archive(&[("node_modules/pkg/evil.js", Kind::File(b"owned"))]),
            vec![],
            "node_modules/pkg/evil.js",
        ),
        (
            "run state",
            archive(&[(".sloth/artifacts/evil.lua", Kind::File(b"owned"))]),
            vec![],
            ".sloth/artifacts/evil.lua",
        ),
        ("a deletion of an ignored file", archive(&[]), vec!["app.log".to_owned()], "app.log"),
    ] {
        let address = serve_hostile(changes, deleted);
        let test = Test::new()
            .write("ws/.slothignore", "node_modules\n*.log\n")
            .write("ws/node_modules/pkg/index.js", "real\n")
            .write("ws/app.log", "log\n")
            .write("tasks.lua", &hostile_pipeline(&address));
        std::fs::create_dir_all(test.path().join("ws/.sloth")).expect("mkdir");
        let everything = || crate::support::tree::Tree::read(&test.path().join("ws"), &|_| false);
        let before = everything();
        test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has(named).stderr_has("left out of the workspace");
        everything().assert_same(&before, label);
    }
}
