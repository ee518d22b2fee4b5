//! `sloth-runner check dependencies` with a `PATH` the test makes: fake tools that print a
//! version (on stdout, or only on stderr), the others absent, and exit 0 all the same.

use crate::support::Test;

#[test]
fn found_tools_show_their_version_and_missing_ones_are_marked() {
    let test = Test::new()
        .write("bin/git", "#!/bin/sh\necho \"git version 9.9.9 ($1)\"\n")
        .write("bin/terraform", "#!/bin/sh\necho \"Terraform v0.0.1\" >&2\n")
        .write("bin/docker", "not executable\n");
    for tool in ["git", "terraform"] {
        use std::os::unix::fs::PermissionsExt;
        let path = test.path().join("bin").join(tool);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let bin = test.path().join("bin");
    let bin = bin.to_str().expect("a UTF-8 temp path");
    let run = test.env("PATH", bin).run(&["check", "dependencies"]).expect_code(0);
    let line = |tool: &str| -> String {
        run.stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(tool))
            .unwrap_or_else(|| panic!("no line for {tool} in\n{}", run.stdout))
            .to_owned()
    };
    let git = line("git");
    assert!(git.contains(&format!("{bin}/git")) && git.contains("git version 9.9.9 (--version)"), "{git}");
    assert!(line("terraform").contains("Terraform v0.0.1"), "{}", line("terraform"));
    for tool in ["sh", "docker", "python3", "pulumi", "salt", "salt-key", "gcloud", "aws", "aws-vault"] {
        assert!(line(tool).contains("MISSING"), "{}", line(tool));
    }
    assert!(line("salt-key").ends_with("salt.key"), "{}", line("salt-key"));
    assert!(
        run.stdout.contains(
            "missing: sh, python3, pulumi, salt, salt-key, gcloud, aws, aws-vault, docker (only the modules that need them fail"
        ),
        "{}",
        run.stdout
    );
}
