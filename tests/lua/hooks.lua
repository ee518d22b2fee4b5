-- pre_exec(params, deps) and post_exec(params, outputs) with the ok, msg convention.
local h = require("_helpers")

local seen = {}
local summary = h.run({ g = { tasks = {
  { name = "dep", command = function() return true, "d", { v = 1 } end },
  { name = "t", depends_on = "dep", params = { p = "x" },
    pre_exec = function(params, deps)
      seen[#seen + 1] = "pre:" .. params.p .. ":" .. deps.dep.v
      return true
    end,
    command = function() seen[#seen + 1] = "command"; return true, "ok", { made = 42 } end,
    post_exec = function(params, outputs)
      seen[#seen + 1] = "post:" .. params.task_name .. ":" .. outputs.made
      return true
    end },
} } })
assert(summary.ok)
assert(table.concat(seen, ",") == "pre:x:1,command,post:t:42", table.concat(seen, ","))

local ran = false
summary = h.run({ g = { tasks = {
  { name = "pre_fails", pre_exec = function() return false, "not ready" end,
    command = function() ran = true; return true end },
  { name = "post_fails", command = "true", post_exec = function() return false, "bad output" end },
  { name = "post_raises", command = "true", post_exec = function() error("hook crashed") end },
  { name = "post_skipped_on_failure", command = "exit 1", post_exec = function() error("must not run") end },
} } })
local r = summary.by_group.g
assert(not ran, "the command does not run when pre_exec fails")
assert(r.pre_fails.message == "pre_exec failed: not ready", r.pre_fails.message)
assert(r.post_fails.status == "failed" and r.post_fails.message == "post_exec failed: bad output", r.post_fails.message)
h.contains(r.post_raises.message, "post_exec failed: ")
h.contains(r.post_raises.message, "hook crashed")
h.contains(r.post_skipped_on_failure.message, "exited with code 1")
