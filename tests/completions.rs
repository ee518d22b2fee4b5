//! Shell completions come from the parser's own definition: every shell gets a script that
//! names the subcommands and their flags, and bash's parses.

use std::process::{Command, Stdio};

use crate::support::{Run, binary};

fn completions(shell: &str) -> Run {
    let mut command = Command::new(binary());
    command.args(["completions", shell]);
    Run::of(command).expect_code(0)
}

#[test]
fn every_shell_gets_a_script_naming_the_subcommands_and_their_flags() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = completions(shell).stdout;
        for word in [
            "run",
            "agent",
            "exec",
            "sync-many",
            "validate",
            "spawn-agents",
            "max-tasks",
            "workflow",
            "template",
            "force",
            "dependencies",
            "master",
            "heartbeat",
        ] {
            assert!(script.contains(word), "{shell}: no '{word}' in\n{script}");
        }
        assert!(!script.contains("__reap"), "{shell}: the internal companion is not offered");
    }
    let mut bash = Command::new("bash").arg("-n").stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("bash");
    std::io::Write::write_all(&mut bash.stdin.take().expect("stdin"), completions("bash").stdout.as_bytes())
        .expect("write the script");
    let checked = bash.wait_with_output().expect("bash -n");
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let mut wrong = Command::new(binary());
    wrong.args(["completions", "tcsh"]);
    Run::of(wrong).expect_code(2).stderr_has("invalid value 'tcsh'");
}
