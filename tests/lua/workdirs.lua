-- create_workdir_before_run and clean_workdir_after_run; a named workdir survives the run.
local h = require("_helpers")
local taskdefs = require("sloth.taskdefs")
local plan = require("sloth.plan")
local runner = require("sloth.runner")

local function run(defs)
  local pipeline = taskdefs.from_value(defs, h.tmpdir() .. "/p.lua")
  local _, reporter = h.recorder()
  return runner.run(plan.build(pipeline, {}), {
    reporter = reporter,
    workdir_of = function(group) return group.workdir or h.tmpdir() end,
    store = require("sloth.artifacts").new_store(h.tmpdir()),
  })
end

-- A fresh temporary workdir, removed afterwards by default.
local seen
local summary = run({ g = { create_workdir_before_run = true, tasks = {
  { name = "t", command = function(params) seen = params.workdir; return fs.write("x.txt", "x") == nil end },
} } })
assert(summary.ok and seen)
assert(not fs.exists(seen), "the temporary workdir was kept")

-- clean_workdir_after_run can keep it, and sees the result.
local got
summary = run({ g = { create_workdir_before_run = true,
  clean_workdir_after_run = function(result) got = result; return false end,
  tasks = { { name = "t", command = function(params) seen = params.workdir; return true, "m", { k = 1 } end } } } })
assert(fs.exists(seen), "clean_workdir_after_run returned false but the workdir went")
assert(got.success == true and got.outputs.t.k == 1 and got.output.k == 1)
assert(fs.rm_r(seen) == nil)

-- A named workdir survives unless the function says otherwise; it is created if missing.
local named = h.tmpdir() .. "/named/deeper"
summary = run({ g = { workdir = named, create_workdir_before_run = true, tasks = {
  { name = "t", command = "echo hi > kept.txt" },
} } })
assert(summary.ok and h.read(named .. "/kept.txt") == "hi\n")
summary = run({ g = { workdir = named, tasks = { { name = "t", command = "exit 1" } } },
  other = { workdir = named, clean_workdir_after_run = function(result) got = result; return false end,
    tasks = { { name = "u", command = "exit 2" } } } })
assert(fs.exists(named .. "/kept.txt"), "a named workdir was removed")
assert(got.success == false and got.error:find("exited with code 2", 1, true), tostring(got.error))
summary = run({ g = { workdir = named, clean_workdir_after_run = function() return true end,
  tasks = { { name = "t", command = "true" } } } })
assert(not fs.exists(named), "clean_workdir_after_run returned true but the named workdir stayed")

-- `output` is the outputs of the last task (declaration order) that ran: a skipped one is passed over.
summary = run({ g = { clean_workdir_after_run = function(result) got = result; return false end, tasks = {
  { name = "first", command = function() return true, "m", { from = "first" } end },
  { name = "broken", command = "exit 1" },
  { name = "last", command = function() return true, "m", { from = "last" } end },
  { name = "never", depends_on = "broken", command = "true" },
} } })
assert(not summary.ok and got.output.from == "last", tostring(got.output.from))

-- A named workdir that does not exist is created without create_workdir_before_run, and
-- (like every named workdir) kept unless clean_workdir_after_run says otherwise.
local fresh = h.tmpdir() .. "/made/by/the/run"
summary = run({ g = { workdir = fresh, tasks = { { name = "t", command = "echo made > here.txt" } } } })
assert(summary.ok and h.read(fresh .. "/here.txt") == "made\n", "the missing workdir was not created")
local other = h.tmpdir() .. "/made/too"
summary = run({ g = { workdir = other, clean_workdir_after_run = function() return true end,
  tasks = { { name = "t", command = "true" } } } })
assert(summary.ok and not fs.exists(other), "clean_workdir_after_run returned true but the created workdir stayed")
