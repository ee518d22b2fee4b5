//! Every command the README shows is run here, so the README stays true.
//!
//! Commands live in ```sh blocks. `cargo run -- ARGS` runs the built binary with ARGS from the
//! repository root; `cargo test` is this very suite. Any other command fails this test, so a
//! new README command must be taught here first.

use std::process::Command;

use crate::support::{Run, binary, repo_root};

fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && (trimmed == "```sh" || trimmed == "```bash");
            continue;
        }
        if in_sh && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push(trimmed.to_owned());
        }
    }
    commands
}

#[test]
fn every_readme_command_runs() {
    let commands = readme_commands();
    assert!(commands.len() >= 2, "the README shows its two set-up commands");
    for command in &commands {
        if command == "cargo test" {
            continue; // this suite
        }
        let args = command
            .strip_prefix("cargo run -- ")
            .or_else(|| command.strip_prefix("cargo run --release -- "))
            .unwrap_or_else(|| panic!("README command not covered by tests/readme.rs: {command}"));
        // In a copy of the examples: what a run writes beside its pipeline stays out of the
        // repository.
        let scratch = tempfile::tempdir().expect("tempdir");
        crate::support::copy_examples(scratch.path());
        // The examples' agents listen on fixed ports (50051; 50061 and 50062), which an agent
        // of another test (port 0, from the same ephemeral range) may hold: where it can, each
        // command runs in a network namespace of its own, whose loopback nobody else uses.
        let isolation = crate::support::private_loopback();
        let mut process = match &isolation {
            Some(prefix) => {
                let mut process = Command::new(&prefix[0]);
                process.args(&prefix[1..]).arg(binary());
                process
            }
            None => Command::new(binary()),
        };
        // (Not `Test::command`: the README's commands run with the user's environment.)
        process.current_dir(scratch.path()).args(args.split_whitespace());
        let run = Run::of(process);
        assert_eq!(run.code, Some(0), "README command failed: {command}\n--- stderr\n{}", run.stderr);
    }
}

#[test]
fn the_first_two_commands_are_run_and_test() {
    let commands = readme_commands();
    assert!(commands[0].starts_with("cargo run"), "first command runs a pipeline: {}", commands[0]);
    assert_eq!(commands[1], "cargo test", "second command runs the tests");
}
