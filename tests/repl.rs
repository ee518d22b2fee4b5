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
