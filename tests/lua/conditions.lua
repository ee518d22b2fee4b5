-- run_if and abort_if, as shell commands (exit 0 = true) and as functions(params, deps).
local h = require("_helpers")

local ran = {}
local function mark(name) return function() ran[#ran + 1] = name; return true, name, { from = name } end end
local summary, events = h.run({ g = { tasks = {
  { name = "base", command = mark("base") },
  { name = "shell_true", run_if = "true", command = mark("shell_true") },
  { name = "shell_false", run_if = "exit 1", command = mark("shell_false") },
  { name = "fn_sees_deps", depends_on = "base", run_if = function(params, deps)
      return deps.base.from == "base" and params.task_name == "fn_sees_deps"
    end, command = mark("fn_sees_deps") },
  { name = "fn_false", run_if = function() return false end, command = mark("fn_false") },
  { name = "after_skip", depends_on = "fn_false", command = mark("after_skip") },
} } })
assert(summary.ok)
assert(table.concat(ran, ",") == "base,shell_true,fn_sees_deps", table.concat(ran, ","))
local r = summary.by_group.g
assert(r.shell_false.status == "skipped" and r.shell_false.message == "run_if was false")
assert(r.after_skip.status == "skipped" and r.after_skip.message == "dependency 'fn_false' was skipped")

-- abort_if: the run stops, running tasks are cancelled, nothing new starts.
local dir = h.tmpdir()
ran = {}
summary = h.run({ g = { tasks = {
  { name = "long", async = true, command = "sleep 5 & echo $! > long.pid; wait" },
  { name = "first", command = function()
      exec.run("while [ ! -s long.pid ]; do sleep 0.01; done", { timeout = "10s" })
      return mark("first")()
    end },
  { name = "stopper", depends_on = "first", abort_if = function(_, deps) return deps.first.from == "first" end,
    command = mark("stopper") },
  { name = "later", command = mark("later") },
} }, other = { tasks = { { name = "never", command = mark("never") } } } }, { workdir = dir })
assert(not summary.ok)
assert(summary.aborted_by == "g/stopper", tostring(summary.aborted_by))
assert(table.concat(ran, ",") == "first", table.concat(ran, ","))
r = summary.by_group.g
assert(r.stopper.status == "aborted")
assert(r.later.status == "skipped" and r.later.message == "the run was aborted by g/stopper", r.later.message)
assert(r.long.status == "failed" and r.long.message:find("cancelled", 1, true), r.long.message)
assert(summary.by_group.other == nil, "a later group does not run")
local pid = h.read(dir .. "/long.pid"):gsub("%s+$", "")
assert(h.wait_until_dead(pid), "the cancelled task's process survived the abort")

-- A shell abort_if.
summary = h.run({ g = { tasks = { { name = "a", abort_if = "true", command = "true" } } } })
assert(summary.aborted_by == "g/a")

-- A condition that raises fails the task, naming it.
summary = h.run({ g = { tasks = { { name = "a", run_if = function() error("bad check") end, command = "true" } } } })
h.contains(summary.by_group.g.a.message, "run_if failed:")
h.contains(summary.by_group.g.a.message, "bad check")
