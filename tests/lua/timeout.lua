-- timeout: an attempt still running is killed with its whole process tree and fails with
-- "timed out after ..."; functions time out too; invalid durations are validation errors.
local h = require("_helpers")
local core = require("sloth.core")

local dir = h.tmpdir()
local started = core.now()
local summary = h.run({ g = { tasks = {
  { name = "sleepy", timeout = "100ms", command = "sleep 5 & echo $! > sleeper.pid; wait" },
} } }, { workdir = dir })
local elapsed = core.now() - started
local result = summary.by_group.g.sleepy
assert(result.status == "failed" and result.message == "timed out after 100ms", result.message)
assert(elapsed < 1, "the timeout took " .. elapsed .. "s")
local pid = h.read(dir .. "/sleeper.pid"):gsub("%s+$", "")
assert(h.wait_until_dead(pid), "the sleep " .. pid .. " survived the timeout")

-- A function that waits on a child process times out the same way.
started = core.now()
summary = h.run({ g = { tasks = {
  { name = "fn", timeout = 0.1, command = function() exec.run("sleep 5"); return true end },
} } })
assert(summary.by_group.g.fn.message == "timed out after 100ms", summary.by_group.g.fn.message)
assert(core.now() - started < 1)

-- With retries, every attempt gets the timeout.
local attempts = 0
summary = h.run({ g = { tasks = {
  { name = "fn", timeout = "50ms", retries = 1, retry_delay = 0, command = function()
      attempts = attempts + 1
      exec.run("sleep 5")
      return true
    end },
} } })
assert(attempts == 2 and not summary.ok)

local message = h.validation_error(function()
  require("sloth.taskdefs").from_value({ g = { tasks = { { name = "t", command = "true", timeout = "5 minutes" } } } }, "p.lua")
end)
h.contains(message, "task 't': field 'timeout': invalid duration '5 minutes'")

-- A timeout is not swallowed by the function's own pcall, xpcall or coroutine.resume: the task
-- fails "timed out" and stops (a pcall in a loop kept it running for ever, one around each
-- item made it succeed), while errors of its own are still caught.
local function busy()
  local t = os.clock()
  while os.clock() - t < 5 do
  end
end
started = core.now()
summary = h.run({ g = { tasks = {
  { name = "loop", timeout = "100ms", command = function()
      while true do pcall(function() while true do end end) end
    end },
  { name = "items", timeout = "100ms", command = function()
      local done = 0
      for _ = 1, 20 do
        if pcall(busy) then done = done + 1 end
      end
      return true, done .. " done"
    end },
  { name = "handled", timeout = "100ms", command = function()
      while true do xpcall(function() while true do end end, debug.traceback) end
    end },
  { name = "resumed", timeout = "100ms", command = function()
      while true do coroutine.resume(coroutine.create(function() while true do end end)) end
    end },
  { name = "own", command = function()
      local ok, err = pcall(error, "mine", 0)
      local handled = select(2, xpcall(error, function(e) return "handled " .. e end, "too", 0))
      return not ok and err == "mine" and handled == "handled too", "caught"
    end },
} } })
for _, name in ipairs({ "loop", "items", "handled", "resumed" }) do
  local result = summary.by_group.g[name]
  -- (The message, then where the function was: its traceback.)
  local first = tostring(result.message):match("^[^\n]*")
  assert(result.status == "failed" and first == "timed out after 100ms", name .. ": " .. tostring(result.message))
end
assert(summary.by_group.g.own.status == "succeeded", summary.by_group.g.own.message)
assert(core.now() - started < 10, "the timeouts took " .. (core.now() - started) .. "s")

-- A pcall called by a pcall (`pcall(pcall, f)`) passes the stop on too.
summary = h.run({ g = { tasks = {
  { name = "nested", timeout = "100ms", command = function()
      local ok, inner_ok = pcall(pcall, function() while true do end end)
      return true, "went on: " .. tostring(ok) .. " " .. tostring(inner_ok)
    end },
} } })
local nested = summary.by_group.g.nested
assert(nested.status == "failed" and tostring(nested.message):match("^[^\n]*") == "timed out after 100ms", tostring(nested.message))

-- A deadline belongs to the task that set it: generators a timed task left suspended (their
-- coroutines never end) give no later task of the run a deadline of its own (their addresses
-- are reused: later tasks without a timeout failed "timed out").
local tasks = {
  { name = "a", timeout = "100ms", command = function()
      for _ = 1, 200 do
        local next_item = coroutine.wrap(function() for n = 1, 10 do coroutine.yield(n) end end)
        assert(next_item() == 1)
      end
      collectgarbage()
      return true
    end },
  { name = "wait", depends_on = "a", command = "sleep 0.3" },
}
for i = 1, 20 do
  tasks[#tasks + 1] = { name = "c" .. i, depends_on = "wait", command = function()
      local ok, err = pcall(error, "my own error")
      return not ok and err == "my own error", "caught"
    end }
end
summary = h.run({ g = { tasks = tasks } })
for i = 1, 20 do
  local result = summary.by_group.g["c" .. i]
  assert(result.status == "succeeded", "c" .. i .. ": " .. tostring(result.message))
end

-- The runner's hook cannot be taken away: a task that tries (`debug.sethook()`, then a loop
-- that never yields) fails at once, saying why, instead of running past its timeout for ever.
started = core.now()
summary = h.run({ g = { tasks = {
  { name = "unhooked", timeout = "200ms", command = function()
      debug.sethook()
      local x = 0
      while true do x = x + 1 end
    end },
} } })
local unhooked = summary.by_group.g.unhooked
assert(unhooked.status == "failed", unhooked.status)
h.contains(tostring(unhooked.message), "debug.sethook")
assert(core.now() - started < 5, "took " .. (core.now() - started) .. "s")

-- Nor through the runner's own means: its hook, deadlines and cancellation, its own pcall, or
-- the upvalues that hold Lua's.
local sloth_core = require("sloth.core")
for label, bypass in pairs({
  preempt = function() sloth_core.preempt(false) end,
  preempt_in_pcall = function() local ok, err = pcall(sloth_core.preempt, false); assert(ok, err) end,
  adopt_deadline = function() sloth_core.adopt_deadline(coroutine.running(), false) end,
  raw_pcall = function() sloth_core.raw_pcall(error, "x") end,
  getupvalue = function() debug.getupvalue(pcall, 1) end,
}) do
  local ok, err = pcall(bypass)
  assert(not ok, label .. " was let through")
  h.contains(tostring(err), "runner's own")
end
