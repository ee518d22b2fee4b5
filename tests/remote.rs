//! Remote tasks against real agent processes on 127.0.0.1: the seed's example, the workspace
//! round trip, outputs, params, values and imports, failures, and concurrency.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::agent::{Agent, dead_port};
use crate::support::{Run, Test};

/// The seed's example, as written there (Portuguese), with the agent's real port.
const SEED_EXAMPLE: &str = r#"
TaskDefinitions = {
  my_distributed_group = {
    description = "Um grupo de tarefas com tarefas distribuídas.",
    agents = {
      my_remote_agent = { address = "localhost:50051" },
      another_agent = { address = "192.168.1.100:50051" }
    },
    tasks = {
      {
        name = "remote_hello",
        description = "Executa uma tarefa hello world em um agente remoto.",
        agent = "my_remote_agent", -- Especifique o nome do agente aqui
        command = function(params)
          log.info("Olá do agente remoto!")
          return true, "Tarefa remota executada."
        end
      },
      {
        name = "local_task",
        description = "Esta tarefa é executada localmente.",
        command = "echo 'Olá da máquina local!'"
      }
    }
  }
}
"#;

#[test]
fn the_seed_example_runs_and_the_remote_log_line_shows_on_the_master() {
    let agent = Agent::start(&[]);
    let pipeline = SEED_EXAMPLE.replace("localhost:50051", &format!("localhost:{}", agent.port()));
    let run = Test::new().write("tasks.lua", &pipeline).run(&["run", "tasks.lua"]).expect_code(0);
    run.stderr_has("my_remote_agent/remote_hello  INFO  Olá do agente remoto!")
        .stderr_has("my_distributed_group/remote_hello  succeeded")
        .stderr_has("Tarefa remota executada.")
        .stderr_has("my_distributed_group/local_task | Olá da máquina local!")
        // The declared agent no task uses is never contacted.
        .stderr_lacks("192.168.1.100");
}

fn mode(test: &Test, name: &str) -> u32 {
    std::fs::symlink_metadata(test.path().join(name)).expect(name).permissions().mode() & 0o777
}

#[test]
fn remote_shell_and_function_tasks_change_the_master_workspace_exactly() {
    let agent = Agent::start(&[]);
    let test = Test::new()
        .write("keep.txt", "untouched\n")
        .write("edit-by-shell.txt", "before\n")
        .write("delete-by-shell.txt", "doomed\n")
        .write("edit-by-lua.txt", "before\n")
        .write("delete-by-lua.txt", "doomed\n")
        .write("dir/chmod-me.sh", "echo hi\n")
        .write("gone/inner.txt", "x\n")
        .write(
            "tasks.lua",
            &r#"
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "shell", agent = "box", command = [[
          echo "new from shell" > new-by-shell.txt
          echo "after" > edit-by-shell.txt
          rm delete-by-shell.txt
          chmod 755 dir/chmod-me.sh
          chmod 600 keep.txt && chmod 644 keep.txt
          mkdir -p made/deep && echo deep > made/deep/file.txt
          ln -s made/deep/file.txt link-to-deep
          rm -r gone
      ]] },
      { name = "lua", agent = "box", depends_on = "shell", command = function(params)
          local f = assert(io.open("new-by-lua.txt", "w")); f:write("new from lua\n"); f:close()
          local e = assert(io.open("edit-by-lua.txt", "w")); e:write("after\n"); e:close()
          assert(os.remove("delete-by-lua.txt"))
          assert(io.open("new-by-shell.txt")):read("a") -- the shell task's result reached the agent
          return true, "lua changed files"
        end },
    },
  },
}
"#
            .replace("ADDR", &agent.address),
        );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("keep.txt"), "untouched\n");
    assert_eq!(test.read("new-by-shell.txt"), "new from shell\n");
    assert_eq!(test.read("edit-by-shell.txt"), "after\n");
    assert!(!test.exists("delete-by-shell.txt"));
    assert_eq!(mode(&test, "dir/chmod-me.sh"), 0o755);
    assert_eq!(mode(&test, "keep.txt"), 0o644);
    assert_eq!(test.read("made/deep/file.txt"), "deep\n");
    let link = std::fs::read_link(test.path().join("link-to-deep")).expect("symlink came back");
    assert_eq!(link.to_string_lossy(), "made/deep/file.txt");
    assert_eq!(test.read("link-to-deep"), "deep\n");
    assert!(!test.exists("gone"), "a deleted directory is gone");
    assert_eq!(test.read("new-by-lua.txt"), "new from lua\n");
    assert_eq!(test.read("edit-by-lua.txt"), "after\n");
    assert!(!test.exists("delete-by-lua.txt"));
    // Nothing of the transfer is left behind in the workspace.
    let leftovers: Vec<String> = std::fs::read_dir(test.path())
        .expect("read workspace")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".sloth"))
        .collect();
    assert!(leftovers.is_empty(), "leftovers: {leftovers:?}");
}

#[test]
fn outputs_flow_from_local_to_remote_and_back() {
    let agent = Agent::start(&[]);
    let pipeline = r#"
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "here_first", command = function() return true, "local", { n = 20, list = { "a", "b" } } end },
      { name = "there", agent = "box", depends_on = "here_first", command = function(_, deps)
          local n = deps.here_first.n + 1
          return true, "remote saw " .. deps.here_first.list[2], { n = n, nested = { ok = true } }
        end },
      { name = "here_last", depends_on = "there", command = function(_, deps)
          assert(deps.there.n == 21 and deps.there.nested.ok == true, "remote outputs arrived")
          return true, "local saw " .. deps.there.n
        end },
    },
  },
}
"#
    .replace("ADDR", &agent.address);
    Test::new()
        .write("tasks.lua", &pipeline)
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("remote saw b")
        .stderr_has("local saw 21");
}

/// Params, dependencies' outputs and outputs of shapes JSON has no form for — a table with an
/// array part and string keys (`table.pack`), a sparse array, integer and boolean keys, NaN and
/// infinities, `data.null` in an array — reach a remote task and come back from it as they
/// do between local tasks.
#[test]
fn params_and_outputs_json_cannot_write_as_they_are_cross_to_an_agent_and_back_unchanged() {
    let agent = Agent::start(&[]);
    let pipeline = r#"
local function dump(v)
  if type(v) ~= "table" then return (math.type(v) or type(v)) .. ":" .. tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return (type(a) .. tostring(a)) < (type(b) .. tostring(b)) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = type(k) .. ":" .. tostring(k) .. "=" .. dump(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
local shapes = { packed = table.pack("a", "b"), mixed = { "x", kind = "list" }, sparse = { [1] = "a", [3] = "c" },
  ports = { [8080] = "web", [0] = "zero" }, flags = { [true] = "yes" }, far = math.huge, nan = 0/0,
  nulls = { 1, data.null, 3 }, half = { [1.5] = "x" } }
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "first", command = function() return true, "ok", shapes end },
      { name = "middle", PLACE depends_on = "first", params = { shapes = shapes },
        command = function(params, deps)
          print("params " .. dump(params.shapes))
          print("deps " .. dump(deps.first))
          return true, "ok", deps.first
        end },
      { name = "last", depends_on = "middle", command = function(_, deps)
          print("outputs " .. dump(deps.middle))
          return true
        end },
    },
  },
}
"#
    .replace("ADDR", &agent.address);
    let printed = |place: &str| {
        let test = Test::new().write("tasks.lua", &pipeline.replace("PLACE", place));
        let run = test.run(&["run", "tasks.lua"]).expect_code(0);
        let dumps = ["params ", "deps ", "outputs "];
        let lines: Vec<String> =
            run.stdout.lines().filter(|line| dumps.iter().any(|d| line.starts_with(d))).map(str::to_owned).collect();
        assert_eq!(lines.len(), 3, "three dumps:\n{}\n{}", run.stdout, run.stderr);
        lines
    };
    let here = printed("");
    assert!(here[0].contains("string:n=integer:2") && here[0].contains("boolean:true=string:yes"), "{here:?}");
    assert_eq!(printed(r#"agent = "box","#), here, "the same values on an agent as here");
}

/// A task's `command` and `env` computed from the master's environment as the pipeline is read
/// (`os.getenv` at its top level) are the master's on an agent too, whose own environment
/// lacks the variable: the agent reads the pipeline again for the task's functions, not for
/// what the master already read.
#[test]
fn a_command_and_env_computed_from_the_masters_environment_are_the_masters_on_an_agent() {
    let agent = Agent::start(&[]);
    let pipeline = r#"
local tag = os.getenv("SLOTH_TEST_RELEASE_TAG") or "unset"
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "shell", PLACE env = { TAG = tag }, command = "echo command=" .. tag .. " env=$TAG" },
    },
  },
}
"#
    .replace("ADDR", &agent.address);
    let printed = |place: &str| {
        let test =
            Test::new().env("SLOTH_TEST_RELEASE_TAG", "v9.9").write("tasks.lua", &pipeline.replace("PLACE", place));
        let run = test.run(&["run", "tasks.lua"]).expect_code(0);
        run.stderr
            .lines()
            .find_map(|line| line.split_once("| command=").map(|(_, rest)| rest.to_owned()))
            .unwrap_or_default()
    };
    assert_eq!(printed(""), "v9.9 env=v9.9", "here");
    assert_eq!(printed(r#"agent = "box","#), "v9.9 env=v9.9", "on the agent");
}

/// What a pipeline's top level reads as it is read — a file, through `io.open`, `fs.read`, a
/// command's output — is what the master read, on an agent too (which reads the pipeline again
/// for the task's functions: it read its own working directory); and what that top level
/// writes, removes or runs a command to delete happens once, as in a run here — never again
/// from the agent, in its working directory or in the workspace through the task's changes.
#[test]
fn a_pipelines_top_level_reads_the_masters_files_and_writes_once_with_a_task_on_an_agent() {
    let agent_cwd = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start_wrapped(&["env", "-C", agent_cwd.path().to_str().expect("utf-8")], &[]);
    let pipeline = r#"
local version = assert(io.open("VERSION")):read("l")
local config = fs.read("config.txt")
local described = io.popen("cat VERSION"):read("l")
local log = assert(io.open("loaded.log", "a"))
log:write("read\n")
log:close()
os.remove("stale.txt")
os.execute("rm -rf dist")
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "build", command = "mkdir -p dist && echo built > dist/out && echo again > stale.txt" },
      { name = "report", PLACE depends_on = "build", command = function()
          print("version=" .. version .. " config=" .. config .. " described=" .. tostring(described))
          local out = assert(io.open("report.txt", "w"))
          out:write(version, "\n")
          out:close()
          return true
        end },
    },
  },
}
"#
    .replace("ADDR", &agent.address);
    let outcome = |place: &str| {
        let test = Test::new()
            .write("VERSION", "1.2.3\n")
            .write("config.txt", "name=app")
            .write("stale.txt", "old\n")
            .write("dist/old", "old\n")
            .write("tasks.lua", &pipeline.replace("PLACE", place));
        let run = test.run(&["run", "tasks.lua"]).expect_code(0);
        let printed = run.stdout.lines().find(|line| line.starts_with("version=")).unwrap_or_default().to_owned();
        let files: Vec<(String, String)> = ["loaded.log", "stale.txt", "dist/out", "dist/old", "report.txt"]
            .iter()
            .map(|name| (name.to_string(), if test.exists(name) { test.read(name) } else { "(none)".to_owned() }))
            .collect();
        (printed, files, run.stderr)
    };
    let (here_printed, here_files, _) = outcome("");
    assert_eq!(here_printed, "version=1.2.3 config=name=app described=1.2.3");
    let (there_printed, there_files, there_stderr) = outcome(r#"agent = "box","#);
    assert_eq!(there_printed, here_printed, "what the top level read, on the agent\n{there_stderr}");
    assert_eq!(there_files, here_files, "the workspace after the run\n{there_stderr}");
    assert!(there_stderr.contains("those changes do not come back"), "the command's change is named\n{there_stderr}");
    let left: Vec<_> =
        std::fs::read_dir(agent_cwd.path()).expect("read_dir").flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "nothing written where the agent runs: {left:?}");
}

/// With the master's working directory outside the workspace (a group `workdir` below it), a
/// command or a download the pipeline's top level runs happens once, here — the agent's reading
/// runs its commands in the task's copy and downloads nothing: neither touches the user's
/// directory again (an agent on this machine ran them there).
#[test]
fn a_top_level_command_or_download_runs_once_when_the_workspace_is_below_the_masters_directory() {
    let server = crate::support::http::HttpServer::start(|_| crate::support::http::Reply::ok("fetched\n"));
    let agent = Agent::start(&[]);
    let pipeline = r#"
os.execute("echo line >> toplevel.log")
net.download("URL/lock", "sub/deps.lock")
TaskDefinitions = {
  g = {
    workdir = "sub",
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "t", agent = "box", command = function() print("ran") return true end },
    },
  },
}
"#
    .replace("ADDR", &agent.address)
    .replace("URL", &server.url());
    let test = Test::new().write("sub/keep.txt", "kept\n").write("tasks.lua", &pipeline);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stdout.contains("ran"), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(test.read("toplevel.log"), "line\n", "the command ran once, here\n{}", run.stderr);
    assert_eq!(server.received().len(), 1, "downloaded once, here\n{}", run.stderr);
    assert_eq!(test.read("sub/deps.lock"), "fetched\n");
}

#[test]
fn params_env_nested_values_and_an_import_from_outside_the_workspace_work_remotely() {
    let agent = Agent::start(&[]);
    let test = Test::new()
        .write("shared/lib/greet.lua", "return { greet = function(name) return 'hello, ' .. name end }\n")
        .write("shared/lib/mod_by_require.lua", "return { answer = 42 }\n")
        .write("pipeline/ws/.keep", "")
        .write("values.yaml", "deploy:\n  target:\n    region: eu-west\n  replicas: [1, 2, 3]\n")
        .write(
            "pipeline/tasks.lua",
            &r#"
local lib = import("../shared/lib/greet.lua")
package.path = "shared/lib/?.lua;" .. package.path
local by_require = require("mod_by_require")
TaskDefinitions = {
  g = {
    workdir = "ws",
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "remote", agent = "box", params = { who = { first = "Ada", tags = { "x", "y" } } },
        env = { TASK_LEVEL = "from-task" },
        command = function(params)
          local env_seen = exec.run("printf '%s' \"$TASK_LEVEL\"")
          local text = string.format("%s|%s|%s|%d|%d|%s",
            lib.greet(params.who.first), params.who.tags[2], values.deploy.target.region,
            values.deploy.replicas[3], by_require.answer, env_seen)
          local f = assert(io.open("result.txt", "w")); f:write(text); f:close()
          return true, text
        end },
    },
  },
}
"#
            .replace("ADDR", &agent.address),
        );
    test.run(&["run", "pipeline/tasks.lua", "-v", "values.yaml"]).expect_code(0);
    assert_eq!(test.read("pipeline/ws/result.txt"), "hello, Ada|y|eu-west|3|42|from-task");
}

/// A module a task function requires only as it runs (the master never loaded it, so could not
/// know to ship it) is read from the task's copy of the workspace, as the master would read it
/// from the workspace — one a dependency wrote too. One outside the workspace is refused with
/// its path and why.
#[test]
fn a_module_required_only_inside_a_remote_task_function_comes_from_the_workspace() {
    let agent = Agent::start(&[]);
    let pipeline = r#"
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "gen", agent = WHERE, command = "mkdir -p gen && echo 'return { n = 7 }' > gen/made.lua" },
      { name = "use", agent = WHERE, depends_on = "gen", command = function()
          local helpers = require("lib.helpers")
          local made = require("gen.made")
          local plugin = require("picker")
          print(string.format("%s %d %s", helpers.greet(), made.n, plugin.name))
          return true
        end },
      { name = "outside", agent = WHERE, depends_on = "use", command = function()
          package.path = "../elsewhere/?.lua;" .. package.path
          require("far_away")
          return true
        end },
    },
  },
}
"#
    .replace("ADDR", &agent.address);
    for (label, where_) in [("local", "nil"), ("remote", "\"box\"")] {
        let test = Test::new()
            .write("elsewhere/far_away.lua", "return {}\n")
            .write("ws/lib/helpers.lua", "return { greet = function() return 'hello' end }\n")
            .write("ws/plugins/picker.lua", "return { name = 'picker' }\n")
            .write("ws/tasks.lua", &pipeline.replace("WHERE", where_));
        let mut command = test.command(&["run", "tasks.lua"]);
        command.current_dir(test.path().join("ws"));
        let run = Run::of(command).stdout_has("hello 7 picker").stderr_has("g/use  succeeded");
        if label == "remote" {
            // The agent has no way to it: the master loaded it only as the task ran, here.
            run.expect_code(1)
                .stderr_has("../elsewhere/far_away.lua")
                .stderr_has("a module outside the workspace is there only if the master loaded it");
        } else {
            run.expect_code(0);
        }
        assert_eq!(test.read("ws/gen/made.lua"), "return { n = 7 }\n", "{label}");
    }
}

/// The workspace directory itself, as a task sees it and leaves it: its mode and time are the
/// master's on the agent (`stat .`), and a task's `chmod` or `touch` of it comes back — the
/// same as a run here.
#[test]
fn the_workspace_directory_s_own_mode_and_time_are_seen_and_changed_as_here() {
    let agent = Agent::start(&[]);
    let pipeline = r#"
TaskDefinitions = { g = { agents = { box = { address = "ADDR" } }, tasks = {
  { name = "look", agent = WHERE, command = "stat -c 'seen %a %Y' ." },
  { name = "change", agent = WHERE, depends_on = "look",
    command = "echo made > new.txt && chmod 750 . && touch -d @1000000000 ." },
  { name = "again", agent = WHERE, depends_on = "change", command = "stat -c 'seen %a %Y' ." },
} } }
"#
    .replace("ADDR", &agent.address);
    let mut seen = Vec::new();
    for where_ in ["nil", "\"box\""] {
        let test = Test::new().write("ws/tasks.lua", &pipeline.replace("WHERE", where_));
        let ws = test.path().join("ws");
        std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o711)).expect("chmod");
        let touched = Command::new("touch").arg("-d").arg("@1500000000").arg(&ws).status().expect("touch");
        assert!(touched.success());
        let mut command = test.command(&["run", "tasks.lua"]);
        command.current_dir(&ws);
        let run = Run::of(command).expect_code(0);
        let lines: Vec<String> = run
            .stderr
            .lines()
            .filter_map(|line| line.split_once(" | seen ").map(|(_, seen)| seen.to_owned()))
            .collect();
        let meta = std::fs::metadata(&ws).expect("ws");
        seen.push((lines, meta.permissions().mode() & 0o7777, meta.modified().expect("mtime")));
        assert_eq!(test.read("ws/new.txt"), "made\n", "{where_}");
    }
    assert_eq!(seen[0].0, ["711 1500000000", "750 1000000000"], "here");
    assert_eq!(seen[0], seen[1], "here, then on the agent");
}

/// A task's change to the workspace directory's mode while the mode changed here too is a
/// conflict: nothing of the task's changes is applied, and the error says what conflicted.
#[test]
fn the_workspace_directory_s_mode_changed_here_and_by_the_task_is_a_conflict() {
    let agent = Agent::start(&[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let (started, go) = (scratch.path().join("started"), scratch.path().join("go"));
    let test = Test::new().write(
        "ws/tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "t", agent = "box",
    command = [[echo made > new.txt; chmod 700 .; touch '{}'; i=0; while [ ! -e '{}' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done]] }},
}} }} }}"#,
            agent.address,
            started.display(),
            go.display()
        ),
    );
    let ws = test.path().join("ws");
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut command = test.command(&["run", "tasks.lua"]);
    command.current_dir(&ws).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    command.stderr(std::process::Stdio::piped());
    let mut master = command.spawn().expect("run");
    assert!(crate::support::wait_for_path(&started), "the task never started");
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o750)).expect("chmod here");
    std::fs::write(&go, "").expect("go");
    let code = crate::support::wait_exit(&mut master);
    let stderr = crate::support::stderr_of(&mut master);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("the workspace directory's mode (changed here to 0750, by the task to 0700)"), "{stderr}");
    assert!(!ws.join("new.txt").exists(), "nothing of the task's changes is applied");
    assert_eq!(std::fs::metadata(&ws).expect("ws").permissions().mode() & 0o7777, 0o750, "the mode set here stays");
}

#[test]
fn a_remote_failure_fails_the_run_with_the_task_s_own_message() {
    let agent = Agent::start(&[]);
    let test = Test::new().write("before.txt", "as it was\n").write(
        "tasks.lua",
        &r#"
TaskDefinitions = {
  g = {
    agents = { box = { address = "ADDR" } },
    tasks = {
      { name = "says_no", agent = "box", command = function()
          local f = assert(io.open("before.txt", "w")); f:write("changed"); f:close()
          return false, "the remote task said no"
        end },
      { name = "raises", agent = "box", command = function() error("remote boom") end },
      { name = "exits", agent = "box", command = "echo failing >&2; exit 4" },
    },
  },
}
"#
        .replace("ADDR", &agent.address),
    );
    test.run(&["run", "tasks.lua"])
        .expect_code(1)
        .stderr_has("the remote task said no")
        .stderr_has("tasks.lua:10: remote boom")
        .stderr_has("exited with code 4: failing")
        .stderr_has("box/exits ! failing");
    assert_eq!(test.read("before.txt"), "as it was\n", "a failed task's changes are not applied by default");
}

#[test]
fn sync_back_always_applies_a_failed_task_s_changes() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &r#"
TaskDefinitions = { g = { agents = { box = { address = "ADDR" } }, tasks = {
  { name = "t", agent = "box", workspace = { sync_back = "always" },
    command = "echo partial > report.txt; exit 1" },
} } }
"#
        .replace("ADDR", &agent.address),
    );
    test.run(&["run", "tasks.lua"]).expect_code(1);
    assert_eq!(test.read("report.txt"), "partial\n");
}

#[test]
fn an_agent_that_is_not_listening_fails_the_task_naming_agent_and_address() {
    let dead = dead_port();
    let port = dead.port;
    let started = Instant::now();
    let run = Test::new()
        .write(
            "tasks.lua",
            &format!(
                r#"TaskDefinitions = {{ g = {{ agents = {{ ghost = {{ address = "127.0.0.1:{port}" }} }}, tasks = {{
                    {{ name = "t", agent = "ghost", command = "true" }},
                    {{ name = "independent", command = "true" }},
                }} }} }}"#
            ),
        )
        .run(&["run", "tasks.lua"])
        .expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    run.stderr_has(&format!("agent 'ghost' (127.0.0.1:{port})"))
        .stderr_has("cannot reach")
        .stderr_has(&format!(
            "nothing listens there: start one with `sloth-runner agent -p {port}`, or run with --spawn-agents"
        ))
        .stderr_has("g/independent  succeeded");
}

#[test]
fn delegate_to_sends_a_task_to_an_address() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &r#"
TaskDefinitions = {
  g = {
    delegate_to = { address = "ADDR" },
    tasks = {
      { name = "via_group", command = function(p) return true, p.workdir end },
      { name = "via_task", delegate_to = "ADDR", command = "touch from-task" },
    },
  },
}
"#
        .replace("ADDR", &agent.address),
    );
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(test.exists("from-task"));
    run.stderr_has("sloth-agent-");
}

#[test]
fn a_64_mib_workspace_round_trips() {
    let agent = Agent::start(&[]);
    let test = Test::new();
    // Incompressible content, so the archive is as large as the workspace.
    let mut data = vec![0u8; 64 * 1024 * 1024];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(test.path().join("big.bin"), &data).expect("write big file");
    let test = test.write(
        "tasks.lua",
        &r#"TaskDefinitions = { g = { agents = { box = { address = "ADDR" } }, tasks = {
            { name = "copy", agent = "box", command = "cp big.bin big.copy && cksum big.bin > sum.txt" },
        } } }"#
            .replace("ADDR", &agent.address),
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    let copy = std::fs::read(test.path().join("big.copy")).expect("the copy came back");
    assert_eq!(copy.len(), data.len());
    assert!(copy == data, "the copy differs from the original");
}

#[test]
fn four_tasks_sent_at_once_run_in_separate_directories_and_all_changes_apply() {
    let agent = Agent::start(&["--max-tasks", "4"]);
    let test = Test::new().write(
        "tasks.lua",
        &r#"
local function worker(i)
  return { name = "w" .. i, agent = "box", command = function(params)
    exec.run("sleep 0.3")
    local f = assert(io.open("out-" .. i .. ".txt", "w")); f:write(params.workdir); f:close()
    return true, params.workdir, { dir = params.workdir }
  end }
end
TaskDefinitions = { g = { agents = { box = { address = "ADDR" } }, tasks = {
  worker(1), worker(2), worker(3), worker(4),
  { name = "check", depends_on = { "w1", "w2", "w3", "w4" }, command = function(_, deps)
      local seen = {}
      for i = 1, 4 do
        local dir = deps["w" .. i].dir
        if seen[dir] then return false, "two tasks shared " .. dir end
        seen[dir] = true
      end
      return true, "four directories"
    end },
} } }
"#
        .replace("ADDR", &agent.address),
    );
    let started = Instant::now();
    test.run(&["run", "tasks.lua", "--jobs", "4"]).expect_code(0).stderr_has("four directories");
    for i in 1..=4 {
        assert!(test.exists(&format!("out-{i}.txt")), "out-{i}.txt came back");
    }
    // Loose: four 0.3s tasks in parallel, not in sequence (1.2s).
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_file_changed_by_two_concurrent_remote_tasks_is_a_conflict_named_by_path() {
    let agent = Agent::start(&["--max-tasks", "4"]);
    let test = Test::new().write("shared.txt", "base\n").write(
        "tasks.lua",
        &r#"
TaskDefinitions = { g = { agents = { box = { address = "ADDR" } }, tasks = {
  { name = "first", agent = "box", command = "echo first > shared.txt; echo a > only-first.txt" },
  { name = "second", agent = "box", command = "WAIT; echo second > shared.txt; echo b > only-second.txt" },
} } }
"#
        .replace("ADDR", &agent.address)
        // Ordered by what happened, not by a sleep: the second task ends only once the first
        // task's change is on the master (the agent shares this machine).
        .replace("WAIT", "for i in $(seq 2000); do grep -q first 'MASTER/shared.txt' && break; sleep 0.01; done"),
    );
    let test = {
        let master = test.path().display().to_string();
        let text = std::fs::read_to_string(test.path().join("tasks.lua")).expect("tasks.lua");
        test.write("tasks.lua", &text.replace("MASTER", &master))
    };
    let run = test.run(&["run", "tasks.lua", "--jobs", "2"]).expect_code(1);
    run.stderr_has("conflict").stderr_has("shared.txt");
    assert_eq!(test.read("shared.txt"), "first\n", "the first change applied, the conflicting one did not");
    assert!(test.exists("only-first.txt"));
    assert!(!test.exists("only-second.txt"), "a conflicting change set applies nothing");
}

#[test]
fn a_timeout_kills_the_remote_task_s_processes_on_the_agent() {
    let agent = Agent::start(&[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let pidfile = scratch.path().join("remote.pid");
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "slow", agent = "box", timeout = "500ms", command = "sleep 30 & echo $! > {}; wait" }},
            }} }} }}"#,
            agent.address,
            pidfile.display()
        ),
    );
    let started = Instant::now();
    test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("timed out after 500ms");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = crate::support::wait_for_line_file(&pidfile);
    assert!(crate::support::wait_until_gone(&pid), "the remote process {pid} survived the timeout");
}

#[test]
fn many_deletions_come_back_in_chunks() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
                {{ name = "clean", agent = "box", command = "rm -r doomed" }},
            }} }} }}"#,
            agent.address
        ),
    );
    // Deleted paths of over 1,000 bytes each: more than 4 MiB of them.
    let bytes = crate::support::long_path_tree(test.path(), "doomed", 4500);
    assert!(bytes > 4_500_000, "{bytes}");
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert!(!test.exists("doomed"), "every deletion was applied");
    assert!(test.exists("tasks.lua"));
}

#[test]
fn an_error_in_an_on_event_callback_fails_the_call_naming_it() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ tasks = {{
                {{ name = "t", command = function(params)
                    local client = agent.connect("{}")
                    local request = {{
                        group = "g", task = "remote", pipeline = "remote.lua",
                        scripts = {{ ["remote.lua"] = "TaskDefinitions = {{ g = {{ tasks = {{ {{ name = 'remote', command = 'echo hi' }} }} }} }}" }},
                        params = {{}}, deps = {{}}, values = {{}},
                        workspace = workspace.snapshot(params.workdir),
                    }}
                    local ok, err = pcall(client.execute, client, request, {{
                        on_event = function(event) error("boom in the callback") end,
                    }})
                    assert(not ok, "the callback's error was dropped")
                    return true, tostring(err)
                end }},
            }} }} }}"#,
            agent.address
        ),
    );
    test.run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("the on_event callback failed")
        .stderr_has("boom in the callback");
}

#[test]
fn the_summary_says_where_each_task_ran() {
    let agent = Agent::start(&[]);
    let run = Test::new()
        .write(
            "tasks.lua",
            &format!(
                r#"TaskDefinitions = {{ g = {{ agents = {{ builder = {{ address = "{}" }} }}, tasks = {{
                    {{ name = "remote_one", agent = "builder", command = "true" }},
                    {{ name = "here", command = "true" }},
                }} }} }}"#,
                agent.address
            ),
        )
        .run(&["run", "tasks.lua"])
        .expect_code(0);
    let row = |task: &str| -> Vec<String> {
        let line =
            run.stderr.lines().rev().find(|line| line.starts_with(task)).unwrap_or_else(|| panic!("{}", run.stderr));
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert!(
        run.stderr
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == ["TASK", "STATUS", "DURATION", "WHERE", "MESSAGE"]),
        "{}",
        run.stderr
    );
    assert_eq!(row("g/remote_one")[3], "builder");
    assert_eq!(row("g/here")[3], "local");
}

#[test]
fn a_remote_tasks_line_says_what_its_workspace_moved() {
    let agent = Agent::start(&[]);
    let test = Test::new().write("input.txt", "input\n").write(
        "tasks.lua",
        &format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ builder = {{ address = "{}" }} }}, tasks = {{
                {{ name = "t", agent = "builder", command = "cat input.txt input.txt > out.txt" }},
            }} }} }}"#,
            agent.address
        ),
    );
    // Cold: the pipeline and the input go up; the one file made comes down.
    let first = test.run(&["run", "tasks.lua"]).expect_code(0);
    first.stderr_has("g/t  succeeded (").stderr_has("↑ 2 files ").stderr_has("↓ 1 file ");
    // Warm, nothing changed here, the task makes the same file: nothing goes up.
    let second = test.run(&["run", "tasks.lua"]).expect_code(0);
    second.stderr_has("↑ 0 files 0 B, ↓ 1 file");
    assert_eq!(test.read("out.txt"), "input\ninput\n");
}

/// A remote task's message need not be UTF-8 (`error("bad \255")`): it is shown (the byte as
/// U+FFFD), and what the task wrote still comes back — the whole outcome was lost to a string
/// conversion.
#[test]
fn a_remote_task_s_message_that_is_not_utf8_is_shown_and_its_changes_come_back() {
    let agent = Agent::start(&[]);
    let test = Test::new().write(
        "tasks.lua",
        &r#"TaskDefinitions = { g = { agents = { box = { address = "ADDR" } }, tasks = {
  { name = "t", agent = "box", workspace = { sync_back = "always" }, command = function()
      local f = assert(io.open("written.txt", "w")); f:write("x"); f:close()
      return false, "msg \255 here"
    end },
} } }"#
            .replace("ADDR", &agent.address),
    );
    test.run(&["run", "tasks.lua"]).expect_code(1).stderr_has("msg \u{fffd} here");
    assert_eq!(test.read("written.txt"), "x");
}

/// `dofile` and `loadfile` in a task read the task's workdir, here and in the agent's copy,
/// as `io.open` does (on an agent they read the agent's own directory).
#[test]
fn dofile_and_loadfile_in_a_task_read_its_workdir_here_and_on_an_agent() {
    let agent = Agent::start(&[]);
    for where_ in ["nil", "\"box\""] {
        let test = Test::new().write("ws/x/m.lua", "return 'from m'\n").write(
            "tasks.lua",
            &r#"TaskDefinitions = { g = { workdir = "ws", agents = { box = { address = "ADDR" } }, tasks = {
  { name = "t", agent = WHERE, command = function()
      print(dofile("x/m.lua"), assert(loadfile("x/m.lua"))())
      return true
    end },
} } }"#
                .replace("ADDR", &agent.address)
                .replace("WHERE", where_),
        );
        test.run(&["run", "tasks.lua"]).expect_code(0).stdout_has("from m\tfrom m");
    }
}

#[test]
fn what_a_remote_task_exports_is_exported_as_if_it_had_run_here() {
    let agent = Agent::start(&[]);
    let pipeline = |on: &str| {
        format!(
            r#"export({{ stage = "read", kept = "from reading" }})
            TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}" }} }}, tasks = {{
              {{ name = "first", command = function() export({{ stage = "first" }}); return true end }},
              {{ name = "second", {on} depends_on = "first", command = function()
                  export({{ version = "1.2.3", nested = {{ list = {{ 1, 2 }} }} }})
                  return true
                end }},
              {{ name = "failing", {on} depends_on = "second", command = function()
                  export({{ attempted = true }})
                  return false, "no"
                end }},
            }} }} }}"#,
            address = agent.address
        )
    };
    let returned = |on: &str| {
        let run = Test::new().write("tasks.lua", &pipeline(on)).run(&["run", "--return", "tasks.lua"]).expect_code(1);
        let document: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("the JSON --return prints");
        document["exports"].clone()
    };
    let here = returned("");
    let there = returned(r#"agent = "box","#);
    assert_eq!(there, here, "exports differ between a run here and one on the agent");
    // What reading the pipeline exported on the agent does not undo what a task did here since.
    assert_eq!(here["stage"], "first", "{here}");
    assert_eq!(here["version"], "1.2.3", "{here}");
    assert_eq!(here["nested"]["list"][1], 2, "{here}");
    assert_eq!(here["attempted"], true, "{here}");
    assert_eq!(here["kept"], "from reading", "{here}");
}

#[test]
fn a_function_task_s_error_reads_the_same_here_and_on_an_agent() {
    let agent = Agent::start(&[]);
    let failed = |on: &str| {
        let pipeline = format!(
            r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}" }} }}, tasks = {{
              {{ name = "raises", {on} command = function() local t = nil; return t.field end }},
            }} }} }}"#,
            address = agent.address
        );
        let run = Test::new().write("tasks.lua", &pipeline).run(&["run", "tasks.lua"]).expect_code(1);
        // The failure as shown, from its line to the summary, its duration left out.
        let shown: Vec<String> = run
            .stderr
            .lines()
            .skip_while(|line| !line.starts_with("g/raises  FAILED"))
            .take_while(|line| !line.is_empty())
            .map(|line| line.split_once(") ").map_or(line, |(_, rest)| rest).to_owned())
            .collect();
        assert!(shown.len() > 1, "no failure with a traceback:\n{}", run.stderr);
        shown
    };
    assert_eq!(failed(r#"agent = "box","#), failed(""), "the failure reads differently on the agent");
}

#[test]
fn an_export_json_cannot_hold_stays_on_the_agent_and_the_task_goes_on() {
    let agent = Agent::start(&[]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}" }} }}, tasks = {{
          {{ name = "t", agent = "box", command = function()
              export({{ hook = function() end, version = "2" }})
              local f = assert(io.open("made.txt", "w")); f:write("made\n"); f:close()
              return true
            end }},
        }} }} }}"#,
        address = agent.address
    );
    let test = Test::new().write("tasks.lua", &pipeline);
    let run = test.run(&["run", "--return", "tasks.lua"]).expect_code(0);
    let run = run.stderr_has("export 'hook' is not sent to the master: a function at $.hook has no JSON form");
    let document: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("the JSON --return prints");
    assert_eq!(document["exports"], serde_json::json!({ "version": "2" }), "{document}");
    assert_eq!(test.read("made.txt"), "made\n");
}

#[test]
fn changes_that_will_not_be_applied_are_not_sent() {
    let agent = Agent::start(&[]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{address}" }} }}, tasks = {{
          {{ name = "never", agent = "box", workspace = {{ sync_back = "never" }},
            command = "head -c 2000000 /dev/urandom > big.bin" }},
          {{ name = "kept", agent = "box", depends_on = "never", command = "echo kept > kept.txt" }},
        }} }} }}"#,
        address = agent.address
    );
    let test = Test::new().write("tasks.lua", &pipeline);
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    // Two megabytes of random bytes made and not wanted back: nothing of them travels.
    let line = run.stderr.lines().find(|line| line.starts_with("g/never  succeeded")).expect("the task's line");
    let down = line.split("↓ ").nth(1).expect("what came down");
    assert!(down.starts_with("0 files") && down.ends_with(" B"), "{line}");
    assert!(!test.exists("big.bin"));
    // The agent's tree for the workspace is still right for the next task.
    assert_eq!(test.read("kept.txt"), "kept\n");
}
