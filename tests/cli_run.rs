//! `sloth-runner run`, `list`, `validate`, `version`: what a user sees and the exit codes.

use crate::support::Test;

const ORDERED: &str = r#"
TaskDefinitions = {
  demo = {
    description = "declared C, A, B; runs A, B, C",
    tasks = {
      { name = "C", depends_on = "B", command = function(params, deps)
          log.info("C saw " .. deps.B.word)
          return true, "c done"
        end },
      { name = "A", command = "echo from-A" },
      { name = "B", depends_on = { "A" }, command = function(params, deps)
          return true, "b done", { word = "bird:" .. deps.A.stdout:gsub("%s+$", "") }
        end },
    },
  },
}
"#;

#[test]
fn tasks_run_in_dependency_order_and_see_their_dependencies_outputs() {
    let run = Test::new().write("tasks.lua", ORDERED).run(&["run", "tasks.lua"]).expect_code(0);
    let (a, b, c) =
        (run.stderr_line("demo/A  started"), run.stderr_line("demo/B  started"), run.stderr_line("demo/C  started"));
    assert!(a < b && b < c, "order was not A, B, C:\n{}", run.stderr);
    run.stderr_has("demo/A | from-A")
        .stderr_has("demo/C  INFO  C saw bird:from-A")
        .stderr_has("3 task(s): 3 succeeded");
}

#[test]
fn the_file_can_be_given_with_dash_f() {
    Test::new().write("tasks.lua", ORDERED).run(&["run", "-f", "tasks.lua"]).expect_code(0);
}

#[test]
fn upstream_spellings_work_too() {
    let test = Test::new().write("tasks.lua", ORDERED);
    test.run(&["list", "-f", "tasks.lua"]).expect_code(0).stdout_has("A");
    test.run(&["validate", "--file", "tasks.lua"]).expect_code(0);
    test.run(&["run", "-f", "tasks.lua", "-d"]).expect_code(0).stdout_has("dry run");
    test.run(&["list"]).expect_code(2);
}

#[test]
fn a_failing_command_fails_the_run_skips_its_dependents_and_spares_independent_tasks() {
    let test = Test::new().write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  g = {
    tasks = {
      { name = "broken", command = "echo 'it broke' >&2; exit 3" },
      { name = "child", depends_on = "broken", command = "touch child-ran" },
      { name = "grandchild", depends_on = "child", command = "touch grandchild-ran" },
      { name = "independent", command = "touch independent-ran" },
    },
  },
}
"#,
    );
    let run = test.run(&["run", "tasks.lua"]).expect_code(1);
    run.stderr_has("g/broken  FAILED")
        .stderr_has("exited with code 3: it broke")
        .stderr_has("g/child  skipped: dependency 'broken' failed")
        .stderr_has("g/grandchild  skipped: dependency 'child' was skipped")
        .stderr_has("1 succeeded, 1 failed, 2 skipped");
    assert!(test.exists("independent-ran"));
    assert!(!test.exists("child-ran") && !test.exists("grandchild-ran"));
}

#[test]
fn a_function_returning_false_or_raising_fails_with_its_message_and_location() {
    let test = Test::new().write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  g = {
    tasks = {
      { name = "says_no", command = function() return false, "not today" end },
      { name = "raises", command = function() error("boom") end },
      { name = "bad_return", command = function() return "yes" end },
    },
  },
}
"#,
    );
    test.run(&["run", "tasks.lua"])
        .expect_code(1)
        .stderr_has("g/says_no  FAILED")
        .stderr_has("not today")
        .stderr_has("tasks.lua:6: boom")
        .stderr_has("must return a boolean first");
}

#[test]
fn params_keep_nested_tables_and_carry_the_task_identity() {
    let test = Test::new().write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  g = {
    tasks = {
      { name = "p", params = { target = { os = "linux", arch = { "x86_64", "arm64" } } },
        command = function(params)
          assert(type(params.target) == "table", "target is a table")
          assert(params.target.arch[2] == "arm64")
          assert(params.task_name == "p" and params.group_name == "g")
          local f = assert(io.open(params.workdir .. "/params.txt", "w"))
          f:write(params.target.os, " ", params.target.arch[1])
          f:close()
          return true, "ok"
        end },
    },
  },
}
"#,
    );
    test.run(&["run", "tasks.lua"]).expect_code(0);
    assert_eq!(test.read("params.txt"), "linux x86_64");
}

#[test]
fn values_come_from_the_yaml_file() {
    let test = Test::new()
        .write("values.yaml", "env: staging\nreplicas: 3\nregions:\n  - eu\n  - us\ndb:\n  host: db.internal\n")
        .write(
            "tasks.lua",
            r#"
TaskDefinitions = {
  g = {
    tasks = {
      { name = "show", command = function()
          local f = assert(io.open("values.txt", "w"))
          f:write(values.env, " ", values.replicas, " ", values.regions[2], " ", values.db.host)
          f:close()
          return true
        end },
    },
  },
}
"#,
        );
    test.run(&["run", "tasks.lua", "-v", "values.yaml"]).expect_code(0);
    assert_eq!(test.read("values.txt"), "staging 3 us db.internal");
}

#[test]
fn a_broken_values_file_is_a_usage_error_naming_it() {
    Test::new()
        .write("values.yaml", "a: [unclosed\n")
        .write("tasks.lua", ORDERED)
        .run(&["run", "tasks.lua", "--values", "values.yaml"])
        .expect_code(2)
        .stderr_has("values.yaml: invalid YAML");
}

const SELECTION: &str = r#"
TaskDefinitions = {
  alpha = {
    tasks = {
      { name = "fetch", command = "touch fetch-ran" },
      { name = "build", depends_on = "fetch", command = "touch build-ran" },
      { name = "lint", command = "touch lint-ran" },
    },
  },
  beta = {
    tasks = { { name = "deploy", command = "touch deploy-ran" } },
  },
}
"#;

#[test]
fn dash_t_runs_the_named_tasks_and_their_dependencies_only() {
    let test = Test::new().write("tasks.lua", SELECTION);
    test.run(&["run", "tasks.lua", "-t", "build"]).expect_code(0);
    assert!(test.exists("fetch-ran") && test.exists("build-ran"));
    assert!(!test.exists("lint-ran") && !test.exists("deploy-ran"));
}

#[test]
fn dash_t_with_an_unknown_task_is_a_usage_error() {
    Test::new()
        .write("tasks.lua", SELECTION)
        .run(&["run", "tasks.lua", "-t", "build,nope"])
        .expect_code(2)
        .stderr_has("unknown task 'nope'");
}

#[test]
fn dash_g_selects_groups() {
    let test = Test::new().write("tasks.lua", SELECTION);
    test.run(&["run", "tasks.lua", "-g", "beta"]).expect_code(0);
    assert!(test.exists("deploy-ran"));
    assert!(!test.exists("fetch-ran") && !test.exists("lint-ran"));
    Test::new()
        .write("tasks.lua", SELECTION)
        .run(&["run", "tasks.lua", "-g", "gamma"])
        .expect_code(2)
        .stderr_has("unknown group 'gamma' (groups: alpha, beta)");
}

#[test]
fn groups_run_in_name_order() {
    let run = Test::new().write("tasks.lua", SELECTION).run(&["run", "tasks.lua"]).expect_code(0);
    assert!(run.stderr_line("alpha/fetch  started") < run.stderr_line("beta/deploy  started"));
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let test = Test::new().write("tasks.lua", SELECTION);
    let run = test.run(&["run", "tasks.lua", "--dry-run"]).expect_code(0);
    run.stdout_has("dry run").stdout_has("1. fetch").stdout_has("2. build").stdout_has("after fetch");
    for file in ["fetch-ran", "build-ran", "lint-ran", "deploy-ran"] {
        assert!(!test.exists(file), "{file} exists after a dry run");
    }
}

#[test]
fn shell_commands_run_in_the_group_workdir_relative_to_the_pipeline() {
    let test = Test::new().write("project/site/.keep", "").write(
        "project/tasks.lua",
        r#"
TaskDefinitions = {
  g = {
    workdir = "site",
    tasks = {
      { name = "where", command = "pwd > where.txt; echo $GREETING > env.txt", env = { GREETING = "hi" } },
      { name = "relative_io", command = function()
          local f = assert(io.open("from-lua.txt", "w")); f:write("lua"); f:close()
          return true
        end },
    },
  },
}
"#,
    );
    test.run(&["run", "project/tasks.lua"]).expect_code(0);
    let site = test.path().join("project/site").canonicalize().expect("site exists");
    assert_eq!(test.read("project/site/where.txt").trim(), site.to_string_lossy());
    assert_eq!(test.read("project/site/env.txt").trim(), "hi");
    assert_eq!(test.read("project/site/from-lua.txt"), "lua");
}

#[test]
fn list_shows_groups_tasks_descriptions_and_dependencies() {
    Test::new()
        .write("tasks.lua", ORDERED)
        .run(&["list", "tasks.lua"])
        .expect_code(0)
        .stdout_has("demo  declared C, A, B; runs A, B, C")
        .stdout_has("C  (depends on: B)");
    Test::new()
        .write(
            "tasks.lua",
            r#"TaskDefinitions = { g = { agents = { a = { address = "127.0.0.1:1" }, b = { address = "127.0.0.1:2" } },
                tasks = { { name = "t", agent = "*", command = "true" } } } }"#,
        )
        .run(&["list", "tasks.lua"])
        .expect_code(0)
        .stdout_has("  t  [on a | b]");
}

#[test]
fn validate_checks_without_running() {
    let test = Test::new().write("tasks.lua", SELECTION);
    test.run(&["validate", "tasks.lua"]).expect_code(0).stdout_has("ok (2 group(s), 4 task(s))");
    assert!(!test.exists("fetch-ran"));
}

#[test]
fn version_prints_the_version() {
    let expected = format!("sloth-runner {}", env!("CARGO_PKG_VERSION"));
    Test::new().run(&["version"]).expect_code(0).stdout_has(&expected);
    Test::new().run(&["--version"]).expect_code(0).stdout_has(env!("CARGO_PKG_VERSION"));
}

#[test]
fn quiet_hides_progress_but_keeps_failures_and_the_summary() {
    Test::new()
        .write("tasks.lua", ORDERED)
        .run(&["--quiet", "run", "tasks.lua"])
        .expect_code(0)
        .stderr_lacks("started")
        .stderr_lacks("INFO")
        .stderr_has("3 task(s): 3 succeeded");
}

#[test]
fn verbose_and_rust_log_show_debug_lines() {
    let pipeline = r#"TaskDefinitions = { g = { tasks = { { name = "d", command = function()
        log.debug("deep detail"); return true end } } } }"#;
    Test::new().write("tasks.lua", pipeline).run(&["run", "tasks.lua"]).expect_code(0).stderr_lacks("deep detail");
    Test::new()
        .write("tasks.lua", pipeline)
        .run(&["--verbose", "run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("g/d  DEBUG  deep detail");
    Test::new()
        .write("tasks.lua", pipeline)
        .env("RUST_LOG", "debug")
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("g/d  DEBUG  deep detail");
}

#[test]
fn verbose_shows_sloth_runners_detail_not_its_libraries() {
    let agent = crate::support::agent::Agent::start(&[]);
    let pipeline = format!(
        r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "{}" }} }}, tasks = {{
  {{ name = "d", agent = "box", command = "echo x > x.txt" }} }} }} }}"#,
        agent.address
    );
    let run = Test::new().write("tasks.lua", &pipeline).run(&["--verbose", "run", "tasks.lua"]).expect_code(0);
    assert!(!run.stderr.contains("frame="), "no HTTP/2 frames:\n{}", run.stderr);
    for detail in ["DEBUG  dispatched to agent 'box'", "(policy first, attempt 1", "DEBUG  synced with agent 'box'"] {
        assert!(run.stderr.contains(detail), "{detail}\n{}", run.stderr);
    }
    assert!(run.stderr.contains("g/d  succeeded"), "{}", run.stderr);
}

#[test]
fn sloth_stdlib_dir_loads_the_engine_from_disk() {
    let test = Test::new().write("tasks.lua", ORDERED);
    // A copy of the stdlib whose validate entry point announces itself.
    let stdlib = test.path().join("stdlib");
    copy_dir(&crate::support::repo_root().join("stdlib"), &stdlib);
    let cli = stdlib.join("sloth/cli.lua");
    let source = std::fs::read_to_string(&cli).expect("cli.lua");
    let patched = source.replace(
        "function M.validate(opts)\n",
        "function M.validate(opts)\n  io.stdout:write('engine from disk\\n')\n",
    );
    assert_ne!(source, patched, "the patch applies");
    std::fs::write(&cli, patched).expect("write cli.lua");
    test.run(&["validate", "tasks.lua"]).expect_code(0);
    let test = test.env("SLOTH_STDLIB_DIR", &stdlib.to_string_lossy());
    test.run(&["validate", "tasks.lua"]).expect_code(0).stdout_has("engine from disk");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn dry_run_shows_where_remote_tasks_run_without_contacting_agents() {
    let dead = crate::support::agent::dead_port();
    let port = dead.port;
    Test::new()
        .write(
            "tasks.lua",
            &format!(
                r#"TaskDefinitions = {{ g = {{ agents = {{ box = {{ address = "127.0.0.1:{port}" }} }}, tasks = {{
                    {{ name = "t", agent = "box", command = "true", workspace = {{ exclude = {{ "*.log" }} }} }},
                }} }} }}"#
            ),
        )
        .run(&["run", "tasks.lua", "--dry-run"])
        .expect_code(0)
        .stdout_has(&format!("1. t  [agent box at 127.0.0.1:{port}]"))
        .stdout_has("excluding *.log; changes come back after success");
}

#[test]
fn return_prints_the_exports_and_final_outputs_as_json_and_nothing_else() {
    let run = Test::new()
        .write(
            "tasks.lua",
            r#"
export({ release = "1.4.0" })
TaskDefinitions = { g = { tasks = {
  { name = "build", command = function()
      print("chatty output that must not reach stdout")
      io.write("more chatter\n")
      export({ built = true })
      return true, "built", { artifact = "app.tar", size = 42, tags = { "a", "b" } }
    end },
  { name = "shell", command = "echo from-shell" },
} } }
"#,
        )
        .run(&["run", "tasks.lua", "--return"])
        .expect_code(0)
        .stderr_has("chatty output that must not reach stdout");
    let document: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    assert_eq!(document["exports"]["release"], "1.4.0");
    assert_eq!(document["exports"]["built"], true);
    assert_eq!(document["outputs"]["g"]["build"]["artifact"], "app.tar");
    assert_eq!(document["outputs"]["g"]["build"]["tags"][1], "b");
    assert_eq!(document["outputs"]["g"]["shell"]["stdout"], "from-shell\n");
}

#[test]
fn abort_if_stops_the_run_and_the_summary_names_the_task() {
    let test = Test::new().write(
        "tasks.lua",
        r#"TaskDefinitions = { g = { tasks = {
            { name = "guard", abort_if = "test -e STOP", command = "true" },
            { name = "after", command = "touch after-ran" },
        } } }"#,
    );
    std::fs::write(test.path().join("STOP"), "").expect("write STOP");
    test.run(&["run", "tasks.lua"])
        .expect_code(1)
        .stderr_has("g/guard  ABORTED THE RUN: abort_if was true")
        .stderr_has("g/after  skipped: the run was aborted by g/guard")
        .stderr_has("the run was aborted by g/guard");
    assert!(!test.exists("after-ran"));
}

#[test]
fn retries_are_reported_attempt_by_attempt() {
    Test::new()
        .write(
            "tasks.lua",
            r#"TaskDefinitions = { g = { tasks = {
                { name = "flaky", retries = 2, retry_delay = "5ms",
                  command = "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; [ $n -ge 1 ]" },
            } } }"#,
        )
        .run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("g/flaky  attempt 1/3 failed: exited with code 1; retrying in 5ms")
        .stderr_has("g/flaky  succeeded")
        .stderr_has("after 2 attempts");
}

#[test]
fn an_invalid_timeout_is_a_usage_error() {
    Test::new()
        .write(
            "tasks.lua",
            r#"TaskDefinitions = { g = { tasks = { { name = "t", command = "true", timeout = "10 secs" } } } }"#,
        )
        .run(&["run", "tasks.lua"])
        .expect_code(2)
        .stderr_has("tasks.lua: group 'g', task 't': field 'timeout': invalid duration '10 secs'");
}

#[test]
fn a_task_name_longer_than_a_format_width_fits_the_summary() {
    // string.format's widths stop at 99: the summary pads by hand.
    let name = "n".repeat(150);
    let test = Test::new().write(
        "tasks.lua",
        &format!(r#"TaskDefinitions = {{ g = {{ tasks = {{ {{ name = "{name}", command = "true" }}, {{ name = "short", command = "true" }} }} }} }}"#),
    );
    let run = test.run(&["run", "tasks.lua"]).expect_code(0);
    let table: Vec<&str> = run.stderr.lines().skip_while(|line| !line.starts_with("TASK ")).collect();
    let row = table.iter().find(|line| line.starts_with(&format!("g/{name}  succeeded"))).expect("the long row");
    let short = table.iter().find(|line| line.starts_with("g/short ")).expect("the short row");
    assert_eq!(row.find("succeeded"), short.find("succeeded"), "columns line up:\n{}", run.stderr);
}

#[test]
fn runs_started_together_draw_their_own_random_numbers_and_keep_their_own_artifacts() {
    // Lua seeds math.random from the second and addresses that are the same in every process
    // here: two runs started in the same second drew the same numbers, and shared one run id —
    // one artifacts directory, each run's `consumes` copying whichever wrote last.
    let test = Test::new().write(
        "tasks.lua",
        r#"print("draw " .. math.random(0, 1 << 40))
        -- (A pipeline's own seed makes its draws repeatable; run ids do not come from them.)
        math.randomseed(os.time())
        TaskDefinitions = { g = { tasks = {
          { name = "make", command = "echo $$ > out.txt", artifacts = { "out.txt" } },
        } } }"#,
    );
    let runs: Vec<_> = (0..2).map(|_| test.spawn_capturing(&["run", "tasks.lua"])).collect();
    let outputs: Vec<_> = runs.into_iter().map(|run| run.wait_with_output().expect("a run ends")).collect();
    let draws: Vec<String> = outputs
        .iter()
        .map(|output| {
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            stdout.lines().find(|line| line.starts_with("draw ")).expect("the draw").to_owned()
        })
        .collect();
    assert_ne!(draws[0], draws[1], "two runs drew the same number");
    let stores = std::fs::read_dir(test.path().join(".sloth/artifacts")).expect("the artifacts directory").count();
    assert_eq!(stores, 2, "two runs kept their artifacts in {stores} director(y/ies)");
}
