-- A failure fails the run, skips dependents transitively, spares independent tasks.
local h = require("_helpers")

local summary, _, workdir = h.run({ g = { tasks = {
  { name = "fails", command = "exit 3" },
  { name = "dependent", depends_on = "fails", command = "touch dependent" },
  { name = "second_level", depends_on = "dependent", command = "touch second_level" },
  { name = "independent", command = "touch independent" },
} } })
local r = summary.by_group.g
assert(summary.ok == false)
assert(r.fails.status == "failed" and r.fails.message:find("exited with code 3", 1, true), r.fails.message)
assert(r.fails.outputs.exit_code == 3)
assert(r.dependent.status == "skipped" and r.dependent.message == "dependency 'fails' failed")
assert(r.second_level.status == "skipped" and r.second_level.message == "dependency 'dependent' was skipped")
assert(r.independent.status == "succeeded")
assert(h.read(workdir .. "/independent") ~= nil)
assert(h.read(workdir .. "/dependent") == nil)

-- A raised error fails the task with the user's file and line and a traceback.
summary = h.run({ g = { tasks = {
  { name = "raises", command = function() error("kaboom") end },
} } })
local message = summary.by_group.g.raises.message
h.contains(message, "engine_failure.lua:22: kaboom")
h.contains(message, "stack traceback")
-- The user's frames only: nothing below the task's function (the engine's frames differ
-- between a run here and one on an agent, and say nothing to whoever reads them).
assert(not message:find("sloth/", 1, true), message)

-- A native function's error carries one traceback, not two.
summary = h.run({ g = { tasks = {
  { name = "native", command = function() require("sloth.core").parse_duration({}) end },
} } })
message = summary.by_group.g.native.message
local _, tracebacks = message:gsub("stack traceback:", "")
assert(tracebacks == 1 and not message:find("sloth/", 1, true), message)

-- Return convention: ok must be a boolean, outputs a table.
summary = h.run({ g = { tasks = {
  { name = "nil_ok", command = function() end },
  { name = "bad_outputs", command = function() return true, "m", "not a table" end },
} } })
h.contains(summary.by_group.g.nil_ok.message, "must return a boolean first")
h.contains(summary.by_group.g.bad_outputs.message, "outputs) must be a table")
