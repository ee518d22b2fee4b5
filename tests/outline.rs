//! A large workspace's manifest travels by outline: the agent takes from the manifest it holds
//! for the workspace (the tree an earlier task left) every part that is unchanged, and only the
//! parts it lacks come over the wire — a warm task's manifest costs what its change costs.

use crate::support::agent::Agent;
use crate::warm::{info, set_task, trees, workspace};

/// Files in the workspace: past the size from which a manifest goes by outline.
const FILES: usize = 1500;

/// The most entries one part of an outline holds.
const MAX_PART_ENTRIES: u64 = 1024;

#[test]
fn a_warm_tasks_manifest_travels_only_in_the_parts_that_changed() {
    let agent = Agent::start(&[]);
    let test = workspace(&agent, FILES, "cat f3.txt", "");
    let received = || info(&agent).manifest_entries_received;

    // Cold: the agent holds nothing of this workspace, and asks for every part.
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | file 3"), "{}", run.stderr);
    let cold = received();
    assert_eq!(cold, FILES as u64, "the whole manifest came");

    // Unchanged: nothing of the manifest travels.
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(received(), cold, "an unchanged workspace's manifest did not travel");
    set_task(&test, &agent, "cat f3.txt > copy.txt; cat copy.txt", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(received(), cold, "nor with another task");

    // What that task made came back and was applied here: its part travels to the next task
    // (the agent holds the manifest its tree was built to, not the task's result).
    set_task(&test, &agent, "cat copy.txt", "");
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | file 3"), "{}", run.stderr);
    let made = received() - cold;
    assert!(made > 0 && made <= MAX_PART_ENTRIES, "{made} entries for one file made by the task");

    // One file edited here: its part travels, and the task sees the edit.
    std::fs::write(test.path().join("ws/f3.txt"), "changed\n").expect("edit");
    set_task(&test, &agent, "cat f3.txt", "");
    let before = received();
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | changed"), "{}", run.stderr);
    let one_edit = received() - before;
    assert!(one_edit > 0 && one_edit <= MAX_PART_ENTRIES, "{one_edit} entries for one edit");

    // A file added, one removed: the task sees exactly the master's files.
    std::fs::write(test.path().join("ws/new.txt"), "new\n").expect("add");
    std::fs::remove_file(test.path().join("ws/f7.txt")).expect("remove");
    set_task(&test, &agent, "ls | wc -l; test ! -e f7.txt && cat new.txt", "");
    let before = received();
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains(&format!("box/t | {}", FILES + 1)), "{}", run.stderr); // copy.txt and new.txt in, f7.txt out
    assert!(run.stderr.contains("box/t | new"), "{}", run.stderr);
    let two_edits = received() - before;
    assert!(two_edits > 0 && two_edits <= 2 * MAX_PART_ENTRIES, "{two_edits} entries for two edits");
}

#[test]
fn a_manifest_held_for_a_tree_that_was_edited_on_the_agents_host_still_gives_the_masters_files() {
    // The outline says what the master has; the tree is brought to it whatever happened to it
    // in between (the manifest held is the tree as last scanned, not as it is now).
    let work = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(&["--work-dir", &work.path().display().to_string()]);
    let test = workspace(&agent, FILES, "cat f5.txt; ls | wc -l", "");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let kept = trees(work.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    // Same size, time put back: only the ctime tells.
    let f5 = kept[0].join("f5.txt");
    std::fs::write(&f5, "FILE 5\n").expect("edit on the agent's host");
    let status =
        std::process::Command::new("touch").arg("-r").arg(kept[0].join("f6.txt")).arg(&f5).status().expect("touch");
    assert!(status.success());
    std::fs::write(kept[0].join("intruder.txt"), "x").expect("add on the agent's host");
    let before = info(&agent).manifest_entries_received;
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr.contains("box/t | file 5"), "the master's content again\n{}", run.stderr);
    assert!(run.stderr.contains(&format!("box/t | {FILES}")), "{}", run.stderr);
    assert_eq!(info(&agent).manifest_entries_received, before, "the manifest held was the master's");
    assert_eq!(info(&agent).trees_reused, 1);
}
