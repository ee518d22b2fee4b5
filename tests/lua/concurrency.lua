-- async tasks and --jobs: independent work overlaps (checked loosely: behaviour, not speed);
-- dependencies are always respected.
local h = require("_helpers")
local core = require("sloth.core")

local started = core.now()
local summary = h.run({ g = { tasks = {
  { name = "a", async = true, command = "sleep 0.3" },
  { name = "b", async = true, command = "sleep 0.3" },
} } })
local elapsed = core.now() - started
assert(summary.ok)
-- Sequential would take at least 0.6s; the margin below that absorbs a loaded machine.
assert(elapsed < 0.58, "two async sleeps of 0.3s took " .. elapsed .. "s")

-- An async task is awaited before its dependents.
local order = {}
summary = h.run({ g = { tasks = {
  { name = "slow", async = true, command = function() exec.run("sleep 0.2"); order[#order + 1] = "slow"; return true end },
  { name = "quick", command = function() order[#order + 1] = "quick"; return true end },
  { name = "after", depends_on = "slow", command = function() order[#order + 1] = "after"; return true end },
} } })
assert(table.concat(order, ",") == "quick,slow,after", table.concat(order, ","))

-- --jobs 4: four independent sleeps at once.
started = core.now()
summary = h.run({ g = { tasks = {
  { name = "s1", command = "sleep 0.3" }, { name = "s2", command = "sleep 0.3" },
  { name = "s3", command = "sleep 0.3" }, { name = "s4", command = "sleep 0.3" },
} } }, { jobs = 4 })
elapsed = core.now() - started
assert(summary.ok)
assert(elapsed < 1.1, "four sleeps with --jobs 4 took " .. elapsed .. "s")

-- --jobs 1 (the default) runs them one after another.
started = core.now()
h.run({ g = { tasks = { { name = "s1", command = "sleep 0.1" }, { name = "s2", command = "sleep 0.1" } } } })
assert(core.now() - started >= 0.19, "default --jobs 1 ran tasks at once")

-- With jobs, a dependent still waits for its dependency.
order = {}
h.run({ g = { tasks = {
  { name = "x", command = function() exec.run("sleep 0.1"); order[#order + 1] = "x"; return true end },
  { name = "y", depends_on = "x", command = function() order[#order + 1] = "y"; return true end },
  { name = "z", command = function() order[#order + 1] = "z"; return true end },
} } }, { jobs = 3 })
assert(table.concat(order, ",") == "z,x,y", table.concat(order, ","))
