-- Tests for examples/hello.lua: `test` and `assert` exist under `sloth-runner test` only.
--   sloth-runner test -w examples/hello.lua -f examples/tests/hello_test.lua
test.describe("hello", function()
  test.it("greet builds its greeting from whoami's output", function()
    local result = test.run_task("greet") -- whoami runs first: greet depends on it
    assert.is_true(result.success, "greet succeeds")
    assert.contains(result.message, "hello, ", "the greeting")
    assert.equals(result.output.message, result.message, "the greeting is an output too")
  end)

  test.it("shout returns what exec.run gives it", function()
    local tr = test.mock("exec.run", { returns = { "MOCKED", "", nil } })
    local result = test.run_task("hello.shout")
    assert.equals(result.message, "MOCKED", "shout's message")
    assert.equals(#tr.calls, 1, "tr ran once")
    assert.equals(tr.calls[1][2].stdin:sub(1, 7), "hello, ", "tr was given the greeting")
  end)
end)
