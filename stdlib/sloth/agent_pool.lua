--- What the master knows about each agent during a run: tasks in flight, health, and the
--- latency of the last connection. Dispatch policies read it through their `ctx`.
local M = {}

local states = {}

local function key(agent)
  return agent.name .. "@" .. agent.address
end

--- The state of an agent, created on first use.
---@param agent { name: string, address: string }
---@return { in_flight: integer, healthy: boolean, latency: number? }
function M.state(agent)
  local k = key(agent)
  states[k] = states[k] or { in_flight = 0, healthy = true }
  return states[k]
end

function M.started(agent)
  local state = M.state(agent)
  state.in_flight = state.in_flight + 1
end

function M.finished(agent)
  local state = M.state(agent)
  state.in_flight = math.max(0, state.in_flight - 1)
end

---@param seconds number
function M.reached(agent, seconds)
  local state = M.state(agent)
  state.healthy = true
  state.latency = seconds
end

function M.unreachable(agent)
  M.state(agent).healthy = false
end

return M
