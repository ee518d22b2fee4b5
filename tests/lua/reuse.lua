-- uses (a base task, local fields override, params merged), parallel, export, import.
local h = require("_helpers")

local base = {
  command = function(params) return true, params.greeting .. " " .. params.name .. " " .. params.extra end,
  params = { greeting = "hello", name = "base", extra = "kept" },
  description = "from the base",
}
local summary = h.run({ g = { tasks = {
  { name = "derived", uses = base, params = { name = "derived" } },
  { name = "override", uses = base, command = function() return true, "own command" end },
} } })
assert(summary.by_group.g.derived.message == "hello derived kept", summary.by_group.g.derived.message)
assert(summary.by_group.g.override.message == "own command")

-- parallel runs task tables at once and returns their results in order.
local core = require("sloth.core")
summary = h.run({ g = { tasks = {
  { name = "fan_out", command = function()
      local started = core.now()
      local results, err = parallel({
        { name = "one", command = "sleep 0.3; echo one" },
        { name = "two", command = function() exec.run("sleep 0.3"); return true, "two", { n = 2 } end },
      })
      assert(err == nil, err)
      assert(core.now() - started < 0.58, "parallel ran in sequence")
      assert(results[1].name == "one" and results[1].ok and results[1].outputs.stdout == "one\n")
      assert(results[2].message == "two" and results[2].outputs.n == 2)
      -- The fields the Go tool's pipelines read: status, duration (seconds), error.
      assert(results[1].status == "success" and results[1].error == nil)
      assert(results[1].duration >= 0.3 and results[1].duration < 5, results[1].duration)
      local failed, failure = parallel({ { command = "exit 3" }, { command = "true" } })
      assert(failed[1].ok == false and failed[2].ok == true)
      assert(failed[1].status == "failed" and failed[2].status == "success")
      assert(failed[1].error:find("exited with code 3", 1, true), failed[1].error)
      assert(failed[2].error == nil and failed[2].duration < failed[1].duration + 5)
      assert(failure:find("parallel#1", 1, true), failure)
      -- An entry without a command does nothing and succeeds (as the Go tool's); a command of
      -- another type is refused, naming the entry.
      local noop, noop_err = parallel({ { name = "placeholder" }, { command = "true" } })
      assert(noop_err == nil and noop[1].ok and noop[1].status == "success" and noop[1].name == "placeholder")
      local refused, why = pcall(parallel, { { command = "true" }, { command = 42 } })
      assert(not refused and tostring(why):find("task #2: 'command' must be", 1, true), tostring(why))
      -- A field a parallel task does not have is refused, naming it, before anything runs: a
      -- command meant for an agent ran here, silently.
      local ran = os.tmpname()
      os.remove(ran)
      for _, case in ipairs({ { "agent", "box" }, { "delegate_to", "127.0.0.1:1" }, { "retries", 2 } }) do
        local field = case[1]
        local accepted, refusal = pcall(parallel, { { command = "true" }, { command = "touch " .. ran, [field] = case[2] } })
        assert(not accepted, "a parallel task with '" .. field .. "' ran")
        assert(tostring(refusal):find("parallel: task #2: unknown field '" .. field .. "'", 1, true), tostring(refusal))
      end
      local _, agent_refusal = pcall(parallel, { { agent = "box", command = "true" } })
      assert(tostring(agent_refusal):find("parallel tasks run here", 1, true), tostring(agent_refusal))
      assert(io.open(ran) == nil, "a refused parallel task ran")
      -- timeout: the task is stopped with what it started and fails "timed out after …"; the
      -- others go on.
      started = core.now()
      local bounded = parallel({ { name = "slow", timeout = "200ms", command = "sleep 5" },
        { name = "quick", timeout = 5, command = "echo quick" } })
      assert(bounded[1].ok == false and bounded[1].error == "timed out after 200ms", tostring(bounded[1].error))
      assert(bounded[2].ok and bounded[2].outputs.stdout == "quick\n")
      assert(core.now() - started < 3, "the timeout did not stop the task")
      -- Refused entries are refused before any entry starts.
      local early = os.tmpname()
      os.remove(early)
      local refused_all = pcall(parallel, { { command = "sleep 0.2; touch " .. early }, { command = "true", agent = "box" } })
      assert(not refused_all)
      exec.run("sleep 0.5")
      assert(io.open(early) == nil, "an entry before a refused one ran")
      local bad, bad_why = pcall(parallel, { { command = "true", timeout = "soon" } })
      assert(not bad and tostring(bad_why):find("task #1: field 'timeout': invalid duration 'soon'", 1, true),
        tostring(bad_why))
      return true
    end },
} } })
assert(summary.ok, summary.by_group.g.fan_out.message)

-- A parallel entry's own timeout never outlasts its task's: Lua that never yields is stopped
-- at the task's.
started = core.now()
summary = h.run({ g = { tasks = {
  { name = "bounded", timeout = "300ms", command = function()
      parallel({ { timeout = "20s", command = function()
          local t = os.clock()
          while os.clock() - t < 10 do
          end
          return true
        end } })
      return true
    end },
} } })
assert(summary.by_group.g.bounded.message:find("timed out after 300ms", 1, true), summary.by_group.g.bounded.message)
assert(core.now() - started < 5, "the entry's timeout replaced its task's")

-- parallel tasks see the calling task's env and their own.
summary = h.run({ g = { tasks = {
  { name = "with_env", env = { OUTER = "outer" }, command = function()
      local results, err = parallel({
        { command = "echo \"$OUTER $INNER\"", env = { INNER = "inner" } },
      })
      assert(err == nil, err)
      assert(results[1].outputs.stdout == "outer inner\n", results[1].outputs.stdout)
      return true
    end },
} } })
assert(summary.ok, summary.by_group.g.with_env.message)

-- parallel(tasks, input): as in the Go tool, input is the second argument of each task's command
-- and pre_exec (where a pipeline's task gets its dependencies' outputs); {} without it.
summary = h.run({ g = { tasks = {
  { name = "with_input", command = function()
      local seen = {}
      local results, err = parallel({
        { name = "a", params = { n = "1" }, pre_exec = function(_, input)
            seen.pre = input.region
            return true
          end, command = function(params, input)
            return true, input.region .. " " .. params.n .. " " .. params.task_name
          end },
        { name = "b", command = function(_, input) return true, input.region end },
      }, { region = "eu-west-1" })
      assert(err == nil, err)
      assert(results[1].message == "eu-west-1 1 a", results[1].message)
      assert(results[2].message == "eu-west-1" and seen.pre == "eu-west-1")
      local plain = parallel({ { command = function(_, input)
          return true, type(input) .. " " .. tostring(next(input))
        end } })
      assert(plain[1].message == "table nil", plain[1].message)
      local refused, why = pcall(parallel, { { command = "true" } }, "eu")
      assert(not refused and tostring(why):find("expected a table for 'input', got string", 1, true), tostring(why))
      return true
    end },
} } })
assert(summary.ok, summary.by_group.g.with_input.message)

-- export merges into one table.
export({ version = "1.2.3" })
export({ channel = "beta" })
local exported = require("sloth.exports").values
assert(exported.version == "1.2.3" and exported.channel == "beta")

-- import is relative to the importing file and runs each file once.
local dir = h.tmpdir()
assert(fs.mkdir(dir .. "/lib") == nil)
h.write(dir .. "/lib/counter.lua", "COUNTER_LOADS = (COUNTER_LOADS or 0) + 1\nreturn { value = 7 }\n")
h.write(dir .. "/lib/entry.lua", "return import('counter.lua')\n")
local first = import(dir .. "/lib/entry.lua")
local second = import(dir .. "/lib/counter.lua")
assert(first.value == 7 and first == second and COUNTER_LOADS == 1)
local ok, err = pcall(import, dir .. "/missing.lua")
assert(not ok and tostring(err):find("missing.lua", 1, true), tostring(err))

-- An import cycle is said as one, and leaves import usable afterwards.
h.write(dir .. "/lib/a.lua", "return import('b.lua')\n")
h.write(dir .. "/lib/b.lua", "return import('a.lua')\n")
ok, err = pcall(import, dir .. "/lib/a.lua")
assert(not ok, "a cycle fails")
local message = tostring(err)
assert(message:find("import cycle: ", 1, true), message)
assert(message:find("a.lua → ", 1, true) and message:find("b.lua → ", 1, true), message)
assert(not message:find("stack overflow", 1, true), message)
h.write(dir .. "/lib/fine.lua", "return 'fine'\n")
assert(import(dir .. "/lib/fine.lua") == "fine", "nothing left half-imported")
