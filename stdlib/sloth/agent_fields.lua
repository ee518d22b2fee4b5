--- The agent-related fields of a pipeline, read during validation: a group's `agents` table
--- (with `token` and `tls`; an entry with `discover` is a pool found through DNS, see
--- `sloth.agent_discovery`), `delegate_to`, and where each task may run (`task.remote`: its
--- candidate agents and the group's dispatch policy). Each reader takes the validation
--- checker as `self` and reports problems through `self:add(where, problem)`.
local paths = require("sloth.paths")
local tables = require("sloth.tables")
local suggest = require("sloth.suggest")

local M = {}

local AGENT_FIELDS = { address = true, discover = true, nameserver = true, labels = true, token = true, tls = true }
local TLS_FIELDS = { ca = true, cert = true, key = true, domain = true }
-- (What the definitions for editors in lua/taskdefinitions.lua must document.)
M.AGENT_FIELDS, M.TLS_FIELDS = AGENT_FIELDS, TLS_FIELDS

local sorted_keys = tables.sorted_keys

--- An agent's `tls = { ca?, cert?, key?, domain? }`: PEM paths relative to the pipeline file.
--- Without `ca` the system's roots are trusted (as for an `https://` address without `tls`).
function M.tls(self, group_name, agent_name, raw)
  local where = function(field)
    return { group = group_name, field = "agents." .. agent_name .. ".tls" .. (field and ("." .. field) or "") }
  end
  if type(raw) ~= "table" then
    self:add(where(), "must be a table { ca = \"ca.pem\", cert = ..., key = ..., domain = ... }, got " .. type(raw))
    return nil
  end
  local tls = {}
  for key, value in pairs(raw) do
    if not TLS_FIELDS[key] then
      self:add(where(tostring(key)), "unknown field" .. suggest.hint(key, TLS_FIELDS))
    elseif type(value) ~= "string" then
      self:add(where(key), "must be a string, got " .. type(value))
    elseif key == "domain" then
      tls.domain = value
    else
      tls[key] = paths.absolute(value, self.base_dir)
    end
  end
  if (raw.cert == nil) ~= (raw.key == nil) then
    self:add(where(), "'cert' and 'key' go together")
  end
  return tls
end

--- Whether `url` has the shape of a discovery URL: `dns+srv://NAME`, `dns://NAME:PORT` or
--- `sloth://HOST:PORT` (a master's registry) — `agent.discover` reads it.
---@return boolean
function M.discovery_url(url)
  if type(url) ~= "string" then
    return false
  end
  if url:match("^dns%+srv://[^/:@?#%s]+$") then
    return true
  end
  local port = url:match("^dns://[^/:@?#%s]+:(%d+)$") or url:match("^sloth://[^/@?#%s]+:(%d+)$")
  return port ~= nil and tonumber(port) >= 1 and tonumber(port) <= 65535
end

--- `delegate_to`: an address string or `{ address = ... }`; returns the address or nil.
function M.delegate(self, where, raw)
  local address = raw
  if type(raw) == "table" then
    address = raw.address
  end
  if type(address) ~= "string" or address == "" then
    self:add(where, "must be an address string (host:port) or { address = \"host:port\" }")
    return nil
  end
  return address
end

function M.agents(self, group_name, raw)
  if type(raw) ~= "table" then
    self:add({ group = group_name, field = "agents" }, "must be a table of name = { address = ... }, got " .. type(raw))
    return {}
  end
  local agents = {}
  for _, name in ipairs(sorted_keys(raw)) do
    local agent = raw[name]
    local where = { group = group_name, field = "agents." .. tostring(name) }
    local function at(field)
      return { group = group_name, field = "agents." .. tostring(name) .. "." .. field }
    end
    if type(agent) ~= "table" then
      self:add(where, "must be a table with an 'address', got " .. type(agent))
    elseif agent.discover ~= nil then
      if agent.address ~= nil then
        self:add(where, "has both 'address' and 'discover': an agent has an address, a pool is discovered")
      elseif not M.discovery_url(agent.discover) then
        self:add(at("discover"), "must be \"dns+srv://NAME\" (SRV records: host and port of each agent), "
          .. "\"dns://NAME:PORT\" (every A/AAAA record of NAME, on PORT) or \"sloth://HOST:PORT\" (the agents "
          .. "registered with the master there), got " .. tostring(agent.discover))
      elseif agent.nameserver ~= nil and (type(agent.nameserver) ~= "string" or agent.nameserver == "") then
        self:add(at("nameserver"), "must be the DNS server's \"host:port\"")
      else
        self:known_fields(agent, AGENT_FIELDS, at)
        if agent.token ~= nil and type(agent.token) ~= "string" then
          self:add(at("token"), "must be a string")
        end
        agents[name] = { name = name, discover = agent.discover, nameserver = agent.nameserver,
          labels = agent.labels or {}, token = agent.token,
          tls = agent.tls ~= nil and M.tls(self, group_name, name, agent.tls) or nil }
      end
    elseif type(agent.address) ~= "string" or agent.address == "" then
      self:add(where, "has no 'address' (host:port), nor 'discover' (dns+srv://NAME, dns://NAME:PORT)")
    elseif agent.nameserver ~= nil then
      self:add(at("nameserver"), "goes with 'discover', not with an agent's 'address'")
    else
      self:known_fields(agent, AGENT_FIELDS, function(field)
        return { group = group_name, field = "agents." .. tostring(name) .. "." .. field }
      end)
      if agent.token ~= nil and type(agent.token) ~= "string" then
        self:add({ group = group_name, field = "agents." .. tostring(name) .. ".token" }, "must be a string")
      end
      agents[name] = { name = name, address = agent.address, labels = agent.labels or {}, token = agent.token,
        tls = agent.tls ~= nil and M.tls(self, group_name, name, agent.tls) or nil }
    end
  end
  return agents
end

--- Where a task runs: `task.remote = { name, address, token }`, or nil for here. The task's
--- `agent` names one of the group's agents; `delegate_to` (the task's, else the group's) is an
--- address used as is.
function M.resolve_target(self, group, task, group_delegate)
  -- Most tasks run here: nothing to look up (or allocate) for them.
  if task.agent == nil and not task.delegate_to and not group_delegate then
    return
  end
  local where = { group = group.name, task = task.name, field = "agent" }
  local known = sorted_keys(group.agents)
  local function unknown(name)
    self:add(where, string.format("unknown agent '%s' (%s)", name,
      #known > 0 and "agents: " .. table.concat(known, ", ") or "the group declares no agents")
      .. suggest.hint(name, known))
  end
  local candidates = {}
  local agent = task.agent
  if agent == "*" then
    for _, name in ipairs(known) do
      candidates[#candidates + 1] = group.agents[name]
    end
    if #candidates == 0 then
      self:add(where, "\"*\" needs agents, and the group declares none")
    end
  elseif type(agent) == "string" then
    if group.agents[agent] then
      candidates[1] = group.agents[agent]
    else
      unknown(agent)
    end
  elseif type(agent) == "table" and agent.labels then
    for _, name in ipairs(known) do
      local matches = true
      for k, v in pairs(agent.labels) do
        if group.agents[name].labels[k] ~= v then
          matches = false
        end
      end
      if matches then
        candidates[#candidates + 1] = group.agents[name]
      end
    end
    if #candidates == 0 then
      local wanted = {}
      for _, k in ipairs(sorted_keys(agent.labels)) do
        wanted[#wanted + 1] = tostring(k) .. "=" .. tostring(agent.labels[k])
      end
      self:add(where, "no agent of the group has the labels " .. table.concat(wanted, ", "))
    end
  elseif type(agent) == "table" then
    for _, name in ipairs(agent) do
      if group.agents[name] then
        candidates[#candidates + 1] = group.agents[name]
      else
        unknown(name)
      end
    end
  elseif task.delegate_to or group_delegate then
    local address = task.delegate_to or group_delegate
    candidates[1] = { name = address, address = address, labels = {} }
  end
  if #candidates > 0 then
    task.remote = { candidates = candidates, policy = group.dispatch }
  end
end

return M
