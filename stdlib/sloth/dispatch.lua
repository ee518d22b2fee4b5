--- Choosing an agent among a task's candidates: built-in policies (`first`, `round_robin`,
--- `random`, `least_busy`), a function, or a user plugin — a module returning
--- `{ name = "...", select = function(ctx) ... end }`, found with `require` in the pipeline's
--- directory, its `plugins/`, `./plugins/` and the directories in SLOTH_PLUGIN_PATH.
---
--- `ctx = { task = { name, group, params }, candidates = { { name, address, labels,
--- in_flight, healthy, latency } }, attempt = n, failures = { { agent, message } } }`;
--- `select(ctx)` returns a candidate's name. Built-in policies prefer healthy agents.
local discovery = require("sloth.agent_discovery")
local pool = require("sloth.agent_pool")
local preempt = require("sloth.preempt")

local M = {}

--- Candidates not marked unhealthy, or all of them when none is healthy.
local function healthy(candidates)
  local list = {}
  for _, candidate in ipairs(candidates) do
    if candidate.healthy then
      list[#list + 1] = candidate
    end
  end
  return #list > 0 and list or candidates
end

local rotation = {}

M.builtin = {
  first = function(ctx)
    return healthy(ctx.candidates)[1].name
  end,
  round_robin = function(ctx)
    local list = healthy(ctx.candidates)
    local names = {}
    for _, c in ipairs(ctx.candidates) do
      names[#names + 1] = c.name
    end
    local key = table.concat(names, "\0")
    rotation[key] = (rotation[key] or 0) % #list + 1
    return list[rotation[key]].name
  end,
  random = function(ctx)
    local list = healthy(ctx.candidates)
    return list[math.random(#list)].name
  end,
  least_busy = function(ctx)
    local best
    for _, candidate in ipairs(healthy(ctx.candidates)) do
      if best == nil or candidate.in_flight < best.in_flight then
        best = candidate
      end
    end
    return best.name
  end,
}

--- A policy from a group's `dispatch` value: nil (first), a built-in name, a plugin module
--- name, a function, or a plugin table. Returns `{ name, select }`, or nil and a problem.
---@return { name: string, select: fun(ctx: table): string }? policy, string? problem
function M.resolve(value)
  if value == nil then
    return { name = "first", select = M.builtin.first }
  end
  if type(value) == "function" then
    return { name = "function", select = value }
  end
  if type(value) == "string" then
    if M.builtin[value] then
      return { name = value, select = M.builtin[value] }
    end
    local loaded, plugin = preempt.pcall(require, value)
    if not loaded then
      return nil, string.format("'%s' is neither a built-in policy (first, round_robin, random, least_busy) "
        .. "nor a plugin module that loads: %s", value, tostring(plugin):match("^[^\n]*"))
    end
    value = plugin
  end
  if type(value) == "table" and type(value.select) == "function" then
    return { name = type(value.name) == "string" and value.name or "plugin", select = value.select }
  end
  return nil, "must be a policy name, a function(ctx) or a plugin { name = ..., select = function(ctx) ... end }"
end

--- Picks the agent for this attempt of `task` among its candidates (a pool's members in its
--- place); nil and a message when the policy fails or no candidate is left.
---@param task table with `remote = { candidates, policy }`
---@param attempt { number: integer, failures: { agent: string, message: string }[] }
---@return table? agent, string? err
function M.choose(task, attempt)
  local remote = task.remote
  -- Pools (found through DNS) stand for their members.
  local candidates, problem = discovery.expand(remote.candidates)
  if not candidates then
    return nil, problem
  end
  if #candidates == 1 then
    return candidates[1]
  end
  local ctx = {
    task = { name = task.name, group = task.group, params = task.params },
    candidates = {},
    attempt = attempt and attempt.number or 1,
    failures = attempt and attempt.failures or {},
  }
  local by_name = {}
  for _, agent in ipairs(candidates) do
    local state = pool.state(agent)
    ctx.candidates[#ctx.candidates + 1] = {
      name = agent.name, address = agent.address, labels = agent.labels,
      in_flight = state.in_flight, healthy = state.healthy, latency = state.latency,
    }
    by_name[agent.name] = agent
  end
  local called, choice = preempt.pcall(remote.policy.select, ctx)
  if not called then
    return nil, string.format("dispatch policy '%s' failed: %s", remote.policy.name, tostring(choice))
  end
  if not by_name[choice] then
    local names = {}
    for _, c in ipairs(ctx.candidates) do
      names[#names + 1] = c.name
    end
    return nil, string.format("dispatch policy '%s' chose %s, not one of: %s", remote.policy.name,
      choice == nil and "nothing" or "'" .. tostring(choice) .. "'", table.concat(names, ", "))
  end
  return by_name[choice]
end

return M
