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

-- `**` crosses directories (fs.glob); the run state beside the pipeline is never saved, so a
-- second run in the same directory saves what the task made, not the first run's store.
local shared = h.tmpdir()
local consumer = h.tmpdir()
local make = "mkdir -p out/deep && echo a > out/a.txt && echo b > out/deep/b.txt && echo c > out/deep/c.log"
  .. " && echo t > top.txt"
local function twice_star()
  return h.run({
    a_make = { tasks = { { name = "make", artifacts = { "**/*.txt" }, command = make } } },
    b_use = { workdir = consumer, tasks = { { name = "use", consumes = { "out/deep/b.txt", "top.txt" },
      command = function() return fs.read("out/deep/b.txt") == "b\n" and fs.read("top.txt") == "t\n", "used" end } } },
  }, { workdir = shared })
end
for _ = 1, 2 do
  summary = twice_star()
  assert(summary.by_group.a_make.make.status == "succeeded", summary.by_group.a_make.make.message)
  assert(summary.by_group.b_use.use.status == "succeeded", summary.by_group.b_use.use.message)
end
local runs = assert(fs.ls(shared .. "/.sloth/artifacts"))
assert(#runs == 2, #runs)
for _, run_id in ipairs(runs) do
  local saved = table.concat(assert(fs.glob("**", { root = shared .. "/.sloth/artifacts/" .. run_id })), ",")
  assert(saved == "out,out/a.txt,out/deep,out/deep/b.txt,top.txt", saved)
end

-- A directory saved whole covers what another pattern matches beneath it; each is consumable.
summary = h.run({
  a_make = { tasks = { { name = "make", artifacts = { "out", "out/**/*.txt" }, command = make } } },
  b_use = { workdir = h.tmpdir(), tasks = { { name = "use", consumes = { "out/deep/b.txt", "out" },
    command = function() return fs.read("out/deep/c.log") == "c\n", "whole directory" end } } },
})
assert(summary.by_group.b_use.use.status == "succeeded", summary.by_group.b_use.use.message)

-- A malformed pattern fails the task, naming it.
summary = h.run({ g = { tasks = { { name = "t", artifacts = "out/[", command = "true" } } } })
h.contains(summary.by_group.g.t.message, "artifacts: pattern 'out/[': fs.glob: invalid pattern 'out/['")
