-- retries: failing once then succeeding; always failing gives exactly retries + 1 attempts,
-- each reported, with the delay doubling.
local h = require("_helpers")

local calls = 0
local summary, events = h.run({ g = { tasks = {
  { name = "flaky", retries = 2, retry_delay = "10ms", command = function()
      calls = calls + 1
      return calls >= 2, "attempt " .. calls
    end },
} } })
assert(summary.ok, summary.by_group.g.flaky.message)
assert(calls == 2, "two attempts, got " .. calls)
assert(summary.by_group.g.flaky.attempts == 2)

local always = 0
local started = require("sloth.core").now()
summary, events = h.run({ g = { tasks = {
  { name = "broken", retries = 2, retry_delay = "20ms", command = function()
      always = always + 1
      return false, "nope " .. always
    end },
} } })
local elapsed = require("sloth.core").now() - started
assert(not summary.ok)
assert(always == 3, "exactly 3 attempts, got " .. always)
assert(summary.by_group.g.broken.message == "nope 3")
local retries = {}
for _, e in ipairs(events) do
  if e:find("^retry") then retries[#retries + 1] = e end
end
assert(#retries == 2 and retries[1] == "retry g/broken 1" and retries[2] == "retry g/broken 2", table.concat(events, "; "))
assert(elapsed >= 0.06 - 0.005, "backoff 20ms then 40ms, took " .. elapsed)

-- Shell commands retry too.
local dir = h.tmpdir()
summary = h.run({ g = { tasks = {
  { name = "sh", retries = 1, retry_delay = 0, command = "test -e marker || { touch marker; exit 1; }" },
} } }, { workdir = dir })
assert(summary.ok and summary.by_group.g.sh.attempts == 2)

-- Bad values are validation errors naming the field.
local message = h.validation_error(function()
  require("sloth.taskdefs").from_value({ g = { tasks = {
    { name = "t", command = "true", retries = -1, retry_delay = "soon" },
  } } }, "p.lua")
end)
h.contains(message, "task 't': field 'retries': must be a non-negative integer")
h.contains(message, "task 't': field 'retry_delay': invalid duration 'soon'")
