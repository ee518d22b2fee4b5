//! `sloth-runner test -w WORKFLOW -f TESTFILE`: the Go sloth-runner's `test` and `assert`
//! globals, a line per case, mocks that end with their `describe`, tasks run by the engine.

use crate::support::Test;

const WORKFLOW: &str = r#"
TaskDefinitions = {
  aws_pipeline = {
    tasks = {
      { name = "prepare", command = "echo prepared > prepared.txt" },
      { name = "check-identity", depends_on = "prepare", command = function()
          local result = aws.exec({ "sts", "get-caller-identity" })
          if not result.success then
            return false, "Failed to call AWS."
          end
          local identity = data.parse_json(result.stdout)
          if identity.Account == "123456789012" then
            return true, "Running in the correct account.", { account = identity.Account }
          end
          return false, "Running in the WRONG account."
        end },
      { name = "hello", command = function()
          local out = exec.run("echo real")
          return true, out
        end },
    },
  },
  other = {
    tasks = { { name = "hello", command = "true" } },
  },
}
"#;

#[test]
fn cases_pass_with_mocks_and_tasks_run_with_their_dependencies() {
    let run = Test::new()
        .write("pipeline.lua", WORKFLOW)
        .write(
            "pipeline_test.lua",
            r#"
test.describe("AWS Pipeline Logic", function()
  test.it("succeeds with the right account", function()
    local mock = test.mock("aws.exec", { returns = { { success = true, stdout = '{"Account": "123456789012"}' } } })
    local result = test.run_task("check-identity")
    assert.is_true(result.success, "Task should succeed")
    assert.equals(result.message, "Running in the correct account.", "message")
    assert.equals(result.output.account, 123456789012, "compared as text")
    assert.equals(mock.calls[1][1][2], "get-caller-identity", "what aws was asked")
    assert.not_nil(io.open("prepared.txt"), "the dependency ran first")
    assert.is_nil(result.error, "no error")
    assert.equals(type(result.duration), "string", "a duration as text")
  end)
  test.it(function()
    test.mock("aws.exec", { returns = { { success = false } } })
    local result = test.run_task("aws_pipeline.check-identity")
    assert.is_false(result.success, "Task should fail without AWS")
    assert.equals(result.error, "Failed to call AWS.", "the task's message")
  end)
  test.it("exec.run mocked for the pipeline's code", function()
    test.mock("exec.run", { returns = { "mocked\n" } })
    assert.equals(test.run_task("aws_pipeline.hello").message, "mocked\n", "the mock answered")
  end)
end)
test.it("mocks end with their describe", function()
  assert.equals(test.run_task("aws_pipeline.hello").message, "real\n", "the real exec.run")
  assert.contains({ "a", "b" }, "b", "a list")
  assert(true, "Lua's assert still works")
end)
"#,
        )
        .run(&["test", "-w", "pipeline.lua", "-f", "pipeline_test.lua"])
        .expect_code(0);
    for line in [
        "AWS Pipeline Logic\n",
        "  PASS  succeeds with the right account\n",
        "  PASS  Task should fail without AWS\n",
        "  PASS  exec.run mocked for the pipeline's code\n",
        "PASS  mocks end with their describe\n",
        "4 passed, 0 failed (4 case(s), 12 assertion(s),",
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in\n{}", run.stdout);
    }
}

#[test]
fn a_failed_assertion_or_an_error_fails_its_case_and_the_run_goes_on() {
    let run = Test::new()
        .write("pipeline.lua", WORKFLOW)
        .write(
            "pipeline_test.lua",
            r#"
test.describe("failures", function()
  test.it("wrong account", function()
    test.mock("aws.exec", { returns = { { success = true, stdout = '{"Account": "999"}' } } })
    local result = test.run_task("check-identity")
    assert.is_true(result.success, "Task should succeed")
    assert.equals(result.message, "Running in the correct account.", "message")
  end)
  test.it("ambiguous", function()
    test.run_task("hello")
  end)
  test.it("unknown", function()
    test.run_task("check-identiti")
  end)
  test.it("after them", function()
    assert.is_true(true, "still runs")
  end)
end)
"#,
        )
        .run(&["test", "-w", "pipeline.lua", "-f", "pipeline_test.lua"])
        .expect_code(1);
    for line in [
        "  FAIL  wrong account\n",
        "        Task should succeed: expected true, got false\n",
        "        message: expected 'Running in the correct account.', got 'Running in the WRONG account.'\n",
        "  FAIL  ambiguous\n",
        "test.run_task: task 'hello' is in groups aws_pipeline, other; say which: 'aws_pipeline.hello'",
        "test.run_task: unknown task 'check-identiti' (did you mean 'check-identity'?)",
        "  PASS  after them\n",
        "1 passed, 3 failed (4 case(s), 3 assertion(s),",
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in\n{}", run.stdout);
    }
}

#[test]
fn a_missing_or_broken_test_file_is_named() {
    let test = Test::new()
        .write("pipeline.lua", WORKFLOW)
        .write("broken_test.lua", "test.it(\"x\", function() end\n")
        .write("mock_test.lua", "test.mock(\"aws.exce\", { returns = {} })\n");
    test.run(&["test", "-w", "pipeline.lua", "-f", "missing_test.lua"])
        .expect_code(2)
        .stderr_has("error: test file missing_test.lua: No such file or directory");
    test.run(&["test", "-w", "pipeline.lua", "-f", "broken_test.lua"])
        .expect_code(2)
        .stderr_has("error: test file broken_test.lua:2: ')' expected");
    test.run(&["test", "-w", "missing.lua", "-f", "broken_test.lua"])
        .expect_code(2)
        .stderr_has("error: missing.lua: No such file or directory");
    test.run(&["test", "-w", "pipeline.lua", "-f", "mock_test.lua"])
        .expect_code(1)
        .stdout_has("FAIL  (test file stopped)")
        .stdout_has("test.mock: 'aws.exce': not a function (got nil)");
}
