//! An agent reads a run's pipeline once for its shell tasks (a VM that ran nothing of the
//! pipeline since it read it serves the run's next task of that pipeline), and never lets a task
//! see what Lua of the pipeline did for an earlier one.

use crate::support::Test;
use crate::support::agent::Agent;

/// How many times the pipeline was read (each read appends a line to `loads.txt`, outside the
/// workspace, with a command: what its top level writes through Lua, an agent's reading does
/// not write again).
fn reads(test: &Test) -> usize {
    std::fs::read_to_string(test.path().join("loads.txt")).map_or(0, |text| text.lines().count())
}

/// A pipeline in `ws/` that counts its reads in `loads.txt`, with `tasks` on `agent`.
fn counting(agent: &Agent, tasks: &str) -> Test {
    let test = Test::new();
    let loads = test.path().join("loads.txt");
    std::fs::create_dir_all(test.path().join("ws")).expect("ws");
    let text = format!(
        "os.execute(\"echo read >> '\" .. {loads:?} .. \"'\")\n\
         TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n{tasks}\n}} }} }}\n",
        agent.address
    );
    test.write("ws/tasks.lua", &text)
}

fn run_in_ws(test: &Test) -> crate::support::Run {
    let mut command = std::process::Command::new(crate::support::binary());
    command.args(["run", "tasks.lua"]).current_dir(test.path().join("ws"));
    crate::support::Run::of(command)
}

#[test]
fn a_chain_of_shell_tasks_reads_the_pipeline_once_on_the_agent_and_once_per_run() {
    let agent = Agent::start(&[]);
    let test = counting(
        &agent,
        r#"{ name = "a", agent = "box", command = "echo a > a.txt" },
  { name = "b", agent = "box", depends_on = "a", command = "cat a.txt > b.txt" },
  { name = "c", agent = "box", depends_on = "b", command = "cat b.txt > c.txt" },"#,
    );
    run_in_ws(&test).expect_code(0);
    assert_eq!(test.read("ws/c.txt"), "a\n");
    assert_eq!(reads(&test), 2, "read by the master, then once by the agent for three tasks");
    run_in_ws(&test).expect_code(0);
    assert_eq!(reads(&test), 4, "a new run reads it again, here and there");
}

#[test]
fn after_a_function_task_the_next_task_reads_the_pipeline_afresh() {
    // A path one task keeps in Lua points into its own tree; a table one task changes is the
    // pipeline's: neither may reach a later task on the agent (each task gets its own tree here).
    let agent = Agent::start(&["--warm-trees", "0"]);
    let tasks = r#"{ name = "setup", agent = "box", command = function(p) OUT = p.workdir .. "/out"; env.MODE = "release"; return true end },
  { name = "build", agent = "box", depends_on = "setup", env = env, command = function(p)
      local out = OUT or (p.workdir .. "/out")
      os.execute("mkdir -p '" .. out .. "'")
      local f = assert(io.open(out .. "/result.txt", "w")); f:write("built\n"); f:close()
      return true end },
  { name = "mode", agent = "box", depends_on = "build", env = env, command = "echo $MODE > mode.txt" },"#;
    let test = counting(&agent, tasks);
    let text = test.read("ws/tasks.lua").replacen("TaskDefinitions", "env = { MODE = \"debug\" }\nTaskDefinitions", 1);
    let test = test.write("ws/tasks.lua", &text);
    let run = run_in_ws(&test).expect_code(0);
    assert_eq!(test.read("ws/out/result.txt"), "built\n", "{}", run.stderr);
    assert_eq!(test.read("ws/mode.txt"), "debug\n", "as read, as on the master");
    assert_eq!(reads(&test), 4, "read by the master and afresh for each task that follows Lua");
}

#[test]
fn each_run_of_a_repl_has_the_pipeline_read_afresh_on_the_agent() {
    // What the pipeline reads when it is read (here a file) is that run's, on the agent too.
    let agent = Agent::start(&[]);
    let test = Test::new().write("stamp.txt", "v1\n");
    let stamp = test.path().join("stamp.txt");
    let test = test.write(
        "tasks.lua",
        &format!(
            "local stamp = assert(io.open({stamp:?})):read('l')\n\
             TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = \"{}\" }} }}, tasks = {{\n\
             {{ name = \"a\", agent = \"box\", command = \"echo built-\" .. stamp .. \" > out.txt\" }},\n}} }} }}\n",
            agent.address
        ),
    );
    let session = "run(\"tasks.lua\")\nos.execute(\"echo v2 > stamp.txt\")\nrun(\"tasks.lua\")\n";
    let run = test.run_with_input(&["repl"], session).expect_code(0);
    assert_eq!(test.read("out.txt"), "built-v2\n", "{}", run.stderr);
}

#[test]
fn a_pipeline_that_changes_the_standard_library_is_read_for_every_task() {
    // A wrapped `pairs` runs whenever the engine iterates: such a VM is never kept.
    let agent = Agent::start(&[]);
    let test = counting(
        &agent,
        r#"{ name = "a", agent = "box", command = "echo a > a.txt" },
  { name = "b", agent = "box", depends_on = "a", command = "echo b > b.txt" },"#,
    );
    let text = test.read("ws/tasks.lua").replacen(
        "TaskDefinitions",
        "local raw = pairs\npairs = function(t) return raw(t) end\nTaskDefinitions",
        1,
    );
    let test = test.write("ws/tasks.lua", &text);
    run_in_ws(&test).expect_code(0);
    assert_eq!(test.read("ws/b.txt"), "b\n");
    assert_eq!(reads(&test), 3, "read by the master, then by the agent for each task");
}

/// The agent's threads that keep a VM for their pipeline's next task.
fn holding_threads(agent: &Agent) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", agent.pid())).expect("the agent's threads");
    tasks
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "task (held)")
        .count()
}

#[test]
fn a_later_run_of_a_pipeline_lets_the_vms_kept_for_earlier_runs_go() {
    let agent = Agent::start(&[]);
    let test = counting(
        &agent,
        r#"{ name = "a", agent = "box", command = "true" },
  { name = "b", agent = "box", depends_on = "a", command = "true" },"#,
    );
    for _ in 0..3 {
        run_in_ws(&test).expect_code(0);
    }
    // Each run kept its VM for a next task of that run; only the last run's may still come.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while holding_threads(&agent) > 1 {
        assert!(std::time::Instant::now() < deadline, "{} threads still keep a VM", holding_threads(&agent));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
