--- `sloth-runner test -w WORKFLOW -f TESTFILE`: the test file runs in the VM that loaded the
--- pipeline, with the globals `test` and `assert` the Go sloth-runner gave it (they exist only
--- there). `test.it` cases are reported one line each, an error in one is a failed case; an
--- assertion records a failure and goes on, as the Go tool's did; `test.mock` replaces a module
--- function until the enclosing `describe` ends; `test.run_task` runs one task (and what it
--- depends on) through the real engine.
local artifacts = require("sloth.artifacts")
local core = require("sloth.core")
local errors = require("sloth.errors")
local plan_mod = require("sloth.plan")
local report = require("sloth.report")
local runner = require("sloth.runner")
local scripts = require("sloth.scripts")
local suggest = require("sloth.suggest")
-- Loaded now, before any mock: the stdlib modules over a command-line tool keep the real
-- `exec.run`, so mocking it changes what the pipeline's own code calls, not what `git.clone`
-- runs (mock `git.clone` for that).
require("sloth.tool")

local M = {}

local lua_assert = assert

--- A file that takes writes and keeps nothing (the engine's progress lines, while a test runs).
local sink = {}
function sink.write(self)
  return self
end
function sink.flush(self)
  return self
end

--- A value as the Go tool's `assert.equals` compared it: as text, whole floats without ".0".
local function text(value)
  if math.type(value) == "float" and value == math.floor(value) and math.abs(value) < 2 ^ 63 then
    return string.format("%d", value)
  end
  return tostring(value)
end

--- `group`, `task` of `name`: a task name unique in the pipeline, or `group.task`.
local function find_task(pipeline, name)
  local groups = {}
  for _, group_name in ipairs(pipeline.group_names) do
    if pipeline.groups[group_name].by_name[name] then
      groups[#groups + 1] = group_name
    end
  end
  if #groups == 1 then
    return groups[1], name
  elseif #groups > 1 then
    error(string.format("test.run_task: task '%s' is in groups %s; say which: '%s.%s'", name,
      table.concat(groups, ", "), groups[1], name), 3)
  end
  for dot in name:gmatch("()%.") do
    local group = pipeline.groups[name:sub(1, dot - 1)]
    local task = name:sub(dot + 1)
    if group and group.by_name[task] then
      return group.name, task
    end
  end
  local names = {}
  for _, group_name in ipairs(pipeline.group_names) do
    for _, task in ipairs(pipeline.groups[group_name].tasks) do
      names[#names + 1] = task.name
      names[#names + 1] = group_name .. "." .. task.name
    end
  end
  local hint = suggest.closest(name, names)
  error(string.format("test.run_task: unknown task '%s'%s", name, hint and string.format(" (did you mean '%s'?)", hint) or ""), 3)
end

--- The largest positive integer key of `list` (`returns = { nil, "err" }` has two values).
local function count(list)
  if math.type(list.n) == "integer" then
    return list.n
  end
  local n = 0
  for key in pairs(list) do
    if math.type(key) == "integer" and key > n then
      n = key
    end
  end
  return n
end

--- A new test session over a loaded pipeline: its `test` and `assert` tables and `finish()`.
---@param pipeline table from `sloth.taskdefs.load`
---@param out? file* where the report goes (default stdout)
function M.new(pipeline, out)
  out = out or io.stdout
  local state = {
    depth = 0,
    case = nil,
    cases = { passed = 0, failed = 0 },
    assertions = { passed = 0, failed = 0 },
    -- Per `describe` (the file's own at the bottom): the functions mocked in it, to put back.
    scopes = { {} },
  }

  local function line(text_)
    out:write(string.rep("  ", state.depth), text_, "\n")
  end

  local function report_case(name, failures)
    if #failures == 0 then
      state.cases.passed = state.cases.passed + 1
      line("PASS  " .. name)
    else
      state.cases.failed = state.cases.failed + 1
      line("FAIL  " .. name)
      for _, failure in ipairs(failures) do
        line("      " .. failure:gsub("\n", "\n" .. string.rep("  ", state.depth) .. "      "))
      end
    end
  end

  local assert_ = setmetatable({}, {
    -- `assert(v, msg)` keeps working in the test file and the pipeline's code.
    __call = function(_, ...)
      return lua_assert(...)
    end,
  })

  --- One assertion: in a case, it counts for that case; outside any, it is a case of its own.
  local function check(ok, message, detail)
    if ok then
      state.assertions.passed = state.assertions.passed + 1
    else
      state.assertions.failed = state.assertions.failed + 1
    end
    local label = message ~= nil and tostring(message) or nil
    local case = state.case
    if case then
      case.first_message = case.first_message or label
      if not ok then
        case.failures[#case.failures + 1] = label and (label .. ": " .. detail) or detail
      end
    else
      report_case(label or detail, ok and {} or { detail })
    end
  end

  function assert_.is_true(value, message)
    check(value and true or false, message, "expected true, got " .. text(value))
  end

  function assert_.is_false(value, message)
    check(not value, message, "expected false, got " .. text(value))
  end

  function assert_.is_nil(value, message)
    check(value == nil, message, "expected nil, got " .. text(value))
  end

  function assert_.not_nil(value, message)
    check(value ~= nil, message, "expected a value, got nil")
  end

  --- Compares as text, as the Go tool did: `assert.equals(1, "1")` passes.
  function assert_.equals(actual, expected, message)
    check(text(actual) == text(expected), message, string.format("expected '%s', got '%s'", text(expected), text(actual)))
  end

  --- A string containing `needle` (plain text), or a list with a value equal to it (as text).
  function assert_.contains(haystack, needle, message)
    local found = false
    if type(haystack) == "string" then
      found = haystack:find(text(needle), 1, true) ~= nil
    elseif type(haystack) == "table" then
      for _, value in pairs(haystack) do
        if text(value) == text(needle) then
          found = true
          break
        end
      end
    end
    check(found, message, string.format("expected %s to contain '%s'", type(haystack) == "string"
      and string.format("'%s'", haystack) or text(haystack), text(needle)))
  end

  local test = {}

  --- Puts back what was mocked in the innermost scope, last mock first.
  local function restore(scope)
    for i = #scope, 1, -1 do
      local saved = scope[i]
      saved.owner[saved.field] = saved.original
    end
  end

  function test.describe(name, fn)
    if type(name) ~= "string" then
      error("test.describe: expected string for 'name', got " .. type(name), 2)
    end
    if type(fn) ~= "function" then
      error("test.describe: expected function for 'fn', got " .. type(fn), 2)
    end
    if state.case then
      error("test.describe: inside test.it; describe groups cases, it does not go in one", 2)
    end
    line(name)
    state.depth = state.depth + 1
    local scope = {}
    state.scopes[#state.scopes + 1] = scope
    local ok, err = pcall(fn)
    restore(scope)
    state.scopes[#state.scopes] = nil
    if not ok then
      report_case("(in describe, outside test.it)", { "error: " .. errors.clean(err) })
    end
    state.depth = state.depth - 1
  end

  --- `test.it(name, fn)` or, as the Go tool had it, `test.it(fn)` (then the case is named by
  --- its first assertion's message).
  function test.it(name, fn)
    if fn == nil and type(name) == "function" then
      name, fn = nil, name
    end
    if name ~= nil and type(name) ~= "string" then
      error("test.it: expected string for 'name', got " .. type(name), 2)
    end
    if type(fn) ~= "function" then
      error("test.it: expected function for 'fn', got " .. type(fn), 2)
    end
    if state.case then
      error("test.it: cases do not nest", 2)
    end
    local case = { failures = {} }
    state.case = case
    local ok, err = pcall(fn)
    state.case = nil
    if not ok then
      case.failures[#case.failures + 1] = "error: " .. errors.clean(err)
    end
    report_case(name or case.first_message or string.format("case %d", state.cases.passed + state.cases.failed + 1),
      case.failures)
  end

  --- Replaces `module.fn` (any dotted path from a global: `exec.run`, `aws.exec`,
  --- `terraform.init`) until the enclosing `describe` ends. `spec.returns` lists what it
  --- returns (nils included); `spec` may also be a function to call instead. Returns a handle
  --- whose `calls` lists each call's arguments (`calls[1][1]`, `calls[1].n`).
  function test.mock(name, spec)
    if type(name) ~= "string" then
      error("test.mock: expected string for 'name', got " .. type(name), 2)
    end
    local replacement
    if type(spec) == "function" then
      replacement = spec
    elseif type(spec) ~= "table" then
      error("test.mock: expected table for 'spec' ({ returns = { ... } }), got " .. type(spec), 2)
    elseif type(spec.returns) ~= "table" then
      error(string.format("test.mock: '%s': expected table for 'returns', got %s", name, type(spec.returns)), 2)
    else
      local returns, n = spec.returns, count(spec.returns)
      replacement = function()
        return table.unpack(returns, 1, n)
      end
    end
    local path = {}
    for part in name:gmatch("[^.]+") do
      path[#path + 1] = part
    end
    if #path < 2 or table.concat(path, ".") ~= name then
      error(string.format("test.mock: '%s' is not 'module.function'", name), 2)
    end
    local owner = _G
    for i = 1, #path - 1 do
      owner = owner[path[i]]
      if type(owner) ~= "table" then
        error(string.format("test.mock: '%s': no module '%s'", name, table.concat(path, ".", 1, i)), 2)
      end
    end
    local field = path[#path]
    if type(owner[field]) ~= "function" then
      error(string.format("test.mock: '%s': not a function (got %s)", name, type(owner[field])), 2)
    end
    local scope = state.scopes[#state.scopes]
    scope[#scope + 1] = { owner = owner, field = field, original = owner[field] }
    local handle = { calls = {} }
    owner[field] = function(...)
      handle.calls[#handle.calls + 1] = table.pack(...)
      return replacement(...)
    end
    return handle
  end

  --- Runs one task of the pipeline (`group.task`, or a task name unique in it) and the tasks
  --- it depends on, as `run -g GROUP -t TASK` would; returns `{ success, message, duration,
  --- output, error }` (`duration` as text, as the Go tool gave it; also `status`, `seconds`).
  function test.run_task(name)
    if type(name) ~= "string" then
      error("test.run_task: expected string for 'name', got " .. type(name), 2)
    end
    local group_name, task_name = find_task(pipeline, name)
    local plan = plan_mod.build(pipeline, { groups = { group_name }, tasks = { task_name } })
    local cwd = core.cwd()
    local ran, summary = pcall(runner.run, plan, {
      jobs = 1,
      workdir_of = function(group)
        return group.workdir or cwd
      end,
      reporter = report.new({ quiet = true, out = sink }),
      store = artifacts.new_store(pipeline.dir),
    })
    if not ran then
      local message = errors.clean(summary)
      return { success = false, status = "failed", message = message, error = message, duration = "0s", seconds = 0, output = {} }
    end
    for _, result in ipairs(summary.results) do
      if result.group == group_name and result.task == task_name then
        local success = result.status == "succeeded"
        local message = result.message ~= nil and errors.clean(result.message) or nil
        return {
          success = success,
          status = result.status,
          message = message,
          error = not success and (message or result.status) or nil,
          duration = core.format_duration(result.duration or 0),
          seconds = result.duration or 0,
          output = result.outputs or {},
        }
      end
    end
    return { success = false, status = "skipped", message = "did not run", error = "did not run", duration = "0s", seconds = 0, output = {} }
  end

  local session = { test = test, assert = assert_ }

  --- Puts back the file-level mocks and prints the summary; true when every case passed.
  function session.finish(elapsed)
    restore(state.scopes[1])
    state.scopes[1] = {}
    local cases, assertions = state.cases, state.assertions
    out:write(string.format("\n%d passed, %d failed (%d case(s), %d assertion(s), %s)\n", cases.passed, cases.failed,
      cases.passed + cases.failed, assertions.passed + assertions.failed, core.format_duration(elapsed)))
    return cases.failed == 0
  end

  --- Reports an error that stopped the test file as a failed case.
  function session.stopped(err)
    report_case("(test file stopped)", { "error: " .. errors.clean(err) })
  end

  return session
end

--- Runs `file` as a test file against `pipeline`; true when every case passed, or nil and the
--- message when the file cannot be loaded.
---@param pipeline table
---@param file string
function M.run(pipeline, file)
  local chunk, err = scripts.load(file)
  if not chunk then
    return nil, err
  end
  local started = core.now()
  local session = M.new(pipeline)
  local saved_test, saved_assert = rawget(_G, "test"), assert
  test, assert = session.test, session.assert
  local ok, run_error = pcall(scripts.run, file, chunk)
  test, assert = saved_test, saved_assert
  if not ok then
    session.stopped(run_error)
  end
  return session.finish(core.now() - started)
end

return M
