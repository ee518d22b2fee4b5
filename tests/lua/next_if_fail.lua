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
