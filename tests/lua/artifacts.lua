-- artifacts produced by one task and consumed by another; a missing one is a clear error.
local h = require("_helpers")

local producer_dir, consumer_dir = h.tmpdir(), h.tmpdir()
local taskdefs = require("sloth.taskdefs")
local plan = require("sloth.plan")
local runner = require("sloth.runner")
local store = require("sloth.artifacts").new_store(h.tmpdir())
local pipeline = taskdefs.from_value({
  produce = { workdir = producer_dir, tasks = {
    { name = "build", artifacts = { "dist/*.txt", "report.json" },
      command = "mkdir -p dist && echo a > dist/a.txt && echo b > dist/b.txt && echo '{}' > report.json && echo no > skip.log" },
  } },
  use = { workdir = consumer_dir, tasks = {
    { name = "ship", consumes = { "dist/a.txt", "report.json" }, command = function()
        return fs.read("dist/a.txt") == "a\n" and fs.exists("report.json") and not fs.exists("skip.log"), "consumed"
      end },
    { name = "missing", consumes = "dist/c.txt", command = "true" },
  } },
}, "p.lua")
local _, reporter = h.recorder()
local summary = runner.run(plan.build(pipeline, {}), {
  reporter = reporter, store = store, workdir_of = function(g) return g.workdir end,
})
assert(summary.by_group.produce.build.status == "succeeded", summary.by_group.produce.build.message)
assert(summary.by_group.use.ship.status == "succeeded", summary.by_group.use.ship.message)
assert(h.read(store.dir .. "/dist/b.txt") == "b\n", "artifacts live in the run's store")
local missing = summary.by_group.use.missing.message
h.contains(missing, "consumes: no artifact 'dist/c.txt' in this run (saved so far: dist/a.txt, dist/b.txt, report.json)")
h.contains(store.dir, "/.sloth/artifacts/")

-- A glob that matches nothing fails the task.
summary = h.run({ g = { tasks = { { name = "t", artifacts = "nothing-*.bin", command = "true" } } } })
h.contains(summary.by_group.g.t.message, "artifacts: nothing in")
