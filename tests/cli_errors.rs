//! A wrong pipeline or command line: exit 2, nothing runs, and the message names the file,
//! group, task and field.

use crate::support::Test;

fn expect_invalid(pipeline: &str, needles: &[&str]) {
    let test = Test::new().write("tasks.lua", pipeline);
    let mut run = test.run(&["run", "tasks.lua"]).expect_code(2);
    for needle in needles {
        run = run.stderr_has(needle);
    }
    assert!(!test.exists("ran"), "a task ran although the pipeline is invalid");
}

#[test]
fn a_cycle_is_printed_as_a_path() {
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "ok", command = "touch ran" },
            { name = "a", depends_on = "b", command = "true" },
            { name = "b", depends_on = "a", command = "true" },
        } } }"#,
        &["tasks.lua: group 'g': field 'depends_on': dependency cycle: a -> b -> a"],
    );
}

#[test]
fn an_unknown_dependency_names_it() {
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "ok", command = "touch ran" },
            { name = "a", depends_on = { "ghost" }, command = "true" },
        } } }"#,
        &["tasks.lua: group 'g', task 'a': field 'depends_on': unknown task 'ghost'"],
    );
}

#[test]
fn a_task_without_command() {
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "ok", command = "touch ran" },
            { name = "empty", description = "nothing to do" },
        } } }"#,
        &["tasks.lua: group 'g', task 'empty': field 'command': is missing"],
    );
}

#[test]
fn a_duplicate_name() {
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "twice", command = "touch ran" },
            { name = "twice", command = "true" },
        } } }"#,
        &["tasks.lua: group 'g', task 'twice': field 'name': duplicate task name"],
    );
}

#[test]
fn task_definitions_that_is_not_a_table() {
    expect_invalid(
        r#"TaskDefinitions = "build everything""#,
        &["tasks.lua: TaskDefinitions must be a table of groups, got string"],
    );
    expect_invalid("local x = 1", &["tasks.lua: no TaskDefinitions table defined"]);
}

#[test]
fn a_lua_syntax_error_names_file_and_line() {
    expect_invalid(
        "TaskDefinitions = {\n  g = { tasks = {\n    { name = 'x' command = 'true' },\n  } }\n}\n",
        &["tasks.lua:3:"],
    );
}

#[test]
fn a_runtime_error_while_loading_names_file_and_line() {
    expect_invalid("local cfg = nil\nTaskDefinitions = { g = cfg.groups }\n", &["tasks.lua:2:", "attempt to index"]);
}

#[test]
fn malformed_fields_are_each_reported() {
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "ok", command = "touch ran" },
            { name = "n", command = 42, params = "p", depends_on = { 1 }, colour = "red" },
        } } }"#,
        &[
            "task 'n': field 'command': must be a shell string or a function, got number",
            "task 'n': field 'params': must be a table, got string",
            "task 'n': field 'depends_on': must be a task name or a list of task names",
            "task 'n': field 'colour': unknown field",
        ],
    );
}

#[test]
fn a_dispatch_policy_that_does_not_exist_is_named() {
    expect_invalid(
        r#"TaskDefinitions = { g = { dispatch = "round_robbin", tasks = {
            { name = "r", command = "touch ran" },
        } } }"#,
        &["group 'g': field 'dispatch': 'round_robbin' is neither a built-in policy"],
    );
    expect_invalid(
        r#"TaskDefinitions = { g = { agents = { a = { address = "127.0.0.1:1", labels = { os = "linux" } } }, tasks = {
            { name = "ok", command = "touch ran" },
            { name = "r", agent = { labels = { os = "windows" } }, command = "true" },
            { name = "s", agent = { "a", "b" }, command = "true" },
        } } }"#,
        &[
            "task 'r': field 'agent': no agent of the group has the labels os=windows",
            "task 's': field 'agent': unknown agent 'b' (agents: a)",
        ],
    );
}

#[test]
fn a_missing_pipeline_file() {
    Test::new().run(&["run", "nope.lua"]).expect_code(2).stderr_has("nope.lua");
}

#[test]
fn a_bad_command_line_is_exit_2() {
    Test::new().run(&["run"]).expect_code(2);
    Test::new().run(&["frobnicate"]).expect_code(2);
    Test::new().write("tasks.lua", "TaskDefinitions = {}").run(&["run", "tasks.lua", "--jobs", "0"]).expect_code(2);
}

#[test]
fn an_unknown_agent_name_stops_everything_before_it_runs() {
    expect_invalid(
        r#"TaskDefinitions = { g = {
            agents = { builder = { address = "127.0.0.1:1" } },
            tasks = {
              { name = "ok", command = "touch ran" },
              { name = "remote", agent = "buidler", command = "true" },
            } } }"#,
        &["tasks.lua: group 'g', task 'remote': field 'agent': unknown agent 'buidler' (agents: builder)"],
    );
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "ok", command = "touch ran" },
            { name = "remote", agent = "anywhere", command = "true" },
        } } }"#,
        &["field 'agent': unknown agent 'anywhere' (the group declares no agents)"],
    );
}

#[test]
fn malformed_agent_pools_are_named() {
    expect_invalid(
        r#"TaskDefinitions = { g = {
            agents = { a = { discover = "http://x:1" }, b = { discover = "dns://x:1", address = "x:1" },
                       c = { address = "x:1", nameserver = "127.0.0.1:53" }, d = { discover = "dns://x" },
                       e = { discover = "dns+srv://_s._tcp.x", nameserver = 53 } },
            tasks = { { name = "ok", command = "touch ran" } } } }"#,
        &[
            "group 'g': field 'agents.a.discover': must be \"dns+srv://NAME\" (SRV records: host and port of each agent), \"dns://NAME:PORT\"",
            "group 'g': field 'agents.b': has both 'address' and 'discover'",
            "group 'g': field 'agents.c.nameserver': goes with 'discover', not with an agent's 'address'",
            "group 'g': field 'agents.d.discover': must be",
            "group 'g': field 'agents.e.nameserver': must be the DNS server's \"host:port\"",
        ],
    );
}

#[test]
fn malformed_agents_and_workspace_fields_are_named() {
    expect_invalid(
        r#"TaskDefinitions = { g = {
            agents = { a = { addr = "x:1" }, b = { address = "x:2", tls = true } },
            tasks = {
              { name = "ok", command = "touch ran" },
              { name = "w", command = "true", delegate_to = 5, workspace = { sync_back = "sometimes", keep = 1 } },
            } } }"#,
        &[
            "group 'g': field 'agents.a': has no 'address'",
            "group 'g': field 'agents.b.tls': must be a table { ca = \"ca.pem\"",
            "task 'w': field 'delegate_to': must be an address string",
            "task 'w': field 'workspace.sync_back': must be \"on_success\", \"always\" or \"never\", got sometimes",
            "task 'w': field 'workspace.keep': unknown field",
        ],
    );
}

#[test]
fn a_mistyped_subcommand_or_task_gets_a_suggestion() {
    let test = Test::new()
        .write("tasks.lua", r#"TaskDefinitions = { g = { tasks = { { name = "compile", command = "touch ran" } } } }"#);
    test.run(&["rnu", "tasks.lua"])
        .expect_code(2)
        .stderr_has("unrecognized subcommand 'rnu'")
        .stderr_has("did you mean 'run'?");
    test.run(&["runn", "tasks.lua"]).expect_code(2).stderr_has("'run'");
    let far = test.run(&["banana"]).expect_code(2);
    assert!(!far.stderr.contains("did you mean"), "{}", far.stderr);
    test.run(&["run", "tasks.lua", "-t", "compiel"])
        .expect_code(2)
        .stderr_has("unknown task 'compiel' (not in any selected group; did you mean 'compile'?)");
    assert!(!test.exists("ran"));
}

#[test]
fn a_mistyped_field_names_the_one_meant() {
    expect_invalid(
        r#"TaskDefinitions = { g = { tasks = {
            { name = "ok", command = "touch ran" },
            { name = "b", depend_on = "ok", command = "true" },
        } } }"#,
        &["tasks.lua: group 'g', task 'b': field 'depend_on': unknown field (did you mean 'depends_on'?)"],
    );
}

#[test]
fn an_error_while_the_pipeline_is_read_shows_the_users_frames_not_the_engines() {
    let test = Test::new()
        .write("helper.lua", "local M = {}\nfunction M.bad(x) return x.field.deep end\nreturn M\n")
        .write("sub.lua", "local helper = require('helper')\nhelper.bad({})\n")
        .write("tasks.lua", "import('sub.lua')\nTaskDefinitions = {}\n");
    let run = test.run(&["run", "tasks.lua"]).expect_code(2);
    for frame in ["helper.lua:2: in function 'helper.bad'", "sub.lua:2: in main chunk", "tasks.lua:1: in main chunk"] {
        assert!(run.stderr.contains(frame), "{frame}\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("stdlib/sloth/"), "{}", run.stderr);
}
