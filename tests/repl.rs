//! The interactive REPL, driven through a pipe: expressions print their values, statements
//! span lines, errors do not end the session, and pipelines run from it.

use crate::support::Test;

const SESSION: &str = r#"1 + 1
t = { name = "sloth", list = { 1, 2 } }
t
function double(n)
  return n * 2
end
double(21)
error("oops")
exec.run("echo from-shell")
fs.write("made-by-repl.txt", "yes")
run("tasks.lua")
print("still here")
"#;

#[test]
fn the_repl_evaluates_lines_keeps_state_and_survives_errors() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = { { name = "t", command = "echo pipeline-ran > ran.txt" } } } }"#,
    );
    for args in [&["repl"][..], &[][..]] {
        let run = test.run_with_input(args, SESSION).expect_code(0);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines[0], "2", "{}", run.stdout);
        assert!(run.stdout.contains("  name = \"sloth\","), "{}", run.stdout);
        assert!(run.stdout.contains("\n42\n"), "{}", run.stdout);
        assert!(run.stdout.contains("\"from-shell\\n\"\t\"\"\tnil"), "{}", run.stdout);
        assert!(run.stdout.contains("still here"), "{}", run.stdout);
        assert!(run.stderr.contains("repl:1: oops"), "{}", run.stderr);
        assert!(run.stderr.contains("g/t  succeeded"), "{}", run.stderr);
        assert_eq!(test.read("made-by-repl.txt"), "yes");
        assert_eq!(test.read("ran.txt"), "pipeline-ran\n");
    }
}

#[test]
fn ctrl_c_cancels_the_running_line_and_its_processes_and_the_repl_goes_on() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let test = Test::new();
    let mark = test.path().join("started");
    let mut repl = Command::new(crate::support::binary())
        .arg("repl")
        .current_dir(test.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the repl");
    let mut stdin = repl.stdin.take().expect("stdin");
    writeln!(stdin, "exec.run(\"touch '{}'; sleep 31.37\")", mark.display()).expect("write");
    assert!(crate::support::wait_for_path(&mark), "the line started");
    let pid = repl.id().to_string();
    let interrupted = Command::new("kill").args(["-INT", &pid]).status().expect("kill -INT");
    assert!(interrupted.success());
    writeln!(stdin, "print(40 + 2)").expect("write");
    drop(stdin);
    let code = crate::support::wait_exit(&mut repl);
    let mut out = String::new();
    std::io::Read::read_to_string(repl.stdout.as_mut().expect("stdout"), &mut out).expect("read");
    let err = crate::support::stderr_of(&mut repl);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("interrupted: the line's tasks were cancelled"), "{err}");
    assert!(out.contains("42"), "the REPL went on: {out}");
    assert!(!crate::support::agent::process_running(&["sleep 31.37"]), "the line's process was killed");
}

#[test]
fn repl_file_evaluates_the_file_first_and_a_failing_one_ends_it() {
    let test = Test::new()
        .write("defs.lua", "local lib = import('lib/more.lua')\nx = 41\nfunction twice(n) return lib.times(n, 2) end\n")
        .write("lib/more.lua", "return { times = function(a, b) return a * b end }\n")
        .write("bad.lua", "local a = nil\na.b = 1\n");
    for args in [&["repl", "defs.lua"][..], &["repl", "-f", "defs.lua"][..]] {
        let run = test.run_with_input(args, "x + 1\ntwice(x)\n").expect_code(0);
        assert_eq!(run.stdout, "42\n82\n", "{args:?}: {}", run.stderr);
    }
    let run = test.run_with_input(&["repl", "bad.lua"], "x\n").expect_code(1);
    assert!(run.stderr.contains("bad.lua:2: attempt to index a nil value"), "{}", run.stderr);
    assert!(!run.stderr.contains("stdlib/sloth/"), "{}", run.stderr);
    test.run_with_input(&["repl", "missing.lua"], "").expect_code(1).stderr_has("missing.lua");
}
