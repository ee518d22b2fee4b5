-- Dispatch policies: built-ins prefer healthy agents; plugins and functions get a full ctx.
local dispatch = require("sloth.dispatch")
local pool = require("sloth.agent_pool")
local h = require("_helpers")

local function agents(...)
  local list = {}
  for i, name in ipairs({ ... }) do
    list[i] = { name = name, address = "127.0.0.1:" .. (60000 + i), labels = { n = tostring(i) } }
  end
  return list
end

local function task_with(policy, candidates)
  return { name = "t", group = "g", params = { p = 1 }, remote = { candidates = candidates, policy = assert(dispatch.resolve(policy)) } }
end

local set = agents("a", "b", "c")
assert(dispatch.choose(task_with("first", set)).name == "a")

local rr = task_with("round_robin", set)
local picks = {}
for i = 1, 4 do picks[i] = dispatch.choose(rr).name end
assert(table.concat(picks, ",") == "a,b,c,a", table.concat(picks, ","))

-- least_busy counts tasks in flight.
pool.started(set[1]); pool.started(set[1]); pool.started(set[2])
assert(dispatch.choose(task_with("least_busy", set)).name == "c")
pool.finished(set[1]); pool.finished(set[1]); pool.finished(set[2])

-- Unhealthy agents are avoided while a healthy one remains.
pool.unreachable(set[1])
assert(dispatch.choose(task_with("first", set)).name == "b")
for _ = 1, 10 do
  assert(dispatch.choose(task_with("random", set)).name ~= "a")
end
pool.reached(set[1], 0.001)
assert(dispatch.choose(task_with("first", set)).name == "a")

-- A function gets the task, the candidates with their state, the attempt and the failures.
local seen
local chosen = dispatch.choose(task_with(function(ctx)
  seen = ctx
  return ctx.candidates[#ctx.candidates].name
end, set), { number = 2, failures = { { agent = "a", message = "unreachable" } } })
assert(chosen.name == "c")
assert(seen.task.name == "t" and seen.task.params.p == 1 and seen.attempt == 2)
assert(seen.failures[1].agent == "a" and seen.candidates[2].labels.n == "2")
assert(seen.candidates[1].healthy == true and seen.candidates[1].in_flight == 0 and seen.candidates[1].latency == 0.001)

-- A plugin module found through require.
local dir = h.tmpdir()
h.write(dir .. "/spec_plugin.lua", [[
return { name = "last_one", select = function(ctx) return ctx.candidates[#ctx.candidates].name end }
]])
package.path = dir .. "/?.lua;" .. package.path
local policy = assert(dispatch.resolve("spec_plugin"))
assert(policy.name == "last_one")
assert(dispatch.choose({ name = "t", remote = { candidates = set, policy = policy } }).name == "c")

-- Bad policies and bad choices are named.
local none, problem = dispatch.resolve("no_such_policy_module")
assert(none == nil and problem:find("neither a built-in policy", 1, true), problem)
local _, err = dispatch.choose(task_with(function() return "zzz" end, set))
assert(err == "dispatch policy 'function' chose 'zzz', not one of: a, b, c", err)
_, err = dispatch.choose(task_with(function() error("plugin bug") end, set))
assert(err:find("dispatch policy 'function' failed", 1, true) and err:find("plugin bug", 1, true), err)

-- One candidate needs no policy.
assert(dispatch.choose(task_with(function() error("never called") end, agents("solo"))).name == "solo")

-- --spawn-agents only starts agents on loopback addresses, bound where they are declared.
local spawn = require("sloth.spawn")
local port, bind = spawn.loopback_port("127.0.0.2:7000")
assert(port == 7000 and bind == "127.0.0.2")
port, bind = spawn.loopback_port("localhost:7001")
assert(port == 7001 and bind == "127.0.0.1")
port, bind = spawn.loopback_port("[::1]:7002")
assert(port == 7002 and bind == "::1")
assert(spawn.loopback_port("10.0.0.5:7000") == nil and spawn.loopback_port("build-box:7000") == nil)
