//! Every example pipeline runs, from a scratch directory, and succeeds.

use std::process::Command;

use crate::support::{Run, Test, binary, repo_root};

/// Examples run by the README test instead: they spawn agents on fixed ports (50051; 50061 and
/// 50062), so exactly one test may run each.
const RUN_BY_README: &[&str] = &["dispatch.lua", "distributed.lua"];

/// (example file, extra arguments)
const EXAMPLES: &[(&str, &[&str])] = &[
    ("build.lua", &[]),
    ("go_template.lua", &["-e", "Production", "--shards", "1,2"]),
    ("hello.lua", &[]),
    ("release.lua", &["--return"]),
    ("values.lua", &["-v", "examples/values.yaml"]),
];

#[test]
fn every_example_runs_and_succeeds() {
    for (file, extra) in EXAMPLES {
        let scratch = Test::new();
        // Examples name their companion files relative to the repository root, as the README
        // runs them: a copy of `examples` in the scratch dir, where what they write stays.
        crate::support::copy_examples(scratch.path());
        let mut command = Command::new(binary());
        command.current_dir(scratch.path()).arg("run").arg(format!("examples/{file}")).args(*extra);
        let run = Run::of(command).expect_code(0);
        assert!(run.stderr.contains(" 0 failed"), "{file}:\n{}", run.stderr);
    }
}

#[test]
fn every_example_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lua"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = EXAMPLES.iter().map(|(file, _)| (*file).to_owned()).collect();
    listed.extend(RUN_BY_README.iter().map(|file| (*file).to_owned()));
    listed.sort();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    for file in RUN_BY_README {
        assert!(readme.contains(&format!("examples/{file}")), "the README does not run examples/{file}");
    }
    assert_eq!(on_disk, listed, "examples/*.lua and EXAMPLES in tests/examples.rs differ");
}
