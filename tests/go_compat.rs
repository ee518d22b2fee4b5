//! Pipelines written for the Go sloth-runner, run through the real binary: the behaviour
//! differences it accepts (a missing group workdir, `execution_mode`) and the one it refuses
//! with an explanation (`next_if_fail` read the other way round).

use crate::support::Test;

#[test]
fn a_missing_group_workdir_is_created_and_kept() {
    let test = Test::new().write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  build = {
    workdir = "out/build",
    execution_mode = "sequential",
    clean_workdir_after_run = function(result)
      local f = assert(io.open(os.getenv("REPORT"), "w"))
      f:write(tostring(result.success), " ", tostring(result.output.artifact))
      f:close()
      return false
    end,
    tasks = {
      { name = "compile", command = "echo built > app.bin" },
      { name = "package", depends_on = "compile", command = function()
          return true, "packaged", { artifact = "app.bin" }
        end },
    },
  },
}
"#,
    );
    let report = test.path().join("report.txt");
    let report = report.to_str().expect("a UTF-8 temp path");
    let test = test.env("REPORT", report);
    test.run(&["validate", "-f", "tasks.lua"])
        .expect_code(0)
        .stderr_has("warning: tasks.lua: group 'build': field 'execution_mode': has no effect in sloth-runner");
    assert!(!test.exists("out/build"), "validate created the workdir");
    test.run(&["run", "-f", "tasks.lua"]).expect_code(0).stderr_has("field 'execution_mode': has no effect");
    assert_eq!(test.read("out/build/app.bin"), "built\n");
    assert_eq!(test.read("report.txt"), "true app.bin");
}

#[test]
fn next_if_fail_on_the_handler_is_refused_with_the_meaning_here() {
    Test::new()
        .write(
            "tasks.lua",
            r#"
TaskDefinitions = {
  ci = {
    tasks = {
      { name = "build", command = "true" },
      { name = "cleanup", next_if_fail = "build", command = "touch cleaned" },
    },
  },
}
"#,
        )
        .run(&["run", "tasks.lua"])
        .expect_code(2)
        .stderr_has(
            "tasks.lua: group 'ci', task 'cleanup': field 'next_if_fail': 'build' is declared before 'cleanup'; \
             next_if_fail lists the tasks to run when 'cleanup' fails",
        )
        .stderr_has("put next_if_fail = \"cleanup\" on 'build'");
}

const SUCCESS_LINES: &str = r#"
TaskDefinitions = {
  deploy = {
    agents = { box = { address = "127.0.0.1:PORT" } },
    tasks = {
      { name = "here", command = function()
          log.success("deployed here", { env = "prod", status = "overridden" })
          return true
        end },
      { name = "there", agent = "box", command = function()
          log.success("deployed there")
          return true
        end },
    },
  },
}
"#;

#[test]
fn log_success_is_an_info_line_marked_as_a_success_here_and_from_an_agent() {
    let agent = crate::support::agent::Agent::start(&[]);
    let test = Test::new().write("tasks.lua", &SUCCESS_LINES.replace("PORT", agent.port()));
    test.run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("deploy/here  INFO  deployed here env=prod status=success")
        .stderr_has("box/there  INFO  deployed there status=success");
    let run = test.run(&["run", "--output", "json", "tasks.lua"]).expect_code(0);
    let logs: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON event"))
        .filter(|event| event["type"] == "log")
        .collect();
    assert_eq!(logs.len(), 2, "{}", run.stdout);
    for event in &logs {
        assert_eq!(event["level"], "info", "{event}");
        assert!(event["fields"].as_str().is_some_and(|fields| fields.ends_with("status=success")), "{event}");
    }
}

/// The identity and configuration git gets in these tests: nothing of the user's leaks in.
fn git_env(test: Test, home: &std::path::Path) -> Test {
    let home = home.to_str().expect("a UTF-8 temp path");
    test.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Sloth")
        .env("GIT_AUTHOR_EMAIL", "sloth@example.invalid")
        .env("GIT_COMMITTER_NAME", "Sloth")
        .env("GIT_COMMITTER_EMAIL", "sloth@example.invalid")
}

#[test]
fn a_pipeline_uses_the_git_global_as_the_go_examples_do() {
    let home = tempfile::tempdir().expect("a temp dir");
    let test = git_env(Test::new(), home.path()).write(
        "tasks.lua",
        r#"
TaskDefinitions = {
  release = {
    workdir = "build",
    tasks = {
      { name = "clone", command = function()
          local repo = git.clone(os.getenv("ORIGIN"), "app")
          if not repo.success then
            return false, "clone failed: " .. repo.stderr
          end
          local f = assert(io.open("app/VERSION", "w"))
          f:write("1.0.0\n")
          f:close()
          local _, err = repo:add("VERSION"):commit("release 1.0.0"):tag("v1.0.0"):push({ remote = "origin", branch = "main", tags = true })
          if err then
            return false, tostring(err)
          end
          log.success("released", { version = "1.0.0" })
          return true, "released"
        end },
    },
  },
}
"#,
    );
    let origin = test.path().join("origin.git");
    let status = std::process::Command::new("git")
        .args(["init", "--bare", "--initial-branch=main"])
        .arg(&origin)
        .status()
        .expect("running git init");
    assert!(status.success());
    let test = test.env("ORIGIN", origin.to_str().expect("a UTF-8 temp path"));
    test.run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("release/clone  INFO  released status=success version=1.0.0");
    assert_eq!(test.read("build/app/VERSION"), "1.0.0\n");
    let log = std::process::Command::new("git")
        .arg(format!("--git-dir={}", origin.display()))
        .args(["log", "--format=%s %D", "main"])
        .output()
        .expect("running git log");
    assert_eq!(String::from_utf8_lossy(&log.stdout), "release 1.0.0 HEAD -> main, tag: v1.0.0\n");
}

#[test]
fn a_values_file_takes_the_environment_as_the_go_tool_wrote_it() {
    Test::new()
        .write("values.yaml", "region: \"{{ .Env.SLOTH_TEST_REGION }}\"\nzone: \"{{.Env.SLOTH_TEST_REGION}}a\"\nnone: \"{{ .Env.SLOTH_TEST_UNSET }}\"\n")
        .write(
            "tasks.lua",
            r#"TaskDefinitions = { g = { tasks = { { name = "t", command = function()
                assert(values.region == "eu-west-1" and values.zone == "eu-west-1a" and values.none == "",
                  values.region .. "/" .. values.zone .. "/" .. values.none)
                return true
              end } } } }"#,
        )
        .env("SLOTH_TEST_REGION", "eu-west-1")
        .run(&["run", "tasks.lua", "-v", "values.yaml"])
        .expect_code(0);
}

/// A pipeline written for the Go tool's template data: `.Env`, `.IsProduction`, `.Shards`.
const TEMPLATED: &str = r#"
TaskDefinitions = {
  main = {
    description = "for {{ .Env }}",
    tasks = {
      { name = "show", command = function()
          return true, "env={{ .Env }} prod={{ .IsProduction }} shards={{ .Shards }}"
        end },
      { name = "say", command = "echo deploying to {{ .Env }}" },
    },
  },
}
"#;

#[test]
fn the_pipeline_file_is_rendered_with_each_template_flag() {
    let test = Test::new().write("tasks.lua", TEMPLATED);
    test.run(&["run", "-e", "Staging", "tasks.lua"]).expect_code(0).stderr_has("env=Staging prod=false shards=[1 2 3]");
    test.run(&["run", "--prod", "tasks.lua"]).expect_code(0).stderr_has("env=Development prod=true shards=[1 2 3]");
    test.run(&["run", "--shards", "7, 8", "-f", "tasks.lua"])
        .expect_code(0)
        .stderr_has("env=Development prod=false shards=[7 8]");
    test.run(&["run", "--env", "Production", "-p", "--shards", "", "tasks.lua"])
        .expect_code(0)
        .stderr_has("env=Production prod=true shards=[]");
    test.run(&["list", "-e", "Production", "tasks.lua"]).expect_code(0).stdout_has("for Production");
    test.run(&["run", "--dry-run", "-e", "Production", "tasks.lua"])
        .expect_code(0)
        .stdout_has("sh: echo deploying to Production");
    test.run(&["validate", "-p", "tasks.lua"]).expect_code(0).stderr_lacks("warning");
    test.run(&["run", "--shards", "1,x", "tasks.lua"]).expect_code(2).stderr_has("invalid shard number 'x'");
}

#[test]
fn range_if_and_eq_shape_the_pipeline() {
    let pipeline = r#"
local targets = { {{ range .Shards }}"shard-{{ . }}", {{ end }} }
TaskDefinitions = {
  main = {
    tasks = {
      { name = "where", command = function()
{{ if eq .Env "Production" }}
          return true, "to production: " .. table.concat(targets, " ")
{{ else if .IsProduction }}
          return true, "production-like: " .. table.concat(targets, " ")
{{ else }}
          return true, "to {{ .Env }}: " .. table.concat(targets, " ")
{{ end }}
        end },
{{ range .Shards }}
      { name = "shard_{{ . }}", depends_on = "where", command = "echo shard {{ . }} of {{ len $.Shards }}" },
{{ end }}
    },
  },
}
"#;
    let test = Test::new().write("tasks.lua", pipeline);
    test.run(&["run", "-e", "Production", "--shards", "1,2", "tasks.lua"])
        .expect_code(0)
        .stderr_has("to production: shard-1 shard-2")
        .stderr_has("main/shard_1 | shard 1 of 2")
        .stderr_has("main/shard_2 | shard 2 of 2");
    test.run(&["run", "-e", "Qa", "-p", "--shards", "3", "tasks.lua"])
        .expect_code(0)
        .stderr_has("production-like: shard-3")
        .stderr_has("main/shard_3 | shard 3 of 1");
    test.run(&["run", "-e", "Qa", "tasks.lua"]).expect_code(0).stderr_has("to Qa: shard-1 shard-2 shard-3");
}

#[test]
fn without_the_template_flags_the_file_is_read_as_it_is() {
    let test = Test::new().write(
        "tasks.lua",
        r#"
local matrix = {{ "a", "b" }, { "c" }}
TaskDefinitions = {
  main = {
    tasks = {
      { name = "nested", command = function()
          return true, string.format("%d rows, %s, {{ .Env }}", #matrix, matrix[1][2])
        end },
    },
  },
}
"#,
    );
    test.run(&["run", "tasks.lua"])
        .expect_code(0)
        .stderr_has("2 rows, b, {{ .Env }}")
        .stderr_has("warning: tasks.lua:7: {{ .Env }}, {{ .IsProduction }} and {{ .Shards }} are rendered only with");
    // With a flag, Lua's `{{` is a template action: refused, saying how to write the table.
    test.run(&["run", "-e", "Production", "tasks.lua"])
        .expect_code(2)
        .stderr_has("error: tasks.lua:2: {{ \"a\", \"b\" }, { \"c\" }}: the pipeline template does not support")
        .stderr_has("a Lua table written '{{' must be written '{ {'");
}

#[test]
fn an_unsupported_template_construct_names_the_file_and_line() {
    Test::new()
        .write("tasks.lua", "-- deploy\n\nlocal name = \"{{ with .Env }}{{ . }}{{ end }}\"\nTaskDefinitions = {}\n")
        .run(&["validate", "-e", "Production", "tasks.lua"])
        .expect_code(2)
        .stderr_has("error: tasks.lua:3: {{ with .Env }}: the pipeline template does not support 'with'");
    Test::new()
        .write("tasks.lua", "local a = 1\nlocal b = \"{{ .Env | printf \"%q\" }}\"\n")
        .run(&["run", "-p", "tasks.lua"])
        .expect_code(2)
        .stderr_has("error: tasks.lua:2: {{ .Env | printf \"%q\" }}: the pipeline template does not support pipes");
}

#[test]
fn lua_errors_after_rendering_name_the_lines_of_the_file() {
    let pipeline = r#"{{/* a comment
over two lines */}}
{{ if .IsProduction }}
local replicas = 3
local zone = "eu"
{{ else }}
local replicas = 1
{{ end }}
local shards = {
{{ range .Shards }}
  {{ . }}, -- shard {{ . }}
{{ end }}
}
TaskDefinitions = {
  main = {
    tasks = {
      { name = "fails", command = function()
          error("replicas " .. replicas .. ", shards " .. #shards)
        end },
    },
  },
}
"#;
    let test = Test::new().write("tasks.lua", pipeline);
    test.run(&["run", "-p", "--shards", "1,2,3,4", "tasks.lua"])
        .expect_code(1)
        .stderr_has("tasks.lua:18: replicas 3, shards 4");
    test.run(&["run", "-e", "Development", "tasks.lua"])
        .expect_code(1)
        .stderr_has("tasks.lua:18: replicas 1, shards 3");
    // A syntax error, too.
    let broken = pipeline.replace("TaskDefinitions = {\n  main", "TaskDefinitions = {\n  main main");
    test.write("broken.lua", &broken)
        .run(&["validate", "-p", "broken.lua"])
        .expect_code(2)
        .stderr_has("broken.lua:15:");
}
