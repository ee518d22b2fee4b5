--- `run --spawn-agents`: for every agent the plan uses whose address is on this machine's
--- loopback and that does not answer, start a real `sloth-runner agent` on that port, and stop
--- it when the run ends. A way to see distributed execution on one machine.
local agent = require("agent")

local M = {}

--- The port of a loopback `host:port` address (also written `http://host:port`) and the
--- address to bind, or nil.
---@param address string
---@return integer? port, string? bind
function M.loopback_port(address)
  address = address:gsub("^[Hh][Tt][Tt][Pp][Ss]?://", ""):gsub("/$", "")
  local host, port = address:match("^%[?([^%]]-)%]?:(%d+)$")
  if not host then
    return nil
  end
  if host == "localhost" then
    return tonumber(port), "127.0.0.1"
  end
  if host:match("^127%.%d+%.%d+%.%d+$") or host == "::1" then
    return tonumber(port), host
  end
  return nil
end

--- Whether `target` is reached over TLS: it has `tls` settings, or its address is `https://`.
---@param target { address: string, tls: table? }
---@return boolean
function M.asks_tls(target)
  return target.tls ~= nil or target.address:match("^[Hh][Tt][Tt][Pp][Ss]://") ~= nil
end

--- Starts the missing agents; returns their handles.
---@param plan { tasks: table[] }[]
---@return table[]
function M.start(plan)
  local started, seen = {}, {}
  for _, step in ipairs(plan) do
    for _, task in ipairs(step.tasks) do
      for _, target in ipairs(task.remote and task.remote.candidates or {}) do
        M.start_one(target, seen, started)
      end
    end
  end
  return started
end

--- Starts `target` unless it was seen, is not on loopback, uses TLS, or answers already (a
--- pool found through DNS is never started).
function M.start_one(target, seen, started)
  if target.discover or seen[target.address] then
    return
  end
  seen[target.address] = true
  local port, bind = M.loopback_port(target.address)
  local token = target.token or os.getenv("SLOTH_AGENT_TOKEN")
  if not port then
    return
  end
  if M.asks_tls(target) then
    io.stderr:write(string.format("not starting agent '%s': --spawn-agents starts agents without TLS\n", target.name))
  elseif not pcall(agent.connect, target.address, { token = token, connect_timeout = "500ms" }) then
    local handle = agent.spawn({ name = target.name, port = port, bind = bind, token = token, labels = target.labels })
    io.stderr:write(string.format("started agent '%s' on %s (pid %d)\n", target.name, handle.address, handle.pid))
    started[#started + 1] = handle
  end
end

--- Stops agents `start` started.
function M.stop(started)
  for _, handle in ipairs(started) do
    handle.stop()
  end
end

return M
