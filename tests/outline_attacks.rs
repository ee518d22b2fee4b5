//! A crafted master sending a manifest by outline: every inconsistency (in the outline, in the
//! parts' entries, in what it sends for the parts the agent asked for) is refused with an
//! INVALID_ARGUMENT naming what is wrong, nothing of it lands in a kept tree, and the agent
//! serves the next task with exactly that task's files.

use std::time::Duration;

use sloth_runner::rpc::manifest::from_wire;
use sloth_runner::rpc::proto::agent_client::AgentClient as RawClient;
use sloth_runner::rpc::proto::execute_request::Item;
use sloth_runner::rpc::proto::execute_response::Event;
use sloth_runner::rpc::proto::file_entry::Kind;
use sloth_runner::rpc::proto::{ExecuteRequest, FileEntry, ManifestChunk, ManifestEnd, ManifestOutline, WorkspaceEnd};
use sloth_runner::rpc::task_spec::TaskSpec;
use sloth_runner::workspace::outline;

use crate::support::agent::Agent;
use crate::warm::{info, trees, workspace};

/// How long one crafted conversation may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory entry (a manifest of directories needs no contents: no archive to craft).
fn dir(path: &str) -> FileEntry {
    FileEntry {
        path: path.as_bytes().to_vec(),
        kind: Kind::Dir as i32,
        mode: 0o755,
        mtime_secs: 1_700_000_000,
        ..Default::default()
    }
}

/// A file entry (a hard link to `link`, unless empty).
fn file(path: &str, link: &str) -> FileEntry {
    FileEntry {
        path: path.as_bytes().to_vec(),
        kind: Kind::File as i32,
        mode: 0o644,
        hash: vec![7; 32],
        link: link.as_bytes().to_vec(),
        mtime_secs: 1_700_000_000,
        ..Default::default()
    }
}

/// `count` directories `d00000`…, in manifest order.
fn dirs(count: usize) -> Vec<FileEntry> {
    (0..count).map(|i| dir(&format!("d{i:05}"))).collect()
}

/// The hash a part of exactly `entries` is named by.
fn hash_of(entries: &[FileEntry]) -> Vec<u8> {
    let parsed: Vec<_> = entries.iter().cloned().map(|entry| from_wire(entry).expect("a valid entry")).collect();
    outline::hash_of(parsed.iter().map(|(path, entry)| (path, entry))).hash.as_bytes().to_vec()
}

/// `entries` cut as the master cuts them: each part's entries.
fn honest_parts(entries: &[FileEntry]) -> Vec<Vec<FileEntry>> {
    let parsed: std::collections::BTreeMap<_, _> =
        entries.iter().cloned().map(|entry| from_wire(entry).expect("a valid entry")).collect();
    let mut all = entries.iter().cloned();
    outline::outline(&parsed).iter().map(|part| all.by_ref().take(part.entries as usize).collect()).collect()
}

/// One outline message naming `parts`, marked last.
fn outline_of(parts: &[Vec<FileEntry>]) -> Item {
    Item::Outline(ManifestOutline {
        hashes: parts.iter().map(|part| hash_of(part)).collect(),
        entries: parts.iter().map(|part| part.len() as u32).collect(),
        last: true,
    })
}

/// The entries `asked` (indexes into `parts`) and their end, as an honest master sends them.
fn entries_of(parts: &[Vec<FileEntry>], asked: &[u32]) -> Vec<Item> {
    let entries: Vec<FileEntry> = asked.iter().flat_map(|&i| parts[i as usize].clone()).collect();
    let count = entries.len() as u64;
    vec![Item::ManifestChunk(ManifestChunk { entries }), Item::ManifestEnd(ManifestEnd { entries: count })]
}

/// How a crafted conversation went.
#[derive(Debug)]
struct Talk {
    /// The parts the agent asked for (all NeedParts messages together).
    asked: Vec<u32>,
    /// The task's output lines, when it ran; the status the agent ended the call with else.
    outcome: Result<Vec<String>, tonic::Status>,
}

/// A task of workspace `identity` running `command`, its manifest sent as `opening`; once the
/// agent has asked for parts (its last NeedParts), `answer` says what is sent for them; no
/// content is ever sent (the manifests hold no files).
fn talk(
    agent: &Agent,
    identity: &str,
    command: &str,
    opening: Vec<Item>,
    mut answer: impl FnMut(&[u32]) -> Vec<Item>,
) -> Talk {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    tokio.block_on(async {
        let mut client = RawClient::connect(format!("http://{}", agent.address)).await.expect("connect");
        let spec = TaskSpec { workspace: identity.to_owned(), ..crate::support::agent::shell_task_spec(command) };
        let (request, follow_ups) = spec.into_messages();
        let (tx, rx) = tokio::sync::mpsc::channel::<ExecuteRequest>(1024);
        let send = |item: Item| {
            let tx = tx.clone();
            async move { tx.send(ExecuteRequest { item: Some(item) }).await.expect("the request stream is open") }
        };
        send(Item::Task(request)).await;
        for message in follow_ups {
            tx.send(message).await.expect("open");
        }
        for item in opening {
            send(item).await;
        }
        let mut asked = Vec::new();
        let mut output = Vec::new();
        let call = async {
            let mut inbound = client.execute(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
            while let Some(message) = inbound.message().await? {
                match message.event {
                    Some(Event::NeedParts(need)) => {
                        asked.extend(need.parts);
                        if need.last {
                            for item in answer(&asked) {
                                send(item).await;
                            }
                        }
                    }
                    Some(Event::Need(need)) if need.last => {
                        assert!(need.hashes.is_empty(), "a manifest of directories needs no contents");
                        send(Item::WorkspaceEnd(WorkspaceEnd { size: 0 })).await;
                    }
                    Some(Event::Output(line)) => output.push(line.line),
                    Some(Event::ChangesEnd(_)) => return Ok(()),
                    _ => {}
                }
            }
            Err(tonic::Status::unknown("the call ended without the changes"))
        };
        let ended = tokio::time::timeout(CALL_TIMEOUT, call).await.expect("the agent answered in time");
        drop(tx);
        Talk { asked, outcome: ended.map(|()| output) }
    })
}

/// The status a crafted conversation must end in.
fn refused(talk: Talk, label: &str) -> tonic::Status {
    match talk.outcome {
        Ok(output) => panic!("{label}: the task ran: {output:?}"),
        Err(status) => status,
    }
}

/// A workspace of files on the master, run once on `agent` so that it keeps its tree.
const FILES: usize = 600;

#[test]
fn crafted_outlines_are_refused_naming_what_is_wrong_and_the_agent_serves_the_next_task() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    // A real workspace's tree, kept: nothing below may land in it.
    let real = workspace(&agent, FILES, "ls | wc -l", "");
    real.run(&["run", "tasks.lua"]).expect_code(0);
    // A crafted workspace, run honestly once: the agent holds a manifest for it.
    let manifest = dirs(FILES);
    let parts = honest_parts(&manifest);
    assert!(parts.len() > 3, "{} parts", parts.len());
    let crafted = "crafted-workspace";
    let honest = |agent: &Agent| {
        let answered = parts.clone();
        talk(agent, crafted, "ls | wc -l", vec![outline_of(&parts)], move |asked| entries_of(&answered, asked))
    };
    let first = honest(&agent);
    assert_eq!(first.outcome.expect("an honest outline"), [FILES.to_string()]);
    assert_eq!(first.asked, (0..parts.len() as u32).collect::<Vec<_>>(), "a cold tree asks for every part");
    let again = honest(&agent);
    assert!(again.asked.is_empty(), "a warm tree asks for nothing: {:?}", again.asked);
    assert_eq!(again.outcome.expect("an honest outline"), [FILES.to_string()]);

    let known = |i: usize| hash_of(&parts[i]);
    let mut other = parts.clone();
    other[1][0].mtime_secs += 1;
    other[2][0].mtime_secs += 1;
    let changed_hash = hash_of(&other[1]);
    let intruder = dir("intruder");
    let send_all = |parts: Vec<Vec<FileEntry>>| move |asked: &[u32]| entries_of(&parts, asked);
    let nothing = |_: &[u32]| Vec::new();
    type Answer = Box<dyn FnMut(&[u32]) -> Vec<Item>>;
    let cases: Vec<(&str, Vec<Item>, Answer, &str)> = vec![
        (
            "hashes and counts of different numbers",
            vec![Item::Outline(ManifestOutline { hashes: vec![known(0), known(1)], entries: vec![1], last: true })],
            Box::new(nothing),
            "2 hashes for 1 counts",
        ),
        (
            "a short hash",
            vec![Item::Outline(ManifestOutline { hashes: vec![vec![1; 31]], entries: vec![1], last: true })],
            Box::new(nothing),
            "part 0: bad hash",
        ),
        (
            "a part of no entries",
            vec![Item::Outline(ManifestOutline { hashes: vec![known(0), known(1)], entries: vec![0, 1], last: true })],
            Box::new(nothing),
            "part 0 holds 0 entries",
        ),
        (
            "a part larger than a part can be",
            vec![Item::Outline(ManifestOutline { hashes: vec![vec![1; 32]], entries: vec![1025], last: true })],
            Box::new(nothing),
            "part 0 holds 1025 entries",
        ),
        (
            "more entries than the agent takes",
            vec![Item::Outline(ManifestOutline {
                hashes: vec![vec![1; 32]; 1954],
                entries: vec![1024; 1954],
                last: true,
            })],
            Box::new(nothing),
            "more than 2000000 entries",
        ),
        (
            "a part held, announced with another count",
            vec![Item::Outline(ManifestOutline {
                hashes: vec![known(0), changed_hash],
                entries: vec![parts[0].len() as u32 + 1, parts[1].len() as u32],
                last: true,
            })],
            Box::new(send_all(other.clone())),
            "manifest outline: part 0 holds",
        ),
        (
            "a part whose entries are not its hash's",
            vec![outline_of(&other)],
            Box::new({
                let mut sent = other.clone();
                sent[1][0].mtime_secs += 1;
                send_all(sent)
            }),
            "manifest part 1: its entries are not the ones the outline names",
        ),
        (
            "the parts' entries in another order",
            vec![outline_of(&other)],
            Box::new({
                let other = other.clone();
                move |asked: &[u32]| {
                    let mut reversed: Vec<u32> = asked.to_vec();
                    reversed.reverse();
                    entries_of(&other, &reversed)
                }
            }),
            "its entries are not the ones the outline names",
        ),
        (
            "the same path in two parts",
            vec![outline_of(&[parts[0].clone(), parts[0].clone()])],
            Box::new(send_all(vec![parts[0].clone(), parts[0].clone()])),
            "duplicate",
        ),
        (
            "a path that is not normalized",
            vec![Item::Outline(ManifestOutline { hashes: vec![vec![1; 32]], entries: vec![1], last: true })],
            Box::new(|_: &[u32]| entries_of(&[vec![dir("a//b")]], &[0])),
            "'a//b': is not a normalized relative path",
        ),
        (
            "a hard link to a later path",
            vec![Item::Outline(ManifestOutline { hashes: vec![vec![1; 32]], entries: vec![1], last: true })],
            Box::new(move |_: &[u32]| entries_of(&[vec![file("a", "b")]], &[0])),
            "'a': a hard link to 'b', which does not come before it",
        ),
        (
            "a hard link to a path of a later part",
            vec![outline_of(&[vec![file("b", "a")], vec![file("a", "")]])],
            Box::new(send_all(vec![vec![file("b", "a")], vec![file("a", "")]])),
            "'b': a hard link to 'a', which is not a file before it",
        ),
        (
            "entries for parts not asked for",
            vec![outline_of(&other)],
            Box::new({
                let other = other.clone();
                move |asked: &[u32]| {
                    assert!(!asked.contains(&0), "part 0 is held");
                    let mut wrong = asked.to_vec();
                    wrong[0] = 0;
                    entries_of(&other, &wrong)
                }
            }),
            "manifest parts:",
        ),
        (
            "fewer entries than the parts asked for",
            vec![outline_of(&other)],
            Box::new({
                let other = other.clone();
                move |asked: &[u32]| {
                    let mut items = entries_of(&other, asked);
                    let Item::ManifestChunk(chunk) = &mut items[0] else { unreachable!() };
                    chunk.entries.pop();
                    let count = chunk.entries.len() as u64;
                    items[1] = Item::ManifestEnd(ManifestEnd { entries: count });
                    items
                }
            }),
            "entries for parts holding",
        ),
        (
            "more entries than the parts asked for",
            vec![outline_of(&other)],
            Box::new({
                let (other, intruder) = (other.clone(), intruder);
                move |asked: &[u32]| {
                    let mut items = entries_of(&other, asked);
                    let Item::ManifestChunk(chunk) = &mut items[0] else { unreachable!() };
                    chunk.entries.push(intruder.clone());
                    let count = chunk.entries.len() as u64;
                    items[1] = Item::ManifestEnd(ManifestEnd { entries: count });
                    items
                }
            }),
            "more entries than the parts asked for",
        ),
        (
            "an end that miscounts",
            vec![outline_of(&other)],
            Box::new({
                let other = other.clone();
                move |asked: &[u32]| {
                    let mut items = entries_of(&other, asked);
                    items[1] = Item::ManifestEnd(ManifestEnd { entries: 1 });
                    items
                }
            }),
            "manifest truncated",
        ),
        (
            "an outline never marked last, then entries",
            vec![
                Item::Outline(ManifestOutline {
                    hashes: vec![known(0)],
                    entries: vec![parts[0].len() as u32],
                    last: false,
                }),
                Item::ManifestChunk(ManifestChunk { entries: parts[0].clone() }),
            ],
            Box::new(nothing),
            "unexpected message while receiving the manifest's outline",
        ),
    ];
    for (label, opening, answer, expected) in cases {
        let status = refused(talk(&agent, crafted, "ls | wc -l", opening, answer), label);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{label}: {status:?}");
        assert!(status.message().contains(expected), "{label}: {:?}", status.message());
        for tree in trees(work.path()) {
            assert!(!tree.join("intruder").exists(), "{label}: written into {}", tree.display());
        }
    }

    // The agent serves the next tasks, each with exactly its files; the crafted workspace's
    // tree was given back as it was after each refusal.
    let next = honest(&agent);
    assert!(next.asked.is_empty(), "the tree was kept: {:?}", next.asked);
    assert_eq!(next.outcome.expect("an honest outline"), [FILES.to_string()]);
    let reused = info(&agent).trees_reused;
    let run = real.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains(&format!("box/t | {FILES}")), "{}", run.stderr);
    assert_eq!(info(&agent).trees_reused, reused + 1, "the real workspace's tree was kept through it all");
}

#[test]
fn an_outline_the_master_never_finishes_ends_with_the_call() {
    let agent = Agent::start(&[]);
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let status = tokio.block_on(async {
        let mut client = RawClient::connect(format!("http://{}", agent.address)).await.expect("connect");
        let spec = TaskSpec {
            group: "g".into(),
            task: "t".into(),
            pipeline: "tasks.lua".into(),
            scripts: vec![("tasks.lua".into(), b"TaskDefinitions = {}".to_vec())],
            workspace: "unfinished".into(),
            ..Default::default()
        };
        let (request, follow_ups) = spec.into_messages();
        let part = dirs(3);
        let unfinished = Item::Outline(ManifestOutline { hashes: vec![hash_of(&part)], entries: vec![3], last: false });
        let messages: Vec<ExecuteRequest> = std::iter::once(ExecuteRequest { item: Some(Item::Task(request)) })
            .chain(follow_ups)
            .chain(std::iter::once(ExecuteRequest { item: Some(unfinished) }))
            .collect();
        let call = async {
            let mut inbound = client.execute(tokio_stream::iter(messages)).await?.into_inner();
            while let Some(message) = inbound.message().await? {
                assert!(!matches!(message.event, Some(Event::NeedParts(_))), "parts asked before the outline's end");
            }
            Ok::<_, tonic::Status>(())
        };
        tokio::time::timeout(CALL_TIMEOUT, call).await.expect("the agent answered in time").expect_err("refused")
    });
    assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
    assert!(status.message().contains("before the manifest's outline was complete"), "{status:?}");
    assert_eq!(info(&agent).tasks_in_flight, 0);
}

#[test]
fn a_refused_manifest_leaves_the_workspaces_tree_for_its_next_task() {
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let manifest = dirs(FILES);
    let parts = honest_parts(&manifest);
    let honest = || {
        let answered = parts.clone();
        talk(&agent, "kept", "ls | wc -l", vec![outline_of(&parts)], move |asked| entries_of(&answered, asked))
    };
    honest().outcome.expect("an honest outline");
    let kept = trees(work.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    // Refused while the manifest comes (the tree is lent by then), twice.
    for _ in 0..2 {
        let refused = talk(&agent, "kept", "ls | wc -l", vec![outline_of(&parts)], |_| {
            vec![
                Item::ManifestChunk(ManifestChunk { entries: vec![dir("intruder")] }),
                Item::ManifestEnd(ManifestEnd { entries: 1 }),
            ]
        });
        assert_eq!(refused.outcome.expect_err("refused").code(), tonic::Code::InvalidArgument);
    }
    assert_eq!(trees(work.path()), kept, "the same tree, idle again");
    let next = honest();
    assert!(next.asked.is_empty(), "the tree and what it held were kept: {:?}", next.asked);
    assert_eq!(next.outcome.expect("an honest outline"), [FILES.to_string()]);
    assert_eq!(info(&agent).trees_reused, 3);
}

#[test]
fn what_a_task_left_unapplied_is_undone_when_its_manifest_comes_from_what_the_agent_holds() {
    // The agent holds the manifest its tree was built to, not what the task left in it: the
    // next task's manifest comes whole from it, and the tree is still brought back to it.
    let agent = Agent::start(&[]);
    let test = workspace(
        &agent,
        FILES,
        "cat f1.txt; ls | wc -l; echo junk > junk.txt; echo more >> f1.txt; rm f2.txt",
        "workspace = { sync_back = \"never\" },",
    );
    let first = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(first.stderr.contains(&format!("box/t | {FILES}")), "{}", first.stderr);
    let received = info(&agent).manifest_entries_received;
    let second = test.run(&["run", "tasks.lua"]).expect_code(0);
    let lines: Vec<&str> = second.stderr.lines().filter_map(|line| line.strip_prefix("box/t | ")).collect();
    assert_eq!(lines, ["file 1", &FILES.to_string()], "exactly the master's files\n{}", second.stderr);
    assert_eq!(info(&agent).manifest_entries_received, received, "no part of the manifest travelled");
    assert_eq!(info(&agent).trees_reused, 1);
}
