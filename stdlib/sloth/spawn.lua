--- `run --spawn-agents`: for every agent the plan uses whose address is on this machine's
--- loopback and that does not answer, start a real `sloth-runner agent` on that port, and stop
--- it when the run ends. A way to see distributed execution on one machine.
local agent = require("agent")

local M = {}

--- The port of a loopback `host:port` address, or nil.
---@param address string
function M.loopback_port(address)
  local host, port = address:match("^%[?([^%]]-)%]?:(%d+)$")
  if not host then
    return nil
  end
  if host == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") or host == "::1" then
    return tonumber(port)
  end
  return nil
end

--- Starts the missing agents; returns their handles.
---@param plan { tasks: table[] }[]
---@return table[]
function M.start(plan)
  local started, seen = {}, {}
  for _, step in ipairs(plan) do
    for _, task in ipairs(step.tasks) do
      local target = task.remote
      if target and not seen[target.address] then
        seen[target.address] = true
        local port = M.loopback_port(target.address)
        local token = target.token or os.getenv("SLOTH_AGENT_TOKEN")
        if port and target.tls then
          io.stderr:write(string.format("not starting agent '%s': --spawn-agents starts agents without TLS\n", target.name))
        elseif port and not pcall(agent.connect, target.address, { token = token, connect_timeout = "500ms" }) then
          local handle = agent.spawn({ name = target.name, port = port, token = token })
          io.stderr:write(string.format("started agent '%s' on %s (pid %d)\n", target.name, handle.address, handle.pid))
          started[#started + 1] = handle
        end
      end
    end
  end
  return started
end

--- Stops agents `start` started.
function M.stop(started)
  for _, handle in ipairs(started) do
    handle.stop()
  end
end

return M
