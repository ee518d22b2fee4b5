-- next_if_fail: handlers run only when a task naming them fails, and see its message.
local h = require("_helpers")

local handled = {}
local function handler(name)
  return { name = name, command = function(_, deps)
    handled[#handled + 1] = name .. ":" .. (deps.deploy and deps.deploy.message or "-")
    return true
  end }
end

local summary = h.run({ g = { tasks = {
  { name = "deploy", next_if_fail = { "rollback", "notify" }, command = function() return false, "disk full" end },
  handler("rollback"),
  handler("notify"),
  { name = "independent", command = "true" },
} } })
assert(not summary.ok, "a handled failure still fails the run")
assert(table.concat(handled, ",") == "rollback:disk full,notify:disk full", table.concat(handled, ","))
assert(summary.by_group.g.deploy.status == "failed")
assert(summary.by_group.g.rollback.status == "succeeded")

handled = {}
summary = h.run({ g = { tasks = {
  { name = "deploy", next_if_fail = "rollback", command = function() return true end },
  handler("rollback"),
} } })
assert(summary.ok)
assert(#handled == 0, "a handler does not run when nothing failed")
assert(summary.by_group.g.rollback.status == "skipped" and summary.by_group.g.rollback.message == "no failure to handle")

local message = h.validation_error(function()
  require("sloth.taskdefs").from_value({ g = { tasks = {
    { name = "a", command = "true", next_if_fail = "ghost" },
  } } }, "p.lua")
end)
h.contains(message, "task 'a': field 'next_if_fail': unknown task 'ghost'")

-- Read the Go way round (on the handler, listing the tasks it watches): refused, explained.
message = h.validation_error(function()
  require("sloth.taskdefs").from_value({ g = { tasks = {
    { name = "build", command = "true" },
    { name = "test", depends_on = "build", command = "true" },
    { name = "cleanup", next_if_fail = { "build", "test" }, command = "true" },
  } } }, "p.lua")
end)
h.contains(message, "p.lua: group 'g', task 'cleanup': field 'next_if_fail': 'build' is declared before 'cleanup'; "
  .. "next_if_fail lists the tasks to run when 'cleanup' fails (its failure handlers), not the tasks whose failure "
  .. "it handles. To run 'cleanup' when 'build' fails, put next_if_fail = \"cleanup\" on 'build'")
h.contains(message, "'test' is declared before 'cleanup'")

-- A map of tasks has no declaration order; a handler that waits for the task it watches is
-- still caught.
message = h.validation_error(function()
  require("sloth.taskdefs").from_value({ g = { tasks = {
    build = { command = "true" },
    notify = { depends_on = "build", next_if_fail = "build", command = "true" },
  } } }, "p.lua")
end)
h.contains(message, "task 'notify': field 'next_if_fail': 'build' is a dependency of 'notify'")
h.contains(message, "put next_if_fail = \"notify\" on 'build'")

-- Today's meaning in a map (handlers sort before the task they handle) stays valid.
handled = {}
summary = h.run({ g = { tasks = {
  deploy = { next_if_fail = "alert", command = function() return false, "boom" end },
  alert = { command = function(_, deps) handled[#handled + 1] = deps.deploy.message; return true end },
} } })
assert(not summary.ok and handled[1] == "boom", table.concat(handled, ","))
