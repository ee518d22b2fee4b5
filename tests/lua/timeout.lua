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
