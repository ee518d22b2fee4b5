-- sloth.core jobs: spawn, wait, wait_any, cancel (which kills what the job started), contexts.
local core = require("sloth.core")
local h = require("_helpers")

-- wait returns ok and the job's results; an error comes back as false, message.
local id = core.spawn(function(a, b) return a + b, "sum" end, nil, 2, 3)
local ok, sum, label = core.wait(id)
assert(ok == true and sum == 5 and label == "sum")
ok, label = core.wait(core.spawn(function() error("job broke") end))
assert(ok == false and label:find("job broke", 1, true), label)

-- wait_any returns whichever finishes first.
local slow = core.spawn(function() core.sleep(0.3); return "slow" end)
local fast = core.spawn(function() core.sleep(0.01); return "fast" end)
local first, first_ok, value = core.wait_any(slow, fast)
assert(first == fast and first_ok and value == "fast")
assert(select(2, core.wait(slow)) == "slow")

-- A job carries the context it was given; jobs it spawns inherit it.
local ctx = { prefix = "g/t", task = "t", group = "g", workdir = h.tmpdir() }
ok, value = core.wait(core.spawn(function()
  local inner = core.spawn(function() return core.context().prefix end)
  local _, prefix = core.wait(inner)
  return core.context().task .. ":" .. prefix
end, ctx))
assert(ok and value == "t:g/t", value)

-- cancel stops the job and kills the process it is waiting on.
local dir = h.tmpdir()
local job = core.spawn(function()
  -- Written whole, then renamed: a reader never sees the file empty.
  exec.run("sleep 30 & echo $! > " .. dir .. "/pid.part && mv " .. dir .. "/pid.part " .. dir .. "/pid; wait")
  h.write(dir .. "/finished", "yes")
end)
local deadline = core.now() + 10
while not h.read(dir .. "/pid") and core.now() < deadline do
  core.sleep(0.01)
end
local pid = assert(h.read(dir .. "/pid"), "the job started its process"):gsub("%s+$", "")
assert(core.cancel(job) == true)
assert(h.wait_until_dead(pid), "cancel left the job's process " .. pid .. " running")
core.sleep(0.05)
assert(h.read(dir .. "/finished") == nil, "the cancelled job went on")
assert(core.cancel(job) == false, "a job is cancelled once")
